/**
 * Secrets: resolves `--secret` references ([R6]) into values held in memory as `Redacted`.
 * microagent is a conduit, not a store: nothing here writes a value anywhere, and no error or
 * log line carries one, nor any part of a file's content ([E10]).
 *
 * - `env:VAR` reads microagent's own environment through the ConfigProvider.
 * - `file:PATH` reads a regular file, whole, of at most 1 MiB.
 * - `dotenv:PATH#KEY` reads KEY from a `.env` file (same limits), by dotenv's rules.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as SecretRef from "./domain/SecretRef.js"
import { SecretUnresolved, UsageError } from "./domain/Errors.js"
import * as SafeFiles from "./storage/SafeFiles.js"

/** The most a `file:` secret, or a `dotenv:` file, may hold. */
export const maxSize = 1024 * 1024

export interface ResolvedSecret {
  readonly name: string
  readonly scheme: SecretRef.Scheme
  /** Where the value came from, for people: `env:API_TOKEN`, `./tls.key`, `.env#DB_PASSWORD`. */
  readonly source: string
  /** Exactly the bytes to hand over: a variable's or a dotenv value's UTF-8, a file's content. */
  readonly value: Redacted.Redacted<Uint8Array>
  /** The value's length in bytes. */
  readonly size: number
}

export interface SecretsService {
  /**
   * Resolves every reference, in order; the first that does not resolve fails the whole. Each
   * scheme used warns once per service that it is plaintext. A NAME given twice is a UsageError.
   */
  readonly resolve: (
    refs: ReadonlyArray<SecretRef.SecretRef>
  ) => Effect.Effect<ReadonlyArray<ResolvedSecret>, SecretUnresolved | UsageError>
}

export class Secrets extends Context.Tag("microagent/Secrets")<Secrets, SecretsService>() {}

/** Parses `NAME=<scheme>:<ref>` arguments; the first malformed one is a UsageError. */
export const parseAll = (inputs: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<SecretRef.SecretRef>, UsageError> =>
  Effect.forEach(inputs, (input) =>
    Either.match(SecretRef.parse(input), {
      onLeft: (reason) => Effect.fail(new UsageError({ message: `invalid secret reference: ${reason}`, hint: SecretRef.examples })),
      onRight: Effect.succeed
    }))

/** Why a file could not be read, without any of its content. */
interface ReadFailure {
  readonly reason: "file-missing" | "file-unreadable" | "not-a-regular-file" | "too-large"
  readonly detail: string
}

/** Reads a whole file of at most `maxSize` bytes, or says why not. */
type FileReader = (path: string) => Effect.Effect<Uint8Array, ReadFailure>

const notRegular = (path: string, type: FileSystem.File.Type): ReadFailure => ({
  reason: "not-a-regular-file",
  detail: `${path} is not a regular file (it is ${typeNames[type]})`
})

const tooLarge = (path: string, size: number | string): ReadFailure => ({
  reason: "too-large",
  detail: `${path} is ${typeof size === "number" ? `${size} bytes` : size}; a secret may be at most 1 MiB (${maxSize} bytes)`
})

const typeNames: Record<FileSystem.File.Type, string> = {
  File: "a file",
  Directory: "a directory",
  SymbolicLink: "a symbolic link",
  BlockDevice: "a block device",
  CharacterDevice: "a character device",
  FIFO: "a named pipe",
  Socket: "a socket",
  Unknown: "of an unknown type"
}

const platformFailure = (path: string) => (e: PlatformError): ReadFailure =>
  e._tag === "SystemError" && e.reason === "NotFound"
    ? { reason: "file-missing", detail: `${path} does not exist` }
    : { reason: "file-unreadable", detail: `cannot read ${path} (${SafeFiles.describe(e)})` }

/**
 * Regular files only (a named pipe or a device could block or never end), checked before the
 * file is opened and again on the open file; never more than `maxSize + 1` bytes are read, so a
 * file that grows meanwhile is still refused.
 */
const fileSystemReader = (fs: FileSystem.FileSystem): FileReader => (path) =>
  Effect.gen(function*() {
    const failed = platformFailure(path)
    const before = yield* Effect.mapError(fs.stat(path), failed)
    if (before.type !== "File") return yield* Effect.fail(notRegular(path, before.type))
    if (Number(before.size) > maxSize) return yield* Effect.fail(tooLarge(path, Number(before.size)))
    return yield* Effect.scoped(Effect.gen(function*() {
      const file = yield* Effect.mapError(fs.open(path, { flag: "r" }), failed)
      const info = yield* Effect.mapError(file.stat, failed)
      if (info.type !== "File") return yield* Effect.fail(notRegular(path, info.type))
      const chunks: Array<Uint8Array> = []
      let total = 0
      while (true) {
        const chunk = yield* Effect.mapError(file.readAlloc(FileSystem.Size(maxSize + 1 - total)), failed)
        if (Option.isNone(chunk)) break
        chunks.push(chunk.value)
        total += chunk.value.length
        if (total > maxSize) return yield* Effect.fail(tooLarge(path, "more than 1 MiB"))
      }
      if (chunks.length === 1) return chunks[0]!
      const whole = new Uint8Array(total)
      let at = 0
      for (const c of chunks) {
        whole.set(c, at)
        at += c.length
      }
      return whole
    }))
  })

/** Files held in memory, for tests. */
const mapReader = (files: Readonly<Record<string, string | Uint8Array>>): FileReader => (path) => {
  if (!Object.hasOwn(files, path)) return Effect.fail({ reason: "file-missing", detail: `${path} does not exist` })
  const content = files[path]!
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content
  return bytes.length > maxSize ? Effect.fail(tooLarge(path, bytes.length)) : Effect.succeed(bytes)
}

const envHint = (variable: string) =>
  `set ${variable} in the environment microagent runs in (sudo drops it unless --preserve-env=${variable})`

const makeWith = (provider: ConfigProvider.ConfigProvider, readFile: FileReader) =>
  Effect.gen(function*() {
    const warned = yield* Ref.make<ReadonlySet<SecretRef.Scheme>>(new Set())

    const warnOnce = (scheme: SecretRef.Scheme) =>
      Ref.modify(warned, (set) => set.has(scheme) ? [false, set] : [true, new Set([...set, scheme])]).pipe(
        Effect.flatMap((first) => first ? Effect.logWarning(`secret scheme "${scheme}" is plaintext`) : Effect.void)
      )

    const unresolved = (ref: SecretRef.SecretRef, reason: SecretUnresolved["reason"], detail: string, hint?: string) =>
      new SecretUnresolved({
        secret: ref.name,
        scheme: ref.scheme,
        reason,
        message: `secret "${ref.name}" (${SecretRef.reference(ref)}) does not resolve: ${detail}`,
        ...(hint === undefined ? {} : { hint })
      })

    const fromFile = (ref: SecretRef.SecretRef) =>
      Effect.mapError(readFile(ref.ref), (f) =>
        unresolved(
          ref,
          f.reason,
          f.detail,
          f.reason === "not-a-regular-file" ? "microagent reads secrets from regular files only" : undefined
        ))

    const resolveOne = (ref: SecretRef.SecretRef): Effect.Effect<Redacted.Redacted<Uint8Array>, SecretUnresolved> => {
      switch (ref.scheme) {
        case "env":
          return provider.load(Config.redacted(ref.ref)).pipe(
            Effect.mapError(() =>
              unresolved(ref, "variable-not-set", `${ref.ref} is not set in microagent's environment`, envHint(ref.ref))
            ),
            Effect.map((value) => Redacted.make(new TextEncoder().encode(Redacted.value(value))))
          )
        case "file":
          return Effect.map(fromFile(ref), Redacted.make)
        case "dotenv":
          return fromFile(ref).pipe(
            Effect.flatMap((bytes) => {
              const key = ref.key ?? ""
              const found = SecretRef.lookupDotenv(new TextDecoder().decode(bytes), key)
              return Either.isRight(found)
                ? Effect.succeed(Redacted.make(new TextEncoder().encode(found.right)))
                : Effect.fail(
                  unresolved(ref, "key-not-found", `${ref.ref} sets no ${key}`, "a dotenv line reads KEY=value, and keys are case-sensitive")
                )
            })
          )
      }
    }

    const resolve = Effect.fn("Secrets.resolve")(function*(refs: ReadonlyArray<SecretRef.SecretRef>) {
      const seen = new Set<string>()
      for (const ref of refs) {
        if (seen.has(ref.name)) {
          return yield* new UsageError({
            message: `secret "${ref.name}" is given more than once`,
            hint: `each NAME becomes the file /run/secrets/NAME: give each secret its own name`
          })
        }
        seen.add(ref.name)
      }
      for (const scheme of new Set(refs.map((r) => r.scheme))) yield* warnOnce(scheme)
      return yield* Effect.forEach(refs, (ref) =>
        Effect.map(resolveOne(ref), (value): ResolvedSecret => ({
          name: ref.name,
          scheme: ref.scheme,
          source: SecretRef.source(ref),
          value,
          size: Redacted.value(value).length
        })))
    })

    return Secrets.of({ resolve })
  })

/** Captures FileSystem and the ConfigProvider in force when built. */
export const make: Effect.Effect<SecretsService, never, FileSystem.FileSystem> = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const provider = yield* Effect.configProviderWith(Effect.succeed)
  return yield* makeWith(provider, fileSystemReader(fs))
})

/** Needs FileSystem; `env:` reads the ConfigProvider in force when the layer is built. */
export const layer: Layer.Layer<Secrets, never, FileSystem.FileSystem> = Layer.effect(Secrets, make)

/**
 * No file system and no process environment: `env:` reads `env`, and `file:`/`dotenv:` read
 * `files` (path → content) with the same limits and messages.
 */
export const layerTest = (options: {
  readonly env?: Readonly<Record<string, string>>
  readonly files?: Readonly<Record<string, string | Uint8Array>>
}): Layer.Layer<Secrets> =>
  Layer.effect(
    Secrets,
    makeWith(ConfigProvider.fromMap(new Map(Object.entries(options.env ?? {}))), mapReader(options.files ?? {}))
  )
