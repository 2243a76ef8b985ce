/**
 * `microagent pull` under network faults (SPEC §4 [P3] [P5] [P7], §5 [E7]), end to end: the built
 * CLI against a real CNCF distribution registry, with the fault proxy (../support/faultProxy.ts)
 * in between to cut, reset, refuse, redirect and corrupt chosen requests. What a user can observe
 * is checked: exit code, the digest printed, the one `error:` line, what the proxy saw, and that
 * the layout never holds a blob whose bytes do not match its name, nor a leftover temp file.
 */
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { createReadStream } from "node:fs"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import type * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Transform, type TransformCallback } from "node:stream"
import { pipeline } from "node:stream/promises"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { expectBlobsIntact, expectCleanError } from "../support/assertions.js"
import { authsFor, basic, imagesDir, storePath, writeAuthJson } from "../support/auth.js"
import { binPath, runCli, type CliResult } from "../support/cli.js"
import { startFaultProxy, type FaultRule, type ProxyHandle, type RecordedRequest } from "../support/faultProxy.js"
import { makeImage, skopeoPush, type BuiltImage } from "../support/images.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

// ---------------------------------------------------------------------------------------------
// Helpers

const KiB = 1024
const MiB = 1024 * KiB

const USER = "alice"
const PASSWORD = "alice-Pw-7Qx9"
const BASIC = basic(USER, PASSWORD)

const { freshHome, onCleanup } = useScratch()

const pull = (home: string, ref: string, timeoutMs = 30_000): Promise<CliResult> =>
  runCli(["pull", ref], { env: { HOME: home }, timeoutMs })

const sha256File = async (file: string): Promise<string> => {
  const hash = createHash("sha256")
  await pipeline(createReadStream(file), hash)
  return `sha256:${hash.digest("hex")}`
}

const listDir = async (dir: string): Promise<Array<string>> => {
  try {
    return await fs.readdir(dir)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return []
    throw error
  }
}

/**
 * [P5] [E7]: every file under `blobs/<alg>/` hashes to its name (nothing partial or wrong was
 * ever renamed into place); a layout not created yet holds none. Returns the digests present.
 */
const expectSoundBlobs = async (layout: string): Promise<Set<string>> =>
  (await listDir(layout)).includes("blobs") ? expectBlobsIntact(layout) : new Set()

/** [P5]: no temp file is left behind in `<layout>/.tmp/`. */
const expectNoTemp = async (layout: string) => {
  expect(await listDir(path.join(layout, ".tmp")), "leftover temp files in .tmp/").toEqual([])
}

/** [P5] SIGINT: exit 130 (not killed), nothing on stdout, no stack trace; none of `absent` stored, the rest sound, .tmp/ empty. */
const expectInterrupted = async (r: CliResult, layout: string, absent: ReadonlyArray<string>) => {
  expect(r.signal, `killed? stderr: ${r.stderr}`).toBeNull()
  expect(r.code, `stderr: ${r.stderr}`).toBe(130)
  expect(r.stdout.trim()).toBe("")
  expect(r.stderr).not.toMatch(/^\s+at\s/m)
  const present = await expectSoundBlobs(layout)
  for (const digest of absent) expect(present.has(digest), `${digest} must not be stored`).toBe(false)
  await expectNoTemp(layout)
}

/** A successful pull: exit 0, the manifest's digest on stdout, every blob of the image stored and sound. */
const expectPulled = async (r: CliResult, home: string, image: BuiltImage) => {
  expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(0)
  expect(r.stdout.trim()).toBe(image.manifestDigest)
  const present = await expectSoundBlobs(imagesDir(home))
  for (const digest of [image.manifestDigest, image.configDigest, ...image.layerDigests]) {
    expect(present.has(digest), `${digest} stored`).toBe(true)
  }
  await expectNoTemp(imagesDir(home))
}

const blobPathRe = (digest: string) => new RegExp(`/blobs/${digest}$`)
const isManifestGet = (r: RecordedRequest) => r.method === "GET" && /\/manifests\//.test(r.path)
const blobGets = (requests: ReadonlyArray<RecordedRequest>, digest: string) =>
  requests.filter((r) => r.method === "GET" && r.path.endsWith(`/blobs/${digest}`))

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const waitFor = async (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** Sizes of the files in `<layout>/.tmp/` (a file may vanish between listing and stat). */
const tempSizes = async (layout: string): Promise<Array<number>> => {
  const dir = path.join(layout, ".tmp")
  const sizes: Array<number> = []
  for (const name of await listDir(dir)) {
    try {
      sizes.push((await fs.stat(path.join(dir, name))).size)
    } catch {
      // renamed into place or removed meanwhile
    }
  }
  return sizes
}

interface Spawned {
  readonly child: ReturnType<typeof spawn>
  readonly done: Promise<CliResult>
}

/** The CLI as a child we can signal ourselves. */
const spawnPull = (home: string, ref: string): Spawned => {
  const child = spawn(process.execPath, [binPath, "pull", ref], {
    env: { PATH: process.env["PATH"], HOME: home, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const out: Array<Buffer> = []
  const err: Array<Buffer> = []
  child.stdout.on("data", (chunk: Buffer) => out.push(chunk))
  child.stderr.on("data", (chunk: Buffer) => err.push(chunk))
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }))
  })
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    await done.catch(() => undefined)
  })
  return { child, done }
}

/** Waits for the child to exit after a signal; SIGKILLs it (and fails) if it hangs. */
const exitWithin = async (spawned: Spawned, ms: number): Promise<CliResult> => {
  const timer = setTimeout(() => spawned.child.kill("SIGKILL"), ms)
  try {
    return await spawned.done
  } finally {
    clearTimeout(timer)
  }
}

/**
 * A plain forwarding proxy that trickles response bodies (`bytesPerTick` every `tickMs`), so a
 * download is still in flight when the test acts. Used in front of the fault proxy.
 */
const startThrottle = async (target: string, bytesPerTick: number, tickMs: number) => {
  const [targetName, targetPort] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))]
  const agent = new http.Agent({ keepAlive: true })
  const server = http.createServer((req, res) => {
    const upstream = http.request({
      host: targetName,
      port: targetPort,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: target },
      agent
    })
    upstream.on("response", (response) => {
      const headers: Array<string> = []
      for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) {
        const name = response.rawHeaders[i]!
        if (!["connection", "keep-alive", "transfer-encoding"].includes(name.toLowerCase())) headers.push(name, response.rawHeaders[i + 1]!)
      }
      res.writeHead(response.statusCode ?? 502, headers)
      const trickle = new Transform({
        transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
          void (async () => {
            for (let at = 0; at < chunk.length; at += bytesPerTick) {
              this.push(chunk.subarray(at, at + bytesPerTick))
              await sleep(tickMs)
            }
            callback()
          })()
        }
      })
      pipeline(response, trickle, res).catch(() => res.socket?.destroy())
    })
    upstream.on("error", () => res.socket?.destroy())
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  })
  server.on("clientError", (_error, socket: net.Socket) => socket.destroy())
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port))
  })
  return {
    host: `127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
        agent.destroy()
      })
  }
}

// ---------------------------------------------------------------------------------------------
// Fixtures: an open registry with two images, and a password-protected one behind its own proxy.

let tmp: string
let open: RegistryHandle
let locked: RegistryHandle
let proxy: ProxyHandle
let lockedProxy: ProxyHandle
/** config + 3 layers of ~1, 3 and 2 MiB */
let image: BuiltImage
/** a 16 MiB layer and a small one, for interruption */
let big: BuiltImage

const REPO = "faults/app"
const BIG_REPO = "faults/big"

beforeAll(async () => {
  tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), "microagent-faults-")))
  ;[open, locked, image, big] = await Promise.all([
    startRegistry({ mode: "none" }),
    startRegistry({ mode: "htpasswd", users: { [USER]: PASSWORD } }),
    makeImage({ dir: path.join(tmp, "app"), tag: "v1", layers: [1 * MiB, 3 * MiB, 2 * MiB] }),
    makeImage({ dir: path.join(tmp, "big"), tag: "v1", layers: [16 * MiB, 4 * KiB] })
  ])
  await Promise.all([
    skopeoPush(image, { registry: open.host, repository: REPO }),
    skopeoPush(big, { registry: open.host, repository: BIG_REPO }),
    skopeoPush(image, { registry: locked.host, repository: REPO, creds: { user: USER, password: PASSWORD } })
  ])
  ;[proxy, lockedProxy] = await Promise.all([
    startFaultProxy(open.host),
    startFaultProxy(locked.host, { upstreamAuth: BASIC })
  ])
}, 120_000)

afterAll(async () => {
  await Promise.all([proxy?.stop(), lockedProxy?.stop()])
  await Promise.all([open?.stop(), locked?.stop()])
  if (tmp !== undefined) await fs.rm(tmp, { recursive: true, force: true })
})

/** Fresh rules and an empty request log for each test. */
const faults = (p: ProxyHandle, rules: ReadonlyArray<FaultRule>) => {
  p.setFaults(rules)
  p.clearRequests()
}

afterEach(() => {
  proxy?.setFaults([])
  lockedProxy?.setFaults([])
})

const ref = (p: ProxyHandle | { host: string }, repo = REPO) => `${p.host}/${repo}:v1`

/** The largest layer: the one a fault hits mid-body. */
const largest = (img: BuiltImage) => [...img.layers].sort((a, b) => b.size - a.size)[0]!

// ---------------------------------------------------------------------------------------------

describe("[P5] a download cut mid-blob resumes", () => {
  it("[P5] resumes with Range: bytes=<n>- from the registry URL after a cut connection, and stores a sound blob", async () => {
    const home = await freshHome()
    const layer = largest(image)
    const afterBytes = 500 * KiB
    faults(proxy, [{ method: "GET", path: blobPathRe(layer.digest), times: 1, fault: { kind: "cut", afterBytes } }])

    const r = await pull(home, ref(proxy))

    await expectPulled(r, home, image)
    const gets = blobGets(proxy.requests, layer.digest)
    expect(gets.length, JSON.stringify(gets)).toBeGreaterThanOrEqual(2)
    expect(gets[0]).toMatchObject({ fault: "cut", range: undefined, status: 200 })
    const resumed = gets.slice(1).find((g) => g.range !== undefined)
    expect(resumed, `a ranged GET of ${layer.digest}: ${JSON.stringify(gets)}`).toBeDefined()
    const n = Number(/^bytes=(\d+)-$/.exec(resumed!.range!)?.[1])
    expect(n, resumed!.range).toBeGreaterThan(0)
    expect(n, resumed!.range).toBeLessThanOrEqual(afterBytes)
    expect(resumed!.status).toBe(206)
    const stored = path.join(imagesDir(home), "blobs", "sha256", layer.digest.slice("sha256:".length))
    expect(await sha256File(stored)).toBe(layer.digest)
    expect((await fs.stat(stored)).size).toBe(layer.size)
  })
})

describe("[P7] retries honour Retry-After", () => {
  it("[P7] 503 with Retry-After: 1 on the manifest GET, twice: retried after ≥ 2 s, 3 manifest GETs, pull succeeds", async () => {
    const home = await freshHome()
    faults(proxy, [
      { method: "GET", path: /\/manifests\//, times: 2, fault: { kind: "status", status: 503, headers: { "retry-after": "1" } } }
    ])

    const started = Date.now()
    const r = await pull(home, ref(proxy))
    const elapsed = Date.now() - started

    await expectPulled(r, home, image)
    const manifests = proxy.requests.filter(isManifestGet)
    expect(manifests.map((m) => m.status), JSON.stringify(manifests)).toEqual([503, 503, 200])
    expect(elapsed, "Retry-After: 1 honoured twice").toBeGreaterThanOrEqual(1_900)
  })

  it("[P7] 429 with Retry-After: 1 on a blob GET: retried after ≥ 1 s, pull succeeds", async () => {
    const home = await freshHome()
    const layer = image.layers[0]!
    faults(proxy, [
      { method: "GET", path: blobPathRe(layer.digest), times: 1, fault: { kind: "status", status: 429, headers: { "retry-after": "1" } } }
    ])

    const started = Date.now()
    const r = await pull(home, ref(proxy))
    const elapsed = Date.now() - started

    await expectPulled(r, home, image)
    const gets = blobGets(proxy.requests, layer.digest)
    expect(gets.map((g) => g.status), JSON.stringify(gets)).toEqual([429, 200])
    expect(elapsed, "Retry-After: 1 honoured").toBeGreaterThanOrEqual(950)
  })

  it("[P7] a connection reset on the first manifest GET is retried and the pull succeeds", async () => {
    const home = await freshHome()
    faults(proxy, [{ method: "GET", path: /\/manifests\//, times: 1, fault: { kind: "reset" } }])

    const r = await pull(home, ref(proxy))

    await expectPulled(r, home, image)
    const manifests = proxy.requests.filter(isManifestGet)
    expect(manifests[0]?.fault, JSON.stringify(manifests)).toBe("reset")
    expect(manifests.length, JSON.stringify(manifests)).toBeGreaterThanOrEqual(2)
    expect(manifests.at(-1)?.status).toBe(200)
  })
})

describe("[P3] redirects to a blob store", () => {
  it("[P3] blob GETs redirected (307) to another port: followed, and the registry's Authorization never reaches the blob store", async () => {
    const home = await freshHome()
    // Credentials in microagent's own store ([C1]) for the proxy's host:port.
    await writeAuthJson(storePath(home), authsFor({ [lockedProxy.host]: `${USER}:${PASSWORD}` }))
    faults(lockedProxy, [{ method: "GET", path: /\/blobs\/sha256:/, fault: { kind: "redirect", status: 307 } }])
    const authAttemptsBefore = lockedProxy.blobStoreAuthAttempts

    const r = await pull(home, ref(lockedProxy))

    await expectPulled(r, home, image)
    // The credentials were in use with the registry itself...
    const manifests = lockedProxy.requests.filter(isManifestGet)
    expect(manifests.some((m) => m.authorization && m.status === 200), JSON.stringify(manifests)).toBe(true)
    const redirected = lockedProxy.requests.filter((q) => q.fault === "redirect")
    expect(redirected.length).toBeGreaterThanOrEqual(1 + image.layers.length)
    expect(redirected.every((q) => q.authorization && q.status === 307)).toBe(true)
    // ...and never sent to the blob store.
    expect(lockedProxy.blobStoreAuthAttempts - authAttemptsBefore).toBe(0)
    const store = lockedProxy.blobStoreRequests
    expect(store.length, "requests reaching the blob store").toBeGreaterThanOrEqual(1 + image.layers.length)
    expect(store.filter((q) => q.authorization), JSON.stringify(store)).toEqual([])
    expect(store.every((q) => q.status === 200 || q.status === 206), JSON.stringify(store)).toBe(true)
    for (const digest of [image.configDigest, ...image.layerDigests]) {
      expect(store.some((q) => q.path.endsWith(`/blobs/${digest}`)), `${digest} served by the blob store`).toBe(true)
    }
  })
})

describe("[E7] [P5] a corrupted blob is never stored", () => {
  it("[E7] [P5] one flipped byte in a layer: exit 1, one error: line naming the digest mismatch, nothing wrong or partial stored; a clean retry succeeds", async () => {
    const home = await freshHome()
    const layer = largest(image)
    faults(proxy, [{ method: "GET", path: blobPathRe(layer.digest), fault: { kind: "corrupt", offset: 200 * KiB } }])

    const r = await pull(home, ref(proxy))

    expect(r.code, `stderr: ${r.stderr}`).toBe(1)
    // Blobs that finished before the failure each left their one progress line.
    expectCleanError(r, { progress: true })
    expect(r.stdout.trim()).toBe("")
    const line = r.stderr.split("\n").find((l) => l.startsWith("error:"))!
    expect(line).toContain(layer.digest)
    expect(line).toMatch(/mismatch|does not match|expected .*got/i)
    const layout = imagesDir(home)
    const present = await expectSoundBlobs(layout)
    expect(present.has(layer.digest), `${layer.digest} must not be stored`).toBe(false)
    expect(present.has(image.manifestDigest), "no manifest recorded for a failed pull").toBe(false)
    await expectNoTemp(layout)

    // [P5] the retry succeeds and downloads only what the store does not hold yet.
    faults(proxy, [])
    const retry = await pull(home, ref(proxy))
    await expectPulled(retry, home, image)
    for (const digest of [image.configDigest, ...image.layerDigests]) {
      expect(blobGets(proxy.requests, digest).length, `GETs of ${digest} on retry`).toBe(present.has(digest) ? 0 : 1)
    }
  })
})

describe("SIGINT during a pull", () => {
  it("[P5] interrupted with a partial blob on disk (cut, resume held back): exit 130, no partial blob stored, .tmp/ empty", async () => {
    const home = await freshHome()
    const layer = largest(big)
    const afterBytes = 2 * MiB
    faults(proxy, [
      { method: "GET", path: blobPathRe(layer.digest), times: 1, fault: { kind: "cut", afterBytes } },
      { method: "GET", path: blobPathRe(layer.digest), fault: { kind: "delay", ms: 20_000 } }
    ])
    const layout = imagesDir(home)

    const spawned = spawnPull(home, ref(proxy, BIG_REPO))
    // The first bytes are on disk, and the resume is in flight.
    await waitFor("a non-empty temp file", async () => (await tempSizes(layout)).some((s) => s > 0))
    await waitFor("the resumed GET", () => blobGets(proxy.requests, layer.digest).length >= 2)
    spawned.child.kill("SIGINT")
    const r = await exitWithin(spawned, 10_000)

    await expectInterrupted(r, layout, [layer.digest])
  })

  it("[P5] interrupted mid-body (throttled stream): exit 130, no partial blob stored, .tmp/ empty", async () => {
    const home = await freshHome()
    const layer = largest(big)
    faults(proxy, [])
    // 64 KiB every 10 ms: the 16 MiB layer takes ~2.5 s.
    const throttle = await startThrottle(proxy.host, 64 * KiB, 10)
    onCleanup(throttle.stop)
    const layout = imagesDir(home)

    const spawned = spawnPull(home, ref(throttle, BIG_REPO))
    await waitFor("a blob GET", () => blobGets(proxy.requests, layer.digest).length >= 1)
    await waitFor("a non-empty temp file", async () => (await tempSizes(layout)).some((s) => s > 256 * KiB))
    spawned.child.kill("SIGINT")
    const r = await exitWithin(spawned, 10_000)

    await expectInterrupted(r, layout, [layer.digest, big.manifestDigest])
  })
})
