/**
 * `microagent images list | rm | prune` ([M5]): the shared store, `~/.microagent/images`. Thin:
 * parse, ask ImageStore, print. Listing and pruning a HOME without a store create none.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Bytes from "../domain/Bytes.js"
import { InvalidReference, NotFound } from "../domain/Errors.js"
import * as Reference from "../domain/Reference.js"
import { ImageStore, type StoredImage } from "../ImageStore.js"
import { Stdio } from "./Stdio.js"

/** Names come from index.json, which other tools write too: control characters are shown escaped, never sent raw. */
// eslint-disable-next-line no-control-regex
const printable = (text: string): string => /[\u0000-\u001f\u007f-\u009f]/.test(text) ? JSON.stringify(text) : text

/** Columns padded to their widest cell (the last one is not padded). */
const table = (rows: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) => row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  ").trimEnd())
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`

/** Each line something could not read: said, and the command goes on with the rest. */
const warnAll = (problems: ReadonlyArray<string>) => Effect.forEach(problems, (p) => Effect.logWarning(printable(p)), { discard: true })

const imageJson = (image: StoredImage) => ({
  reference: image.reference,
  digest: image.digest,
  platforms: image.platforms,
  size: image.size,
  pulledAt: image.pulledAt ?? null
})

const list = Command.make(
  "list",
  {
    json: Options.boolean("json").pipe(
      Options.withDescription(
        "Print one JSON document: {images: [{reference, digest, platforms, size, pulledAt}], totalBytes}, e.g. microagent images list --json | jq -r '.images[].reference'"
      )
    ),
    quiet: Options.boolean("quiet").pipe(
      Options.withAlias("q"),
      Options.withDescription("Print only the references, one per line, e.g. microagent images rm $(microagent images list -q)")
    )
  },
  (args) =>
    Effect.gen(function*() {
      const store = yield* ImageStore
      const inventory = yield* store.list
      yield* warnAll(inventory.problems)
      const images = [...inventory.images].sort((a, b) => a.reference.localeCompare(b.reference))
      if (args.json) {
        return yield* Console.log(JSON.stringify({ images: images.map(imageJson), totalBytes: inventory.totalBytes }, null, 2))
      }
      if (args.quiet) return yield* Effect.forEach(images, (image) => Console.log(printable(image.reference)), { discard: true })
      if (images.length === 0) {
        if ((yield* Stdio).stderrIsTTY) yield* Console.error("hint: the store holds no images; add one with: microagent pull <reference>")
        return
      }
      const rows = images.map((image) => [
        printable(image.reference),
        image.digest,
        image.platforms.join(",") || "-",
        Bytes.format(image.size),
        printable(image.pulledAt ?? "-")
      ])
      for (const line of table([["REFERENCE", "DIGEST", "PLATFORMS", "SIZE", "PULLED AT"], ...rows])) yield* Console.log(line)
      yield* Console.log(`total ${Bytes.format(inventory.totalBytes)} on disk (blobs shared by images counted once)`)
    })
).pipe(Command.withDescription("List the images in the shared store: reference, digest, platforms, size on disk, when pulled"))

const rm = Command.make(
  "rm",
  {
    references: Args.text({ name: "reference" }).pipe(
      Args.atLeast(1),
      Args.withDescription("Images to remove, as pull names them (alpine means docker.io/library/alpine:latest) or by their exact name in the store, e.g. localhost:5000/team/app:1.0")
    )
  },
  (args) =>
    Effect.gen(function*() {
      const store = yield* ImageStore
      const wanted = args.references.map((text) => {
        const parsed = Reference.parse(text)
        // The exact text first: another tool's name for an image need not be a reference at all.
        const spellings = Either.isRight(parsed) ? [...new Set([text, Reference.format(parsed.right)])] : [text]
        return { text, parsed, spellings }
      })
      const outcome = yield* store.remove(wanted.map((w) => w.spellings))
      const missing = outcome.missing.map((i) => wanted[i]!)
      const malformed = missing.find((w) => Either.isLeft(w.parsed))
      if (malformed !== undefined && Either.isLeft(malformed.parsed)) {
        return yield* new InvalidReference({
          reference: malformed.text,
          message: `${malformed.parsed.left}${wanted.length > 1 ? "; nothing was removed" : ""}`,
          hint: "microagent images list shows what the store holds"
        })
      }
      if (missing.length > 0) {
        const named = missing.map((w) => w.spellings.at(-1)!)
        return yield* new NotFound({
          registry: store.defaultRoot,
          what: "image",
          message: `no image named ${named.join(", ")} in the store (${store.defaultRoot})${wanted.length > 1 ? "; nothing was removed" : ""}`,
          hint: "microagent images list shows what it holds"
        })
      }
      for (const entry of outcome.removed.flat()) yield* Console.log(`removed ${printable(entry.name)} ${entry.digest}`)
      if ((yield* Stdio).stderrIsTTY) yield* Console.error("hint: their blobs stay until: microagent images prune")
    })
).pipe(Command.withDescription("Remove images from the shared store (their blobs go with the next prune); all or nothing"))

const prune = Command.make(
  "prune",
  {
    dryRun: Options.boolean("dry-run").pipe(
      Options.withDescription("Delete nothing; say what would be freed, e.g. microagent images prune --dry-run")
    ),
    json: Options.boolean("json").pipe(
      Options.withDescription("Print one JSON document: {dryRun, blobs, bytes, tempFiles, tempBytes}, e.g. microagent images prune --json | jq .bytes")
    )
  },
  (args) =>
    Effect.gen(function*() {
      const report = yield* (yield* ImageStore).prune({ dryRun: args.dryRun })
      yield* warnAll(report.problems)
      if (args.json) {
        const { blobs, bytes, dryRun, tempBytes, tempFiles } = report
        return yield* Console.log(JSON.stringify({ dryRun, blobs, bytes, tempFiles, tempBytes }, null, 2))
      }
      const temps = report.tempFiles === 0 ? "" : `, and ${plural(report.tempFiles, "stale temp file")}, ${Bytes.format(report.tempBytes)}`
      yield* Console.log(`${report.dryRun ? "would free" : "freed"} ${plural(report.blobs, "blob")}, ${Bytes.format(report.bytes)}${temps}`)
    })
).pipe(Command.withDescription("Delete every blob of the shared store that no image reaches; safe while pulls run"))

export const images = Command.make("images").pipe(
  Command.withDescription("The shared image store, ~/.microagent/images: microagent images list | rm <reference>... | prune"),
  Command.withSubcommands([list, rm, prune])
)
