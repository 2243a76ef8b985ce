/**
 * How blob files are written and read while they move, behind a service so that the library's
 * main export stays platform-free: this default uses only Effect's FileSystem; `microagent/node`
 * offers Node's faster one (queued writes flushed as they grow, files piped into requests), which
 * the CLI uses. Images takes whichever is provided, and this one when none is.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { ImageStoreError } from "./domain/Errors.js"
import type * as Manifest from "./domain/Manifest.js"
import type { OnChunk, OpenNodeSource } from "./registry/Body.js"

/** A blob file being written. */
export interface FileSink {
  /** Takes a chunk; a promise it returns holds the sender back until it settles (or fails the file). */
  readonly write: (chunk: Uint8Array) => void | Promise<void>
  /** Writes what is queued and closes the file. */
  readonly close: Effect.Effect<void, ImageStoreError>
}

/** Checks a blob's bytes as they are sent: a reason to stop, or none. */
export interface SendCheck {
  readonly add: (chunk: Uint8Array) => ImageStoreError | undefined
  readonly end: () => ImageStoreError | undefined
}

export interface BlobFilesService {
  /** Opens `path` for writing, truncated; the scope closes it if `close` was not reached. */
  readonly sink: (path: string) => Effect.Effect<FileSink, ImageStoreError, Scope.Scope>
  /**
   * A platform's own stream of a blob file for an upload, checked by `check` as it goes; a
   * problem is `report`ed and ends the stream. `undefined`: uploads read through FileSystem.
   */
  readonly uploadSource?: (
    file: string,
    descriptor: Manifest.Descriptor,
    check: SendCheck,
    report: (e: ImageStoreError) => void
  ) => ReturnType<OpenNodeSource>
  /**
   * A platform's own stream of a blob downloaded while it is uploaded (a copy between
   * registries): `start` downloads, handing each chunk to `onChunk` and waiting on the promise it
   * returns. `undefined`: copies relay through Effect streams.
   */
  readonly relay?: (start: (onChunk: OnChunk) => Download) => ReturnType<OpenNodeSource>
}

/** A download under way, as a relay starts it: done when the blob has been handed over whole. */
export interface Download {
  readonly done: Promise<void>
  /** Stops the download (the upload it feeds has ended). */
  readonly cancel: () => void
}

export class BlobFiles extends Context.Tag("microagent/BlobFiles")<BlobFiles, BlobFilesService>() {}

const cannotWrite = (path: string, cause: unknown) =>
  ImageStoreError.of(path, `cannot write it (${cause instanceof Error ? cause.message : String(cause)})`)

/** Blob files through Effect's FileSystem: every chunk written before the next is taken. */
export const make = Effect.map(FileSystem.FileSystem, (fs): BlobFilesService => ({
  sink: (path) =>
    Effect.map(
      Effect.mapError(fs.open(path, { flag: "w" }), (e) => cannotWrite(path, e)),
      (file): FileSink => ({
        write: (chunk) => Effect.runPromise(Effect.mapError(file.writeAll(chunk), (e) => cannotWrite(path, e))),
        close: Effect.void
      })
    )
}))

/** Needs FileSystem. */
export const layer = Layer.effect(BlobFiles, make)

/** The blob file I/O in the context (the CLI's is Node's), else this FileSystem one. */
export const inContext = Effect.flatMap(
  Effect.serviceOption(BlobFiles),
  (provided) => provided._tag === "Some" ? Effect.succeed(provided.value) : make
)
