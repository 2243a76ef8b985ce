/**
 * RegistryClient: speaks the distribution protocol (SPEC §4): the login handshake ([L5]),
 * manifests ([P4]), blobs with resume ([P5]), uploads ([P6]) and tag lists ([P9]), over the
 * transport rules of [P1], [P3], [P7] and the auth of [P2].
 */
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { CredentialResolver } from "./CredentialResolver.js"
import * as Challenge from "./domain/Challenge.js"
import * as Credential from "./domain/Credential.js"
import * as Digest from "./domain/Digest.js"
import { DigestMismatch, NotFound, RegistryDenied, RegistryUnavailable, UsageError } from "./domain/Errors.js"
import * as Manifest from "./domain/Manifest.js"
import * as Auth from "./registry/Auth.js"
import * as Body from "./registry/Body.js"
import { TlsPolicy } from "./registry/TlsPolicy.js"
import * as Retry from "./registry/Retry.js"
import * as Transport from "./registry/Transport.js"

/** `verified`: the registry accepted the credentials; `unverified`: it asks for none ([L5]). */
export type LoginCheck = "verified" | "unverified"

export interface Repository {
  readonly registry: string
  readonly repository: string
}

export interface FetchedManifest {
  readonly bytes: Uint8Array
  readonly mediaType: string
  readonly digest: string
  readonly manifest: Manifest.Manifest
}

export type Error = Auth.AuthError | NotFound | DigestMismatch

export type UploadOutcome = "exists" | "mounted" | "uploaded"

export interface RegistryClientService {
  /** Checks credentials for a registry host[:port] the way [L5] says, without storing anything. */
  readonly checkLogin: (
    registry: string,
    username: string,
    password: Redacted.Redacted<string>
  ) => Effect.Effect<LoginCheck, RegistryDenied | RegistryUnavailable>
  /** A manifest by tag or digest, its digest computed from the exact bytes ([P4]). */
  readonly getManifest: (repo: Repository, reference: string) => Effect.Effect<FetchedManifest, Error>
  /**
   * A blob's bytes, verified: the stream fails with DigestMismatch instead of ending when size or
   * digest is wrong, and resumes with `Range` after a cut connection ([P5]).
   */
  readonly blob: (repo: Repository, descriptor: Manifest.Descriptor) => Stream.Stream<Uint8Array, Error>
  /**
   * The same bytes, handed to `onChunk` as they arrive; a promise it returns holds the download
   * back until it settles, and a rejected one stops it with ChunkRefused. The download is
   * verified when the effect succeeds. The fast path for writing a blob to disk.
   */
  readonly blobInto: (
    repo: Repository,
    descriptor: Manifest.Descriptor,
    onChunk: Body.OnChunk
  ) => Effect.Effect<void, Error | Body.ChunkRefused>
  /**
   * HEAD, then mount from `mountFrom` in the same registry, then POST + streaming PUT ([P6]).
   * A `body` marked with `Body.withNodeSource` is sent from that Node stream by a client that can.
   */
  readonly uploadBlob: (
    repo: Repository,
    descriptor: Manifest.Descriptor,
    body: () => Stream.Stream<Uint8Array, unknown>,
    mountFrom?: string
  ) => Effect.Effect<UploadOutcome, Error>
  readonly putManifest: (repo: Repository, reference: string, bytes: Uint8Array, mediaType: string) => Effect.Effect<void, Error>
  /**
   * Every tag, following `Link` pagination ([P9]); a `Link` that repeats a page or leads to
   * another host fails ([H3]). `onPage`, when given, has each page's tags as they come, so a
   * caller can show what was listed before such a failure.
   */
  readonly listTags: (
    repo: Repository,
    onPage?: (tags: ReadonlyArray<string>) => Effect.Effect<void>
  ) => Effect.Effect<ReadonlyArray<string>, Error>
  /**
   * Every repository of a registry (`/v2/_catalog`, scope `registry:catalog:*`), paginated and
   * guarded as `listTags` is ([M4], [H3]).
   */
  readonly listCatalog: (
    registry: string,
    onPage?: (repositories: ReadonlyArray<string>) => Effect.Effect<void>
  ) => Effect.Effect<ReadonlyArray<string>, Error>
  /**
   * The digest a tag points at now: the `Docker-Content-Digest` of a HEAD, or the digest of the
   * manifest's bytes when the registry sends none usable. A digest is returned as it is.
   * `forPush`: asked with a push's scopes, so the push that follows needs no other token.
   */
  readonly resolveDigest: (repo: Repository, reference: string, options?: { readonly forPush?: boolean }) => Effect.Effect<string, Error>
  /**
   * Deletes a manifest by digest, and with it every tag of the repository that points at it
   * ([M3]). A registry that has deletion disabled (405) fails with RegistryUnavailable whose
   * `reason` is `deletion-disabled`.
   */
  readonly deleteManifest: (repo: Repository, digest: string) => Effect.Effect<void, Error>
}

export class RegistryClient extends Context.Tag("microagent/RegistryClient")<RegistryClient, RegistryClientService>() {}

export interface Options {
  readonly transport?: Transport.Options
}

/** The registry's own words, capped and on one line ([§5]); already redacted by Auth ([H2]). */
const registryMessage = Transport.registryMessage

const unexpected = (registry: string, what: string, response: HttpClientResponse.HttpClientResponse) =>
  registryMessage(response).pipe(
    Effect.flatMap((said) => RegistryUnavailable.of(registry, `${what} answered HTTP ${response.status}${said}`))
  )

/**
 * An answer an operation retried as a whole (an upload, a blob or manifest with its body) did
 * not expect: Busy, for the retry policy, when its status is worth another attempt ([P7]).
 */
const unexpectedOrBusy = (registry: string, what: string, response: HttpClientResponse.HttpClientResponse) =>
  Retry.statuses.has(response.status)
    ? Transport.busy(registry, what, response)
    : unexpected(registry, what, response)

const notFound = (registry: string, what: string, response: HttpClientResponse.HttpClientResponse) =>
  registryMessage(response).pipe(
    Effect.flatMap((said) => new NotFound({ registry, what, message: `${what} not found on ${registry}${said}` }))
  )

const pull = (repository: string): ReadonlyArray<Auth.Scope> => [{ repository, actions: ["pull"] }]
const push = (repository: string, mountFrom?: string): ReadonlyArray<Auth.Scope> => [
  { repository, actions: ["push", "pull"] },
  ...(mountFrom ? [{ repository: mountFrom, actions: ["pull"] as const }] : [])
]

/** Deleting needs its own action, which distribution's token auth checks for a DELETE ([M3]). */
const remove = (repository: string): ReadonlyArray<Auth.Scope> => [{ repository, actions: ["push", "pull", "delete"] }]

const mismatch = (expected: string, actual: string, what: string, registry?: string) =>
  new DigestMismatch({
    expected,
    actual,
    message: `${what}${registry === undefined ? "" : ` from ${registry}`}: digest mismatch, expected ${expected}, got ${actual}; nothing was stored`
  })

/**
 * A DigestMismatch of content from `registry`, its message saying where the content came from
 * (once, however often this is applied).
 */
export const fromRegistry = (registry: string) => (e: DigestMismatch): DigestMismatch =>
  e.message.includes(registry) ? e : new DigestMismatch({
    expected: e.expected,
    actual: e.actual,
    message: `${e.message} (served by ${registry})`,
    ...(e.hint === undefined ? {} : { hint: e.hint })
  })

/**
 * What a registry served and microagent refuses (too large, ambiguous, not a manifest, nested too
 * deep): the registry answered, so the message never calls it unavailable. `reason` is the kind,
 * for callers; the message says what and why.
 */
export const refusedContent = (
  registry: string,
  what: string,
  reason: "too-large" | "ambiguous" | "invalid" | "bad-digest" | "too-deep",
  why: string
) => new RegistryUnavailable({ registry, reason, message: `${what} from ${registry} is refused: ${why}` })

export const make = (options: Options = {}) =>
  Effect.gen(function*() {
    const resolver = yield* CredentialResolver
    const transport = yield* Transport.make(yield* HttpClient.HttpClient, yield* TlsPolicy, options.transport)
    // One redactor for every credential and token this client uses: whatever a registry echoes
    // back of them is cut from the errors it causes (issue 15, item 5).
    const secrets = Credential.makeRedactor()
    const auth = Auth.make(transport, resolver, secrets)

    const checkLogin = Effect.fn("RegistryClient.checkLogin")(function*(
      registry: string,
      username: string,
      password: Redacted.Redacted<string>
    ) {
      const ping = yield* transport.ping(registry)
      if (ping.status === 200) return "unverified" as const
      if (ping.status !== 401) return yield* RegistryUnavailable.of(registry, `/v2/ answered HTTP ${ping.status}; is this an OCI registry?`)
      const challenge = Challenge.preferred(Challenge.parse(ping.challenge ?? ""))
      if (!challenge) return yield* RegistryUnavailable.of(registry, "/v2/ demands authentication with no Bearer or Basic challenge")
      // The handshake of a login is the ordinary authenticated ping, with the typed-in credentials.
      const credential: Credential.Credential = {
        _tag: "Credential",
        username,
        password,
        identityToken: undefined,
        source: { file: "the login command", key: registry }
      }
      const once = Auth.make(transport, { ...resolver, resolve: () => Effect.succeed(credential) }, secrets)
      const response = yield* once.call(registry, [], { method: "GET", url: "/v2/" }).pipe(
        Effect.catchTags({
          RegistryDenied: () =>
            new RegistryDenied({ registry, action: "login", message: `${registry} rejected the credentials (invalid user name or password)` }),
          MissingCredentials: (e) => RegistryUnavailable.of(registry, e.message),
          AuthFileError: (e) => RegistryUnavailable.of(registry, e.message),
          UsageError: (e) => RegistryUnavailable.of(registry, e.message)
        })
      )
      yield* Transport.drain(response)
      if (response.status === 200) return "verified" as const
      return yield* RegistryUnavailable.of(registry, `/v2/ answered HTTP ${response.status}; is this an OCI registry?`)
    })

    const getManifest = Effect.fn("RegistryClient.getManifest")(function*(repo: Repository, reference: string) {
      const what = `manifest ${repo.repository}${reference.includes(":") ? "@" : ":"}${reference}`
      // [H1] The algorithm a digest names is the one that verifies it; a tag's bytes hash as sha256.
      const named = reference.includes(":") ? Digest.parse(reference) : undefined
      if (named !== undefined && Either.isLeft(named)) {
        return yield* new UsageError({ message: `cannot fetch ${what} from ${repo.registry}: ${named.left}` })
      }
      // The request and its body are one attempt: a body that breaks off or stalls asks again ([H4]).
      const { bytes, response } = yield* transport.retrying(Effect.gen(function*() {
        const response = yield* auth.call(repo.registry, pull(repo.repository), {
          method: "GET",
          url: `/v2/${repo.repository}/manifests/${reference}`,
          headers: { accept: Manifest.accept },
          retry: false
        })
        if (response.status === 404) return yield* notFound(repo.registry, what, response)
        if (response.status !== 200) return yield* unexpectedOrBusy(repo.registry, what, response)
        const bytes = yield* Body.readUpTo(response, Manifest.maxBytes).pipe(
          Effect.catchTags({
            BodyTooLarge: () =>
              refusedContent(repo.registry, what, "too-large", `it is larger than the ${Body.formatLimit(Manifest.maxBytes)} cap for manifests`),
            BodyCut: (e) => RegistryUnavailable.of(repo.registry, `${what}: ${e.reason}`, "connection")
          })
        )
        return { bytes, response }
      }))
      const digest = Digest.format(Digest.of(bytes, named?.right.algorithm ?? "sha256"))
      if (named !== undefined && reference !== digest) return yield* mismatch(reference, digest, what, repo.registry)
      const served = response.headers["docker-content-digest"]
      if (served !== undefined) {
        const check = Digest.verify(bytes, served)
        if (Either.isLeft(check)) {
          return yield* refusedContent(repo.registry, what, "bad-digest", `its Docker-Content-Digest header is unusable: ${check.left}`)
        }
        if (!check.right.matches) return yield* mismatch(served, check.right.actual, `${what} (Docker-Content-Digest)`, repo.registry)
      }
      const manifest = Manifest.decode(bytes, response.headers["content-type"])
      if (Either.isLeft(manifest)) {
        const refusal = manifest.left
        return yield* refusal._tag === "BadDigest"
          ? new DigestMismatch({
            expected: refusal.digest,
            actual: "not a digest",
            message: `${what} from ${repo.registry} is refused: ${refusal.reason}; nothing was stored`
          })
          : refusedContent(repo.registry, what, refusal._tag === "Ambiguous" ? "ambiguous" : "invalid", refusal.reason)
      }
      return { bytes, digest, manifest: manifest.right, mediaType: manifest.right.mediaType }
    })

    const blobInto = Effect.fn("RegistryClient.blobInto")(function*(
      repo: Repository,
      descriptor: Manifest.Descriptor,
      onChunk: Body.OnChunk
    ) {
      const parsed = Digest.parse(descriptor.digest)
      if (Either.isLeft(parsed)) return yield* mismatch(descriptor.digest, "an unusable digest", "blob")
      const hash = Digest.hasher(parsed.right.algorithm)
      const what = `blob ${descriptor.digest}`
      let received = 0
      // One attempt: a request from where the last one stopped ([P5]), and its body.
      yield* transport.retrying(Effect.gen(function*() {
        const response = yield* auth.call(repo.registry, pull(repo.repository), {
          method: "GET",
          url: `/v2/${repo.repository}/blobs/${descriptor.digest}`,
          // Always the registry URL, never a redirect target that may have expired ([P5]).
          headers: received > 0 ? { range: `bytes=${received}-` } : {},
          retry: false
        })
        if (response.status === 404) return yield* notFound(repo.registry, what, response)
        if (response.status !== 200 && response.status !== 206) return yield* unexpectedOrBusy(repo.registry, what, response)
        // A 200 to a range request starts over: skip what we already have.
        let skip = response.status === 200 ? received : 0
        const outcome = yield* Body.forEach(response, (chunk) => {
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.length)
            skip -= dropped
            chunk = chunk.subarray(dropped)
          }
          received += chunk.length
          // Stop a body that runs past its size now, rather than fill the disk with it.
          if (received > descriptor.size) throw mismatch(`${descriptor.size} bytes`, `more than ${descriptor.size} bytes`, what)
          hash.update(chunk)
          return onChunk(chunk)
        }).pipe(Effect.either)
        if (Either.isRight(outcome)) return
        if (outcome.left._tag === "ChunkRefused") {
          // The size check above refuses with its own DigestMismatch; anything else is the caller's.
          return yield* Effect.fail(outcome.left.cause instanceof DigestMismatch ? outcome.left.cause : outcome.left)
        }
        return yield* RegistryUnavailable.of(repo.registry, `${what}: the connection broke (${outcome.left.reason})`, "connection")
      }))
      if (received !== descriptor.size) return yield* mismatch(`${descriptor.size} bytes`, `${received} bytes`, what)
      const actual = `${parsed.right.algorithm}:${hash.digest("hex")}`
      if (actual !== descriptor.digest) return yield* mismatch(descriptor.digest, actual, what)
    })

    const blob = (repo: Repository, descriptor: Manifest.Descriptor): Stream.Stream<Uint8Array, Error> =>
      Stream.asyncScoped<Uint8Array, Error>((emit) =>
        blobInto(repo, descriptor, (chunk) => emit.single(chunk)).pipe(
          Effect.matchEffect({
            // The stream's own consumer is the only one refusing chunks: by ending it.
            onFailure: (e) => Effect.promise(() => e._tag === "ChunkRefused" ? emit.end() : emit.fail(e)),
            onSuccess: () => Effect.promise(() => emit.end())
          }),
          Effect.forkScoped
        ), 16)

    const location = (response: HttpClientResponse.HttpClientResponse) => {
      const value = response.headers["location"]
      // Relative or absolute, resolved against the response that carried it, query kept ([P6]).
      return value === undefined ? undefined : new URL(value, response.request.url)
    }

    const uploadBlob = Effect.fn("RegistryClient.uploadBlob")(function*(
      repo: Repository,
      descriptor: Manifest.Descriptor,
      body: () => Stream.Stream<Uint8Array, unknown>,
      mountFrom?: string
    ) {
      const what = `blob ${descriptor.digest}`
      const scopes = push(repo.repository, mountFrom)
      const head = yield* auth.call(repo.registry, scopes, { method: "HEAD", url: `/v2/${repo.repository}/blobs/${descriptor.digest}` })
      yield* Transport.drain(head)
      if (head.status === 200) return "exists" as const

      let session: URL | undefined
      if (mountFrom !== undefined && mountFrom !== repo.repository) {
        const mount = yield* auth.call(repo.registry, scopes, {
          method: "POST",
          url: `/v2/${repo.repository}/blobs/uploads/?mount=${encodeURIComponent(descriptor.digest)}&from=${encodeURIComponent(mountFrom)}`
        }).pipe(Effect.either)
        if (Either.isRight(mount)) {
          yield* Transport.drain(mount.right)
          if (mount.right.status === 201) return "mounted" as const
          if (mount.right.status === 202) session = location(mount.right)
        }
      }
      // One attempt: a session (the mount's, or a new one), then one streaming PUT. A failed
      // session is not resumed: uploads retry by starting a new one ([P7]).
      return yield* transport.retrying(Effect.gen(function*() {
        let target = session
        session = undefined
        if (target === undefined) {
          // Starting a session again is harmless: an abandoned one expires on the registry.
          const started = yield* auth.call(repo.registry, scopes, { method: "POST", url: `/v2/${repo.repository}/blobs/uploads/`, retry: false })
          if (started.status !== 202) return yield* unexpectedOrBusy(repo.registry, `starting the upload of ${what}`, started)
          yield* Transport.drain(started)
          target = location(started)
          if (target === undefined) return yield* RegistryUnavailable.of(repo.registry, `starting the upload of ${what}: no Location`)
        }
        target.searchParams.set("digest", descriptor.digest)
        const put = yield* auth.call(repo.registry, scopes, {
          method: "PUT",
          url: target.toString(),
          retry: false,
          // In pairs: Node's HttpClient waits for `drain` only between the items of one chunk, so a
          // stream of single chunks would fill memory with the whole blob when the disk outruns the network.
          body: () => {
            const bytes = body()
            const http = HttpBody.stream(Stream.rechunk(bytes, 2), "application/octet-stream", descriptor.size)
            const open = Body.nodeSourceOf(bytes)
            return open === undefined ? http : Body.withNodeSource(http, open)
          }
        })
        if (put.status === 201) {
          yield* Transport.drain(put)
          return "uploaded" as const
        }
        if (put.status === 400) {
          const said = yield* registryMessage(put)
          if (said.includes("DIGEST_INVALID")) return yield* mismatch(descriptor.digest, "other content", `uploading ${what}`)
          return yield* RegistryUnavailable.of(repo.registry, `uploading ${what} answered HTTP 400${said}`)
        }
        return yield* unexpectedOrBusy(repo.registry, `uploading ${what}`, put)
      }))
    })

    const putManifest = Effect.fn("RegistryClient.putManifest")(function*(
      repo: Repository,
      reference: string,
      bytes: Uint8Array,
      mediaType: string
    ) {
      const response = yield* auth.call(repo.registry, push(repo.repository), {
        method: "PUT",
        url: `/v2/${repo.repository}/manifests/${reference}`,
        retry: true,
        body: () => HttpBody.uint8Array(bytes, mediaType)
      })
      if (response.status !== 201 && response.status !== 200) {
        return yield* unexpected(repo.registry, `pushing manifest ${repo.repository}:${reference}`, response)
      }
      yield* Transport.drain(response)
    })

    /**
     * Every item of a paginated list (tags, repositories), page by page, each page read up to
     * 4 MiB ([H2]). Pagination stops with an error, after `onPage` has had the pages listed so
     * far, on a `Link` that repeats a page already asked for or leads off the registry (its
     * credentials are never sent there) ([H3]).
     */
    const paginate = Effect.fn("RegistryClient.paginate")(function*(
      list: {
        readonly registry: string
        readonly scopes: ReadonlyArray<Auth.Scope>
        /** The first page: a path and query on the registry. */
        readonly first: string
        /** The list, in messages: `tags of team/app`. */
        readonly what: string
        /** What a 404 says is not there: `repository team/app`. */
        readonly missing: string
        /** A page's items, or undefined when the page is not one of this list. */
        readonly items: (page: string) => ReadonlyArray<string> | undefined
        /** What a page is, in messages: `a tag list`. */
        readonly pageIs: string
      },
      onPage?: (items: ReadonlyArray<string>) => Effect.Effect<void>
    ) {
      const { registry, what } = list
      const home = (yield* transport.ping(registry)).origin
      const stop = (why: string) => RegistryUnavailable.of(registry, `${what}: ${why}`)
      const all: Array<string> = []
      const asked = new Set<string>()
      let url = new URL(list.first, home)
      while (true) {
        asked.add(url.href)
        const response: HttpClientResponse.HttpClientResponse = yield* auth.call(registry, list.scopes, { method: "GET", url: url.href })
        if (response.status === 404) return yield* notFound(registry, list.missing, response)
        if (response.status !== 200) return yield* unexpected(registry, what, response)
        const bytes = yield* Transport.readCapped(registry, response, Transport.maxPage, `${what}: a page`)
        const page = list.items(new TextDecoder().decode(bytes))
        if (page === undefined) return yield* stop(`the registry sent a page that is not ${list.pageIs}`)
        all.push(...page)
        if (onPage !== undefined && page.length > 0) yield* onPage(page)
        // Followed verbatim: some registries' `next` is opaque ([P9]).
        const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers["link"] ?? "")?.[1]
        if (next === undefined) return all
        const target = nextPage(next, response.request.url)
        if (target === undefined) return yield* stop(`its next page (${Transport.oneLine(next, 100)}) is not a URL`)
        if (target.origin !== home) {
          return yield* stop(`its next page is on another host (${Transport.oneLine(target.origin, 100)}); not followed, so no credential goes there`)
        }
        if (asked.has(target.href)) {
          return yield* stop(`its next page repeats ${Transport.oneLine(target.pathname + target.search, 100)}, a page already listed; stopped after ${asked.size} pages`)
        }
        if (asked.size >= maxPages) return yield* stop(`more than ${maxPages} pages; stopped`)
        url = target
      }
    })

    /** Every tag, 100 a page ([P9]): some registries refuse more. */
    const listTags = Effect.fn("RegistryClient.listTags")(function*(
      repo: Repository,
      onPage?: (tags: ReadonlyArray<string>) => Effect.Effect<void>
    ) {
      return yield* paginate({
        registry: repo.registry,
        scopes: [{ repository: repo.repository, actions: ["pull"], doing: "list tags of" }],
        first: `/v2/${repo.repository}/tags/list?n=100`,
        what: `tags of ${repo.repository}`,
        missing: `repository ${repo.repository}`,
        items: (page) => Either.getOrUndefined(Either.map(decodeTagPage(page), (p) => p.tags ?? [])),
        pageIs: "a tag list"
      }, onPage)
    })

    /** Every repository, 1000 a page, the most the spec lets a client ask for ([M4]). */
    const listCatalog = Effect.fn("RegistryClient.listCatalog")(function*(
      registry: string,
      onPage?: (repositories: ReadonlyArray<string>) => Effect.Effect<void>
    ) {
      return yield* paginate({
        registry,
        scopes: [Auth.catalog],
        first: "/v2/_catalog?n=1000",
        what: "the catalog",
        missing: "the catalog",
        items: (page) => Either.getOrUndefined(Either.map(decodeCatalogPage(page), (p) => p.repositories ?? [])),
        pageIs: "a repository list"
      }, onPage)
    })

    const resolveDigest = Effect.fn("RegistryClient.resolveDigest")(function*(
      repo: Repository,
      reference: string,
      options: { readonly forPush?: boolean } = {}
    ) {
      if (reference.includes(":")) return reference
      const head = yield* auth.call(repo.registry, options.forPush === true ? push(repo.repository) : pull(repo.repository), {
        method: "HEAD",
        url: `/v2/${repo.repository}/manifests/${reference}`,
        headers: { accept: Manifest.accept }
      })
      if (head.status === 404) return yield* notFound(repo.registry, `manifest ${repo.repository}:${reference}`, head)
      yield* Transport.drain(head)
      const served = head.status === 200 ? head.headers["docker-content-digest"] : undefined
      // [H1] A header that is no digest is never used in a path; the bytes then say which it is.
      if (served !== undefined && Digest.isValid(served)) return served
      return (yield* getManifest(repo, reference)).digest
    })

    const deleteManifest = Effect.fn("RegistryClient.deleteManifest")(function*(repo: Repository, digest: string) {
      const what = `manifest ${repo.repository}@${digest}`
      const parsed = Digest.parse(digest)
      if (Either.isLeft(parsed)) return yield* new UsageError({ message: `cannot delete ${what} from ${repo.registry}: ${parsed.left}` })
      const response = yield* auth.call(repo.registry, remove(repo.repository), {
        method: "DELETE",
        url: `/v2/${repo.repository}/manifests/${digest}`,
        // Deleting twice deletes once: another attempt after a 503 or a reset is safe.
        retry: true
      })
      if (response.status === 404) return yield* notFound(repo.registry, what, response)
      if (response.status === 405) {
        const said = yield* registryMessage(response)
        return yield* new RegistryUnavailable({
          registry: repo.registry,
          reason: "deletion-disabled",
          message: `registry ${repo.registry} has deletion disabled (DELETE answered HTTP 405${said}); nothing was deleted`,
          hint: "its operator can enable it; for a distribution registry, storage.delete.enabled: true"
        })
      }
      if (response.status < 200 || response.status > 299) return yield* unexpected(repo.registry, `deleting ${what}`, response)
      yield* Transport.drain(response)
    })

    // Messages built from headers (Location, Link, Docker-Content-Digest) are redacted here too.
    const redacted = <A extends ReadonlyArray<unknown>, B, E>(method: (...args: A) => Effect.Effect<B, E>) =>
    (...args: A) => Effect.mapError(method(...args), auth.redactError)
    return RegistryClient.of({
      checkLogin: redacted(checkLogin),
      getManifest: redacted(getManifest),
      blob: (...args) => Stream.mapError(blob(...args), auth.redactError),
      blobInto: redacted(blobInto),
      uploadBlob: redacted(uploadBlob),
      putManifest: redacted(putManifest),
      listTags: redacted(listTags),
      listCatalog: redacted(listCatalog),
      resolveDigest: redacted(resolveDigest),
      deleteManifest: redacted(deleteManifest)
    })
  })

/** The items of a page: `null` or missing on an empty repository or registry. */
const pageItems = Schema.optional(Schema.NullOr(Schema.Array(Schema.String)))
const decodeTagPage = Schema.decodeUnknownEither(Schema.parseJson(Schema.Struct({ tags: pageItems })))
const decodeCatalogPage = Schema.decodeUnknownEither(Schema.parseJson(Schema.Struct({ repositories: pageItems })))

/** A `Link` target resolved against the page that carried it; `undefined` when it is no URL. */
const nextPage = (link: string, base: string): URL | undefined => {
  try {
    return new URL(link, base)
  } catch {
    return undefined
  }
}

/** A million tags (100 a page) or ten million repositories, far more than any has, before pagination gives up. */
const maxPages = 10_000

/**
 * Needs an HttpClient (`NodeHttp.layer` is the CLI's and the fastest; any other works), a
 * CredentialResolver and TlsPolicy (whose CAs the HttpClient's TLS set-up should honour, as
 * NodeHttp's does).
 */
export const layerWith = (options: Options) => Layer.effect(RegistryClient, make(options))

export const layer = layerWith({})
