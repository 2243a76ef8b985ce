/**
 * Image config → OCI runtime `config.json` ([F4]), as the image-spec's conversion document
 * (`conversion.md`) defines it and as `umoci unpack` (0.4.7, the Debian build this project tests
 * against; running as root, not rootless) writes it: umoci's default spec, its Env/args/cwd
 * rules, and `Config.User` resolved with the semantics of runc's `libcontainer/user`
 * (`GetExecUser`, runc 1.1), which umoci uses against the rootfs's `/etc/passwd` and `/etc/group`.
 *
 * Where umoci 0.4.7 breaks a rule of conversion.md, conversion.md wins, as it does in umoci
 * ≥ 0.5; every such place says "Unlike umoci 0.4.7" below:
 * - `Config.Labels` take precedence over the implicit annotations (0.4.7 overwrites the labels);
 * - `variant`, `os.version` and `os.features` become annotations (0.4.7 writes none of them);
 * - a `HOME` in `Config.Env` is kept (0.4.7 replaces it with the passwd home directory);
 * - `Config.Volumes` mounts are sorted (0.4.7 writes them in Go's random map order).
 *
 * Nothing here depends on the host or the bundle path: umoci's `root.path` is the base name of
 * its rootfs directory ("rootfs" for `umoci unpack`), and only rootless mode or `--uid-map`
 * (neither used here) make umoci write host-dependent parts.
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ImageConfig from "./ImageConfig.js"

// ---------------------------------------------------------------------------------------------
// /etc/passwd and /etc/group, read as runc's libcontainer/user reads them

/** One `/etc/passwd` line. Ids are Go `int`s (int64): what runc compares before casting. */
export interface PasswdEntry {
  readonly name: string
  readonly password: string
  readonly uid: bigint
  readonly gid: bigint
  readonly gecos: string
  readonly home: string
  readonly shell: string
}

/** One `/etc/group` line. */
export interface GroupEntry {
  readonly name: string
  readonly password: string
  readonly gid: bigint
  readonly members: ReadonlyArray<string>
}

const int64Max = (1n << 63n) - 1n
const int64Min = -(1n << 63n)

/**
 * Go's `strconv.Atoi` on a 64-bit host: a syntax error gives 0, an overflow the clamped value,
 * and `ok` says whether Go reported no error (so whether runc treats the text as numeric).
 */
const atoi = (text: string): { readonly value: bigint; readonly ok: boolean } => {
  if (!/^[+-]?[0-9]+$/.test(text)) return { value: 0n, ok: false }
  const value = BigInt(text)
  if (value > int64Max) return { value: int64Max, ok: false }
  if (value < int64Min) return { value: int64Min, ok: false }
  return { value, ok: true }
}

// Go's bytes.TrimSpace: Unicode White_Space, which (unlike String.prototype.trim) excludes the
// BOM and includes U+0085.
const goTrimSpace = (text: string): string =>
  text.replace(/^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g, "")

// bufio.Scanner's default limit: a passwd line this long (in bytes, without its "\n") makes
// runc's passwd parser fail, and with it the whole user lookup.
const maxPasswdLineBytes = 64 * 1024

const utf8Length = (text: string): number => new TextEncoder().encode(text).length

/**
 * `/etc/passwd` as runc reads it: lines trimmed, blank lines skipped, missing fields left empty
 * (ids 0), ids that are not numbers read as 0. Comments are NOT skipped — runc does not, so a
 * `#` line is an entry whose uid is 0. Fails only on a line of 64 KiB or more, as runc does.
 */
export const parsePasswd = (text: string): Either.Either<ReadonlyArray<PasswdEntry>, string> => {
  const entries: Array<PasswdEntry> = []
  for (const raw of text.split("\n")) {
    if (utf8Length(raw) >= maxPasswdLineBytes) return Either.left("bufio.Scanner: token too long")
    const line = goTrimSpace(raw)
    if (line === "") continue
    const [name = "", password = "", uid, gid, gecos = "", home = "", shell = ""] = line.split(":")
    entries.push({
      name,
      password,
      uid: uid === undefined ? 0n : atoi(uid).value,
      gid: gid === undefined ? 0n : atoi(gid).value,
      gecos,
      home,
      shell
    })
  }
  return Either.right(entries)
}

/**
 * `/etc/group` as runc reads it: lines trimmed, blank lines and `#` comments skipped, members
 * split on "," and not trimmed (so " alice" is not alice), a missing gid read as 0.
 */
export const parseGroup = (text: string): ReadonlyArray<GroupEntry> => {
  const entries: Array<GroupEntry> = []
  for (const raw of text.split("\n")) {
    const line = goTrimSpace(raw)
    if (line === "" || line.startsWith("#")) continue
    const [name = "", password = "", gid, members] = line.split(":")
    entries.push({
      name,
      password,
      gid: gid === undefined ? 0n : atoi(gid).value,
      members: members === undefined || members === "" ? [] : members.split(",")
    })
  }
  return entries
}

// ---------------------------------------------------------------------------------------------
// Config.User

/** `process.user` and the home directory that becomes `HOME`, as umoci resolves them. */
export interface ResolvedUser {
  readonly uid: number
  readonly gid: number
  /** Groups listing the matched passwd user by name; empty when `Config.User` names a group. */
  readonly additionalGids: ReadonlyArray<number>
  /** The matched passwd entry's home directory, when it has one. */
  readonly home?: string
}

// runc checks ids it did not find in the files against the range 32-bit hosts can hold.
const maxId = (1n << 31n) - 1n
// umoci stores runc's Go ints in the runtime spec's uint32 fields: a plain truncation.
const uint32 = (value: bigint): number => Number(BigInt.asUintN(32, value))
const rangeError = "uids and gids must be in range 0-2147483647"

/**
 * `Config.User` (`""`, `user`, `uid`, `user:group`, `uid:gid`, …) resolved against the rootfs's
 * files (`undefined`: the file does not exist), with `GetExecUser`'s rules:
 * - a numeric user is always a uid, never a name; without a passwd entry it is taken as is
 *   (gid 0, no home), with one it takes that entry's gid and home;
 * - a name not in passwd is an error, as is a group name not in group;
 * - no user means uid 0, looked up like a numeric one (so the first uid-0 line gives the home);
 * - additional gids are the groups that list the matched user by name — also when the user was
 *   given as a uid — and none when a group is given (even `user:` counts as no group).
 */
export const resolveUser = (
  user: string | undefined,
  files: { readonly passwd: string | undefined; readonly group: string | undefined }
): Either.Either<ResolvedUser, string> => {
  const spec = user ?? ""
  const fail = (why: string) => Either.left(`cannot resolve user "${spec}": ${why}`)
  const [userArg = "", groupArg = ""] = spec.split(":")
  const uidArg = atoi(userArg)
  const gidArg = atoi(groupArg)

  let uid = 0n
  let gid = 0n
  let home = ""
  let matchedName = ""
  let matched: PasswdEntry | undefined
  if (files.passwd !== undefined) {
    const passwd = parsePasswd(files.passwd)
    if (Either.isLeft(passwd)) return fail(`unable to find user ${userArg === "" ? "0" : userArg}: ${passwd.left}`)
    matched = passwd.right.find((u) =>
      userArg === "" ? u.uid === 0n : uidArg.ok ? u.uid === uidArg.value : u.name === userArg
    )
  }
  if (matched !== undefined) {
    matchedName = matched.name
    uid = matched.uid
    gid = matched.gid
    home = matched.home
  } else if (userArg !== "") {
    if (!uidArg.ok) return fail(`unable to find user ${userArg}: no matching entries in passwd file`)
    uid = uidArg.value
    if (uid < 0n || uid > maxId) return fail(rangeError)
  }

  let additionalGids: ReadonlyArray<bigint> = []
  if (groupArg !== "" || matchedName !== "") {
    const groups = files.group === undefined ? [] : parseGroup(files.group)
    if (groupArg !== "") {
      const group = groups.find((g) => gidArg.ok ? g.gid === gidArg.value : g.name === groupArg)
      if (group !== undefined) {
        gid = group.gid
      } else {
        if (!gidArg.ok) return fail(`unable to find group ${groupArg}: no matching entries in group file`)
        gid = gidArg.value
        if (gid < 0n || gid > maxId) return fail(rangeError)
      }
    } else {
      additionalGids = groups.filter((g) => g.members.includes(matchedName)).map((g) => g.gid)
    }
  }

  const resolved = { uid: uint32(uid), gid: uint32(gid), additionalGids: additionalGids.map(uint32) }
  return Either.right(home === "" ? resolved : { ...resolved, home })
}

// ---------------------------------------------------------------------------------------------
// The runtime spec

export interface Mount {
  readonly destination: string
  readonly type: string
  readonly source: string
  readonly options?: ReadonlyArray<string>
}

export interface Capabilities {
  readonly bounding: ReadonlyArray<string>
  readonly effective: ReadonlyArray<string>
  readonly inheritable: ReadonlyArray<string>
  readonly permitted: ReadonlyArray<string>
  readonly ambient: ReadonlyArray<string>
}

export interface Process {
  readonly terminal: boolean
  readonly user: {
    readonly uid: number
    readonly gid: number
    /** Absent when empty, as Go's `omitempty` writes it. */
    readonly additionalGids?: ReadonlyArray<number>
  }
  readonly args: ReadonlyArray<string>
  readonly env: ReadonlyArray<string>
  readonly cwd: string
  readonly capabilities: Capabilities
  readonly rlimits: ReadonlyArray<{ readonly type: string; readonly hard: number; readonly soft: number }>
  readonly noNewPrivileges: boolean
}

export interface Linux {
  readonly resources: {
    readonly devices: ReadonlyArray<{ readonly allow: boolean; readonly access: string }>
  }
  readonly namespaces: ReadonlyArray<{ readonly type: string }>
  readonly maskedPaths: ReadonlyArray<string>
  readonly readonlyPaths: ReadonlyArray<string>
}

/**
 * The `config.json` we write: plain JSON (no `undefined` values, no classes), with its keys in
 * the order of runtime-spec's Go structs, so `JSON.stringify(spec, null, "\t")` lays it out as
 * umoci does (Go additionally escapes `<`, `>` and `&` as `\u003c`…, which JSON readers undo).
 */
export interface RuntimeSpec {
  readonly ociVersion: string
  readonly process: Process
  readonly root: { readonly path: string }
  readonly hostname: string
  readonly mounts: ReadonlyArray<Mount>
  readonly annotations: Readonly<Record<string, string>>
  readonly linux: Linux
}

/** conversion.md's implicit annotation keys. */
export const Annotation = {
  os: "org.opencontainers.image.os",
  architecture: "org.opencontainers.image.architecture",
  variant: "org.opencontainers.image.variant",
  osVersion: "org.opencontainers.image.os.version",
  osFeatures: "org.opencontainers.image.os.features",
  author: "org.opencontainers.image.author",
  created: "org.opencontainers.image.created",
  stopSignal: "org.opencontainers.image.stopSignal",
  exposedPorts: "org.opencontainers.image.exposedPorts"
} as const

// Go's time.Time{} in RFC3339Nano: what umoci writes when the config has no `created`.
const zeroTime = "0001-01-01T00:00:00Z"

const capabilitySet = () => ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

// umoci's `convert.Example()` (oci/config/convert/default.go, v0.4.7), built afresh per call so
// callers can never share (or mutate) one default between bundles.
const defaultMounts = (): Array<Mount> => [
  { destination: "/proc", type: "proc", source: "proc" },
  { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
  {
    destination: "/dev/pts",
    type: "devpts",
    source: "devpts",
    options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
  },
  { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
  { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
  { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
  { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"] }
]

const defaultLinux = (): Linux => ({
  resources: { devices: [{ allow: false, access: "rwm" }] },
  // umoci ≥ 0.5 adds a cgroup namespace first; 0.4.7 does not.
  namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
  maskedPaths: ["/proc/kcore", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
  readonlyPaths: ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
})

const defaultEnv = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]

// The mount umoci gives each `Config.Volumes` entry so that data stays out of the rootfs.
const volumeOptions = ["rw", "nosuid", "nodev", "noexec", "relatime"]

// Go sorts strings by bytes, i.e. by code point; JS's `<` compares UTF-16 units.
const byCodePoint = (a: string, b: string): number => {
  const x = Array.from(a, (c) => c.codePointAt(0)!)
  const y = Array.from(b, (c) => c.codePointAt(0)!)
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!
  }
  return x.length - y.length
}

const sortedKeys = (record: Readonly<Record<string, unknown>> | undefined): Array<string> =>
  Object.keys(record ?? {}).sort(byCodePoint)

// umoci's appendEnv: a later value replaces an earlier one in place.
const setEnv = (env: Array<string>, name: string, value: string, replace: boolean): void => {
  const index = env.findIndex((e) => e.startsWith(`${name}=`))
  if (index === -1) env.push(`${name}=${value}`)
  else if (replace) env[index] = `${name}=${value}`
}

export interface Options {
  /** Config.User resolved against the rootfs (`resolveUser`). */
  readonly user: ResolvedUser
  /** `root.path`, as written; default "rootfs" (umoci writes its rootfs directory's base name). */
  readonly rootfs?: string
}

/**
 * The runtime config for an image. Fails where umoci fails: an os other than "linux", an Env
 * entry without "=" or with an empty name, a `created` (or a history entry's) that Go's RFC 3339
 * parser refuses.
 */
export const toRuntimeSpec = (image: ImageConfig.ImageConfig, options: Options): Either.Either<RuntimeSpec, string> => {
  const config = image.config
  if (image.os !== "linux") return Either.left(`unsupported OS: "${image.os}" (only linux images convert to a runtime config)`)

  const env = [...defaultEnv]
  for (const entry of config.Env ?? []) {
    const eq = entry.indexOf("=")
    if (eq === -1) return Either.left(`invalid Config.Env entry "${entry}": environment variable must contain '='`)
    if (eq === 0) return Either.left(`invalid Config.Env entry "${entry}": environment variable must have non-empty name`)
    setEnv(env, entry.slice(0, eq), entry.slice(eq + 1), true)
  }
  // Unlike umoci 0.4.7, an image's own HOME stays: conversion.md says an implementation default
  // SHOULD NOT change a variable the image sets (umoci ≥ 0.5 and Docker agree).
  if (options.user.home !== undefined && options.user.home !== "") setEnv(env, "HOME", options.user.home, false)

  let created = zeroTime
  if (image.created !== undefined) {
    const canonical = ImageConfig.canonicalCreated(image.created)
    if (Option.isNone(canonical)) return Either.left(`invalid created "${image.created}": not an RFC 3339 date-time`)
    created = canonical.value
  }
  // umoci's Go refuses the whole config when any history entry's time does not parse either.
  const badHistory = (image.history ?? []).find((h) => h.created !== undefined && Option.isNone(ImageConfig.canonicalCreated(h.created)))
  if (badHistory !== undefined) return Either.left(`invalid history created "${badHistory.created}": not an RFC 3339 date-time`)

  const implicit: Record<string, string> = {
    [Annotation.os]: image.os,
    [Annotation.architecture]: image.architecture,
    // umoci 0.4.7 writes these three even when empty (umoci ≥ 0.5 leaves them out).
    [Annotation.author]: image.author ?? "",
    [Annotation.created]: created,
    [Annotation.stopSignal]: config.StopSignal ?? "",
    [Annotation.exposedPorts]: sortedKeys(config.ExposedPorts).join(",")
  }
  // Unlike umoci 0.4.7, which does not know them, conversion.md's platform annotations.
  if (image.variant !== undefined && image.variant !== "") implicit[Annotation.variant] = image.variant
  if (image["os.version"] !== undefined && image["os.version"] !== "") implicit[Annotation.osVersion] = image["os.version"]
  const features = image["os.features"] ?? []
  if (features.length > 0) implicit[Annotation.osFeatures] = features.join(",")
  // Unlike umoci 0.4.7, a label wins over an implicit annotation of the same key (conversion.md
  // MUST; umoci ≥ 0.5 agrees).
  const merged: Record<string, string> = { ...implicit, ...config.Labels }
  const annotations = Object.fromEntries(sortedKeys(merged).map((k) => [k, merged[k]!]))

  const args = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])]
  const { additionalGids, gid, uid } = options.user

  return Either.right({
    ociVersion: "1.0.0",
    process: {
      terminal: true,
      user: additionalGids.length === 0 ? { uid, gid } : { uid, gid, additionalGids: [...additionalGids] },
      args: args.length > 0 ? args : ["sh"],
      env,
      cwd: config.WorkingDir !== undefined && config.WorkingDir !== "" ? config.WorkingDir : "/",
      capabilities: {
        bounding: capabilitySet(),
        effective: capabilitySet(),
        inheritable: capabilitySet(),
        permitted: capabilitySet(),
        ambient: capabilitySet()
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true
    },
    root: { path: options.rootfs ?? "rootfs" },
    hostname: "umoci-default",
    mounts: [
      ...defaultMounts(),
      ...sortedKeys(config.Volumes).map((destination) => ({ destination, type: "tmpfs", source: "none", options: [...volumeOptions] }))
    ],
    annotations,
    linux: defaultLinux()
  })
}
