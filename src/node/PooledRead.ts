/**
 * A file read through a few buffers that its reader hands back once done with each chunk
 * (`recycle`), for the files microagent reads whole: pushed blobs and layers being
 * applied. Node's `createReadStream` allocates a new buffer per read, and V8 frees those only at
 * its next collection, so a gigabyte read that way left tens of MiB of them waiting: a 4-layer
 * 1 GiB push peaked at ~115 MiB, and at 89–98 MiB with this (docs/performance.md). A reader that
 * never hands chunks back gets fresh buffers, as from `createReadStream`.
 */
import { close, open as openFile, read } from "node:fs"
import { Readable } from "node:stream"
import type * as Body from "../registry/Body.js"

/** Read size: large enough that per-chunk costs vanish. */
export const chunkSize = 256 * 1024

/** Buffers kept for reuse: about as many as are in flight between the disk and the reader. */
const kept = 8

/**
 * Opens `file` with the numeric `flags`; the file is closed when the stream ends or is destroyed.
 * `recycle` takes back a chunk its reader is done with.
 */
export const open = (file: string, flags: number): { readonly stream: Readable; readonly recycle: Body.Recycle } => {
  const free: Array<Buffer> = []
  const ours = new WeakSet<ArrayBufferLike>()
  let fd: number | undefined
  let position = 0
  // A read in flight when the stream is destroyed: the file is closed once it returns.
  let reading = false
  let closeAfterRead: (() => void) | undefined
  const stream = new Readable({
    highWaterMark: chunkSize,
    construct(callback) {
      openFile(file, flags, (cause, opened) => {
        fd = opened
        callback(cause)
      })
    },
    read() {
      const buffer = free.pop() ?? Buffer.allocUnsafeSlow(chunkSize)
      ours.add(buffer.buffer)
      reading = true
      read(fd!, buffer, 0, buffer.length, position, (cause, bytes) => {
        reading = false
        if (closeAfterRead !== undefined) return closeAfterRead()
        if (cause !== null) return stream.destroy(cause)
        position += bytes
        if (bytes === 0) free.push(buffer)
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
  const recycle: Body.Recycle = (chunk) => {
    if (free.length < kept && ours.has(chunk.buffer)) free.push(Buffer.from(chunk.buffer, 0, chunkSize))
  }
  return { stream, recycle }
}
