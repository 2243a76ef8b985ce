import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as SecretRef from "../../src/domain/SecretRef.js"

const ok = (input: string) => Either.getOrThrowWith(SecretRef.parse(input), (reason) => new Error(`${input}: ${reason}`))
const reason = (input: string) =>
  Either.match(SecretRef.parse(input), { onLeft: (r) => r, onRight: () => assert.fail(`${input} parsed`) })

const nameChar = FastCheck.constantFrom(..."abcXYZ019_.-")
const name = FastCheck.string({ unit: nameChar, minLength: 1, maxLength: 255 }).filter((n) => n !== "." && n !== "..")
const variable = FastCheck.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/)
const path = FastCheck.string({ unit: FastCheck.constantFrom(..."ab/.-_ #:=~"), minLength: 1, maxLength: 30 })
const key = FastCheck.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/)
const ref: FastCheck.Arbitrary<SecretRef.SecretRef> = FastCheck.oneof(
  FastCheck.tuple(name, variable).map(([n, v]) => ({ name: n, scheme: "env" as const, ref: v })),
  FastCheck.tuple(name, path).map(([n, p]) => ({ name: n, scheme: "file" as const, ref: p })),
  FastCheck.tuple(name, path, key).map(([n, p, k]) => ({ name: n, scheme: "dotenv" as const, ref: p, key: k }))
)

describe("SecretRef.parse", () => {
  it("[R6] the three schemes", () => {
    assert.deepStrictEqual(ok("API_TOKEN=env:API_TOKEN"), { name: "API_TOKEN", scheme: "env", ref: "API_TOKEN" })
    assert.deepStrictEqual(ok("tls.key=file:/etc/ssl/private/app.key"), { name: "tls.key", scheme: "file", ref: "/etc/ssl/private/app.key" })
    assert.deepStrictEqual(ok("db-password=dotenv:./.env#DB_PASSWORD"), { name: "db-password", scheme: "dotenv", ref: "./.env", key: "DB_PASSWORD" })
  })

  it("[R6] a path keeps its ':', '=' and '#': a dotenv KEY follows the last '#'", () => {
    assert.deepStrictEqual(ok("A=file:C:=x#y"), { name: "A", scheme: "file", ref: "C:=x#y" })
    assert.deepStrictEqual(ok("A=dotenv:dir#1/.env#KEY"), { name: "A", scheme: "dotenv", ref: "dir#1/.env", key: "KEY" })
  })

  it.prop("[R6] format and parse are inverses", { ref }, ({ ref }) => {
    assert.deepStrictEqual(ok(SecretRef.format(ref)), ref)
  })

  it.prop("[R6] whatever the input, a parsed name is a single file name under /run/secrets", { input: FastCheck.string({ maxLength: 300 }) }, ({ input }) => {
    Either.map(SecretRef.parse(input), (r) => {
      assert.match(r.name, /^[A-Za-z0-9_.-]{1,255}$/)
      assert.notInclude([".", ".."], r.name)
    })
  })

  it.prop("[R6] a name with any other character is refused", { before: FastCheck.string({ unit: nameChar, maxLength: 5 }), bad: FastCheck.constantFrom("/", " ", "\0", ":", "é", "\n", "$", "*") }, ({ bad, before }) => {
    assert.include(reason(`${before}${bad}x=env:X`), "only letters, digits")
  })

  it("[R6] names: empty, '.', '..', longer than 255, a path", () => {
    assert.strictEqual(reason("=env:X"), "the secret name is empty")
    assert.strictEqual(reason(".=env:X"), `the secret name may not be "."`)
    assert.strictEqual(reason("..=env:X"), `the secret name may not be ".."`)
    assert.include(reason(`${"a".repeat(256)}=env:X`), "longer than 255")
    assert.deepStrictEqual(ok(`${"a".repeat(255)}=env:X`).name.length, 255)
    assert.include(reason("../etc/passwd=env:X"), "only letters, digits")
    assert.include(reason("a/b=env:X"), "/run/secrets")
    assert.deepStrictEqual(ok("...=env:X").name, "...")
  })

  it("[R6] every malformed reference has a one-line reason", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["API_TOKEN", "expected NAME=<scheme>:<ref>"],
      ["A=", "the reference after '=' is empty"],
      ["A=API_TOKEN", "must start with env:, file: or dotenv:"],
      ["A=vault:kv/app", "must start with env:, file: or dotenv:"],
      ["A=ENV:X", "must start with env:, file: or dotenv:"],
      ["A=env:", "env: needs a variable name, e.g. A=env:A"],
      ["A=env:1X", "env: takes a variable name"],
      ["A=env:X-Y", "env: takes a variable name"],
      ["A=file:", "file: needs a path"],
      ["A=file:a\0b", "NUL"],
      ["A=dotenv:.env", "dotenv: needs PATH#KEY"],
      ["A=dotenv:#KEY", "dotenv: needs a path before '#'"],
      ["A=dotenv:.env#", "dotenv: needs a KEY after '#'"],
      ["A=dotenv:.env#K Y", "a dotenv KEY may contain only"]
    ]
    for (const [input, expected] of cases) {
      const r = reason(input)
      assert.include(r, expected, input)
      assert.notInclude(r, "\n", input)
    }
  })

  it.prop(
    "[R6] a value given where a reference belongs (--secret TOKEN=$TOKEN) is not repeated in the reason",
    { value: FastCheck.string({ unit: FastCheck.constantFrom(..."abcdefXYZ0123456789-_+/:.= "), minLength: 6, maxLength: 40 }) },
    ({ value }) => {
      FastCheck.pre(!/^(env|file|dotenv):/.test(value))
      assert.notInclude(reason(`TOKEN=${value}`), value)
    }
  )
})

describe("SecretRef.source", () => {
  it("names where a value is read from, never the value", () => {
    assert.strictEqual(SecretRef.source(ok("A=env:API_TOKEN")), "env:API_TOKEN")
    assert.strictEqual(SecretRef.source(ok("A=file:./tls.key")), "./tls.key")
    assert.strictEqual(SecretRef.source(ok("A=dotenv:.env#DB")), ".env#DB")
  })
})

const get = (text: string, k: string) => Either.getOrThrowWith(SecretRef.lookupDotenv(text, k), (r) => new Error(r))

describe("SecretRef.parseDotenv (the npm dotenv package's rules)", () => {
  it("basic lines, blanks around '=', `export`, comments and blank lines", () => {
    const text = [
      "# a comment",
      "",
      "BASIC=basic",
      "  SPACED = spaced value  ",
      "export EXPORTED=yes",
      "export=the key export",
      "exportNOT=no prefix",
      "   # indented comment",
      "dotted.key-name=ok",
      "this line is not an assignment",
      "YAML: style"
    ].join("\n")
    assert.deepStrictEqual(Object.fromEntries(SecretRef.parseDotenv(text)), {
      BASIC: "basic",
      SPACED: "spaced value",
      EXPORTED: "yes",
      export: "the key export",
      exportNOT: "no prefix",
      "dotted.key-name": "ok",
      YAML: "style"
    })
  })

  it("empty values, inline comments, and a '#' in an unquoted value", () => {
    assert.strictEqual(get("EMPTY=", "EMPTY"), "")
    assert.strictEqual(get("EMPTY=\nNEXT=1", "EMPTY"), "")
    assert.strictEqual(get("EMPTY=   # nothing", "EMPTY"), "")
    assert.strictEqual(get("EMPTY=''", "EMPTY"), "")
    assert.strictEqual(get("EMPTY=\"\"", "EMPTY"), "")
    assert.strictEqual(get("KEY=value # comment", "KEY"), "value")
    // dotenv ends an unquoted value at any '#': quote it to keep one.
    assert.strictEqual(get("KEY=abc#def", "KEY"), "abc")
    assert.strictEqual(get("KEY=\"abc#def\"", "KEY"), "abc#def")
    assert.strictEqual(get("KEY=a=b==", "KEY"), "a=b==")
  })

  it("quotes: single, double, backtick; spaces kept inside; inner quotes kept", () => {
    assert.strictEqual(get("S='  single  '", "S"), "  single  ")
    assert.strictEqual(get("D=\"  double  \"  # comment", "D"), "  double  ")
    assert.strictEqual(get("B=`back 'tick' \"s\"`", "B"), "back 'tick' \"s\"")
    assert.strictEqual(get("J={\"foo\": \"bar\"}", "J"), "{\"foo\": \"bar\"}")
    assert.strictEqual(get("Q=   'leading blanks before the quote'", "Q"), "leading blanks before the quote")
  })

  it("escapes: \\n and \\r in double quotes only; other backslashes stay", () => {
    assert.strictEqual(get("D=\"a\\nb\\rc\"", "D"), "a\nb\rc")
    assert.strictEqual(get("S='a\\nb'", "S"), "a\\nb")
    assert.strictEqual(get("U=a\\nb", "U"), "a\\nb")
    assert.strictEqual(get("D=\"say \\\"hi\\\"\"", "D"), "say \\\"hi\\\"")
    assert.strictEqual(get("D=\"tab\\t\"", "D"), "tab\\t")
  })

  it("values spanning lines in quotes (PEM keys)", () => {
    const pem = "-----BEGIN KEY-----\nMIIB\nabc=\n-----END KEY-----"
    assert.strictEqual(get(`KEY="${pem}"\nNEXT=1`, "KEY"), pem)
    assert.strictEqual(get(`KEY='${pem}'`, "KEY"), pem)
    assert.strictEqual(get(`KEY="${pem}"\nNEXT=1`, "NEXT"), "1")
  })

  it("CRLF and CR line ends; a byte-order mark", () => {
    assert.deepStrictEqual(Object.fromEntries(SecretRef.parseDotenv("A=1\r\nB=\"x\r\ny\"\r\nC=3\rD=4")), { A: "1", B: "x\ny", C: "3", D: "4" })
    assert.strictEqual(get("\uFEFFFIRST=1", "FIRST"), "1")
  })

  it("an unclosed or trailing-garbage quote is read as an unquoted value", () => {
    assert.strictEqual(get("KEY=\"abc\"def", "KEY"), "\"abc\"def")
    assert.strictEqual(get("KEY='abc\nNEXT=1", "KEY"), "'abc")
    assert.strictEqual(get("KEY='abc\nNEXT=1", "NEXT"), "1")
  })

  it("a backslash before the closing quote: the quote still closes when no other can", () => {
    assert.strictEqual(get("P='C:\\dir\\'\nNEXT=1", "P"), "C:\\dir\\")
    assert.strictEqual(get("P=\"a\\\"\nNEXT=1", "P"), "a\\")
    assert.strictEqual(get("P='it\\'s' # c", "P"), "it\\'s")
  })

  it("the last assignment of a key wins; nothing is expanded", () => {
    assert.strictEqual(get("K=1\nK=2", "K"), "2")
    assert.strictEqual(get("K=$HOME/${USER}", "K"), "$HOME/${USER}")
  })

  it("a key not set: the reason names the key, not the file's content", () => {
    const r = SecretRef.lookupDotenv("OTHER=hunter2-value\n# KEY=commented\n", "KEY")
    assert.isTrue(Either.isLeft(r))
    assert.strictEqual(Either.getLeft(r).pipe((o) => o._tag === "Some" ? o.value : ""), "no line sets KEY")
    assert.isTrue(Either.isLeft(SecretRef.lookupDotenv("key=lowercase", "KEY")), "keys are case-sensitive")
  })

  const plain = FastCheck.string({ unit: FastCheck.constantFrom(..."abcXYZ019 -_=+/.,:;!?@$%^&*()[]{}<>|~"), maxLength: 40 })
    .map((s) => s.trim())
    .filter((s) => !/^['"`]/.test(s))
  const anyButDoubleQuoteAndBackslash = FastCheck.string({ unit: FastCheck.constantFrom(..."abc 019#'`=\n\t:"), maxLength: 40 })
  // Not ending in a backslash: `'…\'` with a quote on a later line is that line's value too, as in dotenv.
  const anyButSingleQuote = FastCheck.string({ unit: FastCheck.constantFrom(..."abc 019#\"`=\n\t:\\"), maxLength: 40 })
    .filter((v) => !v.endsWith("\\"))

  it.prop(
    "what a writer puts in a file is what is read back, among comments and other keys",
    {
      entries: FastCheck.uniqueArray(
        FastCheck.tuple(
          FastCheck.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,10}$/),
          FastCheck.oneof(
            plain.map((v) => ({ value: v, written: v })),
            plain.map((v) => ({ value: v, written: `${v} # a comment` })),
            anyButDoubleQuoteAndBackslash.map((v) => ({ value: v, written: `"${v.replaceAll("\n", "\\n")}"` })),
            anyButDoubleQuoteAndBackslash.map((v) => ({ value: v, written: `"${v}"` })),
            anyButSingleQuote.map((v) => ({ value: v, written: `'${v}'` }))
          ),
          FastCheck.constantFrom("", "export ", "  "),
          FastCheck.constantFrom("=", " = ", "= "),
          FastCheck.constantFrom("\n", "\r\n", "\n\n# comment\n")
        ),
        { selector: ([k]) => k, maxLength: 6 }
      )
    },
    ({ entries }) => {
      const text = entries.map(([k, { written }, prefix, eq, end]) => `${prefix}${k}${eq}${written}${end}`).join("")
      for (const [k, { value }] of entries) assert.strictEqual(get(text, k), value, JSON.stringify(text))
    }
  )
})
