/**
 * `rootfs build` from a registry ([F1]): a tag is refused until pinned (its current digest in the
 * hint, nothing pulled); a digest is pulled through the usual path, with credentials from
 * $REGISTRY_AUTH_FILE on the htpasswd and token registries, and built; `--platform` picks an
 * index's child. Registries are real (CNCF distribution on loopback), seeded with skopeo.
 */
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { authsFor, imagesDir, writeAuthJson } from "../support/auth.js"
import { makeIndex, skopeoPush, type BuiltIndex, type SkopeoCredentials } from "../support/images.js"
import { buildBusyboxImage, type BuiltLayout } from "../support/layouts.js"
import { startRegistry, type RegistryAuth, type RegistryHandle } from "../support/registry.js"
import { cacheEntries, listing, rootfsBuild, show } from "../support/rootfs.js"
import { useScratch } from "../support/scratch.js"

const ALICE = { user: "alice", password: "alice-Pw-3Rt8" } as const

const { scratchDir } = useScratch("microagent-rootfs-registry-")

let fixtures: string
let busybox: BuiltLayout
let index: BuiltIndex

beforeAll(async () => {
  fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-rootfs-registry-fixtures-")))
  busybox = await buildBusyboxImage(path.join(fixtures, "busybox"), { tag: "1.0" })
  index = await makeIndex({ dir: path.join(fixtures, "index"), tag: "multi", layers: [1024] })
})
afterAll(() => fs.rm(fixtures, { recursive: true, force: true }))

const MODES: ReadonlyArray<{ readonly name: string; readonly auth: RegistryAuth; readonly creds: SkopeoCredentials | undefined }> = [
  { name: "anonymous", auth: { mode: "none" }, creds: undefined },
  { name: "htpasswd", auth: { mode: "htpasswd", users: { [ALICE.user]: ALICE.password } }, creds: ALICE },
  { name: "token", auth: { mode: "token", users: { [ALICE.user]: ALICE.password } }, creds: ALICE }
]

describe.each(MODES)("[F1] rootfs build from the $name registry", (mode) => {
  let registry: RegistryHandle

  beforeAll(async () => {
    registry = await startRegistry(mode.auth)
    const creds = mode.creds === undefined ? {} : { creds: mode.creds }
    await skopeoPush(busybox, { registry: registry.host, repository: "team/busybox", ...creds })
    await skopeoPush(index, { registry: registry.host, repository: "team/multi", all: true, ...creds })
  })
  afterAll(() => registry?.stop())

  /** A scratch folder with a HOME and, for the private registries, $REGISTRY_AUTH_FILE holding alice. */
  const setup = async () => {
    const scratch = await scratchDir()
    const home = path.join(scratch, "home")
    await fs.mkdir(home)
    const env: Record<string, string> = {}
    if (mode.creds !== undefined) {
      env["REGISTRY_AUTH_FILE"] = await writeAuthJson(path.join(scratch, "auth.json"), authsFor({ [registry.host]: `${ALICE.user}:${ALICE.password}` }))
    }
    return { scratch, home, env }
  }

  it("[F1] a tag is refused (exit 2) with the digest it points to now in the hint, and nothing is pulled", async () => {
    const { env, home, scratch } = await setup()
    const ref = `${registry.host}/team/busybox:1.0`
    const r = await rootfsBuild(scratch, home, [ref, "--out", path.join(scratch, "out")], env)
    expect(r.code, show(r)).toBe(2)
    expect(r.stdout).toBe("")
    const [error, hint] = r.stderr.trim().split("\n")
    expect(error).toBe(`error: ${ref} is a tag, which can move; rootfs build takes a digest`)
    expect(hint).toContain(`${registry.host}/team/busybox@${busybox.manifestDigest}`)
    expect(hint).toContain("--allow-mutable")
    expect(await listing(path.join(imagesDir(home), "blobs", "sha256"))).toEqual([])
    expect(await cacheEntries(home)).toEqual([])
    expect(await listing(scratch)).not.toContain("out")
  })

  it("[F1] a digest is pulled into the store and built; the bundle runs the image's user and has its files", async () => {
    const { env, home, scratch } = await setup()
    const ref = `${registry.host}/team/busybox@${busybox.manifestDigest}`
    const out = path.join(scratch, "out")
    const r = await rootfsBuild(scratch, home, [ref, "--out", out, "--json"], env)
    expect(r.code, show(r)).toBe(0)
    expect(r.json).toMatchObject({ reference: ref, digest: busybox.manifestDigest, format: "dir", output: out, cached: false })
    expect((await fs.stat(path.join(out, "rootfs", "bin", "busybox"))).isFile()).toBe(true)
    const config = JSON.parse(await fs.readFile(path.join(out, "config.json"), "utf8")) as { process: { user: { uid: number } } }
    expect(config.process.user.uid).toBe(1000)
    expect(await listing(path.join(imagesDir(home), "blobs", "sha256"))).toContain(busybox.layers[0]!.digest.slice("sha256:".length))
  })

  it("[F1] --allow-mutable takes the tag", async () => {
    const { env, home, scratch } = await setup()
    const r = await rootfsBuild(scratch, home, [`${registry.host}/team/busybox:1.0`, "--allow-mutable", "--out", path.join(scratch, "out"), "--json"], env)
    expect(r.code, show(r)).toBe(0)
    expect(r.json).toMatchObject({ digest: busybox.manifestDigest })
  })

  it("[F1] --platform picks an index's child; without it, this machine's platform", async () => {
    const { env, home, scratch } = await setup()
    const ref = `${registry.host}/team/multi@${index.indexDigest}`
    const arm = await rootfsBuild(scratch, home, [ref, "--platform", "linux/arm64", "--out", path.join(scratch, "arm"), "--json"], env)
    expect(arm.code, show(arm)).toBe(0)
    const arm64 = index.children.find((c) => c.platform.architecture === "arm64")!
    expect(arm.json).toMatchObject({ digest: arm64.manifestDigest, platform: "linux/arm64" })
    const host = await rootfsBuild(scratch, home, [ref, "--out", path.join(scratch, "host"), "--json"], env)
    expect(host.code, show(host)).toBe(0)
    const own = index.children.find((c) => c.platform.architecture === (process.arch === "x64" ? "amd64" : process.arch))!
    expect(host.json).toMatchObject({ digest: own.manifestDigest })
  })

  if (mode.creds !== undefined) {
    it("[F1][E1] without credentials the private registry's image is not pulled: exit 3", async () => {
      const { home, scratch } = await setup()
      const r = await rootfsBuild(scratch, home, [`${registry.host}/team/busybox@${busybox.manifestDigest}`, "--out", path.join(scratch, "out")])
      expect(r.code, show(r)).toBe(3)
      expect(await listing(scratch)).not.toContain("out")
    })
  }
})
