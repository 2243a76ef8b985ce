/**
 * Names of layer entries (OCI image-spec layer.md; SPEC [F2], [F3]): what a tar entry's name
 * means once cleaned, and which names are refused before any path is built from them.
 */
import * as Either from "effect/Either"

/** Linux's limits: NAME_MAX for one component, PATH_MAX for a whole name. */
export const maxComponentBytes = 255
export const maxNameBytes = 4095

const whiteoutPrefix = ".wh."
const opaqueMarker = ".wh..wh..opq"

/**
 * A cleaned entry name: its components below the root, none empty, `.` or `..`. The root itself
 * (`./`, `/`) is the empty list.
 */
export type Components = ReadonlyArray<string>

/**
 * Cleans an entry name. `./` prefixes, repeated and trailing slashes and `.` components are
 * dropped, as every tar writer's variants of one name must mean the same path. Absolute names,
 * `..` anywhere, NUL and names past the file system's limits are refused: each is either
 * hostile or unrepresentable, and guessing what was meant could write where no one asked.
 */
export const parse = (name: string): Either.Either<Components, string> => {
  if (name.includes("\0")) return Either.left("the name contains a NUL byte")
  if (name.startsWith("/")) return Either.left("the name is absolute")
  if (Buffer.byteLength(name) > maxNameBytes) return Either.left(`the name is longer than ${maxNameBytes} bytes`)
  const components: Array<string> = []
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue
    if (part === "..") return Either.left("the name contains \"..\"")
    if (Buffer.byteLength(part) > maxComponentBytes) return Either.left(`a component is longer than ${maxComponentBytes} bytes`)
    components.push(part)
  }
  return Either.right(components)
}

/** What an entry's last component says about it. */
export type Kind =
  | { readonly _tag: "Plain" }
  /** `.wh.<name>`: delete `<name>` from lower layers. */
  | { readonly _tag: "Whiteout"; readonly name: string }
  /** `.wh..wh..opq`: hide what lower layers put in this directory. */
  | { readonly _tag: "Opaque" }
  /** Other `.wh..wh.` names are aufs bookkeeping (hard-link directories): never materialised. */
  | { readonly _tag: "Ignored" }

export const kind = (base: string): Either.Either<Kind, string> => {
  if (!base.startsWith(whiteoutPrefix)) return Either.right({ _tag: "Plain" })
  if (base === opaqueMarker) return Either.right({ _tag: "Opaque" })
  if (base.startsWith(`${whiteoutPrefix}${whiteoutPrefix}`)) return Either.right({ _tag: "Ignored" })
  const name = base.slice(whiteoutPrefix.length)
  // ".wh." alone, ".wh.." and ".wh..." name nothing, or the directory itself, or its parent.
  if (name === "" || name === "." || name === "..") return Either.left(`whiteout "${base}" names no entry`)
  return Either.right({ _tag: "Whiteout", name })
}

/** `a/b/c` for messages and map keys; the root is `.`. */
export const format = (components: Components): string => components.length === 0 ? "." : components.join("/")
