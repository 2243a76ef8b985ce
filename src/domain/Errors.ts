/**
 * The typed failures of SPEC §5. Each carries a one-line `message` (never a secret) and,
 * where one helps, a `hint`; the CLI maps each tag to its exit code.
 */
import * as Schema from "effect/Schema"

const hint = Schema.optional(Schema.String)

/** [E4] A bad flag, argument, key or reference. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  message: Schema.String,
  hint
}) {}

/** [E2] An auth file that exists but cannot be used ([C9]). */
export class AuthFileError extends Schema.TaggedError<AuthFileError>()("AuthFileError", {
  path: Schema.String,
  key: Schema.optional(Schema.String),
  reason: Schema.String,
  message: Schema.String,
  hint
}) {
  static of(path: string, reason: string, key?: string): AuthFileError {
    const where = key === undefined ? path : `${path}, key "${key}"`
    return new AuthFileError({ path, reason, message: `cannot use auth file ${where}: ${reason}`, ...(key === undefined ? {} : { key }) })
  }
}

/** [E1] The registry demands credentials and none resolve. */
export class MissingCredentials extends Schema.TaggedError<MissingCredentials>()("MissingCredentials", {
  registry: Schema.String,
  message: Schema.String,
  hint
}) {}

/** [E3] The registry rejected the credentials it was given. */
export class RegistryDenied extends Schema.TaggedError<RegistryDenied>()("RegistryDenied", {
  registry: Schema.String,
  repository: Schema.optional(Schema.String),
  action: Schema.String,
  /** The file the rejected credentials came from, when they came from one. */
  source: Schema.optional(Schema.String),
  message: Schema.String,
  hint
}) {}

/**
 * Why a registry is unavailable, for callers deciding what to do next ([P7]): `connection` (it
 * could not be reached, the connection broke or went silent: worth another attempt),
 * `exhausted` (the attempts are spent), `refused` (microagent refused what it sent or where it
 * led), `answer` (it answered something no attempt will change).
 */
export const UnavailableKind = Schema.Literal("connection", "exhausted", "refused", "answer")
export type UnavailableKind = typeof UnavailableKind.Type

/** [E5] DNS, connect or TLS failure, an answer that is not a registry's, or retries exhausted. */
export class RegistryUnavailable extends Schema.TaggedError<RegistryUnavailable>()("RegistryUnavailable", {
  registry: Schema.String,
  reason: Schema.String,
  message: Schema.String,
  hint,
  kind: Schema.optionalWith(UnavailableKind, { default: () => "answer" })
}) {
  static of(registry: string, reason: string, kind: UnavailableKind = "answer"): RegistryUnavailable {
    return new RegistryUnavailable({ registry, reason, kind, message: `registry ${registry} is unavailable: ${reason}` })
  }
}

/** [E4] A malformed image reference ([I1]). */
export class InvalidReference extends Schema.TaggedError<InvalidReference>()("InvalidReference", {
  reference: Schema.String,
  message: Schema.String,
  hint
}) {}

/** [E6] A manifest, tag, blob or repository the registry does not know. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  registry: Schema.String,
  what: Schema.String,
  message: Schema.String,
  hint
}) {}

/** [E7] Content that does not match its digest or size; nothing of it is stored. */
export class DigestMismatch extends Schema.TaggedError<DigestMismatch>()("DigestMismatch", {
  expected: Schema.String,
  actual: Schema.String,
  message: Schema.String,
  hint
}) {}

/**
 * A layout that cannot be opened, read or written, a blob or image that is not there, or a name
 * that matches several images. `path` is the file or folder concerned.
 */
export class ImageStoreError extends Schema.TaggedError<ImageStoreError>()("ImageStoreError", {
  path: Schema.String,
  reason: Schema.String,
  message: Schema.String,
  hint
}) {
  static of(path: string, reason: string, hint?: string): ImageStoreError {
    return new ImageStoreError({ path, reason, message: `${path}: ${reason}`, ...(hint === undefined ? {} : { hint }) })
  }
}

/** [O2] logout of a key that microagent's own store does not hold. */
export class NotLoggedIn extends Schema.TaggedError<NotLoggedIn>()("NotLoggedIn", {
  key: Schema.String,
  message: Schema.String,
  hint
}) {}

/** [E8] A layer entry that would escape the root filesystem, or cannot be applied ([F3]). */
export class LayerRejected extends Schema.TaggedError<LayerRejected>()("LayerRejected", {
  layer: Schema.String,
  entry: Schema.String,
  reason: Schema.String,
  message: Schema.String,
  hint
}) {
  static of(layer: string, entry: string, reason: string): LayerRejected {
    const where = entry === "" ? `layer ${layer}` : `layer ${layer}, entry "${entry}"`
    return new LayerRejected({ layer, entry, reason, message: `${where}: ${reason}` })
  }
}

/** [E9] A program microagent runs (mke2fs, setfattr, a runtime) is not installed. */
export class ToolMissing extends Schema.TaggedError<ToolMissing>()("ToolMissing", {
  tool: Schema.String,
  package: Schema.String,
  message: Schema.String,
  hint
}) {
  static of(tool: string, pkg: string, purpose: string): ToolMissing {
    return new ToolMissing({
      tool,
      package: pkg,
      message: `${tool} is not installed; it is needed ${purpose}`,
      hint: `install it, e.g. apt-get install ${pkg}`
    })
  }
}

/**
 * [E10] A `--secret` reference that does not resolve ([R6]). The message names the secret, its
 * scheme and why; never a value, nor any part of a file's content.
 */
export class SecretUnresolved extends Schema.TaggedError<SecretUnresolved>()("SecretUnresolved", {
  /** The secret's NAME (a field called `name` would shadow Error's own). */
  secret: Schema.String,
  scheme: Schema.Literal("env", "file", "dotenv"),
  reason: Schema.Literal("variable-not-set", "file-missing", "file-unreadable", "not-a-regular-file", "too-large", "key-not-found"),
  message: Schema.String,
  hint
}) {}

export type MicroagentError =
  | UsageError
  | AuthFileError
  | MissingCredentials
  | RegistryDenied
  | RegistryUnavailable
  | NotLoggedIn
  | InvalidReference
  | NotFound
  | DigestMismatch
  | ImageStoreError
  | LayerRejected
  | ToolMissing
  | SecretUnresolved
