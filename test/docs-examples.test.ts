/**
 * Every shell example of README.md and docs/*.md, run against a real registry, so the docs cannot
 * drift from the program (issue 4).
 *
 * The convention the pages follow (stated in README.md, "Examples in this documentation"):
 * - a shell example is a ```sh block of plain commands (no `$ ` prompts); it must exit 0, or N
 *   when its info string says `exit=N`;
 * - examples talk to the registry named by `$REGISTRY`, as `$REGISTRY_USER` with the password in
 *   `$REGISTRY_PASSWORD`; `$REGISTRY/demo/app:1.0` (one image), `$REGISTRY/demo/multi:1.0`
 *   (linux/amd64 and linux/arm64/v8) and `$REGISTRY/demo/busybox:1.0` (a shell, user `app`, for
 *   `run`) are there from the start;
 * - output samples are ```text or ```console blocks, and are not run.
 *
 * Here `$REGISTRY` is a CNCF distribution registry with htpasswd auth on a free loopback port.
 * Each page gets a fresh HOME, which is also the working directory of its examples; the examples
 * of one page run in order in it (so a login precedes the pulls that need it), each in its own
 * `bash -euo pipefail`, with only PATH (plus a `microagent` that runs dist/bin.cjs) and the three
 * variables above in the environment. Pages run concurrently.
 *
 * Blocks not run as written: README's `sh quickstart` (it installs Debian packages; .ci/run does
 * those steps), docs/performance.md's `sh bench` (a ten-minute benchmark), and `sh install`
 * blocks, which run in the repository with a stand-in for npm that checks the script or file each
 * npm command needs and changes nothing (npm ci and the build have run before the tests).
 */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Block, extractBlocks, firstCommand } from "./support/docBlocks.js"
import { binPath } from "./support/cli.js"
import { makeImage, makeIndex, skopeoPush } from "./support/images.js"
import { buildBusyboxImage } from "./support/layouts.js"
import { type RegistryHandle, startRegistry } from "./support/registry.js"

const root = fileURLToPath(new URL("..", import.meta.url))

const pages = [
  "README.md",
  ...readdirSync(path.join(root, "docs")).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`)
]

const blocksOf = new Map(pages.map((page) => [page, extractBlocks(readFileSync(path.join(root, page), "utf8"))]))

/** Languages a fenced block may name. A shell example is `sh`, never `bash` or a bare fence, so none escapes the test. */
const LANGUAGES = new Set(["sh", "text", "console", "json", "ts"])

/** `sh` blocks that are not run, where they may appear, and why. */
const NOT_RUN: Record<string, { readonly page: string; readonly why: string }> = {
  quickstart: { page: "README.md", why: "installs Debian packages as root; .ci/run does the same steps" },
  bench: { page: "docs/performance.md", why: "runs the ten-minute benchmark" }
}

type Kind = "run" | "install" | "skip"

const kindOf = (block: Block): Kind =>
  block.tags.some((t) => t in NOT_RUN) ? "skip" : block.tags.includes("install") ? "install" : "run"

const shellBlocks = (page: string) => (blocksOf.get(page) ?? []).filter((b) => b.language === "sh")

const USER = "docs-user"
const PASSWORD = `pw-${randomBytes(6).toString("hex")}`
const BLOCK_TIMEOUT_MS = 30_000

interface Outcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

let registry: RegistryHandle | undefined
let work = ""
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

beforeAll(async () => {
  await fs.access(binPath).catch(() => {
    throw new Error("dist/bin.cjs is missing: run `npm run build` first")
  })
  work = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-docs-examples-")))
  registry = await startRegistry({ mode: "htpasswd", users: { [USER]: PASSWORD } })
  const creds = { user: USER, password: PASSWORD }
  const [app, multi, busybox] = await Promise.all([
    makeImage({ dir: path.join(work, "fixtures/app"), tag: "1.0", layers: [64 * 1024, 512 * 1024] }),
    makeIndex({ dir: path.join(work, "fixtures/multi"), tag: "1.0" }),
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

for (const page of pages) {
  const blocks = shellBlocks(page).filter((b) => kindOf(b) !== "skip")
  if (blocks.length === 0) continue
  describe(page, () => {
    for (const block of blocks) {
      const expected = block.exit
      it(`line ${block.line}: ${firstCommand(block)}${expected === 0 ? "" : ` (exit ${expected})`}`, async () => {
        const outcome = outcomes.get(key(page, block))
        expect(outcome, "the example was not started (see beforeAll)").toBeDefined()
        const { code, stderr, stdout } = await outcome!
        expect(
          code,
          `${page}:${block.line} exited ${code}, expected ${expected}\n--- example ---\n${block.body}--- stdout ---\n${stdout}--- stderr ---\n${stderr}`
        ).toBe(expected)
      })
    }
  })
}
