/**
 * A hostile auth file (issue 15, item 11): a document nested 100 000 levels deep is refused as
 * unusable ([C9], exit 3 as AuthFileError), instead of overflowing the stack when it is written
 * back; ordinary nesting in unknown fields is kept.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as AuthFile from "../../src/domain/AuthFile.js"

const deep = (levels: number, open = "[", close = "]") => `${open.repeat(levels)}${close.repeat(levels)}`

describe("AuthFile nesting", () => {
  for (const [name, text] of [
    ["an unknown top-level field", `{"auths":{},"x":${deep(100_000)}}`],
    ["an unknown field of an entry", `{"auths":{"r.example":{"auth":"YTpi","x":${deep(100_000)}}}}`],
    ["objects", `{"auths":{},"x":${`{"a":`.repeat(100_000)}1${"}".repeat(100_000)}}`]
  ] as const) {
    it(`[C9] ${name} nested 100 000 levels deep is a reason, not a stack overflow`, () => {
      const parsed = AuthFile.parse("/auth.json", text)
      assert.isTrue(Either.isLeft(parsed))
      if (Either.isLeft(parsed)) assert.include(parsed.left, `deeper than ${AuthFile.maxDepth} levels`)
    })
  }

  it("[C3] nesting up to the limit is read and written back unchanged; brackets in strings do not count", () => {
    const text = `{"auths":{"r.example":{"auth":"YTpi"}},"x":${deep(AuthFile.maxDepth - 1)},"s":"${"[".repeat(500)}\\"{{"}`
    const parsed = Either.getOrThrow(AuthFile.parse("/auth.json", text))
    assert.deepStrictEqual(JSON.parse(AuthFile.serialize(parsed.document)), JSON.parse(text))
    assert.strictEqual(parsed.entries.length, 1)
  })
})
