/**
 * node/BlobFiles: a pushed file is read into a few buffers that come back once the socket has
 * taken them (so a push's memory does not grow with the collector's lag), and never one that is
 * still on its way: the bytes a registry receives are the file's, however slowly it reads.
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { createHash, randomFillSync } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BlobFiles } from "../src/BlobFiles.js"
import * as NodeBlobFiles from "../src/node/BlobFiles.js"
import * as Http from "../src/node/Http.js"
import * as Body from "../src/registry/Body.js"
import * as TlsPolicy from "../src/registry/TlsPolicy.js"

const MiB = 1024 * 1024

/** A file of `size` random bytes in a temp folder removed with the scope, and its digest. */
const randomFile = (size: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = mkdtempSync(join(tmpdir(), "microagent-upload-"))
      const bytes = randomFillSync(Buffer.allocUnsafe(size))
      const file = join(dir, "blob")
      writeFileSync(file, bytes)
      return { dir, file, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, size }
    }),
    ({ dir }) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** A loopback server that reads each request body slowly (a pause every 1 MiB) and hashes it. */
const slowServer = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly digests: Array<string>; readonly http: Server }>((resume) => {
    const digests: Array<string> = []
    const http = createServer((req, res) => {
      const hash = createHash("sha256")
      let sinceRest = 0
      req.on("data", (chunk: Buffer) => {
        hash.update(chunk)
        sinceRest += chunk.length
        if (sinceRest < MiB) return
        sinceRest = 0
        req.pause()
        setTimeout(() => req.resume(), 5)
      })
      req.on("end", () => {
        digests.push(`sha256:${hash.digest("hex")}`)
        res.writeHead(201)
        res.end()
      })
    })
    http.listen(0, "127.0.0.1", () => resume(Effect.succeed({ url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, digests, http })))
  }),
  ({ http }) => Effect.sync(() => (http.closeAllConnections(), http.close()))
)

const uploadSource = Effect.map(
  Effect.provide(BlobFiles, NodeBlobFiles.layer),
  (files) => files.uploadSource!
)

/** A check that finds nothing wrong: these tests are about the bytes, not the digest check. */
const noCheck = { add: () => undefined, end: () => undefined }

describe("Node's blob files: a pushed file's buffers", () => {
  it.scopedLive("[P8] a 24 MiB file sent to a slow server arrives whole, read through a handful of buffers", () =>
    Effect.gen(function*() {
      const blob = yield* randomFile(24 * MiB)
      const { digests, url } = yield* slowServer
      const open = yield* uploadSource
      const buffers = new Set<ArrayBufferLike>()
      const source = () => {
        const stream = open(blob.file, { mediaType: "application/octet-stream", digest: blob.digest, size: blob.size }, noCheck, () => {})
        stream.on("data", (chunk: Uint8Array) => buffers.add(chunk.buffer))
        return stream
      }
      const body = Body.withNodeSource(HttpBody.stream(Stream.empty, "application/octet-stream", blob.size), source)
      const client = yield* Effect.provide(HttpClient.HttpClient, Http.layer.pipe(Layer.provide(TlsPolicy.layerDefault)))
      const response = yield* client.execute(HttpClientRequest.put(`${url}/upload`).pipe(HttpClientRequest.setBody(body)))
      assert.strictEqual(response.status, 201)
      assert.deepStrictEqual(digests, [blob.digest], "the server received exactly the file's bytes")
      // 96 reads of 256 KiB; without buffers coming back, each would have been a new one.
      assert.isAtMost(buffers.size, 12, `read through ${buffers.size} buffers`)
    }))

  it.scopedLive("[P8] a reader that keeps the chunks (no recycling) gets buffers of their own, so what it kept stays the file's bytes", () =>
    Effect.gen(function*() {
      const blob = yield* randomFile(4 * MiB + 123)
      const open = yield* uploadSource
      const stream = open(blob.file, { mediaType: "application/octet-stream", digest: blob.digest, size: blob.size }, noCheck, () => {})
      const chunks = yield* Effect.promise(async () => {
        const kept: Array<Buffer> = []
        for await (const chunk of stream) kept.push(chunk as Buffer)
        return kept
      })
      const whole = Buffer.concat(chunks)
      assert.strictEqual(`sha256:${createHash("sha256").update(whole).digest("hex")}`, blob.digest)
      assert.strictEqual(new Set(chunks.map((c) => c.buffer)).size, chunks.length)
    }))
})
