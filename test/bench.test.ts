/**
 * The benchmark harness (bench/run.ts) stays runnable: its --quick mode, every case at tiny sizes
 * with one run each, end to end against real registries, skopeo, umoci and runc. Its figures are
 * not checked (timed assertions stay out of the suite); its table is: a row for every case, each
 * with a time and a peak RSS ratio against its baseline.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "vitest"
import { defaultCases } from "../bench/cases.js"
import { useScratch } from "./support/scratch.js"

const { scratchDir } = useScratch("microagent-bench-test-")
const root = fileURLToPath(new URL("..", import.meta.url))

/** Runs the benchmark through tsx, as `npm run bench` does; resolves with its exit code and stderr. */
const bench = (args: ReadonlyArray<string>, home: string) =>
  new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], {
      cwd: root,
      env: { ...process.env, HOME: home },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stderr }))
  })

/** The cells of the table row whose first cell is `first`, or undefined. */
const row = (report: string, first: string): Array<string> | undefined =>
  report.split("\n").find((line) => line.startsWith(`| ${first} |`))?.split(" | ").map((cell) => cell.trim())

it("--quick runs every case and reports a time and a peak RSS ratio for each", async () => {
  const dir = await scratchDir()
  const out = path.join(dir, "report.md")
  const { code, stderr } = await bench(["--quick", "--out", out], dir)
  expect(code, stderr).toBe(0)
  const report = await fs.readFile(out, "utf8")
  const header = row(report, "id") ?? []
  const [ratio, rssRatio] = [header.indexOf("ratio"), header.indexOf("RSS ratio")]
  for (const id of defaultCases(process.getuid?.() === 0)) {
    const cells = row(report, `\`${id}\``)
    expect(cells, `no row for ${id} in\n${report}`).toBeDefined()
    expect(cells![ratio], `${id}: time ratio`).toMatch(/^\d+\.\d\d$/)
    expect(cells![rssRatio], `${id}: peak RSS ratio`).toMatch(/^\d+\.\d\d$/)
  }
}, 60_000)
