/**
 * Credentials against hostile registries, token servers and files (issue 15, items 5, 6, 8, 11,
 * 13; SPEC §1, [P1], [P2], §5, §5b), end to end with the built CLI. Hostile servers are node:http
 * (or https with a test CA) on 127.0.0.1 only; the real CNCF registry (htpasswd) stands in where
 * the behaviour under test is the protocol. Every run is bounded by a time-out.
 */
import { execFile, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import * as https from "node:https"
import type * as net from "node:net"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { expectCleanError, show } from "../support/assertions.js"
import { authsFor, b64, storePath, writeAuthJson } from "../support/auth.js"
import { binPath, runCli, type CliResult } from "../support/cli.js"
import { makeImage, skopeoPush, type BuiltImage } from "../support/images.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"
import { makeCa, type TestCa } from "../support/tls.js"

const run = promisify(execFile)

const USER = "alice"
const PASSWORD = "alice-Pw-7Qx9"
const BASIC = b64(`${USER}:${PASSWORD}`)
const TOKEN = "hostile-Tok-4242"

const { freshHome, onCleanup, scratchDir } = useScratch("microagent-hostile-auth-")

/** Every form of alice's credentials a server could echo back (and the token, where one was issued). */
const secrets = [PASSWORD, `${USER}:${PASSWORD}`, BASIC]
const expectNoSecret = (r: CliResult, also: ReadonlyArray<string> = []) => {
  for (const secret of [...secrets, ...also]) {
    expect(r.stderr, `stderr shows ${secret}\n${show(r)}`).not.toContain(secret)
    expect(r.stdout, `stdout shows ${secret}\n${show(r)}`).not.toContain(secret)
  }
}

const cli = (home: string, args: ReadonlyArray<string>, env: Record<string, string> = {}, stdin?: string) =>
  runCli(args, { env: { HOME: home, ...env }, timeoutMs: 30_000, ...(stdin === undefined ? {} : { stdin }) })

const login = (home: string, host: string, password: string, ...flags: Array<string>) =>
  cli(home, ["registry", "login", host, "-u", USER, "--password-stdin", ...flags], {}, `${password}\n`)

// ---------------------------------------------------------------------------------------------
// Hostile servers

interface Seen {
  readonly method: string
  readonly url: string
  readonly authorization: string | undefined
}

interface Server {
  /** `127.0.0.1:<port>` */
  readonly host: string
  readonly port: number
  readonly seen: Array<Seen>
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void

/** An http (or, given a key pair, https) server on 127.0.0.1 for this test only. */
const serve = async (handler: Handler, tls?: { readonly cert: string; readonly key: string }): Promise<Server> => {
  const seen: Array<Seen> = []
  const sockets = new Set<net.Socket>()
  const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization })
    handler(req, res)
  }
  const server = tls === undefined
    ? http.createServer(listener)
    : https.createServer({ cert: await fs.readFile(tls.cert), key: await fs.readFile(tls.key) }, listener)
  // The https attempt on a loopback host is not HTTP to a plain server ([P1]): close it.
  server.on("clientError", (_e, socket: net.Socket) => socket.destroy())
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as net.AddressInfo).port
  onCleanup(() =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resolve())
    })
  )
  return { host: `127.0.0.1:${port}`, port, seen }
}

const json = (res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(JSON.stringify(body))
}

const bearerChallenge = (realm: string) => ({ "www-authenticate": `Bearer realm="${realm}",service="hostile"` })

/** An auth file outside HOME, to be named by $REGISTRY_AUTH_FILE. */
const authFileFor = async (host: string) =>
  writeAuthJson(path.join(await scratchDir(), "auth.json"), authsFor({ [host]: `${USER}:${PASSWORD}` }))

// ---------------------------------------------------------------------------------------------

describe("[E5] credentials echoed back by a registry or token server are never printed", () => {
  const echo = `bad credentials: password ${PASSWORD}, user ${USER}:${PASSWORD}, header Basic ${BASIC}`

  it("a Basic registry's 400 and (after retries) 500 echoing the password and Basic value: exit 1, every secret redacted", async () => {
    const registry = await serve((req, res) => {
      if (req.headers.authorization === undefined) return json(res, 401, {}, { "www-authenticate": `Basic realm="hostile"` })
      json(res, req.url?.endsWith("/manifests/five") ? 500 : 400, { errors: [{ code: "DENIED", message: echo }] }, { "retry-after": "0" })
    })
    const env = { REGISTRY_AUTH_FILE: await authFileFor(registry.host) }
    const home = await freshHome()
    for (const tag of ["four", "five"]) {
      const r = await cli(home, ["pull", `${registry.host}/team/app:${tag}`], env)
      expect(r.code, show(r)).toBe(1)
      expectCleanError(r)
      expect(r.stderr, show(r)).toContain("<redacted>")
      expectNoSecret(r)
    }
  })

  it("a Bearer registry echoing the token and a token server echoing the password: exit 1, every secret redacted", async () => {
    const tokens = await serve((req, res) =>
      req.url?.includes("scope=repository%3Ateam%2Fbad") ? json(res, 400, { error: "invalid_request", error_description: echo }) : json(res, 200, { token: TOKEN })
    )
    const registry = await serve((req, res) =>
      req.headers.authorization === `Bearer ${TOKEN}`
        ? json(res, 400, { errors: [{ code: "DENIED", message: `${echo}, token ${TOKEN}` }] })
        : json(res, 401, {}, bearerChallenge(`http://${tokens.host}/token`))
    )
    const env = { REGISTRY_AUTH_FILE: await authFileFor(registry.host) }
    const home = await freshHome()
    for (const repository of ["team/app", "team/bad"]) {
      const r = await cli(home, ["pull", `${registry.host}/${repository}:v1`], env)
      expect(r.code, show(r)).toBe(1)
      expectCleanError(r)
      expect(r.stderr, show(r)).toContain("<redacted>")
      expectNoSecret(r, [TOKEN])
    }
    expect(tokens.seen.some((s) => s.authorization === `Basic ${BASIC}`), "the credentials were used").toBe(true)
  })

  it("[L5] login whose token server answers 400 echoing the password: exit 1, the password redacted, nothing stored", async () => {
    const tokens = await serve((_req, res) => json(res, 400, { error: "invalid_client", error_description: echo }))
    const registry = await serve((_req, res) => json(res, 401, {}, bearerChallenge(`http://${tokens.host}/token`)))
    const home = await freshHome()
    const r = await login(home, registry.host, PASSWORD)
    expect(r.code, show(r)).toBe(1)
    expectCleanError(r)
    expect(r.stderr, show(r)).toContain("invalid_client")
    expectNoSecret(r)
    await expect(fs.access(storePath(home))).rejects.toThrow()
  })
})

describe("[P1] [P2] token realms that would leak, or are not http(s)", () => {
  let ca: TestCa
  beforeAll(async () => {
    ca = await makeCa(path.join(await fs.mkdtemp(path.join(tmpdir(), "microagent-hostile-ca-")), "ca"))
  })
  afterAll(async () => {
    if (ca !== undefined) await fs.rm(path.dirname(path.dirname(ca.caCert)), { recursive: true, force: true })
  })

  /** An https registry (trusted through certs.d) whose Bearer challenge names `realm(tokenHost)`. */
  const httpsRegistry = async (home: string, realm: string) => {
    const registry = await serve((_req, res) => json(res, 401, {}, bearerChallenge(realm)), { cert: ca.serverCert, key: ca.serverKey })
    const dir = path.join(home, ".microagent", "certs.d", registry.host)
    await fs.mkdir(dir, { recursive: true })
    await fs.copyFile(ca.caCert, path.join(dir, "ca.crt"))
    return registry
  }

  it("[L5] login to an https registry whose realm is plain http on another host: exit 1, no credential sent, nothing stored", async () => {
    const tokens = await serve((_req, res) => json(res, 200, { token: TOKEN }))
    const home = await freshHome()
    // 0.0.0.0 reaches the token server on this machine, but is not a loopback name [P1] trusts.
    const registry = await httpsRegistry(home, `http://0.0.0.0:${tokens.port}/token`)
    const r = await login(home, registry.host, PASSWORD)
    expect(r.code, show(r)).toBe(1)
    const [error, hint] = expectCleanError(r)
    expect(error).toContain(`plain-http token realm (http://0.0.0.0:${tokens.port})`)
    expect(hint).toMatch(/^hint: nothing was sent/)
    expect(tokens.seen, "the token server heard nothing").toEqual([])
    expect(registry.seen.every((s) => s.authorization === undefined)).toBe(true)
    await expect(fs.access(storePath(home))).rejects.toThrow()
  })

  it("[P1] pull from an https registry with a plain-http realm is refused the same way, also anonymously", async () => {
    const tokens = await serve((_req, res) => json(res, 200, { token: TOKEN }))
    const home = await freshHome()
    const registry = await httpsRegistry(home, `http://0.0.0.0:${tokens.port}/token`)
    const r = await cli(home, ["pull", `${registry.host}/team/app:v1`])
    expect(r.code, show(r)).toBe(1)
    expect(expectCleanError(r)[0]).toContain("plain-http token realm")
    expect(tokens.seen).toEqual([])
  })

  for (const realm of ["file:///etc/passwd", "gopher://127.0.0.1:1/token"]) {
    it(`[P2] a realm ${realm}: exit 1 with a clear error naming the scheme, not an internal error`, async () => {
      const registry = await serve((_req, res) => json(res, 401, {}, bearerChallenge(realm)))
      const home = await freshHome()
      for (const r of [await login(home, registry.host, PASSWORD), await cli(home, ["pull", `${registry.host}/team/app:v1`])]) {
        expect(r.code, show(r)).toBe(1)
        const [error] = expectCleanError(r)
        expect(error).not.toContain("internal error")
        expect(error).toContain(`realm with the scheme "${realm.split(":")[0]}"`)
        expectNoSecret(r)
      }
    })
  }
})

describe("[H2] a token that cannot go into a header", () => {
  for (const [name, token] of [["CRLF", `${TOKEN}\r\nX-Injected: yes`], ["a NUL", `${TOKEN}\u0000x`]] as const) {
    it(`a token holding ${name}: exit 1 with a clear error, not an internal error; never sent`, async () => {
      const tokens = await serve((_req, res) => json(res, 200, { token }))
      const registry = await serve((_req, res) => json(res, 401, {}, bearerChallenge(`http://${tokens.host}/token`)))
      const home = await freshHome()
      const r = await cli(home, ["pull", `${registry.host}/team/app:v1`])
      expect(r.code, show(r)).toBe(1)
      const [error] = expectCleanError(r)
      expect(error).not.toContain("internal error")
      expect(error).toContain("cannot go into a header")
      expect(registry.seen.every((s) => s.authorization === undefined), "no Bearer header went out").toBe(true)
    })
  }
})

describe("[C9] [E2] an auth file nested 100 000 levels deep", () => {
  const deep = (host: string) => `{"auths":{"${host}":{"auth":"${BASIC}"}},"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`

  it("as $REGISTRY_AUTH_FILE: pull exits 3 with AuthFileError naming the file", async () => {
    const registry = await serve((_req, res) => json(res, 401, {}, { "www-authenticate": `Basic realm="hostile"` }))
    const home = await freshHome()
    const file = path.join(await scratchDir(), "deep.json")
    await fs.writeFile(file, deep(registry.host))
    const r = await cli(home, ["pull", `${registry.host}/team/app:v1`], { REGISTRY_AUTH_FILE: file })
    expect(r.code, show(r)).toBe(3)
    const [error] = expectCleanError(r)
    expect(error).toContain(`cannot use auth file ${file}`)
    expect(error).toContain("nests deeper than")
  })

  it("as the own store: login exits 3 with AuthFileError, not an internal error (stack overflow), and leaves it as it was", async () => {
    const home = await freshHome()
    const before = deep("ghcr.io")
    await writeAuthJson(storePath(home), {})
    await fs.writeFile(storePath(home), before)
    const r = await login(home, "127.0.0.1:9", PASSWORD, "--no-verify")
    expect(r.code, show(r)).toBe(3)
    expect(expectCleanError(r)[0]).toContain(`cannot use auth file ${storePath(home)}`)
    expect(await fs.readFile(storePath(home), "utf8")).toBe(before)
  })
})

describe("[C9] [E2] an auth file that is not one, or too large", () => {
  it("REGISTRY_AUTH_FILE=/dev/zero (a device) and a 5 MiB file are refused unread: AuthFileError, exit 3", async () => {
    const home = await freshHome()
    const r = await cli(home, ["registry", "list"], { REGISTRY_AUTH_FILE: "/dev/zero" })
    expect(r.code, show(r)).toBe(3)
    expect(expectCleanError(r)[0]).toBe("error: cannot use auth file /dev/zero: it is not a file but a device or socket")
    const big = path.join(await scratchDir(), "big.json")
    await fs.writeFile(big, `{"auths":{},"padding":"${"x".repeat(5 * 1024 * 1024)}"}`)
    const large = await cli(home, ["registry", "list"], { REGISTRY_AUTH_FILE: big })
    expect(large.code, show(large)).toBe(3)
    expect(expectCleanError(large)[0]).toBe(`error: cannot use auth file ${big}: it is larger than 4 MiB, which no auth file is`)
  })
})

describe("against a real htpasswd registry", () => {
  let registry: RegistryHandle
  let image: BuiltImage
  let fixtures: string

  beforeAll(async () => {
    fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-hostile-auth-fixtures-")))
    registry = await startRegistry({ mode: "htpasswd", users: { [USER]: PASSWORD } })
    image = await makeImage({ dir: path.join(fixtures, "image"), tag: "v1", layers: [1024, 2048, 4096, 8192, 16384] })
    await skopeoPush(image, { registry: registry.host, repository: "team/app", creds: { user: USER, password: PASSWORD } })
  })
  afterAll(async () => {
    await registry?.stop()
    await fs.rm(fixtures, { recursive: true, force: true })
  })

  const spawnBash = (script: string, args: ReadonlyArray<string>, env: Record<string, string>, timeoutMs = 30_000) =>
    new Promise<CliResult>((resolve, reject) => {
      const child = spawn("bash", ["-c", script, "bash", ...args], {
        env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", NO_COLOR: "1", ...env },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true
      })
      const out: Array<Buffer> = []
      const err: Array<Buffer> = []
      child.stdout.on("data", (c: Buffer) => out.push(c))
      child.stderr.on("data", (c: Buffer) => err.push(c))
      const timer = setTimeout(() => {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
        reject(new Error(`bash ${script} did not end within ${timeoutMs} ms\n${Buffer.concat(err).toString("utf8")}`))
      }, timeoutMs)
      child.on("close", (code, signal) => {
        clearTimeout(timer)
        resolve({ code, signal, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") })
      })
    })

  it("[C8] REGISTRY_AUTH_FILE=<(…), a pipe that can be read once, pulls an image of 7 blobs", async () => {
    const home = await freshHome()
    const file = await authFileFor(registry.host)
    const r = await spawnBash(
      `REGISTRY_AUTH_FILE=<(cat "$1") exec "$2" "$3" pull "$4"`,
      [file, process.execPath, binPath, `${registry.host}/team/app:v1`],
      { HOME: home }
    )
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout.trim(), show(r)).toBe(image.manifestDigest)
  })

  it("[C8] a FIFO as REGISTRY_AUTH_FILE, written once, pulls an image of 7 blobs (a second read would wait forever)", async () => {
    const home = await freshHome()
    const file = await authFileFor(registry.host)
    const fifo = path.join(await scratchDir(), "auth.fifo")
    await run("mkfifo", [fifo])
    // One writer, once: it ends when the first reader has read the file.
    const r = await spawnBash(
      `cat "$1" > "$2" & exec "$3" "$4" pull "$5"`,
      [file, fifo, process.execPath, binPath, `${registry.host}/team/app:v1`],
      { HOME: home, REGISTRY_AUTH_FILE: fifo },
      20_000
    )
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout.trim(), show(r)).toBe(image.manifestDigest)
  })

  it("[C11] [L5] a password typed with NUL padding logs in, and what was verified is what is stored and later sent", async () => {
    const home = await freshHome()
    const r = await login(home, registry.host, `${PASSWORD}\u0000\u0000`)
    expect(r.code, show(r)).toBe(0)
    const stored = JSON.parse(await fs.readFile(storePath(home), "utf8")) as { auths: Record<string, { auth: string }> }
    expect(Buffer.from(stored.auths[registry.host]!.auth, "base64").toString("utf8")).toBe(`${USER}:${PASSWORD}`)
    const pulled = await cli(home, ["pull", `${registry.host}/team/app:v1`])
    expect(pulled.code, show(pulled)).toBe(0)
  })
})

describe("[C2] [C3] the own store on disk", () => {
  it("a store that is a dangling symbolic link is written through to its target by login, and stays a link", async () => {
    const home = await freshHome()
    const elsewhere = path.join(await scratchDir(), "auth.json")
    await fs.mkdir(path.dirname(storePath(home)), { recursive: true, mode: 0o700 })
    await fs.symlink(elsewhere, storePath(home))
    const r = await login(home, "127.0.0.1:9", PASSWORD, "--no-verify")
    expect(r.code, show(r)).toBe(0)
    expect((await fs.lstat(storePath(home))).isSymbolicLink(), "still a link").toBe(true)
    expect(await fs.readlink(storePath(home))).toBe(elsewhere)
    const stored = JSON.parse(await fs.readFile(elsewhere, "utf8")) as { auths: Record<string, unknown> }
    expect(Object.keys(stored.auths)).toEqual(["127.0.0.1:9"])
    expect((await fs.stat(elsewhere)).mode & 0o777).toBe(0o600)
  })

  const isRoot = process.getuid?.() === 0

  it.skipIf(!isRoot)("a login that fails on a full disk leaves no lock: the next login, with room again, does not wait", async () => {
    const mount = await scratchDir()
    await run("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mount])
    onCleanup(async () => void await run("umount", ["-l", mount]))
    await writeAuthJson(storePath(mount), { auths: {} })
    const filler = path.join(mount, "filler")
    await fs.writeFile(filler, randomBytes(256 * 1024)).catch(() => {}) // ENOSPC once the disk is full
    const full = await login(mount, "127.0.0.1:9", PASSWORD, "--no-verify")
    expect(full.code, show(full)).toBe(3)
    expect(expectCleanError(full)[0]).toMatch(/ENOSPC|no space/i)
    expect(await fs.readdir(path.dirname(storePath(mount)))).toEqual(["auth.json"])
    await fs.rm(filler)
    const started = performance.now()
    const again = await login(mount, "127.0.0.1:9", PASSWORD, "--no-verify")
    expect(again.code, show(again)).toBe(0)
    expect(performance.now() - started, "waited for a lock left behind").toBeLessThan(5_000)
  })
})

describe("an auth file that is a named pipe (issue 15, item 13)", () => {
  it("[H4] a FIFO with no writer: one Ctrl-C ends the command at once, exit 130", async () => {
    const dir = await scratchDir()
    const fifo = path.join(dir, "auth.fifo")
    await promisify(execFile)("mkfifo", [fifo])
    const child = spawn(process.execPath, [binPath, "registry", "list"], {
      env: { PATH: process.env["PATH"], HOME: await freshHome(), REGISTRY_AUTH_FILE: fifo, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    // Long enough to be waiting on the pipe.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const sent = Date.now()
    child.kill("SIGINT")
    const killer = setTimeout(() => child.kill("SIGKILL"), 5000)
    const code = await exited
    clearTimeout(killer)
    expect(code).toBe(130)
    expect(Date.now() - sent).toBeLessThan(3000)
  })

  it("[C9] a pipe with a writer is read once, as process substitution gives it", async () => {
    const dir = await scratchDir()
    const file = await writeAuthJson(path.join(dir, "auth.json"), authsFor({ "pipe.example.com": "pipe-user:pw" }))
    const { stdout } = await promisify(execFile)(
      "bash",
      ["-c", `REGISTRY_AUTH_FILE=<(cat "$1") "$2" "$3" registry list`, "bash", file, process.execPath, binPath],
      { env: { PATH: process.env["PATH"], HOME: await freshHome(), NO_COLOR: "1" }, timeout: 20_000 }
    )
    expect(stdout).toContain("pipe.example.com")
    expect(stdout).toContain("pipe-user")
  })
})
