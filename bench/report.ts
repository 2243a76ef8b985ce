// The benchmark's table: one row per case, medians of wall time against the baseline (the second
// contender) and the largest peak RSS of each, with the case's target; and the Markdown report.
import { MiB } from "./images.js"
import { formatRss, formatSeconds, median, type Samples } from "./harness.js"

export interface Row {
  readonly id: string
  readonly label: string
  readonly target: string
  readonly samples: Samples
  /** the second contender, whom the ratios are against */
  readonly baselineName: string | undefined
  /** medians of wall seconds */
  readonly microagent: number
  readonly baseline: number | undefined
  readonly curl: number | undefined
  readonly hashing: number | undefined
  readonly floor: number | undefined
  /** the largest peak RSS of the timed runs */
  readonly microagentRss: number | undefined
  readonly baselineRss: number | undefined
  /** microagent ÷ baseline: wall time, peak RSS */
  readonly ratio: number | undefined
  readonly rssRatio: number | undefined
}

export interface Verdict extends Row {
  readonly met: boolean
}

/** Columns of their own; any other contender after the baseline goes beside it. */
const COLUMNS = { curl: "curl", hashing: "curl + openssl", floor: "node floor" } as const

export const MEMORY_TARGET = "peak RSS ≤ 120 MiB"

export class Table {
  readonly rows: Array<Verdict> = []

  add(id: string, label: string, target: string, samples: Samples, verdict: (row: Row) => boolean): void {
    const baselineName = Object.keys(samples)[1]
    const stat = (name: string | undefined, reduce: (values: ReadonlyArray<number>) => number, key: "wall" | "rss" = "wall") => {
      const values = name === undefined ? [] : (samples[name] ?? []).flatMap((sample) => sample[key] ?? [])
      return values.length === 0 ? undefined : reduce(values)
    }
    const largest = (values: ReadonlyArray<number>) => Math.max(...values)
    const microagent = stat("microagent", median)
    if (microagent === undefined) throw new Error(`${id}: no timed run of microagent`)
    const baseline = stat(baselineName, median)
    const microagentRss = stat("microagent", largest, "rss")
    const baselineRss = stat(baselineName, largest, "rss")
    const row: Row = {
      id,
      label,
      target,
      samples,
      baselineName,
      microagent,
      baseline,
      curl: stat(COLUMNS.curl, median),
      hashing: stat(COLUMNS.hashing, median),
      floor: stat(COLUMNS.floor, median),
      microagentRss,
      baselineRss,
      ratio: baseline === undefined ? undefined : microagent / baseline,
      rssRatio: microagentRss === undefined || baselineRss === undefined ? undefined : microagentRss / baselineRss
    }
    this.rows.push({ ...row, met: verdict(row) })
  }

  /** The target every pull, push, copy and rootfs build shares. */
  readonly flatMemory = (row: Row): boolean => row.microagentRss !== undefined && row.microagentRss <= 120 * MiB

  /** `flatMemory`, and the larger case `bigId` (if it ran) took at most 25 % + 8 MiB more. */
  readonly flatAgainst = (bigId: string) => (row: Row): boolean => {
    const big = this.rows.find((other) => other.id === bigId)?.microagentRss
    return this.flatMemory(row) && (big === undefined || big <= row.microagentRss! * 1.25 + 8 * MiB)
  }

  /** The table and every timed run, in Markdown. */
  render(): Array<string> {
    const ratio = (value: number | undefined) => value?.toFixed(2) ?? "—"
    const lines = [
      "| id | case | microagent | skopeo / baseline | ratio | curl (microagent ÷ curl) | curl + openssl (microagent ÷ it) | Node floor (microagent ÷ floor) | " +
        "microagent peak RSS | skopeo / baseline peak RSS | RSS ratio | target | met |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | :---: |"
    ]
    for (const row of this.rows) {
      const others = Object.keys(row.samples).slice(2).filter((name) => !Object.values<string>(COLUMNS).includes(name))
        .map((name) => `; ${name} ${formatSeconds(median(row.samples[name]!.map((sample) => sample.wall)))}`)
      const baseline = (row.baselineName === undefined || row.baselineName === "skopeo"
        ? formatSeconds(row.baseline)
        : `${formatSeconds(row.baseline)} (${row.baselineName})`) + others.join("")
      const against = (seconds: number | undefined) => (seconds === undefined ? "—" : `${formatSeconds(seconds)} (${(row.microagent / seconds).toFixed(2)})`)
      lines.push(`| \`${row.id}\` | ${row.label} | ${formatSeconds(row.microagent)} | ${baseline} | ${ratio(row.ratio)} | ${against(row.curl)} | ` +
        `${against(row.hashing)} | ${against(row.floor)} | ${formatRss(row.microagentRss)} | ${formatRss(row.baselineRss)} | ${ratio(row.rssRatio)} | ` +
        `${row.target} | ${row.met ? "yes" : "**no**"} |`)
    }
    lines.push("", "<details><summary>every timed run: wall s / CPU s (user + system) / peak RSS MiB / the registries' CPU s while it ran</summary>", "")
    for (const row of this.rows) {
      for (const [name, samples] of Object.entries(row.samples)) {
        const text = samples.map((sample) =>
          [
            sample.wall.toFixed(3),
            sample.cpu?.toFixed(2) ?? "—",
            sample.rss === undefined ? "—" : (sample.rss / MiB).toFixed(0),
            sample.registryCpu?.toFixed(2) ?? "—"
          ].join(" / "))
        lines.push(`- ${row.id} ${name}: ${text.join(", ")}`)
      }
    }
    lines.push("", "</details>", "")
    return lines
  }
}
