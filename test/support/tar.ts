/**
 * A tar writer for tests: any archive, including hostile ones, byte for byte. Product code never
 * uses it, and it validates nothing on purpose: names like `../x`, `/abs`, a NUL inside a PAX path
 * or a 300-byte component are written as given, so tests can feed them to a reader.
 *
 * Formats: ustar headers (name split into prefix/name where a `/` allows it), PAX `x` headers for
 * what ustar cannot hold (long or NUL-bearing names, big ids and sizes, `SCHILY.xattr.*`, extra
 * records), or GNU `././@LongLink` (`L`/`K`) for long names on request. Output is a lazy stream of
 * chunks, so a PAX header of any size can be produced without holding it in memory.
 */
import { createWriteStream } from "node:fs"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"

export type TarEntryType = "file" | "dir" | "symlink" | "hardlink" | "fifo" | "char" | "block"

/** File content that is produced on demand: `chunks` must yield exactly `size` bytes. */
export interface TarStreamedContent {
  readonly size: number
  readonly chunks: () => Iterable<Uint8Array> | AsyncIterable<Uint8Array>
}

export type TarContent = Uint8Array | string | TarStreamedContent

export type LongNameStyle = "pax" | "gnu"

export interface TarEntry {
  /** Written as is: no normalisation, no checks. Directories conventionally end in `/`. */
  readonly name: string
  readonly type?: TarEntryType
  /** Only for `file` entries; other types have size 0. */
  readonly content?: TarContent
  /** Header mode as given, special bits included; default 0644 (files), 0755 (dirs), 0777 (symlinks), 0666 (devices). */
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  /** Default "": readers then have no name to map and must use the numeric ids. */
  readonly uname?: string
  readonly gname?: string
  /** Seconds since the epoch; default {@link DEFAULT_MTIME}. */
  readonly mtime?: number
  /** Target of a `symlink`, or the archive name a `hardlink` points at. */
  readonly linkname?: string
  readonly devmajor?: number
  readonly devminor?: number
  /** Written as `SCHILY.xattr.<name>` PAX records (GNU tar's and umoci's spelling); values are raw bytes. */
  readonly xattrs?: Readonly<Record<string, Uint8Array | string>>
  /** Extra PAX records, added last; a key here replaces a record this writer would have made (e.g. `path`). */
  readonly pax?: Readonly<Record<string, Uint8Array | string>>
  /** Put `path` (and `linkpath`) in a PAX header even when they fit in ustar. */
  readonly forcePax?: boolean
  /** How names that ustar cannot hold are written; default the archive's {@link TarOptions.longNames}. */
  readonly longNames?: LongNameStyle
  /** The ustar name field when the real name travels in PAX or `././@LongLink`; default its first 100 bytes. */
  readonly headerName?: string
  /** Adds a `comment` record with this many value bytes to the PAX header, streamed in 64 KiB chunks. */
  readonly paxPadding?: number
  /** Overrides the typeflag byte (e.g. "g", "V", "Z") while keeping everything else. */
  readonly typeflag?: string
}

/** Bytes copied into the archive verbatim (a truncated header, garbage, a missing end). */
export interface TarRaw {
  readonly raw: Uint8Array
}

export type TarItem = TarEntry | TarRaw

export interface TarOptions {
  /** Default "pax". */
  readonly longNames?: LongNameStyle
  /** Zero blocks written at the end; default 2 (the standard end of archive). */
  readonly endBlocks?: number
}

export const BLOCK = 512
export const DEFAULT_MTIME = 1_700_000_000

const CHUNK = 64 * 1024

/** The archive as a lazy stream of chunks. */
export async function* tarStream(
  items: Iterable<TarItem> | AsyncIterable<TarItem>,
  options: TarOptions = {}
): AsyncGenerator<Buffer> {
  for await (const item of items) {
    if ("raw" in item) yield Buffer.from(item.raw)
    else yield* entryChunks(item, options)
  }
  const end = options.endBlocks ?? 2
  if (end > 0) yield Buffer.alloc(end * BLOCK)
}

/** The archive as a Node stream. */
export const tarReadable = (items: Iterable<TarItem> | AsyncIterable<TarItem>, options: TarOptions = {}): Readable =>
  Readable.from(tarStream(items, options), { objectMode: false })

/** The whole archive in memory: for small archives only. */
export const tarBuffer = async (items: Iterable<TarItem> | AsyncIterable<TarItem>, options: TarOptions = {}): Promise<Buffer> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of tarStream(items, options)) chunks.push(chunk)
  return Buffer.concat(chunks)
}

/** Streams the archive into `file`. */
export const writeTar = (
  file: string,
  items: Iterable<TarItem> | AsyncIterable<TarItem>,
  options: TarOptions = {}
): Promise<void> => pipeline(tarReadable(items, options), createWriteStream(file))

/** `size` bytes of `byte`, produced in chunks: a large file that costs no memory. */
export const repeatedContent = (size: number, byte = 0x61): TarStreamedContent => ({
  size,
  chunks: function* () {
    const block = Buffer.alloc(Math.min(CHUNK, size), byte)
    for (let left = size; left > 0; left -= block.length) yield left >= block.length ? block : block.subarray(0, left)
  }
})

// ---------------------------------------------------------------------------------------------

const TYPEFLAG: Record<TarEntryType, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6"
}

const DEFAULT_MODE: Record<TarEntryType, number> = {
  file: 0o644,
  hardlink: 0o644,
  symlink: 0o777,
  char: 0o666,
  block: 0o666,
  dir: 0o755,
  fifo: 0o644
}

const USTAR_MAGIC = Buffer.from("ustar\u000000", "latin1")
const GNU_MAGIC = Buffer.from("ustar  \u0000", "latin1")

/** Largest value of an octal field of `length` bytes (length - 1 digits and a NUL). */
const octalMax = (length: number): number => 8 ** (length - 1) - 1

interface HeaderFields {
  readonly name: Buffer
  readonly prefix?: Buffer
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly mtime: number
  readonly typeflag: string
  readonly linkname?: Buffer
  readonly uname?: string
  readonly gname?: string
  readonly devmajor?: number
  readonly devminor?: number
  readonly gnu: boolean
}

async function* entryChunks(entry: TarEntry, options: TarOptions): AsyncGenerator<Buffer> {
  const type = entry.type ?? "file"
  const style = entry.longNames ?? options.longNames ?? "pax"
  const name = Buffer.from(entry.name, "utf8")
  const linkname = entry.linkname === undefined ? undefined : Buffer.from(entry.linkname, "utf8")
  const content = type === "file" ? entry.content ?? Buffer.alloc(0) : undefined
  const size = content === undefined ? 0 : contentSize(content)
  const mtime = entry.mtime ?? DEFAULT_MTIME
  const uid = entry.uid ?? 0
  const gid = entry.gid ?? 0

  const pax = new Map<string, Buffer>()
  let nameField: { name: Buffer; prefix?: Buffer } = { name: name.subarray(0, 100) }
  let linkField = linkname?.subarray(0, 100)
  const longName = !fitsField(name, 100)
  const longLink = linkname !== undefined && !fitsField(linkname, 100)
  const split = style === "pax" && entry.forcePax !== true ? splitUstar(name) : undefined
  const gnuName = style === "gnu" && longName
  const gnuLink = style === "gnu" && longLink

  if (split !== undefined) nameField = split
  else if (entry.forcePax === true || (longName && style === "pax")) pax.set("path", name)
  if (linkname !== undefined && (entry.forcePax === true || (longLink && style === "pax"))) pax.set("linkpath", linkname)
  if (entry.headerName !== undefined && (pax.has("path") || gnuName)) nameField = { name: Buffer.from(entry.headerName, "utf8") }

  // Numbers ustar cannot hold go to PAX (and base-256 in the header, for readers that skip PAX).
  if (uid > octalMax(8)) pax.set("uid", Buffer.from(String(uid)))
  if (gid > octalMax(8)) pax.set("gid", Buffer.from(String(gid)))
  if (size > octalMax(12)) pax.set("size", Buffer.from(String(size)))
  if (mtime > octalMax(12) || mtime < 0 || !Number.isInteger(mtime)) pax.set("mtime", Buffer.from(String(mtime)))
  for (const [key, value] of Object.entries(entry.xattrs ?? {})) pax.set(`SCHILY.xattr.${key}`, toBuffer(value))
  for (const [key, value] of Object.entries(entry.pax ?? {})) pax.set(key, toBuffer(value))

  const gnu = style === "gnu"
  if (gnuLink && linkname !== undefined) yield* gnuLongLink("K", linkname)
  if (gnuName) yield* gnuLongLink("L", name)
  if (pax.size > 0 || entry.paxPadding !== undefined) {
    yield* paxHeader(name, mtime, pax, entry.paxPadding ?? 0, gnu)
  }
  yield header({
    ...nameField,
    mode: entry.mode ?? DEFAULT_MODE[type],
    uid,
    gid,
    size,
    mtime: Math.trunc(mtime),
    typeflag: entry.typeflag ?? TYPEFLAG[type],
    ...(linkField === undefined ? {} : { linkname: linkField }),
    uname: entry.uname ?? "",
    gname: entry.gname ?? "",
    ...(entry.devmajor === undefined ? {} : { devmajor: entry.devmajor }),
    ...(entry.devminor === undefined ? {} : { devminor: entry.devminor }),
    gnu
  })
  if (content !== undefined) yield* contentChunks(content, size)
}

const toBuffer = (value: Uint8Array | string): Buffer =>
  typeof value === "string" ? Buffer.from(value, "utf8") : Buffer.from(value)

const fitsField = (bytes: Buffer, length: number): boolean => bytes.length <= length && !bytes.includes(0)

/** ustar's prefix/name split at a `/`, if one gives prefix ≤ 155 and a non-empty name ≤ 100 bytes. */
const splitUstar = (name: Buffer): { name: Buffer; prefix?: Buffer } | undefined => {
  if (name.includes(0)) return undefined
  if (name.length <= 100) return { name }
  for (let i = Math.min(155, name.length - 1); i > 0; i--) {
    if (name[i] !== 0x2f) continue
    const rest = name.subarray(i + 1)
    if (rest.length > 100) return undefined
    if (rest.length > 0) return { prefix: name.subarray(0, i), name: rest }
  }
  return undefined
}

const contentSize = (content: TarContent): number =>
  typeof content === "string" ? Buffer.byteLength(content, "utf8") : content instanceof Uint8Array ? content.length : content.size

async function* contentChunks(content: TarContent, size: number): AsyncGenerator<Buffer> {
  if (typeof content === "string" || content instanceof Uint8Array) {
    yield toBuffer(content)
  } else {
    let seen = 0
    for await (const chunk of content.chunks()) {
      seen += chunk.length
      yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
    }
    if (seen !== size) throw new Error(`tar test content: chunks gave ${seen} bytes, size says ${size}`)
  }
  const padding = (BLOCK - (size % BLOCK)) % BLOCK
  if (padding > 0) yield Buffer.alloc(padding)
}

async function* gnuLongLink(typeflag: "L" | "K", value: Buffer): AsyncGenerator<Buffer> {
  const data = Buffer.concat([value, Buffer.alloc(1)])
  yield header({
    name: Buffer.from("././@LongLink"),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime: 0,
    typeflag,
    uname: "root",
    gname: "root",
    gnu: true
  })
  yield* contentChunks(data, data.length)
}

/** One PAX record: `<len> <key>=<value>\n`, where len counts its own digits. */
export const paxRecord = (key: string, value: Uint8Array | string): Buffer => {
  const body = Buffer.concat([Buffer.from(` ${key}=`, "utf8"), toBuffer(value), Buffer.from("\n")])
  return Buffer.concat([Buffer.from(String(recordLength(body.length))), body])
}

const recordLength = (bodyLength: number): number => {
  let length = bodyLength + 1
  while (String(length).length + bodyLength !== length) length = String(length).length + bodyLength
  return length
}

async function* paxHeader(
  name: Buffer,
  mtime: number,
  records: ReadonlyMap<string, Buffer>,
  padding: number,
  gnu: boolean
): AsyncGenerator<Buffer> {
  const body = Buffer.concat([...records].map(([key, value]) => paxRecord(key, value)))
  // The padding record comes first, so a reader has to get through it before it sees the path.
  const paddingHead = padding > 0 ? ` comment=` : ""
  const paddingBody = paddingHead.length + padding + 1
  const paddingLength = padding > 0 ? recordLength(paddingBody) : 0
  const size = paddingLength + body.length
  const base = name.subarray(name.lastIndexOf(0x2f, name.length - 2) + 1).subarray(0, 88)
  yield header({
    name: Buffer.concat([Buffer.from("PaxHeaders/"), Buffer.from(base.toString("latin1").replace(/\0/g, "_"), "latin1")]),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size,
    mtime: Math.max(0, Math.trunc(mtime)),
    typeflag: "x",
    gnu
  })
  if (padding > 0) {
    yield Buffer.from(`${paddingLength}${paddingHead}`)
    const block = Buffer.alloc(Math.min(CHUNK, padding), 0x78)
    for (let left = padding; left > 0; left -= block.length) yield left >= block.length ? block : block.subarray(0, left)
    yield Buffer.from("\n")
  }
  yield body
  const tail = (BLOCK - (size % BLOCK)) % BLOCK
  if (tail > 0) yield Buffer.alloc(tail)
}

const header = (fields: HeaderFields): Buffer => {
  const block = Buffer.alloc(BLOCK)
  fields.name.copy(block, 0, 0, 100)
  writeNumber(block, 100, 8, fields.mode)
  writeNumber(block, 108, 8, fields.uid)
  writeNumber(block, 116, 8, fields.gid)
  writeNumber(block, 124, 12, fields.size)
  writeNumber(block, 136, 12, fields.mtime)
  block.write(fields.typeflag.slice(0, 1), 156, 1, "latin1")
  fields.linkname?.copy(block, 157, 0, 100)
  ;(fields.gnu ? GNU_MAGIC : USTAR_MAGIC).copy(block, 257)
  block.write(fields.uname ?? "", 265, 32, "utf8")
  block.write(fields.gname ?? "", 297, 32, "utf8")
  if (fields.devmajor !== undefined) writeNumber(block, 329, 8, fields.devmajor)
  if (fields.devminor !== undefined) writeNumber(block, 337, 8, fields.devminor)
  if (!fields.gnu) fields.prefix?.copy(block, 345, 0, 155)
  block.fill(0x20, 148, 156) // the checksum is summed with its own field as spaces
  let sum = 0
  for (const byte of block) sum += byte
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1")
  return block
}

/** Octal with a NUL, or GNU base-256 (high bit set, big-endian) when the value does not fit. */
const writeNumber = (block: Buffer, offset: number, length: number, value: number): void => {
  if (value >= 0 && value <= octalMax(length) && Number.isInteger(value)) {
    block.write(`${value.toString(8).padStart(length - 1, "0")}\0`, offset, length, "latin1")
    return
  }
  let rest = BigInt(Math.trunc(value))
  if (rest < 0n) rest = (1n << BigInt(8 * length)) + rest
  for (let i = length - 1; i >= 0; i--) {
    block[offset + i] = Number(rest & 0xffn)
    rest >>= 8n
  }
  block[offset] = block[offset]! | 0x80
}
