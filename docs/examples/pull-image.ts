import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { Images, Live, Reference, UsageError } from "microagent"

// Pulls an image into an OCI layout folder and returns the digest it stored.
export const pullInto = (image: string, folder: string) =>
  Effect.gen(function*() {
    const reference = yield* Either.mapLeft(Reference.parse(image), (message) => new UsageError({ message }))
    const moved = yield* (yield* Images.Images).pull(reference, { output: folder })
    return moved.digest
  })

// All of microagent's services over Node's file system and HTTP client, configured by `env`.
export const MicroagentLive = (env: Record<string, string>) =>
  Live.layer.pipe(
    Layer.provide(NodeHttpClient.layer),
    Layer.provide(NodeContext.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

// e.g. Effect.runPromise(pullInto("localhost:5000/team/app:1", "./layout").pipe(Effect.provide(MicroagentLive({ HOME: "/home/me" }))))
