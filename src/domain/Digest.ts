/**
 * Content digests (`<algorithm>:<hex>`, OCI image-spec descriptor.md): parsing and hashing.
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

export const parse = (text: string): Either.Either<Digest, string> => {
  const match = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(text)
  if (!match) return Either.left(`"${text}" is not a digest (algorithm:hex)`)
  const [, algorithm, hex] = match
  if (algorithm !== "sha256" && algorithm !== "sha512") return Either.left(`unsupported digest algorithm "${algorithm}"`)
  if (!new RegExp(`^[a-f0-9]{${lengths[algorithm]}}$`).test(hex!)) {
    return Either.left(`"${text}" is not a valid ${algorithm} digest (${lengths[algorithm]} lower-case hex digits)`)
  }
  return Either.right({ algorithm, hex: hex! })
}

export const hasher = (algorithm: Algorithm): Hash => createHash(algorithm)

export const of = (bytes: Uint8Array, algorithm: Algorithm = "sha256"): Digest => ({
  algorithm,
  hex: createHash(algorithm).update(bytes).digest("hex")
})

export const equals = (a: Digest, b: Digest): boolean => a.algorithm === b.algorithm && a.hex === b.hex
