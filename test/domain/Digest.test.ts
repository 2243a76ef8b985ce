/**
 * Digests ([H1]): sha256 and sha512 only, lower-case hex of the right length; the algorithm a
 * digest names is the one that verifies it; hostile text is quoted safely in messages.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { createHash } from "node:crypto"
import * as Digest from "../../src/domain/Digest.js"

const bytes = new TextEncoder().encode("some content\n")
const hex = (algorithm: string) => createHash(algorithm).update(bytes).digest("hex")

describe("Digest", () => {
  it("[H1] sha256 and sha512 parse; other algorithms, lengths and cases do not", () => {
    expect(Either.isRight(Digest.parse(`sha256:${hex("sha256")}`))).toBe(true)
    expect(Either.isRight(Digest.parse(`sha512:${hex("sha512")}`))).toBe(true)
    for (const text of [`sha256:${hex("sha512")}`, `sha512:${hex("sha256")}`, `sha256:${hex("sha256").toUpperCase()}`, `md5:${hex("md5")}`, "sha256:", "sha256:../x"]) {
      expect(Either.isLeft(Digest.parse(text)), text).toBe(true)
    }
  })

  it("[H1] verify hashes with the algorithm the digest names", () => {
    for (const algorithm of ["sha256", "sha512"]) {
      const expected = `${algorithm}:${hex(algorithm)}`
      expect(Either.getOrThrow(Digest.verify(bytes, expected))).toEqual({ actual: expected, matches: true })
      const other = Either.getOrThrow(Digest.verify(new TextEncoder().encode("other"), expected))
      expect(other.matches).toBe(false)
      expect(other.actual.startsWith(`${algorithm}:`)).toBe(true)
    }
    expect(Either.isLeft(Digest.verify(bytes, "sha1:abc"))).toBe(true)
  })

  it("[H1] a refused digest is quoted with control characters escaped and its length capped", () => {
    const reason = Either.match(Digest.parse(`sha256:\u001b]0;owned\u0007${"x".repeat(500)}`), { onLeft: (r) => r, onRight: () => "" })
    expect(reason).not.toMatch(/[\u0000-\u001f]/)
    expect(reason.length).toBeLessThan(200)
  })
})
