/**
 * Running `microagent run` as a user does (as root, with runc), keeping its output as bytes, and
 * checking that a run left nothing behind: no runtime state, mounts, scratch folders or
 * processes ([R5]).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { promisify } from "node:util"
import { binPath } from "./cli.js"

export interface RunOutcome {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: Buffer
  readonly stderr: string
  /** Milliseconds from start to exit. */
  readonly elapsedMs: number
}

export interface RunCall {
  readonly home: string
  readonly env?: Readonly<Record<string, string>>
  readonly stdin?: Buffer | string
  /** Called once the child is spawned, e.g. to signal it later. */
  readonly started?: (child: ChildProcess) => void
  readonly timeoutMs?: number
}

const exec = promisify(execFile)

/** `microagent <args>` with a minimal environment (PATH, HOME, NO_COLOR and `env`). */
export const microagent = (args: ReadonlyArray<string>, call: RunCall): Promise<RunOutcome> =>
  new Promise((resolve, reject) => {
    const begun = Date.now()
    const child = spawn(process.execPath, [binPath, ...args], {
      env: { PATH: process.env["PATH"] ?? "", HOME: call.home, NO_COLOR: "1", ...call.env },
      stdio: ["pipe", "pipe", "pipe"]
    })
    const out: Array<Buffer> = []
    let err = ""
    child.stdout.on("data", (b: Buffer) => out.push(b))
    child.stderr.on("data", (b: Buffer) => void (err += b.toString()))
    child.stdin.on("error", () => {})
    child.stdin.end(call.stdin)
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`microagent ${args.join(" ")} timed out\n${err}`))
    }, call.timeoutMs ?? 60_000)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, elapsedMs: Date.now() - begun })
    })
    call.started?.(child)
  })

export const text = (r: RunOutcome): string => `exit ${r.code}\n--- stdout ---\n${r.stdout.toString()}\n--- stderr ---\n${r.stderr}`

/** What a run may leave behind, to be empty after each test. */
export const leftovers = async (home: string): Promise<{ runtime: Array<string>; mounts: Array<string>; folders: Array<string>; processes: Array<string> }> => {
  const runtime = (await exec("runc", ["list", "-q"])).stdout.split("\n").filter((id) => id.startsWith("microagent-"))
  const mounts = (await fs.readFile("/proc/self/mountinfo", "utf8")).split("\n").filter((line) => line.includes(home))
  const folders = await fs.readdir(path.join(home, ".microagent", "run")).catch(() => [])
  const processes: Array<string> = []
  for (const pid of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")
    if (cmdline.includes(home) || /microagent-[0-9a-f]{12}(\0|$)/.test(cmdline)) processes.push(`${pid}: ${cmdline.replaceAll("\0", " ")}`)
  }
  return { runtime, mounts, folders, processes }
}

export const nothingLeft = { runtime: [], mounts: [], folders: [], processes: [] }

/** The first time `check` holds, polling every 20 ms for up to `ms`. */
export const eventually = async (check: () => Promise<boolean>, ms = 10_000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting")
    await new Promise((r) => setTimeout(r, 20))
  }
}
