/**
 * `microagent secret check` through the built CLI ([R6], [E10]): one line per secret with name,
 * source and size; plaintext warnings on stderr; exit 0, 1 or 2; never a value anywhere.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeHome, runCli } from "../support/cli.js"

const API_VALUE = "SV-cli-env-Tq8wZ3mK5"
const FILE_VALUE = "SV-cli-file-Lp4xR7nB2\n"
const DOTENV_VALUE = "SV-cli-dotenv-Gh6vC1sJ9"
const OTHER_VALUE = "SV-cli-other-Nd2kF5yW8"
const values = [API_VALUE, FILE_VALUE.trim(), DOTENV_VALUE, OTHER_VALUE]

let home: string
let cleanup: () => Promise<void>
let dir: string

beforeAll(async () => {
  ;({ cleanup, home } = await makeHome())
  dir = join(home, "secrets")
  await mkdir(dir)
  await writeFile(join(dir, "token"), FILE_VALUE)
  await writeFile(join(dir, ".env"), `# settings\nOTHER=${OTHER_VALUE}\nexport DB_PASSWORD='${DOTENV_VALUE}'\n`)
})
afterAll(() => cleanup())

const check = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  runCli(["secret", "check", ...args], { env: { HOME: home, ...env }, cwd: dir })

const expectNoValue = (output: string) => {
  for (const value of values) expect(output).not.toContain(value)
}

describe("microagent secret check", () => {
  it("[R6] prints name, source and size of each secret, warns once per plaintext scheme, exits 0", async () => {
    const r = await check(["API_TOKEN=env:API_TOKEN", "TLS_KEY=file:./token", "DB_PASSWORD=dotenv:.env#DB_PASSWORD", "SAME=env:API_TOKEN"], {
      API_TOKEN: API_VALUE
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(
      [
        `API_TOKEN    env:API_TOKEN     ${API_VALUE.length} bytes`,
        `TLS_KEY      ./token           ${FILE_VALUE.length} bytes`,
        `DB_PASSWORD  .env#DB_PASSWORD  ${DOTENV_VALUE.length} bytes`,
        `SAME         env:API_TOKEN     ${API_VALUE.length} bytes`,
        ""
      ].join("\n")
    )
    expect(r.stderr).toBe(
      [`warning: secret scheme "env" is plaintext`, `warning: secret scheme "file" is plaintext`, `warning: secret scheme "dotenv" is plaintext`, ""].join("\n")
    )
    expectNoValue(r.stdout + r.stderr)
  })

  it("[E10] a reference that does not resolve: the error names secret and scheme, exit 1, nothing on stdout", async () => {
    const r = await check(["API_TOKEN=env:API_TOKEN", "DB=dotenv:.env#MISSING"], { API_TOKEN: API_VALUE })
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    expect(r.stderr).toContain(`warning: secret scheme "dotenv" is plaintext\n`)
    expect(r.stderr).toContain(`error: secret "DB" (dotenv:.env#MISSING) does not resolve: .env sets no MISSING\n`)
    expectNoValue(r.stdout + r.stderr)
  })

  it("[E10] an unset variable and a missing file: exit 1", async () => {
    const env = await check(["API_TOKEN=env:API_TOKEN"])
    expect(env.code).toBe(1)
    expect(env.stderr).toContain(`error: secret "API_TOKEN" (env:API_TOKEN) does not resolve: API_TOKEN is not set in microagent's environment\nhint: `)
    const file = await check(["K=file:./nope"])
    expect(file.code).toBe(1)
    expect(file.stderr).toContain(`error: secret "K" (file:./nope) does not resolve: ./nope does not exist\n`)
  })

  it("[E4] a malformed reference or a repeated name is a usage error (exit 2); a value given as a reference is not echoed", async () => {
    const malformed = await check([`TOKEN=${API_VALUE}`])
    expect(malformed.code).toBe(2)
    expect(malformed.stdout).toBe("")
    expect(malformed.stderr).toContain(`error: invalid secret reference: secret "TOKEN": the reference must start with env:, file: or dotenv:`)
    expectNoValue(malformed.stderr)
    const twice = await check(["A=env:API_TOKEN", "A=file:./token"], { API_TOKEN: API_VALUE })
    expect(twice.code).toBe(2)
    expect(twice.stderr).toContain(`error: secret "A" is given more than once\n`)
    const none = await check([])
    expect(none.code).toBe(2)
  })
})
