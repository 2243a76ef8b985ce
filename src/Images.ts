/**
 * Pull and push (SPEC §3): connect RegistryClient and ImageStore. Blobs move in parallel
 * (`jobs`, default 4, [P8]); what the store or the registry already has is not moved again.
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as BlobFiles from "./BlobFiles.js"
import * as Digest from "./domain/Digest.js"
import { DigestMismatch, ImageStoreError } from "./domain/Errors.js"
import * as Manifest from "./domain/Manifest.js"
import * as Reference from "./domain/Reference.js"
import * as ImageTree from "./ImageTree.js"
import * as PlatformChoice from "./PlatformChoice.js"
import { ImageStore, type Layout, type RecordNames } from "./ImageStore.js"
import * as Body from "./registry/Body.js"
import { fromRegistry, RegistryClient, refusedContent, type Repository } from "./RegistryClient.js"
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
  /** `oci`: Docker manifests converted to OCI media types ([I2]); without it the bytes are kept. */
  readonly format?: "oci" | undefined
  /** The name to record the image under instead of the pulled reference's (a copy's target). */
  readonly recordAs?: RecordNames | undefined
}

export interface PushOptions extends TransferOptions {
  /** `oci`: Docker manifests converted to OCI media types before they are pushed ([M1]). */
  readonly format?: "oci" | undefined
}

/** Where `push` takes an image from ([I4]): the store by reference, or a layout folder. */
export type PushSource =
  | { readonly _tag: "Store"; readonly reference: Reference.Reference }
  | { readonly _tag: "Layout"; readonly dir: string; readonly tag: string | undefined }

export interface Moved {
  /** The digest written; after `--format oci`, that of the converted manifest. */
  readonly digest: string
  /** The digest read, when it differs from `digest` (a conversion changed it) ([M7]). */
  readonly sourceDigest?: string | undefined
  readonly mediaType: string
  /** Blobs (and their bytes) transferred, and skipped because the other side had them. */
  readonly transferred: number
  readonly skipped: number
  readonly bytesTransferred: number
  readonly bytesSkipped: number
}

/** Counts what moved, and reports each blob's progress to `onBlob`. */
export const tally = (onBlob: TransferOptions["onBlob"]) => {
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
    },
    /** What a transfer reports: the manifest written (`top`), the one read, and the totals. */
    moved: (top: { readonly digest: string; readonly mediaType: string }, sourceDigest: string) => ({
      digest: top.digest,
      sourceDigest,
      mediaType: top.mediaType,
      ...totals
    })
  }
}

export type ImagesError = RegistryClientModule.Error | ImageStoreError

export interface ImagesService {
  readonly pull: (reference: Reference.Reference, options?: PullOptions) => Effect.Effect<Moved, ImagesError>
  readonly push: (source: PushSource, target: Reference.Reference, options?: PushOptions) => Effect.Effect<Moved, ImagesError>
}

export class Images extends Context.Tag("microagent/Images")<Images, ImagesService>() {}

const defaultJobs = 4

/**
 * Checks the bytes of a blob being sent against its descriptor as they go: never more than its
 * size, and at the end its size and digest. The last chunk is held back until then, so a
 * registry never receives the whole of a body that is wrong.
 */
const sendCheck = (d: Manifest.Descriptor, root: string): BlobFiles.SendCheck => {
  const hash = Digest.hasher(Either.getOrThrow(Digest.parse(d.digest)).algorithm)
  let sent = 0
  const damaged = (why: string) => ImageStoreError.of(root, `blob ${d.digest} changed while it was being sent: ${why}; the layout is damaged`)
  return {
    add: (chunk: Uint8Array): ImageStoreError | undefined => {
      sent += chunk.length
      if (sent > d.size) return damaged(`it has more than the ${d.size} bytes its descriptor says`)
      hash.update(chunk)
      return undefined
    },
    end: (): ImageStoreError | undefined => {
      if (sent !== d.size) return damaged(`it has ${sent} bytes, its descriptor says ${d.size}`)
      const actual = `${d.digest.slice(0, d.digest.indexOf(":"))}:${hash.digest("hex")}`
      return actual === d.digest ? undefined : damaged(`its content hashes to ${actual}`)
    }
  }
}

/** The Effect stream of a blob's file, checked by `sendCheck`; a problem is also `report`ed. */
export const guardStream = (d: Manifest.Descriptor, root: string, report: (e: ImageStoreError) => void) =>
<R>(stream: Stream.Stream<Uint8Array, ImageStoreError, R>): Stream.Stream<Uint8Array, ImageStoreError, R> =>
  Stream.suspend(() => {
    const check = sendCheck(d, root)
    let held: Uint8Array | undefined
    const failed = (e: ImageStoreError) => {
      report(e)
      return e
    }
    return stream.pipe(
      Stream.mapEffect((chunk) => {
        const problem = check.add(chunk)
        if (problem !== undefined) return Effect.fail(failed(problem))
        const out = held
        held = chunk
        return Effect.succeed(out)
      }),
      Stream.filter((chunk): chunk is Uint8Array => chunk !== undefined),
      Stream.concat(Stream.suspend(() => {
        const problem = check.end()
        if (problem !== undefined) return Stream.fail(failed(problem))
        return held === undefined ? Stream.empty : Stream.make(held)
      }))
    )
  })

export const make = Effect.gen(function*() {
  const client = yield* RegistryClient
  const store = yield* ImageStore
  // The platform's own blob file I/O when one is provided (the CLI's is Node's), else FileSystem's.
  const blobFiles = yield* BlobFiles.inContext

  /** Downloads one blob into the layout unless it is there; a failed or interrupted one leaves nothing. */
  const fetchBlob = (layout: Layout, repo: Repository, descriptor: Manifest.Descriptor, counter: ReturnType<typeof tally>) =>
    Effect.gen(function*() {
      if (yield* layout.hasBlob(descriptor.digest)) return counter.done(descriptor, true)
      counter.start(descriptor)
      yield* Effect.scoped(Effect.gen(function*() {
        const temp = yield* layout.tempBlob
        const file = yield* blobFiles.sink(temp)
        yield* client.blobInto(repo, descriptor, counter.track(descriptor, file.write)).pipe(
          // FileSink rejects with the ImageStoreError that says what went wrong; anything else is a bug.
          Effect.catchTag("ChunkRefused", (e) => e.cause instanceof ImageStoreError ? Effect.fail(e.cause) : Effect.die(e.cause)),
          Effect.mapError((e) => e._tag === "DigestMismatch" ? fromRegistry(repo.registry)(e) : e)
        )
        yield* file.close
        yield* layout.commitBlob(temp, descriptor.digest)
      }))
      counter.done(descriptor, false)
    })

  /**
   * A pull that would change nothing: the registry still points the reference at the manifest
   * the layout records under that name, and everything it reaches is in the layout. Nothing is
   * written then (the entry keeps its `pulled-at`), and a digest is not even asked for: its
   * content is what it names. `undefined`: the pull goes the long way, which also mends a layout
   * whose records do not read back.
   */
  const unchanged = (layout: Layout, repo: Repository, reference: Reference.Reference, options: PullOptions, counter: ReturnType<typeof tally>) =>
    Effect.gen(function*() {
      if (options.format !== undefined || options.recordAs !== undefined) return undefined
      const entry = yield* layout.recorded({ reference: Reference.format(reference), tag: reference.tag })
      if (entry === undefined) return undefined
      if ((yield* client.resolveDigest(repo, reference.digest ?? reference.tag ?? "latest")) !== entry.digest) return undefined
      return yield* Effect.gen(function*() {
        const read = ImageTree.layoutNode(layout)
        const top = yield* read(entry)
        const refused = (why: string) => ImageStoreError.of(layout.root, why)
        if (options.platform !== undefined) {
          const chosen = yield* PlatformChoice.pick(top, options.platform, { child: read, config: ImageTree.layoutConfig(layout), missing: refused })
          if (chosen.top.digest !== top.digest) return undefined
        }
        const tree = yield* ImageTree.walk(top, [], read, (_, why) => refused(why))
        for (const d of tree.blobs.values()) if (!(yield* layout.hasBlob(d.digest, d.size))) return undefined
        for (const d of tree.blobs.values()) counter.done(d, true)
        return counter.moved(top, top.digest)
      }).pipe(Effect.catchTag("ImageStoreError", () => Effect.succeed(undefined)))
    })

  const pull = Effect.fn("Images.pull")(function*(reference: Reference.Reference, options: PullOptions = {}) {
    const repo = { registry: reference.registry, repository: reference.repository }
    const layout = yield* store.open(options.output)
    const counter = tally(options.onBlob)
    const same = yield* unchanged(layout, repo, reference, options, counter)
    if (same !== undefined) return same
    const { above, top } = yield* PlatformChoice.choose(client, reference, options.platform)
    const tree = yield* ImageTree.walk(
      top,
      above,
      (d) => client.getManifest(repo, d.digest),
      (reason, why) => refusedContent(reference.registry, `${reference.repository}${reference.digest === undefined ? `:${reference.tag ?? "latest"}` : `@${reference.digest}`}`, reason, why)
    )
    // Pinned before any blob is looked for, until recorded: a prune meanwhile keeps them ([M5]).
    const written = yield* ImageTree.written(options.format, tree.manifests, top)
    yield* layout.pin({ blobs: [...tree.blobs.keys(), ...tree.manifests.map((m) => m.digest), ...written.manifests.map((m) => m.digest)] })
    yield* Effect.forEach(tree.blobs.values(), (d) => fetchBlob(layout, repo, d, counter), {
      concurrency: options.jobs ?? defaultJobs,
      discard: true
    })
    // Children before their index, so the layout never names what it lacks.
    for (const m of written.manifests) {
      const stored = yield* layout.writeBlob(m.bytes, Either.getOrThrow(Digest.parse(m.digest)).algorithm)
      if (stored !== m.digest) return yield* new DigestMismatch({ expected: m.digest, actual: stored, message: `manifest ${m.digest} changed on its way to disk` })
    }
    yield* layout.record(
      { mediaType: written.top.mediaType, digest: written.top.digest, size: written.top.bytes.length },
      options.recordAs ?? { reference: Reference.format(reference), tag: reference.tag }
    )
    return counter.moved(written.top, top.digest)
  }, Effect.scoped)

  const push = Effect.fn("Images.push")(function*(source: PushSource, target: Reference.Reference, options: PushOptions = {}) {
    const layout = yield* store.open(source._tag === "Layout" ? source.dir : undefined, { create: false })
    const root = yield* layout.find(source._tag === "Layout" ? source.tag : Reference.format(source.reference))
    // Kept from a prune until sent, should the image be removed from the store meanwhile ([M5]).
    yield* layout.pin({ images: [root] })
    const repo = { registry: target.registry, repository: target.repository }
    // Blobs pulled from another repository of the same registry can be mounted instead of sent ([P6]).
    const origin = source._tag === "Store" && source.reference.registry === target.registry ? source.reference.repository : undefined
    const counter = tally(options.onBlob)

    const readNode = ImageTree.layoutNode(layout)

    // Everything is read and checked before anything is sent: a damaged layout pushes nothing.
    const top = yield* readNode(root)
    const tree = yield* ImageTree.walk(top, [], readNode, (_, why) => ImageStoreError.of(layout.root, `the image ${root.digest} is refused: ${why}`))
    const files = new Map<string, string>()
    for (const d of tree.blobs.values()) files.set(d.digest, yield* layout.blobFile(d.digest, d.size))
    const written = yield* ImageTree.written(options.format, tree.manifests, top)
    const tag = target.digest === undefined ? target.tag ?? "latest" : undefined

    // The tag already names this very manifest: the registry holds it and so everything it
    // reaches (a registry takes no manifest whose blobs it lacks), and nothing is sent, as crane
    // does. A tag it does not have yet is pushed as usual.
    if (tag !== undefined) {
      const current = yield* client.resolveDigest(repo, tag, { forPush: true }).pipe(
        Effect.catchTag("NotFound", () => Effect.succeed(undefined))
      )
      if (current === written.top.digest) {
        for (const d of tree.blobs.values()) counter.done(d, true)
        return counter.moved(written.top, root.digest)
      }
    }

    yield* Effect.forEach(tree.blobs.values(), (d) =>
      Effect.gen(function*() {
        counter.start(d)
        const file = files.get(d.digest)!
        // The file is checked again as it is sent: one that shrinks, grows or changes on the way
        // ends the upload with that reason instead of leaving the registry waiting for bytes.
        const damaged = yield* Deferred.make<never, ImageStoreError>()
        const report = (e: ImageStoreError) => Deferred.unsafeDone(damaged, Exit.fail(e))
        const body = () => {
          const stream = counter.count(d, guardStream(d, layout.root, report)(layout.streamBlob(d.digest)))
          const native = blobFiles.uploadSource
          return native === undefined
            ? stream
            : Body.withNodeSource(stream, () => counter.countNode(d, native(file, d, sendCheck(d, layout.root), report)))
        }
        const outcome = yield* Effect.raceFirst(client.uploadBlob(repo, d, body, origin), Deferred.await(damaged)).pipe(
          Effect.catchAll((e) => Effect.flatMap(Deferred.poll(damaged), (found) => found._tag === "Some" ? found.value : Effect.fail(e)))
        )
        counter.done(d, outcome !== "uploaded")
      }), { concurrency: options.jobs ?? defaultJobs, discard: true })

    // Children before their index, the root last and under the tag ([I4]).
    for (const m of written.manifests) yield* client.putManifest(repo, m === written.top ? tag ?? m.digest : m.digest, m.bytes, m.mediaType)
    return counter.moved(written.top, root.digest)
  }, Effect.scoped)

  return Images.of({ pull, push })
})

export const layer = Layer.effect(Images, make)
