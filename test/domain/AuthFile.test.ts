import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as AuthFile from "../../src/domain/AuthFile.js"
import * as AuthKey from "../../src/domain/AuthKey.js"
import * as Credential from "../../src/domain/Credential.js"
import * as Arb from "../support/arbitraries.js"

const parse = (document: unknown) => Either.getOrThrow(AuthFile.parse("/auth.json", JSON.stringify(document)))
const auth = (user: string, password = "pw") => Credential.encodeAuth(user, Redacted.make(password))
/** A user name that tells which key it was stored under (user names cannot hold ':'). */
const userFor = (key: string) => key.replaceAll(":", "_")
const userOf = (file: AuthFile.AuthFile, image: string) =>
  Option.map(AuthFile.lookup(file, Either.getOrThrow(AuthKey.parse(image)).key), (e) => e.state._tag === "Valid" ? e.state.username : e.state._tag)

/** JSON values without integer-like keys, whose order JavaScript objects do not keep. */
const json = FastCheck.jsonValue()
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown) // as a file holds it: no -0
  .filter((v) => !JSON.stringify(v).match(/"\d+":/))
const field = FastCheck.string({ minLength: 1, maxLength: 8 }).filter((k) => !/^\d+$/.test(k) && k !== "__proto__")
const unknownFields = (exclude: ReadonlyArray<string>) =>
  FastCheck.dictionary(field.filter((k) => !exclude.includes(k)), json, { maxKeys: 4 })

describe("AuthFile", () => {
  it.prop(
    "[C3] rewriting keeps every unknown field, other entry and key order",
    {
      top: unknownFields(["auths"]),
      entryExtra: unknownFields(["auth", "identitytoken"]),
      others: FastCheck.uniqueArray(Arb.key, { maxLength: 4 }),
      key: Arb.key,
      user: Arb.username,
      password: Arb.password
    },
    ({ entryExtra, key, others, password, top, user }) => {
      const otherKeys = others.filter((k) => k !== key)
      const auths = Object.fromEntries([...otherKeys.map((k) => [k, { auth: auth("o"), note: k }]), [key, { ...entryExtra, auth: auth("old") }]])
      const before = { ...top, auths }
      const after = AuthFile.upsert(parse(before), key, user, Redacted.make(password)) as typeof before
      assert.deepStrictEqual(Object.keys(after), Object.keys(before))
      for (const k of Object.keys(top)) assert.deepStrictEqual(after[k as keyof typeof after], before[k as keyof typeof before])
      assert.deepStrictEqual(Object.keys(after.auths), Object.keys(auths))
      for (const k of otherKeys) assert.deepStrictEqual(after.auths[k], auths[k])
      assert.deepStrictEqual({ ...after.auths[key], auth: "" }, { ...entryExtra, auth: "" })
      const stored = Either.getOrThrow(Credential.decodeAuth((after.auths[key] as { auth: string }).auth))
      assert.strictEqual(stored.username, user)
      assert.strictEqual(Redacted.value(stored.password), password)

      const removed = AuthFile.remove(parse(after), key)
      assert.strictEqual(removed.removed, 1)
      assert.deepStrictEqual(removed.document, { ...before, auths: Object.fromEntries(otherKeys.map((k) => [k, auths[k]])) })
    }
  )

  it("[C11] login drops a stale identitytoken, which would otherwise win over the new password", () => {
    const file = parse({ auths: { "ghcr.io": { auth: auth("me", ""), identitytoken: "refresh", email: "a@b" } } })
    const after = AuthFile.upsert(file, "ghcr.io", "me", Redacted.make("new")) as { auths: Record<string, object> }
    assert.deepStrictEqual(Object.keys(after.auths["ghcr.io"]!).sort(), ["auth", "email"])
  })

  it("[C6] upsert renames the best alias in place and keeps its fields", () => {
    const file = parse({ auths: { a: { auth: auth("a") }, "https://index.docker.io/v1/": { auth: auth("old"), x: 1 }, z: { auth: auth("z") } } })
    const after = AuthFile.upsert(file, "docker.io", "new", Redacted.make("pw")) as { auths: Record<string, { x?: number }> }
    assert.deepStrictEqual(Object.keys(after.auths), ["a", "docker.io", "z"])
    assert.strictEqual(after.auths["docker.io"]!.x, 1)
  })

  it.prop(
    "[C6] Docker Hub aliases are one identity with a fixed precedence, whatever the file order",
    { present: FastCheck.shuffledSubarray(["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"], { minLength: 1 }) },
    ({ present }) => {
      const file = parse({ auths: Object.fromEntries(present.map((k) => [k, { auth: auth(userFor(k)) }])) })
      const expected = ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"].find((k) => present.includes(k))
      assert.deepStrictEqual(userOf(file, "docker.io/library/alpine"), Option.some(userFor(expected!)))
      assert.deepStrictEqual(userOf(file, "index.docker.io/library/alpine"), Option.some(userFor(expected!)))
      assert.strictEqual(AuthFile.remove(file, "docker.io").removed, present.length)
    }
  )

  it.prop(
    "[C7] the most specific key wins, on whole segments only",
    { host: Arb.host, path: FastCheck.array(Arb.segment, { minLength: 1, maxLength: 4 }), depths: FastCheck.uniqueArray(FastCheck.nat(4), { minLength: 1 }) },
    ({ depths, host, path }) => {
      const keys = depths.filter((d) => d <= path.length).map((d) => [host, ...path.slice(0, d)].join("/"))
      const file = parse({ auths: Object.fromEntries(keys.map((k) => [k, { auth: auth(userFor(k)) }])) })
      const deepest = Math.max(...depths.filter((d) => d <= path.length))
      const expected = keys.length === 0 ? Option.none() : Option.some(userFor([host, ...path.slice(0, deepest)].join("/")))
      assert.deepStrictEqual(userOf(file, [host, ...path].join("/")), expected)
      // `host/team` never matches `host/teammate`
      const sibling = [host, `${path[0]}x`, ...path.slice(1)].join("/")
      assert.deepStrictEqual(userOf(file, sibling), keys.includes(host) ? Option.some(userFor(host)) : Option.none())
    }
  )

  it("[C10] an entry with neither auth nor identitytoken is no match", () => {
    const file = parse({ auths: { "ghcr.io/team": {}, "ghcr.io": { auth: auth("registry-wide") } } })
    assert.deepStrictEqual(userOf(file, "ghcr.io/team/app"), Option.some("registry-wide"))
  })

  it("[C9] an unusable `auth` is reported when it is the matching entry", () => {
    const file = parse({ auths: { "ghcr.io/team": { auth: "%%%" }, "ghcr.io": { auth: auth("me") } } })
    assert.deepStrictEqual(userOf(file, "ghcr.io/team/app"), Option.some("Invalid"))
    assert.deepStrictEqual(userOf(file, "ghcr.io/other"), Option.some("me"))
  })

  it("[C9] says where broken JSON broke and what is not an object", () => {
    const cases: ReadonlyArray<[string, RegExp]> = [
      ["{\n  \"auths\": {\n    \"a\": {},\n  }\n}", /line 4, column 3/],
      ["{\"auths\": {", /not valid JSON/],
      ["[]", /not a JSON object/],
      ["{\"auths\": []}", /"auths" is not an object/],
      ["{\"auths\": \"x\"}", /"auths" is not an object/]
    ]
    for (const [text, reason] of cases) {
      const result = AuthFile.parse("/auth.json", text)
      assert.isTrue(Either.isLeft(result), text)
      if (Either.isLeft(result)) assert.match(result.left, reason)
    }
    assert.strictEqual(Either.getOrThrow(AuthFile.parse("/auth.json", " \n\t")).entries.length, 0)
  })
})
