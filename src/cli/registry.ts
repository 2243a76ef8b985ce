/**
 * `microagent registry login | logout | list` (SPEC §2). Thin: parse, call services, print.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Prompt from "@effect/cli/Prompt"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { AuthStore } from "../AuthStore.js"
import { CredentialResolver, type Listing } from "../CredentialResolver.js"
import * as AuthKey from "../domain/AuthKey.js"
import * as Credential from "../domain/Credential.js"
import { NotLoggedIn, UsageError } from "../domain/Errors.js"
import { RegistryClient } from "../RegistryClient.js"
import { allowInsecure, insecureOption } from "./insecure.js"
import { Stdio } from "./Stdio.js"

/** [L1]: a registry or namespace key, normalised; its host is what login talks to. */
const canonicalKey = (raw: string) =>
  Either.match(AuthKey.parse(raw), {
    onLeft: (reason) => Effect.fail(new UsageError({ message: `invalid registry: ${reason}`, hint: "e.g. ghcr.io, localhost:5000, registry.example.com/team" })),
    onRight: ({ key }) => Effect.succeed({ key: AuthKey.format(key), host: key.host })
  })

/** [L3]: all of stdin, less one trailing `\n` (and a `\r` before it). */
export const passwordFromStdin = (bytes: Uint8Array): string => new TextDecoder().decode(bytes).replace(/\r?\n$/, "")

const readPassword = (passwordStdin: boolean, username: string, key: string) =>
  Effect.gen(function*() {
    const stdio = yield* Stdio
    const fromStdin = Effect.map(stdio.readStdin, (bytes) => Redacted.make(passwordFromStdin(bytes)))
    if (passwordStdin) {
      // A terminal that waits in silence looks hung, and one that echoes shows the password.
      const notice = stdio.writeStderr("Reading the password from standard input (not shown); end it with Ctrl-D\n")
      return yield* stdio.stdinIsTTY ? stdio.withoutEcho(Effect.zipRight(notice, fromStdin)) : fromStdin
    }
    if (!stdio.stdinIsTTY) {
      return yield* new UsageError({
        message: "no terminal to ask for the password, and --password-stdin was not given",
        hint: `printf '%s\\n' "$PASSWORD" | microagent registry login ${key} -u ${username} --password-stdin`
      })
    }
    // Ctrl-C and Ctrl-D quit the prompt mid-line: end that line, and end as an interruption does.
    return yield* Prompt.hidden({ message: `Password for ${username}@${key}` }).pipe(
      Effect.catchTag("QuitException", () => Effect.zipRight(stdio.writeStderr("\n"), Effect.interrupt))
    )
  })

const registryArg = Args.text({ name: "registry" }).pipe(
  Args.withDescription("Registry or namespace, e.g. ghcr.io, localhost:5000, registry.example.com/team")
)

export const login = Command.make(
  "login",
  {
    registry: registryArg,
    username: Options.text("username").pipe(Options.withAlias("u"), Options.withDescription("User name (required; may not contain ':'), e.g. -u octocat")),
    passwordStdin: Options.boolean("password-stdin").pipe(
      Options.withDescription("Read the password from standard input (one trailing newline is removed), e.g. printf '%s\\n' \"$TOKEN\" | microagent registry login ghcr.io -u me --password-stdin")
    ),
    noVerify: Options.boolean("no-verify").pipe(
      Options.withDescription("Store without checking the credentials with the registry (offline set-up), e.g. when building a CI image")
    ),
    insecure: insecureOption
  },
  ({ insecure, noVerify, passwordStdin, registry, username }) =>
    Effect.gen(function*() {
      const { host, key } = yield* canonicalKey(registry)
      if (username === "" || username.includes(":")) {
        return yield* new UsageError({ message: `invalid user name: it must be non-empty and may not contain ':'` })
      }
      const password = yield* readPassword(passwordStdin, username, key)
      // Judged as it will be sent and stored: a password of NULs alone is empty once trimmed ([C11]).
      if (Credential.trimPassword(Redacted.value(password)) === "") return yield* new UsageError({ message: "the password is empty" })
      yield* allowInsecure(insecure && !noVerify, host)
      const check = noVerify ? "skipped" : yield* (yield* RegistryClient).checkLogin(host, username, password)
      const store = yield* AuthStore
      yield* store.upsert(key, username, password)
      if (check === "unverified") {
        yield* Effect.logWarning(`${host} asks for no credentials, so they could not be checked; stored anyway`)
      } else if (check === "skipped") {
        yield* Effect.logWarning("--no-verify: the credentials were stored without being checked")
      }
      const shadow = yield* (yield* CredentialResolver).shadowing(key)
      if (Option.isSome(shadow)) {
        yield* Effect.logWarning(
          `$REGISTRY_AUTH_FILE (${shadow.value.file}) holds "${shadow.value.key}", which is used before these credentials`
        )
      }
      // Nothing was checked: saying "Login Succeeded" would claim what did not happen (issue 13).
      yield* Console.log(check === "verified" ? "Login Succeeded" : "Credentials saved (not verified)")
      yield* Console.log(`Credentials for ${key} saved to ${store.path}`)
    })
).pipe(Command.withDescription("Store registry credentials, after checking them with the registry"))

const logout = Command.make(
  "logout",
  {
    registry: registryArg.pipe(Args.optional),
    all: Options.boolean("all").pipe(Options.withDescription("Remove every stored credential: microagent registry logout --all"))
  },
  ({ all, registry }) =>
    Effect.gen(function*() {
      const store = yield* AuthStore
      if (all === Option.isSome(registry)) {
        return yield* new UsageError({ message: "give either a registry or --all", hint: "microagent registry logout ghcr.io" })
      }
      if (Option.isNone(registry)) {
        const removed = yield* store.removeAll
        return yield* Console.log(`Removed login credentials for all registries (${removed} in ${store.path})`)
      }
      const { key } = yield* canonicalKey(registry.value)
      const removed = yield* store.remove(key)
      const shadow = yield* (yield* CredentialResolver).shadowing(key)
      const elsewhere = Option.map(shadow, (s) =>
        `$REGISTRY_AUTH_FILE (${s.file}) still holds "${s.key}" for it, and microagent never modifies that file`)
      if (removed === 0) {
        return yield* new NotLoggedIn({
          key,
          message: Option.match(elsewhere, {
            onNone: () => `not logged in to ${key}`,
            onSome: (why) => `not logged in to ${key} in ${store.path}; ${why}`
          })
        })
      }
      yield* Console.log(`Removed login credentials for ${key}`)
      if (Option.isSome(elsewhere)) yield* Effect.logWarning(elsewhere.value)
    })
).pipe(Command.withDescription("Remove stored credentials from microagent's own store"))

const listingJson = (l: Listing) => ({
  registry: l.registry,
  username: l.username,
  source: l.source,
  shadowed: l.shadowed,
  invalid: l.invalid ?? null
})

/** Aligned columns: key, user, source, then what makes the entry special. */
const listingLines = (rows: ReadonlyArray<Listing>): ReadonlyArray<string> => {
  const width = (pick: (l: Listing) => string) => Math.max(...rows.map((r) => pick(r).length))
  const user = (l: Listing) => l.invalid !== undefined ? "-" : l.username === "" ? "<identity token>" : l.username
  const [wk, wu, ws] = [width((l) => l.registry), width(user), width((l) => l.source)]
  return rows.map((l) => {
    const notes = [l.shadowed ? "(shadowed)" : "", l.invalid !== undefined ? `(invalid: ${l.invalid})` : ""].filter((n) => n)
    return [l.registry.padEnd(wk), user(l).padEnd(wu), notes.length ? l.source.padEnd(ws) : l.source, ...notes].join("  ").trimEnd()
  })
}

const list = Command.make(
  "list",
  { json: Options.boolean("json").pipe(Options.withDescription("Print a JSON array of {registry, username, source, shadowed, invalid}, e.g. microagent registry list --json | jq -r '.[].registry'")) },
  ({ json }) =>
    Effect.gen(function*() {
      // A file that cannot be read is reported after what the others list, not instead of it.
      const { listings: rows, unreadable } = yield* (yield* CredentialResolver).listReadable
      if (json) {
        yield* Console.log(JSON.stringify(rows.map(listingJson), null, 2))
      } else if (rows.length > 0) {
        for (const line of listingLines(rows)) yield* Console.log(line)
      } else if (unreadable.length === 0 && (yield* Stdio).stderrIsTTY) {
        yield* Console.error("hint: no stored credentials; add some with: microagent registry login <registry> -u <user>")
      }
      const last = unreadable.at(-1)
      if (last === undefined) return
      for (const e of unreadable.slice(0, -1)) yield* Console.error(`error: ${e.message}`)
      return yield* last
    })
).pipe(Command.withDescription("List registries with stored credentials, in resolution order (never a secret)"))

/** The `registry` group, with `login` as the caller has provided it (it alone talks to a registry). */
export const registryCommands = <R, E, A>(verifiedLogin: Command.Command<"login", R, E, A>) =>
  Command.make("registry").pipe(
    Command.withDescription("Manage registry credentials (login, logout, list)"),
    Command.withSubcommands([verifiedLogin, logout, list])
  )
