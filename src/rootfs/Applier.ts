/**
 * Applies tar entries to a root folder as the OCI layer rules say ([F2]), never writing,
 * changing or removing anything outside it ([F3]).
 *
 * How the root is kept: every entry name is cleaned and refused if absolute or holding `..`
 * (LayerPath); its parent is then resolved component by component with lstat, so the only
 * symbolic links ever followed are the ones this resolver reads itself, and only while they stay
 * below the root (a relative target that climbs out, or an absolute one, is refused for writing
 * through). The last component is never followed: an existing entry there is removed first and
 * the new one created with O_EXCL | O_NOFOLLOW (or mkdir, symlink, link, mknod, which never
 * follow either). Each write or delete passes `inside` first, a second fence behind all that.
 *
 * Synchronous on purpose: the tar reader calls back for every entry, many of them tiny, and a
 * thread-pool hop per system call would cost more than the call (20 000-file images).
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as Either from "effect/Either"
import * as LayerPath from "../domain/LayerPath.js"
import type { TarEntry } from "./TarReader.js"

/** A layer entry that would escape the root, or cannot be applied; nothing outside was touched. */
export class Rejected extends Error {
  constructor(readonly entry: string, readonly reason: string) {
    super(`${entry}: ${reason}`)
  }
}

/** A program the layer needs (setfattr for xattrs) is not installed. */
export class ToolNotFound extends Error {
  constructor(readonly tool: string, readonly pkg: string) {
    super(`${tool} not found`)
  }
}

/** What the file system could not carry without root, for an ext4 image to set afterwards ([F2]). */
export interface Ownership {
  readonly type: TarEntry["type"]
  readonly uid: number
  readonly gid: number
  readonly mode: number
  readonly devmajor: number
  readonly devminor: number
  /** Device nodes only exist in the ext4 image, which must get their time too. */
  readonly mtime: number
}

export interface Options {
  /** Apply owners and device nodes (needs root); otherwise they are recorded in `ownership`. */
  readonly asRoot: boolean
  /** Said once per kind of thing that could not be applied (an xattr the file system refuses). */
  readonly warn: (message: string) => void
}

export interface Applier {
  /** Starts the next layer: whiteouts and opaque directories hide only what earlier layers wrote. */
  readonly beginLayer: () => void
  readonly entry: (entry: TarEntry) => void
  readonly data: (chunk: Uint8Array) => void
  readonly end: () => void
  /** After the last layer: directory modes and times, which every write below them changed. */
  readonly finish: () => void
  /** Without root: what each path's owner, mode and device should be (`a/b` below the root, `` the root). */
  readonly ownership: ReadonlyMap<string, Ownership>
}

const maxLinkHops = 40
const { O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY } = fs.constants

const ownershipOf = (e: TarEntry): Ownership => ({
  type: e.type,
  uid: e.uid,
  gid: e.gid,
  mode: e.mode,
  devmajor: e.devmajor,
  devminor: e.devminor,
  mtime: e.mtime
})

const lstat = (file: string): fs.Stats | undefined => fs.lstatSync(file, { throwIfNoEntry: false })

/** `rootPath` must be a new, empty folder: the applier relies on knowing all it holds. */
export const make = (rootPath: string, options: Options): Applier => {
  const root = nodePath.resolve(rootPath)
  const prefix = `${root}/`
  /** Archive parent path → its real components below the root (only real directories). */
  const resolved = new Map<string, LayerPath.Components>()
  /** Paths (`a/b`) written or passed through by the current layer: its whiteouts spare them. */
  let touched = new Set<string>()
  /** Directory modes and mtimes, set at the end, deepest first. */
  const directories = new Map<string, { readonly mode: number; readonly mtime: number }>()
  const ownership = new Map<string, Ownership>()
  const warned = new Set<string>()
  let open: { readonly fd: number; readonly file: string; readonly entry: TarEntry; readonly key: string } | undefined
  /**
   * What this applier made: folders it created empty, and every entry it created. A name not
   * made in a folder made empty cannot exist (nothing else writes here), so it needs no lstat:
   * one system call less per entry, which counts in images of many small files.
   */
  const freshDirs = new Set<string>([""])
  const made = new Set<string>()
  const umask = process.umask(0o022)
  process.umask(umask)
  /** As root, an entry created by this process is root's already. */
  const needsChown = (e: TarEntry) => e.uid !== 0 || e.gid !== 0
  let current = ""

  const reject = (reason: string): never => {
    throw new Rejected(current, reason)
  }

  /** The second fence: nothing is written or deleted through a path that is not below the root. */
  const inside = (components: LayerPath.Components): string => {
    const file = nodePath.join(root, ...components)
    if (!file.startsWith(prefix)) reject(`resolves to ${file}, outside the root`)
    return file
  }

  const warnOnce = (key: string, message: string) => {
    if (warned.has(key)) return
    warned.add(key)
    options.warn(message)
  }

  /** Forgets everything known about `key` and below it, after it was removed. */
  const forget = (key: string) => {
    resolved.clear()
    const below = `${key}/`
    for (const keys of [directories, ownership, freshDirs, made]) {
      for (const k of keys.keys()) if (k === key || k.startsWith(below)) keys.delete(k)
    }
  }

  const remove = (components: LayerPath.Components) => {
    const file = inside(components)
    const info = lstat(file)
    if (info === undefined) return
    // rmSync never follows symbolic links: a link below is removed, not what it points at.
    if (info.isDirectory()) fs.rmSync(file, { recursive: true, force: true })
    else fs.unlinkSync(file)
    if (info.isDirectory() || info.isSymbolicLink()) forget(components.join("/"))
    else {
      ownership.delete(components.join("/"))
      made.delete(components.join("/"))
    }
  }

  /**
   * The real directory an archive path names, following symbolic links only while they stay
   * below the root. Missing directories are created (mode 0755, as tar and umoci do) when
   * `create`; otherwise a missing one gives `undefined`.
   */
  const directory = (wanted: LayerPath.Components, create: boolean): LayerPath.Components | undefined => {
    const key = wanted.join("/")
    const known = resolved.get(key)
    if (known !== undefined) return known
    const real: Array<string> = []
    const pending = [...wanted].reverse()
    let hops = 0
    while (pending.length > 0) {
      const part = pending.pop()!
      if (part === "" || part === ".") continue
      if (part === "..") {
        // Only link targets hold "..": entry names with it were refused.
        if (real.length === 0) reject("goes through a symbolic link that leads out of the root")
        real.pop()
        continue
      }
      const next = [...real, part]
      const file = inside(next)
      const info = lstat(file)
      if (info === undefined) {
        if (!create) return undefined
        fs.mkdirSync(file, { mode: 0o755 })
        fs.chmodSync(file, 0o755)
        real.push(part)
        freshDirs.add(real.join("/"))
        made.add(real.join("/"))
      } else if (info.isDirectory()) real.push(part)
      else if (info.isSymbolicLink()) {
        if (++hops > maxLinkHops) reject("too many levels of symbolic links")
        const target = fs.readlinkSync(file)
        if (target.startsWith("/")) {
          reject(`goes through "${LayerPath.format(next)}", a symbolic link to the absolute path ${target}, which leads out of the root`)
        }
        const parts = target.split("/")
        for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]!)
      } else reject(`"${LayerPath.format(next)}" is not a directory`)
    }
    resolved.set(key, real)
    return real
  }

  const markTouched = (components: LayerPath.Components) => {
    for (let i = 1; i <= components.length; i++) touched.add(components.slice(0, i).join("/"))
  }

  /** `.wh..wh..opq`: everything below `dir` that this layer did not write goes. */
  const opaque = (dir: LayerPath.Components) => {
    for (const name of fs.readdirSync(inside(dir))) {
      const child = [...dir, name]
      if (!touched.has(child.join("/"))) remove(child)
      else if (lstat(inside(child))?.isDirectory() === true) opaque(child)
    }
  }

  const setXattrs = (file: string, entry: TarEntry) => {
    for (const [name, value] of entry.xattrs) {
      if (!options.asRoot && (name.startsWith("security.") || name.startsWith("trusted."))) {
        warnOnce(`xattr-root`, `not running as root: ${name} and other security.* / trusted.* xattrs are not applied`)
        continue
      }
      try {
        // Node has no xattr call; -h sets it on the entry itself, never on a link's target.
        execFileSync("setfattr", ["-h", "-n", name, "-v", `0x${Buffer.from(value).toString("hex")}`, "--", file], { stdio: ["ignore", "ignore", "pipe"] })
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new ToolNotFound("setfattr", "attr")
        warnOnce(`xattr-${name}`, `the file system refused xattr ${name} (first on ${current}); it is not applied`)
      }
    }
  }

  const mknod = (file: string, entry: TarEntry) => {
    const args = entry.type === "fifo"
      ? [file, "p"]
      : [file, entry.type === "char" ? "c" : "b", String(entry.devmajor), String(entry.devminor)]
    try {
      // Node has no mknod; coreutils' never follows a link and fails if the name exists.
      execFileSync("mknod", ["-m", "0600", "--", ...args], { stdio: ["ignore", "ignore", "pipe"] })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new ToolNotFound("mknod", "coreutils")
      reject(`cannot create the ${entry.type}: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || String(e)}`)
    }
  }

  /** Owner, mode, xattrs and time of a finished non-directory entry. */
  const finishEntry = (file: string, key: string, entry: TarEntry) => {
    if (entry.type === "hardlink") return // it shares the inode, and so the metadata, of its target
    if (options.asRoot && needsChown(entry)) fs.lchownSync(file, entry.uid, entry.gid)
    else ownership.set(key, ownershipOf(entry))
    // After chown, which clears setuid and setgid.
    if (entry.type !== "symlink") fs.chmodSync(file, entry.mode)
    setXattrs(file, entry)
    fs.lutimesSync(file, entry.mtime, entry.mtime)
  }

  const create = (components: LayerPath.Components, entry: TarEntry) => {
    const key = components.join("/")
    const file = inside(components)
    const unseen = freshDirs.has(components.slice(0, -1).join("/")) && !made.has(key)
    const existing = unseen ? undefined : lstat(file)
    if (existing !== undefined && !(existing.isDirectory() && entry.type === "directory")) remove(components)
    markTouched(components)
    made.add(key)
    switch (entry.type) {
      case "directory": {
        if (existing === undefined || !existing.isDirectory()) {
          fs.mkdirSync(file, { mode: 0o700 })
          freshDirs.add(key)
        }
        if (options.asRoot && needsChown(entry)) fs.lchownSync(file, entry.uid, entry.gid)
        else ownership.set(key, ownershipOf(entry))
        setXattrs(file, entry)
        directories.set(key, { mode: entry.mode, mtime: entry.mtime })
        return
      }
      case "file": {
        const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, entry.mode & 0o777)
        open = { fd, file, entry, key }
        return
      }
      case "symlink":
        fs.symlinkSync(entry.linkname, file)
        break
      case "hardlink": {
        const target = Either.getOrElse(LayerPath.parse(entry.linkname), (reason) => reject(`hard link target: ${reason}`))
        if (target.length === 0) reject("a hard link to the root")
        const dir = directory(target.slice(0, -1), false)
        const source = dir === undefined ? undefined : inside([...dir, target[target.length - 1]!])
        const info = source === undefined ? undefined : lstat(source)
        if (source === undefined || info === undefined) reject(`hard link target "${entry.linkname}" does not exist`)
        if (info!.isDirectory()) reject(`hard link target "${entry.linkname}" is a directory`)
        fs.linkSync(source!, file)
        break
      }
      case "fifo":
        mknod(file, entry)
        break
      case "char":
      case "block":
        if (!options.asRoot) {
          warnOnce("devices", "not running as root: device nodes are recorded, not created")
          ownership.set(key, ownershipOf(entry))
          return
        }
        mknod(file, entry)
        break
    }
    finishEntry(file, key, entry)
  }

  const entry = (e: TarEntry) => {
    current = e.name
    const components = Either.getOrElse(LayerPath.parse(e.name), reject)
    if (components.length === 0) {
      if (e.type !== "directory") reject(`the root can only be a directory, not a ${e.type}`)
      if (options.asRoot) fs.lchownSync(root, e.uid, e.gid)
      else ownership.set("", ownershipOf(e))
      directories.set("", { mode: e.mode, mtime: e.mtime })
      return
    }
    const base = components[components.length - 1]!
    const parent = components.slice(0, -1)
    const kind = Either.getOrElse(LayerPath.kind(base), reject)
    switch (kind._tag) {
      case "Ignored":
        return
      case "Opaque": {
        const dir = directory(parent, true)!
        markTouched(dir)
        opaque(dir)
        return
      }
      case "Whiteout": {
        const dir = directory(parent, false)
        if (dir === undefined) return
        const target = [...dir, kind.name]
        // A whiteout hides only what lower layers wrote (image-spec layer.md).
        if (!touched.has(target.join("/"))) remove(target)
        return
      }
      case "Plain": {
        const dir = directory(parent, true)!
        create([...dir, base], e)
      }
    }
  }

  const data = (chunk: Uint8Array) => {
    if (open === undefined) return
    let at = 0
    while (at < chunk.length) at += fs.writeSync(open.fd, chunk, at, chunk.length - at)
  }

  const end = () => {
    if (open === undefined) return
    const { entry: e, fd, file, key } = open
    open = undefined
    if (e.xattrs.size > 0) {
      fs.closeSync(fd)
      return finishEntry(file, key, e)
    }
    // Through the open descriptor: no path lookups, which count when an image has many small files.
    try {
      if (!options.asRoot) ownership.set(key, ownershipOf(e))
      else if (needsChown(e)) fs.fchownSync(fd, e.uid, e.gid)
      // Created with the mode under the umask; special bits and masked ones need a chmod (after chown).
      if ((e.mode & 0o7000) !== 0 || (e.mode & umask) !== 0) fs.fchmodSync(fd, e.mode)
      fs.futimesSync(fd, e.mtime, e.mtime)
    } finally {
      fs.closeSync(fd)
    }
  }

  const finish = () => {
    const depth = (key: string) => key === "" ? 0 : key.split("/").length
    const deepestFirst = [...directories].sort(([a], [b]) => depth(b) - depth(a))
    for (const [key, meta] of deepestFirst) {
      const file = key === "" ? root : inside(key.split("/"))
      if (lstat(file)?.isDirectory() !== true) continue
      fs.chmodSync(file, meta.mode)
      fs.lutimesSync(file, meta.mtime, meta.mtime)
    }
  }

  const beginLayer = () => {
    touched = new Set()
  }

  /** File system failures become rejections naming the entry; anything else passes. */
  const guarded = <A extends ReadonlyArray<unknown>>(f: (...args: A) => void) => (...args: A) => {
    try {
      f(...args)
    } catch (e) {
      if (e instanceof Rejected || e instanceof ToolNotFound || typeof (e as NodeJS.ErrnoException)?.code !== "string") throw e
      if (open !== undefined) {
        fs.closeSync(open.fd)
        open = undefined
      }
      throw new Rejected(current, `cannot apply it (${(e as NodeJS.ErrnoException).code}: ${(e as Error).message.replace(root, "<root>")})`)
    }
  }

  return {
    beginLayer,
    entry: guarded(entry),
    data: guarded(data),
    end: guarded(end),
    finish: guarded(finish),
    ownership
  }
}

/**
 * One applier writing the same entries into several roots: a build for `--out` and for the cache
 * decompresses, verifies and parses each layer once, where a copy afterwards would read it all
 * back. The first root's rejections are everyone's: they all see the same entries.
 */
export const fanOut = (appliers: ReadonlyArray<Applier>): Applier => ({
  beginLayer: () => appliers.forEach((a) => a.beginLayer()),
  entry: (entry) => appliers.forEach((a) => a.entry(entry)),
  data: (chunk) => appliers.forEach((a) => a.data(chunk)),
  end: () => appliers.forEach((a) => a.end()),
  finish: () => appliers.forEach((a) => a.finish()),
  ownership: appliers[0]!.ownership
})
