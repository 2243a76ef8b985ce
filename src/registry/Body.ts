/**
 * Reading a response body chunk by chunk into a callback, the hot path of every pull.
 *
 * Node's HTTP client hands its response over as a Node stream (`source`), and reading that
 * with plain `data` events costs a function call per chunk; the same body through
 * `response.stream`, an Effect stream, cost about twice the CPU of the whole download on a
 * 1 GiB pull (measured in docs/performance.md). Any other HttpClient (fetch, a test double)
 * goes through `response.stream`, with the same contract.
 */
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
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

/** The Node stream a body was marked with, if any. */
export const nodeSourceOf = (body: unknown): OpenNodeSource | undefined => {
  const open = typeof body === "object" && body !== null ? (body as Record<symbol, unknown>)[nodeSourceKey] : undefined
  return typeof open === "function" ? open as OpenNodeSource : undefined
}
