// The run cases of the benchmark (docs/performance.md): `microagent run <image> true` side by side
// with runc by hand, as root. A warm run (the root filesystem already in microagent's cache) against
// `runc run` of a bundle made once; a cold run of the pull cases' image, pulled from the benchmark's
// registry with nothing cached, against skopeo copy + umoci unpack + runc run. Run by bench/run.mjs
// after the rootfs cases, or alone: node bench/run.mjs --only run.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { BUSYBOX, makeBusyboxImage } from "./images.mjs"

export const RUN_CASES = ["run-warm", "run-cold"]
/** The run cases that need the benchmark's registry (and the pull cases' image in it). */
export const RUN_REGISTRY_CASES = ["run-cold"]
/** What the run cases need on PATH, besides the registry's tools. */
export const RUN_TOOLS = ["runc", "tini-static", "umoci"]
/** The Debian packages of RUN_TOOLS whose names differ (the image's busybox: busybox-static). */
export const RUN_PACKAGES = { "tini-static": "tini" }

/** Containers runc knows of whose bundle is below `folder` (runc's default state, /run/runc, as microagent uses). */
const containersIn = (folder) => {
  const list = JSON.parse(execFileSync("runc", ["list", "--format", "json"], { encoding: "utf8" }) || "null") ?? []
  return list.filter((container) => container.bundle === folder || container.bundle.startsWith(`${folder}/`))
}

/** Fails if runc still knows a container from `folder`, or microagent left a run folder in `home`. */
const checkNothingLeft = async (folder, home) => {
  const left = containersIn(folder)
  if (left.length > 0) throw new Error(`runc list still has ${left.map((container) => `${container.id} (${container.bundle})`).join(", ")}`)
  if (home !== undefined) {
    const runs = await fsp.readdir(path.join(home, ".microagent", "run")).catch(() => [])
    if (runs.length > 0) throw new Error(`${home}/.microagent/run still holds ${runs.join(", ")}`)
  }
}

/** A bundle made by `umoci unpack` runs /bin/true, with no terminal (umoci's config.json has `sh` and a terminal). */
const runTrue = async (bundle) => {
  const file = path.join(bundle, "config.json")
  const config = JSON.parse(await fsp.readFile(file, "utf8"))
  config.process.args = ["/bin/true"]
  config.process.terminal = false
  await fsp.writeFile(file, JSON.stringify(config))
}

/** Timed steps run one after the other, as one sample: wall and CPU time added up, the largest peak RSS. */
const inSequence = (samples) => ({
  wall: samples.reduce((sum, sample) => sum + sample.wall, 0),
  cpu: samples.reduce((sum, sample) => sum + sample.cpu, 0),
  rss: Math.max(...samples.map((sample) => sample.rss))
})

/**
 * Runs the run cases of `bench.only`. `bench` is bench/run.mjs's toolbox, as for bench/rootfs.mjs
 * (options, scratch folders, measure, runCase, the table's add, flatMemory, memoryTarget, median,
 * log, formatSize, `bin`, `images`), and for run-cold: `host` (the registry), `push(image, ref)`
 * (skopeo copy of a layout made here to <host>/<ref>) and `skopeo(args)` (a timed skopeo copy with
 * a fresh HOME) with `srcFlags`.
 */
export const runCases = async (bench) => {
  const needs = (...ids) => ids.some((id) => bench.only.includes(id))
  if (!needs(...RUN_CASES)) return undefined
  const { add, flatMemory, memoryTarget, formatSize, runs, median } = bench
  let serial = 0
  /** A container id of this benchmark's own, never used twice. */
  const containerId = () => `microagent-bench-${process.pid}-${++serial}`

  /** `microagent run <ref> <command>` with `home`; checks that it left no container and no run folder. */
  const microagentRun = async (home, ref, command) => {
    const { stdout, ...sample } = await bench.measure([process.execPath, bench.bin, "run", ref, command], bench.envWithHome(home))
    await checkNothingLeft(home, home)
    return sample
  }
  /** `runc run` of `bundle` under a new id; checks that runc let go of it. */
  const runcRun = async (bundle) => {
    const { stdout, ...sample } = await bench.measure(["runc", "run", "--bundle", bundle, containerId()], process.env)
    await checkNothingLeft(bundle)
    return sample
  }

  if (needs("run-warm")) {
    bench.log("bench: run-warm")
    const image = await makeBusyboxImage(bench.fresh("run-image-busybox"), "v1")
    const ref = `oci:${image.dir}:${image.tag}`
    // one HOME whose cache has the image (one untimed run first), and one bundle made by umoci, for every run
    const home = await bench.freshHome()
    const bundle = bench.fresh("run-bundle")
    try {
      await microagentRun(home, ref, "true")
      await bench.measure(["umoci", "unpack", "--image", `${image.dir}:${image.tag}`, bundle], process.env)
      await runTrue(bundle)
      add("run-warm", "`run` of a busybox image, root filesystem cached: `true`", "≤ 1.5 × (runc run + `node -e 0`); " + memoryTarget,
        await bench.runCase("run-warm", {
          microagent: () => microagentRun(home, ref, "true"),
          "runc run": () => runcRun(bundle),
          "node -e 0": () => bench.measure([process.execPath, "-e", "0"], process.env).then(({ stdout, ...sample }) => sample)
        }, runs),
        (row) => row.microagent <= 1.5 * (row.baseline + median(row.samples["node -e 0"].map((sample) => sample.wall))) && flatMemory(row))
    } finally {
      await bench.remove(home)
      await bench.remove(bundle)
      await bench.remove(image.dir)
    }
  }

  if (needs("run-cold")) {
    bench.log("bench: run-cold")
    // the pull cases' image with busybox as a 5th layer (nothing in it runs otherwise), pushed to the same
    // repository as bench/multi:run, so only the new layer, config and manifest are uploaded
    const multi = bench.images.multi
    const image = await makeBusyboxImage(bench.fresh("run-image-cold"), "run", multi)
    await bench.push(image, `${multi.repository}:run`)
    await bench.remove(image.dir)
    const ref = `${bench.host}/${multi.repository}@${image.manifest}`
    add("run-cold", `\`run\` of the ${formatSize(bench.size)} image + busybox from the registry, nothing pulled or cached: \`/bin/true\``,
      `≤ 0.7 × skopeo + umoci + runc; ${memoryTarget}`,
      await bench.runCase("run-cold", {
        microagent: async () => {
          const home = await bench.freshHome()
          try {
            return await microagentRun(home, ref, "/bin/true")
          } finally {
            await bench.remove(home)
          }
        },
        // by hand: copy into a layout, unpack it into a bundle, (untimed: set its args), run it
        "skopeo + umoci + runc": async () => {
          const dir = bench.fresh("run-diy")
          const layout = path.join(dir, "layout")
          const bundle = path.join(dir, "bundle")
          try {
            await fsp.mkdir(dir)
            const copied = await bench.skopeo([...bench.srcFlags, `docker://${ref}`, `oci:${layout}:run`])
            const { stdout, ...unpacked } = await bench.measure(["umoci", "unpack", "--image", `${layout}:run`, bundle], process.env)
            await runTrue(bundle)
            return inSequence([copied, unpacked, await runcRun(bundle)])
          } finally {
            await bench.remove(dir)
          }
        }
      }, runs),
      (row) => row.ratio <= 0.7 && flatMemory(row))
  }
  return `run: \`microagent run\` with runc ${firstWord(execFileSync("runc", ["--version"], { encoding: "utf8" }))} and tini-static; ` +
    `the warm case's image holds Debian's busybox-static (${BUSYBOX}, ${(fs.statSync(BUSYBOX).size / 2 ** 20).toFixed(1)} MiB) and a /bin/true symlink, ` +
    `the cold case's the ${formatSize(bench.size)} image's ${bench.layers} layers and that one; runc runs of bundles made by umoci unpack`
}

const firstWord = (text) => /version (\S+)/.exec(text)?.[1] ?? "unknown"
