/**
 * Reading a response body chunk by chunk into a callback, the hot path of every pull.
 *
 * Node's HTTP client hands its response over as a Node stream (`source`), and reading that
 * with plain `data` events costs a function call per chunk; the same body through
 * `response.stream`, an Effect stream, cost about twice the CPU of the whole download on a
 * 1 GiB pull (measured in docs/performance.md). Any other HttpClient (fetch, a test double)
 * goes through `response.stream`, with the same contract.
 */
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/**
 * Takes one chunk. A returned promise makes the reader wait for it (backpressure); a rejected
 * one stops the body with `ChunkRefused`.
 */
export type OnChunk = (chunk: Uint8Array) => void | PromiseLike<unknown>

/** The body broke off: worth resuming. */
export class BodyCut extends Data.TaggedError("BodyCut")<{ readonly reason: string }> {}

/** The callback refused a chunk (its promise rejected): not the network's fault. */
export class ChunkRefused extends Data.TaggedError("ChunkRefused")<{ readonly cause: unknown }> {}

interface NodeReadable {
  on(event: string, listener: (...args: Array<any>) => void): unknown
  off(event: string, listener: (...args: Array<any>) => void): unknown
  pause(): unknown
  resume(): unknown
  destroy(): unknown
  readonly readableEnded?: boolean
}

const nodeSource = (response: HttpClientResponse.HttpClientResponse): NodeReadable | undefined => {
  // HttpClient hands out the client's response wrapped (`original`) to abort it on interruption;
  // interrupting this reader destroys the Node stream itself, which ends the request as well.
  let unwrapped: unknown = response
  for (let depth = 0; depth < 4 && typeof unwrapped === "object" && unwrapped !== null && "original" in unwrapped; depth++) {
    unwrapped = (unwrapped as { readonly original: unknown }).original
  }
  const source = typeof unwrapped === "object" && unwrapped !== null ? (unwrapped as { readonly source?: unknown }).source : undefined
  if (typeof source !== "object" || source === null) return undefined
  const candidate = source as Partial<NodeReadable>
  return typeof candidate.on === "function" && typeof candidate.pause === "function" &&
      typeof candidate.resume === "function" && typeof candidate.destroy === "function"
    ? candidate as NodeReadable
    : undefined
}

/** Whether `forEach` reads this response's Node stream directly (the fast path) rather than `response.stream`. */
export const readsDirectly = (response: HttpClientResponse.HttpClientResponse): boolean => nodeSource(response) !== undefined

const isPromiseLike = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function"

const ignore = () => {}

const reason = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

/** Feeds every chunk of the body to `onChunk`, in order; interruption destroys the body. */
export const forEach = (
  response: HttpClientResponse.HttpClientResponse,
  onChunk: OnChunk
): Effect.Effect<void, BodyCut | ChunkRefused> => {
  const source = nodeSource(response)
  if (source === undefined) {
    return response.stream.pipe(
      Stream.mapError((e) => new BodyCut({ reason: e.message })),
      Stream.runForEach((chunk) =>
        Effect.try({ try: () => onChunk(chunk), catch: (cause) => new ChunkRefused({ cause }) }).pipe(
          Effect.flatMap((pending) =>
            isPromiseLike(pending)
              ? Effect.tryPromise({ try: () => Promise.resolve(pending), catch: (cause) => new ChunkRefused({ cause }) })
              : Effect.void
          )
        )
      )
    )
  }
  return Effect.async<void, BodyCut | ChunkRefused>((resume) => {
    let settled = false
    const settle = (outcome: Effect.Effect<void, BodyCut | ChunkRefused>) => {
      if (settled) return
      settled = true
      detach()
      resume(outcome)
    }
    const refuse = (cause: unknown) => {
      source.destroy()
      settle(Effect.fail(new ChunkRefused({ cause })))
    }
    const onData = (chunk: Uint8Array) => {
      if (settled) return
      let pending: unknown
      try {
        pending = onChunk(chunk)
      } catch (cause) {
        return refuse(cause)
      }
      if (isPromiseLike(pending)) {
        source.pause()
        pending.then(() => settled || source.resume(), refuse)
      }
    }
    const onEnd = () => settle(Effect.void)
    const onError = (cause: unknown) => settle(Effect.fail(new BodyCut({ reason: reason(cause) })))
    // `close` after `end` is the normal order; `close` alone means the connection went away.
    const onClose = () => settle(Effect.fail(new BodyCut({ reason: "the connection closed before the body ended" })))
    const detach = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onError)
      source.off("close", onClose)
    }
    // Stays after `detach`: an error the destroyed body emits later must not go unhandled.
    source.on("error", ignore)
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onError)
    source.on("close", onClose)
    return Effect.sync(() => {
      if (settled) return
      settled = true
      detach()
      source.destroy()
    })
  })
}

// ---- small bodies, capped ([H2]) --------------------------------------------------------------

/** A body longer than its reader allows: the read stopped there and the rest was never taken. */
export class BodyTooLarge extends Data.TaggedError("BodyTooLarge")<{ readonly limit: number }> {}

/** `1 MiB`, `64 KiB`, `512 bytes`: a cap as messages name it. */
export const formatLimit = (bytes: number): string =>
  bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0
    ? `${bytes / 1024 / 1024} MiB`
    : bytes >= 1024 && bytes % 1024 === 0
    ? `${bytes / 1024} KiB`
    : `${bytes} bytes`

/**
 * Reads a whole body of at most `limit` bytes. One byte more stops the read at once and destroys
 * the body (and its connection): a registry that talks on is never read to its end.
 */
export const readUpTo = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number
): Effect.Effect<Uint8Array, BodyCut | BodyTooLarge> =>
  Effect.suspend(() => {
    const parts: Array<Uint8Array> = []
    let size = 0
    const tooLarge = new BodyTooLarge({ limit })
    return forEach(response, (chunk) => {
      size += chunk.length
      if (size > limit) throw tooLarge
      parts.push(chunk)
    }).pipe(
      Effect.catchTag("ChunkRefused", (refused) => refused.cause === tooLarge ? Effect.fail(tooLarge) : Effect.die(refused.cause)),
      Effect.map(() => parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts)))
    )
  })

/** A small body a drained response may still have read whole, keeping its connection for the next request. */
export const drainLimit = 64 * 1024

const hasNoBody = (response: HttpClientResponse.HttpClientResponse) =>
  response.request.method === "HEAD" || response.status === 204 || response.status === 304

/**
 * Ends a response whose body nobody wants (a redirect's, a retried error's): a body declared
 * small (`Content-Length` up to `keep`) is read, so the kept-alive connection serves the next
 * request; any other (larger, of unknown length, endless) is not read at all but destroyed with
 * its connection. Never fails.
 */
export const discard = (response: HttpClientResponse.HttpClientResponse, keep = drainLimit): Effect.Effect<void> => {
  const declared = Number(response.headers["content-length"] ?? Number.NaN)
  if (hasNoBody(response) || (Number.isFinite(declared) && declared <= keep)) return Effect.ignore(readUpTo(response, keep))
  const source = nodeSource(response)
  // Any other client: stop at the first chunk, which ends its stream (and aborts its request).
  return source === undefined ? Effect.ignore(readUpTo(response, 0)) : Effect.sync(() => void source.destroy())
}

const tooLargeError = (response: HttpClientResponse.HttpClientResponse, cause: BodyCut | BodyTooLarge) =>
  new HttpClientError.ResponseError({
    request: response.request,
    response,
    reason: "Decode",
    cause,
    description: cause._tag === "BodyTooLarge" ? `body larger than ${formatLimit(cause.limit)}` : cause.reason
  })

const cappedKey = Symbol.for("microagent/Body/capped")

/**
 * The same response, but its whole-body readers (`text`, `json`, `arrayBuffer`, `urlParamsBody`,
 * `formData`) take at most `limit` bytes ([H2]) and fail past it with a ResponseError saying so:
 * whoever reads an error or token body this way can never be made to read an endless one.
 * `stream` is left uncapped, for bodies read chunk by chunk under their own caps (blobs,
 * manifests); its errors say what broke (a time-out, a reset) rather than only "Decode error".
 */
export const capped = (
  response: HttpClientResponse.HttpClientResponse,
  limit: number
): HttpClientResponse.HttpClientResponse => {
  // Already capped: the same wrapper, so that every reader shares the one read of the body.
  if (cappedKey in response) return response
  let bytes: Effect.Effect<Uint8Array, HttpClientError.ResponseError> | undefined
  // Read once, like the platform's own readers: a second reader gets the same bytes.
  const read = () =>
    bytes ??= Effect.runSync(Effect.cached(Effect.mapError(readUpTo(response, limit), (e) => tooLargeError(response, e))))
  const decode = <A>(f: (text: string) => A) =>
    Effect.flatMap(
      Effect.suspend(read),
      (body) =>
        Effect.try({
          try: () => f(new TextDecoder().decode(body)),
          catch: (cause) => new HttpClientError.ResponseError({ request: response.request, response, reason: "Decode", cause })
        })
    )
  return Object.create(response, {
    [cappedKey]: { value: limit },
    stream: {
      get: () =>
        Stream.mapError(response.stream, (e) =>
          e.description === undefined && e.cause instanceof Error
            ? new HttpClientError.ResponseError({ request: e.request, response: e.response, reason: e.reason, cause: e.cause, description: e.cause.message })
            : e)
    },
    text: { get: () => decode((text) => text) },
    json: { get: () => decode((text): unknown => text === "" ? null : JSON.parse(text)) },
    urlParamsBody: { get: () => decode((text) => UrlParams.fromInput(new URLSearchParams(text))) },
    arrayBuffer: {
      get: () =>
        Effect.map(Effect.suspend(read), (body) => body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer)
    },
    formData: {
      get: () =>
        Effect.flatMap(Effect.suspend(read), (body) =>
          Effect.tryPromise({
            try: () => new Response(body, { headers: { "content-type": response.headers["content-type"] ?? "" } }).formData(),
            catch: (cause) => new HttpClientError.ResponseError({ request: response.request, response, reason: "Decode", cause })
          }))
    }
  }) as HttpClientResponse.HttpClientResponse
}

// ---- request bodies ---------------------------------------------------------------------------

const nodeSourceKey = Symbol.for("microagent/Body/nodeSource")

/** Opens the same bytes as a Node stream, afresh for each call. */
export type OpenNodeSource = () => NodeJS.ReadableStream & { destroy(error?: Error): unknown }

/**
 * Marks a body (an Effect stream, or the HttpBody carrying it) as also readable as a Node
 * stream, such as a file. Node's client in node/Http.ts pipes that straight into the request:
 * the Effect stream, chunk by chunk, cost a 1 GiB push ~30 MiB more memory. Other clients
 * never look and send the Effect stream.
 */
export const withNodeSource = <A extends object>(body: A, open: OpenNodeSource): A =>
  Object.assign(body, { [nodeSourceKey]: open })

const recycleKey = Symbol.for("microagent/Body/recycle")

/** Takes back a chunk of a body once it has been sent, so its memory can carry the next one. */
export type Recycle = (chunk: Uint8Array) => void

/**
 * Marks a Node stream whose chunks are lent: a sender that sees the mark hands each chunk back
 * through `recycle` once written (node/Http.ts); any other reader keeps them, and the stream
 * then allocates afresh.
 */
export const withRecycle = <S extends object>(stream: S, recycle: Recycle): S => Object.assign(stream, { [recycleKey]: recycle })

/** The function `value` was marked with under `key`, if any. */
const markOf = (value: unknown, key: symbol): ((...args: Array<never>) => unknown) | undefined => {
  const marked = typeof value === "object" && value !== null ? (value as Record<symbol, unknown>)[key] : undefined
  return typeof marked === "function" ? marked as (...args: Array<never>) => unknown : undefined
}

/** The `recycle` a stream was marked with, if any. */
export const recycleOf = (stream: unknown): Recycle | undefined => markOf(stream, recycleKey) as Recycle | undefined

/** The Node stream a body was marked with, if any. */
export const nodeSourceOf = (body: unknown): OpenNodeSource | undefined => markOf(body, nodeSourceKey) as OpenNodeSource | undefined
