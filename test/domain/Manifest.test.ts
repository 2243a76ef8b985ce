/**
 * Manifest parsing ([P4]): the four accepted media types, schema1 and unknown types refused,
 * the Accept list and the 4 MiB cap.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Manifest from "../../src/domain/Manifest.js"

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

const descriptor = (mediaType: string, fill: string, size: number) => ({
  mediaType,
  digest: `sha256:${fill.repeat(64)}`,
  size
})

const imageBody = (mediaType?: string) => ({
  schemaVersion: 2,
  ...(mediaType === undefined ? {} : { mediaType }),
  config: descriptor(Manifest.MediaType.OciConfig, "a", 123),
  layers: [descriptor(Manifest.MediaType.OciLayer, "b", 4567), descriptor(Manifest.MediaType.OciLayer, "c", 89)]
})

const indexBody = (mediaType?: string) => ({
  schemaVersion: 2,
  ...(mediaType === undefined ? {} : { mediaType }),
  manifests: [
    { ...descriptor(Manifest.MediaType.OciManifest, "d", 500), platform: { os: "linux", architecture: "amd64" } },
    { ...descriptor(Manifest.MediaType.OciManifest, "e", 501), platform: { os: "linux", architecture: "arm64", variant: "v8" } }
  ]
})

const imageTypes = [Manifest.MediaType.OciManifest, Manifest.MediaType.DockerManifest] as const
const indexTypes = [Manifest.MediaType.OciIndex, Manifest.MediaType.DockerManifestList] as const
const schema1Type = "application/vnd.docker.distribution.manifest.v1+prettyjws"

const schema1Body = {
  schemaVersion: 1,
  name: "team/app",
  tag: "v1",
  architecture: "amd64",
  fsLayers: [{ blobSum: `sha256:${"a".repeat(64)}` }],
  history: [{ v1Compatibility: "{}" }],
  signatures: []
}

const refused = (result: Either.Either<Manifest.Manifest, string>): string => {
  if (Either.isRight(result)) throw new Error(`expected a refusal, got ${JSON.stringify(result.right)}`)
  return result.left
}

const parsed = (result: Either.Either<Manifest.Manifest, string>): Manifest.Manifest => {
  if (Either.isLeft(result)) throw new Error(`expected a manifest, got the refusal: ${result.left}`)
  return result.right
}

describe("Manifest", () => {
  describe("[P4] schema1 is refused with a reason", () => {
    it("[P4] schemaVersion 1 body without a media type", () => {
      expect(refused(Manifest.parse(bytes(schema1Body)))).toMatch(/schema ?1/i)
    })

    it("[P4] schemaVersion 1 body served as application/vnd.docker.distribution.manifest.v1+prettyjws", () => {
      expect(refused(Manifest.parse(bytes(schema1Body), schema1Type))).toMatch(/schema ?1/i)
      expect(refused(Manifest.parse(bytes(schema1Body), `${schema1Type}; charset=utf-8`))).toMatch(/schema ?1/i)
    })

    it("[P4] schemaVersion 1 body declaring the v1+prettyjws media type itself", () => {
      expect(refused(Manifest.parse(bytes({ ...schema1Body, mediaType: schema1Type })))).toMatch(/schema ?1|v1\+prettyjws/i)
    })

    it("[P4] the v1+prettyjws media type is refused even when the Content-Type is all there is", () => {
      // A body without schemaVersion 1 but served as schema1: still not something microagent reads.
      const reason = refused(Manifest.parse(bytes(imageBody()), schema1Type))
      expect(reason).not.toBe("")
      expect(reason).toMatch(/schema ?1|unsupported|v1\+prettyjws/i)
    })
  })

  describe("[P4] the four accepted media types parse", () => {
    it.each(imageTypes)("[P4] image manifest %s, media type from the body", (mediaType) => {
      const m = parsed(Manifest.parse(bytes(imageBody(mediaType))))
      expect(m._tag).toBe("Image")
      expect(m.mediaType).toBe(mediaType)
      if (m._tag !== "Image") return
      expect(m.config.digest).toBe(`sha256:${"a".repeat(64)}`)
      expect(m.layers.map((l) => l.size)).toEqual([4567, 89])
    })

    it.each(imageTypes)("[P4] image manifest %s, media type from a Content-Type with parameters", (mediaType) => {
      const m = parsed(Manifest.parse(bytes(imageBody()), `${mediaType}; charset=utf-8`))
      expect(m._tag).toBe("Image")
      expect(m.mediaType).toBe(mediaType)
    })

    it.each(indexTypes)("[P4] index %s, media type from the body", (mediaType) => {
      const m = parsed(Manifest.parse(bytes(indexBody(mediaType))))
      expect(m._tag).toBe("Index")
      expect(m.mediaType).toBe(mediaType)
      if (m._tag !== "Index") return
      expect(m.manifests.map((d) => d.platform?.architecture)).toEqual(["amd64", "arm64"])
    })

    it.each(indexTypes)("[P4] index %s, media type from a Content-Type with parameters", (mediaType) => {
      const m = parsed(Manifest.parse(bytes(indexBody()), `${mediaType} ; charset="utf-8"`))
      expect(m._tag).toBe("Index")
      expect(m.mediaType).toBe(mediaType)
    })

    it("[P4] the body's own media type wins over the Content-Type", () => {
      const m = parsed(Manifest.parse(bytes(indexBody(Manifest.MediaType.OciIndex)), "application/json"))
      expect(m._tag).toBe("Index")
      expect(m.mediaType).toBe(Manifest.MediaType.OciIndex)
    })
  })

  describe("[P4] anything else is refused", () => {
    it("[P4] an unknown media type in the body", () => {
      expect(refused(Manifest.parse(bytes(imageBody("application/vnd.example.thing.v1+json"))))).toMatch(
        /unsupported|unknown/i
      )
    })

    it("[P4] an unknown media type from the Content-Type", () => {
      expect(refused(Manifest.parse(bytes(imageBody()), "application/vnd.example.thing.v1+json; charset=utf-8"))).toMatch(
        /unsupported|unknown/i
      )
    })

    it("[P4] a body that is not JSON", () => {
      expect(refused(Manifest.parse(new TextEncoder().encode("<html>nope</html>")))).not.toBe("")
    })
  })

  it("[P4] Manifest.accept lists exactly the OCI index, OCI manifest, Docker manifest list and Docker manifest v2 types", () => {
    const listed = Manifest.accept.split(",").map((s) => s.trim())
    expect(new Set(listed)).toEqual(
      new Set([
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json"
      ])
    )
    expect(listed).toHaveLength(4)
    expect(Manifest.accept).not.toMatch(/prettyjws|distribution\.manifest\.v1\+/)
  })

  it("[P4] Manifest.maxBytes is 4 MiB", () => {
    expect(Manifest.maxBytes).toBe(4 * 1024 * 1024)
  })
})

describe("Manifest: one digest, one meaning (CVE-2021-41190, as containers/image's ValidateUnambiguousManifestFormat)", () => {
  const withExtra = (body: Record<string, unknown>, field: string, value: unknown = []) => ({ ...body, [field]: value })

  it.each(indexTypes)("[P4] an index (%s) with any image or schema1 field is refused as ambiguous", (mediaType) => {
    for (const field of ["config", "layers", "fsLayers", "history"]) {
      for (const contentType of [undefined, mediaType]) {
        const body = withExtra(indexBody(mediaType), field, field === "config" ? descriptor(Manifest.MediaType.OciConfig, "a", 1) : [])
        expect(refused(Manifest.parse(bytes(body), contentType)), `${field}, Content-Type ${contentType}`).toMatch(/ambiguous/)
      }
    }
  })

  it.each(imageTypes)("[P4] an image manifest (%s) with manifests, fsLayers or history is refused as ambiguous", (mediaType) => {
    for (const field of ["manifests", "fsLayers", "history"]) {
      expect(refused(Manifest.parse(bytes(withExtra(imageBody(mediaType), field)))), field).toMatch(/ambiguous/)
    }
  })

  it("[P4] without a mediaType, a document with manifests and layers/config is refused whatever the Content-Type says", () => {
    const both = { ...indexBody(), config: imageBody().config, layers: imageBody().layers }
    const onlyLayers = { ...indexBody(), layers: imageBody().layers }
    for (const contentType of [undefined, ...indexTypes, ...imageTypes, "application/json", "text/plain; charset=utf-8"]) {
      expect(refused(Manifest.parse(bytes(both), contentType)), `Content-Type ${contentType}`).toMatch(/ambiguous/)
      expect(refused(Manifest.parse(bytes(onlyLayers), contentType)), `Content-Type ${contentType}`).toMatch(/ambiguous/)
    }
  })

  it("[P4] without a mediaType, the fields decide: manifests alone is an index, config and layers an image", () => {
    expect(parsed(Manifest.parse(bytes(indexBody())))._tag).toBe("Index")
    expect(parsed(Manifest.parse(bytes(imageBody())))._tag).toBe("Image")
    // A Content-Type naming the other kind does not turn one into the other: it is refused.
    for (const contentType of imageTypes) expect(refused(Manifest.parse(bytes(indexBody()), contentType))).toMatch(/ambiguous/)
    for (const contentType of indexTypes) expect(refused(Manifest.parse(bytes(imageBody()), contentType))).toMatch(/ambiguous/)
  })

  it("[P4] a body whose own mediaType and Content-Type name different kinds is refused", () => {
    expect(refused(Manifest.parse(bytes(indexBody(Manifest.MediaType.OciIndex)), Manifest.MediaType.OciManifest))).toMatch(/ambiguous/)
    expect(refused(Manifest.parse(bytes(imageBody(Manifest.MediaType.DockerManifest)), Manifest.MediaType.DockerManifestList))).toMatch(/ambiguous/)
    // Same kind, other family: the body's own type is kept.
    expect(parsed(Manifest.parse(bytes(imageBody(Manifest.MediaType.OciManifest)), Manifest.MediaType.DockerManifest)).mediaType)
      .toBe(Manifest.MediaType.OciManifest)
  })

  it("[P4] a key spelling a kind field in another case (read by Go's decoders, not by JSON.parse) is refused", () => {
    for (const key of ["Layers", "MANIFESTS", "Config", "MediaType", "fslayers"]) {
      expect(refused(Manifest.parse(bytes(withExtra(imageBody(Manifest.MediaType.OciManifest), key)))), key).toMatch(/ambiguous/)
    }
  })

  it("[P4] a kind field that is null counts as absent, as for Go's decoder", () => {
    expect(parsed(Manifest.parse(bytes(withExtra(imageBody(Manifest.MediaType.OciManifest), "manifests", null))))._tag).toBe("Image")
  })
})

describe("Manifest: [H1] descriptor digests are checked when a manifest is read", () => {
  const bad = ["sha256:../../../../etc/passwd", `sha256:${"A".repeat(64)}`, `md5:${"a".repeat(32)}`, "sha256:abc", `sha512:${"a".repeat(64)}`, "\u001b[2Jsha256:x"]

  it("[H1] a config, layer or child digest that is not sha256/sha512 lower-case hex is refused as BadDigest, quoted safely", () => {
    for (const digest of bad) {
      const image = imageBody(Manifest.MediaType.OciManifest)
      const cases = [
        { ...image, config: { ...image.config, digest } },
        { ...image, layers: [image.layers[0], { ...image.layers[1], digest }] },
        { ...indexBody(Manifest.MediaType.OciIndex), manifests: [{ ...indexBody().manifests[0], digest }] }
      ]
      for (const body of cases) {
        const result = Manifest.decode(bytes(body))
        if (Either.isRight(result)) throw new Error(`accepted ${digest}`)
        expect(result.left._tag, digest).toBe("BadDigest")
        expect(result.left.reason).not.toMatch(/\u001b/)
      }
    }
  })

  it("[H1] sha512 descriptors are accepted", () => {
    const image = imageBody(Manifest.MediaType.OciManifest)
    const m = parsed(Manifest.parse(bytes({ ...image, config: { ...image.config, digest: `sha512:${"c".repeat(128)}` } })))
    expect(m._tag === "Image" && m.config.digest).toBe(`sha512:${"c".repeat(128)}`)
  })

  it("[H3] indexes nest at most 8 levels", () => {
    expect(Manifest.maxDepth).toBe(8)
  })
})
