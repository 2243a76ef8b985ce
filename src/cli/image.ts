/**
 * The image a `rootfs build` or a `run` works on: an OCI layout as it is, or a registry image
 * pulled into the shared store first (with progress), then found there.
 */
import * as Effect from "effect/Effect"
import type * as Manifest from "../domain/Manifest.js"
import * as Reference from "../domain/Reference.js"
import { ImageStore, type Layout } from "../ImageStore.js"
import { Images } from "../Images.js"
import { hostPlatform } from "../Rootfs.js"
import * as CliArgs from "./args.js"
import { allowInsecure } from "./insecure.js"
import * as Progress from "./progress.js"

export interface LocalImage {
  readonly layout: Layout
  readonly descriptor: Manifest.Descriptor
  /** As given for a layout, normalised for a registry reference. */
  readonly reference: string
}

export const localImage = <E = never, R = never>(
  text: string,
  options: {
    readonly platform: Manifest.Platform | undefined
    readonly insecure: boolean
    readonly display: Progress.Display
    /** Runs before a registry image is pulled; a failure stops it. */
    readonly beforePull?: (reference: Reference.Reference) => Effect.Effect<void, E, R>
  }
) =>
  Effect.gen(function*() {
    const source = yield* CliArgs.imageSource(text)
    const store = yield* ImageStore
    if (source._tag === "Layout") {
      const layout = yield* store.open(source.dir, { create: false })
      return { layout, descriptor: yield* layout.find(source.tag), reference: text } satisfies LocalImage
    }
    const ref = source.reference
    yield* allowInsecure(options.insecure, ref.registry)
    if (options.beforePull !== undefined) yield* options.beforePull(ref)
    const images = yield* Images
    // Only the platform to be used: an index's other images are not needed here.
    yield* Progress.track(options.display, Progress.movedSummary("pulled"), (onBlob) =>
      images.pull(ref, { platform: options.platform ?? hostPlatform(), onBlob }))
    const layout = yield* store.open()
    return { layout, descriptor: yield* layout.find(Reference.format(ref)), reference: Reference.format(ref) } satisfies LocalImage
  })
