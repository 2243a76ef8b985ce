// The registry cases of the benchmark (docs/performance.md): pull, push and copy against skopeo,
// and the pulls against curl, curl + openssl and the Node floor (bench/floor.ts), on distribution
// registries started by test/support/registry.ts on loopback.
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { MEDIA_TYPES, skopeoPush } from "../test/support/images.js"
import { type RegistryHandle, startRegistry } from "../test/support/registry.js"
import type { Bench, Options } from "./context.js"
import {
  bundle, check, type Contenders, envWithHome, formatSize, fresh, layerWord, log, measure, type Measured, measureInFreshHome, onExit, remove, type Sample,
  timed, watchCpu
} from "./harness.js"
import { type BenchImage, makeImage, type PushedImage } from "./images.js"
import { MEMORY_TARGET } from "./report.js"

export const SKOPEO = ["skopeo", "--insecure-policy", "copy"]
export const SRC_FLAGS = ["--src-tls-verify=false", "--src-no-creds"]
// --preserve-digests: skopeo fails rather than change a layer or the manifest on the way, so both tools
// upload exactly the same bytes (checked after every push, as the digests are after every pull).
const DEST_FLAGS = ["--dest-tls-verify=false", "--dest-no-creds", "--preserve-digests"]

// ---------------------------------------------------------------------------------------------
// Registries and their images

const registries: Array<RegistryHandle> = []

/** The pid of the registry whose config is `dir`/config.yml (test/support/registry.ts writes it there), from /proc. */
const registryPid = (dir: string): number | undefined => {
  const config = path.join(dir, "config.yml")
  for (const entry of fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").includes(config)) return Number(entry)
    } catch {
      // gone meanwhile
    }
  }
  return undefined
}

/**
 * An anonymous registry on a free port of 127.0.0.1, whose CPU time every sample counts. On a
 * signal, test/support/registry.ts kills it on exit and its folder is removed here.
 */
export const startBenchRegistry = async (): Promise<RegistryHandle> => {
  const registry = await startRegistry({ mode: "none" })
  registries.push(registry)
  const dir = path.dirname(registry.dataDir)
  onExit(() => fs.rmSync(dir, { recursive: true, force: true }))
  const pid = registryPid(dir)
  if (pid !== undefined) watchCpu(pid)
  return registry
}

export const stopRegistries = async (): Promise<void> => {
  for (const registry of registries.splice(0)) await registry.stop()
}

/** Pushes a layout made here to <host>/<repository>:<tag>, untimed. */
export const push = (image: BenchImage, host: string, repository: string, tag = image.tag): Promise<void> =>
  skopeoPush(image, { registry: host, repository, destTag: tag })

/** The images the cases in `options.only` pull from `host`, made and pushed there. */
export const seedImages = async (options: Options, host: string | undefined): Promise<Bench["images"]> => {
  const needs = (...ids: ReadonlyArray<string>) => ids.some((id) => options.only.some((only) => only === id))
  const seed = async (name: string, total: number, layers: number): Promise<PushedImage | undefined> => {
    if (host === undefined) return undefined
    const started = Date.now()
    const image = await makeImage(fresh(`image-${name}`), "v1", total, layers)
    await push(image, host, `bench/${name}`)
    log(`bench: made and pushed bench/${name}:v1 (${formatSize(total)} in ${layerWord(layers)}) in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    return { ...image, repository: `bench/${name}` }
  }
  const multi = needs("pull4", "repull", "repush", "run-cold") ? await seed("multi", options.size, options.layers) : undefined
  const single = needs("pull1") ? await seed("single", options.size, 1) : undefined
  const small = needs("pull-small", "copy") ? await seed("small", options.small, 1) : undefined
  return { ...(multi && { multi }), ...(single && { single }), ...(small && { small }) }
}

// ---------------------------------------------------------------------------------------------
// Checks

/** Fails unless every blob of `image` is in the layout at `dir` with its size (a cheap check that a pull did its work). */
const checkLayout = async (image: BenchImage, file: (digest: string) => string): Promise<void> => {
  for (const blob of image.blobs) {
    const stat = await fsp.stat(file(blob.digest)).catch(() => undefined)
    if (stat?.size !== blob.size) throw new Error(`${file(blob.digest)}: expected ${blob.size} bytes, found ${stat?.size ?? "no file"}`)
  }
}
const layoutFile = (dir: string) => (digest: string) => path.join(dir, "blobs", ...digest.split(":"))
/** A blob's file in a flat folder of blobs, as curl and the floor write them. */
const flatFile = (dir: string) => (digest: string) => path.join(dir, digest.replace(":", "-"))

/** Fails unless the registry serves `repository:tag` as the manifest of `image` (a cheap check that a push did its work). */
const checkPushed = async (host: string, repository: string, tag: string, image: BenchImage): Promise<void> => {
  const response = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, { method: "HEAD", headers: { accept: MEDIA_TYPES.manifest } })
  const digest = response.headers.get("docker-content-digest")
  if (!response.ok || digest !== image.manifest) {
    throw new Error(`${repository}:${tag} in the registry is ${response.status} ${digest}, expected ${image.manifest}`)
  }
}

/**
 * Deletes a pushed repository and its blobs from a registry's storage, so fresh pushes do not pile
 * up on disk and every copy uploads every blob. Safe while the registry runs: it keeps no blob cache
 * unless configured to, and nothing else refers to these digests.
 */
const forget = async (registry: RegistryHandle, repository: string, image: BenchImage): Promise<void> => {
  const root = path.join(registry.dataDir, "docker", "registry", "v2")
  await remove(path.join(root, "repositories", repository))
  for (const digest of [image.manifest, ...image.blobs.map((blob) => blob.digest)]) {
    const hex = digest.split(":")[1]!
    await remove(path.join(root, "blobs", "sha256", hex.slice(0, 2), hex))
  }
}

// ---------------------------------------------------------------------------------------------
// Contenders: each run prepares (untimed), runs one timed command, checks the result and cleans up.

/** A timed skopeo copy with a fresh empty HOME: no containers auth or config from the machine's user. */
export const skopeo = async (args: ReadonlyArray<string>): Promise<Measured> => {
  const home = fresh("home")
  await fsp.mkdir(home)
  try {
    return await measure([...SKOPEO, ...args], envWithHome(home))
  } finally {
    await remove(home)
  }
}

const pullContenders = (bench: Bench, host: string, image: PushedImage, floor: string): Contenders => {
  const ref = `${host}/${image.repository}:${image.tag}`
  const microagent = (args: ReadonlyArray<string>) => measureInFreshHome([process.execPath, bench.bin, ...args])
  /**
   * Runs `run(out)` into a fresh folder, checks that every blob landed there (in an OCI layout, or
   * `flat` as `sha256-<hex>` files) and removes the folder.
   */
  const into = (run: (out: string) => Promise<Sample>, flat = false) => async () => {
    const out = fresh("pull")
    try {
      if (flat) await fsp.mkdir(out)
      const sample = await run(out)
      await checkLayout(image, flat ? flatFile(out) : layoutFile(out))
      return sample
    } finally {
      await remove(out)
    }
  }
  /** Every blob of the image fetched by `fetchOne(url, file, digest)`, at most 4 at once. */
  const blobsBy = (fetchOne: (url: string, file: string, digest: string) => Promise<unknown>) => into((out) => {
    const queue = [...image.blobs]
    return timed(() => Promise.all([1, 2, 3, 4].map(async () => {
      for (let blob; (blob = queue.shift()) !== undefined;) {
        await fetchOne(`http://${host}/v2/${image.repository}/blobs/${blob.digest}`, flatFile(out)(blob.digest), blob.digest)
      }
    })))
  }, true)
  return {
    microagent: into((out) => microagent(["pull", ref, "--output", out])),
    skopeo: into((out) => skopeo([...SRC_FLAGS, `docker://${ref}`, `oci:${out}:${image.tag}`])),
    // the blobs only, one curl per blob, at most 4 at once (microagent's default --jobs)
    curl: blobsBy((url, file) => check("curl", ["-sSf", "-o", file, url])),
    // the same, each blob also hashed on its way to disk by openssl, a process of its own (so on the other
    // core): what native tools need to download, hash and write, still without fsync
    "curl + openssl": blobsBy(async (url, file, digest) => {
      const { stdout } = await check("sh", ["-c", 'curl -sSf "$1" | tee "$2" | openssl dgst -sha256 -r', "sh", url, file])
      if (`sha256:${stdout.split(" ")[0]}` !== digest) throw new Error(`${url}: openssl computed ${stdout.trim()}`)
    }),
    // the same blobs through plain Node.js: GET, hash, write, fsync, rename (bench/floor.ts)
    "node floor": into((out) => measure([process.execPath, floor, host, image.repository, out, ...image.blobs.map((blob) => blob.digest)], process.env), true)
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

/** Runs the registry cases of `bench.only` against `bench.host`, with the images `bench.images` seeded there. */
export const registryCases = async (bench: Bench): Promise<void> => {
  const { host, images, table, needs } = bench
  if (host === undefined) return
  const { flatMemory } = table
  const microagent = (args: ReadonlyArray<string>) => measureInFreshHome([process.execPath, bench.bin, ...args])
  const floor = needs("pull4", "pull1", "pull-small") ? await bundle(fileURLToPath(new URL("./floor.ts", import.meta.url)), fresh("floor") + ".mjs") : ""
  const pullCase = async (id: "pull4" | "pull1" | "pull-small", image: PushedImage | undefined, label: string, target: string, verdict: Parameters<typeof table.add>[4]) => {
    if (!needs(id) || image === undefined) return
    log(`bench: ${id}`)
    table.add(id, label, target, await bench.runCase(id, pullContenders(bench, host, image, floor)), verdict)
  }

  await pullCase("pull4", images.multi, `pull ${formatSize(bench.size)}, ${layerWord(bench.layers)}, empty layout`,
    `≤ 0.5 × skopeo and ≤ 2 × curl; ${MEMORY_TARGET}`,
    (row) => row.ratio! <= 0.5 && row.microagent <= 2 * row.curl! && flatMemory(row))
  await pullCase("pull1", images.single, `pull ${formatSize(bench.size)}, 1 layer, empty layout`, `≤ 0.8 × skopeo; ${MEMORY_TARGET}`,
    (row) => row.ratio! <= 0.8 && flatMemory(row))
  await pullCase("pull-small", images.small, `pull ${formatSize(bench.small)}, 1 layer (memory comparison)`,
    `${MEMORY_TARGET}, as for the ${formatSize(bench.size)} layer`, table.flatAgainst("pull1"))

  if (needs("push4")) {
    log("bench: push4")
    // fresh random layers for every run of either tool, pushed to a repository of their own:
    // nothing to mount, nothing the registry has already seen
    const registry = registries[0]!
    const pushFresh = (tool: "microagent" | "skopeo") => async () => {
      const image = await makeImage(fresh("push-source"), "v1", bench.size, bench.layers)
      const repository = `bench/push-${tool}-${path.basename(image.dir)}`
      try {
        const sample = tool === "microagent"
          ? await microagent(["push", `oci:${image.dir}:v1`, `${host}/${repository}:v1`])
          : await skopeo([...DEST_FLAGS, `oci:${image.dir}:v1`, `docker://${host}/${repository}:v1`])
        await checkPushed(host, repository, "v1", image)
        await forget(registry, repository, image)
        return sample
      } finally {
        await remove(image.dir)
      }
    }
    table.add("push4", `push ${formatSize(bench.size)}, ${layerWord(bench.layers)}, fresh blobs`, `≤ 0.8 × skopeo; ${MEMORY_TARGET}`,
      await bench.runCase("push4", { microagent: pushFresh("microagent"), skopeo: pushFresh("skopeo") }),
      (row) => row.ratio! <= 0.8 && flatMemory(row))
  }

  const multi = images.multi
  if (needs("repull") && multi !== undefined) {
    log("bench: repull")
    // each tool pulls once into a layout of its own (untimed), then pulls again into it
    const ref = `${host}/${multi.repository}:v1`
    const layouts = { microagent: fresh("repull-microagent"), skopeo: fresh("repull-skopeo") }
    const pulls = {
      microagent: () => microagent(["pull", ref, "--output", layouts.microagent]),
      skopeo: () => skopeo([...SRC_FLAGS, `docker://${ref}`, `oci:${layouts.skopeo}:v1`])
    }
    await pulls.microagent()
    await pulls.skopeo()
    const again = (tool: keyof typeof pulls) => async () => {
      const sample = await pulls[tool]()
      await checkLayout(multi, layoutFile(layouts[tool]))
      return sample
    }
    table.add("repull", `re-pull of the ${formatSize(bench.size)} image, already present`, `≤ 0.3 s; ${MEMORY_TARGET}`,
      await bench.runCase("repull", { microagent: again("microagent"), skopeo: again("skopeo") }),
      (row) => row.microagent <= 0.3 && flatMemory(row))
  }

  if (needs("repush") && multi !== undefined) {
    log("bench: repush")
    const source = `oci:${multi.dir}:v1`
    const target = `${host}/${multi.repository}:v1`
    table.add("repush", `push of the ${formatSize(bench.size)} image, every blob already there`, `≤ 0.3 s; ${MEMORY_TARGET}`,
      await bench.runCase("repush", {
        microagent: () => microagent(["push", source, target]),
        skopeo: () => skopeo([...DEST_FLAGS, source, `docker://${target}`])
      }),
      (row) => row.microagent <= 0.3 && flatMemory(row))
  }

  const small = images.small
  if (needs("copy") && small !== undefined) {
    log("bench: copy")
    // into a second registry: within one, microagent mounts blobs instead of moving them ([P6]). A new
    // repository for every run of either tool, forgotten after it, so every blob is uploaded.
    const target = await startBenchRegistry()
    const source = `${host}/${small.repository}:${small.tag}`
    const copyTo = (tool: "microagent" | "skopeo") => async () => {
      const repository = `bench/copy-${tool}-${path.basename(fresh("copy"))}`
      const destination = `${target.host}/${repository}:v1`
      const measured = tool === "microagent"
        ? await microagent(["copy", source, destination])
        : await skopeo([...SRC_FLAGS, ...DEST_FLAGS, `docker://${source}`, `docker://${destination}`])
      if (tool === "microagent" && measured.stdout.trim() !== small.manifest) throw new Error(`microagent copy printed ${measured.stdout.trim()}, expected ${small.manifest}`)
      await checkPushed(target.host, repository, "v1", small)
      await forget(target, repository, small)
      return measured
    }
    table.add("copy", `copy of a ${formatSize(bench.small)} image, 1 layer, registry to registry`, `≤ 0.8 × skopeo; ${MEMORY_TARGET}`,
      await bench.runCase("copy", { microagent: copyTo("microagent"), skopeo: copyTo("skopeo") }),
      (row) => row.ratio! <= 0.8 && flatMemory(row))
  }
}
