/**
 * The command line, checked against the command tree (./tree.ts) before @effect/cli parses it,
 * so that a mistake is named as the user made it (SPEC [E4], exit 2): the unknown flag itself
 * with a "did you mean" (@effect/cli blamed the word after it), a flag in the wrong case (it
 * lower-cased, matched, then ignored them), a value of the wrong type with the flag's name, a
 * missing argument with the command's usage line. Help, the version and completion scripts are
 * answered here too, from the same tree; everything else runs as @effect/cli parses it.
 */
import * as AutoCorrect from "@effect/cli/AutoCorrect"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { UsageError } from "../domain/Errors.js"
import * as Completions from "./completions.js"
import * as Help from "./help.js"
import * as Tree from "./tree.js"

export type Outcome =
  | { readonly _tag: "Help"; readonly node: Tree.Node }
  | { readonly _tag: "Version" }
  | { readonly _tag: "Completions"; readonly shell: Tree.Shell }
  /** Nothing wrong: @effect/cli parses it and runs the command. */
  | { readonly _tag: "Run" }

const usage = (node: Tree.Node) =>
  node.children.length > 0
    ? `microagent ${[...node.path, "--help"].join(" ")} lists the commands and flags`
    : `usage: ${Help.usageLine(node)}`

const lookup = (node: Tree.Node, name: string): Tree.Flag | undefined =>
  node.flags.find((f) => f.names.includes(name)) ?? Tree.globalsFor(node).find((f) => f.names.includes(name))

const distance = (a: string, b: string) => AutoCorrect.levensteinDistance(a, b, CliConfig.defaultConfig)

/** A near miss: two letters off in a long word, one in a short one. */
const near = (typed: string, known: string) => distance(typed, known) <= (known.length >= 6 ? 2 : 1)

/**
 * The flag the user probably meant. Flags are case-sensitive, so `-Q` is no `-q`, but it is
 * what they meant; a short flag is otherwise one letter from all the others, so only its case
 * counts. `-platform` is `--platform` with a dash missing.
 */
const flagSuggestion = (node: Tree.Node, typed: string): string | undefined => {
  const names = [...node.flags, ...Tree.globalsFor(node)].flatMap((f) => f.names)
  const sameLetters = names.find((n) => n.toLowerCase() === typed.toLowerCase())
  if (sameLetters !== undefined) return `did you mean ${sameLetters}? Flags are case-sensitive`
  const asLong = typed.startsWith("--") ? typed : typed.length > 2 ? `-${typed}` : undefined
  if (asLong === undefined) return undefined
  const close = names.filter((n) => n.startsWith("--") && near(asLong.slice(2), n.slice(2)))
    .sort((a, b) => distance(asLong, a) - distance(asLong, b))[0]
  return close === undefined ? undefined : `did you mean ${close}?`
}

const unknownFlag = (node: Tree.Node, typed: string) =>
  new UsageError({
    message: `unknown flag '${typed}'${node.path.length > 0 ? ` for ${Tree.title(node)}` : ""}`,
    hint: flagSuggestion(node, typed) ??
      `microagent ${[...node.path, "--help"].join(" ")} lists its flags` +
        // `-dash` may be an argument rather than flags -d -a -s -h.
        (node.args.length > 0 && !typed.startsWith("--") && typed.length > 2 ? `; an argument that starts with - goes after --, as in -- ${typed}` : "")
  })

/**
 * `microagent login` is `microagent registry login`: a command of that name anywhere in the tree
 * comes first, then a near miss among the group's own commands.
 */
const unknownCommand = (root: Tree.Node, group: Tree.Node, typed: string) => {
  const named = Tree.all(root).filter((n) => n.path.length > 0 && Tree.name(n).toLowerCase() === typed.toLowerCase())
  const meant = named.length > 0 ? named : group.children.filter((c) => near(typed, Tree.name(c)))
  return new UsageError({
    message: `unknown command '${[...group.path, typed].join(" ")}'`,
    hint: meant.length === 0
      ? `microagent ${[...group.path, "--help"].join(" ")} lists the commands`
      : `did you mean ${meant.map((n) => `microagent ${n.path.join(" ")}`).join(" or ")}?`
  })
}

const isSwitchValue = (word: string | undefined) =>
  word !== undefined && ["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"].includes(word)

/** Why `value` is not one `flag` takes, if it is not. */
const badValue = (typed: string, flag: Tree.Flag, value: string): string | undefined => {
  switch (flag.value._tag) {
    case "Integer":
      return /^[+-]?\d+$/.test(value) ? undefined : `${typed} expects a whole number, got '${value}'`
    case "Number":
      return value.trim() !== "" && Number.isFinite(Number(value)) ? undefined : `${typed} expects a number, got '${value}'`
    case "Choice": {
      const choices = flag.value.choices
      const oneOf = choices.length === 1 ? choices[0] : `${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}`
      return choices.includes(value) ? undefined : `${typed} expects ${oneOf}, got '${value}'`
    }
    default:
      return value === "" ? `${typed} needs a value` : undefined
  }
}

/** `help [<command>...]`: the page of the command the words name. */
const helpFor = (root: Tree.Node, words: ReadonlyArray<string>): Either.Either<Outcome, UsageError> => {
  let node = root
  for (const word of words.filter((w) => !w.startsWith("-"))) {
    const child = node.children.find((c) => Tree.name(c) === word)
    if (child === undefined) return Either.left(unknownCommand(root, node, word))
    node = child
  }
  return Either.right({ _tag: "Help", node })
}

/**
 * Reads `words` (the command line after `microagent`) as @effect/cli would, and says what to do.
 * The first mistake is the one reported; `--help` anywhere still shows help, unless the command
 * itself is unknown.
 */
export const check = (root: Tree.Node, words: ReadonlyArray<string>): Either.Either<Outcome, UsageError> => {
  let node = root
  let help = false
  let version = false
  let shell: Tree.Shell | undefined
  let problem: UsageError | undefined
  const report = (error: UsageError) => void (problem ??= error)
  const seen = new Set<Tree.Flag>()
  const positional: Array<string> = []
  const given = (flag: Tree.Flag, name: string) => {
    if (seen.has(flag) && !flag.repeated) report(new UsageError({ message: `${name} is given twice`, hint: usage(node) }))
    seen.add(flag)
    help ||= Tree.isGlobal(flag, "--help")
    version ||= Tree.isGlobal(flag, "--version")
  }
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!
    if (word === "--") {
      positional.push(...words.slice(i + 1))
      break
    }
    if (word === "-" || !word.startsWith("-")) {
      if (node.children.length === 0) {
        positional.push(word)
        continue
      }
      const child = node.children.find((c) => Tree.name(c) === word)
      if (child !== undefined) {
        node = child
        continue
      }
      if (node === root && word === "help") return helpFor(root, words.slice(i + 1))
      if (node === root && word === "version") return Either.right({ _tag: "Version" })
      return Either.left(unknownCommand(root, node, word))
    }
    if (!word.startsWith("--") && word.length > 2) {
      // @effect/cli reads `-it` as `-i -t`: switches only, each a flag of this command.
      const flags = [...word.slice(1)].map((c) => lookup(node, `-${c}`))
      const valued = flags.find((f) => f !== undefined && f.value._tag !== "None")
      if (flags.includes(undefined)) report(unknownFlag(node, word))
      else if (valued !== undefined) report(new UsageError({ message: `${valued.names[0]} takes a value, so it cannot be grouped as in '${word}'`, hint: usage(node) }))
      else flags.forEach((f, at) => given(f!, `-${word[at + 1]}`))
      continue
    }
    const equals = word.indexOf("=")
    const name = word.startsWith("--") && equals > 0 ? word.slice(0, equals) : word
    const inline = name === word ? undefined : word.slice(equals + 1)
    const flag = lookup(node, name)
    if (flag === undefined) {
      report(unknownFlag(node, name))
      continue
    }
    if (flag.value._tag === "None") {
      if (inline !== undefined && !isSwitchValue(inline)) report(new UsageError({ message: `${name} takes no value, got '${inline}'`, hint: usage(node) }))
      // `--json true` is read as the switch's value, as @effect/cli reads it.
      if (inline === undefined && isSwitchValue(words[i + 1])) i++
      given(flag, name)
      continue
    }
    given(flag, name)
    const next = words[i + 1]
    const value = inline ?? (next !== undefined && lookup(node, next) === undefined ? words[++i] : undefined)
    const bad = value === undefined ? `${name} needs a value` : badValue(name, flag, value)
    if (bad !== undefined) report(new UsageError({ message: bad, hint: usage(node) }))
    else if (Tree.isGlobal(flag, "--completions")) shell = Tree.shells.find((s) => s === value)
  }
  if (help) return Either.right({ _tag: "Help", node })
  if (version) return Either.right({ _tag: "Version" })
  if (problem !== undefined) return Either.left(problem)
  if (shell !== undefined) return Either.right({ _tag: "Completions", shell })
  // A group alone shows what it holds, as `microagent` alone does.
  if (node.children.length > 0) return Either.right({ _tag: "Help", node })
  const missing = node.flags.find((f) => f.required && !seen.has(f))
  if (missing !== undefined) {
    return Either.left(new UsageError({ message: `${Tree.title(node)} needs ${missing.names.join("/")}`, hint: usage(node) }))
  }
  let left = positional.length
  for (const arg of node.args) {
    if (left < arg.min) {
      const what = arg.max > 1 ? `at least ${arg.min === 1 ? "one" : arg.min} <${arg.name}>` : `<${arg.name}>`
      return Either.left(new UsageError({ message: `${Tree.title(node)} needs ${what}`, hint: usage(node) }))
    }
    left -= Math.min(left, arg.max)
  }
  if (left > 0) {
    const extra = positional[positional.length - left]!
    return Either.left(new UsageError({ message: `unexpected argument '${extra}' for ${Tree.title(node)}`, hint: usage(node) }))
  }
  return Either.right({ _tag: "Run" })
}

/**
 * `--log-level` moved before the command, where @effect/cli reads it: users put it anywhere
 * (`pull app:1 --log-level debug`). Words after `--` are the container's, never moved.
 */
const globalsFirst = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const moved: Array<string> = []
  const rest: Array<string> = []
  const words = argv.slice(2)
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!
    if (word === "--") {
      rest.push(...words.slice(i))
      break
    }
    if (word === "--log-level" && i + 1 < words.length) moved.push(word, words[++i]!)
    else if (word.startsWith("--log-level=")) moved.push(word)
    else rest.push(word)
  }
  return [...argv.slice(0, 2), ...moved, ...rest]
}

/**
 * Runs a command line: answers help, version and completions from the tree, fails with the
 * first mistake, and hands the rest to @effect/cli (`cli`).
 */
export const dispatch = <E, R>(
  root: Tree.Node,
  version: string,
  cli: (argv: ReadonlyArray<string>) => Effect.Effect<void, E, R>
) =>
(argv: ReadonlyArray<string>): Effect.Effect<void, E | UsageError, R> =>
  Effect.suspend(() =>
    Either.match(check(root, argv.slice(2)), {
      onLeft: (error): Effect.Effect<void, E | UsageError, R> => Effect.fail(error),
      onRight: (outcome): Effect.Effect<void, E | UsageError, R> => {
        switch (outcome._tag) {
          case "Help":
            return Console.log(Help.render(outcome.node))
          case "Version":
            return Console.log(version)
          case "Completions":
            return Console.log(Completions.script(root, outcome.shell))
          case "Run":
            return cli(globalsFirst(argv))
        }
      }
    })
  )
