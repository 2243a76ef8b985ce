/**
 * Whom to trust over TLS ([P1]): the system's CAs and `NODE_EXTRA_CA_CERTS` (Node's own
 * default), plus `~/.microagent/certs.d/<host[:port]>/*.crt` for a private registry, so its CA
 * needs no global change; and which hosts `--insecure` opened up for this run.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Home from "../Home.js"

export interface TlsPolicyService {
  /** The certs.d folder read at start-up. */
  readonly certsDir: string
  /** Extra CA certificates (PEM) for a `host[:port]`, if its certs.d folder holds any. */
  readonly caFor: (host: string) => ReadonlyArray<string> | undefined
  /** Whether `--insecure` named this `host[:port]`: http fallback and unverified certificates. */
  readonly isInsecure: (host: string) => boolean
  readonly allowInsecure: (host: string) => Effect.Effect<void>
}

export class TlsPolicy extends Context.Tag("microagent/TlsPolicy")<TlsPolicy, TlsPolicyService>() {}

export const make = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const home = yield* Home.home
  const certsDir = path.join(home, ".microagent", "certs.d")
  // Read once: the TLS connect hook that consults it is synchronous.
  const hosts = yield* fs.readDirectory(certsDir).pipe(Effect.orElseSucceed((): Array<string> => []))
  const cas = new Map<string, ReadonlyArray<string>>()
  for (const host of hosts) {
    const files = yield* fs.readDirectory(path.join(certsDir, host)).pipe(Effect.orElseSucceed((): Array<string> => []))
    const pems = yield* Effect.forEach(files.filter((f) => f.endsWith(".crt")).sort(), (f) => {
      const file = path.join(certsDir, host, f)
      return fs.readFileString(file).pipe(
        Effect.orElseSucceed(() => ""),
        // A file that cannot help is said once, by name, rather than left to fail TLS unexplained.
        Effect.tap((text) =>
          text.includes("-----BEGIN CERTIFICATE-----")
            ? Effect.void
            : Effect.logWarning(`${file} holds no PEM certificate; it is ignored`)),
        Effect.map((text) => text.includes("-----BEGIN CERTIFICATE-----") ? text : "")
      )
    })
    if (pems.some((p) => p !== "")) cas.set(host.toLowerCase(), pems.filter((p) => p !== ""))
  }
  return fromCas(certsDir, cas)
})

const fromCas = (certsDir: string, cas: ReadonlyMap<string, ReadonlyArray<string>>) => {
  const insecure = new Set<string>()
  return TlsPolicy.of({
    certsDir,
    caFor: (host) => cas.get(host.toLowerCase()),
    isInsecure: (host) => insecure.has(host.toLowerCase()),
    allowInsecure: (host) => Effect.sync(() => void insecure.add(host.toLowerCase()))
  })
}

/** Needs FileSystem, Path and `HOME`. */
export const layer = Layer.effect(TlsPolicy, make)

/** A policy with no extra CAs, for programs that bring their own TLS set-up. */
export const layerDefault = Layer.sync(TlsPolicy, () => fromCas("", new Map()))

/** Certificate verification failures: the server speaks TLS, so falling back to http is wrong. */
export const isVerificationFailure = (code: string | undefined): boolean =>
  code !== undefined && /CERT|SIGNATURE|ISSUER|SELF_SIGNED|ALTNAME|VERIFY/.test(code)
