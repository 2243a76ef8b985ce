import * as NodeContext from "@effect/platform-node/NodeContext"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { AuthStore, CredentialResolver } from "microagent"

// Which credentials would microagent send to ghcr.io for acme/app, and where do they come from?
export const whoAmI = Effect.gen(function*() {
  const resolver = yield* CredentialResolver.CredentialResolver
  const credential = yield* resolver.resolve("ghcr.io", "acme/app")
  return credential._tag === "Credential"
    ? `${credential.username} (from ${credential.source.file}, key ${credential.source.key})`
    : "anonymous"
})

// The layers, with a ConfigProvider of your own instead of the process environment.
export const CredentialsLive = (env: Record<string, string>) =>
  CredentialResolver.layer.pipe(
    Layer.provideMerge(AuthStore.layer),
    Layer.provide(NodeContext.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
  )

// e.g. Effect.runPromise(whoAmI.pipe(Effect.provide(CredentialsLive({ HOME: "/home/me" }))))
