/**
 * AuthStore against failure paths and races (issue 15, item 13; [C2], [C3]): a store that is a
 * dangling symbolic link is written through to its target; a lock file that could not be written
 * (a full disk) is not left behind to hold up the next writer; two writers that both find a stale
 * lock never both hold the lock (no lost update).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as PlatformError from "@effect/platform/Error"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as AuthStore from "../src/AuthStore.js"

type Wrap = (fs: FileSystem.FileSystem) => FileSystem.FileSystem

/** A store in a fresh HOME on the real file system (seen through `wrap`), on the real clock. */
const withStore = <A, E>(
  options: AuthStore.Options,
  body: (store: AuthStore.AuthStoreService, home: string) => Effect.Effect<A, E, FileSystem.FileSystem>,
  wrap: Wrap = (fs) => fs
) =>
  Effect.gen(function*() {
    const real = yield* FileSystem.FileSystem
    const home = yield* real.makeTempDirectoryScoped()
    const layer = AuthStore.layerWith(options).pipe(
      Layer.provide(Layer.succeed(FileSystem.FileSystem, wrap(real))),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HOME", home]]))))
    )
    const store = yield* AuthStore.AuthStore.pipe(Effect.provide(layer))
    return yield* body(store, home)
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const keysIn = (text: string) => Object.keys((JSON.parse(text) as { auths: Record<string, unknown> }).auths).sort()

describe("AuthStore hardening", () => {
  it.live("[C2] [C3] a store that is a dangling symbolic link is written through to its target, and stays a link", () =>
    withStore({}, (store, home) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.makeDirectory(`${home}/.microagent`, { mode: 0o700 })
        yield* fs.makeDirectory(`${home}/secrets`)
        yield* fs.symlink("../secrets/auth.json", store.path)
        yield* store.upsert("ghcr.io", "me", Redacted.make("pw"))
        assert.strictEqual(yield* fs.readLink(store.path), "../secrets/auth.json", "still the same link")
        assert.deepStrictEqual(keysIn(yield* fs.readFileString(`${home}/secrets/auth.json`)), ["ghcr.io"])
        assert.strictEqual((yield* fs.stat(`${home}/secrets/auth.json`)).mode & 0o777, 0o600)
        // A second write goes through the link that now resolves.
        yield* store.upsert("quay.io", "me", Redacted.make("pw"))
        assert.deepStrictEqual(keysIn(yield* fs.readFileString(store.path)), ["ghcr.io", "quay.io"])
        assert.deepStrictEqual((yield* fs.readDirectory(`${home}/secrets`)).sort(), ["auth.json"])
      })))

  it.live("[C2] a lock file that cannot be written (disk full) is removed: the next writer does not wait for it", () => {
    let full = true
    const enospc = (path: string, method: string) =>
      new PlatformError.SystemError({ reason: "Unknown", module: "FileSystem", method, pathOrDescriptor: path, description: "ENOSPC: no space left on device" })
    // Creating a file takes an inode, writing it takes a block: on a full disk the first works, the second fails.
    const wrap: Wrap = (fs) => ({
      ...fs,
      writeFileString: (path, data, options) =>
        full && path.endsWith(".lock")
          ? fs.writeFileString(path, "", options).pipe(Effect.zipRight(Effect.fail(enospc(path, "writeFileString"))))
          : fs.writeFileString(path, data, options),
      open: (path, options) =>
        fs.open(path, options).pipe(Effect.map((file) =>
          full && path.endsWith(".lock")
            ? Object.assign(Object.create(file) as FileSystem.File, {
              write: () => Effect.fail(enospc(path, "write")),
              writeAll: () => Effect.fail(enospc(path, "writeAll"))
            })
            : file
        ))
    })
    return withStore({ lockTimeout: "1 second" }, (store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const failed = yield* Effect.flip(store.upsert("ghcr.io", "me", Redacted.make("pw")))
        assert.strictEqual(failed._tag, "AuthFileError")
        assert.include(failed.message, "ENOSPC")
        assert.isFalse(yield* fs.exists(`${store.path}.lock`), "no lock is left behind")
        full = false
        yield* store.upsert("ghcr.io", "me", Redacted.make("pw"))
        assert.deepStrictEqual(keysIn(yield* fs.readFileString(store.path)), ["ghcr.io"])
      }), wrap)
  })

  it.live("[C2] two writers that both find a stale lock: one breaks it, neither loses the other's entry", () => {
    let removals = 0
    let reads = 0
    let stats = 0
    // Widens the windows of a check-then-act breaker: both writers look at the stale lock before
    // either acts, the second removal of the lock lands late, and the first reader of the store
    // is slow to hand back what it read.
    const wrap: Wrap = (fs) => ({
      ...fs,
      stat: (path) =>
        path.endsWith("auth.json.lock") && ++stats <= 2
          ? fs.stat(path).pipe(Effect.exit, Effect.tap(() => Effect.sleep("50 millis")), Effect.flatten)
          : fs.stat(path),
      remove: (path, options) =>
        path.endsWith("auth.json.lock") && ++removals === 2
          ? Effect.zipRight(Effect.sleep("200 millis"), fs.remove(path, options))
          : fs.remove(path, options),
      readFileString: (path, encoding) =>
        path.endsWith("auth.json") && ++reads === 1
          ? fs.readFileString(path, encoding).pipe(Effect.exit, Effect.tap(() => Effect.sleep("300 millis")), Effect.flatten)
          : fs.readFileString(path, encoding)
    })
    return withStore({}, (store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const folder = store.path.replace(/\/auth\.json$/, "")
        yield* fs.makeDirectory(folder, { recursive: true })
        yield* fs.writeFileString(`${store.path}.lock`, "12345 crashed\n")
        yield* fs.utimes(`${store.path}.lock`, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
        yield* Effect.all([
          store.upsert("a.example", "a", Redacted.make("1")),
          store.upsert("b.example", "b", Redacted.make("2"))
        ], { concurrency: "unbounded" })
        assert.deepStrictEqual(keysIn(yield* fs.readFileString(store.path)), ["a.example", "b.example"])
        assert.deepStrictEqual((yield* fs.readDirectory(folder)).sort(), ["auth.json"], "no lock, break or aside file is left")
      }), wrap)
  })

  it.live("[C2] a lock older than the stale limit, left empty by a crash, is broken; a fresh one is never", () =>
    withStore({ staleLockAfter: "100 millis", lockTimeout: "2 seconds" }, (store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.makeDirectory(store.path.replace(/\/auth\.json$/, ""), { recursive: true })
        yield* fs.writeFileString(`${store.path}.lock`, "")
        const started = Date.now()
        yield* store.upsert("ghcr.io", "me", Redacted.make("pw"))
        assert.isAtLeast(Date.now() - started, 90, "a fresh lock was waited for")
        assert.isFalse(yield* fs.exists(`${store.path}.lock`))
      })))

  it.live("[C2] revision counts the writes this store made", () =>
    withStore({}, (store) =>
      Effect.gen(function*() {
        const before = yield* store.revision
        yield* store.upsert("ghcr.io", "me", Redacted.make("pw"))
        yield* store.upsert("ghcr.io", "me", Redacted.make("pw")) // changes nothing: no write
        assert.strictEqual((yield* store.revision) - before, 1)
      })))
})
