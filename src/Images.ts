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
import { constants, createReadStream } from "node:fs"
import { Transform } from "node:stream"
import * as Digest from "./domain/Digest.js"
import { DigestMismatch, ImageStoreError, NotFound } from "./domain/Errors.js"
import * as Manifest from "./domain/Manifest.js"
import * as Platform from "./domain/Platform.js"
import * as Reference from "./domain/Reference.js"
import { ImageStore, type Layout } from "./ImageStore.js"
import * as Body from "./registry/Body.js"
import { fromRegistry, RegistryClient, refusedContent, type Repository } from "./RegistryClient.js"
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

/** A manifest of a tree being walked: from a registry (FetchedManifest) or from a layout. */
interface Node {
  readonly digest: string
  readonly bytes: Uint8Array
  readonly manifest: Manifest.Manifest
  readonly mediaType: string
}

/**
 * Every manifest of the tree below `top`, each once and children before their index, and every
 * blob they name, each once ([H3]). Indexes nest at most `Manifest.maxDepth` levels, counted
 * along every path that reaches them (`above`: the indexes passed on the way to `top`); one that
 * names itself or an index above it is refused. Each digest is fetched once per walk, however
 * often it is named.
 */
const walk = <E>(
  top: Node,
  above: ReadonlyArray<string>,
  fetch: (descriptor: Manifest.Descriptor) => Effect.Effect<Node, E>,
  refuse: (reason: "too-deep" | "invalid", why: string) => E
) =>
  Effect.gen(function*() {
    const manifests: Array<Node> = []
    const blobs = new Map<string, Manifest.Descriptor>()
    /** Per manifest walked: how many levels of index it is (0 for an image, 1 for an index of images…). */
    const heights = new Map<string, number>()
    const tooDeep = (at: string) =>
      Effect.fail(refuse("too-deep", `its indexes nest more than ${Manifest.maxDepth} levels deep (at ${at})`))
    const visit = (node: Node, chain: ReadonlyArray<string>): Effect.Effect<number, E> =>
      Effect.gen(function*() {
        let height = 0
        if (node.manifest._tag === "Image") {
          for (const d of [node.manifest.config, ...node.manifest.layers]) {
            const known = blobs.get(d.digest)
            if (known !== undefined && known.size !== d.size) {
              return yield* Effect.fail(refuse("invalid", `blob ${d.digest} is listed with two sizes, ${known.size} and ${d.size} bytes`))
            }
            blobs.set(d.digest, d)
          }
        } else {
          const path = [...chain, node.digest]
          if (path.length > Manifest.maxDepth) return yield* tooDeep(node.digest)
          for (const child of node.manifest.manifests) {
            if (path.includes(child.digest)) {
              return yield* Effect.fail(refuse("invalid", `index ${node.digest} refers to itself or to an index above it (${child.digest})`))
            }
            // Named again: not fetched again, but its depth counts here too.
            const known = heights.get(child.digest)
            const below = known ?? (yield* visit(yield* fetch(child), path))
            if (path.length + below > Manifest.maxDepth) return yield* tooDeep(child.digest)
            height = Math.max(height, below)
          }
          height += 1
        }
        heights.set(node.digest, height)
        manifests.push(node)
        return height
      })
    yield* visit(top, above)
    return { manifests, blobs }
  })

/**
 * Checks the bytes of a blob being sent against its descriptor as they go: never more than its
 * size, and at the end its size and digest. The last chunk is held back until then, so a
 * registry never receives the whole of a body that is wrong.
 */
const sendCheck = (d: Manifest.Descriptor, root: string) => {
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
const guardStream = (d: Manifest.Descriptor, root: string, report: (e: ImageStoreError) => void) =>
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

/**
 * The Node stream of a blob's file for the fast path, checked the same way. The file is opened
 * without following a link put in its place since it was checked.
 */
const guardNode = (d: Manifest.Descriptor, root: string, report: (e: ImageStoreError) => void, file: string) => {
  const check = sendCheck(d, root)
  let held: Uint8Array | undefined
  const guard = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const problem = check.add(chunk)
      if (problem !== undefined) {
        report(problem)
        return callback(problem)
      }
      const out = held
      held = chunk
      callback(null, out)
    },
    flush(callback) {
      const problem = check.end()
      if (problem !== undefined) {
        report(problem)
        return callback(problem)
      }
      callback(null, held)
    }
  })
  // Node takes numeric open flags here; its typings list only the string forms.
  const flags = (constants.O_RDONLY | constants.O_NOFOLLOW) as unknown as string
  const source = createReadStream(file, { highWaterMark: uploadChunk, flags })
  source.on("error", (cause) => {
    const problem = ImageStoreError.of(root, `blob ${d.digest} cannot be read (${cause.message})`)
    report(problem)
    guard.destroy(problem)
  })
  // Closing the guard (the request ended or failed) closes the file too.
  guard.on("close", () => source.destroy())
  return source.pipe(guard)
}

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
          Effect.catchTag("ChunkRefused", (e) => e.cause instanceof ImageStoreError ? Effect.fail(e.cause) : Effect.die(e.cause)),
          Effect.mapError((e) => e._tag === "DigestMismatch" ? fromRegistry(repo.registry)(e) : e)
        )
        yield* file.close
        yield* layout.commitBlob(temp, descriptor.digest)
      }))
      counter.done(descriptor, false)
    })

  const pull = Effect.fn("Images.pull")(function*(reference: Reference.Reference, options: PullOptions = {}) {
    const repo = { registry: reference.registry, repository: reference.repository }
    const layout = yield* store.open(options.output)
    let top = yield* client.getManifest(repo, reference.digest ?? reference.tag ?? "latest")
    let above: ReadonlyArray<string> = []
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
      above = [top.digest]
      top = yield* client.getManifest(repo, child.digest)
    }
    const tree = yield* walk(
      top,
      above,
      (d) => client.getManifest(repo, d.digest),
      (reason, why) => refusedContent(reference.registry, `${reference.repository}${reference.digest === undefined ? `:${reference.tag ?? "latest"}` : `@${reference.digest}`}`, reason, why)
    )
    const counter = tally(options.onBlob)
    yield* Effect.forEach(tree.blobs.values(), (d) => fetchBlob(layout, repo, d, counter), {
      concurrency: options.jobs ?? defaultJobs,
      discard: true
    })
    // Children before their index, so the layout never names what it lacks.
    for (const m of tree.manifests) {
      const written = yield* layout.writeBlob(m.bytes, Either.getOrThrow(Digest.parse(m.digest)).algorithm)
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

    /** A manifest of the layout: a regular file of its descriptor's size, its digest checked, read as one kind only. */
    const readNode = (descriptor: Manifest.Descriptor): Effect.Effect<Node, ImageStoreError> =>
      Effect.gen(function*() {
        yield* layout.blobFile(descriptor.digest, descriptor.size)
        const bytes = yield* layout.readBlob(descriptor.digest)
        const manifest = yield* Either.mapLeft(
          Manifest.parse(bytes, descriptor.mediaType),
          (reason) => ImageStoreError.of(layout.root, `manifest ${descriptor.digest}: ${reason}`)
        )
        return { digest: descriptor.digest, bytes, manifest, mediaType: manifest.mediaType }
      })

    // Everything is read and checked before anything is sent: a damaged layout pushes nothing.
    const top = yield* readNode(root)
    const tree = yield* walk(top, [], readNode, (_, why) => ImageStoreError.of(layout.root, `the image ${root.digest} is refused: ${why}`))
    const files = new Map<string, string>()
    for (const d of tree.blobs.values()) files.set(d.digest, yield* layout.blobFile(d.digest, d.size))

    yield* Effect.forEach(tree.blobs.values(), (d) =>
      Effect.gen(function*() {
        counter.start(d)
        const file = files.get(d.digest)!
        // The file is checked again as it is sent: one that shrinks, grows or changes on the way
        // ends the upload with that reason instead of leaving the registry waiting for bytes.
        const damaged = yield* Deferred.make<never, ImageStoreError>()
        const report = (e: ImageStoreError) => Deferred.unsafeDone(damaged, Exit.fail(e))
        const body = () =>
          Body.withNodeSource(
            counter.count(d, guardStream(d, layout.root, report)(layout.streamBlob(d.digest))),
            () => counter.countNode(d, guardNode(d, layout.root, report, file))
          )
        const outcome = yield* Effect.raceFirst(client.uploadBlob(repo, d, body, origin), Deferred.await(damaged)).pipe(
          Effect.catchAll((e) => Effect.flatMap(Deferred.poll(damaged), (found) => found._tag === "Some" ? found.value : Effect.fail(e)))
        )
        counter.done(d, outcome !== "uploaded")
      }), { concurrency: options.jobs ?? defaultJobs, discard: true })

    // Children before their index, the root last and under the tag ([I4]).
    for (const m of tree.manifests) {
      const tag = m === top && target.digest === undefined ? target.tag ?? "latest" : undefined
      yield* client.putManifest(repo, tag ?? m.digest, m.bytes, m.mediaType)
    }
    return { digest: root.digest, mediaType: root.mediaType, ...counter.totals }
  })

  return Images.of({ pull, push })
})

export const layer = Layer.effect(Images, make)
