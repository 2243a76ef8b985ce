/**
 * The one retry policy ([P7], [H4], [H5]) and the token cache ([P2]), on a fake HttpClient under
 * the TestClock: pauses are asserted by moving the clock, never by sleeping.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { createHash, randomBytes } from "node:crypto"
import type * as Manifest from "../src/domain/Manifest.js"
import * as Retry from "../src/registry/Retry.js"
import type * as RC from "../src/RegistryClient.js"
import { fake, type Seen, withClient } from "./support/fakeClient.js"

const repo: RC.Repository = { registry: "registry.example.com", repository: "team/app" }
const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`
const ok = () => new Response("{}", { status: 200 })
const manifest = new TextEncoder().encode(JSON.stringify({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(new Uint8Array()), size: 0 },
  layers: []
}))
const manifestAnswer = () => new Response(manifest, { status: 200, headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" } })
const isManifest = (s: Seen) => s.url.pathname.includes("/manifests/")

/** The real pacing (250 ms base): the client under test runs on the TestClock. */
const paced = { transport: {} }

/** Lets forked fibers run up to their next sleep. */
const settle = Effect.yieldNow().pipe(Effect.repeatN(20))

describe("Retry: one policy ([P7])", () => {
  it.effect("[P7] a busy manifest is asked again with growing pauses, and answers once the registry recovers", () =>
    Effect.gen(function*() {
      let busy = 3
      const { client, seen } = fake((request) =>
        request.url.pathname === "/v2/" ? ok() : busy-- > 0 ? new Response("busy", { status: 503 }) : manifestAnswer()
      )
      const fiber = yield* Effect.fork(withClient(client, (rc) => rc.getManifest(repo, "v1"), undefined, paced))
      yield* settle
      assert.strictEqual(seen.filter(isManifest).length, 1)
      // Pauses are 250 ms, 500 ms, 1 s, jittered by at most 20%: 1.9 s is not enough for all three.
      yield* TestClock.adjust("150 millis")
      yield* settle
      assert.strictEqual(seen.filter(isManifest).length, 1, "no second attempt before the first pause")
      yield* TestClock.adjust("2 seconds")
      yield* settle
      yield* TestClock.adjust("2 seconds")
      yield* settle
      const fetched = yield* Fiber.join(fiber)
      assert.strictEqual(fetched.digest, sha256(manifest))
      assert.strictEqual(seen.filter(isManifest).length, 4)
    }))

  it.effect("[P7] a registry that stays busy is given up on after 5 attempts, saying so once", () =>
    Effect.gen(function*() {
      const { client, seen } = fake((request) =>
        request.url.pathname === "/v2/"
          ? ok()
          : new Response(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "try later" }] }), { status: 503 })
      )
      const fiber = yield* Effect.fork(Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1"), undefined, paced)))
      for (let i = 0; i < 10; i++) {
        yield* TestClock.adjust("30 seconds")
        yield* settle
      }
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "RegistryUnavailable")
      assert.match(error.message, /answered HTTP 503: UNAVAILABLE try later \(after 5 attempts\)$/)
      assert.notMatch(error.message, /after 5 attempts.*after/)
      assert.strictEqual(seen.filter(isManifest).length, 5)
    }))

  it.effect("[P7] Retry-After as an HTTP date is honoured: no attempt before it, one after", () =>
    Effect.gen(function*() {
      let first = true
      const { client, seen } = fake((request) => {
        if (request.url.pathname === "/v2/") return ok()
        if (!first) return manifestAnswer()
        first = false
        // The TestClock starts at 0: the epoch plus 20 s.
        return new Response("", { status: 429, headers: { "retry-after": new Date(20_000).toUTCString() } })
      })
      const fiber = yield* Effect.fork(withClient(client, (rc) => rc.getManifest(repo, "v1"), undefined, paced))
      yield* settle
      yield* TestClock.adjust("19 seconds")
      yield* settle
      assert.strictEqual(seen.filter(isManifest).length, 1, "asked again before the date it was given")
      yield* TestClock.adjust("1 second")
      yield* settle
      yield* Fiber.join(fiber)
      assert.strictEqual(seen.filter(isManifest).length, 2)
    }))

  it("[P7] Retry-After: seconds or an HTTP date, never more than 60 s, garbage ignored", () => {
    assert.strictEqual(Retry.retryAfter("3", 0), 3000)
    assert.strictEqual(Retry.retryAfter("3600", 0), 60_000)
    assert.strictEqual(Retry.retryAfter(new Date(5000).toUTCString(), 0), 5000)
    assert.strictEqual(Retry.retryAfter(new Date(0).toUTCString(), 10_000), 0)
    assert.strictEqual(Retry.retryAfter("soon", 0), undefined)
  })

  it.effect("[P7] no pause is longer than 30 s, however far the backoff has grown", () =>
    Effect.gen(function*() {
      let busy = 2
      const { client, seen } = fake((request) =>
        request.url.pathname === "/v2/" ? ok() : busy-- > 0 ? new Response("", { status: 502 }) : manifestAnswer()
      )
      // From 40 s, the first pause would be 32 s or more; capped, it is 30 s.
      const fiber = yield* Effect.fork(withClient(client, (rc) => rc.getManifest(repo, "v1"), undefined, { transport: { retryBase: "40 seconds" } }))
      yield* settle
      yield* TestClock.adjust("30 seconds")
      yield* settle
      assert.strictEqual(seen.filter(isManifest).length, 2)
      yield* TestClock.adjust("30 seconds")
      yield* settle
      yield* Fiber.join(fiber)
      assert.strictEqual(seen.filter(isManifest).length, 3)
    }))

  it.effect("[P3] [P7] a refused redirect is final: asked once, not five times", () =>
    Effect.gen(function*() {
      const { client, seen } = fake((request) =>
        request.url.pathname === "/v2/"
          ? ok()
          : new Response(null, { status: 307, headers: { location: "http://storage.example.com/x" } })
      )
      const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1"), undefined, paced))
      assert.include(error.message, "refused a redirect from https to http")
      assert.strictEqual(seen.filter(isManifest).length, 1)
    }))

  it.effect("[H5] a busy ping is retried under the same policy, and the request then goes through", () =>
    Effect.gen(function*() {
      let pings = 0
      const { client, seen } = fake((request) =>
        request.url.pathname === "/v2/" ? (++pings < 3 ? new Response("", { status: 503 }) : ok()) : manifestAnswer()
      )
      const fiber = yield* Effect.fork(withClient(client, (rc) => rc.getManifest(repo, "v1"), undefined, paced))
      for (let i = 0; i < 4; i++) {
        yield* TestClock.adjust("2 seconds")
        yield* settle
      }
      yield* Fiber.join(fiber)
      assert.strictEqual(pings, 3)
      assert.strictEqual(seen.filter(isManifest).length, 1)
    }))

  it.effect("[P7] an upload answered 503 starts a new session each time: one POST per attempt, never nested", () =>
    Effect.gen(function*() {
      const blob = new Uint8Array(randomBytes(100))
      const descriptor: Manifest.Descriptor = { mediaType: "application/octet-stream", digest: sha256(blob), size: blob.length }
      const { client, seen } = fake((request) => {
        if (request.url.pathname === "/v2/") return ok()
        if (request.method === "HEAD") return new Response(null, { status: 404 })
        if (request.method === "POST") return new Response(null, { status: 202, headers: { location: "/v2/team/app/blobs/uploads/s" } })
        return new Response("", { status: 503 })
      })
      const fiber = yield* Effect.fork(Effect.flip(withClient(client, (rc) => rc.uploadBlob(repo, descriptor, () => Stream.make(blob)), undefined, paced)))
      for (let i = 0; i < 10; i++) {
        yield* TestClock.adjust("30 seconds")
        yield* settle
      }
      const error = yield* Fiber.join(fiber)
      assert.match(error.message, /HTTP 503 \(after 5 attempts\)/)
      assert.strictEqual(seen.filter((s) => s.method === "POST").length, 5)
      assert.strictEqual(seen.filter((s) => s.method === "PUT").length, 5)
    }))
})

describe("Tokens: cached by their lifetime ([P2])", () => {
  const challenge = () =>
    new Response("{}", { status: 401, headers: { "www-authenticate": `Bearer realm="https://auth.example.com/token",service="reg"` } })

  /** A token registry: tokens `t1`, `t2`… living `expiresIn` seconds; `refuse(token)` makes the registry answer 401 to it. */
  const tokenRegistry = (expiresIn: number, refuse: (token: string) => boolean = () => false) => {
    let issued = 0
    return fake((request) => {
      if (request.url.host === "auth.example.com") return new Response(JSON.stringify({ token: `t${++issued}`, expires_in: expiresIn }))
      if (request.url.pathname === "/v2/") return challenge()
      const token = (request.headers["authorization"] ?? "").replace(/^Bearer /, "")
      return token === "" || refuse(token) ? challenge() : manifestAnswer()
    })
  }
  const tokenRequests = (seen: ReadonlyArray<Seen>) => seen.filter((s) => s.url.host === "auth.example.com").length

  it.effect("[P2] a token is reused while it lives, and fetched anew once its expires_in has passed", () =>
    Effect.gen(function*() {
      const { client, seen } = tokenRegistry(300)
      yield* withClient(client, (rc) =>
        Effect.gen(function*() {
          yield* rc.getManifest(repo, "v1")
          yield* rc.getManifest(repo, "v1")
          assert.strictEqual(tokenRequests(seen), 1, "the living token was not reused")
          yield* TestClock.adjust(Duration.seconds(290))
          yield* rc.getManifest(repo, "v1")
          assert.strictEqual(tokenRequests(seen), 1)
          // Renewed a little (5 s) before the registry would refuse it.
          yield* TestClock.adjust(Duration.seconds(6))
          yield* rc.getManifest(repo, "v1")
          assert.strictEqual(tokenRequests(seen), 2, "the expired token was used again")
        }), undefined, paced)
    }))

  it.effect("[P2] a token the registry refuses early is refreshed once, and the request is sent again with the new one", () =>
    Effect.gen(function*() {
      const { client, seen } = tokenRegistry(300, (token) => token === "t1")
      const fetched = yield* withClient(client, (rc) => rc.getManifest(repo, "v1"), undefined, paced)
      assert.strictEqual(fetched.digest, sha256(manifest))
      assert.strictEqual(tokenRequests(seen), 2)
      assert.deepStrictEqual(seen.filter(isManifest).map((s) => s.headers["authorization"]), ["Bearer t1", "Bearer t2"])
    }))

  it.effect("[P2] a registry that refuses every token is asked twice, not in a loop", () =>
    Effect.gen(function*() {
      const { client, seen } = tokenRegistry(300, () => true)
      const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1"), undefined, paced))
      assert.oneOf(error._tag, ["MissingCredentials", "RegistryDenied"])
      assert.strictEqual(seen.filter(isManifest).length, 2)
    }))
})
