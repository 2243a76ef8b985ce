/**
 * The credential store as a user sees it through the CLI (SPEC §1, §2, §5): file modes, atomic and
 * idempotent writes, preservation of what microagent does not own, malformed files, the files
 * microagent must never read or run, resolution order in `list`, and that no secret is ever printed.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { expectCleanError } from "../support/assertions.js"
import { b64, storeDir, storePath } from "../support/auth.js"
import { runCli, type CliResult } from "../support/cli.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

// ---------------------------------------------------------------------------------------------
// Helpers

const { freshHome, scratchDir } = useScratch("microagent-store-")

/** Writes microagent's own store as a user (or another tool) might have left it. */
const seedStore = async (home: string, content: unknown, mode = 0o600): Promise<string> => {
  await fs.mkdir(storeDir(home), { recursive: true, mode: 0o700 })
  await fs.chmod(storeDir(home), 0o700)
  const file = storePath(home)
  await fs.writeFile(file, typeof content === "string" ? content : JSON.stringify(content, null, 2))
  await fs.chmod(file, mode)
  return file
}

const writeJson = async (file: string, content: unknown): Promise<string> => {
  await fs.mkdir(path.dirname(file), { recursive: true })
  await fs.writeFile(file, typeof content === "string" ? content : JSON.stringify(content, null, 2))
  return file
}

const readJson = async (file: string): Promise<unknown> => JSON.parse(await fs.readFile(file, "utf8"))

/** Parsed JSON re-serialised: equal strings mean equal content *and* equal key order. */
const canonical = async (file: string): Promise<string> => JSON.stringify(await readJson(file))

type Env = Record<string, string | undefined>

const cli = (home: string, args: ReadonlyArray<string>, env: Env = {}, stdin?: string): Promise<CliResult> =>
  runCli(args, { env: { HOME: home, ...env }, ...(stdin === undefined ? {} : { stdin }) })

const login = (home: string, key: string, user: string, password: string, env: Env = {}, verify = false) =>
  cli(home, ["registry", "login", key, "-u", user, "--password-stdin", ...(verify ? [] : ["--no-verify"])], env, `${password}\n`)

const logout = (home: string, args: ReadonlyArray<string>, env: Env = {}) => cli(home, ["registry", "logout", ...args], env)

const list = (home: string, env: Env = {}) => cli(home, ["registry", "list"], env)

interface Row {
  readonly registry: string
  readonly username: string
  readonly source: string
  readonly shadowed: boolean
  readonly invalid?: string | null
}

const listJson = async (home: string, env: Env = {}): Promise<{ result: CliResult; rows: Array<Row> }> => {
  const result = await cli(home, ["registry", "list", "--json"], env)
  expect(result.stderr, "list --json stderr").not.toMatch(/^error:/m)
  const rows = JSON.parse(result.stdout) as Array<Row>
  expect(Array.isArray(rows)).toBe(true)
  return { result, rows }
}

/** The [S2] fields only, so an extra field (`invalid`) does not hide a difference in these. */
const core = (rows: ReadonlyArray<Row>) =>
  rows.map(({ registry, shadowed, source, username }) => ({ registry, username, source, shadowed }))

const stdoutLines = (r: CliResult) => r.stdout.split("\n").filter((l) => l.trim() !== "")
const stderrLines = (r: CliResult) => r.stderr.split("\n").filter((l) => l.trim() !== "")

const mode = async (p: string) => (await fs.stat(p)).mode & 0o777

const isoPast = new Date("2001-02-03T04:05:06Z")

// ---------------------------------------------------------------------------------------------

describe("[C2] file modes and symbolic links", () => {
  it("[C2] a new store is created 0600 in a 0700 folder", async () => {
    const home = await freshHome()
    const r = await login(home, "registry.example.com", "alice", "pw-alice")
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Credentials saved \(not verified\)$/m)
    expect(r.stdout).toContain(storePath(home))
    expect(await mode(storeDir(home))).toBe(0o700)
    expect(await mode(storePath(home))).toBe(0o600)
    expect(await readJson(storePath(home))).toEqual({
      auths: { "registry.example.com": { auth: b64("alice:pw-alice") } }
    })
  })

  it("[C2][C3] a 0755 folder and a 0644 store are left 0700/0600, with one warning about the file's old mode", async () => {
    const home = await freshHome()
    await fs.mkdir(storeDir(home), { mode: 0o755 })
    await fs.chmod(storeDir(home), 0o755)
    await fs.writeFile(storePath(home), JSON.stringify({ auths: { "old.example": { auth: b64("old:pw-old") } } }))
    await fs.chmod(storePath(home), 0o644)

    const r = await login(home, "registry.example.com", "alice", "pw-alice")
    expect(r.code, r.stderr).toBe(0)
    expect(await mode(storeDir(home))).toBe(0o700)
    expect(await mode(storePath(home))).toBe(0o600)
    const aboutFile = stderrLines(r).filter((l) => l.includes(storePath(home)) && /644/.test(l))
    expect(aboutFile, r.stderr).toHaveLength(1)
    expect(aboutFile[0]).toMatch(/^warning: /)
    expect(await readJson(storePath(home))).toEqual({
      auths: {
        "old.example": { auth: b64("old:pw-old") },
        "registry.example.com": { auth: b64("alice:pw-alice") }
      }
    })

    // Told once: the next write has nothing to complain about.
    const again = await login(home, "other.example", "bob", "pw-bob")
    expect(again.code, again.stderr).toBe(0)
    expect(stderrLines(again).filter((l) => /644|mode/.test(l)), again.stderr).toEqual([])
  })

  it("[C2] a store that is a symbolic link is written through to its target", async () => {
    const home = await freshHome()
    const elsewhere = await scratchDir()
    const target = path.join(elsewhere, "real-auth.json")
    await fs.writeFile(target, JSON.stringify({ auths: { "old.example": { auth: b64("old:pw-old") } } }))
    await fs.chmod(target, 0o600)
    await fs.mkdir(storeDir(home), { mode: 0o700 })
    await fs.symlink(target, storePath(home))

    const r = await login(home, "registry.example.com", "alice", "pw-alice")
    expect(r.code, r.stderr).toBe(0)

    const link = await fs.lstat(storePath(home))
    expect(link.isSymbolicLink()).toBe(true)
    expect(await fs.readlink(storePath(home))).toBe(target)
    expect(await readJson(target)).toEqual({
      auths: {
        "old.example": { auth: b64("old:pw-old") },
        "registry.example.com": { auth: b64("alice:pw-alice") }
      }
    })
    expect(await mode(target)).toBe(0o600)
    // Nothing left behind beside the target (temp or lock files).
    expect(await fs.readdir(elsewhere)).toEqual(["real-auth.json"])

    // logout also goes through the link
    const out = await logout(home, ["old.example"])
    expect(out.code, out.stderr).toBe(0)
    expect((await fs.lstat(storePath(home))).isSymbolicLink()).toBe(true)
    expect(await readJson(target)).toEqual({ auths: { "registry.example.com": { auth: b64("alice:pw-alice") } } })
  })
})

describe("[C2] a change that changes nothing writes nothing", () => {
  it("[C2] logging in again with the same credentials leaves mtime, inode and folder untouched", async () => {
    const home = await freshHome()
    const first = await login(home, "registry.example.com", "alice", "pw-alice")
    expect(first.code, first.stderr).toBe(0)
    await fs.utimes(storePath(home), isoPast, isoPast)
    const before = await fs.stat(storePath(home))
    const bytes = await fs.readFile(storePath(home))
    const entries = (await fs.readdir(storeDir(home))).sort()

    const again = await login(home, "registry.example.com", "alice", "pw-alice")
    expect(again.code, again.stderr).toBe(0)
    expect(again.stdout).toMatch(/^Credentials saved \(not verified\)$/m)

    const after = await fs.stat(storePath(home))
    expect(after.ino).toBe(before.ino)
    expect(after.mtimeMs).toBe(before.mtimeMs)
    expect(await fs.readFile(storePath(home))).toEqual(bytes)
    expect((await fs.readdir(storeDir(home))).sort()).toEqual(entries)
  })

  it("[C2][O2] logout of an absent key does not write", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: { "registry.example.com": { auth: b64("alice:pw-alice") } } })
    await fs.utimes(storePath(home), isoPast, isoPast)
    const before = await fs.stat(storePath(home))
    const bytes = await fs.readFile(storePath(home))

    const r = await logout(home, ["absent.example"])
    expect(r.code).toBe(1)
    expectCleanError(r)
    expect(r.stderr).toMatch(/^error: not logged in to absent\.example/m)

    const after = await fs.stat(storePath(home))
    expect(after.ino).toBe(before.ino)
    expect(after.mtimeMs).toBe(before.mtimeMs)
    expect(await fs.readFile(storePath(home))).toEqual(bytes)
    expect(await fs.readdir(storeDir(home))).toEqual(["auth.json"])
  })
})

describe("[C3] rewriting preserves what microagent does not own", () => {
  const seeded = () => ({
    zFirst: { note: "unknown top-level field, before auths" },
    auths: {
      "b.example": { auth: b64("bee:pw-b"), email: "bee@example.com", custom: { n: 1, list: [1, 2, 3] } },
      "a.example": { auth: b64("ay:pw-a") },
      "c.example/team": { auth: b64("cee:pw-c"), zz: true }
    },
    aLast: [1, "two", { three: 3 }],
    nullField: null
  })

  it("[C3] a login adding a key keeps unknown fields, other entries and key order", async () => {
    const home = await freshHome()
    await seedStore(home, seeded())
    const r = await login(home, "new.example", "newbie", "pw-new")
    expect(r.code, r.stderr).toBe(0)
    const expected = seeded()
    ;(expected.auths as Record<string, unknown>)["new.example"] = { auth: b64("newbie:pw-new") }
    expect(await canonical(storePath(home))).toBe(JSON.stringify(expected))
  })

  it("[C3][L6] a login replacing an entry keeps that entry's unknown fields and its place", async () => {
    const home = await freshHome()
    await seedStore(home, seeded())
    const r = await login(home, "b.example", "bee2", "pw-b2")
    expect(r.code, r.stderr).toBe(0)
    const expected = seeded()
    expected.auths["b.example"].auth = b64("bee2:pw-b2")
    expect(await canonical(storePath(home))).toBe(JSON.stringify(expected))
  })

  it("[C3][O1] a logout keeps unknown fields, other entries and key order", async () => {
    const home = await freshHome()
    await seedStore(home, seeded())
    const r = await logout(home, ["a.example"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Removed login credentials for a\.example$/m)
    const expected = seeded() as { auths: Record<string, unknown> }
    delete expected.auths["a.example"]
    expect(await canonical(storePath(home))).toBe(JSON.stringify(expected))
  })
})

describe("[C9] malformed own store", () => {
  const trailingComma = [
    "{",
    '  "auths": {',
    `    "a.example": { "auth": "${b64("ay:pw-a")}" },`,
    "  }",
    "}",
    ""
  ].join("\n")

  it.each([
    ["unterminated", '{"auths": {'],
    ["trailing comma", trailingComma]
  ])("[C9][E2] a store that is not JSON (%s): login and list exit 3 naming the file and where it broke; the file is untouched", async (_name, text) => {
    const home = await freshHome()
    const file = await seedStore(home, text)
    const bytes = await fs.readFile(file)

    const r = await login(home, "registry.example.com", "alice", "pw-alice")
    expect(r.code, r.stderr).toBe(3)
    expectCleanError(r)
    expect(r.stderr).toContain(file)
    expect(r.stderr).toMatch(/line \d+|:\d+:\d+|position \d+/i)
    expect(r.stderr).toMatch(/column \d+|:\d+:\d+/i)
    expect(await fs.readFile(file)).toEqual(bytes)
    expect(await fs.readdir(storeDir(home))).toEqual(["auth.json"])

    const l = await list(home)
    expect(l.code, l.stderr).toBe(3)
    expectCleanError(l)
    expect(l.stderr).toContain(file)
    expect(l.stdout).toBe("")
  })

  it("[C9] the trailing-comma error points at line 4, column 3", async () => {
    const home = await freshHome()
    const file = await seedStore(home, trailingComma)
    const r = await list(home)
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toContain(file)
    expect(r.stderr).toMatch(/line 4\D+column 3|:4:3\b/i)
  })

  it.each([
    ["auths is an array", '{"auths": []}'],
    ["auths is a string", '{"auths": "nope"}'],
    ["top level is an array", "[]"],
    ["top level is a number", "42"]
  ])("[C9][E2] %s: login and list exit 3 naming the file; the file is untouched", async (_name, text) => {
    const home = await freshHome()
    const file = await seedStore(home, text)
    const r = await login(home, "registry.example.com", "alice", "pw-alice")
    expect(r.code, r.stderr).toBe(3)
    expectCleanError(r)
    expect(r.stderr).toContain(file)
    expect(await fs.readFile(file, "utf8")).toBe(text)

    const l = await list(home)
    expect(l.code, l.stderr).toBe(3)
    expectCleanError(l)
    expect(l.stderr).toContain(file)
  })

  it("[C9] a whitespace-only store is an empty store: list exits 0 with nothing, login works", async () => {
    const home = await freshHome()
    await seedStore(home, "  \n\t\n  ")
    const l = await list(home)
    expect(l.code, l.stderr).toBe(0)
    expect(l.stdout).toBe("")
    expect(l.stderr).toBe("")

    const r = await login(home, "registry.example.com", "alice", "pw-alice")
    expect(r.code, r.stderr).toBe(0)
    expect(await readJson(storePath(home))).toEqual({
      auths: { "registry.example.com": { auth: b64("alice:pw-alice") } }
    })
  })
})

describe("[C9] $REGISTRY_AUTH_FILE problems and invalid entries", () => {
  it("[C9][E2] a malformed $REGISTRY_AUTH_FILE: list shows the own store, then exits 3 naming the file (no silent fall-through)", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: { "own.example": { auth: b64("own:pw-own") } } })
    const raf = await writeJson(path.join(await scratchDir(), "containers", "auth.json"), '{"auths": {"x.example": ')
    const r = await list(home, { REGISTRY_AUTH_FILE: raf })
    expect(r.code, r.stderr).toBe(3)
    expectCleanError(r)
    expect(r.stderr).toContain(raf)
    // What can be listed is (issue 13): the bad file does not hide the own store.
    expect(r.stdout).toBe(`own.example  own  ${storePath(home)}\n`)
  })

  it("[C9] a $REGISTRY_AUTH_FILE that does not exist: exit 0, one warning line, own entries still listed", async () => {
    const home = await freshHome()
    const own = await seedStore(home, { auths: { "own.example": { auth: b64("own:pw-own") } } })
    const raf = path.join(await scratchDir(), "missing", "auth.json")
    const r = await list(home, { REGISTRY_AUTH_FILE: raf })
    expect(r.code, r.stderr).toBe(0)
    const lines = stderrLines(r)
    expect(lines, r.stderr).toHaveLength(1)
    expect(lines[0]).toMatch(/^warning: /)
    expect(lines[0]).toContain(raf)
    expect(lines[0]).toMatch(/not exist|missing|no such file/i)
    expect(stdoutLines(r)).toHaveLength(1)
    expect(r.stdout).toContain("own.example")
    expect(r.stdout).toContain(own)
  })

  it("[C9] an empty $REGISTRY_AUTH_FILE variable is ignored (no warning)", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: { "own.example": { auth: b64("own:pw-own") } } })
    const r = await list(home, { REGISTRY_AUTH_FILE: "" })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe("")
    expect(r.stdout).toContain("own.example")
  })

  it("[C9][S1] entries whose auth is not base64 or has no ':' are listed as invalid without their value", async () => {
    const home = await freshHome()
    const notBase64 = "***NOT-BASE64-SECRETVALUE***"
    const noColon = "NoColonSecretValue"
    const own = await seedStore(home, {
      auths: {
        "good.example": { auth: b64("gooduser:pw-good") },
        "notb64.example": { auth: notBase64 },
        "nocolon.example": { auth: b64(noColon) }
      }
    })

    const l = await list(home)
    expect(l.code, l.stderr).toBe(0)
    const lines = stdoutLines(l)
    expect(lines).toHaveLength(3)
    const line = (key: string) => lines.find((x) => x.startsWith(`${key} `))
    expect(line("good.example")).toContain("gooduser")
    expect(line("good.example")).not.toMatch(/invalid/)
    expect(line("notb64.example")).toMatch(/\(invalid: [^)]+\)/)
    expect(line("nocolon.example")).toMatch(/\(invalid: [^)]+\)/)
    for (const secret of [notBase64, "NOT-BASE64", noColon, b64(noColon), "pw-good", b64("gooduser:pw-good")]) {
      expect(l.stdout + l.stderr).not.toContain(secret)
    }

    const { result, rows } = await listJson(home)
    expect(result.code, result.stderr).toBe(0)
    const byKey = Object.fromEntries(rows.map((row) => [row.registry, row]))
    expect(byKey["good.example"]).toMatchObject({ username: "gooduser", source: own, shadowed: false })
    expect(byKey["good.example"]!.invalid ?? null).toBeNull()
    expect(byKey["notb64.example"]!.invalid).toEqual(expect.any(String))
    expect(byKey["nocolon.example"]!.invalid).toEqual(expect.any(String))
    for (const secret of [notBase64, "NOT-BASE64", noColon, b64(noColon), "pw-good", b64("gooduser:pw-good")]) {
      expect(result.stdout + result.stderr).not.toContain(secret)
    }
  })
})

describe("[C4] Docker's files and credential helpers are never used", () => {
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry({ mode: "htpasswd", users: { alice: "pw-alice-registry" } })
  })
  afterAll(() => registry?.stop())

  /** A `docker-credential-fake` on PATH that leaves a marker if anything runs it. */
  const fakeHelper = async () => {
    const dir = await scratchDir()
    const bin = path.join(dir, "bin")
    const marker = path.join(dir, "helper-was-run")
    await fs.mkdir(bin)
    const script = path.join(bin, "docker-credential-fake")
    await fs.writeFile(
      script,
      [
        "#!/bin/sh",
        `touch '${marker}'`,
        `echo "$@" >> '${marker}'`,
        'cat >/dev/null',
        'echo \'{"ServerURL":"x","Username":"helperuser","Secret":"helper-secret"}\'',
        ""
      ].join("\n")
    )
    await fs.chmod(script, 0o755)
    return { env: { PATH: `${bin}${path.delimiter}${process.env["PATH"] ?? ""}` }, marker, dir }
  }

  const exists = (p: string) => fs.access(p).then(() => true, () => false)

  it("[C4] ~/.docker/config.json and $DOCKER_CONFIG entries are not listed", async () => {
    const home = await freshHome()
    const { env, marker, dir } = await fakeHelper()
    const dockerFile = await writeJson(path.join(home, ".docker", "config.json"), {
      auths: { "docker-home.example": { auth: b64("dockuser:pw-docker-home") } },
      credsStore: "fake",
      credHelpers: { "docker-home.example": "fake" }
    })
    const dockerConfigDir = path.join(dir, "docker-config")
    const dockerConfigFile = await writeJson(path.join(dockerConfigDir, "config.json"), {
      auths: { "docker-env.example": { auth: b64("envuser:pw-docker-env") } },
      credsStore: "fake"
    })
    const dockerBytes = await fs.readFile(dockerFile)
    const dockerConfigBytes = await fs.readFile(dockerConfigFile)

    for (const extra of [{}, { DOCKER_CONFIG: dockerConfigDir }]) {
      const r = await list(home, { ...env, ...extra })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toBe("")
      expect(r.stdout + r.stderr).not.toMatch(/docker-home\.example|docker-env\.example|dockuser|envuser/)
      const j = await listJson(home, { ...env, ...extra })
      expect(j.rows).toEqual([])
    }
    expect(await exists(marker)).toBe(false)
    expect(await fs.readFile(dockerFile)).toEqual(dockerBytes)
    expect(await fs.readFile(dockerConfigFile)).toEqual(dockerConfigBytes)
  })

  it("[C4] credHelpers/credsStore are never run by list, login or logout; login notes the ignored helper", async () => {
    const home = await freshHome()
    const { env: helperEnv, marker, dir } = await fakeHelper()
    const host = registry.host
    const dockerFile = await writeJson(path.join(home, ".docker", "config.json"), {
      auths: { [host]: { auth: b64("dockuser:pw-docker") } },
      credsStore: "fake",
      credHelpers: { [host]: "fake" }
    })
    const dockerConfigDir = path.join(dir, "docker-config")
    await writeJson(path.join(dockerConfigDir, "config.json"), { credsStore: "fake", credHelpers: { [host]: "fake" } })
    const raf = await writeJson(path.join(dir, "raf", "auth.json"), {
      auths: { [host]: { auth: b64("rafuser:pw-raf") } },
      credsStore: "fake",
      credHelpers: { [host]: "fake" }
    })
    const dockerBytes = await fs.readFile(dockerFile)
    const rafBytes = await fs.readFile(raf)
    const env = { ...helperEnv, REGISTRY_AUTH_FILE: raf, DOCKER_CONFIG: dockerConfigDir }

    const l = await list(home, env)
    expect(l.code, l.stderr).toBe(0)
    expect(l.stdout).not.toContain("helperuser")
    expect(await exists(marker)).toBe(false)

    const r = await login(home, host, "alice", "pw-alice-registry", env, true)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Login Succeeded$/m)
    expect(await exists(marker)).toBe(false)
    const notes = stderrLines(r).filter((line) => /helper|credHelpers|credsStore/i.test(line))
    expect(notes.length, r.stderr).toBeGreaterThanOrEqual(1)
    expect(notes.some((line) => /^(warning|note):/.test(line) && /ignor/i.test(line)), r.stderr).toBe(true)
    expect(r.stdout + r.stderr).not.toContain("pw-alice-registry")
    expect(await readJson(storePath(home))).toEqual({ auths: { [host]: { auth: b64("alice:pw-alice-registry") } } })

    const o = await logout(home, [host], env)
    expect(o.code, o.stderr).toBe(0)
    expect(o.stdout).toMatch(new RegExp(`^Removed login credentials for ${host.replace(/\./g, "\\.")}$`, "m"))
    expect(await exists(marker)).toBe(false)

    // Neither Docker's file nor $REGISTRY_AUTH_FILE was written.
    expect(await fs.readFile(dockerFile)).toEqual(dockerBytes)
    expect(await fs.readFile(raf)).toEqual(rafBytes)
    expect(await fs.readdir(path.join(home, ".docker"))).toEqual(["config.json"])
  })
})

describe("[C8][S1][S2] list in resolution order", () => {
  it("[C8][S1][S2] $REGISTRY_AUTH_FILE entries come first; the own store's same key is shadowed", async () => {
    const home = await freshHome()
    const own = await seedStore(home, {
      auths: {
        "registry.example.com": { auth: b64("ownuser:pw-own") },
        "other.example": { auth: b64("otheruser:pw-other") }
      }
    })
    const raf = await writeJson(path.join(await scratchDir(), "auth.json"), {
      auths: { "registry.example.com": { auth: b64("rafuser:pw-raf") } }
    })
    const env = { REGISTRY_AUTH_FILE: raf }

    const l = await list(home, env)
    expect(l.code, l.stderr).toBe(0)
    const lines = stdoutLines(l)
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(/^registry\.example\.com\s+rafuser\s+/)
    expect(lines[0]).toContain(raf)
    expect(lines[0]).not.toContain("shadowed")
    expect(lines[1]).toMatch(/^registry\.example\.com\s+ownuser\s+/)
    expect(lines[1]).toContain(own)
    expect(lines[1]).toContain("(shadowed)")
    expect(lines[2]).toMatch(/^other\.example\s+otheruser\s+/)
    expect(lines[2]).toContain(own)
    expect(lines[2]).not.toContain("shadowed")

    const { result, rows } = await listJson(home, env)
    expect(result.code, result.stderr).toBe(0)
    expect(core(rows)).toEqual([
      { registry: "registry.example.com", username: "rafuser", source: raf, shadowed: false },
      { registry: "registry.example.com", username: "ownuser", source: own, shadowed: true },
      { registry: "other.example", username: "otheruser", source: own, shadowed: false }
    ])
    for (const row of rows) {
      expect(Object.keys(row).every((k) => ["registry", "username", "source", "shadowed", "invalid"].includes(k))).toBe(true)
      expect(row.invalid ?? null).toBeNull()
    }
  })

  it("[C6][S1] docker.io and https://index.docker.io/v1/ in one file: both listed as docker.io, the URL form shadowed", async () => {
    const home = await freshHome()
    // The URL form comes first in the file: precedence is by form ([C6]), not by file order.
    const own = await seedStore(home, {
      auths: {
        "https://index.docker.io/v1/": { auth: b64("urluser:pw-url") },
        "docker.io": { auth: b64("hubuser:pw-hub") }
      }
    })
    const l = await list(home)
    expect(l.code, l.stderr).toBe(0)
    const lines = stdoutLines(l)
    expect(lines).toHaveLength(2)
    for (const line of lines) expect(line).toMatch(/^docker\.io\s/)
    const hub = lines.find((line) => line.includes("hubuser"))
    const url = lines.find((line) => line.includes("urluser"))
    expect(hub).toBeDefined()
    expect(url).toBeDefined()
    expect(hub).not.toContain("shadowed")
    expect(url).toContain("(shadowed)")

    const { rows } = await listJson(home)
    expect(core(rows).sort((a, b) => a.username.localeCompare(b.username))).toEqual([
      { registry: "docker.io", username: "hubuser", source: own, shadowed: false },
      { registry: "docker.io", username: "urluser", source: own, shadowed: true }
    ])
  })
})

describe("[S1] list never prints a secret", () => {
  it("[S1][C9] no password, token or auth value appears in list or list --json", async () => {
    const home = await freshHome()
    const secrets = {
      alice: "Pw-Alice-8c1f2e",
      colon: "Pw:With:Colons-77aa",
      raf: "Pw-Raf-d41d8c",
      identity: "IdToken-9f8e7d6c5b4a",
      registryToken: "RegToken-0a1b2c3d",
      badAuth: "Bad-Auth-Value-Zq"
    }
    const ownAuths = {
      "alice.example": { auth: b64(`alice:${secrets.alice}`) },
      "colon.example": { auth: b64(`colonuser:${secrets.colon}`) },
      "token.example": { auth: b64("tokenuser:"), identitytoken: secrets.identity },
      "onlytoken.example": { identitytoken: `${secrets.identity}-2` },
      "regtoken.example": { auth: b64(`reguser:${secrets.alice}-r`), registrytoken: secrets.registryToken },
      "bad.example": { auth: secrets.badAuth }
    }
    await seedStore(home, { auths: ownAuths })
    const raf = await writeJson(path.join(await scratchDir(), "auth.json"), {
      auths: {
        "alice.example": { auth: b64(`rafuser:${secrets.raf}`) },
        "rafonly.example": { auth: b64(`rafonly:${secrets.raf}-only`), identitytoken: `${secrets.identity}-raf` }
      }
    })
    const env = { REGISTRY_AUTH_FILE: raf }

    const forbidden = [
      ...Object.values(secrets),
      ...Object.values(ownAuths).flatMap((e) => ("auth" in e ? [e.auth] : [])),
      b64(`rafuser:${secrets.raf}`),
      b64(`rafonly:${secrets.raf}-only`),
      // base64 of a secret alone, in case something re-encodes it
      ...Object.values(secrets).map(b64)
    ]

    const l = await list(home, env)
    expect(l.code, l.stderr).toBe(0)
    expect(stdoutLines(l).length).toBeGreaterThanOrEqual(7)
    const j = await cli(home, ["registry", "list", "--json"], env)
    expect(j.code, j.stderr).toBe(0)
    expect((JSON.parse(j.stdout) as Array<Row>).length).toBeGreaterThanOrEqual(7)

    const everything = [l.stdout, l.stderr, j.stdout, j.stderr].join("\n")
    for (const secret of forbidden) expect(everything, `leaked ${secret}`).not.toContain(secret)
    for (const line of everything.split("\n")) expect(line).not.toMatch(/identitytoken|registrytoken|"auth"/i)
  })
})

describe("[O1][O2][O3] logout", () => {
  it("[O1][C6] logout docker.io removes every alias of Docker Hub, keeps other entries and unknown fields", async () => {
    const home = await freshHome()
    await seedStore(home, {
      first: "kept",
      auths: {
        "index.docker.io": { auth: b64("u1:pw1") },
        "other.example": { auth: b64("other:pw-other"), extra: { kept: true } },
        "https://index.docker.io/v1/": { auth: b64("u2:pw2") },
        "docker.io": { auth: b64("u3:pw3") },
        "registry-1.docker.io": { auth: b64("u4:pw4") }
      },
      last: { kept: [1] }
    })
    const r = await logout(home, ["docker.io"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Removed login credentials for docker\.io$/m)
    expect(await canonical(storePath(home))).toBe(
      JSON.stringify({
        first: "kept",
        auths: { "other.example": { auth: b64("other:pw-other"), extra: { kept: true } } },
        last: { kept: [1] }
      })
    )
    const l = await list(home)
    expect(l.stdout).not.toContain("docker.io")

    // Nothing left: a second logout is "not logged in".
    const again = await logout(home, ["docker.io"])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/^error: not logged in to docker\.io/m)
  })

  it("[O1][C6] logout of the legacy URL form also removes the docker.io entry", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: { "docker.io": { auth: b64("u3:pw3") }, "other.example": { auth: b64("o:p") } } })
    const r = await logout(home, ["https://index.docker.io/v1/"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Removed login credentials for docker\.io$/m)
    expect(await readJson(storePath(home))).toEqual({ auths: { "other.example": { auth: b64("o:p") } } })
  })

  it("[O2] not logged in, but $REGISTRY_AUTH_FILE has it: exit 1, the message names that file and says it is never modified", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: { "other.example": { auth: b64("o:p") } } })
    await fs.utimes(storePath(home), isoPast, isoPast)
    const ownBefore = await fs.stat(storePath(home))
    const raf = await writeJson(path.join(await scratchDir(), "auth.json"), {
      auths: { "registry.example.com": { auth: b64("rafuser:pw-raf") } },
      other: "field"
    })
    const rafBytes = await fs.readFile(raf)

    const r = await logout(home, ["registry.example.com"], { REGISTRY_AUTH_FILE: raf })
    expect(r.code).toBe(1)
    expectCleanError(r)
    const message = stderrLines(r).filter((l) => !l.startsWith("warning:")).join("\n")
    expect(message).toMatch(/not logged in to registry\.example\.com/)
    expect(message).toContain(raf)
    expect(message).toMatch(/never modif/i)
    expect(r.stdout + r.stderr).not.toContain("pw-raf")
    expect(await fs.readFile(raf)).toEqual(rafBytes)
    const ownAfter = await fs.stat(storePath(home))
    expect(ownAfter.mtimeMs).toBe(ownBefore.mtimeMs)
    expect(ownAfter.ino).toBe(ownBefore.ino)
  })

  it("[O2] not logged in and no store at all: exit 1, `not logged in`, no store created", async () => {
    const home = await freshHome()
    const r = await logout(home, ["registry.example.com"])
    expect(r.code).toBe(1)
    expectCleanError(r)
    expect(r.stderr).toMatch(/^error: not logged in to registry\.example\.com$/m)
    await expect(fs.access(storePath(home))).rejects.toThrow()
  })

  it("[O3] logout --all empties auths and keeps every other top-level field in order", async () => {
    const home = await freshHome()
    await seedStore(home, {
      before: { x: 1 },
      auths: { "a.example": { auth: b64("a:pa") }, "docker.io": { auth: b64("d:pd") } },
      after: "kept"
    })
    const r = await logout(home, ["--all"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/^Removed login credentials for all registries/m)
    const doc = (await readJson(storePath(home))) as Record<string, unknown>
    expect(doc["auths"] ?? {}).toEqual({})
    expect(Object.keys(doc).filter((k) => k !== "auths")).toEqual(["before", "after"])
    expect(doc["before"]).toEqual({ x: 1 })
    expect(doc["after"]).toBe("kept")
    expect(await mode(storePath(home))).toBe(0o600)

    const l = await list(home)
    expect(l.code, l.stderr).toBe(0)
    expect(l.stdout).toBe("")
  })

  it.each([
    ["both a registry and --all", ["registry.example.com", "--all"]],
    ["neither a registry nor --all", []]
  ])("[O1][E4] logout with %s is a usage error (exit 2) that writes nothing", async (_name, args) => {
    const home = await freshHome()
    await seedStore(home, { auths: { "registry.example.com": { auth: b64("a:pa") } } })
    const bytes = await fs.readFile(storePath(home))
    const r = await logout(home, args)
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/^error: /m)
    expect(r.stderr).not.toMatch(/^\s+at\s/m)
    expect(await fs.readFile(storePath(home))).toEqual(bytes)
  })
})

describe("[S3] no entries", () => {
  it("[S3] list with no store prints nothing and exits 0; --json prints []", async () => {
    const home = await freshHome()
    const l = await list(home)
    expect(l.code, l.stderr).toBe(0)
    expect(l.stdout).toBe("")
    // stderr is a pipe here, not a terminal: no hint either.
    expect(l.stderr).toBe("")
    const { result, rows } = await listJson(home)
    expect(result.code).toBe(0)
    expect(rows).toEqual([])
    // Listing creates nothing.
    await expect(fs.access(storeDir(home))).rejects.toThrow()
  })

  it("[S3] an existing store with an empty auths object lists nothing", async () => {
    const home = await freshHome()
    await seedStore(home, { auths: {}, other: 1 })
    const l = await list(home)
    expect(l.code, l.stderr).toBe(0)
    expect(l.stdout).toBe("")
  })
})
