/**
 * Generators for image references ([I1]) and platforms ([I3]): the grammar of distribution/reference,
 * corner cases included (ports, IPv6 literals, `__` and `--` separators, 128-character tags).
 */
import * as FastCheck from "effect/FastCheck"
import type { Platform } from "../../src/domain/Manifest.js"

const label = FastCheck.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,6}[a-z0-9])?$/)

/** `host[:port]` as written in a reference, never one of Docker Hub's names. */
export const registry = FastCheck.tuple(
  FastCheck.oneof(
    FastCheck.tuple(label, FastCheck.constantFrom("io", "com", "example.org")).map(([a, b]) => `${a}.${b}`),
    FastCheck.constant("localhost"),
    FastCheck.tuple(FastCheck.nat(255), FastCheck.nat(255)).map(([a, b]) => `127.0.${a}.${b}`),
    FastCheck.constantFrom("[::1]", "[fe80::1]", "[2001:db8::42]")
  ),
  FastCheck.option(FastCheck.integer({ min: 1, max: 65535 }), { nil: undefined })
)
  .map(([h, port]) => port === undefined ? h : `${h}:${port}`)
  .filter((h) => !/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)$/.test(h))

/** A bracketed IPv6 literal with an embedded (dotted) IPv4 part, which distribution/reference refuses. */
export const dottedIpv6 = FastCheck.tuple(
  FastCheck.constantFrom("::", "::ffff:", "2001:db8::", "64:ff9b::", "1:2:3:4:5:6:"),
  FastCheck.array(FastCheck.nat(255), { minLength: 4, maxLength: 4 }),
  FastCheck.option(FastCheck.integer({ min: 1, max: 65535 }), { nil: undefined })
).map(([head, octets, port]) => `[${head}${octets.join(".")}]${port === undefined ? "" : `:${port}`}`)

/**
 * Text in the place of a registry host that reads as one ([I1]: it holds `.` or `:` or is
 * `localhost`), valid or not: for checking that references and credential keys agree on every host.
 */
export const hostCandidate = FastCheck.oneof(
  registry,
  registry.map((h) => h.toUpperCase()),
  dottedIpv6,
  FastCheck.constantFrom("[::1", "[]", "[g::1]", "[::1]x", "a..b", "-a.io", "a-.io", "a_b.io", "host.io:", "host.io:x1", "h:1:2", "[fe80::1%eth0]"),
  FastCheck.stringMatching(/^[a-zA-Z0-9.:[\]_%-]{1,16}$/)
).filter((h) => /[.:]/.test(h) || h.toLowerCase() === "localhost")

/** A path component: alphanumerics joined by `.`, `_`, `__` or runs of `-`. */
export const component = FastCheck.tuple(
  FastCheck.stringMatching(/^[a-z0-9]{1,6}$/),
  FastCheck.array(
    FastCheck.tuple(FastCheck.constantFrom(".", "_", "__", "-", "--", "---"), FastCheck.stringMatching(/^[a-z0-9]{1,6}$/)),
    { maxLength: 2 }
  )
).map(([head, rest]) => head + rest.map(([sep, part]) => sep + part).join(""))

/** A component that cannot be mistaken for a host when it comes first. */
export const namespaceComponent = component.filter((c) => !c.includes(".") && c !== "localhost")

export const path = FastCheck.array(component, { minLength: 1, maxLength: 4 })

export const tag = FastCheck.oneof(
  { weight: 5, arbitrary: FastCheck.stringMatching(/^\w[\w.-]{0,15}$/) },
  { weight: 1, arbitrary: FastCheck.stringMatching(/^\w[\w.-]{127}$/) }
)

export const digest = FastCheck.oneof(
  FastCheck.stringMatching(/^[a-f0-9]{64}$/).map((hex) => `sha256:${hex}`),
  FastCheck.stringMatching(/^[a-f0-9]{128}$/).map((hex) => `sha512:${hex}`)
)

const optional = <A>(arb: FastCheck.Arbitrary<A>) => FastCheck.option(arb, { nil: undefined })

/** The parts of a reference with an explicit, non-Hub registry, and its text. */
export const qualified = FastCheck.record({ registry, path, tag: optional(tag), digest: optional(digest) }).map((parts) => ({
  ...parts,
  text: `${parts.registry}/${parts.path.join("/")}${parts.tag === undefined ? "" : `:${parts.tag}`}${parts.digest === undefined ? "" : `@${parts.digest}`}`
}))

/** Any valid reference text: with or without a host (Hub shorthand, `docker.io/...`, its aliases). */
export const referenceText = FastCheck.oneof(
  qualified.map((q) => q.text),
  FastCheck.tuple(
    FastCheck.constantFrom("", "docker.io/", "index.docker.io/", "registry-1.docker.io/"),
    FastCheck.oneof(
      component.map((c) => [c]),
      FastCheck.tuple(namespaceComponent, FastCheck.array(component, { minLength: 1, maxLength: 3 })).map(([n, rest]) => [n, ...rest])
    ),
    optional(tag),
    optional(digest)
  ).map(([prefix, p, t, d]) => `${prefix}${p.join("/")}${t === undefined ? "" : `:${t}`}${d === undefined ? "" : `@${d}`}`)
)

/** Platforms as indexes and users spell them, aliases and odd case included. */
export const os = FastCheck.constantFrom("linux", "windows", "darwin", "freebsd", "Linux")
export const architecture = FastCheck.constantFrom(
  "amd64", "x86_64", "x86-64", "arm64", "aarch64", "arm", "armhf", "armel", "386", "i386", "i686", "ppc64le", "s390x", "riscv64", "AMD64"
)
export const variant = FastCheck.constantFrom("v5", "v6", "v7", "v8", "v1", "v2", "v3", "7", "8")

export const platform: FastCheck.Arbitrary<Platform> = FastCheck.tuple(os, architecture, optional(variant)).map(([o, a, v]) =>
  v === undefined ? { os: o, architecture: a } : { os: o, architecture: a, variant: v }
)
