/**
 * Progress of `pull` and `push` as users see it (issue 4), against a real registry: through a pipe
 * (CI logs) plain lines, one per blob, and a summary; under a pseudo-terminal lines redrawn in
 * place; `--quiet` only the digest; `--json` one JSON document on stdout. stdout never carries
 * progress.
 */
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { show } from "../support/assertions.js"
import { binPath, runCli, type CliResult } from "../support/cli.js"
import { startFaultProxy, type ProxyHandle } from "../support/faultProxy.js"
import { makeImage, skopeoPush, type BuiltImage } from "../support/images.js"
import { spawnPty } from "../support/pty.js"
import { startRegistry, type RegistryHandle } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

const MiB = 1024 * 1024

let registry: RegistryHandle
let proxy: ProxyHandle
let image: BuiltImage
let layoutDir: string
/** The image's blobs: its config and four layers. */
let blobs: ReadonlyArray<{ readonly digest: string; readonly size: number }>
let ref: string

beforeAll(async () => {
  layoutDir = await fs.realpath(await fs.mkdtemp(path.join(tmpdir(), "microagent-progress-")))
  ;[registry, image] = await Promise.all([
    startRegistry({ mode: "none" }),
    makeImage({ dir: layoutDir, tag: "v1", layers: [1 * MiB, 2 * MiB, 1.5 * MiB, 2 * MiB] })
  ])
  await skopeoPush(image, { registry: registry.host, repository: "team/app" })
  // In front of the same registry: every blob download waits 400 ms before its bytes flow, so a
  // pull lasts long enough for several redraws however fast the machine.
  proxy = await startFaultProxy(registry.host)
  proxy.setFaults([{ method: "GET", path: /\/blobs\/sha256:/, fault: { kind: "delay", ms: 400 } }])
  blobs = [{ digest: image.configDigest, size: image.configSize }, ...image.layers]
  ref = `${registry.host}/team/app:v1`
}, 120_000)

afterAll(async () => {
  await proxy?.stop()
  await registry?.stop()
  if (layoutDir !== undefined) await fs.rm(layoutDir, { recursive: true, force: true })
})

const { freshHome } = useScratch()

const cli = (home: string, args: ReadonlyArray<string>): Promise<CliResult> =>
  runCli(args, { env: { HOME: home }, timeoutMs: 30_000 })

const short = (digest: string) => digest.slice(0, "sha256:".length + 12)
const totalBytes = () => blobs.reduce((sum, b) => sum + b.size, 0)

/** Checks plain progress: no escape codes, one line per blob (each blob once), then the summary. */
const expectPlainProgress = (r: CliResult, verb: string, status: "done" | "exists") => {
  expect(r.stderr, show(r)).not.toMatch(/[\x1b\r]/)
  const lines = r.stderr.trimEnd().split("\n")
  expect(lines, show(r)).toHaveLength(blobs.length + 1)
  const blobLines = lines.slice(0, -1)
  for (const line of blobLines) expect(line, show(r)).toMatch(new RegExp(`^sha256:[0-9a-f]{12}\\s+\\d+(\\.\\d)? (B|KiB|MiB)  ${status}$`))
  expect(blobLines.map((l) => l.split(" ")[0]).sort(), show(r)).toEqual(blobs.map((b) => short(b.digest)).sort())
  const n = blobs.length
  const moved = status === "done" ? `${(totalBytes() / MiB).toFixed(1)} MiB moved \\(${n} blobs\\), 0 B already present \\(0 blobs\\)` : `0 B moved \\(0 blobs\\), ${(totalBytes() / MiB).toFixed(1)} MiB already present \\(${n} blobs\\)`
  expect(lines.at(-1), show(r)).toMatch(new RegExp(`^${verb} ${image.manifestDigest}: ${moved}, in \\d+(\\.\\d)?s$`))
}

describe("through a pipe", () => {
  it("pull: stdout is only the digest; stderr one plain line per blob and a summary", async () => {
    const home = await freshHome()
    const r = await cli(home, ["pull", ref])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout, show(r)).toBe(`${image.manifestDigest}\n`)
    expectPlainProgress(r, "pulled", "done")

    // Again: everything is already in the store.
    const again = await cli(home, ["pull", ref])
    expect(again.stdout, show(again)).toBe(`${image.manifestDigest}\n`)
    expectPlainProgress(again, "pulled", "exists")
  })

  it("push: one plain line per blob and a summary; blobs the registry has are 'exists'", async () => {
    const home = await freshHome()
    const target = `${registry.host}/team/pushed-${Date.now()}:v1`
    const r = await cli(home, ["push", `oci:${layoutDir}:v1`, target])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout, show(r)).toBe(`${image.manifestDigest}\n`)
    expectPlainProgress(r, "pushed", "done")

    const again = await cli(home, ["push", `oci:${layoutDir}:v1`, target])
    expect(again.stdout, show(again)).toBe(`${image.manifestDigest}\n`)
    expectPlainProgress(again, "pushed", "exists")
  })

  it("--quiet: the digest on stdout and nothing on stderr", async () => {
    const home = await freshHome()
    for (const args of [["pull", ref, "--quiet"], ["push", "-q", `oci:${layoutDir}:v1`, `${registry.host}/team/quiet:v1`]]) {
      const r = await cli(home, args)
      expect(r.code, show(r)).toBe(0)
      expect(r.stdout, show(r)).toBe(`${image.manifestDigest}\n`)
      expect(r.stderr, show(r)).toBe("")
    }
  })

  it("--json: one JSON document on stdout with the documented fields; progress stays on stderr", async () => {
    const home = await freshHome()
    const r = await cli(home, ["pull", ref, "--json"])
    expect(r.code, show(r)).toBe(0)
    const doc = JSON.parse(r.stdout) as Record<string, unknown>
    expect(Object.keys(doc)).toEqual(["reference", "digest", "mediaType", "transferred", "skipped", "bytesTransferred", "bytesSkipped", "durationMs"])
    expect(doc).toMatchObject({
      reference: ref,
      digest: image.manifestDigest,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      transferred: blobs.length,
      skipped: 0,
      bytesTransferred: totalBytes(),
      bytesSkipped: 0
    })
    expect(Number.isInteger(doc["durationMs"]) && (doc["durationMs"] as number) >= 0, show(r)).toBe(true)
    expectPlainProgress(r, "pulled", "done")

    // Pushed to a new repository of the same registry with --quiet: JSON only, nothing on stderr.
    const target = `${registry.host}/team/json-${Date.now()}:v2`
    const pushed = await cli(home, ["push", ref, target, "--json", "--quiet"])
    expect(pushed.code, show(pushed)).toBe(0)
    expect(pushed.stderr, show(pushed)).toBe("")
    expect(JSON.parse(pushed.stdout)).toMatchObject({ reference: target, digest: image.manifestDigest, transferred: 0, skipped: blobs.length, bytesSkipped: totalBytes() })
  })
})

describe("under a terminal", () => {
  const pty = async (home: string, args: ReadonlyArray<string>) => {
    const session = spawnPty(process.execPath, [binPath, ...args], { env: { HOME: home } })
    return session.exited
  }

  it("pull redraws the blob lines in place and ends with every blob done, the summary and the digest", async () => {
    const home = await freshHome()
    const { code, output } = await pty(home, ["pull", `${proxy.host}/team/app:v1`])
    expect(code, output).toBe(0)
    // Redraws: the cursor moves up over the previous frame and each line is cleared.
    const ups = output.match(/\x1b\[\d+A/g) ?? []
    expect(ups.length, output).toBeGreaterThanOrEqual(3)
    expect(output, output).toContain("\x1b[2K")
    // Progress lines show a bar, bytes done / total and a rate while bytes move.
    expect(output, output).toMatch(/sha256:[0-9a-f]{12} \[=*>? *\] +\d+(\.\d)? (B|KiB|MiB) \/ \d+\.\d MiB/)
    // The last frame: every blob done, then the summary, then the digest (stdout).
    const lastFrame = output.slice(ups.length === 0 ? 0 : output.lastIndexOf(ups.at(-1)!))
    const lines = lastFrame.replace(/\x1b\[\d*[AJK]/g, "").split("\r\n").map((l) => l.replace(/^\r/, "")).filter((l) => l !== "")
    expect(lines, output).toHaveLength(blobs.length + 2)
    for (const line of lines.slice(0, blobs.length)) expect(line, output).toMatch(/^sha256:[0-9a-f]{12} \[=+\] +\d+(\.\d)? (B|KiB|MiB) \/ \d+(\.\d)? (B|KiB|MiB)  done$/)
    expect(lines[blobs.length], output).toMatch(new RegExp(`^pulled ${image.manifestDigest}: ${(totalBytes() / MiB).toFixed(1)} MiB moved \\(5 blobs\\), 0 B already present \\(0 blobs\\), in \\d+\\.\\ds$`))
    expect(lines[blobs.length + 1], output).toBe(image.manifestDigest)
    // Every line fits the 80-column terminal, so the redraws never wrap.
    for (const line of output.replace(/\x1b\[\d*[AJK]/g, "").split(/\r?\n|\r/)) {
      if (!line.startsWith("pulled ")) expect(line.length, line).toBeLessThan(80)
    }
  })

  it("--quiet prints only the digest", async () => {
    const home = await freshHome()
    const { code, output } = await pty(home, ["pull", "--quiet", ref])
    expect(code, output).toBe(0)
    expect(output).toBe(`${image.manifestDigest}\r\n`)
  })

  it("--json prints one valid JSON document, on its own line after the progress", async () => {
    const home = await freshHome()
    const { code, output } = await pty(home, ["pull", "--json", `${proxy.host}/team/app:v1`])
    expect(code, output).toBe(0)
    const lines = output.split("\r\n")
    expect(lines.at(-1), output).toBe("")
    expect(lines.at(-2), output).toMatch(/^\{"reference":/)
    expect(JSON.parse(lines.at(-2)!)).toMatchObject({ reference: `${proxy.host}/team/app:v1`, digest: image.manifestDigest, transferred: blobs.length })
    expect(lines.at(-3), output).toMatch(/^pulled sha256:/)
    expect(output, output).toMatch(/\x1b\[\d+A/)

    const quiet = await pty(await freshHome(), ["pull", "--json", "--quiet", ref])
    expect(quiet.code, quiet.output).toBe(0)
    expect(quiet.output).toMatch(/^\{[^\n]*\}\r\n$/)
    expect(JSON.parse(quiet.output)).toMatchObject({ reference: ref, digest: image.manifestDigest, transferred: blobs.length })
  })
})

describe("interrupted under a terminal (issue 13)", () => {
  it("Ctrl-C during a pull: the bars are finalised (no rate left looking live), then the line 'interrupted'; exit 130", async () => {
    const layer = image.layers[1]!
    // The layer's first MiB arrives, then the connection is cut and the resume hangs: the pull is
    // mid-blob, with a rate on screen, when Ctrl-C comes.
    const stalling = await startFaultProxy(registry.host)
    try {
      stalling.setFaults([
        { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), times: 1, fault: { kind: "cut", afterBytes: MiB } },
        { method: "GET", path: new RegExp(`/blobs/${layer.digest}`), fault: { kind: "delay", ms: 30_000 } }
      ])
      const session = spawnPty(process.execPath, [binPath, "pull", `${stalling.host}/team/app:v1`], { env: { HOME: await freshHome() } })
      try {
        await session.waitFor(new RegExp(`${short(layer.digest)} .* 1\\.0 MiB / 2\\.0 MiB  \\d+(\\.\\d)? (B|KiB|MiB)/s`))
        session.write("\x03")
        const { code, output } = await session.exited
        expect(code, output).toBe(130)
        expect(output, output).toMatch(/\r\ninterrupted\r\n$/)
        // The last frame: each blob done or stopped (none with a rate), then the word on its own line.
        const ups = output.match(/\x1b\[\d+A/g) ?? []
        const lastFrame = output.slice(output.lastIndexOf(ups.at(-1)!))
        const lines = lastFrame.replace(/\x1b\[\d*[AJK]/g, "").split("\r\n").map((l) => l.replace(/^\r/, "")).filter((l) => l !== "")
        expect(lines, output).toHaveLength(blobs.length + 1)
        for (const line of lines.slice(0, -1)) expect(line, output).toMatch(/^sha256:[0-9a-f]{12} .*  (done|stopped)$/)
        expect(lines.find((l) => l.startsWith(short(layer.digest))), output).toMatch(/ 1\.0 MiB \/ 2\.0 MiB  stopped$/)
        expect(lastFrame, output).not.toMatch(/\/s/)
        expect(lines.at(-1), output).toBe("interrupted")
      } finally {
        session.kill()
      }
    } finally {
      await stalling.stop()
    }
  })
})
