/**
 * An HttpClient that loads the real one (./Http.ts and the platform's HTTP code) on the first
 * request, so commands that never touch the network (`registry list`, `logout`) start without it.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { onFirstUse } from "./Lazy.js"

/** Needs TlsPolicy, like the client it stands for. */
export const layer = Layer.scoped(
  HttpClient.HttpClient,
  Effect.map(
    onFirstUse(HttpClient.HttpClient, () => import("./Http.js").then((http) => http.layer)),
    (real) => HttpClient.make((request) => Effect.flatMap(real, (client) => client.execute(request)))
  )
)
