/**
 * `microagent inspect <ref>`: what a manifest says, without pulling. Thin: parse, ask
 * RegistryClient for the manifest (and the config blob, capped), print.
 *
 * `--raw` and `--config` write bytes exactly as the registry served them; `--json` writes one
 * document whose field names are part of the interface (see `InspectJson`).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ImageStoreError, RegistryUnavailable, UsageError } from "../domain/Errors.js"
import * as Bytes from "../domain/Bytes.js"
import * as Manifest from "../domain/Manifest.js"
import * as Platform from "../domain/Platform.js"
import * as Reference from "../domain/Reference.js"
import * as Transport from "../registry/Transport.js"
import { ImageStore } from "../ImageStore.js"
import * as ImageTree from "../ImageTree.js"
import * as PlatformChoice from "../PlatformChoice.js"
import { refusedContent, RegistryClient } from "../RegistryClient.js"
import * as CliArgs from "./args.js"
import { allowInsecure, insecureOption } from "./insecure.js"
import { Stdio } from "./Stdio.js"


// ---------------------------------------------------------------------------------------------
// Where the image is read: a registry, or a layout (the shared store is one) ([M6])

const imageConfigTypes: ReadonlyArray<string> = [Manifest.MediaType.OciConfig, "application/vnd.docker.container.image.v1+json"]

/** An image to inspect, wherever it is: its manifest, and the way to its children and config. */
interface Source {
  /** The name the document reports. */
  readonly name: string
  readonly top: ImageTree.Node
  /** The index it was picked from with `--platform`. */
  readonly index: ImageTree.Node | undefined
  /** A config blob's bytes, verified, capped at 4 MiB. */
  readonly config: (descriptor: Manifest.Descriptor) => Effect.Effect<Uint8Array, unknown>
  /** Refuses what the source holds (a config that is not one). */
  readonly refuse: (what: string, why: string) => unknown
}

const registrySource = (ref: Reference.Reference, platform: Manifest.Platform | undefined) =>
  Effect.gen(function*() {
    const client = yield* RegistryClient
    const repo = { registry: ref.registry, repository: ref.repository }
    const { index, top } = yield* PlatformChoice.choose(client, ref, platform)
    return {
      name: Reference.format(ref),
      top,
      index,
      config: (d: Manifest.Descriptor) => PlatformChoice.configBytes(client, repo, d),
      refuse: (what: string, why: string) => refusedContent(ref.registry, what, "invalid", why)
    } satisfies Source as Source
  })

/** An image of a layout, read offline; `name` as `find` takes it. */
const layoutSource = (root: string | undefined, name: string | undefined, shown: string, platform: Manifest.Platform | undefined) =>
  Effect.gen(function*() {
    const layout = yield* (yield* ImageStore).open(root, { create: false })
    const read = ImageTree.layoutNode(layout)
    const config = ImageTree.layoutConfig(layout)
    const { index, top } = yield* PlatformChoice.pick(yield* read(yield* layout.find(name)), platform, {
      child: read,
      config,
      missing: (has) => ImageStoreError.of(layout.root, `${shown} has no image for ${Platform.format(platform!)} (${has})`)
    })
    return {
      name: shown,
      top,
      index,
      config,
      refuse: (what: string, why: string) => ImageStoreError.of(layout.root, `${what}: ${why}`)
    } satisfies Source as Source
  })

const Strings = Schema.optional(Schema.NullOr(Schema.Array(Schema.String)))

/** The fields of an OCI / Docker image config that the summary shows; Docker writes `null` for empty ones. */
const ImageConfig = Schema.Struct({
  os: Schema.optional(Schema.String),
  architecture: Schema.optional(Schema.String),
  variant: Schema.optional(Schema.String),
  created: Schema.optional(Schema.String),
  config: Schema.optional(Schema.NullOr(Schema.Struct({
    Entrypoint: Strings,
    Cmd: Strings,
    Env: Strings,
    // A Go set: only the keys ("8080/tcp") mean anything.
    ExposedPorts: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown }))),
    Labels: Schema.optional(Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.String }))),
    WorkingDir: Schema.optional(Schema.String),
    User: Schema.optional(Schema.String)
  })))
})
const decodeConfig = Schema.decodeUnknownEither(Schema.parseJson(ImageConfig))

// ---------------------------------------------------------------------------------------------
// The JSON document (stable field names: documented in docs/, asserted in test/integration/inspect.test.ts)

export interface PlatformJson {
  readonly os?: string
  readonly architecture?: string
  readonly variant?: string
  readonly digest: string
  readonly size: number
  readonly mediaType: string
}

export interface ConfigJson {
  readonly digest: string
  readonly size: number
  readonly mediaType: string
  readonly os?: string
  readonly architecture?: string
  readonly variant?: string
  readonly created?: string
  readonly entrypoint?: ReadonlyArray<string>
  readonly cmd?: ReadonlyArray<string>
  readonly env?: ReadonlyArray<string>
  readonly exposedPorts?: ReadonlyArray<string>
  readonly labels?: Readonly<Record<string, string>>
  readonly workingDir?: string
  readonly user?: string
}

export interface InspectJson {
  readonly reference: string
  readonly digest: string
  readonly mediaType: string
  /** Present when `--platform` picked this image out of an index. */
  readonly index?: { readonly digest: string; readonly mediaType: string }
  readonly platforms?: ReadonlyArray<PlatformJson>
  readonly config?: ConfigJson
  readonly layers?: ReadonlyArray<{ readonly digest: string; readonly size: number; readonly mediaType: string }>
  readonly size?: number
}

/** Copies the keys whose value is defined, so that absent fields are absent from the JSON too. */
const defined = <T extends Record<string, unknown>>(fields: T): { [K in keyof T]: Exclude<T[K], undefined> } =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> }

const platformJson = (d: Manifest.Descriptor): PlatformJson =>
  defined({
    os: d.platform?.os,
    architecture: d.platform?.architecture,
    variant: d.platform?.variant === "" ? undefined : d.platform?.variant,
    digest: d.digest,
    size: d.size,
    mediaType: d.mediaType
  }) as PlatformJson

/** The config summary; only image configs are fetched and read (an artifact's config may be anything). */
const configJson = (source: Source, descriptor: Manifest.Descriptor) =>
  Effect.gen(function*() {
    const base = { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType }
    if (!imageConfigTypes.includes(Manifest.bareType(descriptor.mediaType))) return base as ConfigJson
    const bytes = yield* source.config(descriptor)
    const config = yield* Either.mapLeft(
      decodeConfig(new TextDecoder().decode(bytes)),
      (e) => source.refuse(`config blob ${descriptor.digest}`, `it is not an image config: ${ParseResult.TreeFormatter.formatErrorSync(e)}`)
    )
    const run = config.config ?? undefined
    return defined({
      ...base,
      os: config.os,
      architecture: config.architecture,
      variant: config.variant === "" ? undefined : config.variant,
      created: config.created,
      entrypoint: run?.Entrypoint ?? undefined,
      cmd: run?.Cmd ?? undefined,
      env: run?.Env ?? undefined,
      exposedPorts: run?.ExposedPorts ? Object.keys(run.ExposedPorts) : undefined,
      labels: run?.Labels ?? undefined,
      workingDir: run?.WorkingDir === "" ? undefined : run?.WorkingDir,
      user: run?.User === "" ? undefined : run?.User
    }) as ConfigJson
  })

const describe = (source: Source) =>
  Effect.gen(function*() {
    const fetched = source.top
    const head = {
      reference: source.name,
      digest: fetched.digest,
      mediaType: fetched.mediaType,
      ...(source.index === undefined ? {} : { index: { digest: source.index.digest, mediaType: source.index.mediaType } })
    }
    const m = fetched.manifest
    if (m._tag === "Index") return { ...head, platforms: m.manifests.map(platformJson) } satisfies InspectJson as InspectJson
    return {
      ...head,
      config: yield* configJson(source, m.config),
      layers: m.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
      size: m.config.size + m.layers.reduce((sum, l) => sum + l.size, 0)
    } satisfies InspectJson as InspectJson
  })

// ---------------------------------------------------------------------------------------------
// Human output

/**
 * Text from the image as it is, whole, but for line breaks and control characters, written as
 * escapes: each value stays on its line, and none can move the terminal's cursor.
 */
const printable = (text: string): string => Transport.oneLine(text, Number.POSITIVE_INFINITY)

const sized = (bytes: number) => bytes < 1024 ? `${bytes} B` : `${Bytes.format(bytes)} (${bytes} bytes)`

const humanLines = (doc: InspectJson): ReadonlyArray<string> => {
  const row = (label: string, value: string) => `${label.padEnd(12)}${value}`
  const lines = [row("Reference", doc.reference), row("Digest", doc.digest), row("Media type", doc.mediaType)]
  if (doc.index !== undefined) lines.push(row("Index", `${doc.index.digest} (${doc.index.mediaType})`))
  if (doc.platforms !== undefined) {
    const name = (p: PlatformJson) =>
      p.os === undefined || p.architecture === undefined ? "(no platform)" : Platform.format({ os: p.os, architecture: p.architecture, ...(p.variant === undefined ? {} : { variant: p.variant }) })
    const width = Math.max(0, ...doc.platforms.map((p) => name(p).length))
    lines.push(row("Platforms", String(doc.platforms.length)))
    for (const p of doc.platforms) lines.push(`  ${name(p).padEnd(width)}  ${p.digest}  ${sized(p.size)}`)
  }
  const c = doc.config
  if (c !== undefined) {
    if (c.os !== undefined && c.architecture !== undefined) {
      lines.push(row("Platform", Platform.format({ os: c.os, architecture: c.architecture, ...(c.variant === undefined ? {} : { variant: c.variant }) })))
    }
    if (c.created !== undefined) lines.push(row("Created", c.created))
    if (c.entrypoint !== undefined) lines.push(row("Entrypoint", JSON.stringify(c.entrypoint)))
    if (c.cmd !== undefined) lines.push(row("Cmd", JSON.stringify(c.cmd)))
    if (c.workingDir !== undefined) lines.push(row("Workdir", c.workingDir))
    if (c.user !== undefined) lines.push(row("User", c.user))
    if (imageConfigTypes.includes(Manifest.bareType(c.mediaType))) {
      // As the config has them: anyone who can pull the image can read them (secrets belong in
      // `run --secret`, not in an image's environment).
      const env = c.env ?? []
      lines.push(row("Env", env.length === 0 ? "none" : String(env.length)))
      for (const variable of env) lines.push(`  ${printable(variable)}`)
      const ports = c.exposedPorts ?? []
      lines.push(row("Ports", ports.length === 0 ? "none" : ports.map(printable).join(", ")))
      const labels = Object.entries(c.labels ?? {})
      lines.push(row("Labels", labels.length === 0 ? "none" : String(labels.length)))
      for (const [k, v] of labels) lines.push(`  ${printable(k)}=${printable(v)}`)
    }
    lines.push(row("Config", `${c.digest}  ${sized(c.size)}`))
  }
  if (doc.layers !== undefined) {
    lines.push(row("Layers", String(doc.layers.length)))
    for (const l of doc.layers) lines.push(`  ${l.digest}  ${sized(l.size)}`)
  }
  if (doc.size !== undefined) {
    const total = doc.size < 1024 ? `${doc.size} B (config and layers)` : `${Bytes.format(doc.size)} (${doc.size} bytes, config and layers)`
    lines.push(row("Total size", total))
  }
  return lines
}

// ---------------------------------------------------------------------------------------------
// The command

/**
 * The source a command line names ([M6]): `oci:<dir>[:<name>]` and `store:<ref>` are read
 * offline; a reference is read from its registry, or from the store with `--local`, or when the
 * registry cannot be reached and the store has it (said in a warning).
 */
const sourceOf = (text: string, local: boolean, platform: Manifest.Platform | undefined) =>
  Effect.gen(function*() {
    if (text.startsWith("oci:")) {
      const where = yield* CliArgs.copyLocation(text)
      if (where._tag === "Layout") return yield* layoutSource(where.dir, where.name, text, platform)
    }
    const stored = text.startsWith("store:")
    const ref = yield* CliArgs.imageReference(stored ? text.slice(6) : text)
    const fromStore = layoutSource(undefined, Reference.format(ref), Reference.format(ref), platform)
    if (stored || local) return yield* fromStore
    return yield* registrySource(ref, platform).pipe(
      Effect.catchIf(
        (e): e is RegistryUnavailable => e instanceof RegistryUnavailable && (e.kind === "connection" || e.kind === "exhausted"),
        (unreachable) =>
          fromStore.pipe(
            Effect.tap(() => Effect.logWarning(`${ref.registry} cannot be reached (${unreachable.reason}); showing the image from the store`)),
            Effect.orElse(() => Effect.fail(unreachable))
          )
      )
    )
  })

export const inspect = Command.make(
  "inspect",
  {
    image: Args.text({ name: "reference" }).pipe(Args.withDescription("Image to inspect: [registry/]repository[:tag][@digest], store:<ref> (the shared store) or oci:<dir>[:<name>] (a layout), e.g. localhost:5000/team/app:1.0")),
    raw: Options.boolean("raw").pipe(Options.withDescription("Print the manifest bytes exactly as served (their sha256 is the digest), e.g. microagent inspect --raw app:1 | sha256sum")),
    config: Options.boolean("config").pipe(Options.withDescription("Print the image's config blob bytes exactly as served, e.g. microagent inspect --config app:1 | jq .config")),
    json: Options.boolean("json").pipe(Options.withDescription("Print one JSON document: reference, digest, mediaType, platforms or config, layers and size, e.g. microagent inspect --json app:1 | jq .layers")),
    platform: Options.text("platform").pipe(Options.withDescription("Inspect one platform of a multi-platform image: os/arch[/variant], e.g. --platform linux/amd64"), Options.optional),
    local: Options.boolean("local").pipe(Options.withDescription("Read the image from the shared store, not its registry (offline), e.g. microagent inspect --local alpine:3.20")),
    insecure: insecureOption
  },
  (args) =>
    Effect.gen(function*() {
      if ([args.raw, args.config, args.json].filter(Boolean).length > 1) {
        return yield* new UsageError({ message: "give at most one of --raw, --config and --json" })
      }
      const platform = Option.isSome(args.platform) ? yield* CliArgs.platform(args.platform.value) : undefined
      if (!args.image.startsWith("oci:") && !args.image.startsWith("store:")) {
        yield* allowInsecure(args.insecure, (yield* CliArgs.imageReference(args.image)).registry)
      }
      const source = yield* sourceOf(args.image, args.local, platform)
      const fetched = source.top
      if (args.raw) return yield* (yield* Stdio).writeStdout(fetched.bytes)
      if (args.config) {
        const m = fetched.manifest
        if (m._tag === "Index") {
          const first = m.manifests.find((d) => d.platform !== undefined)?.platform
          return yield* new UsageError({
            message: `${source.name} is a multi-platform index, which has no config; pick one of its images with --platform`,
            hint: `microagent inspect ${args.image} --platform ${first === undefined ? "linux/amd64" : Platform.format(first)} --config`
          })
        }
        return yield* (yield* Stdio).writeStdout(yield* source.config(m.config))
      }
      const doc = yield* describe(source)
      if (args.json) return yield* Console.log(JSON.stringify(doc, null, 2))
      for (const line of humanLines(doc)) yield* Console.log(line)
    })
).pipe(Command.withDescription("Show an image's digest, media type, platforms or config and layers: from its registry without pulling, or from the store or a layout offline"))
