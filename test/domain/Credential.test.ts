import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Credential from "../../src/domain/Credential.js"
import * as Arb from "../support/arbitraries.js"

describe("Credential auth codec", () => {
  it.prop("[C1] [C11] encode/decode round-trips any user without ':' and any password", { user: Arb.username, password: Arb.password }, ({ password, user }) => {
    const decoded = Either.getOrThrow(Credential.decodeAuth(Credential.encodeAuth(user, Redacted.make(password))))
    assert.strictEqual(decoded.username, user)
    assert.strictEqual(Redacted.value(decoded.password), password)
  })

  it("[C11] splits at the first ':' and trims NUL padding from the password", () => {
    const auth = Buffer.from("me:\0\0pa:ss\0", "utf8").toString("base64")
    const decoded = Either.getOrThrow(Credential.decodeAuth(auth))
    assert.strictEqual(decoded.username, "me")
    assert.strictEqual(Redacted.value(decoded.password), "pa:ss")
  })

  it("[C9] refuses values that are not padded base64 or hold no ':', without echoing them", () => {
    for (const bad of ["not base64!", "dXNlcg", Buffer.from("userpass").toString("base64")]) {
      const result = Credential.decodeAuth(bad)
      assert.isTrue(Either.isLeft(result), bad)
      if (Either.isLeft(result)) assert.notInclude(result.left, bad)
    }
  })

  it("a decoded password never shows in logs or string conversions", () => {
    const decoded = Either.getOrThrow(Credential.decodeAuth(Credential.encodeAuth("me", Redacted.make("hunter2"))))
    assert.notInclude(String(decoded.password), "hunter2")
    assert.notInclude(JSON.stringify(decoded), "hunter2")
  })
})
