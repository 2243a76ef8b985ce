/**
 * Progress of `pull` and `push` on stderr, never stdout (stdout holds the digest or JSON).
 *
 * - On a terminal: one line per blob moving or done (short digest, bar, bytes done / total, rate),
 *   redrawn in place with cursor-up + clear-line, at most every 100 ms; then a summary line.
 * - Elsewhere (CI, pipes): no escape codes and no redraws, one line per finished blob, then the
 *   summary line.
 * - Quiet: nothing at all.
 *
 * `onBlob` runs for every chunk, so it only updates counters; a timer fiber does the rendering.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Bytes from "../domain/Bytes.js"
import type { BlobEvent, Moved } from "../Images.js"
import { Stdio, type TerminalSize } from "./Stdio.js"

export type Mode = "tty" | "plain" | "quiet"

/** Where and how progress is shown; the CLI builds one from Stdio, tests their own. */
export interface Display {
  readonly mode: Mode
  /** Writes text as is (no newline added). */
  readonly write: (text: string) => Effect.Effect<void>
  readonly size: Effect.Effect<TerminalSize>
  /** Time between redraws (default 100 ms). */
  readonly interval?: Duration.DurationInput | undefined
}

/** The display for this process: quiet if asked, a redrawing one if stderr is a terminal, plain otherwise. */
export const display = (quiet: boolean): Effect.Effect<Display, never, Stdio> =>
  Effect.map(Stdio, (stdio) => ({
    mode: quiet ? "quiet" : stdio.stderrIsTTY ? "tty" : "plain",
    write: stdio.writeStderr,
    size: stdio.stderrSize
  }))

// ---------------------------------------------------------------------------------------------
// Formatting

/** `0.4s`, `12.3s`, `2m05s`, `1h02m`. */
export const formatDuration = (ms: number): string => {
  if (ms < 60_000) return `${(Math.max(0, ms) / 1000).toFixed(1)}s`
  const s = Math.floor(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`
}

/** `sha256:` and the first 12 hex digits. */
export const shortDigest = (digest: string): string => {
  const colon = digest.indexOf(":")
  return colon < 0 ? digest.slice(0, 12) : digest.slice(0, colon + 13)
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/** `pulled sha256:…: 4.0 MiB moved (4 blobs), 1.1 KiB already present (1 blob), in 0.4s` */
export const summaryLine = (verb: string, moved: Moved, elapsedMs: number): string =>
  `${verb} ${moved.digest}: ${Bytes.format(moved.bytesTransferred)} moved (${plural(moved.transferred, "blob")}), ` +
  `${Bytes.format(moved.bytesSkipped)} already present (${plural(moved.skipped, "blob")}), in ${formatDuration(elapsedMs)}`

/** `track`'s summary for a pull or push. */
export const movedSummary = (verb: string) => (moved: Moved, elapsedMs: number): string => summaryLine(verb, moved, elapsedMs)

// ---------------------------------------------------------------------------------------------
// State and rendering (pure: tests drive it with events and a clock of their own)

interface BlobState {
  readonly digest: string
  size: number
  done: number
  state: "moving" | "done" | "exists"
  readonly startedAt: number
  finishedAt: number
}

export interface Renderer {
  /** O(1), no I/O: safe to call for every chunk. */
  readonly onBlob: (event: BlobEvent) => void
  /** What to write now; "" when there is nothing new. */
  readonly frame: (size: TerminalSize) => string
  /**
   * The last frame, then the summary line if there is one. Blobs still moving (the transfer failed
   * or was interrupted) show `stopped`, not a rate that would look live. Leaves the cursor at the
   * start of a line.
   */
  readonly finish: (size: TerminalSize, summary: string | undefined) => string
}

const ESC = "\x1b["
/** Cursor up `n` lines, to column 0. */
const up = (n: number) => `${ESC}${n}A\r`
const clearLine = `${ESC}2K`
const clearBelow = `${ESC}J`

/**
 * The first of `forms`, from the widest, that fits `width`: a narrow terminal gets a shorter
 * line, never a word or unit cut in two. Only the last is cut, on a terminal a few columns wide.
 */
const fitting = (width: number, forms: ReadonlyArray<string>): string =>
  forms.find((form) => form.length <= width) ?? forms.at(-1)!.slice(0, width)

const joined = (...parts: ReadonlyArray<string>) => parts.filter((p) => p !== "").join("  ")

export const makeRenderer = (options: { readonly tty: boolean; readonly now: () => number }): Renderer => {
  const { now, tty } = options
  const blobs = new Map<string, BlobState>()
  /** Plain mode: finished blobs not yet printed. */
  const finished: Array<BlobState> = []
  let dirty = false
  let moving = 0
  let drawn = 0
  /** The transfer is over: a blob still moving has stopped. */
  let ended = false

  const entry = (digest: string, size: number): BlobState => {
    let blob = blobs.get(digest)
    if (blob === undefined) {
      blob = { digest, size, done: 0, state: "moving", startedAt: now(), finishedAt: 0 }
      blobs.set(digest, blob)
      moving++
    }
    return blob
  }

  const onBlob = (event: BlobEvent): void => {
    dirty = true
    const blob = entry(event.digest, event.size)
    blob.size = event.size
    switch (event._tag) {
      case "Start":
        return
      case "Progress":
        blob.done = event.done
        return
      case "Done":
        if (blob.state !== "moving") return
        moving--
        blob.state = event.skipped ? "exists" : "done"
        if (!event.skipped) blob.done = event.size
        blob.finishedAt = now()
        if (!tty) finished.push(blob)
        return
    }
  }

  const plainLine = (blob: BlobState) =>
    `${shortDigest(blob.digest)}  ${Bytes.format(blob.size).padStart(9)}  ${blob.state}\n`

  const ttyLine = (blob: BlobState, columns: number, at: number): string => {
    const width = Math.max(1, columns - 1) // never the last column: a wrapped line breaks the redraw
    const bytes = blob.state === "exists" ? Bytes.format(blob.size) : `${Bytes.format(blob.done)} / ${Bytes.format(blob.size)}`
    const seconds = ((blob.state === "moving" ? at : blob.finishedAt) - blob.startedAt) / 1000
    // What became of the blob: shown at every width.
    const word = blob.state !== "moving" ? blob.state : ended ? "stopped" : ""
    const rate = word === "" && blob.done > 0 && seconds > 0 ? `${Bytes.format(Math.round(blob.done / seconds))}/s` : ""
    const tail = word || rate
    const head = shortDigest(blob.digest)
    const fixed = head.length + 2 + 21 + 2 + 11
    const inner = Math.min(30, width - fixed - 3)
    let bar = ""
    if (inner >= 5) {
      const ratio = blob.state === "done" ? 1 : blob.state === "exists" || blob.size === 0 ? 0 : Math.min(1, blob.done / blob.size)
      const filled = Math.floor(ratio * inner)
      bar = ` [${"=".repeat(filled)}${filled < inner && ratio > 0 ? ">" : ""}`.padEnd(inner + 2) + "]"
    }
    const percent = word === "" && blob.size > 0 ? `${Math.floor((100 * Math.min(blob.done, blob.size)) / blob.size)}%` : ""
    const hex = head.slice(head.indexOf(":") + 1)
    // Narrower and narrower: the bar and the padding go, then the rate, the sizes, the digest's prefix.
    return fitting(width, [
      `${head}${bar}  ${bytes.padStart(21)}  ${tail}`.trimEnd(),
      joined(head, bytes, tail),
      joined(head, bytes, word),
      joined(head, word || percent),
      `${hex.slice(0, Math.max(4, width - 1 - (word || percent).length))} ${word || percent}`.trimEnd()
    ])
  }

  /** The blobs that fit the terminal: when they do not, the oldest finished ones fold into one line. */
  const ttyLines = (size: TerminalSize): Array<string> => {
    const at = now()
    const all = [...blobs.values()]
    const budget = Math.max(2, size.rows - 2)
    if (all.length <= budget) return all.map((b) => ttyLine(b, size.columns, at))
    let fold = all.length - (budget - 1)
    let foldedBytes = 0
    let folded = 0
    const shown: Array<BlobState> = []
    for (const blob of all) {
      if (fold > 0 && blob.state !== "moving") {
        fold--
        folded++
        foldedBytes += blob.size
      } else {
        shown.push(blob)
      }
    }
    const hidden = shown.length - (budget - 1)
    const visible = hidden > 0 ? shown.slice(0, budget - 1) : shown
    const andMoving = hidden > 0 ? `, ${hidden} more moving` : ""
    const more = fitting(Math.max(1, size.columns - 1), [
      `${plural(folded, "blob")} finished (${Bytes.format(foldedBytes)})${andMoving}`,
      `${plural(folded, "blob")} finished${andMoving}`,
      `${folded} finished${andMoving}`,
      `${folded} finished`
    ])
    return [more, ...visible.map((b) => ttyLine(b, size.columns, at))]
  }

  const redraw = (size: TerminalSize): string => {
    const lines = ttyLines(size)
    let out = drawn > 0 ? up(drawn) : ""
    for (const line of lines) out += `${clearLine}${line}\n`
    if (lines.length < drawn) out += clearBelow
    drawn = lines.length
    return out
  }

  const frame = (size: TerminalSize): string => {
    if (tty) {
      // A stalled blob's rate still changes: redraw while anything moves.
      if (!dirty && moving === 0) return ""
      dirty = false
      return blobs.size === 0 ? "" : redraw(size)
    }
    dirty = false
    return finished.splice(0).map(plainLine).join("")
  }

  const finish = (size: TerminalSize, summary: string | undefined): string => {
    ended = true
    if (moving > 0) dirty = true
    const last = frame(size)
    return summary === undefined ? last : `${last}${summary}\n`
  }

  return { onBlob, frame, finish }
}

// ---------------------------------------------------------------------------------------------
// Running a transfer with a display

/**
 * Runs `transfer` with an `onBlob` that feeds the display, redrawing on a timer fiber; when the
 * transfer ends, however it ends, the timer stops and a last frame is drawn (plus the summary line
 * on success), so the terminal is left at the start of a clean line.
 */
export const track = <A, E, R>(
  display: Display,
  summarize: (result: A, elapsedMs: number) => string,
  transfer: (onBlob: ((event: BlobEvent) => void) | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => {
  if (display.mode === "quiet") return transfer(undefined)
  return Effect.gen(function*() {
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const started = now()
    const renderer = makeRenderer({ tty: display.mode === "tty", now })
    const draw = Effect.flatMap(display.size, (size) => {
      const text = renderer.frame(size)
      return text === "" ? Effect.void : display.write(text)
    })
    const ticker = yield* Effect.fork(Effect.repeat(draw, Schedule.spaced(display.interval ?? Duration.millis(100))))
    return yield* transfer(renderer.onBlob).pipe(
      Effect.onExit((exit) =>
        Effect.gen(function*() {
          yield* Fiber.interrupt(ticker)
          const size = yield* display.size
          const summary = Exit.isSuccess(exit) ? summarize(exit.value, now() - started) : undefined
          const text = renderer.finish(size, summary)
          if (text !== "") yield* display.write(text)
        })
      )
    )
  })
}
