/**
 * What a start costs ([S1]'s `registry list` is the benchmark's start-up case, docs/performance.md):
 * commands that never reach a registry or a terminal must not load the code for them. Each of
 * these Node modules, once loaded by the bundle at start, made every command slower.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { binPath, runNode } from "./support/cli.js"
import { useScratch } from "./support/scratch.js"

const { freshHome } = useScratch("microagent-startup-")

/** Runs the CLI as `microagent <args>` and returns Node's built-in modules it loaded, with its result. */
const loadedBy = async (args: ReadonlyArray<string>) => {
  const home = await freshHome()
  const out = path.join(home, "modules.json")
  const script = `
    process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.moduleLoadList)))
    process.argv = [process.argv[0], ${JSON.stringify(binPath)}, ...${JSON.stringify(args)}]
    require(${JSON.stringify(binPath)})`
  const result = await runNode(["-e", script], [], { env: { HOME: home } })
  const modules = (JSON.parse(await fs.readFile(out, "utf8")) as Array<string>)
    .filter((entry) => entry.startsWith("NativeModule "))
    .map((entry) => entry.slice("NativeModule ".length))
  return { result, modules }
}

// Not `net`: Node loads it itself for standard output when that is a pipe, as it is here.
const networkAndTerminal = ["http", "https", "tls", "readline", "child_process", "worker_threads"]

describe("start-up", () => {
  it("[S1] registry list loads no HTTP, TLS, terminal, child-process or worker code", async () => {
    const { modules, result } = await loadedBy(["registry", "list", "--json"])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim()).toBe("[]")
    expect(modules.filter((name) => networkAndTerminal.includes(name))).toEqual([])
  })

  it("[O2] registry logout of an unknown key loads none of them either", async () => {
    const { modules, result } = await loadedBy(["registry", "logout", "nowhere.example"])
    expect(result.code).toBe(1)
    expect(modules.filter((name) => networkAndTerminal.includes(name))).toEqual([])
  })

  it("the same check sees them when they are used: a command that talks to a registry loads http", async () => {
    // Nothing listens on port 1: the request starts, fails, and the command exits 1.
    const { modules, result } = await loadedBy(["tags", "127.0.0.1:1/team/app"])
    expect(result.code).toBe(1)
    expect(modules).toContain("http")
  })
})
