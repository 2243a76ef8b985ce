/**
 * `microagent copy <src> <dst>` ([M1]): between registries, the shared store and layouts. Thin:
 * parse both sides, call Copy, print as pull and push do.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Copy, describe } from "../Copy.js"
import { UsageError } from "../domain/Errors.js"
import * as CliArgs from "./args.js"
import { checkJobs, formatOption, transfer, transferOptions } from "./images.js"
import { allowInsecure } from "./insecure.js"

const side = (role: string, example: string) =>
  Args.text({ name: role }).pipe(Args.withDescription(
    `A registry reference, store:<ref> (the shared store) or oci:<dir>[:<name>] (a layout), e.g. ${example}`
  ))

export const copy = Command.make(
  "copy",
  {
    source: side("source", "ghcr.io/acme/app:1.0"),
    target: side("destination", "localhost:5000/acme/app:1.0"),
    platform: Options.text("platform").pipe(Options.withDescription("Copy one platform of a multi-platform image: os/arch[/variant], e.g. --platform linux/arm64"), Options.optional),
    all: Options.boolean("all").pipe(Options.withDescription("Copy every platform of a multi-platform image (the default; says so explicitly, and cannot go with --platform), e.g. microagent copy --all ghcr.io/acme/app:1.0 localhost:5000/acme/app:1.0")),
    format: formatOption,
    ...transferOptions("copy", "ghcr.io/acme/app:1.0 localhost:5000/acme/app:1.0")
  },
  (args) =>
    Effect.gen(function*() {
      const source = yield* CliArgs.copyLocation(args.source)
      const target = yield* CliArgs.copyLocation(args.target)
      yield* checkJobs(args.jobs)
      if (args.all && Option.isSome(args.platform)) {
        return yield* new UsageError({ message: "--all and --platform cannot go together", hint: "--all copies every platform; --platform picks one" })
      }
      if (source._tag === "Registry" && target._tag === "Registry" && describe(source) === describe(target)) {
        return yield* new UsageError({ message: `copy from ${describe(source)} onto itself`, hint: "to add a tag, use microagent tag <ref> <tag>" })
      }
      const platform = Option.isSome(args.platform) ? yield* CliArgs.platform(args.platform.value) : undefined
      for (const location of [source, target]) {
        if (location._tag === "Registry") yield* allowInsecure(args.insecure, location.reference.registry)
      }
      const copier = yield* Copy
      yield* transfer(
        { quiet: args.quiet, json: args.json, verb: "copied", reference: describe(target) },
        (onBlob) => copier.copy(source, target, { platform, jobs: args.jobs, onBlob, format: Option.getOrUndefined(args.format) })
      )
    })
).pipe(Command.withDescription("Copy an image between registries, the shared store (store:<ref>) and OCI layouts (oci:<dir>[:<name>]) and print its digest"))
