/**
 * What the commands need to know of the process's standard streams. A service so the edge
 * supplies Node's streams and tests supply their own.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"

export interface StdioService {
  readonly stdinIsTTY: boolean
  readonly stderrIsTTY: boolean
  /** All of standard input, up to its end. */
  readonly readStdin: Effect.Effect<Uint8Array>
}

export class Stdio extends Context.Tag("microagent/cli/Stdio")<Stdio, StdioService>() {}
