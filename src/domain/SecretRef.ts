/**
 * Secret references ([R6]): `NAME=<scheme>:<ref>`, where NAME becomes the file
 * `/run/secrets/NAME` and the reference says where microagent reads the value from:
 * `env:VAR`, `file:PATH` or `dotenv:PATH#KEY`. Pure: nothing here reads a value.
 *
 * A malformed reference's reason never quotes what follows `=`: a common mistake is
 * `--secret TOKEN=$TOKEN`, which puts the value itself there.
 */
import * as Either from "effect/Either"

export type Scheme = "env" | "file" | "dotenv"

export const schemes: ReadonlyArray<Scheme> = ["env", "file", "dotenv"]

export interface SecretRef {
  /** The file name under /run/secrets. */
  readonly name: string
  readonly scheme: Scheme
  /** The variable (`env`) or the path (`file`, `dotenv`). */
  readonly ref: string
  /** The key in a dotenv file (`dotenv` only). */
  readonly key?: string
}

export const maxNameLength = 255

const nameChars = /^[A-Za-z0-9_.-]+$/
const variableName = /^[A-Za-z_][A-Za-z0-9_]*$/
const dotenvKey = /^[A-Za-z0-9_.-]+$/

export const examples = "e.g. API_TOKEN=env:API_TOKEN, TLS_KEY=file:./tls.key, DB_PASSWORD=dotenv:.env#DB_PASSWORD"

/** Why NAME cannot name a file under /run/secrets, if it cannot. */
export const checkName = (name: string): string | undefined =>
  name === ""
    ? "the secret name is empty"
    : name.length > maxNameLength
    ? `the secret name is longer than ${maxNameLength} characters`
    : !nameChars.test(name)
    ? "a secret name may contain only letters, digits, '_', '.' and '-' (it becomes a file name under /run/secrets)"
    : name === "." || name === ".."
    ? `the secret name may not be "${name}"`
    : undefined

/** Parses `NAME=<scheme>:<ref>`; the left is a one-line reason. */
export const parse = (input: string): Either.Either<SecretRef, string> => {
  const eq = input.indexOf("=")
  if (eq < 0) return Either.left(`expected NAME=<scheme>:<ref>, ${examples}`)
  const name = input.slice(0, eq)
  const bad = checkName(name)
  if (bad !== undefined) return Either.left(bad)
  const reference = input.slice(eq + 1)
  const colon = reference.indexOf(":")
  const scheme = colon < 0 ? undefined : schemes.find((s) => s === reference.slice(0, colon))
  const where = `secret "${name}"`
  if (scheme === undefined) {
    return Either.left(
      reference === ""
        ? `${where}: the reference after '=' is empty; expected env:VAR, file:PATH or dotenv:PATH#KEY`
        : `${where}: the reference must start with env:, file: or dotenv: (it is not shown, in case it is a value)`
    )
  }
  const rest = reference.slice(colon + 1)
  switch (scheme) {
    case "env":
      if (rest === "") return Either.left(`${where}: env: needs a variable name, e.g. ${name}=env:${envExample(name)}`)
      if (!variableName.test(rest)) {
        return Either.left(`${where}: env: takes a variable name (letters, digits and '_', not starting with a digit)`)
      }
      return Either.right({ name, scheme, ref: rest })
    case "file":
      if (rest === "") return Either.left(`${where}: file: needs a path, e.g. ${name}=file:./${name.toLowerCase()}`)
      if (rest.includes("\0")) return Either.left(`${where}: the path contains a NUL character`)
      return Either.right({ name, scheme, ref: rest })
    case "dotenv": {
      const hash = rest.lastIndexOf("#")
      if (hash < 0) return Either.left(`${where}: dotenv: needs PATH#KEY, e.g. ${name}=dotenv:.env#${envExample(name)}`)
      const path = rest.slice(0, hash)
      const key = rest.slice(hash + 1)
      if (path === "") return Either.left(`${where}: dotenv: needs a path before '#', e.g. ${name}=dotenv:.env#${envExample(name)}`)
      if (path.includes("\0")) return Either.left(`${where}: the path contains a NUL character`)
      if (key === "") return Either.left(`${where}: dotenv: needs a KEY after '#', e.g. ${name}=dotenv:${path}#${envExample(name)}`)
      if (!dotenvKey.test(key)) return Either.left(`${where}: a dotenv KEY may contain only letters, digits, '_', '.' and '-'`)
      return Either.right({ name, scheme, ref: path, key })
    }
  }
}

const envExample = (name: string) => variableName.test(name) ? name : "API_TOKEN"

/** Back to `NAME=<scheme>:<ref>`: `parse(format(r))` is `r`. */
export const format = (ref: SecretRef): string => `${ref.name}=${reference(ref)}`

/** The part after `=`: `env:API_TOKEN`, `file:./tls.key`, `dotenv:.env#KEY`. */
export const reference = (ref: SecretRef): string =>
  `${ref.scheme}:${ref.ref}${ref.scheme === "dotenv" ? `#${ref.key ?? ""}` : ""}`

/** Where the value is read from, for people: `env:API_TOKEN`, `./tls.key`, `.env#KEY`. */
export const source = (ref: SecretRef): string =>
  ref.scheme === "env" ? `env:${ref.ref}` : ref.scheme === "dotenv" ? `${ref.ref}#${ref.key ?? ""}` : ref.ref

// ---------------------------------------------------------------------------------------------
// dotenv files
// ---------------------------------------------------------------------------------------------

/**
 * Reads a `.env` file by the rules of the npm `dotenv` package (v16) for the cases real files use:
 *
 * - CRLF and CR line ends are LF; a UTF-8 byte-order mark and leading blanks are skipped.
 * - A line is `[export ]KEY=value` (blanks allowed around `=`) or `KEY: value`; KEY is
 *   `[A-Za-z0-9_.-]+`. Other lines (comments, blank lines, garbage) are ignored.
 * - An unquoted value runs to the first `#` or the line's end and is trimmed: `KEY=a # c` and
 *   `KEY=a#c` are both `a`; `KEY=` and `KEY= # c` are empty.
 * - A value in `'…'`, `"…"` or `` `…` `` is taken verbatim (a `#` inside is kept) and may span
 *   lines; only blanks and a `# comment` may follow the closing quote. A quote escaped with `\`
 *   does not close it, unless no other can. In double quotes, `\n` and `\r` become a newline
 *   and a carriage return; every other backslash is kept as is (dotenv does not unescape `\"`).
 * - A quoted value that is not closed on a clean line is read as an unquoted one.
 * - When a key is set twice, the last one wins. Nothing is expanded (`$VAR` stays).
 */
export const parseDotenv = (text: string): ReadonlyMap<string, string> => {
  const entries = new Map<string, string>()
  const src = text.replace(/\r\n?/g, "\n")
  let at = 0
  while (at < src.length) {
    const entry = readEntry(src, at)
    if (entry === undefined) {
      at = lineEnd(src, at) + 1
      continue
    }
    entries.set(entry.key, entry.value)
    at = entry.next
  }
  return entries
}

/** The value dotenv gives KEY in this file's text, or why there is none (no content is quoted). */
export const lookupDotenv = (text: string, key: string): Either.Either<string, string> => {
  const value = parseDotenv(text).get(key)
  return value === undefined ? Either.left(`no line sets ${key}`) : Either.right(value)
}

// `[^\S\n]` is a blank other than a line end (as dotenv's `\s`, it includes U+FEFF, the BOM).
const head = /[^\S\n]*(?:export[^\S\n]+)?([\w.-]+)(?:[^\S\n]*=|:(?=[^\S\n]))[^\S\n]*/y
const tail = /[^\S\n]*(?:#[^\n]*)?(?:\n|$)/y

const lineEnd = (src: string, from: number): number => {
  const i = src.indexOf("\n", from)
  return i < 0 ? src.length : i
}

const readEntry = (src: string, from: number): { key: string; value: string; next: number } | undefined => {
  head.lastIndex = from
  const m = head.exec(src)
  if (m === null) return undefined
  const key = m[1]!
  const start = head.lastIndex
  const quote = src[start]
  if (quote === "'" || quote === "\"" || quote === "`") {
    for (const close of closingQuotes(src, start + 1, quote)) {
      tail.lastIndex = close + 1
      if (tail.exec(src) !== null) {
        const inner = src.slice(start + 1, close)
        return { key, value: quote === "\"" ? expand(inner) : inner, next: tail.lastIndex }
      }
    }
  }
  const end = lineEnd(src, start)
  const hash = src.indexOf("#", start)
  let value = src.slice(start, hash >= 0 && hash < end ? hash : end).trim()
  const first = value[0]
  if (value.length >= 2 && (first === "'" || first === "\"" || first === "`") && value.endsWith(first)) {
    value = value.slice(1, -1)
  }
  return { key, value: first === "\"" ? expand(value) : value, next: end + 1 }
}

/**
 * Where a quoted value may end, best first: the first quote not escaped with `\\`, then each
 * escaped one before it, last first (as dotenv's pattern backtracks: `'C:\\dir\\'` is `C:\\dir\\`).
 */
const closingQuotes = (src: string, from: number, quote: string): ReadonlyArray<number> => {
  const escaped: Array<number> = []
  for (let i = from; i < src.length; i++) {
    if (src[i] === "\\" && src[i + 1] === quote) escaped.push(++i)
    else if (src[i] === quote) return [i, ...escaped.reverse()]
  }
  return escaped.reverse()
}

const expand = (value: string): string => value.replace(/\\n/g, "\n").replace(/\\r/g, "\r")
