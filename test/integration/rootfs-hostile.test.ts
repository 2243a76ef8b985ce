/**
 * Hostile layers ([F3], [E8]): every way out of the root a layer can try is refused with
 * LayerRejected (layer digest, entry, reason), exit 1, nothing left at --out or in the cache,
 * and a canary outside the root untouched. The builds run as root under bwrap with only the
 * test's folder writable, and the escapes aim at the canary inside that folder, so a bug
 * shows as a damaged canary instead of damage to the machine.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildHostileImage, buildLayout, ESCAPE_MARKER, HOSTILE_CASES } from "../support/layouts.js"
import { cacheEntries, cacheTemps, listing, rootfsBuild, show } from "../support/rootfs.js"
import { useScratch } from "../support/scratch.js"
import type { TarEntry, TarItem } from "../support/tar.js"

const { scratchDir } = useScratch("microagent-hostile-")

const CANARY_TEXT = "the canary must survive\n"

/** Paths below `dir` whose name is `name`, at any depth. */
const findNamed = async (dir: string, name: string): Promise<Array<string>> => {
  const found: Array<string> = []
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.name === name) found.push(path.join(entry.parentPath, entry.name))
  }
  return found
}

/** Builds `layers` (one or more) as an image and expects the build refused, the canary intact. */
const expectRefused = async (layers: (canary: string) => ReadonlyArray<ReadonlyArray<TarItem>>, reason: RegExp) => {
  const scratch = await scratchDir()
  const home = path.join(scratch, "home")
  const canary = path.join(scratch, "canary")
  await fs.mkdir(home)
  await fs.mkdir(canary)
  await fs.writeFile(path.join(canary, "victim"), CANARY_TEXT)
  const built = layers(canary)
  const image = built.length === 1
    ? await buildHostileImage(path.join(scratch, "layout"), built[0]!)
    : await buildLayout(path.join(scratch, "layout"), { tag: "hostile", layers: built.map((entries) => ({ entries, compression: "gzip" as const })) })
  const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", path.join(scratch, "out")])
  expect(r.code, show(r)).toBe(1)
  const first = r.stderr.split("\n").find((line) => line.startsWith("error: "))
  expect(first, show(r)).toMatch(/^error: layer sha256:[0-9a-f]{64}, entry "[^"]*": /)
  expect(first, show(r)).toMatch(reason)
  expect(image.layers.map((l) => l.digest).some((d) => first!.includes(d)), show(r)).toBe(true)
  expect(await listing(canary)).toEqual(["victim"])
  expect(await fs.readFile(path.join(canary, "victim"), "utf8")).toBe(CANARY_TEXT)
  expect((await fs.stat(path.join(canary, "victim"))).nlink).toBe(1)
  expect(await listing(scratch)).toEqual(["canary", "home", "layout"])
  expect(await cacheEntries(home)).toEqual([])
  expect(await cacheTemps(home)).toEqual([])
  expect(await findNamed(scratch, ESCAPE_MARKER)).toEqual([])
}

/** `../` enough times to reach / from anywhere in the scratch folder, then down to `target`. */
const upTo = (target: string) => `${"../".repeat(24)}${target.slice(1)}`

describe("[F3] hostile layers are refused and nothing outside the root changes", () => {
  for (const [name, { entries, why }] of Object.entries(HOSTILE_CASES)) {
    it(`[F3] ${name}: ${why}`, () => expectRefused(() => [entries], /./))
  }

  const cases: ReadonlyArray<readonly [string, (canary: string) => ReadonlyArray<ReadonlyArray<TarEntry>>, RegExp]> = [
    [
      "a symlink to the canary's absolute folder, then the canary overwritten through it",
      (canary) => [[{ name: "esc", type: "symlink", linkname: canary }, { name: "esc/victim", content: "overwritten" }]],
      /absolute path/
    ],
    [
      "a chain of relative symlinks that climbs to / and down to the canary",
      (canary) => [[
        { name: "a", type: "symlink", linkname: "b" },
        { name: "b", type: "symlink", linkname: upTo(canary) },
        { name: "a/victim", content: "overwritten" }
      ]],
      /leads out of the root/
    ],
    [
      "a whiteout through a symlink out: would delete the canary",
      (canary) => [[{ name: "esc", type: "symlink", linkname: upTo(canary) }, { name: "esc/.wh.victim" }]],
      /leads out of the root/
    ],
    [
      "an opaque whiteout through a symlink out: would empty the canary's folder",
      (canary) => [[{ name: "esc", type: "symlink", linkname: canary }, { name: "esc/.wh..wh..opq" }]],
      /absolute path/
    ],
    [
      "a hard link to the canary through a symlink out",
      (canary) => [[{ name: "esc", type: "symlink", linkname: upTo(canary) }, { name: "h", type: "hardlink", linkname: "esc/victim" }]],
      /leads out of the root/
    ],
    [
      "a directory of a lower layer replaced by a symlink out in the next, then written through",
      (canary) => [
        [{ name: "etc/", type: "dir" }, { name: "etc/passwd", content: "root:x:0:0::/:/bin/sh\n" }],
        [{ name: "etc", type: "symlink", linkname: upTo(canary) }, { name: "etc/victim", content: "overwritten" }]
      ],
      /leads out of the root/
    ],
    [
      "a NUL inside a pax path",
      () => [[{ name: "a\0/../../victim", headerName: "harmless", forcePax: true, content: "x" }]],
      /NUL/
    ],
    ["a name component longer than 255 bytes", () => [[{ name: `${"n".repeat(256)}`, content: "x" }]], /longer than 255 bytes/],
    ["a whiteout of \"..\"", () => [[{ name: "a/", type: "dir" }, { name: "a/.wh..." }]], /names no entry/],
    [
      "a loop of symlinks written through",
      () => [[{ name: "a", type: "symlink", linkname: "b" }, { name: "b", type: "symlink", linkname: "a" }, { name: "a/x", content: "x" }]],
      /too many levels/
    ],
    ["the root replaced by a symlink", (canary) => [[{ name: "./", type: "symlink", linkname: canary }]], /root can only be a directory/]
  ]
  for (const [name, layers, reason] of cases) {
    it(`[F3] ${name}`, () => expectRefused(layers, reason))
  }
})

describe("[F3] what looks dangerous but stays inside is applied", () => {
  it("[F3] absolute and climbing symlinks as leaves, and writes through a symlink that stays inside", async () => {
    const scratch = await scratchDir()
    const home = path.join(scratch, "home")
    await fs.mkdir(home)
    const image = await buildHostileImage(path.join(scratch, "layout"), [
      { name: "usr/lib/", type: "dir" },
      { name: "lib", type: "symlink", linkname: "usr/lib" },
      { name: "lib/inside.so", content: "through an in-root link" },
      { name: "abs", type: "symlink", linkname: "/etc/passwd" },
      { name: "up", type: "symlink", linkname: "../../../../.." }
    ])
    const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", path.join(scratch, "out")])
    expect(r.code, show(r)).toBe(0)
    const rootfs = path.join(scratch, "out", "rootfs")
    expect(await fs.readFile(path.join(rootfs, "usr", "lib", "inside.so"), "utf8")).toBe("through an in-root link")
    expect(await fs.readlink(path.join(rootfs, "abs"))).toBe("/etc/passwd")
    expect(await fs.readlink(path.join(rootfs, "up"))).toBe("../../../../..")
  })
})
