/**
 * Platforms ([I3]): `--platform os/arch[/variant]`, normalised and matched as containerd/platforms
 * does, so that `linux/aarch64` finds the manifest an index lists as `linux/arm64`.
 */
import * as Either from "effect/Either"
import type { Platform } from "./Manifest.js"

// containerd's specifier syntax; anything else cannot name an os, architecture or variant.
const specifier = /^[A-Za-z0-9_-]+$/

/** Reads `os/arch[/variant]` (e.g. `linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`), normalised. */
export const parse = (text: string): Either.Either<Platform, string> => {
  const parts = text.split("/")
  const invalid = (why: string) => Either.left(`invalid platform "${text}": ${why}`)
  if (parts.length < 2 || parts.length > 3) return invalid("expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7")
  const bad = parts.find((p) => !specifier.test(p))
  if (bad === "") return invalid("a part is empty; expected os/arch[/variant]")
  if (bad !== undefined) return invalid(`"${bad}" has invalid characters`)
  const [os = "", architecture = "", variant] = parts
  return Either.right(normalize(variant === undefined ? { os, architecture } : { os, architecture, variant }))
}

/** containerd's `NormalizeArch`, plus `i686`: the names toolchains use for the architectures OCI names. */
const normalizeArch = (arch: string, variant: string | undefined): readonly [string, string | undefined] => {
  switch (arch) {
    case "i386":
    case "i686":
      return ["386", undefined]
    case "x86_64":
    case "x86-64":
    case "amd64":
      return ["amd64", variant === "v1" ? undefined : variant]
    case "aarch64":
    case "arm64":
      // v8 is the baseline of arm64, so indexes usually omit it.
      return ["arm64", variant === "8" || variant === "v8" || variant === "v8.0" ? undefined : variant]
    case "armhf":
      return ["arm", "v7"]
    case "armel":
      return ["arm", "v6"]
    case "arm":
      // Plain 32-bit arm means v7, the variant nearly every image publishes.
      if (variant === undefined || variant === "7") return ["arm", "v7"]
      return ["arm", /^[568]$/.test(variant) ? `v${variant}` : variant]
    default:
      return [arch, variant]
  }
}

/** Lower-case os and architecture, aliases folded; `os.version` and `os.features` are kept. */
export const normalize = (p: Platform): Platform => {
  const { variant: _variant, ...rest } = p
  const given = p.variant === undefined || p.variant === "" ? undefined : p.variant.toLowerCase()
  const [architecture, variant] = normalizeArch(p.architecture.toLowerCase(), given)
  const base = { ...rest, os: p.os.toLowerCase(), architecture }
  return variant === undefined ? base : { ...base, variant }
}

/**
 * Whether `candidate` serves `wanted` ([I3]): os and architecture equal; variant and os.version
 * only when `wanted` names them; `wanted`'s os.features a subset of the candidate's.
 */
export const matches = (wanted: Platform, candidate: Platform): boolean => {
  const w = normalize(wanted)
  const c = normalize(candidate)
  return w.os === c.os &&
    w.architecture === c.architecture &&
    (w.variant === undefined || w.variant === c.variant) &&
    (w["os.version"] === undefined || w["os.version"] === c["os.version"]) &&
    (w["os.features"] ?? []).every((f) => c["os.features"]?.includes(f) ?? false)
}

/** The first descriptor whose platform matches; descriptors without a platform never do. */
export const select = <D extends { readonly platform?: Platform | undefined }>(
  wanted: Platform,
  descriptors: ReadonlyArray<D>
): D | undefined => descriptors.find((d) => d.platform !== undefined && matches(wanted, d.platform))

/** `os/arch[/variant]`, as `--platform` takes it. */
export const format = (p: Platform): string =>
  p.variant === undefined || p.variant === "" ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`
