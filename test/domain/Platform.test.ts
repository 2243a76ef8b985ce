import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import type { Platform as PlatformType } from "../../src/domain/Manifest.js"
import * as Platform from "../../src/domain/Platform.js"
import * as Arb from "../support/referenceArbitraries.js"

const parse = (text: string) => Either.getOrThrow(Platform.parse(text))
const descriptor = FastCheck.record({ digest: FastCheck.nat().map((n) => `d${n}`), platform: FastCheck.option(Arb.platform, { nil: undefined }) })

describe("Platform", () => {
  it("[I3] normalisation table", () => {
    const table: ReadonlyArray<readonly [string, string]> = [
      ["linux/amd64", "linux/amd64"],
      ["linux/x86_64", "linux/amd64"],
      ["linux/x86-64", "linux/amd64"],
      ["linux/amd64/v1", "linux/amd64"],
      ["linux/amd64/v3", "linux/amd64/v3"],
      ["linux/aarch64", "linux/arm64"],
      ["linux/arm64/v8", "linux/arm64"],
      ["linux/aarch64/v8", "linux/arm64"],
      ["linux/arm64/8", "linux/arm64"],
      ["linux/arm64/v9", "linux/arm64/v9"],
      ["linux/arm", "linux/arm/v7"],
      ["linux/arm/7", "linux/arm/v7"],
      ["linux/arm/6", "linux/arm/v6"],
      ["linux/arm/v5", "linux/arm/v5"],
      ["linux/armhf", "linux/arm/v7"],
      ["linux/armel", "linux/arm/v6"],
      ["linux/i386", "linux/386"],
      ["linux/i686", "linux/386"],
      ["Linux/AMD64", "linux/amd64"],
      ["windows/amd64", "windows/amd64"],
      ["linux/ppc64le", "linux/ppc64le"]
    ]
    for (const [text, expected] of table) assert.strictEqual(Platform.format(parse(text)), expected, text)
  })

  it("[I3] normalize keeps os.version and os.features and never writes an undefined variant", () => {
    const p = Platform.normalize({ os: "Windows", architecture: "x86_64", "os.version": "10.0.17763.1", "os.features": ["win32k"] })
    assert.deepStrictEqual(p, { os: "windows", architecture: "amd64", "os.version": "10.0.17763.1", "os.features": ["win32k"] })
    assert.isFalse("variant" in Platform.normalize({ os: "linux", architecture: "arm64", variant: "v8" }))
  })

  it("[I3] a malformed platform is refused with what is wrong with it", () => {
    const table: ReadonlyArray<readonly [string, string]> = [
      ["", "expected os/arch[/variant]"],
      ["linux", "expected os/arch[/variant]"],
      ["linux/arm/v7/x", "expected os/arch[/variant]"],
      ["linux/", "a part is empty"],
      ["/amd64", "a part is empty"],
      ["linux/amd 64", `"amd 64" has invalid characters`],
      ["linux/arm/v7.1", `"v7.1" has invalid characters`]
    ]
    for (const [text, why] of table) {
      const result = Platform.parse(text)
      assert.isTrue(Either.isLeft(result), text)
      assert.include(Either.isLeft(result) ? result.left : "", why, text)
    }
  })

  it.prop("[I3] normalize is idempotent and format/parse round-trips a normalised platform", { p: Arb.platform }, ({ p }) => {
    const n = Platform.normalize(p)
    assert.deepStrictEqual(Platform.normalize(n), n)
    assert.deepStrictEqual(parse(Platform.format(n)), n)
  })

  it.prop("[I3] matches is reflexive, also between a platform and its normalised form", { p: Arb.platform }, ({ p }) => {
    assert.isTrue(Platform.matches(p, p))
    assert.isTrue(Platform.matches(p, Platform.normalize(p)))
    assert.isTrue(Platform.matches(Platform.normalize(p), p))
  })

  it.prop("[I3] os and architecture must be equal after normalisation", { wanted: Arb.platform, candidate: Arb.platform }, ({ wanted, candidate }) => {
    const w = Platform.normalize(wanted)
    const c = Platform.normalize(candidate)
    if (w.os !== c.os || w.architecture !== c.architecture) assert.isFalse(Platform.matches(wanted, candidate))
  })

  it.prop("[I3] the variant counts only when the wanted platform names one", { wanted: Arb.platform, candidate: Arb.platform }, ({ wanted, candidate }) => {
    const w = Platform.normalize(wanted)
    const c = Platform.normalize(candidate)
    const expected = w.os === c.os && w.architecture === c.architecture && (w.variant === undefined || w.variant === c.variant)
    assert.strictEqual(Platform.matches(wanted, candidate), expected)
  })

  it.prop("[I3] without a requested variant any variant of the same os/arch matches (arm aside: plain arm means v7)", { os: Arb.os, arch: FastCheck.constantFrom("amd64", "x86_64", "arm64", "aarch64", "ppc64le"), variant: Arb.variant }, ({ os, arch, variant }) => {
    assert.isTrue(Platform.matches({ os, architecture: arch }, { os, architecture: arch, variant }))
  })

  it("[I3] arm64 v8 is the same as no variant, in either direction", () => {
    for (const [a, b] of [["linux/arm64/v8", "linux/arm64"], ["linux/aarch64", "linux/arm64/v8"], ["linux/arm64", "linux/aarch64/v8"]] as const) {
      const [pa, pb] = [{ os: "linux", architecture: a.split("/")[1]!, ...variantOf(a) }, { os: "linux", architecture: b.split("/")[1]!, ...variantOf(b) }]
      assert.isTrue(Platform.matches(pa, pb), `${a} ~ ${b}`)
      assert.isTrue(Platform.matches(pb, pa), `${b} ~ ${a}`)
    }
    assert.isFalse(Platform.matches(parse("linux/arm64/v9"), { os: "linux", architecture: "arm64", variant: "v8" }))
  })

  it("[I3] arm variants are exact once asked for; plain arm asks for v7", () => {
    const arm = (variant?: string): PlatformType => variant === undefined ? { os: "linux", architecture: "arm" } : { os: "linux", architecture: "arm", variant }
    assert.isTrue(Platform.matches(arm(), arm("v7")))
    assert.isTrue(Platform.matches(arm("v7"), arm()))
    assert.isFalse(Platform.matches(arm(), arm("v6")))
    assert.isFalse(Platform.matches(arm("v6"), arm("v7")))
    assert.isTrue(Platform.matches({ os: "linux", architecture: "armhf" }, arm("v7")))
    assert.isFalse(Platform.matches({ os: "linux", architecture: "arm" }, { os: "linux", architecture: "arm64" }))
  })

  it("[I3] os.version only when asked; asked-for os.features must be a subset", () => {
    const win = { os: "windows", architecture: "amd64", "os.version": "10.0.20348.2113", "os.features": ["win32k"] }
    assert.isTrue(Platform.matches({ os: "windows", architecture: "amd64" }, win))
    assert.isTrue(Platform.matches({ os: "windows", architecture: "amd64", "os.version": "10.0.20348.2113" }, win))
    assert.isFalse(Platform.matches({ os: "windows", architecture: "amd64", "os.version": "10.0.17763.1" }, win))
    assert.isTrue(Platform.matches({ os: "windows", architecture: "amd64", "os.features": ["win32k"] }, win))
    assert.isFalse(Platform.matches({ os: "windows", architecture: "amd64", "os.features": ["win32k", "x"] }, win))
  })

  it.prop("[I3] select returns the first matching descriptor, skipping those without a platform", { wanted: Arb.platform, descriptors: FastCheck.array(descriptor, { maxLength: 8 }) }, ({ wanted, descriptors }) => {
    const picked = Platform.select(wanted, descriptors)
    const index = descriptors.findIndex((d) => d.platform !== undefined && Platform.matches(wanted, d.platform))
    assert.strictEqual(picked, index < 0 ? undefined : descriptors[index])
    descriptors.slice(0, Math.max(index, 0)).forEach((d) => assert.isFalse(d.platform !== undefined && Platform.matches(wanted, d.platform)))
  })

  it("[I3] select on an index as Docker Hub serves it", () => {
    const index = [
      { digest: "amd64", platform: { os: "linux", architecture: "amd64" } },
      { digest: "armv6", platform: { os: "linux", architecture: "arm", variant: "v6" } },
      { digest: "armv7", platform: { os: "linux", architecture: "arm", variant: "v7" } },
      { digest: "arm64", platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      { digest: "attestation", platform: { os: "unknown", architecture: "unknown" } },
      { digest: "no-platform" }
    ]
    const pick = (text: string) => Platform.select(parse(text), index)?.digest
    assert.strictEqual(pick("linux/x86_64"), "amd64")
    assert.strictEqual(pick("linux/aarch64"), "arm64")
    assert.strictEqual(pick("linux/arm64"), "arm64")
    assert.strictEqual(pick("linux/arm"), "armv7")
    assert.strictEqual(pick("linux/arm/v6"), "armv6")
    assert.strictEqual(pick("linux/armel"), "armv6")
    assert.strictEqual(pick("linux/s390x"), undefined)
    assert.strictEqual(pick("windows/amd64"), undefined)
  })
})

const variantOf = (text: string): { variant?: string } => {
  const v = text.split("/")[2]
  return v === undefined ? {} : { variant: v }
}
