/**
 * The arguments several commands share, as a user reads their errors.
 */
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import { platform } from "../../src/cli/args.js"

describe("a bad --platform", () => {
  it("is said once, with examples once (issue 13)", async () => {
    const bare = await Effect.runPromise(Effect.flip(platform("linux")))
    expect(bare.message).toBe('invalid --platform "linux": expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7')
    expect(bare.hint).toBeUndefined()
    const chars = await Effect.runPromise(Effect.flip(platform("lin ux/amd64")))
    expect(chars.message).toBe('invalid --platform "lin ux/amd64": "lin ux" has invalid characters')
    expect(chars.hint).toBe("e.g. linux/amd64, linux/arm64, linux/arm/v7")
  })
})
