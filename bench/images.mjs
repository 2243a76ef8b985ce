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

/** A ustar header: a regular file (`type` "0"), a directory ("5") or a symlink ("2", to `linkname`), owned by root, mtime 0. */
export const tarHeader = ({ name, size = 0, type = "0", mode = { 2: 0o777, 5: 0o755 }[type] ?? 0o644, linkname = "" }) => {
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
  put(157, 100, linkname)
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

/** The layers of `base`, an image made here, as `writeLayer` returns them: each blob hard-linked (or copied) into `dir`. */
const baseLayers = async (dir, base) => {
  const read = async (digest) => JSON.parse(await fsp.readFile(blobFile(base.dir, digest), "utf8"))
  const manifest = await read(base.manifest)
  const config = await read(manifest.config.digest)
  return Promise.all(manifest.layers.map(async (layer, i) => {
    await fsp.link(blobFile(base.dir, layer.digest), blobFile(dir, layer.digest))
      .catch(() => fsp.copyFile(blobFile(base.dir, layer.digest), blobFile(dir, layer.digest)))
    return { layer, diffId: config.rootfs.diff_ids[i] }
  }))
}

/**
 * An OCI layout at `dir` with one image, tagged `tag`, whose layers are `layers` (each an iterable of
 * tar chunks), in order; after those of `base` (an image made here, whose blobs are linked in), if given.
 */
export const makeLayout = async (dir, tag, layers, base) => {
  await fsp.mkdir(path.join(dir, "blobs", "sha256"), { recursive: true })
  await fsp.writeFile(path.join(dir, "oci-layout"), '{"imageLayoutVersion":"1.0.0"}')
  const written = base === undefined ? [] : await baseLayers(dir, base)
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

/** Debian's busybox-static, the one program of the run cases' images. */
export const BUSYBOX = "/bin/busybox"

/** A layer holding /bin/busybox (BUSYBOX's bytes) and /bin/true, a symlink to it. */
export function* busyboxLayer() {
  const bytes = fs.readFileSync(BUSYBOX)
  yield tarHeader({ name: "bin/", type: "5" })
  yield tarHeader({ name: "bin/busybox", size: bytes.length, mode: 0o755 })
  yield bytes
  yield Buffer.concat([tarPadding(bytes.length), tarHeader({ name: "bin/true", type: "2", linkname: "busybox" }), tarEnd()])
}

/**
 * An OCI layout at `dir` with one image, tagged `tag`: `base`'s layers (an image made here, e.g. by
 * makeImage), if given, then busyboxLayer().
 */
export const makeBusyboxImage = (dir, tag, base) => makeLayout(dir, tag, [busyboxLayer()], base)
