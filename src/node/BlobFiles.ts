/**
 * Node's blob file I/O for Images (see ../BlobFiles.ts): downloads written through a queued,
 * early-flushed write stream (./FileSink.ts), uploads read by a file stream piped straight into
 * the request. What the CLI uses; `microagent/node` offers it to programs.
 */
import * as Layer from "effect/Layer"
import { close, constants, open, read } from "node:fs"
import { PassThrough, Readable, Transform } from "node:stream"
import { BlobFiles, type BlobFilesService } from "../BlobFiles.js"
import { ImageStoreError } from "../domain/Errors.js"
import * as Body from "../registry/Body.js"
import * as FileSink from "./FileSink.js"

/** Read size of a pushed file: large enough that per-chunk costs vanish, bounded per blob. */
const uploadChunk = 256 * 1024

/** Buffers kept for reuse per pushed file: about as many as are in flight between disk and socket. */
const keptBuffers = 8

/**
 * A file read into buffers that come back once sent (`Body.withRecycle`), so a push reads a
 * gigabyte through a few of them instead of leaving a new one per read for the collector: a
 * 4-layer 1 GiB push peaked at ~115 MiB with a fresh buffer per read. A reader that never
 * hands chunks back gets fresh buffers, as from `createReadStream`.
 */
const pooledRead = (file: string, flags: number) => {
  const kept: Array<Buffer> = []
  const ours = new WeakSet<ArrayBufferLike>()
  let fd: number | undefined
  let position = 0
  // A read in flight when the stream is destroyed: the file is closed once it returns.
  let reading = false
  let closeAfterRead: (() => void) | undefined
  const stream = new Readable({
    highWaterMark: uploadChunk,
    construct(callback) {
      open(file, flags, (cause, opened) => {
        fd = opened
        callback(cause)
      })
    },
    read() {
      const buffer = kept.pop() ?? Buffer.allocUnsafeSlow(uploadChunk)
      ours.add(buffer.buffer)
      reading = true
      read(fd!, buffer, 0, buffer.length, position, (cause, bytes) => {
        reading = false
        if (closeAfterRead !== undefined) return closeAfterRead()
        if (cause !== null) return stream.destroy(cause)
        position += bytes
        if (bytes === 0) kept.push(buffer)
        stream.push(bytes === 0 ? null : buffer.subarray(0, bytes))
      })
    },
    destroy(cause, callback) {
      if (fd === undefined) return callback(cause)
      const shut = () => close(fd!, () => callback(cause))
      if (reading) closeAfterRead = shut
      else shut()
    }
  })
  return Body.withRecycle(stream, (chunk) => {
    if (kept.length < keptBuffers && ours.has(chunk.buffer)) kept.push(Buffer.from(chunk.buffer, 0, uploadChunk))
  })
}

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
  const source = pooledRead(file, constants.O_RDONLY | constants.O_NOFOLLOW)
  source.on("error", (cause) => {
    const problem = ImageStoreError.of(file, `blob ${descriptor.digest} cannot be read (${cause.message})`)
    report(problem)
    guard.destroy(problem)
  })
  // Closing the guard (the request ended or failed) closes the file too.
  guard.on("close", () => source.destroy())
  // The guard passes the file's chunks on as they are, so what it sends can go back to the file.
  return Body.withRecycle(source.pipe(guard), Body.recycleOf(source)!)
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
