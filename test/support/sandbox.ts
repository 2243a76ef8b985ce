/**
 * Runs a command where a bug can only write to the folders it is given: bubblewrap binds the whole
 * machine read-only and only those folders read-write. For tests that apply (hostile) layers as
 * root. There is no fallback: without bwrap it throws rather than run the command unconfined.
 *
 * Root inside keeps root's powers over the writable folders (mknod, chown, setxattr), because bwrap
 * run by root makes no user namespace.
 */
import { spawn } from "node:child_process"
import { accessSync, constants, realpathSync, statSync } from "node:fs"
import * as path from "node:path"

export interface SandboxOptions {
  /** Absolute folders that stay writable (each must exist). Everything else is read-only. */
  readonly writable: ReadonlyArray<string>
  /**
   * The whole environment (nothing is inherited) is PATH plus these; TMPDIR defaults to the first
   * writable folder, since /tmp is read-only inside.
   */
  readonly env?: Readonly<Record<string, string>>
  /** Default the first writable folder. */
  readonly cwd?: string
  readonly stdin?: string | Buffer
  readonly timeoutMs?: number
  /** Where to look for bwrap; default $PATH. */
  readonly searchPath?: string
}

export interface SandboxResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Path of the bwrap binary; throws (naming the Debian package) when there is none. */
export const findBwrap = (searchPath = process.env["PATH"] ?? ""): string => {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === "") continue
    const candidate = path.join(dir, "bwrap")
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this folder
    }
  }
  throw new Error("bwrap is not installed (Debian package bubblewrap): refusing to run the command unsandboxed")
}

/** The bwrap arguments for `writable`: exposed for tests and for error messages. */
export const bwrapArgs = (writable: ReadonlyArray<string>, cwd: string): Array<string> => {
  const binds = writable.flatMap((dir) => ["--bind", dir, dir])
  return ["--ro-bind", "/", "/", ...binds, "--dev", "/dev", "--proc", "/proc", "--die-with-parent", "--chdir", cwd]
}

const checkWritable = (dirs: ReadonlyArray<string>): Array<string> => {
  if (dirs.length === 0) throw new Error("sandboxed: give at least one writable folder")
  return dirs.map((dir) => {
    if (!path.isAbsolute(dir)) throw new Error(`sandboxed: writable folder ${dir} is not absolute`)
    const real = realpathSync(dir)
    if (real === "/" || !statSync(real).isDirectory()) throw new Error(`sandboxed: ${dir} cannot be a writable folder`)
    return real
  })
}

/** Runs `command args` under bwrap with only `options.writable` writable. */
export const sandboxed = async (command: string, args: ReadonlyArray<string>, options: SandboxOptions): Promise<SandboxResult> => {
  const bwrap = findBwrap(options.searchPath)
  const writable = checkWritable(options.writable)
  const cwd = options.cwd ?? writable[0]!
  const env = { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin", TMPDIR: writable[0]!, ...options.env }
  return new Promise((resolve, reject) => {
    const child = spawn(bwrap, [...bwrapArgs(writable, cwd), "--", command, ...args], {
      env,
      stdio: ["pipe", "pipe", "pipe"],
      ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs })
    })
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk))
    child.on("error", reject)
    child.on("close", (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8")
      })
    )
    child.stdin.end(options.stdin ?? "")
  })
}
