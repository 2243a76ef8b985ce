/**
 * `copy` (SPEC [M1]): an image from a registry, the shared store or a layout to any of them.
 * Registry to registry streams each blob from the source's response into the destination's
 * upload, never staged on disk (memory flat in blob size), and mounts instead within one
 * registry; a pull or a push does the rest, so each keeps its fast paths.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import * as BlobFiles from "./BlobFiles.js"
import * as Digest from "./domain/Digest.js"
import { ImageStoreError } from "./domain/Errors.js"
import type * as Manifest from "./domain/Manifest.js"
import * as Platform from "./domain/Platform.js"
import * as Reference from "./domain/Reference.js"
import * as ImageTree from "./ImageTree.js"
import * as PlatformChoice from "./PlatformChoice.js"
import { guardStream, Images, type ImagesError, type Moved, tally, type TransferOptions } from "./Images.js"
import { ImageStore, type Layout } from "./ImageStore.js"
import * as Body from "./registry/Body.js"
import { fromRegistry, RegistryClient, refusedContent } from "./RegistryClient.js"
import type * as RegistryClientModule from "./RegistryClient.js"

/** One side of a copy ([M1], [M7]). */
export type Location =
  | { readonly _tag: "Registry"; readonly reference: Reference.Reference }
  | { readonly _tag: "Store"; readonly reference: Reference.Reference }
  | { readonly _tag: "Layout"; readonly dir: string; readonly name: string | undefined }

export interface CopyOptions extends TransferOptions {
  /** One platform of an index; without it the whole index is copied ([M1]). */
  readonly platform?: Manifest.Platform | undefined
  /** `oci`: Docker manifests converted to OCI media types ([I2]); without it the bytes are kept. */
  readonly format?: "oci" | undefined
}

/** What was copied: `digest` as written, `sourceDigest` as read (they differ only after a conversion). */
export interface Copied extends Moved {
  readonly sourceDigest: string
}

export interface CopyService {
  readonly copy: (source: Location, target: Location, options?: CopyOptions) => Effect.Effect<Copied, ImagesError>
}

export class Copy extends Context.Tag("microagent/Copy")<Copy, CopyService>() {}

const defaultJobs = 4

/** How a location is named in messages. */
export const describe = (location: Location): string =>
  location._tag === "Layout"
    ? `oci:${location.dir}${location.name === undefined ? "" : `:${location.name}`}`
    : Reference.format(location.reference)

export const make = Effect.gen(function*() {
  const client = yield* RegistryClient
  const store = yield* ImageStore
  const images = yield* Images
  const fs = yield* FileSystem.FileSystem
  // The platform's own relay for copies between registries, when one is provided (the CLI's is Node's).
  const blobFiles = yield* BlobFiles.inContext

  /**
   * Registry to registry: blobs first, each streamed from the source into the destination (or
   * mounted within one registry, [P6]); then manifests, children before their index, the top
   * one under the target's tag ([I4]).
   */
  const registryToRegistry = (source: Reference.Reference, target: Reference.Reference, options: CopyOptions) =>
    Effect.gen(function*() {
      const from = { registry: source.registry, repository: source.repository }
      const to = { registry: target.registry, repository: target.repository }
      const { above, top } = yield* PlatformChoice.choose(client, source, options.platform)
      const tree = yield* ImageTree.walk(
        top,
        above,
        (d) => client.getManifest(from, d.digest),
        (reason, why) => refusedContent(source.registry, Reference.format(source), reason, why)
      )
      const written = yield* ImageTree.written(options.format, tree.manifests, top)
      const counter = tally(options.onBlob)
      const mountFrom = source.registry === target.registry ? source.repository : undefined
      yield* Effect.forEach(tree.blobs.values(), (d) =>
        Effect.gen(function*() {
          counter.start(d)
          // A download that fails (not one stopped because its upload ended) fails the blob's copy.
          const failed = yield* Deferred.make<never, RegistryClientModule.Error>()
          // The download runs outside this fiber, but with its logger and log level.
          const runFork = Runtime.runFork(yield* Effect.runtime<never>())
          const body = () => {
            const stream = counter.count(d, client.blob(from, d))
            const relay = blobFiles.relay
            if (relay === undefined) return stream
            return Body.withNodeSource(stream, () =>
              relay((onChunk) => {
                const fiber = runFork(client.blobInto(from, d, counter.track(d, onChunk)).pipe(
                  Effect.tapError((e) => e._tag === "ChunkRefused" ? Effect.void : Deferred.fail(failed, e))
                ))
                return {
                  done: Effect.runPromise(Fiber.join(fiber)),
                  cancel: () => void runFork(Fiber.interrupt(fiber))
                }
              }))
          }
          const outcome = yield* Effect.raceFirst(client.uploadBlob(to, d, body, mountFrom), Deferred.await(failed)).pipe(
            Effect.mapError((e) => e._tag === "DigestMismatch" ? fromRegistry(source.registry)(e) : e)
          )
          counter.done(d, outcome !== "uploaded")
        }), { concurrency: options.jobs ?? defaultJobs, discard: true })
      for (const m of written.manifests) {
        const tag = m === written.top && target.digest === undefined ? target.tag ?? "latest" : undefined
        yield* client.putManifest(to, tag ?? m.digest, m.bytes, m.mediaType)
      }
      return counter.moved(written.top, top.digest)
    })

  /** A layout's image and its tree, read and checked whole before anything is written. */
  const layoutTree = (layout: Layout, found: Manifest.Descriptor, platform: Manifest.Platform | undefined) =>
    Effect.gen(function*() {
      const readNode = ImageTree.layoutNode(layout)
      const { index, top } = yield* PlatformChoice.pick(yield* readNode(found), platform, {
        child: readNode,
        config: ImageTree.layoutConfig(layout),
        missing: (has) => ImageStoreError.of(layout.root, `${found.digest} has no image for ${Platform.format(platform!)} (${has})`)
      })
      const tree = yield* ImageTree.walk(top, index === undefined ? [] : [index.digest], readNode, (_, why) => ImageStoreError.of(layout.root, `the image ${top.digest} is refused: ${why}`))
      return { top, tree }
    })

  /** Layout to layout (the store is one): blobs copied file to file and verified on the way. */
  const localToLocal = (source: Location, target: Location, options: CopyOptions) =>
    Effect.gen(function*() {
      const from = yield* openLocal(source, false)
      const found = yield* from.layout.find(from.name)
      // Kept from a prune in either store while the copy reads and writes ([M5]).
      yield* from.layout.pin({ images: [found] })
      const { top, tree } = yield* layoutTree(from.layout, found, options.platform)
      const written = yield* ImageTree.written(options.format, tree.manifests, top)
      // Only once the source is read and checked: a refused copy creates no target layout.
      const to = yield* openLocal(target, true)
      yield* to.layout.pin({ blobs: [...tree.blobs.keys(), ...written.manifests.map((m) => m.digest)] })
      const counter = tally(options.onBlob)
      yield* Effect.forEach(tree.blobs.values(), (d) =>
        Effect.gen(function*() {
          if (yield* to.layout.hasBlob(d.digest, d.size)) return counter.done(d, true)
          counter.start(d)
          yield* Effect.scoped(Effect.gen(function*() {
            const temp = yield* to.layout.tempBlob
            // Checked against its descriptor as it goes, as a push checks what it sends.
            yield* guardStream(d, from.layout.root, () => {})(counter.count(d, from.layout.streamBlob(d.digest))).pipe(
              Stream.run(fs.sink(temp)),
              Effect.mapError((e) => e._tag === "ImageStoreError" ? e : ImageStoreError.of(temp, `cannot write it (${e.message})`))
            )
            yield* to.layout.commitBlob(temp, d.digest)
          }))
          counter.done(d, false)
        }), { concurrency: options.jobs ?? defaultJobs, discard: true })
      for (const m of written.manifests) yield* to.layout.writeBlob(m.bytes, Either.getOrThrow(Digest.parse(m.digest)).algorithm)
      yield* to.layout.record(
        { mediaType: written.top.mediaType, digest: written.top.digest, size: written.top.bytes.length },
        to.names
      )
      return counter.moved(written.top, top.digest)
    })

  /** A local location opened: its layout, the name to find it by, and the names to record it under. */
  const openLocal = (location: Location, create: boolean) =>
    Effect.gen(function*() {
      if (location._tag === "Registry") return yield* Effect.die(new Error("a registry is not a local location"))
      const layout = yield* store.open(location._tag === "Layout" ? location.dir : undefined, { create })
      const name = location._tag === "Layout" ? location.name : Reference.format(location.reference)
      const names = location._tag === "Layout"
        ? { reference: location.name ?? "latest", tag: location.name }
        : { reference: Reference.format(location.reference), tag: location.reference.tag }
      return { layout, name, names }
    })

  const copy = Effect.fn("Copy.copy")(function*(source: Location, target: Location, options: CopyOptions = {}) {
    if (source._tag === "Registry" && target._tag === "Registry") return yield* registryToRegistry(source.reference, target.reference, options)
    if (source._tag === "Registry") {
      const moved = yield* images.pull(source.reference, {
        ...options,
        output: target._tag === "Layout" ? target.dir : undefined,
        recordAs: target._tag === "Layout"
          ? (target.name === undefined ? undefined : { reference: Reference.format(source.reference), tag: target.name })
          : { reference: Reference.format(target.reference), tag: target.reference.tag }
      })
      return { ...moved, sourceDigest: moved.sourceDigest ?? moved.digest }
    }
    if (target._tag === "Registry") {
      const from = source._tag === "Layout" ? { _tag: "Layout" as const, dir: source.dir, tag: source.name } : source
      const moved = yield* images.push(from, target.reference, options)
      return { ...moved, sourceDigest: moved.sourceDigest ?? moved.digest }
    }
    return yield* localToLocal(source, target, options)
  }, Effect.scoped)

  return Copy.of({ copy })
})

export const layer = Layer.effect(Copy, make)
