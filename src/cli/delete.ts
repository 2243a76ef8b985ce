/**
 * `microagent delete <ref> [--yes]`: deletes an image's manifest from a registry ([M3]). A tag is
 * resolved to its digest first, since registries delete manifests by digest, which removes every
 * tag of the repository pointing at it: the question asked on a terminal says so. Without a
 * terminal to ask on, `--yes` is required. Thin: parse, ask RegistryClient, print.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Prompt from "@effect/cli/Prompt"
import * as Terminal from "@effect/platform/Terminal"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { UsageError } from "../domain/Errors.js"
import { RegistryClient } from "../RegistryClient.js"
import * as CliArgs from "./args.js"
import { allowInsecure, insecureOption } from "./insecure.js"
import { Stdio } from "./Stdio.js"

/**
 * A yes/no question on stderr, answered on stdin; no unless `y`. The terminal's own display is
 * stdout, which holds the result (and may be a pipe, as in `digest=$(microagent delete …)`).
 */
const confirm = (message: string) =>
  Effect.gen(function*() {
    const stdio = yield* Stdio
    return yield* Prompt.confirm({ message, placeholder: { defaultConfirm: "[Y/n]", defaultDeny: "[y/N]" } }).pipe(
      Effect.updateService(Terminal.Terminal, (terminal) => ({
        ...terminal,
        display: stdio.writeStderr,
        columns: Effect.map(stdio.stderrSize, (size) => size.columns)
      }))
    )
  })

export const deleteCommand = Command.make(
  "delete",
  {
    image: Args.text({ name: "reference" }).pipe(
      Args.withDescription("Image to delete, by tag or digest: [registry/]repository[:tag][@digest], e.g. localhost:5000/team/app:old")
    ),
    yes: Options.boolean("yes").pipe(
      Options.withAlias("y"),
      Options.withDescription("Delete without asking; required without a terminal, e.g. microagent delete --yes localhost:5000/team/app:old")
    ),
    insecure: insecureOption
  },
  (args) =>
    Effect.gen(function*() {
      const ref = yield* CliArgs.imageReference(args.image)
      const stdio = yield* Stdio
      // Checked before anything is sent, the tag's resolution included.
      if (!args.yes && !(stdio.stdinIsTTY && stdio.stderrIsTTY)) {
        return yield* new UsageError({
          message: "no terminal to confirm the deletion on, and --yes was not given; nothing was deleted",
          hint: `microagent delete --yes ${args.image}`
        })
      }
      yield* allowInsecure(args.insecure, ref.registry)
      const client = yield* RegistryClient
      const repo = { registry: ref.registry, repository: ref.repository }
      const name = `${ref.registry}/${ref.repository}`
      const digest = yield* client.resolveDigest(repo, ref.digest ?? ref.tag ?? "latest")
      if (!args.yes && !(yield* confirm(`Delete ${name}@${digest}? This removes every tag of ${name} that points at it`))) {
        return yield* stdio.writeStderr("nothing deleted\n")
      }
      yield* client.deleteManifest(repo, digest)
      yield* stdio.writeStderr(`deleted ${name}@${digest}\n`)
      yield* Console.log(digest)
    })
).pipe(Command.withDescription("Delete an image's manifest from a registry (with every tag pointing at it) and print its digest"))
