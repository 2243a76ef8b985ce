/**
 * Authenticated requests to a registry ([P2], [C12]): credentials from CredentialResolver per
 * (registry, repository), Basic or Bearer as the registry's challenge asks, tokens cached per
 * (registry, scope set) with one fetch shared by concurrent requests, and one refresh-and-retry
 * on 401 or `insufficient_scope`.
 */
import * as HttpBody from "@effect/platform/HttpBody"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Redacted from "effect/Redacted"
import type { CredentialResolverService } from "../CredentialResolver.js"
import * as Challenge from "../domain/Challenge.js"
import type * as Credential from "../domain/Credential.js"
import { type AuthFileError, MissingCredentials, RegistryDenied, RegistryUnavailable, type UsageError } from "../domain/Errors.js"
import * as Transport from "./Transport.js"

export type Action = "pull" | "push" | "delete"

export interface Scope {
  readonly repository: string
  readonly actions: ReadonlyArray<Action>
}

/** `repository:<name>:<actions>`, push before pull: some registries read only the first action ([P2]). */
export const scopeText = (scope: Scope): string =>
  `repository:${scope.repository}:${[...scope.actions].sort((a, b) => order(a) - order(b)).join(",")}`
const order = (action: string) => ["push", "pull", "delete"].indexOf(action)

export type AuthError = AuthFileError | UsageError | MissingCredentials | RegistryDenied | RegistryUnavailable

interface CachedToken {
  readonly deferred: Deferred.Deferred<string, AuthError>
  /** Unknown while the fetch runs. */
  expiresAt: number | undefined
}

const tokenField = (body: unknown): { token: string; expiresIn: number } | undefined => {
  if (typeof body !== "object" || body === null) return undefined
  const { access_token, expires_in, token } = body as Record<string, unknown>
  const value = typeof token === "string" && token !== "" ? token : typeof access_token === "string" && access_token !== "" ? access_token : undefined
  // expires_in defaults to 60 s, and no token is taken to live less than that ([P2]).
  return value === undefined ? undefined : { token: value, expiresIn: Math.max(typeof expires_in === "number" ? expires_in : 60, 60) }
}

const basic = (username: string, password: Redacted.Redacted<string>) =>
  `Basic ${Buffer.from(`${username}:${Redacted.value(password)}`, "utf8").toString("base64")}`

export const make = (transport: Transport.Transport, resolver: CredentialResolverService) => {
  const tokens = new Map<string, CachedToken>()

  const denied = (registry: string, scopes: ReadonlyArray<Scope>, credential: Credential.Resolved, status: number) => {
    const repository = scopes[0]?.repository
    const action = scopes[0]?.actions.includes("push") ? "push" : "pull"
    if (credential._tag === "Anonymous") {
      return new MissingCredentials({
        registry,
        message: `${registry} requires credentials to ${action}${repository ? ` ${repository}` : ""} (HTTP ${status})`,
        hint: `microagent registry login ${registry} -u <user>`
      })
    }
    return new RegistryDenied({
      registry,
      action,
      source: credential.source.file,
      message: `${registry} denied ${action} access${repository ? ` to ${repository}` : ""} for user "${credential.username}" (HTTP ${status}; credentials from ${credential.source.file}, key ${credential.source.key})`,
      hint: `check that user's rights, or replace the credentials: microagent registry login ${credential.source.key} -u <user>` +
        " (microagent registry list shows where each comes from)",
      ...(repository === undefined ? {} : { repository })
    })
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
      const realm = challenge.params["realm"]
      if (!realm) return yield* RegistryUnavailable.of(registry, "its Bearer challenge names no realm")
      const url = new URL(realm, pingOrigin)
      const service = challenge.params["service"]
      const get = () => {
        const u = new URL(url)
        if (service) u.searchParams.set("service", service)
        for (const s of scopes) u.searchParams.append("scope", s)
        if (credential._tag === "Credential" && credential.username) u.searchParams.set("account", credential.username)
        const auth = credential._tag === "Credential" && Redacted.value(credential.password) !== ""
          ? { header: basic(credential.username, credential.password), origin: u.origin }
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
      if (response.status !== 200) {
        yield* Transport.drain(response)
        return yield* RegistryUnavailable.of(registry, `its token server ${url.origin} answered HTTP ${response.status}`)
      }
      const body = tokenField(yield* response.json.pipe(Effect.orElseSucceed(() => undefined)))
      if (body === undefined) return yield* RegistryUnavailable.of(registry, `its token server ${url.origin} sent no token`)
      return body
    })

  /** One token per (registry, scope set); concurrent requests share one fetch. */
  const token = (key: string, fetch: Effect.Effect<{ token: string; expiresIn: number }, AuthError>) =>
    Effect.suspend(() => {
      const hit = tokens.get(key)
      if (hit && (hit.expiresAt === undefined || hit.expiresAt > Date.now())) return Deferred.await(hit.deferred)
      const entry: CachedToken = { deferred: Deferred.unsafeMake(FiberId.none), expiresAt: undefined }
      tokens.set(key, entry)
      return fetch.pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            // Renew a little before the registry would refuse it.
            if (Exit.isSuccess(exit)) entry.expiresAt = Date.now() + (exit.value.expiresIn - 5) * 1000
            else if (tokens.get(key) === entry) tokens.delete(key)
          }).pipe(Effect.zipRight(Deferred.done(entry.deferred, Exit.map(exit, (t) => t.token))))
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
        return credential._tag === "Credential" ? { header: basic(credential.username, credential.password), origin: pingOrigin } : undefined
      }
      const wanted = [...new Set([...scopes.map(scopeText), ...extraScopes])]
      const key = `${registry}\n${credential._tag === "Credential" ? `${credential.source.file}\n${credential.source.key}` : ""}\n${[...wanted].sort().join(" ")}`
      const value = yield* token(key, fetchToken(registry, challenge, pingOrigin, wanted, credential, scopes))
      return { header: `Bearer ${value}`, origin: pingOrigin, key }
    })

  /**
   * Sends a request with the credentials for `scopes[0].repository`; on 401 (or 403 naming
   * `insufficient_scope`) refreshes once with the challenge's scope and retries once.
   */
  const call = Effect.fn("Auth.call")(function*(
    registry: string,
    scopes: ReadonlyArray<Scope>,
    request: Transport.Request
  ) {
    const ping = yield* transport.ping(registry)
    const credential = yield* resolver.resolve(registry, scopes[0]?.repository ?? "")
    const pinged = ping.status === 401 ? Challenge.preferred(Challenge.parse(ping.challenge ?? "")) : undefined
    const first = yield* authorize(registry, scopes, credential, pinged, ping.origin, [])
    const response = yield* transport.execute(registry, request, first)
    if (response.status === 403 && !needsRetry(response)) {
      yield* Transport.drain(response)
      return yield* denied(registry, scopes, credential, response.status)
    }
    if (!needsRetry(response)) return response
    yield* Transport.drain(response)
    const challenge = Challenge.preferred(Challenge.parse(response.headers["www-authenticate"] ?? "")) ?? pinged
    if (first && "key" in first && first.key) yield* forget(first.key)
    const extra = challenge?.scheme === "bearer" && challenge.params["scope"] ? challenge.params["scope"].split(" ") : []
    const second = yield* authorize(registry, scopes, credential, challenge, ping.origin, extra)
    if (second === undefined && first === undefined && credential._tag === "Anonymous") {
      return yield* denied(registry, scopes, credential, response.status)
    }
    const retried = yield* transport.execute(registry, request, second)
    if (!needsRetry(retried)) return retried
    yield* Transport.drain(retried)
    return yield* denied(registry, scopes, credential, retried.status)
  })

  return { call }
}

const needsRetry = (response: HttpClientResponse.HttpClientResponse): boolean =>
  response.status === 401 ||
  response.status === 403 && /insufficient_scope/.test(response.headers["www-authenticate"] ?? "")

export type Authorizer = ReturnType<typeof make>
