/**
 * `microagent --completions bash|zsh|fish`: completion scripts generated from the command tree
 * (./tree.ts). @effect/cli's own lost track below the second level (`registry login` completed
 * only the global flags) and offered file names for every flag that takes a value.
 *
 * Each script finds the command typed so far the same way: the words after `microagent` that
 * name a subcommand, skipping flags and the values of those that take one. It then offers a
 * flag's values (choices, common platforms, paths only where the flag takes a path, nothing for
 * free text or numbers), the command's flags after a `-`, or the group's subcommands.
 */
import * as Tree from "./tree.js"

/** What a flag's value completes to. */
type Action =
  | { readonly _tag: "Words"; readonly words: ReadonlyArray<string> }
  | { readonly _tag: "Paths"; readonly directories: boolean }
  | { readonly _tag: "Nothing" }

const action = (flag: Tree.Flag): Action => {
  const value = flag.value
  switch (value._tag) {
    case "Choice":
      return { _tag: "Words", words: value.choices }
    case "Platform":
      return { _tag: "Words", words: Tree.commonPlatforms }
    case "Path":
      return { _tag: "Paths", directories: value.kind === "directory" }
    default:
      return { _tag: "Nothing" }
  }
}

/** Words and command paths go into the scripts unquoted (inside `"…"` at most): nothing a shell would expand. */
const safe = (word: string): string => {
  if (!/^[\w.:/@%+,=-]*$/.test(word)) throw new Error(`cannot put ${JSON.stringify(word)} in a completion script`)
  return word
}

const key = (node: Tree.Node) => node.path.map(safe).join(" ")

const flagsOf = (node: Tree.Node) => [...node.flags, ...Tree.globalsFor(node)]

const takesValue = (flag: Tree.Flag) => flag.value._tag !== "None"

/** A line a shell can show beside a candidate: the description up to its examples. */
const summary = (description: string): string => {
  const cut = description.split(/[,;.]? e\.g\./i)[0]!.trim()
  return cut.length > 90 ? `${cut.slice(0, 89)}…` : cut
}

/** `(command, word)` pairs, grouped by what they lead to, for `case` arms. */
const grouped = <A>(items: ReadonlyArray<readonly [string, A]>, id: (a: A) => string) => {
  const groups = new Map<string, { readonly value: A; readonly patterns: Array<string> }>()
  for (const [pattern, value] of items) {
    const group = groups.get(id(value)) ?? { value, patterns: [] }
    group.patterns.push(pattern)
    groups.set(id(value), group)
  }
  return [...groups.values()]
}

interface Table {
  readonly nodes: ReadonlyArray<Tree.Node>
  /** `"registry|login"` → `registry login`. */
  readonly transitions: ReadonlyArray<readonly [string, string]>
  /** `"pull|--platform"`: the next word is the flag's value. */
  readonly valued: ReadonlyArray<string>
  readonly values: ReadonlyArray<{ readonly value: Action; readonly patterns: ReadonlyArray<string> }>
}

/** `pattern(command, word)` matches that word after that command; after any command when there is none. */
const table = (root: Tree.Node, pattern: (command: string | undefined, word: string) => string): Table => {
  const nodes = Tree.all(root)
  const valuedFlags = [
    ...nodes.flatMap((n) => n.flags.filter(takesValue).flatMap((f) => f.names.map((name) => [pattern(key(n), safe(name)), f] as const))),
    // The global flags that take a value are the same after every command.
    ...Tree.globalFlags.filter(takesValue).flatMap((f) => f.names.map((name) => [pattern(undefined, safe(name)), f] as const))
  ]
  return {
    nodes,
    transitions: nodes.flatMap((n) => n.children.map((c) => [pattern(key(n), safe(Tree.name(c))), key(c)] as const)),
    valued: valuedFlags.map(([p]) => p),
    values: grouped(valuedFlags.map(([p, f]) => [p, action(f)] as const), (a) => JSON.stringify(a))
  }
}

// ---------------------------------------------------------------------------------------------
// bash

const bash = (root: Tree.Node): string => {
  const t = table(root, (command, word) => command === undefined ? `*"|${word}"` : `"${command}|${word}"`)
  const bashAction = (a: Action) =>
    a._tag === "Words"
      ? `COMPREPLY=($(compgen -W "${a.words.map(safe).join(" ")}" -- "$cur"))`
      : a._tag === "Paths"
      ? `_microagent_paths${a.directories ? " -d" : ""}`
      : "COMPREPLY=()"
  const offers = (pick: (n: Tree.Node) => ReadonlyArray<string>) =>
    t.nodes.filter((n) => pick(n).length > 0).map((n) => `            "${key(n)}") offer="${pick(n).map(safe).join(" ")}" ;;`)
  return `# bash completion for microagent: commands, every command's flags, and the values flags take.
# Generated from microagent's command tree by: microagent --completions bash
_microagent_paths() {
    if declare -F _filedir >/dev/null; then
        _filedir "$@"
    elif [[ $1 == -d ]]; then
        COMPREPLY=($(compgen -d -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

_microagent() {
    local cur prev words cword split=false
    if declare -F _init_completion >/dev/null; then
        _init_completion -s || return
    else
        words=("\${COMP_WORDS[@]}") cword=$COMP_CWORD
        cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
    fi
    local cmd="" i offer=""
    for ((i = 1; i < cword; i++)); do
        case "$cmd|\${words[i]}" in
            *"|--") return ;;
${t.transitions.map(([p, to]) => `            ${p}) cmd="${to}" ;;`).join("\n")}
            ${t.valued.join("|")}) ((i++)) ;;
        esac
    done
    case "$cmd|$prev" in
${t.values.map(({ patterns, value }) => `        ${patterns.join("|")})\n            ${bashAction(value)}\n            return ;;`).join("\n")}
    esac
    if [[ $cur == -* ]]; then
        case "$cmd" in
${offers((n) => flagsOf(n).flatMap((f) => f.names)).join("\n")}
        esac
    else
        case "$cmd" in
${offers((n) => n.children.map(Tree.name)).join("\n")}
        esac
    fi
    COMPREPLY=($(compgen -W "$offer" -- "$cur"))
}

complete -F _microagent microagent`
}

// ---------------------------------------------------------------------------------------------
// zsh

const zshQuote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`

const zsh = (root: Tree.Node): string => {
  const t = table(root, (command, word) => command === undefined ? `*"|${word}"` : `"${command}|${word}"`)
  const zshAction = (a: Action) =>
    a._tag === "Words"
      ? `compadd -- ${a.words.map(safe).join(" ")}; return`
      : a._tag === "Paths"
      ? `_files${a.directories ? " -/" : ""}; return`
      : "return 1"
  const offers = (pick: (n: Tree.Node) => ReadonlyArray<readonly [string, string]>) =>
    t.nodes.filter((n) => pick(n).length > 0)
      .map((n) => `      ("${key(n)}") offer=(${pick(n).map(([word, description]) => zshQuote(`${safe(word)}:${summary(description)}`)).join(" ")}) ;;`)
  return `#compdef microagent
# zsh completion for microagent: commands, every command's flags, and the values flags take.
# Generated from microagent's command tree by: microagent --completions zsh
_microagent() {
  local cmd="" i
  local cur=\${words[CURRENT]} prev=\${words[CURRENT-1]}
  local -a offer
  for ((i = 2; i < CURRENT; i++)); do
    case "$cmd|\${words[i]}" in
      (*"|--") return 1 ;;
${t.transitions.map(([p, to]) => `      (${p}) cmd="${to}" ;;`).join("\n")}
      (${t.valued.join("|")}) (( i++ )) ;;
    esac
  done
  if [[ $cur == --*=* ]]; then
    prev=\${cur%%=*}
    compset -P '*='
  fi
  case "$cmd|$prev" in
${t.values.map(({ patterns, value }) => `    (${patterns.join("|")})\n      ${zshAction(value)} ;;`).join("\n")}
  esac
  if [[ $cur == -* ]]; then
    case "$cmd" in
${offers((n) => flagsOf(n).flatMap((f) => f.names.map((name) => [name, f.description] as const))).join("\n")}
    esac
    _describe -t flags flag offer
  else
    case "$cmd" in
${offers((n) => n.children.map((c) => [Tree.name(c), c.description] as const)).join("\n")}
    esac
    (( \${#offer} )) && _describe -t commands command offer
  fi
}

if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _microagent "$@"
else
  compdef _microagent microagent
fi`
}

// ---------------------------------------------------------------------------------------------
// fish

const fishQuote = (text: string) => `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`

const fish = (root: Tree.Node): string => {
  const t = table(root, (command, word) => `'${command ?? "*"}|${word}'`)
  const at = (node: Tree.Node) => `-n '__microagent_at "${key(node)}"'`
  const fishAction = (a: Action) =>
    a._tag === "Words"
      ? `-x -a '${a.words.map(safe).join(" ")}'`
      : a._tag === "Paths"
      ? a.directories ? "-x -a '(__fish_complete_directories (commandline -ct))'" : "-r -F"
      : "-x"
  const flagLine = (node: Tree.Node, f: Tree.Flag) => {
    const spellings = f.names.map((n) => n.startsWith("--") ? `-l ${safe(n.slice(2))}` : `-s ${safe(n.slice(1))}`).join(" ")
    return `complete -c microagent ${at(node)} ${spellings}${takesValue(f) ? ` ${fishAction(action(f))}` : ""} -d ${fishQuote(summary(f.description))}`
  }
  return `# fish completion for microagent: commands, every command's flags, and the values flags take.
# Generated from microagent's command tree by: microagent --completions fish
function __microagent_command
    set -l words (commandline -opc)
    set -e words[1]
    set -l cmd ''
    set -l skip 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch "$cmd|$word"
            case '*|--'
                echo -- --
                return
${t.transitions.map(([p, to]) => `            case ${p}\n                set cmd '${to}'`).join("\n")}
            case ${t.valued.join(" ")}
                set skip 1
        end
    end
    echo -- $cmd
end

function __microagent_at
    set -l cmd (__microagent_command)
    test "$cmd" = "$argv[1]"
end

complete -c microagent -f
${t.nodes.flatMap((n) => n.children.map((c) => `complete -c microagent ${at(n)} -a ${safe(Tree.name(c))} -d ${fishQuote(summary(c.description))}`)).join("\n")}
${t.nodes.flatMap((n) => flagsOf(n).map((f) => flagLine(n, f))).join("\n")}`
}

const scripts: Record<Tree.Shell, (root: Tree.Node) => string> = { bash, zsh, fish }

export const script = (root: Tree.Node, shell: Tree.Shell): string => scripts[shell](root)
