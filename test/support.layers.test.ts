/**
 * The rootfs test support checked against the tools it stands in for: GNU tar reads what
 * support/tar.ts writes, umoci and skopeo read what support/layouts.ts builds, support/tree.ts's two
 * snapshots agree on a mke2fs image, and support/sandbox.ts really confines writes.
 */
import { execFile } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { promisify } from "node:util"
import { gunzipSync } from "node:zlib"
import { describe, expect, it } from "vitest"
import { blobPath } from "./support/images.js"
import {
  BUSYBOX_CONFIG,
  BUSYBOX_USERS,
  buildBusyboxImage,
  buildHostileImage,
  buildLayerRulesImage,
  buildLayout,
  CAPABILITY_XATTR,
  ESCAPE_MARKER,
  HOSTILE_CASES,
  LAYER_MEDIA_TYPES,
  LAYER_RULES_EXPECTED,
  MANIFEST_MEDIA_TYPES,
  readLayerTar
} from "./support/layouts.js"
import { sandboxed } from "./support/sandbox.js"
import { useScratch } from "./support/scratch.js"
import { repeatedContent, tarBuffer, tarStream, writeTar, type TarEntry } from "./support/tar.js"
import { diffTrees, formatTree, snapshotDir, snapshotExt4, type TreeEntry } from "./support/tree.js"

const run = promisify(execFile)
const { scratchDir } = useScratch("microagent-support-layers-")
const asRoot = process.getuid?.() === 0

const sha256 = (bytes: Buffer | string) => createHash("sha256").update(bytes).digest("hex")
const hex = (value: string | Buffer) => Buffer.from(value).toString("hex")
const byPath = (tree: ReadonlyArray<TreeEntry>) => new Map(tree.map((entry) => [entry.path, entry]))

const gnuTar = async (args: ReadonlyArray<string>, cwd?: string) => {
  const { stdout } = await run("tar", [...args], { maxBuffer: 64 * 1024 * 1024, ...(cwd === undefined ? {} : { cwd }) })
  return stdout
}

describe("tar writer", () => {
  it("writes names of any length that GNU tar reads back exactly: ustar split, PAX and GNU long names", async () => {
    const dir = await scratchDir()
    const split = `${"d".repeat(150)}/${"f".repeat(100)}`
    const pax = `x/${"y".repeat(250)}`
    const gnu = `g/${"z".repeat(250)}`
    const longTarget = "t".repeat(300)
    const entries: Array<TarEntry> = [
      { name: "short" },
      { name: "n".repeat(100) },
      { name: split },
      { name: `${"p".repeat(150)}/${"q".repeat(99)}/`, type: "dir" },
      { name: pax },
      { name: gnu, longNames: "gnu" },
      { name: "sym-pax", type: "symlink", linkname: longTarget },
      { name: "sym-gnu", type: "symlink", linkname: longTarget, longNames: "gnu" },
      { name: "forced", forcePax: true }
    ]
    await writeTar(path.join(dir, "a.tar"), entries)
    const names = (await gnuTar(["-tf", path.join(dir, "a.tar")])).split("\n").filter((line) => line !== "")
    expect(names).toEqual(entries.map((entry) => entry.name))
    const listing = await gnuTar(["-tvf", path.join(dir, "a.tar")])
    expect(listing).toContain(`sym-pax -> ${longTarget}\n`)
    expect(listing).toContain(`sym-gnu -> ${longTarget}\n`)

    const bytes = await fs.readFile(path.join(dir, "a.tar"))
    const typeflags = headerTypeflags(bytes)
    // short, 100 bytes, split, split dir: one header each; pax: x + 0; gnu: L + 0; sym-pax: x + 2; sym-gnu: K + 2; forced: x + 0
    expect(typeflags).toEqual(["0", "0", "0", "5", "x", "0", "L", "0", "x", "2", "K", "2", "x", "0"])
  })

  it("writes types, modes with special bits, numeric owners, mtimes and devices that GNU tar lists", async () => {
    const dir = await scratchDir()
    await writeTar(path.join(dir, "a.tar"), [
      { name: "dir/", type: "dir", mode: 0o1777, uid: 7, gid: 8, mtime: 1_000_000_000 },
      { name: "suid", content: "abc", mode: 0o4755, uid: 1001, gid: 1002, uname: "someone", gname: "somegroup", mtime: 1_000_000_001 },
      { name: "sgid", mode: 0o2711 },
      { name: "hard", type: "hardlink", linkname: "suid" },
      { name: "fifo", type: "fifo", mode: 0o600 },
      { name: "null", type: "char", devmajor: 1, devminor: 3 },
      { name: "disk", type: "block", devmajor: 259, devminor: 1048575, mode: 0o660 },
      { name: "big-ids", uid: 3_000_000, gid: 4_000_000 }
    ])
    const lines = (await gnuTar(["--numeric-owner", "--full-time", "-tvf", path.join(dir, "a.tar")])).trim().split("\n")
    const fields = lines.map((line) => line.split(/\s+/))
    expect(fields.map((f) => [f[0], f[1], f[2]])).toEqual([
      ["drwxrwxrwt", "7/8", "0"],
      ["-rwsr-xr-x", "1001/1002", "3"],
      ["-rwx--s--x", "0/0", "0"],
      ["hrw-r--r--", "0/0", "0"],
      ["prw-------", "0/0", "0"],
      ["crw-rw-rw-", "0/0", "1,3"],
      ["brw-rw----", "0/0", "259,1048575"],
      ["-rw-r--r--", "3000000/4000000", "0"]
    ])
    expect(lines[0]).toContain("2001-09-09 01:46:40")
    expect(lines[3]).toMatch(/ hard link to suid$/)
    const named = await gnuTar(["-tvf", path.join(dir, "a.tar")])
    expect(named).toContain("someone/somegroup")
  })

  it.runIf(asRoot)("carries binary xattrs in SCHILY.xattr records that GNU tar extracts", async () => {
    const dir = await scratchDir()
    await writeTar(path.join(dir, "a.tar"), [
      { name: "f", content: "x", mode: 0o755, xattrs: { "user.comment": "hello", "security.capability": CAPABILITY_XATTR } },
      { name: "d/", type: "dir", xattrs: { "user.bin": Buffer.from([0, 0xff, 0x0a, 0x3d]) } }
    ])
    await fs.mkdir(path.join(dir, "out"))
    await gnuTar(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", path.join(dir, "a.tar")], path.join(dir, "out"))
    const tree = byPath(await snapshotDir(path.join(dir, "out")))
    expect(tree.get("/f")?.xattrs).toEqual({ "security.capability": CAPABILITY_XATTR.toString("hex"), "user.comment": hex("hello") })
    expect(tree.get("/d")?.xattrs).toEqual({ "user.bin": "00ff0a3d" })
  })

  it("writes hostile names raw, without a check", async () => {
    const dir = await scratchDir()
    const component = "c".repeat(300)
    await writeTar(path.join(dir, "a.tar"), [
      { name: "../up" },
      { name: "/abs/olute" },
      { name: `a/${component}/b` },
      { name: "nul\0hidden" },
      { name: "real-name-in-pax", headerName: "ustar-name", forcePax: true },
      { name: "l", type: "symlink", linkname: "../../../../etc" }
    ])
    const names = (await gnuTar(["-P", "-tf", path.join(dir, "a.tar")])).split("\n").filter((line) => line !== "")
    // GNU tar cuts a PAX path at the NUL; the record itself holds all of it.
    expect(names).toEqual(["../up", "/abs/olute", `a/${component}/b`, "nul", "real-name-in-pax", "l"])
    const bytes = await fs.readFile(path.join(dir, "a.tar"))
    expect(bytes.includes(Buffer.from(" path=nul\0hidden\n"))).toBe(true)
    expect(bytes.includes(Buffer.from("ustar-name\0"))).toBe(true)
  })

  it("streams a PAX header of any size: chunks stay small and GNU tar reads past a 3 MiB one", async () => {
    const TiB = 2 ** 40
    let seen = 0
    let largest = 0
    let firstHeader: Buffer | undefined
    for await (const chunk of tarStream([{ name: "huge", paxPadding: TiB }])) {
      firstHeader ??= chunk
      seen += chunk.length
      largest = Math.max(largest, chunk.length)
      if (seen > 16 * 1024 * 1024) break
    }
    expect(largest).toBeLessThanOrEqual(64 * 1024)
    // size field in GNU base-256 (high bit set): 2^40 does not fit 11 octal digits
    expect(firstHeader![124]! & 0x80).toBe(0x80)
    expect(String.fromCharCode(firstHeader![156]!)).toBe("x")

    const dir = await scratchDir()
    await writeTar(path.join(dir, "a.tar"), [{ name: "after-padding", content: "ok", paxPadding: 3 * 1024 * 1024 }, { name: "next" }])
    expect((await fs.stat(path.join(dir, "a.tar"))).size).toBeGreaterThan(3 * 1024 * 1024)
    expect(await gnuTar(["-tf", path.join(dir, "a.tar")])).toBe("after-padding\nnext\n")
  })

  it("streams large content, ends with two zero blocks, and can leave the end out", async () => {
    const dir = await scratchDir()
    await writeTar(path.join(dir, "a.tar"), [{ name: "big", content: repeatedContent(5 * 1024 * 1024 + 3, 0x41) }])
    await fs.mkdir(path.join(dir, "out"))
    await gnuTar(["-xf", path.join(dir, "a.tar")], path.join(dir, "out"))
    const big = await fs.readFile(path.join(dir, "out", "big"))
    expect(big.length).toBe(5 * 1024 * 1024 + 3)
    expect(big.every((byte) => byte === 0x41)).toBe(true)

    const whole = await tarBuffer([{ name: "f", content: "x" }])
    expect(whole.length).toBe(4 * 512)
    expect(whole.subarray(2 * 512).equals(Buffer.alloc(1024))).toBe(true)
    const cut = await tarBuffer([{ name: "f", content: "x" }, { raw: Buffer.from("garbage") }], { endBlocks: 0 })
    expect(cut.length).toBe(2 * 512 + 7)
  })
})

/** Typeflags of every header in a tar, walking sizes (octal or base-256) the way a reader does. */
const headerTypeflags = (bytes: Buffer): Array<string> => {
  const flags: Array<string> = []
  for (let offset = 0; offset + 512 <= bytes.length; ) {
    const header = bytes.subarray(offset, offset + 512)
    if (header.every((byte) => byte === 0)) break
    flags.push(String.fromCharCode(header[156]!))
    const size = parseInt(header.subarray(124, 136).toString("latin1").replace(/\0.*$/, ""), 8)
    offset += 512 + Math.ceil(size / 512) * 512
  }
  return flags
}

describe("layouts", () => {
  it("writes blobs, diff_ids, media types and the ref name for every compression, OCI and Docker", async () => {
    const dir = await scratchDir()
    const entries: Array<TarEntry> = [{ name: "hello.txt", content: "hello\n" }]
    const oci = await buildLayout(dir, {
      tag: "oci",
      layers: [
        { entries, compression: "none" },
        { entries, compression: "gzip" },
        { entries, compression: "zstd" }
      ],
      config: { User: "1000:1000", Env: ["A=1"], Entrypoint: ["/bin/sh"], Cmd: ["-c", "true"], ExposedPorts: { "80/tcp": {} } },
      platform: { os: "linux", architecture: "arm64", variant: "v8" }
    })
    const docker = await buildLayout(dir, { tag: "docker", layers: [{ entries, compression: "gzip", mediaType: "docker" }] })

    const tar = await tarBuffer(entries)
    for (const built of [oci, docker]) {
      const manifestBytes = await fs.readFile(blobPath(dir, built.manifestDigest))
      expect(`sha256:${sha256(manifestBytes)}`).toBe(built.manifestDigest)
      const manifest = JSON.parse(manifestBytes.toString()) as {
        mediaType: string
        config: { digest: string; mediaType: string }
        layers: Array<{ mediaType: string; digest: string; size: number }>
      }
      expect(manifest.config.digest).toBe(built.configDigest)
      const config = JSON.parse(await fs.readFile(blobPath(dir, built.configDigest), "utf8")) as {
        rootfs: { type: string; diff_ids: Array<string> }
      }
      expect(config.rootfs).toEqual({ type: "layers", diff_ids: built.diffIds })
      for (const [i, layer] of built.layers.entries()) {
        const blob = await fs.readFile(blobPath(dir, layer.digest))
        expect(`sha256:${sha256(blob)}`).toBe(layer.digest)
        expect(manifest.layers[i]).toEqual({ mediaType: layer.mediaType, digest: layer.digest, size: blob.length })
        expect((await readLayerTar(dir, layer)).equals(tar)).toBe(true)
        expect(layer.diffId).toBe(`sha256:${sha256(tar)}`)
      }
    }
    expect(oci.layers.map((layer) => layer.mediaType)).toEqual([LAYER_MEDIA_TYPES.oci.none, LAYER_MEDIA_TYPES.oci.gzip, LAYER_MEDIA_TYPES.oci.zstd])
    expect(oci.manifestMediaType).toBe(MANIFEST_MEDIA_TYPES.oci.manifest)
    expect(docker.layers[0]!.mediaType).toBe("application/vnd.docker.image.rootfs.diff.tar.gzip")
    expect(docker.manifestMediaType).toBe("application/vnd.docker.distribution.manifest.v2+json")
    // the zstd frame magic, and gzip's
    expect((await fs.readFile(blobPath(dir, oci.layers[2]!.digest))).readUInt32LE(0)).toBe(0xfd2fb528)
    expect(gunzipSync(await fs.readFile(blobPath(dir, oci.layers[1]!.digest))).equals(tar)).toBe(true)

    const index = JSON.parse(await fs.readFile(path.join(dir, "index.json"), "utf8")) as {
      manifests: Array<{ digest: string; mediaType: string; annotations: Record<string, string> }>
    }
    expect(index.manifests.map((m) => [m.annotations["org.opencontainers.image.ref.name"], m.digest, m.mediaType])).toEqual([
      ["oci", oci.manifestDigest, MANIFEST_MEDIA_TYPES.oci.manifest],
      ["docker", docker.manifestDigest, MANIFEST_MEDIA_TYPES.docker.manifest]
    ])

    // skopeo reads the OCI one, zstd layer included, and sees its config
    const inspected = JSON.parse((await run("skopeo", ["inspect", "--override-arch", "arm64", "--override-variant", "v8", oci.reference])).stdout) as {
      Layers: Array<string>
      Architecture: string
      Env: Array<string>
    }
    expect(inspected.Layers).toEqual(oci.layers.map((layer) => layer.digest))
    expect(inspected.Architecture).toBe("arm64")
    expect(inspected.Env).toEqual(["A=1"])
  })

  it.runIf(asRoot)("(b) gives LAYER_RULES_EXPECTED when umoci unpacks it, in a directory and in ext4", async () => {
    const dir = await scratchDir()
    // umoci 0.4.7 reads no zstd: the same layers, all gzip
    const built = await buildLayerRulesImage(path.join(dir, "layout"), { compression: "gzip" })
    await run("umoci", ["unpack", "--image", `${built.dir}:${built.tag}`, path.join(dir, "bundle")])
    const tree = await snapshotDir(path.join(dir, "bundle", "rootfs"))
    expect(diffTrees(tree, LAYER_RULES_EXPECTED), formatTree(tree)).toEqual([])
    // and snapshotExt4 reads the same tree back from an ext4 image of it (mke2fs leaves the root's mtime)
    await run("mke2fs", ["-q", "-F", "-t", "ext4", "-d", path.join(dir, "bundle", "rootfs"), path.join(dir, "rootfs.ext4"), "32M"])
    const ext4 = await snapshotExt4(path.join(dir, "rootfs.ext4"))
    expect(diffTrees(ext4, LAYER_RULES_EXPECTED, { paths: (p) => p !== "/" }), formatTree(ext4)).toEqual([])
  })

  it("(b) uses gzip, zstd and uncompressed layers by default", async () => {
    const built = await buildLayerRulesImage(await scratchDir())
    expect(built.layers.map((layer) => layer.compression)).toEqual(["gzip", "zstd", "none"])
  })

  it.runIf(asRoot)("(a) busybox runs in the rootfs umoci makes, and umoci's config resolves user app", async () => {
    const dir = await scratchDir()
    const built = await buildBusyboxImage(path.join(dir, "layout"))
    const bundle = path.join(dir, "bundle")
    await run("umoci", ["unpack", "--image", `${built.dir}:${built.tag}`, bundle])
    const { stdout } = await run("chroot", [path.join(bundle, "rootfs"), "/bin/sh", "-c", "id app; echo $0"])
    expect(stdout).toBe("uid=1000(app) gid=1000(app) groups=1000(app),2000(devs)\n/bin/sh\n")
    const config = JSON.parse(await fs.readFile(path.join(bundle, "config.json"), "utf8")) as {
      process: { user: { uid: number; gid: number; additionalGids?: Array<number> }; args: Array<string>; cwd: string; env: Array<string> }
    }
    expect(config.process.user.uid).toBe(BUSYBOX_USERS.app.uid)
    expect(config.process.user.gid).toBe(BUSYBOX_USERS.app.gid)
    expect(config.process.user.additionalGids).toEqual([...BUSYBOX_USERS.app.additionalGids])
    expect(config.process.args).toEqual(BUSYBOX_CONFIG.Cmd)
    expect(config.process.cwd).toBe(BUSYBOX_CONFIG.WorkingDir)
    expect(config.process.env).toEqual(expect.arrayContaining([...BUSYBOX_CONFIG.Env!]))
  })

  it("(c) writes a hostile layer verbatim", async () => {
    const dir = await scratchDir()
    for (const [name, { entries }] of Object.entries(HOSTILE_CASES)) {
      const built = await buildHostileImage(dir, entries, { tag: name, compression: "none" })
      expect(await fs.readFile(blobPath(dir, built.layers[0]!.digest)), name).toEqual(await tarBuffer(entries))
    }
    const listing = await gnuTar(["-P", "-tf", blobPath(dir, (await buildHostileImage(dir, HOSTILE_CASES["paxPathEscape"]!.entries)).layers[0]!.digest)])
    expect(listing).toBe(`../${ESCAPE_MARKER}\n`)
  })
})

/** A tree with one of everything, made without the tar writer (python3 for mknod and xattrs). */
const makeEverythingTree = async (root: string): Promise<void> => {
  const script = `
import os, sys
r = sys.argv[1]
def p(*parts): return os.path.join(r, *parts)
os.makedirs(p("d", "sub"))
open(p("d", "file"), "wb").write(b"hello\\n")
open(p("empty"), "wb").close()
open(p("big"), "wb").write(os.urandom(3 * 1024 * 1024 + 17))
open(p("d", "na me ü"), "wb").write(b"unicode")
os.link(p("d", "file"), p("hard"))
os.symlink("d/file", p("fast-link"))
os.symlink("/" + "long/" * 30 + "target", p("slow-link"))
os.mknod(p("null"), 0o20666, os.makedev(1, 3))
os.mknod(p("disk"), 0o60660, os.makedev(259, 70000))
os.mkfifo(p("fifo"), 0o620)
for q, m in [("null", 0o666), ("disk", 0o660), ("fifo", 0o620)]: os.chmod(p(q), m)  # past the umask
os.chown(p("d", "file"), 1001, 1002)
os.chmod(p("d", "file"), 0o4755)
os.chmod(p("d", "sub"), 0o3775)
os.chown(p("d"), 2000, 2001)
os.lchown(p("fast-link"), 1001, 1002)
os.chown(p("empty"), 100000, 200000)
os.setxattr(p("d", "file"), "user.comment", b"hi")
os.setxattr(p("d", "file"), "security.capability", bytes.fromhex("${CAPABILITY_XATTR.toString("hex")}"))
os.setxattr(p("d"), "user.bin", bytes([0, 0xff, 0x22]))
t = 1600000000
for i, q in enumerate(["d/file", "empty", "big", "null", "disk", "fifo", "d/na me ü", "d/sub", "d", "."]):
    os.utime(p(q), (t + i, t + i))
for i, q in enumerate(["fast-link", "slow-link"]):
    os.utime(p(q), (t + 50 + i, t + 50 + i), follow_symlinks=False)
`
  await run("python3", ["-c", script, root])
}

describe.runIf(asRoot)("tree snapshots", () => {
  it("snapshotDir and snapshotExt4 agree on a mke2fs -d image of a tree with one of everything", async () => {
    const dir = await scratchDir()
    const src = path.join(dir, "src")
    await fs.mkdir(src)
    await makeEverythingTree(src)
    await run("mke2fs", ["-q", "-F", "-t", "ext4", "-d", src, path.join(dir, "fs.ext4"), "64M"])
    const fromDir = await snapshotDir(src)
    const fromExt4 = await snapshotExt4(path.join(dir, "fs.ext4"))
    const shown = `${formatTree(fromDir)}\n---\n${formatTree(fromExt4)}`
    expect(diffTrees(fromDir, fromExt4, { paths: (p) => p !== "/" }), shown).toEqual([])
    // mke2fs 1.47 -d copies the root's xattrs but not its mode, owner or mtime (the root gets "now").
    expect(diffTrees(fromDir, fromExt4, { paths: (p) => p === "/", ignore: ["mtimeSec"] }), shown).toEqual([])

    // and both are right, not just equal
    const tree = byPath(fromExt4)
    expect(tree.get("/d/file")).toEqual({
      path: "/d/file",
      type: "file",
      mode: 0o4755,
      uid: 1001,
      gid: 1002,
      size: 6,
      sha256: sha256("hello\n"),
      linkTarget: null,
      rdev: null,
      mtimeSec: 1_600_000_000,
      xattrs: { "security.capability": CAPABILITY_XATTR.toString("hex"), "user.comment": hex("hi") },
      nlinkGroup: "/d/file"
    })
    expect(tree.get("/hard")?.nlinkGroup).toBe("/d/file")
    expect(tree.get("/null")).toMatchObject({ type: "char", mode: 0o666, rdev: { major: 1, minor: 3 } })
    expect(tree.get("/disk")).toMatchObject({ type: "block", mode: 0o660, rdev: { major: 259, minor: 70000 } })
    expect(tree.get("/fifo")).toMatchObject({ type: "fifo", mode: 0o620 })
    expect(tree.get("/fast-link")).toMatchObject({ linkTarget: "d/file", uid: 1001, gid: 1002, mtimeSec: 1_600_000_050 })
    expect(tree.get("/slow-link")?.linkTarget).toBe(`/${"long/".repeat(30)}target`)
    expect(tree.get("/d")).toMatchObject({ uid: 2000, gid: 2001, xattrs: { "user.bin": "00ff22" }, mtimeSec: 1_600_000_008 })
    expect(tree.get("/d/sub")?.mode).toBe(0o3775)
    expect(tree.get("/d/na me ü")?.sha256).toBe(sha256("unicode"))
    expect(tree.get("/big")?.size).toBe(3 * 1024 * 1024 + 17)
    expect(tree.get("/empty")).toMatchObject({ uid: 100000, gid: 200000, size: 0, sha256: sha256("") })
    expect(byPath(fromDir).get("/")?.mtimeSec).toBe(1_600_000_009)
    expect(tree.has("/lost+found")).toBe(false)
    expect(byPath(await snapshotExt4(path.join(dir, "fs.ext4"), { keepLostFound: true })).has("/lost+found")).toBe(true)
  })

  it("diffTrees names each difference, and ignores what it is told to", async () => {
    const dir = await scratchDir()
    await makeEverythingTree(dir)
    const a = await snapshotDir(dir)
    await fs.chmod(path.join(dir, "empty"), 0o600)
    await fs.writeFile(path.join(dir, "d", "file"), "changed")
    await fs.utimes(path.join(dir, "big"), 1, 1)
    await fs.rm(path.join(dir, "fifo"))
    await fs.writeFile(path.join(dir, "new"), "")
    const b = await snapshotDir(dir)
    const lines = diffTrees(a, b, { ignore: ["sha256", "size"], paths: (p) => !["/", "/d", "/hard"].some((skip) => p === skip || p.startsWith(`${skip}/`)) })
    expect(lines).toEqual([
      "/big: mtimeSec 1600000002 ≠ 1",
      "/empty: mode 0644 ≠ 0600",
      "/fifo: only in first (fifo)",
      "/new: only in second (file)"
    ])
    // Writing the file made the kernel drop its security.capability: diffTrees shows that too.
    expect(diffTrees(a, b, { paths: (p) => p === "/d/file", ignore: ["mtimeSec"] })).toEqual([
      "/d/file: size 6 ≠ 7",
      `/d/file: sha256 "${sha256("hello\n")}" ≠ "${sha256("changed")}"`,
      `/d/file: xattrs {"security.capability":"${CAPABILITY_XATTR.toString("hex")}","user.comment":"6869"} ≠ {"user.comment":"6869"}`
    ])
  })
})

describe.runIf(asRoot)("sandboxed", () => {
  it("lets root write, mknod and chown only inside the writable folders", async () => {
    const inside = await scratchDir()
    const canary = await scratchDir()
    await fs.writeFile(path.join(canary, "canary"), "untouched")
    const script = [
      `echo in > ${inside}/file`,
      `mknod ${inside}/null c 1 3`,
      `chown 1234:5678 ${inside}/null`,
      `echo out > ${canary}/canary && echo WROTE-CANARY`,
      `touch ${canary}/new && echo WROTE-NEW`,
      `mkdir /microagent-sandbox-probe && echo WROTE-ROOT`,
      "echo done"
    ].join("; ")
    const result = await sandboxed("/bin/sh", ["-c", script], { writable: [inside] })
    expect(result.stdout).toBe("done\n")
    expect(result.stderr).toMatch(/Read-only file system/)
    expect(await fs.readFile(path.join(canary, "canary"), "utf8")).toBe("untouched")
    expect(await fs.readdir(canary)).toEqual(["canary"])
    await expect(fs.access("/microagent-sandbox-probe")).rejects.toThrow()
    const tree = byPath(await snapshotDir(inside))
    expect(tree.get("/file")?.sha256).toBe(sha256("in\n"))
    expect(tree.get("/null")).toMatchObject({ type: "char", uid: 1234, gid: 5678, rdev: { major: 1, minor: 3 } })
  })

  it("passes env, cwd and exit codes through, and TMPDIR points at a writable folder", async () => {
    const inside = await scratchDir()
    const result = await sandboxed("/bin/sh", ["-c", 'echo "$GREETING $(pwd) $TMPDIR"; exit 3'], {
      writable: [inside],
      env: { GREETING: "hi" }
    })
    expect(result).toMatchObject({ code: 3, stdout: `hi ${inside} ${inside}\n` })
  })

  it("throws instead of running unsandboxed when bwrap is missing", async () => {
    const inside = await scratchDir()
    await expect(sandboxed("/bin/true", [], { writable: [inside], searchPath: inside })).rejects.toThrow(/bwrap is not installed/)
    await expect(sandboxed("/bin/true", [], { writable: ["/"] })).rejects.toThrow(/cannot be a writable folder/)
  })
})
