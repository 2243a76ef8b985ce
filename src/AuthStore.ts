/**
 * AuthStore: reads containers-auth.json files and writes microagent's own store
 * (`$HOME/.microagent/auth.json`) with locked, atomic, 0600 writes that keep what it does not own
 * ([C1]–[C3], [C9]). It knows nothing of resolution order.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as PlatformError from "@effect/platform/Error"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as AuthFile from "./domain/AuthFile.js"
import * as SafeFiles from "./storage/SafeFiles.js"
import { AuthFileError } from "./domain/Errors.js"
import * as Home from "./Home.js"

/** Far more than any containers-auth.json holds; a bound on what a file can make microagent read. */
const maxFileBytes = 4 * 1024 * 1024

export interface AuthStoreService {
  /** microagent's own store. */
  readonly path: string
  /** Reads any auth file; a missing one is empty (`exists: false`). */
  readonly load: (path: string) => Effect.Effect<AuthFile.AuthFile, AuthFileError>
  /** Stores credentials under a canonical key. */
  readonly upsert: (key: string, username: string, password: Redacted.Redacted<string>) => Effect.Effect<void, AuthFileError>
  /** Removes a canonical key and its aliases; returns how many entries went. */
  readonly remove: (key: string) => Effect.Effect<number, AuthFileError>
  /** Empties `auths`; returns how many entries went. */
  readonly removeAll: Effect.Effect<number, AuthFileError>
  /** How many times this store has changed its file: a reader that keeps what it read reads again when this moves. */
  readonly revision: Effect.Effect<number>
}

export class AuthStore extends Context.Tag("microagent/AuthStore")<AuthStore, AuthStoreService>() {}

export interface Options {
  /** After this long a lock file is taken to be left by a crashed process. */
  readonly staleLockAfter?: Duration.DurationInput
  /** How long to wait for another process's lock before giving up. */
  readonly lockTimeout?: Duration.DurationInput
}

export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const home = yield* Home.home
    const folder = path.join(home, ".microagent")
    const storePath = path.join(folder, "auth.json")
    const staleAfter = options.staleLockAfter ?? "10 seconds"
    const lockTimeout = options.lockTimeout ?? "30 seconds"

    const load = Effect.fn("AuthStore.load")(function*(file: string) {
      // A bound on what a file can make microagent read: /dev/zero never ends. A pipe (a FIFO,
      // `<(…)`) is read as it is: its writer is the user's own command, and it has no size to check.
      const info = yield* fs.stat(file).pipe(
        Effect.map((i): FileSystem.File.Info | undefined => i),
        Effect.catchTag("SystemError", (e) => e.reason === "NotFound" ? Effect.succeed(undefined) : Effect.fail(e)),
        Effect.mapError((e) => AuthFileError.of(file, `cannot read it (${SafeFiles.describe(e)})`))
      )
      if (info !== undefined && info.type !== "File" && info.type !== "FIFO") {
        return yield* AuthFileError.of(file, `it is not a file but a ${info.type === "Directory" ? "folder" : "device or socket"}`)
      }
      if (info !== undefined && Number(info.size) > maxFileBytes) {
        return yield* AuthFileError.of(file, `it is larger than ${maxFileBytes / 1024 / 1024} MiB, which no auth file is`)
      }
      const text = yield* fs.readFileString(file).pipe(
        Effect.map((t): string | undefined => t),
        Effect.catchTag("SystemError", (e) => e.reason === "NotFound" ? Effect.succeed(undefined) : Effect.fail(e)),
        Effect.mapError((e) => AuthFileError.of(file, `cannot read it (${SafeFiles.describe(e)})`))
      )
      if (text === undefined) return AuthFile.empty(file)
      // A pipe has no size to check before it is read.
      if (text.length > maxFileBytes) {
        return yield* AuthFileError.of(file, `it is larger than ${maxFileBytes / 1024 / 1024} MiB, which no auth file is`)
      }
      return yield* Either.mapLeft(AuthFile.parse(file, text), (reason) => AuthFileError.of(file, reason))
    })

    const failWith = (reason: string) => (e: PlatformError.PlatformError) => AuthFileError.of(storePath, `${reason} (${SafeFiles.describe(e)})`)

    /**
     * Writes go to the link's target, so a store that is a symbolic link stays one ([C2]), also
     * when the target does not exist yet (a dangling link): the file is created where it points.
     */
    const writeTarget = Effect.gen(function*() {
      let current = storePath
      for (let hops = 0; hops <= 40; hops++) {
        const real = yield* fs.realPath(current).pipe(
          Effect.map((p): string | undefined => p),
          Effect.catchIf(SafeFiles.isNotFound, () => Effect.succeed(undefined))
        )
        if (real !== undefined) return real
        // Not there: either a plain file yet to be made, or a link to something not there yet.
        const link = yield* fs.readLink(current).pipe(
          Effect.map((p): string | undefined => p),
          Effect.catchTag("SystemError", () => Effect.succeed(undefined))
        )
        if (link === undefined) return current
        current = path.resolve(path.dirname(current), link)
      }
      return yield* Effect.fail(new PlatformError.SystemError({
        reason: "BadResource",
        module: "FileSystem",
        method: "readLink",
        pathOrDescriptor: storePath,
        description: "too many levels of symbolic links"
      }))
    }).pipe(Effect.mapError(failWith("cannot resolve the store's path")))

    const ensureFolder = Effect.gen(function*() {
      yield* fs.makeDirectory(folder, { recursive: true, mode: 0o700 })
      const info = yield* fs.stat(folder)
      if ((info.mode & 0o077) !== 0) {
        yield* fs.chmod(folder, 0o700)
        yield* Effect.logWarning(`${folder} was accessible to others (mode ${modeString(info.mode)}); it is now 0700`)
      }
    }).pipe(Effect.mapError(failWith(`cannot prepare ${folder}`)))

    const withLock = <A, E>(target: string, body: Effect.Effect<A, E>) => {
      const lockPath = `${target}.lock`
      return SafeFiles.withLockFile(fs, lockPath, { staleAfter, timeout: lockTimeout })(body).pipe(
        Effect.catchIf((e): e is SafeFiles.LockFailed => e instanceof SafeFiles.LockFailed, (e) =>
          Effect.fail(
            e.cause === undefined
              ? AuthFileError.of(storePath, `it is locked by another process (${lockPath}); try again`)
              : failWith("cannot take the lock")(e.cause)
          ))
      )
    }

    /** A crash leaves the old file or the new one ([C2]). */
    const writeAtomic = (target: string, text: string) =>
      SafeFiles.writeAtomic(fs, target, new TextEncoder().encode(text), { tempDir: path.dirname(target), mode: 0o600 }).pipe(
        Effect.mapError(failWith("cannot write it"))
      )

    let revision = 0
    /** Counted whether or not the write went through: after a failed one the file may be either. */
    const bump = Effect.sync(() => void revision++)

    /** Read-modify-write under the lock; a change that changes nothing writes nothing ([C2]). */
    const modify = <A>(change: (file: AuthFile.AuthFile) => { readonly document: AuthFile.AuthFile["document"]; readonly result: A }) =>
      Effect.gen(function*() {
        yield* ensureFolder
        const target = yield* writeTarget
        return yield* withLock(
          target,
          Effect.gen(function*() {
            const current = yield* load(target)
            const { document, result } = change(current)
            const before = current.exists ? yield* fs.stat(target).pipe(Effect.mapError(failWith("cannot stat it"))) : undefined
            const loose = before !== undefined && (before.mode & 0o777) !== 0o600
            const changed = AuthFile.serialize(document) !== AuthFile.serialize(current.document)
            if (changed) yield* writeAtomic(target, AuthFile.serialize(document)).pipe(Effect.ensuring(bump))
            else if (loose) yield* fs.chmod(target, 0o600).pipe(Effect.mapError(failWith("cannot change its mode")))
            if (loose) yield* Effect.logWarning(`${storePath} had mode ${modeString(before.mode)}; it is now 0600`)
            return result
          })
        )
      })

    return AuthStore.of({
      path: storePath,
      load,
      upsert: Effect.fn("AuthStore.upsert")(function*(key, username, password) {
        yield* modify((file) => ({ document: AuthFile.upsert(file, key, username, password), result: undefined }))
      }),
      remove: Effect.fn("AuthStore.remove")(function*(key) {
        return yield* modify((file) => {
          const { document, removed } = AuthFile.remove(file, key)
          return { document, result: removed }
        })
      }),
      removeAll: modify((file) => ({ document: AuthFile.removeAll(file), result: file.entries.length })).pipe(
        Effect.withSpan("AuthStore.removeAll")
      ),
      revision: Effect.sync(() => revision)
    })
  })

const modeString = (mode: number): string => `0${(mode & 0o777).toString(8)}`

export const layerWith = (options: Options) => Layer.effect(AuthStore, make(options))

/** Needs FileSystem, Path and `HOME` from the ConfigProvider. */
export const layer = layerWith({})
