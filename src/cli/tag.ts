/**
 * `microagent tag <ref> <tag>...`: more tags for an image already in a registry ([M2]). Its
 * manifest is put, byte for byte and with its media type, under each new tag of the same
 * repository; no blob moves. Thin: parse, ask RegistryClient, print.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { UsageError } from "../domain/Errors.js"
import * as Reference from "../domain/Reference.js"
import { RegistryClient } from "../RegistryClient.js"
import * as CliArgs from "./args.js"
import { allowInsecure, insecureOption } from "./insecure.js"
import { Stdio } from "./Stdio.js"

/**
 * A tag as [I1]'s grammar has it (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`), asked of the reference
 * parser so that the grammar lives in one place: a tag is valid when a reference ending in it
 * parses back to exactly that tag.
 */
const newTag = (text: string) => {
  const parsed = Reference.parse(`localhost/x:${text}`)
  return Either.isRight(parsed) && parsed.right.tag === text && parsed.right.digest === undefined
    ? Effect.succeed(text)
    : Effect.fail(new UsageError({
      message: `invalid tag ${JSON.stringify(text)}: a tag is 1 to 128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'`,
      hint: "e.g. microagent tag localhost:5000/team/app:1.0 1.0.1 latest"
    }))
}

export const tag = Command.make(
  "tag",
  {
    image: Args.text({ name: "reference" }).pipe(
      Args.withDescription("Image to tag, by tag or digest: [registry/]repository[:tag][@digest], e.g. localhost:5000/team/app:1.0")
    ),
    tags: Args.text({ name: "tag" }).pipe(
      Args.atLeast(1),
      Args.withDescription("One or more new tags in the same repository, e.g. 1.0.1 latest (a tag that exists is moved to this image)")
    ),
    quiet: Options.boolean("quiet").pipe(
      Options.withAlias("q"),
      Options.withDescription("Print only the digest (or --json): no line per tag on stderr. E.g. digest=$(microagent tag -q app:1.0 stable)")
    ),
    json: Options.boolean("json").pipe(
      Options.withDescription("Print one JSON document on stdout instead of the digest: reference, digest, mediaType, tags; e.g. microagent tag --json app:1.0 stable | jq -r .digest")
    ),
    insecure: insecureOption
  },
  (args) =>
    Effect.gen(function*() {
      // Every argument is checked before anything is sent: a bad tag leaves the registry as it was.
      const ref = yield* CliArgs.imageReference(args.image)
      const tags = yield* Effect.forEach(args.tags, newTag)
      yield* allowInsecure(args.insecure, ref.registry)
      const client = yield* RegistryClient
      const stdio = yield* Stdio
      const repo = { registry: ref.registry, repository: ref.repository }
      const image = yield* client.getManifest(repo, ref.digest ?? ref.tag ?? "latest")
      for (const name of tags) {
        yield* client.putManifest(repo, name, image.bytes, image.mediaType)
        if (!args.quiet) yield* stdio.writeStderr(`tagged ${Reference.format({ ...ref, tag: name, digest: undefined })}\n`)
      }
      yield* Console.log(
        args.json
          ? JSON.stringify({ reference: Reference.format(ref), digest: image.digest, mediaType: image.mediaType, tags })
          : image.digest
      )
    })
).pipe(Command.withDescription("Add tags to an image in a registry (its manifest under each new tag; no blob moves) and print its digest"))
