/**
 * Runs a system tool (mke2fs, debugfs, cp) to completion: its exit code and the end of its
 * stderr, a missing tool as [E9] naming the Debian package, and the child killed if the effect
 * is interrupted. @effect/platform's Command gives exit code or output per run, not both with a
 * kill on interruption in one call, and needs a CommandExecutor that every other command would
 * then load at start.
 */
import { spawn } from "node:child_process"
import * as Effect from "effect/Effect"
import { ImageStoreError, ToolMissing } from "../domain/Errors.js"

export interface Tool {
  readonly command: string
  /** The Debian package that has it. */
  readonly pkg: string
  /** Why microagent needs it, completing "it is needed …". */
  readonly purpose: string
}

export interface Finished {
  readonly code: number
  readonly stdout: string
  /** The last 4 KiB: enough for the reason, bounded whatever the tool prints. */
  readonly stderr: string
}

const keep = 4096

export const run = (tool: Tool, args: ReadonlyArray<string>): Effect.Effect<Finished, ToolMissing> =>
  Effect.async<Finished, ToolMissing>((resume) => {
    const child = spawn(tool.command, args, { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => void (stdout = (stdout + b.toString()).slice(-keep)))
    child.stderr.on("data", (b: Buffer) => void (stderr = (stderr + b.toString()).slice(-keep)))
    child.on("error", (e: NodeJS.ErrnoException) => {
      resume(
        e.code === "ENOENT"
          ? Effect.fail(ToolMissing.of(tool.command, tool.pkg, tool.purpose))
          : Effect.die(e)
      )
    })
    child.on("close", (code, signal) => resume(Effect.succeed({ code: code ?? (signal === null ? 1 : 128), stdout, stderr })))
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

/** The line of a tool's stderr that says why: its last. */
export const lastLine = (stderr: string): string => stderr.trim().split("\n").pop() ?? ""

const cp: Tool = { command: "cp", pkg: "coreutils", purpose: "to copy a root filesystem" }

/**
 * Copies a tree (or a file) with everything a root filesystem holds: owners, modes, times,
 * xattrs, hard links, devices; shared extents where the file system can (`--reflink=auto`).
 */
export const copy = (from: string, to: string): Effect.Effect<void, ImageStoreError | ToolMissing> =>
  Effect.flatMap(run(cp, ["-a", "--reflink=auto", "--", from, to]), (done) =>
    done.code === 0 ? Effect.void : Effect.fail(ImageStoreError.of(to, `cannot copy ${from} there: ${lastLine(done.stderr)}`)))
