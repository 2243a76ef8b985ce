/**
 * The one retry policy of every request to a registry or token server ([P7], [H4], [H5]): what is
 * worth another attempt, how long to wait, and how the last failure is told. Each operation is
 * retried at one level only (a request, or a request with its body when the body is read whole
 * or resumed), so attempts never multiply.
 */
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { RegistryUnavailable } from "../domain/Errors.js"

/** Statuses worth another attempt of an idempotent request ([P7]). */
export const statuses: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])
export const maxAttempts = 5
/** No pause is longer, whatever the backoff reached ([P7]). */
const maxPause = Duration.seconds(30)
/** A registry's `Retry-After` is honoured up to this ([P7]). */
const maxRetryAfter = 60_000

/**
 * A registry answered a status worth another attempt. Internal to an operation's attempts: once
 * they are spent it becomes RegistryUnavailable (`exhausted`).
 */
export class Busy extends Data.TaggedError("Busy")<{
  readonly registry: string
  /** What answered, e.g. `manifest team/app:1`. */
  readonly what: string
  readonly status: number
  /** The registry's own words, already made printable (`": CODE message"` or ""). */
  readonly said: string
  /** The pause the registry asked for, in milliseconds. */
  readonly retryAfter: number | undefined
}> {}

/** `Retry-After` as seconds or an HTTP date, capped at 60 s ([P7]). */
export const retryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined
  const millis = /^\s*\d+\s*$/.test(value) ? Number(value) * 1000 : Date.parse(value) - now
  return Number.isNaN(millis) ? undefined : Math.min(Math.max(millis, 0), maxRetryAfter)
}

/** A Busy for `response`, its `Retry-After` read against the Clock; `said` is the registry's words. */
export const busy = (registry: string, what: string, response: HttpClientResponse.HttpClientResponse, said: string) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    Effect.fail(new Busy({ registry, what, status: response.status, said, retryAfter: retryAfter(response.headers["retry-after"], now) })))

/** A failure another attempt may cure: a busy answer, or a connection that failed or went silent. */
export const isTransient = (e: unknown): e is Busy | RegistryUnavailable =>
  e instanceof Busy || (e instanceof RegistryUnavailable && e.kind === "connection")

/**
 * The pauses between attempts: exponential from `base` with jitter, at most 30 s each; a
 * registry's `Retry-After` replaces the pause it follows. At most `maxAttempts` attempts in all.
 */
export const policy = (base: Duration.DurationInput) =>
  Schedule.exponential(base).pipe(
    Schedule.jittered,
    // The smaller delay of the two: the backoff, capped.
    Schedule.union(Schedule.spaced(maxPause)),
    Schedule.intersect(Schedule.recurs(maxAttempts - 1)),
    Schedule.intersect(Schedule.identity<unknown>()),
    Schedule.modifyDelay(([, failure], delay) =>
      failure instanceof Busy && failure.retryAfter !== undefined ? Duration.millis(failure.retryAfter) : delay
    ),
    Schedule.whileInput(isTransient)
  )

/** The last failure of spent attempts, saying how many there were. */
const exhausted = <E>(e: E | Busy, attempts: number): E | RegistryUnavailable => {
  const tries = attempts > 1 ? ` (after ${attempts} attempts)` : ""
  if (e instanceof Busy) {
    return RegistryUnavailable.of(e.registry, `${e.what} answered HTTP ${e.status}${e.said}${tries}`, "exhausted")
  }
  if (e instanceof RegistryUnavailable && e.kind === "connection" && attempts > 1) {
    return RegistryUnavailable.of(e.registry, `${e.reason}${tries}`, "exhausted")
  }
  return e
}

/**
 * Runs `attempt` under the policy: again after each transient failure (Busy, or a connection
 * RegistryUnavailable), until it succeeds, fails otherwise, or the attempts are spent. Whatever
 * the attempt left of a previous answer is the attempt's to clean up.
 */
export const retrying = (base: Duration.DurationInput) =>
<A, E, R>(attempt: Effect.Effect<A, E | Busy, R>): Effect.Effect<A, Exclude<E, Busy> | RegistryUnavailable, R> =>
  Effect.suspend(() => {
    let attempts = 0
    const counted = Effect.suspend(() => {
      attempts++
      return attempt
    }).pipe(
      Effect.tapError((e) =>
        isTransient(e) && attempts < maxAttempts
          ? Effect.logDebug(`attempt ${attempts} of ${maxAttempts} failed (${e instanceof Busy ? `${e.what} answered HTTP ${e.status}` : e.reason}); trying again`)
          : Effect.void
      )
    )
    return Effect.retry(counted, policy(base)).pipe(
      Effect.mapError((e) => exhausted(e, attempts) as Exclude<E, Busy> | RegistryUnavailable)
    )
  })

/** Runs `attempt` once: a Busy answer is told as the answer it was, not retried. */
export const once = <A, E, R>(attempt: Effect.Effect<A, E | Busy, R>): Effect.Effect<A, Exclude<E, Busy> | RegistryUnavailable, R> =>
  Effect.mapError(attempt, (e) => exhausted(e, 1) as Exclude<E, Busy> | RegistryUnavailable)
