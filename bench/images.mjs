// The benchmark's images (bench/run.mjs, bench/rootfs.mjs): OCI layouts made on disk whose layers are
// gzip'd tars written here, so every layer is new and nothing depends on the machine's tar. gzip level 0
// (stored blocks) keeps making a layer cheap. Not uncompressed tars: skopeo gzips those on their way into
// an OCI layout or a registry, which would measure compression rather than the transfer.
import { createHash, randomFillSync } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { createGzip } from "node:zlib"

export const MiB = 2 ** 20
export const GiB = 2 ** 30

export const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip"
}
export const blobFile = (dir, digest) => path.join(dir, "blobs", ...digest.split(":"))
const sha256 = (bytes) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`

/** A ustar header: a regular file (`type` "0") or a directory ("5"), owned by root, mtime 0. */
export const tarHeader = ({ name, size = 0, type = "0", mode = type === "5" ? 0o755 : 0o644 }) => {
  const header = Buffer.alloc(512)
  const put = (offset, length, text) => header.write(text, offset, length, "ascii")
  const octal = (value, width) => `${value.toString(8).padStart(width - 1, "0")}\0`
  put(0, 100, name)
  put(100, 8, octal(mode, 8))
  put(108, 8, "0000000\0")
  put(116, 8, "0000000\0")
  put(124, 12, octal(size, 12))
  put(136, 12, "00000000000\0")
  put(148, 8, " ".repeat(8)) // the checksum is summed with its own field as spaces
  put(156, 1, type)
  put(257, 8, "ustar\u000000")
  let sum = 0
  for (const byte of header) sum += byte
  put(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `)
  return header
}
/** Zeros after `size` bytes of content, up to the next 512-byte block. */
export const tarPadding = (size) => Buffer.alloc((512 - (size % 512)) % 512)
/** The two zero blocks that end a tar. */
export const tarEnd = () => Buffer.alloc(1024)

/** The chunks of a tar holding one file, `name`, of `size` random bytes. */
export function* tar(size, name = "random.bin") {
  yield tarHeader({ name, size })
  for (let left = size; left > 0; left -= 4 * MiB) yield randomFillSync(Buffer.allocUnsafe(Math.min(4 * MiB, left)))
  yield Buffer.concat([tarPadding(size), tarEnd()])
}

let temps = 0

/** Streams a layer (an iterable of tar chunks) into the layout: tar (hashed: diff_id) → gzip level 0 (hashed: digest) → file. */
const writeLayer = async (dir, chunks) => {
  const diffId = createHash("sha256")
  const digest = createHash("sha256")
  let written = 0
  const temp = path.join(dir, "blobs", `layer-${++temps}.tmp`)
  await pipeline(
    Readable.from(chunks, { objectMode: false }),
    async function* (source) {
      for await (const chunk of source) {
        diffId.update(chunk)
        yield chunk
      }
    },
    createGzip({ level: 0, chunkSize: MiB }), // stored blocks: random bytes would not shrink, and level 0 is ~20× faster than 1
    async function* (source) {
      for await (const chunk of source) {
        digest.update(chunk)
        written += chunk.length
        yield chunk
      }
    },
    fs.createWriteStream(temp)
  )
  const layer = { mediaType: MEDIA.layer, digest: `sha256:${digest.digest("hex")}`, size: written }
  await fsp.rename(temp, blobFile(dir, layer.digest))
  return { layer, diffId: `sha256:${diffId.digest("hex")}` }
}

const writeJson = async (dir, value) => {
  const bytes = Buffer.from(JSON.stringify(value))
  const digest = sha256(bytes)
  await fsp.writeFile(blobFile(dir, digest), bytes)
  return { digest, size: bytes.length }
}

/** An OCI layout at `dir` with one image, tagged `tag`, whose layers are `layers` (each an iterable of tar chunks), in order. */
export const makeLayout = async (dir, tag, layers) => {
  await fsp.mkdir(path.join(dir, "blobs", "sha256"), { recursive: true })
  await fsp.writeFile(path.join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}')
  const written = []
  for (const chunks of layers) written.push(await writeLayer(dir, chunks))
  const descriptors = written.map(({ layer }) => layer)
  const config = await writeJson(dir, {
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: written.map(({ diffId }) => diffId) }
  })
  const manifest = await writeJson(dir, {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, ...config },
    layers: descriptors
  })
  await fsp.writeFile(path.join(dir, "index.json"), JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [{ mediaType: MEDIA.manifest, ...manifest, annotations: { "org.opencontainers.image.ref.name": tag } }]
  }))
  return { dir, tag, manifest: manifest.digest, blobs: [config, ...descriptors], bytes: descriptors.reduce((sum, layer) => sum + layer.size, 0) }
}

/**
 * An OCI layout at `dir` with one image, tagged `tag`, of `layers` random layers adding up to `total`
 * bytes of content: layer i holds one file, `random-<i>.bin`. `content` is what its root filesystem holds.
 */
export const makeImage = async (dir, tag, total, layers) => {
  const sizes = Array.from({ length: layers }, (_, i) => Math.floor(total / layers) + (i < total % layers ? 1 : 0))
  const image = await makeLayout(dir, tag, sizes.map((size, i) => tar(size, `random-${i}.bin`)))
  return { ...image, content: { files: layers, bytes: total } }
}
