/**
 * Temporary HOMEs and directories for integration tests, removed after each test.
 *
 * Call `useScratch` once at the top level of a test file: it registers the `afterEach` that runs
 * the cleanups (last registered first) and returns the helpers that register them.
 */
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterEach } from "vitest"
import { makeHome } from "./cli.js"

export interface Scratch {
  /** A fresh HOME (realpath'd), removed after the test. */
  readonly freshHome: () => Promise<string>
  /** A scratch directory outside HOME (realpath'd, named `<prefix>XXXXXX`), removed after the test. */
  readonly scratchDir: () => Promise<string>
  /** Runs `cleanup` after the test, before the cleanups registered earlier. */
  readonly onCleanup: (cleanup: () => Promise<void>) => void
}

/** Registers an `afterEach` in the calling suite (call it at a test file's top level) that runs what the helpers register. */
export const useScratch = (prefix = "microagent-scratch-"): Scratch => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  const onCleanup = (cleanup: () => Promise<void>) => {
    cleanups.push(cleanup)
  }
  const freshHome = async (): Promise<string> => {
    const { cleanup, home } = await makeHome()
    onCleanup(cleanup)
    return home
  }
  const scratchDir = async (): Promise<string> => {
    const dir = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), prefix)))
    onCleanup(() => fs.rm(dir, { recursive: true, force: true }))
    return dir
  }
  return { freshHome, scratchDir, onCleanup }
}
