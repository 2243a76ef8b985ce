/**
 * CredentialResolver: which credentials go to a registry for a repository ([C5]–[C12]).
 * Order: `$REGISTRY_AUTH_FILE`, then microagent's own store, then anonymous; first match wins.
 * It never touches the network and never runs a credential helper ([C4]).
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { AuthStore } from "./AuthStore.js"
import * as AuthFile from "./domain/AuthFile.js"
import * as AuthKey from "./domain/AuthKey.js"
import * as Credential from "./domain/Credential.js"
import { AuthFileError, UsageError } from "./domain/Errors.js"

/** One stored key as `registry list` shows it ([S1], [S2]). */
export interface Listing {
  readonly registry: string
  readonly username: string
  readonly source: string
  /** An earlier source, or a better alias in the same file, wins for this key. */
  readonly shadowed: boolean
  /** Why the entry cannot be used, when it cannot ([C9]). */
  readonly invalid: string | undefined
}

export interface CredentialResolverService {
  /** `$REGISTRY_AUTH_FILE` when set and non-empty. */
  readonly authFile: string | undefined
  /** Credentials for `registry` (a host[:port]) and a repository path (empty for the registry itself). */
  readonly resolve: (registry: string, repository?: string) => Effect.Effect<Credential.Resolved, AuthFileError | UsageError>
  /** The `$REGISTRY_AUTH_FILE` entry that wins over a key of the own store, if any ([L6]). */
  readonly shadowing: (key: string) => Effect.Effect<Option.Option<Credential.Source>, AuthFileError | UsageError>
  /** Every stored key of every source, in resolution order. */
  readonly list: Effect.Effect<ReadonlyArray<Listing>, AuthFileError>
  /**
   * The same from the sources that can be read, and why the others cannot: one broken file
   * does not hide what the other holds (`registry list`, issue 13).
   */
  readonly listReadable: Effect.Effect<{
    readonly listings: ReadonlyArray<Listing>
    readonly unreadable: ReadonlyArray<AuthFileError>
  }>
}

export class CredentialResolver
  extends Context.Tag("microagent/CredentialResolver")<CredentialResolver, CredentialResolverService>()
{}

const parseTarget = (text: string) =>
  Either.match(AuthKey.parse(text), {
    onLeft: (reason) => Effect.fail(new UsageError({ message: `invalid registry or repository: ${reason}` })),
    onRight: (parsed) => Effect.succeed(parsed.key)
  })

export const make = Effect.gen(function*() {
  const store = yield* AuthStore
  const authFile = Option.getOrUndefined(
    yield* Config.string("REGISTRY_AUTH_FILE").pipe(Config.option, Config.map(Option.filter((s) => s.trim() !== "")))
  )
  const told = yield* Ref.make(new Set<string>())

  /** Each warning once per process, however many lookups hit it. */
  const warnOnce = (message: string) =>
    Ref.modify(told, (seen) => [!seen.has(message), new Set(seen).add(message)]).pipe(
      Effect.flatMap((first) => first ? Effect.logWarning(message) : Effect.void)
    )

  const readSource = (path: string) =>
    store.load(path).pipe(
      Effect.tap((file) =>
        !file.exists && path === authFile
          ? warnOnce(`$REGISTRY_AUTH_FILE names ${path}, which does not exist; it is read as empty`)
          : Effect.void
      )
    )

  /**
   * Each file is read once per resolver (one command), however many requests ask: a pipe
   * (`REGISTRY_AUTH_FILE=<(…)`) can be read only once. Concurrent lookups share one read; the
   * own store is read again after this process wrote it (login, then the shadowing check).
   */
  const reads = new Map<string, { readonly revision: number; readonly done: Deferred.Deferred<AuthFile.AuthFile, AuthFileError> }>()
  const loadSource = (path: string): Effect.Effect<AuthFile.AuthFile, AuthFileError> =>
    Effect.gen(function*() {
      const revision = path === store.path ? yield* store.revision : 0
      const hit = reads.get(path)
      if (hit !== undefined && hit.revision === revision) {
        const exit = yield* Effect.exit(Deferred.await(hit.done))
        // The reader was interrupted before it finished: read it here instead.
        return yield* Exit.isInterrupted(exit) ? loadSource(path) : exit
      }
      const entry = { revision, done: Deferred.unsafeMake<AuthFile.AuthFile, AuthFileError>(FiberId.none) }
      reads.set(path, entry)
      return yield* readSource(path).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (Exit.isInterrupted(exit) && reads.get(path) === entry) reads.delete(path)
          }).pipe(Effect.zipRight(Deferred.done(entry.done, exit)))
        )
      )
    })

  const paths = authFile === undefined ? [store.path] : [authFile, store.path]
  const sources = Effect.forEach(paths, loadSource)

  const noteHelpers = (file: AuthFile.AuthFile, registry: string) => {
    const helper = Object.entries(file.credHelpers).find(([k]) => Either.getOrUndefined(AuthKey.normalize(k)) === registry)
    const named = helper
      ? `credHelpers names docker-credential-${helper[1]} for ${registry}`
      : file.credsStore !== undefined
      ? `credsStore names docker-credential-${file.credsStore}`
      : undefined
    return named === undefined
      ? Effect.void
      : warnOnce(`${file.path}: ${named}, ignored: microagent never runs credential helpers and uses only the file's auths entries`)
  }

  const find = (file: AuthFile.AuthFile, target: AuthKey.AuthKey) =>
    Option.match(AuthFile.lookup(file, target), {
      onNone: () => Effect.succeed(Option.none<Credential.Credential>()),
      onSome: (entry) =>
        entry.state._tag === "Valid"
          ? Effect.succeed(Option.some<Credential.Credential>({
            _tag: "Credential",
            username: entry.state.username,
            password: entry.state.password,
            identityToken: entry.state.identityToken,
            source: { file: file.path, key: entry.rawKey }
          }))
          : Effect.fail(AuthFileError.of(file.path, entry.state._tag === "Invalid" ? entry.state.reason : "empty entry", entry.rawKey))
    })

  const resolve = Effect.fn("CredentialResolver.resolve")(function*(registry: string, repository = "") {
    const target = yield* parseTarget(repository === "" ? registry : `${registry}/${repository}`)
    for (const file of yield* sources) {
      yield* noteHelpers(file, target.host)
      const found = yield* find(file, target)
      if (Option.isSome(found)) return found.value
    }
    return Credential.anonymous
  })

  const shadowing = Effect.fn("CredentialResolver.shadowing")(function*(key: string) {
    if (authFile === undefined) return Option.none()
    const target = yield* parseTarget(key)
    const file = yield* loadSource(authFile)
    yield* noteHelpers(file, target.host)
    return Option.map(AuthFile.lookup(file, target), (entry) => ({ file: file.path, key: entry.rawKey }))
  })

  const listReadable = Effect.gen(function*() {
    const read = yield* Effect.forEach(paths, (path) => Effect.either(loadSource(path)))
    const files = read.flatMap((r) => Either.isRight(r) ? [r.right] : [])
    const unreadable = read.flatMap((r) => Either.isLeft(r) ? [r.left] : [])
    const listings = files.flatMap((file, index) =>
      inResolutionOrder(file).map((entry): Listing => {
        const key = Either.getOrUndefined(entry.key)?.key
        const canonical = key && AuthKey.format(key)
        const betterAlias = canonical !== undefined &&
          AuthFile.entriesFor(file, canonical).find((e) => e.state._tag !== "Empty") !== entry
        const earlier = key !== undefined && files.slice(0, index).some((f) => Option.isSome(AuthFile.lookup(f, key)))
        return {
          registry: canonical ?? entry.rawKey,
          username: entry.state._tag === "Valid" ? entry.state.username : "",
          source: file.path,
          shadowed: betterAlias || earlier,
          invalid: entry.state._tag === "Invalid"
            ? entry.state.reason
            : Either.isLeft(entry.key)
            ? entry.key.left
            : undefined
        }
      })
    )
    return { listings, unreadable }
  }).pipe(Effect.withSpan("CredentialResolver.list"))

  const list = Effect.flatMap(listReadable, ({ listings, unreadable }) =>
    unreadable.length === 0 ? Effect.succeed(listings) : Effect.fail(unreadable[0]!))

  return CredentialResolver.of({ authFile, resolve, shadowing, list, listReadable })
})

/**
 * A file's entries with credentials, grouped by key in the order the keys first appear, the
 * spelling that wins first within a group ([C6]).
 */
const inResolutionOrder = (file: AuthFile.AuthFile): ReadonlyArray<AuthFile.Entry> => {
  const usable = file.entries.filter((e) => e.state._tag !== "Empty")
  const groupOf = (e: AuthFile.Entry) => Either.isRight(e.key) ? AuthKey.format(e.key.right.key) : `\0${e.rawKey}`
  const firstSeen = new Map<string, number>()
  usable.forEach((e, i) => firstSeen.has(groupOf(e)) || firstSeen.set(groupOf(e), i))
  const rank = (e: AuthFile.Entry) => Either.isRight(e.key) ? e.key.right.rank : 0
  return [...usable].sort((a, b) => firstSeen.get(groupOf(a))! - firstSeen.get(groupOf(b))! || rank(a) - rank(b))
}

/** Needs AuthStore and, from the ConfigProvider, `REGISTRY_AUTH_FILE` (optional). */
export const layer = Layer.effect(CredentialResolver, make)
