/**
 * The OCI image config (`application/vnd.oci.image.config.v1+json`, Docker's v2 config too), read
 * as leniently as Go's `encoding/json` reads it into image-spec's `v1.Image` ([F4]): unknown
 * fields are ignored, `null` stands for "absent" wherever Docker writes it (`"Cmd": null`), and
 * only a value of the wrong type is refused. It accepts every config umoci accepts and a little
 * more: any value in the ExposedPorts/Volumes sets (Go wants `{}` or null), and `created` in any
 * form (`RuntimeSpec.toRuntimeSpec` refuses what Go's RFC 3339 parser refuses). Unlike Go, keys
 * match case-sensitively (`"cmd"` is not `Cmd`).
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

// Go decodes `null` into any field as its zero value; "absent" is our zero value.
const opt = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { nullable: true, exact: true })

// Go decodes a `null` element of a []string or map[string]string as "".
const Str = Schema.transform(Schema.NullOr(Schema.String), Schema.String, {
  strict: true,
  decode: (s) => s ?? "",
  encode: (s) => s
})
const Strings = Schema.Array(Str)
// ExposedPorts and Volumes are Go sets (`map[string]struct{}`): only the keys carry meaning.
const StringSet = Schema.Record({ key: Schema.String, value: Schema.Unknown })

export const ContainerConfig = Schema.Struct({
  User: opt(Schema.String),
  ExposedPorts: opt(StringSet),
  Env: opt(Strings),
  Entrypoint: opt(Strings),
  Cmd: opt(Strings),
  Volumes: opt(StringSet),
  WorkingDir: opt(Schema.String),
  Labels: opt(Schema.Record({ key: Schema.String, value: Str })),
  StopSignal: opt(Schema.String),
  ArgsEscaped: opt(Schema.Boolean)
})
export type ContainerConfig = typeof ContainerConfig.Type

export const History = Schema.Struct({
  created: opt(Schema.String),
  created_by: opt(Schema.String),
  author: opt(Schema.String),
  comment: opt(Schema.String),
  empty_layer: opt(Schema.Boolean)
})
export type History = typeof History.Type

export const RootFs = Schema.Struct({
  type: Schema.optionalWith(Schema.String, { nullable: true, default: () => "" }),
  // Docker omits diff_ids for an image without layers.
  diff_ids: Schema.optionalWith(Strings, { nullable: true, default: () => [] })
})
export type RootFs = typeof RootFs.Type

export const ImageConfig = Schema.Struct({
  // Required by the image-spec, yet umoci takes a config without them; "" is Go's zero value.
  architecture: Schema.optionalWith(Schema.String, { nullable: true, default: () => "" }),
  os: Schema.optionalWith(Schema.String, { nullable: true, default: () => "" }),
  variant: opt(Schema.String),
  "os.version": opt(Schema.String),
  "os.features": opt(Strings),
  author: opt(Schema.String),
  // Kept as written: its RFC 3339 form is checked where it is used (`canonicalCreated`).
  created: opt(Schema.String),
  config: Schema.optionalWith(ContainerConfig, { nullable: true, default: () => ({}) }),
  rootfs: opt(RootFs),
  history: opt(Schema.Array(History))
})
export type ImageConfig = typeof ImageConfig.Type

const decodeUnknown = Schema.decodeUnknownEither(ImageConfig)

const describePath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((acc, key) => typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`, "")

/** Reads config bytes; on failure, one line saying where and what is wrong. */
export const decode = (bytes: Uint8Array): Either.Either<ImageConfig, string> => {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    return Either.left("the image config is not JSON")
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return Either.left("the image config is not a JSON object")
  return Either.mapLeft(decodeUnknown(json), (error) => {
    const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
    if (issue === undefined) return "invalid image config"
    const where = describePath(issue.path)
    return `invalid image config: ${where === "" ? "" : `${where}: `}${issue.message.replace(/\s+/g, " ")}`
  })
}

// Go's time.Parse(time.RFC3339, …) as umoci's Go 1.19 json.Unmarshal applies it: a one- or
// two-digit hour, a fraction after "." or "," of any length (truncated to nanoseconds), "Z" or
// a ±hh:mm offset; everything else, including a lower-case "t" or "z", is refused.
const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/

const isLeap = (year: number): boolean => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
const daysIn = (month: number, year: number): number =>
  month === 2 ? (isLeap(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31

const pad = (n: number, width = 2): string => String(n).padStart(width, "0")

/**
 * `created` as umoci writes it into `org.opencontainers.image.created`: parsed as Go parses
 * RFC 3339, then formatted as Go's RFC3339Nano (trailing zeros of the fraction dropped, a zero
 * offset written as "Z", the hour padded). None when Go would refuse the config.
 */
export const canonicalCreated = (created: string): Option.Option<string> => {
  const m = rfc3339.exec(created)
  if (m === null) return Option.none()
  const [, y, mo, d, h, mi, s, frac, z, sign, oh, om] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  const hour = Number(h)
  const minute = Number(mi)
  const second = Number(s)
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return Option.none()
  if (day < 1 || day > daysIn(month, year)) return Option.none()
  const offsetHours = Number(oh ?? "0")
  const offsetMinutes = Number(om ?? "0")
  if (offsetHours > 24 || offsetMinutes > 60) return Option.none()
  const fraction = (frac ?? "").slice(0, 9).replace(/0+$/, "")
  const offset = z !== undefined ? 0 : (sign === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes)
  const zone = offset === 0
    ? "Z"
    : `${offset < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`
  return Option.some(
    `${pad(year, 4)}-${pad(month)}-${pad(day)}T${pad(hour)}:${pad(minute)}:${pad(second)}${fraction === "" ? "" : `.${fraction}`}${zone}`
  )
}
