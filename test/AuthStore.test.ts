import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as AuthStore from "../src/AuthStore.js"

/** A store in a fresh HOME on the real file system, on the real clock (lock retries wait). */
const withStore = <A, E>(options: AuthStore.Options, body: (store: AuthStore.AuthStoreService, home: string) => Effect.Effect<A, E, FileSystem.FileSystem>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const home = yield* fs.makeTempDirectoryScoped()
    const layer = AuthStore.layerWith(options).pipe(
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HOME", home]]))))
    )
    const store = yield* AuthStore.AuthStore.pipe(Effect.provide(layer))
    return yield* body(store, home)
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

describe("AuthStore", () => {
  it.live("[C2] a lock left by a crashed process is broken once stale", () =>
    withStore({ staleLockAfter: "50 millis" }, (store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.makeDirectory(store.path.replace(/\/auth\.json$/, ""), { recursive: true })
        yield* fs.writeFileString(`${store.path}.lock`, "12345\n")
        yield* fs.utimes(`${store.path}.lock`, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
        yield* store.upsert("ghcr.io", "me", Redacted.make("pw"))
        assert.include(yield* fs.readFileString(store.path), "ghcr.io")
        assert.isFalse(yield* fs.exists(`${store.path}.lock`))
      })))

  it.live("[C2] a live lock makes a writer wait, then fail with a clear error and no write", () =>
    withStore({ lockTimeout: "200 millis" }, (store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.makeDirectory(store.path.replace(/\/auth\.json$/, ""), { recursive: true })
        yield* fs.writeFileString(`${store.path}.lock`, "12345\n")
        const error = yield* Effect.flip(store.upsert("ghcr.io", "me", Redacted.make("pw")))
        assert.strictEqual(error._tag, "AuthFileError")
        assert.include(error.message, "locked by another process")
        assert.isFalse(yield* fs.exists(store.path))
        assert.isTrue(yield* fs.exists(`${store.path}.lock`), "someone else's lock is left alone")
      })))

  it.live("[C2] no temp or lock files are left behind after writes", () =>
    withStore({}, (store) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* Effect.all([
          store.upsert("a.io", "a", Redacted.make("1")),
          store.upsert("b.io", "b", Redacted.make("2")),
          store.upsert("c.io", "c", Redacted.make("3"))
        ], { concurrency: "unbounded" })
        yield* store.remove("b.io")
        const folder = store.path.replace(/\/auth\.json$/, "")
        assert.deepStrictEqual((yield* fs.readDirectory(folder)).sort(), ["auth.json"])
        assert.deepStrictEqual(Object.keys(JSON.parse(yield* fs.readFileString(store.path)).auths).sort(), ["a.io", "c.io"])
      })))
})
