// What bench/run.ts hands each group of cases: the options, the table, and what is made already.
import type { CaseId } from "./cases.js"
import type { Contenders, Samples } from "./harness.js"
import type { PushedImage } from "./images.js"
import type { Table } from "./report.js"

export interface Options {
  /** the cases to run, in the order of CASES */
  readonly only: ReadonlyArray<CaseId>
  /** the pull and push image, in `layers` layers (and in one for pull1) */
  readonly size: number
  readonly layers: number
  /** the one layer of the memory comparisons and of the copy case */
  readonly small: number
  readonly rounds: { readonly runs: number; readonly warmups: number }
  readonly startupRuns: number
  /** tiny sizes: a smoke test of the harness, whose figures mean nothing */
  readonly quick: boolean
  /** the CLI's launcher: MICROAGENT_DIST's bin.cjs, or dist/bin.cjs */
  readonly bin: string
}

export interface Bench extends Options {
  readonly table: Table
  readonly needs: (...ids: ReadonlyArray<CaseId>) => boolean
  /** harness.ts's runCase with the options' rounds (`runs` timed runs instead, if given) */
  readonly runCase: (id: CaseId, contenders: Contenders, runs?: number) => Promise<Samples>
  /** the benchmark's registry ("127.0.0.1:<port>"), when a case needs it */
  readonly host: string | undefined
  /** the images pushed to it: `multi` (size in layers), `single` (size in 1), `small` (small in 1), when a case needs them */
  readonly images: { readonly multi?: PushedImage; readonly single?: PushedImage; readonly small?: PushedImage }
}
