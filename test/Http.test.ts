/**
 * node/Http: the CLI's HttpClient. A body marked with a Node source (a pushed file) is piped from
 * that source; every other request goes through Node's client from @effect/platform-node.
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { PassThrough, Readable } from "node:stream"
import * as Http from "../src/node/Http.js"
import * as Body from "../src/registry/Body.js"
import * as TlsPolicy from "../src/registry/TlsPolicy.js"

interface Received {
  readonly method: string | undefined
  readonly body: Buffer
}

/** A loopback server that records each request's body and answers 201 with a Location. */
const server = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly received: Array<Received>; readonly http: Server }>((resume) => {
    const received: Array<Received> = []
    const http = createServer((req: IncomingMessage, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        received.push({ method: req.method, body: Buffer.concat(chunks) })
        res.writeHead(201, { location: "/v2/team/app/blobs/sha256:0", "docker-content-digest": "sha256:0" })
        res.end("created")
      })
      req.on("error", () => {})
    })
    http.listen(0, "127.0.0.1", () =>
      resume(Effect.succeed({ url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, received, http })))
  }),
  ({ http }) => Effect.sync(() => {
    http.closeAllConnections()
    http.close()
  })
)

const withClient = <A, E>(f: (client: HttpClient.HttpClient) => Effect.Effect<A, E>) =>
  Effect.flatMap(HttpClient.HttpClient, f).pipe(Effect.provide(Http.layer.pipe(Layer.provide(TlsPolicy.layerDefault))))

const put = (url: string, body: HttpBody.HttpBody) => HttpClientRequest.put(url).pipe(HttpClientRequest.setBody(body))

/** An upload whose source has sent 100 of its 1024 bytes and waits. */
const uploadUnderWay = Effect.gen(function*() {
  const { url } = yield* server
  const source = new PassThrough()
  const body = Body.withNodeSource(HttpBody.stream(Stream.empty, "application/octet-stream", 1024), () => source)
  const fiber = yield* Effect.fork(withClient((client) => client.execute(put(`${url}/upload`, body))))
  source.write(Buffer.alloc(100))
  yield* Effect.sleep("20 millis")
  return { fiber, source }
})

describe("the CLI's HttpClient", () => {
  it.scopedLive("a body marked with a Node source is sent from that source, and the answer comes back whole", () =>
    Effect.gen(function*() {
      const { received, url } = yield* server
      const fromFile = Buffer.alloc(3 * 1024 * 1024, 7)
      const body = Body.withNodeSource(
        HttpBody.stream(Stream.make(new TextEncoder().encode("the Effect stream")), "application/octet-stream", fromFile.length),
        () => Readable.from([fromFile.subarray(0, 1024 * 1024), fromFile.subarray(1024 * 1024)])
      )
      const response = yield* withClient((client) => client.execute(put(`${url}/upload`, body)))
      assert.strictEqual(response.status, 201)
      assert.strictEqual(response.headers["location"], "/v2/team/app/blobs/sha256:0")
      assert.strictEqual(yield* response.text, "created")
      assert.strictEqual(received.length, 1)
      assert.isTrue(received[0]!.body.equals(fromFile), "the registry got the Node source's bytes")
    }))

  it.scopedLive("an unmarked stream body is sent as the Effect stream", () =>
    Effect.gen(function*() {
      const { received, url } = yield* server
      const bytes = new TextEncoder().encode("the Effect stream")
      const response = yield* withClient((client) =>
        client.execute(put(`${url}/upload`, HttpBody.stream(Stream.make(bytes), "application/octet-stream", bytes.length)))
      )
      assert.strictEqual(response.status, 201)
      assert.strictEqual(received[0]!.body.toString(), "the Effect stream")
    }))

  it.scopedLive("a source that fails mid-way fails the request with a transport error instead of hanging", () =>
    Effect.gen(function*() {
      const { fiber, source } = yield* uploadUnderWay
      source.destroy(new Error("EIO: i/o error, read"))
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "RequestError")
    }))

  it.scopedLive("interrupting an upload destroys its source", () =>
    Effect.gen(function*() {
      const { fiber, source } = yield* uploadUnderWay
      yield* Fiber.interrupt(fiber)
      assert.isTrue(source.destroyed)
    }))
})
