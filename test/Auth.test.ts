/**
 * Auth over a fake HttpClient (issue 15): no credential echoed back by a registry or token server
 * reaches a message or an error body ([E5], SPEC §5); a token realm that would carry credentials
 * from https to plain http, or is not http(s), is refused before anything is sent to it ([P1],
 * [P2]); a token that cannot go into a header is refused ([H2]); a password's NUL padding is
 * trimmed where it becomes bytes ([C11]).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Credential from "../src/domain/Credential.js"
import * as RC from "../src/RegistryClient.js"
import { fake, withClient as withClientOf } from "./support/fakeClient.js"



const HOST = "registry.example.com"
const repo: RC.Repository = { registry: HOST, repository: "team/app" }

const USER = "alice"
const PASSWORD = "s3cret-Pw-9Zq"
const BASIC = Buffer.from(`${USER}:${PASSWORD}`).toString("base64")
const TOKEN = "tok-ABCdef-123456"

const alice: Credential.Credential = {
  _tag: "Credential",
  username: USER,
  password: Redacted.make(PASSWORD),
  identityToken: undefined,
  source: { file: "/auth.json", key: HOST }
}



const withClient = <A, E>(
  client: Parameters<typeof withClientOf>[0],
  f: (rc: RC.RegistryClientService) => Effect.Effect<A, E>,
  resolved: Credential.Resolved = alice
) => withClientOf(client, f, resolved)

const bearer = (realm: string) =>
  new Response("{}", { status: 401, headers: { "www-authenticate": `Bearer realm="${realm}",service="reg"` } })

/** Every form of alice's credentials a server could echo. */
const echoes = [PASSWORD, `${USER}:${PASSWORD}`, BASIC, encodeURIComponent(PASSWORD), TOKEN]

const assertNoSecret = (text: string) => {
  for (const secret of echoes) assert.notInclude(text, secret, `"${secret}" was printed`)
}

describe("Auth: credentials never leak", () => {
  it.live("[P1] [P2] an https registry's plain-http token realm is refused before any credential is sent to it", () =>
    Effect.gen(function*() {
      const { client, seen } = fake((request) =>
        request.url.host === "auth.example.com"
          ? new Response(JSON.stringify({ token: TOKEN }), { status: 200 })
          : bearer("http://auth.example.com/token")
      )
      const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1")))
      assert.strictEqual(error._tag, "RegistryUnavailable")
      assert.include(error.message, "plain-http token realm (http://auth.example.com)")
      assert.deepStrictEqual(seen.filter((s) => s.url.host !== HOST), [], "nothing reached the realm")
      assert.isFalse(seen.some((s) => s.headers["authorization"] !== undefined), "no credential was sent anywhere")
    }))

  it.live("[P1] [L5] login to an https registry with a plain-http realm is refused the same way", () =>
    Effect.gen(function*() {
      const { client, seen } = fake(() => bearer("http://auth.example.com/token"))
      const error = yield* Effect.flip(withClient(client, (rc) => rc.checkLogin(HOST, USER, Redacted.make(PASSWORD))))
      assert.strictEqual(error._tag, "RegistryUnavailable")
      assert.include(error.message, "plain-http token realm")
      assert.isFalse(seen.some((s) => s.url.protocol === "http:"))
    }))

  it.live("[P1] a plain-http realm on a loopback host is allowed, as [P1] allows http there", () =>
    Effect.gen(function*() {
      const { client, seen } = fake((request) =>
        request.url.host === "127.0.0.1:5999"
          ? new Response(JSON.stringify({ token: TOKEN }), { status: 200 })
          : request.headers["authorization"] === `Bearer ${TOKEN}`
          ? new Response(JSON.stringify({ name: "team/app", tags: ["v1"] }), { status: 200 })
          : bearer("http://127.0.0.1:5999/token")
      )
      assert.deepStrictEqual(yield* withClient(client, (rc) => rc.listTags(repo)), ["v1"])
      assert.strictEqual(seen.find((s) => s.url.host === "127.0.0.1:5999")?.headers["authorization"], `Basic ${BASIC}`)
    }))

  for (const realm of ["file:///etc/passwd", "ftp://auth.example.com/token", "http://[not-a-host/token", "https://user:pw@auth.example.com/token"]) {
    it.live(`[P2] a token realm ${realm} is a clear RegistryUnavailable, nothing sent to it`, () =>
      Effect.gen(function*() {
        const { client, seen } = fake(() => bearer(realm))
        const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1")))
        assert.strictEqual(error._tag, "RegistryUnavailable")
        assert.match(error.message, /realm/)
        assert.isDefined(error.hint)
        assert.isFalse(seen.some((s) => s.url.host !== HOST))
      }))
  }

  for (const [name, token] of [["CRLF", "abc\r\nX-Injected: 1"], ["a space", "abc def"], ["NUL", "abc\0def"], ["ESC", "abc\x1b[31m"]] as const) {
    it.live(`[H2] a token holding ${name} is refused with a clear error, never put into a header`, () =>
      Effect.gen(function*() {
        const { client, seen } = fake((request) =>
          request.url.host === "auth.example.com"
            ? new Response(JSON.stringify({ token }), { status: 200 })
            : bearer("https://auth.example.com/token")
        )
        const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1")))
        assert.strictEqual(error._tag, "RegistryUnavailable")
        assert.include(error.message, "cannot go into a header")
        assert.isFalse(seen.some((s) => (s.headers["authorization"] ?? "").startsWith("Bearer")))
      }))
  }

  it.live("[H2] a token answer larger than 1 MiB is refused, not read to its end", () =>
    Effect.gen(function*() {
      let served = 0
      const endless = () =>
        new ReadableStream<Uint8Array>({
          pull(controller) {
            served += 64 * 1024
            if (served > 64 * 1024 * 1024) return controller.close()
            controller.enqueue(new TextEncoder().encode("a".repeat(64 * 1024)))
          }
        })
      const { client } = fake((request) =>
        request.url.host === "auth.example.com" ? new Response(endless(), { status: 200 }) : bearer("https://auth.example.com/token")
      )
      const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1")))
      assert.strictEqual(error._tag, "RegistryUnavailable")
      assert.include(error.message, "larger than 1 MiB")
      assert.isBelow(served, 4 * 1024 * 1024)
    }))

  it.live("[E5] a registry's error text echoing the password, user:password, the Basic value and the token is printed redacted", () =>
    Effect.gen(function*() {
      const said = `bad credentials ${PASSWORD} for ${USER}:${PASSWORD} (${BASIC}) token ${TOKEN} q=${encodeURIComponent(PASSWORD)}`
      for (const status of [400, 500]) {
        const { client } = fake((request) =>
          request.url.host === "auth.example.com"
            ? new Response(JSON.stringify({ token: TOKEN }), { status: 200 })
            : request.headers["authorization"] === `Bearer ${TOKEN}`
            ? new Response(JSON.stringify({ errors: [{ code: "DENIED", message: said }] }), { status, headers: { "x-echo": BASIC } })
            : bearer("https://auth.example.com/token")
        )
        const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1")))
        assert.strictEqual(error._tag, "RegistryUnavailable")
        assert.include(error.message, `HTTP ${status}`)
        assert.include(error.message, "<redacted>")
        assertNoSecret(error.message)
        assertNoSecret(error.stack ?? "")
      }
    }))

  it.live("[E5] a Basic registry's 404 text echoing the Authorization header is printed redacted", () =>
    Effect.gen(function*() {
      const { client } = fake((request) =>
        request.headers["authorization"] === undefined
          ? new Response("{}", { status: 401, headers: { "www-authenticate": `Basic realm="reg"` } })
          : new Response(JSON.stringify({ errors: [{ code: "NAME_UNKNOWN", message: `no such thing for ${request.headers["authorization"]}` }] }), { status: 404 })
      )
      const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1")))
      assert.strictEqual(error._tag, "NotFound")
      assert.include(error.message, "Basic <redacted>")
      assertNoSecret(error.message)
    }))

  it.live("[E5] a token server's error text is shown on one line with every credential redacted", () =>
    Effect.gen(function*() {
      const { client } = fake((request) =>
        request.url.host === "auth.example.com"
          ? new Response(JSON.stringify({ error: "invalid_request", error_description: `password ${PASSWORD}\nhint: forged line \x1b[31m` }), { status: 400 })
          : bearer("https://auth.example.com/token")
      )
      const error = yield* Effect.flip(withClient(client, (rc) => rc.getManifest(repo, "v1")))
      assert.strictEqual(error._tag, "RegistryUnavailable")
      assert.include(error.message, "answered HTTP 400")
      assert.include(error.message, "invalid_request password <redacted>")
      assertNoSecret(error.message)
      assert.notMatch(error.message, /[\n\r\x1b]/)
    }))

  it.live("[C11] a password's NUL padding is trimmed where it becomes bytes: the Basic value and the stored auth agree", () =>
    Effect.gen(function*() {
      const { client, seen } = fake((request) =>
        request.headers["authorization"] === undefined
          ? new Response("{}", { status: 401, headers: { "www-authenticate": `Basic realm="reg"` } })
          : new Response("{}", { status: 200 })
      )
      assert.strictEqual(yield* withClient(client, (rc) => rc.checkLogin(HOST, USER, Redacted.make(`${PASSWORD}\0\0`))), "verified")
      const sent = seen.find((s) => s.headers["authorization"] !== undefined)?.headers["authorization"]
      assert.strictEqual(sent, `Basic ${BASIC}`)
      assert.strictEqual(Credential.encodeAuth(USER, Redacted.make(`\0${PASSWORD}\0`)), BASIC)
    }))
})
