import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { build } from "esbuild"
import { spawn, spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"
import * as Digest from "../src/domain/Digest.js"
import * as Manifest from "../src/domain/Manifest.js"
import * as ImageStore from "../src/ImageStore.js"

/** A store in a fresh HOME on the real file system and the real clock (locks and retries wait). */
const withStore = <A, E>(
  body: (store: ImageStore.ImageStoreService, home: string) => Effect.Effect<A, E, FileSystem.FileSystem>,
  options: ImageStore.Options = {}
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const home = yield* fs.makeTempDirectoryScoped()
    const layer = ImageStore.layerWith(options).pipe(
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HOME", home]]))))
    )
    const store = yield* ImageStore.ImageStore.pipe(Effect.provide(layer))
    return yield* body(store, home)
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))
const readJson = (fs: FileSystem.FileSystem, file: string) => Effect.map(fs.readFileString(file), (t) => JSON.parse(t))
const sha256 = (bytes: Uint8Array) => Digest.format(Digest.of(bytes))

/** A manifest-like blob written to the layout, and its descriptor. */
const manifestIn = (layout: ImageStore.Layout, seed: string) =>
  Effect.gen(function*() {
    const bytes = encode({ schemaVersion: 2, mediaType: Manifest.MediaType.OciManifest, seed })
    const digest = yield* layout.writeBlob(bytes)
    return { mediaType: Manifest.MediaType.OciManifest, digest, size: bytes.length } satisfies Manifest.Descriptor
  })

/** A one-file ustar archive, built by hand. */
const tinyTar = (name: string, content: string): Uint8Array => {
  const data = new TextEncoder().encode(content)
  const header = new Uint8Array(512)
  const put = (offset: number, text: string) => header.set(new TextEncoder().encode(text), offset)
  put(0, name)
  put(100, "0000644\0")
  put(108, "0000000\0")
  put(116, "0000000\0")
  put(124, `${data.length.toString(8).padStart(11, "0")}\0`)
  put(136, "00000000000\0")
  put(148, "        ")
  put(156, "0")
  put(257, "ustar\0")
  put(263, "00")
  const sum = header.reduce((a, b) => a + b, 0)
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `)
  const body = new Uint8Array(Math.ceil(data.length / 512) * 512)
  body.set(data)
  const tar = new Uint8Array(512 + body.length + 1024)
  tar.set(header)
  tar.set(body, 512)
  return tar
}

/** A worker process: opens the layout at argv[2] and records argv[4] references named after argv[3]. */
const workerSource = `
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ImageStore from "./src/ImageStore.ts"
const [root, id, count] = process.argv.slice(2)
const program = Effect.gen(function*() {
  const store = yield* ImageStore.ImageStore
  const layout = yield* store.open(root)
  for (let i = 0; i < Number(count); i++) {
    const bytes = new TextEncoder().encode(JSON.stringify({ id, i }))
    const digest = yield* layout.writeBlob(bytes)
    yield* layout.record({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: bytes.length }, { reference: "localhost/p" + id + ":" + i, tag: String(i) })
  }
})
const layer = ImageStore.layer.pipe(
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HOME", root]])))),
  Layer.provideMerge(NodeContext.layer)
)
Effect.runPromise(program.pipe(Effect.provide(layer))).catch((e) => { console.error(String(e)); process.exit(1) })
`

const runProcess = (args: ReadonlyArray<string>) =>
  Effect.async<{ readonly code: number | null; readonly stderr: string }>((resume) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += String(d)))
    child.on("close", (code) => resume(Effect.succeed({ code, stderr })))
    return Effect.sync(() => child.kill())
  })

const run = (command: string, args: ReadonlyArray<string>) => Effect.sync(() => spawnSync(command, args, { encoding: "utf8" }))

describe("ImageStore", () => {
  it.live("[I2] a new layout has oci-layout 1.0.0, an empty OCI index and blobs/sha256; the shared store sits in ~/.microagent", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        assert.strictEqual(store.defaultRoot, join(home, ".microagent", "images"))
        const layout = yield* store.open()
        assert.strictEqual(layout.root, store.defaultRoot)
        assert.deepStrictEqual(yield* readJson(fs, join(layout.root, "oci-layout")), { imageLayoutVersion: "1.0.0" })
        assert.deepStrictEqual(yield* readJson(fs, join(layout.root, "index.json")), {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.index.v1+json",
          manifests: []
        })
        assert.strictEqual((yield* fs.stat(join(layout.root, "blobs", "sha256"))).type, "Directory")
        assert.strictEqual((yield* fs.stat(join(home, ".microagent"))).mode & 0o777, 0o700)
        assert.deepStrictEqual(yield* layout.entries, [])
        // Opening again changes nothing.
        const again = yield* store.open(layout.root)
        assert.deepStrictEqual(yield* again.entries, [])
      })))

  it.live("[I2] record writes both annotations; re-recording a reference replaces its entry; other entries and unknown fields survive", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const root = join(home, "out")
        const layout = yield* store.open(root)
        const other = yield* manifestIn(layout, "other")
        const indexPath = join(root, "index.json")
        yield* fs.writeFileString(
          indexPath,
          JSON.stringify({
            schemaVersion: 2,
            mediaType: Manifest.MediaType.OciIndex,
            manifests: [{ ...other, annotations: { "org.opencontainers.image.ref.name": "keep", "x.custom": "1" }, "x-extra": true }],
            annotations: { "x.top": "kept" },
            "x-unknown": { nested: [1, 2] }
          })
        )
        const first = yield* manifestIn(layout, "first")
        const second = yield* manifestIn(layout, "second")
        yield* layout.record(first, { reference: "registry.example/team/app:v1", tag: "v1" })
        let index = yield* readJson(fs, indexPath)
        assert.strictEqual(index.manifests.length, 2)
        assert.deepStrictEqual(index.manifests[1], {
          ...first,
          annotations: {
            "org.opencontainers.image.ref.name": "v1",
            "io.containerd.image.name": "registry.example/team/app:v1"
          }
        })

        yield* layout.record(second, { reference: "registry.example/team/app:v1", tag: "v1" })
        index = yield* readJson(fs, indexPath)
        assert.strictEqual(index.manifests.length, 2, "the same reference keeps one entry")
        assert.strictEqual(index.manifests[1].digest, second.digest, "re-pulling a tag moves it")
        assert.deepStrictEqual(index.manifests[0], {
          ...other,
          annotations: { "org.opencontainers.image.ref.name": "keep", "x.custom": "1" },
          "x-extra": true
        })
        assert.deepStrictEqual(index.annotations, { "x.top": "kept" })
        assert.deepStrictEqual(index["x-unknown"], { nested: [1, 2] })

        // A digest-only reference has no tag: only the full name is written.
        yield* layout.record(first, { reference: "registry.example/team/app@" + first.digest, tag: undefined })
        const entries = yield* layout.entries
        assert.strictEqual(entries.length, 3)
        assert.deepStrictEqual(entries[2]!.annotations, { "io.containerd.image.name": "registry.example/team/app@" + first.digest })
        assert.deepStrictEqual(yield* fs.readDirectory(join(root, ".tmp")), [])
        assert.isFalse(yield* fs.exists(`${indexPath}.lock`))
      })))

  it.live("[I2] an entry with the same tag and no full name (as skopeo writes) is replaced, not left ambiguous", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open(join(home, "out"))
        const old = yield* manifestIn(layout, "old")
        const fresh = yield* manifestIn(layout, "new")
        yield* fs.writeFileString(
          join(layout.root, "index.json"),
          JSON.stringify({ schemaVersion: 2, manifests: [{ ...old, annotations: { "org.opencontainers.image.ref.name": "v1" } }] })
        )
        yield* layout.record(fresh, { reference: "localhost:5000/app:v1", tag: "v1" })
        const entries = yield* layout.entries
        assert.deepStrictEqual(entries.map((e) => e.digest), [fresh.digest])
        assert.strictEqual((yield* layout.find("v1")).digest, fresh.digest)
      })))

  it.live("[I2] record refuses a manifest that is not in the layout", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const layout = yield* store.open(join(home, "out"))
        const missing = { mediaType: Manifest.MediaType.OciManifest, digest: sha256(encode({ nope: 1 })), size: 10 }
        const error = yield* Effect.flip(layout.record(missing, { reference: "x.io/a:b", tag: "b" }))
        assert.strictEqual(error._tag, "ImageStoreError")
        assert.include(error.message, "is not in the layout")
        assert.deepStrictEqual(yield* layout.entries, [])
      })))

  it.live("[I2] skopeo and umoci read what it writes", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const tar = tinyTar("hello.txt", "hello from microagent\n")
        const gz = gzipSync(tar)
        const root = join(home, "layout")
        const layout = yield* store.open(root)
        const layerDigest = yield* layout.writeBlob(gz)
        const config = encode({
          architecture: "amd64",
          os: "linux",
          rootfs: { type: "layers", diff_ids: [sha256(tar)] },
          config: {}
        })
        const configDigest = yield* layout.writeBlob(config)
        const manifest = encode({
          schemaVersion: 2,
          mediaType: Manifest.MediaType.OciManifest,
          config: { mediaType: Manifest.MediaType.OciConfig, digest: configDigest, size: config.length },
          layers: [{ mediaType: Manifest.MediaType.OciLayer, digest: layerDigest, size: gz.length }]
        })
        const manifestDigest = yield* layout.writeBlob(manifest)
        yield* layout.record(
          { mediaType: Manifest.MediaType.OciManifest, digest: manifestDigest, size: manifest.length },
          { reference: "localhost:5000/tiny:v1", tag: "v1" }
        )

        const raw = yield* run("/usr/bin/skopeo", ["inspect", "--raw", `oci:${root}:v1`])
        assert.strictEqual(raw.status, 0, raw.stderr)
        assert.strictEqual(sha256(new TextEncoder().encode(raw.stdout)), manifestDigest)
        const inspect = yield* run("/usr/bin/skopeo", ["inspect", `oci:${root}:v1`])
        assert.strictEqual(inspect.status, 0, inspect.stderr)
        assert.strictEqual(JSON.parse(inspect.stdout).Digest, manifestDigest)
        assert.deepStrictEqual(JSON.parse(inspect.stdout).Layers, [layerDigest])

        // skopeo reads every blob (verifying digests) and writes a layout that microagent opens.
        const copyRoot = join(home, "copy")
        const copy = yield* run("/usr/bin/skopeo", ["copy", "--quiet", `oci:${root}:v1`, `oci:${copyRoot}:v1`])
        assert.strictEqual(copy.status, 0, copy.stderr)
        const copied = yield* store.open(copyRoot)
        assert.strictEqual((yield* copied.find("v1")).digest, manifestDigest)

        if (existsSync("/usr/bin/umoci")) {
          const ls = yield* run("/usr/bin/umoci", ["ls", "--layout", root])
          assert.strictEqual(ls.status, 0, ls.stderr)
          assert.deepStrictEqual(ls.stdout.trim().split("\n"), ["v1"])
        }
      })), 60_000)

  it.live("[P5] a temp blob is removed when its scope closes uncommitted, also on interruption; a committed one is in blobs/sha256", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open(join(home, "out"))
        const tempDir = join(layout.root, ".tmp")

        const abandoned = yield* Effect.scoped(Effect.gen(function*() {
          const temp = yield* layout.tempBlob
          assert.strictEqual(join(temp, ".."), tempDir)
          yield* fs.writeFileString(temp, "partial")
          return temp
        }))
        assert.isFalse(yield* fs.exists(abandoned))

        const started = yield* Deferred.make<string>()
        const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          const temp = yield* layout.tempBlob
          yield* fs.writeFileString(temp, "half a layer")
          yield* Deferred.succeed(started, temp)
          return yield* Effect.never
        })))
        const interrupted = yield* Deferred.await(started)
        assert.isTrue(yield* fs.exists(interrupted))
        assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(fiber)))
        assert.isFalse(yield* fs.exists(interrupted))

        const content = new TextEncoder().encode("a verified blob")
        const digest = sha256(content)
        assert.isFalse(yield* layout.hasBlob(digest))
        yield* Effect.scoped(Effect.gen(function*() {
          const temp = yield* layout.tempBlob
          yield* fs.writeFile(temp, content)
          yield* layout.commitBlob(temp, digest)
          // Committing the same content again is harmless.
          const again = yield* layout.tempBlob
          yield* fs.writeFile(again, content)
          yield* layout.commitBlob(again, digest)
        }))
        const file = join(layout.root, "blobs", "sha256", digest.slice("sha256:".length))
        assert.strictEqual(yield* layout.blobPath(digest), file)
        assert.strictEqual(yield* fs.readFileString(file), "a verified blob")
        assert.strictEqual((yield* fs.stat(file)).mode & 0o777, 0o644)
        assert.isTrue(yield* layout.hasBlob(digest))
        assert.isTrue(yield* layout.hasBlob(digest, content.length))
        assert.isFalse(yield* layout.hasBlob(digest, content.length + 1), "a blob of the wrong size is not there")
        assert.deepStrictEqual(yield* fs.readDirectory(tempDir), [])
      })))

  it.live("[P5] commitBlob only moves the layout's own temp files", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open(join(home, "out"))
        const outside = join(home, "file")
        yield* fs.writeFileString(outside, "x")
        const error = yield* Effect.flip(layout.commitBlob(outside, sha256(new TextEncoder().encode("x"))))
        assert.include(error.message, "not a temp file")
        assert.isTrue(yield* fs.exists(outside))
      })))

  it.live("blobs: writeBlob, readBlob, streamBlob, blobSize; digests are validated (no path traversal); damage is detected", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open(join(home, "out"))
        const bytes = encode({ hello: "world" })
        const digest = yield* layout.writeBlob(bytes)
        assert.strictEqual(digest, sha256(bytes))
        assert.strictEqual(yield* layout.writeBlob(bytes), digest, "writing it again is a no-op")
        assert.deepStrictEqual(yield* layout.readBlob(digest), bytes)
        assert.strictEqual(yield* layout.blobSize(digest), bytes.length)

        const big = new Uint8Array(300_000).map((_, i) => i % 251)
        const bigDigest = yield* layout.writeBlob(big)
        const chunks = yield* Stream.runCollect(layout.streamBlob(bigDigest))
        assert.isAbove(Chunk.size(chunks), 1, "streamed in chunks")
        assert.strictEqual(sha256(Buffer.concat(Chunk.toArray(chunks))), bigDigest)
        assert.include((yield* Effect.flip(layout.readBlob(bigDigest, 1000))).message, "more than the 1000 bytes")

        for (const bad of ["sha256:../../../etc/passwd", "sha256:" + "A".repeat(64), "md5:abc", "../x", "sha256:" + "0".repeat(63)]) {
          assert.strictEqual((yield* Effect.flip(layout.hasBlob(bad)))._tag, "ImageStoreError", bad)
          assert.strictEqual((yield* Effect.flip(layout.blobPath(bad)))._tag, "ImageStoreError", bad)
        }
        const absent = sha256(encode("absent"))
        assert.include((yield* Effect.flip(layout.readBlob(absent))).message, "is not in the layout")
        assert.include((yield* Effect.flip(Stream.runDrain(layout.streamBlob(absent)))).message, "is not in the layout")

        yield* fs.writeFileString(yield* layout.blobPath(digest), JSON.stringify({ hello: "there" }))
        assert.include((yield* Effect.flip(layout.readBlob(digest))).message, "does not match its digest")
      })))

  it.live("concurrency: 8 fibers recording different references leave 8 entries and no temp or lock files", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open(join(home, "out"))
        yield* Effect.forEach(
          Array.from({ length: 8 }, (_, i) => i),
          (i) =>
            Effect.flatMap(manifestIn(layout, `m${i}`), (d) => layout.record(d, { reference: `ghcr.io/team/app${i}:latest`, tag: "latest" })),
          { concurrency: "unbounded" }
        )
        const names = (yield* layout.entries).map((e) => e.annotations?.["io.containerd.image.name"]).sort()
        assert.deepStrictEqual(names, Array.from({ length: 8 }, (_, i) => `ghcr.io/team/app${i}:latest`))
        assert.deepStrictEqual(yield* fs.readDirectory(join(layout.root, ".tmp")), [])
        assert.deepStrictEqual((yield* fs.readDirectory(layout.root)).sort(), [".tmp", "blobs", "index.json", "oci-layout"])
      })))

  it.live("concurrency: layouts opened on one new root by concurrent fibers do not clash", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const root = join(home, "shared", "store")
        const layouts = yield* Effect.all(Array.from({ length: 6 }, () => store.open(root)), { concurrency: "unbounded" })
        yield* Effect.forEach(
          layouts,
          (layout, i) =>
            Effect.flatMap(manifestIn(layout, "same"), (d) => layout.record(d, { reference: `localhost:5000/app:${i}`, tag: `${i}` })),
          { concurrency: "unbounded" }
        )
        const entries = yield* layouts[0]!.entries
        assert.strictEqual(entries.length, 6)
        assert.strictEqual(new Set(entries.map((e) => e.digest)).size, 1, "one blob, content-addressed")
      })))

  it.live("concurrency: 4 processes recording into one new store leave every entry and an intact index.json", () =>
    withStore((_store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const script = join(home, "worker.mjs")
        yield* Effect.promise(() =>
          build({
            stdin: { contents: workerSource, resolveDir: fileURLToPath(new URL("..", import.meta.url)), loader: "ts" },
            outfile: script,
            bundle: true,
            platform: "node",
            format: "esm",
            logLevel: "silent",
            banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" }
          })
        )
        const root = join(home, "store")
        const results = yield* Effect.all(
          Array.from({ length: 4 }, (_, id) => runProcess([script, root, String(id), "5"])),
          { concurrency: "unbounded" }
        )
        for (const r of results) assert.strictEqual(r.code, 0, r.stderr)
        const index = yield* readJson(fs, join(root, "index.json"))
        assert.strictEqual(index.manifests.length, 20)
        assert.deepStrictEqual(yield* fs.readDirectory(join(root, ".tmp")), [])
        assert.isFalse(yield* fs.exists(join(root, "index.json.lock")))
      })), 60_000)

  it.live("a lock left by a crashed process is broken once stale; a live one fails with a clear error and no write", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open(join(home, "out"))
        const lock = join(layout.root, "index.json.lock")
        const d = yield* manifestIn(layout, "x")

        yield* fs.writeFileString(lock, "12345\n")
        const error = yield* Effect.flip(layout.record(d, { reference: "a.io/x:1", tag: "1" }))
        assert.include(error.message, "locked by another process")
        assert.deepStrictEqual(yield* layout.entries, [])
        assert.isTrue(yield* fs.exists(lock), "someone else's lock is left alone")

        yield* fs.utimes(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
        yield* layout.record(d, { reference: "a.io/x:1", tag: "1" })
        assert.strictEqual((yield* layout.entries).length, 1)
        assert.isFalse(yield* fs.exists(lock))
      }), { staleLockAfter: "1 second", lockTimeout: "200 millis" }))

  it.live("a writer waiting for a live lock can be interrupted at once", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open(join(home, "out"))
        const lock = join(layout.root, "index.json.lock")
        const d = yield* manifestIn(layout, "x")
        yield* fs.writeFileString(lock, "12345\n")
        const waiting = yield* Effect.fork(layout.record(d, { reference: "a.io/x:1", tag: "1" }))
        yield* Effect.sleep("50 millis")
        const started = Date.now()
        yield* Fiber.interrupt(waiting)
        assert.isBelow(Date.now() - started, 1000)
        assert.strictEqual(yield* fs.readFileString(lock), "12345\n", "someone else's lock is left alone")
        assert.deepStrictEqual(yield* layout.entries, [])
      })))

  it.live("open refuses a non-empty folder that is not a layout, and a file, leaving them untouched", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const folder = join(home, "photos")
        yield* fs.makeDirectory(folder)
        yield* fs.writeFileString(join(folder, "cat.jpg"), "meow")
        const error = yield* Effect.flip(store.open(folder))
        assert.strictEqual(error._tag, "ImageStoreError")
        assert.include(error.message, "is not empty and is not an OCI image layout")
        assert.deepStrictEqual(yield* fs.readDirectory(folder), ["cat.jpg"])

        const file = join(home, "file")
        yield* fs.writeFileString(file, "x")
        assert.include((yield* Effect.flip(store.open(file))).message, "is not a folder")

        const empty = join(home, "empty")
        yield* fs.makeDirectory(empty)
        yield* store.open(empty)
        assert.isTrue(yield* fs.exists(join(empty, "oci-layout")))

        const future = join(home, "future")
        yield* fs.makeDirectory(future)
        yield* fs.writeFileString(join(future, "oci-layout"), `{"imageLayoutVersion":"2.0.0"}`)
        assert.include((yield* Effect.flip(store.open(future))).message, "unsupported image layout version")
      })))

  it.live("find: by full reference, by tag, the only entry; clear errors when absent or ambiguous", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const layout = yield* store.open(join(home, "out"))
        assert.include((yield* Effect.flip(layout.find(undefined))).message, "holds no images")

        const a = yield* manifestIn(layout, "a")
        const b = yield* manifestIn(layout, "b")
        yield* layout.record(a, { reference: "docker.io/library/alpine:3", tag: "3" })
        assert.strictEqual((yield* layout.find(undefined)).digest, a.digest, "the only entry")
        yield* layout.record(b, { reference: "ghcr.io/me/alpine:3", tag: "3" })

        assert.strictEqual((yield* layout.find("ghcr.io/me/alpine:3")).digest, b.digest)
        assert.strictEqual((yield* layout.find("docker.io/library/alpine:3")).digest, a.digest)

        const ambiguous = yield* Effect.flip(layout.find("3"))
        assert.include(ambiguous.message, `"3" is ambiguous`)
        assert.include(ambiguous.message, "docker.io/library/alpine:3")
        assert.include(ambiguous.message, "ghcr.io/me/alpine:3")
        // The hint spells each the way a command takes it, and that spelling finds it.
        assert.strictEqual(
          ambiguous.hint,
          `name one by its full reference: oci:${layout.root}:docker.io/library/alpine:3 or oci:${layout.root}:ghcr.io/me/alpine:3`
        )
        assert.strictEqual((yield* layout.find(ambiguous.hint!.split(" or ")[1]!.slice(`oci:${layout.root}:`.length))).digest, b.digest)

        const many = yield* Effect.flip(layout.find(undefined))
        assert.include(many.message, "holds 2 images; name one")

        const absent = yield* Effect.flip(layout.find("quay.io/x:1"))
        assert.include(absent.message, `no image named "quay.io/x:1"`)
        assert.include(absent.message, "ghcr.io/me/alpine:3")

        yield* layout.record(b, { reference: "ghcr.io/me/tool:edge", tag: "edge" })
        assert.strictEqual((yield* layout.find("edge")).digest, b.digest, "by tag when it is unique")
      })))
  it.live("[P6] blobFile: a blob about to be sent is a regular file of its descriptor's size, never a link; each refusal names the blob and the layout", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const root = join(home, "out")
        const layout = yield* store.open(root)
        const bytes = encode({ layer: "bytes" })
        const digest = yield* layout.writeBlob(bytes)
        const file = yield* layout.blobPath(digest)
        assert.strictEqual(yield* layout.blobFile(digest, bytes.length), file)

        const short = yield* Effect.flip(layout.blobFile(digest, bytes.length + 10))
        assert.strictEqual(short._tag, "ImageStoreError")
        for (const part of [root, digest, `${bytes.length} bytes`, `says ${bytes.length + 10}`]) assert.include(short.message, part)

        const missing = sha256(encode("missing"))
        const absent = yield* Effect.flip(layout.blobFile(missing, 1))
        for (const part of [root, missing, "is not in the layout"]) assert.include(absent.message, part)

        // A link, to a copy of the right bytes or to a short file, is refused all the same.
        const elsewhere = join(home, "elsewhere")
        for (const content of [bytes, new Uint8Array(3)]) {
          yield* fs.writeFile(elsewhere, content)
          yield* fs.remove(file, { force: true })
          yield* fs.symlink(elsewhere, file)
          const linked = yield* Effect.flip(layout.blobFile(digest, bytes.length))
          for (const part of [root, digest, "symbolic link"]) assert.include(linked.message, part)
          yield* fs.remove(file)
        }
        assert.include((yield* Effect.flip(layout.blobFile("sha256:../../etc/passwd"))).message, "not a digest")
      })))

  it.live("[H1] writeBlob stores under the algorithm asked for: a sha512 manifest is kept as blobs/sha512/<hex>", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const layout = yield* store.open(join(home, "out"))
        const bytes = encode({ schemaVersion: 2, strong: true })
        const digest = yield* layout.writeBlob(bytes, "sha512")
        assert.strictEqual(digest, Digest.format(Digest.of(bytes, "sha512")))
        assert.deepStrictEqual(yield* layout.readBlob(digest), bytes)
        assert.isTrue((yield* layout.blobPath(digest)).endsWith(join("blobs", "sha512", digest.slice("sha512:".length))))
      })))
})

// ---- the shared store: naming, pins, list, rm, prune ([I2], [M5]) --------------------------------

const bytesOf = (text: string) => new TextEncoder().encode(text)

interface Written {
  readonly descriptor: Manifest.Descriptor
  /** Every blob it reaches, itself first. */
  readonly blobs: ReadonlyArray<string>
}

/** A small image in the layout: its layers (as given), a config for `platform`, its manifest. */
const imageIn = (
  layout: ImageStore.Layout,
  seed: string,
  options: { readonly layers?: ReadonlyArray<Uint8Array>; readonly platform?: Manifest.Platform } = {}
) =>
  Effect.gen(function*() {
    const layers = yield* Effect.forEach(options.layers ?? [bytesOf(`layer of ${seed}`)], (bytes) =>
      Effect.map(layout.writeBlob(bytes), (digest) => ({ mediaType: Manifest.MediaType.OciLayer, digest, size: bytes.length })))
    const config = encode({ ...(options.platform ?? { os: "linux", architecture: "amd64" }), seed, rootfs: { type: "layers", diff_ids: [] } })
    const configDigest = yield* layout.writeBlob(config)
    const manifest = encode({
      schemaVersion: 2,
      mediaType: Manifest.MediaType.OciManifest,
      config: { mediaType: Manifest.MediaType.OciConfig, digest: configDigest, size: config.length },
      layers
    })
    const digest = yield* layout.writeBlob(manifest)
    return {
      descriptor: { mediaType: Manifest.MediaType.OciManifest, digest, size: manifest.length },
      blobs: [digest, configDigest, ...layers.map((l) => l.digest)]
    } satisfies Written
  })

/** An index of `children`, each with its platform. */
const indexIn = (layout: ImageStore.Layout, children: ReadonlyArray<readonly [Written, Manifest.Platform]>) =>
  Effect.gen(function*() {
    const bytes = encode({
      schemaVersion: 2,
      mediaType: Manifest.MediaType.OciIndex,
      manifests: children.map(([child, platform]) => ({ ...child.descriptor, platform }))
    })
    const digest = yield* layout.writeBlob(bytes)
    return {
      descriptor: { mediaType: Manifest.MediaType.OciIndex, digest, size: bytes.length },
      blobs: [digest, ...children.flatMap(([child]) => child.blobs)]
    } satisfies Written
  })

/** The blobs on disk, by digest, with their sizes. */
const blobsOnDisk = (fs: FileSystem.FileSystem, root: string) =>
  Effect.gen(function*() {
    const found = new Map<string, number>()
    for (const algorithm of yield* fs.readDirectory(join(root, "blobs"))) {
      for (const hex of yield* fs.readDirectory(join(root, "blobs", algorithm))) {
        found.set(`${algorithm}:${hex}`, Number((yield* fs.stat(join(root, "blobs", algorithm, hex))).size))
      }
    }
    return found
  })

const sum = (sizes: ReadonlyMap<string, number>, digests: Iterable<string>) => [...new Set(digests)].reduce((n, d) => n + (sizes.get(d) ?? 0), 0)

/** The pid of a process that has ended. */
const deadPid = () => spawnSync("true").pid

describe("ImageStore: the shared store", () => {
  it.live("[I2] entries are named by full reference (ref.name too), with when they were pulled; three images with one tag do not collide", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open()
        assert.isTrue(layout.shared)
        const references = ["127.0.0.1:5001/demo/app:1.0", "127.0.0.1:5001/other/app:1.0", "registry.example/demo/app:1.0"]
        const images = yield* Effect.forEach(references, (reference) =>
          Effect.tap(imageIn(layout, reference), (image) => layout.record(image.descriptor, { reference, tag: "1.0" })))
        const index = yield* readJson(fs, join(layout.root, "index.json"))
        assert.strictEqual(index.manifests.length, 3)
        for (const [i, entry] of (index.manifests as Array<{ annotations: Record<string, string> }>).entries()) {
          assert.strictEqual(entry.annotations["org.opencontainers.image.ref.name"], references[i])
          assert.strictEqual(entry.annotations["io.containerd.image.name"], references[i])
          assert.match(entry.annotations["dev.microagent.pulled-at"]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
        }
        for (const [i, reference] of references.entries()) {
          assert.strictEqual((yield* layout.find(reference)).digest, images[i]!.descriptor.digest)
          // skopeo splits oci:<dir>:<name> at the first ':' and finds the full name.
          const raw = yield* run("/usr/bin/skopeo", ["inspect", "--raw", `oci:${layout.root}:${reference}`])
          assert.strictEqual(raw.status, 0, raw.stderr)
          assert.strictEqual(sha256(bytesOf(raw.stdout)), images[i]!.descriptor.digest)
        }
      })), 60_000)

  it.live("[I2] a store written the old way (the tag as ref.name) is read as it is, and renamed on its next change; unknown fields survive", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open()
        const a = yield* imageIn(layout, "a")
        const b = yield* imageIn(layout, "b")
        const other = yield* imageIn(layout, "other")
        const indexPath = join(layout.root, "index.json")
        const old = {
          schemaVersion: 2,
          mediaType: Manifest.MediaType.OciIndex,
          manifests: [
            { ...a.descriptor, annotations: { "org.opencontainers.image.ref.name": "1.0", "io.containerd.image.name": "h.io/a/app:1.0" }, "x-extra": [1] },
            { ...b.descriptor, annotations: { "org.opencontainers.image.ref.name": "1.0", "io.containerd.image.name": "h.io/b/app:1.0" } },
            // Another tool's entry: no full name, so nothing to rename it to.
            { ...other.descriptor, annotations: { "org.opencontainers.image.ref.name": "keep" }, platform: { os: "linux", architecture: "amd64", "x-p": true } }
          ],
          "x-top": { kept: true }
        }
        yield* fs.writeFileString(indexPath, JSON.stringify(old))
        const before = yield* fs.readFileString(indexPath)

        assert.strictEqual((yield* layout.find("h.io/a/app:1.0")).digest, a.descriptor.digest)
        assert.strictEqual((yield* layout.find("h.io/b/app:1.0")).digest, b.descriptor.digest)
        assert.strictEqual((yield* layout.find("keep")).digest, other.descriptor.digest)
        const ambiguous = yield* Effect.flip(layout.find("1.0"))
        assert.strictEqual(ambiguous.hint, "name one by its full reference: h.io/a/app:1.0 or h.io/b/app:1.0")
        assert.strictEqual(yield* fs.readFileString(indexPath), before, "reading rewrites nothing")

        const c = yield* imageIn(layout, "c")
        yield* layout.record(c.descriptor, { reference: "h.io/c/app:1.0", tag: "1.0" })
        const after = yield* readJson(fs, indexPath)
        assert.deepStrictEqual(after.manifests.slice(0, 3), [
          { ...a.descriptor, annotations: { "org.opencontainers.image.ref.name": "h.io/a/app:1.0", "io.containerd.image.name": "h.io/a/app:1.0" }, "x-extra": [1] },
          { ...b.descriptor, annotations: { "org.opencontainers.image.ref.name": "h.io/b/app:1.0", "io.containerd.image.name": "h.io/b/app:1.0" } },
          old.manifests[2]
        ])
        assert.strictEqual(after.manifests[3].annotations["org.opencontainers.image.ref.name"], "h.io/c/app:1.0")
        assert.deepStrictEqual(after["x-top"], { kept: true })
        assert.strictEqual((yield* layout.find("h.io/a/app:1.0")).digest, a.descriptor.digest)
        assert.isFalse(yield* fs.exists(`${indexPath}.lock`))
      })))

  it.live("[I2] index.json and oci-layout are decoded with their reasons said: not JSON, not an index, a bad entry, no version", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const cases: ReadonlyArray<readonly [string, string, string]> = [
          ["index.json", "{not json", "index.json is not JSON ("],
          ["index.json", `{"schemaVersion":1,"manifests":[]}`, "index.json is not an OCI image index: schemaVersion"],
          ["index.json", `{"schemaVersion":2}`, "index.json is not an OCI image index: manifests"],
          ["index.json", `{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:0","size":-1}]}`, "manifests[0].size"],
          ["index.json", `[]`, "index.json is not an OCI image index"],
          ["oci-layout", "nope", "oci-layout is not JSON ("],
          ["oci-layout", "{}", "oci-layout has no imageLayoutVersion"],
          ["oci-layout", `{"imageLayoutVersion":1}`, `unsupported image layout version "1"`]
        ]
        for (const [i, [file, content, reason]] of cases.entries()) {
          const root = join(home, `bad${i}`)
          yield* store.open(root)
          yield* fs.writeFileString(join(root, file), content)
          const error = yield* Effect.flip(store.open(root))
          assert.strictEqual(error._tag, "ImageStoreError")
          assert.include(error.message, reason, content)
          assert.notInclude(error.message, "\n")
        }
      })))

  it.live("[M5] using pins what it names under .pins/<pid>-<random> and unpins however it ends; other layouts are never pinned", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open()
        const pins = join(layout.root, ".pins")
        const image = yield* imageIn(layout, "pinned")
        const listPins = fs.exists(pins).pipe(Effect.flatMap((there) => there ? fs.readDirectory(pins) : Effect.succeed([])))

        const seen = yield* layout.using({ blobs: ["sha256:" + "a".repeat(64)], images: [image.descriptor] }, Effect.gen(function*() {
          const names = yield* listPins
          assert.strictEqual(names.length, 1)
          assert.match(names[0]!, new RegExp(`^${process.pid}-[0-9a-f]+$`))
          return yield* readJson(fs, join(pins, names[0]!))
        }))
        assert.deepStrictEqual(seen, { blobs: ["sha256:" + "a".repeat(64)], images: [image.descriptor] })
        assert.deepStrictEqual(yield* listPins, [])

        assert.strictEqual(yield* Effect.flip(layout.using({ blobs: [] }, Effect.fail("boom"))), "boom")
        assert.deepStrictEqual(yield* listPins, [])

        const pinned = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(layout.using({ images: [image.descriptor] }, Effect.zipRight(Deferred.succeed(pinned, undefined), Effect.never)))
        yield* Deferred.await(pinned)
        assert.strictEqual((yield* listPins).length, 1)
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(yield* listPins, [])

        const elsewhere = yield* store.open(join(home, "out"))
        assert.isFalse(elsewhere.shared)
        yield* elsewhere.using({ images: [image.descriptor] }, Effect.void)
        assert.isFalse(yield* fs.exists(join(elsewhere.root, ".pins")))
      })))

  it.live("[M5] prune deletes exactly what no entry and no live pin reaches; --dry-run deletes nothing; a canary outside is untouched", () =>
    withStore((store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open()
        const root = layout.root
        const shared = bytesOf("a layer two images share")
        const a = yield* imageIn(layout, "a", { layers: [bytesOf("a's own layer"), shared] })
        const b = yield* imageIn(layout, "b", { layers: [bytesOf("b's own layer"), shared] })
        const amd = yield* imageIn(layout, "index amd64")
        const arm = yield* imageIn(layout, "index arm64", { platform: { os: "linux", architecture: "arm64" } })
        const multi = yield* indexIn(layout, [[amd, { os: "linux", architecture: "amd64" }], [arm, { os: "linux", architecture: "arm64" }]])
        yield* layout.record(a.descriptor, { reference: "h.io/a:1", tag: "1" })
        yield* layout.record(b.descriptor, { reference: "h.io/b:1", tag: "1" })
        yield* layout.record(multi.descriptor, { reference: "h.io/multi:1", tag: "1" })
        const reachable = [...a.blobs, ...b.blobs, ...multi.blobs]

        const orphan = yield* layout.writeBlob(bytesOf("nobody's"))
        const inStalePin = yield* layout.writeBlob(bytesOf("pinned by a process that is gone"))
        yield* fs.makeDirectory(join(root, ".pins"))
        const stalePin = join(root, ".pins", `${deadPid()}-abcdef`)
        yield* fs.writeFileString(stalePin, JSON.stringify({ blobs: [inStalePin], images: [] }))
        const notABlob = join(root, "blobs", "sha256", "README")
        yield* fs.writeFileString(notABlob, "not a blob: not the store's to delete")
        // A link in blobs/ is deleted as a link: what it points at outside the store stays.
        const canary = join(home, "canary")
        yield* fs.writeFileString(canary, "canary")
        const link = join(root, "blobs", "sha256", "c".repeat(64))
        yield* fs.symlink(canary, link)
        const oldTemp = join(root, ".tmp", "blob-left-by-a-crash")
        yield* fs.writeFileString(oldTemp, "partial")
        yield* fs.utimes(oldTemp, new Date(Date.now() - 3 * 86_400_000), new Date(Date.now() - 3 * 86_400_000))
        const freshTemp = join(root, ".tmp", "blob-being-written")
        yield* fs.writeFileString(freshTemp, "in progress")

        const before = yield* blobsOnDisk(fs, root)
        const garbage = [orphan, inStalePin]
        const expected = { blobs: 3, bytes: sum(before, garbage) + "canary".length, tempFiles: 1, tempBytes: "partial".length, stalePins: 1 }

        yield* Effect.scoped(Effect.gen(function*() {
          // A live pin (this process) keeps a blob no entry reaches.
          const inLivePin = yield* layout.writeBlob(bytesOf("pinned by a pull under way"))
          yield* layout.pin({ blobs: [inLivePin] })

          const dry = yield* store.prune({ dryRun: true })
          assert.deepInclude(dry, { ...expected, dryRun: true })
          assert.deepStrictEqual([...(yield* blobsOnDisk(fs, root)).keys()].sort(), [...before.keys(), inLivePin].sort(), "a dry run deletes nothing")
          assert.isTrue(yield* fs.exists(stalePin))
          assert.isTrue(yield* fs.exists(oldTemp))

          const report = yield* store.prune()
          assert.deepStrictEqual(report, { ...expected, dryRun: false, problems: [] })
          const after = yield* blobsOnDisk(fs, root)
          assert.deepStrictEqual([...after.keys()].sort(), [...new Set([...reachable, inLivePin, "sha256:README"])].sort())
          assert.isTrue(yield* layout.hasBlob(inLivePin))
        }))
        assert.strictEqual(yield* fs.readFileString(canary), "canary")
        assert.isTrue(yield* fs.exists(notABlob))
        assert.isFalse(yield* fs.exists(stalePin))
        assert.deepStrictEqual(yield* fs.readDirectory(join(root, ".pins")), [])
        assert.deepStrictEqual(yield* fs.readDirectory(join(root, ".tmp")), ["blob-being-written"])

        // The live pin is gone: its blob goes with the next prune, and nothing else.
        assert.strictEqual((yield* store.prune()).blobs, 1)

        // Removing a frees exactly what b does not share.
        const sizes = yield* blobsOnDisk(fs, root)
        const removal = yield* store.remove([["h.io/a:1"]])
        assert.deepStrictEqual(removal, { removed: [[{ name: "h.io/a:1", digest: a.descriptor.digest }]], missing: [] })
        const freed = yield* store.prune()
        const own = a.blobs.filter((d) => !b.blobs.includes(d))
        assert.deepStrictEqual([freed.blobs, freed.bytes], [own.length, sum(sizes, own)])
        for (const d of b.blobs) assert.isTrue(yield* layout.hasBlob(d), d)
        assert.strictEqual((yield* store.prune()).blobs, 0)
      })))

  it.live("[M5] a pin that a running process wrote but that cannot be read stops prune (nothing deleted); a manifest that cannot be read keeps what it names", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const layout = yield* store.open()
        const orphan = yield* layout.writeBlob(bytesOf("orphan"))
        yield* fs.makeDirectory(join(layout.root, ".pins"))
        const torn = join(layout.root, ".pins", `${process.pid}-0123`)
        yield* fs.writeFileString(torn, "{")
        const error = yield* Effect.flip(store.prune())
        assert.include(error.message, `the pin of running process ${process.pid} cannot be read`)
        assert.isTrue(yield* layout.hasBlob(orphan))
        yield* fs.remove(torn)

        // A manifest whose JSON is not a manifest microagent reads: the digests it names are kept.
        const layer = yield* layout.writeBlob(bytesOf("a layer of an odd manifest"))
        const odd = encode({ schemaVersion: 2, mediaType: "application/vnd.example.odd+json", parts: [{ digest: layer }] })
        const oddDigest = yield* layout.writeBlob(odd)
        yield* layout.record({ mediaType: "application/vnd.example.odd+json", digest: oddDigest, size: odd.length }, { reference: "h.io/odd:1", tag: "1" })
        const report = yield* store.prune()
        assert.strictEqual(report.blobs, 1, "only the orphan")
        assert.strictEqual(report.problems.length, 1)
        assert.include(report.problems[0]!, "h.io/odd:1: manifest " + oddDigest + " cannot be read")
        assert.isTrue(yield* layout.hasBlob(layer))
        assert.isFalse(yield* layout.hasBlob(orphan))
      })))

  it.live("[M5] list: platforms of images and indexes, sizes on disk; the total counts shared blobs once and equals the bytes on disk", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        assert.deepStrictEqual(yield* store.list, { images: [], totalBytes: 0, problems: [] })
        assert.isFalse(yield* fs.exists(store.defaultRoot), "listing creates no store")

        const layout = yield* store.open()
        const shared = new Uint8Array(5000).map((_, i) => i % 7)
        const a = yield* imageIn(layout, "a", { layers: [shared, bytesOf("a")] })
        const b = yield* imageIn(layout, "b", { layers: [shared], platform: { os: "linux", architecture: "aarch64", variant: "v8" } })
        const amd = yield* imageIn(layout, "amd")
        const armv7 = yield* imageIn(layout, "armv7", { platform: { os: "linux", architecture: "arm", variant: "v7" } })
        const attestation = yield* imageIn(layout, "attestation", { platform: { os: "unknown", architecture: "unknown" } })
        const multi = yield* indexIn(layout, [
          [amd, { os: "linux", architecture: "amd64" }],
          [armv7, { os: "linux", architecture: "arm", variant: "v7" }],
          [attestation, { os: "unknown", architecture: "unknown" }]
        ])
        yield* layout.record(a.descriptor, { reference: "h.io/a:1", tag: "1" })
        yield* layout.record(b.descriptor, { reference: "h.io/b:1", tag: "1" })
        yield* layout.record(multi.descriptor, { reference: "h.io/multi:1", tag: "1" })
        // As an earlier version recorded it: no pulled-at.
        const index = yield* readJson(fs, join(layout.root, "index.json"))
        delete index.manifests[1].annotations["dev.microagent.pulled-at"]
        yield* fs.writeFileString(join(layout.root, "index.json"), JSON.stringify(index))

        const disk = yield* blobsOnDisk(fs, layout.root)
        const inventory = yield* store.list
        assert.deepStrictEqual(
          inventory.images.map((i) => [i.reference, i.digest, i.platforms, i.size, i.pulledAt === undefined]),
          [
            ["h.io/a:1", a.descriptor.digest, ["linux/amd64"], sum(disk, a.blobs), false],
            ["h.io/b:1", b.descriptor.digest, ["linux/arm64"], sum(disk, b.blobs), true],
            ["h.io/multi:1", multi.descriptor.digest, ["linux/amd64", "linux/arm/v7"], sum(disk, multi.blobs), false]
          ]
        )
        assert.strictEqual(inventory.totalBytes, [...disk.values()].reduce((x, y) => x + y, 0))
        assert.isBelow(inventory.totalBytes, inventory.images.reduce((n, i) => n + i.size, 0), "the shared layer once")
      })))

  it.live("[M5] remove is all or nothing: one unknown name removes nothing; spellings are tried in order", () =>
    withStore((store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        assert.deepStrictEqual(yield* store.remove([["h.io/a:1"]]), { removed: [], missing: [0] })
        const layout = yield* store.open()
        const a = yield* imageIn(layout, "a")
        const b = yield* imageIn(layout, "b")
        yield* layout.record(a.descriptor, { reference: "h.io/a:1", tag: "1" })
        yield* layout.record(b.descriptor, { reference: "h.io/b:1", tag: "1" })
        const indexPath = join(layout.root, "index.json")
        const before = yield* fs.readFileString(indexPath)

        assert.deepStrictEqual(yield* store.remove([["h.io/a:1"], ["nope", "h.io/nope:latest"]]), { removed: [], missing: [1] })
        assert.strictEqual(yield* fs.readFileString(indexPath), before)

        const removal = yield* store.remove([["x", "h.io/a:1"], ["h.io/b:1"]])
        assert.deepStrictEqual(removal.removed, [[{ name: "h.io/a:1", digest: a.descriptor.digest }], [{ name: "h.io/b:1", digest: b.descriptor.digest }]])
        assert.deepStrictEqual(yield* layout.entries, [])
      })))
})
