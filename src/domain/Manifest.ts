/**
 * Manifests and descriptors (OCI image-spec, Docker v2 schema 2; [P4]).
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Digest from "./Digest.js"

export const MediaType = {
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  OciLayer: "application/vnd.oci.image.layer.v1.tar+gzip"
} as const

const indexTypes: ReadonlyArray<string> = [MediaType.OciIndex, MediaType.DockerManifestList]
const imageTypes: ReadonlyArray<string> = [MediaType.OciManifest, MediaType.DockerManifest]

/** What a manifest request accepts: the four supported types, never schema1 ([P4]). */
export const accept = [...indexTypes, ...imageTypes].join(", ")

/** 4 MiB: what registries must accept and what every anchor client caps manifests at ([P4]). */
export const maxBytes = 4 * 1024 * 1024

export const isIndex = (mediaType: string): boolean => indexTypes.includes(mediaType)

export const Platform = Schema.Struct({
  os: Schema.String,
  architecture: Schema.String,
  variant: Schema.optional(Schema.String),
  "os.version": Schema.optional(Schema.String),
  "os.features": Schema.optional(Schema.Array(Schema.String))
})
export type Platform = typeof Platform.Type

export const Descriptor = Schema.Struct({
  mediaType: Schema.String,
  digest: Schema.String,
  size: Schema.Number.pipe(Schema.int(), Schema.nonNegative()),
  urls: Schema.optional(Schema.Array(Schema.String)),
  annotations: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  platform: Schema.optional(Platform),
  artifactType: Schema.optional(Schema.String)
})
export type Descriptor = typeof Descriptor.Type

const ImageBody = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.optional(Schema.String),
  config: Descriptor,
  layers: Schema.Array(Descriptor)
})

const IndexBody = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.optional(Schema.String),
  manifests: Schema.Array(Descriptor)
})

export type Manifest =
  | { readonly _tag: "Image"; readonly mediaType: string; readonly config: Descriptor; readonly layers: ReadonlyArray<Descriptor> }
  | { readonly _tag: "Index"; readonly mediaType: string; readonly manifests: ReadonlyArray<Descriptor> }

const decodeImage = Schema.decodeUnknownEither(ImageBody)
const decodeIndex = Schema.decodeUnknownEither(IndexBody)

/** The media type without parameters (`; charset=utf-8`). */
export const bareType = (contentType: string): string => contentType.split(";")[0]!.trim().toLowerCase()

/**
 * How deep indexes may nest ([H3]): an index and up to 7 more below it. Deeper is refused, as is an
 * index that names itself or an index above it.
 */
export const maxDepth = 8

/**
 * Why a manifest is refused. `BadDigest`: a descriptor whose digest is not `sha256:`/`sha512:` hex
 * ([H1]), refused before any path is built from it; `Ambiguous`: a document that could be read
 * as more than one kind (CVE-2021-41190); `Invalid`: anything else.
 */
export type Refusal =
  | { readonly _tag: "Invalid"; readonly reason: string }
  | { readonly _tag: "Ambiguous"; readonly reason: string }
  | { readonly _tag: "BadDigest"; readonly reason: string; readonly digest: string }

const invalid = (reason: string): Either.Either<never, Refusal> => Either.left({ _tag: "Invalid", reason })

/**
 * The fields that say what kind of document a manifest is: containers/image's "essential" fields
 * (manifest/common.go, ValidateUnambiguousManifestFormat), schema1's included.
 */
const kindFields = ["config", "layers", "manifests", "fsLayers", "history"] as const
type KindField = typeof kindFields[number]
const allowed: Record<"Image" | "Index", ReadonlyArray<KindField>> = { Image: ["config", "layers"], Index: ["manifests"] }

/** Every key, compared without case, that names a field deciding how a manifest is read. */
const spelledFields = [...kindFields, "mediaType", "schemaVersion"] as const

/**
 * The kind fields a document carries (present and not `null`, as Go's decoder sees them), or a
 * refusal for a key that spells one of them in another case: Go's decoder (containers/image,
 * distribution) matches keys without case, JSON.parse does not, so such a key could give one
 * digest two meanings.
 */
const presentFields = (json: Record<string, unknown>): Either.Either<ReadonlySet<KindField>, Refusal> => {
  const present = new Set<KindField>()
  for (const key of Object.keys(json)) {
    const field = spelledFields.find((f) => f.toLowerCase() === key.toLowerCase())
    if (field === undefined) continue
    if (field !== key) {
      return Either.left({ _tag: "Ambiguous", reason: `ambiguous manifest: it has a field ${JSON.stringify(key)} where "${field}" is meant; refused` })
    }
    if (json[key] !== null && (kindFields as ReadonlyArray<string>).includes(field)) present.add(field as KindField)
  }
  return Either.right(present)
}

const kindOf = (mediaType: string): "Image" | "Index" | undefined =>
  isIndex(mediaType) ? "Index" : imageTypes.includes(mediaType) ? "Image" : undefined

/** [H1] Every descriptor's digest parses, so that no path or URL is ever built from anything else. */
const checkDigests = (where: ReadonlyArray<readonly [string, Descriptor]>): Either.Either<void, Refusal> => {
  for (const [name, d] of where) {
    const parsed = Digest.parse(d.digest)
    if (Either.isLeft(parsed)) return Either.left({ _tag: "BadDigest", digest: d.digest, reason: `${name}: ${parsed.left}` })
  }
  return Either.right(undefined)
}

/**
 * Reads manifest bytes ([P4]). The media type is the body's own, else the response's
 * Content-Type; schema1 and unknown types are refused with a reason. A document is read as one
 * kind only: one whose fields fit another kind too (an index with `layers` or `config`, an image
 * manifest with `manifests`, with or without a `mediaType`), or whose own media type and
 * Content-Type name different kinds, is refused, as containers/image refuses it (CVE-2021-41190).
 * Without any media type the fields decide, never the Content-Type alone.
 */
export const decode = (bytes: Uint8Array, contentType?: string): Either.Either<Manifest, Refusal> => {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    return invalid("the manifest is not JSON")
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return invalid("the manifest is not a JSON object")
  const document = json as Record<string, unknown>
  if (document.schemaVersion === 1) {
    return invalid("schema1 manifests are not supported (deprecated; the registry should serve schema 2 or OCI)")
  }
  const fields = presentFields(document)
  if (Either.isLeft(fields)) return Either.left(fields.left)
  const has = (f: KindField) => fields.right.has(f)
  // An index and an image manifest at once, whatever any media type says.
  if (has("manifests") && (has("config") || has("layers"))) {
    const image = ["config", "layers"].filter((f) => has(f as KindField)).map((f) => `"${f}"`).join(" and ")
    return Either.left({
      _tag: "Ambiguous",
      reason: `ambiguous manifest: it has both "manifests" (an index's) and ${image} (an image manifest's), so it could be read as either; refused`
    })
  }
  const own = typeof document.mediaType === "string" ? document.mediaType : undefined
  const served = contentType === undefined ? undefined : bareType(contentType)
  const declared = own ?? served
  if (declared !== undefined && kindOf(declared) === undefined) {
    return invalid(`unsupported manifest media type ${JSON.stringify(declared)}`)
  }
  const ownKind = own === undefined ? undefined : kindOf(own)
  const servedKind = served === undefined ? undefined : kindOf(served)
  if (ownKind !== undefined && servedKind !== undefined && ownKind !== servedKind) {
    return Either.left({
      _tag: "Ambiguous",
      reason: `ambiguous manifest: the document says it is ${own} but was served as ${served}; refused`
    })
  }
  const kind = declared !== undefined
    ? kindOf(declared)!
    : has("manifests") && !has("config") && !has("layers")
    ? "Index"
    : "Image"
  const unexpected = [...fields.right].filter((f) => !allowed[kind].includes(f))
  if (unexpected.length > 0) {
    const supposedly = declared ?? (kind === "Index" ? "an index" : "an image manifest")
    return Either.left({
      _tag: "Ambiguous",
      reason: `ambiguous manifest: unexpected field${unexpected.length === 1 ? "" : "s"} ${
        unexpected.map((f) => `"${f}"`).join(", ")
      } in what is supposedly ${supposedly}; refused`
    })
  }
  if (kind === "Index") {
    const body = decodeIndex(document)
    if (Either.isLeft(body)) return invalid(`invalid index: ${ParseResult.TreeFormatter.formatErrorSync(body.left)}`)
    const digests = checkDigests(body.right.manifests.map((d, i) => [`manifests[${i}]`, d] as const))
    if (Either.isLeft(digests)) return Either.left(digests.left)
    return Either.right({ _tag: "Index", mediaType: declared ?? MediaType.OciIndex, manifests: body.right.manifests })
  }
  const body = decodeImage(document)
  if (Either.isLeft(body)) return invalid(`invalid manifest: ${ParseResult.TreeFormatter.formatErrorSync(body.left)}`)
  const digests = checkDigests([["config", body.right.config], ...body.right.layers.map((d, i) => [`layers[${i}]`, d] as const)])
  if (Either.isLeft(digests)) return Either.left(digests.left)
  return Either.right({ _tag: "Image", mediaType: declared ?? MediaType.OciManifest, config: body.right.config, layers: body.right.layers })
}

/** `decode`, with the refusal as its reason alone. */
export const parse = (bytes: Uint8Array, contentType?: string): Either.Either<Manifest, string> =>
  Either.mapLeft(decode(bytes, contentType), (refusal) => refusal.reason)
