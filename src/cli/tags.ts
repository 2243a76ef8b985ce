/**
 * `microagent tags <repository>`: every tag of a repository, following `Link` pagination ([P9]).
 * Thin: parse, ask RegistryClient, print.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { InvalidReference } from "../domain/Errors.js"
import * as Reference from "../domain/Reference.js"
import { RegistryClient } from "../RegistryClient.js"
import { allowInsecure, insecureOption } from "./insecure.js"

const example = "e.g. alpine, ghcr.io/acme/app, localhost:5000/team/app"

/**
 * A repository: a reference with neither tag nor digest. Reference.parse reads a bare name as
 * `:latest`, so the tag is looked for in the text, where the grammar puts it: after a ':' that
 * follows the last '/' ([I1]).
 */
export const repository = (text: string) =>
  Either.match(Reference.parse(text), {
    onLeft: (reason) => Effect.fail(new InvalidReference({ reference: text, message: reason, hint: example })),
    onRight: (ref) => {
      const named = text.includes("@") ? "a digest" : text.lastIndexOf(":") > text.lastIndexOf("/") ? "a tag" : undefined
      return named === undefined
        ? Effect.succeed({ registry: ref.registry, repository: ref.repository })
        : Effect.fail(new InvalidReference({
          reference: text,
          message: `"${text}" names ${named}; tags lists a repository, so give its name alone`,
          hint: `microagent tags ${Reference.familiar({ ...ref, tag: undefined, digest: undefined })}`
        }))
    }
  })

export const tags = Command.make(
  "tags",
  {
    repository: Args.text({ name: "repository" }).pipe(
      Args.withDescription("Repository to list, without tag or digest: [registry/]repository, e.g. localhost:5000/team/app")
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print one JSON document: {repository, tags}, e.g. microagent tags --json app | jq -r '.tags[]'")),
    insecure: insecureOption
  },
  (args) =>
    Effect.gen(function*() {
      const repo = yield* repository(args.repository)
      yield* allowInsecure(args.insecure, repo.registry)
      // In text, each page is printed as it arrives: a listing cut short ([H3]) still shows what it had.
      const printPage = (page: ReadonlyArray<string>) => page.length === 0 ? Effect.void : Console.log(page.join("\n"))
      const all = yield* (yield* RegistryClient).listTags(repo, args.json ? undefined : printPage)
      if (args.json) yield* Console.log(JSON.stringify({ repository: `${repo.registry}/${repo.repository}`, tags: all }, null, 2))
    })
).pipe(Command.withDescription("List every tag of a repository, one per line, following the registry's pagination"))
