/**
 * How a request reaches a registry ([P1], [P3], [P7]): the scheme (https, or http for loopback
 * and `--insecure` hosts when https fails), redirects followed here with `Authorization`
 * dropped across origins, and retries with backoff for idempotent requests.
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import { RegistryUnavailable } from "../domain/Errors.js"
import * as Endpoint from "./Endpoint.js"
import { isVerificationFailure, type TlsPolicyService } from "./TlsPolicy.js"

export type Method = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE"

export interface Request {
  readonly method: Method
  /** A path on the registry (`/v2/...`) or an absolute URL (an upload `Location`). */
  readonly url: string
  readonly headers?: Readonly<Record<string, string>>
  /** Made afresh for each attempt, so a retry never replays a consumed stream. */
  readonly body?: () => HttpBody.HttpBody
  /** Whether another attempt is safe; GET and HEAD are, other methods only when the caller says so. */
  readonly retry?: boolean
}

export interface Ping {
  /** `https://host` or, where allowed, `http://host`. */
  readonly origin: string
  readonly status: number
  readonly challenge: string | undefined
}

/** An `Authorization` value and the only origin it may be sent to ([P3]). */
export interface Auth {
  readonly header: string
  readonly origin: string
}

export interface Options {
  /** Retry pacing; tests shorten it. */
  readonly retryBase?: Duration.DurationInput
}

/** Statuses worth another attempt of an idempotent request ([P7]). */
export const retryable: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])
export const maxAttempts = 5
const maxRedirects = 10

/** HTTP clients wrap the socket error; the innermost one says most ("ECONNREFUSED", a TLS reason). */
const innermost = (error: HttpClientError.HttpClientError): { readonly code: string | undefined; readonly message: string } => {
  let cause: unknown = error.cause
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause
  if (!(cause instanceof Error)) return { code: undefined, message: error.message }
  const code = (cause as { code?: unknown }).code
  return { code: typeof code === "string" ? code : undefined, message: cause.message }
}

export const causeText = (error: HttpClientError.HttpClientError): string => {
  const { code, message } = innermost(error)
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message
}

/** `Retry-After` as seconds or an HTTP date, capped at 60 s ([P7]). */
export const retryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined
  const seconds = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now
  return Number.isNaN(seconds) ? undefined : Math.min(Math.max(seconds, 0), 60_000)
}

export const drain = (response: HttpClientResponse.HttpClientResponse) => Effect.ignore(response.text)

export const make = (httpClient: HttpClient.HttpClient, tls: TlsPolicyService, options: Options = {}) =>
  Effect.gen(function*() {
    const client = httpClient.pipe(HttpClient.withTracerPropagation(false))
    const base = Duration.toMillis(options.retryBase ?? "250 millis")
    const mayUseHttp = (host: string) => Endpoint.isLoopback(host) || tls.isInsecure(host)

    const send = (method: Method, url: string, headers: Readonly<Record<string, string>>, body?: HttpBody.HttpBody) =>
      client.execute(
        HttpClientRequest.make(method)(url).pipe(
          HttpClientRequest.setHeaders(headers),
          (r) => body === undefined ? r : HttpClientRequest.setBody(r, body)
        )
      )

    const pingAt = (url: string) =>
      send("GET", url, {}).pipe(
        Effect.tap(drain),
        Effect.map((response): Ping => ({
          origin: new URL(url).origin,
          status: response.status,
          challenge: response.headers["www-authenticate"]
        }))
      )

    /**
     * `GET /v2/` once per registry and run: it picks the scheme (https, or http where allowed,
     * [P1]) and tells which auth the registry wants ([P2]). Concurrent callers share one ping.
     */
    const ping = yield* Effect.cachedFunction((registry: string) => {
      const host = Endpoint.apiHost(registry)
      return pingAt(`https://${host}/v2/`).pipe(
        Effect.catchTag("RequestError", (error): Effect.Effect<Ping, HttpClientError.HttpClientError | RegistryUnavailable> => {
          // A certificate that does not verify means the host speaks TLS: http would be a downgrade.
          if (isVerificationFailure(innermost(error).code)) {
            return Effect.fail(new RegistryUnavailable({
              registry,
              reason: causeText(error),
              message: `TLS to ${host} failed: ${causeText(error)}`,
              hint: `trust its CA by putting it in ${tls.certsDir || "~/.microagent/certs.d"}/${host}/ca.crt, or pass --insecure`
            }))
          }
          return mayUseHttp(host) ? pingAt(`http://${host}/v2/`) : Effect.fail(error)
        }),
        Effect.mapError((e) => e._tag === "RegistryUnavailable" ? e : RegistryUnavailable.of(registry, causeText(e)))
      )
    })

    /**
     * Sends a request, following redirects ([P3]) and retrying idempotent ones ([P7]).
     * `auth` is sent only to its own origin, never to a host a redirect leads to.
     */
    const execute = Effect.fn("Transport.execute")(function*(
      registry: string,
      request: Request,
      auth: Auth | undefined
    ) {
      const home = (yield* ping(registry)).origin
      const idempotent = request.retry ?? (request.method === "GET" || request.method === "HEAD")
      let attempt = 0
      while (true) {
        attempt++
        const outcome = yield* follow(registry, home, request, auth).pipe(Effect.either)
        const last = attempt >= maxAttempts || !idempotent
        if (outcome._tag === "Right") {
          const response = outcome.right
          if (last || !retryable.has(response.status)) return response
          yield* drain(response)
          yield* pause(attempt, retryAfter(response.headers["retry-after"], Date.now()))
        } else {
          if (last) {
            return yield* RegistryUnavailable.of(
              registry,
              attempt > 1 ? `${outcome.left.reason} (after ${attempt} attempts)` : outcome.left.reason
            )
          }
          yield* pause(attempt, undefined)
        }
      }
    })

    /** Exponential backoff with full jitter from 250 ms, capped at 30 s; `Retry-After` wins. */
    const pause = (attempt: number, hinted: number | undefined) =>
      Effect.gen(function*() {
        const ceiling = Math.min(base * 2 ** (attempt - 1), 30_000)
        const wait = hinted ?? Math.round((yield* Random.next) * ceiling)
        yield* Effect.sleep(Duration.millis(wait))
      })

    const follow = (registry: string, home: string, request: Request, auth: Auth | undefined) =>
      Effect.gen(function*() {
        let url = new URL(request.url, home)
        for (let hop = 0; ; hop++) {
          const headers = { ...request.headers, ...(auth && url.origin === auth.origin ? { authorization: auth.header } : {}) }
          const response = yield* send(request.method, url.toString(), headers, request.body?.()).pipe(
            Effect.mapError((e) => RegistryUnavailable.of(registry, causeText(e)))
          )
          const location = response.headers["location"]
          const redirect = [301, 302, 303, 307, 308].includes(response.status) && location !== undefined &&
            (request.method === "GET" || request.method === "HEAD")
          if (!redirect) return response
          yield* drain(response)
          if (hop >= maxRedirects) return yield* RegistryUnavailable.of(registry, `more than ${maxRedirects} redirects`)
          const next = new URL(location, url)
          if (url.protocol === "https:" && next.protocol !== "https:") {
            return yield* RegistryUnavailable.of(registry, `refused a redirect from https to ${next.protocol.slice(0, -1)}`)
          }
          url = next
        }
      })

    return { ping, execute, pause }
  })

export type Transport = Effect.Effect.Success<ReturnType<typeof make>>
