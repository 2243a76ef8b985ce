import * as NodeContext from "@effect/platform-node/NodeContext"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { Images, Live, Reference, TlsPolicy, UsageError } from "microagent"
import { NodeBlobFiles, NodeHttp } from "microagent/node"

// Pulls an image into an OCI layout folder and returns the digest it stored.
export const pullInto = (image: string, folder: string) =>
  Effect.gen(function*() {
    const reference = yield* Either.mapLeft(Reference.parse(image), (message) => new UsageError({ message }))
    const moved = yield* (yield* Images.Images).pull(reference, { output: folder })
    return moved.digest
  })

// All of microagent's services over Node's file system and the CLI's HTTP client and blob file
// I/O (without NodeBlobFiles, blobs go through the FileSystem: the same, only slower), configured by `env`.
export const MicroagentLive = (env: Record<string, string>) =>
  Live.layer.pipe(
    // The same TlsPolicy.layer as inside Live.layer: layers are memoised, so both see one policy.
    Layer.provide(NodeHttp.layer.pipe(Layer.provide(TlsPolicy.layer))),
    Layer.provide(NodeBlobFiles.layer),
    Layer.provide(NodeContext.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

// e.g. Effect.runPromise(pullInto("localhost:5000/team/app:1", "./layout").pipe(Effect.provide(MicroagentLive({ HOME: "/home/me" }))))
