/**
 * Authenticated requests to a registry ([P2], [C12]): credentials from CredentialResolver per
 * (registry, repository), Basic or Bearer as the registry's challenge asks, tokens cached per
 * (registry, scope set) with one fetch shared by concurrent requests, and one refresh-and-retry
 * on 401 or `insufficient_scope`.
 *
 * Nothing secret leaves through it (SPEC §5): every credential it resolves and every token it
 * fetches is known to its `redact`, which its errors and the error bodies it hands out have
 * been through; a token realm that would carry credentials from https to plain http, or is not
 * http(s) at all, is refused before anything is sent to it ([P1], [P2]).
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { CredentialResolverService } from "../CredentialResolver.js"
import * as Challenge from "../domain/Challenge.js"
import * as Credential from "../domain/Credential.js"
import { type AuthFileError, MissingCredentials, RegistryDenied, RegistryUnavailable, type UsageError } from "../domain/Errors.js"
import * as Body from "./Body.js"
import * as Endpoint from "./Endpoint.js"
import * as Transport from "./Transport.js"

export type Action = "pull" | "push" | "delete"

export interface RepositoryScope {
  readonly repository: string
  readonly actions: ReadonlyArray<Action>
  /** What the request does, in the words of a refusal, when its action alone would mislead: "list tags of". */
  readonly doing?: string
}

/** The registry's list of repositories ([M4]): `registry:catalog:*`, no repository. */
export interface CatalogScope {
  readonly catalog: true
}

export type Scope = RepositoryScope | CatalogScope

export const catalog: CatalogScope = { catalog: true }

/**
 * `repository:<name>:<actions>`, push before pull: some registries read only the first action
 * ([P2]); or `registry:catalog:*`.
 */
export const scopeText = (scope: Scope): string =>
  "catalog" in scope
    ? "registry:catalog:*"
    : `repository:${scope.repository}:${[...scope.actions].sort((a, b) => order(a) - order(b)).join(",")}`
const order = (action: string) => ["push", "pull", "delete"].indexOf(action)

/** The repository the first scope names, whose credentials a request uses; none for the catalog. */
const repositoryOf = (scopes: ReadonlyArray<Scope>): string | undefined => {
  const first = scopes[0]
  return first === undefined || "catalog" in first ? undefined : first.repository
}

/** What a request was for, in the words of a refusal. */
const actionOf = (scopes: ReadonlyArray<Scope>): string => {
  const first = scopes[0]
  if (first === undefined) return "pull"
  if ("catalog" in first) return "catalog"
  return (["delete", "push"] as const).find((a) => first.actions.includes(a)) ?? "pull"
}

/** What the first scope says its request does, when it says. */
const doingOf = (scopes: ReadonlyArray<Scope>): string | undefined => {
  const first = scopes[0]
  return first === undefined || "catalog" in first ? undefined : first.doing
}

export type AuthError = AuthFileError | UsageError | MissingCredentials | RegistryDenied | RegistryUnavailable

interface CachedToken {
  readonly deferred: Deferred.Deferred<string, AuthError>
  /** Unknown while the fetch runs. */
  expiresAt: number | undefined
}

/** A token answer ([P2]): `token` or `access_token`; `expires_in` in seconds. */
const TokenAnswer = Schema.parseJson(Schema.Struct({
  token: Schema.optional(Schema.Unknown),
  access_token: Schema.optional(Schema.Unknown),
  expires_in: Schema.optional(Schema.Unknown)
}))

/** A token server's or registry's own words: distribution's `errors`, or OAuth2's `error`. */
const ErrorAnswer = Schema.parseJson(Schema.Struct({
  errors: Schema.optional(Schema.Array(Schema.Struct({
    code: Schema.optional(Schema.Unknown),
    message: Schema.optional(Schema.Unknown)
  }))),
  error: Schema.optional(Schema.Unknown),
  error_description: Schema.optional(Schema.Unknown),
  details: Schema.optional(Schema.Unknown)
}))

const decodeToken = Schema.decodeUnknownEither(TokenAnswer)
const decodeError = Schema.decodeUnknownEither(ErrorAnswer)

const text = (u: unknown): string => typeof u === "string" ? u : ""

/** What a token server's error body says, in a few words; empty when it says nothing readable. */
const errorWords = (body: string): string =>
  Either.match(decodeError(body), {
    onLeft: () => "",
    onRight: (e) => {
      const first = e.errors?.[0]
      const words = first !== undefined
        ? [text(first.code), text(first.message)]
        : [text(e.error), text(e.error_description), text(e.details)]
      return words.filter((w) => w !== "").join(" ")
    }
  })

/**
 * A header value carries only visible ASCII: a token with a space, CR, LF or another control
 * character would split or break the `Authorization` header ([H2]).
 */
const headerSafe = /^[\x21-\x7e]+$/

type TokenField = { readonly token: string; readonly expiresIn: number }

/** The token of an answer, or why there is none that can be used. */
const tokenField = (body: string): Either.Either<TokenField, string> => {
  const decoded = decodeToken(body)
  if (Either.isLeft(decoded)) return Either.left("sent an answer that is not a JSON token object")
  const { access_token, expires_in, token } = decoded.right
  const value = typeof token === "string" && token !== "" ? token : typeof access_token === "string" && access_token !== "" ? access_token : undefined
  if (value === undefined) return Either.left("sent no token")
  if (!headerSafe.test(value)) return Either.left("sent a token that cannot go into a header (it holds spaces or control characters); refused")
  // expires_in defaults to 60 s, and no token is taken to live less than that ([P2]).
  const seconds = typeof expires_in === "number" && Number.isFinite(expires_in) ? expires_in : 60
  return Either.right({ token: value, expiresIn: Math.max(seconds, 60) })
}

/** A body of at most `limit` bytes as text, or why not (larger, or broken off). */
const smallText = (response: HttpClientResponse.HttpClientResponse, limit: number) =>
  Body.readUpTo(response, limit).pipe(
    Effect.map((bytes) => new TextDecoder().decode(bytes)),
    Effect.either
  )

const unavailable = (registry: string, reason: string, hint?: string): RegistryUnavailable => {
  const plain = RegistryUnavailable.of(registry, reason)
  return hint === undefined ? plain : new RegistryUnavailable({ registry, reason: plain.reason, message: plain.message, hint })
}

/** Headers a rewritten body must not keep: they described the old one. */
const bodyHeaders = new Set(["content-length", "transfer-encoding", "content-encoding"])

/**
 * `secrets` may be shared with whoever else prints what a registry said (the transport's logs):
 * everything this authorizer resolves or fetches is added to it.
 */
export const make = (
  transport: Transport.Transport,
  resolver: CredentialResolverService,
  secrets: Credential.Redactor = Credential.makeRedactor()
) => {
  const tokens = new Map<string, CachedToken>()
  /** `text` with every credential and token this authorizer has used replaced by `<redacted>`. */
  const redact = (text: string): string => secrets.redact(text)
  /** An error whose message, reason, hint (and stack) have been through `redact`. */
  const redactError: <E>(error: E) => E = Credential.redactError(redact)

  const denied = (registry: string, scopes: ReadonlyArray<Scope>, credential: Credential.Resolved, status: number) => {
    const repository = repositoryOf(scopes)
    const action = actionOf(scopes)
    if (credential._tag === "Anonymous") {
      return new MissingCredentials({
        registry,
        message: `${registry} requires credentials to ${doingOf(scopes) ?? (action === "catalog" ? "list its repositories" : action)}${repository ? ` ${repository}` : ""} (HTTP ${status})`,
        hint: `microagent registry login ${registry} -u <user>`
      })
    }
    return new RegistryDenied({
      registry,
      action,
      source: credential.source.file,
      message: `${registry} denied ${action} access${repository ? ` to ${repository}` : ""} for user "${credential.username}" (HTTP ${status}; credentials from ${credential.source.file}, key ${credential.source.key})`,
      // `registry login` cannot help credentials from $REGISTRY_AUTH_FILE: that file is read first (issue 13).
      hint: credential.source.file === resolver.authFile
        ? `check that user's rights, or fix the "${credential.source.key}" entry in ${credential.source.file}, or unset REGISTRY_AUTH_FILE: that file is read before microagent's own store, so registry login would not help`
        : `check that user's rights, or replace the credentials: microagent registry login ${credential.source.key} -u <user>` +
          " (microagent registry list shows where each comes from)",
      ...(repository === undefined ? {} : { repository })
    })
  }

  /**
   * The token endpoint of a Bearer challenge: http(s) only, and never plain http when the
   * registry answered over https, unless the realm is on a loopback host ([P1]): credentials
   * (and the token that comes back) would cross the network in clear. Checked before anything
   * is sent to it.
   */
  const tokenEndpoint = (registry: string, challenge: Challenge.Challenge, pingOrigin: string) => {
    const parsed = Challenge.realmUrl(challenge, pingOrigin)
    if (Either.isLeft(parsed)) {
      return Effect.fail(unavailable(registry, parsed.left, "the registry's token server is misconfigured; nothing was sent to it"))
    }
    const url = parsed.right
    if (pingOrigin.startsWith("https:") && url.protocol === "http:" && !Endpoint.isLoopback(url.host)) {
      return Effect.fail(unavailable(
        registry,
        `it is served over https but its Bearer challenge names a plain-http token realm (${url.origin}); refused, so that no credentials cross the network in clear`,
        "nothing was sent to that realm; the registry's token server must be reached over https"
      ))
    }
    return Effect.succeed(url)
  }

  /** Asks the realm for a token ([P2]): OAuth2 POST with an identity token (GET on 404/405), else GET. */
  const fetchToken = (
    registry: string,
    challenge: Challenge.Challenge,
    pingOrigin: string,
    scopes: ReadonlyArray<string>,
    credential: Credential.Resolved,
    forScopes: ReadonlyArray<Scope>
  ) =>
    Effect.gen(function*() {
      const url = yield* tokenEndpoint(registry, challenge, pingOrigin)
      const server = `its token server ${url.origin}`
      const service = challenge.params["service"]
      const get = () => {
        const u = new URL(url)
        if (service) u.searchParams.set("service", service)
        for (const s of scopes) u.searchParams.append("scope", s)
        if (credential._tag === "Credential" && credential.username) u.searchParams.set("account", credential.username)
        const auth = credential._tag === "Credential" && Credential.trimPassword(Redacted.value(credential.password)) !== ""
          ? { header: Credential.basicHeader(credential.username, credential.password), origin: u.origin }
          : undefined
        return transport.execute(registry, { method: "GET", url: u.toString() }, auth)
      }
      const post = (identityToken: Redacted.Redacted<string>) =>
        transport.execute(registry, {
          method: "POST",
          url: url.toString(),
          retry: true,
          body: () =>
            HttpBody.text(
              new URLSearchParams({
                grant_type: "refresh_token",
                refresh_token: Redacted.value(identityToken),
                client_id: "microagent",
                ...(service ? { service } : {}),
                ...(scopes.length ? { scope: scopes.join(" ") } : {})
              }).toString(),
              "application/x-www-form-urlencoded"
            )
        }, undefined)
      let response = credential._tag === "Credential" && credential.identityToken !== undefined
        ? yield* post(credential.identityToken)
        : yield* get()
      if (response.status === 404 || response.status === 405) {
        yield* Transport.drain(response)
        response = yield* get()
      }
      if (response.status === 401 || response.status === 403) {
        yield* Transport.drain(response)
        return yield* denied(registry, forScopes, credential, response.status)
      }
      const body = yield* smallText(response, Transport.maxSmallBody)
      if (response.status !== 200) {
        // Its own words help ("invalid scope"), once no secret is left in them and they fit on a line.
        const said = Either.isRight(body) ? errorWords(body.right) : ""
        return yield* unavailable(
          registry,
          `${server} answered HTTP ${response.status}${said === "" ? "" : `: ${Challenge.quote(redact(said))}`}`
        )
      }
      if (Either.isLeft(body)) {
        return yield* unavailable(
          registry,
          body.left._tag === "BodyTooLarge"
            ? `${server} sent an answer larger than ${Transport.maxSmallBody / 1024 / 1024} MiB; refused`
            : `${server} broke off its answer (${body.left.reason})`
        )
      }
      const field = tokenField(body.right)
      if (Either.isLeft(field)) return yield* unavailable(registry, `${server} ${field.left}`)
      secrets.add(field.right.token)
      return field.right
    })

  /**
   * One token per (registry, scope set), cached while it lives by the Clock (so tests can age
   * it); concurrent requests share one fetch.
   */
  const token = (key: string, fetch: Effect.Effect<TokenField, AuthError>) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const hit = tokens.get(key)
      if (hit && (hit.expiresAt === undefined || hit.expiresAt > now)) return Deferred.await(hit.deferred)
      const entry: CachedToken = { deferred: Deferred.unsafeMake(FiberId.none), expiresAt: undefined }
      tokens.set(key, entry)
      return fetch.pipe(
        Effect.onExit((exit) =>
          Effect.flatMap(Clock.currentTimeMillis, (fetched) =>
            Effect.sync(() => {
              // Renew a little before the registry would refuse it.
              if (Exit.isSuccess(exit)) entry.expiresAt = fetched + (exit.value.expiresIn - 5) * 1000
              else if (tokens.get(key) === entry) tokens.delete(key)
            })).pipe(Effect.zipRight(Deferred.done(entry.deferred, Exit.map(exit, (t) => t.token))))
        ),
        Effect.map((t) => t.token)
      )
    })

  const forget = (key: string) => Effect.sync(() => tokens.delete(key))

  const authorize = (
    registry: string,
    scopes: ReadonlyArray<Scope>,
    credential: Credential.Resolved,
    challenge: Challenge.Challenge | undefined,
    pingOrigin: string,
    extraScopes: ReadonlyArray<string>
  ) =>
    Effect.gen(function*() {
      if (challenge === undefined) return undefined
      if (challenge.scheme === "basic") {
        return credential._tag === "Credential"
          ? { header: Credential.basicHeader(credential.username, credential.password), origin: pingOrigin }
          : undefined
      }
      const wanted = [...new Set([...scopes.map(scopeText), ...extraScopes])]
      const key = `${registry}\n${credential._tag === "Credential" ? `${credential.source.file}\n${credential.source.key}` : ""}\n${[...wanted].sort().join(" ")}`
      const value = yield* token(key, fetchToken(registry, challenge, pingOrigin, wanted, credential, scopes))
      return { header: `Bearer ${value}`, origin: pingOrigin, key }
    })

  /**
   * An error answer (4xx, 5xx) with its body read (up to 1 MiB; more, or a broken one, is no
   * body) and passed through `redact`, headers too: whoever reads what the registry said gets
   * no credential back. Success bodies (manifests, blobs) are not touched.
   */
  const scrubbed = (registry: string, response: HttpClientResponse.HttpClientResponse) =>
    Effect.gen(function*() {
      if (response.status < 400 || secrets.isEmpty()) return response
      if (response.status > 599) {
        yield* Transport.drain(response)
        return yield* unavailable(registry, `it answered with HTTP status ${response.status}, which HTTP does not define`)
      }
      const body = yield* smallText(response, Transport.maxSmallBody)
      const headers: Array<[string, string]> = Object.entries(response.headers)
        .filter(([name]) => !bodyHeaders.has(name.toLowerCase()))
        .map(([name, value]) => [name, redact(value)])
      const web = (() => {
        const content = Either.isRight(body) ? redact(body.right) : ""
        try {
          return new Response(content, { status: response.status, headers })
        } catch {
          return new Response(content, { status: response.status })
        }
      })()
      return HttpClientResponse.fromWeb(response.request, web)
    })

  /**
   * Sends a request with the credentials for `scopes[0].repository`; on 401 (or 403 naming
   * `insufficient_scope`) refreshes once with the challenge's scope and retries once.
   */
  const call = Effect.fn("Auth.call")(
    function*(
      registry: string,
      scopes: ReadonlyArray<Scope>,
      request: Transport.Request
    ) {
      const ping = yield* transport.ping(registry)
      const credential = yield* resolver.resolve(registry, repositoryOf(scopes) ?? "")
      secrets.addCredential(credential)
      const pinged = ping.status === 401 ? Challenge.preferred(Challenge.parse(ping.challenge ?? "")) : undefined
      yield* Effect.logDebug(
        `${registry}: ${credential._tag === "Credential" ? `user "${credential.username}" from ${credential.source.file}, key ${credential.source.key}` : "anonymous"}` +
          `; the registry asks for ${pinged === undefined ? "no credentials" : pinged.scheme === "bearer" ? "a Bearer token" : "Basic"}`
      )
      const first = yield* authorize(registry, scopes, credential, pinged, ping.origin, [])
      const response = yield* transport.execute(registry, request, first)
      if (response.status === 403 && !needsRetry(response)) {
        yield* Transport.drain(response)
        return yield* denied(registry, scopes, credential, response.status)
      }
      if (!needsRetry(response)) return yield* scrubbed(registry, response)
      yield* Transport.drain(response)
      const challenge = Challenge.preferred(Challenge.parse(response.headers["www-authenticate"] ?? "")) ?? pinged
      if (first && "key" in first && first.key) yield* forget(first.key)
      const extra = challenge?.scheme === "bearer" && challenge.params["scope"] ? challenge.params["scope"].split(" ") : []
      const second = yield* authorize(registry, scopes, credential, challenge, ping.origin, extra)
      if (second === undefined && first === undefined && credential._tag === "Anonymous") {
        return yield* denied(registry, scopes, credential, response.status)
      }
      const retried = yield* transport.execute(registry, request, second)
      if (!needsRetry(retried)) return yield* scrubbed(registry, retried)
      yield* Transport.drain(retried)
      return yield* denied(registry, scopes, credential, retried.status)
    },
    Effect.mapError(redactError)
  )

  return { call, redact, redactError }
}

const needsRetry = (response: HttpClientResponse.HttpClientResponse): boolean =>
  response.status === 401 ||
  response.status === 403 && /insufficient_scope/.test(response.headers["www-authenticate"] ?? "")

export type Authorizer = ReturnType<typeof make>
