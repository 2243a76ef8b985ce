/**
 * node/Http: the CLI's HttpClient. A body marked with a Node source (a pushed file) is piped from
 * that source; every other request goes through Node's client from @effect/platform-node.
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
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

/** A loopback server whose requests `handle` answers (or not), and the sockets it accepted. */
const serverWith = (handle: (req: IncomingMessage, res: import("node:http").ServerResponse) => void) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly http: Server }>((resume) => {
      const http = createServer(handle)
      http.listen(0, "127.0.0.1", () => resume(Effect.succeed({ url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, http })))
    }),
    ({ http }) => Effect.sync(() => (http.closeAllConnections(), http.close()))
  )

/** The client with [H4]'s knobs set through Config, as a test sets them. */
const withTimeouts = <A, E>(knobs: Record<string, string>, f: (client: HttpClient.HttpClient) => Effect.Effect<A, E>) =>
  withClient(f).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(knobs)))))

describe("[H4] the CLI's HttpClient: time-outs", () => {
  it.scopedLive("a server that takes the request and never answers fails it with ETIMEDOUT after the idle time-out", () =>
    Effect.gen(function*() {
      const { url } = yield* serverWith(() => {})
      const started = Date.now()
      const error = yield* Effect.flip(withTimeouts({ MICROAGENT_IDLE_TIMEOUT_MS: "200" }, (client) => client.get(`${url}/v2/`)))
      assert.strictEqual(error._tag, "RequestError")
      assert.include(String((error.cause as Error).message), "no data from 127.0.0.1")
      assert.strictEqual((error.cause as { code?: string }).code, "ETIMEDOUT")
      assert.isBelow(Date.now() - started, 3000)
    }))

  it.scopedLive("after an upload's last byte, a registry may take several idle time-outs to answer (committing a large blob), but not forever", () =>
    Effect.gen(function*() {
      const put = (client: HttpClient.HttpClient, url: string) =>
        client.execute(HttpClientRequest.put(`${url}/upload`).pipe(HttpClientRequest.bodyUint8Array(new Uint8Array(1024))))
      // Answers 3 idle time-outs after the whole upload arrived.
      const { url: slow } = yield* serverWith((req, res) => {
        req.resume()
        req.on("end", () => setTimeout(() => (res.writeHead(201), res.end()), 600))
      })
      const answered = yield* withTimeouts({ MICROAGENT_IDLE_TIMEOUT_MS: "200" }, (client) => put(client, slow))
      assert.strictEqual(answered.status, 201)
      // Never answers: given up on after ten idle time-outs.
      const { url: silent } = yield* serverWith((req) => void req.resume())
      const started = Date.now()
      const error = yield* Effect.flip(withTimeouts({ MICROAGENT_IDLE_TIMEOUT_MS: "200" }, (client) => put(client, silent)))
      assert.strictEqual(error._tag, "RequestError")
      assert.isAtLeast(Date.now() - started, 1800)
      assert.isBelow(Date.now() - started, 6000)
    }))

  it.scopedLive("a body that stalls mid-way breaks off after the idle time-out, saying why", () =>
    Effect.gen(function*() {
      const { url } = yield* serverWith((_req, res) => {
        res.writeHead(200, { "content-length": "100" })
        res.write("half")
      })
      const error = yield* withTimeouts({ MICROAGENT_IDLE_TIMEOUT_MS: "200" }, (client) =>
        client.get(`${url}/blob`).pipe(Effect.flatMap((response) => Effect.flip(Body.forEach(response, () => {})))))
      assert.strictEqual(error._tag, "BodyCut")
      assert.include((error as Body.BodyCut).reason, "no data from 127.0.0.1")
    }))

  it.scopedLive("a TLS handshake that never gets an answer fails after the connect time-out", () =>
    Effect.gen(function*() {
      // Accepts the TCP connection and never says a word: the TLS handshake waits for nothing.
      const { createServer: tcp } = yield* Effect.promise(() => import("node:net"))
      const silent = tcp(() => {})
      const sockets = new Set<import("node:net").Socket>()
      silent.on("connection", (socket) => (sockets.add(socket), socket.on("error", () => {})))
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void silent.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.sync(() => (sockets.forEach((s) => s.destroy()), silent.close()))
      )
      const port = (silent.address() as AddressInfo).port
      const error = yield* Effect.flip(withTimeouts(
        { MICROAGENT_CONNECT_TIMEOUT_MS: "200", MICROAGENT_IDLE_TIMEOUT_MS: "60000" },
        (client) => client.get(`https://127.0.0.1:${port}/v2/`)
      ))
      assert.include(String((error.cause as Error).message), `could not connect to 127.0.0.1:${port} within 200 ms`)
    }))

  it.scopedLive("a kept-alive connection taken again keeps the idle time-out, not the server's shorter Keep-Alive hint", () =>
    Effect.gen(function*() {
      let requests = 0
      const { url } = yield* serverWith((_req, res) => {
        // The hint makes Node time a free socket out after 1 s; the second answer takes 1.5 s.
        const answer = () => (res.writeHead(200, { "keep-alive": "timeout=2", "content-length": "2" }), res.end("ok"))
        if (++requests === 1) answer()
        else setTimeout(answer, 1500)
      })
      const text = yield* withTimeouts({ MICROAGENT_IDLE_TIMEOUT_MS: "5000" }, (client) =>
        Effect.gen(function*() {
          yield* Effect.flatMap(client.get(`${url}/first`), (r) => r.text)
          return yield* Effect.flatMap(client.get(`${url}/second`), (r) => r.text)
        }))
      assert.strictEqual(text, "ok")
      assert.strictEqual(requests, 2)
    }))
})
