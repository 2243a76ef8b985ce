/**
 * The layer tar reader ([F2], [H2]): what GNU tar writes is read back exactly, binary xattrs keep
 * their bytes, metadata entries are capped, and a damaged archive is an error, never a guess.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as FastCheck from "effect/FastCheck"
import { describe, expect, it } from "vitest"
import * as TarReader from "../../src/rootfs/TarReader.js"
import { useScratch } from "../support/scratch.js"
import { tarBuffer, tarStream, type TarItem } from "../support/tar.js"

const { scratchDir } = useScratch("microagent-tarreader-")

interface Read {
  readonly entry: TarReader.TarEntry
  readonly content: Buffer
}

/** Reads an archive fed in the given chunk sizes (cycled), collecting every entry and its bytes. */
const read = (archive: Uint8Array, sizes: ReadonlyArray<number> = [archive.length], limits?: TarReader.Limits): Array<Read> => {
  const out: Array<{ entry: TarReader.TarEntry; parts: Array<Buffer> }> = []
  const reader = TarReader.make({
    entry: (entry) => void out.push({ entry, parts: [] }),
    data: (chunk) => void out[out.length - 1]!.parts.push(Buffer.from(chunk)),
    end: () => {}
  }, limits)
  let at = 0
  for (let i = 0; at < archive.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length]!)
    reader.push(archive.subarray(at, at + size))
    at += size
  }
  reader.finish()
  return out.map(({ entry, parts }) => ({ entry, content: Buffer.concat(parts) }))
}

const collect = async (items: Iterable<TarItem>): Promise<Buffer> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of tarStream(items)) chunks.push(chunk)
  return Buffer.concat(chunks)
}

describe("TarReader", () => {
  it("[F2] reads what GNU tar writes: types, modes with special bits, owners, mtimes, link targets, long names", async () => {
    const dir = await scratchDir()
    const src = path.join(dir, "src")
    const long = `${"d".repeat(120)}/${"f".repeat(150)}`
    fs.mkdirSync(path.join(src, "d".repeat(120)), { recursive: true })
    fs.writeFileSync(path.join(src, long), "long name\n")
    fs.writeFileSync(path.join(src, "setuid"), "x")
    fs.chmodSync(path.join(src, "setuid"), 0o4755)
    fs.mkdirSync(path.join(src, "sticky"))
    fs.chmodSync(path.join(src, "sticky"), 0o1777)
    fs.symlinkSync(`../${"t".repeat(150)}`, path.join(src, "link"))
    fs.linkSync(path.join(src, "setuid"), path.join(src, "hard"))
    execFileSync("mkfifo", [path.join(src, "fifo")])
    fs.utimesSync(path.join(src, "setuid"), 1_600_000_000, 1_600_000_000)
    for (const format of ["gnu", "posix"]) {
      const archive = execFileSync("tar", [`--format=${format}`, "--owner=1234", "--group=5678", "--numeric-owner", "-C", src, "-cf", "-", "."])
      const entries = new Map(read(archive).map((r) => [r.entry.name.replace(/^\.\//, ""), r]))
      expect(entries.get(long)?.content.toString(), format).toBe("long name\n")
      expect(entries.get("setuid")?.entry).toMatchObject({ type: "file", mode: 0o4755, uid: 1234, gid: 5678, mtime: 1_600_000_000, size: 1 })
      expect(entries.get("sticky/")?.entry).toMatchObject({ type: "directory", mode: 0o1777 })
      expect(entries.get("link")?.entry).toMatchObject({ type: "symlink", linkname: `../${"t".repeat(150)}` })
      expect(entries.get("hard")?.entry.type === "hardlink" || entries.get("setuid")?.entry.type === "hardlink", format).toBe(true)
      expect(entries.get("fifo")?.entry.type).toBe("fifo")
    }
  })

  it("[F2] keeps binary xattr values byte for byte (SCHILY.xattr and LIBARCHIVE.xattr)", async () => {
    const capability = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x04, 0x00, 0x00, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    const archive = await tarBuffer([
      { name: "ping", content: "x", xattrs: { "security.capability": capability, "user.note": "hello" } },
      { name: "other", content: "y", pax: { "LIBARCHIVE.xattr.user.b64": capability.toString("base64") } }
    ])
    const [ping, other] = read(archive)
    expect(Buffer.from(ping!.entry.xattrs.get("security.capability")!)).toEqual(capability)
    expect(Buffer.from(ping!.entry.xattrs.get("user.note")!).toString()).toBe("hello")
    expect(Buffer.from(other!.entry.xattrs.get("user.b64")!)).toEqual(capability)
    // The records belong to their entry only.
    expect(other!.entry.xattrs.has("security.capability")).toBe(false)
  })

  it("[F2] pax path and linkpath win over the header; GNU long names and long links are read", async () => {
    const name = `${"a".repeat(200)}/${"b".repeat(200)}`
    const archive = await tarBuffer([
      { name, content: "pax" },
      { name: `gnu/${"c".repeat(200)}`, content: "gnu", longNames: "gnu" },
      { name: "l", type: "symlink", linkname: "z".repeat(300), longNames: "gnu" }
    ])
    const [pax, gnu, link] = read(archive)
    expect(pax!.entry.name).toBe(name)
    expect(pax!.content.toString()).toBe("pax")
    expect(gnu!.entry.name).toBe(`gnu/${"c".repeat(200)}`)
    expect(link!.entry.linkname).toBe("z".repeat(300))
  })

  it("[F2] any split of the input into chunks reads the same entries (property)", async () => {
    const archive = await tarBuffer([
      { name: "dir/", type: "dir" },
      { name: "dir/a", content: Buffer.alloc(1500, 7) },
      { name: "dir/empty", content: "" },
      { name: `dir/${"x".repeat(180)}`, content: "long", xattrs: { "user.k": "v" } },
      { name: "dir/s", type: "symlink", linkname: "a" }
    ])
    const whole = read(archive)
    FastCheck.assert(FastCheck.property(FastCheck.array(FastCheck.integer({ min: 1, max: 1100 }), { minLength: 1, maxLength: 20 }), (sizes) => {
      expect(read(archive, sizes)).toEqual(whole)
    }))
  })

  it("[H2] a pax header larger than the cap is refused before it is buffered", async () => {
    const archive = await collect([{ name: "f", content: "x", paxPadding: 2 * 1024 * 1024 }])
    expect(() => read(archive)).toThrow(/larger than the 1048576 bytes allowed/)
    // Under the cap it reads.
    const small = await collect([{ name: "f", content: "x", paxPadding: 1000 }])
    expect(read(small)[0]!.content.toString()).toBe("x")
  })

  it("refuses a damaged header, a truncated archive, sparse files and unknown entry types", async () => {
    const good = await tarBuffer([{ name: "f", content: "hello" }])
    const damaged = Buffer.from(good)
    damaged[10] = damaged[10]! ^ 0xff
    expect(() => read(damaged)).toThrow(/checksum/)
    expect(() => read(good.subarray(0, 512 + 3))).toThrow(/ends in the middle/)
    const sparse = await tarBuffer([{ name: "s", content: "x", typeflag: "S" }])
    expect(() => read(sparse)).toThrow(/sparse/)
    const unknown = await tarBuffer([{ name: "v", content: "", typeflag: "Z" }])
    expect(() => read(unknown)).toThrow(/unsupported tar entry type/)
    const paxSparse = await tarBuffer([{ name: "f", content: "x", pax: { "GNU.sparse.map": "0,1" } }])
    expect(() => read(paxSparse)).toThrow(/sparse/)
  })

  it("an archive without end blocks ends cleanly at an entry boundary; data after the end blocks is ignored", async () => {
    const bare = await tarBuffer([{ name: "f", content: "x" }], { endBlocks: 0 })
    expect(read(bare).map((r) => r.entry.name)).toEqual(["f"])
    // As umoci 0.4's insert writes them: the last entry's padding missing too.
    const unpadded = bare.subarray(0, 512 + 1)
    expect(read(unpadded).map((r) => r.content.toString())).toEqual(["x"])
    expect(() => read(bare.subarray(0, 511))).toThrow(/ends in the middle/)
    const trailing = Buffer.concat([await tarBuffer([{ name: "f", content: "x" }]), Buffer.from("garbage after the end")])
    expect(read(trailing).map((r) => r.entry.name)).toEqual(["f"])
  })

  it("header-only types carry no data whatever their size field says", async () => {
    const archive = await tarBuffer([{ name: "d/", type: "dir" }, { name: "f", content: "after" }])
    const [dir, file] = read(archive)
    expect(dir!.content.length).toBe(0)
    expect(file!.content.toString()).toBe("after")
  })
})
