#!/usr/bin/env node
/**
 * The edge: the only module that picks Node's layers and runs the program.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Stream from "effect/Stream"
import { run } from "./cli/main.js"
import { ExitCode, exitCode, report, stderrLogger, withoutColours, withUserConsole } from "./cli/output.js"
import { Stdio } from "./cli/Stdio.js"
import * as Live from "./Live.js"
import * as NodeBlobFiles from "./node/BlobFiles.js"
import * as LazyHttp from "./node/LazyHttp.js"
import * as PipeFileSystem from "./node/PipeFileSystem.js"
import * as LazyTerminal from "./node/LazyTerminal.js"
import * as TlsPolicy from "./registry/TlsPolicy.js"

declare const MICROAGENT_VERSION: string

const noColor = (process.env["NO_COLOR"] ?? "") !== ""
const StdioLive = Layer.succeed(Stdio, {
  // A getter: reading process.stdin opens it, which only login needs.
  get stdinIsTTY() {
    return process.stdin.isTTY === true
  },
  stderrIsTTY: process.stderr.isTTY === true,
  readStdin: NodeStream.stdin.pipe(
    Stream.runCollect,
    Effect.map((chunks) => Buffer.concat(Chunk.toReadonlyArray(chunks)))
  ),
  withoutEcho: (self) => Effect.flatMap(Effect.promise(() => import("./node/Echo.js")), (echo) => echo.withoutEcho(self)),
  stderrSize: Effect.sync(() => ({ columns: process.stderr.columns || 80, rows: process.stderr.rows || 24 })),
  writeStderr: (text) => Effect.sync(() => void process.stderr.write(noColor ? withoutColours(text) : text)),
  writeStdout: (bytes) =>
    Effect.async<void>((resume) => {
      if (bytes.length === 0) return resume(Effect.void)
      process.stdout.write(bytes, () => resume(Effect.void))
    })
})

/** Built only by the commands that talk to registries (cli/main.ts): `registry list` needs none of it. */
const RegistryLive = Live.registry.pipe(
  Layer.provide(LazyHttp.layer),
  Layer.provide(NodeBlobFiles.layer),
  Layer.provideMerge(TlsPolicy.layer)
)

/**
 * Case-sensitive: @effect/cli's default matched `-Q` as `-q`, then found no value under `-q`, so
 * `pull -Q` ran without --quiet instead of being refused (cli/usage.ts refuses it first).
 */
const CliConfigLive = CliConfig.layer({ showBuiltIns: false, isCaseSensitive: true })


const MainLive = Layer.mergeAll(StdioLive, CliConfigLive).pipe(
  // Not NodeContext: its command executor and worker manager load child_process on every start.
  Layer.provideMerge(Layer.mergeAll(PipeFileSystem.layer, NodePath.layer, LazyTerminal.layer(noColor))),
  Layer.provideMerge(Logger.replace(Logger.defaultLogger, stderrLogger))
)

/** SIGTERM ends a command as SIGINT does (interrupted), but exits 143, as its sender expects. */
let terminated = false
process.once("SIGTERM", () => void (terminated = true))


Effect.suspend(() => run(MICROAGENT_VERSION, { credentials: Live.credentials, registry: RegistryLive })(process.argv)).pipe(
  withUserConsole({ stdout: noColor || !process.stdout.isTTY, stderr: noColor || !process.stderr.isTTY }),
  Effect.provide(MainLive),
  Effect.tapErrorCause(report),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    disablePrettyLogger: true,
    // Exit once the output is flushed: kept-alive sockets would hold the event loop open,
    // which would keep a finished command alive for up to a few hundred milliseconds more.
    teardown: (exit) => {
      const code = terminated && exitCode(exit) === ExitCode.interrupted ? 128 + 15 : exitCode(exit)
      // Cut short: said on a line of its own, below what was drawn (progress ends its lines; the
      // password prompt ends its own) (issue 13).
      if (exitCode(exit) === ExitCode.interrupted && Exit.isInterrupted(exit)) process.stderr.write(terminated ? "terminated\n" : "interrupted\n")
      process.stdout.write("", () => process.stderr.write("", () => process.exit(code)))
    }
  })
)
