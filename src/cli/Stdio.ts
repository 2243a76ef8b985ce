/**
 * What the commands need to know of the process's standard streams. A service so the edge
 * supplies Node's streams and tests supply their own.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"

export interface TerminalSize {
  readonly columns: number
  readonly rows: number
}

export interface StdioService {
  readonly stdinIsTTY: boolean
  readonly stderrIsTTY: boolean
  /** All of standard input, up to its end. */
  readonly readStdin: Effect.Effect<Uint8Array>
  /**
   * Runs `self` with the terminal's echo off when standard input is a terminal, and turns it
   * back on however `self` ends: a password typed there is not shown. The terminal's own line
   * editing stays, so Ctrl-D still ends the input and Ctrl-C still interrupts.
   */
  readonly withoutEcho: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Standard error's terminal size now; 80×24 when it is no terminal or does not say. */
  readonly stderrSize: Effect.Effect<TerminalSize>
  /** Writes text to standard error as is: no prefix, no newline added (progress displays). */
  readonly writeStderr: (text: string) => Effect.Effect<void>
  /** Writes bytes to standard output exactly (`inspect --raw`), done when they are flushed. */
  readonly writeStdout: (bytes: Uint8Array) => Effect.Effect<void>
}

export class Stdio extends Context.Tag("microagent/cli/Stdio")<Stdio, StdioService>() {}
