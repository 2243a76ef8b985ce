/**
 * A RegistryClient over a fake HttpClient, for unit tests of the protocol's edges: every answer,
 * the ping and token requests included, comes from a route function, and every request is seen.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { CredentialResolver } from "../../src/CredentialResolver.js"
import * as Credential from "../../src/domain/Credential.js"
import * as TlsPolicy from "../../src/registry/TlsPolicy.js"
import * as RC from "../../src/RegistryClient.js"

export interface Seen {
  readonly method: string
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
}

/** A registry whose every answer comes from `route`, given the request and its index. */
export const fake = (route: (request: Seen, index: number) => Response) => {
  const seen: Array<Seen> = []
  const client = HttpClient.make((request: HttpClientRequest.HttpClientRequest, url: URL) =>
    Effect.sync(() => {
      const entry = { method: request.method, url, headers: request.headers }
      seen.push(entry)
      return HttpClientResponse.fromWeb(request, route(entry, seen.length - 1))
    })
  )
  return { client, seen }
}

const resolverOf = (resolved: Credential.Resolved) =>
  Layer.succeed(CredentialResolver, {
    authFile: undefined,
    resolve: () => Effect.succeed(resolved),
    shadowing: () => Effect.succeed(Option.none()),
    list: Effect.succeed([]),
    listReadable: Effect.succeed({ listings: [], unreadable: [] })
  })

/** Runs `f` with a RegistryClient on `client`, credentials `resolved`, retries 1 ms apart unless `options` say otherwise. */
export const withClient = <A, E>(
  client: HttpClient.HttpClient,
  f: (rc: RC.RegistryClientService) => Effect.Effect<A, E>,
  resolved: Credential.Resolved = Credential.anonymous,
  options: RC.Options = { transport: { retryBase: "1 millis" } }
) =>
  Effect.flatMap(RC.RegistryClient, f).pipe(
    Effect.provide(
      RC.layerWith(options).pipe(
        Layer.provide(Layer.mergeAll(TlsPolicy.layerDefault, resolverOf(resolved), Layer.succeed(HttpClient.HttpClient, client)))
      )
    )
  )
