/**
 * Fenced code blocks of a Markdown page, and the comparison of an example's output with the
 * sample the page shows for it, for test/docs-examples.test.ts.
 *
 * The docs' convention (README.md, "Examples in this documentation"):
 * - ```sh          a shell example, run as is; it must exit 0
 * - ```sh exit=N   a shell example that is meant to fail with exit code N
 * - ```sh <tag>    a shell example the test treats specially (`quickstart`, `install`, `bench`)
 * - ```text, ```console, ```json   a sample; when it directly follows a run example (nothing but
 *                  blank lines between), it is that example's output and is compared with it
 * - ```ts ...      programs, not run as shell
 */

export interface Block {
  /** 1-based line of the opening fence */
  readonly line: number
  /** the whole info string, e.g. "sh exit=4" */
  readonly info: string
  /** the first word of the info string, e.g. "sh" ("" when there is none) */
  readonly language: string
  /** `exit=N`, or 0 */
  readonly exit: number
  /** the other words of the info string, e.g. ["quickstart"] */
  readonly tags: ReadonlyArray<string>
  /** the lines between the fences, each ending with "\n" */
  readonly body: string
  /** only blank lines separate this block from the one before it */
  readonly adjacent: boolean
}

const OPEN = /^ {0,3}(`{3,}|~{3,})\s*([^`]*)$/

/** Every fenced block of `markdown`, in order. An unclosed fence runs to the end of the page, as CommonMark has it. */
export const extractBlocks = (markdown: string): ReadonlyArray<Block> => {
  const lines = markdown.split("\n")
  const blocks: Array<Block> = []
  let previousEnd = -1
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN.exec(lines[i]!)
    if (open === null) continue
    const fence = open[1]!
    const info = open[2]!.trim()
    const close = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`)
    const body: Array<string> = []
    let j = i + 1
    for (; j < lines.length && !close.test(lines[j]!); j++) body.push(lines[j]! + "\n")
    const words = info.split(/\s+/).filter((w) => w !== "")
    const exitWord = words.find((w) => w.startsWith("exit="))
    blocks.push({
      line: i + 1,
      info,
      language: words[0] ?? "",
      exit: exitWord === undefined ? 0 : Number(exitWord.slice("exit=".length)),
      tags: words.slice(1).filter((w) => w !== exitWord),
      body: body.join(""),
      adjacent: previousEnd >= 0 && lines.slice(previousEnd + 1, i).every((l) => l.trim() === "")
    })
    previousEnd = j
    i = j
  }
  return blocks
}

/** A short name for a block in test output: its first command line. */
export const firstCommand = (block: Block): string => {
  const line = block.body.split("\n").find((l) => l.trim() !== "" && !l.trim().startsWith("#")) ?? ""
  return line.length > 70 ? `${line.slice(0, 67)}...` : line
}

/** Languages of output samples. */
export const SAMPLE_LANGUAGES: ReadonlySet<string> = new Set(["text", "console", "json"])

/** The output sample shown for `blocks[index]`: the next block, when it is a sample and only blank lines come between. */
export const sampleAfter = (blocks: ReadonlyArray<Block>, index: number): Block | undefined => {
  const next = blocks[index + 1]
  return next !== undefined && next.adjacent && SAMPLE_LANGUAGES.has(next.language) ? next : undefined
}

/** What differs between runs in the output of an example, mapped to the names the docs use. */
export interface RunNames {
  /** the registry's `host:port`, shown as `localhost:5000` */
  readonly registry: string
  /** the page's scratch HOME, shown as `/home/me` */
  readonly home: string
}

export const DOC_REGISTRY = "localhost:5000"
export const DOC_HOME = "/home/me"

/**
 * Both sides of a comparison: durations and timestamps become placeholders (a sample shows
 * realistic ones), column padding one gap of two spaces (the names substituted are not as long
 * as the real ones), and trailing spaces and blank lines go.
 */
const canonical = (text: string): string =>
  text
    .replace(/\bin \d+(?:\.\d+)?m?s\b/g, "in <duration>")
    .replace(/"durationMs":\s*\d+/g, '"durationMs":<duration>')
    .replace(/\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\b/g, "<timestamp>")
    .split("\n")
    .map((line) => line.replace(/(?<=\S) {2,}/g, "  ").trimEnd())
    .join("\n")
    .trimEnd()

/** The output of a run as the docs would show it. */
export const normaliseOutput = (output: string, names: RunNames): string =>
  canonical(output.split(names.home).join(DOC_HOME).split(names.registry).join(DOC_REGISTRY))

/** A sample, ready to compare with normaliseOutput's result. */
export const normaliseSample = (sample: string): string => canonical(sample)

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * Whether a normalised output is what a normalised sample shows. In a sample, `…` stands for any
 * text within its line, and a line that is only `…` for any number of lines (none included):
 * for what a run cannot repeat (a container's random hostname) or other pages add (the catalog of
 * a registry they share).
 */
export const matchesSample = (output: string, sample: string): boolean => {
  const pattern = sample
    .split("\n")
    .map((line) => line.trim() === "…" ? "(?:[^\n]*\n)*?" : `${line.split("…").map(escape).join("[^\n]*?")}\n`)
    .join("")
  return new RegExp(`^${pattern}$`).test(`${output}\n`)
}
