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
import { NotFound, UsageError } from "../domain/Errors.js"
import * as Bytes from "../domain/Bytes.js"
import * as Manifest from "../domain/Manifest.js"
import * as Platform from "../domain/Platform.js"
import * as Reference from "../domain/Reference.js"
import { type FetchedManifest, fromRegistry, refusedContent, RegistryClient, type Repository } from "../RegistryClient.js"
import * as CliArgs from "./args.js"
import { allowInsecure, insecureOption } from "./insecure.js"
import { Stdio } from "./Stdio.js"


// ---------------------------------------------------------------------------------------------
// The config blob

/** Config blobs are small; like manifests ([P4]) anything past 4 MiB is refused, not truncated. */
const maxConfigBytes = 4 * 1024 * 1024

const imageConfigTypes: ReadonlyArray<string> = [Manifest.MediaType.OciConfig, "application/vnd.docker.container.image.v1+json"]

/** The config blob's bytes, verified by RegistryClient.blob, read only up to the cap. */
const configBytes = (repo: Repository, descriptor: Manifest.Descriptor) =>
  Effect.gen(function*() {
    const what = `config blob ${descriptor.digest}`
    const tooLarge = refusedContent(repo.registry, what, "too-large", `it is larger than the ${maxConfigBytes / 1024 / 1024} MiB cap for configs`)
    if (descriptor.size > maxConfigBytes) return yield* tooLarge
    return yield* (yield* RegistryClient).blob(repo, descriptor).pipe(
      Bytes.collectUpTo(maxConfigBytes, () => tooLarge),
      Effect.mapError((e) => e._tag === "DigestMismatch" ? fromRegistry(repo.registry)(e) : e)
    )
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
const configJson = (repo: Repository, descriptor: Manifest.Descriptor) =>
  Effect.gen(function*() {
    const base = { digest: descriptor.digest, size: descriptor.size, mediaType: descriptor.mediaType }
    if (!imageConfigTypes.includes(Manifest.bareType(descriptor.mediaType))) return base as ConfigJson
    const bytes = yield* configBytes(repo, descriptor)
    const config = yield* Either.mapLeft(
      decodeConfig(new TextDecoder().decode(bytes)),
      (e) =>
        refusedContent(
          repo.registry,
          `config blob ${descriptor.digest}`,
          "invalid",
          `it is not an image config: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
        )
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
      labels: run?.Labels ?? undefined,
      workingDir: run?.WorkingDir === "" ? undefined : run?.WorkingDir,
      user: run?.User === "" ? undefined : run?.User
    }) as ConfigJson
  })

const describe = (
  ref: Reference.Reference,
  repo: Repository,
  fetched: FetchedManifest,
  index: FetchedManifest | undefined
) =>
  Effect.gen(function*() {
    const head = {
      reference: Reference.format(ref),
      digest: fetched.digest,
      mediaType: fetched.mediaType,
      ...(index === undefined ? {} : { index: { digest: index.digest, mediaType: index.mediaType } })
    }
    const m = fetched.manifest
    if (m._tag === "Index") return { ...head, platforms: m.manifests.map(platformJson) } satisfies InspectJson as InspectJson
    return {
      ...head,
      config: yield* configJson(repo, m.config),
      layers: m.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
      size: m.config.size + m.layers.reduce((sum, l) => sum + l.size, 0)
    } satisfies InspectJson as InspectJson
  })

// ---------------------------------------------------------------------------------------------
// Human output

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
      const env = c.env?.length ?? 0
      lines.push(row("Env", `${env} variable${env === 1 ? "" : "s"}`))
      const labels = Object.entries(c.labels ?? {})
      lines.push(row("Labels", labels.length === 0 ? "none" : String(labels.length)))
      for (const [k, v] of labels) lines.push(`  ${k}=${v}`)
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

export const inspect = Command.make(
  "inspect",
  {
    image: Args.text({ name: "reference" }).pipe(Args.withDescription("Image to inspect: [registry/]repository[:tag][@digest], e.g. localhost:5000/team/app:1.0")),
    raw: Options.boolean("raw").pipe(Options.withDescription("Print the manifest bytes exactly as served (their sha256 is the digest), e.g. microagent inspect --raw app:1 | sha256sum")),
    config: Options.boolean("config").pipe(Options.withDescription("Print the image's config blob bytes exactly as served, e.g. microagent inspect --config app:1 | jq .config")),
    json: Options.boolean("json").pipe(Options.withDescription("Print one JSON document: reference, digest, mediaType, platforms or config, layers and size, e.g. microagent inspect --json app:1 | jq .layers")),
    platform: Options.text("platform").pipe(Options.withDescription("Inspect one platform of a multi-platform image: os/arch[/variant], e.g. --platform linux/amd64"), Options.optional),
    insecure: insecureOption
  },
  (args) =>
    Effect.gen(function*() {
      const ref = yield* CliArgs.imageReference(args.image)
      if ([args.raw, args.config, args.json].filter(Boolean).length > 1) {
        return yield* new UsageError({ message: "give at most one of --raw, --config and --json" })
      }
      const platform = Option.isSome(args.platform) ? yield* CliArgs.platform(args.platform.value) : undefined
      yield* allowInsecure(args.insecure, ref.registry)
      const client = yield* RegistryClient
      const repo = { registry: ref.registry, repository: ref.repository }
      const top = yield* client.getManifest(repo, ref.digest ?? ref.tag ?? "latest")

      // Same choice as pull: --platform picks a child of an index and means nothing for an image.
      let fetched = top
      let index: FetchedManifest | undefined
      if (platform !== undefined && top.manifest._tag === "Index") {
        const child = Platform.select(platform, top.manifest.manifests)
        if (child === undefined) {
          const offered = top.manifest.manifests.flatMap((m) => m.platform ? [Platform.format(m.platform)] : []).join(", ")
          return yield* new NotFound({
            registry: ref.registry,
            what: `platform ${Platform.format(platform)}`,
            message: `${Reference.format(ref)} has no image for ${Platform.format(platform)} (it has: ${offered || "none listed"})`
          })
        }
        index = top
        fetched = yield* client.getManifest(repo, child.digest)
      }

      if (args.raw) return yield* (yield* Stdio).writeStdout(fetched.bytes)
      if (args.config) {
        const m = fetched.manifest
        if (m._tag === "Index") {
          const first = m.manifests.find((d) => d.platform !== undefined)?.platform
          return yield* new UsageError({
            message: `${Reference.format(ref)} is a multi-platform index, which has no config; pick one of its images with --platform`,
            hint: `microagent inspect ${args.image} --platform ${first === undefined ? "linux/amd64" : Platform.format(first)} --config`
          })
        }
        return yield* (yield* Stdio).writeStdout(yield* configBytes(repo, m.config))
      }
      const doc = yield* describe(ref, repo, fetched, index)
      if (args.json) return yield* Console.log(JSON.stringify(doc, null, 2))
      for (const line of humanLines(doc)) yield* Console.log(line)
    })
).pipe(Command.withDescription("Show an image's digest, media type, platforms or config and layers, without pulling it"))
