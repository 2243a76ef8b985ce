/**
 * Each auth file is read once per resolver, that is once per command (issue 15, item 8; [C8]):
 * `REGISTRY_AUTH_FILE=<(…)` is a pipe that can be read only once, and a 5-blob pull read the
 * files 10 times. Concurrent lookups share one read; a read cut short by interruption is done
 * again by the next lookup; the own store is read again after this process wrote it.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as PlatformError from "@effect/platform/Error"
import * as Path from "@effect/platform/Path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as AuthStore from "../src/AuthStore.js"
import * as CredentialResolver from "../src/CredentialResolver.js"
import * as Credential from "../src/domain/Credential.js"

const HOME = "/home/user"
const OWN = `${HOME}/.microagent/auth.json`
const ENV = "/run/auth.json"

const authFile = (entries: Record<string, string>) =>
  JSON.stringify({ auths: Object.fromEntries(Object.entries(entries).map(([k, user]) => [k, { auth: Credential.encodeAuth(user, Redacted.make("pw")) }])) })

/** In-memory files that count their reads; `gate`, when given, holds every read until it opens. */
const counted = (files: Record<string, string>, gate?: Deferred.Deferred<void>) => {
  const reads: Record<string, number> = {}
  const layer = FileSystem.layerNoop({
    readFileString: (path) =>
      Effect.suspend(() => {
        reads[path] = (reads[path] ?? 0) + 1
        const read = path in files
          ? Effect.succeed(files[path]!)
          : Effect.fail(new PlatformError.SystemError({ reason: "NotFound", module: "FileSystem", method: "readFileString", pathOrDescriptor: path }))
        return gate === undefined ? read : Effect.zipRight(Deferred.await(gate), read)
      })
  })
  return { reads, layer }
}

const resolverWith = (fs: Layer.Layer<FileSystem.FileSystem>, env: Record<string, string>) =>
  CredentialResolver.layer.pipe(
    Layer.provide(AuthStore.layer),
    Layer.provide(Layer.mergeAll(fs, Path.layer)),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ HOME, ...env })))))
  )

const userOf = (resolved: Credential.Resolved) => resolved._tag === "Credential" ? resolved.username : "anonymous"

describe("CredentialResolver reads each file once", () => {
  it.effect("[C8] many lookups, concurrent and one after another, read $REGISTRY_AUTH_FILE and the own store once each", () =>
    Effect.gen(function*() {
      const { layer, reads } = counted({ [ENV]: authFile({ "r.example/team": "env" }), [OWN]: authFile({ "r.example": "own" }) })
      const users = yield* Effect.gen(function*() {
        const resolver = yield* CredentialResolver.CredentialResolver
        const concurrent = yield* Effect.forEach(
          Array.from({ length: 10 }, (_, i) => i % 2 === 0 ? "team/app" : "other/app"),
          (repository) => resolver.resolve("r.example", repository),
          { concurrency: "unbounded" }
        )
        const after = yield* Effect.forEach(["team/app", "other/app"], (repository) => resolver.resolve("r.example", repository))
        yield* resolver.list
        yield* resolver.shadowing("r.example")
        return [...concurrent, ...after].map(userOf)
      }).pipe(Effect.provide(resolverWith(layer, { REGISTRY_AUTH_FILE: ENV })))
      assert.deepStrictEqual(users, ["env", "own", "env", "own", "env", "own", "env", "own", "env", "own", "env", "own"])
      assert.deepStrictEqual(reads, { [ENV]: 1, [OWN]: 1 })
    }))

  it.effect("[C8] a read cut short by interruption is done again by the next lookup, which does not hang", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { layer, reads } = counted({ [ENV]: authFile({ "r.example": "env" }) }, gate)
      const user = yield* Effect.gen(function*() {
        const resolver = yield* CredentialResolver.CredentialResolver
        const first = yield* Effect.fork(resolver.resolve("r.example", "app"))
        yield* Effect.yieldNow()
        yield* Fiber.interrupt(first)
        yield* Deferred.succeed(gate, undefined)
        return userOf(yield* resolver.resolve("r.example", "app"))
      }).pipe(Effect.provide(resolverWith(layer, { REGISTRY_AUTH_FILE: ENV })))
      assert.strictEqual(user, "env")
      assert.strictEqual(reads[ENV], 2)
    }))

  it.live("[C8] [L6] the own store is read again after this process wrote it", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const home = yield* fs.makeTempDirectoryScoped()
      const layer = CredentialResolver.layer.pipe(
        Layer.provideMerge(AuthStore.layer),
        Layer.provide(NodeContext.layer),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HOME", home]]))))
      )
      const users = yield* Effect.gen(function*() {
        const resolver = yield* CredentialResolver.CredentialResolver
        const store = yield* AuthStore.AuthStore
        const before = userOf(yield* resolver.resolve("r.example", "app"))
        yield* store.upsert("r.example", "me", Redacted.make("pw"))
        return [before, userOf(yield* resolver.resolve("r.example", "app"))]
      }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(users, ["anonymous", "me"])
    }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)))
})
