/**
 * A fault-injecting HTTP proxy in front of a test registry (see ./registry.ts), plus a second
 * server playing a "blob store" (think S3 behind a pre-signed URL) that the proxy can redirect to.
 *
 * The proxy forwards every request as is (method, path, headers, streamed bodies both ways, over
 * kept-alive connections), rewriting `Host` to the registry and any absolute `Location` that
 * points at the registry so that it points at the proxy. `WWW-Authenticate` is left untouched
 * (its realm is the token server, which is not behind the proxy). Each request is recorded
 * without credentials. Rules installed with `setFaults` make chosen requests fail:
 *
 * - `cut`:      forward the status, headers and the first `afterBytes` bytes of the body, then
 *               close the connection (a download interrupted mid-blob);
 * - `reset`:    close the connection without answering (a connection reset);
 * - `status`:   answer `status` with `headers` / `body` without asking the registry (503, 429...);
 * - `redirect`: answer 307 (or `status`) to the blob store, which serves the same path from the
 *               registry using the proxy's `upstreamAuth` and refuses with 401 any request that
 *               carries an `Authorization` header (counted in `blobStoreAuthAttempts`); each
 *               redirect URL can be made to expire after `maxUses` requests (then 403);
 * - `corrupt`:  forward, but flip (xor 0xff) the body byte at `offset`;
 * - `delay`:    wait `ms` milliseconds, then forward.
 *
 * The first rule that matches (method, regex on path+query, not yet used `times` times) applies.
 * Rules with `on: "blobStore"` apply to the blob store instead, matched against the registry path
 * it serves (so one regex such as `/\/blobs\/sha256:/` fits both); `redirect` is registry-only.
 */
import { randomBytes } from "node:crypto"
import * as http from "node:http"
import type * as net from "node:net"
import { Transform, type TransformCallback } from "node:stream"
import { pipeline } from "node:stream/promises"

export type Fault =
  | { readonly kind: "cut"; readonly afterBytes: number }
  | { readonly kind: "reset" }
  | {
    readonly kind: "status"
    readonly status: number
    readonly headers?: Readonly<Record<string, string>>
    readonly body?: string
  }
  | { readonly kind: "redirect"; readonly status?: 301 | 302 | 303 | 307 | 308; readonly maxUses?: number }
  | { readonly kind: "corrupt"; readonly offset: number }
  | { readonly kind: "delay"; readonly ms: number }

export interface FaultRule {
  /** e.g. "GET"; any method when absent */
  readonly method?: string
  /** tested against the path and query, e.g. `/\/v2\/app\/blobs\/sha256:/` */
  readonly path: RegExp
  /** apply only to the first N matching requests; every matching request when absent */
  readonly times?: number
  /** which server the rule applies to; default "registry" (the proxy) */
  readonly on?: "registry" | "blobStore"
  readonly fault: Fault
}

export interface RecordedRequest {
  readonly method: string
  /** path and query as requested; for the blob store, the registry path it serves */
  readonly path: string
  /** whether an Authorization header was present (its value is never stored) */
  readonly authorization: boolean
  /** the Range header, if any */
  readonly range: string | undefined
  /** the status answered; undefined while pending or when the connection was reset before a head */
  readonly status: number | undefined
  /** the fault applied to this request, if any */
  readonly fault: Fault["kind"] | undefined
}

export interface ProxyHandle {
  /** "127.0.0.1:<port>" */
  readonly host: string
  /** "http://127.0.0.1:<port>" */
  readonly url: string
  /** every request the proxy received, in arrival order (live view) */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** replaces all rules and resets their `times` counters; `[]` makes the proxy transparent */
  readonly setFaults: (rules: ReadonlyArray<FaultRule>) => void
  /** empties `requests` and `blobStoreRequests` (not the auth attempt counter) */
  readonly clearRequests: () => void
  /** the Authorization header the blob store sends to the registry; undefined: none */
  readonly setUpstreamAuth: (authorization: string | undefined) => void
  /** "127.0.0.1:<port>" of the blob store */
  readonly blobStoreHost: string
  /** "http://127.0.0.1:<port>" of the blob store */
  readonly blobStoreUrl: string
  /** every request the blob store received, in order (live view) */
  readonly blobStoreRequests: ReadonlyArray<RecordedRequest>
  /** how many requests reached the blob store carrying an Authorization header (all refused) */
  readonly blobStoreAuthAttempts: number
  /** idempotent */
  readonly stop: () => Promise<void>
}

export interface FaultProxyOptions {
  /** Authorization header value the blob store uses to read from the registry, e.g. "Basic ..." */
  readonly upstreamAuth?: string
}

interface MutableRecord {
  method: string
  path: string
  authorization: boolean
  range: string | undefined
  status: number | undefined
  fault: Fault["kind"] | undefined
}

interface ActiveRule {
  readonly rule: FaultRule
  used: number
}

interface Signature {
  uses: number
  readonly maxUses: number | undefined
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own business, never forwarded. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade"])

/** What an object store answers with; registry-specific headers do not survive the redirect. */
const BLOB_STORE_HEADERS = new Set(["content-type", "content-length", "content-range", "accept-ranges", "etag", "last-modified", "transfer-encoding"])

const BLOB_STORE_PREFIX = "/s/"

export const startFaultProxy = async (target: string, options: FaultProxyOptions = {}): Promise<ProxyHandle> => {
  const targetHost = parseTarget(target)
  const [targetName, targetPort] = splitHostPort(targetHost)
  const agent = new http.Agent({ keepAlive: true })
  const requests: Array<MutableRecord> = []
  const blobStoreRequests: Array<MutableRecord> = []
  const signatures = new Map<string, Signature>()
  let rules: Array<ActiveRule> = []
  let upstreamAuth = options.upstreamAuth
  let blobStoreAuthAttempts = 0
  // Both are known once the servers listen, before any request can arrive.
  let proxyUrl = ""
  let blobStoreUrl = ""

  const pickFault = (on: "registry" | "blobStore", method: string, path: string): Fault | undefined => {
    for (const active of rules) {
      const { rule } = active
      if ((rule.on ?? "registry") !== on) continue
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) continue
      rule.path.lastIndex = 0
      if (!rule.path.test(path)) continue
      if (rule.times !== undefined && active.used >= rule.times) continue
      active.used++
      return rule.fault
    }
    return undefined
  }

  const upstream = (method: string, path: string, headers: http.OutgoingHttpHeaders) =>
    http.request({ host: targetName, port: targetPort, method, path, headers, agent })

  /** Sends the request to the registry and relays the answer, applying a body fault if any. */
  const relay = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: MutableRecord,
    outgoing: { readonly path: string; readonly headers: http.OutgoingHttpHeaders; readonly keep: (name: string) => boolean },
    fault: Fault | undefined
  ) => {
    const request = upstream(record.method, outgoing.path, outgoing.headers)
    request.on("response", (response) => {
      const headers = relayHeaders(response.rawHeaders, outgoing.keep, (value) => rewriteLocation(value, targetHost, proxyUrl))
      record.status = response.statusCode ?? 502
      res.writeHead(record.status, headers)
      relayBody(response, res, fault).catch(() => res.socket?.destroy())
    })
    request.on("error", (error) => {
      if (res.headersSent) {
        res.socket?.destroy()
        return
      }
      record.status = 502
      res.writeHead(502, { "content-type": "text/plain" }).end(`fault proxy: upstream failed: ${error.message}`)
    })
    res.on("close", () => {
      if (!res.writableFinished) request.destroy()
    })
    req.pipe(request)
  }

  const proxy = http.createServer((req, res) => {
    const method = req.method ?? "GET"
    const path = req.url ?? "/"
    const record = recordOf(req, method, path)
    requests.push(record)
    const fault = pickFault("registry", method, path)
    record.fault = fault?.kind
    const forward = () =>
      relay(req, res, record, { path, headers: forwardHeaders(req, targetHost), keep: (name) => !HOP_BY_HOP.has(name) }, fault)
    switch (fault?.kind) {
      case undefined:
      case "cut":
      case "corrupt":
        return forward()
      case "delay":
        return void setTimeout(forward, fault.ms)
      case "reset":
        return resetConnection(req)
      case "status":
        return answer(req, res, record, fault.status, fault.headers ?? {}, fault.body ?? "")
      case "redirect": {
        const signature = randomBytes(12).toString("hex")
        signatures.set(signature, { uses: 0, maxUses: fault.maxUses })
        const location = `${blobStoreUrl}${BLOB_STORE_PREFIX}${signature}${path}`
        return answer(req, res, record, fault.status ?? 307, { location }, "")
      }
    }
  })

  const blobStore = http.createServer((req, res) => {
    const method = req.method ?? "GET"
    const url = req.url ?? "/"
    const parsed = parseBlobStorePath(url)
    const record = recordOf(req, method, parsed?.path ?? url)
    blobStoreRequests.push(record)
    if (req.headers.authorization !== undefined) {
      blobStoreAuthAttempts++
      return answer(req, res, record, 401, { "content-type": "application/xml" }, "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>")
    }
    const signature = parsed === undefined ? undefined : signatures.get(parsed.signature)
    if (parsed === undefined || signature === undefined) {
      return answer(req, res, record, 403, { "content-type": "application/xml" }, "<Error><Code>SignatureDoesNotMatch</Code></Error>")
    }
    signature.uses++
    if (signature.maxUses !== undefined && signature.uses > signature.maxUses) {
      return answer(req, res, record, 403, { "content-type": "application/xml" }, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
    }
    if (method !== "GET" && method !== "HEAD") return answer(req, res, record, 405, { allow: "GET, HEAD" }, "")
    const fault = pickFault("blobStore", method, parsed.path)
    record.fault = fault?.kind
    const headers: http.OutgoingHttpHeaders = { host: targetHost }
    for (const name of ["range", "if-range", "if-none-match", "accept", "user-agent"]) {
      const value = req.headers[name]
      if (value !== undefined) headers[name] = value
    }
    if (upstreamAuth !== undefined) headers.authorization = upstreamAuth
    const forward = () => relay(req, res, record, { path: parsed.path, headers, keep: (name) => BLOB_STORE_HEADERS.has(name) }, fault)
    switch (fault?.kind) {
      case undefined:
      case "cut":
      case "corrupt":
        return forward()
      case "delay":
        return void setTimeout(forward, fault.ms)
      case "reset":
        return resetConnection(req)
      case "status":
        return answer(req, res, record, fault.status, fault.headers ?? {}, fault.body ?? "")
      case "redirect":
        // setFaults refuses this; unreachable.
        return answer(req, res, record, 500, {}, "redirect is not a blob store fault")
    }
  })

  const servers = [proxy, blobStore]
  for (const server of servers) server.on("clientError", (_error, socket: net.Socket) => socket.destroy())
  const [proxyPort, blobStorePort] = await Promise.all(servers.map(listen))
  proxyUrl = `http://127.0.0.1:${proxyPort}`
  blobStoreUrl = `http://127.0.0.1:${blobStorePort}`

  let stopped: Promise<void> | undefined
  const stop = async () => {
    await Promise.all(
      servers.map((server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve())
          server.closeAllConnections()
        })
      )
    )
    agent.destroy()
  }

  return {
    host: `127.0.0.1:${proxyPort}`,
    url: proxyUrl,
    requests,
    setFaults: (next) => {
      for (const rule of next) {
        if (rule.on === "blobStore" && rule.fault.kind === "redirect") throw new Error("a redirect fault applies to the registry only")
      }
      rules = next.map((rule) => ({ rule, used: 0 }))
    },
    clearRequests: () => {
      requests.length = 0
      blobStoreRequests.length = 0
    },
    setUpstreamAuth: (authorization) => {
      upstreamAuth = authorization
    },
    blobStoreHost: `127.0.0.1:${blobStorePort}`,
    blobStoreUrl,
    blobStoreRequests,
    get blobStoreAuthAttempts() {
      return blobStoreAuthAttempts
    },
    stop: () => (stopped ??= stop())
  }
}

// ---------------------------------------------------------------------------------------------

const parseTarget = (target: string): string => {
  if (target.startsWith("https://")) throw new Error("startFaultProxy: an https target is not supported")
  const host = target.replace(/^http:\/\//, "").replace(/\/+$/, "")
  if (!/^[^/:]+:\d+$/.test(host)) throw new Error(`startFaultProxy: target must be "host:port", got ${JSON.stringify(target)}`)
  return host
}

const splitHostPort = (host: string): [string, number] => {
  const colon = host.lastIndexOf(":")
  return [host.slice(0, colon), Number(host.slice(colon + 1))]
}

const listen = (server: http.Server): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port))
  })

const recordOf = (req: http.IncomingMessage, method: string, path: string): MutableRecord => ({
  method,
  path,
  authorization: req.headers.authorization !== undefined,
  range: req.headers.range,
  status: undefined,
  fault: undefined
})

const forwardHeaders = (req: http.IncomingMessage, targetHost: string): http.OutgoingHttpHeaders => {
  const headers: http.OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value
  }
  headers.host = targetHost
  return headers
}

/** Flat [name, value, ...] list as writeHead takes it, keeping repeated headers (e.g. WWW-Authenticate) apart. */
const relayHeaders = (raw: ReadonlyArray<string>, keep: (name: string) => boolean, location: (value: string) => string): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (!keep(lower)) continue
    out.push(name, lower === "location" ? location(raw[i + 1]!) : raw[i + 1]!)
  }
  return out
}

/** An absolute Location at the registry is moved to the proxy; relative ones stay relative. */
const rewriteLocation = (value: string, targetHost: string, proxyUrl: string): string => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return value
  }
  if (url.host !== targetHost || url.protocol !== "http:") return value
  return `${proxyUrl}${url.pathname}${url.search}${url.hash}`
}

const relayBody = async (from: http.IncomingMessage, to: http.ServerResponse, fault: Fault | undefined): Promise<void> => {
  if (fault?.kind === "cut") return cutAfter(from, to, fault.afterBytes)
  if (fault?.kind === "corrupt") return pipeline(from, flipByteAt(fault.offset), to)
  return pipeline(from, to)
}

/** Writes at most `limit` body bytes, then ends the connection without completing the response. */
const cutAfter = async (from: http.IncomingMessage, to: http.ServerResponse, limit: number): Promise<void> => {
  let sent = 0
  to.flushHeaders()
  for await (const chunk of from as AsyncIterable<Buffer>) {
    const part = chunk.subarray(0, Math.max(0, limit - sent))
    if (part.length > 0) {
      await new Promise<void>((resolve, reject) => to.write(part, (error) => (error ? reject(error) : resolve())))
      sent += part.length
    }
    if (sent >= limit) break
  }
  from.destroy()
  const socket = to.socket
  if (socket === null) return
  // end() flushes what was written, then sends FIN: the client holds exactly `limit` body bytes.
  // A body shorter than the limit is still not completed: the connection ends either way.
  socket.end(() => socket.destroy())
}

const flipByteAt = (offset: number): Transform => {
  let seen = 0
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      if (offset >= seen && offset < seen + chunk.length) {
        const copy = Buffer.from(chunk)
        copy[offset - seen] = copy[offset - seen]! ^ 0xff
        chunk = copy
      }
      seen += chunk.length
      callback(null, chunk)
    }
  })
}

const answer = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  record: MutableRecord,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: string
) => {
  req.resume()
  record.status = status
  const head = { ...headers }
  if (!Object.keys(head).some((name) => name.toLowerCase() === "content-length")) head["content-length"] = String(Buffer.byteLength(body))
  res.writeHead(status, head)
  res.end(req.method === "HEAD" ? undefined : body)
}

const resetConnection = (req: http.IncomingMessage) => {
  const socket = req.socket
  if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy()
  else socket.destroy()
}

const parseBlobStorePath = (url: string): { readonly signature: string; readonly path: string } | undefined => {
  if (!url.startsWith(BLOB_STORE_PREFIX)) return undefined
  const rest = url.slice(BLOB_STORE_PREFIX.length)
  const slash = rest.indexOf("/")
  if (slash <= 0) return undefined
  return { signature: rest.slice(0, slash), path: rest.slice(slash) }
}
