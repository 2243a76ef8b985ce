/**
 * `--help`, rendered from the command tree (./tree.ts) as plain text: what each command, argument
 * and flag is, in our words only. @effect/cli's own pages added a type line to every entry ("A
 * user-defined piece of text.", "This setting is optional."), began usage lines with the bare
 * subcommand, left out the global flags and put a bold white title first, which vanishes on a
 * light terminal.
 */
import * as Tree from "./tree.js"

/** What goes after a flag in usage lines and help: `os/arch[/variant]`, `dir|ext4`, `<n>`. */
export const placeholder = (flag: Tree.Flag): string | undefined => {
  const value = flag.value
  switch (value._tag) {
    case "None":
      return undefined
    case "Choice":
      return value.choices.join("|")
    case "Integer":
      return "<n>"
    case "Number":
      return "<number>"
    case "Date":
      return "<date>"
    case "Path":
      return value.kind === "directory" ? "<dir>" : value.kind === "file" ? "<file>" : "<path>"
    case "Platform":
      return "os/arch[/variant]"
    case "Text":
      return `<${value.placeholder}>`
  }
}

const spelled = (flag: Tree.Flag, names: ReadonlyArray<string>): string => [names.join(", "), placeholder(flag)].filter((s) => s !== undefined).join(" ")

const argUsage = (arg: Tree.Arg): string => {
  const one = `<${arg.name}>${arg.max > 1 ? "..." : ""}`
  return arg.min === 0 ? `[${one}]` : one
}

/** `microagent registry login -u <username> [options] <registry>`: required flags spelled out, the rest in OPTIONS. */
export const usageLine = (node: Tree.Node): string => {
  const words = ["microagent", ...node.path]
  if (node.children.length > 0) return [...words, "<command>"].join(" ")
  const required = node.flags.filter((f) => f.required).map((f) => spelled(f, f.names.slice(0, 1)))
  const optional = node.flags.some((f) => !f.required) ? ["[options]"] : []
  return [...words, ...required, ...optional, ...node.args.map(argUsage)].join(" ")
}

/** The commands a group's page lists: every runnable command below it, by its full name. */
const leaves = (node: Tree.Node): ReadonlyArray<Tree.Node> =>
  node.children.flatMap((child) => child.children.length > 0 ? leaves(child) : [child])

const entries = (items: ReadonlyArray<readonly [string, string]>): ReadonlyArray<string> =>
  items.flatMap(([head, description]) => [`  ${head}`, ...(description === "" ? [] : [`      ${description}`])])

const section = (heading: string, lines: ReadonlyArray<string>): ReadonlyArray<string> =>
  lines.length === 0 ? [] : ["", heading, ...lines]

const flagEntries = (flags: ReadonlyArray<Tree.Flag>) => entries(flags.map((f) => [spelled(f, f.names), f.description]))

export const render = (node: Tree.Node): string => {
  const root = node.path.length === 0
  const commands = leaves(node)
  const width = Math.max(0, ...commands.map((c) => c.path.join(" ").length))
  return [
    ...(node.description === "" ? [] : [node.description, ""]),
    "USAGE",
    `  ${usageLine(node)}`,
    ...(root ? ["  microagent help [<command>]"] : []),
    ...section("COMMANDS", commands.map((c) => `  ${c.path.join(" ").padEnd(width)}  ${c.description}`.trimEnd())),
    ...section("ARGUMENTS", entries(node.args.map((a) => [argUsage(a), a.description]))),
    ...section("OPTIONS", flagEntries(node.flags)),
    ...section("GLOBAL OPTIONS", root ? flagEntries(Tree.globalFlags) : []),
    ...(node.children.length > 0 ? ["", `${root ? "microagent <command>" : `microagent ${node.path.join(" ")} <command>`} --help shows a command's arguments and flags, with examples.`] : [])
  ].join("\n")
}
