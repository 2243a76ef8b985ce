import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as AuthKey from "../../src/domain/AuthKey.js"
import * as Reference from "../../src/domain/Reference.js"
import * as Arb from "../support/referenceArbitraries.js"

const parse = (text: string) => Either.getOrThrow(Reference.parse(text))
const sha256 = `sha256:${"a1".repeat(32)}`
const sha512 = `sha512:${"0f".repeat(64)}`

describe("Reference", () => {
  it.prop("[I1] format is a fixed point: the formatted reference parses to the same reference", { text: Arb.referenceText }, ({ text }) => {
    const ref = parse(text)
    const formatted = Reference.format(ref)
    assert.deepStrictEqual(parse(formatted), ref)
    assert.strictEqual(Reference.format(parse(formatted)), formatted)
  })

  it.prop("[I1] a fully qualified reference keeps its parts, lower-cases the host and defaults the tag only without a digest", { q: Arb.qualified, upper: FastCheck.boolean() }, ({ q, upper }) => {
    const written = upper ? q.text.replace(q.registry, q.registry.toUpperCase()) : q.text
    assert.deepStrictEqual(parse(written), {
      registry: q.registry,
      repository: q.path.join("/"),
      tag: q.tag ?? (q.digest === undefined ? "latest" : undefined),
      digest: q.digest
    })
    if (q.tag !== undefined || q.digest !== undefined) assert.strictEqual(Reference.format(parse(q.text)), q.text)
  })

  it.prop("[I1] without a host the registry is docker.io, and a one-component name gains library/", { name: Arb.component, tag: Arb.tag }, ({ name, tag }) => {
    assert.deepStrictEqual(parse(`${name}:${tag}`), { registry: "docker.io", repository: `library/${name}`, tag, digest: undefined })
  })

  it.prop("[I1] [C6] Docker Hub's aliases are docker.io", { alias: FastCheck.constantFrom("docker.io", "index.docker.io", "registry-1.docker.io", "Index.Docker.IO"), path: Arb.path }, ({ alias, path }) => {
    const ref = parse(`${alias}/${path.join("/")}`)
    assert.strictEqual(ref.registry, "docker.io")
    assert.strictEqual(ref.repository, path.length === 1 ? `library/${path[0]}` : path.join("/"))
  })

  it.prop("[I1] the familiar form parses back to the same reference", { text: Arb.referenceText }, ({ text }) => {
    const ref = parse(text)
    assert.deepStrictEqual(parse(Reference.familiar(ref)), ref)
  })

  it("[I1] normalisation examples", () => {
    const table: ReadonlyArray<readonly [string, string]> = [
      ["alpine", "docker.io/library/alpine:latest"],
      ["alpine:3.20", "docker.io/library/alpine:3.20"],
      ["user/app", "docker.io/user/app:latest"],
      ["docker.io/alpine", "docker.io/library/alpine:latest"],
      ["index.docker.io/library/x", "docker.io/library/x:latest"],
      ["registry-1.docker.io/team/x:1", "docker.io/team/x:1"],
      ["localhost/app", "localhost/app:latest"],
      ["localhost:5000/app", "localhost:5000/app:latest"],
      ["127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"],
      ["[::1]:5000/a", "[::1]:5000/a:latest"],
      ["GHCR.io/a/b:v1", "ghcr.io/a/b:v1"],
      ["LocalHost:5000/a", "localhost:5000/a:latest"],
      [`ghcr.io/a/b@${sha256}`, `ghcr.io/a/b@${sha256}`],
      [`ghcr.io/a/b:1.0@${sha512}`, `ghcr.io/a/b:1.0@${sha512}`],
      ["a.b", "docker.io/library/a.b:latest"],
      ["localhost", "docker.io/library/localhost:latest"],
      ["localhost:5000", "docker.io/library/localhost:5000"],
      ["my-registry.local:5000/my__team/app--x_y.z:Tag_1.0-rc", "my-registry.local:5000/my__team/app--x_y.z:Tag_1.0-rc"]
    ]
    for (const [text, expected] of table) assert.strictEqual(Reference.format(parse(text)), expected, text)
    assert.deepStrictEqual(parse(`ghcr.io/a/b:1@${sha256}`), { registry: "ghcr.io", repository: "a/b", tag: "1", digest: sha256 })
    assert.deepStrictEqual(parse(`ghcr.io/a/b@${sha256}`).tag, undefined)
  })

  it("[I1] familiar forms", () => {
    const table: ReadonlyArray<readonly [string, string]> = [
      ["docker.io/library/alpine:latest", "alpine:latest"],
      ["docker.io/user/app:1", "user/app:1"],
      ["docker.io/library/a/b:1", "library/a/b:1"],
      ["docker.io/a.b/c:1", "docker.io/a.b/c:1"],
      ["ghcr.io/a/b:1", "ghcr.io/a/b:1"]
    ]
    for (const [text, expected] of table) assert.strictEqual(Reference.familiar(parse(text)), expected, text)
  })

  it("[I1] a malformed reference is refused with what is wrong with it", () => {
    const table: ReadonlyArray<readonly [string, string]> = [
      ["", "empty reference"],
      ["Foo/bar", `invalid reference "Foo/bar": repository name must be lowercase`],
      ["Alpine", "repository name must be lowercase"],
      ["ghcr.io/Team/app", "repository name must be lowercase"],
      ["alpine:x y", `tag "x y" has invalid characters`],
      ["alpine:.x", `tag ".x" has invalid characters`],
      [`alpine:${"t".repeat(129)}`, "tag is longer than 128 characters"],
      ["alpine:", "tag after ':' is empty"],
      ["alpine@sha256:abc", "is not a valid sha256 digest"],
      [`alpine@sha256:${"A1".repeat(32)}`, "is not a valid sha256 digest"],
      [`alpine@sha512:${"a".repeat(64)}`, "is not a valid sha512 digest"],
      [`alpine@md5:${"a".repeat(32)}`, `unsupported digest algorithm "md5"`],
      ["alpine@", "is not a digest"],
      [`a@b@${sha256}`, "is not a digest"],
      [":latest", "repository name is missing"],
      [`@${sha256}`, "repository name is missing"],
      ["a//b", "empty path component"],
      ["ghcr.io/", "empty path component"],
      ["ghcr.io/a/b/", "empty path component"],
      ["a/-b", `path component "-b" is invalid`],
      ["a/b_", `path component "b_" is invalid`],
      ["a/b___c", `path component "b___c" is invalid`],
      ["a/b c", `path component "b c" is invalid`],
      ["bad_host.io/a", `registry host "bad_host.io" is invalid`],
      ["-x.io/a", `registry host "-x.io" is invalid`],
      ["host.io:port/a", `registry host "host.io:port" is invalid`],
      [`ghcr.io/${"a".repeat(256)}`, "longer than 255 characters"],
      ["a1".repeat(32), "image ID"]
    ]
    for (const [text, why] of table) {
      const result = Reference.parse(text)
      assert.isTrue(Either.isLeft(result), text)
      assert.include(Either.isLeft(result) ? result.left : "", why, text)
    }
  })

  it("[I1] the 255-character limit is on the repository path, not the host", () => {
    const long = `${"a".repeat(100)}/${"b".repeat(154)}`
    assert.strictEqual(long.length, 255)
    assert.strictEqual(parse(`registry.example.com:5000/${long}`).repository, long)
    assert.isTrue(Either.isLeft(Reference.parse(`registry.example.com:5000/${long}c`)))
  })

  it("[I1] the hint for an upper-case first component says what makes a host", () => {
    const result = Reference.parse("MYHOST/app")
    assert.include(Either.isLeft(result) ? result.left : "", `a registry host holds a "." or a port, or is "localhost"`)
  })

  describe("[I1] [C5] one host grammar for references and credential keys (distribution/reference's)", () => {
    const embedded = "an IPv6 address with an embedded IPv4 part (dotted) is not supported"

    it("[I1] an IPv6 literal with an embedded IPv4 part is refused, and the hex spelling of the same address is given", () => {
      const table: ReadonlyArray<readonly [string, string]> = [
        ["[2001:db8::192.0.2.33]:5000/app", "e.g. [2001:db8::c000:221]"],
        ["[::ffff:127.0.0.1]/app", "e.g. [::ffff:7f00:1]"],
        ["[::1.2.3]/app", embedded]
      ]
      for (const [text, why] of table) {
        const result = Reference.parse(text)
        assert.isTrue(Either.isLeft(result), text)
        const reason = Either.isLeft(result) ? result.left : ""
        assert.include(reason, embedded, text)
        assert.include(reason, why, text)
      }
      assert.strictEqual(parse("[2001:db8::c000:221]:5000/app").registry, "[2001:db8::c000:221]:5000")
    })

    it("[I1] hosts as distribution/reference reads them: any port digits, hex IPv6 in any case, no zone", () => {
      const accepted: ReadonlyArray<readonly [string, string]> = [
        ["[2001:DB8::1]:5000/a", "[2001:db8::1]:5000"],
        ["[::]/a", "[::]"],
        ["host.io:050000/a", "host.io:050000"],
        ["Host-1.example.COM/a", "host-1.example.com"]
      ]
      for (const [text, registry] of accepted) assert.strictEqual(parse(text).registry, registry, text)
      const refused: ReadonlyArray<readonly [string, string]> = [
        ["[fe80::1%eth0]/a", "bracketed IPv6"],
        ["[::g]/a", "bracketed IPv6"],
        ["host.io:/a", `the port "" is not a number`],
        ["[::1]:http/a", `the port "http" is not a number`],
        ["a..b/c", "registry host \"a..b\" is invalid"]
      ]
      for (const [text, why] of refused) {
        const result = Reference.parse(text)
        assert.include(Either.isLeft(result) ? result.left : "", why, text)
      }
    })

    it.prop("[I1] [C5] a reference and a credential key accept the same hosts and canonicalise them alike", { host: Arb.hostCandidate }, ({ host }) => {
      const ref = Reference.parse(`${host}/app`)
      const key = AuthKey.parse(host)
      assert.strictEqual(Either.isRight(ref), Either.isRight(key), host)
      if (Either.isRight(ref) && Either.isRight(key)) assert.strictEqual(ref.right.registry, key.right.key.host)
      if (Either.isLeft(ref) && Either.isLeft(key)) {
        // Same reason in both, so a user fixing one spelling fixes the other.
        const why = (text: string) => text.slice(text.lastIndexOf(": ") + 2)
        assert.strictEqual(why(ref.left), why(key.left))
      }
    })

    it.prop("[I1] [C5] every IPv6 literal with a dotted IPv4 part is refused by both, saying so", { host: Arb.dottedIpv6 }, ({ host }) => {
      const results: ReadonlyArray<Either.Either<unknown, string>> = [Reference.parse(`${host}/app`), AuthKey.parse(host), AuthKey.parse(`https://${host}/v2/`)]
      for (const result of results) {
        assert.include(Either.isLeft(result) ? result.left : "", embedded, host)
      }
    })
  })
})
