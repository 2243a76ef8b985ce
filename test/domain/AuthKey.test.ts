import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as AuthKey from "../../src/domain/AuthKey.js"
import * as Arb from "../support/arbitraries.js"

const normalize = (raw: string) => Either.getOrThrow(AuthKey.normalize(raw))

describe("AuthKey", () => {
  it.prop("[C5] a key and its legacy forms normalise alike", { pair: Arb.key.chain((k) => Arb.legacyForm(k).map((l) => [k, l] as const)) }, ({ pair: [key, legacy] }) => {
    assert.strictEqual(normalize(legacy), key)
  })

  it("[C5] a namespace named v1 or v2 is a namespace; only `/v1/`, or `/v1` in a URL, is a legacy suffix", () => {
    assert.strictEqual(normalize("ghcr.io/v1"), "ghcr.io/v1")
    assert.strictEqual(normalize("ghcr.io/team/v2"), "ghcr.io/team/v2")
    assert.strictEqual(normalize("ghcr.io/v1/"), "ghcr.io")
    assert.strictEqual(normalize("https://ghcr.io/v1"), "ghcr.io")
  })

  it.prop("[C5] host names compare case-insensitively, ports are significant", { host: Arb.hostname, port: FastCheck.integer({ min: 1, max: 65535 }) }, ({ host, port }) => {
    assert.strictEqual(normalize(host.toUpperCase()), host)
    assert.notStrictEqual(normalize(`${host}:${port}`), normalize(host))
  })

  it.prop("[C6] every Docker Hub alias is docker.io", { alias: FastCheck.constantFrom("docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/", "http://docker.io", "Index.Docker.IO"), path: Arb.path }, ({ alias, path }) => {
    const [base, ...rest] = alias.replace(/\/v1\/$/, "").split("/")
    const written = [base, ...rest, ...path].join("/")
    assert.strictEqual(normalize(written), ["docker.io", ...path].join("/"))
  })

  it("[C6] alias precedence: docker.io, index.docker.io, registry-1.docker.io, then URL forms", () => {
    const ranks = ["docker.io", "index.docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"].map((k) =>
      Either.getOrThrow(AuthKey.parse(k)).rank
    )
    assert.deepStrictEqual([...ranks].sort((a, b) => a - b), ranks)
    assert.strictEqual(new Set(ranks).size, ranks.length)
  })

  it.prop("[C7] lookup order is the image, then each shorter namespace on whole segments, then the host", { host: Arb.host, path: Arb.path }, ({ host, path }) => {
    const order = AuthKey.lookupOrder({ host, path })
    assert.strictEqual(order.length, path.length + 1)
    assert.strictEqual(order[0], [host, ...path].join("/"))
    assert.strictEqual(order.at(-1), host)
    order.slice(1).forEach((k, i) => assert.isTrue(order[i]!.startsWith(`${k}/`)))
  })

  it("[L1] refuses what is not a key, saying why", () => {
    for (const [raw, why] of [["", "empty"], ["ghcr.io/app:1", "tag"], ["ghcr.io/app@sha256:00", "digest"], ["bad host/x", "host"], ["ghcr.io/Team", "path component"]] as const) {
      const result = AuthKey.parse(raw)
      assert.isTrue(Either.isLeft(result), raw)
      assert.include(Either.isLeft(result) ? result.left : "", why)
    }
  })

  it("[C5] hosts follow distribution/reference's grammar: an IPv6 literal with a dotted IPv4 part is refused, its hex form kept", () => {
    const result = AuthKey.parse("[2001:db8::192.0.2.33]:5000/team")
    assert.isTrue(Either.isLeft(result))
    assert.include(Either.isLeft(result) ? result.left : "", "embedded IPv4 part (dotted) is not supported; write it in hex only, e.g. [2001:db8::c000:221]")
    assert.strictEqual(normalize("https://[2001:DB8::C000:221]:5000/v2/"), "[2001:db8::c000:221]:5000")
    assert.strictEqual(normalize("registry.local:050000"), "registry.local:050000")
  })
})
