/**
 * The progress display of pull and push (src/cli/progress.ts): what a user sees on a terminal
 * (redrawn in place, fits the width, ends with every blob finished and a summary) and in CI logs
 * (plain lines, one per finished blob, no escape codes).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import type { BlobEvent, Moved } from "../src/Images.js"
import * as Progress from "../src/cli/progress.js"
import * as Bytes from "../src/domain/Bytes.js"

const size80 = { columns: 80, rows: 24 }
const digest = (c: string) => `sha256:${c.repeat(64)}`
const A = digest("a")
const B = digest("b")
const C = digest("c")
const MiB = 1024 * 1024

/** Blob a moves in two chunks, b was already there, c moves in three. */
const events: ReadonlyArray<BlobEvent> = [
  { _tag: "Start", digest: A, size: 2 * MiB },
  { _tag: "Done", digest: B, size: 512, skipped: true },
  { _tag: "Start", digest: C, size: 3 * MiB },
  { _tag: "Progress", digest: A, size: 2 * MiB, done: MiB },
  { _tag: "Progress", digest: C, size: 3 * MiB, done: MiB },
  { _tag: "Progress", digest: A, size: 2 * MiB, done: 2 * MiB },
  { _tag: "Done", digest: A, size: 2 * MiB, skipped: false },
  { _tag: "Progress", digest: C, size: 3 * MiB, done: 2 * MiB },
  { _tag: "Progress", digest: C, size: 3 * MiB, done: 3 * MiB },
  { _tag: "Done", digest: C, size: 3 * MiB, skipped: false }
]

const moved: Moved = {
  digest: digest("f"),
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  transferred: 2,
  skipped: 1,
  bytesTransferred: 5 * MiB,
  bytesSkipped: 512
}

/** Feeds the events to a renderer, taking a frame after each (and advancing a fake clock 100 ms). */
const play = (tty: boolean, size = size80, list: ReadonlyArray<BlobEvent> = events) => {
  let t = 0
  const renderer = Progress.makeRenderer({ tty, now: () => t })
  const frames: Array<string> = []
  for (const event of list) {
    renderer.onBlob(event)
    t += 100
    frames.push(renderer.frame(size))
  }
  frames.push(renderer.finish(size, Progress.summaryLine("pulled", moved, t)))
  return frames
}

/**
 * A minimal terminal: applies text, `\r`, `\n`, cursor up (`ESC[nA`), clear line (`ESC[2K`) and
 * clear below (`ESC[J`), returning the screen's lines. Anything else fails the test.
 */
const screen = (output: string): Array<string> => {
  const lines: Array<string> = [""]
  let row = 0
  let col = 0
  const put = (ch: string) => {
    const line = lines[row]!.padEnd(col)
    lines[row] = line.slice(0, col) + ch + line.slice(col + 1)
    col++
  }
  for (let i = 0; i < output.length; i++) {
    const ch = output[i]!
    if (ch === "\x1b") {
      const m = /^\x1b\[(\d*)([AJK])/.exec(output.slice(i))
      assert.isNotNull(m, `unexpected escape sequence at ${JSON.stringify(output.slice(i, i + 8))}`)
      const [all, n, op] = m!
      if (op === "A") row = Math.max(0, row - Number(n || "1"))
      else if (op === "K") lines[row] = ""
      else {
        lines.length = row + 1
        lines[row] = lines[row]!.slice(0, col)
      }
      i += all.length - 1
    } else if (ch === "\r") {
      col = 0
    } else if (ch === "\n") {
      row++
      col = 0
      if (row === lines.length) lines.push("")
    } else {
      put(ch)
    }
  }
  return lines[lines.length - 1] === "" ? lines.slice(0, -1) : lines
}

describe("formatting", () => {
  it("bytes in binary units, durations in s / m / h, digests to 12 hex digits", () => {
    assert.strictEqual(Bytes.format(0), "0 B")
    assert.strictEqual(Bytes.format(1023), "1023 B")
    assert.strictEqual(Bytes.format(1536), "1.5 KiB")
    assert.strictEqual(Bytes.format(12.34 * MiB), "12.3 MiB")
    assert.strictEqual(Bytes.format(3 * 1024 * MiB), "3.0 GiB")
    assert.strictEqual(Progress.formatDuration(420), "0.4s")
    assert.strictEqual(Progress.formatDuration(125_000), "2m05s")
    assert.strictEqual(Progress.formatDuration(3_720_000), "1h02m")
    assert.strictEqual(Progress.shortDigest(A), "sha256:aaaaaaaaaaaa")
  })

  it("the summary names the image, what moved, what was already there and the time", () => {
    assert.strictEqual(
      Progress.summaryLine("pulled", moved, 1234),
      `pulled ${moved.digest}: 5.0 MiB moved (2 blobs), 512 B already present (1 blob), in 1.2s`
    )
  })
})

describe("not a terminal", () => {
  it("prints exactly one line per finished blob, then the summary, with no escape codes", () => {
    const output = play(false).join("")
    assert.notInclude(output, "\x1b")
    assert.notInclude(output, "\r")
    assert.deepStrictEqual(output.split("\n"), [
      "sha256:bbbbbbbbbbbb      512 B  exists",
      "sha256:aaaaaaaaaaaa    2.0 MiB  done",
      "sha256:cccccccccccc    3.0 MiB  done",
      `pulled ${moved.digest}: 5.0 MiB moved (2 blobs), 512 B already present (1 blob), in 1.0s`,
      ""
    ])
  })

  it("prints nothing while bytes move, and a blob's line only once it is finished", () => {
    const frames = play(false)
    // Frames after Start / Progress events are empty; only Done events produce a line.
    assert.deepStrictEqual(frames.slice(0, -1).map((f) => f.split("\n").length - 1), [0, 1, 0, 0, 0, 0, 1, 0, 0, 1])
  })

  it("on failure flushes the finished blobs and adds no summary", () => {
    const renderer = Progress.makeRenderer({ tty: false, now: () => 0 })
    for (const event of events.slice(0, 7)) renderer.onBlob(event)
    assert.strictEqual(renderer.finish(size80, undefined), "sha256:bbbbbbbbbbbb      512 B  exists\nsha256:aaaaaaaaaaaa    2.0 MiB  done\n")
  })
})

describe("on a terminal", () => {
  it("redraws in place with cursor-up and clear-line, and ends with every blob finished and the summary", () => {
    const frames = play(true)
    const output = frames.join("")
    // Every frame after the first moves the cursor back up over the previous one.
    const redraws = frames.slice(0, -1).filter((f) => f !== "").slice(1)
    assert.isAbove(redraws.length, 3)
    for (const f of redraws) assert.match(f, /^\x1b\[\d+A\r\x1b\[2K/)
    // Nothing changed since the last frame: the end adds only the summary, below the blobs.
    assert.strictEqual(frames.at(-1), `${Progress.summaryLine("pulled", moved, 1000)}\n`)
    assert.deepStrictEqual(screen(output), [
      "sha256:aaaaaaaaaaaa [=====================]      2.0 MiB / 2.0 MiB  done",
      "sha256:bbbbbbbbbbbb [                     ]                  512 B  exists",
      "sha256:cccccccccccc [=====================]      3.0 MiB / 3.0 MiB  done",
      `pulled ${moved.digest}: 5.0 MiB moved (2 blobs), 512 B already present (1 blob), in 1.0s`
    ])
  })

  it("shows a moving blob's bar, bytes done / total and rate", () => {
    const frames = play(true)
    // After the 5th event: a is half done, 1 MiB in 0.5 s (it started at t=0, frame at t=500).
    const lines = screen(frames.slice(0, 5).join(""))
    assert.strictEqual(lines[0], "sha256:aaaaaaaaaaaa [==========>          ]      1.0 MiB / 2.0 MiB  2.0 MiB/s")
    assert.match(lines[2]!, /^sha256:cccccccccccc \[=+>\s+\]\s+1\.0 MiB \/ 3\.0 MiB  3\.3 MiB\/s$/)
  })

  it("keeps every line shorter than the terminal, dropping the bar when narrow", () => {
    for (const columns of [100, 80, 60, 40, 20]) {
      const lines = screen(play(true, { columns, rows: 24 }).slice(0, -1).join(""))
      assert.lengthOf(lines, 3)
      for (const line of lines) assert.isBelow(line.length, columns, `${columns} columns: ${line}`)
    }
    const narrow = screen(play(true, { columns: 60, rows: 24 }).slice(0, -1).join(""))
    assert.strictEqual(narrow[0], "sha256:aaaaaaaaaaaa      2.0 MiB / 2.0 MiB  done")
  })

  it("at every width from 20 to 120 columns: shorter forms instead of cut words or units, and every finished blob's word shown", () => {
    const GiB = 1024 * MiB
    const big: ReadonlyArray<BlobEvent> = [
      { _tag: "Start", digest: A, size: 1.5 * GiB },
      { _tag: "Done", digest: B, size: 300 * MiB, skipped: true },
      { _tag: "Start", digest: C, size: 999 * MiB },
      { _tag: "Progress", digest: A, size: 1.5 * GiB, done: 73.8 * MiB },
      { _tag: "Progress", digest: C, size: 999 * MiB, done: 998.9 * MiB },
      { _tag: "Done", digest: C, size: 999 * MiB, skipped: false },
      { _tag: "Progress", digest: A, size: 1.5 * GiB, done: 1023.9 * MiB }
    ]
    const unit = String.raw`\d+(\.\d)? (B|KiB|MiB|GiB)`
    // Each part whole: a digest (perhaps without its prefix), a bar, sizes, then a word, a rate or a percentage.
    const whole = new RegExp(
      String.raw`^(sha256:[0-9a-f]{12}|[0-9a-f]{4,12})( \[[=> ]+\])?( +${unit}( / ${unit})?)?( +(done|exists|stopped|${unit}/s|\d+%))?$`
    )
    for (let columns = 20; columns <= 120; columns++) {
      const size = { columns, rows: 24 }
      const frames = play(true, size, big)
      for (let i = 1; i < frames.length; i++) {
        for (const line of screen(frames.slice(0, i).join(""))) {
          assert.isBelow(line.length, columns, `${columns} columns: ${line}`)
          assert.match(line, whole, `${columns} columns`)
        }
      }
      const [a, b, c] = screen(frames.slice(0, -1).join(""))
      assert.match(b!, /[0-9a-f] .*exists$/, `${columns} columns`)
      assert.match(c!, /[0-9a-f] .*done$/, `${columns} columns`)
      // What the widest form shows goes last: at 120 columns, everything.
      if (columns === 120) {
        assert.match(a!, /^sha256:a{12} \[=+>? *\] +1023\.9 MiB \/ 1\.5 GiB  \d+(\.\d)? (B|KiB|MiB|GiB)\/s$/, a)
      }
    }
    assert.deepStrictEqual(screen(play(true, { columns: 20, rows: 24 }, big).slice(0, -1).join("")), ["aaaaaaaaaaaa 66%", "bbbbbbbbbbbb exists", "cccccccccccc done"])
    assert.deepStrictEqual(screen(play(true, { columns: 30, rows: 24 }, big).slice(0, -1).join("")), [
      "sha256:aaaaaaaaaaaa  66%",
      "sha256:bbbbbbbbbbbb  exists",
      "sha256:cccccccccccc  done"
    ])
  })

  it("a rate below 1 KiB/s is whole bytes", () => {
    let t = 0
    const timed = Progress.makeRenderer({ tty: true, now: () => t })
    timed.onBlob({ _tag: "Start", digest: A, size: 4096 })
    t = 3000
    timed.onBlob({ _tag: "Progress", digest: A, size: 4096, done: 1000 })
    assert.match(screen(timed.frame(size80))[0]!, /  333 B\/s$/)
  })

  it("folds the oldest finished blobs into one line when they do not fit the terminal's height", () => {
    const many: Array<BlobEvent> = []
    for (let i = 0; i < 30; i++) {
      const d = `sha256:${String(i).padStart(64, "0")}`
      many.push({ _tag: "Start", digest: d, size: 100 }, { _tag: "Done", digest: d, size: 100, skipped: false })
    }
    const last = { _tag: "Start", digest: digest("e"), size: 100 } as const
    const lines = screen(play(true, { columns: 80, rows: 10 }, [...many, last]).slice(0, -1).join(""))
    assert.lengthOf(lines, 8)
    assert.strictEqual(lines[0], "24 blobs finished (2.3 KiB)")
    assert.match(lines[7]!, /^sha256:eeeeeeeeeeee .* 0 B \/ 100 B$/)
    // Narrow: the folded line drops its size rather than cutting it.
    assert.strictEqual(screen(play(true, { columns: 20, rows: 10 }, [...many, last]).slice(0, -1).join(""))[0], "24 blobs finished")
  })

  it("on failure draws the last state and leaves the cursor at the start of a line", () => {
    const renderer = Progress.makeRenderer({ tty: true, now: () => 0 })
    for (const event of events.slice(0, 5)) renderer.onBlob(event)
    const out = renderer.finish(size80, undefined)
    assert.isTrue(out.endsWith("\n"))
    assert.lengthOf(screen(out), 3)
  })

  it("ended (failed or interrupted) with blobs still moving: they show stopped, never a rate that looks live", () => {
    let t = 0
    const renderer = Progress.makeRenderer({ tty: true, now: () => t })
    for (const event of events.slice(0, 5)) {
      renderer.onBlob(event)
      t += 100
    }
    const drawn = renderer.frame(size80)
    assert.match(drawn, /MiB\/s/)
    // Nothing moved since that frame: the end redraws anyway.
    const lines = screen(drawn + renderer.finish(size80, undefined))
    assert.notMatch(lines.join("\n"), /\/s/)
    assert.match(lines[0]!, /^sha256:a{12} \[=+> *\] +1\.0 MiB \/ 2\.0 MiB  stopped$/)
    assert.match(lines[1]!, /exists$/)
    assert.match(lines[2]!, /^sha256:c{12} .* 1\.0 MiB \/ 3\.0 MiB  stopped$/)
  })
})

// ---------------------------------------------------------------------------------------------
// track: the timer fiber and the final frame

/** A fake transfer: the events, one every 50 ms, then `result`. */
const transfer = (result: Effect.Effect<Moved, string>) => (onBlob: ((event: BlobEvent) => void) | undefined) =>
  Effect.gen(function*() {
    for (const event of events) {
      onBlob?.(event)
      yield* Effect.sleep("50 millis")
    }
    return yield* result
  })

const captured = (mode: Progress.Mode) => {
  const writes: Array<string> = []
  const display: Progress.Display = {
    mode,
    write: (text) => Effect.sync(() => void writes.push(text)),
    size: Effect.succeed(size80)
  }
  return { display, writes }
}

describe("track", () => {
  it.effect("redraws on a timer while the transfer runs, then draws the final state and the summary", () =>
    Effect.gen(function*() {
      const { display, writes } = captured("tty")
      const fiber = yield* Effect.fork(Progress.track(display, Progress.movedSummary("pulled"), transfer(Effect.succeed(moved))))
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(yield* Fiber.join(fiber), moved)
      // 500 ms of transfer at one frame per 100 ms: several redraws, not one per event.
      assert.isAtLeast(writes.length, 4)
      assert.isAtMost(writes.length, 7)
      assert.isAtLeast(writes.filter((w) => /\x1b\[\d+A/.test(w)).length, 3)
      const lines = screen(writes.join(""))
      assert.lengthOf(lines, 4)
      assert.match(lines[0]!, /done$/)
      assert.match(lines[1]!, /exists$/)
      assert.match(lines[2]!, /done$/)
      assert.strictEqual(lines[3], `pulled ${moved.digest}: 5.0 MiB moved (2 blobs), 512 B already present (1 blob), in 0.5s`)
    }))

  it.effect("through a pipe writes one plain line per blob and the summary", () =>
    Effect.gen(function*() {
      const { display, writes } = captured("plain")
      const fiber = yield* Effect.fork(Progress.track(display, Progress.movedSummary("pushed"), transfer(Effect.succeed(moved))))
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(fiber)
      const output = writes.join("")
      assert.notInclude(output, "\x1b")
      const lines = output.trimEnd().split("\n")
      assert.lengthOf(lines, 4)
      assert.match(lines[3]!, /^pushed sha256:f{64}: /)
    }))

  it.effect("on failure stops redrawing, finishes the line and prints no summary", () =>
    Effect.gen(function*() {
      const { display, writes } = captured("tty")
      const fiber = yield* Effect.fork(Progress.track(display, Progress.movedSummary("pulled"), transfer(Effect.fail("registry went away"))))
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(exit, Exit.fail("registry went away"))
      const output = writes.join("")
      assert.isTrue(output.endsWith("\n"))
      assert.notInclude(output, "pulled")
      const count = writes.length
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(writes.length, count, "the timer fiber is stopped")
    }))

  it.effect("on interruption draws the state so far and leaves a clean line", () =>
    Effect.gen(function*() {
      const { display, writes } = captured("tty")
      const fiber = yield* Effect.fork(Progress.track(display, Progress.movedSummary("pulled"), transfer(Effect.never)))
      yield* TestClock.adjust("230 millis")
      yield* Fiber.interrupt(fiber)
      const lines = screen(writes.join(""))
      assert.isTrue(writes.join("").endsWith("\n"))
      assert.lengthOf(lines, 3)
      assert.match(lines[2]!, /^sha256:cccccccccccc .* 1\.0 MiB \/ 3\.0 MiB/)
    }))

  it.effect("--quiet writes nothing and does not even listen to blob events", () =>
    Effect.gen(function*() {
      const { display, writes } = captured("quiet")
      let listened = true
      const fiber = yield* Effect.fork(Progress.track(display, Progress.movedSummary("pulled"), (onBlob) => {
        listened = onBlob !== undefined
        return transfer(Effect.succeed(moved))(onBlob)
      }))
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(fiber)
      assert.isFalse(listened)
      assert.deepStrictEqual(writes, [])
    }))
})
