/**
 * Fenced code blocks of a Markdown page, for test/docs-examples.test.ts.
 *
 * The docs' convention (README.md, "Examples in this documentation"):
 * - ```sh          a shell example, run as is; it must exit 0
 * - ```sh exit=N   a shell example that is meant to fail with exit code N
 * - ```sh <tag>    a shell example the test treats specially (`quickstart`, `install`, `bench`)
 * - ```text, ```console, ```json, ```ts ...   samples and programs, not run as shell
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
}

const OPEN = /^ {0,3}(`{3,}|~{3,})\s*([^`]*)$/

/** Every fenced block of `markdown`, in order. An unclosed fence runs to the end of the page, as CommonMark has it. */
export const extractBlocks = (markdown: string): ReadonlyArray<Block> => {
  const lines = markdown.split("\n")
  const blocks: Array<Block> = []
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
      body: body.join("")
    })
    i = j
  }
  return blocks
}

/** A short name for a block in test output: its first command line. */
export const firstCommand = (block: Block): string => {
  const line = block.body.split("\n").find((l) => l.trim() !== "" && !l.trim().startsWith("#")) ?? ""
  return line.length > 70 ? `${line.slice(0, 67)}...` : line
}
