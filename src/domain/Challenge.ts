/**
 * `WWW-Authenticate` challenges (RFC 7235 §4.1, [P2]): several per header line, parameters as
 * tokens or quoted strings (which may hold commas, spaces and `\` escapes).
 */
import * as Either from "effect/Either"

export interface Challenge {
  /** Lower-cased auth scheme, e.g. `bearer`, `basic`. */
  readonly scheme: string
  /** Parameters by lower-cased name. */
  readonly params: Readonly<Record<string, string>>
}

const tchar = /[!#$%&'*+.^_`|~0-9A-Za-z-]/

class Scanner {
  pos = 0
  constructor(readonly text: string) {}
  get done() {
    return this.pos >= this.text.length
  }
  peek() {
    return this.text[this.pos]
  }
  skipSpace() {
    while (!this.done && (this.peek() === " " || this.peek() === "\t")) this.pos++
  }
  skipSeparators() {
    while (!this.done && (this.peek() === "," || this.peek() === " " || this.peek() === "\t")) this.pos++
  }
  token() {
    const start = this.pos
    while (!this.done && tchar.test(this.peek()!)) this.pos++
    return this.text.slice(start, this.pos)
  }
  /** An unquoted value, read leniently up to the next separator (registries send bare URLs). */
  bare() {
    const start = this.pos
    while (!this.done && !/[,\s]/.test(this.peek()!)) this.pos++
    return this.text.slice(start, this.pos)
  }
  quoted() {
    let out = ""
    this.pos++ // opening quote
    while (!this.done && this.peek() !== "\"") {
      if (this.peek() === "\\" && this.pos + 1 < this.text.length) this.pos++
      out += this.text[this.pos++]
    }
    this.pos++ // closing quote (or end)
    return out
  }
}

/** Parses the challenges of one or more header values; what cannot be read is skipped. */
export const parse = (headers: string | ReadonlyArray<string>): ReadonlyArray<Challenge> => {
  const challenges: Array<Challenge> = []
  for (const line of typeof headers === "string" ? [headers] : headers) {
    const s = new Scanner(line)
    while (true) {
      s.skipSeparators()
      const scheme = s.token()
      if (scheme === "") {
        if (s.done) break
        s.pos++ // stray character: skip it rather than loop
        continue
      }
      const params: Record<string, string> = {}
      while (true) {
        const mark = s.pos
        s.skipSeparators()
        const name = s.token()
        s.skipSpace()
        if (name === "" || s.peek() !== "=") {
          // Not a parameter: the start of the next challenge, read again by the outer loop.
          s.pos = mark
          break
        }
        s.pos++ // '='
        s.skipSpace()
        params[name.toLowerCase()] = s.peek() === "\"" ? s.quoted() : s.bare()
      }
      challenges.push({ scheme: scheme.toLowerCase(), params })
    }
  }
  return challenges
}

/** Bearer over Basic ([P2]); other schemes are of no use to a registry client. */
export const preferred = (challenges: ReadonlyArray<Challenge>): Challenge | undefined =>
  challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic")

/** Formats a challenge the way registries send them; used by tests and for messages. */
export const format = (challenge: Challenge): string => {
  const params = Object.entries(challenge.params).map(([k, v]) => `${k}="${v.replace(/(["\\])/g, "\\$1")}"`)
  return params.length === 0 ? challenge.scheme : `${challenge.scheme} ${params.join(",")}`
}

/** A server's text in a message: on one line, control characters escaped, at most `max` characters. */
export const quote = (text: string, max = 200): string => {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text
  return JSON.stringify(cut).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
}

/**
 * The token endpoint of a Bearer challenge ([P2]): its `realm`, resolved against the origin the
 * challenge came from (realms may be relative). Only http and https are token endpoints; a realm
 * that is missing, not a URL, or of another scheme (`file:`, `ftp:`) is the reason returned.
 * Whether plain http may be used is the caller's rule ([P1]).
 */
export const realmUrl = (challenge: Challenge, base: string): Either.Either<URL, string> => {
  const realm = challenge.params["realm"]
  if (realm === undefined || realm === "") return Either.left("its Bearer challenge names no realm (token server)")
  let url: URL
  try {
    url = new URL(realm, base)
  } catch {
    return Either.left(`its Bearer challenge names a realm that is not a URL: ${quote(realm, 100)}`)
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return Either.left(`its Bearer challenge names a realm with the scheme ${quote(url.protocol.slice(0, -1), 20)}; a token server is reached over https (or http)`)
  }
  if (url.username !== "" || url.password !== "") {
    return Either.left("its Bearer challenge names a realm with a user name or password in it")
  }
  return Either.right(url)
}
