/**
 * What a registry or a layout may hold that microagent must refuse (issue 15; SPEC [H1], [H3],
 * [P4], [P6], [E7]), end to end with the built CLI:
 *
 * - an index nested deeper than 8 levels, each level naming its child twice: refused after a
 *   handful of requests, in pull and push; within the limit every digest is fetched (or pushed)
 *   once per operation;
 * - a push layout whose blob is shorter than its descriptor, a symbolic link, or missing: a clear
 *   error naming the blob and the layout, before anything is sent (it hung, or blamed the
 *   registry);
 * - documents with two meanings (CVE-2021-41190): `manifests` beside `layers`/`config`, with or
 *   without a `mediaType`, whatever the Content-Type; pulled or pushed;
 * - `sha512:` references verified with sha512;
 * - a malformed digest in a manifest is the registry's fault, not the `--output` folder's; an
 *   oversized manifest is refused as such, not called "unavailable".
 *
 * Registry behaviour comes from a hostile node:http server on 127.0.0.1 that answers at most
 * `LIMIT` requests (then 404s) and records every request; pushes go to the real registry behind
 * the recording fault proxy.
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import type * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { auditBlobs, expectCleanError, show } from "../support/assertions.js"
import { runCli, type CliResult } from "../support/cli.js"
import { startFaultProxy, type ProxyHandle } from "../support/faultProxy.js"
import { addRef, blobPath, ensureLayout, makeImage, MEDIA_TYPES, writeJsonBlob } from "../support/images.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

const { freshHome, scratchDir } = useScratch("microagent-hostile-content-")

// ---------------------------------------------------------------------------------------------
// A hostile registry: serves what a test put in it, records every request, bounded in count.

const LIMIT = 400
const TIMEOUT_MS = 20_000

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`
const sha512 = (bytes: Uint8Array) => `sha512:${createHash("sha512").update(bytes).digest("hex")}`

interface Served {
  readonly bytes: Buffer
  readonly contentType: string
}

interface Hostile {
  readonly host: string
  /** Manifests by reference: a tag (`<repo>:<tag>`) or a digest (any repository). */
  readonly manifests: Map<string, Served>
  readonly blobs: Map<string, Buffer>
  readonly requests: Array<{ readonly method: string; readonly path: string }>
  readonly close: () => Promise<void>
}

const startHostile = async (): Promise<Hostile> => {
  const manifests = new Map<string, Served>()
  const blobs = new Map<string, Buffer>()
  const requests: Array<{ method: string; path: string }> = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? "/")
    requests.push({ method: req.method ?? "", path: url })
    const notFound = () => {
      res.writeHead(404, { "content-type": "application/json" })
      res.end(JSON.stringify({ errors: [{ code: "NOT_FOUND", message: "not here" }] }))
    }
    if (requests.length > LIMIT) return notFound()
    if (url === "/v2/") {
      res.writeHead(200, { "content-type": "application/json" })
      return res.end("{}")
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url)
    if (manifest !== null) {
      const ref = manifest[2]!
      const served = manifests.get(ref.includes(":") ? ref : `${manifest[1]}:${ref}`)
      if (served === undefined) return notFound()
      res.writeHead(200, {
        "content-type": served.contentType,
        "content-length": served.bytes.length,
        "docker-content-digest": sha256(served.bytes)
      })
      return res.end(req.method === "HEAD" ? undefined : served.bytes)
    }
    const blob = /^\/v2\/(.+)\/blobs\/(.+)$/.exec(url)
    const bytes = blob === null ? undefined : blobs.get(blob[2]!)
    if (bytes === undefined) return notFound()
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length })
    res.end(req.method === "HEAD" ? undefined : bytes)
  })
  server.on("connection", (socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    host: `127.0.0.1:${port}`,
    manifests,
    blobs,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

interface Desc {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
}

/** Stores a JSON document as a manifest under its sha256 digest (and `tag`, when given). */
const serveJson = (h: Hostile, value: unknown, contentType: string, tag?: string): Desc & { bytes: Buffer } => {
  const bytes = Buffer.from(JSON.stringify(value))
  const served = { bytes, contentType }
  h.manifests.set(sha256(bytes), served)
  h.manifests.set(sha512(bytes), served)
  if (tag !== undefined) h.manifests.set(tag, served)
  return { mediaType: contentType, digest: sha256(bytes), size: bytes.length, bytes }
}

/** An image with a config and one small random layer; its blobs are served too. */
const serveImage = (h: Hostile, tag?: string) => {
  const config = Buffer.from(JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [] }, nonce: randomBytes(8).toString("hex") }))
  const layer = randomBytes(512)
  h.blobs.set(sha256(config), config)
  h.blobs.set(sha256(layer), layer)
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, digest: sha256(config), size: config.length },
    layers: [{ mediaType: MEDIA_TYPES.layer, digest: sha256(layer), size: layer.length }]
  }
  return { ...serveJson(h, manifest, MEDIA_TYPES.manifest, tag), manifest, config, layer }
}

/** `levels` indexes, each naming the one below twice (the bottom one names `image` twice). */
const nestedIndexes = (image: Desc, levels: number, write: (index: unknown) => Desc): Array<Desc> => {
  const chain: Array<Desc> = []
  let child: Desc = image
  for (let level = 1; level <= levels; level++) {
    const entry = { mediaType: child.mediaType, digest: child.digest, size: child.size }
    child = write({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: [
        { ...entry, platform: { os: "linux", architecture: "amd64" } },
        { ...entry, platform: { os: "linux", architecture: "arm64" } }
      ]
    })
    chain.push(child)
  }
  return chain
}

const manifestGets = (h: Hostile) => h.requests.filter((r) => r.method === "GET" && r.path.includes("/manifests/"))
const blobGets = (h: Hostile) => h.requests.filter((r) => r.method === "GET" && r.path.includes("/blobs/"))

/** Every digest under `dir/blobs` (none when there is no such folder). */
const storedBlobs = async (dir: string): Promise<Set<string>> => {
  try {
    const { bad, present } = await auditBlobs(dir)
    expect(bad).toEqual([])
    return present
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return new Set()
    throw e
  }
}

const cli = async (args: ReadonlyArray<string>): Promise<CliResult> =>
  runCli(args, { env: { HOME: await freshHome() }, timeoutMs: TIMEOUT_MS })

let hostile: Hostile

beforeAll(async () => {
  hostile = await startHostile()
})

afterAll(async () => {
  await hostile?.close()
})

beforeEach(() => {
  hostile.requests.length = 0
})

// ---------------------------------------------------------------------------------------------

describe("[H3] nested indexes, pulled", () => {
  it("[H3] 24 levels, each naming its child twice: pull stops at the 9th level, exit 1, after 9 manifest requests", async () => {
    const image = serveImage(hostile)
    const chain = nestedIndexes(image, 24, (index) => serveJson(hostile, index, MEDIA_TYPES.index))
    hostile.manifests.set("deep/app:v1", hostile.manifests.get(chain.at(-1)!.digest)!)
    const out = path.join(await scratchDir(), "out")
    const r = await cli(["pull", "-q", `${hostile.host}/deep/app:v1`, "--output", out])
    expect(r.code, show(r)).toBe(1)
    const [line] = expectCleanError(r)
    expect(line).toMatch(/nest more than 8 levels/)
    expect(line).toContain(hostile.host)
    expect(line).not.toMatch(/unavailable/)
    // The top (by tag) and 8 levels below it; never a blob.
    expect(manifestGets(hostile).length, JSON.stringify(hostile.requests)).toBeLessThanOrEqual(9)
    expect(blobGets(hostile)).toEqual([])
    expect(await storedBlobs(out)).toEqual(new Set())
  })

  it("[H3] 8 levels, each naming its child twice: pulled whole, every manifest and blob fetched once", async () => {
    const image = serveImage(hostile)
    const chain = nestedIndexes(image, 8, (index) => serveJson(hostile, index, MEDIA_TYPES.index))
    const top = chain.at(-1)!
    const out = path.join(await scratchDir(), "out")
    const r = await cli(["pull", "-q", `${hostile.host}/eight/app@${top.digest}`, "--output", out])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout.trim()).toBe(top.digest)
    const gets = manifestGets(hostile).map((q) => q.path)
    expect(gets).toHaveLength(9)
    expect(new Set(gets).size).toBe(9)
    expect(blobGets(hostile)).toHaveLength(2)
    const stored = await storedBlobs(out)
    for (const d of [...chain, image]) expect(stored.has(d.digest), d.digest).toBe(true)
  })

  it("[H3] 9 levels are refused, also when --platform enters the top index first", async () => {
    const image = serveImage(hostile)
    const chain = nestedIndexes(image, 9, (index) => serveJson(hostile, index, MEDIA_TYPES.index))
    const top = chain.at(-1)!.digest
    for (const extra of [[], ["--platform", "linux/amd64"]]) {
      const r = await cli(["pull", "-q", `${hostile.host}/nine/app@${top}`, "--output", path.join(await scratchDir(), "out"), ...extra])
      expect(r.code, show(r)).toBe(1)
      expect(expectCleanError(r)[0]).toMatch(/nest more than 8 levels/)
    }
  })

  it("[H3] inspect of the 24-level index reads its top only", async () => {
    const image = serveImage(hostile)
    const chain = nestedIndexes(image, 24, (index) => serveJson(hostile, index, MEDIA_TYPES.index))
    const r = await cli(["inspect", "--json", `${hostile.host}/deep/app@${chain.at(-1)!.digest}`])
    expect(r.code, show(r)).toBe(0)
    expect(JSON.parse(r.stdout).platforms).toHaveLength(2)
    expect(manifestGets(hostile)).toHaveLength(1)
  })
})

// ---------------------------------------------------------------------------------------------

describe("[P4] documents with two meanings (CVE-2021-41190) are refused when pulled", () => {
  const cases = [
    { name: "an index that also has layers and config", mediaType: MEDIA_TYPES.index, contentType: MEDIA_TYPES.index },
    { name: "an image manifest that also has manifests", mediaType: MEDIA_TYPES.manifest, contentType: MEDIA_TYPES.manifest },
    { name: "no mediaType, served as an index", mediaType: undefined, contentType: MEDIA_TYPES.index },
    { name: "no mediaType, served as an image manifest", mediaType: undefined, contentType: MEDIA_TYPES.manifest },
    { name: "no mediaType, served as application/json", mediaType: undefined, contentType: "application/json" }
  ] as const

  for (const c of cases) {
    it(`[P4] ${c.name}: exit 1, "ambiguous", nothing stored`, async () => {
      const image = serveImage(hostile)
      const both = {
        schemaVersion: 2,
        ...(c.mediaType === undefined ? {} : { mediaType: c.mediaType }),
        manifests: [{ mediaType: MEDIA_TYPES.manifest, digest: image.digest, size: image.size, platform: { os: "linux", architecture: "amd64" } }],
        config: image.manifest.config,
        layers: image.manifest.layers
      }
      const tag = `v${randomBytes(4).toString("hex")}`
      serveJson(hostile, both, c.contentType, `twofaced/app:${tag}`)
      const out = path.join(await scratchDir(), "out")
      const r = await cli(["pull", "-q", `${hostile.host}/twofaced/app:${tag}`, "--output", out])
      expect(r.code, show(r)).toBe(1)
      const [line] = expectCleanError(r)
      expect(line).toMatch(/ambiguous/)
      expect(line).not.toMatch(/unavailable/)
      expect(blobGets(hostile)).toEqual([])
      expect(await storedBlobs(out)).toEqual(new Set())
    })
  }

  it("[P4] a body that says index, served as an image manifest: refused", async () => {
    const image = serveImage(hostile)
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: [{ mediaType: MEDIA_TYPES.manifest, digest: image.digest, size: image.size }]
    }
    serveJson(hostile, index, MEDIA_TYPES.manifest, "mislabelled/app:v1")
    const r = await cli(["pull", "-q", `${hostile.host}/mislabelled/app:v1`, "--output", path.join(await scratchDir(), "out")])
    expect(r.code, show(r)).toBe(1)
    expect(expectCleanError(r)[0]).toMatch(/ambiguous/)
  })
})

// ---------------------------------------------------------------------------------------------

describe("[H1] digests", () => {
  it("[H1] a sha512 reference is verified with sha512: pulled, stored under blobs/sha512, printed", async () => {
    const image = serveImage(hostile)
    const digest = sha512(image.bytes)
    const out = path.join(await scratchDir(), "out")
    const r = await cli(["pull", "-q", `${hostile.host}/strong/app@${digest}`, "--output", out])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout.trim()).toBe(digest)
    const stored = await storedBlobs(out)
    expect(stored.has(digest)).toBe(true)
    const index = JSON.parse(await fs.readFile(path.join(out, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> }
    expect(index.manifests.map((m) => m.digest)).toEqual([digest])
  })

  it("[H1] [E7] a layer digest that is not a digest is the registry's fault, not the --output folder's; nothing is written", async () => {
    const canary = await scratchDir()
    const evil = `sha256:../../../../..${canary}/owned`
    const image = serveImage(hostile)
    const manifest = { ...image.manifest, layers: [{ ...image.manifest.layers[0]!, digest: evil }] }
    serveJson(hostile, manifest, MEDIA_TYPES.manifest, "traversal/app:v1")
    const out = path.join(await scratchDir(), "out")
    const r = await cli(["pull", "-q", `${hostile.host}/traversal/app:v1`, "--output", out])
    expect(r.code, show(r)).toBe(1)
    const [line] = expectCleanError(r)
    expect(line).toContain(hostile.host)
    expect(line).toMatch(/not a digest/)
    expect(line).not.toMatch(new RegExp(`^error: ${out}`))
    expect(blobGets(hostile)).toEqual([])
    expect(await fs.readdir(canary)).toEqual([])
    expect(await storedBlobs(out)).toEqual(new Set())
  })

  it("[E7] a blob that does not match its digest: DigestMismatch naming the registry", async () => {
    const image = serveImage(hostile, "tampered/app:v1")
    hostile.blobs.set(image.manifest.layers[0]!.digest, randomBytes(image.layer.length))
    const out = path.join(await scratchDir(), "out")
    const r = await cli(["pull", "-q", `${hostile.host}/tampered/app:v1`, "--output", out])
    expect(r.code, show(r)).toBe(1)
    const [line] = expectCleanError(r)
    expect(line).toMatch(/digest mismatch/)
    expect(line).toContain(hostile.host)
    expect((await storedBlobs(out)).has(image.manifest.layers[0]!.digest)).toBe(false)
  })

  it("[P4] a manifest over 4 MiB is refused as too large, not called unavailable", async () => {
    const image = serveImage(hostile)
    const big = { ...image.manifest, annotations: { padding: "x".repeat(4 * 1024 * 1024) } }
    serveJson(hostile, big, MEDIA_TYPES.manifest, "big/app:v1")
    const r = await cli(["pull", "-q", `${hostile.host}/big/app:v1`, "--output", path.join(await scratchDir(), "out")])
    expect(r.code, show(r)).toBe(1)
    const [line] = expectCleanError(r)
    expect(line).toMatch(/larger than the 4 MiB cap/)
    expect(line).toContain(hostile.host)
    expect(line).not.toMatch(/unavailable/)
  })
})

// ---------------------------------------------------------------------------------------------
// Pushes, to the real registry behind the recording proxy

describe("push of a hostile or damaged layout", () => {
  let registry: RegistryHandle
  let proxy: ProxyHandle

  beforeAll(async () => {
    registry = await startRegistry({ mode: "none" })
    proxy = await startFaultProxy(registry.host)
  })

  afterAll(async () => {
    await proxy?.stop()
    await registry?.stop()
  })

  let from = 0
  /** Requests from here on are the ones `seen` returns. */
  const mark = () => {
    from = proxy.requests.length
  }
  const seen = () => proxy.requests.slice(from)
  const uploads = () => seen().filter((q) => q.method === "POST" || q.method === "PUT" || q.method === "PATCH")

  /** A layout holding one image (tag `v1`), plus `levels` nested indexes above it tagged `nested`. */
  const layoutWith = async (levels: number) => {
    const dir = path.join(await scratchDir(), "layout")
    const image = await makeImage({ dir, tag: "v1", layers: [1024] })
    // The structure of nestedIndexes, written into the layout.
    let child: Desc = { mediaType: image.manifestMediaType, digest: image.manifestDigest, size: image.manifestSize }
    for (let level = 1; level <= levels; level++) {
      const entry = { mediaType: child.mediaType, digest: child.digest, size: child.size }
      const written = await writeJsonBlob(dir, {
        schemaVersion: 2,
        mediaType: MEDIA_TYPES.index,
        manifests: [
          { ...entry, platform: { os: "linux", architecture: "amd64" } },
          { ...entry, platform: { os: "linux", architecture: "arm64" } }
        ]
      })
      child = { mediaType: MEDIA_TYPES.index, ...written }
    }
    if (levels > 0) await addRef(dir, "nested", child)
    return { dir, image, top: child }
  }

  it("[H3] 24 nested levels, each naming its child twice: refused before anything is sent, exit 1", async () => {
    const { dir } = await layoutWith(24)
    mark()
    const r = await cli(["push", "-q", `oci:${dir}:nested`, `${proxy.host}/team/deep:v1`])
    expect(r.code, show(r)).toBe(1)
    const [line] = expectCleanError(r)
    expect(line).toMatch(/nest more than 8 levels/)
    expect(line).toContain(dir)
    expect(uploads()).toEqual([])
  })

  it("[H3] [P6] 8 nested levels: every blob and every manifest pushed once, the index readable after", async () => {
    const { dir, image, top } = await layoutWith(8)
    mark()
    const r = await cli(["push", "-q", `oci:${dir}:nested`, `${proxy.host}/team/eight:v1`])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout.trim()).toBe(top.digest)
    const manifestPuts = seen().filter((q) => q.method === "PUT" && q.path.includes("/manifests/"))
    expect(manifestPuts).toHaveLength(9)
    expect(new Set(manifestPuts.map((q) => q.path)).size).toBe(9)
    const blobHeads = seen().filter((q) => q.method === "HEAD" && q.path.includes("/blobs/"))
    expect(blobHeads).toHaveLength(2)
    const pulled = await cli(["pull", "-q", `${registry.host}/team/eight@${top.digest}`, "--output", path.join(await scratchDir(), "back")])
    expect(pulled.code, show(pulled)).toBe(0)
    expect(pulled.stdout.trim()).toBe(top.digest)
    expect(image.layerDigests).toHaveLength(1)
  })

  it("[P6] a blob file shorter than its descriptor: exit 1 naming the blob and the layout, nothing sent (it hung)", async () => {
    const { dir, image } = await layoutWith(0)
    const layer = image.layerDigests[0]!
    const file = blobPath(dir, layer)
    await fs.truncate(file, (await fs.stat(file)).size - 100)
    mark()
    const r = await cli(["push", "-q", `oci:${dir}:v1`, `${proxy.host}/team/short:v1`])
    expect(r.code, show(r)).toBe(1)
    const [line] = expectCleanError(r)
    expect(line).toContain(dir)
    expect(line).toContain(layer)
    expect(line).toMatch(/bytes/)
    expect(uploads()).toEqual([])
  })

  for (const target of ["a short file", "a copy of the blob"] as const) {
    it(`[P6] a blob that is a symbolic link to ${target}: refused, naming the blob and the layout, nothing sent`, async () => {
      const { dir, image } = await layoutWith(0)
      const layer = image.layerDigests[0]!
      const file = blobPath(dir, layer)
      const elsewhere = path.join(await scratchDir(), "elsewhere")
      if (target === "a short file") await fs.writeFile(elsewhere, "short")
      else await fs.copyFile(file, elsewhere)
      await fs.rm(file)
      await fs.symlink(elsewhere, file)
      mark()
      const r = await cli(["push", "-q", `oci:${dir}:v1`, `${proxy.host}/team/linked:v1`])
      expect(r.code, show(r)).toBe(1)
      const [line] = expectCleanError(r)
      expect(line).toContain(dir)
      expect(line).toContain(layer)
      expect(line).toMatch(/symbolic link/)
      expect(uploads()).toEqual([])
    })
  }

  it("[P6] a blob missing from the layout: an error naming it and the layout, not \"registry unavailable: ENOENT\"", async () => {
    const { dir, image } = await layoutWith(0)
    const layer = image.layerDigests[0]!
    await fs.rm(blobPath(dir, layer))
    mark()
    const r = await cli(["push", "-q", `oci:${dir}:v1`, `${proxy.host}/team/missing:v1`])
    expect(r.code, show(r)).toBe(1)
    const [line] = expectCleanError(r)
    expect(line).toContain(dir)
    expect(line).toContain(layer)
    expect(line).toMatch(/not in the layout/)
    expect(line).not.toMatch(/unavailable|ENOENT/)
    expect(uploads()).toEqual([])
  })

  it("[P4] a layout whose index also has layers (two meanings): refused, nothing sent", async () => {
    const dir = path.join(await scratchDir(), "layout")
    await ensureLayout(dir)
    const image = await makeImage({ dir, tag: "v1", layers: [512] })
    const manifest = JSON.parse(await fs.readFile(blobPath(dir, image.manifestDigest), "utf8")) as Record<string, unknown>
    const both = await writeJsonBlob(dir, {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: [{ mediaType: MEDIA_TYPES.manifest, digest: image.manifestDigest, size: image.manifestSize }],
      config: manifest["config"],
      layers: manifest["layers"]
    })
    await addRef(dir, "both", { mediaType: MEDIA_TYPES.index, ...both })
    mark()
    const r = await cli(["push", "-q", `oci:${dir}:both`, `${proxy.host}/team/twofaced:v1`])
    expect(r.code, show(r)).toBe(1)
    const [line] = expectCleanError(r)
    expect(line).toMatch(/ambiguous/)
    expect(line).toContain(dir)
    expect(uploads()).toEqual([])
  })
})
