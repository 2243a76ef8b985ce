/**
 * Runs the built CLI (or any Node script) as a child process with an isolated
 * environment, so a developer's own HOME or REGISTRY_AUTH_FILE never leaks into tests.
 */
import { spawn } from "node:child_process"
import { mkdtemp, realpath, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface CliOptions {
  /** Added to a minimal environment (PATH only); an undefined value removes the variable. */
  readonly env?: Record<string, string | undefined>
  readonly stdin?: string | Buffer
  readonly cwd?: string
  readonly timeoutMs?: number
}

/** A script path, or inline code. */
export type NodeEntry = string | readonly ["-e", string]

/** The built CLI; MICROAGENT_DIST points at bundles built elsewhere (scripts/build.mjs honours it too). */
export const binPath = process.env["MICROAGENT_DIST"] ? join(process.env["MICROAGENT_DIST"], "bin.cjs") : fileURLToPath(new URL("../../dist/bin.cjs", import.meta.url))

const minimalEnv = (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => {
  const env: Record<string, string | undefined> = { PATH: process.env["PATH"], ...extra }
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name]
  // Forced last: tests compare plain text, never colour codes.
  return { ...env, NO_COLOR: "1" }
}

export const runNode = (
  entry: NodeEntry,
  args: ReadonlyArray<string>,
  options: CliOptions = {}
): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const argv = [...(typeof entry === "string" ? [entry] : entry), ...args]
    const child = spawn(process.execPath, argv, {
      env: minimalEnv(options.env),
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      // Always a pipe, never the test runner's TTY: without input it is simply closed.
      stdio: ["pipe", "pipe", "pipe"]
    })
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    const text = (chunks: Array<Buffer>) => Buffer.concat(chunks).toString("utf8")
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk))
    // A child that exits without reading its input makes our write fail with EPIPE; that is not a test failure.
    child.stdin.on("error", () => {})
    child.stdin.end(options.stdin)

    const timeoutMs = options.timeoutMs ?? 20_000
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(
        new Error(
          `node ${argv.join(" ")} timed out after ${timeoutMs} ms\n` +
            `--- stdout ---\n${text(stdout)}\n--- stderr ---\n${text(stderr)}`
        )
      )
    }, timeoutMs)
    child.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout: text(stdout), stderr: text(stderr) })
    })
  })

export const runCli = (args: ReadonlyArray<string>, options?: CliOptions): Promise<CliResult> =>
  runNode(binPath, args, options)

/** A fresh directory to serve as HOME; realpath'd so tests can compare it with paths the CLI prints. */
export const makeHome = async (): Promise<{ home: string; cleanup: () => Promise<void> }> => {
  const home = await realpath(await mkdtemp(join(tmpdir(), "microagent-home-")))
  return { home, cleanup: () => rm(home, { recursive: true, force: true }) }
}
