/**
 * Keys of containers-auth.json files ([C5]–[C7]): `host[:port][/namespace...]`.
 * Pure functions; no services.
 */
import * as Either from "effect/Either"
import * as Reference from "./Reference.js"

/** The canonical name of Docker Hub ([C6]). */
export const DockerHub = "docker.io"

/** Docker Hub's host aliases, in the precedence order of [C6]. */
const hubHosts: ReadonlyArray<string> = ["docker.io", "index.docker.io", "registry-1.docker.io"]

/** A key in its canonical form: lower-case host, no scheme, no legacy suffix, hub aliases folded. */
export interface AuthKey {
  readonly host: string
  readonly path: ReadonlyArray<string>
}

export const format = (key: AuthKey): string => [key.host, ...key.path].join("/")

/** How a key was written in a file: the closer to canonical, the lower its rank ([C6]). */
export interface Parsed {
  readonly key: AuthKey
  readonly rank: number
}

const segmentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/

/**
 * Reads a key as found in a file or typed by a user. Legacy forms ([C5]) are accepted:
 * a leading `http://`/`https://`, a trailing `/`, `/v1/` or `/v2/`.
 */
export const parse = (raw: string): Either.Either<Parsed, string> => {
  let rest = raw.trim()
  if (rest === "") return Either.left("the key is empty")
  let legacy = false
  const scheme = /^https?:\/\//i.exec(rest)
  if (scheme) {
    rest = rest.slice(scheme[0].length)
    legacy = true
  }
  // `/v1` without its slash is taken as legacy only in a URL: `ghcr.io/v1` is a namespace named v1.
  const suffix = (legacy ? /\/(?:v[12]\/?)?$/ : /\/(?:v[12]\/)?$/).exec(rest)
  if (suffix) {
    rest = rest.slice(0, suffix.index)
    legacy = true
  }
  if (rest.includes("@")) return Either.left(`"${raw}" holds a digest or user name ('@'); a key is host[:port][/namespace]`)
  const [hostPart = "", ...path] = rest.split("/")
  const parsedHost = Reference.parseHost(hostPart)
  if (Either.isLeft(parsedHost)) return Either.left(`"${raw}" does not start with a valid host[:port]: ${parsedHost.left}`)
  const host = parsedHost.right
  for (const segment of path) {
    if (segment.includes(":")) return Either.left(`"${raw}" holds a tag (':' after the host); a key names a registry or namespace, not an image`)
    if (!segmentPattern.test(segment)) return Either.left(`"${raw}" has an invalid path component "${segment}"`)
  }
  const hubRank = hubHosts.indexOf(host)
  const canonicalHost = hubRank >= 0 ? DockerHub : host
  return Either.right({
    key: { host: canonicalHost, path },
    rank: (legacy ? hubHosts.length : 0) + Math.max(hubRank, 0)
  })
}

export const normalize = (raw: string): Either.Either<string, string> => Either.map(parse(raw), (p) => format(p.key))

/**
 * The keys that can hold credentials for an image `host/path/to/repo`, most specific first ([C7]):
 * `host/path/to/repo`, `host/path/to`, `host/path`, `host`.
 */
export const lookupOrder = (key: AuthKey): ReadonlyArray<string> => {
  const keys: Array<string> = []
  for (let n = key.path.length; n >= 0; n--) keys.push(format({ host: key.host, path: key.path.slice(0, n) }))
  return keys
}
