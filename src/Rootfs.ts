/**
 * Rootfs (SPEC §6): an image of a layout applied into a runtime bundle (`rootfs/` and
 * `config.json`) or an ext4 disk image.
 *
 * Every build happens once per (image manifest, format) in `~/.microagent/rootfs/` ([F7]): it is
 * built in `.tmp/` there and renamed into place when whole, so two builds of one image at once
 * both succeed and one of them is kept. `--out` then gets a copy, made beside it and renamed at
 * the end ([F6]): a failed or interrupted build leaves nothing at `--out` and nothing in the cache.
 *
 * This module holds the service's interface; the implementation (rootfs/Builder.ts, with the
 * layer applier and its child processes) is loaded when a build first runs, so no other command
 * pays for loading it at start.
 */
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { DigestMismatch, ImageStoreError, LayerRejected, NotFound, ToolMissing, UsageError } from "./domain/Errors.js"
import type * as ImageConfig from "./domain/ImageConfig.js"
import type * as Manifest from "./domain/Manifest.js"
import * as Platform from "./domain/Platform.js"
import type { Layout } from "./ImageStore.js"
import { onFirstUse } from "./node/Lazy.js"
import * as nodePath from "node:path"
import * as Home from "./Home.js"

export type Format = "dir" | "ext4"

/** Per-layer progress: the same events a pull reports per blob, counting compressed bytes read. */
export type LayerEvent =
  | { readonly _tag: "Start"; readonly digest: string; readonly size: number }
  | { readonly _tag: "Progress"; readonly digest: string; readonly size: number; readonly done: number }
  | { readonly _tag: "Done"; readonly digest: string; readonly size: number; readonly skipped: boolean }

export interface PrepareOptions {
  /** Which image of an index; default this machine's platform. */
  readonly platform?: Manifest.Platform | undefined
  readonly onLayer?: ((event: LayerEvent) => void) | undefined
  /** Things said once on stderr (not running as root, an xattr the file system refused). */
  readonly warn?: ((message: string) => void) | undefined
}

export interface BuildOptions extends PrepareOptions {
  readonly format: Format
  readonly out: string
  /** ext4 only: the image's size; default sized from the content. */
  readonly sizeMib?: number | undefined
}

/** A bundle in the cache ([F7]): read it, never write to it (run overlays or copies it). */
export interface Prepared {
  /** The image manifest (an index's child for the platform). */
  readonly digest: string
  readonly platform: string
  /** The cache folder holding `rootfs/` and `config.json`. */
  readonly bundle: string
  /** The image config, for a run's overrides. */
  readonly config: ImageConfig.ImageConfig
  readonly files: number
  readonly bytes: number
  readonly cached: boolean
}

export interface Built {
  /** The image manifest built (an index's child for the platform). */
  readonly digest: string
  readonly platform: string
  readonly format: Format
  /** Absolute path of what was written. */
  readonly output: string
  /** Entries in the root filesystem and the bytes of its regular files (hard links once). */
  readonly files: number
  readonly bytes: number
  /** Whether the cache had it: no layer was applied. */
  readonly cached: boolean
}

export type RootfsError = ImageStoreError | LayerRejected | DigestMismatch | ToolMissing | NotFound | UsageError

export interface RootfsService {
  /** `~/.microagent/rootfs`. */
  readonly cacheRoot: string
  /** The cached bundle of the image `descriptor` (a manifest or index in `layout`) names, built if missing. */
  readonly prepare: (layout: Layout, descriptor: Manifest.Descriptor, options: PrepareOptions) => Effect.Effect<Prepared, RootfsError>
  /** Builds the image that `descriptor` names at `options.out`. */
  readonly build: (layout: Layout, descriptor: Manifest.Descriptor, options: BuildOptions) => Effect.Effect<Built, RootfsError>
  /** Checks `--out` before anything is read or pulled ([F6]). */
  readonly checkOut: (out: string, format: Format) => Effect.Effect<string, UsageError>
}

export class Rootfs extends Context.Tag("microagent/Rootfs")<Rootfs, RootfsService>() {}

/** This machine's platform, in OCI's names. */
export const hostPlatform = (): Manifest.Platform => {
  const arch: Record<string, string> = { x64: "amd64", ia32: "386", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" }
  return Platform.normalize({ os: "linux", architecture: arch[process.arch] ?? process.arch })
}

/** What `build.json` in a cache entry records, so a cached build reports what the first one did. */
/** `~/.microagent/rootfs`: where builds are cached. */
export const cacheFolder = (home: string): string => nodePath.join(nodePath.resolve(home), ".microagent", "rootfs")

/** Needs `HOME` from the ConfigProvider. */
export const layer: Layer.Layer<Rootfs, ConfigError.ConfigError> = Layer.scoped(
  Rootfs,
  Effect.gen(function*() {
    const home = yield* Home.home
    const real = yield* onFirstUse(Rootfs, () => import("./rootfs/Builder.js").then((builder) => builder.layer(home)))
    return Rootfs.of({
      cacheRoot: cacheFolder(home),
      prepare: (...args) => Effect.flatMap(real, (r) => r.prepare(...args)),
      build: (...args) => Effect.flatMap(real, (r) => r.build(...args)),
      checkOut: (...args) => Effect.flatMap(real, (r) => r.checkOut(...args))
    })
  })
)
