// The benchmark's cases and what each needs, in the order they run. Kept apart from bench/run.ts,
// which runs on import, so test/bench.test.ts can name every case the table must have.

export interface CaseNeeds {
  /** Commands on PATH (Debian package names differ only where PACKAGES says). */
  readonly tools: ReadonlyArray<string>
  /** Runs as root only (umoci unpack without --rootless, microagent applying owners, runc). */
  readonly root: boolean
  /** Uses the benchmark's registry. */
  readonly registry: boolean
}

const pull: CaseNeeds = { tools: ["docker-registry", "skopeo", "curl", "openssl"], root: false, registry: true }
const transfer: CaseNeeds = { tools: ["docker-registry", "skopeo"], root: false, registry: true }
const rootfs: CaseNeeds = { tools: ["umoci"], root: true, registry: false }
const run = ["runc", "tini-static", "umoci"]

export const CASES = {
  pull4: pull,
  pull1: pull,
  "pull-small": pull,
  push4: transfer,
  repull: transfer,
  repush: transfer,
  copy: transfer,
  startup: { tools: [], root: false, registry: false },
  rootfs4: rootfs,
  "rootfs-files": rootfs,
  "rootfs-cached": rootfs,
  "rootfs-small": rootfs,
  "run-warm": { tools: run, root: true, registry: false },
  "run-cold": { tools: [...run, "docker-registry", "skopeo"], root: true, registry: true }
} as const satisfies Record<string, CaseNeeds>

export type CaseId = keyof typeof CASES
export const CASE_IDS = Object.keys(CASES) as ReadonlyArray<CaseId>

export const ROOTFS_CASES: ReadonlyArray<CaseId> = ["rootfs4", "rootfs-files", "rootfs-cached", "rootfs-small"]
export const RUN_CASES: ReadonlyArray<CaseId> = ["run-warm", "run-cold"]
/** Names for groups of cases in --only. */
export const GROUPS: Readonly<Record<string, ReadonlyArray<CaseId>>> = { rootfs: ROOTFS_CASES, run: RUN_CASES }

/** The Debian packages of tools whose names differ. */
export const PACKAGES: Readonly<Record<string, string>> = { "tini-static": "tini" }

/** The cases a run without --only does: every one, less those needing root when not root. */
export const defaultCases = (asRoot: boolean): ReadonlyArray<CaseId> => CASE_IDS.filter((id) => asRoot || !CASES[id].root)

export const isCaseId = (id: string): id is CaseId => Object.hasOwn(CASES, id)
