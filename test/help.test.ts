/**
 * `--help` of every command, as users read it (plain text through a pipe). A change to a
 * description, flag or argument shows up here as a snapshot difference to review.
 */
import { readFile } from "node:fs/promises"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { runCli } from "./support/cli.js"

const commands = [[], ["pull"], ["push"], ["inspect"], ["tags"], ["registry"], ["registry", "login"], ["registry", "logout"], ["registry", "list"], ["rootfs"], ["rootfs", "build"], ["run"], ["secret"], ["secret", "check"]]

describe("--help", () => {
  it.each(commands.map((c) => [c.join(" ") || "microagent", c] as const))("%s --help", async (name, command) => {
    const r = await runCli([...command, "--help"], { env: { HOME: "/nonexistent" } })
    expect(r.code).toBe(0)
    expect(r.stderr).toBe("")
    expect(r.stdout).not.toMatch(/\x1b\[/)
    await expect(r.stdout).toMatchFileSnapshot(`snapshots/help-${name.replaceAll(" ", "-")}.txt`)
  })

  it("every command and flag has a description and an example", async () => {
    for (const command of commands.filter((c) => c.length > 0 && c.join(" ") !== "registry" && c.join(" ") !== "rootfs" && c.join(" ") !== "secret")) {
      const r = await runCli([...command, "--help"], { env: { HOME: "/nonexistent" } })
      const sections = r.stdout.split(/\n(?=[A-Z]+\n)/)
      for (const section of sections.filter((s) => /^(ARGUMENTS|OPTIONS)\n/.test(s))) {
        // Each entry: a name line, the type line @effect/cli writes, then ours.
        const entries = section.split(/\n\n(?=\S)/).slice(1)
        for (const entry of entries) expect(entry, `${command.join(" ")}: ${entry}`).toMatch(/e\.g\.|E\.g\.|: microagent /)
      }
    }
  })
})

describe("--version", () => {
  it("prints the package's version and one newline, for $(microagent --version)", async () => {
    const { version } = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    const r = await runCli(["--version"], { env: { HOME: "/nonexistent" } })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(`${version}\n`)
    expect(r.stderr).toBe("")
  })
})

describe("without HOME (a container's nameless user)", () => {
  it("--help and --version still work: they need no store", async () => {
    const help = await runCli(["--help"], { env: { HOME: undefined } })
    expect(help.code, help.stderr).toBe(0)
    expect(help.stdout).toMatch(/^USAGE$/m)
    const version = await runCli(["--version"], { env: { HOME: undefined } })
    expect(version.code, version.stderr).toBe(0)
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it("an empty HOME is no home: login and pull refuse it as an unset one, and write nothing in the current folder", async () => {
    const cwd = await fs.mkdtemp(path.join(os.tmpdir(), "microagent-empty-home-"))
    try {
      for (const args of [["registry", "login", "127.0.0.1:1", "-u", "me", "--password-stdin", "--no-verify"], ["pull", "127.0.0.1:1/team/app:1"]]) {
        const r = await runCli(args, { env: { HOME: "" }, cwd, stdin: "a-password\n" })
        expect(r.code, r.stderr).toBe(2)
        expect(r.stderr).toMatch(/^error: HOME is not set/)
      }
      expect(await fs.readdir(cwd)).toEqual([])
    } finally {
      await fs.rm(cwd, { recursive: true, force: true })
    }
  })

  it("a command that needs the store says HOME is missing in one line and a hint, exit 2", async () => {
    const r = await runCli(["registry", "list"], { env: { HOME: undefined } })
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).toBe(
      "error: HOME is not set: microagent keeps its credential store and images under $HOME/.microagent\nhint: set it, e.g. HOME=/root microagent …\n"
    )
  })
})
