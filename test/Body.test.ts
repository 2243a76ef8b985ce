/**
 * registry/Body: how a pull reads a response body ([P5]). Node's client hands over a Node stream,
 * read directly; any other client's body goes through `response.stream`. Both must deliver every
 * byte in order, wait for a busy consumer, and tell a cut connection from a refused chunk.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { PassThrough } from "node:stream"
import * as Http from "../src/node/Http.js"
import * as Body from "../src/registry/Body.js"
import * as TlsPolicy from "../src/registry/TlsPolicy.js"

const request = HttpClientRequest.get("http://127.0.0.1/v2/team/app/blobs/sha256:0")

/** A response whose `source` is a Node stream, as @effect/platform-node's client gives. */
const nodeResponse = (source: PassThrough) =>
  ({ ...HttpClientResponse.fromWeb(request, new Response(null)), source }) as unknown as HttpClientResponse.HttpClientResponse

const webResponse = (chunks: ReadonlyArray<Uint8Array>) =>
  HttpClientResponse.fromWeb(
    request,
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(chunk)
          controller.close()
        }
      })
    )
  )

const bytes = (...values: ReadonlyArray<number>) => new Uint8Array(values)

describe("Body.forEach over a Node stream", () => {
  it.live("delivers every chunk in order and ends", () =>
    Effect.gen(function*() {
      const source = new PassThrough()
      const seen: Array<number> = []
      const fiber = yield* Effect.fork(Body.forEach(nodeResponse(source), (chunk) => void seen.push(...chunk)))
      source.write(bytes(1, 2))
      source.write(bytes(3))
      source.end(bytes(4, 5))
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(seen, [1, 2, 3, 4, 5])
    }))

  it.live("a pending promise from the consumer pauses the body until it settles (backpressure)", () =>
    Effect.gen(function*() {
      const source = new PassThrough()
      let release: () => void = () => {}
      const seen: Array<number> = []
      const fiber = yield* Effect.fork(Body.forEach(nodeResponse(source), (chunk) => {
        seen.push(...chunk)
        if (seen.length === 1) return new Promise<void>((resolve) => release = resolve)
      }))
      source.write(bytes(1))
      source.end(bytes(2))
      yield* Effect.sleep("20 millis")
      assert.deepStrictEqual(seen, [1], "the second chunk waits for the first promise")
      assert.isTrue(source.isPaused())
      release()
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(seen, [1, 2])
    }))

  it.live("a connection error mid-body is a BodyCut with its reason", () =>
    Effect.gen(function*() {
      const source = new PassThrough()
      const fiber = yield* Effect.fork(Body.forEach(nodeResponse(source), () => {}))
      source.write(bytes(1))
      source.destroy(new Error("socket hang up"))
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "BodyCut")
      assert.include((error as Body.BodyCut).reason, "socket hang up")
    }))

  it.live("a body closed before its end is a BodyCut", () =>
    Effect.gen(function*() {
      const source = new PassThrough()
      const fiber = yield* Effect.fork(Body.forEach(nodeResponse(source), () => {}))
      source.write(bytes(1))
      source.destroy()
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "BodyCut")
    }))

  it.live("a rejected promise stops the body with ChunkRefused carrying the cause, and destroys it", () =>
    Effect.gen(function*() {
      const source = new PassThrough()
      const disk = new Error("ENOSPC: no space left on device")
      const fiber = yield* Effect.fork(Body.forEach(nodeResponse(source), () => Promise.reject(disk)))
      source.write(bytes(1))
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "ChunkRefused")
      assert.strictEqual((error as Body.ChunkRefused).cause, disk)
      assert.isTrue(source.destroyed)
    }))

  it.live("interrupting the reader destroys the body, so its connection is not left half-read", () =>
    Effect.gen(function*() {
      const source = new PassThrough()
      const fiber = yield* Effect.fork(Body.forEach(nodeResponse(source), () => {}))
      source.write(bytes(1))
      yield* Effect.sleep("10 millis")
      yield* Fiber.interrupt(fiber)
      assert.isTrue(source.destroyed)
    }))
})

describe("Body.forEach over any other client's body", () => {
  it.effect("delivers every chunk in order", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      yield* Body.forEach(webResponse([bytes(1, 2), bytes(3)]), (chunk) => Promise.resolve(void seen.push(...chunk)))
      assert.deepStrictEqual(seen, [1, 2, 3])
    }))

  it.effect("a throwing or rejecting consumer gives ChunkRefused, never a defect", () =>
    Effect.gen(function*() {
      const thrown = yield* Effect.flip(Body.forEach(webResponse([bytes(1)]), () => {
        throw new Error("too long")
      }))
      assert.strictEqual(thrown._tag, "ChunkRefused")
      const rejected = yield* Effect.flip(Body.forEach(webResponse([bytes(1)]), () => Promise.reject(new Error("disk"))))
      assert.strictEqual(rejected._tag, "ChunkRefused")
    }))
})

describe("Body.forEach with the CLI's HttpClient", () => {
  it.live("reads the response of a real request directly, through HttpClient's wrapper, every byte in order", () =>
    Effect.gen(function*() {
      const payload = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251)
      const server = createServer((_, res) => res.end(payload))
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.sync(() => server.close())
      )
      const port = (server.address() as AddressInfo).port
      const client = yield* HttpClient.HttpClient
      const response = yield* client.get(`http://127.0.0.1:${port}/blob`)
      // The fast path must survive the platform's wrapping; if this fails, pulls silently fall back.
      assert.isTrue(Body.readsDirectly(response))
      const received: Array<Uint8Array> = []
      yield* Body.forEach(response, (chunk) => void received.push(chunk))
      assert.isTrue(Buffer.concat(received).equals(Buffer.from(payload)))
    }).pipe(Effect.scoped, Effect.provide(Http.layer.pipe(Layer.provide(TlsPolicy.layerDefault)))))
})

/** A web body that never ends, counting what was pulled from it. */
const endlessWeb = (headers: Record<string, string> = {}) => {
  const pulled = { bytes: 0, cancelled: false }
  const response = HttpClientResponse.fromWeb(
    request,
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled.bytes += 1024
          controller.enqueue(new Uint8Array(1024))
        },
        cancel() {
          pulled.cancelled = true
        }
      }),
      { status: 404, headers }
    )
  )
  return { response, pulled }
}

describe("[H2] small bodies, capped", () => {
  it.live("readUpTo reads a body within its cap whole, and stops one that runs past it, destroying it", () =>
    Effect.gen(function*() {
      const small = new PassThrough()
      small.end(Buffer.from("hello"))
      assert.strictEqual(Buffer.from(yield* Body.readUpTo(nodeResponse(small), 5)).toString(), "hello")

      const endless = new PassThrough()
      const fiber = yield* Effect.fork(Body.readUpTo(nodeResponse(endless), 4))
      endless.write(bytes(1, 2, 3))
      endless.write(bytes(4, 5))
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "BodyTooLarge")
      assert.isTrue(endless.destroyed)
    }))

  it.live("readUpTo over another client's endless body stops past the cap", () =>
    Effect.gen(function*() {
      const { pulled, response } = endlessWeb()
      const error = yield* Effect.flip(Body.readUpTo(response, 10 * 1024))
      assert.strictEqual(error._tag, "BodyTooLarge")
      assert.isBelow(pulled.bytes, 64 * 1024)
    }))

  it.live("discard reads a body declared small (keeping the connection) and destroys any other unread", () =>
    Effect.gen(function*() {
      const declared = new PassThrough()
      const small = { ...nodeResponse(declared), headers: { "content-length": "3" }, status: 307, request } as unknown as HttpClientResponse.HttpClientResponse
      const drained = yield* Effect.fork(Body.discard(small))
      declared.end(bytes(1, 2, 3))
      yield* Fiber.join(drained)
      assert.isTrue(declared.readableEnded, "a small body is read to its end")

      const unknown = new PassThrough()
      unknown.write(bytes(1))
      yield* Body.discard({ ...nodeResponse(unknown), headers: {}, status: 307, request } as unknown as HttpClientResponse.HttpClientResponse)
      assert.isTrue(unknown.destroyed, "a body of unknown length is destroyed at once")
      assert.isFalse(unknown.readableEnded)
      assert.strictEqual(unknown.readableLength, 1, "and not read")
    }))

  it.live("capped: text and json of an endless body fail past the cap, with a message saying so", () =>
    Effect.gen(function*() {
      const { pulled, response } = endlessWeb({ "content-type": "application/json" })
      const capped = Body.capped(response, 16 * 1024)
      assert.strictEqual(capped.status, 404, "everything else is the response's own")
      const error = yield* Effect.flip(capped.json)
      assert.strictEqual(error._tag, "ResponseError")
      assert.include(error.message, "body larger than 16 KiB")
      assert.isBelow(pulled.bytes, 64 * 1024)
    }))

  it.effect("capped: a body within the cap reads as usual, and a second reader gets the same text", () =>
    Effect.gen(function*() {
      const capped = Body.capped(webResponse([new TextEncoder().encode(`{"errors":`), new TextEncoder().encode(`[]}`)]), 1024)
      assert.deepStrictEqual(yield* capped.json, { errors: [] })
      assert.strictEqual(yield* capped.text, `{"errors":[]}`)
    }))
})
