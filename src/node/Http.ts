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
 *
 * Time-outs ([H4]) live here, on every socket both agents open: connecting (TCP, and the TLS
 * handshake for https) may take 30 s, and an open connection that brings no byte for 60 s
 * (waiting for headers, or mid-body) is destroyed with an `ETIMEDOUT` error, which the
 * transport's retries treat like a reset ([P7]). Both are read when the client is first built,
 * through Config, as test and tuning knobs:
 *
 * - `MICROAGENT_CONNECT_TIMEOUT_MS` (default 30000)
 * - `MICROAGENT_IDLE_TIMEOUT_MS` (default 60000)
 *
 * A value that is not a positive whole number is ignored (the default applies).
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Http from "node:http"
import * as Https from "node:https"
import type * as Net from "node:net"
import { createSecureContext, type SecureContext } from "node:tls"
import * as Body from "../registry/Body.js"
import { TlsPolicy, type TlsPolicyService } from "../registry/TlsPolicy.js"

type ConnectOptions = { host?: string | null; hostname?: string | null; port?: number | string | null } & Record<string, unknown>

export interface Timeouts {
  /** Milliseconds to connect (TCP, and the TLS handshake for https). */
  readonly connect: number
  /** Milliseconds an open connection may go without a byte. */
  readonly idle: number
}

const knob = (name: string, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: "a positive number of milliseconds", validation: (n) => n > 0 }),
    // Unset, or not a positive whole number: the default.
    Config.orElse(() => Config.succeed(fallback))
  )

/** [H4]'s durations, with the test knobs read through Config. */
export const timeouts: Config.Config<Timeouts> = Config.all({
  connect: knob("MICROAGENT_CONNECT_TIMEOUT_MS", 30_000),
  idle: knob("MICROAGENT_IDLE_TIMEOUT_MS", 60_000)
})

const duration = (ms: number) => ms < 1000 || ms % 1000 !== 0 ? `${ms} ms` : `${ms / 1000} s`

const timedOut = (message: string) => Object.assign(new Error(message), { code: "ETIMEDOUT" })

const hostOf = (options: ConnectOptions, defaultPort: number) => {
  const name = options.hostname ?? options.host ?? ""
  const shown = name.includes(":") ? `[${name}]` : name
  return options.port && String(options.port) !== String(defaultPort) ? `${shown}:${options.port}` : shown
}

/** What Node's client keeps on a socket in use: its request, and that request's response once it came. */
interface InUse {
  readonly _httpMessage?: {
    readonly res?: { readonly complete?: boolean; destroy(error: Error): unknown } | null
    on(event: "error", listener: () => void): unknown
  } | null
}

const ignore = () => {}

/** When an upload's last byte went out and nothing has come back since, by request. */
const committing = new WeakMap<object, number>()

/**
 * After the last byte of an upload, a registry may verify and store a large blob for minutes
 * before it answers: that silence is allowed ten idle time-outs (10 min by default), not one.
 * Downloads and answers already under way keep the idle time-out.
 */
const awaitingCommit = (request: NonNullable<InUse["_httpMessage"]>, limits: Timeouts): boolean => {
  const sent = request as { readonly method?: string; readonly writableFinished?: boolean }
  if (request.res || sent.method === "GET" || sent.method === "HEAD" || sent.writableFinished !== true) return false
  const since = committing.get(request) ?? Date.now() - limits.idle
  committing.set(request, since)
  return Date.now() - since < 10 * limits.idle
}

/**
 * Arms a new socket with [H4]'s time-outs. The idle one ends the response being read with the
 * error itself (so a body cut by it says why), else the socket; the agent re-arms it whenever a
 * kept-alive socket is taken again (see `withTimeouts`).
 */
const arm = (socket: Net.Socket, host: string, limits: Timeouts, secure: boolean) => {
  socket.setTimeout(limits.idle)
  socket.on("timeout", () => {
    const request = (socket as InUse)._httpMessage
    // A kept-alive socket waiting in the pool: nobody to tell.
    if (!request) return void socket.destroy()
    if (awaitingCommit(request, limits)) return void socket.setTimeout(limits.idle)
    const error = timedOut(`no data from ${host} for ${duration(limits.idle)}`)
    // The error reaches whoever waits (for the answer, or in its body); it must not also be
    // thrown by a request that nobody listens to any more.
    request.on("error", ignore)
    const response = request.res
    if (response && !response.complete) response.destroy(error)
    else socket.destroy(error)
  })
  if (!socket.connecting && !secure) return
  const timer = setTimeout(() => socket.destroy(timedOut(`could not connect to ${host} within ${duration(limits.connect)}`)), limits.connect)
  const clear = () => clearTimeout(timer)
  socket.once(secure ? "secureConnect" : "connect", clear)
  socket.once("close", clear)
}

/**
 * The agent's sockets, armed. Node sets a free kept-alive socket's time-out to the agent's (or to
 * the server's shorter `Keep-Alive: timeout` hint), so taking one again restores [H4]'s.
 */
const withTimeouts = <A extends Http.Agent>(agent: A, limits: Timeouts, secure: boolean): A => {
  const connect = agent.createConnection.bind(agent) as (options: ConnectOptions, ...rest: Array<unknown>) => Net.Socket | undefined
  agent.createConnection = ((options: ConnectOptions, ...rest: Array<unknown>) => {
    const socket = connect(options, ...rest)
    if (socket !== undefined) arm(socket, hostOf(options, secure ? 443 : 80), limits, secure)
    return socket
  }) as typeof agent.createConnection
  const reuse = agent.reuseSocket.bind(agent) as (socket: Net.Socket, request: Http.ClientRequest) => void
  ;(agent as { reuseSocket: typeof reuse }).reuseSocket = (socket, request) => {
    socket.setTimeout(limits.idle)
    reuse(socket, request)
  }
  return agent
}

const policyAgent = (policy: TlsPolicyService, limits: Timeouts) => {
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
  const agent = new Https.Agent({ keepAlive: true, timeout: limits.idle })
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
  return withTimeouts(agent, limits, true)
}

const agent = Layer.scoped(
  NodeHttpClient.HttpAgent,
  Effect.gen(function*() {
    const policy = yield* TlsPolicy
    const limits = yield* Effect.orDie(timeouts)
    const http = withTimeouts(new Http.Agent({ keepAlive: true, timeout: limits.idle }), limits, false)
    const https = policyAgent(policy, limits)
    yield* Effect.addFinalizer(() => Effect.sync(() => (http.destroy(), https.destroy())))
    return { [NodeHttpClient.HttpAgentTypeId]: NodeHttpClient.HttpAgentTypeId, http, https } as NodeHttpClient.HttpAgent
  })
)

const maxAnswer = 64 * 1024

const requestError = (request: HttpClientRequest.HttpClientRequest, cause: unknown) =>
  new HttpClientError.RequestError({ request, reason: "Transport", cause })

/**
 * Sends a request whose body is a Node stream (a pushed file) by piping it into the request,
 * with Node's own backpressure; a stream that lends its chunks (`Body.withRecycle`) gets each
 * back once written. The answer to an upload is small: it is read whole, up to a cap.
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
      const answer = () => {
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
      }
      // Only error messages read it: a registry that talks on is cut off at the cap ([H2]), and
      // what it said so far is the answer.
      incoming.on("data", (chunk: Buffer) => {
        if (settled) return
        chunks.push(chunk.subarray(0, maxAnswer - kept))
        kept += chunk.length
        if (kept < maxAnswer) return
        answer()
        incoming.destroy()
      })
      incoming.on("error", fail)
      incoming.once("end", answer)
    })
    const recycle = Body.recycleOf(source)
    if (recycle === undefined) source.pipe(outgoing)
    else {
      // As `pipe` does, and each chunk goes back to the source once the socket has taken it.
      source.on("data", (chunk: Uint8Array) => {
        if (outgoing.write(chunk, () => recycle(chunk))) return
        source.pause()
        outgoing.once("drain", () => source.resume())
      })
      source.once("end", () => outgoing.end())
    }
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
