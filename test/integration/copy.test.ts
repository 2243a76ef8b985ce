/**
 * `microagent copy` ([M1], [M7], [I2]) against real registries: htpasswd to token across two
 * registries with their own credentials, whole indexes or one platform, mounts within one
 * registry, a source cut mid-blob, `--format oci` read by skopeo and umoci, and the store and
 * layouts on either side.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { expectBlobsIntact, show } from "../support/assertions.js"
import { authsFor, writeAuthJson } from "../support/auth.js"
import { type CliResult, runCli } from "../support/cli.js"
import { type ProxyHandle, startFaultProxy } from "../support/faultProxy.js"
import { type BuiltImage, type BuiltIndex, makeImage, makeIndex, skopeoInspect, skopeoInspectDigest, skopeoPush } from "../support/images.js"
import { buildLayout } from "../support/layouts.js"
import { type RegistryHandle, startRegistry } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

const ALICE = { user: "alice", password: "alice-Pw-7Qx9" } as const
const BOB = { user: "bob", password: "bob-Pw-3Kd8" } as const

const { freshHome, scratchDir } = useScratch("microagent-copy-")

let basic: RegistryHandle
let token: RegistryHandle
let open: RegistryHandle
let proxy: ProxyHandle
let image: BuiltImage
let index: BuiltIndex
let docker: { readonly dir: string; readonly digest: string }
/** $REGISTRY_AUTH_FILE with alice for the htpasswd registry, bob for the token one. */
let authFile: string
/** The fixtures' folder, for the whole file. */
let dir: string

const cli = async (args: ReadonlyArray<string>): Promise<CliResult> =>
  runCli(args, { env: { HOME: await freshHome(), REGISTRY_AUTH_FILE: authFile }, timeoutMs: 60_000 })

const ok = (r: CliResult): string => {
  expect(r.code, show(r)).toBe(0)
  return r.stdout.trim()
}

const creds = (who: { readonly user: string; readonly password: string }) => ({ user: who.user, password: who.password })

beforeAll(async () => {
  ;[basic, token, open] = await Promise.all([
    startRegistry({ mode: "htpasswd", users: { [ALICE.user]: ALICE.password } }),
    startRegistry({ mode: "token", users: { [BOB.user]: BOB.password } }),
    startRegistry({ mode: "none" })
  ])
  dir = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-copy-fixtures-")))
  image = await makeImage({ dir: path.join(dir, "image"), tag: "1.0", layers: [300_000, 5_000] })
  index = await makeIndex({ dir: path.join(dir, "index"), tag: "multi" })
  const dockerDir = path.join(dir, "docker")
  const built = await buildLayout(dockerDir, {
    tag: "d1",
    layers: [{ entries: [{ name: "hello.txt", content: "hello\n" }], compression: "gzip", mediaType: "docker" }]
  })
  docker = { dir: dockerDir, digest: built.manifestDigest }
  authFile = await writeAuthJson(path.join(dir, "auth.json"), authsFor({ [basic.host]: `${ALICE.user}:${ALICE.password}`, [token.host]: `${BOB.user}:${BOB.password}` }))
  await Promise.all([
    skopeoPush(image, { registry: basic.host, repository: "team/app", creds: creds(ALICE) }),
    skopeoPush(index, { registry: basic.host, repository: "team/multi", creds: creds(ALICE), all: true }),
    skopeoPush(image, { registry: open.host, repository: "src/app" })
  ])
  // skopeo's oci: transport reads only OCI manifests: microagent pushes the Docker one as it is.
  ok(await cli(["push", "-q", `oci:${dockerDir}:d1`, `${basic.host}/team/docker:d1`]))
  proxy = await startFaultProxy(open.host)
}, 120_000)

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([basic?.stop(), token?.stop(), open?.stop()])
  if (dir !== undefined) await fs.rm(dir, { recursive: true, force: true })
})

describe("copy between registries ([M1])", () => {
  it("[M1] copies an image from an htpasswd registry to a token registry, each with its own credentials, digest kept", async () => {
    const digest = ok(await cli(["copy", `${basic.host}/team/app:1.0`, `${token.host}/mirror/app:1.0`]))
    expect(digest).toBe(image.manifestDigest)
    expect(await skopeoInspectDigest(`docker://${token.host}/mirror/app:1.0`, { creds: creds(BOB) })).toBe(image.manifestDigest)
    // Bob's token server was asked for push on the target and never saw alice.
    expect(token.tokenRequests.every((r) => r.user !== ALICE.user)).toBe(true)
  })

  it("[M1] a two-platform index is copied whole (--all), children and digest kept", async () => {
    const digest = ok(await cli(["copy", "--all", `${basic.host}/team/multi:multi`, `${token.host}/mirror/multi:multi`]))
    expect(digest).toBe(index.indexDigest)
    expect(await skopeoInspectDigest(`docker://${token.host}/mirror/multi:multi`, { creds: creds(BOB) })).toBe(index.indexDigest)
    for (const child of index.children) {
      expect(await skopeoInspectDigest(`docker://${token.host}/mirror/multi@${child.manifestDigest}`, { creds: creds(BOB) })).toBe(child.manifestDigest)
    }
  })

  it("[M1] --platform copies one child of an index, under the target tag", async () => {
    const arm = index.children.find((c) => c.platform.architecture === "arm64")!
    const digest = ok(await cli(["copy", "--platform", "linux/arm64", `${basic.host}/team/multi:multi`, `${token.host}/mirror/arm:1`]))
    expect(digest).toBe(arm.manifestDigest)
    expect(await skopeoInspectDigest(`docker://${token.host}/mirror/arm:1`, { creds: creds(BOB) })).toBe(arm.manifestDigest)
  })

  it("[M1] --all with --platform is a usage error; nothing is copied", async () => {
    const r = await cli(["copy", "--all", "--platform", "linux/arm64", `${basic.host}/team/multi:multi`, `${token.host}/mirror/never:1`])
    expect(r.code, show(r)).toBe(2)
    expect(r.stderr).toContain("--all and --platform cannot go together")
    await expect(skopeoInspectDigest(`docker://${token.host}/mirror/never:1`, { creds: creds(BOB) })).rejects.toThrow()
  })

  it("[M1] [P6] within one registry blobs are mounted, never uploaded again", async () => {
    proxy.clearRequests()
    const digest = ok(await cli(["copy", `${proxy.host}/src/app:1.0`, `${proxy.host}/dst/app:1.0`]))
    expect(digest).toBe(image.manifestDigest)
    const requests = proxy.requests.map((r) => `${r.method} ${r.path}`)
    expect(requests.filter((r) => r.startsWith("POST") && r.includes("mount=")).length, requests.join("\n")).toBe(image.layers.length + 1)
    expect(requests.filter((r) => r.startsWith("PATCH") || (r.startsWith("PUT") && r.includes("/blobs/"))), requests.join("\n")).toEqual([])
    expect(requests.filter((r) => r.startsWith("GET") && r.includes("/blobs/")), requests.join("\n")).toEqual([])
  })

  it("[M1] [P5] a source cut mid-blob resumes with Range, and the copy completes intact", async () => {
    proxy.clearRequests()
    const big = image.layers.find((l) => l.size > 100_000)!
    proxy.setFaults([{ method: "GET", path: new RegExp(`/v2/src/app/blobs/${big.digest}`), times: 1, fault: { kind: "cut", afterBytes: 100_000 } }])
    try {
      const digest = ok(await cli(["copy", `${proxy.host}/src/app:1.0`, `${token.host}/resumed/app:1.0`]))
      expect(digest).toBe(image.manifestDigest)
    } finally {
      proxy.setFaults([])
    }
    const ranged = proxy.requests.filter((r) => r.path.includes(big.digest) && r.range !== undefined)
    expect(ranged.map((r) => r.range)).toEqual(["bytes=100000-"])
    expect(await skopeoInspectDigest(`docker://${token.host}/resumed/app:1.0`, { creds: creds(BOB) })).toBe(image.manifestDigest)
  })

  it("[M1] [E7] a source blob that does not match its digest fails the copy (exit 1); the target gets no manifest", async () => {
    const big = image.layers.find((l) => l.size > 100_000)!
    proxy.setFaults([{ method: "GET", path: new RegExp(`/v2/src/app/blobs/${big.digest}`), fault: { kind: "corrupt", offset: 50_000 } }])
    try {
      const r = await cli(["copy", `${proxy.host}/src/app:1.0`, `${token.host}/corrupt/app:1.0`])
      expect(r.code, show(r)).toBe(1)
      expect(r.stderr).toMatch(/^error: .*digest mismatch/m)
    } finally {
      proxy.setFaults([])
    }
    await expect(skopeoInspectDigest(`docker://${token.host}/corrupt/app:1.0`, { creds: creds(BOB) })).rejects.toThrow()
  })

  it("[I2] [M7] --format oci converts a Docker image: new digest on stdout, the old one on stderr, OCI media types at the target", async () => {
    const r = await cli(["copy", "--format", "oci", `${basic.host}/team/docker:d1`, `${token.host}/oci/docker:d1`])
    const digest = ok(r)
    expect(digest).not.toBe(docker.digest)
    expect(r.stderr).toContain(`converted from ${docker.digest}`)
    const inspected = await skopeoInspect(`docker://${token.host}/oci/docker:d1`, { creds: creds(BOB) })
    expect(inspected["Digest"]).toBe(digest)
    const { stdout } = await promisify(execFile)("skopeo", ["inspect", "--raw", "--tls-verify=false", "--creds", `${BOB.user}:${BOB.password}`, `docker://${token.host}/oci/docker:d1`])
    const manifest = JSON.parse(stdout) as { mediaType: string; config: { mediaType: string } }
    expect(manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json")
    expect(manifest.config.mediaType).toBe("application/vnd.oci.image.config.v1+json")
  })

  it("[M7] --json carries digest and sourceDigest after a conversion", async () => {
    const r = await cli(["copy", "--json", "--format", "oci", `${basic.host}/team/docker:d1`, `${token.host}/oci/json:1`])
    const document = JSON.parse(ok(r)) as { digest: string; sourceDigest: string; reference: string }
    expect(document.sourceDigest).toBe(docker.digest)
    expect(document.digest).not.toBe(docker.digest)
    expect(document.reference).toBe(`${token.host}/oci/json:1`)
  })
})

describe("copy to and from the store and layouts ([M1], [I2])", () => {
  it("[I2] a Docker image copied into a layout with --format oci is read by skopeo and umoci", async () => {
    const out = path.join(await scratchDir(), "layout")
    const digest = ok(await cli(["copy", "--format", "oci", `${basic.host}/team/docker:d1`, `oci:${out}:app`]))
    expect((await skopeoInspect(`oci:${out}:app`))["Digest"]).toBe(digest)
    const { stdout } = await promisify(execFile)("umoci", ["stat", "--json", "--image", `${out}:app`])
    expect((JSON.parse(stdout) as { history?: ReadonlyArray<unknown> }).history).toHaveLength(1)
    await expectBlobsIntact(out)
  })

  it("[M1] registry → layout → layout → registry keeps the digest at every step", async () => {
    const first = path.join(await scratchDir(), "first")
    const second = path.join(await scratchDir(), "second")
    expect(ok(await cli(["copy", `${basic.host}/team/app:1.0`, `oci:${first}:v1`]))).toBe(image.manifestDigest)
    expect(ok(await cli(["copy", `oci:${first}:v1`, `oci:${second}:v2`]))).toBe(image.manifestDigest)
    expect((await skopeoInspect(`oci:${second}:v2`))["Digest"]).toBe(image.manifestDigest)
    await expectBlobsIntact(second)
    expect(ok(await cli(["copy", `oci:${second}:v2`, `${token.host}/from-layout/app:v2`]))).toBe(image.manifestDigest)
    expect(await skopeoInspectDigest(`docker://${token.host}/from-layout/app:v2`, { creds: creds(BOB) })).toBe(image.manifestDigest)
  })

  it("[M1] a copy into the store is named by its target reference", async () => {
    const home = await freshHome()
    const run = (args: ReadonlyArray<string>) => runCli(args, { env: { HOME: home, REGISTRY_AUTH_FILE: authFile }, timeoutMs: 60_000 })
    expect(ok(await run(["copy", `${basic.host}/team/app:1.0`, "store:mirror.example.com/team/app:9"]))).toBe(image.manifestDigest)
    const listing = await fs.readFile(path.join(home, ".microagent", "images", "index.json"), "utf8")
    expect(listing).toContain("mirror.example.com/team/app:9")
    expect(ok(await run(["copy", "store:mirror.example.com/team/app:9", `${token.host}/from-store/app:9`]))).toBe(image.manifestDigest)
  })
})

describe("pull --format oci, and the usage hints of push (issue 12, items 2 and 7)", () => {
  it("[I2] pull --format oci --output converts a Docker image that umoci then reads", async () => {
    const out = path.join(await scratchDir(), "pulled")
    const r = await cli(["pull", "--format", "oci", "--output", out, `${basic.host}/team/docker:d1`])
    const digest = ok(r)
    expect(r.stderr).toContain(`converted from ${docker.digest}`)
    expect((await skopeoInspect(`oci:${out}:d1`))["Digest"]).toBe(digest)
    await promisify(execFile)("umoci", ["stat", "--image", `${out}:d1`])
  })

  it("[I4] push <registry ref> <registry ref> of an image not in the store points at copy", async () => {
    const r = await cli(["push", `${basic.host}/team/app:1.0`, `${token.host}/elsewhere/app:1.0`])
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr).toContain(`hint: push sends images from the store; to copy from a registry: microagent copy ${basic.host}/team/app:1.0 ${token.host}/elsewhere/app:1.0`)
  })

  it("[I4] push ./dir without oci: says how a layout is named", async () => {
    const r = await cli(["push", "./layout", `${token.host}/elsewhere/app:1.0`])
    expect(r.code, show(r)).toBe(2)
    expect(r.stderr).toContain("hint: a layout is named oci:./layout")
  })
})
