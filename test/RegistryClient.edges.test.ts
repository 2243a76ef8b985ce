/**
 * RegistryClient edge cases over a fake HttpClient: a 200 answer to a range request ([P5]),
 * retries running out ([P7]), https→http redirects refused ([P3]), and the OAuth2 refresh
 * falling back to GET with an `access_token`-only answer ([P2]).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { createHash, randomBytes } from "node:crypto"
import * as Credential from "../src/domain/Credential.js"
import * as Manifest from "../src/domain/Manifest.js"
import * as RC from "../src/RegistryClient.js"
import { fake, withClient } from "./support/fakeClient.js"

const HOST = "registry.example.com"
const repo: RC.Repository = { registry: HOST, repository: "team/app" }
const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`



const ok = () => new Response("{}", { status: 200 })

/** A body that delivers `bytes` and then breaks, as a cut connection does. */
const breaking = (bytes: Uint8Array) => {
  let sent = false
  // Erroring in the same pull would drop the queued bytes before anyone read them.
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(new Error("socket hang up"))
      sent = true
      controller.enqueue(bytes)
    }
  })
}

describe("RegistryClient edges", () => {
  it.live("[P5] a cut download resumes with Range, and a 200 to the range request starts over without duplicating bytes", () =>
    Effect.gen(function*() {
      const blob = new Uint8Array(randomBytes(100_000))
      const descriptor: Manifest.Descriptor = { mediaType: Manifest.MediaType.OciLayer, digest: sha256(blob), size: blob.length }
      const { client, seen } = fake((request) => {
        if (request.url.pathname === "/v2/") return ok()
        const gets = seen.filter((s) => s.url.pathname.includes("/blobs/")).length
        return gets === 1 ? new Response(breaking(blob.slice(0, 30_000)), { status: 200 }) : new Response(blob, { status: 200 })
      })
      const bytes = yield* withClient(client, (rc) => Stream.runCollect(rc.blob(repo, descriptor)))
      assert.deepStrictEqual(Buffer.concat(Chunk.toReadonlyArray(bytes)), Buffer.from(blob))
      const blobRequests = seen.filter((s) => s.url.pathname.includes("/blobs/"))
      assert.strictEqual(blobRequests.length, 2)
      assert.strictEqual(blobRequests[1]!.headers["range"], "bytes=30000-")
    }))

  it.live("[P5] [E7] a body that runs past its size is stopped there with DigestMismatch, not read to its end", () =>
    Effect.gen(function*() {
      const descriptor: Manifest.Descriptor = { mediaType: Manifest.MediaType.OciLayer, digest: sha256(new Uint8Array(10)), size: 10 }
      let served = 0
      const endless = new ReadableStream<Uint8Array>({
        pull(controller) {
          served += 4096
          controller.enqueue(new Uint8Array(4096))
        }
      })
      const { client } = fake((request) => request.url.pathname === "/v2/" ? ok() : new Response(endless, { status: 200 }))
      const error = yield* Effect.flip(withClient(client, (rc) => Stream.runDrain(rc.blob(repo, descriptor))))
      assert.strictEqual(error._tag, "DigestMismatch")
      assert.include(error.message, "more than 10 bytes")
      assert.isBelow(served, 1024 * 1024)
    }))

  it.live("[P7] [E5] a registry that keeps answering 503 is given up on after 5 attempts", () =>
    Effect.gen(function*() {
      const { client, seen } = fake((request) =>
        request.url.pathname === "/v2/" ? ok() : new Response("busy", { status: 503, headers: { "retry-after": "0" } })
      )
      const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1")))
      assert.strictEqual(error._tag, "RegistryUnavailable")
      assert.include(error.message, "503")
      assert.strictEqual(seen.filter((s) => s.url.pathname.includes("/manifests/")).length, 5)
    }))

  it.live("[P3] a redirect from https to http is refused, never followed", () =>
    Effect.gen(function*() {
      const blob = new Uint8Array(randomBytes(1000))
      const descriptor: Manifest.Descriptor = { mediaType: Manifest.MediaType.OciLayer, digest: sha256(blob), size: blob.length }
      const { client, seen } = fake((request) =>
        request.url.pathname === "/v2/"
          ? ok()
          : request.url.protocol === "https:"
          ? new Response(null, { status: 307, headers: { location: `http://storage.example.com/blob` } })
          : new Response(blob, { status: 200 })
      )
      const error = yield* Effect.flip(withClient(client, (rc) => Stream.runCollect(rc.blob(repo, descriptor))))
      assert.strictEqual(error._tag, "RegistryUnavailable")
      assert.include(error.message, "refused a redirect from https to http")
      assert.isFalse(seen.some((s) => s.url.protocol === "http:"))
    }))

  it.live("[P2] [C11] an identity token is refreshed by OAuth2 POST, falling back to GET on 405; `access_token` alone is taken", () =>
    Effect.gen(function*() {
      const manifest = new TextEncoder().encode(JSON.stringify({
        schemaVersion: 2,
        mediaType: Manifest.MediaType.OciManifest,
        config: { mediaType: Manifest.MediaType.OciConfig, digest: sha256(new Uint8Array()), size: 0 },
        layers: []
      }))
      const { client, seen } = fake((request) => {
        if (request.url.host === "auth.example.com") {
          return request.method === "POST"
            ? new Response("method not allowed", { status: 405 })
            : new Response(JSON.stringify({ access_token: "fresh-token" }), { status: 200 })
        }
        if (request.headers["authorization"] !== "Bearer fresh-token") {
          return new Response("{}", { status: 401, headers: { "www-authenticate": `Bearer realm="https://auth.example.com/token",service="reg"` } })
        }
        return new Response(manifest, { status: 200, headers: { "content-type": Manifest.MediaType.OciManifest } })
      })
      const credential: Credential.Credential = {
        _tag: "Credential",
        username: "me",
        password: Redacted.make(""),
        identityToken: Redacted.make("refresh-me"),
        source: { file: "/auth.json", key: HOST }
      }
      const fetched = yield* withClient(client, (rc) => rc.getManifest(repo, "v1"), credential)
      assert.strictEqual(fetched.digest, sha256(manifest))
      const toAuth = seen.filter((s) => s.url.host === "auth.example.com")
      assert.deepStrictEqual(toAuth.map((s) => s.method), ["POST", "GET"])
      assert.strictEqual(toAuth[1]!.url.searchParams.get("scope"), "repository:team/app:pull")
      assert.strictEqual(toAuth[1]!.url.searchParams.get("service"), "reg")
      assert.isUndefined(toAuth[0]!.headers["authorization"], "the refresh token travels in the body, not a header")
    }))
})

describe("[H5] the first ping", () => {
  const tagList = () => new Response(JSON.stringify({ name: "team/app", tags: ["a"] }), { status: 200, headers: { "content-type": "application/json" } })

  it.live("[H5] is retried like any idempotent request: a 503 then an answer lists the tags", () => {
    let pings = 0
    const { client, seen } = fake((request) => {
      if (request.url.pathname === "/v2/") return ++pings === 1 ? new Response("busy", { status: 503 }) : ok()
      return tagList()
    })
    return Effect.gen(function*() {
      assert.deepStrictEqual(yield* withClient(client, (rc) => rc.listTags(repo)), ["a"])
      assert.strictEqual(seen.filter((s) => s.url.pathname === "/v2/").length, 2)
    })
  })

  it.live("[H5] is never remembered when it failed: the next request pings again and succeeds", () => {
    let healthy = false
    const { client } = fake((request) => {
      if (request.url.pathname === "/v2/") return healthy ? ok() : new Response("down", { status: 503 })
      return tagList()
    })
    return withClient(client, (rc) =>
      Effect.gen(function*() {
        const first = yield* Effect.either(rc.listTags(repo))
        assert.isTrue(first._tag === "Left")
        healthy = true
        assert.deepStrictEqual(yield* rc.listTags(repo), ["a"])
      }))
  })
})
