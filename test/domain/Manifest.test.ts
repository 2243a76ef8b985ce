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
