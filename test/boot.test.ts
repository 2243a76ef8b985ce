/**
 * The launcher (src/boot.ts, built to dist/bin.cjs): runs the bundled CLI through V8's code
 * cache, which it writes on the first run. A cache that does not fit must never change what the
 * CLI does. Runs a copy of dist/, so the tests' shared cache is left alone.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { binPath, runNode } from "./support/cli.js"
import { buildLayout } from "./support/layouts.js"
import { useScratch } from "./support/scratch.js"

const { freshHome, scratchDir } = useScratch("microagent-boot-")

/** dist/bin.cjs and dist/cli.cjs copied into a fresh folder without any cache, and a way to run them in a fresh HOME. */
const launcher = async () => {
  const dir = await scratchDir()
  for (const name of ["bin.cjs", "cli.cjs"]) await fs.copyFile(path.join(path.dirname(binPath), name), path.join(dir, name))
  const home = await freshHome()
  return { dir, home, run: (args: ReadonlyArray<string>) => runNode(path.join(dir, "bin.cjs"), args, { env: { HOME: home } }) }
}

const caches = async (dir: string) => (await fs.readdir(dir)).filter((name) => name.endsWith(".cache"))

/**
 * The one cache a command that tuned the heap wrote is used as it is by the next start. Rewritten
 * only when V8 rejected it, which a flag left changed would make it do every time.
 */
const expectCacheKept = async (dir: string, run: (args: ReadonlyArray<string>) => Promise<{ code: number | null; stderr: string }>) => {
  const [cache] = await caches(dir)
  const written = await fs.readFile(path.join(dir, cache!))
  const list = await run(["registry", "list"])
  expect(list.code, list.stderr).toBe(0)
  expect(await caches(dir)).toEqual([cache])
  expect((await fs.readFile(path.join(dir, cache!))).equals(written)).toBe(true)
}

describe("the launcher", () => {
  it("writes the code cache beside the bundle on the first run, and the CLI behaves the same with it", async () => {
    const { dir, home, run } = await launcher()
    const first = await run(["registry", "list", "--json"])
    expect(first.code, first.stderr).toBe(0)
    expect(await caches(dir)).toHaveLength(1)
    const second = await run(["registry", "list", "--json"])
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect(second.stderr).toBe(first.stderr)
    // Nothing in the user's cache folder: the bundle's own folder was writable.
    await expect(fs.stat(path.join(home, ".cache", "microagent"))).rejects.toThrow()
  })

  it("a cache written by a command that made HTTP requests (and tuned the heap) is used by the next start, not rewritten", async () => {
    const { dir, run } = await launcher()
    // Nothing listens on port 1: the request starts, fails, and the command exits 1.
    const tags = await run(["tags", "127.0.0.1:1/team/app"])
    expect(tags.code).toBe(1)
    await expectCacheKept(dir, run)
  })

  it("[F7] a rootfs build tunes the heap on its first layer (no HTTP at all), and its cache too is used by the next start, not rewritten", async () => {
    const { dir, run } = await launcher()
    const image = await buildLayout(path.join(await scratchDir(), "layout"), {
      tag: "v1",
      layers: [{ compression: "gzip", entries: [{ name: "hello", content: "hello\n" }] }]
    })
    const out = path.join(await scratchDir(), "bundle")
    const build = await run(["rootfs", "build", `oci:${image.dir}:${image.tag}`, "--out", out])
    expect(build.code, build.stderr).toBe(0)
    await expectCacheKept(dir, run)
  })

  it("where the bundle's folder cannot take the cache, it goes to the user's cache folder, named after the bundle, and is used from there", async () => {
    const { dir, home, run } = await launcher()
    await run(["--version"])
    const [beside] = await caches(dir)
    // A folder where the cache file would go: no write lands there, even for root.
    await fs.rm(path.join(dir, beside!))
    await fs.mkdir(path.join(dir, beside!))
    const first = await run(["registry", "list", "--json"])
    expect(first.code, first.stderr).toBe(0)
    const userFolder = path.join(home, ".cache", "microagent")
    const [cache] = await fs.readdir(userFolder)
    expect(cache).toMatch(new RegExp(`^cli-[0-9a-f]{16}-${beside!.slice("cli-".length).replace(/\./g, "\\.")}$`))
    const written = await fs.stat(path.join(userFolder, cache!))
    const second = await run(["registry", "list", "--json"])
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    // Read and accepted: a rejected cache would have been written afresh, renamed over this file.
    expect((await fs.stat(path.join(userFolder, cache!))).ino).toBe(written.ino)
    expect(await fs.readdir(userFolder)).toEqual([cache])
  })

  it("a damaged cache is rejected and replaced, and never changes the output or the exit code", async () => {
    const { dir, run } = await launcher()
    await run(["--version"])
    const [cache] = await caches(dir)
    await fs.writeFile(path.join(dir, cache!), "not a V8 code cache")
    const r = await run(["registry", "logout", "nowhere.example"])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^error: /m)
    expect((await fs.readFile(path.join(dir, cache!))).length).toBeGreaterThan(1000)
  })
})
