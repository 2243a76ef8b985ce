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
 * Runs `body` holding `lockPath`, a file created exclusively holding a token unique to this
 * holder. The lock is released however `body` ends; a lock file that could not be written in
 * full (a full disk) is removed at once, so it never makes the next writer wait.
 *
 * A lock older than `staleAfter` is taken to be left by a crashed process and broken, without a
 * check-then-act race: breakers take turns under `<lock>.break`, check again there, and move
 * the lock aside before removing it; if what they moved is not the lock they judged stale (its
 * holder let go and another took it meanwhile), they put it back. Releasing moves the lock aside
 * the same way and removes it only when it still holds this holder's token. Waiting between
 * attempts is interruptible.
 */
export const withLockFile = (fs: FileSystem.FileSystem, lockPath: string, options: LockOptions) => {
  const staleAfter = Duration.toMillis(options.staleAfter)
  const breakPath = `${lockPath}.break`
  const newToken = () => `${process.pid} ${randomName()}\n`

  /** Creates `file` holding `token`, or fails (AlreadyExists when another holds it); never leaves it half made. */
  const create = (file: string, token: string) =>
    Effect.scoped(
      fs.open(file, { flag: "wx", mode: 0o600 }).pipe(
        Effect.flatMap((handle) =>
          handle.writeAll(new TextEncoder().encode(token)).pipe(
            Effect.tapError(() => Effect.ignore(fs.remove(file, { force: true })))
          )
        )
      )
    )

  /** Removes `file` only if it still holds `token`; anything else found there is put back. */
  const removeIfHolds = (file: string, token: string) =>
    Effect.gen(function*() {
      const aside = `${file}.${randomName()}.old`
      const moved = yield* fs.rename(file, aside).pipe(Effect.as(true), Effect.catchIf(isNotFound, () => Effect.succeed(false)))
      if (!moved) return
      const found = yield* fs.readFileString(aside).pipe(Effect.orElseSucceed(() => undefined))
      if (found !== token) yield* Effect.ignore(fs.link(aside, file))
      yield* fs.remove(aside, { force: true })
    }).pipe(Effect.ignore)

  const isStale = (file: string) =>
    fs.stat(file).pipe(
      Effect.map((info) => Date.now() - (info.mtime._tag === "Some" ? info.mtime.value.getTime() : 0) > staleAfter),
      Effect.catchIf(isNotFound, () => Effect.succeed(false))
    )

  /** What a stale `file` holds, read before judging it, so the judgement is about that very file. */
  const staleContent = (file: string) =>
    Effect.gen(function*() {
      const content = yield* fs.readFileString(file).pipe(
        Effect.map((text): string | undefined => text),
        Effect.catchIf(isNotFound, () => Effect.succeed(undefined))
      )
      return content !== undefined && (yield* isStale(file)) ? content : undefined
    })

  /** Breaks `lockPath` if it is stale; one breaker at a time. */
  const breakIfStale = Effect.gen(function*() {
    if (!(yield* isStale(lockPath))) return
    const turn = newToken()
    const ours = yield* create(breakPath, turn).pipe(
      Effect.as(true),
      Effect.catchIf(isAlreadyExists, () =>
        // A breaker that crashed in its turn (a matter of milliseconds) left this behind.
        staleContent(breakPath).pipe(
          Effect.flatMap((left) => left === undefined ? Effect.void : removeIfHolds(breakPath, left)),
          Effect.as(false)
        ))
    )
    if (!ours) return
    yield* staleContent(lockPath).pipe(
      Effect.flatMap((content) => content === undefined ? Effect.void : removeIfHolds(lockPath, content)),
      Effect.ensuring(removeIfHolds(breakPath, turn))
    )
  })

  const attempt = Effect.suspend(() => {
    const token = newToken()
    return create(lockPath, token).pipe(
      Effect.as(token),
      Effect.catchIf(isAlreadyExists, () => breakIfStale.pipe(Effect.zipRight(Effect.fail("busy" as const))))
    )
  })
  return <A, E, R>(body: Effect.Effect<A, E, R>): Effect.Effect<A, E | LockFailed, R> =>
    Effect.scoped(Effect.gen(function*() {
      yield* Effect.acquireRelease(attempt, (token) => removeIfHolds(lockPath, token)).pipe(
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
