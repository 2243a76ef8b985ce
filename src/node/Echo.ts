/**
 * Echo off on the terminal that standard input is, for the time a secret is read from it (issue
 * 13). Node's only switch is raw mode, which also takes away the terminal's line editing: Ctrl-D
 * would no longer end the input nor Ctrl-C interrupt, and both would have to be redone by hand.
 * `stty` (coreutils) turns off echo alone. Imported on first use: child_process costs every start.
 */
import { spawnSync } from "node:child_process"
import * as Effect from "effect/Effect"

/** `stty` on standard input; its output, or undefined when it failed (no stty, no terminal). */
const stty = (args: ReadonlyArray<string>): Effect.Effect<string | undefined> =>
  Effect.sync(() => {
    const done = spawnSync("stty", args, { stdio: ["inherit", "pipe", "ignore"], encoding: "utf8" })
    return done.status === 0 ? done.stdout.trim() : undefined
  })

export const withoutEcho = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  process.stdin.isTTY !== true
    ? self
    : Effect.acquireUseRelease(
      // The settings are saved and restored whole, so a terminal left without echo stays so.
      Effect.flatMap(stty(["-g"]), (saved) => saved === undefined ? Effect.succeed(undefined) : Effect.as(stty(["-echo"]), saved)),
      () => self,
      (saved) => saved === undefined ? Effect.void : stty([saved])
    )
