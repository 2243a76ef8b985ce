/**
 * Node's blob file I/O for Images (see ../BlobFiles.ts): downloads written through a queued,
 * early-flushed write stream (./FileSink.ts), uploads read through a few reused buffers
 * (./PooledRead.ts) and piped straight into the request. What the CLI uses; `microagent/node`
 * offers it to programs.
 */
import * as Layer from "effect/Layer"
import { constants } from "node:fs"
import { PassThrough, Transform } from "node:stream"
import { BlobFiles, type BlobFilesService } from "../BlobFiles.js"
import { ImageStoreError } from "../domain/Errors.js"
import * as Body from "../registry/Body.js"
import * as FileSink from "./FileSink.js"
import * as PooledRead from "./PooledRead.js"

/**
 * The file of a blob being pushed, checked by `check` as it goes; the last chunk is held back
 * until the end check passes, so a registry never receives the whole of a body that is wrong.
 * The file is opened without following a link put in its place since it was checked.
 */
const uploadSource: NonNullable<BlobFilesService["uploadSource"]> = (file, descriptor, check, report) => {
  let held: Uint8Array | undefined
  const guard = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const problem = check.add(chunk)
      if (problem !== undefined) {
        report(problem)
        return callback(problem)
      }
      const out = held
      held = chunk
      callback(null, out)
    },
    flush(callback) {
      const problem = check.end()
      if (problem !== undefined) {
        report(problem)
        return callback(problem)
      }
      callback(null, held)
    }
  })
  const { recycle, stream: source } = PooledRead.open(file, constants.O_RDONLY | constants.O_NOFOLLOW)
  source.on("error", (cause) => {
    const problem = ImageStoreError.of(file, `blob ${descriptor.digest} cannot be read (${cause.message})`)
    report(problem)
    guard.destroy(problem)
  })
  // Closing the guard (the request ended or failed) closes the file too.
  guard.on("close", () => source.destroy())
  // The guard passes the file's chunks on as they are, so what it sends can go back to the file.
  return Body.withRecycle(source.pipe(guard), recycle)
}

/** Enough to keep the upload busy while the next chunks arrive; bounded, so memory stays flat. */
const relayBuffer = 1024 * 1024

/**
 * A blob relayed from a download into an upload through one Node stream, with backpressure both
 * ways: the download waits while the upload's buffer is full, and stops once the upload ends.
 */
const relay: NonNullable<BlobFilesService["relay"]> = (start) => {
  const pass = new PassThrough({ highWaterMark: relayBuffer })
  let closed = false
  let waiting: (() => void) | undefined
  const wake = () => {
    const resume = waiting
    waiting = undefined
    resume?.()
  }
  pass.on("drain", wake)
  const download = start((chunk) => {
    if (closed) throw new Error("the upload ended")
    if (pass.write(chunk)) return
    return new Promise<void>((resolve) => {
      waiting = resolve
    })
  })
  pass.on("close", () => {
    closed = true
    wake()
    download.cancel()
  })
  download.done.then(() => pass.end(), (cause: unknown) => pass.destroy(cause instanceof Error ? cause : new Error(String(cause))))
  return pass
}

export const layer = Layer.succeed(BlobFiles, { sink: FileSink.open, uploadSource, relay })
