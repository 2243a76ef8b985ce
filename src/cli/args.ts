/**
 * Parsing of the arguments several commands share: image references ([I1]) and `--platform`.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { InvalidReference, UsageError } from "../domain/Errors.js"
import * as Platform from "../domain/Platform.js"
import * as Reference from "../domain/Reference.js"
import type { Location } from "../Copy.js"
import type { PushSource } from "../Images.js"

export const imageReference = (text: string) =>
  Either.match(Reference.parse(text), {
    onLeft: (reason) =>
      Effect.fail(new InvalidReference({ reference: text, message: reason, hint: "e.g. alpine, ghcr.io/acme/app:1.2, localhost:5000/team/app@sha256:…" })),
    onRight: Effect.succeed
  })

export const platform = (text: string) =>
  Either.match(Platform.parse(text), {
    onLeft: (reason) => {
      // Platform.parse says `invalid platform "…": why`; said once, with examples once (issue 13).
      const why = reason.replace(/^invalid platform /, "")
      return Effect.fail(new UsageError({
        message: `invalid --platform ${why}`,
        ...(why.includes("e.g.") ? {} : { hint: "e.g. linux/amd64, linux/arm64, linux/arm/v7" })
      }))
    },
    onRight: Effect.succeed
  })

/**
 * `oci:<dir>[:<name>]` names a layout; anything else an image in the shared store. The folder ends
 * at the first `:`, as skopeo and umoci read it ([M7]), so the name may be a full reference, as
 * the shared store's are: `oci:<store>:127.0.0.1:5001/demo/app:1.0`.
 */
export const imageSource = (text: string): Effect.Effect<PushSource, InvalidReference> => {
  if (text.startsWith("oci:")) {
    const rest = text.slice(4)
    const colon = rest.indexOf(":")
    const dir = colon < 0 ? rest : rest.slice(0, colon)
    const name = colon < 0 ? "" : rest.slice(colon + 1)
    return dir === ""
      ? Effect.fail(new InvalidReference({ reference: text, message: "oci: needs a folder, as in oci:./layout:tag" }))
      : Effect.succeed({ _tag: "Layout", dir, tag: name === "" ? undefined : name })
  }
  // A folder is a layout, which is spelt oci:<dir> (issue 12, item 7).
  if (/^(\.{0,2}\/|~)/.test(text)) {
    return Effect.fail(new InvalidReference({ reference: text, message: `"${text}" is a folder, not an image reference`, hint: `a layout is named oci:${text}` }))
  }
  return Effect.map(imageReference(text), (ref) => ({ _tag: "Store", reference: ref }))
}

/**
 * One side of `copy` ([M1], [M7]): `oci:<dir>[:<name>]` a layout, `store:<ref>` an image in the
 * shared store, anything else (`docker://` allowed, as skopeo writes it) a registry reference.
 */
export const copyLocation = (text: string): Effect.Effect<Location, InvalidReference> => {
  if (text.startsWith("oci:")) {
    return Effect.map(imageSource(text), (source) => ({ _tag: "Layout" as const, dir: source._tag === "Layout" ? source.dir : "", name: source._tag === "Layout" ? source.tag : undefined }))
  }
  if (text.startsWith("store:")) return Effect.map(imageReference(text.slice(6)), (reference) => ({ _tag: "Store" as const, reference }))
  return Effect.map(imageReference(text.startsWith("docker://") ? text.slice(9) : text), (reference) => ({ _tag: "Registry" as const, reference }))
}
