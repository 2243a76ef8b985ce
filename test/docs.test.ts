import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { MicroagentLive, pullInto } from "../docs/examples/pull-image.js"
import { CredentialsLive, whoAmI } from "../docs/examples/resolve-credentials.js"
import { makeImage, skopeoInspectDigest, skopeoPush } from "./support/images.js"
import { startRegistry } from "./support/registry.js"
import { Credential } from "microagent"

describe("docs/library.md", () => {
  it.effect("shows each example program verbatim", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const page = yield* fs.readFileString("docs/library.md")
      for (const file of ["resolve-credentials.ts", "pull-image.ts"]) {
        const example = yield* fs.readFileString(`docs/examples/${file}`)
        assert.include(page, "```ts\n" + example + "```", file)
      }
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

  it.live("its pull program stores an image that skopeo reads back with the same digest", () =>
    Effect.acquireUseRelease(
      Effect.promise(async () => {
        const work = await fsp.mkdtemp(path.join(os.tmpdir(), "microagent-docs-"))
        const registry = await startRegistry({ mode: "none" })
        const image = await makeImage({ dir: path.join(work, "src"), tag: "v1", layers: [2048, 4096] })
        await skopeoPush(image, { registry: registry.host, repository: "docs/app" })
        return { work, registry, image }
      }),
      ({ image, registry, work }) =>
        Effect.gen(function*() {
          const folder = path.join(work, "out")
          const digest = yield* pullInto(`${registry.host}/docs/app:v1`, folder).pipe(Effect.provide(MicroagentLive({ HOME: work })))
          assert.strictEqual(digest, image.manifestDigest)
          assert.strictEqual(yield* Effect.promise(() => skopeoInspectDigest(`oci:${folder}:v1`)), digest)
        }),
      ({ registry, work }) => Effect.promise(async () => {
        await registry.stop()
        await fsp.rm(work, { recursive: true, force: true })
      })
    ))
})
