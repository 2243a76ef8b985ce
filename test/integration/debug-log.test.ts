/**
 * `--log-level debug` (issue 13, item 3): each request and its status, where the credentials came
 * from and which scheme the registry asks for, the retries and why, and the failure's cause;
 * never a password, a Basic value or a token.
 */
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { show } from "../support/assertions.js"
import { authsFor, b64, writeAuthJson } from "../support/auth.js"
import { runCli } from "../support/cli.js"
import { type ProxyHandle, startFaultProxy } from "../support/faultProxy.js"
import { makeImage, skopeoPush } from "../support/images.js"
import { type RegistryHandle, startRegistry } from "../support/registry.js"
import { useScratch } from "../support/scratch.js"

const USER = "dora"
const PASSWORD = "dora-Pw-58Xq"
const { freshHome, scratchDir } = useScratch("microagent-debug-log-")

let registry: RegistryHandle
let proxy: ProxyHandle

beforeAll(async () => {
  registry = await startRegistry({ mode: "htpasswd", users: { [USER]: PASSWORD } })
  const image = await makeImage({ dir: path.join(await scratchDir(), "image"), tag: "1.0", layers: [1024] })
  await skopeoPush(image, { registry: registry.host, repository: "team/app", creds: { user: USER, password: PASSWORD } })
  proxy = await startFaultProxy(registry.host, { upstreamAuth: `Basic ${b64(`${USER}:${PASSWORD}`)}` })
}, 60_000)

afterAll(async () => {
  await proxy?.stop()
  await registry?.stop()
})

const secrets = [PASSWORD, b64(`${USER}:${PASSWORD}`)]

describe("--log-level debug", () => {
  it("[§5] a pull tells each request and status, the credential source and scheme, and no secret", async () => {
    const file = await writeAuthJson(path.join(await scratchDir(), "auth.json"), authsFor({ [registry.host]: `${USER}:${PASSWORD}` }))
    const r = await runCli(["pull", "-q", "--log-level", "debug", `${registry.host}/team/app:1.0`], { env: { HOME: await freshHome(), REGISTRY_AUTH_FILE: file } })
    expect(r.code, show(r)).toBe(0)
    expect(r.stderr).toMatch(new RegExp(`^debug: GET http://${registry.host}/v2/ → HTTP 401$`, "m"))
    expect(r.stderr).toMatch(new RegExp(`^debug: GET http://${registry.host}/v2/team/app/manifests/1.0 → HTTP 200$`, "m"))
    expect(r.stderr).toContain(`user "${USER}" from ${file}, key ${registry.host}; the registry asks for Basic`)
    for (const secret of secrets) expect(r.stderr).not.toContain(secret)
  })

  it("[P7] retries are told with their reason; a denial's cause is shown", async () => {
    proxy.setFaults([{ method: "GET", path: /\/manifests\//, times: 2, fault: { kind: "status", status: 503 } }])
    try {
      const file = await writeAuthJson(path.join(await scratchDir(), "auth.json"), authsFor({ [proxy.host]: `${USER}:wrong-password` }))
      const r = await runCli(["inspect", "--log-level", "debug", `${proxy.host}/team/app:1.0`], { env: { HOME: await freshHome(), REGISTRY_AUTH_FILE: file } })
      expect(r.code, show(r)).toBe(4)
      expect(r.stderr).not.toContain("wrong-password")
      expect(r.stderr).toMatch(/^debug: .*401/m)
    } finally {
      proxy.setFaults([])
    }
    const retried = await runCli(["inspect", "--log-level", "debug", `${proxy.host}/team/app:1.0`], {
      env: { HOME: await freshHome(), REGISTRY_AUTH_FILE: await writeAuthJson(path.join(await scratchDir(), "auth.json"), authsFor({ [proxy.host]: `${USER}:${PASSWORD}` })) }
    }).then(async (first) => {
      expect(first.code, show(first)).toBe(0)
      proxy.setFaults([{ method: "GET", path: /\/manifests\//, times: 1, fault: { kind: "status", status: 503 } }])
      try {
        return await runCli(["inspect", "--log-level", "debug", `${proxy.host}/team/app:1.0`], {
          env: { HOME: await freshHome(), REGISTRY_AUTH_FILE: await writeAuthJson(path.join(await scratchDir(), "auth2.json"), authsFor({ [proxy.host]: `${USER}:${PASSWORD}` })) }
        })
      } finally {
        proxy.setFaults([])
      }
    })
    expect(retried.code, show(retried)).toBe(0)
    expect(retried.stderr).toMatch(/^debug: attempt 1 of 5 failed \(manifest team\/app:1\.0 answered HTTP 503\); trying again$/m)
  })
})
