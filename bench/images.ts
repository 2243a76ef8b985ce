// The benchmark's images: OCI layouts on disk, their tars written by test/support/tar.ts and their
// index, config and manifest by test/support/images.ts. The layers are gzip'd at level 0 (stored
// blocks), which the test layouts are not: random bytes would not shrink, and level 0 is ~20× faster
// than level 1, which matters at 1 GiB per image and a fresh image for every push. Not uncompressed
// tars: skopeo gzips those on their way into an OCI layout or a registry, which would measure
// compression rather than the transfer.
import { createHash, randomFillSync } from "node:crypto"
import { createWriteStream } from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { createGzip } from "node:zlib"
import { addRef, blobPath, type Descriptor, ensureLayout, MEDIA_TYPES, tap, writeJsonBlob } from "../test/support/images.js"
import { busyboxEntries, hostPlatform } from "../test/support/layouts.js"
import { tarStream, type TarItem } from "../test/support/tar.js"

export const MiB = 2 ** 20
export const GiB = 2 ** 30

/** An image made here, with what its root filesystem holds (regular files and their bytes). */
export interface BenchImage {
  readonly dir: string
  readonly tag: string
  readonly manifest: string
  /** config first, then the layers */
  readonly blobs: ReadonlyArray<Descriptor>
  readonly layers: ReadonlyArray<Descriptor & { readonly diffId: string }>
  readonly content: { readonly files: number; readonly bytes: number }
}

/** An image pushed to the benchmark's registry as <repository>:<tag>. */
export interface PushedImage extends BenchImage {
  readonly repository: string
}

/** The entries of one layer, and the files and bytes they add to the root filesystem. */
export interface LayerSpec {
  readonly entries: Iterable<TarItem> | AsyncIterable<TarItem>
  readonly content: { readonly files: number; readonly bytes: number }
}

/** A layer of one file, `name`, of `size` random bytes, made in 4 MiB pieces as it is written. */
export const randomLayer = (size: number, name: string): LayerSpec => ({
  entries: [{
    name,
    content: {
      size,
      chunks: function*() {
        for (let left = size; left > 0; left -= 4 * MiB) yield randomFillSync(Buffer.allocUnsafe(Math.min(4 * MiB, left)))
      }
    }
  }],
  content: { files: 1, bytes: size }
})

/**
 * Joins a tar's chunks into pieces of ≥ 1 MiB: the tar writer yields a header, the content and its
 * padding apart, which for thousands of small files would be thousands of tiny writes into gzip.
 */
async function* coalesce(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Array<Buffer> = []
  let bytes = 0
  for await (const chunk of chunks) {
    pending.push(chunk)
    bytes += chunk.length
    if (bytes >= MiB) {
      yield Buffer.concat(pending)
      pending = []
      bytes = 0
    }
  }
  if (bytes > 0) yield Buffer.concat(pending)
}

/** Streams a layer into the layout: tar (hashed: diff_id) → gzip level 0 (hashed: digest) → file. */
const writeLayer = async (dir: string, layer: LayerSpec) => {
  const diffId = createHash("sha256")
  const digest = createHash("sha256")
  let size = 0
  const temp = path.join(dir, "blobs", `.layer-${process.pid}-${++temps}.tmp`)
  await pipeline(
    Readable.from(coalesce(tarStream(layer.entries))),
    tap((chunk) => diffId.update(chunk)),
    createGzip({ level: 0, chunkSize: MiB }),
    tap((chunk) => {
      digest.update(chunk)
      size += chunk.length
    }),
    createWriteStream(temp)
  )
  const written = { mediaType: MEDIA_TYPES.layer, digest: `sha256:${digest.digest("hex")}`, size, diffId: `sha256:${diffId.digest("hex")}` }
  await fsp.rename(temp, blobPath(dir, written.digest))
  return written
}
let temps = 0

/**
 * An OCI layout at `dir` with one image, tagged `tag`: the layers of `base` (an image made here,
 * whose blobs are hard-linked or copied in), if given, then `layers`, in order.
 */
export const makeLayout = async (dir: string, tag: string, layers: ReadonlyArray<LayerSpec>, base?: BenchImage): Promise<BenchImage> => {
  await ensureLayout(dir)
  const written = [...(base?.layers ?? [])]
  for (const layer of base?.layers ?? []) {
    const [from, to] = [blobPath(base?.dir ?? dir, layer.digest), blobPath(dir, layer.digest)]
    await fsp.link(from, to).catch(() => fsp.copyFile(from, to))
  }
  for (const layer of layers) written.push(await writeLayer(dir, layer))
  const config = await writeJsonBlob(dir, {
    ...hostPlatform(),
    config: {},
    rootfs: { type: "layers", diff_ids: written.map((layer) => layer.diffId) }
  })
  const descriptors = written.map(({ mediaType, digest, size }) => ({ mediaType, digest, size }))
  const manifest = await writeJsonBlob(dir, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, ...config },
    layers: descriptors
  })
  await addRef(dir, tag, { mediaType: MEDIA_TYPES.manifest, ...manifest })
  const content = [base?.content ?? { files: 0, bytes: 0 }, ...layers.map((layer) => layer.content)].reduce(
    (sum, add) => ({ files: sum.files + add.files, bytes: sum.bytes + add.bytes })
  )
  return { dir, tag, manifest: manifest.digest, blobs: [{ mediaType: MEDIA_TYPES.config, ...config }, ...descriptors], layers: written, content }
}

/** An image of `layers` random layers adding up to `total` bytes: layer i holds one file, `random-<i>.bin`. */
export const makeImage = (dir: string, tag: string, total: number, layers: number): Promise<BenchImage> =>
  makeLayout(dir, tag, Array.from({ length: layers }, (_, i) => randomLayer(Math.floor(total / layers) + (i < total % layers ? 1 : 0), `random-${i}.bin`)))

/** Debian's busybox-static, the one program of the run cases' images. */
export const BUSYBOX = "/bin/busybox"

/**
 * An image whose last layer is test/support's busybox layer (/bin/busybox from this machine, its
 * applet links, /etc/passwd and /etc/group), after `base`'s layers if given. Its content counts the
 * base's files only: the run cases check no root filesystem.
 */
export const makeBusyboxImage = async (dir: string, tag: string, base?: BenchImage): Promise<BenchImage> =>
  makeLayout(dir, tag, [{ entries: await busyboxEntries(BUSYBOX), content: { files: 0, bytes: 0 } }], base)
