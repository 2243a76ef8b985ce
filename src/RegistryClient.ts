/**
 * RegistryClient: speaks the distribution protocol (SPEC §4). So far: the login handshake of
 * [L5], on the transport rules of [P1] (https first; http only for loopback hosts).
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Challenge from "./domain/Challenge.js"
import { RegistryDenied, RegistryUnavailable } from "./domain/Errors.js"
import * as Endpoint from "./registry/Endpoint.js"

/** `verified`: the registry accepted the credentials; `unverified`: it asks for none ([L5]). */
export type LoginCheck = "verified" | "unverified"

export interface RegistryClientService {
  /** Checks credentials for a registry host[:port] the way [L5] says, without storing anything. */
  readonly checkLogin: (
    registry: string,
    username: string,
    password: Redacted.Redacted<string>
  ) => Effect.Effect<LoginCheck, RegistryDenied | RegistryUnavailable>
}

export class RegistryClient extends Context.Tag("microagent/RegistryClient")<RegistryClient, RegistryClientService>() {}

const causeText = (error: HttpClientError.HttpClientError): string => {
  let cause: unknown = error.cause
  // undici wraps the socket error; the innermost code says most ("ECONNREFUSED", a TLS reason).
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code
    return typeof code === "string" && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message
  }
  return error.message
}

export const make = Effect.gen(function*() {
  const client = yield* HttpClient.HttpClient
  /** The scheme chosen per host, remembered for the run ([P1]). */
  const schemes = yield* Ref.make(new Map<string, "https" | "http">())

  const unavailable = (registry: string) => (error: HttpClientError.HttpClientError) =>
    RegistryUnavailable.of(registry, causeText(error))

  /** Sends a request to the registry itself, choosing https or (loopback only) http. */
  const send = (registry: string, path: string, auth?: (r: HttpClientRequest.HttpClientRequest) => HttpClientRequest.HttpClientRequest) =>
    Effect.gen(function*() {
      const host = Endpoint.apiHost(registry)
      const request = (scheme: string) => {
        const r = HttpClientRequest.get(`${scheme}://${host}${path}`)
        return client.execute(auth ? auth(r) : r)
      }
      const known = (yield* Ref.get(schemes)).get(host)
      if (known) return yield* request(known).pipe(Effect.mapError(unavailable(registry)))
      const response = yield* request("https").pipe(
        Effect.tap(() => Ref.update(schemes, (m) => new Map(m).set(host, "https"))),
        Effect.catchTag("RequestError", (error) =>
          Endpoint.isLoopback(host)
            ? request("http").pipe(Effect.tap(() => Ref.update(schemes, (m) => new Map(m).set(host, "http"))))
            : Effect.fail(error))
      )
      return response
    }).pipe(Effect.mapError((e) => e instanceof RegistryUnavailable ? e : unavailable(registry)(e)))

  const drain = (response: HttpClientResponse.HttpClientResponse) => Effect.ignore(response.text)

  const denied = (registry: string, status: number) =>
    new RegistryDenied({
      registry,
      action: "login",
      message: `${registry} rejected the credentials (HTTP ${status}: invalid user name or password)`
    })

  const unexpected = (registry: string, what: string, status: number) =>
    RegistryUnavailable.of(registry, `${what} answered HTTP ${status}; is this an OCI registry?`)

  /** Maps the final `/v2/` answer of a handshake. */
  const judge = (registry: string, response: HttpClientResponse.HttpClientResponse) =>
    Effect.gen(function*() {
      yield* drain(response)
      if (response.status === 200) return "verified" as const
      if (response.status === 401 || response.status === 403) return yield* denied(registry, response.status)
      return yield* unexpected(registry, "/v2/", response.status)
    })

  const bearer = Effect.fnUntraced(function*(
    registry: string,
    challenge: Challenge.Challenge,
    pingUrl: string,
    username: string,
    password: Redacted.Redacted<string>
  ) {
    const realm = challenge.params["realm"]
    if (!realm) return yield* RegistryUnavailable.of(registry, "its Bearer challenge names no realm")
    const url = new URL(realm, pingUrl)
    if (challenge.params["service"]) url.searchParams.set("service", challenge.params["service"])
    url.searchParams.set("account", username)
    const tokenResponse = yield* client.execute(
      HttpClientRequest.get(url.toString()).pipe(HttpClientRequest.basicAuth(username, password))
    ).pipe(Effect.mapError(unavailable(registry)))
    if (tokenResponse.status === 401 || tokenResponse.status === 403) {
      yield* drain(tokenResponse)
      return yield* denied(registry, tokenResponse.status)
    }
    if (tokenResponse.status !== 200) {
      yield* drain(tokenResponse)
      return yield* RegistryUnavailable.of(registry, `its token server ${url.origin} answered HTTP ${tokenResponse.status}`)
    }
    const body = yield* tokenResponse.json.pipe(Effect.orElseSucceed(() => ({})))
    const token = tokenField(body)
    if (token === undefined) return yield* RegistryUnavailable.of(registry, `its token server ${url.origin} sent no token`)
    return yield* send(registry, "/v2/", HttpClientRequest.bearerToken(token)).pipe(
      Effect.flatMap((response) => judge(registry, response))
    )
  })

  const checkLogin = Effect.fn("RegistryClient.checkLogin")(function*(
    registry: string,
    username: string,
    password: Redacted.Redacted<string>
  ) {
    const ping = yield* send(registry, "/v2/")
    yield* drain(ping)
    if (ping.status === 200) return "unverified" as const
    if (ping.status !== 401) return yield* unexpected(registry, "/v2/", ping.status)
    const challenge = Challenge.preferred(Challenge.parse(ping.headers["www-authenticate"] ?? ""))
    if (challenge?.scheme === "bearer") return yield* bearer(registry, challenge, ping.request.url, username, password)
    if (challenge?.scheme === "basic") {
      return yield* send(registry, "/v2/", HttpClientRequest.basicAuth(username, password)).pipe(
        Effect.flatMap((response) => judge(registry, response))
      )
    }
    return yield* RegistryUnavailable.of(registry, "/v2/ demands authentication with no Bearer or Basic challenge")
  })

  return RegistryClient.of({ checkLogin })
})

const tokenField = (body: unknown): string | undefined => {
  if (typeof body !== "object" || body === null) return undefined
  const { access_token, token } = body as { token?: unknown; access_token?: unknown }
  return typeof token === "string" && token !== ""
    ? token
    : typeof access_token === "string" && access_token !== ""
    ? access_token
    : undefined
}

/** Needs an HttpClient: Node programs provide `NodeHttpClient.layerUndici`. */
export const layer = Layer.effect(RegistryClient, make)
