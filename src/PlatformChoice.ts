/**
 * `--platform` against a registry ([I3]): the matching child of an index, or a single-platform
 * image when its config says it is for that platform; anything else is NotFound naming what the
 * image has, as other clients do (issue 13, item 2). Shared by pull, copy and inspect.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Bytes from "./domain/Bytes.js"
import { NotFound } from "./domain/Errors.js"
import type * as Manifest from "./domain/Manifest.js"
import * as Platform from "./domain/Platform.js"
import * as Reference from "./domain/Reference.js"
import {
  type FetchedManifest,
  fromRegistry,
  refusedContent,
  type RegistryClientService,
  type Repository
} from "./RegistryClient.js"

/** Config blobs are small; like manifests ([P4]) anything past 4 MiB is refused, not truncated. */
export const maxConfigBytes = 4 * 1024 * 1024

/** A config blob's bytes, verified by RegistryClient.blob, read only up to the cap. */
export const configBytes = (client: RegistryClientService, repo: Repository, descriptor: Manifest.Descriptor) =>
  Effect.gen(function*() {
    const what = `config blob ${descriptor.digest}`
    const tooLarge = refusedContent(repo.registry, what, "too-large", `it is larger than the ${maxConfigBytes / 1024 / 1024} MiB cap for configs`)
    if (descriptor.size > maxConfigBytes) return yield* tooLarge
    return yield* client.blob(repo, descriptor).pipe(
      Bytes.collectUpTo(maxConfigBytes, () => tooLarge),
      Effect.mapError((e) => e._tag === "DigestMismatch" ? fromRegistry(repo.registry)(e) : e)
    )
  })

const decodePlatform = Schema.decodeUnknownOption(Schema.parseJson(Schema.Struct({
  os: Schema.String,
  architecture: Schema.String,
  variant: Schema.optional(Schema.String)
})))

/** The platform a config names, if it names one. */
export const configPlatform = (bytes: Uint8Array): Manifest.Platform | undefined => {
  const decoded = decodePlatform(new TextDecoder().decode(bytes))
  if (decoded._tag === "None") return undefined
  const { architecture, os, variant } = decoded.value
  return variant === undefined || variant === "" ? { os, architecture } : { os, architecture, variant }
}

export interface Chosen {
  readonly top: FetchedManifest
  /** The index `top` was picked from with `--platform`. */
  readonly index: FetchedManifest | undefined
  /** The indexes passed on the way to `top` (for [H3]'s depth count). */
  readonly above: ReadonlyArray<string>
}

/**
 * The choice itself, wherever the manifests come from (a registry, a layout): an index's child
 * for `platform` (`child` fetches it), or the image itself when its config (`config` reads it)
 * names that platform or none; `missing` says what there is instead.
 */
export const pick = <N extends { readonly manifest: Manifest.Manifest }, E1, E2, E3>(
  top: N,
  platform: Manifest.Platform | undefined,
  read: {
    readonly child: (descriptor: Manifest.Descriptor) => Effect.Effect<N, E1>
    readonly config: (descriptor: Manifest.Descriptor) => Effect.Effect<Uint8Array, E2>
    readonly missing: (has: string) => E3
  }
): Effect.Effect<{ readonly top: N; readonly index: N | undefined }, E1 | E2 | E3> =>
  Effect.gen(function*() {
    if (platform === undefined) return { top, index: undefined }
    if (top.manifest._tag === "Index") {
      const child = Platform.select(platform, top.manifest.manifests)
      if (child === undefined) {
        const offered = top.manifest.manifests.flatMap((m) => m.platform ? [Platform.format(m.platform)] : []).join(", ")
        return yield* Effect.fail(read.missing(`it has: ${offered || "none listed"}`))
      }
      return { top: yield* read.child(child), index: top }
    }
    const own = configPlatform(yield* read.config(top.manifest.config))
    if (own !== undefined && !Platform.matches(platform, own)) {
      return yield* Effect.fail(read.missing(`it is a single-platform image for ${Platform.format(own)}`))
    }
    return { top, index: undefined }
  })

/**
 * The manifest at `reference`, narrowed to `platform` when one is asked: an index's matching
 * child, or the image itself when it is for that platform (its config says so, or says nothing).
 */
export const choose = (client: RegistryClientService, reference: Reference.Reference, platform: Manifest.Platform | undefined) =>
  Effect.gen(function*() {
    const repo = { registry: reference.registry, repository: reference.repository }
    const chosen = yield* pick(yield* client.getManifest(repo, reference.digest ?? reference.tag ?? "latest"), platform, {
      child: (d) => client.getManifest(repo, d.digest),
      config: (d) => configBytes(client, repo, d),
      missing: (has) =>
        new NotFound({
          registry: reference.registry,
          what: `platform ${Platform.format(platform!)}`,
          message: `${Reference.format(reference)} has no image for ${Platform.format(platform!)} (${has})`
        })
    })
    return { ...chosen, above: chosen.index === undefined ? [] : [chosen.index.digest] } satisfies Chosen as Chosen
  })
