/**
 * Pull and push (SPEC §3): connect RegistryClient and ImageStore. Blobs move in parallel
 * (`jobs`, default 4, [P8]); what the store or the registry already has is not moved again.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { createReadStream } from "node:fs"
import * as Digest from "./domain/Digest.js"
import { DigestMismatch, ImageStoreError, NotFound } from "./domain/Errors.js"
import * as Manifest from "./domain/Manifest.js"
import * as Platform from "./domain/Platform.js"
import * as Reference from "./domain/Reference.js"
import { ImageStore, type Layout } from "./ImageStore.js"
import * as Body from "./registry/Body.js"
import { RegistryClient, type Repository } from "./RegistryClient.js"
import * as FileSink from "./storage/FileSink.js"
import type * as RegistryClientModule from "./RegistryClient.js"

/**
 * What happens to each blob, for progress displays. `Progress` carries the bytes done so far;
 * `Done` says whether the bytes moved or were already on the other side.
 */
export type BlobEvent =
  | { readonly _tag: "Start"; readonly digest: string; readonly size: number }
  | { readonly _tag: "Progress"; readonly digest: string; readonly size: number; readonly done: number }
  | { readonly _tag: "Done"; readonly digest: string; readonly size: number; readonly skipped: boolean }

export interface TransferOptions {
  readonly jobs?: number | undefined
  /** Called for every blob event; must be cheap (it runs for every chunk). */
  readonly onBlob?: ((event: BlobEvent) => void) | undefined
}

export interface PullOptions extends TransferOptions {
  readonly platform?: Manifest.Platform | undefined
  /** A layout folder instead of the shared store. */
  readonly output?: string | undefined
}

export type PushOptions = TransferOptions

/** Where `push` takes an image from ([I4]): the store by reference, or a layout folder. */
export type PushSource =
  | { readonly _tag: "Store"; readonly reference: Reference.Reference }
  | { readonly _tag: "Layout"; readonly dir: string; readonly tag: string | undefined }

export interface Moved {
  readonly digest: string
  readonly mediaType: string
  /** Blobs (and their bytes) transferred, and skipped because the other side had them. */
  readonly transferred: number
  readonly skipped: number
  readonly bytesTransferred: number
  readonly bytesSkipped: number
}

/** Counts what moved, and reports each blob's progress to `onBlob`. */
const tally = (onBlob: TransferOptions["onBlob"]) => {
  const totals = { transferred: 0, skipped: 0, bytesTransferred: 0, bytesSkipped: 0 }
  const emit = onBlob ?? (() => {})
  /** Reports the bytes of `d` seen so far, chunk by chunk; nothing to do without `onBlob`. */
  const progress = (d: Manifest.Descriptor) => {
    if (onBlob === undefined) return undefined
    let done = 0
    return (chunk: Uint8Array) => {
      done += chunk.length
      onBlob({ _tag: "Progress", digest: d.digest, size: d.size, done })
    }
  }
  return {
    totals,
    start: (d: Manifest.Descriptor) => emit({ _tag: "Start", digest: d.digest, size: d.size }),
    /** Passes a blob's bytes through, reporting how far it got. */
    count: <E, R>(d: Manifest.Descriptor, stream: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E, R> => {
      const seen = progress(d)
      return seen === undefined ? stream : Stream.map(stream, (chunk) => {
        seen(chunk)
        return chunk
      })
    },
    /** The same for a Node stream (a push's file), without changing what flows. */
    countNode: <S extends NodeJS.ReadableStream>(d: Manifest.Descriptor, source: S): S => {
      const seen = progress(d)
      if (seen !== undefined) source.on("data", seen)
      return source
    },
    /** The same for a download's chunk callback. */
    track: (d: Manifest.Descriptor, onChunk: Body.OnChunk): Body.OnChunk => {
      const seen = progress(d)
      return seen === undefined ? onChunk : (chunk) => {
        seen(chunk)
        return onChunk(chunk)
      }
    },
    done: (d: Manifest.Descriptor, skipped: boolean) => {
      if (skipped) {
        totals.skipped++
        totals.bytesSkipped += d.size
      } else {
        totals.transferred++
        totals.bytesTransferred += d.size
      }
      emit({ _tag: "Done", digest: d.digest, size: d.size, skipped })
    }
  }
}

export type ImagesError = RegistryClientModule.Error | ImageStoreError

export interface ImagesService {
  readonly pull: (reference: Reference.Reference, options?: PullOptions) => Effect.Effect<Moved, ImagesError>
  readonly push: (source: PushSource, target: Reference.Reference, options?: PushOptions) => Effect.Effect<Moved, ImagesError>
}

export class Images extends Context.Tag("microagent/Images")<Images, ImagesService>() {}

const defaultJobs = 4
/** Read size of a pushed file: large enough that per-chunk costs vanish, bounded per blob. */
const uploadChunk = 256 * 1024

export const make = Effect.gen(function*() {
  const client = yield* RegistryClient
  const store = yield* ImageStore

  /** Downloads one blob into the layout unless it is there; a failed or interrupted one leaves nothing. */
  const fetchBlob = (layout: Layout, repo: Repository, descriptor: Manifest.Descriptor, counter: ReturnType<typeof tally>) =>
    Effect.gen(function*() {
      if (yield* layout.hasBlob(descriptor.digest)) return counter.done(descriptor, true)
      counter.start(descriptor)
      yield* Effect.scoped(Effect.gen(function*() {
        const temp = yield* layout.tempBlob
        const file = yield* FileSink.open(temp)
        yield* client.blobInto(repo, descriptor, counter.track(descriptor, file.write)).pipe(
          // FileSink rejects with the ImageStoreError that says what went wrong; anything else is a bug.
          Effect.catchTag("ChunkRefused", (e) => e.cause instanceof ImageStoreError ? Effect.fail(e.cause) : Effect.die(e.cause))
        )
        yield* file.close
        yield* layout.commitBlob(temp, descriptor.digest)
      }))
      counter.done(descriptor, false)
    })

  /** Fetches a manifest tree (an index's children too), returning the manifests and their blobs. */
  const collect = (
    repo: Repository,
    reference: string,
    into: { manifests: Array<{ digest: string; bytes: Uint8Array }>; blobs: Map<string, Manifest.Descriptor> }
  ): Effect.Effect<RegistryClientModule.FetchedManifest, ImagesError> =>
    Effect.gen(function*() {
      const fetched = yield* client.getManifest(repo, reference)
      if (fetched.manifest._tag === "Index") {
        for (const child of fetched.manifest.manifests) yield* collect(repo, child.digest, into)
      } else {
        for (const d of [fetched.manifest.config, ...fetched.manifest.layers]) into.blobs.set(d.digest, d)
      }
      into.manifests.push({ digest: fetched.digest, bytes: fetched.bytes })
      return fetched
    })

  const pull = Effect.fn("Images.pull")(function*(reference: Reference.Reference, options: PullOptions = {}) {
    const repo = { registry: reference.registry, repository: reference.repository }
    const layout = yield* store.open(options.output)
    let top = yield* client.getManifest(repo, reference.digest ?? reference.tag ?? "latest")
    if (options.platform !== undefined && top.manifest._tag === "Index") {
      const wanted = options.platform
      const child = Platform.select(wanted, top.manifest.manifests)
      if (child === undefined) {
        const offered = top.manifest.manifests.flatMap((m) => m.platform ? [Platform.format(m.platform)] : []).join(", ")
        return yield* new NotFound({
          registry: reference.registry,
          what: `platform ${Platform.format(wanted)}`,
          message: `${Reference.format(reference)} has no image for ${Platform.format(wanted)} (it has: ${offered || "none listed"})`
        })
      }
      top = yield* client.getManifest(repo, child.digest)
    }
    const tree = { manifests: [] as Array<{ digest: string; bytes: Uint8Array }>, blobs: new Map<string, Manifest.Descriptor>() }
    if (top.manifest._tag === "Index") {
      for (const child of top.manifest.manifests) yield* collect(repo, child.digest, tree)
    } else {
      for (const d of [top.manifest.config, ...top.manifest.layers]) tree.blobs.set(d.digest, d)
    }
    const counter = tally(options.onBlob)
    yield* Effect.forEach(tree.blobs.values(), (d) => fetchBlob(layout, repo, d, counter), {
      concurrency: options.jobs ?? defaultJobs,
      discard: true
    })
    // Children before their index, so the layout never names what it lacks.
    for (const m of [...tree.manifests, { digest: top.digest, bytes: top.bytes }]) {
      const written = yield* layout.writeBlob(m.bytes)
      if (written !== m.digest) return yield* new DigestMismatch({ expected: m.digest, actual: written, message: `manifest ${m.digest} changed on its way to disk` })
    }
    yield* layout.record(
      { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length },
      { reference: Reference.format(reference), tag: reference.tag }
    )
    return { digest: top.digest, mediaType: top.mediaType, ...counter.totals }
  })

  const push = Effect.fn("Images.push")(function*(source: PushSource, target: Reference.Reference, options: PushOptions = {}) {
    const layout = yield* store.open(source._tag === "Layout" ? source.dir : undefined, { create: false })
    const root = yield* layout.find(source._tag === "Layout" ? source.tag : Reference.format(source.reference))
    const repo = { registry: target.registry, repository: target.repository }
    // Blobs pulled from another repository of the same registry can be mounted instead of sent ([P6]).
    const origin = source._tag === "Store" && source.reference.registry === target.registry ? source.reference.repository : undefined
    const counter = tally(options.onBlob)

    const pushNode = (descriptor: Manifest.Descriptor, tag: string | undefined): Effect.Effect<void, ImagesError> =>
      Effect.gen(function*() {
        const bytes = yield* layout.readBlob(descriptor.digest)
        const actual = Digest.format(Digest.of(bytes))
        if (actual !== descriptor.digest) return yield* new DigestMismatch({ expected: descriptor.digest, actual, message: `manifest ${descriptor.digest} in ${layout.root} does not match its digest` })
        const manifest = yield* Effect.mapError(
          Effect.suspend(() => Manifest.parse(bytes, descriptor.mediaType)),
          (reason) => new NotFound({ registry: target.registry, what: descriptor.digest, message: `manifest ${descriptor.digest} in ${layout.root}: ${reason}` })
        )
        if (manifest._tag === "Index") {
          for (const child of manifest.manifests) yield* pushNode(child, undefined)
        } else {
          yield* Effect.forEach([manifest.config, ...manifest.layers], (d) =>
            Effect.gen(function*() {
              counter.start(d)
              const file = yield* layout.blobPath(d.digest)
              const body = () =>
                Body.withNodeSource(
                  counter.count(d, layout.streamBlob(d.digest)),
                  () => counter.countNode(d, createReadStream(file, { highWaterMark: uploadChunk }))
                )
              const outcome = yield* client.uploadBlob(repo, d, body, origin)
              counter.done(d, outcome !== "uploaded")
            }), { concurrency: options.jobs ?? defaultJobs, discard: true })
        }
        yield* client.putManifest(repo, tag ?? descriptor.digest, bytes, manifest.mediaType)
      })

    yield* pushNode(root, target.digest === undefined ? target.tag ?? "latest" : undefined)
    return { digest: root.digest, mediaType: root.mediaType, ...counter.totals }
  })

  return Images.of({ pull, push })
})

export const layer = Layer.effect(Images, make)
