/**
 * `microagent pull` and `microagent push` (SPEC §3). Thin: parse, call Images, print the digest
 * (or `--json`); progress goes to stderr (./progress.ts).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { ImageStoreError, UsageError } from "../domain/Errors.js"
import * as Reference from "../domain/Reference.js"
import { type BlobEvent, Images, type Moved } from "../Images.js"
import * as CliArgs from "./args.js"
import { allowInsecure, insecureOption } from "./insecure.js"
import * as Progress from "./progress.js"


const jobs = Options.integer("jobs").pipe(
  Options.withDescription("Blobs to move at once, 1–64 (default 4), e.g. --jobs 8"),
  Options.withDefault(4)
)

const quiet = (example: string) =>
  Options.boolean("quiet").pipe(
    Options.withAlias("q"),
    Options.withDescription(`Print only the digest (or --json): no progress or summary on stderr; errors and warnings still appear. E.g. ${example}`)
  )

const json = (example: string) =>
  Options.boolean("json").pipe(
    Options.withDescription(
      `Print one JSON document on stdout instead of the digest: reference, digest, mediaType, transferred, skipped, bytesTransferred, bytesSkipped, durationMs; e.g. ${example}`
    )
  )

/**
 * Runs a transfer with progress on stderr, then prints the digest, or the JSON document, on
 * stdout; after a conversion, the digest it was converted from on stderr ([M7]).
 */
export const transfer = <E, R>(
  options: { readonly quiet: boolean; readonly json: boolean; readonly verb: string; readonly reference: string },
  run: (onBlob: ((event: BlobEvent) => void) | undefined) => Effect.Effect<Moved, E, R>
) =>
  Effect.gen(function*() {
    const display = yield* Progress.display(options.quiet)
    const [elapsed, moved] = yield* Effect.timed(Progress.track(display, Progress.movedSummary(options.verb), run))
    const converted = moved.sourceDigest !== undefined && moved.sourceDigest !== moved.digest
    if (converted && !options.quiet && !options.json) yield* Console.error(`converted from ${moved.sourceDigest}`)
    yield* Console.log(options.json ? JSON.stringify(document(options.reference, moved, elapsed)) : moved.digest)
  })

/** The `--json` document: field names are stable (docs list them). */
const document = (reference: string, moved: Moved, elapsed: Duration.Duration) => ({
  reference,
  digest: moved.digest,
  ...(moved.sourceDigest !== undefined && moved.sourceDigest !== moved.digest ? { sourceDigest: moved.sourceDigest } : {}),
  mediaType: moved.mediaType,
  transferred: moved.transferred,
  skipped: moved.skipped,
  bytesTransferred: moved.bytesTransferred,
  bytesSkipped: moved.bytesSkipped,
  durationMs: Math.round(Duration.toMillis(elapsed))
})

export const checkJobs = (n: number) => n >= 1 && n <= 64 ? Effect.void : Effect.fail(new UsageError({ message: `--jobs must be between 1 and 64, not ${n}` }))

/** The flags every transfer takes, their examples in the words of the command that takes them (`push`, `<source> <reference>`). */
export const transferOptions = (command: string, args: string) => ({
  jobs,
  quiet: quiet(`digest=$(microagent ${command} -q ${args})`),
  json: json(`microagent ${command} --json ${args} | jq .bytesTransferred`),
  insecure: insecureOption
})

/** `--format oci` ([I2], [M7]): pull and copy convert Docker manifests to OCI media types. */
export const formatOption = Options.choice("format", ["oci"]).pipe(
  Options.withDescription("Convert Docker manifests and configs to OCI media types (new digest on stdout, 'converted from <old>' on stderr); without it the bytes are kept exactly, e.g. --format oci"),
  Options.optional
)

export const pull = Command.make(
  "pull",
  {
    image: Args.text({ name: "reference" }).pipe(Args.withDescription("Image to pull: [registry/]repository[:tag][@digest], e.g. alpine:3.20 or localhost:5000/team/app@sha256:<hex>")),
    platform: Options.text("platform").pipe(Options.withDescription("Pick one platform of a multi-platform image: os/arch[/variant], e.g. --platform linux/arm64"), Options.optional),
    output: Options.directory("output").pipe(Options.withDescription("Write an OCI layout to this folder instead of the shared store, e.g. --output ./app-layout"), Options.optional),
    format: formatOption,
    ...transferOptions("pull", "app:1")
  },
  (args) =>
    Effect.gen(function*() {
      const ref = yield* CliArgs.imageReference(args.image)
      yield* checkJobs(args.jobs)
      const platform = Option.isSome(args.platform)
        ? yield* CliArgs.platform(args.platform.value)
        : undefined
      yield* allowInsecure(args.insecure, ref.registry)
      const images = yield* Images
      const output = Option.getOrUndefined(args.output)
      yield* transfer(
        { quiet: args.quiet, json: args.json, verb: "pulled", reference: Reference.format(ref) },
        (onBlob) => images.pull(ref, { platform, output, jobs: args.jobs, onBlob, format: Option.getOrUndefined(args.format) })
      )
    })
).pipe(Command.withDescription("Pull an image into the shared store (or --output folder) and print its digest"))

export const push = Command.make(
  "push",
  {
    source: Args.text({ name: "source" }).pipe(Args.withDescription("An image in the store (by reference) or a layout: oci:<dir>[:<tag>], e.g. oci:./app-layout:1.0")),
    image: Args.text({ name: "reference" }).pipe(Args.withDescription("Where to push it: registry/repository[:tag], e.g. localhost:5000/team/app:1.0")),
    ...transferOptions("push", "oci:./app-layout:1.0 localhost:5000/team/app:1.0")
  },
  (args) =>
    Effect.gen(function*() {
      const source = yield* CliArgs.imageSource(args.source)
      const target = yield* CliArgs.imageReference(args.image)
      yield* checkJobs(args.jobs)
      yield* allowInsecure(args.insecure, target.registry)
      const images = yield* Images
      yield* transfer(
        { quiet: args.quiet, json: args.json, verb: "pushed", reference: Reference.format(target) },
        (onBlob) =>
          images.push(source, target, { jobs: args.jobs, onBlob }).pipe(
            // Pushing from a registry is a copy (issue 12, item 7).
            Effect.catchTag("ImageStoreError", (e) =>
              Effect.fail(
                source._tag === "Store" && e.hint === undefined && /no image named|does not exist/.test(e.reason)
                  ? ImageStoreError.of(e.path, e.reason, `push sends images from the store; to copy from a registry: microagent copy ${args.source} ${args.image}`)
                  : e
              ))
          )
      )
    })
).pipe(Command.withDescription("Push an image from the store or an OCI layout to a registry and print its digest"))

