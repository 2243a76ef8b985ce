/**
 * The shared image store through the CLI (SPEC [I2], [M5], [M7]): images with one tag from
 * different repositories named by their full references, which skopeo and umoci read; a store
 * written by an earlier version read and then migrated; `images list | rm | prune`; and the
 * store's folders under `umask 000`. One anonymous CNCF distribution registry on loopback.
 */
import { execFile, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { blobsOf, expectBlobsIntact, expectCleanError, expectDigest, show } from "../support/assertions.js"
import { imagesDir } from "../support/auth.js"
import { binPath, runCli, type CliResult } from "../support/cli.js"
import { makeImage, makeIndex, skopeoInspectDigest, skopeoPush, type BuiltImage, type BuiltIndex } from "../support/images.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

const run = promisify(execFile)
const REF_NAME = "org.opencontainers.image.ref.name"
const IMAGE_NAME = "io.containerd.image.name"

const { freshHome, scratchDir } = useScratch("microagent-images-store-")

const cli = (home: string, args: ReadonlyArray<string>): Promise<CliResult> => runCli(args, { env: { HOME: home }, timeoutMs: 30_000 })

const pull = async (home: string, ref: string, digest: string, extra: ReadonlyArray<string> = []) =>
  expectDigest(await cli(home, ["pull", ref, ...extra]), digest)

interface Entry {
  readonly digest: string
  readonly annotations?: Record<string, string>
}

const indexJson = async (root: string): Promise<{ manifests: Array<Entry> } & Record<string, unknown>> =>
  JSON.parse(await fs.readFile(path.join(root, "index.json"), "utf8"))

const mode = async (file: string) => (await fs.stat(file)).mode & 0o777

/** Bytes of every file under blobs/ (what `images list` must total). */
const bytesOnDisk = async (root: string): Promise<number> => {
  let total = 0
  for (const algorithm of await fs.readdir(path.join(root, "blobs"))) {
    for (const hex of await fs.readdir(path.join(root, "blobs", algorithm))) total += (await fs.stat(path.join(root, "blobs", algorithm, hex))).size
  }
  return total
}

// ---------------------------------------------------------------------------------------------

let registry: RegistryHandle
let fixtures: string
/** Three different images, each pushed as `<repo>/app:1.0`. */
let images: Array<BuiltImage>
let multi: BuiltIndex
const repos = ["demo", "other", "third"] as const
const refOf = (i: number) => `${registry.host}/${repos[i]}/app:1.0`

beforeAll(async () => {
  fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-images-store-fixtures-")))
  registry = await startRegistry({ mode: "none" })
  images = []
  for (const [i, repository] of repos.entries()) {
    const image = await makeImage({ dir: path.join(fixtures, repository), tag: "1.0", layers: [2048 * (i + 1), 4096] })
    await skopeoPush(image, { registry: registry.host, repository: `${repository}/app` })
    images.push(image)
  }
  multi = await makeIndex({ dir: path.join(fixtures, "multi"), tag: "1.0" })
  await skopeoPush(multi, { registry: registry.host, repository: "demo/multi", all: true })
})
afterAll(async () => {
  await registry?.stop()
  if (fixtures !== undefined) await fs.rm(fixtures, { recursive: true, force: true })
})

describe("[I2] the shared store names images by full reference", () => {
  it("[I2][M7] three images tagged 1.0 from three repositories: skopeo inspect and umoci unpack read each by its full reference", async () => {
    const home = await freshHome()
    for (const [i, image] of images.entries()) await pull(home, refOf(i), image.manifestDigest)
    const store = imagesDir(home)
    const entries = (await indexJson(store)).manifests
    expect(entries.map((e) => [e.annotations?.[REF_NAME], e.annotations?.[IMAGE_NAME], e.digest])).toEqual(
      images.map((image, i) => [refOf(i), refOf(i), image.manifestDigest])
    )
    const scratch = await scratchDir()
    for (const [i, image] of images.entries()) {
      expect(await skopeoInspectDigest(`oci:${store}:${refOf(i)}`)).toBe(image.manifestDigest)
      const bundle = path.join(scratch, `bundle-${i}`)
      await run("umoci", ["unpack", "--image", `${store}:${refOf(i)}`, bundle], { timeout: 60_000 })
      expect((await fs.stat(path.join(bundle, "config.json"))).isFile()).toBe(true)
      expect((await fs.readdir(path.join(bundle, "rootfs"))).length).toBeGreaterThan(0)
    }
    // microagent reads its own store the same way: oci:<store>:<full ref>, split at the first ':'.
    const target = `${registry.host}/copied/app:1.0`
    expectDigest(await cli(home, ["push", `oci:${store}:${refOf(1)}`, target]), images[1]!.manifestDigest)
  }, 120_000)

  it("[I2] a store written the old way (ref.name = the tag) is read as it is, then migrated by the next pull, under the lock", async () => {
    const home = await freshHome()
    await pull(home, refOf(0), images[0]!.manifestDigest)
    await pull(home, refOf(1), images[1]!.manifestDigest)
    const store = imagesDir(home)
    const current = await indexJson(store)
    const old = {
      ...current,
      manifests: current.manifests.map(({ annotations, ...rest }) => ({
        ...rest,
        annotations: { [REF_NAME]: "1.0", [IMAGE_NAME]: annotations![IMAGE_NAME]! }
      })),
      "x-kept": true
    }
    await fs.writeFile(path.join(store, "index.json"), JSON.stringify(old, null, 2))
    const before = await fs.readFile(path.join(store, "index.json"), "utf8")

    // Read: found by full reference; the ambiguous tag's hint spells what works.
    expectDigest(await cli(home, ["push", refOf(1), `${registry.host}/again/app:1.0`]), images[1]!.manifestDigest)
    const ambiguous = await cli(home, ["push", `oci:${store}:1.0`, `${registry.host}/again/app:2.0`])
    expect(ambiguous.code, show(ambiguous)).toBe(1)
    const [, hint] = expectCleanError(ambiguous)
    expect(hint).toBe(`hint: name one by its full reference: ${refOf(0)} or ${refOf(1)}`)
    expect(await fs.readFile(path.join(store, "index.json"), "utf8")).toBe(before)

    // Migrated by the next change.
    await pull(home, refOf(2), images[2]!.manifestDigest)
    const migrated = await indexJson(store)
    expect(migrated["x-kept"]).toBe(true)
    expect(migrated.manifests.map((e) => [e.annotations?.[REF_NAME], e.annotations?.[IMAGE_NAME]])).toEqual(
      [0, 1, 2].map((i) => [refOf(i), refOf(i)])
    )
    for (const [i, image] of images.entries()) expect(await skopeoInspectDigest(`oci:${store}:${refOf(i)}`)).toBe(image.manifestDigest)
    await expect(fs.access(path.join(store, "index.json.lock"))).rejects.toThrow()
  }, 60_000)

  it.each(["000", "077"])("[I2] under umask %s the store's folders are 0755 (~/.microagent 0700) and its files 0644", async (umask) => {
    const home = await freshHome()
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn("sh", ["-c", `umask ${umask}; exec "$0" "$@"`, process.execPath, binPath, "pull", "-q", refOf(0)], {
        env: { PATH: process.env["PATH"], HOME: home, NO_COLOR: "1" },
        stdio: ["ignore", "ignore", "pipe"]
      })
      let stderr = ""
      child.stderr.on("data", (d) => (stderr += String(d)))
      child.on("close", (code) => resolve({ code, stderr }))
    })
    expect(result.code, result.stderr).toBe(0)
    const store = imagesDir(home)
    expect(await mode(path.join(home, ".microagent"))).toBe(0o700)
    for (const dir of [store, path.join(store, "blobs"), path.join(store, "blobs", "sha256"), path.join(store, ".tmp"), path.join(store, ".pins")]) {
      expect(await mode(dir), dir).toBe(0o755)
    }
    for (const file of ["oci-layout", "index.json", ...blobsOf(images[0]!).map((d) => path.join("blobs", "sha256", d.slice("sha256:".length)))]) {
      expect(await mode(path.join(store, file)), file).toBe(0o644)
    }
  })
})

describe("[I2][P5] a pull that would change nothing", () => {
  const blobFile = (home: string, digest: string) => path.join(imagesDir(home), "blobs", "sha256", digest.slice("sha256:".length))

  it("[I2] a tag pulled again, unchanged in the registry and whole in the store: same digest, every blob present, index.json not rewritten", async () => {
    const home = await freshHome()
    await pull(home, refOf(0), images[0]!.manifestDigest)
    const before = await fs.readFile(path.join(imagesDir(home), "index.json"), "utf8")
    // The clock moves on: a rewritten record would carry a later pulled-at.
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const again = await cli(home, ["pull", refOf(0), "--json"])
    expect(again.code, show(again)).toBe(0)
    const report = JSON.parse(again.stdout) as { digest: string; transferred: number; skipped: number }
    expect(report.digest).toBe(images[0]!.manifestDigest)
    // Config and layers, each already present.
    expect(report).toMatchObject({ transferred: 0, skipped: 1 + images[0]!.layerDigests.length })
    expect(await fs.readFile(path.join(imagesDir(home), "index.json"), "utf8")).toBe(before)
    expect(await fs.readdir(path.join(imagesDir(home), ".pins")).catch(() => [])).toEqual([])
  })

  it("[I2] a tag that moved in the registry is pulled and recorded at its new digest", async () => {
    const home = await freshHome()
    await skopeoPush(images[0]!, { registry: registry.host, repository: "moving/app" })
    await pull(home, `${registry.host}/moving/app:1.0`, images[0]!.manifestDigest)
    await skopeoPush(images[1]!, { registry: registry.host, repository: "moving/app" })
    await pull(home, `${registry.host}/moving/app:1.0`, images[1]!.manifestDigest)
    const entries = (await indexJson(imagesDir(home))).manifests.filter((e) => e.annotations?.[IMAGE_NAME] === `${registry.host}/moving/app:1.0`)
    expect(entries.map((e) => e.digest)).toEqual([images[1]!.manifestDigest])
  })

  it("[P5] a blob missing from the store is downloaded again", async () => {
    const home = await freshHome()
    await pull(home, refOf(1), images[1]!.manifestDigest)
    const layer = images[1]!.layerDigests[0]!
    await fs.rm(blobFile(home, layer))
    await pull(home, refOf(1), images[1]!.manifestDigest)
    expect((await expectBlobsIntact(imagesDir(home))).has(layer)).toBe(true)
  })

  it("[I2] a digest whose image the store holds whole is pulled again with its registry gone: content is what its digest names", async () => {
    const home = await freshHome()
    const own = await startRegistry({ mode: "none" })
    const ref = `${own.host}/offline/app@${images[2]!.manifestDigest}`
    try {
      await skopeoPush(images[2]!, { registry: own.host, repository: "offline/app" })
      await pull(home, ref, images[2]!.manifestDigest)
    } finally {
      await own.stop()
    }
    await pull(home, ref, images[2]!.manifestDigest)
    // A tag still needs its registry: where it points now is the registry's to say.
    const tag = await cli(home, ["pull", `${own.host}/offline/app:1.0`])
    expect(tag.code, show(tag)).not.toBe(0)
  })
})

describe("[M5] images list | rm | prune", () => {
  it("[M5] list: a table, --json as specified, -q; the total equals the bytes on disk", async () => {
    const home = await freshHome()
    const empty = await cli(home, ["images", "list"])
    expect([empty.code, empty.stdout, empty.stderr]).toEqual([0, "", ""])
    await expect(fs.access(imagesDir(home))).rejects.toThrow()

    await pull(home, refOf(0), images[0]!.manifestDigest)
    await pull(home, `${registry.host}/demo/multi:1.0`, multi.indexDigest)
    const arm = multi.children.find((c) => c.platform.architecture === "arm64")!
    // The same image again, by digest: its blobs are on disk once.
    await pull(home, `${registry.host}/demo/multi@${arm.manifestDigest}`, arm.manifestDigest)

    const r = await cli(home, ["images", "list", "--json"])
    expect(r.code, show(r)).toBe(0)
    const listed = JSON.parse(r.stdout) as { images: Array<Record<string, unknown>>; totalBytes: number }
    expect(Object.keys(listed)).toEqual(["images", "totalBytes"])
    expect(listed.images.map((i) => Object.keys(i))).toEqual(listed.images.map(() => ["reference", "digest", "platforms", "size", "pulledAt"]))
    expect(listed.images.map((i) => [i["reference"], i["digest"], i["platforms"]])).toEqual([
      [refOf(0), images[0]!.manifestDigest, ["linux/amd64"]],
      [`${registry.host}/demo/multi:1.0`, multi.indexDigest, ["linux/amd64", "linux/arm64"]],
      [`${registry.host}/demo/multi@${arm.manifestDigest}`, arm.manifestDigest, ["linux/arm64"]]
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))))
    for (const image of listed.images) expect(image["pulledAt"]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    expect(listed.totalBytes).toBe(await bytesOnDisk(imagesDir(home)))
    const sizes = listed.images.map((i) => i["size"] as number)
    expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThan(listed.totalBytes)

    const text = await cli(home, ["images", "list"])
    const lines = text.stdout.trimEnd().split("\n")
    expect(lines[0]).toMatch(/^REFERENCE\s+DIGEST\s+PLATFORMS\s+SIZE\s+PULLED AT$/)
    expect(lines).toHaveLength(5)
    expect(lines[1]).toContain(listed.images[0]!["digest"] as string)
    expect(lines[4]).toMatch(/^total \d+(\.\d)? (B|KiB|MiB) on disk/)

    const quiet = await cli(home, ["images", "list", "-q"])
    expect(quiet.stdout.trimEnd().split("\n")).toEqual(listed.images.map((i) => i["reference"]))
  }, 60_000)

  it("[M5] rm then prune frees exactly the blobs no remaining image reaches; an unknown reference removes nothing (exit 1)", async () => {
    const home = await freshHome()
    const store = imagesDir(home)
    const arm = multi.children.find((c) => c.platform.architecture === "arm64")!
    const amd = multi.children.find((c) => c.platform.architecture === "amd64")!
    await pull(home, `${registry.host}/demo/multi:1.0`, multi.indexDigest)
    await pull(home, `${registry.host}/demo/multi@${arm.manifestDigest}`, arm.manifestDigest)
    await pull(home, refOf(0), images[0]!.manifestDigest)
    const before = await fs.readFile(path.join(store, "index.json"), "utf8")

    const unknown = await cli(home, ["images", "rm", refOf(0), `${registry.host}/nope/app:1.0`])
    expect(unknown.code, show(unknown)).toBe(1)
    expect(expectCleanError(unknown)[0]).toBe(`error: no image named ${registry.host}/nope/app:1.0 in the store (${store}); nothing was removed`)
    const malformed = await cli(home, ["images", "rm", "Bad//Name"])
    expect(malformed.code, show(malformed)).toBe(2)
    expectCleanError(malformed)
    expect(await fs.readFile(path.join(store, "index.json"), "utf8")).toBe(before)

    const dry = await cli(home, ["images", "prune", "--dry-run"])
    expect(dry.stdout).toBe("would free 0 blobs, 0 B\n")

    const rm = await cli(home, ["images", "rm", `${registry.host}/demo/multi:1.0`])
    expect(rm.code, show(rm)).toBe(0)
    expect(rm.stdout).toBe(`removed ${registry.host}/demo/multi:1.0 ${multi.indexDigest}\n`)
    const freed = [multi.indexDigest, ...blobsOf(amd)]
    const sizes = await Promise.all(freed.map(async (d) => (await fs.stat(path.join(store, "blobs", "sha256", d.slice(7)))).size))
    const dryJson = await cli(home, ["images", "prune", "--dry-run", "--json"])
    expect(JSON.parse(dryJson.stdout)).toEqual({ dryRun: true, blobs: freed.length, bytes: sizes.reduce((a, b) => a + b, 0), tempFiles: 0, tempBytes: 0 })
    const prune = await cli(home, ["images", "prune"])
    expect(prune.code, show(prune)).toBe(0)
    expect(prune.stdout).toMatch(new RegExp(`^freed ${freed.length} blobs, \\d+(\\.\\d)? (B|KiB)\\n$`))
    const present = await expectBlobsIntact(store)
    expect([...present].sort()).toEqual([...blobsOf(arm), ...blobsOf(images[0]!)].sort())

    // Several at once; then every blob goes.
    const all = await cli(home, ["images", "rm", `${registry.host}/demo/multi@${arm.manifestDigest}`, refOf(0)])
    expect(all.stdout.trimEnd().split("\n")).toHaveLength(2)
    expect((await cli(home, ["images", "prune"])).stdout).toMatch(new RegExp(`^freed ${present.size} blobs, `))
    expect(await expectBlobsIntact(store)).toEqual(new Set())
  }, 60_000)
})
