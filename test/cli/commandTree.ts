/**
 * The command tree as the CLI builds it, for tests that go over every command: a command added
 * to src/cli/main.ts is checked by them without a line changed here.
 */
import { commandTree } from "../../src/cli/main.js"
import * as Tree from "../../src/cli/tree.js"
import * as Live from "../../src/Live.js"

export const root = Tree.fromCommand(commandTree({ credentials: Live.credentials, registry: Live.registry }))

/** Every command, groups included, the root first. */
export const commands = Tree.all(root)

/** The commands that run something (no subcommands). */
export const leaves = commands.filter((c) => c.children.length === 0)

/** A value the flag takes, as a user would give it. */
export const sampleValue = (flag: Tree.Flag): string | undefined => {
  switch (flag.value._tag) {
    case "None":
      return undefined
    case "Choice":
      return flag.value.choices[0]
    case "Integer":
      return "4"
    case "Number":
      return "1.5"
    case "Date":
      return "2024-01-02"
    case "Path":
      return "./some-path"
    case "Platform":
      return "linux/arm64"
    case "Text":
      return "some-text"
  }
}

/** `flag` as given on a command line: its name, then its value if it takes one. */
export const given = (flag: Tree.Flag, name = Tree.long(flag)): ReadonlyArray<string> => {
  const value = sampleValue(flag)
  return value === undefined ? [name] : [name, value]
}

/** The required flags of `node`, given. */
export const requiredFlags = (node: Tree.Node): ReadonlyArray<string> => node.flags.filter((f) => f.required).flatMap((f) => given(f))

/** As many arguments as `node` needs (or, with "max", takes; one for a list). */
export const argsOf = (node: Tree.Node, count: "min" | "max" = "min"): ReadonlyArray<string> =>
  node.args.flatMap((a) => Array.from({ length: count === "min" ? a.min : Math.min(a.max, 1) }, (_, i) => `${a.name}-${i}`))

/** The shortest command line `node` runs with: its required flags and arguments. */
export const minimal = (node: Tree.Node): ReadonlyArray<string> => [...node.path, ...requiredFlags(node), ...argsOf(node)]
