/**
 * Mistakes on the command line, named as the user made them [E4] (issue 13, items 9, 10, 13):
 * the unknown flag itself with a "did you mean", case variants refused rather than ignored, a
 * value of the wrong type with the flag's name, a missing argument or flag with the command's
 * usage line, and `help`, `version`, `-v` and `login` doing what users mean. Exit 2 ([§5]).
 *
 * Every command of the tree is checked in-process (fast, and a new command is covered without a
 * line here); the built CLI is run for each kind of mistake, as a user sees it.
 */
import * as Either from "effect/Either"
import { describe, expect, it } from "vitest"
import * as Help from "../../src/cli/help.js"
import * as Tree from "../../src/cli/tree.js"
import * as Usage from "../../src/cli/usage.js"
import { expectCleanError, show } from "../support/assertions.js"
import { runCli } from "../support/cli.js"
import { argsOf, commands, given, leaves, minimal, requiredFlags, root } from "./commandTree.js"

const env = { HOME: "/nonexistent" }

const refused = (words: ReadonlyArray<string>) => {
  const outcome = Usage.check(root, words)
  if (Either.isRight(outcome)) throw new Error(`${words.join(" ")} was not refused: ${outcome.right._tag}`)
  return { message: outcome.left.message, hint: outcome.left.hint }
}

const outcome = (words: ReadonlyArray<string>) => Either.getOrThrowWith(Usage.check(root, words), (e) => new Error(`${words.join(" ")}: ${e.message}`))

const usageHint = (node: Tree.Node) => `usage: ${Help.usageLine(node)}`

/** Every spelling of every flag a command takes, its own and the global ones. */
const spellings = (node: Tree.Node) => [...node.flags, ...Tree.globalsFor(node)].flatMap((f) => f.names.map((name) => ({ flag: f, name })))

describe("a valid command line is left to @effect/cli", () => {
  it.each(leaves.map((n) => [Tree.title(n), n] as const))("%s with its required flags and arguments, then with every flag", (_, node) => {
    expect(outcome(minimal(node))._tag).toBe("Run")
    const everyFlag = [...node.path, ...node.flags.filter((f) => !f.required).flatMap((f) => given(f)), ...requiredFlags(node), ...argsOf(node, "max")]
    expect(outcome(everyFlag)._tag).toBe("Run")
  })

  it("reads flags as @effect/cli does: --flag=value, grouped switches, a switch's true/false, -- before arguments", () => {
    expect(outcome(["pull", "--platform=linux/arm64", "--jobs=8", "app:1"])._tag).toBe("Run")
    expect(outcome(["run", "-it", "--", "app", "sh", "--bogus"])._tag).toBe("Run")
    expect(outcome(["registry", "list", "--json", "true"])._tag).toBe("Run")
    expect(outcome(["--log-level", "debug", "registry", "list"])._tag).toBe("Run")
  })
})

describe("[E4] item 9: an unknown flag is named itself, with a did-you-mean for a near miss", () => {
  it.each(leaves.map((n) => [Tree.title(n), n] as const))("%s --bogus", (_, node) => {
    const { hint, message } = refused([...node.path, "--bogus", ...requiredFlags(node), ...argsOf(node)])
    expect(message).toBe(`unknown flag '--bogus' for ${Tree.title(node)}`)
    expect(hint).toBe(`microagent ${node.path.join(" ")} --help lists its flags`)
  })

  it.each(commands.map((n) => [Tree.title(n), n] as const))("%s: each long flag with two letters swapped", (_, node) => {
    for (const { name } of spellings(node).filter(({ name }) => name.startsWith("--") && name.length >= 8)) {
      const typo = `--${name[3]}${name[2]}${name.slice(4)}`
      expect(refused([...node.path, typo]), typo).toEqual({
        message: `unknown flag '${typo}'${node.path.length > 0 ? ` for ${Tree.title(node)}` : ""}`,
        hint: `did you mean ${name}?`
      })
    }
  })

  it("an unknown command is named, with the command of that name elsewhere in the tree", () => {
    for (const node of commands.filter((n) => n.path.length === 2)) {
      const word = Tree.name(node)
      if (root.children.some((c) => Tree.name(c) === word)) continue
      const { hint, message } = refused([word])
      expect(message).toBe(`unknown command '${word}'`)
      expect(hint).toContain(`microagent ${node.path.join(" ")}`)
    }
    expect(refused(["pul", "app"]).hint).toBe("did you mean microagent pull?")
    expect(refused(["registry", "logn"])).toEqual({ message: "unknown command 'registry logn'", hint: "did you mean microagent registry login?" })
  })

  it("through the CLI: pull --bogus ref blames --bogus, not ref; --platfrom suggests --platform; exit 2", async () => {
    const bogus = await runCli(["pull", "--bogus", "ref"], { env })
    expect(bogus.code, show(bogus)).toBe(2)
    expect(bogus.stdout).toBe("")
    expect(bogus.stderr).toBe("error: unknown flag '--bogus' for pull\nhint: microagent pull --help lists its flags\n")
    const typo = await runCli(["pull", "--platfrom", "linux/arm64", "ref"], { env })
    expect(typo.code, show(typo)).toBe(2)
    expect(typo.stderr).toBe("error: unknown flag '--platfrom' for pull\nhint: did you mean --platform?\n")
  })
})

describe("[E4] item 10: flags are case-sensitive; a case variant is refused, never ignored", () => {
  it.each(commands.map((n) => [Tree.title(n), n] as const))("%s: every flag in upper case", (_, node) => {
    const names = spellings(node).map(({ name }) => name)
    for (const name of names) {
      const variant = name.toUpperCase()
      if (names.includes(variant)) continue
      const { hint, message } = refused([...node.path, variant, ...requiredFlags(node), ...argsOf(node)])
      expect(message, variant).toContain(`unknown flag '${variant}'`)
      expect(hint, variant).toBe(`did you mean ${name}? Flags are case-sensitive`)
    }
  })

  it.each([
    [["pull", "-Q", "app:1"], "-Q", "-q"],
    [["pull", "--QUIET", "app:1"], "--QUIET", "--quiet"],
    [["tags", "--JSON", "team/app"], "--JSON", "--json"]
  ])("through the CLI: %j exits 2 and says which flag was meant", async (args, typed, meant) => {
    const r = await runCli(args, { env })
    expect(r.code, show(r)).toBe(2)
    expect(r.stdout).toBe("")
    expect(expectCleanError(r)).toEqual([
      `error: unknown flag '${typed}' for ${args[0]}`,
      `hint: did you mean ${meant}? Flags are case-sensitive`
    ])
  })
})

describe("[E4] item 13: usage errors say what is missing or wrong, with the usage line", () => {
  it.each(leaves.filter((n) => n.args.some((a) => a.min > 0)).map((n) => [Tree.title(n), n] as const))("%s without its arguments", (_, node) => {
    const first = node.args.find((a) => a.min > 0)!
    const { hint, message } = refused([...node.path, ...requiredFlags(node)])
    expect(message).toBe(`${Tree.title(node)} needs ${first.max > 1 ? "at least one " : ""}<${first.name}>`)
    expect(hint).toBe(usageHint(node))
    expect(hint).toMatch(new RegExp(`^usage: microagent ${node.path.join(" ")} `))
  })

  it.each(leaves.filter((n) => n.args.length > 0 && n.args.every((a) => a.max === 1)).map((n) => [Tree.title(n), n] as const))("%s with one argument too many", (_, node) => {
    expect(refused([...node.path, ...requiredFlags(node), ...argsOf(node, "max"), "extra"])).toEqual({ message: `unexpected argument 'extra' for ${Tree.title(node)}`, hint: usageHint(node) })
  })

  it("a required flag left out is named with all its spellings", () => {
    for (const node of leaves) {
      for (const flag of node.flags.filter((f) => f.required)) {
        const words = minimal(node).filter((w, i, all) => !flag.names.includes(w) && !flag.names.includes(all[i - 1]!))
        expect(refused(words)).toEqual({ message: `${Tree.title(node)} needs ${flag.names.join("/")}`, hint: usageHint(node) })
      }
    }
  })

  it("a value of the wrong type is named with its flag", () => {
    for (const node of leaves) {
      for (const flag of node.flags) {
        const base = minimal(node).filter((w) => !flag.names.includes(w))
        if (flag.value._tag === "Integer") {
          expect(refused([...base, Tree.long(flag), "abc"]).message).toBe(`${Tree.long(flag)} expects a whole number, got 'abc'`)
        }
        if (flag.value._tag === "Choice") {
          const { message } = refused([...base, Tree.long(flag), "BOGUS"])
          expect(message).toMatch(new RegExp(`^${Tree.long(flag)} expects .+, got 'BOGUS'$`))
          for (const choice of flag.value.choices) expect(message).toContain(choice)
        }
        if (flag.value._tag !== "None" && !flag.required) {
          expect(refused([...base, Tree.long(flag)]).message, Tree.long(flag)).toMatch(new RegExp(`^${Tree.long(flag)} needs a value`))
        }
      }
    }
  })

  it("help, help <command> and a group alone show help; version and -v the version", () => {
    for (const node of commands) {
      expect(outcome(["help", ...node.path])).toEqual({ _tag: "Help", node })
      expect(outcome([...node.path, "--help"])).toEqual({ _tag: "Help", node })
      if (node.children.length > 0) expect(outcome(node.path)).toEqual({ _tag: "Help", node })
    }
    expect(outcome(["version"])._tag).toBe("Version")
    expect(outcome(["-v"])._tag).toBe("Version")
    expect(refused(["help", "bogus"]).message).toBe("unknown command 'bogus'")
  })

  it("after a command, -v is no version: docker's run -v is refused, not answered with a version and exit 0", () => {
    expect(refused(["run", "-v", "/srv:/data", "app"]).message).toBe("unknown flag '-v' for run")
  })

  it("grouped switches are each a switch of the command; anything else in a group names the whole word", () => {
    expect(refused(["tag", "app:1", "good", "-dash"])).toEqual({
      message: "unknown flag '-dash' for tag",
      hint: "microagent tag --help lists its flags; an argument that starts with - goes after --, as in -- -dash"
    })
    expect(outcome(["tag", "app:1", "good", "--", "-dash"])._tag).toBe("Run")
    expect(refused(["pull", "-platform", "linux/arm64", "app:1"]).hint).toBe("did you mean --platform?")
    expect(refused(["run", "-ie", "A=1", "app"]).message).toBe("-e takes a value, so it cannot be grouped as in '-ie'")
  })

  it.each([
    [["pull"], "error: pull needs <reference>", "hint: usage: microagent pull [options] <reference>"],
    [["registry", "login", "localhost:5000"], "error: registry login needs -u/--username", "hint: usage: microagent registry login -u <username> [options] <registry>"],
    [["pull", "--jobs", "abc", "app:1"], "error: --jobs expects a whole number, got 'abc'", "hint: usage: microagent pull [options] <reference>"],
    [["login"], "error: unknown command 'login'", "hint: did you mean microagent registry login?"],
    [["logout", "ghcr.io"], "error: unknown command 'logout'", "hint: did you mean microagent registry logout?"]
  ])("through the CLI: %j", async (args, error, hint) => {
    const r = await runCli(args, { env })
    expect(r.code, show(r)).toBe(2)
    expect(r.stdout).toBe("")
    expect(expectCleanError(r)).toEqual([error, hint])
  })

  it("through the CLI: help and help <command> print the --help pages; version and -v print --version's line", async () => {
    const [help, rootHelp, helpLogin, loginHelp, version, v, dashDash] = await Promise.all(
      [["help"], ["--help"], ["help", "registry", "login"], ["registry", "login", "--help"], ["version"], ["-v"], ["--version"]].map((args) => runCli(args, { env }))
    )
    for (const r of [help, rootHelp, helpLogin, loginHelp, version, v, dashDash]) {
      expect(r!.code, show(r!)).toBe(0)
      expect(r!.stderr).toBe("")
    }
    expect(help!.stdout).toBe(rootHelp!.stdout)
    expect(helpLogin!.stdout).toBe(loginHelp!.stdout)
    expect(helpLogin!.stdout).toContain("microagent registry login -u <username>")
    expect(version!.stdout).toBe(dashDash!.stdout)
    expect(v!.stdout).toBe(dashDash!.stdout)
    expect(v!.stdout).toMatch(/^\d+\.\d+\.\d+\S*\n$/)
  })
})
