/**
 * Hostile registries and token servers for tests of SPEC §5b ([H2], [H3], [H4]): node:http (or,
 * for a server that never speaks at all, node:net) on 127.0.0.1 only, each request answered by a
 * handler the test writes with the helpers below (an endless body, a stall mid-headers or
 * mid-body). Everything is bounded: an endless body ends after `maxEndlessBytes`, a stalled
 * connection is destroyed when the server closes, and `close` ends every connection at once.
 *
 * `runMeasured` runs the built CLI as `runCli` does and also reports the time it took and, where
 * `/usr/bin/time` is installed, its peak resident memory.
 */
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { binPath, type CliOptions, type CliResult } from "./cli.js"

export interface Seen {
  readonly method: string
  /** Path and query. */
  readonly path: string
  readonly authorization: string | undefined
}

export interface Hostile {
  /** `127.0.0.1:<port>`, as a registry is named in a reference. */
  readonly host: string
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Every request the handler saw, in order. */
  readonly seen: Array<Seen>
  readonly close: () => Promise<void>
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void

/** Each endless body stops after this many bytes, so a test of an unfixed client still ends. */
export const maxEndlessBytes = 768 * 1024 * 1024

const listening = (server: net.Server, sockets: Set<net.Socket>): Promise<{ host: string; url: string; close: () => Promise<void> }> =>
  new Promise((resolve, reject) => {
    server.on("connection", (socket: net.Socket) => {
      sockets.add(socket)
      socket.on("error", () => {})
      socket.on("close", () => sockets.delete(socket))
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      resolve({
        host: `127.0.0.1:${port}`,
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          })
      })
    })
  })

/** An HTTP server on 127.0.0.1 whose every request goes to `handler`. */
export const startHostile = async (handler: Handler): Promise<Hostile> => {
  const seen: Array<Seen> = []
  const sockets = new Set<net.Socket>()
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? "", path: req.url ?? "", authorization: req.headers.authorization })
    req.on("error", () => {})
    res.on("error", () => {})
    handler(req, res)
  })
  // A TLS hello (the https attempt on a loopback host, [P1]) is not HTTP: answer 400 and close.
  server.on("clientError", (_error, socket) => socket.destroy())
  const { close, host, url } = await listening(server, sockets)
  return { host, url, seen, close }
}

/** A server that accepts connections and never sends a byte, not even a TLS handshake. */
export const startSilent = async (): Promise<{ host: string; connections: () => number; close: () => Promise<void> }> => {
  const sockets = new Set<net.Socket>()
  let count = 0
  const server = net.createServer(() => count++)
  const { close, host } = await listening(server, sockets)
  return { host, connections: () => count, close }
}

/** `GET /v2/` answered 200 `{}`: a registry that asks for no credentials. */
export const openPing = (req: http.IncomingMessage, res: http.ServerResponse): boolean => {
  if (req.url !== "/v2/") return false
  res.writeHead(200, { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0" })
  res.end("{}")
  return true
}

/** One page of a paginated list (a tag list, a catalog): `body` as JSON, with `Link: <link>; rel="next"` when given. */
export const listPage = (res: http.ServerResponse, body: object, link?: string) => {
  res.writeHead(200, { "content-type": "application/json", ...(link === undefined ? {} : { link: `<${link}>; rel="next"` }) })
  res.end(JSON.stringify(body))
}

/**
 * Answers `status` with `headers`, then a body of `chunk` repeated until the client goes away
 * (or `maxEndlessBytes`), with backpressure: the server never buffers more than a chunk or two.
 */
export const endless = (
  res: http.ServerResponse,
  status: number,
  headers: http.OutgoingHttpHeaders = {},
  chunk: Buffer = Buffer.alloc(64 * 1024, "a")
) => {
  res.writeHead(status, headers)
  endlessAfterHead(res, chunk)
}

/** A JSON body that opens an array and never closes it: `{"tags":["a","a",...` (for tag lists). */
export const endlessJson = (res: http.ServerResponse, status = 200, headers: http.OutgoingHttpHeaders = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.write(`{"name":"team/app","tags":[`)
  endlessAfterHead(res, Buffer.from(`"${"t".repeat(60)}",`.repeat(1024)))
}

const endlessAfterHead = (res: http.ServerResponse, chunk: Buffer) => {
  let sent = 0
  const pump = () => {
    while (!res.destroyed && sent < maxEndlessBytes) {
      sent += chunk.length
      if (!res.write(chunk)) return void res.once("drain", pump)
    }
    if (!res.destroyed) res.end()
  }
  pump()
}

/** Sends `head` (raw bytes, e.g. half a status line and headers) on the connection, then nothing more. */
export const stallRaw = (res: http.ServerResponse, head: string) => {
  res.socket?.write(head)
}

/** Sends status and headers (with `content-length` as promised), `bytes` of the body, then nothing more. */
export const stallBody = (res: http.ServerResponse, status: number, headers: http.OutgoingHttpHeaders, bytes: Buffer) => {
  res.writeHead(status, headers)
  res.write(bytes)
}

export interface Measured extends CliResult {
  readonly elapsedMs: number
  /** Peak resident set size of the CLI's process in KiB, when `/usr/bin/time` is there to measure it. */
  readonly peakRssKiB: number | undefined
}

const timeBin = "/usr/bin/time"

/** `runCli`, timed, with the peak memory of the CLI's process when `/usr/bin/time` is installed. */
export const runMeasured = async (args: ReadonlyArray<string>, options: CliOptions = {}): Promise<Measured> => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "microagent-measure-"))
  const report = path.join(dir, "rss")
  const measure = existsSync(timeBin)
  const argv = measure ? ["-f", "%M", "-o", report, process.execPath, binPath, ...args] : [binPath, ...args]
  const started = performance.now()
  try {
    const result = await new Promise<CliResult>((resolve, reject) => {
      const env: Record<string, string> = { PATH: process.env["PATH"] ?? "" }
      for (const [name, value] of Object.entries(options.env ?? {})) if (value !== undefined) env[name] = value
      // Its own process group: a time-out kills the CLI, not only /usr/bin/time above it.
      const child = spawn(measure ? timeBin : process.execPath, argv, {
        env: { ...env, NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true
      })
      const stdout: Array<Buffer> = []
      const stderr: Array<Buffer> = []
      child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk))
      child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk))
      const timeoutMs = options.timeoutMs ?? 30_000
      const timer = setTimeout(() => {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
        reject(new Error(`microagent ${args.join(" ")} did not end within ${timeoutMs} ms\n--- stderr ---\n${Buffer.concat(stderr).toString("utf8").slice(0, 2000)}`))
      }, timeoutMs)
      child.on("error", (error) => (clearTimeout(timer), reject(error)))
      child.on("close", (code, signal) => {
        clearTimeout(timer)
        resolve({ code, signal, stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8") })
      })
    })
    const elapsedMs = performance.now() - started
    const rss = measure ? Number((await fs.readFile(report, "utf8").catch(() => "")).trim().split("\n").pop()) : Number.NaN
    return { ...result, elapsedMs, peakRssKiB: Number.isFinite(rss) && rss > 0 ? rss : undefined }
  } finally {
    await fs.rm(dir, { recursive: true, force: true })
  }
}
