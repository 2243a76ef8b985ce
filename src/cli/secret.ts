/**
 * `microagent secret check NAME=<scheme>:<ref>...` ([R6]): resolves references as `run --secret`
 * would and prints name, source and size of each; never a value. Thin: parse, call Secrets, print.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Secrets from "../Secrets.js"

/** Aligned columns: name, source, size. */
export const checkLines = (resolved: ReadonlyArray<Secrets.ResolvedSecret>): ReadonlyArray<string> => {
  const wn = Math.max(...resolved.map((r) => r.name.length))
  const ws = Math.max(...resolved.map((r) => r.source.length))
  return resolved.map((r) => `${r.name.padEnd(wn)}  ${r.source.padEnd(ws)}  ${r.size} ${r.size === 1 ? "byte" : "bytes"}`)
}

const check = Command.make(
  "check",
  {
    secrets: Args.text({ name: "secret" }).pipe(
      Args.withDescription(
        "A secret reference, as run --secret takes it (one or more): env:VAR, file:PATH or dotenv:PATH#KEY, " +
          "e.g. API_TOKEN=env:API_TOKEN TLS_KEY=file:./tls.key DB_PASSWORD=dotenv:.env#DB_PASSWORD"
      ),
      Args.atLeast(1)
    )
  },
  ({ secrets }) =>
    Effect.gen(function*() {
      const refs = yield* Secrets.parseAll(secrets)
      const resolved = yield* (yield* Secrets.Secrets).resolve(refs)
      for (const line of checkLines(resolved)) yield* Console.log(line)
    })
).pipe(
  Command.withDescription("Check that secret references resolve; print each one's name, source and size in bytes (never a value)"),
  Command.provide(Secrets.layer)
)

/** The `secret` group. Needs FileSystem; `env:` reads the environment through the ConfigProvider. */
export const secret = Command.make("secret").pipe(
  Command.withDescription("Check secret references for run --secret (env:, file:, dotenv:)"),
  Command.withSubcommands([check])
)
