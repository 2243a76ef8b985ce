/**
 * Integration-test harness: runs a real CNCF distribution registry (`docker-registry serve`)
 * on loopback, optionally behind htpasswd auth or a token server implementing
 * https://distribution.github.io/distribution/spec/auth/token/ .
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import { createSign, randomBytes, X509Certificate } from "node:crypto"
import * as fs from "node:fs/promises"
import * as http from "node:http"
import * as https from "node:https"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"

export type RegistryAuth =
  | { readonly mode: "none" }
  | { readonly mode: "htpasswd"; readonly users: Record<string, string> }
  | {
    readonly mode: "token"
    readonly users: Record<string, string>
    /**
     * which actions the token server grants a user for a requested repository scope (or, with
     * `repository` "catalog", for `registry:catalog:*`); default: all requested to users, none to anonymous
     */
    readonly grant?: (user: string | undefined, repository: string, requested: ReadonlyArray<string>) => ReadonlyArray<string>
  }

/** Extra options for {@link startRegistry}; everything is optional, so `startRegistry(auth)` keeps working. */
export interface RegistryOptions {
  /**
   * Serve https instead of http (distribution's `http.tls.certificate` / `http.tls.key`), PEM file
   * paths; see `makeCa` in ./tls.ts for a CA-signed certificate valid for 127.0.0.1 and localhost.
   */
  readonly tls?: { readonly cert: string; readonly key: string }
  /**
   * Whether the registry deletes manifests and blobs (`storage.delete.enabled`); default true.
   * With false, a DELETE is answered 405 UNSUPPORTED, as by a registry configured not to delete.
   */
  readonly deletion?: boolean
}

export interface TokenRequest {
  readonly method: string
  readonly query: Record<string, string | Array<string>>
  /** the Basic / form user name, or the refresh token's owner; undefined when anonymous */
  readonly user: string | undefined
  /** whether the presented credentials (password or refresh token) were valid */
  readonly authorized: boolean
  /** POST form body, with any password replaced by "<redacted>" */
  readonly body?: string
}

export interface RegistryHandle {
  /** "127.0.0.1:<port>", what a user types as registry key */
  readonly host: string
  /** "http://127.0.0.1:<port>", or "https://127.0.0.1:<port>" with the `tls` option */
  readonly url: string
  /** storage root directory */
  readonly dataDir: string
  /** token mode only: the token endpoint (the challenge's realm) */
  readonly tokenUrl: string | undefined
  /** token mode only: every request the token server saw, in order */
  readonly tokenRequests: ReadonlyArray<TokenRequest>
  /** idempotent */
  readonly stop: () => Promise<void>
}

export const TOKEN_SERVICE = "microagent-test-registry"
export const TOKEN_ISSUER = "microagent-test-issuer"
export const HTPASSWD_REALM = "microagent-test"

const READY_TIMEOUT_MS = 15_000
const KILL_GRACE_MS = 2_000
const START_ATTEMPTS = 3
const TOKEN_TTL_S = 300

const run = promisify(execFile)

// ---------------------------------------------------------------------------------------------
// Orphan protection: a crashed test run must not leave registries behind.

// vitest re-evaluates this module for every test file in a reused worker; keep one set and one hook.
const runningKey = Symbol.for("microagent.test.registries")
const globals = globalThis as { [runningKey]?: Set<ChildProcess> }
const running: Set<ChildProcess> = globals[runningKey] ??= registerExitHook(new Set())

function registerExitHook(children: Set<ChildProcess>): Set<ChildProcess> {
  process.on("exit", () => {
    for (const child of children) child.kill("SIGKILL")
  })
  return children
}

// ---------------------------------------------------------------------------------------------

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

export const startRegistry = async (auth: RegistryAuth, options: RegistryOptions = {}): Promise<RegistryHandle> => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "microagent-registry-"))
  const dataDir = path.join(dir, "data")
  let token: TokenServer | undefined
  try {
    await fs.mkdir(dataDir)
    const authConfig = await prepareAuth(auth, dir)
    token = authConfig.token
    const { child, port } = await spawnWithRetry(dir, dataDir, authConfig.config, options)
    const tokenServer = authConfig.token
    let stopped: Promise<void> | undefined
    return {
      host: `127.0.0.1:${port}`,
      url: `${options.tls === undefined ? "http" : "https"}://127.0.0.1:${port}`,
      dataDir,
      tokenUrl: tokenServer?.url,
      tokenRequests: tokenServer?.requests ?? [],
      stop: () => (stopped ??= teardown(child, tokenServer, dir))
    }
  } catch (error) {
    await teardown(undefined, token, dir)
    throw error
  }
}

const teardown = async (child: ChildProcess | undefined, token: TokenServer | undefined, dir: string) => {
  if (child !== undefined) await killProcess(child)
  if (token !== undefined) await token.close()
  await fs.rm(dir, { recursive: true, force: true })
}

// ---------------------------------------------------------------------------------------------
// Registry process

interface Spawned {
  readonly child: ChildProcess
  readonly port: number
}

class PortTaken extends Error {}

const spawnWithRetry = async (dir: string, dataDir: string, auth: object | undefined, options: RegistryOptions): Promise<Spawned> => {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const configPath = path.join(dir, "config.yml")
    await fs.writeFile(configPath, registryConfig(port, dataDir, auth, options))
    try {
      return { child: await spawnRegistry(configPath, port, options.tls !== undefined), port }
    } catch (error) {
      // freePort() only reserves the port until it closes it; another process may win the race.
      if (!(error instanceof PortTaken) || attempt >= START_ATTEMPTS) throw error
    }
  }
}

// JSON is valid YAML, which spares us a YAML serializer and any quoting questions.
const registryConfig = (port: number, dataDir: string, auth: object | undefined, { deletion = true, tls }: RegistryOptions): string =>
  JSON.stringify(
    {
      version: "0.1",
      log: { level: "error", accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: dataDir },
        delete: { enabled: deletion },
        maintenance: { uploadpurging: { enabled: false } }
      },
      http: {
        addr: `127.0.0.1:${port}`,
        secret: "microagent-test-secret",
        ...(tls === undefined ? {} : { tls: { certificate: tls.cert, key: tls.key } })
      },
      health: { storagedriver: { enabled: false } },
      ...(auth === undefined ? {} : { auth })
    },
    null,
    2
  )

// REGISTRY_* variables override the config file; a developer's shell must not leak in.
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("REGISTRY_")))

const spawnRegistry = async (configPath: string, port: number, secure: boolean): Promise<ChildProcess> => {
  const child = spawn("docker-registry", ["serve", configPath], { stdio: ["ignore", "pipe", "pipe"], env: cleanEnv() })
  running.add(child)
  child.once("exit", () => running.delete(child))
  let output = ""
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()))
  try {
    await waitReady(child, `${secure ? "https" : "http"}://127.0.0.1:${port}/v2/`)
    return child
  } catch (error) {
    await killProcess(child)
    const reason = error instanceof Error ? error.message : String(error)
    const message = `docker-registry on port ${port} did not start: ${reason}\n--- registry output ---\n${output}`
    throw /address already in use/i.test(output) ? new PortTaken(message) : new Error(message)
  }
}

const waitReady = async (child: ChildProcess, url: string): Promise<void> => {
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`exited with ${child.exitCode ?? child.signalCode}`)
    }
    try {
      await probe(url)
      return
    } catch {
      await sleep(50)
    }
  }
  throw new Error(`no answer from ${url} within ${READY_TIMEOUT_MS} ms`)
}

/**
 * Resolves on any HTTP answer. https skips verification: readiness is about the process listening,
 * and the harness does not know which CA signed the certificate it was given.
 */
const probe = (url: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const options = { timeout: 1_000, rejectUnauthorized: false }
    const request = (url.startsWith("https:") ? https : http).get(url, options, (response) => {
      response.resume()
      resolve()
    })
    request.once("timeout", () => request.destroy(new Error("timeout")))
    request.once("error", reject)
  })

const killProcess = async (child: ChildProcess): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS)
  await exited
  clearTimeout(timer)
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// Auth setup

interface AuthSetup {
  readonly config: object | undefined
  readonly token: TokenServer | undefined
}

const prepareAuth = async (auth: RegistryAuth, dir: string): Promise<AuthSetup> => {
  switch (auth.mode) {
    case "none":
      return { config: undefined, token: undefined }
    case "htpasswd":
      return { config: { htpasswd: { realm: HTPASSWD_REALM, path: await writeHtpasswd(auth.users, dir) } }, token: undefined }
    case "token": {
      const keys = await generateSigningKey(dir)
      const token = await startTokenServer(keys, auth.users, auth.grant ?? defaultGrant)
      const config = {
        token: { realm: token.url, service: TOKEN_SERVICE, issuer: TOKEN_ISSUER, rootcertbundle: keys.certPath }
      }
      return { config, token }
    }
  }
}

const writeHtpasswd = async (users: Record<string, string>, dir: string): Promise<string> => {
  const file = path.join(dir, "htpasswd")
  // distribution only accepts bcrypt entries, hence -B; -c creates the file on the first user.
  let create = true
  for (const [user, password] of Object.entries(users)) {
    await run("htpasswd", [create ? "-Bbc" : "-Bb", file, user, password])
    create = false
  }
  // The registry refuses to start with a missing htpasswd file, so an empty user list still needs one.
  if (create) await fs.writeFile(file, "")
  return file
}

interface SigningKey {
  readonly certPath: string
  readonly privateKeyPem: string
  /** base64 DER of the certificate, for the JWT's x5c header */
  readonly certDer: string
}

const generateSigningKey = async (dir: string): Promise<SigningKey> => {
  const keyPath = path.join(dir, "token-key.pem")
  const certPath = path.join(dir, "token-cert.pem")
  await run("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", keyPath, "-out", certPath,
    "-days", "2", "-subj", "/CN=microagent-test-token"
  ])
  const certPem = await fs.readFile(certPath, "utf8")
  return {
    certPath,
    privateKeyPem: await fs.readFile(keyPath, "utf8"),
    certDer: new X509Certificate(certPem).raw.toString("base64")
  }
}

const defaultGrant = (user: string | undefined, _repository: string, requested: ReadonlyArray<string>) =>
  user === undefined ? [] : requested

// ---------------------------------------------------------------------------------------------
// Token server

type Grant = (user: string | undefined, repository: string, requested: ReadonlyArray<string>) => ReadonlyArray<string>

interface TokenServer {
  readonly url: string
  readonly requests: Array<TokenRequest>
  readonly close: () => Promise<void>
}

/** Who presented credentials, and whether they were valid. */
interface Identity {
  readonly user: string | undefined
  readonly authorized: boolean
}

const startTokenServer = async (keys: SigningKey, users: Record<string, string>, grant: Grant): Promise<TokenServer> => {
  const requests: Array<TokenRequest> = []
  const refreshTokens = new Map<string, string>()
  const server = http.createServer((req, res) => {
    readBody(req)
      .then((body) => {
        const reply = handleTokenRequest(req, body, { keys, users, grant, refreshTokens, requests })
        res.writeHead(reply.status, { "content-type": "application/json" }).end(JSON.stringify(reply.json))
      })
      .catch((error: unknown) => res.writeHead(500).end(String(error)))
  })
  // Port 0 directly: nothing else needs to know the port before the server holds it.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", resolve)
  })
  const { port } = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}/token`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

interface TokenContext {
  readonly keys: SigningKey
  readonly users: Record<string, string>
  readonly grant: Grant
  readonly refreshTokens: Map<string, string>
  readonly requests: Array<TokenRequest>
}

interface Reply {
  readonly status: number
  readonly json: unknown
}

const unauthorized: Reply = {
  status: 401,
  json: { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }
}

const handleTokenRequest = (req: http.IncomingMessage, body: string, ctx: TokenContext): Reply => {
  const url = new URL(req.url ?? "/", "http://127.0.0.1")
  const query = paramsToRecord(url.searchParams)
  const method = req.method ?? "GET"
  if (url.pathname !== "/token") {
    ctx.requests.push({ method, query, user: undefined, authorized: false })
    return { status: 404, json: { errors: [{ code: "NOT_FOUND", message: "not found" }] } }
  }
  if (method === "POST") return handlePost(query, new URLSearchParams(body), ctx)
  const identity = basicIdentity(req.headers.authorization, ctx.users)
  ctx.requests.push({ method, query, user: identity?.user, authorized: identity?.authorized ?? false })
  if (method !== "GET") return { status: 405, json: { errors: [{ code: "UNSUPPORTED", message: "method not allowed" }] } }
  if (identity !== undefined && !identity.authorized) return unauthorized
  const service = url.searchParams.get("service") ?? TOKEN_SERVICE
  return { status: 200, json: tokenResponse(identity?.user, service, url.searchParams.getAll("scope"), ctx) }
}

const handlePost = (query: TokenRequest["query"], form: URLSearchParams, ctx: TokenContext): Reply => {
  const identity = formIdentity(form, ctx)
  ctx.requests.push({ method: "POST", query, user: identity?.user, authorized: identity?.authorized ?? false, body: redact(form) })
  if (identity === undefined) return { status: 400, json: { error: "unsupported_grant_type" } }
  if (!identity.authorized) return unauthorized
  const scopes = form.getAll("scope").flatMap((s) => s.split(" ")).filter((s) => s !== "")
  const response = tokenResponse(identity.user, form.get("service") ?? TOKEN_SERVICE, scopes, ctx)
  if (form.get("grant_type") === "password" && form.get("access_type") === "offline" && identity.user !== undefined) {
    const refreshToken = randomBytes(24).toString("hex")
    ctx.refreshTokens.set(refreshToken, identity.user)
    return { status: 200, json: { ...response, refresh_token: refreshToken } }
  }
  return { status: 200, json: response }
}

/** undefined: no Basic credentials, an anonymous request. */
const basicIdentity = (header: string | undefined, users: Record<string, string>): Identity | undefined => {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? "")
  if (match === null) return undefined
  const decoded = Buffer.from(match[1]!, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  const user = colon < 0 ? decoded : decoded.slice(0, colon)
  const password = colon < 0 ? "" : decoded.slice(colon + 1)
  return { user, authorized: checkPassword(users, user, password) }
}

/** undefined: an unsupported grant_type (the OAuth2 POST flow has no anonymous flavour). */
const formIdentity = (form: URLSearchParams, ctx: TokenContext): Identity | undefined => {
  switch (form.get("grant_type")) {
    case "password": {
      const user = form.get("username") ?? ""
      return { user, authorized: checkPassword(ctx.users, user, form.get("password") ?? "") }
    }
    case "refresh_token": {
      const user = ctx.refreshTokens.get(form.get("refresh_token") ?? "")
      return { user, authorized: user !== undefined }
    }
    default:
      return undefined
  }
}

const checkPassword = (users: Record<string, string>, user: string, password: string): boolean =>
  Object.hasOwn(users, user) && users[user] === password

const redact = (form: URLSearchParams): string => {
  const copy = new URLSearchParams(form)
  if (copy.has("password")) copy.set("password", "<redacted>")
  return copy.toString()
}

const paramsToRecord = (params: URLSearchParams): Record<string, string | Array<string>> => {
  const record: Record<string, string | Array<string>> = {}
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key)
    record[key] = values.length === 1 ? values[0]! : values
  }
  return record
}

const readBody = (req: http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let body = ""
    req.setEncoding("utf8")
    req.on("data", (chunk: string) => (body += chunk))
    req.on("end", () => resolve(body))
    req.on("error", reject)
  })

// ---------------------------------------------------------------------------------------------
// JWT

interface Access {
  readonly type: string
  readonly name: string
  readonly actions: ReadonlyArray<string>
}

/**
 * `repository:<name>:<actions>`; the name may itself contain ':' (a host:port prefix), so the
 * type ends at the first colon and the actions start after the last one.
 */
const parseScope = (scope: string): Access | undefined => {
  const first = scope.indexOf(":")
  const last = scope.lastIndexOf(":")
  if (first < 0 || last <= first) return undefined
  const actions = scope.slice(last + 1).split(",").filter((a) => a !== "")
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: [...new Set(actions)] }
}

/** Repository scopes, and the one registry scope distribution knows: `registry:catalog:*`. */
const grantAccess = (user: string | undefined, scopes: ReadonlyArray<string>, grant: Grant): Array<Access> =>
  scopes
    .map(parseScope)
    .filter((access): access is Access => access?.type === "repository" || (access?.type === "registry" && access.name === "catalog"))
    .map((access) => ({ ...access, actions: [...grant(user, access.name, access.actions)] }))

const tokenResponse = (user: string | undefined, service: string, scopes: ReadonlyArray<string>, ctx: TokenContext) => {
  const now = Math.floor(Date.now() / 1000)
  const claims = {
    iss: TOKEN_ISSUER,
    sub: user ?? "",
    aud: service,
    exp: now + TOKEN_TTL_S,
    nbf: now - 10,
    iat: now,
    jti: randomBytes(16).toString("hex"),
    access: grantAccess(user, scopes, ctx.grant)
  }
  const jwt = signJwt(claims, ctx.keys)
  return { token: jwt, access_token: jwt, expires_in: TOKEN_TTL_S, issued_at: new Date(now * 1000).toISOString() }
}

const base64url = (data: string | Buffer): string => Buffer.from(data).toString("base64url")

const signJwt = (claims: object, keys: SigningKey): string => {
  const header = { typ: "JWT", alg: "RS256", x5c: [keys.certDer] }
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`
  const signature = createSign("RSA-SHA256").update(signingInput).sign(keys.privateKeyPem)
  return `${signingInput}.${base64url(signature)}`
}
