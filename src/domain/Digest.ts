/**
 * Content digests (`<algorithm>:<hex>`, OCI image-spec descriptor.md): parsing and hashing.
 * Only `sha256` (64 hex) and `sha512` (128 hex), lower case ([H1]); the algorithm a digest names
 * is the one that verifies it.
 */
import { createHash, type Hash } from "node:crypto"
import * as Either from "effect/Either"

export type Algorithm = "sha256" | "sha512"

export interface Digest {
  readonly algorithm: Algorithm
  readonly hex: string
}

const lengths: Record<Algorithm, number> = { sha256: 64, sha512: 128 }

export const format = (digest: Digest): string => `${digest.algorithm}:${digest.hex}`

/**
 * Text from outside (a registry, a layout) quoted for a message: JSON escapes control characters,
 * and a long one is cut, so a hostile value can neither forge lines nor flood the terminal.
 */
export const quote = (text: string, max = 80): string =>
  JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text)

export const parse = (text: string): Either.Either<Digest, string> => {
  const match = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(text)
  if (!match) return Either.left(`${quote(text)} is not a digest (algorithm:hex)`)
  const [, algorithm, hex] = match
  if (algorithm !== "sha256" && algorithm !== "sha512") return Either.left(`unsupported digest algorithm ${quote(algorithm!)}`)
  if (!new RegExp(`^[a-f0-9]{${lengths[algorithm]}}$`).test(hex!)) {
    return Either.left(`${quote(text)} is not a valid ${algorithm} digest (${lengths[algorithm]} lower-case hex digits)`)
  }
  return Either.right({ algorithm, hex: hex! })
}

export const isValid = (text: string): boolean => Either.isRight(parse(text))

export const hasher = (algorithm: Algorithm): Hash => createHash(algorithm)

export const of = (bytes: Uint8Array, algorithm: Algorithm = "sha256"): Digest => ({
  algorithm,
  hex: createHash(algorithm).update(bytes).digest("hex")
})

export const equals = (a: Digest, b: Digest): boolean => a.algorithm === b.algorithm && a.hex === b.hex

/**
 * The digest of `bytes` in the algorithm `expected` names, and whether it is `expected` ([H1]).
 * An `expected` that is not a digest is a Left with the reason.
 */
export const verify = (bytes: Uint8Array, expected: string): Either.Either<{ readonly actual: string; readonly matches: boolean }, string> =>
  Either.map(parse(expected), (named) => {
    const actual = format(of(bytes, named.algorithm))
    return { actual, matches: actual === expected }
  })
