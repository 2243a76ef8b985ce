/**
 * `--insecure`, shared by every command that talks to a registry ([P1]).
 */
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Endpoint from "../registry/Endpoint.js"
import { TlsPolicy } from "../registry/TlsPolicy.js"

export const insecureOption = Options.boolean("insecure").pipe(
  Options.withDescription("Allow plain http and unverified certificates for this registry (with a warning), e.g. for a test registry with a self-signed certificate")
)

/** Opens `registry` up for the rest of the run when the flag was given. */
export const allowInsecure = (enabled: boolean, registry: string) =>
  enabled
    ? Effect.gen(function*() {
      yield* (yield* TlsPolicy).allowInsecure(Endpoint.apiHost(registry))
      yield* Effect.logWarning(`--insecure: ${registry} may be reached over plain http or with an unverified certificate`)
    })
    : Effect.void
