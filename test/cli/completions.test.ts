/**
 * `microagent --completions bash|zsh|fish` (issue 13, item 11): every command's flags, at any
 * depth (`registry login` completed only the global flags), and the values of the flags that
 * take one: their choices, common platforms, paths only for flags that take a path, and no file
 * names for free text or numbers (`--platform`, `--jobs`, `-u` offered file names).
 *
 * The bash script runs in a real bash with the bash-completion package, the fish script in fish
 * (`complete -C`); the zsh script is checked to parse. Queries are made from the command tree,
 * so a new command or flag is covered without a line changed here.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { beforeAll, describe, expect, it } from "vitest"
import * as Tree from "../../src/cli/tree.js"
import { show } from "../support/assertions.js"
import { runCli } from "../support/cli.js"
import { useScratch } from "../support/scratch.js"
import { commands } from "./commandTree.js"

const run = promisify(execFile)
const { scratchDir } = useScratch("microagent-completions-")

/** Completes each of `lines` at its end in `shell`, in `cwd`: the candidates of each line, sorted. */
const complete = async (shell: "bash" | "fish", script: string, cwd: string, lines: ReadonlyArray<string>) => {
  const harness = fileURLToPath(new URL(`complete.${shell}`, import.meta.url))
  const child = execFile(shell, [harness, script], { cwd, env: { PATH: process.env["PATH"], HOME: cwd } })
  child.stdin!.end(lines.map((l) => `${l}\n`).join(""))
  const out = await new Promise<string>((resolve, reject) => {
    let text = ""
    let errors = ""
    child.stdout!.on("data", (d) => (text += d))
    child.stderr!.on("data", (d) => (errors += d))
    child.on("close", (code) => code === 0 ? resolve(text) : reject(new Error(`${shell} exited ${code}: ${errors}`)))
  })
  const answers = out.split("\n").slice(0, lines.length).map((a) => a.trim() === "" ? [] : a.trim().split(" "))
  expect(answers.length, out).toBe(lines.length)
  return new Map(lines.map((line, i) => [line, answers[i]!]))
}

const words = (node: Tree.Node) => ["microagent", ...node.path].join(" ")

/** Every flag `node` takes with every spelling, and what completing after it should give. */
const valued = (node: Tree.Node) =>
  [...node.flags, ...Tree.globalsFor(node)].filter((f) => f.value._tag !== "None").flatMap((flag) => flag.names.map((name) => ({ flag, name })))

/** What a flag's value completes to in a folder holding `a-dir/` and `a-file`: exactly, or (paths) at least. */
const expected = (flag: Tree.Flag): { readonly exactly?: ReadonlyArray<string>; readonly dirs?: boolean } => {
  switch (flag.value._tag) {
    case "Choice":
      return { exactly: flag.value.choices }
    case "Platform":
      return { exactly: Tree.commonPlatforms }
    case "Path":
      return { dirs: flag.value.kind === "directory" }
    default:
      return { exactly: [] }
  }
}

const sorted = (list: ReadonlyArray<string>) => [...list].sort()

describe.each(["bash", "fish"] as const)("%s completion", (shell) => {
  let script = ""
  let cwd = ""
  beforeAll(async () => {
    const r = await runCli(["--completions", shell], { env: { HOME: "/nonexistent" } })
    expect(r.code, show(r)).toBe(0)
    expect(r.stderr).toBe("")
    const dir = await fs.mkdtemp(path.join((await fs.realpath(process.env["TMPDIR"] ?? "/tmp")), "microagent-completions-"))
    script = path.join(dir, `microagent.${shell}`)
    cwd = path.join(dir, "work")
    await fs.writeFile(script, r.stdout)
    await fs.mkdir(path.join(cwd, "a-dir"), { recursive: true })
    await fs.writeFile(path.join(cwd, "a-file"), "")
    return () => fs.rm(dir, { recursive: true, force: true })
  })

  it("completes every command's flags, at any depth", async () => {
    const lines = commands.map((n) => `${words(n)} -`)
    const answers = await complete(shell, script, cwd, lines)
    for (const node of commands) {
      const all = [...node.flags, ...Tree.globalsFor(node)].flatMap((f) => f.names)
      expect(sorted(answers.get(`${words(node)} -`)!), Tree.title(node)).toEqual(sorted(all))
    }
  })

  it("completes every group's subcommands, after global flags and their values too", async () => {
    const groups = commands.filter((n) => n.children.length > 0)
    const lines = [...groups.map((n) => `${words(n)} `), "microagent --log-level debug registry "]
    const answers = await complete(shell, script, cwd, lines)
    for (const node of groups) expect(sorted(answers.get(`${words(node)} `)!), Tree.title(node)).toEqual(sorted(node.children.map(Tree.name)))
    expect(answers.get("microagent --log-level debug registry ")).toEqual(sorted(commands.find((n) => Tree.title(n) === "registry")!.children.map(Tree.name)))
  })

  it("offers a flag's values: choices, common platforms, paths only for path flags, nothing for free text and numbers", async () => {
    const queries = commands.flatMap((node) => valued(node).map(({ flag, name }) => ({ line: `${words(node)} ${name} `, flag })))
    const answers = await complete(shell, script, cwd, queries.map((q) => q.line))
    for (const { flag, line } of queries) {
      const got = answers.get(line)!.map((w) => w.replace(/\/$/, ""))
      const want = expected(flag)
      if (want.exactly !== undefined) expect(sorted(got), line).toEqual(sorted(want.exactly))
      else expect(sorted(got), line).toEqual(want.dirs === true ? ["a-dir"] : ["a-dir", "a-file"])
    }
    // The cases the issue names.
    expect(queries.some((q) => q.line.endsWith(" --platform ") && q.flag.value._tag === "Platform")).toBe(true)
    expect(answers.get("microagent pull --jobs ")).toEqual([])
    expect(answers.get("microagent registry login -u ")).toEqual([])
  })

  it.runIf(shell === "bash")("completes --flag=value as --flag value", async () => {
    const answers = await complete(shell, script, cwd, ["microagent pull --platform=linux/arm"])
    expect(answers.get("microagent pull --platform=linux/arm")).toEqual(sorted(Tree.commonPlatforms.filter((p) => p.startsWith("linux/arm"))))
  })
})

describe("zsh completion", () => {
  it("parses (zsh -n) and covers every command path and flag", async () => {
    const r = await runCli(["--completions", "zsh"], { env: { HOME: "/nonexistent" } })
    expect(r.code, show(r)).toBe(0)
    const file = path.join(await scratchDir(), "_microagent")
    await fs.writeFile(file, r.stdout)
    await run("zsh", ["-n", file])
    expect(r.stdout.split("\n")[0]).toBe("#compdef microagent")
    for (const node of commands) {
      expect(r.stdout).toContain(`("${node.path.join(" ")}") offer=(`)
      for (const flag of node.flags) for (const name of flag.names) expect(r.stdout).toContain(`'${name}:`)
    }
  })
})

describe("--completions", () => {
  it("refuses a shell it has no script for, exit 2", async () => {
    const r = await runCli(["--completions", "tcsh"], { env: { HOME: "/nonexistent" } })
    expect(r.code, show(r)).toBe(2)
    expect(r.stderr).toMatch(/^error: --completions expects bash, zsh or fish, got 'tcsh'\n/)
  })
})
