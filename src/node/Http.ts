/**
 * The CLI's HttpClient: Node's own `http`/`https` with kept-alive agents, and an https agent
 * that applies TlsPolicy ([P1]) per host: the default trust store (system CAs and
 * NODE_EXTRA_CA_CERTS) plus the host's certs.d CAs, and no verification for hosts opened with
 * `--insecure`.
 *
 * Why not undici (the DESIGN's first choice): measured on a 1 GiB pull, undici alone peaks at
 * about 130 MiB resident against about 85 MiB for node:http, and costs ~20 MiB and ~90 ms just
 * to load; node:http also hands over its response as a Node stream that the blob download
 * reads without per-chunk Effect overhead (see registry/Body.ts and docs/performance.md), and
 * a push's file goes into the request as a Node stream the same way.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Http from "node:http"
import * as Https from "node:https"
import { createSecureContext, type SecureContext } from "node:tls"
import * as Body from "../registry/Body.js"
import { TlsPolicy, type TlsPolicyService } from "../registry/TlsPolicy.js"

type ConnectOptions = { host?: string | null; hostname?: string | null; port?: number | string | null } & Record<string, unknown>

const policyAgent = (policy: TlsPolicyService) => {
  const contexts = new Map<string, SecureContext>()
  const contextFor = (host: string) => {
    const extra = policy.caFor(host)
    if (extra === undefined) return undefined
    let context = contexts.get(host)
    if (context === undefined) {
      context = createSecureContext()
      for (const pem of extra) context.context.addCACert(pem)
      contexts.set(host, context)
    }
    return context
  }
  const agent = new Https.Agent({ keepAlive: true })
  const connect = agent.createConnection.bind(agent) as (options: ConnectOptions, ...rest: Array<unknown>) => unknown
  // The hook is the one place that sees every new TLS connection: the choice is made per host.
  agent.createConnection = ((options: ConnectOptions, ...rest: Array<unknown>) => {
    const name = options.hostname ?? options.host ?? ""
    const host = options.port && String(options.port) !== "443" ? `${name}:${options.port}` : name
    const context = contextFor(host) ?? contextFor(`${name}:443`)
    return connect({
      ...options,
      ...(context === undefined ? {} : { secureContext: context }),
      rejectUnauthorized: !policy.isInsecure(host) && !policy.isInsecure(`${name}:443`)
    }, ...rest)
  }) as typeof agent.createConnection
  return agent
}

const agent = Layer.scoped(
  NodeHttpClient.HttpAgent,
  Effect.gen(function*() {
    const policy = yield* TlsPolicy
    const http = new Http.Agent({ keepAlive: true })
    const https = policyAgent(policy)
    yield* Effect.addFinalizer(() => Effect.sync(() => (http.destroy(), https.destroy())))
    return { [NodeHttpClient.HttpAgentTypeId]: NodeHttpClient.HttpAgentTypeId, http, https } as NodeHttpClient.HttpAgent
  })
)

const maxAnswer = 64 * 1024

const requestError = (request: HttpClientRequest.HttpClientRequest, cause: unknown) =>
  new HttpClientError.RequestError({ request, reason: "Transport", cause })

/**
 * Sends a request whose body is a Node stream (a pushed file) by piping it into the request,
 * with Node's own backpressure. The answer to an upload is small: it is read whole, up to a cap.
 */
const sendNodeSource = (
  agents: NodeHttpClient.HttpAgent,
  request: HttpClientRequest.HttpClientRequest,
  url: URL,
  signal: AbortSignal,
  open: Body.OpenNodeSource
) =>
  Effect.async<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>((resume) => {
    const options = { method: request.method, headers: request.headers, signal }
    const outgoing = url.protocol === "https:"
      ? Https.request(url, { ...options, agent: agents.https })
      : Http.request(url, { ...options, agent: agents.http })
    const source = open()
    let settled = false
    const settle = (outcome: Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.RequestError>) => {
      if (settled) return
      settled = true
      resume(outcome)
    }
    // Listeners stay on for the streams' whole lives: a late second error must not go unhandled.
    const fail = (cause: unknown) => settle(Effect.fail(requestError(request, cause)))
    outgoing.on("error", fail)
    source.on("error", (cause: Error) => outgoing.destroy(cause))
    outgoing.once("response", (incoming) => {
      const chunks: Array<Buffer> = []
      let kept = 0
      // Only error messages read it; a registry that talks on is not kept in memory.
      incoming.on("data", (chunk: Buffer) => {
        if (kept < maxAnswer) chunks.push(chunk)
        kept += chunk.length
      })
      incoming.on("error", fail)
      incoming.once("end", () => {
        const headers = new globalThis.Headers()
        for (const [name, value] of Object.entries(incoming.headers)) {
          for (const one of [value ?? []].flat()) headers.append(name, one)
        }
        const status = incoming.statusCode ?? 0
        try {
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks)
          settle(Effect.succeed(HttpClientResponse.fromWeb(request, new Response(body, { status, headers }))))
        } catch (cause) {
          fail(cause)
        }
      })
    })
    source.pipe(outgoing)
    return Effect.sync(() => {
      settled = true
      source.destroy()
      outgoing.destroy()
    })
  })

/** Needs TlsPolicy. */
export const layer = Layer.effect(
  HttpClient.HttpClient,
  Effect.gen(function*() {
    const agents = yield* NodeHttpClient.HttpAgent
    const client = yield* NodeHttpClient.make
    return HttpClient.make((request, url, signal) => {
      const open = request.body._tag === "Stream" ? Body.nodeSourceOf(request.body) : undefined
      return open === undefined ? client.execute(request) : sendNodeSource(agents, request, url, signal, open)
    })
  })
).pipe(Layer.provide(agent))
