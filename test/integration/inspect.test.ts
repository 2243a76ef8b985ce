/**
 * `microagent inspect` and `microagent tags` end to end against real CNCF distribution registries
 * on loopback (anonymous and htpasswd). Fixtures are built on disk and pushed with skopeo (or with
 * plain HTTP where skopeo cannot shape them), so what the CLI prints is compared with what was built.
 *
 * `--json` outputs are pinned exactly (field names, values and order): they are an interface.
 * Debian's distribution (2.8) lists every tag in one answer, so [P9]'s pages are served by a proxy
 * in front of it from the registry's own list.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { show } from "../support/assertions.js"
import { authsFor, storePath, writeAuthJson } from "../support/auth.js"
import { runCli, type CliResult } from "../support/cli.js"
import { startFaultProxy } from "../support/faultProxy.js"
import { blobPath, makeImage, makeIndex, MEDIA_TYPES, skopeoPush, type BuiltImage, type BuiltIndex } from "../support/images.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

// ---------------------------------------------------------------------------------------------
// Helpers

const ALICE = { user: "alice", password: "alice-Pw-7Qx9" } as const

const { freshHome, scratchDir, onCleanup } = useScratch("microagent-inspect-auth-")

type Env = Record<string, string | undefined>

const cli = async (args: ReadonlyArray<string>, env: Env = {}): Promise<CliResult> =>
  runCli(args, { env: { HOME: await freshHome(), ...env }, timeoutMs: 30_000 })

const expectOk = (r: CliResult) => {
  expect(r.code, show(r)).toBe(0)
  expect(r.stderr, show(r)).toBe("")
}

/** Exits with `code`, an `error:` line first on stderr, nothing on stdout. */
const expectFailure = (r: CliResult, code: number) => {
  expect(r.code, show(r)).toBe(code)
  expect(r.stderr, show(r)).toMatch(/^error: \S/)
  expect(r.stdout, show(r)).toBe("")
}

/** The document exactly, in this field order, two-space indented, one trailing newline. */
const expectJson = (r: CliResult, expected: unknown) => {
  expectOk(r)
  expect(JSON.parse(r.stdout), show(r)).toStrictEqual(expected)
  expect(r.stdout).toBe(`${JSON.stringify(expected, null, 2)}\n`)
}

/** The human size of these fixtures' blobs, all between 1 KiB and 1 MiB. */
const humanSize = (bytes: number) => {
  expect(bytes).toBeGreaterThanOrEqual(1024)
  expect(bytes).toBeLessThan(1024 * 1024)
  return `${(bytes / 1024).toFixed(1)} KiB`
}

const sha256 = (bytes: string | Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`

const layersJson = (image: { readonly layers: ReadonlyArray<{ digest: string; size: number; mediaType: string }> }) =>
  image.layers.map(({ digest, mediaType, size }) => ({ digest, size, mediaType }))

const totalSize = (image: { readonly configSize: number; readonly layers: ReadonlyArray<{ size: number }> }) =>
  image.configSize + image.layers.reduce((sum, l) => sum + l.size, 0)

/** Uploads a blob with POST + PUT (distribution's two-step upload), anonymously. */
const putBlob = async (registry: RegistryHandle, repository: string, bytes: Uint8Array): Promise<string> => {
  const digest = sha256(bytes)
  const started = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, { method: "POST" })
  expect(started.status).toBe(202)
  const location = new URL(started.headers.get("location")!, registry.url)
  location.searchParams.set("digest", digest)
  const put = await fetch(location, { method: "PUT", body: bytes, headers: { "content-type": "application/octet-stream" } })
  expect(put.status, await put.text()).toBe(201)
  return digest
}

const putManifest = async (registry: RegistryHandle, repository: string, tag: string, bytes: Uint8Array, mediaType: string) => {
  const put = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, { method: "PUT", body: bytes, headers: { "content-type": mediaType } })
  expect(put.status, await put.text()).toBe(201)
}

// ---------------------------------------------------------------------------------------------
// Fixtures

let fixtures: string
let image: BuiltImage
let index: BuiltIndex
let open: RegistryHandle
let locked: RegistryHandle

/** An image whose config carries everything the summary shows, pushed over plain HTTP. */
const custom = {
  config: {
    created: "2024-05-06T07:08:09Z",
    architecture: "arm",
    os: "linux",
    variant: "v7",
    config: {
      Entrypoint: ["/usr/bin/app", "--serve"],
      Cmd: ["--port", "8080"],
      Env: ["PATH=/usr/bin:/bin", "APP_MODE=production", "BANNER=two\nlines \u001b[31mred"],
      ExposedPorts: { "8080/tcp": {}, "9090/udp": {} },
      Labels: { "org.opencontainers.image.source": "https://example.com/app", maintainer: "team" },
      WorkingDir: "/srv",
      User: "1000:1000"
    },
    rootfs: { type: "layers", diff_ids: [] as Array<string> }
  },
  layer: new Uint8Array(Buffer.from("not really a tarball, but the registry does not look")),
  manifestBytes: new Uint8Array(),
  configBytes: new Uint8Array(),
  digest: "",
  configDigest: "",
  layerDigest: ""
}

/** `inspect --json` of the built `image` (linux/amd64, created at the epoch) named by `ref`. */
const imageJson = (ref: string) => ({
  reference: ref,
  digest: image.manifestDigest,
  mediaType: MEDIA_TYPES.manifest,
  config: {
    digest: image.configDigest,
    size: image.configSize,
    mediaType: MEDIA_TYPES.config,
    os: "linux",
    architecture: "amd64",
    created: "1970-01-01T00:00:00Z"
  },
  layers: layersJson(image),
  size: totalSize(image)
})

const TAGS = Array.from({ length: 150 }, (_, i) => `t${String(i).padStart(3, "0")}`)

beforeAll(async () => {
  fixtures = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-inspect-")))
  image = await makeImage({ dir: path.join(fixtures, "image"), tag: "v1", layers: [1024, 3000] })
  index = await makeIndex({ dir: path.join(fixtures, "index"), tag: "multi" })
  ;[open, locked] = await Promise.all([
    startRegistry({ mode: "none" }),
    startRegistry({ mode: "htpasswd", users: { [ALICE.user]: ALICE.password } })
  ])
  await skopeoPush(image, { registry: open.host, repository: "team/app" })
  await skopeoPush(index, { registry: open.host, repository: "team/multi", all: true })
  await skopeoPush(image, { registry: locked.host, repository: "private/app", creds: ALICE })

  // 150 tags of one manifest: one skopeo push, then the same manifest bytes PUT under each tag.
  await skopeoPush(image, { registry: open.host, repository: "team/many", destTag: TAGS[0]! })
  const manifest = await fs.readFile(blobPath(image.dir, image.manifestDigest))
  for (let i = 0; i < TAGS.length; i += 10) {
    await Promise.all(TAGS.slice(i, i + 10).map((tag) => putManifest(open, "team/many", tag, manifest, MEDIA_TYPES.manifest)))
  }

  custom.layerDigest = await putBlob(open, "team/custom", custom.layer)
  custom.config.rootfs.diff_ids = [custom.layerDigest]
  custom.configBytes = new Uint8Array(Buffer.from(JSON.stringify(custom.config)))
  custom.configDigest = await putBlob(open, "team/custom", custom.configBytes)
  custom.manifestBytes = new Uint8Array(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: { mediaType: MEDIA_TYPES.config, digest: custom.configDigest, size: custom.configBytes.length },
    layers: [{ mediaType: MEDIA_TYPES.layer, digest: custom.layerDigest, size: custom.layer.length }]
  })))
  custom.digest = sha256(custom.manifestBytes)
  await putManifest(open, "team/custom", "v1", custom.manifestBytes, MEDIA_TYPES.manifest)
}, 120_000)

afterAll(async () => {
  await Promise.all([open?.stop(), locked?.stop()])
  if (fixtures !== undefined) await fs.rm(fixtures, { recursive: true, force: true })
})

const amd64 = () => index.children.find((c) => c.platform.architecture === "amd64")!
const arm64 = () => index.children.find((c) => c.platform.architecture === "arm64")!

// ---------------------------------------------------------------------------------------------
// inspect: an image

describe("inspect, an image", () => {
  it("human output names the digest, media type, config, every layer with its size, and the total", async () => {
    const ref = `${open.host}/team/app:v1`
    const r = await cli(["inspect", ref])
    expectOk(r)
    const lines = r.stdout.trimEnd().split("\n")
    expect(lines).toContain(`Reference   ${ref}`)
    expect(lines).toContain(`Digest      ${image.manifestDigest}`)
    expect(lines).toContain(`Media type  ${MEDIA_TYPES.manifest}`)
    expect(lines).toContain(`Platform    linux/amd64`)
    expect(lines).toContain(`Created     1970-01-01T00:00:00Z`)
    expect(lines).toContain(`Env         none`)
    expect(lines).toContain(`Ports       none`)
    expect(lines).toContain(`Labels      none`)
    expect(lines).toContain(`Config      ${image.configDigest}  ${image.configSize} B`)
    expect(lines).toContain(`Layers      2`)
    for (const layer of image.layers) {
      expect(lines).toContain(`  ${layer.digest}  ${humanSize(layer.size)} (${layer.size} bytes)`)
    }
    expect(lines).toContain(`Total size  ${humanSize(totalSize(image))} (${totalSize(image)} bytes, config and layers)`)
  })

  it("--json is exactly what was built", async () => {
    const ref = `${open.host}/team/app:v1`
    expectJson(await cli(["inspect", ref, "--json"]), imageJson(ref))
  })

  it("--json by digest names the same image; the reference keeps the digest", async () => {
    const ref = `${open.host}/team/app@${image.manifestDigest}`
    const r = await cli(["inspect", ref, "--json"])
    expectOk(r)
    expect(JSON.parse(r.stdout)).toMatchObject({ reference: ref, digest: image.manifestDigest, layers: layersJson(image) })
  })

  it("--raw writes the manifest bytes as served: no newline added, and their sha256 is the digest", async () => {
    const r = await cli(["inspect", `${open.host}/team/app:v1`, "--raw"])
    expectOk(r)
    expect(sha256(r.stdout)).toBe(image.manifestDigest)
    expect(r.stdout).toBe(await fs.readFile(blobPath(image.dir, image.manifestDigest), "utf8"))
  })

  it("--config writes the config blob exactly as built", async () => {
    const r = await cli(["inspect", `${open.host}/team/app:v1`, "--config"])
    expectOk(r)
    expect(r.stdout).toBe(await fs.readFile(blobPath(image.dir, image.configDigest), "utf8"))
    expect(sha256(r.stdout)).toBe(image.configDigest)
  })

  it("the config summary shows entrypoint, cmd, env, exposed ports, labels, workdir and user (human and --json)", async () => {
    const ref = `${open.host}/team/custom:v1`
    const human = await cli(["inspect", ref])
    expectOk(human)
    const lines = human.stdout.trimEnd().split("\n")
    expect(lines).toEqual(expect.arrayContaining([
      `Digest      ${custom.digest}`,
      `Platform    linux/arm/v7`,
      `Created     2024-05-06T07:08:09Z`,
      `Entrypoint  ["/usr/bin/app","--serve"]`,
      `Cmd         ["--port","8080"]`,
      `Workdir     /srv`,
      `User        1000:1000`,
      `  ${custom.layerDigest}  ${custom.layer.length} B`,
      `Total size  ${custom.configBytes.length + custom.layer.length} B (config and layers)`
    ]))
    // Each variable as the config has it, one per line, then the ports, then the labels. The
    // config is public to whoever can pull the image: issue 13 replaced the count this summary
    // showed with the values (secrets belong in `run --secret`, not in an image's environment).
    const env = lines.indexOf("Env         3")
    expect(lines.slice(env, env + 8), human.stdout).toEqual([
      `Env         3`,
      `  PATH=/usr/bin:/bin`,
      `  APP_MODE=production`,
      // A line break or an escape sequence in a value is shown, not obeyed.
      `  BANNER=two\\nlines \\x1b[31mred`,
      `Ports       8080/tcp, 9090/udp`,
      `Labels      2`,
      `  org.opencontainers.image.source=https://example.com/app`,
      `  maintainer=team`
    ])

    expectJson(await cli(["inspect", ref, "--json"]), {
      reference: ref,
      digest: custom.digest,
      mediaType: MEDIA_TYPES.manifest,
      config: {
        digest: custom.configDigest,
        size: custom.configBytes.length,
        mediaType: MEDIA_TYPES.config,
        os: "linux",
        architecture: "arm",
        variant: "v7",
        created: "2024-05-06T07:08:09Z",
        entrypoint: ["/usr/bin/app", "--serve"],
        cmd: ["--port", "8080"],
        env: ["PATH=/usr/bin:/bin", "APP_MODE=production", "BANNER=two\nlines \u001b[31mred"],
        exposedPorts: ["8080/tcp", "9090/udp"],
        labels: { "org.opencontainers.image.source": "https://example.com/app", maintainer: "team" },
        workingDir: "/srv",
        user: "1000:1000"
      },
      layers: [{ digest: custom.layerDigest, size: custom.layer.length, mediaType: MEDIA_TYPES.layer }],
      size: custom.configBytes.length + custom.layer.length
    })
    const config = await cli(["inspect", ref, "--config"])
    expectOk(config)
    expect(Buffer.from(config.stdout)).toEqual(Buffer.from(custom.configBytes))
  })
})

// ---------------------------------------------------------------------------------------------
// inspect: an index

describe("inspect, a multi-platform index", () => {
  const ref = () => `${open.host}/team/multi:multi`

  it("--json lists both platforms with their manifests' digests and sizes", async () => {
    expectJson(await cli(["inspect", ref(), "--json"]), {
      reference: ref(),
      digest: index.indexDigest,
      mediaType: MEDIA_TYPES.index,
      platforms: [
        { os: "linux", architecture: "amd64", digest: amd64().manifestDigest, size: amd64().manifestSize, mediaType: MEDIA_TYPES.manifest },
        { os: "linux", architecture: "arm64", variant: "v8", digest: arm64().manifestDigest, size: arm64().manifestSize, mediaType: MEDIA_TYPES.manifest }
      ]
    })
  })

  it("human output lists each platform with its digest and size", async () => {
    const r = await cli(["inspect", ref()])
    expectOk(r)
    const lines = r.stdout.trimEnd().split("\n")
    expect(lines).toContain(`Digest      ${index.indexDigest}`)
    expect(lines).toContain(`Media type  ${MEDIA_TYPES.index}`)
    expect(lines).toContain(`Platforms   2`)
    expect(lines).toContain(`  linux/amd64     ${amd64().manifestDigest}  ${amd64().manifestSize} B`)
    expect(lines).toContain(`  linux/arm64/v8  ${arm64().manifestDigest}  ${arm64().manifestSize} B`)
  })

  it("--raw writes the index bytes; their sha256 is the index digest", async () => {
    const r = await cli(["inspect", ref(), "--raw"])
    expectOk(r)
    expect(sha256(r.stdout)).toBe(index.indexDigest)
  })

  it("--platform linux/arm64 --config writes that child's config blob", async () => {
    const r = await cli(["inspect", ref(), "--platform", "linux/arm64", "--config"])
    expectOk(r)
    expect(r.stdout).toBe(await fs.readFile(blobPath(index.dir, arm64().configDigest), "utf8"))
  })

  it("--platform linux/arm64 --json describes the child and names the index it came from", async () => {
    const child = arm64()
    expectJson(await cli(["inspect", ref(), "--platform", "linux/arm64", "--json"]), {
      reference: ref(),
      digest: child.manifestDigest,
      mediaType: MEDIA_TYPES.manifest,
      index: { digest: index.indexDigest, mediaType: MEDIA_TYPES.index },
      config: {
        digest: child.configDigest,
        size: child.configSize,
        mediaType: MEDIA_TYPES.config,
        os: "linux",
        architecture: "arm64",
        variant: "v8",
        created: "1970-01-01T00:00:00Z"
      },
      layers: layersJson(child),
      size: totalSize(child)
    })
  })

  it("--config without --platform is a usage error (exit 2) whose hint adds --platform", async () => {
    const r = await cli(["inspect", ref(), "--config"])
    expectFailure(r, 2)
    expect(r.stderr).toContain("multi-platform index")
    expect(r.stderr).toContain(`hint: microagent inspect ${ref()} --platform linux/amd64 --config`)
  })

  it("a platform the index lacks: exit 1 naming the platforms it has", async () => {
    const r = await cli(["inspect", ref(), "--platform", "linux/s390x"])
    expectFailure(r, 1)
    expect(r.stderr).toContain("linux/s390x")
    expect(r.stderr).toContain("linux/amd64, linux/arm64/v8")
  })
})

// ---------------------------------------------------------------------------------------------
// tags

describe("tags", () => {
  /** The registry's own answer, unpaginated: distribution 2.8 ignores `n` and `last` and lists every tag, unsorted. */
  const registryTags = async (): Promise<ReadonlyArray<string>> => {
    const page = await fetch(`${open.url}/v2/team/many/tags/list`)
    expect(page.status).toBe(200)
    return ((await page.json()) as { tags: Array<string> }).tags
  }

  it("lists all 150 tags, one per line, as the registry orders them", async () => {
    const listed = await registryTags()
    expect([...listed].sort()).toEqual(TAGS)
    const r = await cli(["tags", `${open.host}/team/many`])
    expectOk(r)
    expect(r.stdout).toBe(`${listed.join("\n")}\n`)
  })

  it("--json: {repository, tags} with all 150 tags", async () => {
    expectJson(await cli(["tags", `${open.host}/team/many`, "--json"]), { repository: `${open.host}/team/many`, tags: await registryTags() })
  })

  it("[P9] follows Link rel=\"next\" verbatim: 150 tags in pages of 100 (the pages distribution 3 sends)", async () => {
    // Distribution 2.8 (Debian's) never paginates, so a proxy in front of it serves the real
    // registry's list the way a paginating registry does; everything else passes through.
    const listed = await registryTags()
    const proxy = await startFaultProxy(open.host)
    onCleanup(() => proxy.stop())
    const next = `/v2/team/many/tags/list?last=${listed[99]}&n=100`
    const page = (tags: ReadonlyArray<string>, link?: string) => ({
      kind: "status" as const,
      status: 200,
      headers: { "content-type": "application/json", ...(link === undefined ? {} : { link: `<${link}>; rel="next"` }) },
      body: JSON.stringify({ name: "team/many", tags })
    })
    proxy.setFaults([
      { method: "GET", path: /^\/v2\/team\/many\/tags\/list\?n=100$/, fault: page(listed.slice(0, 100), next) },
      { method: "GET", path: new RegExp(`^${next.replace(/[?.]/g, "\\$&")}$`), fault: page(listed.slice(100)) }
    ])
    const plain = await cli(["tags", `${proxy.host}/team/many`])
    expectOk(plain)
    expect(plain.stdout).toBe(`${listed.join("\n")}\n`)
    expect(proxy.requests.filter((r) => r.path.includes("/tags/list")).map((r) => [r.path, r.status])).toEqual([
      ["/v2/team/many/tags/list?n=100", 200],
      [next, 200]
    ])
    expectJson(await cli(["tags", `${proxy.host}/team/many`, "--json"]), { repository: `${proxy.host}/team/many`, tags: listed })
  })

  it("tags alpine:1 (a tag) and a digest are usage errors (exit 2) before any network", async () => {
    const tagged = await cli(["tags", "alpine:1"])
    expectFailure(tagged, 2)
    expect(tagged.stderr).toContain("hint: microagent tags alpine")
    expectFailure(await cli(["tags", `${open.host}/team/app@${image.manifestDigest}`]), 2)
    expectFailure(await cli(["tags", `${open.host}/team/app:v1`]), 2)
  })

  it("an unknown repository: exit 1, not found", async () => {
    const r = await cli(["tags", `${open.host}/team/nothing-here`])
    expectFailure(r, 1)
    expect(r.stderr).toMatch(/not found/)
  })
})

// ---------------------------------------------------------------------------------------------
// Failures

describe("inspect and tags, failures", () => {
  it("an unknown tag: exit 1, not found", async () => {
    const r = await cli(["inspect", `${open.host}/team/app:nope`])
    expectFailure(r, 1)
    expect(r.stderr).toMatch(/manifest team\/app:nope not found/)
  })

  it("at most one of --raw, --config, --json (exit 2)", async () => {
    expectFailure(await cli(["inspect", `${open.host}/team/app:v1`, "--raw", "--json"]), 2)
  })

  it("an invalid reference or platform: exit 2", async () => {
    expectFailure(await cli(["inspect", "UPPER/case"]), 2)
    expectFailure(await cli(["inspect", `${open.host}/team/app:v1`, "--platform", "linux"]), 2)
  })
})

describe("a private repository (htpasswd)", () => {
  const authFile = async (password: string) => {
    const file = await writeAuthJson(path.join(await scratchDir(), "auth.json"), authsFor({ [locked.host]: `${ALICE.user}:${password}` }))
    return { REGISTRY_AUTH_FILE: file }
  }

  it("without credentials: inspect and tags exit 3 with the login hint, each saying what it needed them for", async () => {
    for (const [args, doing] of [
      [["inspect", `${locked.host}/private/app:v1`], "pull"],
      [["tags", `${locked.host}/private/app`], "list tags of"]
    ] as const) {
      const r = await cli(args)
      expectFailure(r, 3)
      expect(r.stderr, show(r)).toBe(
        `error: ${locked.host} requires credentials to ${doing} private/app (HTTP 401)\nhint: microagent registry login ${locked.host} -u <user>\n`
      )
    }
  })

  it("[E3] denied with credentials from $REGISTRY_AUTH_FILE: the hint names that file and the variable, not registry login (which that file would shadow)", async () => {
    const env = await authFile("wrong-Pw-Zk42")
    for (const args of [["inspect", `${locked.host}/private/app:v1`], ["tags", `${locked.host}/private/app`]]) {
      const r = await cli(args, env)
      expectFailure(r, 4)
      expect(r.stderr, show(r)).toBe(
        `error: ${locked.host} denied pull access to private/app for user "alice" (HTTP 401; credentials from ${env.REGISTRY_AUTH_FILE}, key ${locked.host})\n` +
          `hint: check that user's rights, or fix the "${locked.host}" entry in ${env.REGISTRY_AUTH_FILE}, or unset REGISTRY_AUTH_FILE: ` +
          "that file is read before microagent's own store, so registry login would not help\n"
      )
    }
  })

  it("[E3] denied with credentials from microagent's own store: the hint is registry login", async () => {
    const home = await freshHome()
    await writeAuthJson(storePath(home), authsFor({ [locked.host]: `${ALICE.user}:wrong-Pw-Zk42` }))
    const r = await cli(["inspect", `${locked.host}/private/app:v1`], { HOME: home })
    expectFailure(r, 4)
    expect(r.stderr, show(r)).toBe(
      `error: ${locked.host} denied pull access to private/app for user "alice" (HTTP 401; credentials from ${storePath(home)}, key ${locked.host})\n` +
        `hint: check that user's rights, or replace the credentials: microagent registry login ${locked.host} -u <user> (microagent registry list shows where each comes from)\n`
    )
  })

  it("with credentials from $REGISTRY_AUTH_FILE: inspect --json and tags --json work", async () => {
    const env = await authFile(ALICE.password)
    const ref = `${locked.host}/private/app:v1`
    expectJson(await cli(["inspect", ref, "--json"], env), imageJson(ref))
    expectJson(await cli(["tags", `${locked.host}/private/app`, "--json"], env), { repository: `${locked.host}/private/app`, tags: ["v1"] })
    const raw = await cli(["inspect", ref, "--raw"], env)
    expectOk(raw)
    expect(sha256(raw.stdout)).toBe(image.manifestDigest)
  })

  it("with a wrong password: exit 4 (denied)", async () => {
    const r = await cli(["tags", `${locked.host}/private/app`], await authFile("wrong-Pw-Zk42"))
    expectFailure(r, 4)
  })
})
