/**
 * A containers-auth.json document ([C1], [C3], [C9]): parsed with Schema for what microagent
 * owns, kept whole as JSON for everything it does not, so a rewrite loses nothing.
 * Pure: reading and writing the file is AuthStore's job.
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as AuthKey from "./AuthKey.js"
import * as Credential from "./Credential.js"

export type EntryState =
  | {
    readonly _tag: "Valid"
    readonly username: string
    readonly password: Redacted.Redacted<string>
    readonly identityToken: Redacted.Redacted<string> | undefined
  }
  /** Neither `auth` nor `identitytoken`: no match ([C10]). */
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Invalid"; readonly reason: string }

export interface Entry {
  /** The key as written in the file. */
  readonly rawKey: string
  /** The canonical key, or why the written key is not one. */
  readonly key: Either.Either<AuthKey.Parsed, string>
  readonly state: EntryState
}

export interface AuthFile {
  readonly path: string
  readonly exists: boolean
  /** The whole document, unknown fields and key order included. */
  readonly document: Readonly<Record<string, unknown>>
  readonly entries: ReadonlyArray<Entry>
  /** Helpers named by the file, never executed ([C4]). */
  readonly credHelpers: Readonly<Record<string, string>>
  readonly credsStore: string | undefined
}

const Document = Schema.Struct({
  auths: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown }))),
  credHelpers: Schema.optional(Schema.Unknown),
  credsStore: Schema.optional(Schema.Unknown)
})

const EntryFields = Schema.Struct({
  auth: Schema.optional(Schema.String),
  identitytoken: Schema.optional(Schema.String)
})

const decodeDocument = Schema.decodeUnknownEither(Document, { onExcessProperty: "preserve" })
const decodeEntryFields = Schema.decodeUnknownEither(EntryFields)

export const empty = (path: string, exists = false): AuthFile => ({
  path,
  exists,
  document: {},
  entries: [],
  credHelpers: {},
  credsStore: undefined
})

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Where JSON.parse stopped, as line:column, so the user can find it. */
const jsonErrorReason = (text: string, error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error)
  const position = /at position (\d+)/.exec(message)
  if (!position) return `not valid JSON (${message.replace(/,?\s*".*$/s, "")})`
  const offset = Number(position[1])
  const before = text.slice(0, offset).split("\n")
  const detail = message.replace(/ in JSON at position \d+.*$/s, "")
  return `not valid JSON at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1} (${detail})`
}

const entryState = (value: unknown): EntryState => {
  if (!isObject(value)) return { _tag: "Invalid", reason: "the entry is not an object" }
  const fields = decodeEntryFields(value)
  if (Either.isLeft(fields)) {
    return { _tag: "Invalid", reason: `auth and identitytoken must be strings` }
  }
  const { auth, identitytoken } = fields.right
  const identityToken = identitytoken ? Redacted.make(identitytoken) : undefined
  if (!auth) {
    return identityToken
      ? { _tag: "Valid", username: "", password: Redacted.make(""), identityToken }
      : { _tag: "Empty" }
  }
  return Either.match(Credential.decodeAuth(auth), {
    onLeft: (reason): EntryState => ({ _tag: "Invalid", reason }),
    onRight: ({ password, username }): EntryState => ({ _tag: "Valid", username, password, identityToken })
  })
}

const stringRecord = (u: unknown): Record<string, string> =>
  isObject(u) ? Object.fromEntries(Object.entries(u).filter((kv): kv is [string, string] => typeof kv[1] === "string")) : {}

/**
 * How deep a document may nest. Real auth files nest four levels; a deeper one (an unknown field
 * nested 100 000 levels) is refused before it is parsed: writing it back would exhaust the stack.
 */
export const maxDepth = 64

/** Whether a JSON text nests arrays and objects deeper than `limit`, told without parsing it. */
const nestsDeeperThan = (text: string, limit: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash: the next character is escaped
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

export const parse = (path: string, text: string): Either.Either<AuthFile, string> => {
  if (text.trim() === "") return Either.right(empty(path, true))
  if (nestsDeeperThan(text, maxDepth)) return Either.left(`it nests deeper than ${maxDepth} levels, which no auth file needs`)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    return Either.left(jsonErrorReason(text, error))
  }
  if (!isObject(json)) return Either.left("the document is not a JSON object")
  const decoded = decodeDocument(json)
  if (Either.isLeft(decoded)) {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)[0]
    return Either.left(issue?.path[0] === "auths" ? `"auths" is not an object` : `unexpected content (${issue?.message})`)
  }
  const auths = decoded.right.auths ?? {}
  return Either.right({
    path,
    exists: true,
    document: json,
    entries: Object.entries(auths).map(([rawKey, value]) => ({ rawKey, key: AuthKey.parse(rawKey), state: entryState(value) })),
    credHelpers: stringRecord(decoded.right.credHelpers),
    credsStore: typeof decoded.right.credsStore === "string" ? decoded.right.credsStore : undefined
  })
}

/** The entries written for one canonical key, best first ([C6]: rank, then file order). */
export const entriesFor = (file: AuthFile, key: string): ReadonlyArray<Entry> =>
  file.entries
    .filter((e) => Either.isRight(e.key) && AuthKey.format(e.key.right.key) === key)
    .sort((a, b) => rankOf(a) - rankOf(b))

const rankOf = (entry: Entry): number => Either.isRight(entry.key) ? entry.key.right.rank : Number.MAX_SAFE_INTEGER

/**
 * The entry that holds credentials for an image (or key) `host/path...`: most specific key first
 * ([C7]); entries without credentials are passed over ([C10]).
 */
export const lookup = (file: AuthFile, target: AuthKey.AuthKey): Option.Option<Entry> => {
  for (const key of AuthKey.lookupOrder(target)) {
    const found = entriesFor(file, key).find((e) => e.state._tag !== "Empty")
    if (found) return Option.some(found)
  }
  return Option.none()
}

const authsOf = (document: Readonly<Record<string, unknown>>): Record<string, unknown> =>
  isObject(document["auths"]) ? document["auths"] : {}

const withAuths = (document: Readonly<Record<string, unknown>>, auths: Record<string, unknown>) => ({
  ...document,
  auths
})

/**
 * Stores `auth` for a canonical key. An existing entry for it (or, failing that, for its best
 * alias, renamed in place) keeps its position and unknown fields; a stale `identitytoken` is
 * dropped because it would take precedence over the new password ([C11]).
 */
export const upsert = (
  file: AuthFile,
  key: string,
  username: string,
  password: Redacted.Redacted<string>
): Readonly<Record<string, unknown>> => {
  const auths = authsOf(file.document)
  const existing = entriesFor(file, key)
  const replaced = existing.find((e) => e.rawKey === key) ?? existing[0]
  const previous = replaced && isObject(auths[replaced.rawKey]) ? auths[replaced.rawKey] as Record<string, unknown> : {}
  const { identitytoken: _dropped, ...kept } = previous
  const entry = { ...kept, auth: Credential.encodeAuth(username, password) }
  if (!replaced) return withAuths(file.document, { ...auths, [key]: entry })
  return withAuths(
    file.document,
    Object.fromEntries(Object.entries(auths).map(([k, v]) => k === replaced.rawKey ? [key, entry] : [k, v]))
  )
}

/** Removes every entry written for a canonical key, whatever alias it was written as ([O1]). */
export const remove = (file: AuthFile, key: string): {
  readonly document: Readonly<Record<string, unknown>>
  readonly removed: number
} => {
  const doomed = new Set(entriesFor(file, key).map((e) => e.rawKey))
  const auths = authsOf(file.document)
  return {
    document: doomed.size === 0
      ? file.document
      : withAuths(file.document, Object.fromEntries(Object.entries(auths).filter(([k]) => !doomed.has(k)))),
    removed: doomed.size
  }
}

/** Empties `auths` and nothing else ([O3]). */
export const removeAll = (file: AuthFile): Readonly<Record<string, unknown>> =>
  file.entries.length === 0 ? file.document : withAuths(file.document, {})

export const serialize = (document: Readonly<Record<string, unknown>>): string => `${JSON.stringify(document, null, "\t")}\n`
