// The benchmark's machinery: the processes it starts (tracked, and killed on the way out even on
// Ctrl+C), timing one process under GNU time, runs of a case, scratch folders and formatting.
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { MiB, GiB } from "./images.js"

export const log = (text: string): void => {
  process.stderr.write(`${text}\n`)
}

/** A usage or set-up problem: one line on stderr, exit 2. */
export const fail = (message: string): never => {
  process.stderr.write(`bench: ${message}\n`)
  process.exit(2)
}

// ---------------------------------------------------------------------------------------------
// Processes and the temp dir: everything is removed on the way out, even after an error or Ctrl+C.

let work: string | undefined
const running = new Set<ChildProcess>()
const exitCleanups: Array<() => void> = []

/** Runs `cleanup` (synchronous) on the way out, after the processes here are killed. */
export const onExit = (cleanup: () => void): void => {
  exitCleanups.push(cleanup)
}

const killGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

const cleanup = () => {
  for (const child of running) killGroup(child, "SIGKILL")
  running.clear()
  for (const step of exitCleanups.splice(0).reverse()) step()
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true })
  work = undefined
}

/** Makes the temp dir everything goes into, and removes it (and stops what runs) on exit and on signals. */
export const beginWork = async (): Promise<string> => {
  process.on("exit", cleanup)
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping the registries and removing the temp dir\n`)
      cleanup()
      process.exit(code)
    })
  }
  work = await fsp.mkdtemp(path.join(os.tmpdir(), "microagent-bench-"))
  return work
}

/** Removes the temp dir now (it is also removed on exit). */
export const endWork = cleanup

export interface Output {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command in a process group of its own; resolves with its exit code and (capped) output. */
export const exec = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): Promise<Output> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, env })
    running.add(child)
    const output = { stdout: "", stderr: "" }
    for (const name of ["stdout", "stderr"] as const) {
      child[name].setEncoding("utf8")
      child[name].on("data", (text: string) => {
        if (output[name].length < 65536) output[name] += text
      })
    }
    child.on("error", (error) => {
      running.delete(child)
      reject(error)
    })
    child.on("close", (code) => {
      running.delete(child)
      resolve({ code: code ?? 128, ...output })
    })
  })

/** `exec`, failing unless the command exits 0. */
export const check = async (command: string, args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv): Promise<Output> => {
  const result = await exec(command, args, env)
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim()}`)
  }
  return result
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** One timed run of a contender: wall seconds; peak RSS in bytes and CPU seconds where GNU time measured them. */
export interface Sample {
  readonly wall: number
  readonly rss?: number
  readonly cpu?: number
  /** CPU seconds the registries used meanwhile */
  readonly registryCpu?: number
}

export interface Measured extends Sample {
  readonly rss: number
  readonly cpu: number
  /** its first 64 KiB */
  readonly stdout: string
}

/**
 * One timed process: wall seconds (measured here, to the microsecond; GNU time's %e has 10 ms steps),
 * peak RSS (%M) and CPU seconds, user + system (%U + %S); and its stdout.
 */
export const measure = async (argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Promise<Measured> => {
  const timeFile = fresh("time.out")
  const start = process.hrtime.bigint()
  const { stdout } = await check("/usr/bin/time", ["-f", "%e %M %U %S", "-o", timeFile, ...argv], env)
  const wall = Number(process.hrtime.bigint() - start) / 1e9
  const [, rss = NaN, user = NaN, system = NaN] = fs.readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(/\s+/).map(Number)
  fs.rmSync(timeFile)
  return { wall, rss: rss * 1024, cpu: user + system, stdout }
}

/** What `measure` measured, without the output: a sample for the table. */
export const sampleOf = ({ stdout: _, ...sample }: Measured): Sample => sample

/** Wall time of something done here (no process of its own to measure). */
export const timed = async (action: () => Promise<unknown>): Promise<Sample> => {
  const start = process.hrtime.bigint()
  await action()
  return { wall: Number(process.hrtime.bigint() - start) / 1e9 }
}

/** Timed steps run one after the other, as one sample: wall and CPU time added up, the largest peak RSS. */
export const inSequence = (samples: ReadonlyArray<Measured>): Sample => ({
  wall: samples.reduce((sum, sample) => sum + sample.wall, 0),
  cpu: samples.reduce((sum, sample) => sum + sample.cpu, 0),
  rss: Math.max(...samples.map((sample) => sample.rss))
})

// ---------------------------------------------------------------------------------------------
// Scratch folders

let serial = 0
/** A new path in the temp dir (nothing made there yet). */
export const fresh = (name: string): string => {
  if (work === undefined) throw new Error("bench: no temp dir yet")
  return path.join(work, `${name}-${++serial}`)
}
export const remove = (target: string): Promise<void> => fsp.rm(target, { recursive: true, force: true })

/** A HOME of its own for one microagent run, holding an empty credential store. */
export const freshHome = async (): Promise<string> => {
  const home = fresh("home")
  await fsp.mkdir(path.join(home, ".microagent"), { recursive: true })
  await fsp.writeFile(path.join(home, ".microagent", "auth.json"), '{"auths":{}}\n')
  return home
}
/** This process's environment with `home` as HOME, and no credential files of the machine's user. */
export const envWithHome = (home: string): NodeJS.ProcessEnv => {
  const { REGISTRY_AUTH_FILE: _auth, DOCKER_CONFIG: _docker, ...env } = process.env
  return { ...env, HOME: home }
}
/** Runs `argv` with a fresh HOME holding an empty credential store, removed afterwards. */
export const measureInFreshHome = async (argv: ReadonlyArray<string>): Promise<Measured> => {
  const home = await freshHome()
  try {
    return await measure(argv, envWithHome(home))
  } finally {
    await remove(home)
  }
}

// ---------------------------------------------------------------------------------------------
// Runs of a case

const watched = new Set<number>()
/** Counts the CPU time of process `pid` (a registry) in every sample from now on. */
export const watchCpu = (pid: number): void => {
  watched.add(pid)
}

/**
 * CPU seconds the watched registries have used so far (user + system, from /proc): what serving a
 * run cost them, on the same cores as the client. Undefined where /proc does not tell.
 */
const registryCpu = (): number | undefined => {
  if (watched.size === 0) return undefined
  try {
    let ticks = 0
    for (const pid of watched) {
      const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime in clock ticks (USER_HZ, 100 on Linux)
    }
    return ticks / 100
  } catch {
    return undefined
  }
}

export type Contenders = Readonly<Record<string, () => Promise<Sample>>>
export type Samples = Readonly<Record<string, ReadonlyArray<Sample>>>

/** `warmups` untimed rounds, then `runs` timed ones, the contenders' order rotated each round; returns the timed samples. */
export const runCase = async (id: string, contenders: Contenders, rounds: { readonly runs: number; readonly warmups: number }): Promise<Samples> => {
  const names = Object.keys(contenders)
  const samples: Record<string, Array<Sample>> = Object.fromEntries(names.map((name) => [name, []]))
  for (let round = 0; round < rounds.warmups + rounds.runs; round++) {
    const timedRun = round - rounds.warmups + 1
    for (const name of names.map((_, i) => names[(i + round) % names.length]!)) {
      execFileSync("sync") // start every run with nothing left to write back
      const before = registryCpu()
      const measured = await contenders[name]!()
      const after = registryCpu()
      const sample = before !== undefined && after !== undefined ? { ...measured, registryCpu: after - before } : measured
      log(`  ${id} ${timedRun < 1 ? "warm-up" : `run ${timedRun}/${rounds.runs}`} ${name}: ${formatSeconds(sample.wall)}` +
        `${sample.rss === undefined ? "" : `, CPU ${formatSeconds(sample.cpu)}, ${formatRss(sample.rss)}`}` +
        `${sample.registryCpu === undefined ? "" : `, registry CPU ${formatSeconds(sample.registryCpu)}`}`)
      if (timedRun >= 1) samples[name]!.push(sample)
    }
  }
  return samples
}

/**
 * Bundles `entry` (TypeScript) into one plain script, as scripts/build.mjs bundles the CLI, so what
 * a measured process loads is JavaScript only, like the CLI. ES module for `.mjs`, else CommonJS.
 */
export const bundle = async (entry: string, outfile: string): Promise<string> => {
  const { build } = await import("esbuild")
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: outfile.endsWith(".mjs") ? "esm" : "cjs",
    minify: true,
    logLevel: "error"
  })
  return outfile
}

// ---------------------------------------------------------------------------------------------
// Formatting

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export const formatSize = (bytes: number): string =>
  bytes >= GiB && bytes % GiB === 0 ? `${bytes / GiB} GiB` : bytes >= MiB && bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} B`
export const formatSeconds = (seconds: number | undefined): string =>
  seconds === undefined ? "—" : seconds >= 1 ? `${seconds.toFixed(2)} s` : `${(seconds * 1000).toFixed(0)} ms`
export const formatRss = (bytes: number | undefined): string => (bytes === undefined ? "—" : `${(bytes / MiB).toFixed(0)} MiB`)
export const layerWord = (n: number): string => `${n} layer${n > 1 ? "s" : ""}`
