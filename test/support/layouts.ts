/**
 * OCI image layouts built from layer specs written with ./tar.ts: any entries, any of the three
 * compressions, OCI or Docker media types, a real image config. Layers are streamed to disk:
 * tar → (diff_id) → gzip | zstd | nothing → (digest) → blob.
 *
 * Below it, the ready-made images the rootfs tests use: (a) a busybox image that runs, (b) the
 * layer-rules image with its expected tree as data, (c) hostile layers.
 */
import { spawn } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { createReadStream, createWriteStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Readable, type Transform, type Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { createGzip, gunzipSync } from "node:zlib"
import { addRef, blobPath, ensureLayout, tap, writeJsonBlob, type Platform } from "./images.js"
import { tarStream, type TarEntry, type TarItem, type TarOptions } from "./tar.js"
import type { TreeEntry } from "./tree.js"

export type Compression = "gzip" | "zstd" | "none"
export type MediaTypeFamily = "oci" | "docker"

export interface LayerSpec {
  readonly entries: Iterable<TarItem> | AsyncIterable<TarItem>
  readonly compression: Compression
  /** Default "oci". Any "docker" layer makes the whole manifest a Docker schema 2 manifest. */
  readonly mediaType?: MediaTypeFamily
  readonly tar?: TarOptions
}

/** The parts of an image config the tests set; the names are the image-spec's. */
export interface ImageConfigSpec {
  readonly User?: string
  readonly Env?: ReadonlyArray<string>
  readonly Entrypoint?: ReadonlyArray<string>
  readonly Cmd?: ReadonlyArray<string>
  readonly WorkingDir?: string
  readonly Labels?: Readonly<Record<string, string>>
  readonly StopSignal?: string
  readonly ExposedPorts?: Readonly<Record<string, object>>
  readonly Volumes?: Readonly<Record<string, object>>
  /** Override the platform's os/architecture in the config only (for mismatch tests). */
  readonly os?: string
  readonly architecture?: string
}

export interface LayoutSpec {
  readonly tag: string
  readonly layers: ReadonlyArray<LayerSpec>
  readonly config?: ImageConfigSpec
  /** Default linux and this machine's architecture. */
  readonly platform?: Platform
}

export interface BuiltLayer {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
  /** sha256 of the uncompressed tar, as in the config's rootfs.diff_ids */
  readonly diffId: string
  readonly compression: Compression
}

export interface BuiltLayout {
  readonly dir: string
  readonly tag: string
  /** skopeo's and umoci's name for it: `oci:<dir>:<tag>` (umoci wants `--image <dir>:<tag>`) */
  readonly reference: string
  readonly platform: Platform
  readonly manifestDigest: string
  readonly manifestSize: number
  readonly manifestMediaType: string
  readonly configDigest: string
  readonly configSize: number
  readonly layers: ReadonlyArray<BuiltLayer>
  readonly diffIds: ReadonlyArray<string>
}

export const LAYER_MEDIA_TYPES: Record<MediaTypeFamily, Record<Compression, string>> = {
  oci: {
    none: "application/vnd.oci.image.layer.v1.tar",
    gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
    zstd: "application/vnd.oci.image.layer.v1.tar+zstd"
  },
  // Docker's spec names only .tar.gzip; .tar and .tar.zstd are containerd's names for the others.
  docker: {
    none: "application/vnd.docker.image.rootfs.diff.tar",
    gzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
    zstd: "application/vnd.docker.image.rootfs.diff.tar.zstd"
  }
}

export const MANIFEST_MEDIA_TYPES: Record<MediaTypeFamily, { manifest: string; config: string }> = {
  oci: { manifest: "application/vnd.oci.image.manifest.v1+json", config: "application/vnd.oci.image.config.v1+json" },
  docker: {
    manifest: "application/vnd.docker.distribution.manifest.v2+json",
    config: "application/vnd.docker.container.image.v1+json"
  }
}


export const hostPlatform = (): Platform => ({
  os: "linux",
  architecture: process.arch === "x64" ? "amd64" : process.arch === "ia32" ? "386" : process.arch
})

/** Writes (or adds to) an OCI image layout at `dir` and points `tag` at the new manifest. */
export const buildLayout = async (dir: string, spec: LayoutSpec): Promise<BuiltLayout> => {
  await ensureLayout(dir)
  const family: MediaTypeFamily = spec.layers.some((layer) => layer.mediaType === "docker") ? "docker" : "oci"
  const platform = spec.platform ?? hostPlatform()
  const layers: Array<BuiltLayer> = []
  for (const layer of spec.layers) layers.push(await writeLayer(dir, layer))

  const { os, architecture, ...runtime } = spec.config ?? {}
  const config = {
    created: "2024-01-01T00:00:00Z",
    architecture: architecture ?? platform.architecture,
    os: os ?? platform.os,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    config: runtime,
    rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map(() => ({ created: "2024-01-01T00:00:00Z", created_by: "microagent test layout" }))
  }
  const configBlob = await writeJsonBlob(dir, config)
  const manifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPES[family].manifest,
    config: { mediaType: MANIFEST_MEDIA_TYPES[family].config, ...configBlob },
    layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size }))
  }
  const manifestBlob = await writeJsonBlob(dir, manifest)
  await addRef(dir, spec.tag, {
    mediaType: MANIFEST_MEDIA_TYPES[family].manifest,
    ...manifestBlob,
    platform: { architecture: platform.architecture, os: platform.os, ...(platform.variant === undefined ? {} : { variant: platform.variant }) }
  })
  return {
    dir,
    tag: spec.tag,
    reference: `oci:${dir}:${spec.tag}`,
    platform,
    manifestDigest: manifestBlob.digest,
    manifestSize: manifestBlob.size,
    manifestMediaType: MANIFEST_MEDIA_TYPES[family].manifest,
    configDigest: configBlob.digest,
    configSize: configBlob.size,
    layers,
    diffIds: layers.map((layer) => layer.diffId)
  }
}

const writeLayer = async (dir: string, layer: LayerSpec): Promise<BuiltLayer> => {
  const diffId = createHash("sha256")
  const digest = createHash("sha256")
  let size = 0
  const temp = path.join(dir, "blobs", `.layer-${randomBytes(8).toString("hex")}.tmp`)
  const source = Readable.from(tarStream(layer.entries, layer.tar ?? {}))
  const sink = [
    tap((chunk) => {
      digest.update(chunk)
      size += chunk.length
    }),
    createWriteStream(temp)
  ] as const
  const hashTar = tap((chunk) => diffId.update(chunk))
  try {
    if (layer.compression === "none") await pipeline(source, hashTar, ...sink)
    else if (layer.compression === "gzip") await pipeline(source, hashTar, createGzip(), ...sink)
    else await zstdPipeline(source, hashTar, sink)
  } catch (error) {
    await fs.rm(temp, { force: true })
    throw error
  }
  const layerDigest = `sha256:${digest.digest("hex")}`
  await fs.rename(temp, blobPath(dir, layerDigest))
  return {
    mediaType: LAYER_MEDIA_TYPES[layer.mediaType ?? "oci"][layer.compression],
    digest: layerDigest,
    size,
    diffId: `sha256:${diffId.digest("hex")}`,
    compression: layer.compression
  }
}

/** Node has no zstd before 22.15: the `zstd` command compresses, fed and drained as streams. */
const zstdPipeline = async (source: Readable, hashTar: Transform, sink: readonly [Transform, Writable]): Promise<void> => {
  const child = spawn("zstd", ["-q", "-c", "-3"], { stdio: ["pipe", "pipe", "pipe"] })
  let stderr = ""
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<void>((resolve, reject) => {
    child.on("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "ENOENT" ? new Error("zstd is not installed (Debian package zstd)") : error)
    )
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`zstd exited ${code}: ${stderr}`))))
  })
  await Promise.all([pipeline(source, hashTar, child.stdin), pipeline(child.stdout, ...sink), exited])
}

/** Blob bytes, decompressed if it is a layer: for checking diff_ids. */
export const readLayerTar = async (dir: string, layer: BuiltLayer): Promise<Buffer> => {
  const file = blobPath(dir, layer.digest)
  if (layer.compression === "none") return fs.readFile(file)
  if (layer.compression === "gzip") return gunzipSync(await fs.readFile(file))
  return new Promise((resolve, reject) => {
    const child = spawn("zstd", ["-q", "-d", "-c", file], { stdio: ["ignore", "pipe", "inherit"] })
    const chunks: Array<Buffer> = []
    child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk))
    child.on("error", reject)
    child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`zstd -d exited ${code}`))))
  })
}

// =============================================================================================
// (a) busybox: a small image that runs

export const BUSYBOX_APPLETS = [
  "sh", "ls", "cat", "echo", "id", "env", "pwd", "true", "false", "sleep", "test",
  "mkdir", "touch", "rm", "stat", "whoami", "printenv", "kill", "uname", "head", "hostname", "grep", "wc", "dd", "sha256sum"
] as const

/** Who the busybox image knows: `/etc/passwd` and `/etc/group` say exactly this. */
export const BUSYBOX_USERS = {
  root: { name: "root", uid: 0, gid: 0, home: "/root", additionalGids: [] },
  app: { name: "app", uid: 1000, gid: 1000, home: "/home/app", additionalGids: [2000] },
  nobody: { name: "nobody", uid: 65534, gid: 65534, home: "/nonexistent", additionalGids: [] }
} as const

export const BUSYBOX_GROUPS = { root: 0, app: 1000, devs: 2000, nogroup: 65534 } as const

export const BUSYBOX_PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "app:x:1000:1000:app:/home/app:/bin/sh",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
  ""
].join("\n")

export const BUSYBOX_GROUP = ["root:x:0:", "app:x:1000:", "devs:x:2000:app", "nogroup:x:65534:", ""].join("\n")

export const BUSYBOX_CONFIG: ImageConfigSpec = {
  User: "app",
  Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"],
  Cmd: ["/bin/sh"],
  WorkingDir: "/home/app",
  Labels: { "org.opencontainers.image.title": "microagent busybox test image" },
  StopSignal: "SIGTERM"
}

const BUSYBOX_MTIME = 1_704_067_200 // 2024-01-01

/** The busybox image's one layer: `/bin/busybox` from this machine (Debian's busybox-static) and its applet links. */
export const busyboxEntries = async (busybox = "/bin/busybox"): Promise<Array<TarEntry>> => {
  const { size } = await fs.stat(busybox)
  const at = { mtime: BUSYBOX_MTIME }
  const dir = (name: string, mode = 0o755, uid = 0, gid = 0): TarEntry => ({ name, type: "dir", mode, uid, gid, ...at })
  return [
    dir("./"),
    dir("bin/"),
    { name: "bin/busybox", mode: 0o755, content: { size, chunks: () => createReadStream(busybox) }, ...at },
    ...BUSYBOX_APPLETS.map((applet): TarEntry => ({ name: `bin/${applet}`, type: "symlink", linkname: "busybox", ...at })),
    dir("etc/"),
    { name: "etc/passwd", content: BUSYBOX_PASSWD, ...at },
    { name: "etc/group", content: BUSYBOX_GROUP, ...at },
    dir("home/"),
    dir("home/app/", 0o755, 1000, 1000),
    dir("root/", 0o700),
    dir("tmp/", 0o1777)
  ]
}

/** (a) A one-layer image whose `/bin/sh` works, with user `app` (1000:1000, also in `devs` 2000) as its User. */
export const buildBusyboxImage = async (
  dir: string,
  options: {
    readonly tag?: string
    readonly compression?: Compression
    readonly config?: ImageConfigSpec
    readonly platform?: Platform
    readonly busybox?: string
  } = {}
): Promise<BuiltLayout> =>
  buildLayout(dir, {
    tag: options.tag ?? "busybox",
    layers: [{ entries: await busyboxEntries(options.busybox), compression: options.compression ?? "gzip" }],
    config: options.config ?? BUSYBOX_CONFIG,
    ...(options.platform === undefined ? {} : { platform: options.platform })
  })

// =============================================================================================
// (b) the layer rules: three layers (gzip, zstd, none) and the tree they must give

/** Layer mtimes: T1 + n in layer 1, T2 + n in layer 2, T3 + n in layer 3. */
export const T1 = 1_600_000_000
export const T2 = 1_650_000_000
export const T3 = 1_690_000_000

/** v2 file capabilities: cap_setuid (bit 7) and cap_net_bind_service (bit 10), effective; bytes ≥ 0x80 on purpose. */
export const CAPABILITY_XATTR = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])

const dirAt = (name: string, mtime: number, mode = 0o755, extra: Partial<TarEntry> = {}): TarEntry => ({
  name,
  type: "dir",
  mode,
  mtime,
  ...extra
})

/** The three layers, in order. Each layer that changes a directory also carries that directory's entry (as image builders do). */
export const LAYER_RULES_LAYERS: ReadonlyArray<{ readonly compression: Compression; readonly entries: ReadonlyArray<TarEntry> }> = [
  {
    compression: "gzip",
    entries: [
      dirAt("./", T1),
      dirAt("a/", T1),
      { name: "a/keep.txt", content: "keep\n", mtime: T1 + 1 },
      { name: "a/gone.txt", content: "whited out in layer 2\n", mtime: T1 + 2 },
      dirAt("opq/", T1),
      { name: "opq/old.txt", content: "hidden by the opaque whiteout\n", mtime: T1 + 3 },
      dirAt("opq/sub/", T1),
      { name: "opq/sub/old2.txt", content: "hidden too, although layer 2 brings opq/sub back\n", mtime: T1 + 4 },
      dirAt("wdir/", T1),
      { name: "wdir/child.txt", content: "gone with its directory\n", mtime: T1 + 5 },
      dirAt("hl/", T1),
      { name: "hl/original", content: "one inode, three names\n", mode: 0o640, uid: 1001, gid: 1002, mtime: T1 + 6 },
      dirAt("repl/", T1),
      { name: "repl/was-symlink", type: "symlink", linkname: "../a/keep.txt", mtime: T1 + 7 },
      { name: "repl/was-file", content: "becomes a directory\n", mtime: T1 + 8 },
      dirAt("repl/was-dir/", T1 + 9),
      { name: "repl/was-dir/child.txt", content: "goes when its directory becomes a file\n", mtime: T1 + 10 },
      dirAt("modes/", T1),
      { name: "modes/setuid", content: "#!/bin/sh\n", mode: 0o4755, mtime: T1 + 11 },
      { name: "modes/setgid", content: "#!/bin/sh\n", mode: 0o2755, gid: 50, mtime: T1 + 12 },
      { name: "modes/setuid-setgid", content: "#!/bin/sh\n", mode: 0o6750, uid: 1001, gid: 1002, mtime: T1 + 13 },
      dirAt("modes/sticky/", T1 + 14, 0o1777),
      dirAt("modes/setgid-dir/", T1 + 15, 0o2775, { gid: 1002 }),
      dirAt("special/", T1),
      { name: "special/fifo", type: "fifo", mode: 0o620, mtime: T1 + 16 },
      { name: "special/null", type: "char", mode: 0o666, devmajor: 1, devminor: 3, mtime: T1 + 17 },
      { name: "special/sda1", type: "block", mode: 0o660, gid: 6, devmajor: 8, devminor: 1, mtime: T1 + 18 },
      dirAt("xattr/", T1, 0o755, { xattrs: { "user.on-dir": "a directory's xattr" } }),
      {
        name: "xattr/file",
        content: "has xattrs\n",
        mode: 0o755,
        mtime: T1 + 19,
        xattrs: { "user.comment": "hello", "security.capability": CAPABILITY_XATTR }
      },
      dirAt("owned/", T1, 0o750, { uid: 2000, gid: 2001 }),
      { name: "owned/by-1001", content: "owned\n", mode: 0o640, uid: 1001, gid: 1002, mtime: T1 + 20 },
      // The names say root: the numeric ids must win (OCI layers are applied by id).
      { name: "owned/name-mismatch", content: "ids win\n", uid: 1003, gid: 1004, uname: "root", gname: "root", mtime: T1 + 21 },
      { name: "owned/link", type: "symlink", linkname: "by-1001", uid: 1001, gid: 1002, mtime: T1 + 22 },
      dirAt("links/", T1),
      { name: "links/abs", type: "symlink", linkname: "/a/keep.txt", mtime: T1 + 23 },
      { name: "links/rel", type: "symlink", linkname: "../a/keep.txt", mtime: T1 + 24 },
      { name: "links/dangling", type: "symlink", linkname: "/does/not/exist", mtime: T1 + 25 }
    ]
  },
  {
    compression: "zstd",
    entries: [
      dirAt("a/", T2),
      { name: "a/.wh.gone.txt", mtime: T2 },
      dirAt("opq/", T2, 0o750),
      // Before the marker in tar order: the opaque whiteout hides lower layers only, wherever it sits.
      { name: "opq/before.txt", content: "same layer, before the marker\n", mtime: T2 + 1 },
      { name: "opq/.wh..wh..opq", mtime: T2 },
      { name: "opq/after.txt", content: "same layer, after the marker\n", mtime: T2 + 2 },
      dirAt("opq/sub/", T2 + 3, 0o700),
      { name: "opq/sub/new.txt", content: "the only file of the new opq/sub\n", mtime: T2 + 4 },
      dirAt("hl/", T2),
      // Hard link to a file of layer 1; its header repeats the original's metadata.
      { name: "hl/link", type: "hardlink", linkname: "hl/original", mode: 0o640, uid: 1001, gid: 1002, mtime: T1 + 6 },
      dirAt("repl/", T2),
      // Replaces the symlink itself: a/keep.txt, where it pointed, must not change.
      { name: "repl/was-symlink", content: "now a regular file\n", mtime: T2 + 5 },
      dirAt("repl/was-file/", T2 + 6),
      { name: "repl/was-file/inner.txt", content: "inside what was a file\n", mtime: T2 + 7 },
      { name: "repl/was-dir", content: "now a file\n", mode: 0o600, mtime: T2 + 8 }
    ]
  },
  {
    compression: "none",
    entries: [
      dirAt("./", T3),
      { name: ".wh.wdir", mtime: T3 },
      dirAt("hl/", T3),
      { name: "hl/link2", type: "hardlink", linkname: "hl/link", mode: 0o640, uid: 1001, gid: 1002, mtime: T1 + 6 }
    ]
  }
]

const sha = (content: string | Buffer): string => createHash("sha256").update(content).digest("hex")

const node = (entry: Partial<TreeEntry> & Pick<TreeEntry, "path" | "type" | "mtimeSec">): TreeEntry => ({
  mode: 0o755,
  uid: 0,
  gid: 0,
  size: 0,
  sha256: null,
  linkTarget: null,
  rdev: null,
  xattrs: {},
  nlinkGroup: null,
  ...entry
})

const d = (p: string, mtimeSec: number, extra: Partial<TreeEntry> = {}): TreeEntry => node({ path: p, type: "dir", mtimeSec, ...extra })

const f = (p: string, content: string, mtimeSec: number, extra: Partial<TreeEntry> = {}): TreeEntry =>
  node({ path: p, type: "file", mode: 0o644, size: Buffer.byteLength(content), sha256: sha(content), mtimeSec, ...extra })

const l = (p: string, target: string, mtimeSec: number, extra: Partial<TreeEntry> = {}): TreeEntry =>
  node({ path: p, type: "symlink", mode: 0o777, size: Buffer.byteLength(target), linkTarget: target, mtimeSec, ...extra })

const hardLinked = { mode: 0o640, uid: 1001, gid: 1002, nlinkGroup: "/hl/link" } as const

/**
 * The tree the three layers must give, applied as root, in {@link snapshotDir}'s shape. Gone:
 * /a/gone.txt (whiteout), /opq/old.txt and /opq/sub/old2.txt (opaque), /wdir (whiteout of a
 * directory), /repl/was-dir/child.txt (its directory became a file). A directory's mtime is that
 * of its entry in the last layer that has one, so it must be set after the layer's changes in it.
 */
export const LAYER_RULES_EXPECTED: ReadonlyArray<TreeEntry> = [
  d("/", T3),
  d("/a", T2),
  f("/a/keep.txt", "keep\n", T1 + 1),
  d("/hl", T3),
  f("/hl/link", "one inode, three names\n", T1 + 6, hardLinked),
  f("/hl/link2", "one inode, three names\n", T1 + 6, hardLinked),
  f("/hl/original", "one inode, three names\n", T1 + 6, hardLinked),
  d("/links", T1),
  l("/links/abs", "/a/keep.txt", T1 + 23),
  l("/links/dangling", "/does/not/exist", T1 + 25),
  l("/links/rel", "../a/keep.txt", T1 + 24),
  d("/modes", T1),
  d("/modes/setgid-dir", T1 + 15, { mode: 0o2775, gid: 1002 }),
  f("/modes/setgid", "#!/bin/sh\n", T1 + 12, { mode: 0o2755, gid: 50 }),
  d("/modes/sticky", T1 + 14, { mode: 0o1777 }),
  f("/modes/setuid", "#!/bin/sh\n", T1 + 11, { mode: 0o4755 }),
  f("/modes/setuid-setgid", "#!/bin/sh\n", T1 + 13, { mode: 0o6750, uid: 1001, gid: 1002 }),
  d("/opq", T2, { mode: 0o750 }),
  f("/opq/after.txt", "same layer, after the marker\n", T2 + 2),
  f("/opq/before.txt", "same layer, before the marker\n", T2 + 1),
  d("/opq/sub", T2 + 3, { mode: 0o700 }),
  f("/opq/sub/new.txt", "the only file of the new opq/sub\n", T2 + 4),
  d("/owned", T1, { mode: 0o750, uid: 2000, gid: 2001 }),
  f("/owned/by-1001", "owned\n", T1 + 20, { mode: 0o640, uid: 1001, gid: 1002 }),
  l("/owned/link", "by-1001", T1 + 22, { uid: 1001, gid: 1002 }),
  f("/owned/name-mismatch", "ids win\n", T1 + 21, { uid: 1003, gid: 1004 }),
  d("/repl", T2),
  f("/repl/was-dir", "now a file\n", T2 + 8, { mode: 0o600 }),
  d("/repl/was-file", T2 + 6),
  f("/repl/was-file/inner.txt", "inside what was a file\n", T2 + 7),
  f("/repl/was-symlink", "now a regular file\n", T2 + 5),
  d("/special", T1),
  node({ path: "/special/fifo", type: "fifo", mode: 0o620, mtimeSec: T1 + 16 }),
  node({ path: "/special/null", type: "char", mode: 0o666, rdev: { major: 1, minor: 3 }, mtimeSec: T1 + 17 }),
  node({ path: "/special/sda1", type: "block", mode: 0o660, gid: 6, rdev: { major: 8, minor: 1 }, mtimeSec: T1 + 18 }),
  d("/xattr", T1, { xattrs: { "user.on-dir": Buffer.from("a directory's xattr").toString("hex") } }),
  f("/xattr/file", "has xattrs\n", T1 + 19, {
    mode: 0o755,
    xattrs: { "security.capability": CAPABILITY_XATTR.toString("hex"), "user.comment": Buffer.from("hello").toString("hex") }
  })
]

/**
 * (b) The layer-rules image giving {@link LAYER_RULES_EXPECTED}: gzip, zstd and uncompressed
 * layers unless `compression` says one for all. umoci 0.4.7 (Debian 12) cannot read zstd layers:
 * compare with umoci using `compression: "gzip"`.
 */
export const buildLayerRulesImage = (
  dir: string,
  options: {
    readonly tag?: string
    readonly compression?: Compression
    readonly mediaType?: MediaTypeFamily
    readonly platform?: Platform
  } = {}
): Promise<BuiltLayout> =>
  buildLayout(dir, {
    tag: options.tag ?? "layer-rules",
    layers: LAYER_RULES_LAYERS.map((layer) => ({
      ...layer,
      ...(options.compression === undefined ? {} : { compression: options.compression }),
      ...(options.mediaType === undefined ? {} : { mediaType: options.mediaType })
    })),
    config: { Cmd: ["/bin/true"] },
    ...(options.platform === undefined ? {} : { platform: options.platform })
  })

// =============================================================================================
// (c) hostile layers

/** (c) A one-layer image of exactly these raw entries (nothing checked, nothing added). */
export const buildHostileImage = (
  dir: string,
  entries: ReadonlyArray<TarItem>,
  options: { readonly tag?: string; readonly compression?: Compression; readonly tar?: TarOptions } = {}
): Promise<BuiltLayout> =>
  buildLayout(dir, {
    tag: options.tag ?? "hostile",
    layers: [{ entries, compression: options.compression ?? "gzip", ...(options.tar === undefined ? {} : { tar: options.tar }) }],
    config: { Cmd: ["/bin/true"] }
  })

/** The name every hostile entry tries to create outside the root; tests look for it next to (and above) the output. */
export const ESCAPE_MARKER = "microagent-escaped"

/**
 * Layers SPEC [F3] says must be refused with `LayerRejected`. Escapes aim at relative places (a
 * few levels up) or at /tmp; run the product on them only under ./sandbox.ts's `sandboxed`, with
 * canaries where the names lead.
 */
export const HOSTILE_CASES: Readonly<Record<string, { readonly why: string; readonly entries: ReadonlyArray<TarEntry> }>> = {
  dotdot: { why: "`..` leading out of the root", entries: [{ name: `../${ESCAPE_MARKER}`, content: "x" }] },
  dotdotInside: {
    why: "`..` in the middle, leading out",
    entries: [{ name: "a/", type: "dir" }, { name: `a/../../${ESCAPE_MARKER}`, content: "x" }]
  },
  absolute: { why: "an absolute name", entries: [{ name: `/tmp/${ESCAPE_MARKER}`, content: "x" }] },
  symlinkThenWrite: {
    why: "a symlink out of the root, then an entry written through it",
    entries: [
      { name: "out", type: "symlink", linkname: "../.." },
      { name: `out/${ESCAPE_MARKER}`, content: "x" }
    ]
  },
  hardlinkOutside: { why: "a hard link to a file outside", entries: [{ name: "h", type: "hardlink", linkname: "../../../etc/passwd" }] },
  hardlinkAbsolute: { why: "a hard link to an absolute name", entries: [{ name: "h", type: "hardlink", linkname: "/etc/passwd" }] },
  dirReplacedBySymlink: {
    why: "a directory of the root replaced by a symlink out, then written through",
    entries: [
      { name: "etc/", type: "dir" },
      { name: "etc", type: "symlink", linkname: "/tmp" },
      { name: `etc/${ESCAPE_MARKER}`, content: "x" }
    ]
  },
  paxPathEscape: {
    why: "a harmless ustar name whose PAX path leads out",
    entries: [{ name: `../${ESCAPE_MARKER}`, headerName: "harmless", forcePax: true, content: "x" }]
  },
  gnuLongNameEscape: {
    why: "a GNU long name leading out",
    entries: [{ name: `${"../".repeat(40)}${ESCAPE_MARKER}`, longNames: "gnu", headerName: "harmless", content: "x" }]
  }
}
