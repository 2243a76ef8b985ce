/**
 * The CLI's HttpClient: undici, with a dispatcher built from TlsPolicy ([P1]): per host, the
 * default trust store (system CAs and NODE_EXTRA_CA_CERTS) plus the host's certs.d CAs, and no
 * verification for hosts opened with `--insecure`. undici has no per-request TLS options, so
 * the choice is made in its connect hook, once per host.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createSecureContext } from "node:tls"
import { Agent, buildConnector } from "undici"
import { TlsPolicy } from "../registry/TlsPolicy.js"

const dispatcher = Layer.scoped(
  NodeHttpClient.Dispatcher,
  Effect.gen(function*() {
    const policy = yield* TlsPolicy
    const connectors = new Map<string, buildConnector.connector>()
    const connectorFor = (host: string) => {
      const key = `${host}\n${policy.isInsecure(host)}`
      let connector = connectors.get(key)
      if (connector === undefined) {
        const extra = policy.caFor(host)
        const secureContext = extra === undefined ? undefined : createSecureContext()
        for (const pem of extra ?? []) secureContext?.context.addCACert(pem)
        connector = buildConnector({
          ...(secureContext === undefined ? {} : { secureContext }),
          rejectUnauthorized: !policy.isInsecure(host)
        })
        connectors.set(key, connector)
      }
      return connector
    }
    const agent = new Agent({
      connect: (options, callback) => {
        const host = options.port ? `${options.hostname}:${options.port}` : options.hostname
        connectorFor(host)(options, callback)
      }
    })
    // Not awaited: undici finishes closing on a timer tick, and the process exits right after.
    yield* Effect.addFinalizer(() => Effect.sync(() => void agent.destroy()))
    return agent
  })
)

/** Needs TlsPolicy. */
export const layer = NodeHttpClient.layerUndiciWithoutDispatcher.pipe(Layer.provide(dispatcher))
