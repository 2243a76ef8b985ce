/**
 * The `microagent` command tree.
 */
import * as Command from "@effect/cli/Command"
import type * as Layer from "effect/Layer"
import type { AuthStore } from "../AuthStore.js"
import type { Copy } from "../Copy.js"
import type { CredentialResolver } from "../CredentialResolver.js"
import type { ImageStore } from "../ImageStore.js"
import type { Images } from "../Images.js"
import type { Rootfs } from "../Rootfs.js"
import type { Runner } from "../Runner.js"
import type { TlsPolicy } from "../registry/TlsPolicy.js"
import type { RegistryClient } from "../RegistryClient.js"
import { catalog } from "./catalog.js"
import { copy } from "./copy.js"
import { deleteCommand } from "./delete.js"
import { pull, push } from "./images.js"
import { inspect } from "./inspect.js"
import { login, registryCommands } from "./registry.js"
import { rootfs } from "./rootfs.js"
import { commandAfterImage, run as runCommand } from "./run.js"
import { secret } from "./secret.js"
import { images } from "./store.js"
import { tag } from "./tag.js"
import { tags } from "./tags.js"
import * as Tree from "./tree.js"
import * as Usage from "./usage.js"

/** The services every command uses. */
export type CredentialServices = AuthStore | CredentialResolver

/** The services of the commands that talk to registries. */
export type RegistryServices = Copy | Images | ImageStore | RegistryClient | Rootfs | Runner | TlsPolicy

export interface Services<E1, R1, E2, R2> {
  readonly credentials: Layer.Layer<CredentialServices, E1, R1>
  readonly registry: Layer.Layer<RegistryServices, E2, R2>
}

/** Every command, with the services it uses: what runs, and what help, completions and usage errors are read from. */
export const commandTree = <E1, R1, E2, R2>(services: Services<E1, R1, E2, R2>) => {
  const withRegistry = <Name extends string, RC, EC, A>(command: Command.Command<Name, RC, EC, A>) =>
    Command.provide(command, services.registry)
  return Command.make("microagent").pipe(
    Command.withDescription("An OCI registry client that talks to registries directly: no Docker, no credential helpers"),
    Command.withSubcommands([
      withRegistry(pull),
      withRegistry(push),
      withRegistry(copy),
      registryCommands(withRegistry(login)),
      withRegistry(inspect),
      withRegistry(tags),
      withRegistry(tag),
      withRegistry(deleteCommand),
      withRegistry(catalog),
      withRegistry(images),
      withRegistry(rootfs),
      withRegistry(runCommand),
      secret
    ]),
    Command.provide(services.credentials)
  )
}

/**
 * The services are built by the command that runs, once its arguments are parsed: `--help`,
 * `--version` and usage errors build none (and need no `HOME`), and `services.registry` is built
 * only by the commands that talk to a registry. Every start pays for what it builds, and
 * `registry list` or `logout` need none of the registry side.
 */
export const run = <E1, R1, E2, R2>(version: string, services: Services<E1, R1, E2, R2>) => {
  const microagent = commandTree(services)
  const dispatch = Usage.dispatch(Tree.fromCommand(microagent), version, Command.run(microagent, { name: "microagent", version }))
  return (argv: ReadonlyArray<string>) => dispatch(commandAfterImage(argv))
}
