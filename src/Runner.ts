/**
 * Runner (SPEC §7): runs a prepared bundle (Rootfs) with an existing OCI runtime as a child
 * process, with the run's overrides, binds and secrets, and removes every trace of the run when
 * it ends, however it ends ([R5]).
 *
 * This module holds the interface; the implementation (run/Container.ts, which mounts and starts
 * processes) is loaded on a run's first use, so no other command pays for it at start.
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ImageStoreError, ToolMissing, UsageError } from "./domain/Errors.js"
import type * as RunSpec from "./domain/RunSpec.js"
import { onFirstUse } from "./node/Lazy.js"
import type { Prepared } from "./Rootfs.js"
import type { ResolvedSecret } from "./Secrets.js"
import * as Home from "./Home.js"

export interface RunOptions extends RunSpec.Overrides {
  readonly hostname?: string | undefined
  readonly network: "none" | "host"
  readonly binds: ReadonlyArray<RunSpec.Bind>
  readonly secrets: ReadonlyArray<ResolvedSecret>
  /** Kill the container after this many seconds (exit 124). */
  readonly timeoutSeconds?: number | undefined
  /** Keep the scratch state and say where. */
  readonly keep: boolean
  /** The runtime's path; default runc, else crun, from PATH. */
  readonly runtime?: string | undefined
  /** Keep standard input open for the process. */
  readonly interactive: boolean
  readonly tty: boolean
  /** Called once the process is about to start: microagent says nothing after it. */
  readonly onStart?: (() => void) | undefined
}

export interface RunResult {
  /** The runtime used (its path). */
  readonly runtime: string
  readonly startedAt: Date
  readonly exitedAt: Date
  /** The process's exit code; 128+N when signal N ended it, 124 when --timeout did. */
  readonly exitCode: number
  /** The signal that ended the process, by name (`SIGKILL`), when one did. */
  readonly signal: string | null
  /** The kept scratch folder, with --keep. */
  readonly kept: string | null
}

export type RunError = ImageStoreError | ToolMissing | UsageError

export interface RunnerService {
  readonly run: (prepared: Prepared, options: RunOptions) => Effect.Effect<RunResult, RunError>
}

export class Runner extends Context.Tag("microagent/Runner")<Runner, RunnerService>() {}

/** Needs `HOME` (scratch state lives in `~/.microagent/run`) and `PATH` from the ConfigProvider. */
export const layer: Layer.Layer<Runner, ConfigError.ConfigError> = Layer.scoped(
  Runner,
  Effect.gen(function*() {
    const home = yield* Home.home
    const path = yield* Config.string("PATH").pipe(Config.withDefault("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
    const real = yield* onFirstUse(Runner, () => import("./run/Container.js").then((container) => container.layer(home, path)))
    return Runner.of({ run: (...args) => Effect.flatMap(real, (r) => r.run(...args)) })
  })
)
