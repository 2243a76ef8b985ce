/**
 * How a request reaches a registry ([P1], [P3], [P7]): the scheme (https, or http for loopback
 * and `--insecure` hosts when https fails), redirects followed here with `Authorization`
 * dropped across origins, and retries with backoff for idempotent requests. What a registry
 * sends back is bounded here too ([H2]): a redirect's or a retried answer's body is not read
 * (or, when declared small, read to keep the connection), and the whole-body readers of every
 * response it hands out stop at 1 MiB; a registry's own words reach a message on one line,
 * escaped and capped ([§5]).
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { RegistryUnavailable } from "../domain/Errors.js"
import * as Body from "./Body.js"
import * as Endpoint from "./Endpoint.js"
import * as Retry from "./Retry.js"
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

const maxRedirects = 10

/** The path of a request's URL, for messages: an upload `Location`'s query may carry a session secret. */
const pathOf = (url: string): string => {
  const at = url.search(/[?#]/)
  const path = at === -1 ? url : url.slice(0, at)
  return oneLine(path.startsWith("/") ? path : new URL(path).pathname, 200)
}

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
  // A TLS error quotes the certificate's names, which the server chose.
  return oneLine(code !== undefined && !message.includes(code) ? `${code}: ${message}` : message, 500)
}

// ---- what a registry sends: capped and made printable ([H2], [§5]) ---------------------------

/** Error bodies and token answers: every response's whole-body readers stop here ([H2]). */
export const maxSmallBody = 1024 * 1024
/** A page of a tag list (or of a catalog) ([H2]). */
export const maxPage = 4 * 1024 * 1024

const named: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" }

/**
 * Text from a registry as one printable line: line breaks, tabs, C0/C1 control characters (ESC,
 * OSC, BEL...), DEL and the Unicode line separators and bidirectional controls become visible
 * escapes (`\n`, `\x1b`, `\u202e`), so no registry can forge a line, a `hint:`, a colour or a
 * terminal title; past `max` characters it is cut, with `…`.
 */
export const oneLine = (text: string, max = 300): string => {
  const escaped = text.replace(
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (c) => named[c] ?? (c.charCodeAt(0) <= 0xff ? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}` : `\\u${c.charCodeAt(0).toString(16)}`)
  )
  const chars = Array.from(escaped)
  return chars.length > max ? `${chars.slice(0, max).join("")}…` : escaped
}

const ErrorBody = Schema.parseJson(Schema.Struct({
  errors: Schema.NonEmptyArray(Schema.Struct({
    code: Schema.optional(Schema.Unknown),
    message: Schema.optional(Schema.Unknown)
  }))
}))
const decodeErrorBody = Schema.decodeUnknownOption(ErrorBody)

/**
 * The registry's own words about a failure (`{"errors":[{code,message}]}`, the first one) as
 * `": CODE message"`, read up to 1 MiB, on one line and capped ([§5]); "" when it said nothing
 * usable. Never fails.
 */
export const registryMessage = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<string> =>
  Body.capped(response, maxSmallBody).text.pipe(
    Effect.map((text) => {
      const first = Option.getOrUndefined(Option.map(decodeErrorBody(text), (body) => body.errors[0]))
      const words = [first?.code, first?.message].filter((w): w is string => typeof w === "string" && w !== "")
      return words.length === 0 ? "" : `: ${oneLine(words.join(" "))}`
    }),
    Effect.orElseSucceed(() => "")
  )

/** A busy answer as Retry.Busy, with the registry's own words (read up to 1 MiB, which also frees the connection). */
export const busy = (registry: string, what: string, response: HttpClientResponse.HttpClientResponse) =>
  Effect.flatMap(registryMessage(response), (said) => Retry.busy(registry, what, response, said))

/**
 * A whole body of at most `limit` bytes, or RegistryUnavailable naming `what` and the cap: for
 * a body a caller needs whole (a tag page), read without ever taking more than the cap ([H2]).
 */
export const readCapped = (
  registry: string,
  response: HttpClientResponse.HttpClientResponse,
  limit: number,
  what: string
): Effect.Effect<Uint8Array, RegistryUnavailable> =>
  Body.readUpTo(response, limit).pipe(
    Effect.mapError((e) =>
      RegistryUnavailable.of(
        registry,
        e._tag === "BodyTooLarge" ? `${what} larger than ${Body.formatLimit(limit)}` : `${what} broke off: ${oneLine(e.reason)}`
      )
    )
  )

/**
 * Done with a response without wanting its body: read when declared small (the connection is
 * kept), otherwise not read at all but destroyed ([H2]). Never fails.
 */
export const drain = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<void> => Body.discard(response)

export const make = (httpClient: HttpClient.HttpClient, tls: TlsPolicyService, options: Options = {}) =>
  Effect.gen(function*() {
    const client = httpClient.pipe(HttpClient.withTracerPropagation(false))
    const retrying = Retry.retrying(options.retryBase ?? "250 millis")
    const mayUseHttp = (host: string) => Endpoint.isLoopback(host) || tls.isInsecure(host)

    /** One request; at `--log-level debug`, its method, origin, path (no query) and status (issue 13, item 3). */
    const send = (method: Method, url: string, headers: Readonly<Record<string, string>>, body?: HttpBody.HttpBody) =>
      client.execute(
        HttpClientRequest.make(method)(url).pipe(
          HttpClientRequest.setHeaders(headers),
          (r) => body === undefined ? r : HttpClientRequest.setBody(r, body)
        )
      ).pipe(
        Effect.tapBoth({
          onSuccess: (response) => Effect.logDebug(`${method} ${new URL(url).origin}${pathOf(url)} → HTTP ${response.status}`),
          onFailure: (error) => Effect.logDebug(`${method} ${new URL(url).origin}${pathOf(url)} → ${causeText(error)}`)
        })
      )

    /** One `GET /v2/`; a busy answer is a Busy, for the retry policy. */
    const pingAt = (registry: string, url: string) =>
      send("GET", url, {}).pipe(
        Effect.flatMap((response) =>
          Effect.zipRight(
            drain(response),
            Retry.statuses.has(response.status)
              ? Retry.busy(registry, "/v2/", response, "")
              : Effect.succeed<Ping>({ origin: new URL(url).origin, status: response.status, challenge: response.headers["www-authenticate"] })
          )
        )
      )

    const pingOnce = (registry: string) => {
      const host = Endpoint.apiHost(registry)
      return pingAt(registry, `https://${host}/v2/`).pipe(
        Effect.catchTag("RequestError", (error): Effect.Effect<Ping, HttpClientError.HttpClientError | RegistryUnavailable | Retry.Busy> => {
          // A certificate that does not verify means the host speaks TLS: http would be a downgrade.
          if (isVerificationFailure(innermost(error).code)) {
            return Effect.fail(new RegistryUnavailable({
              registry,
              reason: causeText(error),
              message: `TLS to ${host} failed: ${causeText(error)}`,
              hint: `trust its CA by putting it in ${tls.certsDir || "~/.microagent/certs.d"}/${host}/ca.crt, or pass --insecure`,
              kind: "refused"
            }))
          }
          return mayUseHttp(host) ? pingAt(registry, `http://${host}/v2/`) : Effect.fail(error)
        }),
        Effect.mapError((e) => e._tag === "RegistryUnavailable" || e._tag === "Busy" ? e : RegistryUnavailable.of(registry, causeText(e), "connection"))
      )
    }

    /** The ping under the retry policy of every idempotent request ([H5], [P7]); TLS refusals are final. */
    const pingRetried = (registry: string) =>
      retrying(pingOnce(registry))

    /**
     * `GET /v2/` once per registry and run: it picks the scheme (https, or http where allowed,
     * [P1]) and tells which auth the registry wants ([P2]). Concurrent callers share one ping;
     * only an answer is remembered, so after a failed ping the next request pings again ([H5]).
     */
    const answered = new Map<string, Ping>()
    const inFlight = new Map<string, Deferred.Deferred<Ping, RegistryUnavailable>>()
    const ping = (registry: string): Effect.Effect<Ping, RegistryUnavailable> =>
      Effect.suspend(() => {
        const known = answered.get(registry)
        if (known !== undefined) return Effect.succeed(known)
        const pending = inFlight.get(registry)
        if (pending !== undefined) return Deferred.await(pending)
        return Effect.flatMap(Deferred.make<Ping, RegistryUnavailable>(), (deferred) => {
          inFlight.set(registry, deferred)
          return pingRetried(registry).pipe(
            Effect.tap((answer) => Effect.sync(() => answered.set(registry, answer))),
            Effect.onExit((exit) => Effect.zipRight(Effect.sync(() => inFlight.delete(registry)), Deferred.done(deferred, exit)))
          )
        })
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
      const attempt = follow(registry, home, request, auth).pipe(
        Effect.flatMap((response) =>
          idempotent && Retry.statuses.has(response.status)
            // Read (1 MiB at most) for the registry's words, which also frees the connection.
            ? busy(registry, `${request.method} ${pathOf(request.url)}`, response)
            : Effect.succeed(response)
        )
      )
      const response = yield* (idempotent ? retrying(attempt) : Retry.once(attempt))
      // Whoever reads this body whole (an error's, a token's) reads at most 1 MiB of it ([H2]).
      return Body.capped(response, maxSmallBody)
    })

    const follow = (registry: string, home: string, request: Request, auth: Auth | undefined) =>
      Effect.gen(function*() {
        let url = new URL(request.url, home)
        for (let hop = 0; ; hop++) {
          const headers = { ...request.headers, ...(auth && url.origin === auth.origin ? { authorization: auth.header } : {}) }
          const response = yield* send(request.method, url.toString(), headers, request.body?.()).pipe(
            Effect.mapError((e) => RegistryUnavailable.of(registry, causeText(e), "connection"))
          )
          const location = response.headers["location"]
          const redirect = [301, 302, 303, 307, 308].includes(response.status) && location !== undefined &&
            (request.method === "GET" || request.method === "HEAD")
          if (!redirect) return response
          yield* drain(response)
          if (hop >= maxRedirects) return yield* RegistryUnavailable.of(registry, `more than ${maxRedirects} redirects`, "refused")
          const next = new URL(location, url)
          if (url.protocol === "https:" && next.protocol !== "https:") {
            return yield* RegistryUnavailable.of(registry, `refused a redirect from https to ${next.protocol.slice(0, -1)}`, "refused")
          }
          url = next
        }
      })

    return { ping, execute, retrying }
  })

export type Transport = Effect.Effect.Success<ReturnType<typeof make>>
