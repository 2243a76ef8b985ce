/**
 * Credentials and the `auth` field codec of containers-auth.json ([C1], [C11]).
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

export const encodeAuth = (username: string, password: Redacted.Redacted<string>): string =>
  Buffer.from(`${username}:${Redacted.value(password)}`, "utf8").toString("base64")

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
    password: Redacted.make(decoded.slice(colon + 1).replace(/^\0+|\0+$/g, ""))
  })
}
