/**
 * The `microagent` command tree.
 */
import * as Command from "@effect/cli/Command"
import type * as Layer from "effect/Layer"
import type { Images } from "../Images.js"
import type { TlsPolicy } from "../registry/TlsPolicy.js"
import type { RegistryClient } from "../RegistryClient.js"
import { pull, push } from "./images.js"
import { inspect } from "./inspect.js"
import { login, registryCommands } from "./registry.js"
import { tags } from "./tags.js"

/** The services of the commands that talk to registries. */
export type RegistryServices = Images | RegistryClient | TlsPolicy

/**
 * `registryServices` is built by the command that runs, and only if it talks to a registry:
 * building it costs every start that pays for it, and `registry list` or `logout` need none of it.
 */
export const run = <E, R>(version: string, registryServices: Layer.Layer<RegistryServices, E, R>) => {
  const withRegistry = <Name extends string, RC, EC, A>(command: Command.Command<Name, RC, EC, A>) =>
    Command.provide(command, registryServices)
  const microagent = Command.make("microagent").pipe(
    Command.withDescription("An OCI registry client that talks to registries directly: no Docker, no credential helpers"),
    Command.withSubcommands([
      withRegistry(pull),
      withRegistry(push),
      registryCommands(withRegistry(login)),
      withRegistry(inspect),
      withRegistry(tags)
    ])
  )
  return Command.run(microagent, { name: "microagent", version })
}
