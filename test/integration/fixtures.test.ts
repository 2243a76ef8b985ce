/**
 * Proves the test fixtures against the real distribution registry: test images (./support/images.ts)
 * that skopeo accepts, the fault-injecting proxy and blob store (./support/faultProxy.ts), and a
 * TLS registry with a test CA (./support/tls.ts), so microagent's integration tests can trust them.
 */
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as https from "node:https"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { gunzipSync } from "node:zlib"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { basic } from "../support/auth.js"
import { startFaultProxy, type ProxyHandle } from "../support/faultProxy.js"
import {
  blobPath,
  makeImage,
  makeIndex,
  MEDIA_TYPES,
  REF_NAME_ANNOTATION,
  skopeoInspect,
  skopeoInspectDigest,
  skopeoPush,
  type BuiltImage
} from "../support/images.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { makeCa, type TestCa } from "../support/tls.js"

const run = promisify(execFile)

const USER = "alice"
const PASSWORD = "s3cret"
const CREDS = { user: USER, password: PASSWORD }
const BASIC = basic(USER, PASSWORD)

const ACCEPT_MANIFESTS = [MEDIA_TYPES.index, MEDIA_TYPES.manifest].join(", ")

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`

/** Reads a body chunk by chunk, keeping what arrived before a failure. */
const readBody = async (response: Response): Promise<{ bytes: Buffer; error: unknown }> => {
  const chunks: Array<Uint8Array> = []
  let error: unknown
  try {
    for await (const chunk of response.body ?? []) chunks.push(chunk)
  } catch (caught) {
    error = caught
  }
  return { bytes: Buffer.concat(chunks), error }
}

let tmp: string
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "microagent-fixtures-"))
})
afterAll(() => fs.rm(tmp, { recursive: true, force: true }))

describe("test images", () => {
  let open: RegistryHandle
  let locked: RegistryHandle
  let image: BuiltImage
  beforeAll(async () => {
    ;[open, locked, image] = await Promise.all([
      startRegistry({ mode: "none" }),
      startRegistry({ mode: "htpasswd", users: { [USER]: PASSWORD } }),
      makeImage({ dir: path.join(tmp, "layout"), tag: "v1", layers: [1000, 300_000, 0] })
    ])
  })
  afterAll(() => Promise.all([open?.stop(), locked?.stop()]))

  it("writes a valid layout: gzip'd tars with matching diff_ids, OCI media types, a tagged index.json", async () => {
    const index = JSON.parse(await fs.readFile(path.join(image.dir, "index.json"), "utf8"))
    expect(index.manifests).toEqual([
      { mediaType: MEDIA_TYPES.manifest, digest: image.manifestDigest, size: image.manifestSize, annotations: { [REF_NAME_ANNOTATION]: "v1" } }
    ])
    expect(JSON.parse(await fs.readFile(path.join(image.dir, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" })
    const manifestBytes = await fs.readFile(blobPath(image.dir, image.manifestDigest))
    expect(sha256(manifestBytes)).toBe(image.manifestDigest)
    const manifest = JSON.parse(manifestBytes.toString("utf8"))
    expect(manifest.mediaType).toBe(MEDIA_TYPES.manifest)
    expect(manifest.config).toEqual({ mediaType: MEDIA_TYPES.config, digest: image.configDigest, size: image.configSize })
    const config = JSON.parse(await fs.readFile(blobPath(image.dir, image.configDigest), "utf8"))
    expect(config).toMatchObject({ os: "linux", architecture: "amd64" })
    expect(config.rootfs).toEqual({ type: "layers", diff_ids: image.layers.map((layer) => layer.diffId) })
    for (const [i, layer] of image.layers.entries()) {
      expect(manifest.layers[i]).toEqual({ mediaType: MEDIA_TYPES.layer, digest: layer.digest, size: layer.size })
      const blob = await fs.readFile(blobPath(image.dir, layer.digest))
      expect(blob.length).toBe(layer.size)
      expect(sha256(blob)).toBe(layer.digest)
      const tar = gunzipSync(blob)
      expect(sha256(tar)).toBe(layer.diffId)
      expect(tar.length % 512).toBe(0)
      expect(tar.subarray(0, 10).toString("ascii")).toBe("random.bin")
      expect(parseInt(tar.subarray(124, 135).toString("ascii"), 8)).toBe(layer.contentSize)
      // incompressible: the blob is never smaller than the file it holds
      expect(layer.size).toBeGreaterThanOrEqual(layer.contentSize)
    }
    expect(image.layers.map((layer) => layer.contentSize)).toEqual([1000, 300_000, 0])
    // the system tar agrees it is a well-formed archive
    const { stdout } = await run("tar", ["-tvzf", blobPath(image.dir, image.layers[1]!.digest)])
    expect(stdout).toMatch(/ 300000 .*random\.bin/)
  })

  it("is accepted by skopeo, and pushed with the built manifest digest", async () => {
    expect(await skopeoInspectDigest(image.reference)).toBe(image.manifestDigest)
    await skopeoPush(image, { registry: open.host, repository: "fixtures/app" })
    const remote = `docker://${open.host}/fixtures/app:v1`
    expect(await skopeoInspectDigest(remote)).toBe(image.manifestDigest)
    const inspected = await skopeoInspect(remote)
    expect(inspected).toMatchObject({ Digest: image.manifestDigest, Os: "linux", Architecture: "amd64", Layers: image.layerDigests })
    const head = await fetch(`${open.url}/v2/fixtures/app/manifests/v1`, { method: "HEAD", headers: { accept: ACCEPT_MANIFESTS } })
    expect(head.headers.get("docker-content-digest")).toBe(image.manifestDigest)
    expect(head.headers.get("content-type")).toBe(MEDIA_TYPES.manifest)
  })

  it("pushes with credentials, and reports skopeo's error without them", async () => {
    await expect(skopeoPush(image, { registry: locked.host, repository: "fixtures/app" })).rejects.toThrow(/skopeo copy .*failed: .*(unauthorized|authentication required)/is)
    await skopeoPush(image, { registry: locked.host, repository: "fixtures/app", destTag: "v2", creds: CREDS })
    expect(await skopeoInspectDigest(`docker://${locked.host}/fixtures/app:v2`, { creds: CREDS })).toBe(image.manifestDigest)
  })

  it("builds a two-platform index that skopeo copies with --all", async () => {
    const built = await makeIndex({ dir: path.join(tmp, "layout"), tag: "multi" })
    expect(built.children.map((child) => child.platform)).toEqual([
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64", variant: "v8" }
    ])
    // the layout keeps the earlier tag
    const index = JSON.parse(await fs.readFile(path.join(built.dir, "index.json"), "utf8"))
    expect(index.manifests.map((entry: { annotations: Record<string, string> }) => entry.annotations[REF_NAME_ANNOTATION])).toEqual(["v1", "multi"])
    expect(await skopeoInspectDigest(built.reference)).toBe(built.indexDigest)

    await skopeoPush(built, { registry: open.host, repository: "fixtures/multi", all: true })
    expect(await skopeoInspectDigest(`docker://${open.host}/fixtures/multi:multi`)).toBe(built.indexDigest)
    const response = await fetch(`${open.url}/v2/fixtures/multi/manifests/multi`, { headers: { accept: ACCEPT_MANIFESTS } })
    expect(response.headers.get("content-type")).toBe(MEDIA_TYPES.index)
    const bytes = Buffer.from(await response.arrayBuffer())
    expect(sha256(bytes)).toBe(built.indexDigest)
    const remoteIndex = JSON.parse(bytes.toString("utf8"))
    expect(remoteIndex.manifests.map((m: { platform: unknown }) => m.platform)).toEqual(built.children.map((child) => child.platform))
    for (const child of built.children) {
      const manifest = await fetch(`${open.url}/v2/fixtures/multi/manifests/${child.manifestDigest}`, { headers: { accept: ACCEPT_MANIFESTS } })
      expect(manifest.status).toBe(200)
      expect(sha256(Buffer.from(await manifest.arrayBuffer()))).toBe(child.manifestDigest)
      for (const digest of child.layerDigests) {
        const blob = await fetch(`${open.url}/v2/fixtures/multi/blobs/${digest}`, { method: "HEAD" })
        expect(blob.status).toBe(200)
      }
    }
  })
})

describe("fault proxy", () => {
  const LAYER = 1024 * 1024
  let registry: RegistryHandle
  let proxy: ProxyHandle
  let image: BuiltImage
  let layer: Buffer
  let blobUrl: string
  let blobPathname: string
  const auth = { authorization: BASIC }

  beforeAll(async () => {
    ;[registry, image] = await Promise.all([
      startRegistry({ mode: "htpasswd", users: { [USER]: PASSWORD } }),
      makeImage({ dir: path.join(tmp, "proxy-layout"), tag: "v1", layers: [LAYER] })
    ])
    await skopeoPush(image, { registry: registry.host, repository: "fixtures/app", creds: CREDS })
    proxy = await startFaultProxy(registry.host, { upstreamAuth: BASIC })
    layer = await fs.readFile(blobPath(image.dir, image.layerDigests[0]!))
    blobPathname = `/v2/fixtures/app/blobs/${image.layerDigests[0]}`
    blobUrl = `${proxy.url}${blobPathname}`
  })
  afterAll(() => Promise.all([proxy?.stop(), registry?.stop()]))
  beforeEach(() => {
    proxy.setFaults([])
    proxy.clearRequests()
  })

  it("listens on loopback, apart from the registry and the blob store", () => {
    expect(proxy.host).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(proxy.url).toBe(`http://${proxy.host}`)
    expect(proxy.blobStoreHost).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(proxy.blobStoreUrl).toBe(`http://${proxy.blobStoreHost}`)
    expect(new Set([proxy.host, proxy.blobStoreHost, registry.host]).size).toBe(3)
  })

  it("forwards a blob GET intact and records it without the credentials", async () => {
    const response = await fetch(blobUrl, { headers: auth })
    expect(response.status).toBe(200)
    const bytes = Buffer.from(await response.arrayBuffer())
    expect(sha256(bytes)).toBe(image.layerDigests[0])
    expect(response.headers.get("docker-content-digest")).toBe(image.layerDigests[0])
    expect(proxy.requests).toEqual([
      { method: "GET", path: blobPathname, authorization: true, range: undefined, status: 200, fault: undefined }
    ])
    expect(JSON.stringify(proxy.requests)).not.toContain(BASIC.slice("Basic ".length))
  })

  it("passes the registry's challenge through, and Range both ways", async () => {
    const challenge = await fetch(`${proxy.url}/v2/`)
    expect(challenge.status).toBe(401)
    expect(challenge.headers.get("www-authenticate")).toMatch(/^Basic realm=/)
    const partial = await fetch(blobUrl, { headers: { ...auth, range: "bytes=1000-" } })
    expect(partial.status).toBe(206)
    expect(Buffer.from(await partial.arrayBuffer()).equals(layer.subarray(1000))).toBe(true)
    expect(proxy.requests.map((r) => [r.path, r.authorization, r.range, r.status])).toEqual([
      ["/v2/", false, undefined, 401],
      [blobPathname, true, "bytes=1000-", 206]
    ])
  })

  it("streams an upload through and moves the registry's absolute Location to the proxy", async () => {
    const started = await fetch(`${proxy.url}/v2/fixtures/other/blobs/uploads/`, { method: "POST", headers: auth })
    expect(started.status).toBe(202)
    const location = new URL(started.headers.get("location")!, proxy.url)
    expect(location.host).toBe(proxy.host)
    location.searchParams.set("digest", image.layerDigests[0]!)
    const body = new Blob([layer]).stream()
    const put = await fetch(location, {
      method: "PUT",
      headers: { ...auth, "content-type": "application/octet-stream" },
      body,
      duplex: "half"
    } as RequestInit)
    expect(put.status).toBe(201)
    expect(new URL(put.headers.get("location")!, proxy.url).host).toBe(proxy.host)
    const head = await fetch(`${registry.url}/v2/fixtures/other/blobs/${image.layerDigests[0]}`, { method: "HEAD", headers: auth })
    expect(head.status).toBe(200)
    expect(head.headers.get("content-length")).toBe(String(layer.length))
  })

  it("cut: sends the head and the first K bytes, then closes the connection", async () => {
    proxy.setFaults([{ method: "GET", path: /\/blobs\/sha256:/, times: 1, fault: { kind: "cut", afterBytes: 100_000 } }])
    const response = await fetch(blobUrl, { headers: auth })
    expect(response.status).toBe(200)
    expect(response.headers.get("content-length")).toBe(String(layer.length))
    const { bytes, error } = await readBody(response)
    expect(error).toBeDefined()
    expect(bytes.length).toBe(100_000)
    expect(bytes.equals(layer.subarray(0, 100_000))).toBe(true)
    // only the first time
    const again = await fetch(blobUrl, { headers: auth })
    expect(sha256(Buffer.from(await again.arrayBuffer()))).toBe(image.layerDigests[0])
    expect(proxy.requests.map((r) => r.fault)).toEqual(["cut", undefined])
  })

  it("reset: drops the connection without an answer", async () => {
    proxy.setFaults([{ path: /\/blobs\//, times: 1, fault: { kind: "reset" } }])
    await expect(fetch(blobUrl, { headers: auth })).rejects.toThrow()
    expect((await fetch(blobUrl, { method: "HEAD", headers: auth })).status).toBe(200)
    expect(proxy.requests.map((r) => [r.fault, r.status])).toEqual([["reset", undefined], [undefined, 200]])
  })

  it("status: answers 503 with Retry-After without asking the registry, N times", async () => {
    proxy.setFaults([
      { method: "GET", path: /\/blobs\//, times: 2, fault: { kind: "status", status: 503, headers: { "retry-after": "1" } } },
      { method: "GET", path: /\/manifests\//, fault: { kind: "status", status: 429, headers: { "retry-after": "2" }, body: "slow down" } }
    ])
    for (let i = 0; i < 2; i++) {
      const response = await fetch(blobUrl, { headers: auth })
      expect(response.status).toBe(503)
      expect(response.headers.get("retry-after")).toBe("1")
      await response.arrayBuffer()
    }
    expect((await fetch(blobUrl, { headers: auth })).status).toBe(200)
    const limited = await fetch(`${proxy.url}/v2/fixtures/app/manifests/v1`, { headers: auth })
    expect([limited.status, limited.headers.get("retry-after"), await limited.text()]).toEqual([429, "2", "slow down"])
    expect(proxy.requests.map((r) => r.status)).toEqual([503, 503, 200, 429])
  })

  it("redirect: 307 to the blob store, which serves the blob without auth and refuses auth", async () => {
    proxy.setFaults([{ method: "GET", path: /\/blobs\//, fault: { kind: "redirect" } }])
    const redirect = await fetch(blobUrl, { headers: auth, redirect: "manual" })
    expect(redirect.status).toBe(307)
    const location = redirect.headers.get("location")!
    expect(location.startsWith(`${proxy.blobStoreUrl}/`)).toBe(true)

    const served = await fetch(location)
    expect(served.status).toBe(200)
    expect(served.headers.get("docker-content-digest")).toBeNull()
    expect(sha256(Buffer.from(await served.arrayBuffer()))).toBe(image.layerDigests[0])
    const ranged = await fetch(location, { headers: { range: "bytes=5-9" } })
    expect(ranged.status).toBe(206)
    expect(Buffer.from(await ranged.arrayBuffer()).equals(layer.subarray(5, 10))).toBe(true)

    const before = proxy.blobStoreAuthAttempts
    const refused = await fetch(location, { headers: auth })
    expect(refused.status).toBe(401)
    expect(proxy.blobStoreAuthAttempts).toBe(before + 1)
    expect(proxy.blobStoreRequests.map((r) => [r.path, r.authorization, r.range, r.status])).toEqual([
      [blobPathname, false, undefined, 200],
      [blobPathname, false, "bytes=5-9", 206],
      [blobPathname, true, undefined, 401]
    ])
    expect(proxy.requests.map((r) => [r.fault, r.status])).toEqual([["redirect", 307]])

    // fetch's own redirect handling drops Authorization across origins, so it gets the blob
    const followed = await fetch(blobUrl, { headers: auth })
    expect(sha256(Buffer.from(await followed.arrayBuffer()))).toBe(image.layerDigests[0])
    expect(proxy.blobStoreAuthAttempts).toBe(before + 1)
  })

  it("redirect: a signed URL can expire after N uses; unknown signatures are refused", async () => {
    proxy.setFaults([{ path: /\/blobs\//, times: 1, fault: { kind: "redirect", maxUses: 1 } }])
    const redirect = await fetch(blobUrl, { headers: auth, redirect: "manual" })
    const location = redirect.headers.get("location")!
    expect((await fetch(location)).status).toBe(200)
    expect((await fetch(location)).status).toBe(403)
    expect((await fetch(`${proxy.blobStoreUrl}/s/forged${blobPathname}`)).status).toBe(403)
    // times: 1, so the registry answers directly now
    expect((await fetch(blobUrl, { headers: auth, redirect: "manual" })).status).toBe(200)
  })

  it("faults can target the blob store", async () => {
    proxy.setFaults([
      { path: /\/blobs\//, fault: { kind: "redirect" } },
      { on: "blobStore", path: /\/blobs\//, times: 1, fault: { kind: "cut", afterBytes: 4096 } }
    ])
    const first = await fetch(blobUrl, { headers: auth, redirect: "manual" })
    const location = first.headers.get("location")!
    const cut = await readBody(await fetch(location))
    expect([cut.bytes.length, cut.error !== undefined]).toEqual([4096, true])
    expect(sha256(Buffer.from(await (await fetch(location)).arrayBuffer()))).toBe(image.layerDigests[0])
    expect(() => proxy.setFaults([{ on: "blobStore", path: /./, fault: { kind: "redirect" } }])).toThrow()
  })

  it("delay: answers intact, late", async () => {
    proxy.setFaults([{ method: "HEAD", path: /\/blobs\//, times: 1, fault: { kind: "delay", ms: 300 } }])
    const started = Date.now()
    expect((await fetch(blobUrl, { method: "HEAD", headers: auth })).status).toBe(200)
    expect(Date.now() - started).toBeGreaterThanOrEqual(290)
    expect(proxy.requests.map((r) => [r.method, r.fault, r.status])).toEqual([["HEAD", "delay", 200]])
  })

  it("corrupt: flips exactly one byte at offset K", async () => {
    proxy.setFaults([{ method: "GET", path: /\/blobs\//, times: 1, fault: { kind: "corrupt", offset: 777_777 } }])
    const response = await fetch(blobUrl, { headers: auth })
    expect(response.status).toBe(200)
    const bytes = Buffer.from(await response.arrayBuffer())
    expect(bytes.length).toBe(layer.length)
    const differing = [...bytes.keys()].filter((i) => bytes[i] !== layer[i])
    expect(differing).toEqual([777_777])
    expect(sha256(bytes)).not.toBe(image.layerDigests[0])
  })

  it("stop is idempotent and frees the ports", async () => {
    const other = await startFaultProxy(registry.host)
    await Promise.all([other.stop(), other.stop()])
    await expect(fetch(`${other.url}/v2/`)).rejects.toThrow()
    await expect(fetch(`${other.blobStoreUrl}/`)).rejects.toThrow()
  })
})

describe("TLS registry", () => {
  let ca: TestCa
  let otherCa: TestCa
  let registry: RegistryHandle

  const get = (url: string, options: https.RequestOptions = {}) =>
    new Promise<number>((resolve, reject) => {
      https
        .get(url, { ...options, timeout: 5_000 }, (response) => {
          response.resume()
          resolve(response.statusCode ?? 0)
        })
        .once("error", reject)
    })

  beforeAll(async () => {
    ;[ca, otherCa] = await Promise.all([makeCa(path.join(tmp, "ca")), makeCa(path.join(tmp, "other-ca"))])
    registry = await startRegistry({ mode: "none" }, { tls: { cert: ca.serverCert, key: ca.serverKey } })
  })
  afterAll(() => registry?.stop())

  it("serves https on loopback", () => {
    expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(registry.url).toBe(`https://${registry.host}`)
  })

  it("verifies with the CA, for 127.0.0.1 and localhost", async () => {
    const caPem = await fs.readFile(ca.caCert)
    expect(await get(`${registry.url}/v2/`, { ca: caPem })).toBe(200)
    expect(await get(`https://localhost:${registry.host.split(":")[1]}/v2/`, { ca: caPem })).toBe(200)
    const { stdout } = await run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca.caCert, `${registry.url}/v2/`])
    expect(stdout).toBe("200")
  })

  it("fails verification without the CA, or with another one", async () => {
    await expect(get(`${registry.url}/v2/`)).rejects.toMatchObject({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" })
    await expect(get(`${registry.url}/v2/`, { ca: await fs.readFile(otherCa.caCert) })).rejects.toMatchObject({
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
    })
    const curl = run("curl", ["-sS", "-o", "/dev/null", `${registry.url}/v2/`], { env: { ...process.env, CURL_CA_BUNDLE: "", SSL_CERT_FILE: "/dev/null" } })
    await expect(curl).rejects.toMatchObject({ code: 60 })
  })

  it("is usable by skopeo through a certs.d directory holding the CA", async () => {
    const image = await makeImage({ dir: path.join(tmp, "tls-layout"), tag: "v1", layers: [2048] })
    const certDir = path.dirname(ca.caCert)
    await skopeoPush(image, { registry: registry.host, repository: "fixtures/tls", certDir })
    expect(await skopeoInspectDigest(`docker://${registry.host}/fixtures/tls:v1`, { certDir })).toBe(image.manifestDigest)
    await expect(
      skopeoInspectDigest(`docker://${registry.host}/fixtures/tls:v1`, { certDir: path.dirname(otherCa.caCert) })
    ).rejects.toThrow(/certificate/)
  })
})
