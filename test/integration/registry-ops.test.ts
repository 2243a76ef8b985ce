/**
 * `microagent tag`, `delete` and `catalog` (SPEC §8 [M2] [M3] [M4]) end to end with the built CLI,
 * against real CNCF distribution registries on loopback (deletion enabled unless a test says
 * otherwise; anonymous, or token auth where scopes matter). A fault proxy in front of a registry
 * records every request, so "no blob moves" and "nothing is sent" are seen, not assumed. Catalog
 * pagination, loops and off-host `Link`s are served by hostile servers: the registry pages only
 * past 1000 repositories.
 */
import * as fs from "node:fs/promises"
import type * as http from "node:http"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { expectCleanError, show } from "../support/assertions.js"
import { authsFor, writeAuthJson } from "../support/auth.js"
import { binPath, type CliResult, runCli } from "../support/cli.js"
import { startFaultProxy } from "../support/faultProxy.js"
import { type Handler, type Hostile, listPage, openPing, startHostile } from "../support/hostileServer.js"
import { blobPath, type BuiltImage, makeImage, makeIndex, MEDIA_TYPES, skopeoInspectDigest, skopeoPush } from "../support/images.js"
import { spawnPty } from "../support/pty.js"
import { type RegistryHandle, startRegistry } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

const { freshHome, onCleanup, scratchDir } = useScratch("microagent-registry-ops-")

type Env = Record<string, string | undefined>

const cli = async (args: ReadonlyArray<string>, env: Env = {}): Promise<CliResult> =>
  runCli(args, { env: { HOME: await freshHome(), ...env }, timeoutMs: 30_000 })

/** Exits with `code`, one clean `error:` line (and maybe a hint), nothing on stdout; returns the error line. */
const expectFailure = (r: CliResult, code: number): string => {
  expect(r.code, show(r)).toBe(code)
  expect(r.stdout, show(r)).toBe("")
  return expectCleanError(r)[0]!
}

/** A hostile server, closed after the test. */
const hostile = async (handler: Handler): Promise<Hostile> => {
  const server = await startHostile(handler)
  onCleanup(server.close)
  return server
}

let registry: RegistryHandle
let image: BuiltImage
/** A folder for the whole file (useScratch's are removed after each test). */
let fixtures = ""

beforeAll(async () => {
  fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-registry-ops-fixtures-")))
  registry = await startRegistry({ mode: "none" })
  image = await makeImage({ dir: path.join(fixtures, "app"), tag: "1.0", layers: [4096, 8192] })
})

afterAll(async () => {
  await registry?.stop()
  if (fixtures !== "") await fs.rm(fixtures, { recursive: true, force: true })
})

/** Pushes the fixture image to `repository:1.0` of `target` (default: the shared registry). */
const pushImage = (repository: string, target: RegistryHandle = registry, creds?: { user: string; password: string }) =>
  skopeoPush(image, { registry: target.host, repository, ...(creds === undefined ? {} : { creds }) })

/** The digest a registry serves for a reference now, or undefined when it has none. */
const served = (reference: string, creds?: { user: string; password: string }) =>
  skopeoInspectDigest(`docker://${reference}`, creds === undefined ? {} : { creds }).catch(() => undefined)

const tagList = async (repository: string) => {
  const response = await fetch(`${registry.url}/v2/${repository}/tags/list`)
  return ((await response.json()) as { tags: Array<string> | null }).tags ?? []
}

// ---- [M2] tag --------------------------------------------------------------------------------

describe("[M2] tag", () => {
  it("puts the manifest under each new tag: same digest, one line per tag on stderr, no blob request", async () => {
    await pushImage("tag/app")
    const proxy = await startFaultProxy(registry.host)
    onCleanup(proxy.stop)
    const r = await cli(["tag", `${proxy.host}/tag/app:1.0`, "1.0.1", "latest"])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toBe(`${image.manifestDigest}\n`)
    expect(r.stderr).toBe(`tagged ${proxy.host}/tag/app:1.0.1\ntagged ${proxy.host}/tag/app:latest\n`)
    expect(proxy.requests.filter((q) => q.path.includes("/blobs/")), "blob requests").toEqual([])
    expect(proxy.requests.filter((q) => q.method === "PUT").map((q) => q.path)).toEqual([
      "/v2/tag/app/manifests/1.0.1",
      "/v2/tag/app/manifests/latest"
    ])
    expect(await served(`${registry.host}/tag/app:1.0.1`)).toBe(image.manifestDigest)
    expect(await served(`${registry.host}/tag/app:latest`)).toBe(image.manifestDigest)
    expect((await tagList("tag/app")).sort()).toEqual(["1.0", "1.0.1", "latest"])
  })

  it("an index keeps its bytes and media type, and a source given by digest works", async () => {
    const index = await makeIndex({ dir: path.join(await scratchDir(), "multi"), tag: "1.0" })
    await skopeoPush(index, { registry: registry.host, repository: "tag/multi", all: true })
    const r = await cli(["tag", "--json", `${registry.host}/tag/multi@${index.indexDigest}`, "stable"])
    expect(r.code, show(r)).toBe(0)
    expect(JSON.parse(r.stdout)).toStrictEqual({
      reference: `${registry.host}/tag/multi@${index.indexDigest}`,
      digest: index.indexDigest,
      mediaType: MEDIA_TYPES.index,
      tags: ["stable"]
    })
    const response = await fetch(`${registry.url}/v2/tag/multi/manifests/stable`, { method: "HEAD", headers: { accept: MEDIA_TYPES.index } })
    expect(response.headers.get("content-type")).toBe(MEDIA_TYPES.index)
    expect(response.headers.get("docker-content-digest")).toBe(index.indexDigest)
  })

  it("-q prints the digest alone", async () => {
    await pushImage("tag/quiet")
    const r = await cli(["tag", "-q", `${registry.host}/tag/quiet:1.0`, "2.0"])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toBe(`${image.manifestDigest}\n`)
    expect(r.stderr).toBe("")
  })

  it.each([["bad/tag"], ["-dash"], [".dot"], ["a".repeat(129)], ["sha256:abc"], [""]])(
    "a bad tag (%s) is a usage error (exit 2) and nothing is sent",
    async (bad) => {
      const server = await hostile((_req, res) => void res.writeHead(500).end())
      // After `--`, so that `-dash` reaches the tag check rather than the flag check.
      const line = expectFailure(await cli(["tag", `${server.host}/team/app:1.0`, "good", "--", bad]), 2)
      expect(line).toContain("invalid tag")
      expect(server.seen).toEqual([])
    }
  )

  it("a source that does not exist: exit 1 (not found) and no manifest is put", async () => {
    const proxy = await startFaultProxy(registry.host)
    onCleanup(proxy.stop)
    expect(expectFailure(await cli(["tag", `${proxy.host}/tag/none:1.0`, "2.0"]), 1)).toContain("not found")
    expect(proxy.requests.filter((q) => q.method === "PUT")).toEqual([])
  })
})

// ---- [M3] delete -----------------------------------------------------------------------------

describe("[M3] delete", () => {
  it("deletes the manifest a tag points at, and every tag pointing at it; a pull then finds nothing (exit 1)", async () => {
    await pushImage("del/app")
    expect((await cli(["tag", "-q", `${registry.host}/del/app:1.0`, "also"])).code).toBe(0)
    const r = await cli(["delete", "--yes", `${registry.host}/del/app:1.0`])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toBe(`${image.manifestDigest}\n`)
    expect(r.stderr).toBe(`deleted ${registry.host}/del/app@${image.manifestDigest}\n`)
    expect(await tagList("del/app")).toEqual([])
    const pull = await cli(["pull", `${registry.host}/del/app:1.0`])
    expect(expectFailure(pull, 1)).toContain("not found")
  })

  it("by digest: deletes it; once more, the digest is not found (exit 1)", async () => {
    await pushImage("del/digest")
    const ref = `${registry.host}/del/digest@${image.manifestDigest}`
    const r = await cli(["delete", "-y", ref])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toBe(`${image.manifestDigest}\n`)
    expect(await served(`${registry.host}/del/digest:1.0`)).toBeUndefined()
    expect(expectFailure(await cli(["delete", "-y", ref]), 1)).toContain("not found")
  })

  it("a tag that does not exist: exit 1, nothing deleted", async () => {
    const proxy = await startFaultProxy(registry.host)
    onCleanup(proxy.stop)
    expect(expectFailure(await cli(["delete", "--yes", `${proxy.host}/del/none:1.0`]), 1)).toContain("not found")
    expect(proxy.requests.filter((q) => q.method === "DELETE")).toEqual([])
  })

  it("on a registry with deletion disabled: exit 1 saying so, and the image is still there", async () => {
    const locked = await startRegistry({ mode: "none" }, { deletion: false })
    onCleanup(locked.stop)
    await pushImage("del/app", locked)
    const line = expectFailure(await cli(["delete", "--yes", `${locked.host}/del/app:1.0`]), 1)
    expect(line).toContain(`registry ${locked.host} has deletion disabled`)
    expect(await served(`${locked.host}/del/app:1.0`)).toBe(image.manifestDigest)
  })

  it("without a terminal and without --yes: exit 2, nothing sent (not even the tag's resolution)", async () => {
    await pushImage("del/kept")
    const proxy = await startFaultProxy(registry.host)
    onCleanup(proxy.stop)
    const line = expectFailure(await cli(["delete", `${proxy.host}/del/kept:1.0`]), 2)
    expect(line).toContain("--yes")
    expect(proxy.requests).toEqual([])
    expect(await served(`${registry.host}/del/kept:1.0`)).toBe(image.manifestDigest)
  })

  describe("on a terminal, it asks first", () => {
    /** Runs delete on a terminal, its stdout sent to `stdout` when given (as `digest=$(…)` would), and types `key`. */
    const answer = async (reference: string, key: string, stdout?: string) => {
      const argv = [process.execPath, binPath, "delete", reference]
      const session = stdout === undefined
        ? spawnPty(argv[0]!, argv.slice(1), { env: { HOME: await freshHome() } })
        : spawnPty("sh", ["-c", `exec "$@" > "${stdout}"`, "sh", ...argv], { env: { HOME: await freshHome() } })
      try {
        const prompt = await session.waitFor(/\[y\/N\]/)
        session.write(key)
        return { prompt, ...(await session.exited) }
      } finally {
        session.kill()
      }
    }

    it("the question names the repository and digest and says every tag goes; n deletes nothing", async () => {
      await pushImage("del/asked")
      const { code, output, prompt } = await answer(`${registry.host}/del/asked:1.0`, "n")
      expect(prompt).toContain(
        `Delete ${registry.host}/del/asked@${image.manifestDigest}? This removes every tag of ${registry.host}/del/asked that points at it`
      )
      expect(code, output).toBe(0)
      expect(output).toContain("nothing deleted")
      // NO_COLOR (set by spawnPty) takes the prompt's colours off, as it does login's.
      expect(output).not.toMatch(/\x1b\[[0-9;]*m/)
      expect(await served(`${registry.host}/del/asked:1.0`)).toBe(image.manifestDigest)
    })

    it("Ctrl-C at the question: exit 130, nothing deleted", async () => {
      await pushImage("del/interrupted")
      const { code, output } = await answer(`${registry.host}/del/interrupted:1.0`, "\u0003")
      expect(code, output).toBe(130)
      expect(await served(`${registry.host}/del/interrupted:1.0`)).toBe(image.manifestDigest)
    })

    it("y deletes; the question is on stderr, so stdout holds the digest alone", async () => {
      await pushImage("del/yes")
      const stdout = path.join(await scratchDir(), "stdout")
      const { code, output } = await answer(`${registry.host}/del/yes:1.0`, "y", stdout)
      expect(code, output).toBe(0)
      expect(output).toContain(`deleted ${registry.host}/del/yes@${image.manifestDigest}`)
      expect(await fs.readFile(stdout, "utf8")).toBe(`${image.manifestDigest}\n`)
      expect(await served(`${registry.host}/del/yes:1.0`)).toBeUndefined()
    })
  })

  describe("with token auth", () => {
    const alice = { user: "alice", password: "alice-Pw-1" }
    const bob = { user: "bob", password: "bob-Pw-2" }
    let secured: RegistryHandle
    let authFile = ""
    beforeAll(async () => {
      secured = await startRegistry({
        mode: "token",
        users: { [alice.user]: alice.password, [bob.user]: bob.password },
        // bob may push but not delete.
        grant: (user, _repository, requested) => user === undefined ? [] : requested.filter((a) => user === "alice" || a !== "delete")
      })
      authFile = await writeAuthJson(path.join(fixtures, "token-auth.json"), authsFor({ [secured.host]: `${alice.user}:${alice.password}` }))
    })
    afterAll(() => secured?.stop())

    it("asks for push,pull,delete on the repository, and deletes", async () => {
      await pushImage("del/token", secured, alice)
      const r = await cli(["delete", "--yes", `${secured.host}/del/token:1.0`], { REGISTRY_AUTH_FILE: authFile })
      expect(r.code, show(r)).toBe(0)
      expect(r.stdout).toBe(`${image.manifestDigest}\n`)
      const scopes = secured.tokenRequests.flatMap((t) => [t.query["scope"] ?? []].flat())
      expect(scopes).toContain("repository:del/token:push,pull,delete")
      expect(await served(`${secured.host}/del/token:1.0`, alice)).toBeUndefined()
    })

    it("a user without the delete right: exit 4, the image is still there", async () => {
      await pushImage("del/denied", secured, alice)
      const bobFile = await writeAuthJson(path.join(await scratchDir(), "auth.json"), authsFor({ [secured.host]: `${bob.user}:${bob.password}` }))
      const line = expectFailure(await cli(["delete", "--yes", `${secured.host}/del/denied:1.0`], { REGISTRY_AUTH_FILE: bobFile }), 4)
      expect(line).toContain("denied delete access to del/denied")
      expect(await served(`${secured.host}/del/denied:1.0`, alice)).toBe(image.manifestDigest)
    })
  })

  it("a registry that sends no Docker-Content-Digest: the digest of the manifest's bytes is the one deleted", async () => {
    const manifest = await fs.readFile(blobPath(image.dir, image.manifestDigest))
    const digest = image.manifestDigest
    const server = await hostile((req: http.IncomingMessage, res: http.ServerResponse) => {
      if (openPing(req, res)) return
      if (req.url === "/v2/team/app/manifests/1.0") {
        res.writeHead(200, { "content-type": MEDIA_TYPES.manifest, "content-length": manifest.length })
        return void res.end(req.method === "HEAD" ? undefined : manifest)
      }
      if (req.method === "DELETE" && req.url === `/v2/team/app/manifests/${digest}`) return void res.writeHead(202).end()
      res.writeHead(404).end()
    })
    const r = await cli(["delete", "--yes", `${server.host}/team/app:1.0`])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toBe(`${digest}\n`)
    expect(server.seen.map((s) => `${s.method} ${s.path}`).filter((s) => !s.endsWith(" /v2/"))).toEqual([
      "HEAD /v2/team/app/manifests/1.0",
      "GET /v2/team/app/manifests/1.0",
      `DELETE /v2/team/app/manifests/${digest}`
    ])
  })
})

// ---- [M4] catalog ----------------------------------------------------------------------------

describe("[M4] catalog", () => {
  it("lists every repository of a registry, one per line; --json gives {registry, repositories}", async () => {
    const own = await startRegistry({ mode: "none" })
    onCleanup(own.stop)
    for (const repository of ["b/app", "a/app", "c/deep/app"]) await pushImage(repository, own)
    const r = await cli(["catalog", own.host])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toBe("a/app\nb/app\nc/deep/app\n")
    expect(r.stderr).toBe("")
    const json = await cli(["catalog", "--json", own.host])
    expect(json.code, show(json)).toBe(0)
    expect(json.stdout).toBe(`${JSON.stringify({ registry: own.host, repositories: ["a/app", "b/app", "c/deep/app"] }, null, 2)}\n`)
  })

  it("an empty registry: nothing on stdout, exit 0", async () => {
    const own = await startRegistry({ mode: "none" })
    onCleanup(own.stop)
    const r = await cli(["catalog", own.host])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toBe("")
  })

  it("with token auth, asks for registry:catalog:* and lists; anonymous is told to log in (exit 3), a user without the right is denied (exit 4)", async () => {
    const alice = { user: "alice", password: "alice-Pw-3" }
    const secured = await startRegistry({
      mode: "token",
      users: { [alice.user]: alice.password, bob: "bob-Pw-4" },
      grant: (user, name, requested) => user === undefined || (name === "catalog" && user !== "alice") ? [] : requested
    })
    onCleanup(secured.stop)
    await pushImage("team/app", secured, alice)
    const authFile = await writeAuthJson(path.join(await scratchDir(), "auth.json"), authsFor({ [secured.host]: `${alice.user}:${alice.password}` }))
    const r = await cli(["catalog", secured.host], { REGISTRY_AUTH_FILE: authFile })
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toBe("team/app\n")
    const last = secured.tokenRequests.at(-1)!
    expect(last.user).toBe("alice")
    expect(last.query["scope"]).toBe("registry:catalog:*")
    const anonymous = expectFailure(await cli(["catalog", secured.host]), 3)
    expect(anonymous).toContain("requires credentials to list its repositories")
    const bobFile = await writeAuthJson(path.join(await scratchDir(), "bob.json"), authsFor({ [secured.host]: "bob:bob-Pw-4" }))
    expect(expectFailure(await cli(["catalog", secured.host], { REGISTRY_AUTH_FILE: bobFile }), 4)).toContain("denied catalog access")
  })

  it("a namespace or a malformed registry is a usage error (exit 2)", async () => {
    expect(expectFailure(await cli(["catalog", `${registry.host}/team`]), 2)).toContain("names a namespace")
    expect(expectFailure(await cli(["catalog", "not a host"]), 2)).toContain("invalid registry")
  })

  describe("[H3] pagination", () => {
    const page = (res: http.ServerResponse, repositories: ReadonlyArray<string>, link?: string) => listPage(res, { repositories }, link)

    it("follows Link verbatim across pages, asking n=1000 first", async () => {
      const server = await hostile((req, res) => {
        if (openPing(req, res)) return
        if (req.url === "/v2/_catalog?n=1000") return page(res, ["a/one", "a/two"], "/v2/_catalog?n=1000&last=a%2Ftwo&opaque=x1")
        if (req.url === "/v2/_catalog?n=1000&last=a%2Ftwo&opaque=x1") return page(res, ["b/three"], "/v2/_catalog?page=3")
        if (req.url === "/v2/_catalog?page=3") return page(res, ["c/four"])
        res.writeHead(404).end()
      })
      const r = await cli(["catalog", server.host])
      expect(r.code, show(r)).toBe(0)
      expect(r.stdout).toBe("a/one\na/two\nb/three\nc/four\n")
      expect(server.seen.filter((s) => s.path.startsWith("/v2/_catalog")).map((s) => s.path)).toEqual([
        "/v2/_catalog?n=1000",
        "/v2/_catalog?n=1000&last=a%2Ftwo&opaque=x1",
        "/v2/_catalog?page=3"
      ])
    })

    it("a page that is not a repository list: exit 1 saying so", async () => {
      const server = await hostile((req, res) => {
        if (openPing(req, res)) return
        listPage(res, { repositories: "all of them" })
      })
      expect(expectFailure(await cli(["catalog", server.host]), 1)).toContain("not a repository list")
    })

    it("a Link back to a page already listed: exit 1 after printing what was listed", async () => {
      const server = await hostile((req, res) => {
        if (openPing(req, res)) return
        if (req.url === "/v2/_catalog?n=1000") return page(res, ["a/one"], "/v2/_catalog?n=1000&last=a%2Fone")
        if (req.url === "/v2/_catalog?n=1000&last=a%2Fone") return page(res, ["b/two"], "/v2/_catalog?n=1000")
        res.writeHead(404).end()
      })
      const r = await cli(["catalog", server.host])
      expect(r.code, show(r)).toBe(1)
      expect(r.stdout).toBe("a/one\nb/two\n")
      expect(expectCleanError(r)[0]).toContain("repeats")
      expect(server.seen.filter((s) => s.path.startsWith("/v2/_catalog"))).toHaveLength(2)
    })

    it("a Link to another host: exit 1, and that host is never asked (so never sent the credentials)", async () => {
      const elsewhere = await hostile((_req, res) => page(res, ["stolen"]))
      const server = await hostile((req, res) => {
        if (req.headers.authorization !== `Basic ${Buffer.from("alice:secret").toString("base64")}`) {
          res.writeHead(401, { "www-authenticate": `Basic realm="hostile"` })
          return void res.end()
        }
        if (req.url === "/v2/") return void res.writeHead(200).end("{}")
        if (req.url?.startsWith("/v2/_catalog")) return page(res, ["a/one"], `${elsewhere.url}/v2/_catalog?n=1000&last=a%2Fone`)
        res.writeHead(404).end()
      })
      const authFile = await writeAuthJson(path.join(await scratchDir(), "auth.json"), authsFor({ [server.host]: "alice:secret" }))
      const r = await cli(["catalog", server.host], { REGISTRY_AUTH_FILE: authFile })
      expect(r.code, show(r)).toBe(1)
      expect(r.stdout).toBe("a/one\n")
      expect(expectCleanError(r)[0]).toContain(elsewhere.host)
      expect(elsewhere.seen).toEqual([])
    })
  })
})
