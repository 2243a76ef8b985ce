/**
 * ext4 disk images from a root folder ([F5]): `mke2fs -d` (e2fsprogs) copies the tree with its
 * owners, modes, links, devices and xattrs. Without root, the folder holds the caller's uid and
 * no device nodes, so what the layers said is set in the image afterwards with `debugfs`.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as nodePath from "node:path"
import * as Effect from "effect/Effect"
import { ImageStoreError, LayerRejected, type ToolMissing } from "../domain/Errors.js"
import * as Exec from "../node/Exec.js"
import type { Ownership } from "./Applier.js"

const mke2fs: Exec.Tool = { command: "mke2fs", pkg: "e2fsprogs", purpose: "for --format ext4" }
const debugfs: Exec.Tool = { command: "debugfs", pkg: "e2fsprogs", purpose: "to set owners in an ext4 image built without root" }

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

/** debugfs commands that give each path the owner, mode and device the layers said. */
export const ownershipScript = (ownership: ReadonlyMap<string, Ownership>): string => {
  const lines: Array<string> = []
  for (const [key, o] of ownership) {
    // debugfs's parser has quotes but no escapes: such names cannot be named to it.
    if (/["\n\\]/.test(key)) throw new LayerRejected({ layer: "", entry: key, reason: "cannot be set in an ext4 image without root (a quote, backslash or newline in its name)", message: `entry "${key}" cannot be set in an ext4 image without root` })
    const path = `"/${key}"`
    if (o.type === "char" || o.type === "block") lines.push(`mknod ${path} ${o.type === "char" ? "c" : "b"} ${o.devmajor} ${o.devminor}`)
    lines.push(`sif ${path} uid ${o.uid}`, `sif ${path} gid ${o.gid}`)
    if (o.type !== "symlink") lines.push(`sif ${path} mode 0${(typeBits[o.type] | o.mode).toString(8)}`)
  }
  return `${lines.join("\n")}\n`
}

export interface MakeOptions {
  readonly source: string
  readonly file: string
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
        options.file,
        full
          ? `the content does not fit in ${options.sizeMib} MiB (mke2fs: ${lastLine(made.stderr)})`
          : `mke2fs failed: ${lastLine(made.stderr)}`,
        full ? "give a larger --size-mib, or leave it out to size the image from the content" : undefined
      )
    }
    if (options.ownership.size === 0) return
    const script = nodePath.join(os.tmpdir(), `microagent-debugfs-${process.pid}-${Date.now()}.txt`)
    yield* Effect.acquireUseRelease(
      Effect.try({
        try: () => fs.writeFileSync(script, ownershipScript(options.ownership), { mode: 0o600 }),
        catch: (e) => e instanceof LayerRejected ? e : ImageStoreError.of(script, `cannot write the debugfs script (${String(e)})`)
      }),
      () =>
        Effect.flatMap(Exec.run(debugfs, ["-w", "-f", script, options.file]), (done) =>
          done.code === 0 ? Effect.void : Effect.fail(ImageStoreError.of(options.file, `debugfs failed: ${lastLine(done.stderr)}`))),
      () => Effect.sync(() => fs.rmSync(script, { force: true }))
    )
  })

const lastLine = (text: string): string => text.trim().split("\n").pop() ?? ""
