// The start-up case of the benchmark (docs/performance.md): `microagent registry list` with an empty
// store against `node -e 0` and the start-up floor, bench/startup-floor.ts.
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Bench } from "./context.js"
import { bundle, fresh, log, measureInFreshHome } from "./harness.js"

export const startupCase = async (bench: Bench): Promise<void> => {
  if (!bench.needs("startup")) return
  log("bench: startup")
  const microagent = () => measureInFreshHome([process.execPath, bench.bin, "registry", "list"])
  // bench/startup-floor.ts, bundled like the CLI (scripts/build.mjs) and run by the CLI's own launcher
  // beside it (bin.cjs, with its code cache): the stack's own start-up
  const floorDir = fresh("startup-floor")
  await bundle(fileURLToPath(new URL("./startup-floor.ts", import.meta.url)), path.join(floorDir, "cli.cjs"))
  const floorBin = path.join(floorDir, "bin.cjs")
  await fsp.copyFile(bench.bin, floorBin)
  bench.table.add("startup", "`registry list` start-up, empty store", "≤ 2 × `node -e 0`",
    await bench.runCase("startup", {
      microagent,
      "node -e 0": () => measureInFreshHome([process.execPath, "-e", "0"]),
      "node floor": () => measureInFreshHome([process.execPath, floorBin, "registry", "list"])
    }, bench.startupRuns),
    (row) => row.ratio! <= 2)
}
