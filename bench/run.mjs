#!/usr/bin/env node
// The microagent benchmark (issue 5, docs/performance.md): microagent against skopeo, side by side on
// this machine, against one anonymous distribution registry on loopback. Plain Node, built-ins only.
//
//   npm run bench                      # build, then every case at full size
//   node bench/run.mjs --quick         # 64 MiB, 1 run: a smoke test
//   node bench/run.mjs --only pull4,push4 --runs 3 --out bench-results/
//   node bench/run.mjs --only rootfs   # the rootfs cases only (bench/rootfs.mjs): no registry, as root
//   node bench/run.mjs --only run      # the run cases only (bench/run-cases.mjs): as root
//
// Each case: one warm-up run of every contender, then --runs runs with the contenders' order rotated
// each time; medians are reported. Wall time is measured here around `/usr/bin/time -f "%e %M"`,
// which gives the peak resident set (KiB) of each process.
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { blobFile, BUSYBOX, GiB, makeImage, MEDIA, MiB } from "./images.mjs"
import { ROOTFS_CASES, rootfsCases } from "./rootfs.mjs"
import { RUN_CASES, RUN_PACKAGES, RUN_REGISTRY_CASES, RUN_TOOLS, runCases } from "./run-cases.mjs"

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const BIN = path.join(ROOT, "dist", "bin.cjs")
const NODE = process.execPath
const FLOOR = path.join(ROOT, "bench", "floor.mjs")

const REGISTRY_CASES = ["pull4", "pull1", "pull-small", "push4", "repull", "repush"]
const CASES = [...REGISTRY_CASES, "startup", ...ROOTFS_CASES, ...RUN_CASES]
/** Names for groups of cases in --only. */
const GROUPS = { rootfs: ROOTFS_CASES, run: RUN_CASES }
/** The cases that start the registry. */
const REGISTRY_USERS = [...REGISTRY_CASES, ...RUN_REGISTRY_CASES]
/** The cases that run as root. */
const ROOT_CASES = [...ROOTFS_CASES, ...RUN_CASES]

const USAGE = `usage: node bench/run.mjs [options]
  --size <n>          image size (default 1GiB; K/M/G are binary: 1G = 1GiB)
  --layers <n>        layers of the multi-layer image (default 4)
  --small <n>         single-layer image of the memory comparison (default 256MiB)
  --runs <n>          timed runs per case, after one warm-up (default 5)
  --startup-runs <n>  timed runs of the start-up case (default 15)
  --only <ids>        comma-separated subset of: ${CASES.join(", ")}
                      (rootfs: all rootfs cases; run: all run cases)
  --out <path>        results file, or a directory to write <date>-<commit>.md into
                      (default: <os tmpdir>/microagent-bench/)
  --quick             smoke test: --size 64MiB --small 16MiB --runs 1 --startup-runs 3`

// ---------------------------------------------------------------------------------------------
// Options

const fail = (message) => {
  process.stderr.write(`bench: ${message}\n`)
  process.exit(2)
}

let flags
try {
  flags = parseArgs({
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
  fail(`${error.message}\n${USAGE}`)
}
if (flags.help) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}

const parseSize = (text) => {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim())
  if (match === null) fail(`not a size: ${text} (try 1GiB, 256MiB, 65536)`)
  const bytes = Math.round(Number(match[1]) * { "": 1, k: 2 ** 10, m: MiB, g: GiB }[match[2].toLowerCase()])
  if (bytes < 1 || bytes >= 8 * GiB) fail(`size out of range (1 B to 8 GiB): ${text}`)
  return bytes
}
const parseCount = (text, name) => {
  if (!/^[1-9]\d*$/.test(text)) fail(`--${name} must be a positive integer: ${text}`)
  return Number(text)
}

const quick = flags.quick === true
const SIZE = parseSize(flags.size ?? (quick ? "64MiB" : "1GiB"))
const LAYERS = parseCount(flags.layers ?? "4", "layers")
const SMALL = parseSize(flags.small ?? (quick ? "16MiB" : "256MiB"))
const RUNS = parseCount(flags.runs ?? (quick ? "1" : "5"), "runs")
const STARTUP_RUNS = parseCount(flags["startup-runs"] ?? (quick ? "3" : "15"), "startup-runs")
// The rootfs and run cases run as root: without it, a run of every case leaves them out (and says so).
const asRoot = process.getuid() === 0
const ONLY = flags.only === undefined
  ? CASES.filter((id) => asRoot || !ROOT_CASES.includes(id))
  : flags.only.split(",").flatMap((id) => GROUPS[id.trim()] ?? [id.trim()])
for (const id of ONLY) if (!CASES.includes(id)) fail(`unknown case ${id}; cases: ${CASES.join(", ")}, or rootfs / run for all rootfs / run cases`)
const needs = (...ids) => ids.some((id) => ONLY.includes(id))

// ---------------------------------------------------------------------------------------------
// Tools

const isExecutable = (file) => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}
const onPath = (command) => (process.env.PATH ?? "").split(":").some((dir) => dir !== "" && isExecutable(path.join(dir, command)))

const checkTools = () => {
  const registryTools = needs(...REGISTRY_CASES) ? ["docker-registry", "skopeo", "curl", "openssl"]
    : needs(...RUN_REGISTRY_CASES) ? ["docker-registry", "skopeo"]
    : []
  const rootfsTools = [...new Set([...(needs(...ROOTFS_CASES) ? ["umoci"] : []), ...(needs(...RUN_CASES) ? RUN_TOOLS : [])])]
  const missing = [
    ...[...registryTools, ...rootfsTools].map((command) => [RUN_PACKAGES[command] ?? command, onPath(command)]),
    ...(needs(...RUN_CASES) ? [["busybox-static", isExecutable(BUSYBOX)]] : []),
    ["time", /GNU/.test(spawnSync("/usr/bin/time", ["--version"], { encoding: "utf8" }).stdout ?? "")]
  ].filter(([, found]) => !found).map(([pkg]) => pkg)
  if (missing.length > 0) {
    fail(`missing Debian package${missing.length > 1 ? "s" : ""} ${missing.join(", ")} ` +
      `(${[...registryTools, ...rootfsTools].join(", ")} on PATH, ${needs(...RUN_CASES) ? `${BUSYBOX}, ` : ""}GNU time as /usr/bin/time); install with:\n` +
      `  apt-get install -y ${missing.join(" ")}`)
  }
  if (rootfsTools.length > 0 && !asRoot) {
    fail("the rootfs and run cases run as root (umoci unpack without --rootless, microagent applying owners, runc): run as root, or leave them out with --only")
  }
  if (!fs.existsSync(BIN)) fail(`${path.relative(ROOT, BIN)} is missing: run npm run build (npm run bench does)`)
}

const firstLine = (command, args) => {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0].trim()
  } catch {
    return "unknown"
  }
}

// ---------------------------------------------------------------------------------------------
// Processes: everything started here is tracked and killed on the way out, even on Ctrl+C.

let work // the temp dir holding everything
let registry // the registry process
const running = new Set()

const killGroup = (child, signal) => {
  try {
    process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

const cleanup = () => {
  for (const child of running) killGroup(child, "SIGKILL")
  running.clear()
  if (registry !== undefined) killGroup(registry, "SIGKILL")
  registry = undefined
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  work = undefined
}
process.on("exit", cleanup)
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping the registry and removing the temp dir\n`)
    cleanup()
    process.exit(code)
  })
}

/** Runs a command in a process group of its own; resolves with its exit code and (capped) output. */
const exec = (command, args, options = {}) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, env: options.env ?? process.env })
    running.add(child)
    const output = { stdout: "", stderr: "" }
    for (const name of ["stdout", "stderr"]) {
      child[name].setEncoding("utf8")
      child[name].on("data", (text) => {
        if (output[name].length < 65536) output[name] += text
      })
    }
    child.on("error", (error) => {
      running.delete(child)
      reject(error)
    })
    child.on("close", (code, signal) => {
      running.delete(child)
      resolve({ code: code ?? 128, signal, ...output })
    })
  })

const check = async (command, args, options) => {
  const result = await exec(command, args, options)
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim()}`)
  }
  return result
}

/**
 * One timed process: wall seconds (measured here, to the microsecond; GNU time's %e has 10 ms steps),
 * peak RSS in bytes (%M) and CPU seconds, user + system (%U + %S); and its stdout (the first 64 KiB).
 */
const measure = async (argv, env) => {
  const timeFile = path.join(work, "time.out")
  const start = process.hrtime.bigint()
  const { stdout } = await check("/usr/bin/time", ["-f", "%e %M %U %S", "-o", timeFile, ...argv], { env })
  const wall = Number(process.hrtime.bigint() - start) / 1e9
  const [, rss, user, system] = fs.readFileSync(timeFile, "utf8").trim().split("\n").pop().split(/\s+/).map(Number)
  return { wall, rss: rss * 1024, cpu: user + system, stdout }
}

const timed = async (action) => {
  const start = process.hrtime.bigint()
  await action()
  return { wall: Number(process.hrtime.bigint() - start) / 1e9 }
}

let serial = 0
const fresh = (name) => path.join(work, `${name}-${++serial}`)
const remove = (target) => fsp.rm(target, { recursive: true, force: true })

/** A HOME of its own for one microagent run, holding an empty credential store. */
const freshHome = async () => {
  const home = fresh("home")
  await fsp.mkdir(path.join(home, ".microagent"), { recursive: true })
  await fsp.writeFile(path.join(home, ".microagent", "auth.json"), '{"auths":{}}\n')
  return home
}
const envWithHome = (home) => {
  const env = { ...process.env, HOME: home }
  delete env.REGISTRY_AUTH_FILE
  delete env.DOCKER_CONFIG
  return env
}

// ---------------------------------------------------------------------------------------------
// Registry

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

const startRegistry = async () => {
  const host = `127.0.0.1:${await freePort()}`
  const config = path.join(work, "registry.yml")
  await fsp.writeFile(config, [
    "version: 0.1",
    "log: { level: error, accesslog: { disabled: true } }",
    `storage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(work, "registry"))} } }`,
    `http: { addr: "${host}", secret: microagent-bench }`,
    ""
  ].join("\n"))
  const log = fs.openSync(path.join(work, "registry.log"), "w")
  registry = spawn("docker-registry", ["serve", config], { stdio: ["ignore", log, log], detached: true })
  fs.closeSync(log)
  let exited = false
  registry.on("exit", () => (exited = true))
  const until = Date.now() + 15_000
  for (;;) {
    try {
      if ((await fetch(`http://${host}/v2/`)).ok) return host
    } catch {
      // not up yet
    }
    if (exited || Date.now() > until) {
      throw new Error(`the registry did not start: ${fs.readFileSync(path.join(work, "registry.log"), "utf8").trim()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

// ---------------------------------------------------------------------------------------------
// Checks

/** Fails unless every blob of `image` is in the layout at `dir` with its size (a cheap check that a pull did its work). */
const checkLayout = async (dir, image, name = (digest) => blobFile(dir, digest)) => {
  for (const blob of image.blobs) {
    const stat = await fsp.stat(name(blob.digest)).catch(() => undefined)
    if (stat?.size !== blob.size) throw new Error(`${name(blob.digest)}: expected ${blob.size} bytes, found ${stat?.size ?? "no file"}`)
  }
}

/** Fails unless the registry serves `repository:tag` as the manifest of `image` (a cheap check that a push did its work). */
const checkPushed = async (host, repository, tag, image) => {
  const response = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, { method: "HEAD", headers: { accept: MEDIA.manifest } })
  const digest = response.headers.get("docker-content-digest")
  if (!response.ok || digest !== image.manifest) {
    throw new Error(`${repository}:${tag} in the registry is ${response.status} ${digest}, expected ${image.manifest}`)
  }
}

/**
 * Deletes a pushed repository and its blobs from the registry's storage, so fresh pushes do not pile
 * up on disk. Safe while the registry runs: it keeps no blob cache unless configured to, and nothing
 * else refers to these never-reused digests.
 */
const forget = async (repository, image) => {
  const root = path.join(work, "registry", "docker", "registry", "v2")
  await remove(path.join(root, "repositories", repository))
  for (const digest of [image.manifest, ...image.blobs.map((blob) => blob.digest)]) {
    const hex = digest.split(":")[1]
    await remove(path.join(root, "blobs", "sha256", hex.slice(0, 2), hex))
  }
}

// ---------------------------------------------------------------------------------------------
// Contenders: each run prepares (untimed), runs one timed command, checks the result and cleans up.

const SKOPEO = ["skopeo", "--insecure-policy", "copy"]
const SRC_FLAGS = ["--src-tls-verify=false", "--src-no-creds"]
// --preserve-digests: skopeo fails rather than change a layer or the manifest on the way, so both tools
// upload exactly the same bytes (checked after every push, as the digests are after every pull).
const DEST_FLAGS = ["--dest-tls-verify=false", "--dest-no-creds", "--preserve-digests"]

/** Runs `argv` with a fresh HOME holding an empty credential store, removed afterwards. */
const measureInFreshHome = async (argv) => {
  const home = await freshHome()
  try {
    return await measure(argv, envWithHome(home))
  } finally {
    await remove(home)
  }
}
const microagent = (args) => measureInFreshHome([NODE, BIN, ...args])
const skopeo = async (args) => {
  const home = fresh("home") // no containers auth or config from the machine's user
  await fsp.mkdir(home)
  try {
    return await measure([...SKOPEO, ...args], envWithHome(home))
  } finally {
    await remove(home)
  }
}

const pullContenders = (host, image) => {
  const ref = `${host}/${image.repository}:${image.tag}`
  /** A blob's file in a flat folder of blobs, as curl and the floor write them. */
  const flatFile = (out) => (digest) => path.join(out, digest.replace(":", "-"))
  /**
   * Runs `run(out)` into a fresh folder, checks that every blob landed there (in an OCI layout, or
   * `flat` as `sha256-<hex>` files) and removes the folder.
   */
  const into = (run, flat = false) => async () => {
    const out = fresh("pull")
    try {
      if (flat) await fsp.mkdir(out)
      const sample = await run(out)
      await checkLayout(out, image, flat ? flatFile(out) : undefined)
      return sample
    } finally {
      await remove(out)
    }
  }
  /** Every blob of the image fetched by `fetchOne(url, file, digest)`, at most 4 at once. */
  const blobsBy = (fetchOne) => into((out) => {
    const queue = [...image.blobs]
    return timed(() => Promise.all([1, 2, 3, 4].map(async () => {
      for (let blob; (blob = queue.shift()) !== undefined;) {
        await fetchOne(`http://${host}/v2/${image.repository}/blobs/${blob.digest}`, flatFile(out)(blob.digest), blob.digest)
      }
    })))
  }, true)
  return {
    microagent: into((out) => microagent(["pull", ref, "--output", out])),
    skopeo: into((out) => skopeo([...SRC_FLAGS, `docker://${ref}`, `oci:${out}:${image.tag}`])),
    // the blobs only, one curl per blob, at most 4 at once (microagent's default --jobs)
    curl: blobsBy((url, file) => check("curl", ["-sSf", "-o", file, url])),
    // the same, each blob also hashed on its way to disk by openssl, a process of its own (so on the other
    // core): what native tools need to download, hash and write, still without fsync
    "curl + openssl": blobsBy(async (url, file, digest) => {
      const { stdout } = await check("sh", ["-c", 'curl -sSf "$1" | tee "$2" | openssl dgst -sha256 -r', "sh", url, file])
      if (`sha256:${stdout.split(" ")[0]}` !== digest) throw new Error(`${url}: openssl computed ${stdout.trim()}`)
    }),
    // the same blobs through plain Node.js: GET, hash, write, fsync, rename (bench/floor.mjs)
    "node floor": into((out) => measure([NODE, FLOOR, host, image.repository, out, ...image.blobs.map((blob) => blob.digest)], process.env), true)
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

const formatSize = (bytes) =>
  bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : bytes >= MiB && bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} B`
const formatSeconds = (seconds) => (seconds === undefined ? "—" : seconds >= 1 ? `${seconds.toFixed(2)} s` : `${(seconds * 1000).toFixed(0)} ms`)
const formatRss = (bytes) => (bytes === undefined ? "—" : `${(bytes / MiB).toFixed(0)} MiB`)

const log = (text) => process.stderr.write(`${text}\n`)

/**
 * CPU seconds the registry has used so far (user + system, from /proc): what serving a run cost
 * it, on the same two cores as the client. Undefined where /proc does not tell.
 */
const registryCpu = () => {
  if (registry === undefined) return undefined
  try {
    const fields = fs.readFileSync(`/proc/${registry.pid}/stat`, "utf8").split(") ")[1].split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime, stime in clock ticks (USER_HZ, 100 on Linux)
  } catch {
    return undefined
  }
}

/** Warm-up, then `runs` runs with the contenders' order rotated each time; returns every sample. */
const runCase = async (id, contenders, runs) => {
  const names = Object.keys(contenders)
  const samples = Object.fromEntries(names.map((name) => [name, []]))
  for (let run = 0; run <= runs; run++) {
    const order = names.map((_, i) => names[(i + run) % names.length])
    for (const name of order) {
      execFileSync("sync") // start every run with nothing left to write back
      const before = registryCpu()
      const sample = await contenders[name]()
      const after = registryCpu()
      if (before !== undefined && after !== undefined) sample.registryCpu = after - before
      const label = run === 0 ? "warm-up" : `run ${run}/${runs}`
      log(`  ${id} ${label} ${name}: ${formatSeconds(sample.wall)}${sample.rss === undefined ? "" : `, CPU ${formatSeconds(sample.cpu)}, ${formatRss(sample.rss)}`}` +
        `${sample.registryCpu === undefined ? "" : `, registry CPU ${formatSeconds(sample.registryCpu)}`}`)
      if (run > 0) samples[name].push(sample)
    }
  }
  return samples
}

const main = async () => {
  checkTools()
  const began = Date.now()
  loadAtStart = os.loadavg()[0]
  if (loadAtStart > os.cpus().length / 2) {
    log(`bench: warning: load average ${loadAtStart.toFixed(2)} on ${os.cpus().length} CPUs; other work on this machine skews the figures`)
  }
  if (!asRoot && flags.only === undefined) log("bench: not running as root: the rootfs and run cases are left out (they need root, as umoci unpack and runc do)")
  work = await fsp.mkdtemp(path.join(os.tmpdir(), "microagent-bench-"))
  const host = needs(...REGISTRY_USERS) ? await startRegistry() : undefined
  log(host === undefined ? `bench: working in ${work}` : `bench: registry on ${host}, working in ${work}`)

  /** Pushes a layout made here to <host>/<ref>, untimed. */
  const push = (image, ref) => check(SKOPEO[0], [...SKOPEO.slice(1), ...DEST_FLAGS, `oci:${image.dir}:${image.tag}`, `docker://${host}/${ref}`])
  const seed = async (name, total, layers) => {
    const started = Date.now()
    const image = await makeImage(path.join(work, `image-${name}`), "v1", total, layers)
    await push(image, `bench/${name}:v1`)
    log(`bench: made and pushed bench/${name}:v1 (${formatSize(total)} in ${layers} layer${layers > 1 ? "s" : ""}) in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    return { ...image, repository: `bench/${name}` }
  }
  const multi = needs("pull4", "repull", "repush", ...RUN_REGISTRY_CASES) ? await seed("multi", SIZE, LAYERS) : undefined
  const single = needs("pull1") ? await seed("single", SIZE, 1) : undefined
  const small = needs("pull-small") ? await seed("small", SMALL, 1) : undefined

  const rows = []
  const layerWord = (n) => `${n} layer${n > 1 ? "s" : ""}`
  const add = (id, label, target, samples, verdict) => {
    const [, baselineName] = Object.keys(samples)
    const stat = (name, key, reduce) => (samples[name] === undefined ? undefined : reduce(samples[name].map((sample) => sample[key])))
    const row = {
      id,
      label,
      target,
      samples,
      baselineName,
      microagent: stat("microagent", "wall", median),
      baseline: stat(baselineName, "wall", median),
      curl: stat("curl", "wall", median),
      hashing: stat("curl + openssl", "wall", median),
      floor: stat("node floor", "wall", median),
      microagentRss: stat("microagent", "rss", (values) => Math.max(...values)),
      baselineRss: stat(baselineName, "rss", (values) => Math.max(...values))
    }
    row.ratio = row.baseline === undefined ? undefined : row.microagent / row.baseline
    row.met = verdict(row)
    rows.push(row)
  }
  const flatMemory = (row) => row.microagentRss <= 120 * MiB
  /** Peak RSS ≤ 120 MiB, and the larger case `bigId` (if it ran) took at most 25 % + 8 MiB more. */
  const flatAgainst = (bigId) => (row) => {
    const big = rows.find((other) => other.id === bigId)
    return flatMemory(row) && (big === undefined || big.microagentRss <= row.microagentRss * 1.25 + 8 * MiB)
  }
  const memoryTarget = "peak RSS ≤ 120 MiB"

  if (needs("pull4")) {
    log(`bench: pull4`)
    add("pull4", `pull ${formatSize(SIZE)}, ${layerWord(LAYERS)}, empty layout`,
      `≤ 0.5 × skopeo and ≤ 2 × curl; ${memoryTarget}`,
      await runCase("pull4", pullContenders(host, multi), RUNS),
      (row) => row.ratio <= 0.5 && row.microagent <= 2 * row.curl && flatMemory(row))
  }
  if (needs("pull1")) {
    log(`bench: pull1`)
    add("pull1", `pull ${formatSize(SIZE)}, 1 layer, empty layout`, `≤ 0.8 × skopeo; ${memoryTarget}`,
      await runCase("pull1", pullContenders(host, single), RUNS),
      (row) => row.ratio <= 0.8 && flatMemory(row))
  }
  if (needs("pull-small")) {
    log(`bench: pull-small`)
    add("pull-small", `pull ${formatSize(SMALL)}, 1 layer (memory comparison)`, `${memoryTarget}, as for the ${formatSize(SIZE)} layer`,
      await runCase("pull-small", pullContenders(host, small), RUNS),
      flatAgainst("pull1"))
  }
  if (needs("push4")) {
    log(`bench: push4`)
    // fresh random layers for every run of either tool, pushed to a repository of their own:
    // nothing to mount, nothing the registry has already seen
    const pushFresh = (tool) => async () => {
      const image = await makeImage(fresh("push-source"), "v1", SIZE, LAYERS)
      const repository = `bench/push-${tool}-${serial}`
      try {
        const sample = tool === "microagent"
          ? await microagent(["push", `oci:${image.dir}:v1`, `${host}/${repository}:v1`])
          : await skopeo([...DEST_FLAGS, `oci:${image.dir}:v1`, `docker://${host}/${repository}:v1`])
        await checkPushed(host, repository, "v1", image)
        await forget(repository, image)
        return sample
      } finally {
        await remove(image.dir)
      }
    }
    add("push4", `push ${formatSize(SIZE)}, ${layerWord(LAYERS)}, fresh blobs`, `≤ 0.8 × skopeo; ${memoryTarget}`,
      await runCase("push4", { microagent: pushFresh("microagent"), skopeo: pushFresh("skopeo") }, RUNS),
      (row) => row.ratio <= 0.8 && flatMemory(row))
  }
  if (needs("repull")) {
    log(`bench: repull`)
    // each tool pulls once into a layout of its own (untimed), then pulls again into it
    const ref = `${host}/${multi.repository}:v1`
    const layouts = { microagent: path.join(work, "repull-microagent"), skopeo: path.join(work, "repull-skopeo") }
    await microagent(["pull", ref, "--output", layouts.microagent])
    await skopeo([...SRC_FLAGS, `docker://${ref}`, `oci:${layouts.skopeo}:v1`])
    const again = (tool, run) => async () => {
      const sample = await run()
      await checkLayout(layouts[tool], multi)
      return sample
    }
    add("repull", `re-pull of the ${formatSize(SIZE)} image, already present`, `≤ 0.3 s; ${memoryTarget}`,
      await runCase("repull", {
        microagent: again("microagent", () => microagent(["pull", ref, "--output", layouts.microagent])),
        skopeo: again("skopeo", () => skopeo([...SRC_FLAGS, `docker://${ref}`, `oci:${layouts.skopeo}:v1`]))
      }, RUNS),
      (row) => row.microagent <= 0.3 && flatMemory(row))
  }
  if (needs("repush")) {
    log(`bench: repush`)
    const source = `oci:${multi.dir}:v1`
    const target = `${host}/${multi.repository}:v1`
    add("repush", `push of the ${formatSize(SIZE)} image, every blob already there`, `≤ 0.3 s; ${memoryTarget}`,
      await runCase("repush", {
        microagent: () => microagent(["push", source, target]),
        skopeo: () => skopeo([...DEST_FLAGS, source, `docker://${target}`])
      }, RUNS),
      (row) => row.microagent <= 0.3 && flatMemory(row))
  }
  if (needs("startup")) {
    log(`bench: startup`)
    const node = () => measureInFreshHome([NODE, "-e", "0"])
    // bench/startup-floor.ts, bundled like the CLI (scripts/build.mjs) and run by the CLI's own launcher
    // beside it (dist/bin.cjs, with its code cache): the stack's own start-up
    const floorDir = path.join(work, "startup-floor")
    const floorBin = path.join(floorDir, "bin.cjs")
    const { build } = await import("esbuild")
    await build({
      entryPoints: [path.join(ROOT, "bench", "startup-floor.ts")],
      outfile: path.join(floorDir, "cli.cjs"),
      bundle: true,
      platform: "node",
      target: "node20",
      format: "cjs",
      minify: true,
      logLevel: "error"
    })
    await fsp.copyFile(BIN, floorBin)
    const stackFloor = () => measureInFreshHome([NODE, floorBin, "registry", "list"])
    add("startup", "`registry list` start-up, empty store", "≤ 2 × `node -e 0`",
      await runCase("startup", {
        microagent: () => microagent(["registry", "list"]),
        "node -e 0": node,
        "node floor": stackFloor
      }, STARTUP_RUNS),
      (row) => row.ratio <= 2)
  }

  const toolbox = {
    only: ONLY, size: SIZE, layers: LAYERS, small: SMALL, runs: RUNS, quick, bin: BIN, images: { multi, small },
    fresh, remove, freshHome, envWithHome, measure, runCase, add, flatMemory, flatAgainst, memoryTarget, median, log, formatSize
  }
  const rootfsNote = await rootfsCases(toolbox)
  const runNote = await runCases({ ...toolbox, host, push, skopeo, srcFlags: SRC_FLAGS })

  const elapsed = (Date.now() - began) / 1000
  const report = render(rows, elapsed, [rootfsNote, runNote].filter((note) => note !== undefined))
  process.stdout.write(report)
  const file = await resultsFile()
  await fsp.mkdir(path.dirname(file), { recursive: true })
  await fsp.writeFile(file, report)
  log(`bench: took ${Math.floor(elapsed / 60)} min ${Math.round(elapsed % 60)} s; results in ${file}`)
}

// ---------------------------------------------------------------------------------------------
// Report

const git = (...args) => {
  try {
    return execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim()
  } catch {
    return undefined
  }
}
const commit = () => {
  const sha = git("rev-parse", "--short", "HEAD") ?? "nogit"
  return git("status", "--porcelain", "--untracked-files=no") ? `${sha}-dirty` : sha
}
const stamp = new Date()
let loadAtStart

const resultsFile = async () => {
  const name = `${stamp.toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}-${commit()}.md`
  if (flags.out === undefined) return path.join(os.tmpdir(), "microagent-bench", name)
  const out = path.resolve(flags.out)
  const isDir = flags.out.endsWith("/") || (await fsp.stat(out).catch(() => undefined))?.isDirectory()
  return isDir ? path.join(out, name) : out
}

const render = (rows, elapsed, notes) => {
  const cpus = os.cpus()
  const machine = [
    `${cpus.length} × ${cpus[0]?.model.trim() ?? "unknown CPU"}`,
    `${(os.totalmem() / GiB).toFixed(1)} GiB RAM`,
    `${os.type()} ${os.release()}`,
    `Node ${process.version}`,
    ...(needs(...REGISTRY_CASES)
      ? [
        firstLine("skopeo", ["--version"]),
        firstLine("docker-registry", ["--version"]).replace(/^docker-registry github.com\/docker\//, "registry: "),
        firstLine("curl", ["--version"]).split(" ").slice(0, 2).join(" ")
      ]
      : []),
    ...(needs(...ROOTFS_CASES, ...RUN_CASES) ? [firstLine("umoci", ["--version"])] : []),
    ...(needs(...RUN_REGISTRY_CASES) && !needs(...REGISTRY_CASES) ? [firstLine("skopeo", ["--version"])] : [])
  ]
  const lines = [
    `## microagent benchmark, ${stamp.toISOString().replace(/\.\d+Z$/, "Z")}, commit ${commit()}`,
    "",
    `- machine: ${machine.join(", ")}`,
    ...(needs(...REGISTRY_CASES)
      ? [`- image: ${formatSize(SIZE)} in ${LAYERS} layers and in 1 layer, a ${formatSize(SMALL)} layer for the memory comparison; ` +
        `layers are gzip'd (level 0) tars of random bytes, distribution registry on loopback (anonymous, filesystem storage in ${os.tmpdir()})`]
      : []),
    ...notes.map((note) => `- ${note}`),
    `- ${RUNS} timed run${RUNS > 1 ? "s" : ""} per case (${STARTUP_RUNS} for start-up) after one warm-up, contenders alternating; ` +
      `medians of wall time; peak RSS is the largest of the timed runs${quick ? "; **--quick: small sizes, targets apply to the full run only**" : ""}`,
    `- whole benchmark: ${Math.floor(elapsed / 60)} min ${Math.round(elapsed % 60)} s; 1-minute load average before it: ${loadAtStart.toFixed(2)}`,
    "",
    "| case | microagent | skopeo / baseline | ratio | curl (microagent ÷ curl) | curl + openssl (microagent ÷ it) | Node floor (microagent ÷ floor) | microagent peak RSS | skopeo / baseline peak RSS | target | met |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | :---: |"
  ]
  for (const row of rows) {
    // contenders with no column of their own (e.g. run-warm's `node -e 0`) go beside the baseline
    const others = Object.keys(row.samples).slice(2).filter((name) => !["curl", "curl + openssl", "node floor"].includes(name))
      .map((name) => `; ${name} ${formatSeconds(median(row.samples[name].map((sample) => sample.wall)))}`)
    const baseline = (row.baselineName === undefined || row.baselineName === "skopeo"
      ? formatSeconds(row.baseline)
      : `${formatSeconds(row.baseline)} (${row.baselineName})`) + others.join("")
    const against = (seconds) => (seconds === undefined ? "—" : `${formatSeconds(seconds)} (${(row.microagent / seconds).toFixed(2)})`)
    lines.push(`| ${row.label} | ${formatSeconds(row.microagent)} | ${baseline} | ${row.ratio?.toFixed(2) ?? "—"} | ${against(row.curl)} | ${against(row.hashing)} | ${against(row.floor)} | ` +
      `${formatRss(row.microagentRss)} | ${formatRss(row.baselineRss)} | ${row.target} | ${row.met ? "yes" : "**no**"} |`)
  }
  lines.push("", "<details><summary>every timed run: wall s / CPU s (user + system) / peak RSS MiB / the registry's CPU s while it ran</summary>", "")
  for (const row of rows) {
    for (const [name, samples] of Object.entries(row.samples)) {
      const text = samples.map((sample) =>
        [
          sample.wall.toFixed(3),
          sample.rss === undefined ? "—" : sample.cpu.toFixed(2),
          sample.rss === undefined ? "—" : (sample.rss / MiB).toFixed(0),
          sample.registryCpu === undefined ? "—" : sample.registryCpu.toFixed(2)
        ].join(" / "))
      lines.push(`- ${row.id} ${name}: ${text.join(", ")}`)
    }
  }
  lines.push("", "</details>", "")
  return lines.join("\n")
}

main().catch((error) => {
  process.stderr.write(`bench: ${error.stack ?? error}\n`)
  if (work !== undefined && fs.existsSync(path.join(work, "registry.log"))) {
    const registryLog = fs.readFileSync(path.join(work, "registry.log"), "utf8").trim()
    if (registryLog !== "") process.stderr.write(`bench: registry log:\n${registryLog.slice(-4000)}\n`)
  }
  process.exitCode = 1
}).finally(cleanup)
