/**
 * `microagent rootfs build` from OCI layouts (SPEC §6): the bundle it writes is the one `umoci
 * unpack` writes, entry for entry and field for field ([F2], [F4]); the ext4 image holds the
 * same tree ([F5]); --out is guarded and written atomically ([F6]); builds are cached ([F7]).
 * Every build runs as root inside a read-only sandbox but for the test's own folder.
 */
import { execFile, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"
import { binPath } from "../support/cli.js"
import { buildBusyboxImage, buildLayerRulesImage, buildLayout, LAYER_RULES_EXPECTED } from "../support/layouts.js"
import { cacheEntries, cacheTemps, listing, rootfsBuild, show, umociUnpack } from "../support/rootfs.js"
import { bwrapArgs, findBwrap } from "../support/sandbox.js"
import { useScratch } from "../support/scratch.js"
import { repeatedContent } from "../support/tar.js"
import { diffTrees, formatTree, snapshotDir, snapshotExt4 } from "../support/tree.js"

const { scratchDir } = useScratch("microagent-rootfs-")

/** A scratch folder with a HOME inside it (so the sandbox's one writable folder holds both). */
const setup = async () => {
  const scratch = await scratchDir()
  const home = path.join(scratch, "home")
  await fs.mkdir(home)
  return { scratch, home }
}

/** The unprivileged user the non-root builds run as. */
const NOBODY = 65534

const readJson = async (file: string): Promise<unknown> => JSON.parse(await fs.readFile(file, "utf8"))

describe("[F4] the dir bundle matches umoci unpack", () => {
  it("[F4] busybox image with a named user: same tree, same config.json, user resolved from /etc/passwd and /etc/group", async () => {
    const { home, scratch } = await setup()
    const image = await buildBusyboxImage(path.join(scratch, "layout"))
    const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", path.join(scratch, "ours"), "--json"])
    expect(r.code, show(r)).toBe(0)
    expect(r.json).toMatchObject({ digest: image.manifestDigest, format: "dir", output: path.join(scratch, "ours"), cached: false })
    await umociUnpack(image.dir, image.tag, path.join(scratch, "umoci"))
    const ours = await snapshotDir(path.join(scratch, "ours", "rootfs"))
    const theirs = await snapshotDir(path.join(scratch, "umoci", "rootfs"))
    expect(diffTrees(ours, theirs), formatTree(ours)).toEqual([])
    const config = await readJson(path.join(scratch, "ours", "config.json"))
    expect(config).toEqual(await readJson(path.join(scratch, "umoci", "config.json")))
    expect(config).toMatchObject({ process: { user: { uid: 1000, gid: 1000, additionalGids: [2000] } } })
    expect(ours.find((e) => e.path === "/bin/sh")).toMatchObject({ type: "symlink" })
    // files counts every entry below the root, bytes the regular files' content.
    expect(r.json!["files"]).toBe(ours.length - 1)
    expect(r.json!["bytes"]).toBe(ours.filter((e) => e.type === "file").reduce((n, e) => n + e.size, 0))
  })

  it("[F2] three layers: whiteouts, opaque whiteouts, hard links, replaced entries, special bits, devices, FIFOs, xattrs, owners, mtimes", async () => {
    const { home, scratch } = await setup()
    const image = await buildLayerRulesImage(path.join(scratch, "layout"), { compression: "gzip" })
    const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", path.join(scratch, "ours")])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout.trim()).toBe(image.manifestDigest)
    const ours = await snapshotDir(path.join(scratch, "ours", "rootfs"))
    expect(diffTrees(ours, LAYER_RULES_EXPECTED), formatTree(ours)).toEqual([])
    await umociUnpack(image.dir, image.tag, path.join(scratch, "umoci"))
    const theirs = await snapshotDir(path.join(scratch, "umoci", "rootfs"))
    expect(diffTrees(ours, theirs), formatTree(theirs)).toEqual([])
    expect(await readJson(path.join(scratch, "ours", "config.json"))).toEqual(await readJson(path.join(scratch, "umoci", "config.json")))
  })

  it("[F2] zstd, uncompressed and Docker media types give the same tree", async () => {
    const { home, scratch } = await setup()
    const mixed = await buildLayerRulesImage(path.join(scratch, "mixed"))
    const docker = await buildLayerRulesImage(path.join(scratch, "docker"), { compression: "gzip", mediaType: "docker" })
    expect(new Set(mixed.layers.map((l) => l.compression))).toEqual(new Set(["gzip", "zstd", "none"]))
    for (const image of [mixed, docker]) {
      const out = path.join(scratch, `out-${path.basename(image.dir)}`)
      const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", out])
      expect(r.code, show(r)).toBe(0)
      const tree = await snapshotDir(path.join(out, "rootfs"))
      expect(diffTrees(tree, LAYER_RULES_EXPECTED), `${image.dir}\n${formatTree(tree)}`).toEqual([])
    }
  })
})

describe("[F5] --format ext4", () => {
  it("[F5] the image holds the dir format's tree (owners, modes, devices, links, xattrs) and e2fsck finds it clean", async () => {
    const { home, scratch } = await setup()
    const image = await buildLayerRulesImage(path.join(scratch, "layout"))
    const file = path.join(scratch, "rootfs.ext4")
    const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", file, "--format", "ext4", "--json"])
    expect(r.code, show(r)).toBe(0)
    expect(r.json).toMatchObject({ format: "ext4", output: file })
    const ext4 = await snapshotExt4(file)
    expect(diffTrees(ext4, LAYER_RULES_EXPECTED), formatTree(ext4)).toEqual([])
    await promisify(execFile)("e2fsck", ["-fn", file])
  })

  it("[F2][F5] without root: the dir format keeps the caller's uid (said once), the ext4 image still carries the layers' owners, modes and devices", async () => {
    const { home, scratch } = await setup()
    const image = await buildLayerRulesImage(path.join(scratch, "layout"))
    await promisify(execFile)("chown", ["-R", `${NOBODY}:${NOBODY}`, scratch])
    const asNobody = ["setpriv", "--reuid", String(NOBODY), "--regid", String(NOBODY), "--clear-groups", "--"]
    const dir = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", path.join(scratch, "dir")], {}, asNobody)
    expect(dir.code, show(dir)).toBe(0)
    expect(dir.stderr.match(/^warning: not running as root: the files are owned by you/gm)).toHaveLength(1)
    const tree = await snapshotDir(path.join(scratch, "dir", "rootfs"))
    expect(new Set(tree.map((e) => `${e.uid}:${e.gid}`))).toEqual(new Set([`${NOBODY}:${NOBODY}`]))
    // Contents, modes, links and times are the layers' all the same (devices and security.* xattrs aside).
    expect(diffTrees(tree, LAYER_RULES_EXPECTED, { ignore: ["uid", "gid", "xattrs"], paths: (p) => !p.startsWith("/special/") || p.endsWith("fifo") })).toEqual([])
    const file = path.join(scratch, "rootfs.ext4")
    const ext4Run = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", file, "--format", "ext4"], {}, asNobody)
    expect(ext4Run.code, show(ext4Run)).toBe(0)
    const ext4 = await snapshotExt4(file)
    // security.capability cannot be set without root, in the folder mke2fs copies from either.
    expect(diffTrees(ext4, LAYER_RULES_EXPECTED, { paths: (p) => p !== "/xattr/file" }), formatTree(ext4)).toEqual([])
    expect(diffTrees(ext4, LAYER_RULES_EXPECTED, { ignore: ["xattrs"], paths: (p) => p === "/xattr/file" })).toEqual([])
    await promisify(execFile)("e2fsck", ["-fn", file])
  })

  it("[F5] content that does not fit --size-mib is an error and leaves nothing at --out", async () => {
    const { home, scratch } = await setup()
    const image = await buildLayout(path.join(scratch, "layout"), {
      tag: "big",
      layers: [{ compression: "gzip", entries: [{ name: "big", content: repeatedContent(8 * 1024 * 1024) }] }]
    })
    const file = path.join(scratch, "small.ext4")
    const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", file, "--format", "ext4", "--size-mib", "4"])
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr).toMatch(/^error: .*does not fit in 4 MiB/m)
    expect(await listing(scratch)).toEqual(["home", "layout"])
  })
})

describe("[E9] a missing tool", () => {
  it("[E9][F5] mke2fs not on PATH: one error naming it and its Debian package, exit 1, nothing at --out", async () => {
    const { home, scratch } = await setup()
    const image = await buildBusyboxImage(path.join(scratch, "layout"))
    const file = path.join(scratch, "app.ext4")
    // Debian keeps mke2fs in /usr/sbin: without it on PATH, it is not found.
    const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", file, "--format", "ext4"], { PATH: "/usr/bin:/bin" })
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr).toMatch(/^error: mke2fs is not installed; it is needed for --format ext4\nhint: install it, e.g. apt-get install e2fsprogs$/m)
    expect(await listing(scratch)).toEqual(["home", "layout"])
  })
})

describe("[F6] --out", () => {
  it("[F6] an existing file or non-empty folder, /, the home folder and microagent's own folder are refused before anything is read", async () => {
    const { home, scratch } = await setup()
    const image = await buildBusyboxImage(path.join(scratch, "layout"))
    const full = path.join(scratch, "full")
    await fs.mkdir(full)
    await fs.writeFile(path.join(full, "keep"), "mine")
    await fs.writeFile(path.join(scratch, "file"), "mine too")
    for (const out of [full, path.join(scratch, "file"), "/", home, path.join(home, ".microagent"), path.join(home, ".microagent", "images", "x")]) {
      const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", out])
      expect(r.code, `${out}\n${show(r)}`).toBe(2)
      expect(r.stderr, out).toMatch(/^error: --out /)
    }
    expect(await fs.readFile(path.join(full, "keep"), "utf8")).toBe("mine")
    expect(await fs.readFile(path.join(scratch, "file"), "utf8")).toBe("mine too")
    expect(await cacheEntries(home)).toEqual([])
  })

  it("[F6] an empty folder is taken; missing parents are made", async () => {
    const { home, scratch } = await setup()
    const image = await buildBusyboxImage(path.join(scratch, "layout"))
    const empty = path.join(scratch, "empty")
    await fs.mkdir(empty)
    for (const out of [empty, path.join(scratch, "a", "b", "bundle")]) {
      const r = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", out])
      expect(r.code, show(r)).toBe(0)
      expect(await listing(out)).toEqual(["config.json", "rootfs"])
    }
  })

  it("[F6] a build interrupted mid-layer (SIGINT) exits 130 and leaves nothing at --out and nothing in the cache; the next build succeeds", async () => {
    const { home, scratch } = await setup()
    const image = await buildLayout(path.join(scratch, "layout"), {
      tag: "big",
      layers: [{ compression: "gzip", entries: [{ name: "big", content: repeatedContent(1024 * 1024 * 1024) }] }]
    })
    const out = path.join(scratch, "out")
    const child = spawn(findBwrap(), [...bwrapArgs([scratch], scratch), "--", process.execPath, binPath, "rootfs", "build", `oci:${image.dir}:${image.tag}`, "--out", out], {
      env: { PATH: process.env["PATH"] ?? "", HOME: home, NO_COLOR: "1", TMPDIR: scratch },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (b: Buffer) => void (stderr += b.toString()))
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    // Wait until the layer is being written, then interrupt.
    const deadline = Date.now() + 30_000
    for (;;) {
      const temps = await cacheTemps(home)
      const big = temps.length === 1 ? await fs.stat(path.join(home, ".microagent", "rootfs", ".tmp", temps[0]!, "rootfs", "big")).catch(() => undefined) : undefined
      if (big !== undefined && big.size > 0) break
      if (Date.now() > deadline) throw new Error(`the build never started writing\n${stderr}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    // bwrap forwards nothing: signal the node process itself, as a terminal's Ctrl-C would.
    await promisify(execFile)("pkill", ["-INT", "-f", `^${process.execPath} ${binPath} rootfs build oci:${image.dir}`])
    expect(await exited, stderr).toBe(130)
    expect(await listing(scratch)).toEqual(["home", "layout"])
    expect(await cacheEntries(home)).toEqual([])
    expect(await cacheTemps(home)).toEqual([])
    const again = await rootfsBuild(scratch, home, [`oci:${image.dir}:${image.tag}`, "--out", out, "--json"])
    expect(again.code, show(again)).toBe(0)
    expect(again.json).toMatchObject({ cached: false, bytes: 1024 * 1024 * 1024 })
  }, 120_000)
})

describe("[F7] the cache", () => {
  it("[F7] a second build is served from the cache (cached: true) with the same tree; two builds at once keep one entry", async () => {
    const { home, scratch } = await setup()
    const image = await buildLayerRulesImage(path.join(scratch, "layout"), { compression: "gzip" })
    const source = `oci:${image.dir}:${image.tag}`
    const [one, two] = await Promise.all([
      rootfsBuild(scratch, home, [source, "--out", path.join(scratch, "one"), "--json"]),
      rootfsBuild(scratch, home, [source, "--out", path.join(scratch, "two"), "--json"])
    ])
    expect(one.code, show(one)).toBe(0)
    expect(two.code, show(two)).toBe(0)
    expect(await cacheEntries(home)).toHaveLength(1)
    expect(await cacheTemps(home)).toEqual([])
    const three = await rootfsBuild(scratch, home, [source, "--out", path.join(scratch, "three"), "--json"])
    expect(three.json).toMatchObject({ cached: true, files: one.json!["files"], bytes: one.json!["bytes"] })
    for (const out of ["one", "two", "three"]) {
      const tree = await snapshotDir(path.join(scratch, out, "rootfs"))
      expect(diffTrees(tree, LAYER_RULES_EXPECTED), out).toEqual([])
    }
  })
})
