/**
 * `--help` of every command in the tree, as users read it (issue 13, item 12). A change to a
 * description, flag or argument shows up here as a snapshot difference to review.
 */
import { readFile } from "node:fs/promises"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as Tree from "../src/cli/tree.js"
import { commands, leaves } from "./cli/commandTree.js"
import { show } from "./support/assertions.js"
import { binPath, runCli } from "./support/cli.js"
import { spawnPty } from "./support/pty.js"

const env = { HOME: "/nonexistent" }

const help = async (node: Tree.Node) => {
  const r = await runCli([...node.path, "--help"], { env })
  expect(r.code, show(r)).toBe(0)
  expect(r.stderr).toBe("")
  return r.stdout
}

/** Sections of a page: heading → its lines. */
const sections = (page: string): Map<string, ReadonlyArray<string>> =>
  new Map(page.split(/\n\n(?=[A-Z ]+\n)/).map((block) => {
    const [heading, ...lines] = block.split("\n")
    return [heading!, lines] as const
  }))

const byTitle = (nodes: ReadonlyArray<Tree.Node>) => nodes.map((n) => [Tree.title(n), n] as const)

describe("--help", () => {
  it.each(byTitle(commands))("%s --help", async (title, node) => {
    const page = await help(node)
    expect(page).not.toMatch(/\x1b\[/)
    await expect(page).toMatchFileSnapshot(`snapshots/help-${title.replaceAll(" ", "-")}.txt`)
  })

  it.each(byTitle(commands))("%s: only microagent's own words, none of @effect/cli's filler; USAGE starts with microagent", async (_, node) => {
    const page = await help(node)
    for (const filler of ["A user-defined piece of text", "A true or false value", "This setting is optional", "An integer", "A integer", "One of the following", "A file system path", "Expected one of"]) {
      expect(page).not.toContain(filler)
    }
    // Every indented description line is a description from the tree, word for word.
    const described = new Set([...node.flags, ...node.args, ...Tree.globalFlags].map((e) => e.description))
    for (const line of page.split("\n").filter((l) => l.startsWith("      "))) expect(described, line).toContain(line.trim())
    const usage = sections(page).get("USAGE")!
    expect(usage.length).toBeGreaterThan(0)
    for (const line of usage) expect(line.startsWith(`  microagent ${node.path.map((w) => `${w} `).join("")}`), line).toBe(true)
  })

  it("the top-level page lists every command and the global flags", async () => {
    const page = await help(commands[0]!)
    const lines = sections(page)
    for (const node of leaves) expect(lines.get("COMMANDS")!.join("\n")).toContain(`  ${node.path.join(" ")} `)
    for (const flag of ["--log-level", "--completions", "--version", "--help"]) expect(lines.get("GLOBAL OPTIONS")!.join("\n")).toContain(flag)
  })

  it.each(byTitle(leaves))("%s: every argument and flag says what it is, with an example of this command", async (_, node) => {
    const page = await help(node)
    for (const entry of [...node.args, ...node.flags]) {
      expect(entry.description, `${Tree.title(node)}: ${JSON.stringify(entry)}`).toMatch(/e\.g\.|E\.g\.|: microagent /)
      // An example of another command only (push's --quiet showed `microagent pull -q`) misleads.
      const examples = [...entry.description.matchAll(/microagent ((?:[a-z]+ )*[a-z]+)/g)].map(([, words]) => `${words} `)
      if (examples.length > 0) expect(examples.some((words) => words.startsWith(`${node.path.join(" ")} `)), `${Tree.title(node)}: ${entry.description}`).toBe(true)
    }
    expect(page).toContain(`${Tree.title(node)} `)
  })

  it("--jobs states its range wherever it is taken", () => {
    const withJobs = leaves.flatMap((n) => n.flags.filter((f) => f.names.includes("--jobs")))
    expect(withJobs.length).toBeGreaterThan(0)
    for (const flag of withJobs) expect(flag.description).toContain("1–64")
  })

  it("on a terminal with colour on, help has no title and no colour, so no line vanishes on a light background", async () => {
    const session = spawnPty(process.execPath, [binPath, "push", "--help"], { env: { ...env, NO_COLOR: "" } })
    const { code, output } = await session.exited
    expect(code, output).toBe(0)
    expect(output).not.toMatch(/\x1b\[/)
    expect(output.split("\r\n")[0]).toBe(commands.find((n) => Tree.title(n) === "push")!.description)
  })
})

describe("--version", () => {
  it("prints the package's version and one newline, for $(microagent --version)", async () => {
    const { version } = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    const r = await runCli(["--version"], { env })
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
