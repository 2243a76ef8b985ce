/**
 * Parsing of the arguments several commands share: image references ([I1]) and `--platform`.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { InvalidReference, UsageError } from "../domain/Errors.js"
import * as Platform from "../domain/Platform.js"
import * as Reference from "../domain/Reference.js"
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

/** `oci:<dir>[:<tag>]` names a layout; anything else an image in the shared store. */
export const imageSource = (text: string): Effect.Effect<PushSource, InvalidReference> => {
  if (text.startsWith("oci:")) {
    const rest = text.slice(4)
    const colon = rest.lastIndexOf(":")
    const [dir, tag] = colon > 0 && !rest.slice(colon + 1).includes("/") ? [rest.slice(0, colon), rest.slice(colon + 1)] : [rest, undefined]
    return dir === ""
      ? Effect.fail(new InvalidReference({ reference: text, message: "oci: needs a folder, as in oci:./layout:tag" }))
      : Effect.succeed({ _tag: "Layout", dir, tag })
  }
  return Effect.map(imageReference(text), (ref) => ({ _tag: "Store", reference: ref }))
}
