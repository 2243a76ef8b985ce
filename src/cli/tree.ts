/**
 * The command tree as data, read from @effect/cli's descriptors once per start. Help
 * (./help.ts), shell completions (./completions.ts) and the check of a command line
 * (./usage.ts) all work from it, so a command or flag added to the tree reaches all three.
 *
 * @effect/cli exports its descriptors opaquely; the shapes below are those of @effect/cli 0.77's
 * internals. A shape it no longer has is a defect, which test/cli/ turns into a failing test.
 */
import type * as Command from "@effect/cli/Command"
import type * as HelpDoc from "@effect/cli/HelpDoc"
import type * as Span from "@effect/cli/HelpDoc/Span"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"

/** What a flag takes after it. */
export type Value =
  /** Nothing: a switch such as `--json`. */
  | { readonly _tag: "None" }
  | { readonly _tag: "Choice"; readonly choices: ReadonlyArray<string> }
  | { readonly _tag: "Integer" }
  | { readonly _tag: "Number" }
  | { readonly _tag: "Date" }
  | { readonly _tag: "Path"; readonly kind: "file" | "directory" | "either" }
  /** `os/arch[/variant]` ([I3]). */
  | { readonly _tag: "Platform" }
  | { readonly _tag: "Text"; readonly placeholder: string }

export interface Flag {
  /** Every spelling, short ones first: `-q`, `--quiet`. */
  readonly names: ReadonlyArray<string>
  readonly value: Value
  readonly required: boolean
  readonly repeated: boolean
  readonly description: string
}

export interface Arg {
  readonly name: string
  readonly description: string
  readonly min: number
  readonly max: number
}

export interface Node {
  /** The words after `microagent`: none for microagent itself, `["registry", "login"]`. */
  readonly path: ReadonlyArray<string>
  readonly description: string
  readonly flags: ReadonlyArray<Flag>
  readonly args: ReadonlyArray<Arg>
  readonly children: ReadonlyArray<Node>
}

/** How messages name a command: `registry login`, or `microagent` for the root. */
export const title = (node: Node): string => node.path.join(" ") || "microagent"

export const name = (node: Node): string => node.path.at(-1) ?? "microagent"

/** The node and every command below it, parents first. */
export const all = (node: Node): ReadonlyArray<Node> => [node, ...node.children.flatMap(all)]

export const long = (flag: Flag): string => flag.names.at(-1)!

export const shells = ["bash", "zsh", "fish"] as const
export type Shell = typeof shells[number]

/** What `--platform` is offered in a shell: the platforms images are most often built for. */
export const commonPlatforms = [
  "linux/amd64",
  "linux/arm64",
  "linux/arm/v7",
  "linux/arm/v6",
  "linux/386",
  "linux/ppc64le",
  "linux/s390x",
  "linux/riscv64"
]

const none: Value = { _tag: "None" }

const flag = (names: ReadonlyArray<string>, value: Value, description: string): Flag => ({ names, value, required: false, repeated: false, description })

const version = flag(["-v", "--version"], none, "Print microagent's version, e.g. microagent --version")

/**
 * The flags every command takes. @effect/cli brings `--help`, `--version`, `--completions` and
 * `--log-level`; `-v` is the spelling users try first. Its `--wizard` is left out: it starts an
 * interactive prompt nobody asked for, so it is an unknown flag like any other.
 */
export const globalFlags: ReadonlyArray<Flag> = [
  flag(["-h", "--help"], none, "Show what a command does, its arguments and flags, with examples, e.g. microagent pull --help (or microagent help pull)"),
  version,
  flag(
    ["--log-level"],
    { _tag: "Choice", choices: LogLevel.allLevels.map((level) => level._tag.toLowerCase()) },
    "Print log lines of this level and above on stderr; debug adds details to an error, e.g. microagent --log-level debug pull alpine"
  ),
  flag(
    ["--completions"],
    { _tag: "Choice", choices: shells },
    "Print a completion script for this shell, e.g. microagent --completions bash > ~/.local/share/bash-completion/completions/microagent"
  )
]

/** After a command, `-v` may be one of its flags (`docker run -v` mounts): never a silent exit with the version. */
const afterCommand = globalFlags.map((f) => f === version ? { ...f, names: ["--version"] } : f)

/** The global flags as `node` takes them. */
export const globalsFor = (node: Node): ReadonlyArray<Flag> => node.path.length === 0 ? globalFlags : afterCommand

export const isGlobal = (f: Flag, spelling: "--help" | "--version" | "--completions" | "--log-level"): boolean =>
  (globalFlags.includes(f) || afterCommand.includes(f)) && long(f) === spelling

/**
 * What a free-text flag's value is, by the flag's name: @effect/cli types these as plain text, so
 * its help said `--platform text` and shells offered file names for them. A flag of one of these
 * names, on any command, gets the same placeholder and completions.
 */
const textFlags: Readonly<Record<string, Value>> = {
  platform: { _tag: "Platform" },
  out: { _tag: "Path", kind: "either" },
  runtime: { _tag: "Path", kind: "either" }
}

// ---------------------------------------------------------------------------------------------
// @effect/cli's descriptors

type Primitive =
  | { readonly _tag: "Bool" }
  | { readonly _tag: "Choice"; readonly alternatives: ReadonlyArray<readonly [string, unknown]> }
  | { readonly _tag: "Integer" }
  | { readonly _tag: "Float" }
  | { readonly _tag: "DateTime" }
  | { readonly _tag: "Path"; readonly pathType: "file" | "directory" | "either" }
  | { readonly _tag: "Text" | "Redacted" | "Secret" }

interface SingleOption {
  readonly _tag: "Single"
  readonly name: string
  readonly aliases: ReadonlyArray<string>
  readonly primitiveType: Primitive
  readonly description: HelpDoc.HelpDoc
  readonly pseudoName: Option.Option<string>
}

type Options =
  | { readonly _tag: "Empty" }
  | SingleOption
  | { readonly _tag: "Map" | "WithDefault" | "WithFallback"; readonly options: Options }
  | { readonly _tag: "Both" | "OrElse"; readonly left: Options; readonly right: Options }
  | { readonly _tag: "Variadic"; readonly argumentOption: SingleOption; readonly min: Option.Option<number> }
  | { readonly _tag: "KeyValueMap"; readonly argumentOption: SingleOption }

type Args =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Single"; readonly name: string; readonly description: HelpDoc.HelpDoc }
  | { readonly _tag: "Map" | "WithDefault" | "WithFallbackConfig"; readonly args: Args }
  | { readonly _tag: "Both"; readonly left: Args; readonly right: Args }
  | { readonly _tag: "Variadic"; readonly args: Args; readonly min: Option.Option<number>; readonly max: Option.Option<number> }

type Descriptor =
  | { readonly _tag: "Standard"; readonly name: string; readonly description: HelpDoc.HelpDoc; readonly options: Options; readonly args: Args }
  | { readonly _tag: "GetUserInput"; readonly name: string; readonly description: HelpDoc.HelpDoc }
  | { readonly _tag: "Map"; readonly command: Descriptor }
  | { readonly _tag: "Subcommands"; readonly parent: Descriptor; readonly children: ReadonlyArray<Descriptor> }

const unknownShape = (what: string, shape: { readonly _tag: string }): never => {
  throw new Error(`@effect/cli ${what} of an unknown shape: ${shape._tag}`)
}

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    default:
      return spanText(span.value)
  }
}

const docText = (doc: HelpDoc.HelpDoc): string => {
  switch (doc._tag) {
    case "Empty":
      return ""
    case "Header":
    case "Paragraph":
      return spanText(doc.value)
    case "Sequence":
      return [docText(doc.left), docText(doc.right)].filter((text) => text !== "").join("\n")
    case "Enumeration":
      return doc.elements.map(docText).join("\n")
    case "DescriptionList":
      return doc.definitions.map(([span, d]) => `${spanText(span)}: ${docText(d)}`).join("\n")
  }
}

const valueOf = (option: SingleOption): Value => {
  const p = option.primitiveType
  switch (p._tag) {
    case "Bool":
      return none
    case "Choice":
      return { _tag: "Choice", choices: p.alternatives.map(([choice]) => choice) }
    case "Integer":
      return { _tag: "Integer" }
    case "Float":
      return { _tag: "Number" }
    case "DateTime":
      return { _tag: "Date" }
    case "Path":
      return { _tag: "Path", kind: p.pathType }
    case "Text":
    case "Redacted":
    case "Secret":
      return textFlags[option.name] ?? { _tag: "Text", placeholder: Option.getOrElse(option.pseudoName, () => option.name) }
    default:
      return unknownShape("value type", p)
  }
}

const spelling = (name: string) => name.length === 1 ? `-${name}` : `--${name}`

const optionFlag = (option: SingleOption, required: boolean, repeated: boolean): Flag => ({
  names: [option.name, ...option.aliases].map(spelling).sort((a, b) => a.length - b.length),
  value: valueOf(option),
  required: required && option.primitiveType._tag !== "Bool",
  repeated,
  description: docText(option.description)
})

const flagsOf = (options: Options, required: boolean): ReadonlyArray<Flag> => {
  switch (options._tag) {
    case "Empty":
      return []
    case "Single":
      return [optionFlag(options, required, false)]
    case "Map":
      return flagsOf(options.options, required)
    case "WithDefault":
    case "WithFallback":
      return flagsOf(options.options, false)
    case "Both":
      return [...flagsOf(options.left, required), ...flagsOf(options.right, required)]
    case "OrElse":
      // Either side will do, so neither is required by itself.
      return [...flagsOf(options.left, false), ...flagsOf(options.right, false)]
    case "Variadic":
      return [optionFlag(options.argumentOption, required && Option.getOrElse(options.min, () => 0) > 0, true)]
    case "KeyValueMap":
      return [optionFlag(options.argumentOption, required, true)]
    default:
      return unknownShape("option", options)
  }
}

const argsOf = (args: Args, min: number, max: number): ReadonlyArray<Arg> => {
  switch (args._tag) {
    case "Empty":
      return []
    case "Single":
      // @effect/cli keeps the name as its usage writes it: `<reference>`.
      return [{ name: args.name.replace(/^<(.*)>$/, "$1"), description: docText(args.description), min, max }]
    case "Map":
      return argsOf(args.args, min, max)
    case "WithDefault":
    case "WithFallbackConfig":
      return argsOf(args.args, 0, max)
    case "Both":
      return [...argsOf(args.left, min, max), ...argsOf(args.right, min, max)]
    case "Variadic":
      return argsOf(args.args, Option.getOrElse(args.min, () => 0), Option.getOrElse(args.max, () => Infinity))
    default:
      return unknownShape("argument", args)
  }
}

/** `prefix` is the parent's path; none for the root, whose own name is not a word of any path. */
const walk = (descriptor: Descriptor, prefix: ReadonlyArray<string> | undefined): Node => {
  switch (descriptor._tag) {
    case "Map":
      return walk(descriptor.command, prefix)
    case "Subcommands": {
      const parent = walk(descriptor.parent, prefix)
      return { ...parent, children: descriptor.children.map((child) => walk(child, parent.path)) }
    }
    case "Standard":
    case "GetUserInput": {
      const path = prefix === undefined ? [] : [...prefix, descriptor.name]
      const standard = descriptor._tag === "Standard"
      return {
        path,
        description: docText(descriptor.description),
        flags: standard ? flagsOf(descriptor.options, true) : [],
        args: standard ? argsOf(descriptor.args, 1, 1) : [],
        children: []
      }
    }
    default:
      return unknownShape("command", descriptor)
  }
}

export const fromCommand = <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>): Node =>
  walk(command.descriptor as unknown as Descriptor, undefined)
