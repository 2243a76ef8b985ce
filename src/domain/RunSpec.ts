/**
 * What `microagent run` changes ([R2], [R3]): the image config with the run's overrides, before
 * it is converted (RuntimeSpec), and the converted runtime spec with the run's settings after.
 * Pure: the Runner reads files and starts processes, this only computes documents.
 */
import * as Either from "effect/Either"
import type * as ImageConfig from "./ImageConfig.js"
import type * as RuntimeSpec from "./RuntimeSpec.js"

export interface Overrides {
  /** Replaces Cmd when not empty ([R3]). */
  readonly command: ReadonlyArray<string>
  /** Replaces Entrypoint, and drops the image's Cmd (as `docker run --entrypoint` does). */
  readonly entrypoint?: string | undefined
  /** `KEY=VALUE`, added or replacing the image's. */
  readonly env: ReadonlyArray<string>
  readonly workdir?: string | undefined
  readonly user?: string | undefined
}

const envKey = (entry: string): string => entry.slice(0, Math.max(0, entry.indexOf("=")))

/** The image config as this run sees it; refuses what the runtime would refuse later. */
export const withOverrides = (image: ImageConfig.ImageConfig, o: Overrides): Either.Either<ImageConfig.ImageConfig, string> => {
  for (const entry of o.env) {
    if (envKey(entry) === "") return Either.left(`-e ${entry}: expected KEY=VALUE`)
  }
  if (o.workdir !== undefined && !o.workdir.startsWith("/")) return Either.left(`-w ${o.workdir}: the working directory must be absolute`)
  if (o.entrypoint === "") return Either.left("--entrypoint: give a program")
  const config = image.config
  const overridden = new Set(o.env.map(envKey))
  const env = [...(config.Env ?? []).filter((entry) => !overridden.has(envKey(entry))), ...o.env]
  const entrypoint = o.entrypoint === undefined ? config.Entrypoint : [o.entrypoint]
  const cmd = o.command.length > 0 ? o.command : o.entrypoint === undefined ? config.Cmd : []
  if ((entrypoint ?? []).length + (cmd ?? []).length === 0) {
    return Either.left("the image has no Entrypoint or Cmd: give a command after the image")
  }
  return Either.right({
    ...image,
    config: {
      ...config,
      Env: env,
      Entrypoint: entrypoint ?? [],
      Cmd: cmd ?? [],
      ...(o.workdir === undefined ? {} : { WorkingDir: o.workdir }),
      ...(o.user === undefined ? {} : { User: o.user })
    }
  })
}

export interface Bind {
  readonly source: string
  readonly destination: string
  readonly readOnly: boolean
}

export interface Settings {
  /** The init's path inside the container; it runs the process as its child ([R4]). */
  readonly init: string
  /** The init binary on the host, bound in read-only. */
  readonly initSource: string
  readonly hostname: string
  readonly network: "none" | "host"
  readonly tty: boolean
  readonly binds: ReadonlyArray<Bind>
  /** A host folder holding the secrets (a tmpfs), bound at /run/secrets read-only ([R6]). */
  readonly secrets?: string | undefined
}

export const secretsFolder = "/run/secrets"

const bind = (b: Bind): RuntimeSpec.Mount => ({
  destination: b.destination,
  type: "bind",
  source: b.source,
  options: ["rbind", "nosuid", "nodev", b.readOnly ? "ro" : "rw"]
})

/** `host:guest[:ro]` ([R2]); both absolute. */
export const parseMount = (text: string): Either.Either<Bind, string> => {
  const parts = text.split(":")
  const readOnly = parts.length === 3 && parts[2] === "ro"
  if (parts.length < 2 || parts.length > 3 || (parts.length === 3 && parts[2] !== "ro" && parts[2] !== "rw")) {
    return Either.left(`--mount ${text}: expected <host>:<guest>[:ro]`)
  }
  const [source = "", destination = ""] = parts
  if (!source.startsWith("/") || !destination.startsWith("/")) return Either.left(`--mount ${text}: both paths must be absolute`)
  if (destination === "/" || destination.split("/").includes("..")) return Either.left(`--mount ${text}: cannot mount over ${destination}`)
  return Either.right({ source, destination, readOnly })
}

/**
 * The runtime spec of the run: the init in front of the process, the run's hostname, terminal,
 * network namespace (dropped for `host`), a fresh /tmp, the binds and the secrets folder, no
 * new privileges. Mounts keep their order: later ones land on top of earlier ones.
 */
export const forRun = (spec: RuntimeSpec.RuntimeSpec, s: Settings): RuntimeSpec.RuntimeSpec => ({
  ...spec,
  process: {
    ...spec.process,
    terminal: s.tty,
    // -g: a signal for the process reaches its whole process group, as a terminal's would.
    args: [s.init, "-g", "--", ...spec.process.args],
    noNewPrivileges: true
  },
  hostname: s.hostname,
  mounts: [
    ...spec.mounts,
    { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
    { destination: s.init, type: "bind", source: s.initSource, options: ["bind", "ro", "nosuid", "nodev"] },
    ...(s.secrets === undefined
      ? []
      : [{ destination: secretsFolder, type: "bind", source: s.secrets, options: ["bind", "ro", "nosuid", "nodev", "noexec"] }]),
    ...s.binds.map(bind)
  ],
  linux: {
    ...spec.linux,
    namespaces: spec.linux.namespaces.filter((n) => s.network === "none" || n.type !== "network")
  }
})
