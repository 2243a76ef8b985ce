/**
 * Proves test/support/registry.ts against the real distribution registry, with plain fetch,
 * so integration tests of microagent can trust the fixture.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { basic } from "../support/auth.js"
import { HTPASSWD_REALM, startRegistry, TOKEN_SERVICE, type RegistryHandle } from "../support/registry.js"

const bearer = (token: string) => `Bearer ${token}`

const tokenFor = async (registry: RegistryHandle, scopes: ReadonlyArray<string>, authorization?: string) => {
  const url = new URL(registry.tokenUrl!)
  url.searchParams.set("service", TOKEN_SERVICE)
  for (const scope of scopes) url.searchParams.append("scope", scope)
  const response = await fetch(url, { headers: authorization === undefined ? {} : { authorization } })
  expect(response.status).toBe(200)
  const body = (await response.json()) as { token: string; access_token: string; expires_in: number; issued_at: string }
  expect(body.access_token).toBe(body.token)
  return body.token
}

const startUpload = (registry: RegistryHandle, repository: string, token: string) =>
  fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, { method: "POST", headers: { authorization: bearer(token) } })

describe("auth: none", () => {
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry({ mode: "none" })
  })
  afterAll(() => registry.stop())

  it("answers /v2/ with 200", async () => {
    expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(registry.url).toBe(`http://${registry.host}`)
    expect(registry.tokenRequests).toEqual([])
    const response = await fetch(`${registry.url}/v2/`)
    expect(response.status).toBe(200)
  })
})

describe("auth: htpasswd", () => {
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry({ mode: "htpasswd", users: { alice: "s3cret", bob: "hunter2" } })
  })
  afterAll(() => registry.stop())

  it("challenges anonymous requests with Basic", async () => {
    const response = await fetch(`${registry.url}/v2/`)
    expect(response.status).toBe(401)
    expect(response.headers.get("www-authenticate")).toBe(`Basic realm="${HTPASSWD_REALM}"`)
  })

  it("accepts every configured user", async () => {
    for (const [user, password] of [["alice", "s3cret"], ["bob", "hunter2"]] as const) {
      const response = await fetch(`${registry.url}/v2/`, { headers: { authorization: basic(user, password) } })
      expect(response.status).toBe(200)
    }
  })

  it("rejects a wrong password", async () => {
    const response = await fetch(`${registry.url}/v2/`, { headers: { authorization: basic("alice", "wrong") } })
    expect(response.status).toBe(401)
  })
})

describe("auth: token", () => {
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry({ mode: "token", users: { alice: "s3cret" } })
  })
  afterAll(() => registry.stop())

  it("challenges with Bearer pointing at the token server", async () => {
    const response = await fetch(`${registry.url}/v2/`)
    expect(response.status).toBe(401)
    expect(response.headers.get("www-authenticate")).toBe(
      `Bearer realm="${registry.tokenUrl}",service="${TOKEN_SERVICE}"`
    )
  })

  it("accepts a token issued for valid Basic credentials", async () => {
    const token = await tokenFor(registry, [], basic("alice", "s3cret"))
    const response = await fetch(`${registry.url}/v2/`, { headers: { authorization: bearer(token) } })
    expect(response.status).toBe(200)
  })

  it("lets a push-scoped token start an upload", async () => {
    const token = await tokenFor(registry, ["repository:team/app:pull,push"], basic("alice", "s3cret"))
    const response = await startUpload(registry, "team/app", token)
    expect(response.status).toBe(202)
  })

  it("gives anonymous tokens no actions", async () => {
    const token = await tokenFor(registry, ["repository:team/app:pull,push"])
    const response = await startUpload(registry, "team/app", token)
    expect(response.status).toBe(401)
    expect(response.headers.get("www-authenticate")).toContain(`error="insufficient_scope"`)
  })

  it("really verifies the signature", async () => {
    const token = await tokenFor(registry, ["repository:team/app:pull,push"], basic("alice", "s3cret"))
    const tampered = `${token.slice(0, -4)}AAAA`
    const response = await startUpload(registry, "team/app", tampered)
    expect(response.status).toBe(401)
    expect(response.headers.get("www-authenticate")).toContain(`error="invalid_token"`)
  })

  it("refuses a wrong password at the token endpoint", async () => {
    const response = await fetch(`${registry.tokenUrl}?service=${TOKEN_SERVICE}`, {
      headers: { authorization: basic("alice", "wrong") }
    })
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] })
  })

  it("issues and honours refresh tokens over the POST flow", async () => {
    const post = (form: Record<string, string>) =>
      fetch(registry.tokenUrl!, { method: "POST", body: new URLSearchParams(form) })
    const first = await post({
      grant_type: "password", username: "alice", password: "s3cret", access_type: "offline",
      service: TOKEN_SERVICE, client_id: "microagent", scope: "repository:team/app:pull"
    })
    expect(first.status).toBe(200)
    const { refresh_token } = (await first.json()) as { refresh_token: string }
    expect(refresh_token).toMatch(/\S/)

    const second = await post({
      grant_type: "refresh_token", refresh_token, service: TOKEN_SERVICE, client_id: "microagent",
      scope: "repository:team/app:pull,push"
    })
    expect(second.status).toBe(200)
    const { access_token } = (await second.json()) as { access_token: string }
    expect((await startUpload(registry, "team/app", access_token)).status).toBe(202)

    const bogus = await post({ grant_type: "refresh_token", refresh_token: "nope", service: TOKEN_SERVICE })
    expect(bogus.status).toBe(401)
  })

  it("recorded every token request, without passwords", () => {
    const seen = registry.tokenRequests.map(({ method, user, authorized }) => ({ method, user, authorized }))
    expect(seen).toEqual([
      { method: "GET", user: "alice", authorized: true },
      { method: "GET", user: "alice", authorized: true },
      { method: "GET", user: undefined, authorized: false },
      { method: "GET", user: "alice", authorized: true },
      { method: "GET", user: "alice", authorized: false },
      { method: "POST", user: "alice", authorized: true },
      { method: "POST", user: "alice", authorized: true },
      { method: "POST", user: undefined, authorized: false }
    ])
    expect(registry.tokenRequests[1]!.query).toEqual({ service: TOKEN_SERVICE, scope: "repository:team/app:pull,push" })
    expect(registry.tokenRequests[5]!.body).toContain("password=%3Credacted%3E")
    expect(JSON.stringify(registry.tokenRequests)).not.toContain("s3cret")
  })
})

describe("auth: token with a custom grant", () => {
  let registry: RegistryHandle
  const asked: Array<[string | undefined, string, ReadonlyArray<string>]> = []
  beforeAll(async () => {
    registry = await startRegistry({
      mode: "token",
      users: { alice: "s3cret" },
      grant: (user, repository, requested) => {
        asked.push([user, repository, requested])
        return requested.filter((action) => action === "pull")
      }
    })
  })
  afterAll(() => registry.stop())

  it("withholds push", async () => {
    const token = await tokenFor(registry, ["repository:team/app:pull,push"], basic("alice", "s3cret"))
    const response = await startUpload(registry, "team/app", token)
    expect([401, 403]).toContain(response.status)
    expect(asked).toEqual([["alice", "team/app", ["pull", "push"]]])
  })

  it("splits a scope whose name holds a host:port on the outer colons", async () => {
    await tokenFor(registry, ["repository:127.0.0.1:5000/team/app:pull"])
    expect(asked.at(-1)).toEqual([undefined, "127.0.0.1:5000/team/app", ["pull"]])
  })
})

describe("stop()", () => {
  it("frees the ports and removes the temp dir, and can be called twice", async () => {
    const registry = await startRegistry({ mode: "token", users: { alice: "s3cret" } })
    expect((await fetch(`${registry.url}/v2/`)).status).toBe(401)
    const tempDir = path.dirname(registry.dataDir)
    await fs.access(tempDir)

    await registry.stop()
    await registry.stop()

    await expect(fetch(`${registry.url}/v2/`)).rejects.toThrow()
    await expect(fetch(registry.tokenUrl!)).rejects.toThrow()
    await expect(fs.access(tempDir)).rejects.toThrow()
  })
})
