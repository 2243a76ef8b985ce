import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { CredentialsLive, whoAmI } from "../docs/examples/resolve-credentials.js"
import { Credential } from "microagent"

describe("docs/library.md", () => {
  it.effect("shows the example program verbatim", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const page = yield* fs.readFileString("docs/library.md")
      const example = yield* fs.readFileString("docs/examples/resolve-credentials.ts")
      assert.include(page, "```ts\n" + example + "```")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("its program resolves from $REGISTRY_AUTH_FILE before the own store, as documented", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const home = yield* fs.makeTempDirectoryScoped()
      const entry = (user: string) => JSON.stringify({ auths: { "ghcr.io": { auth: Credential.encodeAuth(user, Redacted.make("pw")) } } })
      yield* fs.makeDirectory(`${home}/.microagent`)
      yield* fs.writeFileString(`${home}/.microagent/auth.json`, entry("own"))
      yield* fs.writeFileString(`${home}/ci-auth.json`, entry("ci"))
      assert.strictEqual(yield* whoAmI.pipe(Effect.provide(CredentialsLive({ HOME: home }))), `own (from ${home}/.microagent/auth.json, key ghcr.io)`)
      assert.strictEqual(
        yield* whoAmI.pipe(Effect.provide(CredentialsLive({ HOME: home, REGISTRY_AUTH_FILE: `${home}/ci-auth.json` }))),
        `ci (from ${home}/ci-auth.json, key ghcr.io)`
      )
      assert.strictEqual(yield* whoAmI.pipe(Effect.provide(CredentialsLive({ HOME: `${home}/nobody` }))), "anonymous")
    }).pipe(Effect.provide(NodeContext.layer)))
})
