/**
 * RegistryClient over a fake HttpClient (no network): blob verification ([P5]), manifest caps
 * and digests ([P4]), upload Location resolution ([P6]), tag-list pagination ([P9]) and retries
 * honouring Retry-After ([P7]).
 */
import type * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { CredentialResolver } from "../src/CredentialResolver.js"
import * as Credential from "../src/domain/Credential.js"
import * as Manifest from "../src/domain/Manifest.js"
import * as TlsPolicy from "../src/registry/TlsPolicy.js"
import * as RC from "../src/RegistryClient.js"

// ---------------------------------------------------------------------------------------------
// A fake registry behind a fake HttpClient

const HOST = "registry.example.com"
const repo: RC.Repository = { registry: HOST, repository: "x" }

interface Seen {
  readonly method: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly body: Uint8Array | undefined
}

const concat = (parts: Iterable<Uint8Array>): Uint8Array => new Uint8Array(Buffer.concat([...parts]))

const readBody = (body: HttpBody.HttpBody): Effect.Effect<Uint8Array | undefined> => {
  switch (body._tag) {
    case "Empty":
      return Effect.succeed(undefined)
    case "Uint8Array":
      return Effect.succeed(body.body)
    case "Stream":
      return Stream.runCollect(body.stream).pipe(Effect.map((chunks) => concat(Chunk.toReadonlyArray(chunks))), Effect.orDie)
    case "Raw":
      return Effect.succeed(typeof body.body === "string" ? new TextEncoder().encode(body.body) : undefined)
    case "FormData":
      return Effect.succeed(undefined)
  }
}

/**
 * `route` answers everything but `GET /v2/` (always 200: an open registry). Every request,
 * the ping included, is recorded in `seen` with its body read.
 */
const fakeRegistry = (route: (request: Seen) => Response | undefined) => {
  const seen: Array<Seen> = []
  const client = HttpClient.make((request: HttpClientRequest.HttpClientRequest, url: URL) =>
    Effect.gen(function*() {
      const entry: Seen = { method: request.method, url, headers: request.headers, body: yield* readBody(request.body) }
      seen.push(entry)
      if (request.method === "GET" && url.pathname === "/v2/") {
        return HttpClientResponse.fromWeb(request, new Response("{}", { status: 200, headers: { "content-type": "application/json" } }))
      }
      const answer = route(entry) ??
        new Response(JSON.stringify({ errors: [{ code: "NOT_FOUND", message: `fake: no route for ${request.method} ${url.href}` }] }), {
          status: 404
        })
      return HttpClientResponse.fromWeb(request, answer)
    })
  )
  return { client, seen }
}

const anonymousResolver = Layer.succeed(CredentialResolver, {
  authFile: undefined,
  resolve: () => Effect.succeed(Credential.anonymous),
  shadowing: () => Effect.succeed(Option.none()),
  list: Effect.succeed([]),
  listReadable: Effect.succeed({ listings: [], unreadable: [] })
})

/** Runs `f` with a RegistryClient whose HttpClient is `client`. */
const withClient = <A, E>(client: HttpClient.HttpClient, f: (rc: RC.RegistryClientService) => Effect.Effect<A, E>) =>
  Effect.flatMap(RC.RegistryClient, f).pipe(
    Effect.provide(
      RC.layer.pipe(
        Layer.provide(Layer.mergeAll(TlsPolicy.layerDefault, anonymousResolver, Layer.succeed(HttpClient.HttpClient, client)))
      )
    )
  )

const sha256 = (bytes: Uint8Array): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`

/** A web body delivered in pieces, so hashing has to work across chunks. */
const chunked = (bytes: Uint8Array, size = 4096): ReadableStream<Uint8Array> =>
  new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += size) controller.enqueue(bytes.slice(i, i + size))
      controller.close()
    }
  })

/** Cheap deterministic bytes from a seed (xorshift32), so fast-check shrinks a seed, not 64 KiB. */
const bytesFrom = (seed: number, length: number): Uint8Array => {
  const out = new Uint8Array(length)
  let x = (seed | 0) || 0x9e3779b9
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

const blobPath = (digest: string) => `/v2/x/blobs/${digest}`

// ---------------------------------------------------------------------------------------------

describe("RegistryClient", () => {
  describe("[P5] blobs are verified while streamed", () => {
    const blobCase = FastCheck.integer({ min: 1, max: 64 * 1024 }).chain((length) =>
      FastCheck.record({
        length: FastCheck.constant(length),
        seed: FastCheck.integer(),
        index: FastCheck.integer({ min: 0, max: length - 1 })
      })
    )

    it.effect.prop(
      "[P5][E7] a flipped byte, a byte short or a byte too many fails with DigestMismatch; the intact body yields the exact bytes",
      { blob: blobCase },
      ({ blob: { index, length, seed } }) =>
        Effect.gen(function*() {
          const bytes = bytesFrom(seed, length)
          const descriptor: Manifest.Descriptor = { mediaType: Manifest.MediaType.OciLayer, digest: sha256(bytes), size: length }
          const flipped = bytes.slice()
          flipped[index] = flipped[index]! ^ 0xff
          const bodies: Record<string, Uint8Array> = {
            intact: bytes,
            flipped,
            short: bytes.slice(0, length - 1),
            long: concat([bytes, new Uint8Array([bytes[index]!])])
          }
          let serve = "intact"
          const { client } = fakeRegistry((req) =>
            req.method === "GET" && req.url.pathname === blobPath(descriptor.digest)
              ? new Response(chunked(bodies[serve]!), { status: 200, headers: { "content-type": "application/octet-stream" } })
              : undefined
          )
          yield* withClient(client, (rc) =>
            Effect.gen(function*() {
              const got = concat(Chunk.toReadonlyArray(yield* Stream.runCollect(rc.blob(repo, descriptor))))
              expect(got.length).toBe(length)
              expect(Buffer.from(got).equals(Buffer.from(bytes))).toBe(true)
              for (const variant of ["flipped", "short", "long"]) {
                serve = variant
                const error = yield* Stream.runDrain(rc.blob(repo, descriptor)).pipe(Effect.flip)
                expect(error._tag, `${variant} body`).toBe("DigestMismatch")
              }
            })
          )
        }),
      { fastCheck: { numRuns: 40 } }
    )
  })

  describe("[P4] manifests", () => {
    const image = {
      schemaVersion: 2,
      mediaType: Manifest.MediaType.OciManifest,
      config: { mediaType: Manifest.MediaType.OciConfig, digest: `sha256:${"a".repeat(64)}`, size: 2 },
      layers: [{ mediaType: Manifest.MediaType.OciLayer, digest: `sha256:${"b".repeat(64)}`, size: 3 }]
    }
    const manifestRoute = (body: Uint8Array | (() => Uint8Array), headers: Record<string, string> = {}) => (req: Seen) =>
      req.method === "GET" && req.url.pathname.startsWith("/v2/x/manifests/")
        ? new Response(typeof body === "function" ? body() : body, {
          status: 200,
          headers: { "content-type": Manifest.MediaType.OciManifest, ...headers }
        })
        : undefined

    /** A valid manifest padded with trailing whitespace (still the same JSON) to `size` bytes. */
    const padded = (size: number) => {
      const json = JSON.stringify(image)
      return new TextEncoder().encode(json + " ".repeat(size - json.length))
    }

    it.effect("[P4] sends an Accept listing the four supported types", () =>
      Effect.gen(function*() {
        const bytes = new TextEncoder().encode(JSON.stringify(image))
        const { client, seen } = fakeRegistry(manifestRoute(bytes))
        const got = yield* withClient(client, (rc) => rc.getManifest(repo, "v1"))
        expect(got.digest).toBe(sha256(bytes))
        expect(got.manifest._tag).toBe("Image")
        const accept = seen.find((s) => s.url.pathname === "/v2/x/manifests/v1")?.headers["accept"] ?? ""
        expect(new Set(accept.split(",").map((s) => s.trim()))).toEqual(new Set(Manifest.accept.split(", ")))
      }))

    it.effect("[P4] a body of exactly 4 MiB is read", () =>
      Effect.gen(function*() {
        const bytes = padded(Manifest.maxBytes)
        const { client } = fakeRegistry(manifestRoute(bytes))
        const got = yield* withClient(client, (rc) => rc.getManifest(repo, "v1"))
        expect(got.bytes.length).toBe(Manifest.maxBytes)
        expect(got.digest).toBe(sha256(bytes))
      }))

    it.effect("[P4] a manifest body larger than 4 MiB is refused (RegistryUnavailable naming the cap)", () =>
      Effect.gen(function*() {
        const bytes = padded(Manifest.maxBytes + 1)
        const { client } = fakeRegistry((req) =>
          req.method === "GET" && req.url.pathname === "/v2/x/manifests/v1"
            ? new Response(chunked(bytes, 64 * 1024), { status: 200, headers: { "content-type": Manifest.MediaType.OciManifest } })
            : undefined
        )
        const error = yield* withClient(client, (rc) => rc.getManifest(repo, "v1")).pipe(Effect.flip)
        expect(error._tag).toBe("RegistryUnavailable")
        expect(error.message).toMatch(/4 MiB/)
      }))

    it.effect("[P4][E7] a manifest fetched by digest whose bytes hash differently is a DigestMismatch", () =>
      Effect.gen(function*() {
        const asked = new TextEncoder().encode(JSON.stringify(image))
        const served = new TextEncoder().encode(JSON.stringify({ ...image, annotations: { tampered: "yes" } }))
        const { client, seen } = fakeRegistry(manifestRoute(served, { "docker-content-digest": sha256(asked) }))
        const error = yield* withClient(client, (rc) => rc.getManifest(repo, sha256(asked))).pipe(Effect.flip)
        expect(error._tag).toBe("DigestMismatch")
        if (error._tag !== "DigestMismatch") return
        expect(error.expected).toBe(sha256(asked))
        expect(error.actual).toBe(sha256(served))
        expect(seen.some((s) => s.url.pathname === `/v2/x/manifests/${sha256(asked)}`)).toBe(true)
      }))

    it.effect("[P4][E7] a Docker-Content-Digest header that does not match the bytes is a DigestMismatch", () =>
      Effect.gen(function*() {
        const bytes = new TextEncoder().encode(JSON.stringify(image))
        const wrong = `sha256:${"0".repeat(64)}`
        const { client } = fakeRegistry(manifestRoute(bytes, { "docker-content-digest": wrong }))
        const error = yield* withClient(client, (rc) => rc.getManifest(repo, "v1")).pipe(Effect.flip)
        expect(error._tag).toBe("DigestMismatch")
        if (error._tag !== "DigestMismatch") return
        expect(error.expected).toBe(wrong)
        expect(error.actual).toBe(sha256(bytes))
      }))

    it.effect("[P4] a matching Docker-Content-Digest is accepted", () =>
      Effect.gen(function*() {
        const bytes = new TextEncoder().encode(JSON.stringify(image))
        const { client } = fakeRegistry(manifestRoute(bytes, { "docker-content-digest": sha256(bytes) }))
        const got = yield* withClient(client, (rc) => rc.getManifest(repo, sha256(bytes)))
        expect(got.digest).toBe(sha256(bytes))
      }))
  })

  describe("[P6] upload Location is resolved against the response that carried it, query kept", () => {
    const blob = new TextEncoder().encode("layer bytes for the upload test\n")
    const descriptor: Manifest.Descriptor = { mediaType: Manifest.MediaType.OciLayer, digest: sha256(blob), size: blob.length }

    /** HEAD 404, POST 202 with `location`, PUT 201 only at `expected` (origin, path, state=1, digest). */
    const uploadRoute = (location: string, expected: { origin: string; pathname: string }) => (req: Seen) => {
      if (req.method === "HEAD" && req.url.pathname === `/v2/x/blobs/${descriptor.digest}`) return new Response(null, { status: 404 })
      if (req.method === "POST" && req.url.pathname === "/v2/x/blobs/uploads/") {
        return new Response(null, { status: 202, headers: { location, "docker-upload-uuid": "abc" } })
      }
      if (
        req.method === "PUT" && req.url.origin === expected.origin && req.url.pathname === expected.pathname &&
        req.url.searchParams.get("state") === "1" && req.url.searchParams.get("digest") === descriptor.digest
      ) {
        return new Response(null, { status: 201, headers: { location: `/v2/x/blobs/${descriptor.digest}` } })
      }
      return new Response(JSON.stringify({ errors: [{ code: "BLOB_UPLOAD_UNKNOWN", message: `unexpected ${req.method} ${req.url.href}` }] }), {
        status: 404
      })
    }

    const expectOnePut = (seen: ReadonlyArray<Seen>, origin: string) => {
      const puts = seen.filter((s) => s.method === "PUT")
      expect(puts.map((p) => p.url.href)).toHaveLength(1)
      const put = puts[0]!
      expect(put.url.origin).toBe(origin)
      expect(put.url.pathname).toBe("/v2/x/blobs/uploads/abc")
      // The registry's own query is kept, and digest added to it.
      expect([...put.url.searchParams.keys()]).toEqual(["state", "digest"])
      expect(put.url.searchParams.get("state")).toBe("1")
      expect(put.url.searchParams.get("digest")).toBe(descriptor.digest)
      expect(put.body !== undefined && Buffer.from(put.body).equals(Buffer.from(blob))).toBe(true)
    }

    it.effect("[P6] a relative Location (/v2/x/blobs/uploads/abc?state=1) → PUT https://<host>/v2/x/blobs/uploads/abc?state=1&digest=…", () =>
      Effect.gen(function*() {
        const origin = `https://${HOST}`
        const { client, seen } = fakeRegistry(uploadRoute("/v2/x/blobs/uploads/abc?state=1", { origin, pathname: "/v2/x/blobs/uploads/abc" }))
        const outcome = yield* withClient(client, (rc) => rc.uploadBlob(repo, descriptor, () => Stream.make(blob)))
        expect(outcome).toBe("uploaded")
        expectOnePut(seen, origin)
        // HEAD first ([P6]).
        expect(seen.filter((s) => s.url.pathname !== "/v2/").map((s) => s.method)).toEqual(["HEAD", "POST", "PUT"])
      }))

    it.effect("[P6] an absolute Location on another port of the same host → PUT there, query kept", () =>
      Effect.gen(function*() {
        const origin = `https://${HOST}:5443`
        const { client, seen } = fakeRegistry(
          uploadRoute(`${origin}/v2/x/blobs/uploads/abc?state=1`, { origin, pathname: "/v2/x/blobs/uploads/abc" })
        )
        const outcome = yield* withClient(client, (rc) => rc.uploadBlob(repo, descriptor, () => Stream.make(blob)))
        expect(outcome).toBe("uploaded")
        expectOnePut(seen, origin)
      }))

    it.effect("[P6] a blob the registry already has (HEAD 200) is not uploaded", () =>
      Effect.gen(function*() {
        const { client, seen } = fakeRegistry((req) =>
          req.method === "HEAD" && req.url.pathname === `/v2/x/blobs/${descriptor.digest}`
            ? new Response(null, { status: 200, headers: { "content-length": String(blob.length) } })
            : undefined
        )
        const outcome = yield* withClient(client, (rc) => rc.uploadBlob(repo, descriptor, () => Stream.make(blob)))
        expect(outcome).toBe("exists")
        expect(seen.filter((s) => s.method !== "GET").map((s) => s.method)).toEqual(["HEAD"])
      }))
  })

  describe("[P9] tag lists", () => {
    it.effect("[P9] follows Link rel=\"next\" verbatim across 3 pages and returns every tag in order", () =>
      Effect.gen(function*() {
        const all = Array.from({ length: 250 }, (_, i) => `t${String(i).padStart(3, "0")}`)
        const { client, seen } = fakeRegistry((req) => {
          if (req.method !== "GET" || req.url.pathname !== "/v2/x/tags/list") return undefined
          const n = Number(req.url.searchParams.get("n") ?? "1000")
          const last = req.url.searchParams.get("last")
          const start = last === null ? 0 : all.indexOf(last) + 1
          const page = all.slice(start, start + n)
          const more = start + n < all.length
          return new Response(JSON.stringify({ name: "x", tags: page }), {
            status: 200,
            headers: {
              "content-type": "application/json",
              ...(more ? { link: `</v2/x/tags/list?n=${n}&last=${page[page.length - 1]}>; rel="next"` } : {})
            }
          })
        })
        const tags = yield* withClient(client, (rc) => rc.listTags(repo))
        expect(tags).toEqual(all)
        const pages = seen.filter((s) => s.url.pathname === "/v2/x/tags/list")
        expect(pages.map((p) => `${p.url.pathname}${p.url.search}`)).toEqual([
          "/v2/x/tags/list?n=100",
          "/v2/x/tags/list?n=100&last=t099",
          "/v2/x/tags/list?n=100&last=t199"
        ])
        for (const p of pages) expect(Number(p.url.searchParams.get("n"))).toBeLessThanOrEqual(100)
      }))
  })

  describe("[P7] retries", () => {
    it.live("[P7] a manifest GET answered 503 with Retry-After: 0 twice, then 200, succeeds", () =>
      Effect.gen(function*() {
        const bytes = new TextEncoder().encode(JSON.stringify({
          schemaVersion: 2,
          mediaType: Manifest.MediaType.OciManifest,
          config: { mediaType: Manifest.MediaType.OciConfig, digest: `sha256:${"a".repeat(64)}`, size: 2 },
          layers: []
        }))
        let calls = 0
        const { client } = fakeRegistry((req) => {
          if (req.method !== "GET" || req.url.pathname !== "/v2/x/manifests/v1") return undefined
          calls++
          return calls <= 2
            ? new Response("busy", { status: 503, headers: { "retry-after": "0" } })
            : new Response(bytes, { status: 200, headers: { "content-type": Manifest.MediaType.OciManifest } })
        })
        const started = Date.now()
        const got = yield* withClient(client, (rc) => rc.getManifest(repo, "v1"))
        expect(got.digest).toBe(sha256(bytes))
        expect(calls).toBe(3)
        // Retry-After: 0 is honoured: no exponential backoff on top of it.
        expect(Date.now() - started).toBeLessThan(2_000)
      }))
  })
})
