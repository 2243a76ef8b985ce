/**
 * Image references ([I1]): `[host[:port]/]path[:tag][@digest]`, following distribution/reference's
 * grammar (`regexp.go`) and normalisation (`normalize.go`). Pure functions; no services.
 */
import * as Either from "effect/Either"
import * as Digest from "./Digest.js"

/** The canonical name of Docker Hub ([C6]); requests to it go to `registry-1.docker.io` ([I1]). */
export const DockerHub = "docker.io"

/** A reference in canonical form: the registry is always explicit, so equal images compare equal. */
export interface Reference {
  /** `host[:port]`, lower-case; Docker Hub's aliases are folded to `docker.io`. */
  readonly registry: string
  /** The repository path, e.g. `library/alpine`, `team/app`. */
  readonly repository: string
  /** `latest` when the text named neither a tag nor a digest. */
  readonly tag: string | undefined
  /** `<algorithm>:<hex>`; when a tag is given too, both are kept and the digest decides what is fetched. */
  readonly digest: string | undefined
}

// Same aliases as the credential keys ([C6]), so an image and its login agree on the registry.
const hubAliases: ReadonlyArray<string> = ["docker.io", "index.docker.io", "registry-1.docker.io"]

// distribution/reference's `domainAndPort` (regexp.go): a DNS name or decimal IPv4 (dot-separated
// labels), or a bracketed IPv6 literal of hex digits and colons only; then an optional port.
const hostPattern = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:]+\])(?::[0-9]+)?$/i
const componentPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const tagPattern = /^\w[\w.-]{0,127}$/
const maxRepositoryLength = 255
// A bare image ID; distribution refuses it as a name so that it is never pulled as `library/<id>`.
const imageId = /^[a-f0-9]{64}$/

/** `a.b.c.d` as the two IPv6 groups it stands for (`192.0.2.33` → `c000:221`), if it is an IPv4 address. */
const ipv4AsHex = (dotted: string): string | undefined => {
  const octets = dotted.split(".")
  if (octets.length !== 4 || octets.some((o) => !/^[0-9]{1,3}$/.test(o) || Number(o) > 255)) return undefined
  const [a, b, c, d] = octets.map(Number) as [number, number, number, number]
  return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
}

/**
 * The registry host grammar shared by references ([I1]) and credential keys ([C5]), so that an
 * image and its login always agree on what a host is: `host[:port]`, lower-cased, or why not.
 */
export const parseHost = (text: string): Either.Either<string, string> => {
  if (hostPattern.test(text)) return Either.right(text.toLowerCase())
  const embedded = /^\[([0-9a-f:]*:)([0-9]*\.[0-9.]*)\]/i.exec(text)
  if (embedded !== null) {
    // distribution/reference leaves out IPv4-in-IPv6 forms on purpose; the hex spelling is the same address.
    const hex = ipv4AsHex(embedded[2]!)
    const example = hex === undefined ? "" : `, e.g. [${embedded[1]}${hex}]`
    return Either.left(`an IPv6 address with an embedded IPv4 part (dotted) is not supported; write it in hex only${example}`)
  }
  const port = /^(?:\[[^\]]*\]|[^:[\]]*):(.*)$/.exec(text)
  if (port !== null && !/^[0-9]+$/.test(port[1]!)) return Either.left(`the port ${Digest.quote(port[1]!)} is not a number`)
  return Either.left("expected a host name, an IPv4 address or a bracketed IPv6 address, then an optional :port")
}

/** The first component names a registry iff it holds `.` or `:` or is `localhost` ([I1]); host names ignore case. */
const looksLikeHost = (component: string): boolean => /[.:]/.test(component) || component.toLowerCase() === "localhost"

export const parse = (text: string): Either.Either<Reference, string> => {
  if (text === "") return Either.left("empty reference")
  const invalid = (why: string) => Either.left(`invalid reference "${text}": ${why}`)
  if (imageId.test(text)) return invalid("a 64-character hexadecimal string is an image ID, not a repository name")

  // The digest follows the only '@'; the tag follows a ':' that comes after the last '/'
  // (a ':' before it belongs to the host's port).
  const at = text.indexOf("@")
  const nameAndTag = at < 0 ? text : text.slice(0, at)
  const digest = at < 0 ? undefined : text.slice(at + 1)
  const colon = nameAndTag.lastIndexOf(":")
  const hasTag = colon > nameAndTag.lastIndexOf("/")
  const name = hasTag ? nameAndTag.slice(0, colon) : nameAndTag
  const tag = hasTag ? nameAndTag.slice(colon + 1) : undefined
  if (name === "") return invalid("the repository name is missing")

  const components = name.split("/")
  const first = components[0]!
  const hasHost = components.length > 1 && looksLikeHost(first)
  const parsedHost = hasHost ? parseHost(first) : Either.right(DockerHub)
  if (Either.isLeft(parsedHost)) return invalid(`registry host "${first}" is invalid: ${parsedHost.left}`)
  const host = parsedHost.right
  const registry = hubAliases.includes(host) ? DockerHub : host
  const given = hasHost ? components.slice(1) : components
  const path = registry === DockerHub && given.length === 1 ? ["library", ...given] : given
  const repository = path.join("/")

  if (repository !== repository.toLowerCase()) {
    // distribution/reference would take an upper-case first component for a host; we keep hosts
    // recognisable by [I1]'s rule alone, so that a canonical (lower-case) reference re-parses the same.
    const hint = !hasHost && components.length > 1 && first !== first.toLowerCase()
      ? ` (a registry host holds a "." or a port, or is "localhost")`
      : ""
    return invalid(`repository name must be lowercase${hint}`)
  }
  const bad = path.find((c) => !componentPattern.test(c))
  if (bad === "") return invalid("the repository name has an empty path component")
  if (bad !== undefined) {
    return invalid(`path component "${bad}" is invalid (letters and digits, separated by ".", "_", "__" or "-")`)
  }
  if (repository.length > maxRepositoryLength) {
    return invalid(`repository name is longer than ${maxRepositoryLength} characters`)
  }

  if (tag === "") return invalid("the tag after ':' is empty")
  if (tag !== undefined && !tagPattern.test(tag)) {
    return invalid(tag.length > 128 ? "tag is longer than 128 characters" : `tag "${tag}" has invalid characters`)
  }
  if (digest !== undefined) {
    const parsed = Digest.parse(digest)
    if (Either.isLeft(parsed)) return invalid(parsed.left)
  }

  return Either.right({ registry, repository, tag: tag ?? (digest === undefined ? "latest" : undefined), digest })
}

const suffix = (ref: Reference): string =>
  `${ref.tag === undefined ? "" : `:${ref.tag}`}${ref.digest === undefined ? "" : `@${ref.digest}`}`

/** Fully qualified: `registry/repository[:tag][@digest]`. */
export const format = (ref: Reference): string => `${ref.registry}/${ref.repository}${suffix(ref)}`

/**
 * The short form Docker prints: Docker Hub's name dropped, and `library/` for official images.
 * The registry is kept whenever dropping it would make the first component read as a host.
 */
export const familiar = (ref: Reference): string => {
  if (ref.registry !== DockerHub) return format(ref)
  const short = ref.repository.replace(/^library\/(?=[^/]+$)/, "")
  const first = short.split("/")[0]!
  const ambiguous = short.includes("/") && looksLikeHost(first)
  return `${ambiguous ? `${DockerHub}/` : ""}${short}${suffix(ref)}`
}
