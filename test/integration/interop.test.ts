/**
 * Interoperability with other OCI tools (SPEC [I2]-[I4]): skopeo and umoci read the layouts
 * microagent writes, skopeo pulls what microagent pushes, and microagent pulls what skopeo pushes.
 * One anonymous CNCF distribution registry on loopback.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { blobsOf, expectBlobsIntact, expectDigest, hasBlob } from "../support/assertions.js"
import { imagesDir } from "../support/auth.js"
import { runCli, type CliResult } from "../support/cli.js"
import {
  makeImage,
  makeIndex,
  skopeoInspect,
  skopeoInspectDigest,
  skopeoPush,
  type BuiltImage,
  type BuiltIndex
} from "../support/images.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

const run = promisify(execFile)

// ---------------------------------------------------------------------------------------------
// Helpers

const { freshHome, scratchDir } = useScratch("microagent-interop-")

const cli = (home: string, args: ReadonlyArray<string>): Promise<CliResult> =>
  runCli(args, { env: { HOME: home }, timeoutMs: 30_000 })

/** Runs a tool, failing the test with its stderr. */
const tool = async (command: string, args: ReadonlyArray<string>): Promise<string> => {
  try {
    const { stdout } = await run(command, [...args], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  } catch (error) {
    const failure = error as { stderr?: string; message?: string }
    throw new Error(`${command} ${args.join(" ")} failed: ${failure.stderr?.trim() || failure.message}`)
  }
}

/** `skopeo copy` with no credentials and plain http to the loopback registry. */
const skopeoCopy = (source: string, destination: string, extra: ReadonlyArray<string> = []) =>
  tool("skopeo", [
    "--insecure-policy", "copy", "--retry-times", "0",
    "--src-tls-verify=false", "--src-no-creds", "--dest-tls-verify=false", "--dest-no-creds",
    ...extra, source, destination
  ])

// ---------------------------------------------------------------------------------------------
// One registry and fixture layouts for the whole file; skopeo seeds `src/*`.

let registry: RegistryHandle
let fixtures: string
let image: BuiltImage
let index: BuiltIndex

beforeAll(async () => {
  fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-interop-fixtures-")))
  image = await makeImage({ dir: path.join(fixtures, "image"), tag: "v1", layers: [4 * 1024, 128 * 1024] })
  index = await makeIndex({ dir: path.join(fixtures, "index"), tag: "multi" })
  registry = await startRegistry({ mode: "none" })
  await skopeoPush(image, { registry: registry.host, repository: "src/app" })
  await skopeoPush(image, { registry: registry.host, repository: "src/app", destTag: "latest" })
  await skopeoPush(index, { registry: registry.host, repository: "src/multi", all: true })
})
afterAll(async () => {
  await registry?.stop()
  if (fixtures !== undefined) await fs.rm(fixtures, { recursive: true, force: true })
})

const arm64 = () => index.children.find((c) => c.platform.architecture === "arm64")!

// ---------------------------------------------------------------------------------------------

describe("[I2] skopeo reads what microagent pulled", () => {
  it("[I2] skopeo inspect oci:<output>:<tag> sees microagent's digest, and skopeo copy pushes it on", async () => {
    const home = await freshHome()
    const out = path.join(await scratchDir(), "out")
    const r = await cli(home, ["pull", `${registry.host}/src/app:v1`, "--output", out])
    expectDigest(r, image.manifestDigest)
    const printed = r.stdout.trim()

    expect(await skopeoInspectDigest(`oci:${out}:v1`)).toBe(printed)
    const inspected = await skopeoInspect(`oci:${out}:v1`)
    expect(inspected["Digest"]).toBe(printed)
    expect(inspected["Layers"]).toEqual(image.layerDigests)

    await skopeoCopy(`oci:${out}:v1`, `docker://${registry.host}/copy:1`)
    expect(await skopeoInspectDigest(`docker://${registry.host}/copy:1`, {})).toBe(printed)
  })

  it("[I2] skopeo reads the shared store by full reference (oci:~/.microagent/images:<registry>/<repository>:<tag>)", async () => {
    const home = await freshHome()
    const r = await cli(home, ["pull", `${registry.host}/src/app:v1`])
    expectDigest(r, image.manifestDigest)
    expect(await skopeoInspectDigest(`oci:${imagesDir(home)}:${registry.host}/src/app:v1`)).toBe(image.manifestDigest)
  })

  it("[I2][I3] skopeo reads a whole index microagent pulled and copies it on with --all", async () => {
    const home = await freshHome()
    const out = path.join(await scratchDir(), "out")
    expectDigest(await cli(home, ["pull", `${registry.host}/src/multi:multi`, "--output", out]), index.indexDigest)
    expect(await skopeoInspectDigest(`oci:${out}:multi`)).toBe(index.indexDigest)
    await skopeoCopy(`oci:${out}:multi`, `docker://${registry.host}/copy-multi:1`, ["--all", "--preserve-digests"])
    expect(await skopeoInspectDigest(`docker://${registry.host}/copy-multi:1`, {})).toBe(index.indexDigest)
    for (const child of index.children) {
      expect(await skopeoInspectDigest(`docker://${registry.host}/copy-multi@${child.manifestDigest}`, {})).toBe(child.manifestDigest)
    }
  })

  it("[I2] umoci ls --layout lists the tag microagent pulled", async () => {
    const home = await freshHome()
    const out = path.join(await scratchDir(), "out")
    expectDigest(await cli(home, ["pull", `${registry.host}/src/app:v1`, "--output", out]), image.manifestDigest)
    const listed = await tool("umoci", ["ls", "--layout", out])
    expect(listed.split("\n").map((line) => line.trim())).toContain("v1")
  })

  it("[I2] umoci ls --layout lists the full references in the shared store", async () => {
    const home = await freshHome()
    expectDigest(await cli(home, ["pull", `${registry.host}/src/app:v1`]), image.manifestDigest)
    expectDigest(await cli(home, ["pull", `${registry.host}/src/multi:multi`, "--platform", "linux/arm64"]), arm64().manifestDigest)
    const listed = (await tool("umoci", ["ls", "--layout", imagesDir(home)])).split("\n").map((line) => line.trim())
    expect(listed).toContain(`${registry.host}/src/app:v1`)
    expect(listed).toContain(`${registry.host}/src/multi:multi`)
  })
})

describe("[I4] skopeo pulls what microagent pushed", () => {
  it("[I4] an image pushed from a layout: skopeo copy docker://… oci:<dir2>:t has the same manifest digest", async () => {
    const home = await freshHome()
    const target = `${registry.host}/pushed/app:v1`
    const r = await cli(home, ["push", `oci:${image.dir}:${image.tag}`, target])
    expectDigest(r, image.manifestDigest)

    const dir2 = path.join(await scratchDir(), "dir2")
    await skopeoCopy(`docker://${target}`, `oci:${dir2}:t`)
    expect(await skopeoInspectDigest(`oci:${dir2}:t`)).toBe(r.stdout.trim())
    await expectBlobsIntact(dir2)
  })

  it("[I4] an image pushed from the store to a new repository: skopeo copies it with the same digest", async () => {
    const home = await freshHome()
    expectDigest(await cli(home, ["pull", `${registry.host}/src/app:v1`]), image.manifestDigest)
    const target = `${registry.host}/pushed/from-store:v2`
    expectDigest(await cli(home, ["push", `${registry.host}/src/app:v1`, target]), image.manifestDigest)

    const dir2 = path.join(await scratchDir(), "dir2")
    await skopeoCopy(`docker://${target}`, `oci:${dir2}:t`)
    expect(await skopeoInspectDigest(`oci:${dir2}:t`)).toBe(image.manifestDigest)
  })

  it("[I4] an index pushed from a layout: skopeo copy --all gets the same index and children", async () => {
    const home = await freshHome()
    const target = `${registry.host}/pushed/multi:m`
    expectDigest(await cli(home, ["push", `oci:${index.dir}:${index.tag}`, target]), index.indexDigest)

    const dir2 = path.join(await scratchDir(), "dir2")
    await skopeoCopy(`docker://${target}`, `oci:${dir2}:t`, ["--all", "--preserve-digests"])
    expect(await skopeoInspectDigest(`oci:${dir2}:t`)).toBe(index.indexDigest)
    for (const digest of index.children.flatMap(blobsOf)) expect(await hasBlob(dir2, digest), digest).toBe(true)
  })
})

describe("[I3] microagent pulls what skopeo pushed", () => {
  it("[I3] an image: the printed digest is the layout's manifest digest and every blob is stored", async () => {
    const home = await freshHome()
    const out = path.join(await scratchDir(), "out")
    expectDigest(await cli(home, ["pull", `${registry.host}/src/app:v1`, "--output", out]), image.manifestDigest)
    for (const digest of blobsOf(image)) expect(await hasBlob(out, digest), digest).toBe(true)
    await expectBlobsIntact(out)
  })

  it("[I3] an index pushed with --all: the index digest, every child stored", async () => {
    const home = await freshHome()
    const out = path.join(await scratchDir(), "out")
    expectDigest(await cli(home, ["pull", `${registry.host}/src/multi:multi`, "--output", out]), index.indexDigest)
    for (const digest of [index.indexDigest, ...index.children.flatMap(blobsOf)]) expect(await hasBlob(out, digest), digest).toBe(true)
    await expectBlobsIntact(out)
  })

  it("[I3] an index pushed with --all, --platform linux/arm64/v8: the arm64 child", async () => {
    const home = await freshHome()
    const out = path.join(await scratchDir(), "out")
    const r = await cli(home, ["pull", `${registry.host}/src/multi:multi`, "--platform", "linux/arm64/v8", "--output", out])
    expectDigest(r, arm64().manifestDigest)
    for (const digest of blobsOf(arm64())) expect(await hasBlob(out, digest), digest).toBe(true)
  })

  it("[I3] --platform aliases: linux/aarch64 is arm64, linux/x86_64 is amd64", async () => {
    const home = await freshHome()
    const amd64 = index.children.find((c) => c.platform.architecture === "amd64")!
    expectDigest(await cli(home, ["pull", `${registry.host}/src/multi:multi`, "--platform", "linux/aarch64", "--output", path.join(await scratchDir(), "a")]), arm64().manifestDigest)
    expectDigest(await cli(home, ["pull", `${registry.host}/src/multi:multi`, "--platform", "linux/x86_64", "--output", path.join(await scratchDir(), "b")]), amd64.manifestDigest)
  })

  it("[I1] a reference without a tag pulls :latest", async () => {
    const home = await freshHome()
    const out = path.join(await scratchDir(), "out")
    expectDigest(await cli(home, ["pull", `${registry.host}/src/app`, "--output", out]), image.manifestDigest)
    expect(await skopeoInspectDigest(`oci:${out}:latest`)).toBe(image.manifestDigest)
  })

  it("[I3] an index by digest (repo@sha256:…): the index digest", async () => {
    const home = await freshHome()
    const out = path.join(await scratchDir(), "out")
    expectDigest(await cli(home, ["pull", `${registry.host}/src/multi@${index.indexDigest}`, "--output", out]), index.indexDigest)
    for (const digest of [index.indexDigest, ...index.children.flatMap(blobsOf)]) expect(await hasBlob(out, digest), digest).toBe(true)
  })
})
