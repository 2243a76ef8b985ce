/**
 * [P1] [E5] TLS: a registry served over https on loopback with a CA the test makes.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { makeHome, runCli } from "../support/cli.js"
import { type BuiltImage, makeImage, skopeoPush } from "../support/images.js"
import { type RegistryHandle, startRegistry } from "../support/registry.js"
import { makeCa, type TestCa } from "../support/tls.js"

let work: string
let ca: TestCa
let registry: RegistryHandle
let secured: RegistryHandle
let image: BuiltImage
let home: { home: string; cleanup: () => Promise<void> }

beforeAll(async () => {
  work = await fs.mkdtemp(path.join(os.tmpdir(), "microagent-tls-"))
  ca = await makeCa(path.join(work, "ca"))
  const tls = { cert: ca.serverCert, key: ca.serverKey }
  registry = await startRegistry({ mode: "none" }, { tls })
  secured = await startRegistry({ mode: "htpasswd", users: { alice: "s3cret" } }, { tls })
  image = await makeImage({ dir: path.join(work, "layout"), tag: "v1", layers: [4096] })
  await skopeoPush(image, { registry: registry.host, repository: "team/app", certDir: path.dirname(ca.caCert) })
})

afterAll(async () => {
  await registry?.stop()
  await secured?.stop()
  await fs.rm(work, { recursive: true, force: true })
})

afterEach(async () => home?.cleanup())

/** Puts the test CA where [P1] says microagent looks for a registry's CA. */
const trust = async (host: string) => {
  const dir = path.join(home.home, ".microagent", "certs.d", host)
  await fs.mkdir(dir, { recursive: true })
  await fs.copyFile(ca.caCert, path.join(dir, "ca.crt"))
}

const login = (host: string, ...flags: Array<string>) =>
  runCli(["registry", "login", host, "-u", "alice", "--password-stdin", ...flags], { env: { HOME: home.home }, stdin: "s3cret\n" })

describe("[P1] TLS with a private CA", () => {
  it("[E5] pull fails with a clear TLS error while the CA is unknown, and never falls back to http", async () => {
    home = await makeHome()
    const r = await runCli(["pull", `${registry.host}/team/app:v1`], { env: { HOME: home.home } })
    expect(r.code, r.stderr).toBe(1)
    const lines = r.stderr.trim().split("\n")
    expect(lines[0]).toMatch(new RegExp(`^error: TLS to ${registry.host.replace(/\./g, "\\.")} failed: .*(certificate|CERT|verify)`, "i"))
    expect(lines[1]).toMatch(/^hint: .*certs\.d.*--insecure/)
    expect(r.stdout).toBe("")
  })

  it("[P1] pull works once the CA sits in ~/.microagent/certs.d/<host:port>/", async () => {
    home = await makeHome()
    await trust(registry.host)
    const r = await runCli(["pull", `${registry.host}/team/app:v1`], { env: { HOME: home.home } })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe(image.manifestDigest)
  })

  it("[P1] a .crt beside the CA that holds no certificate is named in one warning, and the CA still works", async () => {
    home = await makeHome()
    await trust(registry.host)
    const garbage = path.join(home.home, ".microagent", "certs.d", registry.host, "broken.crt")
    await fs.writeFile(garbage, "not a certificate\n")
    const r = await runCli(["pull", `${registry.host}/team/app:v1`], { env: { HOME: home.home } })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr.split("\n").filter((l) => l.startsWith("warning: "))).toEqual([`warning: ${garbage} holds no PEM certificate; it is ignored`])
  })

  it("[P1] --insecure accepts the unverified certificate, with a warning", async () => {
    home = await makeHome()
    const r = await runCli(["pull", "--insecure", `${registry.host}/team/app:v1`], { env: { HOME: home.home } })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe(image.manifestDigest)
    expect(r.stderr).toMatch(/^warning: --insecure/m)
  })

  it("[P1] [L5] login: TLS error with the CA unknown (store untouched), success with it, and with --insecure", async () => {
    home = await makeHome()
    const refused = await login(secured.host)
    expect(refused.code, refused.stderr).toBe(1)
    expect(refused.stderr).toMatch(/^error: TLS to /)
    await expect(fs.stat(path.join(home.home, ".microagent", "auth.json"))).rejects.toThrow()

    const insecure = await login(secured.host, "--insecure")
    expect(insecure.code, insecure.stderr).toBe(0)
    expect(insecure.stderr).toMatch(/^warning: --insecure/m)

    await trust(secured.host)
    const trusted = await login(secured.host)
    expect(trusted.code, trusted.stderr).toBe(0)
    expect(trusted.stdout).toMatch(/^Login Succeeded$/m)
  })
})
