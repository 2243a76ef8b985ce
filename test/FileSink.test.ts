/**
 * storage/FileSink: where a pulled blob's bytes land before they are verified and committed
 * ([P5], [P8]: memory does not grow with blob size).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { execFileSync } from "node:child_process"
import { createReadStream, existsSync } from "node:fs"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as FileSink from "../src/node/FileSink.js"

const scratch = Effect.acquireRelease(
  Effect.promise(() => mkdtemp(join(tmpdir(), "microagent-filesink-"))),
  (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
)

describe("FileSink", () => {
  it.scoped("writes the chunks in order, and the file holds exactly them once closed", () =>
    Effect.gen(function*() {
      const file = join(yield* scratch, "blob")
      const sink = yield* FileSink.open(file)
      const chunks = Array.from({ length: 40 }, (_, i) => new Uint8Array(64 * 1024).fill(i))
      for (const chunk of chunks) {
        const pending = sink.write(chunk)
        if (pending !== undefined) yield* Effect.promise(() => pending)
      }
      yield* sink.close
      const written = yield* Effect.promise(() => readFile(file))
      assert.isTrue(written.equals(Buffer.concat(chunks)))
    }))

  it.scoped("a blob larger than the 64 MiB between two flushes to disk: every byte lands in order, and close waits for the flush", () =>
    Effect.gen(function*() {
      const file = join(yield* scratch, "blob")
      const sink = yield* FileSink.open(file)
      const expected = createHash("sha256")
      const chunk = new Uint8Array(1024 * 1024)
      for (let i = 0; i < 150; i++) {
        chunk.fill(i)
        expected.update(chunk)
        const pending = sink.write(Uint8Array.from(chunk))
        if (pending !== undefined) yield* Effect.promise(() => pending)
      }
      yield* sink.close
      const written = yield* Effect.promise(() => readFile(file))
      assert.strictEqual(written.length, 150 * 1024 * 1024)
      assert.strictEqual(createHash("sha256").update(written).digest("hex"), expected.digest("hex"))
    }))

  it.scoped("a file that cannot be flushed early (a FIFO) still takes every byte: the early flush is only for speed", () =>
    Effect.gen(function*() {
      const fifo = join(yield* scratch, "fifo")
      execFileSync("mkfifo", [fifo])
      let received = 0
      const drained = new Promise<void>((resolve, reject) => {
        const reader = createReadStream(fifo)
        reader.on("data", (chunk) => (received += chunk.length))
        reader.on("end", resolve)
        reader.on("error", reject)
      })
      const sink = yield* FileSink.open(fifo)
      for (let i = 0; i < 70; i++) {
        const pending = sink.write(new Uint8Array(1024 * 1024))
        if (pending !== undefined) yield* Effect.promise(() => pending)
      }
      yield* sink.close
      yield* Effect.promise(() => drained)
      assert.strictEqual(received, 70 * 1024 * 1024)
    }))

  it.scoped("asks the writer to wait once about 1 MiB is queued, so memory stays bounded", () =>
    Effect.gen(function*() {
      const sink = yield* FileSink.open(join(yield* scratch, "blob"))
      let accepted = 0
      while (sink.write(new Uint8Array(64 * 1024)) === undefined) accepted++
      // Without a wait the sender would queue the whole blob.
      assert.isAtMost(accepted, 16)
      yield* sink.close
    }))

  it.scoped("a full disk fails with an ImageStoreError naming the file and the reason", () =>
    Effect.gen(function*() {
      if (!existsSync("/dev/full")) return
      const sink = yield* FileSink.open("/dev/full")
      const failure = yield* Effect.gen(function*() {
        for (let i = 0; i < 64; i++) {
          const pending = sink.write(new Uint8Array(64 * 1024))
          if (pending !== undefined) yield* Effect.tryPromise({ try: () => pending, catch: (e) => e })
        }
        yield* sink.close
      }).pipe(Effect.flip)
      assert.strictEqual((failure as { _tag?: string })._tag, "ImageStoreError")
      assert.include((failure as Error).message, "/dev/full")
      assert.include((failure as Error).message, "ENOSPC")
    }))

  it.scoped("a folder that does not exist fails at open with an ImageStoreError", () =>
    Effect.gen(function*() {
      const file = join(yield* scratch, "missing", "blob")
      const error = yield* Effect.flip(FileSink.open(file))
      assert.strictEqual(error._tag, "ImageStoreError")
      assert.include(error.message, file)
    }))
})
