/**
 * Push edge cases: a source layout that is not there ([I4], [E6]-like: nothing created), a blob
 * upload that fails and is retried ([P6], [P7]), and a registry that rate-limits the start of an
 * upload ([P7]).
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeHome, runCli } from "../support/cli.js"
import { type ProxyHandle, startFaultProxy } from "../support/faultProxy.js"
import { type BuiltImage, makeImage, skopeoInspectDigest } from "../support/images.js"
import { type RegistryHandle, startRegistry } from "../support/registry.js"

let work: string
let registry: RegistryHandle
let proxy: ProxyHandle
let image: BuiltImage

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), "microagent-push-edges-"))
  registry = await startRegistry({ mode: "none" })
  proxy = await startFaultProxy(registry.host)
  image = await makeImage({ dir: path.join(work, "layout"), tag: "v1", layers: [2048, 4096] })
})

afterAll(async () => {
  await proxy?.stop()
  await registry?.stop()
  await fs.rm(work, { recursive: true, force: true })
})

describe("push", () => {
  it("[I4] a source layout that does not exist: exit 1 naming it, and nothing is created there", async () => {
    const home = await makeHome()
    try {
      const missing = path.join(work, "no-such-layout")
      const r = await runCli(["push", `oci:${missing}:v1`, `${registry.host}/team/app:v1`], { env: { HOME: home.home } })
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toMatch(new RegExp(`^error: .*${missing.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*does not exist`, "m"))
      await expect(fs.stat(missing)).rejects.toThrow()
      const fromStore = await runCli(["push", `${registry.host}/team/app:v1`, `${registry.host}/team/copy:v1`], { env: { HOME: home.home } })
      expect(fromStore.code, fromStore.stderr).toBe(1)
      await expect(fs.stat(path.join(home.home, ".microagent", "images"))).rejects.toThrow()
    } finally {
      await home.cleanup()
    }
  })

  for (const fault of [{ kind: "status", status: 503 }, { kind: "reset" }] as const) {
    it(`[P6] [P7] a blob PUT failing with ${fault.kind === "status" ? "503" : "a connection reset"} is retried in a new session, the file sent again from its start`, async () => {
      const home = await makeHome()
      try {
        proxy.setFaults([{ method: "PUT", path: /\/blobs\/uploads\/.*digest=/, times: 1, fault }])
        const repository = `team/retried-${fault.kind}`
        const r = await runCli(["push", "-q", `oci:${image.dir}:v1`, `${proxy.host}/${repository}:v1`], { env: { HOME: home.home } })
        expect(r.code, r.stderr).toBe(0)
        const puts = proxy.requests.filter((q) => q.method === "PUT" && q.path.includes(`/v2/${repository}/blobs/uploads/`))
        // One failed, and every blob (config and 2 layers) then went through once.
        expect(puts).toHaveLength(4)
        // The registry checks each PUT's bytes against its digest, so this proves whole files were sent.
        expect(await skopeoInspectDigest(`docker://${registry.host}/${repository}:v1`, {})).toBe(image.manifestDigest)
      } finally {
        proxy.setFaults([])
        await home.cleanup()
      }
    })
  }

  it("[P7] a 429 with Retry-After on the start of an upload is waited out and retried", async () => {
    const home = await makeHome()
    try {
      proxy.setFaults([{
        method: "POST",
        path: /\/blobs\/uploads\/$/,
        times: 2,
        fault: { kind: "status", status: 429, headers: { "retry-after": "1" } }
      }])
      const started = Date.now()
      const r = await runCli(["push", "-q", `oci:${image.dir}:v1`, `${proxy.host}/team/limited:v1`], { env: { HOME: home.home } })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.trim()).toBe(image.manifestDigest)
      // The blobs upload in parallel, so the two refusals may be waited out side by side.
      expect(Date.now() - started).toBeGreaterThanOrEqual(950)
      const posts = proxy.requests.filter((q) => q.method === "POST" && /\/blobs\/uploads\/$/.test(q.path))
      expect(posts.filter((q) => q.status === 429)).toHaveLength(2)
      expect(await skopeoInspectDigest(`docker://${registry.host}/team/limited:v1`, {})).toBe(image.manifestDigest)
    } finally {
      proxy.setFaults([])
      await home.cleanup()
    }
  })
})
