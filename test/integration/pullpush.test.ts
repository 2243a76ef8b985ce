/**
 * `microagent pull` and `microagent push` end to end (SPEC §1, §3, §4, §5) against real CNCF
 * distribution registries on loopback — anonymous, htpasswd and token-server auth — with skopeo as
 * the independent judge of what reached the registry and of the layouts microagent writes.
 *
 * Fixtures are seeded with skopeo in beforeAll, so a pull test never depends on microagent's push.
 */
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { blobsOf, expectBlobsIntact, expectDigest, hasBlob, PROGRESS_LINE, show } from "../support/assertions.js"
import { authsFor, imagesDir, storePath, writeAuthJson } from "../support/auth.js"
import { runCli, type CliResult } from "../support/cli.js"
import { startFaultProxy, type ProxyHandle } from "../support/faultProxy.js"
import {
  makeImage,
  makeIndex,
  skopeoInspect,
  skopeoInspectDigest,
  skopeoPush,
  type BuiltImage,
  type BuiltIndex,
  type SkopeoCredentials
} from "../support/images.js"
import { startRegistry, type RegistryAuth, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

// ---------------------------------------------------------------------------------------------
// Helpers

const ALICE = { user: "alice", password: "alice-Pw-7Qx9" } as const
const WRONG = "wrong-Pw-Zk42"
const REF_NAME = "org.opencontainers.image.ref.name"
const IMAGE_NAME = "io.containerd.image.name"

const { freshHome, scratchDir } = useScratch("microagent-pullpush-")

/** Writes microagent's own store ([C1]) with `key → user:password` entries. */
const seedStore = (home: string, entries: Record<string, string>) => writeAuthJson(storePath(home), authsFor(entries))

/** Writes a containers-auth.json outside HOME, to be named by $REGISTRY_AUTH_FILE. */
const seedAuthFile = async (entries: Record<string, string>): Promise<string> =>
  writeAuthJson(path.join(await scratchDir(), "containers-auth.json"), authsFor(entries))

type Env = Record<string, string | undefined>

const cli = (home: string, args: ReadonlyArray<string>, env: Env = {}): Promise<CliResult> =>
  runCli(args, { env: { HOME: home, ...env }, timeoutMs: 30_000 })

/** Exits with `code` and an `error:` line first on stderr (progress lines aside), nothing on stdout. */
const expectFailure = (r: CliResult, code: number) => {
  expect(r.code, show(r)).toBe(code)
  const lines = r.stderr.split("\n").filter((l) => l !== "" && !PROGRESS_LINE.test(l))
  expect(lines[0], show(r)).toMatch(/^error: \S/)
  expect(r.stdout, show(r)).toBe("")
}

interface IndexEntry {
  readonly mediaType: string
  readonly digest: string
  readonly size: number
  readonly annotations?: Record<string, string>
}
const readIndexJson = async (dir: string): Promise<ReadonlyArray<IndexEntry>> =>
  (JSON.parse(await fs.readFile(path.join(dir, "index.json"), "utf8")) as { manifests: Array<IndexEntry> }).manifests

/** A layout microagent wrote is sound: oci-layout present, every blob hashes to its name, every expected blob there. */
const expectSoundLayout = async (dir: string, expected: ReadonlyArray<string>) => {
  const layoutFile = JSON.parse(await fs.readFile(path.join(dir, "oci-layout"), "utf8")) as { imageLayoutVersion?: string }
  expect(layoutFile.imageLayoutVersion).toBe("1.0.0")
  const present = await expectBlobsIntact(dir)
  expect(expected.filter((d) => !present.has(d)), "expected blobs missing from the layout").toEqual([])
  return present
}

// ---------------------------------------------------------------------------------------------
// Fixtures shared by the whole file (layouts are read-only once built)

let fixtures: string
let image: BuiltImage
let index: BuiltIndex

beforeAll(async () => {
  fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-pullpush-fixtures-")))
  image = await makeImage({ dir: path.join(fixtures, "image"), tag: "v1", layers: [4 * 1024, 256 * 1024] })
  index = await makeIndex({ dir: path.join(fixtures, "index"), tag: "multi", layers: [2 * 1024, 8 * 1024] })
})
afterAll(() => fs.rm(fixtures, { recursive: true, force: true }))

const amd64 = () => index.children.find((c) => c.platform.architecture === "amd64")!
const arm64 = () => index.children.find((c) => c.platform.architecture === "arm64")!

// ---------------------------------------------------------------------------------------------
// The same pull/push behaviour in each registry auth mode

interface Mode {
  readonly name: string
  readonly auth: RegistryAuth
  /** how the CLI gets alice's credentials; undefined: anonymous registry */
  readonly via?: "REGISTRY_AUTH_FILE" | "own store"
}

const MODES: ReadonlyArray<Mode> = [
  { name: "anonymous", auth: { mode: "none" } },
  { name: "htpasswd", auth: { mode: "htpasswd", users: { [ALICE.user]: ALICE.password } }, via: "REGISTRY_AUTH_FILE" },
  { name: "token", auth: { mode: "token", users: { [ALICE.user]: ALICE.password } }, via: "own store" }
]

describe.each(MODES)("pull and push, $name registry", (mode) => {
  let registry: RegistryHandle
  const creds: SkopeoCredentials | undefined = mode.via === undefined ? undefined : ALICE
  const skopeoOpts = () => (creds === undefined ? {} : { creds })

  beforeAll(async () => {
    registry = await startRegistry(mode.auth)
    // Seeded with skopeo, independently of microagent.
    await skopeoPush(image, { registry: registry.host, repository: "team/app", ...skopeoOpts() })
    await skopeoPush(index, { registry: registry.host, repository: "team/multi", all: true, ...skopeoOpts() })
  })
  afterAll(() => registry?.stop())

  /** A fresh HOME where the CLI finds alice's credentials the way this mode says; returns its env too. */
  const setup = async (password: string = ALICE.password): Promise<{ home: string; env: Env; authFile: string | undefined }> => {
    const home = await freshHome()
    switch (mode.via) {
      case undefined:
        return { home, env: {}, authFile: undefined }
      case "REGISTRY_AUTH_FILE": {
        const file = await seedAuthFile({ [registry.host]: `${ALICE.user}:${password}` })
        return { home, env: { REGISTRY_AUTH_FILE: file }, authFile: file }
      }
      case "own store":
        return { home, env: {}, authFile: await seedStore(home, { [registry.host]: `${ALICE.user}:${password}` }) }
    }
    throw new Error(`unknown credential source ${String(mode.via)}`)
  }

  it("[I4] push oci:<dir>:<tag> prints the layout's manifest digest, and the registry serves that digest", async () => {
    const { env, home } = await setup()
    const target = `${registry.host}/pushed/app:v1`
    const r = await cli(home, ["push", `oci:${image.dir}:${image.tag}`, target], env)
    expectDigest(r, image.manifestDigest)
    expect(await skopeoInspectDigest(`docker://${target}`, skopeoOpts())).toBe(image.manifestDigest)
    const inspected = await skopeoInspect(`docker://${target}`, skopeoOpts())
    expect(inspected["Digest"]).toBe(image.manifestDigest)
    expect(inspected["Layers"]).toEqual(image.layerDigests)
  })

  it("[I2][I3] pull by tag into the store prints the digest and records the full reference as both names in index.json", async () => {
    const { env, home } = await setup()
    const ref = `${registry.host}/team/app:v1`
    expectDigest(await cli(home, ["pull", ref], env), image.manifestDigest)

    const store = imagesDir(home)
    await expectSoundLayout(store, blobsOf(image))
    const entries = await readIndexJson(store)
    expect(entries).toContainEqual(expect.objectContaining({
      digest: image.manifestDigest,
      annotations: expect.objectContaining({ [REF_NAME]: ref, [IMAGE_NAME]: ref })
    }))
    expect(await skopeoInspectDigest(`oci:${store}:${ref}`)).toBe(image.manifestDigest)
  })

  it("[I2][I3] pull by tag into --output writes a layout skopeo reads with the same digest", async () => {
    const { env, home } = await setup()
    const out = path.join(await scratchDir(), "out")
    const ref = `${registry.host}/team/app:v1`
    expectDigest(await cli(home, ["pull", ref, "--output", out], env), image.manifestDigest)

    await expectSoundLayout(out, blobsOf(image))
    const inspected = await skopeoInspect(`oci:${out}:v1`)
    expect(inspected["Digest"]).toBe(image.manifestDigest)
    expect(await skopeoInspectDigest(`oci:${out}:v1`)).toBe(image.manifestDigest)
    // --output writes there instead of the shared store.
    await expect(fs.access(path.join(imagesDir(home), "index.json"))).rejects.toThrow()
  })

  it("[I1][I3] pull by digest (repo@sha256:…) prints that digest", async () => {
    const { env, home } = await setup()
    const out = path.join(await scratchDir(), "out")
    const ref = `${registry.host}/team/app@${image.manifestDigest}`
    expectDigest(await cli(home, ["pull", ref, "--output", out], env), image.manifestDigest)
    await expectSoundLayout(out, blobsOf(image))
    const entries = await readIndexJson(out)
    expect(entries).toContainEqual(expect.objectContaining({
      digest: image.manifestDigest,
      annotations: expect.objectContaining({ [IMAGE_NAME]: ref })
    }))
  })

  it("[I4] push a two-platform index from a layout (children before the index): digest is the index's, the registry has all", async () => {
    const { env, home } = await setup()
    const target = `${registry.host}/pushed/multi:m`
    const r = await cli(home, ["push", `oci:${index.dir}:${index.tag}`, target], env)
    expectDigest(r, index.indexDigest)
    expect(await skopeoInspectDigest(`docker://${target}`, skopeoOpts())).toBe(index.indexDigest)
    for (const child of index.children) {
      expect(await skopeoInspectDigest(`docker://${registry.host}/pushed/multi@${child.manifestDigest}`, skopeoOpts())).toBe(child.manifestDigest)
    }
  })

  it("[I3] pull an index by tag without --platform stores it whole and prints the index digest", async () => {
    const { env, home } = await setup()
    const out = path.join(await scratchDir(), "out")
    expectDigest(await cli(home, ["pull", `${registry.host}/team/multi:multi`, "--output", out], env), index.indexDigest)
    await expectSoundLayout(out, [index.indexDigest, ...index.children.flatMap(blobsOf)])
    expect(await readIndexJson(out)).toContainEqual(expect.objectContaining({ digest: index.indexDigest }))
    expect(await skopeoInspectDigest(`oci:${out}:multi`)).toBe(index.indexDigest)
  })

  it("[I3] pull an index with --platform linux/arm64 stores only the arm64 child and prints its digest", async () => {
    const { env, home } = await setup()
    const out = path.join(await scratchDir(), "out")
    const r = await cli(home, ["pull", `${registry.host}/team/multi:multi`, "--platform", "linux/arm64", "--output", out], env)
    expectDigest(r, arm64().manifestDigest)
    await expectSoundLayout(out, blobsOf(arm64()))
    for (const digest of blobsOf(amd64())) expect(await hasBlob(out, digest), `amd64 blob ${digest} stored`).toBe(false)
    const entries = await readIndexJson(out)
    expect(entries.map((e) => e.digest)).toEqual([arm64().manifestDigest])
    expect(await skopeoInspectDigest(`oci:${out}:multi`)).toBe(arm64().manifestDigest)
  })

  it("[I3][E6] pull an index with --platform linux/s390x exits 1 and lists the platforms available", async () => {
    const { env, home } = await setup()
    const r = await cli(home, ["pull", `${registry.host}/team/multi:multi`, "--platform", "linux/s390x"], env)
    expectFailure(r, 1)
    expect(r.stderr).toContain("linux/s390x")
    expect(r.stderr).toContain("linux/amd64")
    expect(r.stderr).toMatch(/linux\/arm64/)
  })

  it("[I4] push from the store to another repository of the same registry keeps the digest", async () => {
    const { env, home } = await setup()
    const source = `${registry.host}/team/app:v1`
    expectDigest(await cli(home, ["pull", source], env), image.manifestDigest)
    const target = `${registry.host}/other/app:v2`
    expectDigest(await cli(home, ["push", source, target], env), image.manifestDigest)
    expect(await skopeoInspectDigest(`docker://${target}`, skopeoOpts())).toBe(image.manifestDigest)
  })

  it("[E6] pull of an unknown tag exits 1 with an error saying it was not found", async () => {
    const { env, home } = await setup()
    const r = await cli(home, ["pull", `${registry.host}/team/app:no-such-tag`], env)
    expectFailure(r, 1)
    expect(r.stderr).toMatch(/^error: .*not found/im)
  })

  // Only registries that demand credentials can miss or refuse them.
  if (mode.via !== undefined) {
    it("[E1] pull with no credentials at all exits 3 with the login hint", async () => {
      const home = await freshHome()
      const r = await cli(home, ["pull", `${registry.host}/team/app:v1`])
      expectFailure(r, 3)
      expect(r.stderr).toMatch(/^hint: .*microagent registry login /m)
      expect(r.stderr).toContain(`microagent registry login ${registry.host}`)
    })

    it("[E3][C12] a wrong password exits 4 naming the auth file it came from", async () => {
      const { authFile, env, home } = await setup(WRONG)
      const r = await cli(home, ["pull", `${registry.host}/team/app:v1`], env)
      expectFailure(r, 4)
      expect(r.stderr).toContain(authFile!)
      expect(r.stderr).not.toContain(WRONG)
    })
  }
})

// ---------------------------------------------------------------------------------------------

describe("[E3] token server granting alice pull only", () => {
  let registry: RegistryHandle
  const SEEDER = { user: "seeder", password: "seeder-Pw-1" }

  beforeAll(async () => {
    registry = await startRegistry({
      mode: "token",
      users: { [ALICE.user]: ALICE.password, [SEEDER.user]: SEEDER.password },
      grant: (user, _repository, requested) =>
        user === SEEDER.user ? requested : user === ALICE.user ? requested.filter((a) => a === "pull") : []
    })
    await skopeoPush(image, { registry: registry.host, repository: "team/app", creds: SEEDER })
  })
  afterAll(() => registry?.stop())

  it("alice can pull (sanity)", async () => {
    const home = await freshHome()
    await seedStore(home, { [registry.host]: `${ALICE.user}:${ALICE.password}` })
    expectDigest(await cli(home, ["pull", `${registry.host}/team/app:v1`, "--output", path.join(await scratchDir(), "o")]), image.manifestDigest)
  })

  it("[E3] push exits 4 and names the auth file the credentials came from ($REGISTRY_AUTH_FILE)", async () => {
    const home = await freshHome()
    const file = await seedAuthFile({ [registry.host]: `${ALICE.user}:${ALICE.password}` })
    const r = await cli(home, ["push", `oci:${image.dir}:${image.tag}`, `${registry.host}/team/app:v9`], { REGISTRY_AUTH_FILE: file })
    expectFailure(r, 4)
    expect(r.stderr).toContain(file)
    expect(r.stderr).toMatch(/push/)
    expect(r.stderr).toContain("team/app")
  })

  it("[E3] push exits 4 and names the auth file the credentials came from (own store)", async () => {
    const home = await freshHome()
    const file = await seedStore(home, { [registry.host]: `${ALICE.user}:${ALICE.password}` })
    const r = await cli(home, ["push", `oci:${image.dir}:${image.tag}`, `${registry.host}/team/new:v1`])
    expectFailure(r, 4)
    expect(r.stderr).toContain(file)
  })
})

// ---------------------------------------------------------------------------------------------

describe("credential resolution on pull (htpasswd registry) [C4][C7][C8]", () => {
  let registry: RegistryHandle
  const right = `${ALICE.user}:${ALICE.password}`
  const wrong = `${ALICE.user}:${WRONG}`

  beforeAll(async () => {
    registry = await startRegistry({ mode: "htpasswd", users: { [ALICE.user]: ALICE.password } })
    await skopeoPush(image, { registry: registry.host, repository: "team/app", creds: ALICE })
    await skopeoPush(image, { registry: registry.host, repository: "other/app", creds: ALICE })
  })
  afterAll(() => registry?.stop())

  const pull = async (home: string, repository: string, env: Env = {}) =>
    cli(home, ["pull", `${registry.host}/${repository}:v1`, "--output", path.join(await scratchDir(), "out")], env)

  it("[C8] $REGISTRY_AUTH_FILE (right) beats the own store (wrong): pull works", async () => {
    const home = await freshHome()
    await seedStore(home, { [registry.host]: wrong })
    const file = await seedAuthFile({ [registry.host]: right })
    expectDigest(await pull(home, "team/app", { REGISTRY_AUTH_FILE: file }), image.manifestDigest)
  })

  it("[C8][E3] $REGISTRY_AUTH_FILE (wrong) beats the own store (right): exit 4 naming $REGISTRY_AUTH_FILE", async () => {
    const home = await freshHome()
    const store = await seedStore(home, { [registry.host]: right })
    const file = await seedAuthFile({ [registry.host]: wrong })
    const r = await pull(home, "team/app", { REGISTRY_AUTH_FILE: file })
    expectFailure(r, 4)
    expect(r.stderr).toContain(file)
    expect(r.stderr).not.toContain(store)
  })

  it("[C7] a namespace key (<host>/team) beats the registry key (<host>): pulling <host>/team/app works", async () => {
    const home = await freshHome()
    // The broad key first, so file order cannot be what picks the namespace key.
    await seedStore(home, { [registry.host]: wrong, [`${registry.host}/team`]: right })
    expectDigest(await pull(home, "team/app"), image.manifestDigest)
  })

  it("[C7][E3] outside the namespace the registry key applies: pulling <host>/other/app exits 4", async () => {
    const home = await freshHome()
    const store = await seedStore(home, { [registry.host]: wrong, [`${registry.host}/team`]: right })
    const r = await pull(home, "other/app")
    expectFailure(r, 4)
    expect(r.stderr).toContain(store)
  })

  it("[C4][E1] ~/.docker/config.json with the right credentials is never used: exit 3", async () => {
    const home = await freshHome()
    await writeAuthJson(path.join(home, ".docker", "config.json"), authsFor({ [registry.host]: right }))
    const r = await pull(home, "team/app")
    expectFailure(r, 3)
    expect(r.stderr).toContain(`microagent registry login ${registry.host}`)
  })

  it("[C4][E1] $DOCKER_CONFIG/config.json with the right credentials is never used: exit 3", async () => {
    const home = await freshHome()
    const dockerConfig = await scratchDir()
    await writeAuthJson(path.join(dockerConfig, "config.json"), authsFor({ [registry.host]: right }))
    const r = await pull(home, "team/app", { DOCKER_CONFIG: dockerConfig })
    expectFailure(r, 3)
    expect(r.stderr).toContain(`microagent registry login ${registry.host}`)
  })
})

// ---------------------------------------------------------------------------------------------

describe("[P5][I2] a second pull of an image already in the store downloads no blob", () => {
  let registry: RegistryHandle
  let proxy: ProxyHandle

  beforeAll(async () => {
    registry = await startRegistry({ mode: "none" })
    await skopeoPush(image, { registry: registry.host, repository: "team/app" })
    await skopeoPush(index, { registry: registry.host, repository: "team/multi", all: true })
    proxy = await startFaultProxy(registry.host)
  })
  afterAll(async () => {
    await proxy?.stop()
    await registry?.stop()
  })

  /** Digests of the blob GETs the proxy saw, in order. */
  const blobGets = () =>
    proxy.requests
      .filter((r) => r.method === "GET" && /\/blobs\/sha256:[0-9a-f]{64}/.test(r.path))
      .map((r) => /sha256:[0-9a-f]{64}/.exec(r.path)![0])

  it("[P5] single image: the first pull GETs each blob once, the second GETs none", async () => {
    const home = await freshHome()
    const ref = `${proxy.host}/team/app:v1`
    proxy.clearRequests()
    expectDigest(await cli(home, ["pull", ref]), image.manifestDigest)
    expect([...blobGets()].sort()).toEqual([image.configDigest, ...image.layerDigests].sort())

    proxy.clearRequests()
    expectDigest(await cli(home, ["pull", ref]), image.manifestDigest)
    expect(blobGets(), "blob GETs on the second pull").toEqual([])
    await expectSoundLayout(imagesDir(home), blobsOf(image))
    // The same reference pulled twice is recorded once.
    const named = (await readIndexJson(imagesDir(home))).filter((e) => e.annotations?.[IMAGE_NAME] === ref)
    expect(named.map((e) => e.digest)).toEqual([image.manifestDigest])
  })

  it("[P5] two-platform index: the second pull GETs no blob", async () => {
    const home = await freshHome()
    const ref = `${proxy.host}/team/multi:multi`
    proxy.clearRequests()
    expectDigest(await cli(home, ["pull", ref]), index.indexDigest)
    const all = index.children.flatMap((c) => [c.configDigest, ...c.layerDigests])
    expect([...blobGets()].sort()).toEqual([...all].sort())

    proxy.clearRequests()
    expectDigest(await cli(home, ["pull", ref]), index.indexDigest)
    expect(blobGets(), "blob GETs on the second pull").toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------

describe("[E4] usage errors exit 2 before any network traffic", () => {
  // Nothing listens there: a usage error must not even try.
  const host = "127.0.0.1:9"

  it("[E4] pull --jobs 0 exits 2", async () => {
    const r = await cli(await freshHome(), ["pull", `${host}/team/app:v1`, "--jobs", "0"])
    expectFailure(r, 2)
    expect(r.stderr).toMatch(/--jobs/)
  })

  it("[E4] push --jobs 0 exits 2", async () => {
    const r = await cli(await freshHome(), ["push", `oci:${image.dir}:${image.tag}`, `${host}/team/app:v1`, "--jobs", "0"])
    expectFailure(r, 2)
    expect(r.stderr).toMatch(/--jobs/)
  })

  it("[I1][E4] pull Foo/Bar exits 2 saying the name must be lowercase", async () => {
    const r = await cli(await freshHome(), ["pull", "Foo/Bar"])
    expectFailure(r, 2)
    expect(r.stderr).toContain("Foo/Bar")
    expect(r.stderr).toMatch(/^error: .*(lowercase|upper ?case)/im)
  })

  it("[I1][E4] pull host/app:bad tag exits 2 saying the tag is invalid", async () => {
    const r = await cli(await freshHome(), ["pull", "host/app:bad tag"])
    expectFailure(r, 2)
    expect(r.stderr).toMatch(/^error: .*tag/im)
    expect(r.stderr).toContain("bad tag")
  })

  it("[I1][E4] push to a malformed target reference exits 2", async () => {
    const r = await cli(await freshHome(), ["push", `oci:${image.dir}:${image.tag}`, "Foo/Bar"])
    expectFailure(r, 2)
    expect(r.stderr).toContain("Foo/Bar")
  })
})
