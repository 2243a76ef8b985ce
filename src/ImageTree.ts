/**
 * The tree of an image: its manifests (an index and the manifests below it) and the blobs they
 * name, walked once whatever the source (a registry, a layout), within the limits of [H3].
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { ImageStoreError, UsageError } from "./domain/Errors.js"
import * as Manifest from "./domain/Manifest.js"
import * as OciFormat from "./domain/OciFormat.js"
import { maxConfigBytes } from "./PlatformChoice.js"
import type { Layout } from "./ImageStore.js"

/** A manifest of a tree being walked: from a registry (FetchedManifest) or from a layout. */
export interface Node {
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
export const walk = <E>(
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
 * A manifest of a layout: a regular file of its descriptor's size, its digest checked, read as
 * one kind only.
 */
export const layoutNode = (layout: Layout) => (descriptor: Manifest.Descriptor): Effect.Effect<Node, ImageStoreError> =>
  Effect.gen(function*() {
    yield* layout.blobFile(descriptor.digest, descriptor.size)
    const bytes = yield* layout.readBlob(descriptor.digest)
    const manifest = yield* Either.mapLeft(
      Manifest.parse(bytes, descriptor.mediaType),
      (reason) => ImageStoreError.of(layout.root, `manifest ${descriptor.digest}: ${reason}`)
    )
    return { digest: descriptor.digest, bytes, manifest, mediaType: manifest.mediaType }
  })

/** A layout's config blob, checked as a manifest is, read up to the 4 MiB every config is held to. */
export const layoutConfig = (layout: Layout) => (descriptor: Manifest.Descriptor): Effect.Effect<Uint8Array, ImageStoreError> =>
  Effect.zipRight(layout.blobFile(descriptor.digest, descriptor.size), layout.readBlob(descriptor.digest, maxConfigBytes))

/** A tree's manifests as written: converted to OCI, or as they were. */
export interface Written {
  readonly manifests: ReadonlyArray<Node>
  readonly top: Node
}

/**
 * `--format oci` ([I2], [M7]): every manifest of a tree (children before their index) with OCI
 * media types, each index pointing at its converted children. Blobs are not touched: layers
 * map 1:1 and the config keeps its bytes. A manifest that cannot be converted is a UsageError.
 */
export const toOci = (manifests: ReadonlyArray<Node>, top: Node): Effect.Effect<Written, UsageError> =>
  Effect.gen(function*() {
    const targets = new Map<string, OciFormat.Target>()
    const written: Array<Node> = []
    let newTop = top
    for (const node of manifests) {
      const converted = yield* Either.mapLeft(
        node.manifest._tag === "Image" ? OciFormat.convertManifest(node.bytes, node.mediaType) : OciFormat.convertIndex(node.bytes, node.mediaType, targets),
        (reason) =>
          new UsageError({
            message: `cannot convert manifest ${node.digest} to OCI: ${reason}`,
            hint: "copy it without --format oci to keep it as it is"
          })
      )
      const target = OciFormat.target({ mediaType: node.mediaType, digest: node.digest, size: node.bytes.length }, converted)
      targets.set(node.digest, target)
      const next: Node = converted.changed
        ? { digest: target.digest, bytes: converted.bytes, mediaType: converted.mediaType, manifest: Either.getOrThrow(Manifest.parse(converted.bytes, converted.mediaType)) }
        : node
      written.push(next)
      if (node === top) newTop = next
    }
    return { manifests: written, top: newTop }
  })

/** The tree as written: converted with `--format oci`, else the registry's bytes, kept exactly. */
export const written = (format: "oci" | undefined, manifests: ReadonlyArray<Node>, top: Node): Effect.Effect<Written, UsageError> =>
  format === "oci" ? toOci(manifests, top) : Effect.succeed({ manifests, top })
