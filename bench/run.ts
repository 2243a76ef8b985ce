// The microagent benchmark (issues 5 and 14, docs/performance.md): microagent against skopeo, umoci
// and runc, side by side on this machine, against anonymous distribution registries on loopback.
//
//   npm run bench                                  # build, then every case at full size
//   npm run bench -- --quick                       # tiny sizes, 1 run, every case: a smoke test
//   npx tsx bench/run.ts --only pull4,push4 --runs 3 --out bench-results/
//   npx tsx bench/run.ts --only rootfs             # the rootfs cases only (bench/rootfs.ts): no registry, as root
//   npx tsx bench/run.ts --only run                # the run cases only (bench/run-cases.ts): as root
//
// The CLI is MICROAGENT_DIST's bin.cjs when that is set, else dist/bin.cjs. Each case: one warm-up
// run of every contender (none with --quick), then --runs runs with the contenders' order rotated
// each time; medians are reported. Wall time is measured here around `/usr/bin/time -f "%e %M"`,
// which gives the peak resident set (KiB) of each process.
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { binPath } from "../test/support/cli.js"
import { CASE_IDS, CASES, type CaseId, defaultCases, GROUPS, isCaseId, PACKAGES } from "./cases.js"
import type { Bench, Options } from "./context.js"
import { beginWork, endWork, fail, formatSize, log, runCase } from "./harness.js"
import { BUSYBOX, GiB, MiB } from "./images.js"
import { registryCases, seedImages, startBenchRegistry, stopRegistries } from "./registry-cases.js"
import { Table } from "./report.js"
import { rootfsCases } from "./rootfs.js"
import { runCases } from "./run-cases.js"
import { startupCase } from "./startup.js"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

const USAGE = `usage: npm run bench -- [options]   (or: npx tsx bench/run.ts [options], after npm run build)
  --size <n>          image size (default 1GiB; K/M/G are binary: 1G = 1GiB)
  --layers <n>        layers of the multi-layer image (default 4)
  --small <n>         single-layer image of the memory comparison and the copy case (default 256MiB)
  --runs <n>          timed runs per case, after one warm-up (default 5)
  --startup-runs <n>  timed runs of the start-up case (default 15)
  --only <ids>        comma-separated subset of: ${CASE_IDS.join(", ")}
                      (rootfs: all rootfs cases; run: all run cases)
  --out <path>        results file, or a directory to write <date>-<commit>.md into
                      (default: <os tmpdir>/microagent-bench/)
  --quick             smoke test of every case: --size 4MiB --small 1MiB --runs 1 --startup-runs 1,
                      no warm-up, a hundredth of the small files`

// ---------------------------------------------------------------------------------------------
// Options

const parseFlags = () => {
  try {
    return parseArgs({
      options: {
        size: { type: "string" },
        layers: { type: "string" },
        small: { type: "string" },
        runs: { type: "string" },
        "startup-runs": { type: "string" },
        only: { type: "string" },
        out: { type: "string" },
        quick: { type: "boolean" },
        help: { type: "boolean", short: "h" }
      }
    }).values
  } catch (error) {
    return fail(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`)
  }
}
const flags = parseFlags()
if (flags.help === true) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}

const parseSize = (text: string): number => {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim())
  if (match === null) return fail(`not a size: ${text} (try 1GiB, 256MiB, 65536)`)
  const unit = { "": 1, k: 2 ** 10, m: MiB, g: GiB }[match[2]!.toLowerCase()] ?? 1
  const bytes = Math.round(Number(match[1]) * unit)
  return bytes < 1 || bytes >= 8 * GiB ? fail(`size out of range (1 B to 8 GiB): ${text}`) : bytes
}
const parseCount = (text: string, name: string): number =>
  /^[1-9]\d*$/.test(text) ? Number(text) : fail(`--${name} must be a positive integer: ${text}`)

const quick = flags.quick === true
// The rootfs and run cases run as root: without it, a run of every case leaves them out (and says so).
const asRoot = process.getuid?.() === 0
const parseOnly = (text: string): ReadonlyArray<CaseId> => {
  const named = text.split(",").map((id) => id.trim()).flatMap((id) => GROUPS[id] ?? [id])
  const unknown = named.filter((id) => !isCaseId(id))
  if (unknown.length > 0) fail(`unknown case ${unknown.join(", ")}; cases: ${CASE_IDS.join(", ")}, or rootfs / run for all rootfs / run cases`)
  return CASE_IDS.filter((id) => named.includes(id))
}
const options: Options = {
  only: flags.only === undefined ? defaultCases(asRoot) : parseOnly(flags.only),
  size: parseSize(flags.size ?? (quick ? "4MiB" : "1GiB")),
  layers: parseCount(flags.layers ?? "4", "layers"),
  small: parseSize(flags.small ?? (quick ? "1MiB" : "256MiB")),
  rounds: { runs: parseCount(flags.runs ?? (quick ? "1" : "5"), "runs"), warmups: quick ? 0 : 1 },
  startupRuns: parseCount(flags["startup-runs"] ?? (quick ? "1" : "15"), "startup-runs"),
  quick,
  bin: binPath
}
const needs = (...ids: ReadonlyArray<CaseId>): boolean => ids.some((id) => options.only.includes(id))

// ---------------------------------------------------------------------------------------------
// Tools

const isExecutable = (file: string): boolean => {
  const stat = fs.statSync(file, { throwIfNoEntry: false })
  return stat?.isFile() === true && (stat.mode & 0o111) !== 0
}
const onPath = (command: string): boolean => (process.env["PATH"] ?? "").split(":").some((dir) => dir !== "" && isExecutable(path.join(dir, command)))

const checkTools = (): void => {
  const tools = [...new Set(options.only.flatMap((id) => CASES[id].tools))]
  const missing = [
    ...tools.map((command) => [PACKAGES[command] ?? command, onPath(command)] as const),
    ...(needs("run-warm", "run-cold") ? [["busybox-static", isExecutable(BUSYBOX)] as const] : []),
    ["time", /GNU/.test(spawnSync("/usr/bin/time", ["--version"], { encoding: "utf8" }).stdout ?? "")] as const
  ].filter(([, found]) => !found).map(([pkg]) => pkg)
  if (missing.length > 0) {
    fail(`missing Debian package${missing.length > 1 ? "s" : ""} ${missing.join(", ")} ` +
      `(${tools.join(", ")} on PATH, ${needs("run-warm", "run-cold") ? `${BUSYBOX}, ` : ""}GNU time as /usr/bin/time); install with:\n` +
      `  apt-get install -y ${missing.join(" ")}`)
  }
  if (!asRoot && options.only.some((id) => CASES[id].root)) {
    fail("the rootfs and run cases run as root (umoci unpack without --rootless, microagent applying owners, runc): run as root, or leave them out with --only")
  }
  if (!fs.existsSync(options.bin)) fail(`${path.relative(ROOT, options.bin)} is missing: run npm run build (npm run bench does)`)
}

const firstLine = (command: string, args: ReadonlyArray<string>): string => {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0]!.trim()
  } catch {
    return "unknown"
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const git = (...args: ReadonlyArray<string>): string | undefined => {
  try {
    return execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}
const commit = (): string => {
  const sha = git("rev-parse", "--short", "HEAD") ?? "nogit"
  return git("status", "--porcelain", "--untracked-files=no") ? `${sha}-dirty` : sha
}
const stamp = new Date()

const resultsFile = async (): Promise<string> => {
  const name = `${stamp.toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}-${commit()}.md`
  if (flags.out === undefined) return path.join(os.tmpdir(), "microagent-bench", name)
  const out = path.resolve(flags.out)
  const isDir = flags.out.endsWith("/") || (await fsp.stat(out).catch(() => undefined))?.isDirectory() === true
  return isDir ? path.join(out, name) : out
}

const render = (table: Table, elapsed: number, loadAtStart: number, notes: ReadonlyArray<string>): string => {
  const cpus = os.cpus()
  const registryCases = options.only.some((id) => CASES[id].registry)
  const machine = [
    `${cpus.length} × ${cpus[0]?.model.trim() ?? "unknown CPU"}`,
    `${(os.totalmem() / GiB).toFixed(1)} GiB RAM`,
    `${os.type()} ${os.release()}`,
    `Node ${process.version}`,
    ...(registryCases
      ? [
        firstLine("skopeo", ["--version"]),
        firstLine("docker-registry", ["--version"]).replace(/^docker-registry github.com\/docker\//, "registry: ")
      ]
      : []),
    ...(needs("pull4", "pull1", "pull-small") ? [firstLine("curl", ["--version"]).split(" ").slice(0, 2).join(" ")] : []),
    ...(options.only.some((id) => CASES[id].root) ? [firstLine("umoci", ["--version"])] : [])
  ]
  const { runs } = options.rounds
  return [
    `## microagent benchmark, ${stamp.toISOString().replace(/\.\d+Z$/, "Z")}, commit ${commit()}`,
    "",
    `- machine: ${machine.join(", ")}`,
    ...(registryCases
      ? [`- image: ${formatSize(options.size)} in ${options.layers} layers and in 1 layer, a ${formatSize(options.small)} layer for the memory comparison and the copy; ` +
        `layers are gzip'd (level 0) tars of random bytes, distribution registries on loopback (anonymous, filesystem storage in ${os.tmpdir()}); ` +
        "copy is from one registry to another"]
      : []),
    // Node parses this file at every start, before any script runs (~40 ms for Debian's bundle of
    // CA certificates): it weighs on `node -e 0` and on every contender alike.
    ...(process.env["NODE_EXTRA_CA_CERTS"]
      ? [`- NODE_EXTRA_CA_CERTS is set (${process.env["NODE_EXTRA_CA_CERTS"]}): every Node process, \`node -e 0\` included, loads it as it starts`]
      : []),
    ...notes.map((note) => `- ${note}`),
    `- ${runs} timed run${runs > 1 ? "s" : ""} per case (${options.startupRuns} for start-up) after ${options.rounds.warmups === 0 ? "no" : "one"} warm-up, ` +
      `contenders alternating; medians of wall time; peak RSS is the largest of the timed runs; ratios are microagent ÷ the baseline` +
      `${quick ? "; **--quick: tiny sizes, targets apply to the full run only**" : ""}`,
    `- whole benchmark: ${Math.floor(elapsed / 60)} min ${Math.round(elapsed % 60)} s; 1-minute load average before it: ${loadAtStart.toFixed(2)}`,
    "",
    ...table.render()
  ].join("\n")
}

// ---------------------------------------------------------------------------------------------

const main = async () => {
  checkTools()
  const began = Date.now()
  const loadAtStart = os.loadavg()[0] ?? 0
  if (loadAtStart > os.cpus().length / 2) {
    log(`bench: warning: load average ${loadAtStart.toFixed(2)} on ${os.cpus().length} CPUs; other work on this machine skews the figures`)
  }
  if (!asRoot && flags.only === undefined) log("bench: not running as root: the rootfs and run cases are left out (they need root, as umoci unpack and runc do)")
  const work = await beginWork()
  const registry = options.only.some((id) => CASES[id].registry) ? await startBenchRegistry() : undefined
  log(`bench: ${registry === undefined ? "" : `registry on ${registry.host}, `}working in ${work}, CLI ${options.bin}`)

  const table = new Table()
  const bench: Bench = {
    ...options,
    table,
    needs,
    host: registry?.host,
    images: await seedImages(options, registry?.host),
    runCase: (id, contenders, runs = options.rounds.runs) => runCase(id, contenders, { ...options.rounds, runs })
  }
  await registryCases(bench)
  await startupCase(bench)
  const notes = [await rootfsCases(bench), await runCases(bench)].flatMap((note) => note ?? [])

  const elapsed = (Date.now() - began) / 1000
  const report = render(table, elapsed, loadAtStart, notes)
  process.stdout.write(report)
  const file = await resultsFile()
  await fsp.mkdir(path.dirname(file), { recursive: true })
  await fsp.writeFile(file, report)
  log(`bench: took ${Math.floor(elapsed / 60)} min ${Math.round(elapsed % 60)} s; results in ${file}`)
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exitCode = 1
}).finally(() => stopRegistries().finally(endWork))
