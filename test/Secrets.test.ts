import { execFileSync } from "node:child_process"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import type { SecretUnresolved, UsageError } from "../src/domain/Errors.js"
import * as SecretRef from "../src/domain/SecretRef.js"
import * as Secrets from "../src/Secrets.js"

/** Distinctive values: none may appear in any message, hint or log line. */
const VALUES = {
  env: "SV-env-Qx7pL2vR9",
  file: "SV-file-Mk3nB8wT1\nsecond line\n",
  dotenv: "SV-dotenv-Hy5cJ4sD6",
  other: "SV-other-Zr2gF9kN3"
} as const
const needles = [VALUES.env, VALUES.file.split("\n")[0]!, VALUES.dotenv, VALUES.other, "second line"]

const ref = (input: string) => Either.getOrThrowWith(SecretRef.parse(input), (r) => new Error(r))
const text = (value: Redacted.Redacted<Uint8Array>) => new TextDecoder().decode(Redacted.value(value))

interface Harness {
  readonly dir: string
  readonly logs: Array<string>
  readonly secrets: Secrets.SecretsService
}

/**
 * Secrets.layer over the real file system in a fresh folder, with `env` as microagent's
 * environment, and every log line captured.
 */
const withSecrets = <A, E>(
  env: Record<string, string>,
  files: (dir: string) => Record<string, string | Uint8Array>,
  body: (h: Harness) => Effect.Effect<A, E, FileSystem.FileSystem>
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped()
    for (const [name, content] of Object.entries(files(dir))) {
      yield* fs.writeFile(`${dir}/${name}`, typeof content === "string" ? new TextEncoder().encode(content) : content)
    }
    const logs: Array<string> = []
    const capture = Logger.make(({ logLevel, message }) => {
      logs.push(`${logLevel.label}: ${(Array.isArray(message) ? message : [message]).map(String).join(" ")}`)
    })
    const secrets = yield* Secrets.Secrets.pipe(
      Effect.provide(Secrets.layer),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))
    )
    return yield* body({ dir, logs, secrets }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const files = (): Record<string, string | Uint8Array> => ({
  "token.txt": VALUES.file,
  ".env": `# app settings\nexport OTHER=${VALUES.other}\nDB_PASSWORD="${VALUES.dotenv}" # prod\r\nEMPTY=\n`,
  "binary.bin": new Uint8Array([0, 255, 1, 254, 10, 13]),
  "exactly-1MiB": new Uint8Array(Secrets.maxSize).fill(65),
  "over-1MiB": new Uint8Array(Secrets.maxSize + 1).fill(65)
})

/** Nothing the user could read (message, hint, the error as text or JSON, logs) holds a value. */
const assertNoValue = (what: ReadonlyArray<string>) => {
  for (const haystack of what) for (const needle of needles) assert.notInclude(haystack, needle)
}
const surfaces = (e: SecretUnresolved | UsageError, logs: ReadonlyArray<string>) => [
  e.message,
  e.hint ?? "",
  String(e),
  JSON.stringify(e),
  Cause.pretty(Cause.fail(e)),
  ...logs
]

const failure = (h: Harness, input: string) => Effect.flip(h.secrets.resolve([ref(input)]))

describe("Secrets.resolve", () => {
  it.effect("[R6] env:, file: and dotenv: resolve to exactly the bytes, with name, source and size", () =>
    withSecrets({ API_TOKEN: VALUES.env }, files, (h) =>
      Effect.gen(function*() {
        const out = yield* h.secrets.resolve([
          ref("API=env:API_TOKEN"),
          ref(`TOKEN=file:${h.dir}/token.txt`),
          ref(`DB=dotenv:${h.dir}/.env#DB_PASSWORD`),
          ref(`BIN=file:${h.dir}/binary.bin`)
        ])
        assert.deepStrictEqual(out.map(({ name, scheme, size, source }) => ({ name, scheme, source, size })), [
          { name: "API", scheme: "env", source: "env:API_TOKEN", size: VALUES.env.length },
          { name: "TOKEN", scheme: "file", source: `${h.dir}/token.txt`, size: VALUES.file.length },
          { name: "DB", scheme: "dotenv", source: `${h.dir}/.env#DB_PASSWORD`, size: VALUES.dotenv.length },
          { name: "BIN", scheme: "file", source: `${h.dir}/binary.bin`, size: 6 }
        ])
        assert.strictEqual(text(out[0]!.value), VALUES.env)
        assert.strictEqual(text(out[1]!.value), VALUES.file, "a file's trailing newline is kept: exactly its bytes")
        assert.strictEqual(text(out[2]!.value), VALUES.dotenv)
        assert.deepStrictEqual([...Redacted.value(out[3]!.value)], [0, 255, 1, 254, 10, 13])
        // The values are Redacted: printing or serialising a result shows none of them.
        assertNoValue([String(out[0]!.value), JSON.stringify(out), ...h.logs])
      })))

  it.effect("[R6] an env value is its UTF-8, kept exactly (blanks, commas, newlines, non-ASCII)", () =>
    withSecrets({ V: " a,b\nc é " }, () => ({}), (h) =>
      Effect.gen(function*() {
        const [out] = yield* h.secrets.resolve([ref("V=env:V")])
        assert.strictEqual(text(out!.value), " a,b\nc é ")
        assert.strictEqual(out!.size, new TextEncoder().encode(" a,b\nc é ").length)
      })))

  it.effect("[R6] empty values resolve, with size 0", () =>
    withSecrets({ EMPTY: "" }, () => ({ ...files(), empty: "" }), (h) =>
      Effect.gen(function*() {
        const out = yield* h.secrets.resolve([ref("A=env:EMPTY"), ref(`B=file:${h.dir}/empty`), ref(`C=dotenv:${h.dir}/.env#EMPTY`)])
        assert.deepStrictEqual(out.map((r) => r.size), [0, 0, 0])
      })))

  it.effect("[R6] a file of exactly 1 MiB resolves; a link to a regular file is followed", () =>
    withSecrets({}, files, (h) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.symlink(`${h.dir}/token.txt`, `${h.dir}/link`)
        const out = yield* h.secrets.resolve([ref(`BIG=file:${h.dir}/exactly-1MiB`), ref(`L=file:${h.dir}/link`)])
        assert.deepStrictEqual(out.map((r) => r.size), [Secrets.maxSize, VALUES.file.length])
      })))

  it.effect("[R6] each scheme used warns once that it is plaintext, however many secrets use it, and once per service", () =>
    withSecrets({ A: VALUES.env, B: VALUES.env }, files, (h) =>
      Effect.gen(function*() {
        yield* h.secrets.resolve([ref("A=env:A"), ref(`F=file:${h.dir}/token.txt`), ref("B=env:B")])
        assert.deepStrictEqual(h.logs, [`WARN: secret scheme "env" is plaintext`, `WARN: secret scheme "file" is plaintext`])
        yield* h.secrets.resolve([ref("A=env:A"), ref(`D=dotenv:${h.dir}/.env#DB_PASSWORD`)])
        assert.deepStrictEqual(h.logs, [
          `WARN: secret scheme "env" is plaintext`,
          `WARN: secret scheme "file" is plaintext`,
          `WARN: secret scheme "dotenv" is plaintext`
        ])
      })))

  it.effect("[E10] env: a variable that is not set", () =>
    withSecrets({ OTHER: VALUES.other }, files, (h) =>
      Effect.gen(function*() {
        const e = yield* failure(h, "API=env:API_TOKEN")
        assert.strictEqual(e._tag, "SecretUnresolved")
        if (e._tag !== "SecretUnresolved") return
        assert.deepStrictEqual([e.secret, e.scheme, e.reason], ["API", "env", "variable-not-set"])
        assert.strictEqual(e.message, `secret "API" (env:API_TOKEN) does not resolve: API_TOKEN is not set in microagent's environment`)
        assert.include(e.hint ?? "", "--preserve-env=API_TOKEN")
        assertNoValue(surfaces(e, h.logs))
      })))

  const fileFailures: ReadonlyArray<readonly [string, (dir: string) => string, SecretUnresolved["reason"], (dir: string) => string]> = [
    ["missing", (d) => `T=file:${d}/nope`, "file-missing", (d) => `secret "T" (file:${d}/nope) does not resolve: ${d}/nope does not exist`],
    ["a directory", (d) => `T=file:${d}`, "not-a-regular-file", (d) => `secret "T" (file:${d}) does not resolve: ${d} is not a regular file (it is a directory)`],
    ["a character device", () => `T=file:/dev/zero`, "not-a-regular-file", () => `secret "T" (file:/dev/zero) does not resolve: /dev/zero is not a regular file (it is a character device)`],
    ["over 1 MiB", (d) => `T=file:${d}/over-1MiB`, "too-large", (d) => `secret "T" (file:${d}/over-1MiB) does not resolve: ${d}/over-1MiB is 1048577 bytes; a secret may be at most 1 MiB (1048576 bytes)`],
    ["a dotenv file that is missing", (d) => `T=dotenv:${d}/nope.env#K`, "file-missing", (d) => `secret "T" (dotenv:${d}/nope.env#K) does not resolve: ${d}/nope.env does not exist`],
    ["a dotenv key not in the file", (d) => `T=dotenv:${d}/.env#MISSING`, "key-not-found", (d) => `secret "T" (dotenv:${d}/.env#MISSING) does not resolve: ${d}/.env sets no MISSING`],
    ["a dotenv key in a comment only", (d) => `T=dotenv:${d}/.env#app`, "key-not-found", (d) => `secret "T" (dotenv:${d}/.env#app) does not resolve: ${d}/.env sets no app`],
    ["a dotenv key in another case", (d) => `T=dotenv:${d}/.env#db_password`, "key-not-found", (d) => `secret "T" (dotenv:${d}/.env#db_password) does not resolve: ${d}/.env sets no db_password`]
  ]
  for (const [what, input, reason, message] of fileFailures) {
    it.effect(`[E10] ${what}: ${reason}, and no content in the error`, () =>
      withSecrets({}, files, (h) =>
        Effect.gen(function*() {
          const e = yield* failure(h, input(h.dir))
          assert.strictEqual(e._tag, "SecretUnresolved")
          if (e._tag !== "SecretUnresolved") return
          assert.strictEqual(e.reason, reason)
          assert.strictEqual(e.message, message(h.dir))
          assertNoValue(surfaces(e, h.logs))
        })))
  }

  it.effect("[E10] a path through a regular file: file-unreadable, with the system's reason", () =>
    withSecrets({}, files, (h) =>
      Effect.gen(function*() {
        const e = yield* failure(h, `T=file:${h.dir}/token.txt/x`)
        assert.strictEqual(e._tag, "SecretUnresolved")
        if (e._tag !== "SecretUnresolved") return
        assert.strictEqual(e.reason, "file-unreadable")
        assert.include(e.message, `does not resolve: cannot read ${h.dir}/token.txt/x (`)
        assert.include(e.message, "not a directory")
        assertNoValue(surfaces(e, h.logs))
      })))

  it.live("[E10] a named pipe is refused without being opened (opening one would wait for a writer)", () =>
    withSecrets({}, () => ({}), (h) =>
      Effect.gen(function*() {
        execFileSync("mkfifo", [`${h.dir}/pipe`])
        const e = yield* failure(h, `P=file:${h.dir}/pipe`).pipe(Effect.timeout("5 seconds"))
        assert.strictEqual(e._tag, "SecretUnresolved")
        assert.include(e.message, "is not a regular file (it is a named pipe)")
        assert.strictEqual(e.hint, "microagent reads secrets from regular files only")
      })))

  it.effect.skipIf(process.getuid?.() === 0)("[E10] a file that cannot be read: file-unreadable, permission denied", () =>
    withSecrets({}, files, (h) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.chmod(`${h.dir}/token.txt`, 0o000)
        const e = yield* failure(h, `T=file:${h.dir}/token.txt`)
        assert.strictEqual(e._tag, "SecretUnresolved")
        if (e._tag !== "SecretUnresolved") return
        assert.strictEqual(e.reason, "file-unreadable")
        assert.strictEqual(e.message, `secret "T" (file:${h.dir}/token.txt) does not resolve: cannot read ${h.dir}/token.txt (permission denied)`)
        assertNoValue(surfaces(e, h.logs))
      })))

  it.effect("[R6] one NAME given twice is a UsageError, before anything is read", () =>
    withSecrets({ A: VALUES.env }, files, (h) =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(h.secrets.resolve([ref("A=env:A"), ref(`A=file:${h.dir}/token.txt`)]))
        assert.strictEqual(e._tag, "UsageError")
        assert.strictEqual(e.message, `secret "A" is given more than once`)
        assert.deepStrictEqual(h.logs, [], "nothing was resolved, so no scheme was used")
      })))

  it.effect("[E10] the first reference that does not resolve fails the whole", () =>
    withSecrets({ A: VALUES.env }, files, (h) =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(h.secrets.resolve([ref("A=env:A"), ref("B=env:NOPE"), ref(`C=file:${h.dir}/nope`)]))
        assert.strictEqual(e._tag === "SecretUnresolved" ? e.secret : e._tag, "B")
      })))
})

describe("Secrets.parseAll", () => {
  it.effect("[R6] a malformed reference is a UsageError that does not repeat what followed '='", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Secrets.parseAll(["A=env:A", `TOKEN=${VALUES.other}`]))
      assert.strictEqual(e._tag, "UsageError")
      assert.include(e.message, `invalid secret reference: secret "TOKEN": the reference must start with env:, file: or dotenv:`)
      assertNoValue([e.message, e.hint ?? ""])
    }))
})

describe("Secrets.layerTest", () => {
  it.effect("resolves from maps, with the same rules and messages", () =>
    Effect.gen(function*() {
      const secrets = yield* Secrets.Secrets
      const out = yield* secrets.resolve([ref("A=env:A"), ref("F=file:/s/f"), ref("D=dotenv:/s/.env#K")])
      assert.deepStrictEqual(out.map((r) => text(r.value)), [VALUES.env, VALUES.file, VALUES.dotenv])
      const e = yield* Effect.flip(secrets.resolve([ref("M=file:/s/missing")]))
      assert.strictEqual(e._tag === "SecretUnresolved" ? e.reason : e._tag, "file-missing")
    }).pipe(Effect.provide(Secrets.layerTest({ env: { A: VALUES.env }, files: { "/s/f": VALUES.file, "/s/.env": `K=${VALUES.dotenv}\n` } }))))

  it.effect("the live layer reads the ConfigProvider in force when it is built", () =>
    Effect.gen(function*() {
      const [out] = yield* (yield* Secrets.Secrets).resolve([ref("A=env:FROM_MAP")])
      assert.strictEqual(text(out!.value), "from the map")
    }).pipe(
      Effect.provide(Secrets.layer.pipe(Layer.provide(NodeContext.layer))),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["FROM_MAP", "from the map"]])))
    ))
})
