/**
 * Running `microagent rootfs build` the way the rootfs tests do: as root, inside a bubblewrap
 * sandbox where only the test's own scratch folder is writable, so a bug in layer application
 * fails a test instead of damaging the machine.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { promisify } from "node:util"
import { binPath } from "./cli.js"
import { sandboxed, type SandboxResult } from "./sandbox.js"

export interface BuildRun extends SandboxResult {
  /** The parsed `--json` document, when asked for and printed. */
  readonly json: Record<string, unknown> | undefined
}

/** `microagent rootfs build args…` with HOME = `home`, writing only below `scratch`. */
export const rootfsBuild = async (
  scratch: string,
  home: string,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>> = {},
  /** A command that runs the rest as someone else, e.g. setpriv's. */
  as: ReadonlyArray<string> = []
): Promise<BuildRun> => {
  const [command, ...rest] = [...as, process.execPath, binPath, "rootfs", "build", ...args]
  const r = await sandboxed(command!, rest, {
    writable: [scratch],
    env: { HOME: home, NO_COLOR: "1", ...env },
    timeoutMs: 120_000
  })
  const json = args.includes("--json") && r.code === 0 ? JSON.parse(r.stdout) as Record<string, unknown> : undefined
  return { ...r, json }
}

export const show = (r: SandboxResult): string => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`

/** `umoci unpack` of `layout:tag` into `bundle` (umoci's own peer result). */
export const umociUnpack = async (layout: string, tag: string, bundle: string): Promise<void> => {
  await promisify(execFile)("umoci", ["unpack", "--image", `${layout}:${tag}`, bundle])
}

/** Names in a folder, or [] when it does not exist. */
export const listing = async (dir: string): Promise<Array<string>> => {
  try {
    return (await fs.readdir(dir)).sort()
  } catch {
    return []
  }
}

/** The cache folder of a HOME and the builds it holds (temp folders aside). */
export const cacheEntries = async (home: string): Promise<Array<string>> =>
  (await listing(path.join(home, ".microagent", "rootfs"))).filter((name) => name !== ".tmp")

export const cacheTemps = (home: string): Promise<Array<string>> => listing(path.join(home, ".microagent", "rootfs", ".tmp"))
