/**
 * The Runner's implementation (../Runner.ts): one run is a folder `~/.microagent/run/<id>/`
 * holding the bundle, whose `rootfs/` is an overlay of the cached rootfs (read-only lower, the
 * run's changes in `upper/`; a copy where overlayfs cannot be mounted), and a tmpfs for the
 * secrets. Each piece is acquired in a Scope and released in reverse, however the run ends:
 * runtime state deleted, tmpfs and overlay unmounted, folder removed ([R5]). A run whose
 * microagent was killed outright leaves its folder with a `pid` file: the next run sweeps it.
 *
 * The runtime is a child process from Node's child_process rather than @effect/platform's
 * Command: the process must get microagent's own standard streams (not pipes: binary safe, a
 * terminal for -t, no copying), and SIGINT/SIGTERM must be forwarded as they arrive.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { ImageStoreError, ToolMissing, UsageError } from "../domain/Errors.js"
import * as RunSpec from "../domain/RunSpec.js"
import * as RuntimeSpec from "../domain/RuntimeSpec.js"
import * as Exec from "../node/Exec.js"
import { userFiles } from "../rootfs/Builder.js"
import type { Prepared } from "../Rootfs.js"
import { type RunOptions, type RunResult, Runner } from "../Runner.js"
import type { ResolvedSecret } from "../Secrets.js"
import * as SafeFiles from "../storage/SafeFiles.js"

const mount: Exec.Tool = { command: "mount", pkg: "mount", purpose: "to mount a run's root filesystem" }
const umount: Exec.Tool = { command: "umount", pkg: "mount", purpose: "to unmount a run's root filesystem" }

/** Where the init is bound inside the container: beside the runtime's /dev, never in the image's tree. */
const initPath = "/dev/init"
/** Static builds only: the image may have no C library at all. */
const inits = ["tini-static", "catatonit"]
const runtimes = ["runc", "crun"]
/** After a forwarded signal, how long the process has before the container is killed. */
const graceMs = 10_000
const runId = /^microagent-[0-9a-f]{12}$/
/** Where runc and crun keep a container's state when run as root. */
const stateFolders = ["/run/runc", "/run/crun"]

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

const which = (names: ReadonlyArray<string>, searchPath: string): string | undefined => {
  for (const name of names) {
    for (const dir of searchPath.split(":")) {
      if (dir !== "" && isExecutable(nodePath.join(dir, name))) return nodePath.join(dir, name)
    }
  }
  return undefined
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const signalName = (code: number): string | null => {
  if (code <= 128 || code > 128 + 64) return null
  const entry = Object.entries(os.constants.signals).find(([, n]) => n === code - 128)
  return entry === undefined ? null : entry[0]
}

export const make = (home: string, searchPath: string) => Effect.gen(function*() {
  const runRoot = nodePath.join(nodePath.resolve(home), ".microagent", "run")

  const quietly = (tool: Exec.Tool, args: ReadonlyArray<string>) => Effect.ignore(Exec.run(tool, args))

  /** Removes a run's folder; refuses any path that is not a run folder below runRoot. */
  const removeRun = (dir: string) =>
    Effect.sync(() => {
      if (nodePath.dirname(dir) !== runRoot || !runId.test(nodePath.basename(dir))) return
      fs.rmSync(dir, { recursive: true, force: true })
    })

  /** Undoes whatever a run left: runtime state, mounts, the folder. Safe on anything half made. */
  const dismantle = (runtime: string | undefined, dir: string, options: { readonly keep: boolean }) =>
    Effect.gen(function*() {
      const id = nodePath.basename(dir)
      // `runc run` removes its container when the process ends; state is left only if it crashed.
      const state = stateFolders.some((folder) => fs.existsSync(nodePath.join(folder, id)))
      if (runtime !== undefined && state) yield* quietly({ command: runtime, pkg: "runc", purpose: "" }, ["delete", "--force", id])
      const table = yield* Effect.sync(() => Either.getOrElse(Either.try(() => fs.readFileSync("/proc/self/mountinfo", "utf8")), () => ""))
      for (const mounted of [nodePath.join(dir, "secrets"), nodePath.join(dir, "bundle", "rootfs")]) {
        // Lazily: a process that still holds it open cannot keep the mount (or a secret) alive.
        if (table === "" || table.includes(` ${mounted} `)) yield* quietly(umount, ["-l", mounted])
      }
      if (!options.keep) yield* removeRun(dir)
      else yield* Effect.sync(() => fs.rmSync(nodePath.join(dir, "secrets"), { recursive: true, force: true }))
    })

  /** Runs whose microagent is gone (killed outright) are dismantled before a new one starts. */
  const sweep = Effect.gen(function*() {
    const names = yield* Effect.sync(() => {
      try {
        return fs.readdirSync(runRoot).filter((name) => runId.test(name))
      } catch {
        return []
      }
    })
    for (const name of names) {
      const dir = nodePath.join(runRoot, name)
      const pid = Number(Either.getOrElse(Either.try(() => fs.readFileSync(nodePath.join(dir, "pid"), "utf8")), () => "0"))
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) continue
      const kept = fs.existsSync(nodePath.join(dir, "kept"))
      yield* dismantle(which(runtimes, searchPath), dir, { keep: kept })
    }
  })

  const scratch = (keep: boolean, runtime: string) =>
    Effect.acquireRelease(
      Effect.try({
        try: () => {
          fs.mkdirSync(runRoot, { recursive: true, mode: 0o700 })
          const dir = nodePath.join(runRoot, `microagent-${SafeFiles.randomName().slice(0, 12)}`)
          fs.mkdirSync(dir, { mode: 0o700 })
          fs.writeFileSync(nodePath.join(dir, "pid"), `${process.pid}\n`)
          for (const sub of ["bundle", "bundle/rootfs", "upper", "work"]) fs.mkdirSync(nodePath.join(dir, sub), { mode: 0o700 })
          if (keep) fs.writeFileSync(nodePath.join(dir, "kept"), "")
          return dir
        },
        catch: (e) => ImageStoreError.of(runRoot, `cannot create the run's folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`)
      }),
      (dir) => dismantle(runtime, dir, { keep })
    )

  /** The run's writable root: an overlay on the cached rootfs, or a copy where overlayfs is not to be had. */
  const writableRoot = (prepared: Prepared, dir: string) =>
    Effect.gen(function*() {
      const lower = nodePath.join(prepared.bundle, "rootfs")
      const target = nodePath.join(dir, "bundle", "rootfs")
      // overlayfs splits its options at "," and ":": such paths cannot be said to it.
      const sayable = [lower, dir].every((p) => !/[,:]/.test(p))
      // The merged root takes the upper folder's owner and mode: the image's, not the run folder's 0700.
      yield* Effect.sync(() => {
        const root = fs.statSync(lower)
        fs.chownSync(nodePath.join(dir, "upper"), root.uid, root.gid)
        fs.chmodSync(nodePath.join(dir, "upper"), root.mode & 0o7777)
      })
      const mounted = sayable
        ? yield* Exec.run(mount, ["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${dir}/upper,workdir=${dir}/work`, target])
        : undefined
      if (mounted?.code === 0) return "overlay" as const
      yield* Effect.sync(() => fs.rmdirSync(target))
      yield* Exec.copy(lower, target)
      return "copy" as const
    })

  /** A tmpfs of the run's own holding each secret as a file (0400, the process's user) ([R6]). */
  const secretsFolder = (dir: string, secrets: ReadonlyArray<ResolvedSecret>, user: { readonly uid: number; readonly gid: number }) =>
    Effect.gen(function*() {
      if (secrets.length === 0) return undefined
      const folder = nodePath.join(dir, "secrets")
      yield* Effect.sync(() => fs.mkdirSync(folder, { mode: 0o700 }))
      const size = secrets.reduce((n, s) => n + s.size + 4096, 64 * 1024)
      const made = yield* Exec.run(mount, ["-t", "tmpfs", "-o", `size=${size},mode=0755,nosuid,nodev,noexec`, "microagent-secrets", folder])
      if (made.code !== 0) {
        return yield* ImageStoreError.of(folder, `cannot mount a tmpfs for the secrets (${Exec.lastLine(made.stderr)}); secrets are never written to disk`)
      }
      yield* Effect.try({
        try: () => {
          for (const secret of secrets) {
            const file = nodePath.join(folder, secret.name)
            fs.writeFileSync(file, Redacted.value(secret.value), { mode: 0o400, flag: "wx" })
            fs.chownSync(file, user.uid, user.gid)
            fs.chmodSync(file, 0o400)
          }
        },
        catch: (e) => ImageStoreError.of(folder, `cannot write a secret there (${(e as NodeJS.ErrnoException).code ?? "error"})`)
      })
      return folder
    })

  /** Runs the runtime with microagent's own streams until the process ends. */
  const execute = (runtime: string, dir: string, options: RunOptions) =>
    Effect.async<{ readonly code: number; readonly timedOut: boolean }, ToolMissing>((resume) => {
      const id = nodePath.basename(dir)
      const child = spawn(runtime, ["run", "--bundle", nodePath.join(dir, "bundle"), id], {
        stdio: [options.interactive || options.tty ? "inherit" : "ignore", "inherit", "inherit"]
      })
      let forwarded: NodeJS.Signals | undefined
      let timedOut = false
      const kill = () => void spawn(runtime, ["kill", id, "KILL"], { stdio: "ignore" }).on("error", () => {})
      const forward = (signal: NodeJS.Signals) => () => {
        forwarded = signal
        child.kill(signal)
      }
      const onInt = forward("SIGINT")
      const onTerm = forward("SIGTERM")
      process.on("SIGINT", onInt)
      process.on("SIGTERM", onTerm)
      const timer = options.timeoutSeconds === undefined
        ? undefined
        : setTimeout(() => {
          timedOut = true
          kill()
        }, options.timeoutSeconds * 1000)
      let exited = false
      const done = () => {
        if (exited) return false
        exited = true
        if (timer !== undefined) clearTimeout(timer)
        process.off("SIGINT", onInt)
        process.off("SIGTERM", onTerm)
        return true
      }
      child.on("error", (e: NodeJS.ErrnoException) => {
        if (!done()) return
        resume(e.code === "ENOENT" ? Effect.fail(ToolMissing.of(runtime, "runc", "to run containers")) : Effect.die(e))
      })
      child.on("close", (code, signal) => {
        if (!done()) return
        resume(Effect.succeed({ code: code ?? 128 + (os.constants.signals[signal ?? "SIGKILL"] ?? 9), timedOut }))
      })
      // Interrupted (Ctrl-C reached microagent): the process has the signal (forwarded above, or
      // SIGTERM now); it gets a grace period, then the container is killed; the run waits for it.
      return Effect.async<void>((finished) => {
        if (exited) return finished(Effect.void)
        if (forwarded === undefined) child.kill("SIGTERM")
        const grace = setTimeout(kill, graceMs)
        child.once("close", () => {
          clearTimeout(grace)
          finished(Effect.void)
        })
      })
    })

  const run = Effect.fn("Runner.run")(function*(prepared: Prepared, options: RunOptions) {
    if (process.getuid?.() !== 0) {
      return yield* new UsageError({ message: "microagent run needs root: the runtime makes the container's namespaces and mounts", hint: "run it as root, e.g. with sudo" })
    }
    // --runtime is a path, or a name looked up on PATH as a shell would.
    const given = options.runtime
    const runtime = given === undefined
      ? which(runtimes, searchPath)
      : given.includes("/") ? (isExecutable(given) ? given : undefined) : which([given], searchPath)
    if (runtime === undefined) {
      return yield* ToolMissing.of(given ?? "runc", "runc", given === undefined ? "to run containers (crun works too)" : "to run containers (--runtime)")
    }
    const init = which(inits, searchPath)
    if (init === undefined) return yield* ToolMissing.of("tini-static", "tini", "as the container's init (catatonit works too)")

    const image = yield* Either.match(RunSpec.withOverrides(prepared.config, options), {
      onLeft: (message) => Effect.fail(new UsageError({ message })),
      onRight: Effect.succeed
    })
    const user = RuntimeSpec.resolveUser(image.config.User, userFiles(nodePath.join(prepared.bundle, "rootfs")))
    if (Either.isLeft(user)) return yield* new UsageError({ message: `the user: ${user.left}` })
    const converted = RuntimeSpec.toRuntimeSpec(image, { user: user.right })
    if (Either.isLeft(converted)) return yield* ImageStoreError.of(prepared.bundle, `cannot make config.json: ${converted.left}`)
    for (const b of options.binds) {
      if (!fs.existsSync(b.source)) return yield* new UsageError({ message: `--mount ${b.source}:${b.destination}: ${b.source} does not exist` })
    }

    yield* sweep
    return yield* Effect.scoped(Effect.gen(function*() {
      const dir = yield* scratch(options.keep, runtime)
      const id = nodePath.basename(dir)
      yield* writableRoot(prepared, dir)
      const secrets = yield* secretsFolder(dir, options.secrets, converted.right.process.user)
      const spec = RunSpec.forRun(converted.right, {
        init: initPath,
        initSource: init,
        hostname: options.hostname ?? id.slice("microagent-".length),
        network: options.network,
        tty: options.tty,
        binds: options.binds,
        secrets
      })
      yield* Effect.try({
        try: () => fs.writeFileSync(nodePath.join(dir, "bundle", "config.json"), JSON.stringify(spec, null, "\t"), { mode: 0o600 }),
        catch: (e) => ImageStoreError.of(dir, `cannot write config.json (${(e as NodeJS.ErrnoException).code ?? String(e)})`)
      })
      options.onStart?.()
      const startedAt = new Date()
      const ended = yield* execute(runtime, dir, options)
      const exitedAt = new Date()
      const exitCode = ended.timedOut ? 124 : ended.code
      return {
        runtime,
        startedAt,
        exitedAt,
        exitCode,
        signal: ended.timedOut ? "SIGKILL" : signalName(ended.code),
        kept: options.keep ? dir : null
      } satisfies RunResult
    }))
  })

  return Runner.of({ run })
})

export const layer = (home: string, searchPath: string): Layer.Layer<Runner> => Layer.effect(Runner, make(home, searchPath))
