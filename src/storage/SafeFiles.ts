/**
 * Crash-safe file updates shared by AuthStore and ImageStore ([C2], [I2]): an exclusive lock
 * file beside the target, and atomic replacement (temp file, fsync, chmod, rename).
 */
import type { PlatformError } from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
// node:crypto for unguessable temp and lock names; the platform has no random-bytes service.
import { randomBytes } from "node:crypto"

export const isNotFound = (e: PlatformError): boolean => e._tag === "SystemError" && e.reason === "NotFound"
export const isAlreadyExists = (e: PlatformError): boolean => e._tag === "SystemError" && e.reason === "AlreadyExists"

/** A file system failure in words a user can act on. */
export const describe = (error: PlatformError): string =>
  error._tag === "SystemError"
    ? error.reason === "PermissionDenied" ? "permission denied" : `${error.reason}: ${error.description ?? error.message}`
    : error.message

export const randomName = (): string => randomBytes(12).toString("hex")

/** The lock could not be taken: another holder kept it past the timeout, or the file system refused. */
export class LockFailed extends Data.TaggedError("LockFailed")<{
  readonly lockPath: string
  readonly cause: PlatformError | undefined
}> {}

export interface LockOptions {
  /** After this long a lock file is taken to be left by a crashed process. */
  readonly staleAfter: Duration.DurationInput
  /** How long to wait for another process's lock before giving up. */
  readonly timeout: Duration.DurationInput
}

/**
 * Runs `body` holding `lockPath`, created exclusively with a token unique to this holder. A
 * stale lock is broken; the lock is removed only while it is still ours (it may have been broken
 * as stale meanwhile). Waiting between attempts is interruptible.
 */
export const withLockFile = (fs: FileSystem.FileSystem, lockPath: string, options: LockOptions) => {
  const staleAfter = Duration.toMillis(options.staleAfter)
  const attempt = Effect.suspend(() => {
    const token = `${process.pid} ${randomName()}\n`
    return fs.writeFileString(lockPath, token, { flag: "wx", mode: 0o600 }).pipe(
      Effect.as(token),
      Effect.catchIf(isAlreadyExists, () =>
        fs.stat(lockPath).pipe(
          Effect.flatMap((info) => {
            const age = Date.now() - (info.mtime._tag === "Some" ? info.mtime.value.getTime() : 0)
            return age > staleAfter ? fs.remove(lockPath, { force: true }) : Effect.void
          }),
          Effect.catchIf(isNotFound, () => Effect.void),
          Effect.zipRight(Effect.fail("busy" as const))
        ))
    )
  })
  const unlock = (token: string) =>
    fs.readFileString(lockPath).pipe(
      Effect.flatMap((text) => text === token ? fs.remove(lockPath, { force: true }) : Effect.void),
      Effect.ignore
    )
  return <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<A, E | LockFailed, R> =>
    Effect.scoped(Effect.gen(function*() {
      yield* Effect.acquireRelease(attempt, unlock).pipe(
        Effect.retry({
          while: (e) => e === "busy",
          schedule: Schedule.jittered(Schedule.spaced("20 millis")).pipe(Schedule.upTo(options.timeout))
        }),
        Effect.mapError((e) => new LockFailed({ lockPath, cause: e === "busy" ? undefined : e }))
      )
      return yield* body
    }))
}

/**
 * Replaces `target` with `bytes`: a temp file in `tempDir` (same file system as the target),
 * fsync, chmod, rename. A crash leaves the old file or the new one, never a torn one.
 */
export const writeAtomic = (
  fs: FileSystem.FileSystem,
  target: string,
  bytes: Uint8Array,
  options: { readonly tempDir: string; readonly mode: number }
): Effect.Effect<void, PlatformError> =>
  Effect.suspend(() => {
    const temp = `${options.tempDir}/.${randomName()}.tmp`
    return Effect.scoped(Effect.gen(function*() {
      const file = yield* fs.open(temp, { flag: "wx", mode: options.mode })
      yield* file.writeAll(bytes)
      yield* file.sync
    })).pipe(
      // `mode` applies only on create and under the umask.
      Effect.zipRight(fs.chmod(temp, options.mode)),
      Effect.zipRight(fs.rename(temp, target)),
      Effect.ensuring(Effect.ignore(fs.remove(temp, { force: true })))
    )
  })
