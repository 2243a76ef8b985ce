/**
 * ext4 disk images from a root folder ([F5]): `mke2fs -d` (e2fsprogs) copies the tree with its
 * owners, modes, links, devices and xattrs. Without root, the folder holds the caller's uid and
 * no device nodes, so what the layers said is set in the image afterwards with `debugfs`.
 */
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import { ImageStoreError, LayerRejected, type ToolMissing } from "../domain/Errors.js"
import * as Exec from "../node/Exec.js"
import type { Ownership } from "./Applier.js"

const mke2fs: Exec.Tool = { command: "mke2fs", pkg: "e2fsprogs", purpose: "for --format ext4" }
const debugfs: Exec.Tool = { command: "debugfs", pkg: "e2fsprogs", purpose: "for --format ext4" }

const MiB = 1024 * 1024

/** What a tree takes: the walk Rootfs does anyway gives these. */
export interface Usage {
  readonly entries: number
  /** Regular files' bytes, each rounded up to a 4 KiB block, hard links once. */
  readonly blockBytes: number
}

/**
 * Room for the content, its inodes and directories, the journal and 20 % to spare: the image
 * is meant to be booted and written to, not only to hold the files.
 */
export const defaultSizeMib = (usage: Usage): number =>
  Math.ceil((usage.blockBytes * 1.2 + usage.entries * (256 + 4096) * 1.2) / MiB) + 64

const typeBits: Record<Ownership["type"], number> = {
  file: 0o100000,
  hardlink: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  fifo: 0o010000,
  char: 0o020000,
  block: 0o060000
}

/** A path as debugfs's parser reads it: quoted; it has no escapes, so some names cannot be said. */
const quoted = (key: string): string => {
  if (/["\n\\]/.test(key)) {
    throw new LayerRejected({
      layer: "",
      entry: key,
      reason: "cannot be named to debugfs (a quote, backslash or newline in its name)",
      message: `entry "${key}" cannot be set in an ext4 image without root: a quote, backslash or newline in its name`
    })
  }
  return `"/${key}"`
}

/**
 * debugfs commands for what `mke2fs -d` leaves out: the root directory's own mode, owner and
 * mtime (it always makes it 0755, root's, now), and, without root, every owner and device the
 * layers said (`ownership`).
 */
export const fixupScript = (root: Root, ownership: ReadonlyMap<string, Ownership>): string => {
  const lines = [
    `sif / mode 0${(0o040000 | (root.mode & 0o7777)).toString(8)}`,
    `sif / uid ${root.uid}`,
    `sif / gid ${root.gid}`,
    `sif / mtime @${Math.floor(root.mtime)}`
  ]
  for (const [key, o] of ownership) {
    const path = key === "" ? "/" : quoted(key)
    if (o.type === "char" || o.type === "block") {
      // debugfs's mknod links a name with a "/" nowhere reachable: name it from its folder.
      const slash = key.lastIndexOf("/")
      lines.push(
        `cd ${slash < 0 ? "/" : quoted(key.slice(0, slash))}`,
        `mknod "${key.slice(slash + 1)}" ${o.type === "char" ? "c" : "b"} ${o.devmajor} ${o.devminor}`,
        "cd /",
        `sif ${path} mtime @${Math.floor(o.mtime)}`
      )
    }
    lines.push(`sif ${path} uid ${o.uid}`, `sif ${path} gid ${o.gid}`)
    if (o.type !== "symlink") lines.push(`sif ${path} mode 0${(typeBits[o.type] | o.mode).toString(8)}`)
  }
  return `${lines.join("\n")}\n`
}

/** The root directory's metadata, from the folder mke2fs copies. */
export interface Root {
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly mtime: number
}

export interface MakeOptions {
  readonly source: string
  readonly file: string
  /** What the user asked for (`--out`), for messages: `file` is a temporary name. */
  readonly output: string
  readonly sizeMib: number
  readonly entries: number
  /** Set afterwards with debugfs (built without root); empty as root. */
  readonly ownership: ReadonlyMap<string, Ownership>
}

export const make = (options: MakeOptions): Effect.Effect<void, ImageStoreError | ToolMissing | LayerRejected> =>
  Effect.gen(function*() {
    const inodes = Math.ceil(options.entries * 1.2) + 1024
    const made = yield* Exec.run(mke2fs, [
      "-q", "-F", "-t", "ext4", "-N", String(inodes), "-d", options.source, options.file, `${options.sizeMib}M`
    ])
    if (made.code !== 0) {
      const full = /allocate|no space|not enough|too small|exceeds|Could not/i.test(made.stderr)
      return yield* ImageStoreError.of(
        options.output,
        full
          ? `the content does not fit in ${options.sizeMib} MiB (mke2fs: ${Exec.lastLine(made.stderr)})`
          : `mke2fs failed: ${Exec.lastLine(made.stderr)}`,
        full ? "give a larger --size-mib, or leave it out to size the image from the content" : undefined
      )
    }
    const info = fs.statSync(options.source)
    const root = { mode: info.mode, uid: info.uid, gid: info.gid, mtime: info.mtimeMs / 1000 }
    // Beside the image, in the build's own folder, which is removed with it.
    const script = nodePath.join(nodePath.dirname(options.file), "debugfs-commands.txt")
    yield* Effect.acquireUseRelease(
      Effect.try({
        try: () => fs.writeFileSync(script, fixupScript(root, options.ownership), { mode: 0o600 }),
        catch: (e) => e instanceof LayerRejected ? e : ImageStoreError.of(script, `cannot write the debugfs script (${String(e)})`)
      }),
      () =>
        Effect.flatMap(Exec.run(debugfs, ["-w", "-f", script, options.file]), (done) => {
          // debugfs exits 0 whatever its commands do: their failures show only on stderr.
          const problems = done.stderr.split("\n").filter((line) => line.trim() !== "" && !/^debugfs \d/.test(line))
          return done.code === 0 && problems.length === 0
            ? Effect.void
            : Effect.fail(ImageStoreError.of(options.output, `debugfs failed: ${problems[0] ?? Exec.lastLine(done.stderr)}`))
        }),
      () => Effect.sync(() => fs.rmSync(script, { force: true }))
    )
  })
