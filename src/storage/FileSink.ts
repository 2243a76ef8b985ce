/**
 * A file written through a Node write stream, for blobs arriving from the network.
 *
 * Chunks queue up to a high-water mark while earlier ones are being written (several at once,
 * with writev), so the network and the disk work at the same time. `FileSystem.sink` waits for
 * each write before it takes the next chunk, which on a 1 GiB pull cost more than the writes
 * themselves (docs/performance.md).
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { createWriteStream, type WriteStream } from "node:fs"
import { ImageStoreError } from "../domain/Errors.js"

export interface FileSink {
  /** Takes a chunk; returns a promise only when the queue is full (wait for it), or the file failed. */
  readonly write: (chunk: Uint8Array) => void | Promise<void>
  /** Writes what is queued and closes the file. */
  readonly close: Effect.Effect<void, ImageStoreError>
}

/** Enough to keep the disk busy while the next chunks arrive; bounded, so memory stays flat. */
const highWaterMark = 1024 * 1024

const cannotWrite = (path: string, cause: Error) => ImageStoreError.of(path, `cannot write it (${cause.message})`)

/** Opens `path` for writing, truncated; the scope closes it if `close` was not reached. */
export const open = (path: string): Effect.Effect<FileSink, ImageStoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<WriteStream, ImageStoreError>((resume) => {
      const stream = createWriteStream(path, { flags: "w", highWaterMark })
      const onError = (cause: Error) => resume(Effect.fail(cannotWrite(path, cause)))
      stream.once("error", onError)
      stream.once("ready", () => {
        stream.off("error", onError)
        resume(Effect.succeed(stream))
      })
    }),
    (stream) => Effect.sync(() => stream.destroy())
  ).pipe(Effect.map((stream) => {
    let failure: Error | undefined
    stream.on("error", (cause) => {
      failure ??= cause
    })
    const write = (chunk: Uint8Array): void | Promise<void> => {
      if (failure !== undefined) return Promise.reject(cannotWrite(path, failure))
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
    const close = Effect.async<void, ImageStoreError>((resume) => {
      if (failure !== undefined) return resume(Effect.fail(cannotWrite(path, failure)))
      // An error is followed by `close`: whichever comes first settles it.
      stream.once("close", () => resume(failure === undefined ? Effect.void : Effect.fail(cannotWrite(path, failure))))
      stream.end()
    })
    return { write, close }
  }))
