/**
 * Manifests and descriptors (OCI image-spec, Docker v2 schema 2; [P4]).
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

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
 * Reads manifest bytes. The media type is the body's own, else the response's Content-Type
 * ([P4]); schema1 and unknown types are refused with a reason.
 */
export const parse = (bytes: Uint8Array, contentType?: string): Either.Either<Manifest, string> => {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    return Either.left("the manifest is not JSON")
  }
  const declared = typeof json === "object" && json !== null && "mediaType" in json && typeof json.mediaType === "string"
    ? json.mediaType
    : contentType === undefined
    ? undefined
    : bareType(contentType)
  if (typeof json === "object" && json !== null && "schemaVersion" in json && json.schemaVersion === 1) {
    return Either.left("schema1 manifests are not supported (deprecated; the registry should serve schema 2 or OCI)")
  }
  const wantsIndex = declared !== undefined ? isIndex(declared) : typeof json === "object" && json !== null && "manifests" in json
  if (declared !== undefined && !isIndex(declared) && !imageTypes.includes(declared)) {
    return Either.left(`unsupported manifest media type "${declared}"`)
  }
  if (wantsIndex) {
    return Either.match(decodeIndex(json), {
      onLeft: (e) => Either.left(`invalid index: ${ParseResult.TreeFormatter.formatErrorSync(e)}`),
      onRight: (body) => Either.right({ _tag: "Index" as const, mediaType: declared ?? MediaType.OciIndex, manifests: body.manifests })
    })
  }
  return Either.match(decodeImage(json), {
    onLeft: (e) => Either.left(`invalid manifest: ${ParseResult.TreeFormatter.formatErrorSync(e)}`),
    onRight: (body) =>
      Either.right({ _tag: "Image" as const, mediaType: declared ?? MediaType.OciManifest, config: body.config, layers: body.layers })
  })
}
