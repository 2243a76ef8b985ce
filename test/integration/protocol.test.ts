/**
 * The registry protocol (SPEC §4 [P2], [P6]) against a real CNCF distribution registry behind a
 * token server: identity tokens (OAuth2 refresh flow), the token cache, cross-repo mounts and
 * pushes that find every blob already there. Fixtures are seeded with skopeo; microagent runs as
 * the built CLI, or as the library (Live.layer over Node) where the CLI cannot show the detail.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Live from "../../src/Live.js"
import * as RegistryClient from "../../src/RegistryClient.js"
import { expectDigest } from "../support/assertions.js"
import { b64, storePath, writeAuthJson } from "../support/auth.js"
import { runCli, type CliResult } from "../support/cli.js"
import { startFaultProxy, type ProxyHandle, type RecordedRequest } from "../support/faultProxy.js"
import { makeImage, skopeoPush, type BuiltImage } from "../support/images.js"
import { startRegistry, TOKEN_SERVICE, type RegistryHandle, type TokenRequest } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

// ---------------------------------------------------------------------------------------------
// Helpers

const ALICE = { user: "alice", password: "alice-Pw-7Qx9" } as const

const { freshHome } = useScratch()

/** Writes microagent's own store ([C1]) with the given `auths` entries. */
const seedStore = (home: string, auths: Record<string, Record<string, string>>) => writeAuthJson(storePath(home), { auths })

/** A HOME whose own store holds alice's password for each of `hosts`. */
const aliceHome = async (...hosts: ReadonlyArray<string>): Promise<string> => {
  const home = await freshHome()
  await seedStore(home, Object.fromEntries(hosts.map((h) => [h, { auth: b64(`${ALICE.user}:${ALICE.password}`) }])))
  return home
}

const cli = (home: string, args: ReadonlyArray<string>): Promise<CliResult> =>
  runCli(args, { env: { HOME: home }, timeoutMs: 20_000 })

/** The scopes a token request asked for (GET: `scope` query params; POST: the form's space-separated `scope`). */
const scopesOf = (r: TokenRequest): Array<string> => {
  if (r.method === "POST") return (new URLSearchParams(r.body ?? "").get("scope") ?? "").split(" ").filter((s) => s !== "")
  const scope = r.query["scope"]
  return scope === undefined ? [] : Array.isArray(scope) ? scope : [scope]
}

const describeToken = (r: TokenRequest) => `${r.method} ${JSON.stringify(r.query)} user=${r.user} body=${r.body ?? ""}`

const describeProxy = (rs: ReadonlyArray<RecordedRequest>) => rs.map((r) => `${r.method} ${r.path} → ${r.status}`).join("\n")

const isBlobRequest = (r: RecordedRequest) => /\/blobs\//.test(r.path)

// ---------------------------------------------------------------------------------------------
// One token-mode registry for the whole file, seeded with skopeo

let registry: RegistryHandle
let proxy: ProxyHandle
let fixtures: string
let app: BuiltImage
let three: BuiltImage

beforeAll(async () => {
  fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-protocol-")))
  ;[app, three] = await Promise.all([
    makeImage({ dir: path.join(fixtures, "app"), tag: "v1", layers: [2 * 1024, 16 * 1024] }),
    makeImage({ dir: path.join(fixtures, "three"), tag: "v1", layers: [1024, 3 * 1024, 9 * 1024] })
  ])
  registry = await startRegistry({ mode: "token", users: { [ALICE.user]: ALICE.password } })
  proxy = await startFaultProxy(registry.host)
  await Promise.all([
    skopeoPush(app, { registry: registry.host, repository: "team/app", creds: ALICE }),
    skopeoPush(three, { registry: registry.host, repository: "team/three", creds: ALICE })
  ])
})

afterAll(async () => {
  await proxy?.stop()
  await registry?.stop()
  if (fixtures !== undefined) await fs.rm(fixtures, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------

describe("[P2] auth against a token server", () => {
  it("[P2][C11] an identitytoken in the own store is used with the OAuth2 POST grant_type=refresh_token, never a password", async () => {
    // A refresh token, the way `docker login` gets one from an OAuth2-capable token server.
    const response = await fetch(registry.tokenUrl!, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "password",
        username: ALICE.user,
        password: ALICE.password,
        access_type: "offline",
        client_id: "test",
        service: TOKEN_SERVICE
      }).toString()
    })
    expect(response.status).toBe(200)
    const refreshToken = ((await response.json()) as { refresh_token?: string }).refresh_token
    expect(refreshToken).toMatch(/^[0-9a-f]+$/)

    const home = await freshHome()
    await seedStore(home, { [registry.host]: { auth: b64(`${ALICE.user}:`), identitytoken: refreshToken! } })
    const before = registry.tokenRequests.length
    const r = await cli(home, ["pull", `${registry.host}/team/app:v1`, "--output", path.join(home, "out")])
    expectDigest(r, app.manifestDigest)

    const seen = registry.tokenRequests.slice(before)
    const trace = seen.map(describeToken).join("\n")
    const refreshes = seen.filter((t) => t.method === "POST" && new URLSearchParams(t.body ?? "").get("grant_type") === "refresh_token")
    expect(refreshes.length, trace).toBeGreaterThanOrEqual(1)
    for (const t of refreshes) {
      const form = new URLSearchParams(t.body ?? "")
      expect(form.get("refresh_token"), trace).toBe(refreshToken)
      expect(form.has("password"), trace).toBe(false)
      expect(t.authorized, trace).toBe(true)
      expect(t.user, trace).toBe(ALICE.user)
      expect(form.get("service"), trace).toBe(TOKEN_SERVICE)
      expect(scopesOf(t), trace).toContain("repository:team/app:pull")
    }
    // Nothing else: no password grant, no GET with Basic credentials.
    expect(seen.filter((t) => !refreshes.includes(t)).map(describeToken), trace).toEqual([])
  })

  it("[P2] token cache: pulling a 3-layer image makes at most 2 token requests for the pull scope", async () => {
    const home = await aliceHome(registry.host)
    const before = registry.tokenRequests.length
    const r = await cli(home, ["pull", `${registry.host}/team/three:v1`, "--output", path.join(home, "out")])
    expectDigest(r, three.manifestDigest)
    const seen = registry.tokenRequests.slice(before)
    const forPull = seen.filter((t) => scopesOf(t).includes("repository:team/three:pull"))
    const trace = seen.map(describeToken).join("\n")
    expect(forPull.length, trace).toBeGreaterThanOrEqual(1)
    // One manifest GET, one config and three layer GETs: five authenticated requests, ≤ 2 token fetches.
    expect(forPull.length, trace).toBeLessThanOrEqual(2)
  })

  it("[P2] concurrent blob requests with a cold cache share one token fetch", async () => {
    const home = await aliceHome(registry.host)
    const layer = Live.layer.pipe(
      Layer.provide(NodeHttpClient.layer),
      Layer.provide(NodeContext.layer),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["HOME", home]]))))
    )
    const before = registry.tokenRequests.length
    const sizes = await Effect.runPromise(
      Effect.gen(function*() {
        const client = yield* RegistryClient.RegistryClient
        const repo = { registry: registry.host, repository: "team/three" }
        return yield* Effect.forEach(
          three.layers,
          (d) => Stream.runFold(client.blob(repo, d), 0, (n, chunk) => n + chunk.length),
          { concurrency: "unbounded" }
        )
      }).pipe(Effect.provide(layer))
    )
    expect(sizes).toEqual(three.layers.map((l) => l.size))
    const seen = registry.tokenRequests.slice(before)
    expect(seen.filter((t) => scopesOf(t).includes("repository:team/three:pull")).length, seen.map(describeToken).join("\n")).toBe(1)
  })
})

describe("[P6] uploads through the fault proxy (recording every request)", () => {
  it("[P6] cross-repo mount: pushing team/app:v1 from the store to team/copy:v1 mounts every blob (201), no blob PUT", async () => {
    const home = await aliceHome(proxy.host)
    const source = `${proxy.host}/team/app:v1`
    expectDigest(await cli(home, ["pull", source]), app.manifestDigest)

    proxy.clearRequests()
    expectDigest(await cli(home, ["push", source, `${proxy.host}/team/copy:v1`]), app.manifestDigest)
    const seen = [...proxy.requests]
    const trace = describeProxy(seen)

    const mounts = seen.filter((r) => r.method === "POST" && /\/v2\/team\/copy\/blobs\/uploads\/\?/.test(r.path))
    for (const digest of [app.configDigest, ...app.layerDigests]) {
      const mount = mounts.find((r) => {
        const query = new URLSearchParams(r.path.slice(r.path.indexOf("?") + 1))
        return query.get("mount") === digest && query.get("from") === "team/app"
      })
      expect(mount, `a mount of ${digest} from team/app\n${trace}`).toBeDefined()
    }
    // The last word on each mount was 201 Created (a first 401 before the token was right is allowed).
    for (const digest of [app.configDigest, ...app.layerDigests]) {
      const tries = mounts.filter((r) => new URLSearchParams(r.path.slice(r.path.indexOf("?") + 1)).get("mount") === digest)
      expect(tries.at(-1)?.status, trace).toBe(201)
    }
    expect(seen.filter((r) => r.method === "PUT" && isBlobRequest(r)), trace).toEqual([])
    expect(seen.filter((r) => r.method === "PATCH"), trace).toEqual([])
    expect(seen.filter((r) => r.method === "POST" && !/[?&]mount=/.test(r.path)), trace).toEqual([])
    expect(seen.filter((r) => r.method === "PUT" && r.path === "/v2/team/copy/manifests/v1" && r.status === 201).length, trace).toBe(1)
  })

  it("[P6] a push where every blob already exists sends only HEADs for blobs and one manifest PUT", async () => {
    const home = await aliceHome(proxy.host)
    proxy.clearRequests()
    expectDigest(await cli(home, ["push", `oci:${app.dir}:${app.tag}`, `${proxy.host}/team/app:again`]), app.manifestDigest)
    const seen = [...proxy.requests]
    const trace = describeProxy(seen)

    const blobRequests = seen.filter(isBlobRequest)
    expect(blobRequests.filter((r) => r.method !== "HEAD"), trace).toEqual([])
    const heads = blobRequests.filter((r) => r.status === 200).map((r) => r.path.replace(/^.*\/blobs\//, ""))
    expect(new Set(heads), trace).toEqual(new Set([app.configDigest, ...app.layerDigests]))
    const manifestPuts = seen.filter((r) => r.method === "PUT")
    expect(manifestPuts.map((r) => `${r.path} ${r.status}`), trace).toEqual(["/v2/team/app/manifests/again 201"])
    expect(seen.filter((r) => r.method === "POST" || r.method === "PATCH"), trace).toEqual([])
  })

  it("[P6] a push to a tag that already names the same manifest sends nothing: one manifest HEAD, no blob request, no PUT", async () => {
    const home = await aliceHome(proxy.host)
    proxy.clearRequests()
    const pushed = await cli(home, ["push", `oci:${app.dir}:${app.tag}`, `${proxy.host}/team/app:v1`, "--json"])
    expect(pushed.code, pushed.stderr).toBe(0)
    expect(JSON.parse(pushed.stdout)).toMatchObject({ digest: app.manifestDigest, transferred: 0, skipped: 1 + app.layerDigests.length })
    const seen = [...proxy.requests]
    const trace = describeProxy(seen)
    expect(seen.filter(isBlobRequest), trace).toEqual([])
    expect(seen.filter((r) => r.method !== "GET" && r.method !== "HEAD"), trace).toEqual([])
    expect(seen.filter((r) => r.path.includes("/manifests/")).map((r) => `${r.method} ${r.path} ${r.status}`).at(-1), trace)
      .toBe("HEAD /v2/team/app/manifests/v1 200")
  })
})
