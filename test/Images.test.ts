/**
 * Images.push against a layout whose blob changes after it was checked ([P6], issue 15 item 4):
 * the bytes sent are checked against the descriptor as they go, on both the Node fast path and
 * the Effect stream, so a file that shrank, grew or changed ends the push with an error naming
 * the blob and the layout, even when the registry would wait for ever, and a registry never
 * receives the whole of a body that is wrong.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { createHash, randomBytes } from "node:crypto"
import { join } from "node:path"
import * as Digest from "../src/domain/Digest.js"
import { NotFound } from "../src/domain/Errors.js"
import * as Manifest from "../src/domain/Manifest.js"
import * as Reference from "../src/domain/Reference.js"
import * as ImageStore from "../src/ImageStore.js"
import * as Images from "../src/Images.js"
import * as NodeBlobFiles from "../src/node/BlobFiles.js"
import * as Body from "../src/registry/Body.js"
import { RegistryClient, type RegistryClientService } from "../src/RegistryClient.js"

type Path = "node" | "stream"
type Change = "none" | "shrink" | "grow" | "replace"

interface Upload {
  readonly digest: string
  /** Bytes the fake registry received before the body ended or failed. */
  received: number
  /** sha256 of what it received, when the body ended cleanly. */
  digestReceived: string | undefined
}

/** A RegistryClient whose every method is a defect: each fake overrides the ones its test uses. */
const unused: RegistryClientService = {
  checkLogin: () => Effect.die("unused"),
  getManifest: () => Effect.die("unused"),
  blob: () => Stream.die("unused"),
  blobInto: () => Effect.die("unused"),
  listTags: () => Effect.die("unused"),
  listCatalog: () => Effect.die("unused"),
  resolveDigest: () => Effect.die("unused"),
  deleteManifest: () => Effect.die("unused"),
  putManifest: () => Effect.die("unused"),
  uploadBlob: () => Effect.die("unused")
}

/**
 * A registry that takes blobs through `path` and, before reading the layer's body, lets
 * `change` alter its file. A body that fails leaves it waiting for ever, as a registry whose
 * Content-Length was not met does.
 */
const fakeRegistry = (path: Path, before: (digest: string) => Effect.Effect<void>, uploads: Array<Upload>) =>
  Layer.succeed(RegistryClient, {
    ...unused,
    // The tag is not there yet: every push goes on to send its blobs.
    resolveDigest: (repo, reference) => Effect.fail(new NotFound({ registry: repo.registry, what: `manifest ${reference}`, message: "not found" })),
    putManifest: () => Effect.void,
    uploadBlob: (_repo, descriptor, body) =>
      Effect.gen(function*() {
        yield* before(descriptor.digest)
        const upload: Upload = { digest: descriptor.digest, received: 0, digestReceived: undefined }
        uploads.push(upload)
        const hash = createHash("sha256")
        const sent = body()
        const read = path === "node"
          ? Effect.async<void, unknown>((resume) => {
            const open = Body.nodeSourceOf(sent)
            if (open === undefined) return resume(Effect.die("no Node source"))
            const source = open()
            source.on("data", (chunk: Buffer) => {
              upload.received += chunk.length
              hash.update(chunk)
            })
            source.on("error", (e) => resume(Effect.fail(e)))
            source.on("end", () => resume(Effect.void))
          })
          : Stream.runForEach(sent, (chunk) =>
            Effect.sync(() => {
              upload.received += chunk.length
              hash.update(chunk)
            })
          )
        const ok = yield* Effect.either(read)
        if (ok._tag === "Left") return yield* Effect.never
        upload.digestReceived = `sha256:${hash.digest("hex")}`
        return "uploaded" as const
      })
  })

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

const run = (path: Path, change: Change) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const home = yield* fs.makeTempDirectoryScoped()
    const storeLayer = ImageStore.layer.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HOME", home]])))))
    const dir = join(home, "layout")
    const layer = new Uint8Array(randomBytes(700_000))
    const layerDigest = Digest.format(Digest.of(layer))
    const built = yield* Effect.gen(function*() {
      const layout = yield* (yield* ImageStore.ImageStore).open(dir)
      const config = encode({ os: "linux", architecture: "amd64" })
      yield* fs.writeFile(join(dir, "blobs", "sha256", layerDigest.slice(7)), layer)
      const manifest = encode({
        schemaVersion: 2,
        mediaType: Manifest.MediaType.OciManifest,
        config: { mediaType: Manifest.MediaType.OciConfig, digest: yield* layout.writeBlob(config), size: config.length },
        layers: [{ mediaType: Manifest.MediaType.OciLayer, digest: layerDigest, size: layer.length }]
      })
      const digest = yield* layout.writeBlob(manifest)
      yield* layout.record({ mediaType: Manifest.MediaType.OciManifest, digest, size: manifest.length }, { reference: "example.com/app:v1", tag: "v1" })
      return { file: yield* layout.blobPath(layerDigest) }
    }).pipe(Effect.provide(storeLayer))

    const before = (digest: string) =>
      digest !== layerDigest || change === "none" ? Effect.void : Effect.orDie(
        change === "shrink"
          ? fs.truncate(built.file, layer.length - 10)
          : change === "grow"
          ? fs.writeFile(built.file, new Uint8Array(1), { flag: "a" })
          : fs.writeFile(built.file, new Uint8Array(randomBytes(layer.length)))
      )
    const uploads: Array<Upload> = []
    // The Node fast path is Node's blob file I/O; without it, blobs go through the FileSystem.
    const files = path === "node" ? NodeBlobFiles.layer : Layer.empty
    const images = Layer.effect(Images.Images, Images.make).pipe(
      Layer.provide(Layer.mergeAll(storeLayer, fakeRegistry(path, before, uploads), files))
    )
    const target = Reference.parse("registry.example.com/team/app:v1")
    if (target._tag === "Left") return yield* Effect.die(target.left)
    const outcome = yield* Effect.flatMap(Images.Images, (i) => i.push({ _tag: "Layout", dir, tag: "v1" }, target.right)).pipe(
      Effect.provide(images),
      Effect.timeout("10 seconds"),
      Effect.either
    )
    return { outcome, upload: uploads.find((u) => u.digest === layerDigest), dir, layerDigest, size: layer.length }
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

describe("Images.push checks what it sends", () => {
  for (const path of ["node", "stream"] as const) {
    it.live(`[P6] (${path}) an untouched blob is sent whole and exactly`, () =>
      Effect.gen(function*() {
        const { layerDigest, outcome, size, upload } = yield* run(path, "none")
        assert.strictEqual(outcome._tag, "Right", String(outcome._tag === "Left" ? outcome.left : ""))
        assert.strictEqual(upload?.received, size)
        assert.strictEqual(upload?.digestReceived, layerDigest)
      }))

    for (const change of ["shrink", "grow", "replace"] as const) {
      it.live(`[P6] (${path}) a blob whose file ${change === "replace" ? "is replaced by other bytes of the same size" : change === "shrink" ? "shrinks" : "grows"} after the check: an error naming blob and layout, the registry never gets it whole`, () =>
        Effect.gen(function*() {
          const { dir, layerDigest, outcome, size, upload } = yield* run(path, change)
          assert.strictEqual(outcome._tag, "Left")
          if (outcome._tag !== "Left") return
          const error = outcome.left
          assert.notStrictEqual(error._tag, "TimeoutException", "the push waited for the registry")
          assert.strictEqual(error._tag, "ImageStoreError")
          for (const part of [dir, layerDigest, "changed while it was being sent"]) assert.include(error.message, part)
          assert.isBelow(upload?.received ?? 0, size)
          assert.isUndefined(upload?.digestReceived)
        }))
    }
  }
})

describe("Images.pull walks an index tree once, within limits ([H3])", () => {
  const index = (children: ReadonlyArray<string>): Manifest.Manifest => ({
    _tag: "Index",
    mediaType: Manifest.MediaType.OciIndex,
    manifests: children.map((digest) => ({ mediaType: Manifest.MediaType.OciIndex, digest, size: 10 }))
  })
  const digestOf = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`

  /**
   * A registry that serves `tree` (digest → manifest) without checking digests, as one whose
   * hashing could be fooled would: the walk's own guards are all that stands.
   */
  const pullFrom = (tree: ReadonlyMap<string, Manifest.Manifest>, top: string) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const home = yield* fs.makeTempDirectoryScoped()
      const fetched: Array<string> = []
      const client = Layer.succeed(RegistryClient, {
        ...unused,
        getManifest: (_repo, reference) =>
          Effect.suspend(() => {
            fetched.push(reference)
            const manifest = tree.get(reference === "v1" ? top : reference)
            return manifest === undefined
              ? Effect.die(`no ${reference}`)
              : Effect.succeed({ bytes: encode(reference), digest: reference === "v1" ? top : reference, manifest, mediaType: manifest.mediaType })
          })
      })
      const storeLayer = ImageStore.layer.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HOME", home]])))))
      const images = Layer.effect(Images.Images, Images.make).pipe(Layer.provide(Layer.merge(storeLayer, client)))
      const target = Reference.parse("registry.example.com/team/app:v1")
      if (target._tag === "Left") return yield* Effect.die(target.left)
      const outcome = yield* Effect.flatMap(Images.Images, (i) => i.pull(target.right, { output: join(home, "out") })).pipe(
        Effect.provide(images),
        Effect.timeout("5 seconds"),
        Effect.either
      )
      return { outcome, fetched }
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

  it.live("[H3] an index that names itself, or an index above it, is refused after one fetch of each", () =>
    Effect.gen(function*() {
      const [a, b] = [digestOf(1), digestOf(2)]
      for (const tree of [new Map([[a, index([a])]]), new Map([[a, index([b])], [b, index([a])]])]) {
        const { fetched, outcome } = yield* pullFrom(tree, a)
        assert.strictEqual(outcome._tag, "Left")
        if (outcome._tag !== "Left") return
        assert.notStrictEqual(outcome.left._tag, "TimeoutException")
        assert.include(outcome.left.message, "refers to itself or to an index above it")
        assert.include(outcome.left.message, "registry.example.com")
        assert.isAtMost(fetched.length, tree.size)
      }
    }))

  it.live("[H3] a child named by several indexes is fetched once, and its depth counts on every path", () =>
    Effect.gen(function*() {
      // top → [shallow, deep chain of 6] ; shallow → leaf chain of 2 ; the chain's last index names `shallow` too.
      const top = digestOf(100)
      const shallow = digestOf(200)
      const tree = new Map<string, Manifest.Manifest>()
      const chain = Array.from({ length: 6 }, (_, i) => digestOf(300 + i))
      const leaf = [digestOf(400), digestOf(401)]
      tree.set(leaf[1]!, index([]))
      tree.set(leaf[0]!, index([leaf[1]!]))
      tree.set(shallow, index([leaf[0]!]))
      chain.forEach((d, i) => tree.set(d, index([i + 1 < chain.length ? chain[i + 1]! : shallow])))
      tree.set(top, index([shallow, chain[0]!]))
      // Through the chain `shallow` sits at level 8, with 2 more levels below it: 10 in all.
      const { fetched, outcome } = yield* pullFrom(tree, top)
      assert.strictEqual(outcome._tag, "Left")
      if (outcome._tag !== "Left") return
      assert.include(outcome.left.message, "nest more than 8 levels")
      assert.strictEqual(new Set(fetched).size, fetched.length, `fetched twice: ${fetched.join(" ")}`)
    }))
})
