import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as Challenge from "../../src/domain/Challenge.js"

const scheme = FastCheck.constantFrom("Bearer", "Basic", "bearer", "Digest", "X-Custom")
const name = FastCheck.stringMatching(/^[a-z][a-z_]{0,8}$/)
/** Values as registries send them: realms with paths, scopes with commas and spaces, quotes. */
const value = FastCheck.string({ unit: FastCheck.constantFrom(..."ab:/?=, \"\\.-_pullpush"), maxLength: 30 })
const challenge = FastCheck.record({
  scheme,
  params: FastCheck.dictionary(name, value, { maxKeys: 4 })
}).map((c) => ({ scheme: c.scheme.toLowerCase(), params: c.params }))

describe("Challenge", () => {
  it.prop("[P2] parses any number of generated challenges per header line, quoted values intact", { challenges: FastCheck.array(challenge, { minLength: 1, maxLength: 3 }), sep: FastCheck.constantFrom(", ", ",", " , ") }, ({ challenges, sep }) => {
    const header = challenges.map(Challenge.format).join(sep)
    assert.deepStrictEqual(Challenge.parse(header), challenges)
  })

  it.prop("[P2] challenges split over several header lines parse like one line", { challenges: FastCheck.array(challenge, { minLength: 1, maxLength: 3 }) }, ({ challenges }) => {
    assert.deepStrictEqual(Challenge.parse(challenges.map(Challenge.format)), challenges)
  })

  it("[P2] reads a real distribution challenge and prefers Bearer over Basic", () => {
    const header = `Basic realm="GitHub Package Registry", Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push repository:team/base:pull",error="insufficient_scope"`
    const picked = Challenge.preferred(Challenge.parse(header))
    assert.deepStrictEqual(picked, {
      scheme: "bearer",
      params: {
        realm: "https://auth.example.com/token",
        service: "registry.example.com",
        scope: "repository:team/app:pull,push repository:team/base:pull",
        error: "insufficient_scope"
      }
    })
  })

  it("[P2] unquoted tokens and odd spacing", () => {
    assert.deepStrictEqual(Challenge.parse(`Bearer realm = /token , service=reg`), [{ scheme: "bearer", params: { realm: "/token", service: "reg" } }])
    assert.deepStrictEqual(Challenge.parse(`Basic`), [{ scheme: "basic", params: {} }])
    assert.isUndefined(Challenge.preferred(Challenge.parse(`Negotiate`)))
  })
})
