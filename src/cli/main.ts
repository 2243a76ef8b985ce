/**
 * The `microagent` command tree.
 */
import * as Command from "@effect/cli/Command"
import { images } from "./images.js"
import { inspect } from "./inspect.js"
import { registry } from "./registry.js"
import { tags } from "./tags.js"

export const microagent = Command.make("microagent").pipe(
  Command.withDescription("An OCI registry client that talks to registries directly: no Docker, no credential helpers"),
  Command.withSubcommands([...images, registry, inspect, tags])
)

export const run = (version: string) => Command.run(microagent, { name: "microagent", version })
