/**
 * `microagent rootfs build` (SPEC §6). Thin: check `--out`, find or pull the image (a registry
 * reference must be pinned, [F1]), ask Rootfs to build it, print the digest or `--json`.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Bytes from "../domain/Bytes.js"
import { UsageError } from "../domain/Errors.js"
import * as Reference from "../domain/Reference.js"
import { type Built, Rootfs } from "../Rootfs.js"
import { RegistryClient } from "../RegistryClient.js"
import * as CliArgs from "./args.js"
import { localImage } from "./image.js"
import { insecureOption } from "./insecure.js"
import * as Progress from "./progress.js"

const builtSummary = (built: Built, elapsedMs: number): string =>
  `built ${built.digest}: ${built.format === "dir" ? "bundle" : "ext4 image"} ${built.output}, ` +
  `${built.files} files, ${Bytes.format(built.bytes)}, in ${Progress.formatDuration(elapsedMs)}${built.cached ? " (from the cache)" : ""}`

const build = Command.make(
  "build",
  {
    image: Args.text({ name: "reference" }).pipe(
      Args.withDescription("Image to build: a registry reference pinned by digest (registry/repository@sha256:<hex>) or an OCI layout, oci:<dir>[:<tag>], e.g. oci:./app-layout:1.0")
    ),
    out: Options.text("out").pipe(
      Options.withDescription("Where to write it: a new (or empty) folder for the bundle, a new file for ext4, e.g. --out ./app-bundle")
    ),
    format: Options.choice("format", ["dir", "ext4"]).pipe(
      Options.withDescription("dir: an OCI runtime bundle (rootfs/ and config.json, for runc); ext4: a disk image; e.g. --format ext4"),
      Options.withDefault("dir" as const)
    ),
    platform: Options.text("platform").pipe(
      Options.withDescription("Which image of a multi-platform index (default: this machine's), e.g. --platform linux/arm64"),
      Options.optional
    ),
    allowMutable: Options.boolean("allow-mutable").pipe(
      Options.withDescription("Accept a tag, which can move, instead of a digest, e.g. rootfs build alpine:3.20 --allow-mutable --out ./alpine")
    ),
    sizeMib: Options.integer("size-mib").pipe(
      Options.withDescription("Size of the ext4 image in MiB (default: the content plus head-room), e.g. --size-mib 512"),
      Options.optional
    ),
    json: Options.boolean("json").pipe(
      Options.withDescription("Print one JSON document: reference, digest, platform, format, output, files, bytes, cached; e.g. microagent rootfs build --json … | jq .output")
    ),
    quiet: Options.boolean("quiet").pipe(
      Options.withAlias("q"),
      Options.withDescription("Print only the digest (or --json): no progress or summary on stderr. E.g. digest=$(microagent rootfs build -q …)")
    ),
    insecure: insecureOption
  },
  (args) =>
    Effect.gen(function*() {
      const sizeMib = Option.getOrUndefined(args.sizeMib)
      if (sizeMib !== undefined && args.format !== "ext4") return yield* new UsageError({ message: "--size-mib is for --format ext4 only" })
      if (sizeMib !== undefined && sizeMib < 1) return yield* new UsageError({ message: `--size-mib must be at least 1, not ${sizeMib}` })
      const platform = Option.isSome(args.platform) ? yield* CliArgs.platform(args.platform.value) : undefined
      const rootfs = yield* Rootfs
      // Before anything is read or pulled: a refused --out costs nothing ([F6]).
      yield* rootfs.checkOut(args.out, args.format)
      const display = yield* Progress.display(args.quiet || args.json)
      const image = yield* localImage(args.image, {
        platform,
        insecure: args.insecure,
        display,
        beforePull: (ref) =>
          ref.digest !== undefined || args.allowMutable ? Effect.void : Effect.gen(function*() {
            const now = yield* (yield* RegistryClient).getManifest({ registry: ref.registry, repository: ref.repository }, ref.tag ?? "latest")
            const pinned = Reference.format({ ...ref, tag: undefined, digest: now.digest })
            return yield* new UsageError({
              message: `${Reference.format(ref)} is a tag, which can move; rootfs build takes a digest`,
              hint: `it is ${now.digest} now: pin it (microagent rootfs build ${pinned} --out ${args.out}) or pass --allow-mutable`
            })
          })
      })

      const warnings: Array<string> = []
      const built = yield* Progress.track(display, builtSummary, (onBlob) =>
        rootfs.build(image.layout, image.descriptor, {
          format: args.format,
          out: args.out,
          platform,
          sizeMib,
          onLayer: onBlob,
          warn: (message) => void warnings.push(message)
        })).pipe(Effect.ensuring(Effect.forEach(warnings, (w) => Effect.logWarning(w), { discard: true })))
      yield* Console.log(
        args.json
          ? JSON.stringify({
            reference: image.reference,
            digest: built.digest,
            platform: built.platform,
            format: built.format,
            output: built.output,
            files: built.files,
            bytes: built.bytes,
            cached: built.cached
          })
          : built.digest
      )
    })
).pipe(Command.withDescription("Build a root filesystem from an image: an OCI runtime bundle (rootfs/ + config.json) or an ext4 disk image"))

export const rootfs = Command.make("rootfs").pipe(
  Command.withDescription("Root filesystems from images: microagent rootfs build <ref> --out <path>"),
  Command.withSubcommands([build])
)
