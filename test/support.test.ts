import { describe, expect, it } from "vitest"
import { makeHome, runNode } from "./support/cli.js"
import { spawnPty } from "./support/pty.js"

const env = { PATH: process.env["PATH"] ?? "" }

describe("spawnPty", () => {
  it("lets getpass read a password without echo", async () => {
    const session = spawnPty(
      "python3",
      ["-c", "import getpass; p = getpass.getpass('Password: '); print('got', len(p))"],
      { env }
    )
    await session.waitFor("Password:")
    session.write("secret\n")
    const { code, output } = await session.exited
    expect(code).toBe(0)
    expect(output).toContain("got 6")
    expect(output).not.toContain("secret")
  })

  it("echoes typed input by default", async () => {
    const session = spawnPty("python3", ["-c", "s = input('Name: '); print('hi', s)"], { env })
    await session.waitFor("Name: ")
    session.write("bob\n")
    const { code, output } = await session.exited
    expect(code).toBe(0)
    expect(output.match(/bob/g)).toHaveLength(2)
  })

  it("is a terminal of 80x24 with TERM=xterm", async () => {
    const session = spawnPty(
      process.execPath,
      ["-e", "console.log(process.stdin.isTTY, process.stdout.isTTY, process.stdout.columns, process.stdout.rows, process.env.TERM)"],
      { env }
    )
    const { code, output } = await session.exited
    expect(code).toBe(0)
    expect(output).toContain("true true 80 24 xterm")
  })

  it("waits for a repeated prompt after the previous match", async () => {
    const session = spawnPty("python3", ["-c", "a = input('> '); b = input('> '); print(a + b)"], { env })
    await session.waitFor("> ")
    session.write("x\n")
    await session.waitFor(/> /g)
    session.write("y\n")
    await session.waitFor("xy")
    expect((await session.exited).code).toBe(0)
  })

  it("keeps input written before the child reads it", async () => {
    const session = spawnPty("python3", ["-c", "import time; time.sleep(0.3); print('read', input())"], { env })
    session.write("early\n")
    const { output } = await session.exited
    expect(output).toContain("read early")
  })

  it("reports exit codes, a command that cannot start, and kill", async () => {
    expect((await spawnPty("python3", ["-c", "raise SystemExit(3)"], { env }).exited).code).toBe(3)
    const missing = await spawnPty("no-such-command-here", [], { env }).exited
    expect(missing.code).toBe(127)
    expect(missing.output).toContain("no-such-command-here")

    const session = spawnPty("python3", ["-c", "import time; print('ready', flush=True); time.sleep(60)"], { env })
    await session.waitFor("ready")
    session.kill()
    expect((await session.exited).code).toBe(128 + 9)
  })

  it("rejects waitFor when the process exits without a match", async () => {
    const session = spawnPty("python3", ["-c", "print('bye')"], { env })
    await expect(session.waitFor("never")).rejects.toThrow(/process exited[\s\S]*bye/)
  })
})

describe("runNode", () => {
  const printEnv = ["-e", "console.log(JSON.stringify(process.env))"] as const

  it("does not inherit the test runner's environment", async () => {
    expect(process.env["HOME"]).toBeDefined()
    const result = await runNode(printEnv, [], { env: { HOME: "/nowhere", REGISTRY_AUTH_FILE: undefined } })
    expect(result.code).toBe(0)
    const childEnv = JSON.parse(result.stdout) as Record<string, string>
    expect(childEnv).toMatchObject({ HOME: "/nowhere", NO_COLOR: "1", PATH: process.env["PATH"] })
    expect(Object.keys(childEnv).sort()).toEqual(["HOME", "NO_COLOR", "PATH"])

    const bare = JSON.parse((await runNode(printEnv, [], { env: { PATH: undefined } })).stdout) as object
    expect(bare).toEqual({ NO_COLOR: "1" })
  })

  it("delivers stdin, arguments and exit codes", async () => {
    const code = `
      let input = ""
      process.stdin.on("data", (chunk) => (input += chunk))
      process.stdin.on("end", () => {
        console.log(JSON.stringify({ input, args: process.argv.slice(1) }))
        console.error("done")
        process.exit(4)
      })`
    const result = await runNode(["-e", code], ["a", "b c"], { stdin: "line 1\nline 2" })
    expect(result).toEqual({
      code: 4,
      signal: null,
      stdout: JSON.stringify({ input: "line 1\nline 2", args: ["a", "b c"] }) + "\n",
      stderr: "done\n"
    })
  })

  it("gives a closed, non-TTY stdin when none is given", async () => {
    const code = `
      let input = ""
      process.stdin.on("data", (chunk) => (input += chunk))
      process.stdin.on("end", () => console.log(JSON.stringify({ tty: process.stdin.isTTY ?? false, input })))`
    const result = await runNode(["-e", code], [])
    expect(JSON.parse(result.stdout)).toEqual({ tty: false, input: "" })
  })

  it("runs in the given directory", async () => {
    const { home, cleanup } = await makeHome()
    try {
      const result = await runNode(["-e", "console.log(process.cwd())"], [], { cwd: home })
      expect(result.stdout.trim()).toBe(home)
    } finally {
      await cleanup()
    }
  })

  it("kills a child that runs too long and reports its output", async () => {
    const code = "console.log('started'); setInterval(() => {}, 1000)"
    await expect(runNode(["-e", code], [], { timeoutMs: 2_000 })).rejects.toThrow(/timed out after 2000 ms[\s\S]*started/)
  })
})
