/**
 * `microagent pull` and `microagent push` (SPEC §3). Thin: parse, call Images, print the digest.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { InvalidReference, UsageError } from "../domain/Errors.js"
import * as Platform from "../domain/Platform.js"
import * as Reference from "../domain/Reference.js"
import { Images, type PushSource } from "../Images.js"
import { allowInsecure, insecureOption } from "./insecure.js"

const reference = (text: string) =>
  Either.match(Reference.parse(text), {
    onLeft: (reason) => Effect.fail(new InvalidReference({ reference: text, message: reason, hint: "e.g. alpine, ghcr.io/acme/app:1.2, localhost:5000/team/app@sha256:…" })),
    onRight: Effect.succeed
  })

const jobs = Options.integer("jobs").pipe(
  Options.withDescription("Blobs to move at once (default 4)"),
  Options.withDefault(4)
)


const checkJobs = (n: number) => n >= 1 && n <= 64 ? Effect.void : Effect.fail(new UsageError({ message: `--jobs must be between 1 and 64, not ${n}` }))

const pull = Command.make(
  "pull",
  {
    image: Args.text({ name: "reference" }).pipe(Args.withDescription("Image to pull: [registry/]repository[:tag][@digest]")),
    platform: Options.text("platform").pipe(Options.withDescription("Pick one platform of a multi-platform image: os/arch[/variant]"), Options.optional),
    output: Options.directory("output").pipe(Options.withDescription("Write an OCI layout to this folder instead of the shared store"), Options.optional),
    jobs,
    insecure: insecureOption
  },
  (args) =>
    Effect.gen(function*() {
      const ref = yield* reference(args.image)
      yield* checkJobs(args.jobs)
      const platform = Option.isSome(args.platform)
        ? yield* Either.match(Platform.parse(args.platform.value), {
          onLeft: (reason) => Effect.fail(new UsageError({ message: `invalid --platform: ${reason}`, hint: "e.g. linux/amd64, linux/arm64, linux/arm/v7" })),
          onRight: Effect.succeed
        })
        : undefined
      yield* allowInsecure(args.insecure, ref.registry)
      const moved = yield* (yield* Images).pull(ref, { platform, output: Option.getOrUndefined(args.output), jobs: args.jobs })
      yield* Console.log(moved.digest)
    })
).pipe(Command.withDescription("Pull an image into the shared store (or --output folder) and print its digest"))

/** `oci:<dir>[:<tag>]` names a layout; anything else an image in the shared store. */
const pushSource = (text: string): Effect.Effect<PushSource, InvalidReference> => {
  if (text.startsWith("oci:")) {
    const rest = text.slice(4)
    const colon = rest.lastIndexOf(":")
    const [dir, tag] = colon > 0 && !rest.slice(colon + 1).includes("/") ? [rest.slice(0, colon), rest.slice(colon + 1)] : [rest, undefined]
    return dir === ""
      ? Effect.fail(new InvalidReference({ reference: text, message: "oci: needs a folder, as in oci:./layout:tag" }))
      : Effect.succeed({ _tag: "Layout", dir, tag })
  }
  return Effect.map(reference(text), (ref) => ({ _tag: "Store", reference: ref }))
}

const push = Command.make(
  "push",
  {
    source: Args.text({ name: "source" }).pipe(Args.withDescription("An image in the store (by reference) or a layout: oci:<dir>[:<tag>]")),
    image: Args.text({ name: "reference" }).pipe(Args.withDescription("Where to push it: registry/repository[:tag]")),
    jobs,
    insecure: insecureOption
  },
  (args) =>
    Effect.gen(function*() {
      const source = yield* pushSource(args.source)
      const target = yield* reference(args.image)
      yield* checkJobs(args.jobs)
      yield* allowInsecure(args.insecure, target.registry)
      const moved = yield* (yield* Images).push(source, target, { jobs: args.jobs })
      yield* Console.log(moved.digest)
    })
).pipe(Command.withDescription("Push an image from the store or an OCI layout to a registry and print its digest"))

export const images = [pull, push] as const
