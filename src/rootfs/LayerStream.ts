/**
 * One layer from the store into the applier: file → digest check → decompressor → diff_id
 * check → tar reader → applier, streaming, so memory stays flat in layer size ([F7]). Both
 * digests are checked at the end; a mismatch fails the build, whose caller then removes all it
 * wrote ([F3]).
 *
 * Decompressors: gzip is Node's zlib, which runs on the thread pool beside the main thread.
 * Node 20 has no zstd, so zstd layers go through Debian's `zstd` command: native, on the other
 * core, and bounded by its default 128 MiB window limit, where the pure-JS decoder (fzstd)
 * allocates whatever window a frame header claims, up to 2 GiB.
 */
import { spawn } from "node:child_process"
import { channel } from "node:diagnostics_channel"
import { constants } from "node:fs"
import { pipeline, type Transform } from "node:stream"
import { Writable } from "node:stream"
import { createGunzip } from "node:zlib"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Digest from "../domain/Digest.js"
import * as PooledRead from "../node/PooledRead.js"
import type * as Body from "../registry/Body.js"
import { DigestMismatch, ImageStoreError, LayerRejected, ToolMissing } from "../domain/Errors.js"
import type * as Manifest from "../domain/Manifest.js"
import { type Applier, Rejected, ToolNotFound } from "./Applier.js"
import * as TarReader from "./TarReader.js"

export type Compression = "none" | "gzip" | "zstd"

const compressions: Record<string, Compression> = {
  "application/vnd.oci.image.layer.v1.tar": "none",
  "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar": "none",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
  "application/vnd.docker.image.rootfs.diff.tar": "none",
  "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
  "application/vnd.docker.image.rootfs.diff.tar.zstd": "zstd"
}

export const compression = (mediaType: string): Compression | undefined => compressions[mediaType]

const chunk = PooledRead.chunkSize

/**
 * Node's gunzip, handing each compressed chunk back to `recycle` once it is inflated: zlib calls
 * a chunk's callback only when it has taken in all of it. The tar reader gets no such say over
 * uncompressed layers (it may keep slices of what it is given), so those read fresh buffers.
 */
const inflating = (recycle: Body.Recycle) => {
  const inflate = createGunzip({ chunkSize: chunk }) as unknown as Transform
  const transform = inflate._transform.bind(inflate)
  inflate._transform = (input: Buffer, encoding, done) =>
    transform(input, encoding, (error, output) => {
      if (error === undefined || error === null) recycle(input)
      done(error, output)
    })
  return inflate
}

export interface LayerInput {
  readonly file: string
  readonly descriptor: Manifest.Descriptor
  /** The config's `rootfs.diff_ids` entry: the digest of the uncompressed tar. */
  readonly diffId: string | undefined
  /** Compressed bytes read so far, for progress. */
  readonly onBytes?: ((bytes: number) => void) | undefined
}

export type LayerError = LayerRejected | DigestMismatch | ToolMissing | ImageStoreError

/** Told of each layer applied: the CLI's launcher tunes the heap for bulk work on the first (boot.ts). */
const layerStarts = channel("microagent.rootfs.layer")

export const apply = (input: LayerInput, applier: Applier): Effect.Effect<void, LayerError> =>
  Effect.suspend(() => {
    if (layerStarts.hasSubscribers) layerStarts.publish(input.descriptor.digest)
    const { descriptor } = input
    const layer = descriptor.digest
    const kind = compression(descriptor.mediaType)
    if (kind === undefined) return Effect.fail(LayerRejected.of(layer, "", `unsupported layer media type ${descriptor.mediaType}`))
    const digest = Digest.parse(descriptor.digest)
    if (Either.isLeft(digest)) return Effect.fail(LayerRejected.of(layer, "", digest.left))
    const diffId = input.diffId === undefined ? undefined : Digest.parse(input.diffId)
    if (diffId !== undefined && Either.isLeft(diffId)) return Effect.fail(LayerRejected.of(layer, "", `its diff_id: ${diffId.left}`))

    return Effect.async<void, LayerError>((resume) => {
      const packed = Digest.hasher(digest.right.algorithm)
      const unpacked = diffId === undefined ? undefined : Digest.hasher(diffId.right.algorithm)
      let packedBytes = 0
      let settled = false
      const settle = (outcome: Effect.Effect<void, LayerError>) => {
        if (settled) return
        settled = true
        stop()
        resume(outcome)
      }

      const reader = TarReader.make({ entry: applier.entry, data: applier.data, end: applier.end })
      const { recycle, stream: source } = PooledRead.open(input.file, constants.O_RDONLY)
      source.on("data", (bytes: string | Buffer) => {
        if (typeof bytes === "string") return
        packed.update(bytes)
        packedBytes += bytes.length
        input.onBytes?.(bytes.length)
        // One byte past the descriptor's size is already a mismatch ([H2]).
        if (packedBytes > descriptor.size) fail(new Error("size"))
      })

      const sink = new Writable({
        highWaterMark: chunk,
        write(bytes: Buffer, _encoding, done) {
          try {
            unpacked?.update(bytes)
            reader.push(bytes)
            done()
          } catch (e) {
            done(e as Error)
          }
        }
      })

      const child = kind === "zstd"
        ? spawn("zstd", ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] })
        : undefined
      let childError = ""
      child?.stderr?.on("data", (b: Buffer) => void (childError = (childError + b.toString()).slice(-1000)))

      const stop = () => {
        source.destroy()
        sink.destroy()
        child?.kill("SIGKILL")
      }

      const mismatch = (what: string, expected: string, actual: string) =>
        new DigestMismatch({ expected, actual, message: `layer ${layer}: ${what} does not match (expected ${expected}, got ${actual}); nothing was kept` })

      function fail(error: unknown) {
        if (error instanceof Rejected) return settle(Effect.fail(LayerRejected.of(layer, error.entry, error.reason)))
        if (error instanceof ToolNotFound) return settle(Effect.fail(ToolMissing.of(error.tool, error.pkg, "to apply this layer")))
        if (error instanceof TarReader.TarError) return settle(Effect.fail(LayerRejected.of(layer, "", error.message)))
        if (error instanceof Error && error.message === "size") {
          return settle(Effect.fail(mismatch("its size", String(descriptor.size), `more than ${descriptor.size} bytes`)))
        }
        const code = (error as NodeJS.ErrnoException)?.code
        if (code === "ENOENT" && child !== undefined && childError === "" && !child.pid) {
          return settle(Effect.fail(ToolMissing.of("zstd", "zstd", "to decompress zstd layers")))
        }
        if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") {
          return settle(Effect.fail(ImageStoreError.of(input.file, `cannot read the layer (${code})`)))
        }
        const reason = childError.trim() || (error instanceof Error ? error.message : String(error))
        return settle(Effect.fail(LayerRejected.of(layer, "", `cannot decompress it (${kind}): ${reason}`)))
      }

      const finished = () => {
        try {
          reader.finish()
        } catch (e) {
          return fail(e)
        }
        const got = packed.digest("hex")
        if (packedBytes !== descriptor.size) return settle(Effect.fail(mismatch("its size", String(descriptor.size), String(packedBytes))))
        if (got !== digest.right.hex) return settle(Effect.fail(mismatch("its digest", descriptor.digest, `${digest.right.algorithm}:${got}`)))
        if (unpacked !== undefined && diffId !== undefined && Either.isRight(diffId)) {
          const uncompressed = unpacked.digest("hex")
          if (uncompressed !== diffId.right.hex) {
            return settle(Effect.fail(mismatch("its uncompressed content (diff_id)", input.diffId!, `${diffId.right.algorithm}:${uncompressed}`)))
          }
        }
        settle(Effect.void)
      }

      if (child === undefined) {
        const stages = kind === "gzip" ? [source, inflating(recycle), sink] as const : [source, sink] as const
        pipeline(stages as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream], (error) => error ? fail(error) : finished())
      } else {
        child.on("error", fail)
        pipeline(source, child.stdin!, (error) => { if (error && (error as NodeJS.ErrnoException).code !== "EPIPE") fail(error) })
        let exited: number | null | undefined
        let drained = false
        const both = () => {
          if (exited === undefined || !drained) return
          if (exited !== 0) return fail(new Error(`zstd exited with ${exited}`))
          finished()
        }
        child.on("exit", (code) => {
          exited = code
          both()
        })
        pipeline(child.stdout!, sink, (error) => {
          if (error) return fail(error)
          drained = true
          both()
        })
      }
      return Effect.sync(stop)
    })
  })
