/**
 * `microagent run` end to end with runc, as root (SPEC §7): the documented example against
 * private registries ([R1]), overrides ([R3]), isolation ([R2]), process semantics ([R4]),
 * secrets that are passed through and never stored ([R6]), the --json document ([R7]), and after
 * every test nothing left: no runtime state, mounts, scratch folders or processes ([R5]).
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { authsFor, writeAuthJson } from "../support/auth.js"
import { binPath } from "../support/cli.js"
import { skopeoPush } from "../support/images.js"
import { buildBusyboxImage, BUSYBOX_CONFIG, type BuiltLayout } from "../support/layouts.js"
import { startRegistry, type RegistryAuth, type RegistryHandle } from "../support/registry.js"
import { eventually, leftovers, microagent, nothingLeft, text } from "../support/run.js"
import { spawnPty } from "../support/pty.js"
import { diffTrees, snapshotDir } from "../support/tree.js"

const ALICE = { user: "alice", password: "alice-Pw-8Kq2" } as const

let fixtures: string
let home: string
let busybox: BuiltLayout
let greeter: BuiltLayout

beforeAll(async () => {
  fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-run-")))
  home = path.join(fixtures, "home")
  await fs.mkdir(home)
  busybox = await buildBusyboxImage(path.join(fixtures, "busybox"), { tag: "1" })
  greeter = await buildBusyboxImage(path.join(fixtures, "greeter"), {
    tag: "latest",
    config: { ...BUSYBOX_CONFIG, Cmd: ["sh", "-c", "echo hello from the image; exit 7"] }
  })
})
afterAll(() => fs.rm(fixtures, { recursive: true, force: true }))

afterEach(async () => {
  expect(await leftovers(home)).toEqual(nothingLeft)
})

const image = () => `oci:${busybox.dir}:1`
const run = (args: ReadonlyArray<string>, call: Omit<Parameters<typeof microagent>[1], "home"> = {}) =>
  microagent(["run", ...args], { home, ...call })

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex")

describe.each<{ name: string; auth: RegistryAuth }>([
  { name: "htpasswd", auth: { mode: "htpasswd", users: { [ALICE.user]: ALICE.password } } },
  { name: "token", auth: { mode: "token", users: { [ALICE.user]: ALICE.password } } }
])("[R1] the documented example, with a private image on the $name registry", ({ auth }) => {
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry(auth)
    await skopeoPush(greeter, { registry: registry.host, repository: "team/app", creds: ALICE })
  })
  afterAll(() => registry?.stop())

  it("[R1] export REGISTRY_AUTH_FILE=~/auth.json; microagent run <registry>/team/app prints what Cmd prints and exits with its code", async () => {
    const authFile = await writeAuthJson(path.join(home, "auth.json"), authsFor({ [registry.host]: `${ALICE.user}:${ALICE.password}` }))
    const r = await run([`${registry.host}/team/app`], { env: { REGISTRY_AUTH_FILE: authFile } })
    expect(r.stdout.toString(), text(r)).toBe("hello from the image\n")
    expect(r.code, text(r)).toBe(7)
    await fs.rm(authFile)
  })

  it("[R1][E1] without credentials: exit 3 with the login hint, nothing started", async () => {
    const r = await run([`${registry.host}/team/app`])
    expect(r.code, text(r)).toBe(3)
    expect(r.stdout.length).toBe(0)
    expect(r.stderr).toMatch(/^hint: microagent registry login/m)
  })
})

describe("[R3] overrides", () => {
  it("[R3] a command replaces Cmd; --entrypoint replaces Entrypoint", async () => {
    const command = await run([image(), "echo", "replaced", "cmd"])
    expect(command.stdout.toString(), text(command)).toBe("replaced cmd\n")
    const entrypoint = await run(["--entrypoint", "/bin/echo", image(), "from", "entrypoint"])
    expect(entrypoint.stdout.toString(), text(entrypoint)).toBe("from entrypoint\n")
  })

  it("[R3] -e adds and overrides Env; -w sets the working directory (default the image's)", async () => {
    const env = await run(["-e", "GREETING=bye", "-e", "EXTRA=1", image(), "sh", "-c", "echo $GREETING $EXTRA; pwd"])
    expect(env.stdout.toString(), text(env)).toBe("bye 1\n/home/app\n")
    const workdir = await run(["-w", "/tmp", image(), "pwd"])
    expect(workdir.stdout.toString()).toBe("/tmp\n")
  })

  it("[R3] the image's user by name from its /etc/passwd; -u by name and by uid:gid", async () => {
    const own = await run([image(), "id"])
    // The supplementary groups are those that list the user in /etc/group, as umoci's conversion has them.
    expect(own.stdout.toString(), text(own)).toBe("uid=1000(app) gid=1000(app) groups=2000(devs)\n")
    const byName = await run(["-u", "nobody", image(), "id", "-u"])
    expect(byName.stdout.toString()).toBe("65534\n")
    const byId = await run(["-u", "4242:4343", image(), "sh", "-c", "id -u; id -g"])
    expect(byId.stdout.toString()).toBe("4242\n4343\n")
  })

  it("[R3] --hostname; by default a name derived from the run", async () => {
    const named = await run(["--hostname", "web-1", image(), "hostname"])
    expect(named.stdout.toString()).toBe("web-1\n")
    const derived = await run([image(), "hostname"])
    expect(derived.stdout.toString()).toMatch(/^[0-9a-f]{12}\n$/)
  })
})

describe("[E9] a missing runtime", () => {
  it("[E9] --runtime that does not exist: an error naming it and the package, exit 1, nothing started", async () => {
    const r = await run(["--runtime", "/nonexistent/runc", image(), "true"])
    expect(r.code, text(r)).toBe(1)
    expect(r.stderr).toMatch(/^error: \/nonexistent\/runc is not installed; it is needed to run containers/m)
    expect(r.stderr).toMatch(/^hint: install it, e.g. apt-get install runc$/m)
  })
})

describe("[R2] isolation", () => {
  it("[R2] --network none (the default) has only lo; --network host sees the machine's interfaces", async () => {
    const interfaces = (r: { stdout: Buffer }) => r.stdout.toString().split("\n").slice(2).filter((l) => l.trim() !== "").map((l) => l.split(":")[0]!.trim())
    const none = await run([image(), "cat", "/proc/net/dev"])
    expect(interfaces(none), text(none)).toEqual(["lo"])
    const host = await run(["--network", "host", image(), "cat", "/proc/net/dev"])
    expect(interfaces(host).length).toBe((await fs.readFile("/proc/net/dev", "utf8")).trim().split("\n").length - 2)
  })

  it("[R2] a read-only mount cannot be written; a writable one writes through to the host", async () => {
    const dir = path.join(fixtures, "shared")
    await fs.mkdir(dir, { recursive: true })
    await fs.writeFile(path.join(dir, "in.txt"), "from the host\n")
    const ro = await run(["--mount", `${dir}:/data:ro`, "-u", "0", image(), "sh", "-c", "cat /data/in.txt; echo x > /data/in.txt"])
    expect(ro.stdout.toString()).toBe("from the host\n")
    expect(ro.code).not.toBe(0)
    expect(await fs.readFile(path.join(dir, "in.txt"), "utf8")).toBe("from the host\n")
    const rw = await run(["--mount", `${dir}:/data`, "-u", "0", image(), "sh", "-c", "echo from the container > /data/out.txt"])
    expect(rw.code, text(rw)).toBe(0)
    expect(await fs.readFile(path.join(dir, "out.txt"), "utf8")).toBe("from the container\n")
  })

  it("[R2][F7] a run that writes and deletes everywhere leaves the cached rootfs as it was", async () => {
    await run([image(), "true"])
    const cache = path.join(home, ".microagent", "rootfs")
    const entry = (await fs.readdir(cache)).find((name) => name.endsWith("-dir") && name.includes(busybox.manifestDigest.slice(7)))!
    const before = await snapshotDir(path.join(cache, entry, "rootfs"))
    const r = await run(["-u", "0", image(), "sh", "-c", "echo changed > /etc/passwd; touch /new; rm -rf /home /bin/ls"])
    expect(r.code, text(r)).toBe(0)
    expect(diffTrees(await snapshotDir(path.join(cache, entry, "rootfs")), before)).toEqual([])
  })
})

describe("[R4] the process", () => {
  it("[R4] exit codes 0, 1 and 42 pass through; a process killed by SIGKILL gives 137, and --json says so", async () => {
    for (const code of [0, 1, 42]) {
      const r = await run([image(), "sh", "-c", `exit ${code}`])
      expect(r.code, text(r)).toBe(code)
    }
    const killed = await run(["--json", image(), "sh", "-c", "kill -9 $$"])
    expect(killed.code, text(killed)).toBe(137)
    const doc = JSON.parse(killed.stdout.toString()) as Record<string, unknown>
    expect(doc).toMatchObject({ reference: image(), digest: busybox.manifestDigest, exitCode: 137, signal: "SIGKILL", kept: null })
    expect(String(doc["runtime"])).toMatch(/runc$/)
    expect(Date.parse(String(doc["exitedAt"]))).toBeGreaterThanOrEqual(Date.parse(String(doc["startedAt"])))
  })

  it("[R4] --timeout 1 on sleep 30 kills the container: exit 124 within seconds", async () => {
    const r = await run(["--timeout", "1", image(), "sleep", "30"])
    expect(r.code, text(r)).toBe(124)
    expect(r.elapsedMs).toBeLessThan(5_000)
  })

  it("[R4] SIGINT to microagent reaches the process, which handles it; microagent exits 130", async () => {
    let child: import("node:child_process").ChildProcess | undefined
    const pending = run([image(), "sh", "-c", "trap 'echo got INT; exit 3' INT; echo ready; sleep 30 & wait"], { started: (c) => void (child = c) })
    await eventually(async () => (await leftovers(home)).runtime.length === 1)
    await new Promise((r) => setTimeout(r, 300))
    child!.kill("SIGINT")
    const r = await pending
    expect(r.code, text(r)).toBe(130)
    expect(r.stdout.toString()).toBe("ready\ngot INT\n")
  })

  it("[R4] SIGTERM to microagent reaches the process too, and microagent exits 143", async () => {
    let child: import("node:child_process").ChildProcess | undefined
    const pending = run([image(), "sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; sleep 30 & wait"], { started: (c) => void (child = c) })
    await eventually(async () => (await leftovers(home)).runtime.length === 1)
    await new Promise((r) => setTimeout(r, 300))
    child!.kill("SIGTERM")
    const r = await pending
    expect(r.stdout.toString(), text(r)).toBe("ready\ngot TERM\n")
    // Interrupted, as by Ctrl-C, but 128 + SIGTERM, as whoever sent it expects (issue 15, item 13).
    expect(r.code).toBe(143)
  })

  it("[R4] an init is PID 1 and reaps orphans: no zombie is left", async () => {
    // The subshell exits at once; its sleep, orphaned, ends 0.1 s later with PID 1 as its parent.
    const r = await run([image(), "sh", "-c", "(sleep 0.1 &); sleep 0.6; cat /proc/1/comm; cat /proc/[0-9]*/stat | grep -c ') Z ' || true"])
    expect(r.stdout.toString(), text(r)).toBe("init\n0\n")
  })

  it("[R4] 50 MiB of binary output arrive intact", async () => {
    const file = path.join(fixtures, "random.bin")
    const bytes = randomBytes(50 * 1024 * 1024)
    await fs.writeFile(file, bytes)
    const r = await run(["--mount", `${file}:/random.bin:ro`, image(), "cat", "/random.bin"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.length).toBe(bytes.length)
    expect(sha256(r.stdout)).toBe(sha256(bytes))
  })

  it("[R4] -i passes standard input through; without it the process reads none", async () => {
    const piped = await run(["-i", image(), "cat"], { stdin: "through stdin\n" })
    expect(piped.stdout.toString(), text(piped)).toBe("through stdin\n")
    const closed = await run([image(), "cat"], { stdin: "not for the process\n" })
    expect(closed.code, text(closed)).toBe(0)
    expect(closed.stdout.toString()).toBe("")
  })

  it("[R4] -t gives the process a terminal; without -t it has none; -t without a terminal is a usage error", async () => {
    const session = spawnPty(process.execPath, [binPath, "run", "-t", image(), "sh", "-c", "test -t 0 && test -t 1 && echo has a terminal; exit 5"], { env: { HOME: home } })
    const { code, output } = await session.exited
    expect(output).toContain("has a terminal")
    expect(code).toBe(5)
    const piped = await run([image(), "sh", "-c", "test -t 1 || echo no terminal"])
    expect(piped.stdout.toString()).toBe("no terminal\n")
    const refused = await run(["-t", image(), "true"])
    expect(refused.code, text(refused)).toBe(2)
    expect(refused.stderr).toMatch(/^error: -t needs a terminal on standard input$/m)
  })

  it("[R5] --keep keeps the scratch folder and says where; the runtime state and mounts go all the same", async () => {
    const r = await run(["--keep", "-u", "0", image(), "sh", "-c", "echo kept > /kept.txt"])
    expect(r.code, text(r)).toBe(0)
    const kept = /^kept (\S+) /m.exec(r.stderr)?.[1]
    expect(kept, text(r)).toBeDefined()
    expect(await fs.readFile(path.join(kept!, "upper", "kept.txt"), "utf8")).toBe("kept\n")
    expect(JSON.parse(await fs.readFile(path.join(kept!, "bundle", "config.json"), "utf8"))).toHaveProperty("process")
    const left = await leftovers(home)
    expect({ ...left, folders: [] }).toEqual(nothingLeft)
    await fs.rm(kept!, { recursive: true })
  })
})

describe("[R6] secrets", () => {
  const value = (label: string) => `${label}-${randomBytes(12).toString("hex")}`

  it("[R6] env:, file: and dotenv: arrive as /run/secrets/NAME, 0400, owned by the process's user, exactly the bytes", async () => {
    const secrets = { env: value("env"), file: value("file"), dotenv: value("dotenv") }
    const file = path.join(fixtures, "token.txt")
    await fs.writeFile(file, `${secrets.file}\n`)
    const dotenv = path.join(fixtures, ".env")
    await fs.writeFile(dotenv, `# settings\nOTHER=1\nDB_PASSWORD="${secrets.dotenv}"\n`)
    const r = await run([
      "--secret", "A=env:SECRET_A", "--secret", `B=file:${file}`, "--secret", `C=dotenv:${dotenv}#DB_PASSWORD`,
      image(), "sh", "-c", "cat /run/secrets/A; echo; cat /run/secrets/B; cat /run/secrets/C; echo; ls -ln /run/secrets"
    ], { env: { SECRET_A: secrets.env } })
    expect(r.code, text(r)).toBe(0)
    const [a, b, c, , ...listing] = r.stdout.toString().split("\n")
    expect([a, b, c]).toEqual([secrets.env, secrets.file, secrets.dotenv])
    for (const name of ["A", "B", "C"]) expect(listing.find((l) => l.endsWith(` ${name}`)), listing.join("\n")).toMatch(/^-r-------- +1 1000 +1000 /)
    expect(r.stderr.match(/^warning: secret scheme "(env|file|dotenv)" is plaintext$/gm)).toHaveLength(3)
  })

  it("[R6] the value reaches no command line, config.json, bundle, store, log, --json or stderr", async () => {
    const secret = value("never-stored")
    let child: import("node:child_process").ChildProcess | undefined
    const pending = run(["--keep", "--json", "--secret", "TOKEN=env:TOKEN", image(), "sh", "-c", "test -s /run/secrets/TOKEN && sleep 2"], {
      env: { TOKEN: secret },
      started: (c) => void (child = c)
    })
    await eventually(async () => (await leftovers(home)).runtime.length === 1)
    const cmdlines: Array<string> = []
    for (const pid of await fs.readdir("/proc")) {
      if (/^\d+$/.test(pid)) cmdlines.push(await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => ""))
    }
    expect(child).toBeDefined()
    expect(cmdlines.filter((c) => c.includes(secret))).toEqual([])
    const r = await pending
    expect(r.code, text(r)).toBe(0)
    expect(r.stdout.toString()).not.toContain(secret)
    expect(r.stderr).not.toContain(secret)
    const kept = JSON.parse(r.stdout.toString()).kept as string
    const everything = await fs.readdir(path.join(home, ".microagent"), { recursive: true, withFileTypes: true })
    for (const entry of everything.filter((e) => e.isFile())) {
      const content = await fs.readFile(path.join(entry.parentPath, entry.name))
      expect(content.includes(Buffer.from(secret)), path.join(entry.parentPath, entry.name)).toBe(false)
    }
    await fs.rm(kept, { recursive: true })
  })

  it("[R6][E10] a reference that does not resolve fails before anything starts: exit 1, naming it, never a value", async () => {
    const r = await run(["--secret", "API=env:NOT_SET_ANYWHERE", image(), "true"])
    expect(r.code, text(r)).toBe(1)
    expect(r.stderr).toMatch(/^error: .*API.*env/m)
    expect(r.stdout.length).toBe(0)
    const dotenv = path.join(fixtures, "partial.env")
    await fs.writeFile(dotenv, "PRESENT=do-not-print-me\n")
    const missingKey = await run(["--secret", `X=dotenv:${dotenv}#ABSENT`, image(), "true"])
    expect(missingKey.code).toBe(1)
    expect(missingKey.stderr).not.toContain("do-not-print-me")
  })
})
