/**
 * `--format oci` ([I2], [M7]): Docker schema 2 manifests and lists rewritten with OCI media types;
 * layers and config keep their digests, OCI documents keep their bytes, and what has no OCI
 * counterpart is refused with a reason.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Manifest from "../../src/domain/Manifest.js"
import * as OciFormat from "../../src/domain/OciFormat.js"
import { addRef, blobPath, skopeoInspect } from "../support/images.js"
import { buildLayout } from "../support/layouts.js"
import { useScratch } from "../support/scratch.js"

const { scratchDir } = useScratch("microagent-ociformat-")

const encoder = new TextEncoder()
const bytes = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))
const json = (data: Uint8Array): Record<string, unknown> => JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>
const hex = (fill: string) => fill.repeat(64)

const docker = {
  manifest: Manifest.MediaType.DockerManifest,
  list: Manifest.MediaType.DockerManifestList,
  config: "application/vnd.docker.container.image.v1+json",
  gzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  tar: "application/vnd.docker.image.rootfs.diff.tar",
  zstd: "application/vnd.docker.image.rootfs.diff.tar.zstd",
  foreignGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  foreignTar: "application/vnd.docker.image.rootfs.foreign.diff.tar"
} as const

const oci = {
  tar: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  foreignTar: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  foreignGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  foreignZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
} as const

/** Every layer media type a Docker manifest may carry, and what the OCI manifest says instead. */
const layerMapping: ReadonlyArray<readonly [string, string]> = [
  [docker.gzip, oci.gzip],
  [docker.tar, oci.tar],
  [docker.zstd, oci.zstd],
  [docker.foreignGzip, oci.foreignGzip],
  [docker.foreignTar, oci.foreignTar],
  ...Object.values(oci).map((type) => [type, type] as const)
]

/** A descriptor as a Docker document may spell it, fields OCI has no use for included. */
type Written = Manifest.Descriptor & { readonly platform?: Record<string, unknown> }

const layer = (mediaType: string, fill: string, size: number, extra: Partial<Written> = {}): Written => ({
  mediaType,
  size,
  digest: `sha256:${hex(fill)}`,
  ...extra
})

const dockerManifest = (layers: ReadonlyArray<Written>, extra: { readonly annotations?: Record<string, string>; readonly [field: string]: unknown } = {}) => ({
  schemaVersion: 2,
  mediaType: docker.manifest,
  config: { mediaType: docker.config, size: 1469, digest: `sha256:${hex("c")}` },
  layers,
  ...extra
})

const right = <A>(result: Either.Either<A, string>): A => {
  if (Either.isLeft(result)) throw new Error(`expected a conversion, got the refusal: ${result.left}`)
  return result.right
}

const refused = (result: Either.Either<unknown, string>): string => {
  if (Either.isRight(result)) throw new Error(`expected a refusal, got ${JSON.stringify(result.right)}`)
  return result.left
}

/** Both OCI kinds must read back as what they claim, with and without the Content-Type. */
const readBack = (converted: OciFormat.Converted): Manifest.Manifest => {
  const own = right(Manifest.parse(converted.bytes))
  const served = right(Manifest.parse(converted.bytes, converted.mediaType))
  assert.deepStrictEqual(own, served)
  assert.strictEqual(own.mediaType, converted.mediaType)
  return own
}

describe("OciFormat", () => {
  describe("[I2] image manifests", () => {
    it("[I2] each Docker layer media type has its OCI counterpart; OCI ones stay; digests, sizes, urls and annotations are kept", () => {
      const layers = layerMapping.map(([type], i) =>
        layer(type, i.toString(16), 1000 + i, i % 2 === 0 ? { urls: [`https://mirror.example/${i}`], annotations: { "org.example.n": `${i}` } } : {})
      )
      const converted = right(OciFormat.convertManifest(bytes(dockerManifest(layers)), docker.manifest))
      assert.isTrue(converted.changed)
      assert.strictEqual(converted.mediaType, Manifest.MediaType.OciManifest)
      const image = readBack(converted)
      if (image._tag !== "Image") throw new Error("not an image manifest")
      assert.deepStrictEqual(image.layers.map((l) => l.mediaType), layerMapping.map(([, to]) => to))
      assert.deepStrictEqual(
        image.layers.map(({ digest, size, urls, annotations }) => ({ digest, size, urls, annotations })),
        layers.map(({ digest, size, urls, annotations }) => ({ digest, size, urls, annotations }))
      )
    })

    it("[I2] the config keeps its digest and size (its bytes are not rewritten); only its media type changes", () => {
      const source = dockerManifest([layer(docker.gzip, "1", 10)])
      const image = readBack(right(OciFormat.convertManifest(bytes(source))))
      if (image._tag !== "Image") throw new Error("not an image manifest")
      assert.deepStrictEqual(image.config, { ...source.config, mediaType: Manifest.MediaType.OciConfig })
    })

    it("[I2] the output has the image-spec's field order and no fields OCI does not define", () => {
      const source = dockerManifest(
        [layer(docker.gzip, "1", 10, { platform: { os: "linux", architecture: "amd64" }, urls: [], annotations: {} })],
        { annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" }, "docker-only": true }
      )
      const out = json(right(OciFormat.convertManifest(bytes(source))).bytes)
      assert.deepStrictEqual(Object.keys(out), ["schemaVersion", "mediaType", "config", "layers", "annotations"])
      assert.deepStrictEqual(out.annotations, source.annotations)
      assert.deepStrictEqual(Object.keys(out.config as object), ["mediaType", "digest", "size"])
      // A layer's platform has no meaning in an image manifest, and empty lists and maps are left out, as Go writes them.
      assert.deepStrictEqual(out.layers, [{ mediaType: oci.gzip, digest: `sha256:${hex("1")}`, size: 10 }])
      assert.notInclude(new TextDecoder().decode(right(OciFormat.convertManifest(bytes(dockerManifest([])))).bytes), "annotations")
    })

    it("[I2] an OCI manifest is returned as it is: the same bytes, so the same digest", () => {
      const original = encoder.encode(`{"schemaVersion": 2, "mediaType": "${Manifest.MediaType.OciManifest}",
        "config": {"mediaType": "${Manifest.MediaType.OciConfig}", "digest": "sha256:${hex("a")}", "size": 2},
        "layers": [], "annotations": {"x": "y"}}`)
      for (const mediaType of [undefined, Manifest.MediaType.OciManifest]) {
        const converted = right(OciFormat.convertManifest(original, mediaType))
        assert.isFalse(converted.changed)
        assert.strictEqual(converted.bytes, original)
        assert.strictEqual(converted.mediaType, Manifest.MediaType.OciManifest)
      }
    })

    it.prop(
      "[I2] converting again changes nothing: the converted manifest is a fixed point",
      { picks: FastCheck.array(FastCheck.constantFrom(...layerMapping.map(([from]) => from)), { maxLength: 6 }) },
      ({ picks }) => {
        const once = right(OciFormat.convertManifest(bytes(dockerManifest(picks.map((type, i) => layer(type, i.toString(16), i))))))
        const twice = right(OciFormat.convertManifest(once.bytes, once.mediaType))
        assert.isFalse(twice.changed)
        assert.strictEqual(twice.bytes, once.bytes)
      }
    )

    it("[I2] a layer or config with no OCI counterpart is refused, saying which and why", () => {
      const table: ReadonlyArray<readonly [unknown, string]> = [
        [dockerManifest([layer(docker.gzip, "1", 1), layer("application/vnd.docker.plugin.v1+json", "2", 2)]), `layers[1] has the media type "application/vnd.docker.plugin.v1+json", which has no OCI equivalent`],
        [dockerManifest([layer("application/octet-stream", "2", 2)]), `layers[0] has the media type "application/octet-stream"`],
        [{ ...dockerManifest([]), config: { mediaType: "application/vnd.cncf.helm.config.v1+json", size: 1, digest: `sha256:${hex("c")}` } }, `the config has the media type "application/vnd.cncf.helm.config.v1+json"`]
      ]
      for (const [source, why] of table) {
        const reason = refused(OciFormat.convertManifest(bytes(source)))
        assert.include(reason, "cannot convert to OCI", why)
        assert.include(reason, why)
      }
    })

    it("[I2] what is not a Docker or OCI image manifest is refused with the manifest's own reason", () => {
      assert.include(refused(OciFormat.convertManifest(encoder.encode("nope"))), "not JSON")
      assert.match(refused(OciFormat.convertManifest(bytes({ schemaVersion: 1, fsLayers: [], history: [] }))), /schema ?1/)
      assert.include(refused(OciFormat.convertManifest(bytes({ schemaVersion: 2, mediaType: docker.list, manifests: [] }))), "is an index, not an image manifest")
    })
  })

  describe("[I2] indexes", () => {
    const child = (fill: string, platform: Manifest.Platform & { readonly features?: ReadonlyArray<string> }, extra: Partial<Written> = {}) => ({
      mediaType: docker.manifest,
      size: 400 + fill.charCodeAt(0),
      digest: `sha256:${hex(fill)}`,
      platform,
      ...extra
    })
    const amd64 = child("d", { architecture: "amd64", os: "linux", features: ["sse4"] }, { annotations: { "org.example.a": "1" } })
    const arm64 = child("e", { architecture: "arm64", os: "linux", variant: "v8", "os.version": "6.1", "os.features": ["x"] }, { urls: ["https://m.example/e"] })
    const list = { schemaVersion: 2, mediaType: docker.list, manifests: [amd64, arm64] }
    const converted = (fill: string): OciFormat.Target => ({ mediaType: Manifest.MediaType.OciManifest, digest: `sha256:${hex(fill)}`, size: 700 })
    const children = new Map([[amd64.digest, converted("7")], [arm64.digest, converted("8")]])

    it("[I2] a Docker manifest list becomes an OCI index pointing at the converted children, platform and annotations kept", () => {
      const out = right(OciFormat.convertIndex(bytes(list), docker.list, children))
      assert.isTrue(out.changed)
      assert.strictEqual(out.mediaType, Manifest.MediaType.OciIndex)
      const index = readBack(out)
      if (index._tag !== "Index") throw new Error("not an index")
      assert.deepStrictEqual(index.manifests, [
        { ...converted("7"), platform: { architecture: "amd64", os: "linux" }, annotations: amd64.annotations },
        { ...converted("8"), platform: arm64.platform, urls: arm64.urls }
      ])
      const raw = json(out.bytes)
      assert.deepStrictEqual(Object.keys(raw), ["schemaVersion", "mediaType", "manifests"])
      // Docker's platform `features` has no place in OCI; the image-spec's field order is kept.
      const entries = raw.manifests as ReadonlyArray<Record<string, unknown>>
      assert.deepStrictEqual(Object.keys(entries[0]!), ["mediaType", "digest", "size", "annotations", "platform"])
      assert.deepStrictEqual(Object.keys(entries[1]!.platform as object), ["architecture", "os", "os.version", "os.features", "variant"])
    })

    it("[I2] children converted by convertManifest and described by target give an index of their digests", () => {
      const images = ["1", "2"].map((fill) => dockerManifest([layer(docker.gzip, fill, 5)]))
      const sources = images.map((m) => bytes(m))
      const entries = sources.map((source, i) => ({ mediaType: docker.manifest, digest: `sha256:${hex(String(i + 3))}`, size: source.length }))
      const map = new Map(entries.map((entry, i) => [entry.digest, OciFormat.target(entry, right(OciFormat.convertManifest(sources[i]!)))]))
      const index = readBack(right(OciFormat.convertIndex(bytes({ schemaVersion: 2, mediaType: docker.list, manifests: entries }), undefined, map)))
      if (index._tag !== "Index") throw new Error("not an index")
      for (const [i, entry] of index.manifests.entries()) {
        const expected = right(OciFormat.convertManifest(sources[i]!)).bytes
        assert.strictEqual(entry.size, expected.length)
        assert.notStrictEqual(entry.digest, entries[i]!.digest)
        assert.match(entry.digest, /^sha256:[a-f0-9]{64}$/)
      }
    })

    it("[I2] an OCI index whose children did not change is returned as it is (same bytes)", () => {
      const original = bytes({ schemaVersion: 2, mediaType: Manifest.MediaType.OciIndex, manifests: [{ ...converted("7"), platform: { os: "linux", architecture: "amd64" } }] })
      for (const map of [new Map<string, OciFormat.Target>(), new Map([[`sha256:${hex("7")}`, converted("7")]])]) {
        const out = right(OciFormat.convertIndex(original, undefined, map))
        assert.isFalse(out.changed)
        assert.strictEqual(out.bytes, original)
      }
    })

    it("[I2] an OCI index pointing at a Docker manifest has only that entry rewritten, every other field kept", () => {
      const kept = { mediaType: Manifest.MediaType.OciManifest, digest: `sha256:${hex("9")}`, size: 9, artifactType: "application/x.example", data: "e30=" }
      const source = { schemaVersion: 2, mediaType: Manifest.MediaType.OciIndex, manifests: [amd64, kept], annotations: { a: "b" }, subject: kept }
      const out = right(OciFormat.convertIndex(bytes(source), undefined, children))
      assert.isTrue(out.changed)
      readBack(out)
      assert.deepStrictEqual(json(out.bytes), { ...source, manifests: [{ ...amd64, ...converted("7") }, kept] })
    })

    it("[I2] a child that was not converted, or converted to something not OCI, is refused, saying which", () => {
      const missing = refused(OciFormat.convertIndex(bytes(list), docker.list, new Map([[amd64.digest, converted("7")]])))
      assert.include(missing, `manifests[1] (${arm64.digest}) is "${docker.manifest}" and was not converted`)
      const wrong = refused(OciFormat.convertIndex(bytes(list), docker.list, new Map([...children, [amd64.digest, { ...converted("7"), mediaType: docker.manifest }]])))
      assert.include(wrong, `manifests[0] (${amd64.digest}) was converted to "${docker.manifest}", not an OCI manifest or index`)
      const bad = refused(OciFormat.convertIndex(bytes(list), docker.list, new Map([...children, [amd64.digest, { ...converted("7"), digest: "sha256:zz" }]])))
      assert.include(bad, "not a valid sha256 digest")
      assert.include(refused(OciFormat.convertIndex(bytes(dockerManifest([])), undefined, children)), "is an image manifest, not an index")
    })
  })

  describe("[I2] other tools read the result", () => {
    it("[I2] skopeo and umoci read a converted Docker image that umoci refuses as it was", async () => {
      const dir = await scratchDir()
      const image = await buildLayout(dir, {
        tag: "docker",
        layers: [{ entries: [{ name: "hello.txt", content: "hello\n" }], compression: "gzip", mediaType: "docker" }]
      })
      const umoci = (tag: string) => promisify(execFile)("umoci", ["stat", "--json", "--image", `${dir}:${tag}`], { timeout: 30_000 })
      const before = await umoci("docker").then(() => "read", (error: { stderr?: string }) => error.stderr ?? "failed")
      assert.notStrictEqual(before, "read", "umoci should refuse Docker media types (else this test proves nothing)")

      const source = await fs.readFile(blobPath(dir, image.manifestDigest))
      const converted = right(OciFormat.convertManifest(source, image.manifestMediaType))
      const described = OciFormat.target({ mediaType: image.manifestMediaType, digest: image.manifestDigest, size: image.manifestSize }, converted)
      await fs.writeFile(blobPath(dir, described.digest), converted.bytes)
      await addRef(dir, "oci", described)

      const inspected = await skopeoInspect(`oci:${dir}:oci`)
      assert.strictEqual(inspected.Digest, described.digest)
      assert.deepStrictEqual(inspected.Layers, [image.layers[0]!.digest])
      const stat = JSON.parse((await umoci("oci")).stdout) as { history?: ReadonlyArray<unknown> }
      assert.lengthOf(stat.history ?? [], 1)
    }, 60_000)
  })
})
