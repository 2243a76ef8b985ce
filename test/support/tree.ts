/**
 * Snapshots of a file tree, from a directory or from an ext4 image (read with debugfs, never
 * mounted), in one shape, so a rootfs can be compared with umoci's, with expected data, or with
 * the ext4 image made of it.
 *
 * Paths are absolute inside the tree ("/" is the root itself, "/bin/sh"). What a filesystem
 * chooses rather than the archive (a directory's size, link counts, atime) is left out, so two
 * filesystems holding the same files give equal snapshots.
 */
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import { createReadStream, type BigIntStats } from "node:fs"
import * as fs from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"

export type NodeType = "file" | "dir" | "symlink" | "fifo" | "char" | "block" | "socket"

export interface TreeEntry {
  readonly path: string
  readonly type: NodeType
  /** Permission and special bits (setuid 04000, setgid 02000, sticky 01000); no type bits. */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Bytes of a regular file, length of a symlink's target; 0 for everything else. */
  readonly size: number
  /** Hex sha256 of a regular file's content. */
  readonly sha256: string | null
  readonly linkTarget: string | null
  readonly rdev: { readonly major: number; readonly minor: number } | null
  readonly mtimeSec: number
  /** Name → hex of the raw value. */
  readonly xattrs: Readonly<Record<string, string>>
  /**
   * For paths that are hard links of one inode within the tree, the smallest of those paths
   * (so two trees agree on the id); null for an inode seen once.
   */
  readonly nlinkGroup: string | null
}

export type Tree = ReadonlyArray<TreeEntry>

export type TreeField = Exclude<keyof TreeEntry, "path">

export interface DiffOptions {
  /** Fields not compared. */
  readonly ignore?: ReadonlyArray<TreeField>
  /** Only paths this accepts are compared (in both trees). */
  readonly paths?: (path: string) => boolean
}

const run = promisify(execFile)

/** Snapshot of the tree under `root` (root included as "/"), without following any symlink. */
export const snapshotDir = async (root: string): Promise<Tree> => {
  const found: Array<{ path: string; full: string; stat: BigIntStats }> = []
  const walk = async (rel: string, full: string): Promise<void> => {
    const stat = await fs.lstat(full, { bigint: true })
    found.push({ path: rel, full, stat })
    if (!stat.isDirectory()) return
    for (const name of (await fs.readdir(full)).sort()) {
      await walk(rel === "/" ? `/${name}` : `${rel}/${name}`, path.join(full, name))
    }
  }
  await walk("/", root)
  const xattrs = await readXattrs(found.map((item) => item.full))
  const inodes = new Map<string, Array<string>>()
  for (const { path: rel, stat } of found) {
    if (stat.isDirectory() || stat.nlink < 2n) continue
    const key = `${stat.dev}:${stat.ino}`
    inodes.set(key, [...(inodes.get(key) ?? []), rel])
  }
  const entries: Array<TreeEntry> = []
  for (const [i, { path: rel, full, stat }] of found.entries()) {
    const type = statType(stat)
    const linkTarget = type === "symlink" ? await fs.readlink(full) : null
    const group = inodes.get(`${stat.dev}:${stat.ino}`)
    entries.push({
      path: rel,
      type,
      mode: Number(stat.mode & 0o7777n),
      uid: Number(stat.uid),
      gid: Number(stat.gid),
      size: type === "file" ? Number(stat.size) : type === "symlink" ? Buffer.byteLength(linkTarget ?? "") : 0,
      sha256: type === "file" ? await hashFile(full) : null,
      linkTarget,
      rdev: type === "char" || type === "block" ? splitRdev(stat.rdev) : null,
      mtimeSec: Number(stat.mtimeNs / 1_000_000_000n) - (stat.mtimeNs < 0n && stat.mtimeNs % 1_000_000_000n !== 0n ? 1 : 0),
      xattrs: xattrs[i] ?? {},
      nlinkGroup: group !== undefined && group.length > 1 ? [...group].sort()[0]! : null
    })
  }
  return sortTree(entries)
}

const statType = (stat: BigIntStats): NodeType =>
  stat.isFile() ? "file"
  : stat.isDirectory() ? "dir"
  : stat.isSymbolicLink() ? "symlink"
  : stat.isFIFO() ? "fifo"
  : stat.isCharacterDevice() ? "char"
  : stat.isBlockDevice() ? "block"
  : "socket"

/** glibc's gnu_dev_major/minor. */
const splitRdev = (rdev: bigint): { major: number; minor: number } => ({
  major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
  minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn))
})

const hashFile = async (file: string): Promise<string> => {
  const hash = createHash("sha256")
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest("hex")
}

// Node has no xattr API; one python3 process reads them all (getfattr is not installed by default).
const XATTR_SCRIPT = `
import json, os, sys
out = []
for p in json.load(sys.stdin):
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        names = []
    out.append({n: os.getxattr(p, n, follow_symlinks=False).hex() for n in sorted(names)})
json.dump(out, sys.stdout)
`

const readXattrs = async (files: ReadonlyArray<string>): Promise<Array<Record<string, string>>> => {
  const output = await new Promise<string>((resolve, reject) => {
    const child = execFile("python3", ["-c", XATTR_SCRIPT], { maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`reading xattrs with python3 failed: ${stderr || error.message}`))
      else resolve(stdout)
    })
    child.stdin?.end(JSON.stringify(files))
  })
  return JSON.parse(output) as Array<Record<string, string>>
}

// ---------------------------------------------------------------------------------------------
// ext4, through debugfs only

interface DirEntry {
  readonly path: string
  readonly inode: number
  readonly mode: number
}

/** Snapshot of an ext4 image, read with debugfs (no mount). `/lost+found`, which mke2fs always makes, is left out unless asked for. */
export const snapshotExt4 = async (image: string, options: { readonly keepLostFound?: boolean } = {}): Promise<Tree> => {
  const work = await fs.mkdtemp(path.join(tmpdir(), "microagent-debugfs-"))
  try {
    const nodes: Array<DirEntry> = [{ path: "/", inode: 2, mode: -1 }]
    // One debugfs run per directory level: `ls -p` of every directory found on the level above.
    let level: Array<DirEntry> = [nodes[0]!]
    while (level.length > 0) {
      const outputs = await debugfs(image, work, level.map((dir) => `ls -p <${dir.inode}>`))
      const next: Array<DirEntry> = []
      for (const [i, dir] of level.entries()) {
        for (const entry of parseLs(outputs[i]!)) {
          if (entry.name === "." || entry.name === "..") continue
          const full = dir.path === "/" ? `/${entry.name}` : `${dir.path}/${entry.name}`
          if (full === "/lost+found" && options.keepLostFound !== true) continue
          const node = { path: full, inode: entry.inode, mode: entry.mode }
          nodes.push(node)
          if ((entry.mode & 0o170000) === 0o040000) next.push(node)
        }
      }
      level = next
    }

    const inodes = [...new Set(nodes.map((node) => node.inode))]
    const stats = await debugfs(image, work, inodes.map((inode) => `stat <${inode}>`))
    const info = new Map(inodes.map((inode, i) => [inode, parseStat(stats[i]!)]))

    // Content (files, slow symlinks) and xattr values as raw bytes: debugfs's own printing of them is
    // lossy. A fast symlink's target lives in the inode, where `dump` reads it as block numbers.
    const reads: Array<string> = []
    const dumps = new Map<number, string>()
    const eas = new Map<string, string>()
    for (const inode of inodes) {
      const stat = info.get(inode)!
      if (stat.type === "file" || (stat.type === "symlink" && stat.fastLink === null)) {
        const out = path.join(work, `i${inode}`)
        dumps.set(inode, out)
        reads.push(`dump <${inode}> "${out}"`)
      }
      for (const [n, name] of stat.xattrNames.entries()) {
        const out = path.join(work, `x${inode}-${n}`)
        eas.set(`${inode}\0${name}`, out)
        reads.push(`ea_get -f "${out}" <${inode}> "${name}"`)
      }
    }
    if (reads.length > 0) await debugfs(image, work, reads)

    const byInode = new Map<number, Array<string>>()
    for (const node of nodes) byInode.set(node.inode, [...(byInode.get(node.inode) ?? []), node.path])
    const entries: Array<TreeEntry> = []
    for (const node of nodes) {
      const stat = info.get(node.inode)!
      const dump = dumps.get(node.inode)
      const bytes = dump === undefined ? undefined : await fs.readFile(dump)
      const xattrs: Record<string, string> = {}
      for (const name of [...stat.xattrNames].sort()) {
        xattrs[name] = (await fs.readFile(eas.get(`${node.inode}\0${name}`)!)).toString("hex")
      }
      const group = byInode.get(node.inode)!
      const linkTarget = stat.type !== "symlink" ? null : stat.fastLink ?? bytes!.subarray(0, stat.size).toString("utf8")
      entries.push({
        path: node.path,
        type: stat.type,
        mode: stat.mode & 0o7777,
        uid: stat.uid,
        gid: stat.gid,
        size: stat.type === "file" || stat.type === "symlink" ? stat.size : 0,
        sha256: stat.type === "file" ? createHash("sha256").update(bytes!).digest("hex") : null,
        linkTarget,
        rdev: stat.rdev,
        mtimeSec: stat.mtimeSec,
        xattrs,
        nlinkGroup: stat.type !== "dir" && group.length > 1 ? [...group].sort()[0]! : null
      })
    }
    return sortTree(entries)
  } finally {
    await fs.rm(work, { recursive: true, force: true })
  }
}

/**
 * Runs `commands` in one debugfs process and returns each one's output. Output is read as latin1
 * so byte offsets stay byte offsets; names are turned back into UTF-8 by the parsers.
 */
const debugfs = async (image: string, work: string, commands: ReadonlyArray<string>): Promise<Array<string>> => {
  const script = path.join(work, "commands")
  await fs.writeFile(script, commands.map((command) => `${command}\n`).join(""))
  let stdout: string
  let stderr: string
  try {
    ;({ stdout, stderr } = await run("debugfs", ["-f", script, image], {
      encoding: "latin1",
      maxBuffer: 512 * 1024 * 1024
    }))
  } catch (error) {
    const failure = error as { stderr?: string; message?: string; code?: string }
    if (failure.code === "ENOENT") throw new Error("debugfs is not installed (Debian package e2fsprogs)")
    throw new Error(`debugfs ${image} failed: ${failure.stderr ?? failure.message}`)
  }
  // debugfs exits 0 whatever its commands do; their errors only show on stderr.
  const problems = stderr.split("\n").filter((line) => line.trim() !== "" && !/^debugfs \d/.test(line))
  if (problems.length > 0) throw new Error(`debugfs ${image}: ${problems.join("; ")}`)
  const parts = stdout.split(/^debugfs: .*\n/m)
  parts.shift()
  if (parts.length !== commands.length) {
    throw new Error(`debugfs ${image}: expected output of ${commands.length} commands, got ${parts.length}`)
  }
  return parts
}

const utf8 = (latin1: string): string => Buffer.from(latin1, "latin1").toString("utf8")

/** `ls -p` lines: `/inode/mode/uid/gid/name/size/`. */
const parseLs = (output: string): Array<{ inode: number; mode: number; name: string }> =>
  output
    .split("\n")
    .filter((line) => line.startsWith("/"))
    .map((line) => {
      const fields = line.split("/")
      // A name cannot hold "/", so the fields split cleanly: ["", inode, mode, uid, gid, name, size, ""].
      return { inode: Number(fields[1]), mode: parseInt(fields[2]!, 8), name: utf8(fields[5]!) }
    })
    // lost+found's preallocated empty slots list as inode 0
    .filter((entry) => entry.inode !== 0)

interface Ext4Stat {
  readonly type: NodeType
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly mtimeSec: number
  readonly rdev: { readonly major: number; readonly minor: number } | null
  readonly xattrNames: ReadonlyArray<string>
  /** Target of a symlink kept in the inode itself. */
  readonly fastLink: string | null
}

const STAT_TYPES: Record<string, NodeType> = {
  regular: "file",
  directory: "dir",
  symlink: "symlink",
  FIFO: "fifo",
  "character special": "char",
  "block special": "block",
  socket: "socket"
}

const parseStat = (output: string): Ext4Stat => {
  const match = (pattern: RegExp, what: string): RegExpMatchArray => {
    const found = output.match(pattern)
    if (found === null) throw new Error(`debugfs stat: no ${what} in:\n${output}`)
    return found
  }
  const typeName = match(/Type: (.+?)\s{2,}Mode:\s+([0-7]+)/, "type")
  const type = STAT_TYPES[typeName[1]!]
  if (type === undefined) throw new Error(`debugfs stat: unknown type ${typeName[1]}`)
  const owner = match(/User:\s+(\d+)\s+Group:\s+(\d+)/, "owner")
  const size = match(/Size: (\d+)/, "size")
  // "mtime: 0xSSSSSSSS:EEEEEEEE": low 32 bits signed, plus the epoch bits of the extra field.
  const mtime = match(/^\s*mtime: 0x([0-9a-f]+)(?::([0-9a-f]+))?/m, "mtime")
  const low = parseInt(mtime[1]!, 16) | 0
  const epoch = mtime[2] === undefined ? 0 : parseInt(mtime[2], 16) & 3
  const device = output.match(/Device major\/minor number: (\d+):(\d+)/)
  const xattrSection = output.match(/Extended attributes:\n((?: {2}.*\n)*)/)
  const xattrNames = (xattrSection?.[1] ?? "")
    .split("\n")
    .map((line) => line.match(/^ {2}(.+?) \(\d+\)/)?.[1])
    .filter((name): name is string => name !== undefined && name !== "system.data")
    .map(utf8)
  // Printed raw between quotes, `size` bytes long: taken by length, so quotes or newlines in it do no harm.
  const fastStart = output.indexOf('Fast link dest: "')
  const fastLink = fastStart < 0 ? null : utf8(output.slice(fastStart + 17, fastStart + 17 + Number(size[1])))
  return {
    type,
    mode: parseInt(typeName[2]!, 8),
    uid: Number(owner[1]),
    gid: Number(owner[2]),
    size: Number(size[1]),
    mtimeSec: low + epoch * 2 ** 32,
    rdev: device === null ? null : { major: Number(device[1]), minor: Number(device[2]) },
    xattrNames,
    fastLink
  }
}

// ---------------------------------------------------------------------------------------------

const sortTree = (entries: Array<TreeEntry>): Tree => entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))

const FIELDS: ReadonlyArray<TreeField> = ["type", "mode", "uid", "gid", "size", "sha256", "linkTarget", "rdev", "mtimeSec", "xattrs", "nlinkGroup"]

/** Differences between two trees as readable lines (empty when they agree). */
export const diffTrees = (a: Tree, b: Tree, options: DiffOptions = {}): Array<string> => {
  const keep = options.paths ?? (() => true)
  const fields = FIELDS.filter((field) => !(options.ignore ?? []).includes(field))
  const left = new Map(a.filter((entry) => keep(entry.path)).map((entry) => [entry.path, entry]))
  const right = new Map(b.filter((entry) => keep(entry.path)).map((entry) => [entry.path, entry]))
  const lines: Array<string> = []
  for (const p of [...new Set([...left.keys(), ...right.keys()])].sort()) {
    const x = left.get(p)
    const y = right.get(p)
    if (x === undefined) lines.push(`${p}: only in second (${y!.type})`)
    else if (y === undefined) lines.push(`${p}: only in first (${x.type})`)
    else {
      for (const field of fields) {
        const shown = [show(field, x[field]), show(field, y[field])]
        if (shown[0] !== shown[1]) lines.push(`${p}: ${field} ${shown[0]} ≠ ${shown[1]}`)
      }
    }
  }
  return lines
}

const show = (field: TreeField, value: TreeEntry[TreeField]): string => {
  if (field === "mode" && typeof value === "number") return `0${value.toString(8).padStart(3, "0")}`
  if (field === "xattrs" && value !== null && typeof value === "object") {
    return JSON.stringify(Object.fromEntries(Object.entries(value).sort(([m], [n]) => (m < n ? -1 : 1))))
  }
  return JSON.stringify(value)
}

/** Renders a tree one line per path, `ls -l` style: handy in failure messages and for eyeballing. */
export const formatTree = (tree: Tree): string =>
  tree
    .map((e) => {
      const extra = [
        e.linkTarget === null ? "" : `-> ${e.linkTarget}`,
        e.rdev === null ? "" : `${e.rdev.major},${e.rdev.minor}`,
        e.sha256 === null ? "" : e.sha256.slice(0, 12),
        e.nlinkGroup === null ? "" : `[link ${e.nlinkGroup}]`,
        Object.keys(e.xattrs).length === 0 ? "" : JSON.stringify(e.xattrs)
      ].filter((part) => part !== "")
      return `${e.type.padEnd(7)} 0${e.mode.toString(8).padStart(4, "0")} ${e.uid}:${e.gid} ${e.size} @${e.mtimeSec} ${e.path} ${extra.join(" ")}`.trimEnd()
    })
    .join("\n")
