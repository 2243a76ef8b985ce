/**
 * ImageStore: OCI image layouts on disk (image-spec image-layout.md; SPEC [I2], [I4], [P5], [M5]).
 *
 * A layout is `oci-layout`, `index.json` and `blobs/<alg>/<hex>`. The shared store is
 * `$HOME/.microagent/images`; any other folder (`--output`) is opened by path. Blobs arrive as temp
 * files in `<root>/.tmp/` (same file system, so the final rename is atomic) and are renamed into
 * place only once the caller has verified them; `index.json` is rewritten read-modify-write under
 * `index.json.lock` with temp + fsync + rename, so concurrent pulls (fibers or processes) into one
 * store never tear it. Folders are made 0755 (`~/.microagent` 0700) and files 0644 whatever the
 * umask. skopeo and umoci read what this writes.
 *
 * Naming ([I2]): in the shared store an entry's `org.opencontainers.image.ref.name` is the full
 * reference, like its `io.containerd.image.name`, so two images with one tag never collide and
 * `skopeo inspect oci:<store>:<full ref>` finds each; a `--output` layout names entries by tag. A
 * store written by an earlier version (the tag as `ref.name`) is read as it is and renamed on its
 * next change.
 *
 * Garbage collection ([M5]): `prune` deletes, holding the index lock, every blob that no entry of
 * index.json reaches. What a command is about to use but index.json does not (yet, or any more)
 * reach, it pins first: under the same lock it writes `.pins/<pid>-<random>` listing it, and
 * removes that file when done. prune keeps what the pins of running processes list, and removes
 * the pins of processes that are gone. Only the shared store is pruned, so only it is pinned: a
 * push from someone's layout writes nothing there.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Clock from "effect/Clock"
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
import * as StoreWalk from "./storage/StoreWalk.js"
import * as Home from "./Home.js"

/** Annotation keys written on index.json entries ([I2], [M5]). */
export const Annotation = {
  RefName: "org.opencontainers.image.ref.name",
  ImageName: "io.containerd.image.name",
  /** When the shared store recorded the entry, RFC 3339 in UTC. */
  PulledAt: "dev.microagent.pulled-at"
} as const

export const layoutFileContent = `{"imageLayoutVersion":"1.0.0"}`

/** What a command is about to use, kept from `prune` while it does ([M5]). */
export interface Pins {
  /** Blobs kept as they are: a pull's manifests and blobs, written already or about to be. */
  readonly blobs?: Iterable<string> | undefined
  /** Manifests or indexes kept with everything they reach, as index.json's entries are. */
  readonly images?: Iterable<Manifest.Descriptor> | undefined
}

/** The names an image is recorded under: its full reference, and its tag when it has one. */
export interface RecordNames {
  readonly reference: string
  readonly tag: string | undefined
}

export interface Layout {
  /** The layout's folder (absolute). */
  readonly root: string
  /** Whether this is the shared store (full references as `ref.name`; pins honoured). */
  readonly shared: boolean
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
   * Records a top-level manifest in index.json ([I2]). In the shared store `ref.name` and
   * `io.containerd.image.name` are both the full reference, with `dev.microagent.pulled-at`;
   * elsewhere `ref.name` is the tag (when there is one). An entry with the same full reference is
   * replaced (re-pulling a tag moves it); in a layout, so is one with the same tag and no full
   * reference (as skopeo writes them). Other entries and unknown fields are kept. The manifest
   * must already be in the layout. Locked across processes, atomic.
   */
  readonly record: (
    descriptor: Manifest.Descriptor,
    names: RecordNames
  ) => Effect.Effect<void, ImageStoreError>
  /**
   * The entry `record` would replace for `names`, when it is the only one and already carries
   * both names as `record` writes them: recording that same manifest again would change nothing
   * but its `pulled-at`. `undefined` otherwise.
   */
  readonly recorded: (
    names: RecordNames
  ) => Effect.Effect<Manifest.Descriptor | undefined, ImageStoreError>
  /** index.json's entries (descriptors with their annotations). */
  readonly entries: Effect.Effect<ReadonlyArray<Manifest.Descriptor>, ImageStoreError>
  /**
   * Finds an entry by full reference (`io.containerd.image.name`), else by `ref.name` (a tag, or a
   * full reference); with no name, the only entry. Fails with a clear reason when nothing or more
   * than one entry matches; the hint of the latter spells each one so that it is found.
   */
  readonly find: (name: string | undefined) => Effect.Effect<Manifest.Descriptor, ImageStoreError>
  /**
   * Pins what is about to be used until the scope closes ([M5]): written under the index lock,
   * so a prune either finished before (and what it deleted is seen missing) or sees the pin.
   * Removed however the scope ends. A no-op outside the shared store.
   */
  readonly pin: (pins: Pins) => Effect.Effect<void, ImageStoreError, Scope.Scope>
  /** Runs `effect` with `pins` pinned. */
  readonly using: <A, E, R>(pins: Pins, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ImageStoreError, Exclude<R, Scope.Scope>>
}

export interface OpenOptions {
  /** `false`: only read an existing layout (a push source); never create one. Default `true`. */
  readonly create?: boolean
}

/** An image of the shared store, as `images list` shows it ([M5]). */
export interface StoredImage {
  /** The full reference it was pulled as (else its `ref.name`, else its digest). */
  readonly reference: string
  readonly digest: string
  readonly mediaType: string
  /** `os/arch[/variant]` of an image (from its config), or of the images of an index. */
  readonly platforms: ReadonlyArray<string>
  /** Bytes on disk of the blobs it reaches, itself included. */
  readonly size: number
  /** RFC 3339; undefined for entries recorded by other tools or earlier versions. */
  readonly pulledAt: string | undefined
  /** Every blob it reaches, each once. */
  readonly blobs: ReadonlySet<string>
}

export interface Inventory {
  readonly images: ReadonlyArray<StoredImage>
  /** Bytes on disk of every blob some image reaches, shared blobs counted once. */
  readonly totalBytes: number
  /** Manifests that could not be read: what they name is unknown, so it is not counted. */
  readonly problems: ReadonlyArray<string>
}

export interface Removal {
  /** Per name given, in order: the entries removed (empty for none). */
  readonly removed: ReadonlyArray<ReadonlyArray<{ readonly name: string; readonly digest: string }>>
  /** The positions of the names that matched nothing; when any, nothing was removed. */
  readonly missing: ReadonlyArray<number>
}

export interface PruneReport {
  readonly dryRun: boolean
  /** Blobs deleted (or, with `dryRun`, that would be) and their bytes. */
  readonly blobs: number
  readonly bytes: number
  /** Temp files left by crashed processes. */
  readonly tempFiles: number
  readonly tempBytes: number
  /** Pins of processes that are gone. */
  readonly stalePins: number
  /** Manifests that could not be read; what they name was kept where it could be told. */
  readonly problems: ReadonlyArray<string>
}

export interface ImageStoreService {
  /** `$HOME/.microagent/images`. */
  readonly defaultRoot: string
  /**
   * Opens a layout (the shared store when `root` is omitted), creating it when the folder is
   * missing or empty. A folder that is not empty and holds no `oci-layout` is refused untouched.
   */
  readonly open: (root?: string, options?: OpenOptions) => Effect.Effect<Layout, ImageStoreError>
  /** Every image of the shared store with its platforms and size ([M5]); none when there is no store. */
  readonly list: Effect.Effect<Inventory, ImageStoreError>
  /**
   * Removes entries from the shared store, all or nothing, under one lock ([M5]). Each element of
   * `names` is one image's spellings, tried in order: the first that names an entry (by full
   * reference, or by `ref.name` when an entry has no full reference) removes every entry it names.
   */
  readonly remove: (names: ReadonlyArray<ReadonlyArray<string>>) => Effect.Effect<Removal, ImageStoreError>
  /**
   * Deletes every blob of the shared store that no entry and no live pin reaches, and stale temp
   * files, holding the index lock ([M5]). `dryRun` deletes nothing and reports the same.
   */
  readonly prune: (options?: { readonly dryRun?: boolean }) => Effect.Effect<PruneReport, ImageStoreError>
}

export class ImageStore extends Context.Tag("microagent/ImageStore")<ImageStore, ImageStoreService>() {}

export interface Options {
  /** After this long an `index.json.lock` is taken to be left by a crashed process. */
  readonly staleLockAfter?: Duration.DurationInput
  /** How long to wait for another process's lock before giving up. */
  readonly lockTimeout?: Duration.DurationInput
  /** Temp files untouched for this long were left by a crashed process; `open` and `prune` remove them. */
  readonly staleTempAfter?: Duration.DurationInput
}

const { isAlreadyExists, isNotFound, randomName } = SafeFiles

const serialize = (document: unknown): string => `${JSON.stringify(document, null, 2)}\n`

const TEMP_DIR = ".tmp"
const PINS_DIR = ".pins"
const INDEX = "index.json"
const LAYOUT_FILE = "oci-layout"
const algorithms: ReadonlyArray<Digest.Algorithm> = ["sha256", "sha512"]
const folderMode = 0o755
const fileMode = 0o644

// ---- the files' formats, decoded at the boundary ----------------------------------------------

const IndexJson = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.optional(Schema.String),
  manifests: Schema.Array(Manifest.Descriptor)
})
type IndexJson = typeof IndexJson.Type

const emptyIndex: IndexJson = { schemaVersion: 2, mediaType: Manifest.MediaType.OciIndex, manifests: [] }

// Fields microagent does not know (top level, in entries, in their platforms) survive a rewrite, in their order.
const keepUnknown = { onExcessProperty: "preserve", propertyOrder: "original" } as const
const decodeIndexJson = Schema.decodeUnknownEither(IndexJson, keepUnknown)
const decodeJson = Schema.decodeUnknownEither(Schema.parseJson())

const LayoutFile = Schema.Struct({ imageLayoutVersion: Schema.Unknown })
const decodeLayoutFile = Schema.decodeUnknownEither(LayoutFile)
const isSupportedVersion = Schema.is(Schema.String.pipe(Schema.pattern(/^1\.\d+\.\d+$/)))

const PinFile = Schema.Struct({ blobs: Schema.Array(Schema.String), images: Schema.Array(Manifest.Descriptor) })
const decodePinFile = Schema.decodeUnknownEither(PinFile)
const pinName = /^(\d+)-[0-9a-f]+$/

/** The first thing wrong in a document, on one line: `where: what`. */
const firstIssue = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "invalid"
  const where = issue.path.map((key, i) => typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`).join("")
  return `${where === "" ? "" : `${where}: `}${issue.message.replace(/\s+/g, " ")}`
}

/** Whether a process of this machine is running (one we may not signal is). */
const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return !(e instanceof Error && "code" in e && e.code === "ESRCH")
  }
}

const nameOf = (entry: Manifest.Descriptor): string | undefined => entry.annotations?.[Annotation.ImageName]

const label = (entry: Manifest.Descriptor): string => nameOf(entry) ?? entry.annotations?.[Annotation.RefName] ?? entry.digest

/** Whether `name` names `entry`: its full reference, or its `ref.name` when it has none. */
const isNamed = (entry: Manifest.Descriptor, name: string): boolean =>
  (nameOf(entry) ?? entry.annotations?.[Annotation.RefName]) === name

const rfc3339 = (millis: number): string => new Date(millis).toISOString().replace(/\.\d{3}Z$/, "Z")

export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const home = yield* Home.home
    const defaultRoot = path.join(home, ".microagent", "images")
    const staleLockAfter = options.staleLockAfter ?? "10 seconds"
    const lockTimeout = Duration.decode(options.lockTimeout ?? "30 seconds")
    const staleTempAfter = Duration.toMillis(options.staleTempAfter ?? "1 day")

    /**
     * Creates `dir` and its missing parents with exactly `mode`: `mode` alone is filtered by the
     * umask, which under `umask 000` would leave the store world-writable. A folder that exists
     * (made by a concurrent process, or by the user) is left as it is.
     */
    const makeFolder = (dir: string, mode: number): Effect.Effect<void, PlatformError> =>
      fs.makeDirectory(dir, { mode }).pipe(
        Effect.zipRight(fs.chmod(dir, mode)),
        Effect.catchIf(isAlreadyExists, () => Effect.void),
        Effect.catchIf(
          (e) => isNotFound(e) && path.dirname(dir) !== dir,
          () => makeFolder(path.dirname(dir), mode).pipe(Effect.zipRight(makeFolder(dir, mode)))
        )
      )

    const openLayout = (root: string, shared: boolean) => {
      const blobsDir = path.join(root, "blobs")
      const tempDir = path.join(root, TEMP_DIR)
      const pinsDir = path.join(root, PINS_DIR)
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

      const statFile = (file: string, what: string) =>
        fs.stat(file).pipe(
          Effect.map((info): FileSystem.File.Info | undefined => info),
          Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
          Effect.mapError(fail(file, what))
        )
      const statBlob = (file: string) => statFile(file, "cannot read the blob's status")

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
          return makeFolder(tempDir, folderMode).pipe(
            Effect.zipRight(fs.writeFile(file, new Uint8Array(0), { flag: "wx", mode: fileMode })),
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
          Effect.zipRight(fs.chmod(temp, fileMode)),
          Effect.zipRight(makeFolder(path.join(blobsDir, parsed.algorithm), folderMode)),
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
        const json = decodeJson(text)
        if (Either.isLeft(json)) return yield* ImageStoreError.of(indexPath, `index.json is not JSON (${firstIssue(json.left)})`)
        return yield* Either.mapLeft(
          decodeIndexJson(json.right),
          (e) => ImageStoreError.of(indexPath, `index.json is not an OCI image index: ${firstIssue(e)}`)
        )
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

      /** Replaces `target` whole (temp in .tmp, fsync, rename): a crash leaves the old file or the new one. */
      const replaceFile = (target: string, text: string) =>
        makeFolder(tempDir, folderMode).pipe(
          Effect.zipRight(SafeFiles.writeAtomic(fs, target, new TextEncoder().encode(text), { tempDir, mode: fileMode }))
        )
      const writeIndex = (text: string) => replaceFile(indexPath, text).pipe(Effect.mapError(fail(indexPath, "cannot write it")))

      /** The shared store's entries named the way earlier versions did (`ref.name` = the tag) get their full reference there. */
      const migrate = (entries: ReadonlyArray<Manifest.Descriptor>): ReadonlyArray<Manifest.Descriptor> =>
        shared
          ? entries.map((entry) => {
            const name = nameOf(entry)
            return name === undefined || entry.annotations?.[Annotation.RefName] === name
              ? entry
              : { ...entry, annotations: { ...entry.annotations, [Annotation.RefName]: name } }
          })
          : entries

      /** Read-modify-write of index.json's entries under the lock; a change that changes nothing writes nothing. */
      const updateEntries = <A, E>(change: (entries: ReadonlyArray<Manifest.Descriptor>) => Either.Either<readonly [ReadonlyArray<Manifest.Descriptor>, A], E>) =>
        withLock(Effect.gen(function*() {
          const current = yield* readIndex
          const [entries, result] = yield* change(current.manifests)
          const before = serialize(current)
          const after = serialize({ ...current, manifests: migrate(entries) })
          if (after !== before) yield* writeIndex(after)
          return result
        }))

      /** What an entry is named in this layout's `ref.name`: the full reference in the shared store, else the tag. */
      const refNameOf = (names: RecordNames) => shared ? names.reference : names.tag

      /** Whether `record` of `names` replaces the entry `old`. */
      const replacedBy = (names: RecordNames) => (old: Manifest.Descriptor): boolean => {
        const imageName = nameOf(old)
        if (imageName !== undefined) return imageName === names.reference
        // An entry with our ref.name but no full name (skopeo, umoci) would make the name ambiguous.
        const refName = refNameOf(names)
        return refName !== undefined && old.annotations?.[Annotation.RefName] === refName
      }

      const record = Effect.fn("ImageStore.record")(function*(
        descriptor: Manifest.Descriptor,
        names: RecordNames
      ) {
        if (!(yield* hasBlob(descriptor.digest, descriptor.size))) {
          return yield* ImageStoreError.of(
            root,
            `cannot record ${names.reference}: its manifest ${descriptor.digest} (${descriptor.size} bytes) is not in the layout`
          )
        }
        const refName = refNameOf(names)
        const pulledAt = shared ? { [Annotation.PulledAt]: rfc3339(yield* Clock.currentTimeMillis) } : {}
        const entry: Manifest.Descriptor = {
          ...descriptor,
          annotations: {
            ...descriptor.annotations,
            ...(refName === undefined ? {} : { [Annotation.RefName]: refName }),
            [Annotation.ImageName]: names.reference,
            ...pulledAt
          }
        }
        const replaces = replacedBy(names)
        yield* updateEntries((current) => {
          const manifests: Array<Manifest.Descriptor> = []
          let placed = false
          for (const old of current) {
            if (!replaces(old)) manifests.push(old)
            else if (!placed) {
              manifests.push(entry)
              placed = true
            }
          }
          if (!placed) manifests.push(entry)
          return Either.right([manifests, undefined] as const)
        })
      })

      const entries = readIndex.pipe(Effect.map((index) => index.manifests), Effect.withSpan("ImageStore.entries"))

      const recorded = Effect.fn("ImageStore.recorded")(function*(names: RecordNames) {
        const replaced = (yield* entries).filter(replacedBy(names))
        if (replaced.length !== 1) return undefined
        const [entry] = replaced as [Manifest.Descriptor]
        const refName = refNameOf(names)
        const named = nameOf(entry) === names.reference && (refName === undefined || entry.annotations?.[Annotation.RefName] === refName)
        return named ? entry : undefined
      })

      /** How a user names `entry` so that `find` returns it: what a command takes for this layout. */
      const spelling = (entry: Manifest.Descriptor): string | undefined => {
        const name = nameOf(entry)
        return name === undefined ? undefined : shared ? name : `oci:${root}:${name}`
      }

      const find = Effect.fn("ImageStore.find")(function*(name: string | undefined) {
        const all = yield* entries
        const listing = all.length === 0 ? "it holds no images" : `it holds ${all.map(label).join(", ")}`
        if (name === undefined) {
          if (all.length === 1) return all[0]!
          return yield* all.length === 0
            ? ImageStoreError.of(root, "the layout holds no images")
            : ImageStoreError.of(root, `the layout holds ${all.length} images; name one (${all.map(label).join(", ")})`)
        }
        const byReference = all.filter((e) => nameOf(e) === name)
        const matches = byReference.length > 0 ? byReference : all.filter((e) => e.annotations?.[Annotation.RefName] === name)
        if (matches.length === 1) return matches[0]!
        if (matches.length === 0) return yield* ImageStoreError.of(root, `no image named "${name}" (${listing})`)
        const spellings = matches.flatMap((e) => spelling(e) ?? [])
        return yield* ImageStoreError.of(
          root,
          `"${name}" is ambiguous: ${matches.length} images match (${matches.map((e) => `${label(e)} ${e.digest}`).join(", ")})`,
          spellings.length === matches.length
            ? `name one by its full reference: ${spellings.join(" or ")}`
            : `some of them have no full reference (io.containerd.image.name); give each a ref.name of its own in ${indexPath}`
        )
      })

      // ---- pins ([M5]) -------------------------------------------------------------------------

      const pin = (pins: Pins): Effect.Effect<void, ImageStoreError, Scope.Scope> => {
        if (!shared) return Effect.void
        const file = path.join(pinsDir, `${process.pid}-${randomName()}`)
        const content = serialize({ blobs: [...pins.blobs ?? []], images: [...pins.images ?? []] })
        // The finalizer first: interrupted while waiting for the lock, or at any point after, the pin goes.
        return Effect.addFinalizer(() => Effect.ignore(fs.remove(file, { force: true }))).pipe(
          Effect.zipRight(withLock(
            makeFolder(pinsDir, folderMode).pipe(
              Effect.zipRight(replaceFile(file, content)),
              Effect.mapError(fail(file, "cannot pin the blobs in use"))
            )
          )),
          Effect.withSpan("ImageStore.pin")
        )
      }

      const using = <A, E, R>(pins: Pins, effect: Effect.Effect<A, E, R>) => Effect.scoped(Effect.zipRight(pin(pins), effect))

      // ---- what entries reach, for list and prune ----------------------------------------------

      const inventory = Effect.gen(function*() {
        const all = yield* entries
        const read = StoreWalk.manifestReader(layout)
        const size = StoreWalk.sizer(layout)
        const problems: Array<string> = []
        const union = new Set<string>()
        const images: Array<StoredImage> = []
        for (const entry of all) {
          const blobs = new Set<string>()
          yield* StoreWalk.reach(read, blobs, (p) => void problems.push(p))(entry, label(entry))
          for (const blob of blobs) union.add(blob)
          images.push({
            reference: label(entry),
            digest: entry.digest,
            mediaType: entry.mediaType,
            platforms: yield* StoreWalk.platformsOf(layout, read, entry),
            size: yield* size(blobs),
            pulledAt: entry.annotations?.[Annotation.PulledAt],
            blobs
          })
        }
        return { images, totalBytes: yield* size(union), problems } satisfies Inventory
      }).pipe(Effect.withSpan("ImageStore.list"))

      const remove = (spellings: ReadonlyArray<ReadonlyArray<string>>) =>
        updateEntries<Removal, never>((current) => {
          const chosen = spellings.map((names) => names.find((name) => current.some((e) => isNamed(e, name))))
          const missing = chosen.flatMap((name, i) => name === undefined ? [i] : [])
          if (missing.length > 0) return Either.right([current, { removed: [], missing }] as const)
          const removed = chosen.map((name) =>
            current.filter((e) => isNamed(e, name!)).map((e) => ({ name: label(e), digest: e.digest }))
          )
          const kept = current.filter((e) => !chosen.some((name) => isNamed(e, name!)))
          return Either.right([kept, { removed, missing: [] }] as const)
        }).pipe(Effect.withSpan("ImageStore.remove"))

      /** The pins of running processes; those of processes that are gone are dropped (unless `dryRun`). */
      const readPins = (dryRun: boolean) =>
        Effect.gen(function*() {
          const found = yield* fs.readDirectory(pinsDir).pipe(
            Effect.catchIf(isNotFound, () => Effect.succeed<ReadonlyArray<string>>([])),
            Effect.mapError(fail(pinsDir, "cannot list the pins"))
          )
          const blobs: Array<string> = []
          const images: Array<Manifest.Descriptor> = []
          let stale = 0
          for (const name of found) {
            const pid = pinName.exec(name)?.[1]
            if (pid === undefined) continue
            const file = path.join(pinsDir, name)
            if (!isRunning(Number(pid))) {
              stale++
              if (!dryRun) yield* Effect.ignore(fs.remove(file, { force: true }))
              continue
            }
            const text = yield* fs.readFileString(file).pipe(
              Effect.map((t): string | undefined => t),
              // Its process let go of it meanwhile.
              Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
              Effect.mapError(fail(file, "cannot read the pin"))
            )
            if (text === undefined) continue
            // A running process's pin that cannot be read pins something unknown: deleting anything could break it.
            const decoded = Either.flatMap(decodeJson(text), decodePinFile)
            if (Either.isLeft(decoded)) {
              return yield* ImageStoreError.of(
                file,
                `the pin of running process ${pid} cannot be read (${firstIssue(decoded.left)}), so nothing can be pruned safely`,
                `try again once process ${pid} has finished`
              )
            }
            blobs.push(...decoded.right.blobs)
            images.push(...decoded.right.images)
          }
          return { blobs, images, stale }
        })

      /** Files in `dir` untouched for `staleTempAfter`: left by crashed processes (a live one writes at least once a minute, [H4]). */
      const staleTemps = (dir: string) =>
        Effect.zip(Clock.currentTimeMillis, fs.readDirectory(dir)).pipe(
          Effect.catchIf(isNotFound, () => Effect.succeed([0, []] as const)),
          Effect.flatMap(([now, found]) =>
            Effect.forEach(found, (name) => {
              const file = path.join(dir, name)
              return statFile(file, "cannot read the temp file's status").pipe(
                Effect.map((info) =>
                  info !== undefined && info.type === "File" && info.mtime._tag === "Some" &&
                    now - info.mtime.value.getTime() > staleTempAfter
                    ? [{ file, size: Number(info.size) }]
                    : []
                )
              )
            })
          ),
          Effect.map((lists) => lists.flat()),
          Effect.mapError((e) => e instanceof ImageStoreError ? e : fail(dir, "cannot list it")(e))
        )

      const prune = (dryRun: boolean) =>
        withLock(Effect.gen(function*() {
          const index = yield* readIndex
          const pins = yield* readPins(dryRun)
          const reached = new Set<string>(pins.blobs)
          const problems: Array<string> = []
          const visit = StoreWalk.reach(StoreWalk.manifestReader(layout), reached, (p) => void problems.push(p))
          for (const entry of index.manifests) yield* visit(entry, label(entry))
          for (const image of pins.images) yield* visit(image, `an image in use (${image.digest})`)

          let blobs = 0
          let bytes = 0
          for (const algorithm of algorithms) {
            const dir = path.join(blobsDir, algorithm)
            const found = yield* fs.readDirectory(dir).pipe(
              Effect.catchIf(isNotFound, () => Effect.succeed<ReadonlyArray<string>>([])),
              Effect.mapError(fail(dir, "cannot list it"))
            )
            for (const hex of found) {
              const digest = `${algorithm}:${hex}`
              // Only what is named like a blob is one; anything else there is not the store's to delete.
              if (reached.has(digest) || !Digest.isValid(digest)) continue
              const { file } = yield* resolve(digest)
              const info = yield* statBlob(file)
              if (info === undefined || info.type !== "File") continue
              if (!dryRun) yield* fs.remove(file).pipe(Effect.mapError(fail(file, "cannot delete the blob")))
              blobs++
              bytes += Number(info.size)
            }
          }
          const temps = yield* staleTemps(tempDir)
          if (!dryRun) yield* Effect.forEach(temps, ({ file }) => Effect.ignore(fs.remove(file, { force: true })), { discard: true })
          return {
            dryRun,
            blobs,
            bytes,
            tempFiles: temps.length,
            tempBytes: temps.reduce((sum, t) => sum + t.size, 0),
            stalePins: pins.stale,
            problems
          } satisfies PruneReport
        })).pipe(Effect.withSpan("ImageStore.prune"))

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
        shared,
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
        recorded,
        entries,
        find,
        pin,
        using
      }
      return { layout, ensureIndex, inventory, remove, prune, sweep: () => staleTemps(tempDir) }
    }

    /** Checks `oci-layout`; an empty one is one another process is creating right now: wait for it. */
    const checkLayoutFile = (file: string) =>
      fs.readFileString(file).pipe(
        Effect.mapError((e) => ImageStoreError.of(file, `cannot read it (${SafeFiles.describe(e)})`)),
        Effect.filterOrFail((text) => text.trim() !== "", () => "empty" as const),
        Effect.retry({ while: (e) => e === "empty", schedule: Schedule.spaced("10 millis").pipe(Schedule.upTo("1 second")) }),
        Effect.mapError((e) => e === "empty" ? ImageStoreError.of(file, "oci-layout is empty") : e),
        Effect.flatMap((text) => {
          const json = decodeJson(text)
          if (Either.isLeft(json)) return Effect.fail(ImageStoreError.of(file, `oci-layout is not JSON (${firstIssue(json.left)})`))
          const document = decodeLayoutFile(json.right)
          if (Either.isLeft(document)) return Effect.fail(ImageStoreError.of(file, `oci-layout is not an image layout file: ${firstIssue(document.left)}`))
          const version = document.right.imageLayoutVersion
          if (version === undefined) return Effect.fail(ImageStoreError.of(file, "oci-layout has no imageLayoutVersion"))
          return isSupportedVersion(version)
            ? Effect.void
            : Effect.fail(ImageStoreError.of(file, `unsupported image layout version ${Digest.quote(typeof version === "string" ? version : String(JSON.stringify(version)))} (microagent reads 1.x)`))
        })
      )

    /** `sweep`: remove stale temp files on the way (prune counts them instead). */
    const openWith = Effect.fn("ImageStore.open")(function*(requested: string | undefined, openOptions: OpenOptions, sweep: boolean) {
      const root = path.resolve(requested ?? defaultRoot)
      const shared = root === path.resolve(defaultRoot)
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
        if (shared) yield* makeFolder(path.dirname(root), 0o700).pipe(Effect.mapError(failAt("cannot create it")))
        yield* makeFolder(root, folderMode).pipe(Effect.mapError(failAt("cannot create it")))
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
        yield* fs.writeFileString(layoutFile, layoutFileContent, { flag: "wx", mode: fileMode }).pipe(
          Effect.zipRight(fs.chmod(layoutFile, fileMode)),
          Effect.catchIf(isAlreadyExists, () => Effect.void),
          Effect.mapError(failAt("cannot create oci-layout"))
        )
      }
      yield* checkLayoutFile(layoutFile)
      yield* makeFolder(path.join(root, "blobs", "sha256"), folderMode).pipe(Effect.mapError(failAt("cannot create blobs/")))
      yield* makeFolder(path.join(root, TEMP_DIR), folderMode).pipe(Effect.mapError(failAt("cannot create .tmp/")))
      const opened = openLayout(root, shared)
      // Best effort: temp files that nobody has touched for a day were left by a crashed process.
      if (sweep) {
        yield* opened.sweep().pipe(
          Effect.flatMap((stale) => Effect.forEach(stale, ({ file }) => fs.remove(file, { force: true }), { discard: true })),
          Effect.ignore
        )
      }
      yield* opened.ensureIndex
      return opened
    })

    const open = (requested?: string, openOptions: OpenOptions = {}) => Effect.map(openWith(requested, openOptions, true), (o) => o.layout)

    /** The shared store when there is one: listing, removing or pruning never creates it. */
    const existing = Effect.gen(function*() {
      const there = yield* fs.exists(path.join(defaultRoot, LAYOUT_FILE)).pipe(
        Effect.mapError((e) => ImageStoreError.of(defaultRoot, `cannot read it (${SafeFiles.describe(e)})`))
      )
      return there ? yield* openWith(undefined, { create: false }, false) : undefined
    })

    const list = Effect.flatMap(existing, (store) =>
      store === undefined ? Effect.succeed<Inventory>({ images: [], totalBytes: 0, problems: [] }) : store.inventory)

    const remove = (spellings: ReadonlyArray<ReadonlyArray<string>>) =>
      Effect.flatMap(existing, (store) =>
        store === undefined ? Effect.succeed<Removal>({ removed: [], missing: spellings.map((_, i) => i) }) : store.remove(spellings))

    const prune = (pruneOptions: { readonly dryRun?: boolean } = {}) =>
      Effect.flatMap(existing, (store) =>
        store === undefined
          ? Effect.succeed<PruneReport>({ dryRun: pruneOptions.dryRun === true, blobs: 0, bytes: 0, tempFiles: 0, tempBytes: 0, stalePins: 0, problems: [] })
          : store.prune(pruneOptions.dryRun === true))

    return ImageStore.of({ defaultRoot, open, list, remove, prune })
  })

/** Needs FileSystem, Path and `HOME` from the ConfigProvider. */
export const layerWith = (options: Options) => Layer.effect(ImageStore, make(options))

/** The live layer with default options. */
export const layer: Layer.Layer<ImageStore, ConfigError.ConfigError, FileSystem.FileSystem | Path.Path> = layerWith({})
