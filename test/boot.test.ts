/**
 * The launcher (src/boot.ts, built to dist/bin.mjs): runs the bundled CLI through V8's code
 * cache, which it writes on the first run. A cache that does not fit must never change what the
 * CLI does. Runs a copy of dist/, so the tests' shared cache is left alone.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { binPath, makeHome, runNode } from "./support/cli.js"
import { useScratch } from "./support/scratch.js"

const { scratchDir } = useScratch("microagent-boot-")

/** dist/bin.mjs and dist/cli.cjs copied into a fresh folder, without any cache. */
const copyOfDist = async () => {
  const dir = await scratchDir()
  for (const name of ["bin.mjs", "cli.cjs"]) await fs.copyFile(path.join(path.dirname(binPath), name), path.join(dir, name))
  return dir
}

const caches = async (dir: string) => (await fs.readdir(dir)).filter((name) => name.endsWith(".cache"))

describe("the launcher", () => {
  it("writes the code cache beside the bundle on the first run, and the CLI behaves the same with it", async () => {
    const dir = await copyOfDist()
    const home = await makeHome()
    try {
      const first = await runNode(path.join(dir, "bin.mjs"), ["registry", "list", "--json"], { env: { HOME: home.home } })
      expect(first.code, first.stderr).toBe(0)
      expect(await caches(dir)).toHaveLength(1)
      const second = await runNode(path.join(dir, "bin.mjs"), ["registry", "list", "--json"], { env: { HOME: home.home } })
      expect(second.code, second.stderr).toBe(0)
      expect(second.stdout).toBe(first.stdout)
      expect(second.stderr).toBe(first.stderr)
      // Nothing in the user's cache folder: the bundle's own folder was writable.
      await expect(fs.stat(path.join(home.home, ".cache", "microagent"))).rejects.toThrow()
    } finally {
      await home.cleanup()
    }
  })

  it("a cache written by a command that made HTTP requests (and tuned the heap) is used by the next start, not rewritten", async () => {
    const dir = await copyOfDist()
    const home = await makeHome()
    try {
      // Nothing listens on port 1: the request starts, fails, and the command exits 1.
      const tags = await runNode(path.join(dir, "bin.mjs"), ["tags", "127.0.0.1:1/team/app"], { env: { HOME: home.home } })
      expect(tags.code).toBe(1)
      const [cache] = await caches(dir)
      const written = await fs.readFile(path.join(dir, cache!))
      const list = await runNode(path.join(dir, "bin.mjs"), ["registry", "list"], { env: { HOME: home.home } })
      expect(list.code, list.stderr).toBe(0)
      expect(await caches(dir)).toEqual([cache])
      // Rewritten only when V8 rejected it, which a flag left changed would make it do every time.
      expect((await fs.readFile(path.join(dir, cache!))).equals(written)).toBe(true)
    } finally {
      await home.cleanup()
    }
  })

  it("a damaged cache is rejected and replaced, and never changes the output or the exit code", async () => {
    const dir = await copyOfDist()
    const home = await makeHome()
    try {
      await runNode(path.join(dir, "bin.mjs"), ["--version"], { env: { HOME: home.home } })
      const [cache] = await caches(dir)
      await fs.writeFile(path.join(dir, cache!), "not a V8 code cache")
      const r = await runNode(path.join(dir, "bin.mjs"), ["registry", "logout", "nowhere.example"], { env: { HOME: home.home } })
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/^error: /m)
      expect((await fs.readFile(path.join(dir, cache!))).length).toBeGreaterThan(1000)
    } finally {
      await home.cleanup()
    }
  })
})
