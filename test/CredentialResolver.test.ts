import * as FileSystem from "@effect/platform/FileSystem"
import * as PlatformError from "@effect/platform/Error"
import * as Path from "@effect/platform/Path"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as AuthStore from "../src/AuthStore.js"
import * as CredentialResolver from "../src/CredentialResolver.js"
import * as AuthKey from "../src/domain/AuthKey.js"
import * as Credential from "../src/domain/Credential.js"
import * as Arb from "./support/arbitraries.js"

const HOME = "/home/user"
const OWN = `${HOME}/.microagent/auth.json`
const ENV = "/etc/containers/auth.json"

/** Stands for a file that exists but cannot be read (the tests run as root, which reads anything). */
const unreadable = "\0unreadable"

/** Runs the resolver over files held in memory, with the given environment. */
const withResolver = <A, E>(
  files: Record<string, string>,
  env: Record<string, string>,
  body: (resolver: CredentialResolver.CredentialResolverService) => Effect.Effect<A, E>
) => {
  const logs: Array<string> = []
  const fs = FileSystem.layerNoop({
    readFileString: (path) =>
      path in files
        ? files[path] === unreadable
          ? Effect.fail(new PlatformError.SystemError({ reason: "PermissionDenied", module: "FileSystem", method: "readFileString", pathOrDescriptor: path }))
          : Effect.succeed(files[path]!)
        : Effect.fail(new PlatformError.SystemError({ reason: "NotFound", module: "FileSystem", method: "readFileString", pathOrDescriptor: path }))
  })
  const layer = CredentialResolver.layer.pipe(
    Layer.provide(AuthStore.layer),
    Layer.provide(Layer.mergeAll(fs, Path.layer)),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ HOME, ...env })))))
  )
  return CredentialResolver.CredentialResolver.pipe(
    Effect.flatMap(body),
    Effect.provide(layer),
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logs.push(String((message as Array<unknown>)[0]))))),
    Effect.map((result) => ({ result, logs }))
  )
}

const authFile = (keys: ReadonlyArray<string>, tag: string) =>
  JSON.stringify({ auths: Object.fromEntries(keys.map((k) => [k, { auth: Credential.encodeAuth(`${tag}|${k.replaceAll(":", "_")}`, Redacted.make("pw")) }])) })

const image = FastCheck.tuple(Arb.host, FastCheck.array(Arb.segment, { minLength: 1, maxLength: 3 }))

/** Keys that can hold credentials for an image (its namespaces), plus unrelated ones. */
const keysFor = ([host, path]: [string, Array<string>]) =>
  FastCheck.subarray([...AuthKey.lookupOrder({ host, path }), `${host}/${path[0]}x`, `other.example.org/${path[0]}`])

describe("CredentialResolver", () => {
  it.effect.prop(
    "[C8] [C7] first source with a match wins; within it the most specific key; else anonymous",
    {
      case: image.chain((img) =>
        FastCheck.record({ img: FastCheck.constant(img), envKeys: keysFor(img), ownKeys: keysFor(img), envSet: FastCheck.boolean() })
      )
    },
    ({ case: { envKeys, envSet, img: [host, path], ownKeys } }) =>
      Effect.gen(function*() {
        const files = { [ENV]: authFile(envKeys, "env"), [OWN]: authFile(ownKeys, "own") }
        const { result } = yield* withResolver(files, envSet ? { REGISTRY_AUTH_FILE: ENV } : {}, (r) => r.resolve(host, path.join("/")))
        const order = AuthKey.lookupOrder({ host, path })
        const sources = [...(envSet ? [{ file: ENV, keys: envKeys, tag: "env" }] : []), { file: OWN, keys: ownKeys, tag: "own" }]
        const winner = sources
          .map((s) => ({ ...s, key: order.find((k) => s.keys.includes(k)) }))
          .find((s) => s.key !== undefined)
        if (winner === undefined) return assert.strictEqual(result._tag, "Anonymous")
        assert.strictEqual(result._tag, "Credential")
        if (result._tag !== "Credential") return
        assert.strictEqual(result.username, `${winner.tag}|${winner.key!.replaceAll(":", "_")}`)
        assert.deepStrictEqual(result.source, { file: winner.file, key: winner.key })
      })
  )

  it.effect.prop(
    "[C5] a key written in a legacy form resolves as the key itself",
    { case: image.chain((img) => FastCheck.record({ img: FastCheck.constant(img), legacy: Arb.legacyForm(img[0]) })) },
    ({ case: { img: [host, path], legacy } }) =>
      Effect.gen(function*() {
        const { result } = yield* withResolver({ [OWN]: JSON.stringify({ auths: { [legacy]: { auth: Credential.encodeAuth("me", Redacted.make("pw")) } } }) }, {}, (r) =>
          r.resolve(host.toUpperCase(), path.join("/")))
        assert.strictEqual(result._tag, "Credential")
        if (result._tag === "Credential") assert.deepStrictEqual(result.source, { file: OWN, key: legacy })
      })
  )

  it.effect("[C9] a malformed $REGISTRY_AUTH_FILE is an error, never skipped for the own store", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withResolver({ [ENV]: "{\"auths\": {", [OWN]: authFile(["ghcr.io"], "own") }, { REGISTRY_AUTH_FILE: ENV }, (r) => r.resolve("ghcr.io", "a/b")))
      assert.strictEqual(error._tag, "AuthFileError")
      assert.include(error.message, ENV)
    }))

  it.effect("[C9] an unreadable auth file is an error naming it, never a fall-through", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withResolver({ [ENV]: unreadable, [OWN]: authFile(["ghcr.io"], "own") }, { REGISTRY_AUTH_FILE: ENV }, (r) => r.resolve("ghcr.io", "a")))
      assert.strictEqual(error._tag, "AuthFileError")
      assert.include(error.message, ENV)
      assert.include(error.message, "permission denied")
    }))

  it.effect("[C9] the matching entry's bad auth names file and key, never the value", () =>
    Effect.gen(function*() {
      const files = { [OWN]: JSON.stringify({ auths: { "ghcr.io/team": { auth: "c2VjcmV0" } } }) }
      const error = yield* Effect.flip(withResolver(files, {}, (r) => r.resolve("ghcr.io", "team/app")))
      assert.strictEqual(error._tag, "AuthFileError")
      assert.include(error.message, OWN)
      assert.include(error.message, "ghcr.io/team")
      assert.notInclude(error.message, "c2VjcmV0")
      assert.notInclude(error.message, "secret")
    }))

  it.effect("[C9] a missing $REGISTRY_AUTH_FILE warns once and reads as empty; an empty variable is unset", () =>
    Effect.gen(function*() {
      const { logs, result } = yield* withResolver({ [OWN]: authFile(["ghcr.io"], "own") }, { REGISTRY_AUTH_FILE: ENV }, (r) =>
        Effect.zipRight(r.resolve("ghcr.io", "a"), r.resolve("ghcr.io", "b")))
      assert.strictEqual(result._tag, "Credential")
      assert.deepStrictEqual(logs, [`$REGISTRY_AUTH_FILE names ${ENV}, which does not exist; it is read as empty`])
      const unset = yield* withResolver({}, { REGISTRY_AUTH_FILE: "" }, (r) => Effect.succeed(r.authFile))
      assert.strictEqual(unset.result, undefined)
    }))

  it.effect("[C4] credHelpers naming the registry and credsStore are noted, never run", () =>
    Effect.gen(function*() {
      const files = { [ENV]: JSON.stringify({ credHelpers: { "ghcr.io": "gcloud" }, auths: {} }), [OWN]: JSON.stringify({ credsStore: "desktop" }) }
      const { logs, result } = yield* withResolver(files, { REGISTRY_AUTH_FILE: ENV }, (r) => r.resolve("ghcr.io", "a"))
      assert.strictEqual(result._tag, "Anonymous")
      assert.strictEqual(logs.length, 2)
      assert.include(logs[0], "docker-credential-gcloud")
      assert.include(logs[1], "docker-credential-desktop")
      for (const line of logs) assert.include(line, "never runs credential helpers")
    }))

  it.effect("[S1] [C6] list: resolution order (the winning spelling of a key first), shadowed keys marked, invalid entries shown without their value", () =>
    Effect.gen(function*() {
      const files = {
        [ENV]: authFile(["ghcr.io"], "env"),
        [OWN]: JSON.stringify({
          auths: {
            "ghcr.io/team": { auth: Credential.encodeAuth("t", Redacted.make("pw")) },
            "quay.io": { auth: "!!" },
            "https://index.docker.io/v1/": { auth: Credential.encodeAuth("old", Redacted.make("pw")) },
            "docker.io": { auth: Credential.encodeAuth("new", Redacted.make("pw")) }
          }
        })
      }
      const { result } = yield* withResolver(files, { REGISTRY_AUTH_FILE: ENV }, (r) => r.list)
      assert.deepStrictEqual(result.map((l) => [l.registry, l.source, l.shadowed, l.invalid !== undefined]), [
        ["ghcr.io", ENV, false, false],
        ["ghcr.io/team", OWN, true, false],
        ["quay.io", OWN, false, true],
        ["docker.io", OWN, false, false],
        ["docker.io", OWN, true, false]
      ])
      assert.notInclude(JSON.stringify(result), "!!")
    }))
})
