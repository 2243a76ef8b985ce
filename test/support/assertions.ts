/**
 * Expectations shared by the integration tests: on what the CLI printed, and on image layouts.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { expect } from "vitest"
import type { CliResult } from "./cli.js"
import { blobPath, type BuiltManifest } from "./images.js"

/** A run's exit code and output, as the message of a failed expectation. */
export const show = (r: CliResult) => `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`

/** Exit 0 and a single digest line on stdout. */
export const expectDigest = (r: CliResult, digest: string) => {
  expect(r.code, show(r)).toBe(0)
  expect(r.stdout.trim(), show(r)).toBe(digest)
  expect(r.stdout.trim().split("\n"), show(r)).toHaveLength(1)
}

/** The progress line of a blob that finished before a failure (one each, through a pipe). */
export const PROGRESS_LINE = /^sha256:[0-9a-f]{12}\s/

/**
 * [§5]: one `error:` line (+ an optional `hint:` line), `warning:` lines aside; never a stack trace.
 * With `progress: true`, per-blob progress lines ({@link PROGRESS_LINE}) are set aside too.
 * Returns the lines that count: the error line, then the hint if there is one.
 */
export const expectCleanError = (r: CliResult, options: { readonly progress?: boolean } = {}): Array<string> => {
  const lines = r.stderr
    .split(/\r?\n/)
    .filter((l) => l.trim() !== "" && !l.startsWith("warning:") && !(options.progress === true && PROGRESS_LINE.test(l)))
  expect(lines.length, r.stderr).toBeGreaterThanOrEqual(1)
  expect(lines[0], r.stderr).toMatch(/^error: /)
  expect(lines.slice(1).every((l) => l.startsWith("hint:")), r.stderr).toBe(true)
  expect(lines.length, r.stderr).toBeLessThanOrEqual(2)
  expect(r.stderr).not.toMatch(/^\s+at\s/m)
  return lines
}

/** Every blob of a manifest: itself, its config and its layers. */
export const blobsOf = (m: BuiltManifest): Array<string> => [m.manifestDigest, m.configDigest, ...m.layerDigests]

export const hasBlob = (dir: string, digest: string): Promise<boolean> => fs.access(blobPath(dir, digest)).then(() => true, () => false)

/** Every file under blobs/<alg>/ whose content does not hash to its name, plus the digests present. */
export const auditBlobs = async (dir: string): Promise<{ present: Set<string>; bad: Array<string> }> => {
  const present = new Set<string>()
  const bad: Array<string> = []
  const blobs = path.join(dir, "blobs")
  for (const alg of await fs.readdir(blobs)) {
    for (const hex of await fs.readdir(path.join(blobs, alg))) {
      const bytes = await fs.readFile(path.join(blobs, alg, hex))
      const actual = createHash(alg).update(bytes).digest("hex")
      if (actual !== hex) bad.push(`${alg}:${hex} holds ${alg}:${actual}`)
      present.add(`${alg}:${hex}`)
    }
  }
  return { present, bad }
}

/** Every blob under blobs/<alg>/ hashes to its name (the layout must have blobs/). Returns the digests present. */
export const expectBlobsIntact = async (dir: string): Promise<Set<string>> => {
  const { bad, present } = await auditBlobs(dir)
  expect(bad, "blobs whose content does not match their name").toEqual([])
  return present
}
