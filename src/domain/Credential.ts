/**
 * Credentials and the `auth` field codec of containers-auth.json ([C1], [C11]), and the
 * redaction of every form of a secret in use from text that reaches a user (SPEC §5).
 */
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"

/** Where a credential was found, so every message about it can say so ([C8]). */
export interface Source {
  readonly file: string
  readonly key: string
}

export interface Credential {
  readonly _tag: "Credential"
  readonly username: string
  readonly password: Redacted.Redacted<string>
  /** An OAuth2 refresh token; when present the registry is asked for a token with it ([C11], [P2]). */
  readonly identityToken: Redacted.Redacted<string> | undefined
  readonly source: Source
}

export interface Anonymous {
  readonly _tag: "Anonymous"
}

export type Resolved = Credential | Anonymous

export const anonymous: Anonymous = { _tag: "Anonymous" }

const strictBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * A password as it is sent and stored: NUL padding at its ends trimmed ([C11]). Readers of
 * containers-auth.json trim it, so a password typed at login with a NUL at an end could never
 * come back out of the file as it went in; trimming wherever a password becomes bytes (the
 * `auth` value, a Basic header) makes the password verified, stored and later sent the same one.
 */
export const trimPassword = (password: string): string => password.replace(/^\0+|\0+$/g, "")

/** `user:password` as `auth` and Basic carry it, the password trimmed as [C11] says. */
export const userPass = (username: string, password: Redacted.Redacted<string>): string =>
  `${username}:${trimPassword(Redacted.value(password))}`

export const encodeAuth = (username: string, password: Redacted.Redacted<string>): string =>
  Buffer.from(userPass(username, password), "utf8").toString("base64")

/** An `Authorization: Basic` value. */
export const basicHeader = (username: string, password: Redacted.Redacted<string>): string =>
  `Basic ${encodeAuth(username, password)}`

/**
 * Decodes an `auth` value. Standard padded base64 only: a value that any reader would take
 * differently is an error rather than a guess. Errors never contain the value.
 */
export const decodeAuth = (
  auth: string
): Either.Either<{ readonly username: string; readonly password: Redacted.Redacted<string> }, string> => {
  if (!strictBase64.test(auth)) return Either.left("its auth value is not valid base64")
  const decoded = Buffer.from(auth, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  if (colon < 0) return Either.left("its auth value decodes without a ':' between user name and password")
  return Either.right({
    username: decoded.slice(0, colon),
    password: Redacted.make(trimPassword(decoded.slice(colon + 1)))
  })
}

// ---- redaction ---------------------------------------------------------------------------------

/** What a redacted secret is replaced with: the word `Redacted` itself prints. */
export const redactedText = "<redacted>"

/** Secrets shorter than this are redacted only where they stand alone, not inside other words. */
const shortSecret = 6

/** The ways a secret can come back in a server's text: as sent, percent-encoded, JSON-escaped. */
const spellings = (secret: string): ReadonlyArray<string> => {
  const out = [secret]
  const encoded = encodeURIComponent(secret)
  if (encoded !== secret) out.push(encoded)
  const escaped = JSON.stringify(secret).slice(1, -1)
  if (escaped !== secret) out.push(escaped)
  return out
}

/**
 * Every text form of a credential that a server could echo back: the password (also untrimmed),
 * `user:password`, its base64 (the Basic value, padded or not) and the identity token.
 */
export const secretsOf = (credential: Resolved): ReadonlyArray<string> => {
  if (credential._tag === "Anonymous") return []
  const raw = Redacted.value(credential.password)
  const password = trimPassword(raw)
  const out: Array<string> = []
  if (password !== "") {
    const pair = userPass(credential.username, credential.password)
    const base64 = Buffer.from(pair, "utf8").toString("base64")
    out.push(...spellings(password), ...spellings(raw), ...spellings(pair), base64, base64.replace(/=+$/, ""))
  }
  if (credential.identityToken !== undefined) out.push(...spellings(Redacted.value(credential.identityToken)))
  return out
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * A growing set of secrets in use (credentials, tokens) and `redact`, which replaces each of
 * them in a text with `<redacted>`. Made once per authorizer: what the registry or its token
 * server sends back (error bodies, messages) goes through `redact` before anyone prints it.
 */
export interface Redactor {
  /** Remembers secrets; empty ones are ignored. */
  readonly add: (...secrets: ReadonlyArray<string | Redacted.Redacted<string> | undefined>) => void
  /** Remembers every form of a credential ([secretsOf]). */
  readonly addCredential: (credential: Resolved) => void
  /** Whether any secret is known: a redactor with none leaves every text as it is. */
  readonly isEmpty: () => boolean
  /** `text` with every known secret replaced by `<redacted>`, longest first. */
  readonly redact: (text: string) => string
}

export const makeRedactor = (): Redactor => {
  const secrets = new Set<string>()
  let pattern: RegExp | undefined
  const add = (...values: ReadonlyArray<string | Redacted.Redacted<string> | undefined>) => {
    for (const value of values) {
      const text = value === undefined ? "" : typeof value === "string" ? value : Redacted.value(value)
      if (text === "" || secrets.has(text)) continue
      secrets.add(text)
      pattern = undefined
    }
  }
  const compile = (): RegExp => {
    // Longest first, so `user:password` goes as a whole before `password` inside it.
    const parts = [...secrets].sort((a, b) => b.length - a.length).map((s) =>
      s.length >= shortSecret ? escapeRegExp(s) : `(?<![A-Za-z0-9])${escapeRegExp(s)}(?![A-Za-z0-9])`
    )
    return new RegExp(parts.join("|"), "g")
  }
  return {
    add,
    addCredential: (credential) => add(...secretsOf(credential)),
    isEmpty: () => secrets.size === 0,
    redact: (text) => {
      if (secrets.size === 0 || text === "") return text
      pattern ??= compile()
      return text.replace(pattern, redactedText)
    }
  }
}

/**
 * An error with every string field (its `message`, `reason`, `hint`… and its stack) passed
 * through `redact`: the same class and `_tag`, so exit codes and `catchTag` still work. An
 * error that holds no secret is returned as it is.
 */
export const redactError = (redact: (text: string) => string) => <E>(error: E): E => {
  if (typeof error !== "object" || error === null) return error
  const changed: Record<string, string> = {}
  const fields = error as Record<string, unknown>
  for (const name of [...Object.keys(error), "message", "stack"]) {
    const value = fields[name]
    if (typeof value !== "string") continue
    const redacted = redact(value)
    if (redacted !== value) changed[name] = redacted
  }
  if (Object.keys(changed).length === 0) return error
  const copy = Object.assign(Object.create(Object.getPrototypeOf(error)) as object, error)
  for (const [name, value] of Object.entries(changed)) {
    const enumerable = Object.getOwnPropertyDescriptor(error, name)?.enumerable ?? false
    Object.defineProperty(copy, name, { value, writable: true, configurable: true, enumerable })
  }
  return copy as E
}
