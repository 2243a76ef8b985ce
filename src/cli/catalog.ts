/**
 * `microagent catalog <registry>`: every repository of a registry (`/v2/_catalog`), following
 * `Link` pagination ([M4]). Thin: parse, ask RegistryClient, print.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as AuthKey from "../domain/AuthKey.js"
import { UsageError } from "../domain/Errors.js"
import { RegistryClient } from "../RegistryClient.js"
import { allowInsecure, insecureOption } from "./insecure.js"

const example = "e.g. localhost:5000, registry.example.com"

/** A registry as login takes it ([L1]), host[:port] alone: the catalog is the whole registry's. */
const registryHost = (text: string) =>
  Either.match(AuthKey.parse(text), {
    onLeft: (reason) => Effect.fail(new UsageError({ message: `invalid registry: ${reason}`, hint: example })),
    onRight: ({ key }) =>
      key.path.length === 0
        ? Effect.succeed(key.host)
        : Effect.fail(new UsageError({
          message: `"${text}" names a namespace; catalog lists a whole registry, so give its host alone`,
          hint: `microagent catalog ${key.host}`
        }))
  })

export const catalog = Command.make(
  "catalog",
  {
    registry: Args.text({ name: "registry" }).pipe(Args.withDescription(`Registry to list: host[:port], ${example}`)),
    json: Options.boolean("json").pipe(
      Options.withDescription("Print one JSON document: {registry, repositories}, e.g. microagent catalog --json localhost:5000 | jq -r '.repositories[]'")
    ),
    insecure: insecureOption
  },
  (args) =>
    Effect.gen(function*() {
      const registry = yield* registryHost(args.registry)
      yield* allowInsecure(args.insecure, registry)
      // In text, each page is printed as it arrives: a listing cut short ([H3]) still shows what it had.
      const printPage = (names: ReadonlyArray<string>) => Console.log(names.join("\n"))
      const all = yield* (yield* RegistryClient).listCatalog(registry, args.json ? undefined : printPage)
      if (args.json) yield* Console.log(JSON.stringify({ registry, repositories: all }, null, 2))
    })
).pipe(Command.withDescription("List every repository of a registry, one per line, following the registry's pagination"))
