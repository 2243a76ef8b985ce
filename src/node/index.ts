/**
 * `microagent/node`: what microagent offers on Node beyond its platform-free main export: the
 * CLI's HttpClient and blob file I/O, and one layer with every Node service the main export's
 * layers need.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as Layer from "effect/Layer"
import * as BlobFiles from "./BlobFiles.js"

export * as NodeBlobFiles from "./BlobFiles.js"
export * as NodeHttp from "./Http.js"

/**
 * FileSystem, Path and Node's blob file I/O, for `Live.layer` and the services; add
 * `NodeHttp.layer` (with `TlsPolicy`) for the HttpClient.
 */
export const layer = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, BlobFiles.layer)
