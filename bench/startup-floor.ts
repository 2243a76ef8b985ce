// The smallest program on microagent's CLI stack, as a yardstick for its start-up: an
// @effect/cli command tree `registry list` that does nothing, run by NodeRuntime with
// NodeContext, bundled and minified the way the CLI is. What this costs over `node -e 0` is the
// stack's own floor; what microagent costs over this is its own code.
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"

const list = Command.make("list", {}, () => Effect.void)
const registry = Command.make("registry").pipe(Command.withSubcommands([list]))
const main = Command.make("microagent").pipe(Command.withSubcommands([registry]))

Command.run(main, { name: "microagent", version: "0" })(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
