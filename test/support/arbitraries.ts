/**
 * Generators for the property tests: registry hosts, namespaces and keys as users write them.
 */
import * as FastCheck from "effect/FastCheck"

const label = FastCheck.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?$/)

export const hostname = FastCheck.oneof(
  FastCheck.tuple(label, FastCheck.constantFrom("io", "com", "example.org")).map(([a, b]) => `${a}.${b}`),
  FastCheck.constant("localhost"),
  FastCheck.tuple(FastCheck.nat(255), FastCheck.nat(255)).map(([a, b]) => `127.0.${a}.${b}`)
)

/** `host[:port]`, never one of Docker Hub's names. */
export const host = FastCheck.tuple(hostname, FastCheck.option(FastCheck.integer({ min: 1, max: 65535 }), { nil: undefined }))
  .map(([h, port]) => port === undefined ? h : `${h}:${port}`)
  .filter((h) => !/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)$/.test(h))

export const segment = FastCheck.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+){0,2}$/).filter((s) => s.length <= 20)

export const path = FastCheck.array(segment, { minLength: 0, maxLength: 3 })

/** A canonical key: `host[/namespace...]`. */
export const key = FastCheck.tuple(host, path).map(([h, p]) => [h, ...p].join("/"))

/**
 * A key in one of the legacy spellings of [C5] that mean the same key. `/v1` without its slash
 * is legacy only after a scheme, and a key whose last segment is `v1` or `v2` has no legacy
 * spelling that would not read as another key.
 */
export const legacyForm = (canonical: string) =>
  FastCheck.tuple(
    FastCheck.constantFrom("", "http://", "https://", "HTTPS://"),
    FastCheck.constantFrom("", "/", "/v1/", "/v2/", "/v1", "/v2"),
    FastCheck.boolean()
  ).filter(([scheme, suffix]) =>
    (scheme !== "" || !/^\/v[12]$/.test(suffix)) && (!/\/v[12]$/.test(canonical) || (scheme === "" && suffix === ""))
  ).map(([scheme, suffix, upper]) => {
    const [h, ...rest] = canonical.split("/")
    return `${scheme}${[upper ? h!.toUpperCase() : h, ...rest].join("/")}${suffix}`
  })

/** A user name as login accepts it: anything without ':'. */
export const username = FastCheck.string({ unit: "grapheme", minLength: 1, maxLength: 20 }).filter((u) => !u.includes(":"))

/** A password: anything, ':' included, without NUL padding at its ends ([C11] trims that). */
export const password = FastCheck.string({ unit: "grapheme", minLength: 1, maxLength: 30 })
  .filter((p) => !p.startsWith("\0") && !p.endsWith("\0"))
