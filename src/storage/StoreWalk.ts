/**
 * What the entries of a layout reach, for `images list` and `images prune` ([M5]): every blob
 * below an entry, its platforms and its size on disk. A manifest that cannot be read keeps itself
 * and every digest its JSON names, so a damaged store loses nothing to a prune.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Digest from "../domain/Digest.js"
import * as ImageConfig from "../domain/ImageConfig.js"
import * as Manifest from "../domain/Manifest.js"
import * as Platform from "../domain/Platform.js"
import type { Layout } from "../ImageStore.js"

/** What a walk reads of a layout. */
export type Blobs = Pick<Layout, "readBlob" | "blobSize">

const decodeJson = Schema.decodeUnknownEither(Schema.parseJson())

/** Every valid digest a JSON document names anywhere: what can be told of a manifest that cannot be read as one. */
const digestsNamedIn = (bytes: Uint8Array): ReadonlyArray<string> => {
  const json = decodeJson(new TextDecoder().decode(bytes))
  if (Either.isLeft(json)) return []
  const found: Array<string> = []
  const visit = (value: unknown, depth: number): void => {
    if (depth > 64 || typeof value !== "object" || value === null) return
    for (const [key, inner] of Object.entries(value)) {
      if (key === "digest" && typeof inner === "string" && Digest.isValid(inner)) found.push(inner)
      else visit(inner, depth + 1)
    }
  }
  visit(json.right, 0)
  return found
}

type Read = Either.Either<Manifest.Manifest, { readonly reason: string; readonly named: ReadonlyArray<string> }>

/** A manifest reader for one walk: each manifest is read once, however many entries name it. */
export const manifestReader = (layout: Blobs) => {
  const cache = new Map<string, Read>()
  return (d: Manifest.Descriptor): Effect.Effect<Read> => {
    const known = cache.get(d.digest)
    if (known !== undefined) return Effect.succeed(known)
    return layout.readBlob(d.digest).pipe(
      Effect.map((bytes): Read => Either.mapLeft(Manifest.parse(bytes, d.mediaType), (reason) => ({ reason, named: digestsNamedIn(bytes) }))),
      Effect.catchAll((e) => Effect.succeed<Read>(Either.left({ reason: e.reason, named: [] }))),
      Effect.tap((read) => void cache.set(d.digest, read))
    )
  }
}

export type Reader = ReturnType<typeof manifestReader>

/**
 * Every blob `root` reaches (into `reached`): itself, and for a manifest its config and layers,
 * for an index its manifests, down to `Manifest.maxDepth` levels. A manifest that cannot be
 * read keeps itself and every digest its JSON names; each such one is told to `problem`.
 */
export const reach = (read: Reader, reached: Set<string>, problem: (message: string) => void) => {
  const walked = new Set<string>()
  const visit = (d: Manifest.Descriptor, depth: number, of: string): Effect.Effect<void> =>
    Effect.gen(function*() {
      reached.add(d.digest)
      if (walked.has(d.digest)) return
      walked.add(d.digest)
      const manifest = yield* read(d)
      if (Either.isLeft(manifest)) {
        for (const digest of manifest.left.named) reached.add(digest)
        return problem(`${of}: manifest ${d.digest} cannot be read (${manifest.left.reason}); kept what it names`)
      }
      if (manifest.right._tag === "Image") {
        for (const blob of [manifest.right.config, ...manifest.right.layers]) reached.add(blob.digest)
        return
      }
      if (depth >= Manifest.maxDepth) {
        for (const child of manifest.right.manifests) reached.add(child.digest)
        return problem(`${of}: index ${d.digest} nests deeper than ${Manifest.maxDepth} levels; kept its manifests, not what they name`)
      }
      for (const child of manifest.right.manifests) yield* visit(child, depth + 1, of)
    })
  return (d: Manifest.Descriptor, of: string) => visit(d, 0, of)
}

/** `os/arch[/variant]` of what an entry names: an image's config, or an index's children. */
export const platformsOf = (layout: Blobs, read: Reader, d: Manifest.Descriptor) =>
  Effect.gen(function*() {
    const manifest = yield* read(d)
    if (Either.isLeft(manifest)) return []
    if (manifest.right._tag === "Index") {
      const listed = manifest.right.manifests.flatMap((m) => m.platform === undefined ? [] : [Platform.format(Platform.normalize(m.platform))])
      // Attestations (buildx) are listed as unknown/unknown: they are no platform to run.
      return [...new Set(listed.filter((p) => p !== "unknown/unknown"))]
    }
    const config = yield* Effect.either(layout.readBlob(manifest.right.config.digest))
    const decoded = Either.flatMap(config, (bytes) => ImageConfig.decode(bytes))
    if (Either.isLeft(decoded) || decoded.right.os === "" || decoded.right.architecture === "") return []
    const { architecture, os, variant } = decoded.right
    return [Platform.format(Platform.normalize(variant === undefined ? { os, architecture } : { os, architecture, variant }))]
  })

/** Sizes on disk of blobs, each looked at once; a missing blob counts nothing. */
export const sizer = (layout: Blobs) => {
  const sizes = new Map<string, number>()
  return (digests: Iterable<string>) =>
    Effect.reduce(digests, 0, (total, digest) => {
      const known = sizes.get(digest)
      if (known !== undefined) return Effect.succeed(total + known)
      return layout.blobSize(digest).pipe(
        Effect.orElseSucceed(() => 0),
        Effect.map((size) => {
          sizes.set(digest, size)
          return total + size
        })
      )
    })
}
