/**
 * [P8] Layers move in parallel, 4 at a time by default, `--jobs` to change: measured as the
 * most blob downloads in flight at once, seen by a counting proxy that holds each answer a while.
 */
import * as fs from "node:fs/promises"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeHome, runCli } from "../support/cli.js"
import { makeImage, skopeoPush } from "../support/images.js"
import { type RegistryHandle, startRegistry } from "../support/registry.js"

let work: string
let registry: RegistryHandle
let proxy: http.Server
let proxyHost: string
let inFlight = 0
let most = 0

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), "microagent-jobs-"))
  registry = await startRegistry({ mode: "none" })
  const image = await makeImage({ dir: path.join(work, "layout"), tag: "v1", layers: [1024, 1024, 1024, 1024, 1024, 1024, 1024] })
  await skopeoPush(image, { registry: registry.host, repository: "team/wide" })
  const [host, port] = registry.host.split(":")
  proxy = http.createServer((request, response) => {
    const blob = request.url?.includes("/blobs/") === true
    if (blob) most = Math.max(most, ++inFlight)
    const forward = http.request({ host, port, path: request.url, method: request.method, headers: request.headers }, (upstream) => {
      // Held long enough that a client allowed more would have them overlap.
      setTimeout(() => {
        response.writeHead(upstream.statusCode ?? 502, upstream.headers)
        upstream.pipe(response)
        upstream.on("end", () => {
          if (blob) inFlight--
        })
      }, blob ? 300 : 0)
    })
    request.pipe(forward)
  })
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve))
  proxyHost = `127.0.0.1:${(proxy.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve))
  await registry?.stop()
  await fs.rm(work, { recursive: true, force: true })
})

const pull = async (...flags: Array<string>) => {
  const home = await makeHome()
  try {
    inFlight = 0
    most = 0
    const r = await runCli(["pull", `${proxyHost}/team/wide:v1`, ...flags], { env: { HOME: home.home } })
    expect(r.code, r.stderr).toBe(0)
    return most
  } finally {
    await home.cleanup()
  }
}

describe("[P8] parallel blob transfers", () => {
  it("[P8] 4 at a time by default", async () => {
    expect(await pull()).toBe(4)
  })

  it("[P8] --jobs changes it", async () => {
    expect(await pull("--jobs", "2")).toBe(2)
    expect(await pull("--jobs", "1")).toBe(1)
  })
})
