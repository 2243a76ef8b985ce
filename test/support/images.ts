/**
 * Test images: OCI image layouts (image-layout spec) built from scratch with Node, and skopeo to
 * push them to / inspect them in a test registry (see ./registry.ts).
 *
 * Each layer is a valid gzip'd tar holding one file of random bytes, so its size is predictable
 * (gzip level 1 cannot shrink random data: a blob is its file size plus ~0.1 % and 1.5 KiB of tar
 * framing) and no two layers ever share a digest. Layers are streamed to disk, so large sizes cost
 * no memory.
 */
import { execFile } from "node:child_process"
import { createHash, randomBytes, randomFillSync } from "node:crypto"
import { createWriteStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Readable, Transform, type TransformCallback } from "node:stream"
import { pipeline } from "node:stream/promises"
import { promisify } from "node:util"
import { createGzip } from "node:zlib"

export const MEDIA_TYPES = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip"
} as const

export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

export interface Platform {
  readonly os: string
  readonly architecture: string
  readonly variant?: string
}

export interface Descriptor {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
}

export interface BuiltLayer extends Descriptor {
  /** sha256 of the uncompressed tar, as listed in the config's rootfs.diff_ids */
  readonly diffId: string
  /** size of the random file inside the tar */
  readonly contentSize: number
}

/** One image manifest written into a layout. */
export interface BuiltManifest {
  /** the layout directory */
  readonly dir: string
  readonly platform: Platform
  readonly manifestDigest: string
  readonly manifestSize: number
  readonly manifestMediaType: typeof MEDIA_TYPES.manifest
  readonly configDigest: string
  readonly configSize: number
  readonly layers: ReadonlyArray<BuiltLayer>
  readonly layerDigests: ReadonlyArray<string>
}

export interface BuiltImage extends BuiltManifest {
  readonly tag: string
  /** skopeo's name for it: `oci:<dir>:<tag>` */
  readonly reference: string
}

export interface BuiltIndex {
  readonly dir: string
  readonly tag: string
  /** skopeo's name for it: `oci:<dir>:<tag>` */
  readonly reference: string
  readonly indexDigest: string
  readonly indexSize: number
  readonly indexMediaType: typeof MEDIA_TYPES.index
  /** same as indexDigest: what the tag points at */
  readonly manifestDigest: string
  /** one image per platform, in index order */
  readonly children: ReadonlyArray<BuiltManifest>
}

const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" }

const DEFAULT_INDEX_PLATFORMS: ReadonlyArray<Platform> = [
  { os: "linux", architecture: "amd64" },
  { os: "linux", architecture: "arm64", variant: "v8" }
]

/** Path of a blob inside a layout. */
export const blobPath = (dir: string, digest: string): string => {
  const [algorithm, hex] = digest.split(":")
  return path.join(dir, "blobs", algorithm!, hex!)
}

/** Builds an OCI image layout on disk (or adds to one) with one random layer per entry of `layers` (file sizes in bytes). */
export const makeImage = async (options: {
  readonly dir: string
  readonly tag: string
  readonly layers: ReadonlyArray<number>
  readonly platform?: Platform
}): Promise<BuiltImage> => {
  await ensureLayout(options.dir)
  const built = await buildManifest(options.dir, options.layers, options.platform ?? DEFAULT_PLATFORM)
  await addRef(options.dir, options.tag, {
    mediaType: built.manifestMediaType,
    digest: built.manifestDigest,
    size: built.manifestSize
  })
  return { ...built, tag: options.tag, reference: `oci:${options.dir}:${options.tag}` }
}

/** Builds a multi-platform OCI index (default linux/amd64 + linux/arm64/v8), each child with its own small random layers. */
export const makeIndex = async (options: {
  readonly dir: string
  readonly tag: string
  readonly platforms?: ReadonlyArray<Platform>
  /** layer file sizes of each child; default [1024, 2048] */
  readonly layers?: ReadonlyArray<number>
}): Promise<BuiltIndex> => {
  await ensureLayout(options.dir)
  const children: Array<BuiltManifest> = []
  for (const platform of options.platforms ?? DEFAULT_INDEX_PLATFORMS) {
    children.push(await buildManifest(options.dir, options.layers ?? [1024, 2048], platform))
  }
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: children.map((child) => ({
      mediaType: child.manifestMediaType,
      digest: child.manifestDigest,
      size: child.manifestSize,
      platform: platformJson(child.platform)
    }))
  }
  const blob = await writeJsonBlob(options.dir, index)
  await addRef(options.dir, options.tag, { mediaType: MEDIA_TYPES.index, ...blob })
  return {
    dir: options.dir,
    tag: options.tag,
    reference: `oci:${options.dir}:${options.tag}`,
    indexDigest: blob.digest,
    indexSize: blob.size,
    indexMediaType: MEDIA_TYPES.index,
    manifestDigest: blob.digest,
    children
  }
}

// ---------------------------------------------------------------------------------------------
// skopeo

export interface SkopeoCredentials {
  readonly user: string
  readonly password: string
}

export interface SkopeoPushOptions {
  /** "127.0.0.1:<port>" */
  readonly registry: string
  readonly repository: string
  /** default: the layout tag */
  readonly destTag?: string
  /** default: anonymous (`--dest-no-creds`, so no auth.json on the machine leaks in) */
  readonly creds?: SkopeoCredentials
  /** copy every image of an index (`--all`) */
  readonly all?: boolean
  /** verify TLS with this containers-certs.d directory (holding `ca.crt`); default: `--dest-tls-verify=false` */
  readonly certDir?: string
}

export interface SkopeoRegistryOptions {
  readonly creds?: SkopeoCredentials
  readonly certDir?: string
}

const run = promisify(execFile)

const SKOPEO_TIMEOUT_MS = 60_000

/**
 * `skopeo copy --preserve-digests oci:<dir>:<tag> docker://<registry>/<repository>:<tag>`; throws with
 * skopeo's stderr on failure. `--preserve-digests` makes skopeo fail rather than rewrite a manifest.
 */
export const skopeoPush = async (image: { readonly dir: string; readonly tag: string }, options: SkopeoPushOptions): Promise<void> => {
  const destination = `docker://${options.registry}/${options.repository}:${options.destTag ?? image.tag}`
  await skopeo([
    "copy", "--preserve-digests", "--retry-times", "0",
    ...(options.all === true ? ["--all"] : []),
    ...registryFlags("dest-", options),
    `oci:${image.dir}:${image.tag}`,
    destination
  ])
}

/**
 * The digest of the manifest (or index) skopeo sees for `oci:<dir>:<tag>` or `docker://<host>/<repo>:<tag>`:
 * sha256 of `skopeo inspect --raw`, so it works for an index of any platforms.
 */
export const skopeoInspectDigest = async (reference: string, options: SkopeoRegistryOptions = {}): Promise<string> => {
  const raw = await skopeo(["inspect", "--raw", ...inspectFlags(reference, options), reference])
  return `sha256:${createHash("sha256").update(raw).digest("hex")}`
}

/** `skopeo inspect` (image config summary of the host's platform), parsed. */
export const skopeoInspect = async (reference: string, options: SkopeoRegistryOptions = {}): Promise<Record<string, unknown>> => {
  const out = await skopeo(["inspect", ...inspectFlags(reference, options), reference])
  return JSON.parse(out.toString("utf8")) as Record<string, unknown>
}

const inspectFlags = (reference: string, options: SkopeoRegistryOptions): Array<string> =>
  reference.startsWith("docker://") ? registryFlags("", options) : []

const registryFlags = (prefix: "" | "dest-", options: SkopeoRegistryOptions): Array<string> => [
  ...(options.certDir === undefined ? [`--${prefix}tls-verify=false`] : [`--${prefix}tls-verify=true`, `--${prefix}cert-dir`, options.certDir]),
  ...(options.creds === undefined ? [`--${prefix}no-creds`] : [`--${prefix}creds`, `${options.creds.user}:${options.creds.password}`])
]

const skopeo = async (args: ReadonlyArray<string>): Promise<Buffer> => {
  try {
    const { stdout } = await run("skopeo", ["--insecure-policy", ...args], {
      encoding: "buffer",
      maxBuffer: 64 * 1024 * 1024,
      timeout: SKOPEO_TIMEOUT_MS
    })
    return stdout
  } catch (error) {
    const failure = error as { stderr?: Buffer; message?: string }
    const stderr = failure.stderr?.toString("utf8").trim()
    throw new Error(`skopeo ${args.join(" ")} failed: ${stderr !== undefined && stderr !== "" ? stderr : failure.message}`)
  }
}

// ---------------------------------------------------------------------------------------------
// Layout

/** Creates the layout's folders and oci-layout file, if missing. */
export const ensureLayout = async (dir: string): Promise<void> => {
  await fs.mkdir(path.join(dir, "blobs", "sha256"), { recursive: true })
  const layout = path.join(dir, "oci-layout")
  try {
    await fs.access(layout)
  } catch {
    await fs.writeFile(layout, JSON.stringify({ imageLayoutVersion: "1.0.0" }))
  }
}

/** Points `tag` at `descriptor` in index.json, replacing an earlier entry of the same tag. */
export const addRef = async (dir: string, tag: string, descriptor: Descriptor & { readonly platform?: Platform }): Promise<void> => {
  const file = path.join(dir, "index.json")
  let manifests: Array<{ annotations?: Record<string, string> }> = []
  try {
    manifests = (JSON.parse(await fs.readFile(file, "utf8")) as { manifests: typeof manifests }).manifests
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error
  }
  const kept = manifests.filter((entry) => entry.annotations?.[REF_NAME_ANNOTATION] !== tag)
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [...kept, { ...descriptor, annotations: { [REF_NAME_ANNOTATION]: tag } }]
  }
  await fs.writeFile(file, JSON.stringify(index, null, 2))
}

const buildManifest = async (dir: string, sizes: ReadonlyArray<number>, platform: Platform): Promise<BuiltManifest> => {
  const layers: Array<BuiltLayer> = []
  for (const size of sizes) layers.push(await writeLayer(dir, size))
  const config = {
    created: "1970-01-01T00:00:00Z",
    ...platformJson(platform),
    config: {},
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map(() => ({ created: "1970-01-01T00:00:00Z", created_by: "microagent test fixture" }))
  }
  const configBlob = await writeJsonBlob(dir, config)
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, ...configBlob },
    layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size }))
  }
  const manifestBlob = await writeJsonBlob(dir, manifest)
  return {
    dir,
    platform,
    manifestDigest: manifestBlob.digest,
    manifestSize: manifestBlob.size,
    manifestMediaType: MEDIA_TYPES.manifest,
    configDigest: configBlob.digest,
    configSize: configBlob.size,
    layers,
    layerDigests: layers.map((layer) => layer.digest)
  }
}

const platformJson = (platform: Platform) => ({
  architecture: platform.architecture,
  os: platform.os,
  ...(platform.variant === undefined ? {} : { variant: platform.variant })
})

/** Stores `value` as a JSON blob; returns its digest and size. */
export const writeJsonBlob = async (dir: string, value: unknown): Promise<{ digest: string; size: number }> => {
  const bytes = Buffer.from(JSON.stringify(value))
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`
  await fs.writeFile(blobPath(dir, digest), bytes)
  return { digest, size: bytes.length }
}

/** Streams tar → (diff_id hash) → gzip level 1 → (digest hash, size) → temp file, then renames it to its digest. */
const writeLayer = async (dir: string, contentSize: number): Promise<BuiltLayer> => {
  const diffId = createHash("sha256")
  const digest = createHash("sha256")
  let size = 0
  const temp = path.join(dir, "blobs", `.layer-${randomBytes(8).toString("hex")}.tmp`)
  await pipeline(
    Readable.from(tarWithRandomFile(contentSize)),
    tap((chunk) => diffId.update(chunk)),
    createGzip({ level: 1 }),
    tap((chunk) => {
      digest.update(chunk)
      size += chunk.length
    }),
    createWriteStream(temp)
  )
  const layerDigest = `sha256:${digest.digest("hex")}`
  await fs.rename(temp, blobPath(dir, layerDigest))
  return { mediaType: MEDIA_TYPES.layer, digest: layerDigest, size, diffId: `sha256:${diffId.digest("hex")}`, contentSize }
}

/** Passes a stream's chunks through, showing each to `see`. */
export const tap = (see: (chunk: Buffer) => void) =>
  new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      see(chunk)
      callback(null, chunk)
    }
  })

const BLOCK = 512
const CHUNK = 64 * 1024

/** A ustar archive holding `random.bin` (mode 0644, mtime 0) with `size` random bytes. */
function* tarWithRandomFile(size: number): Generator<Buffer> {
  yield tarHeader("random.bin", size)
  for (let left = size; left > 0; left -= CHUNK) yield randomFillSync(Buffer.allocUnsafe(Math.min(CHUNK, left)))
  const padding = (BLOCK - (size % BLOCK)) % BLOCK
  // end of archive: padding, then two zero blocks
  yield Buffer.alloc(padding + 2 * BLOCK)
}

const tarHeader = (name: string, size: number): Buffer => {
  const header = Buffer.alloc(BLOCK)
  const field = (offset: number, length: number, value: string) => header.write(value, offset, length, "ascii")
  const octal = (value: number, length: number) => value.toString(8).padStart(length - 1, "0")
  field(0, 100, name)
  field(100, 8, octal(0o644, 8))
  field(108, 8, octal(0, 8))
  field(116, 8, octal(0, 8))
  field(124, 12, octal(size, 12))
  field(136, 12, octal(0, 12))
  field(148, 8, " ".repeat(8)) // checksum is computed with its own field as spaces
  field(156, 1, "0")
  field(257, 6, "ustar\0")
  field(263, 2, "00")
  field(265, 32, "root")
  field(297, 32, "root")
  let sum = 0
  for (const byte of header) sum += byte
  field(148, 8, `${octal(sum, 7)}\0 `)
  return header
}
