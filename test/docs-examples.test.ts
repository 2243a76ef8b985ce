/**
 * Every shell example of README.md and docs/*.md, run against a real registry, and the output
 * each page shows for it compared with what it printed, so the docs cannot drift from the program
 * (issues 4 and 13).
 *
 * The convention the pages follow (stated in README.md, "Examples in this documentation"):
 * - a shell example is a ```sh block of plain commands (no `$ ` prompts); it must exit 0, or N
 *   when its info string says `exit=N`;
 * - examples talk to the registry named by `$REGISTRY`, as `$REGISTRY_USER` with the password in
 *   `$REGISTRY_PASSWORD`; `$REGISTRY/demo/app:1.0` (one image), `$REGISTRY/demo/multi:1.0`
 *   (linux/amd64 and linux/arm64/v8) and `$REGISTRY/demo/busybox:1.0` (a shell, user `app`, for
 *   `run`) are there from the start; the first two are the same bytes in every run, so samples
 *   show their real digests and sizes;
 * - a ```text, ```console or ```json block that directly follows a run example (nothing but
 *   blank lines between) is that example's output, and must match what it printed: its stdout
 *   alone, or, when the sample shows messages too, its stderr followed by its stdout (the order a
 *   terminal shows one command's warnings, progress and errors, then its result; the two are read
 *   from separate pipes, which cannot say how they interleaved). Progress is in its non-terminal
 *   form, since the examples run without a terminal. Before comparing, what differs between runs
 *   is normalised: the registry's address is shown as `localhost:5000`, the home folder as
 *   `/home/me` (the user is `admin`, as the docs show it); durations (`in 0.3s`, `"durationMs"`)
 *   and RFC 3339 timestamps compare as placeholders; column padding as one gap (the real names
 *   are not as long as the shown ones); trailing spaces and blank lines are ignored. In a sample,
 *   `…` stands for any text within its line, and a line of only `…` for any number of lines. A
 *   sample with prose before it is an illustration (progress on a terminal, a prompt) and is not
 *   compared.
 *
 * Here `$REGISTRY` is a CNCF distribution registry with htpasswd auth on a free loopback port.
 * Each page gets a fresh HOME, which is also the working directory of its examples; the examples
 * of one page run in order in it (so a login precedes the pulls that need it), each in its own
 * `bash -euo pipefail`, with only PATH (plus a `microagent` that runs the built bin.cjs) and the
 * three variables above in the environment. Pages run concurrently against the one registry, so a
 * sample never shows what another page's examples change (the catalog shows them as `…`).
 *
 * Blocks not run as written: README's `sh quickstart` (it installs Debian packages; .ci/run does
 * those steps), docs/performance.md's `sh bench` (a ten-minute benchmark), and `sh install`
 * blocks, which run in the repository with a stand-in for npm that checks the script or file each
 * npm command needs and changes nothing (npm ci and the build have run before the tests). Their
 * samples are not compared.
 */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type Block,
  extractBlocks,
  firstCommand,
  matchesSample,
  normaliseOutput,
  normaliseSample,
  SAMPLE_LANGUAGES,
  sampleAfter
} from "./support/docBlocks.js"
import { binPath } from "./support/cli.js"
import { addRef, MEDIA_TYPES, type Platform, skopeoPush, writeJsonBlob } from "./support/images.js"
import { buildBusyboxImage, buildLayout, type BuiltLayout, type LayerSpec } from "./support/layouts.js"
import { type RegistryHandle, startRegistry } from "./support/registry.js"
import { repeatedContent } from "./support/tar.js"

const root = fileURLToPath(new URL("..", import.meta.url))

const pages = [
  "README.md",
  ...readdirSync(path.join(root, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)
]

const blocksOf = new Map(pages.map((page) => [page, extractBlocks(readFileSync(path.join(root, page), "utf8"))]))

/** Languages a fenced block may name. A shell example is `sh`, never `bash` or a bare fence, so none escapes the test. */
const LANGUAGES = new Set(["sh", "ts", ...SAMPLE_LANGUAGES])

/** `sh` blocks that are not run, where they may appear, and why. */
const NOT_RUN: Record<string, { readonly page: string; readonly why: string }> = {
  quickstart: { page: "README.md", why: "installs Debian packages as root; .ci/run does the same steps" },
  bench: { page: "docs/performance.md", why: "runs the ten-minute benchmark" }
}

type Kind = "run" | "install" | "skip"

const kindOf = (block: Block): Kind =>
  block.tags.some((t) => t in NOT_RUN) ? "skip" : block.tags.includes("install") ? "install" : "run"

const shellBlocks = (page: string) => (blocksOf.get(page) ?? []).filter((b) => b.language === "sh")

/** The user the docs show, so no column of theirs needs another width for it. */
const USER = "admin"
const PASSWORD = `pw-${randomBytes(6).toString("hex")}`
const BLOCK_TIMEOUT_MS = 30_000

interface Outcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

let registry: RegistryHandle | undefined
let work = ""
const homes = new Map<string, string>()
const outcomes = new Map<string, Promise<Outcome>>()
const key = (page: string, block: Block) => `${page}:${block.line}`

/** Runs `script` with bash in `cwd`, with exactly `env`; never rejects. */
const runBash = (script: string, cwd: string, env: Record<string, string>): Promise<Outcome> =>
  new Promise((resolve) => {
    const child = spawn("bash", ["-euo", "pipefail", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout.on("data", (c: Buffer) => out.push(c))
    child.stderr.on("data", (c: Buffer) => err.push(c))
    const timer = setTimeout(() => {
      err.push(Buffer.from(`\n[killed after ${BLOCK_TIMEOUT_MS} ms]\n`))
      try {
        process.kill(-child.pid!, "SIGKILL")
      } catch {
        // already gone
      }
    }, BLOCK_TIMEOUT_MS)
    const done = (code: number | null) => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") })
    }
    child.on("error", (e) => {
      err.push(Buffer.from(String(e)))
      done(null)
    })
    child.on("close", (code) => done(code))
  })

const executable = async (file: string, text: string) => {
  await fs.writeFile(file, text)
  await fs.chmod(file, 0o755)
}

/** Starts the examples of every page: pages concurrently, the blocks of one page in order. */
const startPages = async (host: string) => {
  const bin = path.join(work, "bin")
  const npmBin = path.join(work, "npm-bin")
  await fs.mkdir(bin)
  await fs.mkdir(npmBin)
  await executable(path.join(bin, "microagent"), `#!/bin/sh\nexec "${process.execPath}" "${binPath}" "$@"\n`)
  await executable(
    path.join(npmBin, "npm"),
    [
      "#!/bin/sh",
      "# Stands in for npm in `sh install` examples: checks what each command needs, changes nothing.",
      "case \"$1\" in",
      "  ci) test -f package-lock.json ;;",
      "  link) node -e 'process.exit(require(\"./package.json\").bin?.microagent ? 0 : 1)' ;;",
      "  run) node -e 'process.exit(require(\"./package.json\").scripts?.[process.argv[1]] ? 0 : 1)' \"$2\" ;;",
      "  *) echo \"npm $*: not expected in an install example\" >&2; exit 1 ;;",
      "esac",
      ""
    ].join("\n")
  )
  for (const page of pages) {
    const home = path.join(work, "home", page.replace(/[/.]/g, "-"))
    await fs.mkdir(home, { recursive: true })
    homes.set(page, home)
    let previous: Promise<unknown> = Promise.resolve()
    for (const block of shellBlocks(page)) {
      const kind = kindOf(block)
      if (kind === "skip") continue
      const script = path.join(work, "scripts", `${page.replace(/[/.]/g, "-")}-${block.line}.sh`)
      await fs.mkdir(path.dirname(script), { recursive: true })
      await fs.writeFile(script, block.body)
      const env = {
        PATH: [...(kind === "install" ? [npmBin] : []), bin, process.env["PATH"] ?? "/usr/bin:/bin"].join(":"),
        HOME: home,
        REGISTRY: host,
        REGISTRY_USER: USER,
        REGISTRY_PASSWORD: PASSWORD
      }
      const outcome = previous.then(() => runBash(script, kind === "install" ? root : home, env))
      outcomes.set(key(page, block), outcome)
      previous = outcome
    }
  }
}

/*
 * demo/app and demo/multi are the same bytes in every run, so the docs show their real digests and
 * sizes: fixed content and dates, and uncompressed layers (gzip's output may differ between zlib
 * builds and CPUs; skopeo pushes them as they are). demo/busybox holds this machine's busybox, and
 * its samples leave its digest out (`sha256:…`).
 */
const layer = (entries: LayerSpec["entries"]): LayerSpec => ({ entries, compression: "none" })

const buildApp = (dir: string) =>
  buildLayout(dir, {
    tag: "1.0",
    platform: { os: "linux", architecture: "amd64" },
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_MODE=demo"],
      Cmd: ["/usr/bin/app"],
      ExposedPorts: { "8080/tcp": {} },
      Labels: { "org.opencontainers.image.title": "demo app" }
    },
    layers: [
      layer([{ name: "etc/", type: "dir" }, { name: "etc/app.conf", content: "mode=demo\n" }]),
      layer([{ name: "usr/", type: "dir" }, { name: "usr/bin/", type: "dir" }, { name: "usr/bin/app", content: repeatedContent(256 * 1024), mode: 0o755 }])
    ]
  })

const buildMulti = async (dir: string) => {
  const platforms: ReadonlyArray<Platform> = [{ os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm64", variant: "v8" }]
  const children: Array<BuiltLayout> = []
  for (const [i, platform] of platforms.entries()) {
    const name = [platform.os, platform.architecture, platform.variant].filter((p) => p !== undefined).join("/")
    children.push(
      await buildLayout(dir, {
        tag: name.replace(/\//g, "-"),
        platform,
        layers: [
          layer([{ name: "etc/", type: "dir" }, { name: "etc/platform", content: `${name}\n` }]),
          layer([{ name: "usr/", type: "dir" }, { name: "usr/bin/", type: "dir" }, { name: "usr/bin/app", content: repeatedContent(4096, 0x61 + i), mode: 0o755 }])
        ]
      })
    )
  }
  const index = await writeJsonBlob(dir, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: children.map((c) => ({ mediaType: c.manifestMediaType, digest: c.manifestDigest, size: c.manifestSize, platform: c.platform }))
  })
  await addRef(dir, "1.0", { mediaType: MEDIA_TYPES.index, ...index })
  return { dir, tag: "1.0" }
}

beforeAll(async () => {
  await fs.access(binPath).catch(() => {
    throw new Error("dist/bin.cjs is missing: run `npm run build` first")
  })
  work = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-docs-examples-")))
  registry = await startRegistry({ mode: "htpasswd", users: { [USER]: PASSWORD } })
  const creds = { user: USER, password: PASSWORD }
  const [app, multi, busybox] = await Promise.all([
    buildApp(path.join(work, "fixtures/app")),
    buildMulti(path.join(work, "fixtures/multi")),
    buildBusyboxImage(path.join(work, "fixtures/busybox"), { tag: "1.0" })
  ])
  await Promise.all([
    skopeoPush(app, { registry: registry.host, repository: "demo/app", creds }),
    skopeoPush(multi, { registry: registry.host, repository: "demo/multi", creds, all: true }),
    skopeoPush(busybox, { registry: registry.host, repository: "demo/busybox", creds })
  ])
  await startPages(registry.host)
}, 60_000)

afterAll(async () => {
  await Promise.allSettled(outcomes.values())
  await registry?.stop()
  if (work !== "") await fs.rm(work, { recursive: true, force: true })
})

describe("the docs' code blocks follow the convention", () => {
  it.each(pages)("%s: every block names its language; shell examples are sh, without prompts", (page) => {
    for (const block of blocksOf.get(page) ?? []) {
      const where = `${page}:${block.line} (\`\`\`${block.info})`
      expect(LANGUAGES.has(block.language), `${where}: use one of ${[...LANGUAGES].join(", ")}`).toBe(true)
      if (block.language !== "sh") continue
      for (const tag of block.tags) {
        const allowed = tag === "install" || NOT_RUN[tag]?.page === page
        expect(allowed, `${where}: unknown tag "${tag}"`).toBe(true)
      }
      if (block.info.includes("exit=")) expect(Number.isInteger(block.exit) && block.exit > 0, `${where}: exit=N needs a whole N > 0`).toBe(true)
      expect(block.body.split("\n").filter((l) => l.startsWith("$ ")), `${where}: write plain commands, no "$ " prompts`).toEqual([])
      expect(block.body.trim(), `${where}: empty example`).not.toBe("")
    }
  })

  it("only README's quick start (run by CI) and the benchmark are left out", () => {
    const skipped = pages.flatMap((page) => shellBlocks(page).filter((b) => kindOf(b) === "skip").map((b) => `${page}:${b.tags.join(" ")}`))
    expect(skipped.every((s) => s === "README.md:quickstart" || s === "docs/performance.md:bench")).toBe(true)
    expect(skipped).toContain("README.md:quickstart")
  })
})

describe("an output sample is compared with what its example printed", () => {
  const names = { registry: "127.0.0.1:41234", home: "/tmp/scratch/home/page" }
  const check = (printed: string, sample: string) => matchesSample(normaliseOutput(printed, names), normaliseSample(sample))

  it("as the docs name the registry and the home folder, with columns padded loosely", () => {
    expect(check("127.0.0.1:41234  admin  /tmp/scratch/home/page/.microagent/auth.json\n", "localhost:5000  admin  /home/me/.microagent/auth.json\n")).toBe(true)
    expect(check("127.0.0.1:41234  admin  /tmp/scratch/home/page/.microagent/auth.json\n", "localhost:5000  me  /home/me/.microagent/auth.json\n")).toBe(false)
  })

  it("with durations and timestamps as placeholders, and digests exact", () => {
    const printed = "pulled sha256:9ae6: 2.5 KiB moved (1 blob), in 0.7s\n{\"durationMs\":412,\"at\":\"2026-12-01T01:38:20Z\"}\n"
    expect(check(printed, "pulled sha256:9ae6: 2.5 KiB moved (1 blob), in 12ms\n{\"durationMs\":3,\"at\":\"2025-06-01T09:30:00Z\"}\n")).toBe(true)
    expect(check(printed.replace("9ae6", "9ae7"), "pulled sha256:9ae6: 2.5 KiB moved (1 blob), in 0.7s\n{\"durationMs\":412,\"at\":\"2026-12-01T01:38:20Z\"}\n")).toBe(false)
  })

  it("where `…` stands for text within a line, or a line of `…` for any lines", () => {
    expect(check("hello from 9d1396130bae\nexit code 3\n", "hello from …\nexit code 3\n")).toBe(true)
    expect(check("hello from 9d1396130bae\nexit code 4\n", "hello from …\nexit code 3\n")).toBe(false)
    expect(check("demo/app\ndemo/multi\nops/app\nteam/app\n", "demo/app\n…\nops/app\n…\n")).toBe(true)
    expect(check("demo/app\nops/app\n", "demo/app\n…\nops/app\n…\n")).toBe(true)
    expect(check("demo/app\nteam/app\n", "demo/app\n…\nops/app\n…\n")).toBe(false)
  })
})

const failure = (page: string, block: Block, outcome: Outcome, expected: string) =>
  `${page}:${block.line} ${expected}\n--- example ---\n${block.body}--- stdout (exit ${outcome.code}) ---\n${outcome.stdout}--- stderr ---\n${outcome.stderr}`

for (const page of pages) {
  const all = blocksOf.get(page) ?? []
  const blocks = all.flatMap((block, i) => block.language === "sh" && kindOf(block) !== "skip" ? [{ block, sample: sampleAfter(all, i) }] : [])
  if (blocks.length === 0) continue
  describe(page, () => {
    for (const { block, sample } of blocks) {
      const expected = block.exit
      const outcome = () => {
        const started = outcomes.get(key(page, block))
        expect(started, "the example was not started (see beforeAll)").toBeDefined()
        return started!
      }
      it(`line ${block.line}: ${firstCommand(block)}${expected === 0 ? "" : ` (exit ${expected})`}`, async () => {
        const done = await outcome()
        expect(done.code, failure(page, block, done, `exited ${done.code}, expected ${expected}`)).toBe(expected)
      })
      if (sample === undefined || block.tags.includes("install")) continue
      it(`line ${block.line}: prints what line ${sample.line} shows`, async () => {
        const done = await outcome()
        const names = { registry: registry!.host, home: homes.get(page)! }
        const shown = normaliseSample(sample.body)
        const stdout = normaliseOutput(done.stdout, names)
        const both = normaliseOutput(done.stderr + done.stdout, names)
        if (matchesSample(stdout, shown) || matchesSample(both, shown)) return
        // For a readable diff (where the sample's `…` show as they are), the reading the sample
        // seems to mean: with stderr when it shows one of stderr's lines.
        const stderrLines = new Set(normaliseOutput(done.stderr, names).split("\n").filter((l) => l !== ""))
        const meant = shown.split("\n").some((l) => stderrLines.has(l)) ? both : stdout
        expect(meant, failure(page, block, done, `printed other than line ${sample.line} shows`)).toBe(shown)
      })
    }
  })
}
