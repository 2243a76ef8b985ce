/**
 * Byte counts and small bodies: human-readable sizes, and reading a stream whole up to a cap.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

const units = ["B", "KiB", "MiB", "GiB", "TiB"] as const

/** `512 B`, `1.5 KiB`, `12.3 MiB`: binary units, one decimal from KiB up. */
export const format = (n: number): string => {
  let value = n
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}

/** Reads a whole body of at most `limit` bytes; a larger one fails with `tooLarge()`, never truncated. */
export const collectUpTo = <E2>(limit: number, tooLarge: () => E2) =>
<E, R>(stream: Stream.Stream<Uint8Array, E, R>): Effect.Effect<Uint8Array, E | E2, R> =>
  stream.pipe(
    Stream.runFoldEffect({ parts: [] as ReadonlyArray<Uint8Array>, size: 0 }, (acc, chunk) =>
      acc.size + chunk.length > limit
        ? Effect.fail(tooLarge())
        : Effect.succeed({ parts: [...acc.parts, chunk], size: acc.size + chunk.length })),
    Effect.map(({ parts }) => new Uint8Array(Buffer.concat(parts)))
  )
