/**
 * `registry list` and `registry logout` beside a `$REGISTRY_AUTH_FILE` (issue 13, items 7 and 8):
 * a file that cannot be used does not hide what the other lists, and each thing is said once.
 * No registry is needed: neither command talks to one.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { show } from "../support/assertions.js"
import { authsFor, storePath, writeAuthJson } from "../support/auth.js"
import { runCli } from "../support/cli.js"
import { useScratch } from "../support/scratch.js"

const { freshHome, scratchDir } = useScratch("microagent-registry-list-")

const registry = (home: string, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  runCli(["registry", ...args], { env: { HOME: home, ...env } })

/** A `$REGISTRY_AUTH_FILE` that is not JSON: it breaks off after its first key. */
const brokenFile = async () => {
  const file = path.join(await scratchDir(), "auth.json")
  await fs.writeFile(file, '{"auths": {"x.example": ')
  return file
}

describe("[S1][C9] list with a $REGISTRY_AUTH_FILE that cannot be used", () => {
  it("--json: the own store's entries on stdout, then one error line naming the file, exit 3", async () => {
    const home = await freshHome()
    await writeAuthJson(storePath(home), authsFor({ "own.example": "own:pw-own" }))
    const raf = await brokenFile()
    const r = await registry(home, ["list", "--json"], { REGISTRY_AUTH_FILE: raf })
    expect(r.code, show(r)).toBe(3)
    expect(JSON.parse(r.stdout), show(r)).toEqual([
      { registry: "own.example", username: "own", source: storePath(home), shadowed: false, invalid: null }
    ])
    expect(r.stderr, show(r)).toMatch(new RegExp(`^error: cannot use auth file ${raf}: not valid JSON[^\\n]*\\n$`))
    expect(r.stdout + r.stderr).not.toContain("pw-own")
  })

  it("both files unusable: nothing listed, one error line for each, exit 3", async () => {
    const home = await freshHome()
    await writeAuthJson(storePath(home), [])
    const raf = await brokenFile()
    const r = await registry(home, ["list"], { REGISTRY_AUTH_FILE: raf })
    expect(r.code, show(r)).toBe(3)
    expect(r.stdout, show(r)).toBe("")
    const lines = r.stderr.trimEnd().split("\n")
    expect(lines, show(r)).toHaveLength(2)
    expect(lines[0], show(r)).toMatch(new RegExp(`^error: cannot use auth file ${raf}: `))
    expect(lines[1], show(r)).toMatch(new RegExp(`^error: cannot use auth file ${storePath(home)}: `))
  })
})

describe("[O2] logout of a key that $REGISTRY_AUTH_FILE holds", () => {
  /** Logs out of registry.example.com, which the $REGISTRY_AUTH_FILE holds, with `own` in the own store. */
  const logout = async (own: Record<string, string>) => {
    const home = await freshHome()
    await writeAuthJson(storePath(home), authsFor(own))
    const raf = await writeAuthJson(path.join(await scratchDir(), "auth.json"), authsFor({ "registry.example.com": "ci:pw-ci" }))
    const r = await registry(home, ["logout", "registry.example.com"], { REGISTRY_AUTH_FILE: raf })
    const sentence = `$REGISTRY_AUTH_FILE (${raf}) still holds "registry.example.com" for it, and microagent never modifies that file`
    return { home, r, sentence }
  }

  it("only there: one error line, which says so once; exit 1", async () => {
    const { home, r, sentence } = await logout({ "other.example": "o:pw-o" })
    expect(r.code, show(r)).toBe(1)
    expect(r.stdout, show(r)).toBe("")
    expect(r.stderr, show(r)).toBe(`error: not logged in to registry.example.com in ${storePath(home)}; ${sentence}\n`)
  })

  it("in both: removed from the own store, and one warning that the file still holds it", async () => {
    const { r, sentence } = await logout({ "registry.example.com": "me:pw-me" })
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout, show(r)).toBe("Removed login credentials for registry.example.com\n")
    expect(r.stderr, show(r)).toBe(`warning: ${sentence}\n`)
  })
})
