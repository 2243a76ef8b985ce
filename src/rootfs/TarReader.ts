/**
 * A push parser for the tar archives inside layers (POSIX ustar and pax, GNU long names): bytes
 * go in with `push`, entries come out through synchronous callbacks, so the applier writes each
 * entry's data as it arrives with no stream per entry and no buffering beyond one header.
 *
 * Why not a package: `tar-stream` buffers a pax header of any size whole (a 1 GiB header, a few
 * MiB gzip'd, takes 1 GiB of memory) and decodes pax values as UTF-8, which mangles binary
 * xattrs (`security.capability`); `tar` (node-tar) caps metadata but drops xattrs altogether.
 * Both were measured against the cases in test/rootfs/TarReader.test.ts. This reader caps every
 * metadata entry and keeps xattr values as bytes.
 */

export type EntryType = "file" | "directory" | "symlink" | "hardlink" | "fifo" | "char" | "block"

export interface TarEntry {
  readonly name: string
  readonly type: EntryType
  /** Permission bits with setuid, setgid and sticky (`mode & 0o7777`). */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** Bytes of data that follow (0 for everything but files). */
  readonly size: number
  /** Seconds since the epoch; pax times may carry a fraction. */
  readonly mtime: number
  readonly linkname: string
  readonly devmajor: number
  readonly devminor: number
  /** From pax `SCHILY.xattr.*` (raw bytes) and `LIBARCHIVE.xattr.*` (base64). */
  readonly xattrs: ReadonlyMap<string, Uint8Array>
}

export interface Handlers {
  readonly entry: (entry: TarEntry) => void
  readonly data: (chunk: Uint8Array) => void
  readonly end: () => void
}

/** The archive is malformed or uses something this reader refuses; `message` says which. */
export class TarError extends Error {}

export interface Limits {
  /** Largest pax or GNU long-name entry (default 1 MiB, as node-tar's cap). */
  readonly maxMetaBytes?: number
}

const BLOCK = 512

const types: Record<string, EntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "char",
  "4": "block",
  "5": "directory",
  "6": "fifo"
}

const decoder = new TextDecoder()

const text = (block: Uint8Array, start: number, length: number): string => {
  let end = start
  while (end < start + length && block[end] !== 0) end++
  return decoder.decode(block.subarray(start, end))
}

/** Octal (space or NUL terminated) or GNU base-256 (high bit set). */
const number = (block: Uint8Array, start: number, length: number, field: string): number => {
  if ((block[start]! & 0x80) !== 0) {
    if ((block[start]! & 0x40) !== 0) throw new TarError(`negative ${field} in a tar header`)
    let value = block[start]! & 0x3f
    for (let i = start + 1; i < start + length; i++) {
      value = value * 256 + block[i]!
      if (value > Number.MAX_SAFE_INTEGER) throw new TarError(`${field} in a tar header is too large`)
    }
    return value
  }
  const digits = text(block, start, length).trim()
  if (digits === "") return 0
  if (!/^[0-7]+$/.test(digits)) throw new TarError(`${field} in a tar header is not a number`)
  const value = parseInt(digits, 8)
  if (value > Number.MAX_SAFE_INTEGER) throw new TarError(`${field} in a tar header is too large`)
  return value
}

const checksumOk = (block: Uint8Array): boolean => {
  const stored = number(block, 148, 8, "checksum")
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!
    unsigned += byte
    signed += byte > 127 ? byte - 256 : byte
  }
  return stored === unsigned || stored === signed
}

const isZero = (block: Uint8Array): boolean => {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false
  return true
}

interface Pax {
  path?: string
  linkpath?: string
  size?: number
  uid?: number
  gid?: number
  mtime?: number
  xattrs: Map<string, Uint8Array>
}

const paxNumber = (key: string, value: string, fraction: boolean): number => {
  if (!(fraction ? /^-?\d+(\.\d+)?$/ : /^\d+$/).test(value)) throw new TarError(`pax record ${key} is not a number`)
  const n = Number(value)
  if (!Number.isFinite(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER) throw new TarError(`pax record ${key} is out of range`)
  return n
}

/** Records are `<length> <key>=<value>\n`; values are kept as bytes until their key says what they are. */
const parsePax = (bytes: Uint8Array, into: Pax): void => {
  let at = 0
  while (at < bytes.length) {
    let space = at
    while (space < bytes.length && space - at < 20 && bytes[space] !== 0x20) space++
    if (bytes[space] !== 0x20) {
      // Trailing NUL padding after the last record is common.
      if (bytes.subarray(at).every((b) => b === 0)) return
      throw new TarError("malformed pax record")
    }
    const length = Number(decoder.decode(bytes.subarray(at, space)))
    if (!Number.isInteger(length) || length <= space - at + 1 || at + length > bytes.length || bytes[at + length - 1] !== 0x0a) {
      throw new TarError("malformed pax record")
    }
    const record = bytes.subarray(space + 1, at + length - 1)
    const equals = record.indexOf(0x3d)
    if (equals <= 0) throw new TarError("malformed pax record")
    const key = decoder.decode(record.subarray(0, equals))
    const raw = record.subarray(equals + 1)
    const value = () => decoder.decode(raw)
    if (key.startsWith("SCHILY.xattr.")) into.xattrs.set(key.slice(13), Uint8Array.from(raw))
    else if (key.startsWith("LIBARCHIVE.xattr.")) {
      into.xattrs.set(decodeURIComponent(key.slice(17)), Buffer.from(value(), "base64"))
    } else if (key.startsWith("GNU.sparse.")) throw new TarError("sparse files are not supported")
    else {
      switch (key) {
        case "path":
          into.path = value()
          break
        case "linkpath":
          into.linkpath = value()
          break
        case "size":
          into.size = paxNumber(key, value(), false)
          break
        case "uid":
          into.uid = paxNumber(key, value(), false)
          break
        case "gid":
          into.gid = paxNumber(key, value(), false)
          break
        case "mtime":
          into.mtime = paxNumber(key, value(), true)
          break
      }
    }
    at += length
  }
}

type State =
  | { readonly _tag: "Header" }
  | { readonly _tag: "Meta"; readonly kind: "pax" | "global" | "longname" | "longlink"; readonly size: number; readonly parts: Array<Uint8Array>; got: number }
  | { readonly _tag: "Data"; remaining: number; readonly padding: number }
  | { readonly _tag: "Skip"; remaining: number }
  | { readonly _tag: "Done" }

export interface Reader {
  /** Feeds bytes; callbacks run before it returns. Throws TarError (or what a callback throws). */
  readonly push: (chunk: Uint8Array) => void
  /** The input ended: fails if it ended inside an entry. */
  readonly finish: () => void
}

export const make = (handlers: Handlers, limits: Limits = {}): Reader => {
  const maxMeta = limits.maxMetaBytes ?? 1024 * 1024
  let state: State = { _tag: "Header" }
  const header = new Uint8Array(BLOCK)
  let headerFill = 0
  let zeroBlocks = 0
  let pax: Pax = { xattrs: new Map() }
  let longName: string | undefined
  let longLink: string | undefined

  const padded = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK

  const onHeader = (block: Uint8Array) => {
    if (isZero(block)) {
      // Two zero blocks end the archive; anything after them is ignored, as GNU tar does.
      if (++zeroBlocks === 2) state = { _tag: "Done" }
      return
    }
    zeroBlocks = 0
    if (!checksumOk(block)) throw new TarError("a tar header's checksum does not match (not a tar archive, or damaged)")
    const flag = String.fromCharCode(block[156]!)
    const size = number(block, 124, 12, "size")
    const metaKind = flag === "x" ? "pax" : flag === "g" ? "global" : flag === "L" ? "longname" : flag === "K" ? "longlink" : undefined
    if (metaKind !== undefined) {
      if (size > maxMeta) throw new TarError(`a tar metadata entry of ${size} bytes is larger than the ${maxMeta} bytes allowed`)
      state = size === 0 ? { _tag: "Header" } : { _tag: "Meta", kind: metaKind, size, parts: [], got: 0 }
      return
    }
    const type = types[flag]
    if (type === undefined) {
      throw new TarError(flag === "S" ? "sparse files are not supported" : `unsupported tar entry type ${JSON.stringify(flag)}`)
    }
    const ustar = text(block, 257, 6) === "ustar" && block[262] === 0
    const prefix = ustar ? text(block, 345, 155) : ""
    const plainName = text(block, 0, 100)
    const name = pax.path ?? longName ?? (prefix === "" ? plainName : `${prefix}/${plainName}`)
    const dataSize = type === "file" ? pax.size ?? size : 0
    const entry: TarEntry = {
      name,
      type,
      mode: number(block, 100, 8, "mode") & 0o7777,
      uid: pax.uid ?? number(block, 108, 8, "uid"),
      gid: pax.gid ?? number(block, 116, 8, "gid"),
      size: dataSize,
      mtime: pax.mtime ?? number(block, 136, 12, "mtime"),
      linkname: pax.linkpath ?? longLink ?? text(block, 157, 100),
      devmajor: type === "char" || type === "block" ? number(block, 329, 8, "devmajor") : 0,
      devminor: type === "char" || type === "block" ? number(block, 337, 8, "devminor") : 0,
      xattrs: pax.xattrs
    }
    pax = { xattrs: new Map() }
    longName = undefined
    longLink = undefined
    handlers.entry(entry)
    // Header-only types carry no data whatever their size field says (as Go's archive/tar reads them).
    const stored = type === "file" ? dataSize : 0
    if (stored === 0) {
      handlers.end()
      state = { _tag: "Header" }
    } else state = { _tag: "Data", remaining: stored, padding: padded(stored) }
  }

  const onMeta = (meta: Extract<State, { _tag: "Meta" }>) => {
    const bytes = Buffer.concat(meta.parts, meta.size)
    switch (meta.kind) {
      case "pax":
        parsePax(bytes, pax)
        break
      case "global":
        // Global records (git archive's comment) say nothing about how to apply an entry.
        parsePax(bytes, { xattrs: new Map() })
        break
      case "longname":
        longName = text(bytes, 0, bytes.length)
        break
      case "longlink":
        longLink = text(bytes, 0, bytes.length)
        break
    }
  }

  const push = (chunk: Uint8Array) => {
    let at = 0
    while (at < chunk.length) {
      switch (state._tag) {
        case "Done":
          return
        case "Header": {
          const take = Math.min(BLOCK - headerFill, chunk.length - at)
          if (headerFill === 0 && take === BLOCK) {
            at += BLOCK
            onHeader(chunk.subarray(at - BLOCK, at))
          } else {
            header.set(chunk.subarray(at, at + take), headerFill)
            headerFill += take
            at += take
            if (headerFill === BLOCK) {
              headerFill = 0
              onHeader(header)
            }
          }
          break
        }
        case "Meta": {
          const meta = state
          const take = Math.min(meta.size + padded(meta.size) - meta.got, chunk.length - at)
          const useful = Math.max(0, Math.min(take, meta.size - meta.got))
          if (useful > 0) meta.parts.push(Uint8Array.from(chunk.subarray(at, at + useful)))
          meta.got += take
          at += take
          if (meta.got === meta.size + padded(meta.size)) {
            state = { _tag: "Header" }
            onMeta(meta)
          }
          break
        }
        case "Data": {
          const data = state
          const take = Math.min(data.remaining, chunk.length - at)
          data.remaining -= take
          at += take
          handlers.data(chunk.subarray(at - take, at))
          if (data.remaining === 0) {
            handlers.end()
            state = data.padding === 0 ? { _tag: "Header" } : { _tag: "Skip", remaining: data.padding }
          }
          break
        }
        case "Skip": {
          const skip = state
          const take = Math.min(skip.remaining, chunk.length - at)
          skip.remaining -= take
          at += take
          if (skip.remaining === 0) state = { _tag: "Header" }
          break
        }
      }
    }
  }

  const finish = () => {
    // An archive that stops after an entry's data, its padding or end blocks missing, lost
    // nothing: umoci 0.4's `insert` writes such layers, and umoci and Go's reader take them.
    const clean = state._tag === "Done" || state._tag === "Skip" ||
      (state._tag === "Header" && headerFill === 0 && pax.path === undefined && longName === undefined)
    if (!clean) throw new TarError("the tar archive ends in the middle of an entry")
  }

  return { push, finish }
}
