/**
 * A file written through a Node write stream, for blobs arriving from the network.
 *
 * Chunks queue up to a high-water mark while earlier ones are being written (several at once,
 * with writev), so the network and the disk work at the same time. `FileSystem.sink` waits for
 * each write before it takes the next chunk, which on a 1 GiB pull cost more than the writes
 * themselves (docs/performance.md).
 *
 * The file is flushed to disk as it grows, not only by the fsync before it is renamed into place
 * ([P5]): Linux starts writing dirty pages back only once they are ~10 % of memory, so a 1 GiB
 * pull used to wait ~0.6 s at the end for the disk, after the network was done.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createWriteStream, fdatasync, open as openFile, type WriteStream } from "node:fs"
import type { FileSink } from "../BlobFiles.js"
import { ImageStoreError } from "../domain/Errors.js"

/** Enough to keep the disk busy while the next chunks arrive; bounded, so memory stays flat. */
const highWaterMark = 1024 * 1024

/** How much is written between two flushes: few enough flushes to cost nothing, early enough to overlap the download. */
const flushEvery = 64 * 1024 * 1024

const cannotWrite = (path: string, cause: Error) => ImageStoreError.of(path, `cannot write it (${cause.message})`)

/** Opens `path` for writing, truncated; the scope closes it if `close` was not reached. */
export const open = (path: string): Effect.Effect<FileSink, ImageStoreError, Scope.Scope> =>
  Effect.acquireRelease(
    // Opened here rather than by the stream, so the descriptor is ours to flush.
    Effect.async<{ fd: number; stream: WriteStream }, ImageStoreError>((resume) => {
      openFile(path, "w", (cause, fd) =>
        resume(cause === null ? Effect.succeed({ fd, stream: createWriteStream(path, { fd, highWaterMark }) }) : Effect.fail(cannotWrite(path, cause)))
      )
    }),
    ({ stream }) => Effect.sync(() => stream.destroy())
  ).pipe(Effect.map(({ fd, stream }) => {
    let failure: Error | undefined
    stream.on("error", (cause) => {
      failure ??= cause
    })
    let unflushed = 0
    let flushing: Promise<void> | undefined
    // One flush at a time, of what was written so far; a failed one fails the file (EIO, ENOSPC).
    // A file that cannot be flushed at all (EINVAL: not a regular file) is only not flushed early:
    // the flush is for speed, the fsync before the rename is what keeps blobs whole.
    const flush = () =>
      new Promise<void>((resolve) =>
        fdatasync(fd, (cause) => {
          if (cause !== null && cause.code !== "EINVAL" && cause.code !== "ENOTSUP") failure ??= cause
          flushing = undefined
          resolve()
        })
      )
    const write = (chunk: Uint8Array): void | Promise<void> => {
      if (failure !== undefined) return Promise.reject(cannotWrite(path, failure))
      unflushed += chunk.length
      if (unflushed >= flushEvery && flushing === undefined) {
        unflushed = 0
        flushing = flush()
      }
      if (stream.write(chunk)) return
      return new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          stream.off("error", onError)
          resolve()
        }
        const onError = (cause: Error) => {
          stream.off("drain", onDrain)
          reject(cannotWrite(path, cause))
        }
        stream.once("drain", onDrain)
        stream.once("error", onError)
      })
    }
    // After the flush in flight, which must not outlive the file descriptor.
    const close = Effect.promise(() => flushing ?? Promise.resolve()).pipe(Effect.zipRight(Effect.async<void, ImageStoreError>((resume) => {
      if (failure !== undefined) return resume(Effect.fail(cannotWrite(path, failure)))
      // An error is followed by `close`: whichever comes first settles it.
      stream.once("close", () => resume(failure === undefined ? Effect.void : Effect.fail(cannotWrite(path, failure))))
      stream.end()
    })))
    return { write, close }
  }))
