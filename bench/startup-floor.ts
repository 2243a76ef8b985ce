// The smallest program on microagent's CLI stack, as a yardstick for its start-up: an
// @effect/cli command tree `registry list` that does nothing, run by NodeRuntime with the
// platform services the CLI starts with (file system, path, a terminal loaded on first use),
// bundled and minified the way the CLI is and run by the CLI's launcher (code cache included).
// What this costs over `node -e 0` is the stack's own floor; what microagent costs over this is
// its own code.
import * as Command from "@effect/cli/Command"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as LazyTerminal from "../src/node/LazyTerminal.js"

const list = Command.make("list", {}, () => Effect.void)
const registry = Command.make("registry").pipe(Command.withSubcommands([list]))
const main = Command.make("microagent").pipe(Command.withSubcommands([registry]))

Command.run(main, { name: "microagent", version: "0" })(process.argv).pipe(
  Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, LazyTerminal.layer(false))),
  NodeRuntime.runMain
)
