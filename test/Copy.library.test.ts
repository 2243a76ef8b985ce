/**
 * Copy as a library uses it ([M1]): without `microagent/node`'s blob file I/O, blobs relay
 * between registries through Effect streams, and a copy still keeps its digest and a layout
 * copy still verifies. The CLI's Node relay is covered by test/integration/copy.test.ts.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { Copy, Live, Reference, TlsPolicy } from "microagent"
import { NodeHttp } from "microagent/node"
import { makeImage, skopeoInspectDigest, skopeoPush } from "./support/images.js"
import { startRegistry } from "./support/registry.js"

const platformFree = (home: string) =>
  Live.layer.pipe(
    Layer.provide(NodeHttp.layer.pipe(Layer.provide(TlsPolicy.layer))),
    Layer.provide(NodeContext.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HOME", home]]))))
  )

describe("Copy without Node's blob file I/O", () => {
  it.live("[M1] registry to registry and layout to layout through Effect streams, digests kept", () =>
    Effect.acquireUseRelease(
      Effect.promise(async () => {
        const work = await fsp.realpath(await fsp.mkdtemp(path.join(os.tmpdir(), "microagent-copy-library-")))
        const [from, to] = await Promise.all([startRegistry({ mode: "none" }), startRegistry({ mode: "none" })])
        const image = await makeImage({ dir: path.join(work, "src"), tag: "v1", layers: [200_000, 4096] })
        await skopeoPush(image, { registry: from.host, repository: "lib/app" })
        return { work, from, to, image }
      }),
      ({ from, image, to, work }) =>
        Effect.gen(function*() {
          const copier = yield* Copy.Copy
          const ref = (text: string) => Either.getOrThrow(Reference.parse(text))
          const copied = yield* copier.copy(
            { _tag: "Registry", reference: ref(`${from.host}/lib/app:v1`) },
            { _tag: "Registry", reference: ref(`${to.host}/lib/copy:v1`) }
          )
          assert.strictEqual(copied.digest, image.manifestDigest)
          assert.strictEqual(copied.transferred, 3)
          assert.strictEqual(yield* Effect.promise(() => skopeoInspectDigest(`docker://${to.host}/lib/copy:v1`)), image.manifestDigest)
          const layout = path.join(work, "copied")
          const local = yield* copier.copy({ _tag: "Layout", dir: image.dir, name: "v1" }, { _tag: "Layout", dir: layout, name: "v1" })
          assert.strictEqual(local.digest, image.manifestDigest)
          assert.strictEqual(yield* Effect.promise(() => skopeoInspectDigest(`oci:${layout}:v1`)), image.manifestDigest)
        }).pipe(Effect.provide(platformFree(work))),
      ({ from, to, work }) => Effect.promise(async () => {
        await Promise.all([from.stop(), to.stop()])
        await fsp.rm(work, { recursive: true, force: true })
      })
    ), 60_000)
})
