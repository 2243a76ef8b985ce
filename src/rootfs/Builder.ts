/**
 * The Rootfs service's implementation (SPEC §6), loaded on first use (../Rootfs.ts).
 *
 * Every build happens once per (image manifest, format) in `~/.microagent/rootfs/` ([F7]): it is
 * built in `.tmp/` there and renamed into place when whole, so two builds of one image at once
 * both succeed and one of them is kept. `--out` then gets a copy, made beside it and renamed at
 * the end ([F6]): a failed or interrupted build leaves nothing at `--out` and nothing in the cache.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as Digest from "../domain/Digest.js"
import { ImageStoreError, LayerRejected, NotFound, UsageError } from "../domain/Errors.js"
import * as ImageConfig from "../domain/ImageConfig.js"
import * as Manifest from "../domain/Manifest.js"
import * as Platform from "../domain/Platform.js"
import * as RuntimeSpec from "../domain/RuntimeSpec.js"
import type { Layout } from "../ImageStore.js"
import * as Exec from "../node/Exec.js"
import { type Built, type BuildOptions, cacheFolder, type Format, hostPlatform, type Prepared, type PrepareOptions, Rootfs, type RootfsError } from "../Rootfs.js"
import * as SafeFiles from "../storage/SafeFiles.js"
import * as Applier from "./Applier.js"
import * as Ext4 from "./Ext4.js"
import * as LayerStream from "./LayerStream.js"

interface BuildRecord {
  readonly files: number
  readonly bytes: number
  readonly blockBytes: number
}

const BUILD_RECORD = "build.json"
const OWNERSHIP = "ownership.json"

const lstat = (file: string) => fs.lstatSync(file, { throwIfNoEntry: false })

/** Counts a tree without following links; hard-linked files count once. */
const measure = (root: string): BuildRecord => {
  let files = 0
  let bytes = 0
  let blockBytes = 0
  const seen = new Set<number>()
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      files++
      const file = nodePath.join(dir, entry.name)
      if (entry.isDirectory()) {
        blockBytes += 4096
        walk(file)
      } else if (entry.isFile()) {
        const info = fs.lstatSync(file)
        if (info.nlink > 1) {
          if (seen.has(info.ino)) continue
          seen.add(info.ino)
        }
        bytes += info.size
        blockBytes += Math.ceil(info.size / 4096) * 4096
      }
    }
  }
  walk(root)
  return { files, bytes, blockBytes }
}

/** A regular file of the rootfs by path, read without following any link (they could lead out). */
const readInside = (root: string, components: ReadonlyArray<string>): string | undefined => {
  let file = root
  for (const [i, part] of components.entries()) {
    file = nodePath.join(file, part)
    const info = lstat(file)
    if (info === undefined || (i < components.length - 1 ? !info.isDirectory() : !info.isFile())) return undefined
    if (i === components.length - 1 && info.size > 4 * 1024 * 1024) return undefined
  }
  return fs.readFileSync(file, "utf8")
}

/** The rootfs's /etc/passwd and /etc/group, for user names: never the host's, never through a link. */
export const userFiles = (rootfs: string) => ({
  passwd: readInside(rootfs, ["etc", "passwd"]),
  group: readInside(rootfs, ["etc", "group"])
})

export const make = (home: string) => Effect.gen(function*() {
  const cacheRoot = cacheFolder(home)
  const tempRoot = nodePath.join(cacheRoot, ".tmp")
  const asRoot = process.getuid?.() === 0

  const storeError = (file: string, what: string) => (e: unknown) =>
    ImageStoreError.of(file, `${what} (${(e as NodeJS.ErrnoException)?.code ?? String(e)})`)

  /** Removes a folder this service made; refuses anything not below `parent` (a computed path). */
  const removeBelow = (parent: string, target: string) =>
    Effect.sync(() => {
      const relative = nodePath.relative(parent, target)
      if (relative === "" || relative.startsWith("..") || nodePath.isAbsolute(relative)) return
      fs.rmSync(target, { recursive: true, force: true })
    })

  /** A fresh folder below `parent`, removed when the scope closes unless it was renamed away. */
  const scratch = (parent: string, name: string) =>
    Effect.acquireRelease(
      Effect.try({
        try: () => {
          fs.mkdirSync(parent, { recursive: true, mode: 0o700 })
          const dir = nodePath.join(parent, `${name}${SafeFiles.randomName()}`)
          fs.mkdirSync(dir, { mode: 0o700 })
          return dir
        },
        catch: storeError(parent, "cannot create a temporary folder")
      }),
      (dir) => removeBelow(parent, dir)
    )

  const checkOut = Effect.fn("Rootfs.checkOut")(function*(out: string, format: Format) {
    const refuse = (why: string, hint?: string) => new UsageError({ message: `--out ${out}: ${why}`, ...(hint === undefined ? {} : { hint }) })
    const target = nodePath.resolve(out)
    const parentReal = yield* Effect.try({
      try: () => {
        fs.mkdirSync(nodePath.dirname(target), { recursive: true })
        return fs.realpathSync(nodePath.dirname(target))
      },
      catch: (e) => refuse(`cannot create its folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`)
    })
    const real = nodePath.join(parentReal, nodePath.basename(target))
    const homeReal = Either.getOrElse(Either.try(() => fs.realpathSync(home)), () => nodePath.resolve(home))
    const ownReal = nodePath.join(homeReal, ".microagent")
    const within = (outer: string, inner: string) => inner === outer || inner.startsWith(`${outer}/`)
    if (real === "/" || target === "/") return yield* refuse("is the root folder")
    if (real === homeReal) return yield* refuse("is your home folder")
    if (within(real, ownReal) || within(ownReal, real)) return yield* refuse("holds or is inside microagent's own folder (its image store and caches)")
    const info = lstat(real)
    if (info !== undefined) {
      const empty = info.isDirectory() && fs.readdirSync(real).length === 0
      if (!empty) return yield* refuse("already exists", "choose a new path, or remove what is there first")
      if (format === "ext4") return yield* refuse("is a folder; --format ext4 writes a file", "name the image file, e.g. --out ./app.ext4")
    }
    return real
  })

  /** The image manifest for the platform, its config and the layers' files. */
  const resolveImage = (layout: Layout, descriptor: Manifest.Descriptor, wanted: Manifest.Platform | undefined) =>
    Effect.gen(function*() {
      const parse = (d: Manifest.Descriptor) =>
        Effect.flatMap(layout.readBlob(d.digest), (bytes) =>
          Either.match(Manifest.parse(bytes, d.mediaType), {
            onLeft: (reason) => Effect.fail(ImageStoreError.of(layout.root, `manifest ${d.digest}: ${reason}`)),
            onRight: Effect.succeed
          }))
      let manifest = yield* parse(descriptor)
      let digest = descriptor.digest
      if (manifest._tag === "Index") {
        const platform = wanted ?? hostPlatform()
        const child = Platform.select(platform, manifest.manifests)
        if (child === undefined) {
          const offered = manifest.manifests.flatMap((m) => m.platform ? [Platform.format(m.platform)] : []).join(", ")
          return yield* new NotFound({
            registry: layout.root,
            what: `platform ${Platform.format(platform)}`,
            message: `${descriptor.digest} has no image for ${Platform.format(platform)} (it has: ${offered || "none listed"})`,
            hint: "pick one with --platform"
          })
        }
        manifest = yield* parse(child)
        digest = child.digest
        if (manifest._tag === "Index") return yield* ImageStoreError.of(layout.root, `${child.digest} is an index inside an index; name one of its images`)
      }
      const configBytes = yield* layout.readBlob(manifest.config.digest)
      const config = yield* Either.match(ImageConfig.decode(configBytes), {
        onLeft: (reason) => Effect.fail(ImageStoreError.of(layout.root, `image config ${manifest.config.digest}: ${reason}`)),
        onRight: Effect.succeed
      })
      const own = { os: config.os, architecture: config.architecture, ...(config.variant === undefined ? {} : { variant: config.variant }) }
      const platform = Platform.format(Platform.normalize(own))
      if (wanted !== undefined && !Platform.matches(wanted, own)) {
        return yield* new NotFound({
          registry: layout.root,
          what: `platform ${Platform.format(wanted)}`,
          message: `the image ${digest} is for ${platform}, not ${Platform.format(wanted)}`
        })
      }
      const diffIds = config.rootfs?.diff_ids ?? []
      if (diffIds.length !== 0 && diffIds.length !== manifest.layers.length) {
        return yield* ImageStoreError.of(layout.root, `image config ${manifest.config.digest} lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`)
      }
      const layers = yield* Effect.forEach(manifest.layers, (layer, i) =>
        Effect.gen(function*() {
          if (!(yield* layout.hasBlob(layer.digest, layer.size))) {
            return yield* ImageStoreError.of(layout.root, `layer ${layer.digest} is not in the layout`, "pull the image again")
          }
          return { descriptor: layer, file: yield* layout.blobPath(layer.digest), diffId: diffIds[i] }
        }))
      return { digest, config, platform, layers }
    })

  /** Applies the layers into `dir/rootfs` and writes `dir/config.json`; the same into `also`'s too. */
  const unpack = (
    dir: string,
    image: Effect.Effect.Success<ReturnType<typeof resolveImage>>,
    options: PrepareOptions,
    also: string | undefined
  ) =>
    Effect.gen(function*() {
      const bundles = also === undefined ? [dir] : [dir, also]
      const appliers = bundles.map((bundle) => {
        const root = nodePath.join(bundle, "rootfs")
        fs.mkdirSync(root, { mode: 0o755 })
        fs.chmodSync(root, 0o755)
        return Applier.make(root, { asRoot, warn: options.warn ?? (() => {}) })
      })
      const rootfs = nodePath.join(dir, "rootfs")
      const applier = Applier.fanOut(appliers)
      for (const layer of image.layers) {
        const { descriptor } = layer
        options.onLayer?.({ _tag: "Start", digest: descriptor.digest, size: descriptor.size })
        let done = 0
        applier.beginLayer()
        yield* LayerStream.apply({
          file: layer.file,
          descriptor,
          diffId: layer.diffId,
          onBytes: options.onLayer === undefined ? undefined : (n) => {
            done += n
            options.onLayer?.({ _tag: "Progress", digest: descriptor.digest, size: descriptor.size, done })
          }
        }, applier)
        options.onLayer?.({ _tag: "Done", digest: descriptor.digest, size: descriptor.size, skipped: false })
      }
      yield* Effect.try({ try: applier.finish, catch: (e) => e instanceof Applier.Rejected ? LayerRejected.of("", e.entry, e.reason) : storeError(rootfs, "cannot finish it")(e) })
      const user = RuntimeSpec.resolveUser(image.config.config?.User, userFiles(rootfs))
      if (Either.isLeft(user)) return yield* ImageStoreError.of(image.digest, `the image's user: ${user.left}`)
      const spec = RuntimeSpec.toRuntimeSpec(image.config, { user: user.right })
      if (Either.isLeft(spec)) return yield* ImageStoreError.of(image.digest, `cannot make config.json: ${spec.left}`)
      for (const bundle of bundles) fs.writeFileSync(nodePath.join(bundle, "config.json"), JSON.stringify(spec.right, null, "\t"), { mode: 0o644 })
      const record = measure(rootfs)
      fs.writeFileSync(nodePath.join(dir, BUILD_RECORD), JSON.stringify(record))
      if (!asRoot) fs.writeFileSync(nodePath.join(dir, OWNERSHIP), JSON.stringify([...applier.ownership]))
      return record
    })

  /**
   * The cache entry for `key`, built by `fill` into a fresh folder when missing. The rename
   * publishes it whole; if another build published it first, ours is dropped.
   */
  const cached = (key: string, fill: (dir: string) => Effect.Effect<unknown, RootfsError>) =>
    Effect.gen(function*() {
      const entry = nodePath.join(cacheRoot, key)
      if (lstat(nodePath.join(entry, BUILD_RECORD))?.isFile() === true) return { entry, cached: true }
      yield* Effect.scoped(Effect.gen(function*() {
        const dir = yield* scratch(tempRoot, `${key}-`)
        yield* fill(dir)
        yield* Effect.try({
          try: () => {
            try {
              fs.renameSync(dir, entry)
            } catch (e) {
              // Published meanwhile by a concurrent build: keep that one.
              const code = (e as NodeJS.ErrnoException).code
              if (code !== "ENOTEMPTY" && code !== "EEXIST") throw e
            }
          },
          catch: storeError(entry, "cannot publish the build in the cache")
        })
      }))
      return { entry, cached: false }
    })

  const readRecord = (entry: string) =>
    Effect.try({
      try: () => JSON.parse(fs.readFileSync(nodePath.join(entry, BUILD_RECORD), "utf8")) as BuildRecord,
      catch: storeError(entry, "cannot read the cached build's record")
    })

  /** The cache's bundle of `image`; when it has to be built, `also` (a bundle folder) gets the same. */
  const prepareImage = (image: Effect.Effect.Success<ReturnType<typeof resolveImage>>, options: PrepareOptions, also?: string) =>
    Effect.gen(function*() {
      const hex = Either.getOrThrow(Digest.parse(image.digest))
      const { cached: hit, entry } = yield* cached(`${hex.algorithm}-${hex.hex}-dir`, (dir) => unpack(dir, image, options, also))
      const record = yield* readRecord(entry)
      return { digest: image.digest, platform: image.platform, bundle: entry, config: image.config, files: record.files, bytes: record.bytes, cached: hit, record }
    })

  const prepare = Effect.fn("Rootfs.prepare")(function*(layout: Layout, descriptor: Manifest.Descriptor, options: PrepareOptions) {
    const image = yield* resolveImage(layout, descriptor, options.platform)
    const { record: _record, ...prepared } = yield* prepareImage(image, options)
    return prepared satisfies Prepared
  })

  const build = Effect.fn("Rootfs.build")(function*(layout: Layout, descriptor: Manifest.Descriptor, options: BuildOptions) {
    const out = yield* checkOut(options.out, options.format)
    const image = yield* resolveImage(layout, descriptor, options.platform)
    const hex = Either.getOrThrow(Digest.parse(image.digest))
    if (!asRoot) options.warn?.(`not running as root: the files are owned by you (uid ${process.getuid?.()}), not by the layers' owners, and device nodes are not created${options.format === "ext4" ? " (the ext4 image gets them all the same)" : ""}`)
    const parent = nodePath.dirname(out)
    return yield* Effect.scoped(Effect.gen(function*() {
      const staging = yield* scratch(parent, `.${nodePath.basename(out)}.microagent-`)
      // A bundle not in the cache yet is written into --out's staging folder at the same time.
      const prepared = yield* prepareImage(image, options, options.format === "dir" ? staging : undefined)
      const dirBuild = { entry: prepared.bundle, cached: prepared.cached }
      const dirRecord = prepared.record
      let result = { cached: dirBuild.cached, record: dirRecord }
      if (options.format === "dir") {
        if (lstat(nodePath.join(staging, "rootfs")) === undefined) {
          yield* Exec.copy(nodePath.join(dirBuild.entry, "rootfs"), nodePath.join(staging, "rootfs"))
          yield* Exec.copy(nodePath.join(dirBuild.entry, "config.json"), nodePath.join(staging, "config.json"))
        }
        yield* Effect.try({ try: () => fs.chmodSync(staging, 0o755), catch: storeError(staging, "cannot set its mode") })
        yield* Effect.try({ try: () => fs.renameSync(staging, out), catch: storeError(out, "cannot move the build into place") })
      } else {
        const sizeMib = options.sizeMib ?? Ext4.defaultSizeMib({ entries: dirRecord.files, blockBytes: dirRecord.blockBytes })
        const ext4Build = yield* cached(`${hex.algorithm}-${hex.hex}-ext4-${sizeMib}`, (dir) =>
          Effect.gen(function*() {
            const ownership = asRoot
              ? new Map<string, Applier.Ownership>()
              : new Map(JSON.parse(fs.readFileSync(nodePath.join(dirBuild.entry, OWNERSHIP), "utf8")) as Array<[string, Applier.Ownership]>)
            yield* Ext4.make({ source: nodePath.join(dirBuild.entry, "rootfs"), file: nodePath.join(dir, "rootfs.ext4"), output: out, sizeMib, entries: dirRecord.files, ownership })
            fs.writeFileSync(nodePath.join(dir, BUILD_RECORD), JSON.stringify(dirRecord))
          }))
        result = { cached: result.cached && ext4Build.cached, record: dirRecord }
        const file = nodePath.join(staging, "rootfs.ext4")
        yield* Exec.copy(nodePath.join(ext4Build.entry, "rootfs.ext4"), file)
        yield* Effect.try({ try: () => fs.renameSync(file, out), catch: storeError(out, "cannot move the image into place") })
      }
      return {
        digest: image.digest,
        platform: image.platform,
        format: options.format,
        output: out,
        files: result.record.files,
        bytes: result.record.bytes,
        cached: result.cached
      } satisfies Built
    }))
  }, Effect.catchAllDefect((defect) => {
    // The synchronous file system calls of a build throw: a full disk or a permission is the
    // user's to fix and gets the path; anything else is a bug and stays a defect.
    const e = defect as NodeJS.ErrnoException
    return typeof e?.code === "string" && typeof e.syscall === "string"
      ? Effect.fail(ImageStoreError.of(e.path ?? cacheRoot, `cannot ${e.syscall} it (${e.code})`))
      : Effect.die(defect)
  }))

  // Builds left by a killed process were never renamed into place: after a day they are swept.
  yield* Effect.try(() => {
    for (const name of fs.readdirSync(tempRoot, { withFileTypes: true })) {
      const dir = nodePath.join(tempRoot, name.name)
      const info = lstat(dir)
      if (info !== undefined && Date.now() - info.mtimeMs > 24 * 3600 * 1000) fs.rmSync(dir, { recursive: true, force: true })
    }
  }).pipe(Effect.ignore)

  // The image is pinned while its blobs are read ([M5]): removed from the store and pruned
  // meanwhile, it is still whole; once built, the cache no longer needs the store.
  return Rootfs.of({
    cacheRoot,
    prepare: (layout, descriptor, options) => layout.using({ images: [descriptor] }, prepare(layout, descriptor, options)),
    build: (layout, descriptor, options) => layout.using({ images: [descriptor] }, build(layout, descriptor, options)),
    checkOut
  })
})

/** The service for the user whose home folder is `home`. */
export const layer = (home: string): Layer.Layer<Rootfs> => Layer.effect(Rootfs, make(home))
