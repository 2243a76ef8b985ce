/**
 * The `microagent` command tree.
 */
import * as Command from "@effect/cli/Command"
import type * as Layer from "effect/Layer"
import type { AuthStore } from "../AuthStore.js"
import type { CredentialResolver } from "../CredentialResolver.js"
import type { ImageStore } from "../ImageStore.js"
import type { Images } from "../Images.js"
import type { Rootfs } from "../Rootfs.js"
import type { Runner } from "../Runner.js"
import type { TlsPolicy } from "../registry/TlsPolicy.js"
import type { RegistryClient } from "../RegistryClient.js"
import { pull, push } from "./images.js"
import { inspect } from "./inspect.js"
import { login, registryCommands } from "./registry.js"
import { rootfs } from "./rootfs.js"
import { commandAfterImage, run as runCommand } from "./run.js"
import { secret } from "./secret.js"
import { tags } from "./tags.js"

/** The services every command uses. */
export type CredentialServices = AuthStore | CredentialResolver

/** The services of the commands that talk to registries. */
export type RegistryServices = Images | ImageStore | RegistryClient | Rootfs | Runner | TlsPolicy

/**
 * The services are built by the command that runs, once its arguments are parsed: `--help`,
 * `--version` and usage errors build none (and need no `HOME`), and `services.registry` is built
 * only by the commands that talk to a registry. Every start pays for what it builds, and
 * `registry list` or `logout` need none of the registry side.
 */
export const run = <E1, R1, E2, R2>(
  version: string,
  services: {
    readonly credentials: Layer.Layer<CredentialServices, E1, R1>
    readonly registry: Layer.Layer<RegistryServices, E2, R2>
  }
) => {
  const withRegistry = <Name extends string, RC, EC, A>(command: Command.Command<Name, RC, EC, A>) =>
    Command.provide(command, services.registry)
  const microagent = Command.make("microagent").pipe(
    Command.withDescription("An OCI registry client that talks to registries directly: no Docker, no credential helpers"),
    Command.withSubcommands([
      withRegistry(pull),
      withRegistry(push),
      registryCommands(withRegistry(login)),
      withRegistry(inspect),
      withRegistry(tags),
      withRegistry(rootfs),
      withRegistry(runCommand),
      secret
    ]),
    Command.provide(services.credentials)
  )
  const cli = Command.run(microagent, { name: "microagent", version })
  return (argv: ReadonlyArray<string>) => cli(commandAfterImage(argv))
}
