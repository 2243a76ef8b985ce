/**
 * How outcomes reach the user: one `error:` line (plus an optional `hint:` line) on stderr per
 * failure, warnings as `warning:` lines, and the exit codes of SPEC §5.
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as ConfigError from "effect/ConfigError"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import type { MicroagentError } from "../domain/Errors.js"

export const ExitCode = { ok: 0, failure: 1, usage: 2, credentials: 3, denied: 4, interrupted: 130 } as const

const isMicroagentError = (u: unknown): u is MicroagentError =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" && u._tag in codes

const codes: Record<MicroagentError["_tag"], number> = {
  UsageError: ExitCode.usage,
  AuthFileError: ExitCode.credentials,
  MissingCredentials: ExitCode.credentials,
  RegistryDenied: ExitCode.denied,
  RegistryUnavailable: ExitCode.failure,
  NotLoggedIn: ExitCode.failure,
  InvalidReference: ExitCode.usage,
  NotFound: ExitCode.failure,
  DigestMismatch: ExitCode.failure,
  ImageStoreError: ExitCode.failure,
  LayerRejected: ExitCode.failure,
  ToolMissing: ExitCode.failure,
  SecretUnresolved: ExitCode.failure
}

/**
 * `run`'s process ended with a code other than 0: microagent exits with it ([R4]) and says
 * nothing, since the process had the last word.
 */
export class ProcessExit extends Data.TaggedError("ProcessExit")<{ readonly code: number }> {}

const isQuit = (u: unknown): boolean => typeof u === "object" && u !== null && "_tag" in u && u._tag === "QuitException"

export const exitCode = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return ExitCode.ok
  if (Cause.isInterruptedOnly(exit.cause)) return ExitCode.interrupted
  return Option.match(Cause.failureOption(exit.cause), {
    onNone: () => ExitCode.failure,
    onSome: (e) =>
      isMicroagentError(e)
        ? codes[e._tag]
        : e instanceof ProcessExit
        ? e.code
        : ValidationError.isValidationError(e) || ConfigError.isConfigError(e)
        ? ExitCode.usage
        : isQuit(e)
        ? ExitCode.interrupted
        : ExitCode.failure
  })
}

/**
 * The environment a command could not read its settings from. `HOME` is the one every command
 * needs (the stores live under it); a container's nameless user may have none.
 */
const environmentProblem = (e: ConfigError.ConfigError): string => {
  switch (e._op) {
    case "MissingData":
      return e.path.join(".") === "HOME"
        ? "HOME is not set: microagent keeps its credential store and images under $HOME/.microagent\nhint: set it, e.g. HOME=/root microagent …"
        : `${e.path.join(".")} is not set`
    case "InvalidData":
      return `${e.path.join(".")} is not valid: ${e.message}`
    case "And":
    case "Or":
      return environmentProblem(e.left)
    default:
      return String(e)
  }
}

/** Prints a failure once. @effect/cli has already printed its own parse errors. */
export const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
  if (Cause.isInterruptedOnly(cause)) return Effect.void
  return Option.match(Cause.failureOption(cause), {
    onNone: () => {
      const defect = Cause.squash(cause)
      return Effect.zipRight(
        Console.error(`error: internal error: ${defect instanceof Error ? defect.message : String(defect)} (run with --log-level debug for details)`),
        Effect.logDebug(cause)
      )
    },
    onSome: (e) =>
      ValidationError.isValidationError(e) || isQuit(e) || e instanceof ProcessExit
        ? Effect.void
        : isMicroagentError(e)
        ? Console.error(e.hint === undefined ? `error: ${e.message}` : `error: ${e.message}\nhint: ${e.hint}`)
        : ConfigError.isConfigError(e)
        ? Console.error(`error: ${environmentProblem(e)}`)
        : Console.error(`error: ${e instanceof Error ? e.message : String(e)}`)
  })
}

const prefixes: Partial<Record<LogLevel.LogLevel["_tag"], string>> = {
  Warning: "warning",
  Error: "error",
  Info: "info",
  Debug: "debug",
  Trace: "trace"
}

/**
 * Log lines as a user reads them: `warning: …` on stderr, one line each, no timestamps or fibers.
 * Causes (logged at debug level only) keep their full trace.
 */
export const stderrLogger = Logger.make(({ cause, logLevel, message }) => {
  const parts = (Array.isArray(message) ? message : [message]).map((m) =>
    Cause.isCause(m) ? Cause.pretty(m) : typeof m === "string" ? m : JSON.stringify(m)
  )
  if (!Cause.isEmpty(cause)) parts.push(Cause.pretty(cause))
  process.stderr.write(`${prefixes[logLevel._tag] ?? logLevel.label.toLowerCase()}: ${parts.join(" ")}\n`)
})

// eslint-disable-next-line no-control-regex
const ansi = /\x1b\[[0-9;]*m/g

/**
 * @effect/cli styles what it prints (its prompts, and a parse error that cli/usage.ts did not
 * catch first) with ANSI codes whatever the stream; a pipe, a log file or `NO_COLOR` gets plain
 * text instead. Its parse errors also arrive bare on stderr: they get the `error:` prefix every
 * other failure line has, so scripts can grep one pattern.
 */
export const withUserConsole = (plain: { readonly stdout: boolean; readonly stderr: boolean }) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((console) =>
    Console.withConsole(self, {
      ...console,
      log: (...args) => console.log(...withoutFinalNewline(plain.stdout ? args.map(stripAnsi) : args)),
      error: (...args) => {
        const text = args.map((a) => plain.stderr ? stripAnsi(a) : a).map(String).join(" ")
        return console.error(/^(error|warning|hint|info|debug|trace): /.test(stripAnsi(text) as string) ? text : `error: ${text.trim()}`)
      }
    })
  )

const stripAnsi = (u: unknown): unknown => typeof u === "string" ? u.replace(ansi, "") : u

/** Text without its colours (SGR sequences), for `NO_COLOR`; cursor movement stays, so prompts still redraw. */
export const withoutColours = (text: string): string => text.replace(ansi, "")

/**
 * @effect/cli prints its text as paragraphs that end in a newline, and `log` adds one:
 * `microagent --version` printed a blank line after the version.
 */
const withoutFinalNewline = (args: ReadonlyArray<unknown>): ReadonlyArray<unknown> => {
  const last = args.at(-1)
  return typeof last === "string" && last.endsWith("\n") ? [...args.slice(0, -1), last.slice(0, -1)] : args
}
