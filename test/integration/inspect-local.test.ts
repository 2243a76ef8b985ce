/**
 * `inspect` of local images ([M6]): layouts and the shared store, offline, in the same formats as
 * for registries; and `--platform` on a single-platform image that is for another platform, an
 * error naming the image's platform (issue 13, item 2) for pull, inspect and copy alike.
 */
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { show } from "../support/assertions.js"
import { type CliResult, runCli } from "../support/cli.js"
import { type BuiltImage, type BuiltIndex, makeImage, makeIndex, skopeoPush } from "../support/images.js"
import { freePort, type RegistryHandle, startRegistry } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

const { freshHome } = useScratch("microagent-inspect-local-")

let registry: RegistryHandle
let image: BuiltImage
let index: BuiltIndex
let dir: string

const cli = (home: string, args: ReadonlyArray<string>): Promise<CliResult> => runCli(args, { env: { HOME: home }, timeoutMs: 60_000 })

interface Doc {
  readonly reference: string
  readonly digest: string
  readonly platforms?: ReadonlyArray<{ readonly architecture: string }>
  readonly layers?: ReadonlyArray<{ readonly digest: string }>
  readonly config?: { readonly architecture?: string }
}

const json = (r: CliResult): Doc => {
  expect(r.code, show(r)).toBe(0)
  return JSON.parse(r.stdout) as Doc
}

beforeAll(async () => {
  registry = await startRegistry({ mode: "none" })
  dir = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-inspect-local-fixtures-")))
  image = await makeImage({ dir: path.join(dir, "image"), tag: "1.0", layers: [2048, 1024], platform: { os: "linux", architecture: "amd64" } })
  index = await makeIndex({ dir: path.join(dir, "index"), tag: "multi" })
  await Promise.all([
    skopeoPush(image, { registry: registry.host, repository: "team/app" }),
    skopeoPush(index, { registry: registry.host, repository: "team/multi", all: true })
  ])
}, 120_000)

afterAll(async () => {
  await registry?.stop()
  if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true })
})

describe("[M6] inspect reads layouts and the store, offline", () => {
  it("[M6] oci:<dir>:<name> gives the same document as the registry, layers and all", async () => {
    const home = await freshHome()
    const fromRegistry = json(await cli(home, ["inspect", "--json", `${registry.host}/team/app:1.0`]))
    const fromLayout = json(await cli(home, ["inspect", "--json", `oci:${image.dir}:1.0`]))
    expect(fromLayout.digest).toBe(image.manifestDigest)
    expect(fromLayout.reference).toBe(`oci:${image.dir}:1.0`)
    expect({ ...fromLayout, reference: "" }).toEqual({ ...fromRegistry, reference: "" })
  })

  it("[M6] --platform picks an index's child in a layout, as it does at a registry", async () => {
    const doc = json(await cli(await freshHome(), ["inspect", "--json", "--platform", "linux/arm64", `oci:${index.dir}:multi`]))
    expect(doc.digest).toBe(index.children.find((c) => c.platform.architecture === "arm64")!.manifestDigest)
  })

  it("[M6] store:<ref> and --local read the shared store; a stopped registry falls back to it with a warning", async () => {
    const home = await freshHome()
    const port = await freePort()
    const gone = await startRegistry({ mode: "none" })
    await skopeoPush(image, { registry: gone.host, repository: "team/app" })
    const ref = `${gone.host}/team/app:1.0`
    expect((await cli(home, ["pull", "-q", ref])).code).toBe(0)
    await gone.stop()
    expect(json(await cli(home, ["inspect", "--json", `store:${ref}`])).digest).toBe(image.manifestDigest)
    expect(json(await cli(home, ["inspect", "--json", "--local", ref])).digest).toBe(image.manifestDigest)
    const fallback = await cli(home, ["inspect", ref])
    expect(fallback.code, show(fallback)).toBe(0)
    expect(fallback.stderr).toMatch(/^warning: .*cannot be reached .*showing the image from the store/m)
    expect(fallback.stdout).toContain(image.manifestDigest)
    // Not in the store and not reachable: the registry's failure, exit 1.
    const neither = await cli(home, ["inspect", `127.0.0.1:${port}/team/other:1`])
    expect(neither.code, show(neither)).toBe(1)
    expect(neither.stderr).toContain("unavailable")
  })

  it("[M6] an image the store does not hold is a clear error naming what it holds", async () => {
    const r = await cli(await freshHome(), ["inspect", "--local", `${registry.host}/team/none:1`])
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr).toMatch(/^error: /)
  })
})

describe("--platform on a single-platform image (issue 13, item 2)", () => {
  for (const command of [["pull", "-q"], ["inspect"], ["copy", "-q"]] as const) {
    it(`[I3] ${command[0]} --platform linux/arm64 of an amd64-only image: exit 1, naming the image's platform`, async () => {
      const home = await freshHome()
      const target = command[0] === "copy" ? [`${registry.host}/team/copied:1`] : []
      const r = await cli(home, [...command, "--platform", "linux/arm64", `${registry.host}/team/app:1.0`, ...target])
      expect(r.code, show(r)).toBe(1)
      expect(r.stderr).toContain("has no image for linux/arm64 (it is a single-platform image for linux/amd64)")
      expect(r.stdout).toBe("")
    })
  }

  it("[I3] in a layout too: inspect and copy of oci:<dir> with another platform are exit 1, nothing copied", async () => {
    const home = await freshHome()
    for (const args of [["inspect"], ["copy", "-q"]]) {
      const target = args[0] === "copy" ? [`oci:${path.join(home, "copied")}:1`] : []
      const r = await cli(home, [...args, "--platform", "linux/arm64", `oci:${image.dir}:1.0`, ...target])
      expect(r.code, show(r)).toBe(1)
      expect(r.stderr).toContain("has no image for linux/arm64 (it is a single-platform image for linux/amd64)")
    }
    await expect(fs.access(path.join(home, "copied"))).rejects.toThrow()
  })

  it("[I3] the matching platform is accepted", async () => {
    const r = await cli(await freshHome(), ["pull", "-q", "--platform", "linux/amd64", `${registry.host}/team/app:1.0`])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout.trim()).toBe(image.manifestDigest)
  })
})
