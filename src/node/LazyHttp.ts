/**
 * An HttpClient that loads the real one (./Http.ts and the platform's HTTP code) on the first
 * request, so commands that never touch the network (`registry list`, `logout`) start without it.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { TlsPolicy } from "../registry/TlsPolicy.js"

/** Needs TlsPolicy, like the client it stands for. */
export const layer = Layer.scoped(
  HttpClient.HttpClient,
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const policy = yield* TlsPolicy
    const real = yield* Effect.cached(
      Effect.promise(() => import("./Http.js")).pipe(
        Effect.flatMap((http) => Layer.buildWithScope(http.layer.pipe(Layer.provide(Layer.succeed(TlsPolicy, policy))), scope)),
        Effect.map(Context.get(HttpClient.HttpClient))
      )
    )
    return HttpClient.make((request) => Effect.flatMap(real, (client) => client.execute(request)))
  })
)
