// The run cases of the benchmark (docs/performance.md): `microagent run <image> true` side by side
// with runc by hand, as root. A warm run (the root filesystem already in microagent's cache) against
// `runc run` of a bundle made once; a cold run of the pull cases' image, pulled from the benchmark's
// registry with nothing cached, against skopeo copy + umoci unpack + runc run. Run by bench/run.ts
// after the rootfs cases, or alone: npm run bench -- --only run.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import type { Bench } from "./context.js"
import { envWithHome, formatSize, fresh, freshHome, inSequence, log, measure, median, remove, sampleOf } from "./harness.js"
import { BUSYBOX, makeBusyboxImage } from "./images.js"
import { MEMORY_TARGET } from "./report.js"
import { push, skopeo, SRC_FLAGS } from "./registry-cases.js"

interface RuncContainer {
  readonly id: string
  readonly bundle: string
}

/** Containers runc knows of whose bundle is below `folder` (runc's default state, /run/runc, as microagent uses). */
const containersIn = (folder: string): Array<RuncContainer> => {
  const list = (JSON.parse(execFileSync("runc", ["list", "--format", "json"], { encoding: "utf8" }) || "null") ?? []) as Array<RuncContainer>
  return list.filter((container) => container.bundle === folder || container.bundle.startsWith(`${folder}/`))
}

/** Fails if runc still knows a container from `folder`, or microagent left a run folder in `home`. */
const checkNothingLeft = async (folder: string, home?: string) => {
  const left = containersIn(folder)
  if (left.length > 0) throw new Error(`runc list still has ${left.map((container) => `${container.id} (${container.bundle})`).join(", ")}`)
  if (home !== undefined) {
    const runs = await fsp.readdir(path.join(home, ".microagent", "run")).catch(() => [])
    if (runs.length > 0) throw new Error(`${home}/.microagent/run still holds ${runs.join(", ")}`)
  }
}

/** A bundle made by `umoci unpack` runs /bin/true, with no terminal (umoci's config.json has `sh` and a terminal). */
const runTrue = async (bundle: string) => {
  const file = path.join(bundle, "config.json")
  const config = JSON.parse(await fsp.readFile(file, "utf8")) as { process: { args: Array<string>; terminal: boolean } }
  config.process.args = ["/bin/true"]
  config.process.terminal = false
  await fsp.writeFile(file, JSON.stringify(config))
}

/** Runs the run cases of `bench.only`; run-cold with the pull cases' image in the benchmark's registry. */
export const runCases = async (bench: Bench): Promise<string | undefined> => {
  const { needs, table } = bench
  if (!needs("run-warm", "run-cold")) return undefined
  let serial = 0
  /** A container id of this benchmark's own, never used twice. */
  const containerId = () => `microagent-bench-${process.pid}-${++serial}`

  /** `microagent run <ref> <command>` with `home`; checks that it left no container and no run folder. */
  const microagentRun = async (home: string, ref: string, command: string) => {
    const measured = await measure([process.execPath, bench.bin, "run", ref, command], envWithHome(home))
    await checkNothingLeft(home, home)
    return measured
  }
  /** `runc run` of `bundle` under a new id; checks that runc let go of it. */
  const runcRun = async (bundle: string) => {
    const measured = await measure(["runc", "run", "--bundle", bundle, containerId()], process.env)
    await checkNothingLeft(bundle)
    return measured
  }
  const nodeNothing = () => measure([process.execPath, "-e", "0"], process.env).then(sampleOf)

  if (needs("run-warm")) {
    log("bench: run-warm")
    const image = await makeBusyboxImage(fresh("run-image-busybox"), "v1")
    const ref = `oci:${image.dir}:${image.tag}`
    // one HOME whose cache has the image (one untimed run first), and one bundle made by umoci, for every run
    const home = await freshHome()
    const bundle = fresh("run-bundle")
    try {
      await microagentRun(home, ref, "true")
      await measure(["umoci", "unpack", "--image", `${image.dir}:${image.tag}`, bundle], process.env)
      await runTrue(bundle)
      table.add("run-warm", "`run` of a busybox image, root filesystem cached: `true`", `≤ 1.5 × (runc run + \`node -e 0\`); ${MEMORY_TARGET}`,
        await bench.runCase("run-warm", {
          microagent: () => microagentRun(home, ref, "true").then(sampleOf),
          "runc run": () => runcRun(bundle).then(sampleOf),
          "node -e 0": nodeNothing
        }),
        (row) => row.microagent <= 1.5 * (row.baseline! + median(row.samples["node -e 0"]!.map((sample) => sample.wall))) && table.flatMemory(row))
    } finally {
      await remove(home)
      await remove(bundle)
      await remove(image.dir)
    }
  }

  const { host } = bench
  const multi = bench.images.multi
  if (needs("run-cold") && host !== undefined && multi !== undefined) {
    log("bench: run-cold")
    // the pull cases' image with busybox as a last layer (nothing in it runs otherwise), pushed to the same
    // repository as bench/multi:run, so only the new layer, config and manifest are uploaded
    const image = await makeBusyboxImage(fresh("run-image-cold"), "run", multi)
    await push(image, host, multi.repository)
    await remove(image.dir)
    const ref = `${host}/${multi.repository}@${image.manifest}`
    table.add("run-cold", `\`run\` of the ${formatSize(bench.size)} image + busybox from the registry, nothing pulled or cached: \`/bin/true\``,
      `≤ 0.7 × skopeo + umoci + runc; ${MEMORY_TARGET}`,
      await bench.runCase("run-cold", {
        microagent: async () => {
          const home = await freshHome()
          try {
            return sampleOf(await microagentRun(home, ref, "/bin/true"))
          } finally {
            await remove(home)
          }
        },
        // by hand: copy into a layout, unpack it into a bundle, (untimed: set its args), run it
        "skopeo + umoci + runc": async () => {
          const dir = fresh("run-diy")
          const layout = path.join(dir, "layout")
          const bundle = path.join(dir, "bundle")
          try {
            await fsp.mkdir(dir)
            const copied = await skopeo([...SRC_FLAGS, `docker://${ref}`, `oci:${layout}:run`])
            const unpacked = await measure(["umoci", "unpack", "--image", `${layout}:run`, bundle], process.env)
            await runTrue(bundle)
            return inSequence([copied, unpacked, await runcRun(bundle)])
          } finally {
            await remove(dir)
          }
        }
      }),
      (row) => row.ratio! <= 0.7 && table.flatMemory(row))
  }
  const runc = /version (\S+)/.exec(execFileSync("runc", ["--version"], { encoding: "utf8" }))?.[1] ?? "unknown"
  return `run: \`microagent run\` with runc ${runc} and tini-static; ` +
    `the warm case's image holds Debian's busybox-static (${BUSYBOX}, ${(fs.statSync(BUSYBOX).size / 2 ** 20).toFixed(1)} MiB) with its applet links, ` +
    `the cold case's the ${formatSize(bench.size)} image's ${bench.layers} layers and that one; runc runs of bundles made by umoci unpack`
}
