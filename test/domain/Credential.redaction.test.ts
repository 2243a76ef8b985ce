/**
 * Redaction of credentials in use (issue 15, item 5; SPEC §5 "Nothing secret is ever printed"):
 * every form a server could echo (the password, `user:password`, its base64, tokens) becomes
 * `<redacted>`; errors keep their class and `_tag` (so exit codes hold) with the secret gone from
 * message, fields and stack.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as Redacted from "effect/Redacted"
import * as Credential from "../../src/domain/Credential.js"
import { RegistryDenied, RegistryUnavailable } from "../../src/domain/Errors.js"
import * as Arb from "../support/arbitraries.js"

const credential = (username: string, password: string, identityToken?: string): Credential.Credential => ({
  _tag: "Credential",
  username,
  password: Redacted.make(password),
  identityToken: identityToken === undefined ? undefined : Redacted.make(identityToken),
  source: { file: "/auth.json", key: "r.example" }
})

/** Passwords long enough to be redacted wherever they stand, and not part of the replacement itself. */
const longPassword = Arb.password.filter((p) => p.length >= 6 && !Credential.redactedText.includes(p) && p.trim() === p)

describe("Credential redaction", () => {
  it.prop(
    "[E5] every echoed form of a credential is redacted, wherever it stands in a text",
    { user: Arb.username, password: longPassword, before: FastCheck.string(), after: FastCheck.string() },
    ({ after, before, password, user }) => {
      const redactor = Credential.makeRedactor()
      redactor.addCredential(credential(user, password))
      const pair = `${user}:${password}`
      for (const form of [password, pair, Buffer.from(pair).toString("base64"), encodeURIComponent(password), JSON.stringify(password).slice(1, -1)]) {
        const out = redactor.redact(`${before}${form}${after}`)
        assert.notInclude(out, password)
        assert.notInclude(out, Buffer.from(pair).toString("base64"))
        assert.include(out, Credential.redactedText)
      }
    }
  )

  it("[E5] tokens and identity tokens are redacted; the user name alone is not a secret", () => {
    const redactor = Credential.makeRedactor()
    redactor.addCredential(credential("alice", "", "refresh-Tok-7777"))
    redactor.add("bearer-Tok-1234", Redacted.make("other-Tok-5678"), undefined, "")
    assert.strictEqual(
      redactor.redact("alice sent refresh-Tok-7777, got bearer-Tok-1234 and other-Tok-5678"),
      "alice sent <redacted>, got <redacted> and <redacted>"
    )
  })

  it("[E5] a short password is redacted where it stands alone, not inside other words", () => {
    const redactor = Credential.makeRedactor()
    redactor.addCredential(credential("me", "pw"))
    assert.strictEqual(redactor.redact(`wrong password "pw" for upward me:pw`), `wrong password "<redacted>" for upward <redacted>`)
  })

  it("[C11] the password's NUL padding does not hide it: trimmed and untrimmed forms are both redacted", () => {
    const redactor = Credential.makeRedactor()
    redactor.addCredential(credential("me", "padded-Pw-1\0\0"))
    assert.strictEqual(redactor.redact("got padded-Pw-1"), "got <redacted>")
    assert.strictEqual(redactor.redact(Buffer.from("me:padded-Pw-1").toString("base64")), "<redacted>")
  })

  it("nothing known, nothing changed", () => {
    const redactor = Credential.makeRedactor()
    redactor.addCredential(Credential.anonymous)
    assert.isTrue(redactor.isEmpty())
    assert.strictEqual(redactor.redact("anything at all"), "anything at all")
  })

  it("[E5] a redacted error keeps its class and _tag, loses the secret from message, fields and stack", () => {
    const redactor = Credential.makeRedactor()
    redactor.add("hunter2-Secret")
    const redact = Credential.redactError(redactor.redact)
    const error = RegistryUnavailable.of("r.example", "it said hunter2-Secret")
    const clean = redact(error)
    assert.instanceOf(clean, RegistryUnavailable)
    assert.strictEqual(clean._tag, "RegistryUnavailable")
    assert.strictEqual(clean.message, "registry r.example is unavailable: it said <redacted>")
    assert.strictEqual(clean.reason, "it said <redacted>")
    assert.notInclude(clean.stack ?? "", "hunter2")
    assert.notInclude(JSON.stringify(clean), "hunter2")
    const untouched = new RegistryDenied({ registry: "r", action: "pull", message: "no secret here" })
    assert.strictEqual(redact(untouched), untouched)
  })
})
