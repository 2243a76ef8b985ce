/**
 * `microagent run [flags] <ref> [command [arg...]]` (SPEC §7). Thin: resolve the secrets first
 * (nothing starts when one does not resolve), pull and prepare the image (progress on stderr),
 * hand it to Runner, and exit with the process's code. Once the process starts, microagent says
 * nothing more: the output is the process's.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Bytes from "../domain/Bytes.js"
import { UsageError } from "../domain/Errors.js"
import * as RunSpec from "../domain/RunSpec.js"
import { type Prepared, Rootfs } from "../Rootfs.js"
import { Runner } from "../Runner.js"
import * as Secrets from "../Secrets.js"
import * as CliArgs from "./args.js"
import { localImage } from "./image.js"
import { insecureOption } from "./insecure.js"
import { ProcessExit } from "./output.js"
import * as Progress from "./progress.js"
import { Stdio } from "./Stdio.js"

/** run's flags that take a value: the first word after `run` that is none of them, nor their value, is the image. */
const valued = new Set([
  "-e", "--env", "--entrypoint", "-w", "--workdir", "-u", "--user", "--hostname", "--network", "--mount", "--secret",
  "--timeout", "--runtime", "--platform", "--log-level"
])

/**
 * Flags go before the image, and everything after it is the command, as `docker run` reads it:
 * a `--` goes in before the image, so `run app sh -c 'echo hi'` is not read as flags of microagent.
 */
export const commandAfterImage = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  // The subcommand is the first word that is no flag nor a global flag's value (--log-level debug).
  let at = 2
  while (at < argv.length && argv[at]!.startsWith("-")) at += argv[at] === "--log-level" ? 2 : 1
  if (argv[at] !== "run") return argv
  for (let i = at + 1; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") return argv
    if (!arg.startsWith("-") || arg === "-") return [...argv.slice(0, i), "--", ...argv.slice(i)]
    if (valued.has(arg)) i++
  }
  return argv
}

const options = {
  env: Options.text("env").pipe(Options.withAlias("e"), Options.repeated, Options.withDescription("Set a variable for the process (repeatable), e.g. -e LOG_LEVEL=debug")),
  entrypoint: Options.text("entrypoint").pipe(Options.optional, Options.withDescription("Run this program instead of the image's Entrypoint (its Cmd is dropped too), e.g. --entrypoint /bin/sh")),
  workdir: Options.text("workdir").pipe(Options.withAlias("w"), Options.optional, Options.withDescription("The process's working directory, e.g. -w /srv")),
  user: Options.text("user").pipe(Options.withAlias("u"), Options.optional, Options.withDescription("Run as this user: uid[:gid] or a name from the image's /etc/passwd, e.g. -u 1000:1000 or -u app")),
  hostname: Options.text("hostname").pipe(Options.optional, Options.withDescription("The container's host name (default: from the run's id), e.g. --hostname web")),
  network: Options.choice("network", ["none", "host"]).pipe(Options.withDefault("none" as const), Options.withDescription("none: a network namespace with only lo (default); host: the machine's network, e.g. --network host")),
  mount: Options.text("mount").pipe(Options.repeated, Options.withDescription("Bind a host folder or file into the container (repeatable): <host>:<guest>[:ro], e.g. --mount /srv/data:/data:ro")),
  secret: Options.text("secret").pipe(Options.repeated, Options.withDescription("Hand the process a secret as /run/secrets/NAME (repeatable, never stored): NAME=env:VAR, NAME=file:PATH or NAME=dotenv:PATH#KEY, e.g. --secret API_TOKEN=env:API_TOKEN")),
  timeout: Options.integer("timeout").pipe(Options.optional, Options.withDescription("Kill the container after this many seconds (exit 124), e.g. --timeout 60")),
  keep: Options.boolean("keep").pipe(Options.withDescription("Keep the run's scratch folder (bundle and changes) and print where it is, e.g. --keep")),
  runtime: Options.text("runtime").pipe(Options.optional, Options.withDescription("The OCI runtime to use (default: runc, else crun, from PATH), e.g. --runtime /usr/bin/crun")),
  interactive: Options.boolean("interactive").pipe(Options.withAlias("i"), Options.withDescription("Keep standard input open for the process, e.g. printf 'data' | microagent run -i app cat")),
  tty: Options.boolean("tty").pipe(Options.withAlias("t"), Options.withDescription("Give the process a terminal (stdin must be one), e.g. microagent run -it app sh")),
  platform: Options.text("platform").pipe(Options.optional, Options.withDescription("Which image of a multi-platform index (default: this machine's), e.g. --platform linux/arm64")),
  json: Options.boolean("json").pipe(Options.withDescription("When the run ends, print one JSON document: reference, digest, runtime, startedAt, exitedAt, exitCode, signal, kept; e.g. microagent run --json app true")),
  insecure: insecureOption
}

export const run = Command.make(
  "run",
  {
    image: Args.text({ name: "reference" }).pipe(Args.withDescription("Image to run: a registry reference (tag or digest) or an OCI layout, oci:<dir>[:<tag>], e.g. ghcr.io/acme/app:1.2")),
    command: Args.text({ name: "command" }).pipe(Args.repeated, Args.withDescription("The command and its arguments, replacing the image's Cmd, e.g. microagent run app sh -c 'echo hi'")),
    ...options
  },
  (args) =>
    Effect.gen(function*() {
      // Before anything is pulled or started: a secret that does not resolve stops the run ([R6]).
      const secrets = yield* (yield* Secrets.Secrets).resolve(yield* Secrets.parseAll(args.secret))
      const binds = yield* Effect.forEach(args.mount, (text) =>
        Either.match(RunSpec.parseMount(text), { onLeft: (message) => Effect.fail(new UsageError({ message })), onRight: Effect.succeed })
      )
      const timeout = Option.getOrUndefined(args.timeout)
      if (timeout !== undefined && timeout < 1) return yield* new UsageError({ message: `--timeout must be at least 1 second, not ${timeout}` })
      if (args.tty && !(yield* Stdio).stdinIsTTY) return yield* new UsageError({ message: "-t needs a terminal on standard input", hint: "leave -t out when input is a pipe or a file" })
      const platform = Option.isSome(args.platform) ? yield* CliArgs.platform(args.platform.value) : undefined
      const display = yield* Progress.display(false)
      const image = yield* localImage(args.image, { platform, insecure: args.insecure, display })

      const warnings: Array<string> = []
      const rootfs = yield* Rootfs
      const prepared = yield* Progress.track(
        display,
        (p: Prepared, ms) => `prepared ${p.digest}: ${p.files} files, ${Bytes.format(p.bytes)}, in ${Progress.formatDuration(ms)}${p.cached ? " (from the cache)" : ""}`,
        (onLayer) => rootfs.prepare(image.layout, image.descriptor, { platform, onLayer, warn: (message) => void warnings.push(message) })
      ).pipe(Effect.ensuring(Effect.forEach(warnings, (w) => Effect.logWarning(w), { discard: true })))

      const result = yield* (yield* Runner).run(prepared, {
        command: args.command,
        entrypoint: Option.getOrUndefined(args.entrypoint),
        env: args.env,
        workdir: Option.getOrUndefined(args.workdir),
        user: Option.getOrUndefined(args.user),
        hostname: Option.getOrUndefined(args.hostname),
        network: args.network,
        binds,
        secrets,
        timeoutSeconds: timeout,
        keep: args.keep,
        runtime: Option.getOrUndefined(args.runtime),
        interactive: args.interactive,
        tty: args.tty
      })
      if (result.kept !== null) yield* (yield* Stdio).writeStderr(`kept ${result.kept} (the bundle in bundle/, the run's changes in upper/)\n`)
      if (args.json) {
        yield* Console.log(JSON.stringify({
          reference: image.reference,
          digest: prepared.digest,
          runtime: result.runtime,
          startedAt: result.startedAt.toISOString(),
          exitedAt: result.exitedAt.toISOString(),
          exitCode: result.exitCode,
          signal: result.signal,
          kept: result.kept
        }))
      }
      if (result.exitCode !== 0) return yield* new ProcessExit({ code: result.exitCode })
    })
).pipe(
  Command.withDescription("Run an image's process in a container with an OCI runtime (runc), secrets passed through and never stored"),
  Command.provide(Secrets.layer)
)
