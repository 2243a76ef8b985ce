/**
 * `images prune` while pulls run into the same store ([M5]): prune holds the store's lock and
 * keeps what running pulls have pinned, so no pull loses a blob it wrote, is writing, or is about
 * to reuse. Prune runs back to back in CLI processes while rounds of pulls of different images
 * run; after each round every pulled image is whole and every blob verifies. Without the pins
 * this test fails: prune deletes blobs a pull has committed but not yet recorded.
 */
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { blobsOf, expectBlobsIntact, show } from "../support/assertions.js"
import { imagesDir } from "../support/auth.js"
import { runCli, type CliResult } from "../support/cli.js"
import { makeImage, skopeoInspectDigest, skopeoPush, type BuiltImage } from "../support/images.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

const { freshHome } = useScratch("microagent-prune-")

const cli = (home: string, args: ReadonlyArray<string>): Promise<CliResult> => runCli(args, { env: { HOME: home }, timeoutMs: 60_000 })

let registry: RegistryHandle
let fixtures: string
let images: Array<BuiltImage>
const refOf = (i: number) => `${registry.host}/prune/app${i}:1.0`

beforeAll(async () => {
  fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-prune-fixtures-")))
  registry = await startRegistry({ mode: "none" })
  images = await Promise.all([0, 1, 2, 3].map(async (i) => {
    // Several layers each, so a pull spends a while between its first committed blob and its record.
    const image = await makeImage({ dir: path.join(fixtures, `app${i}`), tag: "1.0", layers: [96, 160, 64, 128, 32].map((k) => k * 1024 + i) })
    await skopeoPush(image, { registry: registry.host, repository: `prune/app${i}` })
    return image
  }))
})
afterAll(async () => {
  await registry?.stop()
  if (fixtures !== undefined) await fs.rm(fixtures, { recursive: true, force: true })
})

it("[M5] prune run back to back while rounds of pulls run never breaks a pull: every pulled image is whole, every blob verifies", async () => {
  const home = await freshHome()
  const store = imagesDir(home)
  const prunes: Array<CliResult> = []
  let pulling = true
  const pruneLoop = (async () => {
    while (pulling || prunes.length < 20) prunes.push(await cli(home, ["images", "prune", "--json"]))
  })()

  try {
    for (let round = 0; round < 4; round++) {
      const pulls = await Promise.all(images.map((_, i) => cli(home, ["pull", "-q", "--jobs", "2", refOf(i)])))
      for (const [i, r] of pulls.entries()) {
        expect(r.code, `round ${round}, pull ${i}: ${show(r)}`).toBe(0)
        expect(r.stdout.trim()).toBe(images[i]!.manifestDigest)
      }
      // Every pulled image is whole: each blob is there and hashes to its name.
      const present = await expectBlobsIntact(store)
      for (const image of images) {
        const missing = blobsOf(image).filter((d) => !present.has(d))
        expect(missing, `round ${round}: blobs of ${image.manifestDigest} lost`).toEqual([])
      }
      for (const [i, image] of images.entries()) expect(await skopeoInspectDigest(`oci:${store}:${refOf(i)}`)).toBe(image.manifestDigest)
      // The next round pulls everything again, into a store that prune is emptying.
      const rm = await cli(home, ["images", "rm", ...images.map((_, i) => refOf(i))])
      expect(rm.code, show(rm)).toBe(0)
    }
  } finally {
    pulling = false
    await pruneLoop
  }
  for (const p of prunes) expect(p.code, show(p)).toBe(0)
  expect(prunes.length).toBeGreaterThanOrEqual(20)
  // Prune did delete while the pulls ran (the removed images' blobs, at least).
  expect(prunes.some((p) => JSON.parse(p.stdout).blobs > 0)).toBe(true)
  // Nothing pinned is left behind once every command has ended.
  expect(await fs.readdir(path.join(store, ".pins"))).toEqual([])
}, 180_000)
