/**
 * The terminal @effect/cli asks for, loaded when a prompt first uses it. Node's terminal opens
 * standard input and loads readline as it is built; only `login` without `--password-stdin`
 * prompts, so every other command starts without either.
 */
import * as Terminal from "@effect/platform/Terminal"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { withoutColours } from "../cli/output.js"
import { onFirstUse } from "./Lazy.js"

/** `plain`: prompts without colours (`NO_COLOR`), their cursor movement kept so they still redraw. */
export const layer = (plain: boolean) => Layer.scoped(
  Terminal.Terminal,
  Effect.map(
    onFirstUse(Terminal.Terminal, () => import("@effect/platform-node/NodeTerminal").then((node) => node.layer)),
    (real) =>
      Terminal.Terminal.of({
        columns: Effect.flatMap(real, (terminal) => terminal.columns),
        rows: Effect.flatMap(real, (terminal) => terminal.rows),
        isTTY: Effect.flatMap(real, (terminal) => terminal.isTTY),
        readInput: Effect.flatMap(real, (terminal) => terminal.readInput),
        readLine: Effect.flatMap(real, (terminal) => terminal.readLine),
        display: (text) => Effect.flatMap(real, (terminal) => terminal.display(plain ? withoutColours(text) : text))
      })
  )
)
