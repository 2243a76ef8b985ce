/**
 * `--format oci` ([I2], [M7]): Docker schema 2 manifests and manifest lists rewritten with OCI media
 * types, so that tools that read only OCI (skopeo's `oci:` transport, umoci) read what was pulled.
 * Pure functions on manifest bytes; no services.
 *
 * Only manifests change. Layers map 1:1 (same bytes, same digests), as containers/image maps them
 * (image/docker_schema2.go, convertToManifestOCI1). The config keeps its bytes and digest and only
 * its media type changes, as containerd's converter does (images/converter, docker2oci): a Docker
 * image config is a superset of the OCI one, and re-encoding it (containers/image drops the
 * Docker-only fields through Go's struct) would give a config that no registry holds.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Digest from "./Digest.js"
import * as Manifest from "./Manifest.js"

export const DockerConfig = "application/vnd.docker.container.image.v1+json"

const oci = {
  tar: "application/vnd.oci.image.layer.v1.tar",
  gzip: Manifest.MediaType.OciLayer,
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  foreignTar: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  foreignGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  foreignZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
} as const

/**
 * Each layer media type an OCI manifest may carry for a Docker one. Docker's `.tar.zstd` is
 * containerd's name for a zstd layer (Docker's spec has none); OCI types stay as they are.
 */
const layerTypes: ReadonlyMap<string, string> = new Map([
  ["application/vnd.docker.image.rootfs.diff.tar.gzip", oci.gzip],
  ["application/vnd.docker.image.rootfs.diff.tar", oci.tar],
  ["application/vnd.docker.image.rootfs.diff.tar.zstd", oci.zstd],
  ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", oci.foreignGzip],
  ["application/vnd.docker.image.rootfs.foreign.diff.tar", oci.foreignTar],
  ...Object.values(oci).map((type) => [type, type] as const)
])

const configTypes: ReadonlyMap<string, string> = new Map([
  [DockerConfig, Manifest.MediaType.OciConfig],
  [Manifest.MediaType.OciConfig, Manifest.MediaType.OciConfig]
])

/** A manifest or index after conversion; `changed` is false when `bytes` are the input's, unchanged. */
export interface Converted {
  readonly bytes: Uint8Array
  readonly mediaType: string
  readonly changed: boolean
}

/** What an index entry takes from its converted child. */
export type Target = Pick<Manifest.Descriptor, "mediaType" | "digest" | "size">

/**
 * The descriptor of `original` after conversion: itself when nothing changed (its digest, in
 * whatever algorithm it names), else the new bytes' sha256, as containers/image writes it.
 */
export const target = (original: Target, converted: Converted): Target =>
  converted.changed
    ? { mediaType: converted.mediaType, digest: Digest.format(Digest.of(converted.bytes)), size: converted.bytes.length }
    : original

const Json = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const decodeDocument = Schema.decodeUnknownEither(Schema.parseJson(Json))
const decodeEntries = Schema.decodeUnknownEither(Schema.Array(Json))
const decodeAnnotations = Schema.decodeUnknownEither(Schema.UndefinedOr(Schema.Record({ key: Schema.String, value: Schema.String })))

/** Schema errors as one line of reason. */
const reason = (what: string) => (error: ParseResult.ParseError) => `invalid ${what}: ${ParseResult.TreeFormatter.formatErrorSync(error)}`

/** The document's fields in their order (Manifest.parse has read it already) and its own annotations. */
const documentOf = (bytes: Uint8Array) =>
  Either.gen(function*() {
    const json = yield* Either.mapLeft(decodeDocument(new TextDecoder().decode(bytes)), reason("manifest"))
    const annotations = yield* Either.mapLeft(decodeAnnotations(json.annotations), reason("annotations"))
    return { json, annotations }
  })

/** Go's omitempty: an empty list or map is left out (JSON.stringify drops `undefined`), as Go tools write it. */
const nonEmpty = <A extends object>(value: A | undefined): A | undefined =>
  value === undefined || Object.keys(value).length === 0 ? undefined : value

/** A descriptor in the image-spec's field order, pointing at `to`; only fields OCI defines for it are kept. */
const descriptorJson = (d: Manifest.Descriptor, to: Target, withPlatform: boolean) => ({
  mediaType: to.mediaType,
  digest: to.digest,
  size: to.size,
  urls: nonEmpty(d.urls),
  annotations: nonEmpty(d.annotations),
  platform: withPlatform && d.platform !== undefined ? platformJson(d.platform) : undefined
})

/** OCI's platform fields only: Docker's `features` has no place in an OCI index. */
const platformJson = (p: Manifest.Platform) => ({
  architecture: p.architecture,
  os: p.os,
  "os.version": p["os.version"],
  "os.features": nonEmpty(p["os.features"]),
  variant: p.variant
})

const encode = (value: unknown, mediaType: string): Converted => ({
  bytes: new TextEncoder().encode(JSON.stringify(value)),
  mediaType,
  changed: true
})

const mapped = (types: ReadonlyMap<string, string>, where: string, d: Manifest.Descriptor): Either.Either<string, string> => {
  const to = types.get(d.mediaType)
  return to === undefined
    ? Either.left(`cannot convert to OCI: ${where} has the media type ${Digest.quote(d.mediaType)}, which has no OCI equivalent`)
    : Either.right(to)
}

/**
 * A Docker schema 2 image manifest as an OCI image manifest ([I2]). An OCI manifest is returned
 * as it is (same bytes). `mediaType` is what the manifest was served or described as, if known.
 * A layer or config whose media type has no OCI counterpart is refused, as containers/image does.
 */
export const convertManifest = (bytes: Uint8Array, mediaType?: string): Either.Either<Converted, string> =>
  Either.gen(function*() {
    const manifest = yield* Manifest.parse(bytes, mediaType)
    if (manifest._tag === "Index") return yield* Either.left(`${manifest.mediaType} is an index, not an image manifest`)
    if (manifest.mediaType === Manifest.MediaType.OciManifest) return { bytes, mediaType: manifest.mediaType, changed: false }
    const { annotations } = yield* documentOf(bytes)
    const config = yield* mapped(configTypes, "the config", manifest.config)
    const layers: Array<ReturnType<typeof descriptorJson>> = []
    for (const [i, layer] of manifest.layers.entries()) {
      layers.push(descriptorJson(layer, { ...layer, mediaType: yield* mapped(layerTypes, `layers[${i}]`, layer) }, false))
    }
    return encode({
      schemaVersion: 2,
      mediaType: Manifest.MediaType.OciManifest,
      config: descriptorJson(manifest.config, { ...manifest.config, mediaType: config }, false),
      layers,
      annotations: nonEmpty(annotations)
    }, Manifest.MediaType.OciManifest)
  })

const childTypes: ReadonlyArray<string> = [Manifest.MediaType.OciManifest, Manifest.MediaType.OciIndex]

/** What an entry of an index points at once its children are converted, or why it cannot be. */
const converted = (d: Manifest.Descriptor, i: number, children: ReadonlyMap<string, Target>): Either.Either<Target, string> => {
  const where = `manifests[${i}] (${d.digest})`
  const child = children.get(d.digest)
  if (child === undefined) {
    return childTypes.includes(d.mediaType)
      ? Either.right(d)
      : Either.left(`cannot convert to OCI: ${where} is ${Digest.quote(d.mediaType)} and was not converted`)
  }
  if (!childTypes.includes(child.mediaType)) {
    return Either.left(`cannot convert to OCI: ${where} was converted to ${Digest.quote(child.mediaType)}, not an OCI manifest or index`)
  }
  return Either.map(Digest.parse(child.digest), () => child)
}

const sameTarget = (a: Target, b: Target): boolean => a.digest === b.digest && a.size === b.size && a.mediaType === b.mediaType

/**
 * A Docker manifest list as an OCI index ([I2]), each entry pointing at its converted child:
 * `children` maps a child's digest in this list to its converted descriptor (see `target`);
 * platform, urls and annotations are kept. A child that is already OCI may be left out of the
 * map. An OCI index is returned as it is (same bytes) unless a child changed; then only those
 * entries' media type, digest and size are rewritten, every other field kept.
 */
export const convertIndex = (
  bytes: Uint8Array,
  mediaType: string | undefined,
  children: ReadonlyMap<string, Target>
): Either.Either<Converted, string> =>
  Either.gen(function*() {
    const index = yield* Manifest.parse(bytes, mediaType)
    if (index._tag === "Image") return yield* Either.left(`${index.mediaType} is an image manifest, not an index`)
    const targets: Array<Target> = []
    for (const [i, d] of index.manifests.entries()) targets.push(yield* converted(d, i, children))
    const { json, annotations } = yield* documentOf(bytes)
    if (index.mediaType === Manifest.MediaType.OciIndex) {
      if (index.manifests.every((d, i) => sameTarget(d, targets[i]!))) return { bytes, mediaType: index.mediaType, changed: false }
      // An OCI index has only OCI's fields (unknown ones are extensions): keep them all, in their order.
      const entries = yield* Either.mapLeft(decodeEntries(json.manifests), reason("index"))
      const manifests = entries.map((entry, i) => ({ ...entry, mediaType: targets[i]!.mediaType, digest: targets[i]!.digest, size: targets[i]!.size }))
      return encode({ ...json, manifests }, index.mediaType)
    }
    return encode({
      schemaVersion: 2,
      mediaType: Manifest.MediaType.OciIndex,
      manifests: index.manifests.map((d, i) => descriptorJson(d, targets[i]!, true)),
      annotations: nonEmpty(annotations)
    }, Manifest.MediaType.OciIndex)
  })
