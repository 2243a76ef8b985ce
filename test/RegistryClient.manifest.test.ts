/**
 * RegistryClient.getManifest against hostile answers, over a fake HttpClient: the algorithm a
 * digest names verifies it ([H1]); a mismatch names the registry ([E7]); an oversized, ambiguous
 * (CVE-2021-41190) or badly-digested manifest is refused as such, never called "unavailable".
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"
import { CredentialResolver } from "../src/CredentialResolver.js"
import * as Credential from "../src/domain/Credential.js"
import * as Manifest from "../src/domain/Manifest.js"
import * as TlsPolicy from "../src/registry/TlsPolicy.js"
import * as RC from "../src/RegistryClient.js"

const HOST = "registry.example.com"
const repo: RC.Repository = { registry: HOST, repository: "team/app" }
const hash = (algorithm: "sha256" | "sha512", bytes: Uint8Array) => `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`

/** A registry that answers every manifest request with `body` and `headers`. */
const serving = (body: Uint8Array, headers: Record<string, string> = {}) =>
  HttpClient.make((request: HttpClientRequest.HttpClientRequest, url: URL) =>
    Effect.sync(() =>
      HttpClientResponse.fromWeb(
        request,
        url.pathname === "/v2/"
          ? new Response("{}", { status: 200 })
          : new Response(body, { status: 200, headers: { "content-type": Manifest.MediaType.OciManifest, ...headers } })
      )
    )
  )

const getManifest = (client: HttpClient.HttpClient, reference: string) =>
  Effect.flatMap(RC.RegistryClient, (rc) => rc.getManifest(repo, reference)).pipe(
    Effect.provide(
      RC.layer.pipe(
        Layer.provide(Layer.mergeAll(
          TlsPolicy.layerDefault,
          Layer.succeed(CredentialResolver, {
            authFile: undefined,
            resolve: () => Effect.succeed(Credential.anonymous),
            shadowing: () => Effect.succeed(Option.none()),
            list: Effect.succeed([]),
            listReadable: Effect.succeed({ listings: [], unreadable: [] })
          }),
          Layer.succeed(HttpClient.HttpClient, client)
        ))
      )
    )
  )

const image = {
  schemaVersion: 2,
  mediaType: Manifest.MediaType.OciManifest,
  config: { mediaType: Manifest.MediaType.OciConfig, digest: `sha256:${"a".repeat(64)}`, size: 2 },
  layers: [{ mediaType: Manifest.MediaType.OciLayer, digest: `sha256:${"b".repeat(64)}`, size: 3 }]
}
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

describe("RegistryClient.getManifest", () => {
  it.effect("[H1] a sha512 reference is verified with sha512, and the digest returned is that sha512", () =>
    Effect.gen(function*() {
      const bytes = encode(image)
      const got = yield* getManifest(serving(bytes, { "docker-content-digest": hash("sha256", bytes) }), hash("sha512", bytes))
      expect(got.digest).toBe(hash("sha512", bytes))
      expect(got.manifest._tag).toBe("Image")
    }))

  it.effect("[H1] [E7] a sha512 reference whose bytes differ is a DigestMismatch naming the registry", () =>
    Effect.gen(function*() {
      const asked = hash("sha512", encode({ other: true }))
      const error = yield* Effect.flip(getManifest(serving(encode(image)), asked))
      expect(error._tag).toBe("DigestMismatch")
      expect(error.message).toContain(HOST)
      if (error._tag === "DigestMismatch") expect(error.actual).toBe(hash("sha512", encode(image)))
    }))

  it.effect("[H1] a sha512 Docker-Content-Digest is checked with sha512; one that is not a digest is refused", () =>
    Effect.gen(function*() {
      const bytes = encode(image)
      const got = yield* getManifest(serving(bytes, { "docker-content-digest": hash("sha512", bytes) }), "v1")
      expect(got.digest).toBe(hash("sha256", bytes))
      const wrong = yield* Effect.flip(getManifest(serving(bytes, { "docker-content-digest": hash("sha512", encode({})) }), "v1"))
      expect(wrong._tag).toBe("DigestMismatch")
      expect(wrong.message).toContain(HOST)
      const unusable = yield* Effect.flip(getManifest(serving(bytes, { "docker-content-digest": "sha256:../../x" }), "v1"))
      expect(unusable.message).toMatch(/Docker-Content-Digest/)
      expect(unusable.message).not.toMatch(/unavailable/)
    }))

  it.effect("[P4] a manifest over 4 MiB is refused as too large: its own reason, the registry named, not \"unavailable\"", () =>
    Effect.gen(function*() {
      const json = JSON.stringify(image)
      const bytes = new TextEncoder().encode(json + " ".repeat(Manifest.maxBytes + 1 - json.length))
      const error = yield* Effect.flip(getManifest(serving(bytes), "v1"))
      expect(error._tag).toBe("RegistryUnavailable")
      if (error._tag !== "RegistryUnavailable") return
      expect(error.reason).toBe("too-large")
      expect(error.message).toMatch(/larger than the 4 MiB cap/)
      expect(error.message).toContain(HOST)
      expect(error.message).not.toMatch(/unavailable/)
    }))

  it.effect("[H1] [E7] a manifest naming a blob by something that is not a digest: DigestMismatch naming the registry", () =>
    Effect.gen(function*() {
      const bytes = encode({ ...image, layers: [{ ...image.layers[0], digest: "sha256:../../../../etc/passwd" }] })
      const error = yield* Effect.flip(getManifest(serving(bytes), "v1"))
      expect(error._tag).toBe("DigestMismatch")
      expect(error.message).toContain(HOST)
      expect(error.message).toMatch(/layers\[0\].*not a digest/)
    }))

  it.effect("[P4] an ambiguous manifest (index and image at once) is refused as ambiguous", () =>
    Effect.gen(function*() {
      const bytes = encode({ ...image, manifests: [] })
      const error = yield* Effect.flip(getManifest(serving(bytes), "v1"))
      expect(error._tag).toBe("RegistryUnavailable")
      if (error._tag !== "RegistryUnavailable") return
      expect(error.reason).toBe("ambiguous")
      expect(error.message).toMatch(/ambiguous/)
      expect(error.message).not.toMatch(/unavailable/)
    }))
})
