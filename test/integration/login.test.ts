/**
 * `microagent registry login` end to end (SPEC §1, §2, §5), against real CNCF distribution
 * registries on loopback: verification before storing, what is stored and how, what is printed
 * (and never printed), and that a failed login leaves the store exactly as it was.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { expectCleanError } from "../support/assertions.js"
import { b64, storeDir, storePath } from "../support/auth.js"
import { binPath, runCli, type CliResult } from "../support/cli.js"
import { spawnPty } from "../support/pty.js"
import { freePort, startRegistry, TOKEN_SERVICE, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

// ---------------------------------------------------------------------------------------------
// Helpers

const USERS = { alice: "alice-Pw-7Qx9", bob: "bob-Pw-3Kd1" } as const
const WRONG = "wrong-Pw-Zk42"

const { freshHome, scratchDir } = useScratch("microagent-login-")

const past = new Date("2001-02-03T04:05:06Z")

/** Writes a file as a user (or another tool) might have left it, dated in the past so any rewrite shows. */
const seedFile = async (file: string, content: unknown): Promise<void> => {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  await fs.writeFile(file, typeof content === "string" ? content : JSON.stringify(content, null, 2))
  await fs.chmod(file, 0o600)
  await fs.utimes(file, past, past)
}

const seedStore = (home: string, content: unknown) => seedFile(storePath(home), content)

/** Everything a user could notice about a file: absent, or its bytes, mtime, inode and mode. */
const snapshot = async (file: string) => {
  try {
    const [bytes, stat] = await Promise.all([fs.readFile(file), fs.stat(file)])
    return { exists: true, bytes: bytes.toString("base64"), mtimeMs: stat.mtimeMs, ino: stat.ino, mode: stat.mode }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { exists: false }
    throw error
  }
}

interface Entry {
  readonly auth?: string
  readonly identitytoken?: string
  readonly [field: string]: unknown
}
interface AuthJson {
  readonly auths: Record<string, Entry>
  readonly [field: string]: unknown
}

const readStore = async (home: string): Promise<AuthJson> => JSON.parse(await fs.readFile(storePath(home), "utf8")) as AuthJson

/** The decoded `auth` of an entry in the store: "user:password". */
const storedAuth = async (home: string, key: string): Promise<string | undefined> => {
  const auth = (await readStore(home)).auths[key]?.auth
  return auth === undefined ? undefined : Buffer.from(auth, "base64").toString("utf8")
}

const mode = async (p: string) => (await fs.stat(p)).mode & 0o777

type Env = Record<string, string | undefined>

const cli = (home: string, args: ReadonlyArray<string>, env: Env = {}, stdin?: string): Promise<CliResult> =>
  runCli(args, { env: { HOME: home, ...env }, ...(stdin === undefined ? {} : { stdin }) })

/** `login <key> -u <user> --password-stdin [...extra]`, the password followed by one newline. */
const login = (
  home: string,
  key: string,
  user: string,
  password: string,
  options: { readonly extra?: ReadonlyArray<string>; readonly env?: Env } = {}
) => cli(home, ["registry", "login", key, "-u", user, "--password-stdin", ...(options.extra ?? [])], options.env, `${password}\n`)

const lines = (text: string) => text.split(/\r?\n/).filter((l) => l.trim() !== "")

const expectSucceeded = (r: CliResult, home: string, key: string, verified = true) => {
  expect(r.code, r.stderr).toBe(0)
  expect(r.stdout).toBe(`${verified ? "Login Succeeded" : "Credentials saved (not verified)"}\nCredentials for ${key} saved to ${storePath(home)}\n`)
  expect(r.stderr).not.toMatch(/^error:/m)
}

/** [§5]: exit `code`, one `error:` line (+ an optional `hint: ` line), warnings aside; never a stack trace; nothing on stdout claims success. */
const expectLoginError = (r: CliResult, code: number): string => {
  expect(r.code, `exit code; stderr:\n${r.stderr}`).toBe(code)
  const [error, ...hints] = expectCleanError(r)
  expect(hints.every((l) => l.startsWith("hint: ")), r.stderr).toBe(true)
  expect(r.stdout).not.toContain("Login Succeeded")
  return error!
}

/** [§5] nothing secret is ever printed: neither the password nor the `auth` value carrying it. */
const expectNoSecret = (output: string, user: string, ...passwords: ReadonlyArray<string>) => {
  for (const password of passwords) {
    expect(output).not.toContain(password)
    expect(output).not.toContain(b64(`${user}:${password}`))
  }
}

const stripAnsi = (text: string) => text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "")

const warnings = (r: CliResult) => lines(r.stderr).filter((l) => l.startsWith("warning:"))

/** A loopback port with nothing listening. */
const unreachableHost = async () => `127.0.0.1:${await freePort()}`

// ---------------------------------------------------------------------------------------------

describe("[L5] login against a Basic (htpasswd) registry", () => {
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry({ mode: "htpasswd", users: { ...USERS } })
  })
  afterAll(() => registry?.stop())

  it("[L5][L6][C1][C2] valid credentials: Login Succeeded, stored as base64(user:password), 0600 file in a 0700 folder", async () => {
    const home = await freshHome()
    const r = await login(home, registry.host, "alice", USERS.alice)
    expectSucceeded(r, home, registry.host)
    expectNoSecret(r.stdout + r.stderr, "alice", USERS.alice)
    expect(await readStore(home)).toEqual({ auths: { [registry.host]: { auth: b64(`alice:${USERS.alice}`) } } })
    expect(await storedAuth(home, registry.host)).toBe(`alice:${USERS.alice}`)
    expect(await mode(storePath(home))).toBe(0o600)
    expect(await mode(storeDir(home))).toBe(0o700)
  })

  it("[L5][E3] wrong password with no store: exit 4, one error naming the registry, no secret printed, still no store", async () => {
    const home = await freshHome()
    const r = await login(home, registry.host, "alice", WRONG)
    const error = expectLoginError(r, 4)
    expect(error).toContain(registry.host)
    expectNoSecret(r.stdout + r.stderr, "alice", WRONG)
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })

  it("[L5][E3] wrong password with an existing store: exit 4 and the store is byte-for-byte unchanged (same mtime, inode)", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: { "other.example": { auth: b64("carol:carol-pw") } } })
    const before = await snapshot(storePath(home))
    const r = await login(home, registry.host, "alice", WRONG)
    const error = expectLoginError(r, 4)
    expect(error).toContain(registry.host)
    expectNoSecret(r.stdout + r.stderr, "alice", WRONG)
    expect(await snapshot(storePath(home))).toEqual(before)
  })

  it("[L5][E3] an unknown user is denied like a wrong password (exit 4, store unchanged)", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: { [registry.host]: { auth: b64(`alice:${USERS.alice}`) } } })
    const before = await snapshot(storePath(home))
    const r = await login(home, registry.host, "mallory", USERS.alice)
    expectLoginError(r, 4)
    expectNoSecret(r.stdout + r.stderr, "mallory", USERS.alice)
    expect(await snapshot(storePath(home))).toEqual(before)
  })

  it("[L6] a second login for the same key replaces the entry", async () => {
    const home = await freshHome()
    expectSucceeded(await login(home, registry.host, "alice", USERS.alice), home, registry.host)
    expectSucceeded(await login(home, registry.host, "bob", USERS.bob), home, registry.host)
    expect(await readStore(home)).toEqual({ auths: { [registry.host]: { auth: b64(`bob:${USERS.bob}`) } } })
  })

  it("[L6][C3] replacing an entry keeps its unknown fields, other entries and unknown top-level fields, in order; drops its identitytoken", async () => {
    const home = await freshHome()
    await seedStore(home, {
      auths: {
        "first.example": { auth: b64("carol:carol-pw") },
        [registry.host]: { auth: b64("alice:old-password"), email: "x@y", identitytoken: "stale-refresh-token" },
        "last.example": { auth: b64("dave:dave-pw"), note: 1 }
      },
      other: { keep: true }
    })
    const r = await login(home, registry.host, "alice", USERS.alice)
    expectSucceeded(r, home, registry.host)
    const after = await readStore(home)
    expect(after).toEqual({
      auths: {
        "first.example": { auth: b64("carol:carol-pw") },
        [registry.host]: { auth: b64(`alice:${USERS.alice}`), email: "x@y" },
        "last.example": { auth: b64("dave:dave-pw"), note: 1 }
      },
      other: { keep: true }
    })
    // A stale refresh token would win over the new password ([C11]).
    expect(after.auths[registry.host]).not.toHaveProperty("identitytoken")
    expect(Object.keys(after)).toEqual(["auths", "other"])
    expect(Object.keys(after.auths)).toEqual(["first.example", registry.host, "last.example"])
    expect(await mode(storePath(home))).toBe(0o600)
  })

  it("[L6][C8] an entry for the registry in $REGISTRY_AUTH_FILE: login succeeds, warns that it shadows, never touches that file", async () => {
    const home = await freshHome()
    const external = path.join(await scratchDir(), "containers-auth.json")
    await seedFile(external, { auths: { [registry.host]: { auth: b64(`bob:${USERS.bob}`) } } })
    const before = await snapshot(external)

    const r = await login(home, registry.host, "alice", USERS.alice, { env: { REGISTRY_AUTH_FILE: external } })
    expectSucceeded(r, home, registry.host)
    const shadow = warnings(r).filter((l) => l.includes("REGISTRY_AUTH_FILE"))
    expect(shadow, r.stderr).toHaveLength(1)
    expectNoSecret(r.stdout + r.stderr, "bob", USERS.bob)
    expectNoSecret(r.stdout + r.stderr, "alice", USERS.alice)
    expect(await snapshot(external)).toEqual(before)
    expect(await storedAuth(home, registry.host)).toBe(`alice:${USERS.alice}`)
  })

  it("[L6][C7][C8] a host entry in $REGISTRY_AUTH_FILE shadows a new namespace login under that host: warned", async () => {
    const home = await freshHome()
    const external = path.join(await scratchDir(), "containers-auth.json")
    await seedFile(external, { auths: { [registry.host]: { auth: b64(`bob:${USERS.bob}`) } } })
    const before = await snapshot(external)
    const key = `${registry.host}/team`

    const r = await login(home, key, "alice", USERS.alice, { env: { REGISTRY_AUTH_FILE: external } })
    expectSucceeded(r, home, key)
    expect(warnings(r).filter((l) => l.includes("REGISTRY_AUTH_FILE")), r.stderr).toHaveLength(1)
    expect(await snapshot(external)).toEqual(before)
  })

  it("[L6] $REGISTRY_AUTH_FILE without an entry for the registry: no shadowing warning", async () => {
    const home = await freshHome()
    const external = path.join(await scratchDir(), "containers-auth.json")
    await seedFile(external, { auths: { "elsewhere.example": { auth: b64("bob:bob-pw") } } })
    const before = await snapshot(external)

    const r = await login(home, registry.host, "alice", USERS.alice, { env: { REGISTRY_AUTH_FILE: external } })
    expectSucceeded(r, home, registry.host)
    expect(r.stderr).not.toContain("REGISTRY_AUTH_FILE")
    expect(await snapshot(external)).toEqual(before)
  })

  it.each([
    ["https://{host}/v2/"],
    ["http://{host}/"],
    ["{host}/"]
  ])("[L1][C5] the legacy form %s is verified with the registry and stored under host:port", async (form) => {
    const home = await freshHome()
    const r = await login(home, form.replace("{host}", registry.host), "alice", USERS.alice)
    expectSucceeded(r, home, registry.host)
    expect(Object.keys((await readStore(home)).auths)).toEqual([registry.host])
  })

  it("[L1][C5] a namespace key is verified against its host and stored as given", async () => {
    const home = await freshHome()
    const r = await login(home, `${registry.host}/team/app`, "alice", USERS.alice)
    expectSucceeded(r, home, `${registry.host}/team/app`)
    expect(Object.keys((await readStore(home)).auths)).toEqual([`${registry.host}/team/app`])
  })

  it("[C2] 16 concurrent logins for 16 keys all succeed and leave exactly 16 entries in a valid 0600 file", async () => {
    const home = await freshHome()
    const keys = Array.from({ length: 16 }, (_, i) => `${registry.host}/team${i}`)
    const results = await Promise.all(keys.map((key) => login(home, key, "alice", USERS.alice)))
    results.forEach((r, i) => expectSucceeded(r, home, keys[i]!))
    const store = await readStore(home)
    expect(Object.keys(store.auths).sort()).toEqual([...keys].sort())
    for (const key of keys) expect(store.auths[key]).toEqual({ auth: b64(`alice:${USERS.alice}`) })
    expect(await mode(storePath(home))).toBe(0o600)
  })

  it("[L4] on a terminal, the password is prompted for without echo and stored", async () => {
    const home = await freshHome()
    const session = spawnPty(process.execPath, [binPath, "registry", "login", registry.host, "-u", "alice"], {
      env: { HOME: home, PATH: process.env["PATH"] ?? "" }
    })
    try {
      await session.waitFor(/Password/)
      session.write(`${USERS.alice}\r`)
      const { code, output } = await session.exited
      expect(code, output).toBe(0)
      expect(output).toContain("Login Succeeded")
      expectNoSecret(output, "alice", USERS.alice)
    } finally {
      session.kill()
    }
    expect(await storedAuth(home, registry.host)).toBe(`alice:${USERS.alice}`)
  })

  it("[L4] NO_COLOR: the prompt has no colour, its cursor movement kept; without it, it has", async () => {
    const colours = /\x1b\[[0-9;]*m/
    const prompt = async (env: Record<string, string>) => {
      const session = spawnPty(process.execPath, [binPath, "registry", "login", registry.host, "-u", "alice"], {
        env: { HOME: await freshHome(), PATH: process.env["PATH"] ?? "", ...env }
      })
      try {
        await session.waitFor(/Password/)
        session.write(`${USERS.alice}\r`)
        const { code, output } = await session.exited
        expect(code, output).toBe(0)
        return output
      } finally {
        session.kill()
      }
    }
    expect(await prompt({})).not.toMatch(colours)
    expect(await prompt({ NO_COLOR: "" })).toMatch(colours)
  })

  it("[L4][L5] on a terminal, a wrong password is neither echoed nor stored (exit 4)", async () => {
    const home = await freshHome()
    const session = spawnPty(process.execPath, [binPath, "registry", "login", registry.host, "-u", "alice"], {
      env: { HOME: home, PATH: process.env["PATH"] ?? "" }
    })
    try {
      await session.waitFor(/Password/)
      session.write(`${WRONG}\r`)
      const { code, output } = await session.exited
      expect(code, output).toBe(4)
      // The prompt draws with escape sequences (the terminal is a user's); the error line is plain text after them.
      expect(stripAnsi(output)).toMatch(/^error: .*127\.0\.0\.1:\d+/m)
      expectNoSecret(output, "alice", WRONG)
    } finally {
      session.kill()
    }
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })
})

describe("[L5] login against a Bearer (token server) registry", () => {
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry({ mode: "token", users: { ...USERS } })
  })
  afterAll(() => registry?.stop())

  it("[L5][P2] valid credentials: a token request with Basic credentials, account=<user> and service; stored", async () => {
    const home = await freshHome()
    const seen = registry.tokenRequests.length
    const r = await login(home, registry.host, "alice", USERS.alice)
    expectSucceeded(r, home, registry.host)
    expectNoSecret(r.stdout + r.stderr, "alice", USERS.alice)
    expect(await readStore(home)).toEqual({ auths: { [registry.host]: { auth: b64(`alice:${USERS.alice}`) } } })

    const requests = registry.tokenRequests.slice(seen)
    expect(requests.length, JSON.stringify(requests)).toBeGreaterThanOrEqual(1)
    // The harness records a GET's Basic credentials as user/authorized.
    const verified = requests.filter((q) => q.method === "GET" && q.user === "alice" && q.authorized)
    expect(verified.length, JSON.stringify(requests)).toBeGreaterThanOrEqual(1)
    for (const q of verified) {
      expect(q.query["account"]).toBe("alice")
      expect(q.query["service"]).toBe(TOKEN_SERVICE)
    }
  })

  it("[L5][E3] wrong password: the token server refuses, exit 4, error names the registry, store byte-for-byte unchanged", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: { "other.example": { auth: b64("carol:carol-pw") } } })
    const before = await snapshot(storePath(home))
    const seen = registry.tokenRequests.length

    const r = await login(home, registry.host, "alice", WRONG)
    const error = expectLoginError(r, 4)
    expect(error).toContain(registry.host)
    expectNoSecret(r.stdout + r.stderr, "alice", WRONG)
    expect(await snapshot(storePath(home))).toEqual(before)

    const requests = registry.tokenRequests.slice(seen)
    expect(requests.some((q) => q.user === "alice" && !q.authorized), JSON.stringify(requests)).toBe(true)
    expect(requests.some((q) => q.authorized), JSON.stringify(requests)).toBe(false)
  })

  it("[L5][E3] wrong password with no store: exit 4 and still no store", async () => {
    const home = await freshHome()
    const r = await login(home, registry.host, "alice", WRONG)
    expectLoginError(r, 4)
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })
})

describe("[L5] registries that cannot verify, and no registry at all", () => {
  let open: RegistryHandle
  beforeAll(async () => {
    open = await startRegistry({ mode: "none" })
  })
  afterAll(() => open?.stop())

  it("[L5][E5] unreachable registry, no store: exit 1, the error names the host, still no store", async () => {
    const home = await freshHome()
    const host = await unreachableHost()
    const r = await login(home, host, "alice", USERS.alice)
    const error = expectLoginError(r, 1)
    expect(error).toContain(host)
    expectNoSecret(r.stdout + r.stderr, "alice", USERS.alice)
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })

  it("[L5][E5] unreachable registry, existing store: exit 1 and the store is byte-for-byte unchanged", async () => {
    const home = await freshHome()
    const host = await unreachableHost()
    await seedStore(home, { auths: { [host]: { auth: b64("alice:old-password") }, "other.example": { auth: b64("carol:carol-pw") } } })
    const before = await snapshot(storePath(home))
    const r = await login(home, host, "alice", USERS.alice)
    expect(expectLoginError(r, 1)).toContain(host)
    expect(await snapshot(storePath(home))).toEqual(before)
  })

  it("[L5] a registry answering /v2/ with 200: stored anyway, with a warning that the credentials were not checked", async () => {
    const home = await freshHome()
    const r = await login(home, open.host, "alice", USERS.alice)
    expectSucceeded(r, home, open.host, false)
    expect(warnings(r).filter((l) => /check|verif/i.test(l)), r.stderr).toHaveLength(1)
    expectNoSecret(r.stdout + r.stderr, "alice", USERS.alice)
    expect(await storedAuth(home, open.host)).toBe(`alice:${USERS.alice}`)
  })

  it("[L5] --no-verify stores without contacting the registry (unreachable port), with a warning", async () => {
    const home = await freshHome()
    const host = await unreachableHost()
    const r = await login(home, host, "alice", USERS.alice, { extra: ["--no-verify"] })
    expectSucceeded(r, home, host, false)
    expect(warnings(r).filter((l) => /check|verif/i.test(l)), r.stderr).toHaveLength(1)
    expect(await storedAuth(home, host)).toBe(`alice:${USERS.alice}`)
    expect(await mode(storePath(home))).toBe(0o600)
  })
})

describe("[L1][L2][L3][L4] arguments and password input", () => {
  // None of these needs a registry: --no-verify, or the command fails before any request.
  const KEY = "registry.example.com"

  it.each([
    ["pw\r\n", "pw"],
    ["pw\n", "pw"],
    ["pw", "pw"],
    ["a:b:c\n\n", "a:b:c\n"],
    ["  spaced pw \t\n", "  spaced pw \t"],
    ["pw\r\r\n", "pw\r"]
  ])("[L3] --password-stdin %j stores the password %j (one trailing newline removed, nothing else)", async (input, password) => {
    const home = await freshHome()
    const r = await cli(home, ["registry", "login", KEY, "-u", "alice", "--password-stdin", "--no-verify"], {}, input)
    expectSucceeded(r, home, KEY, false)
    expect(await storedAuth(home, KEY)).toBe(`alice:${password}`)
  })

  it.each([[""], ["\n"], ["\r\n"], ["\0\0\n"]])("[L3] [C11] an empty password (stdin %j) is refused: exit 2, nothing stored", async (input) => {
    const home = await freshHome()
    const r = await cli(home, ["registry", "login", KEY, "-u", "alice", "--password-stdin", "--no-verify"], {}, input)
    expectLoginError(r, 2)
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })

  it("[L2] -u missing: exit 2, nothing stored", async () => {
    const home = await freshHome()
    const r = await cli(home, ["registry", "login", KEY, "--password-stdin", "--no-verify"], {}, "pw\n")
    expectLoginError(r, 2)
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })

  it("[L2] a user name containing ':' is refused: exit 2, nothing stored, existing store untouched", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: { "other.example": { auth: b64("carol:carol-pw") } } })
    const before = await snapshot(storePath(home))
    const r = await cli(home, ["registry", "login", KEY, "-u", "al:ice", "--password-stdin", "--no-verify"], {}, "pw\n")
    expectLoginError(r, 2)
    expect(await snapshot(storePath(home))).toEqual(before)
  })

  it("[L4] without a terminal and without --password-stdin: exit 2 at once, with a hint pointing to --password-stdin", async () => {
    const home = await freshHome()
    const started = Date.now()
    const r = await cli(home, ["registry", "login", KEY, "-u", "alice"])
    expect(Date.now() - started).toBeLessThan(5_000)
    expectLoginError(r, 2)
    expect(r.stderr).toContain("--password-stdin")
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })

  it("[L4] without a terminal, login does not wait for standard input to close", async () => {
    const home = await freshHome()
    // stdin is a pipe that stays open: a login that read it would hang.
    const child = spawn(process.execPath, [binPath, "registry", "login", KEY, "-u", "alice"], {
      env: { PATH: process.env["PATH"], HOME: home, NO_COLOR: "1" },
      stdio: ["pipe", "pipe", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    child.stdout.resume()
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)))
    clearTimeout(timer)
    child.stdin.destroy()
    expect(code, stderr).toBe(2)
    expect(stderr).toContain("--password-stdin")
  })

  it.each([
    ["index.docker.io"],
    ["Docker.io"],
    ["registry-1.docker.io"],
    ["https://index.docker.io/v1/"]
  ])("[L1][C6] %s is stored as docker.io", async (form) => {
    const home = await freshHome()
    const r = await login(home, form, "alice", "pw", { extra: ["--no-verify"] })
    expectSucceeded(r, home, "docker.io", false)
    expect(Object.keys((await readStore(home)).auths)).toEqual(["docker.io"])
  })

  it("[L1][C5] host names are stored in lower case; the port is kept", async () => {
    const home = await freshHome()
    const r = await login(home, "Registry.Example.COM:5000/team", "alice", "pw", { extra: ["--no-verify"] })
    expect(r.code, r.stderr).toBe(0)
    expect(Object.keys((await readStore(home)).auths)).toEqual(["registry.example.com:5000/team"])
  })

  it.each([
    ["{host}/app:1"],
    [`{host}/app@sha256:${"0".repeat(64)}`]
  ])("[L1][E4] %s (a reference, not a key) is refused: exit 2, nothing stored", async (form) => {
    const home = await freshHome()
    const host = await unreachableHost()
    const r = await login(home, form.replace("{host}", host), "alice", "pw")
    expectLoginError(r, 2)
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })
})

describe("[L3][L4] password input at a terminal (pseudo-terminal; issue 13)", () => {
  // --no-verify: what is under test is the terminal, not the registry.
  const KEY = "registry.example.com"
  const TYPED = "typed-Pw-5Rt8"
  const args = (...extra: ReadonlyArray<string>) => ["registry", "login", KEY, "-u", "alice", "--no-verify", ...extra]
  /** A shell that runs the login, then shows its exit code and the terminal's settings as the login left them. */
  const loginThenStty = (home: string, extra: ReadonlyArray<string>) =>
    spawnPty("sh", ["-c", 'trap : INT; "$@"; echo "rc=$?"; stty -a', "sh", process.execPath, binPath, ...args(...extra)], { env: { HOME: home } })
  const echoOn = (output: string) => {
    const settings = output.slice(output.lastIndexOf("rc="))
    expect(settings, output).toMatch(/(^|\s)echo(\s|$)/m)
    expect(settings, output).not.toMatch(/(^|\s)-echo(\s|$)/m)
  }
  const screenLines = (output: string) => stripAnsi(output).split(/\r?\n/)

  it("--password-stdin on a terminal says it reads standard input until Ctrl-D, shows nothing typed, and turns echo back on", async () => {
    const home = await freshHome()
    const session = loginThenStty(home, ["--password-stdin"])
    try {
      await session.waitFor("Reading the password from standard input (not shown); end it with Ctrl-D")
      session.write(`${TYPED}\n\x04`)
      const { output } = await session.exited
      expect(output).toContain("Credentials saved (not verified)")
      expect(output).toContain("rc=0")
      expectNoSecret(output, "alice", TYPED)
      echoOn(output)
    } finally {
      session.kill()
    }
    expect(await storedAuth(home, KEY)).toBe(`alice:${TYPED}`)
  })

  it("Ctrl-C while --password-stdin reads a terminal: the line 'interrupted', exit 130, echo back on, nothing stored", async () => {
    const home = await freshHome()
    const session = loginThenStty(home, ["--password-stdin"])
    try {
      await session.waitFor("end it with Ctrl-D")
      session.write(`${TYPED.slice(0, 5)}\x03`)
      const { output } = await session.exited
      const lines = screenLines(output)
      expect(lines.indexOf("interrupted"), output).toBeGreaterThan(0)
      expect(lines[lines.indexOf("interrupted") + 1], output).toBe("rc=130")
      expect(output).not.toContain(TYPED.slice(0, 5))
      echoOn(output)
    } finally {
      session.kill()
    }
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })

  it.each([["Ctrl-C", "\x03"], ["Ctrl-D", "\x04"]])("%s at the password prompt ends the prompt's line, then the line 'interrupted'; exit 130, nothing stored", async (_name, key) => {
    const home = await freshHome()
    const session = spawnPty(process.execPath, [binPath, ...args()], { env: { HOME: home } })
    try {
      await session.waitFor(/Password/)
      session.write(`pw${key}`)
      const { code, output } = await session.exited
      expect(code, output).toBe(130)
      // The prompt's line is ended, and the last line is the word alone.
      expect(stripAnsi(output), output).toMatch(/Password[^\n]*\r?\ninterrupted\r?\n$/)
    } finally {
      session.kill()
    }
    expect(await snapshot(storePath(home))).toEqual({ exists: false })
  })
})
