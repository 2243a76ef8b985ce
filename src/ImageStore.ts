/**
 * ImageStore: OCI image layouts on disk (image-spec image-layout.md; SPEC [I2], [I4], [P5]).
 *
 * A layout is `oci-layout`, `index.json` and `blobs/<alg>/<hex>`. The shared store is
 * `$HOME/.microagent/images`; any other folder (`--output`) is opened by path. Blobs arrive as temp
 * files in `<root>/.tmp/` (same file system, so the final rename is atomic) and are renamed into
 * place only once the caller has verified them; `index.json` is rewritten read-modify-write under
 * `index.json.lock` with temp + fsync + rename, so concurrent pulls (fibers or processes) into one
 * store never tear it. skopeo (`oci:<dir>:<tag>`) and umoci read what this writes.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Digest from "./domain/Digest.js"
import { ImageStoreError } from "./domain/Errors.js"
import * as Manifest from "./domain/Manifest.js"
import * as SafeFiles from "./storage/SafeFiles.js"
import * as Home from "./Home.js"

/** Annotation keys written on index.json entries ([I2]). */
export const Annotation = {
  RefName: "org.opencontainers.image.ref.name",
  ImageName: "io.containerd.image.name"
} as const

export const layoutFileContent = `{"imageLayoutVersion":"1.0.0"}`

export interface Layout {
  /** The layout's folder (absolute). */
  readonly root: string
  /** Whether the blob is in the layout (and, when `size` is given, has that size). */
  readonly hasBlob: (digest: string, size?: number) => Effect.Effect<boolean, ImageStoreError>
  /** `blobs/<alg>/<hex>` for a digest that parses (anything else fails: no path traversal). */
  readonly blobPath: (digest: string) => Effect.Effect<string, ImageStoreError>
  /**
   * A fresh, empty temp file inside the layout (same file system, so the commit's rename is
   * atomic). It is removed when the scope closes, also on interruption, unless committed.
   */
  readonly tempBlob: Effect.Effect<string, ImageStoreError, Scope.Scope>
  /**
   * Moves a verified temp file (from `tempBlob`) to `blobs/<alg>/<hex>`: fsync, then rename. The
   * caller has checked digest and size while writing. Committing a blob that is already there is
   * fine (same content by definition).
   */
  readonly commitBlob: (tempPath: string, digest: string) => Effect.Effect<void, ImageStoreError>
  /**
   * Stores small content (manifests, configs) under its digest in `algorithm` (default sha256, the
   * one a manifest fetched by a `sha512:` digest is not stored under, [H1]); returns the digest.
   */
  readonly writeBlob: (bytes: Uint8Array, algorithm?: Digest.Algorithm) => Effect.Effect<string, ImageStoreError>
  /** Reads a small blob whole (capped, default 4 MiB) and checks it against its digest. */
  readonly readBlob: (digest: string, maxBytes?: number) => Effect.Effect<Uint8Array, ImageStoreError>
  /** Streams a blob of any size from disk (nothing buffers it whole). */
  readonly streamBlob: (digest: string) => Stream.Stream<Uint8Array, ImageStoreError>
  readonly blobSize: (digest: string) => Effect.Effect<number, ImageStoreError>
  /**
   * The file of a blob about to be sent or read whole, checked first: there, a regular file and
   * not a symbolic link (what a link points at is not the layout's, and may be short, endless or
   * change), and of exactly `size` bytes when a size is given. Each failure is an ImageStoreError
   * naming the blob and the layout.
   */
  readonly blobFile: (digest: string, size?: number) => Effect.Effect<string, ImageStoreError>
  /**
   * Records a top-level manifest in index.json with `org.opencontainers.image.ref.name` = tag
   * (when there is one) and `io.containerd.image.name` = full reference. An entry with the same
   * full reference is replaced (re-pulling a tag moves it), as is one with the same tag and no
   * full reference (as skopeo writes them); other entries and unknown fields are kept. The
   * manifest must already be in the layout. Locked across processes, atomic.
   */
  readonly record: (
    descriptor: Manifest.Descriptor,
    names: { readonly reference: string; readonly tag: string | undefined }
  ) => Effect.Effect<void, ImageStoreError>
  /** index.json's entries (descriptors with their annotations). */
  readonly entries: Effect.Effect<ReadonlyArray<Manifest.Descriptor>, ImageStoreError>
  /**
   * Finds an entry by full reference (`io.containerd.image.name`), else by tag
   * (`org.opencontainers.image.ref.name`); with no name, the only entry. Fails with a clear
   * reason when nothing or more than one entry matches.
   */
  readonly find: (name: string | undefined) => Effect.Effect<Manifest.Descriptor, ImageStoreError>
}

export interface OpenOptions {
  /** `false`: only read an existing layout (a push source); never create one. Default `true`. */
  readonly create?: boolean
}

export interface ImageStoreService {
  /** `$HOME/.microagent/images`. */
  readonly defaultRoot: string
  /**
   * Opens a layout (the shared store when `root` is omitted), creating it when the folder is
   * missing or empty. A folder that is not empty and holds no `oci-layout` is refused untouched.
   */
  readonly open: (root?: string, options?: OpenOptions) => Effect.Effect<Layout, ImageStoreError>
}

export class ImageStore extends Context.Tag("microagent/ImageStore")<ImageStore, ImageStoreService>() {}

export interface Options {
  /** After this long an `index.json.lock` is taken to be left by a crashed process. */
  readonly staleLockAfter?: Duration.DurationInput
  /** How long to wait for another process's lock before giving up. */
  readonly lockTimeout?: Duration.DurationInput
  /** Temp files untouched for this long were left by a crashed process; `open` removes them. */
  readonly staleTempAfter?: Duration.DurationInput
}

const { isAlreadyExists, isNotFound, randomName } = SafeFiles

const emptyIndex = { schemaVersion: 2, mediaType: Manifest.MediaType.OciIndex, manifests: [] }

const serialize = (document: unknown): string => `${JSON.stringify(document, null, 2)}\n`

const TEMP_DIR = ".tmp"
const INDEX = "index.json"
const LAYOUT_FILE = "oci-layout"

const decodeDescriptor = Schema.decodeUnknownEither(Manifest.Descriptor)

type IndexDocument = { readonly [key: string]: unknown; readonly manifests: ReadonlyArray<unknown> }

/** index.json as a plain object, so that unknown fields (top level and in entries) survive a rewrite. */
const parseIndex = (text: string): Either.Either<IndexDocument, string> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Either.left(`index.json is not JSON (${e instanceof Error ? e.message : String(e)})`)
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return Either.left("index.json is not a JSON object")
  const document = json as Record<string, unknown>
  if (document.schemaVersion !== 2) return Either.left("index.json has no schemaVersion 2")
  if (!Array.isArray(document.manifests)) return Either.left("index.json has no manifests list")
  return Either.right(document as IndexDocument)
}

const annotation = (entry: unknown, key: string): string | undefined => {
  if (typeof entry !== "object" || entry === null) return undefined
  const annotations = (entry as { readonly annotations?: unknown }).annotations
  if (typeof annotations !== "object" || annotations === null) return undefined
  const value = (annotations as Record<string, unknown>)[key]
  return typeof value === "string" ? value : undefined
}

const label = (entry: Manifest.Descriptor): string =>
  entry.annotations?.[Annotation.ImageName] ?? entry.annotations?.[Annotation.RefName] ?? entry.digest

export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const home = yield* Home.home
    const defaultRoot = path.join(home, ".microagent", "images")
    const staleLockAfter = options.staleLockAfter ?? "10 seconds"
    const lockTimeout = Duration.decode(options.lockTimeout ?? "30 seconds")
    const staleTempAfter = Duration.toMillis(options.staleTempAfter ?? "1 day")

    const openLayout = (root: string) => {
      const blobsDir = path.join(root, "blobs")
      const tempDir = path.join(root, TEMP_DIR)
      const indexPath = path.join(root, INDEX)
      const lockPath = `${indexPath}.lock`
      const fail = (file: string, what: string) => (e: PlatformError) => ImageStoreError.of(file, `${what} (${SafeFiles.describe(e)})`)

      const resolve = (digest: string) =>
        Either.match(Digest.parse(digest), {
          onLeft: (reason) => Effect.fail(ImageStoreError.of(root, reason)),
          onRight: (parsed) => {
            const file = path.join(blobsDir, parsed.algorithm, parsed.hex)
            // parse admits only [a-f0-9] digests of a fixed length; this is a second fence.
            return path.relative(blobsDir, file).startsWith("..")
              ? Effect.fail(ImageStoreError.of(root, `"${digest}" does not name a blob`))
              : Effect.succeed({ file, digest: parsed })
          }
        })

      const blobPath = Effect.fn("ImageStore.blobPath")(function*(digest: string) {
        return (yield* resolve(digest)).file
      })

      const statBlob = (file: string) =>
        fs.stat(file).pipe(
          Effect.map((info): FileSystem.File.Info | undefined => info),
          Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
          Effect.mapError(fail(file, "cannot read the blob's status"))
        )

      const hasBlob = Effect.fn("ImageStore.hasBlob")(function*(digest: string, size?: number) {
        const { file } = yield* resolve(digest)
        const info = yield* statBlob(file)
        return info !== undefined && info.type === "File" && (size === undefined || Number(info.size) === size)
      })

      const blobSize = Effect.fn("ImageStore.blobSize")(function*(digest: string) {
        const { file } = yield* resolve(digest)
        const info = yield* statBlob(file)
        if (info === undefined || info.type !== "File") return yield* ImageStoreError.of(root, `blob ${digest} is not in the layout`)
        return Number(info.size)
      })

      const blobFile = Effect.fn("ImageStore.blobFile")(function*(digest: string, size?: number) {
        const { digest: parsed, file } = yield* resolve(digest)
        const where = `blob ${digest} (${path.relative(root, file)})`
        const info = yield* statBlob(file)
        if (info === undefined) return yield* ImageStoreError.of(root, `${where} is not in the layout`)
        // A link anywhere below blobs/ resolves elsewhere: compare with where the blob should be.
        const real = fs.realPath(file).pipe(Effect.mapError(fail(file, "cannot resolve the blob's path")))
        const home = fs.realPath(blobsDir).pipe(Effect.mapError(fail(blobsDir, "cannot resolve the path")))
        const target = yield* real
        if (target !== path.join(yield* home, parsed.algorithm, parsed.hex)) {
          return yield* ImageStoreError.of(
            root,
            `${where} is a symbolic link (to ${Digest.quote(target, 200)}); a layout's blobs must be regular files inside it`,
            "replace the link with a copy of the file it points to"
          )
        }
        if (info.type !== "File") return yield* ImageStoreError.of(root, `${where} is not a regular file`)
        if (size !== undefined && Number(info.size) !== size) {
          return yield* ImageStoreError.of(
            root,
            `${where} is ${Number(info.size)} bytes, but its descriptor says ${size}; the layout is damaged`
          )
        }
        return file
      })

      const tempBlob: Effect.Effect<string, ImageStoreError, Scope.Scope> = Effect.acquireRelease(
        Effect.suspend(() => {
          const file = path.join(tempDir, `blob-${randomName()}`)
          return fs.makeDirectory(tempDir, { recursive: true }).pipe(
            Effect.zipRight(fs.writeFile(file, new Uint8Array(0), { flag: "wx", mode: 0o644 })),
            Effect.as(file),
            Effect.mapError(fail(tempDir, "cannot create a temp file"))
          )
        }),
        // After a commit the path is gone and this is a no-op; otherwise the partial blob goes.
        (file) => Effect.ignore(fs.remove(file, { force: true }))
      ).pipe(Effect.withSpan("ImageStore.tempBlob"))

      const commitBlob = Effect.fn("ImageStore.commitBlob")(function*(tempPath: string, digest: string) {
        const { file, digest: parsed } = yield* resolve(digest)
        const temp = path.resolve(tempPath)
        if (path.dirname(temp) !== tempDir) {
          return yield* ImageStoreError.of(temp, `not a temp file of the layout at ${root}; use tempBlob`)
        }
        yield* Effect.scoped(Effect.gen(function*() {
          // Durable before it is visible: a crash never leaves a named blob with missing content.
          const handle = yield* fs.open(temp, { flag: "r" })
          yield* handle.sync
        })).pipe(
          Effect.zipRight(fs.chmod(temp, 0o644)),
          Effect.zipRight(fs.makeDirectory(path.join(blobsDir, parsed.algorithm), { recursive: true })),
          // Renaming onto an existing blob replaces identical content atomically: idempotent.
          Effect.zipRight(fs.rename(temp, file)),
          Effect.mapError(fail(file, "cannot store the blob"))
        )
      })

      const writeBlob = Effect.fn("ImageStore.writeBlob")(function*(bytes: Uint8Array, algorithm: Digest.Algorithm = "sha256") {
        const digest = Digest.format(Digest.of(bytes, algorithm))
        if (yield* hasBlob(digest, bytes.length)) return digest
        yield* Effect.scoped(Effect.gen(function*() {
          const temp = yield* tempBlob
          yield* fs.writeFile(temp, bytes).pipe(Effect.mapError(fail(temp, "cannot write the blob")))
          yield* commitBlob(temp, digest)
        }))
        return digest
      })

      const readBlob = Effect.fn("ImageStore.readBlob")(function*(digest: string, maxBytes: number = Manifest.maxBytes) {
        const { file, digest: parsed } = yield* resolve(digest)
        const size = yield* blobSize(digest)
        if (size > maxBytes) {
          return yield* ImageStoreError.of(file, `blob is ${size} bytes, more than the ${maxBytes} bytes allowed here`)
        }
        const bytes = yield* fs.readFile(file).pipe(Effect.mapError(fail(file, "cannot read the blob")))
        if (!Digest.equals(Digest.of(bytes, parsed.algorithm), parsed)) {
          return yield* ImageStoreError.of(file, "the blob does not match its digest (the layout is damaged)")
        }
        return bytes
      })

      const streamBlob = (digest: string): Stream.Stream<Uint8Array, ImageStoreError> =>
        Stream.unwrap(Effect.map(resolve(digest), ({ file }) =>
          // 256 KiB reads, 4 ahead: a quarter of the per-chunk stream costs of the default 64 KiB, bounded memory.
          fs.stream(file, { chunkSize: FileSystem.KiB(256), bufferSize: 4 }).pipe(
            Stream.mapError((e) =>
              isNotFound(e)
                ? ImageStoreError.of(root, `blob ${digest} is not in the layout`)
                : fail(file, "cannot read the blob")(e)
            )
          ))).pipe(Stream.withSpan("ImageStore.streamBlob"))

      // ---- index.json: read, and read-modify-write under a lock file --------------------------

      const readIndex = Effect.gen(function*() {
        const text = yield* fs.readFileString(indexPath).pipe(Effect.mapError(fail(indexPath, "cannot read it")))
        return yield* Either.mapLeft(parseIndex(text), (reason) => ImageStoreError.of(indexPath, reason))
      })

      const lock = SafeFiles.withLockFile(fs, lockPath, { staleAfter: staleLockAfter, timeout: lockTimeout })
      const withLock = <A, E>(body: Effect.Effect<A, E>): Effect.Effect<A, E | ImageStoreError> =>
        lock(body).pipe(Effect.catchIf((e): e is SafeFiles.LockFailed => e instanceof SafeFiles.LockFailed, (e) =>
          Effect.fail(
            e.cause === undefined
              ? ImageStoreError.of(
                root,
                `index.json is locked by another process (${lockPath})`,
                "try again; if no other microagent is running, remove the lock file"
              )
              : fail(lockPath, "cannot take the lock")(e.cause)
          )))

      /** A crash leaves the old index.json or the new one. */
      const writeIndex = (text: string) =>
        fs.makeDirectory(tempDir, { recursive: true }).pipe(
          Effect.zipRight(SafeFiles.writeAtomic(fs, indexPath, new TextEncoder().encode(text), { tempDir, mode: 0o644 })),
          Effect.mapError(fail(indexPath, "cannot write it"))
        )

      const record = Effect.fn("ImageStore.record")(function*(
        descriptor: Manifest.Descriptor,
        names: { readonly reference: string; readonly tag: string | undefined }
      ) {
        if (!(yield* hasBlob(descriptor.digest, descriptor.size))) {
          return yield* ImageStoreError.of(
            root,
            `cannot record ${names.reference}: its manifest ${descriptor.digest} (${descriptor.size} bytes) is not in the layout`
          )
        }
        const entry: Manifest.Descriptor = {
          ...descriptor,
          annotations: {
            ...descriptor.annotations,
            ...(names.tag === undefined ? {} : { [Annotation.RefName]: names.tag }),
            [Annotation.ImageName]: names.reference
          }
        }
        const replaces = (old: unknown): boolean => {
          const imageName = annotation(old, Annotation.ImageName)
          if (imageName !== undefined) return imageName === names.reference
          // An entry with our tag but no full name (skopeo, umoci) would make the tag ambiguous.
          return names.tag !== undefined && annotation(old, Annotation.RefName) === names.tag
        }
        yield* withLock(Effect.gen(function*() {
          const current = yield* readIndex
          const manifests: Array<unknown> = []
          let placed = false
          for (const old of current.manifests) {
            if (!replaces(old)) manifests.push(old)
            else if (!placed) {
              manifests.push(entry)
              placed = true
            }
          }
          if (!placed) manifests.push(entry)
          const before = serialize(current)
          const after = serialize({ ...current, manifests })
          if (after !== before) yield* writeIndex(after)
        }))
      })

      const entries = Effect.gen(function*() {
        const document = yield* readIndex
        return yield* Effect.forEach(document.manifests, (raw, i) =>
          Either.match(decodeDescriptor(raw), {
            onLeft: (e) =>
              Effect.fail(ImageStoreError.of(indexPath, `entry ${i} is not a descriptor: ${ParseResult.TreeFormatter.formatErrorSync(e)}`)),
            onRight: Effect.succeed
          }))
      }).pipe(Effect.withSpan("ImageStore.entries"))

      const find = Effect.fn("ImageStore.find")(function*(name: string | undefined) {
        const all = yield* entries
        const listing = all.length === 0 ? "it holds no images" : `it holds ${all.map(label).join(", ")}`
        if (name === undefined) {
          if (all.length === 1) return all[0]!
          return yield* all.length === 0
            ? ImageStoreError.of(root, "the layout holds no images")
            : ImageStoreError.of(root, `the layout holds ${all.length} images; name one (${all.map(label).join(", ")})`)
        }
        const byReference = all.filter((e) => e.annotations?.[Annotation.ImageName] === name)
        const matches = byReference.length > 0 ? byReference : all.filter((e) => e.annotations?.[Annotation.RefName] === name)
        if (matches.length === 1) return matches[0]!
        if (matches.length === 0) return yield* ImageStoreError.of(root, `no image named "${name}" (${listing})`)
        return yield* ImageStoreError.of(
          root,
          `"${name}" is ambiguous: ${matches.length} images match (${matches.map((e) => `${label(e)} ${e.digest}`).join(", ")})`,
          "name the image by its full reference"
        )
      })

      /** Creates a missing index.json under the same lock as every write, then checks it parses. */
      const ensureIndex = Effect.gen(function*() {
        const exists = fs.exists(indexPath).pipe(Effect.mapError(fail(indexPath, "cannot read it")))
        if (!(yield* exists)) {
          yield* withLock(Effect.gen(function*() {
            if (!(yield* exists)) yield* writeIndex(serialize(emptyIndex))
          }))
        }
        // Fail at open, not halfway through a pull, when index.json is unusable.
        yield* readIndex
      })

      const layout: Layout = {
        root,
        hasBlob,
        blobPath,
        tempBlob,
        commitBlob,
        writeBlob,
        readBlob,
        streamBlob,
        blobSize,
        blobFile,
        record,
        entries,
        find
      }
      return { layout, ensureIndex }
    }

    /** Reads `oci-layout`; an empty file is one another process is creating right now: wait for it. */
    const checkLayoutFile = (file: string) =>
      fs.readFileString(file).pipe(
        Effect.mapError((e) => ImageStoreError.of(file, `cannot read it (${SafeFiles.describe(e)})`)),
        Effect.filterOrFail((text) => text.trim() !== "", () => "empty" as const),
        Effect.retry({ while: (e) => e === "empty", schedule: Schedule.spaced("10 millis").pipe(Schedule.upTo("1 second")) }),
        Effect.mapError((e) => e === "empty" ? ImageStoreError.of(file, "oci-layout is empty") : e),
        Effect.flatMap((text) => {
          let version: unknown
          try {
            version = (JSON.parse(text) as { readonly imageLayoutVersion?: unknown }).imageLayoutVersion
          } catch {
            return Effect.fail(ImageStoreError.of(file, "oci-layout is not JSON"))
          }
          return typeof version === "string" && /^1\.\d+\.\d+$/.test(version)
            ? Effect.void
            : Effect.fail(ImageStoreError.of(file, `unsupported image layout version ${JSON.stringify(version)} (microagent reads 1.x)`))
        })
      )

    /** Best effort: temp files that nobody has touched for a day were left by a crashed process. */
    const sweepTemp = (tempDir: string) =>
      fs.readDirectory(tempDir).pipe(
        Effect.flatMap((names) =>
          Effect.forEach(names, (name) => {
            const file = path.join(tempDir, name)
            return fs.stat(file).pipe(Effect.flatMap((info) =>
              info.mtime._tag === "Some" && Date.now() - info.mtime.value.getTime() > staleTempAfter
                ? fs.remove(file, { force: true })
                : Effect.void
            ))
          }, { discard: true })),
        Effect.ignore
      )

    const open = Effect.fn("ImageStore.open")(function*(requested?: string, openOptions: OpenOptions = {}) {
      const root = path.resolve(requested ?? defaultRoot)
      const failAt = (what: string) => (e: PlatformError) => ImageStoreError.of(root, `${what} (${SafeFiles.describe(e)})`)
      const info = yield* fs.stat(root).pipe(
        Effect.map((i): FileSystem.File.Info | undefined => i),
        Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
        Effect.mapError(failAt("cannot read it"))
      )
      if (info !== undefined && info.type !== "Directory") {
        return yield* ImageStoreError.of(root, "is not a folder, so it cannot hold an OCI image layout")
      }
      if (info === undefined && openOptions.create === false) {
        return yield* ImageStoreError.of(root, "does not exist, so it holds no OCI image layout")
      }
      if (info === undefined) {
        // The shared store's parent is ~/.microagent, private like the auth store beside it ([C2]).
        if (root === defaultRoot) {
          yield* fs.makeDirectory(path.dirname(root), { recursive: true, mode: 0o700 }).pipe(Effect.mapError(failAt("cannot create it")))
        }
        yield* fs.makeDirectory(root, { recursive: true }).pipe(Effect.mapError(failAt("cannot create it")))
      }
      const layoutFile = path.join(root, LAYOUT_FILE)
      const names = yield* fs.readDirectory(root).pipe(Effect.mapError(failAt("cannot list it")))
      if (!names.includes(LAYOUT_FILE) && openOptions.create === false) {
        return yield* ImageStoreError.of(root, "is not an OCI image layout (no oci-layout file)")
      }
      if (!names.includes(LAYOUT_FILE)) {
        // oci-layout is always created first, so any other entry means the folder is someone else's.
        if (names.length > 0) {
          return yield* ImageStoreError.of(
            root,
            "is not empty and is not an OCI image layout (no oci-layout file); refusing to write into it",
            "choose a new or empty folder"
          )
        }
        yield* fs.writeFileString(layoutFile, layoutFileContent, { flag: "wx", mode: 0o644 }).pipe(
          Effect.catchIf(isAlreadyExists, () => Effect.void),
          Effect.mapError(failAt("cannot create oci-layout"))
        )
      }
      yield* checkLayoutFile(layoutFile)
      yield* fs.makeDirectory(path.join(root, "blobs", "sha256"), { recursive: true }).pipe(Effect.mapError(failAt("cannot create blobs/")))
      yield* fs.makeDirectory(path.join(root, TEMP_DIR), { recursive: true }).pipe(Effect.mapError(failAt("cannot create .tmp/")))
      yield* sweepTemp(path.join(root, TEMP_DIR))
      const { ensureIndex, layout } = openLayout(root)
      yield* ensureIndex
      return layout
    })

    return ImageStore.of({ defaultRoot, open })
  })

/** Needs FileSystem, Path and `HOME` from the ConfigProvider. */
export const layerWith = (options: Options) => Layer.effect(ImageStore, make(options))

/** The live layer with default options. */
export const layer: Layer.Layer<ImageStore, ConfigError.ConfigError, FileSystem.FileSystem | Path.Path> = layerWith({})
