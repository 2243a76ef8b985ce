// The rootfs cases of the benchmark (docs/performance.md): `microagent rootfs build` of an OCI layout
// into a fresh runtime bundle, side by side with `umoci unpack`, as root. Run by bench/run.ts after
// the registry cases, or alone: npm run bench -- --only rootfs.
import { createCipheriv, createHash } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import type { TarEntry } from "../test/support/tar.js"
import type { Bench } from "./context.js"
import { envWithHome, formatSize, fresh, freshHome, log, measure, remove, sampleOf } from "./harness.js"
import { type BenchImage, type LayerSpec, makeImage, makeLayout } from "./images.js"
import { MEMORY_TARGET } from "./report.js"

/** The small-files image: 20 000 files of 0–4 KiB in 200 folders, in 2 layers (a hundredth of that with --quick). */
const FILES = { count: 20_000, folders: 200, layers: 2, maxSize: 4096, seed: 5 }

/** A seeded PRNG (mulberry32): numbers in [0, 1), the same on every machine. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
}

/**
 * The small-files image's layers. Sizes, names and content follow from the seed alone (content: an
 * AES-CTR keystream), so every machine builds the same bytes (the same digests).
 */
const smallFiles = ({ count, folders, layers, maxSize, seed }: typeof FILES): ReadonlyArray<LayerSpec> => {
  const random = prng(seed)
  const sizes = Array.from({ length: count }, () => Math.floor(random() * (maxSize + 1)))
  const stream = createCipheriv("aes-128-ctr", createHash("sha256").update(`bench-${seed}`).digest().subarray(0, 16), Buffer.alloc(16))
  const folder = (i: number) => `d${String(i).padStart(3, "0")}`
  // entries are made as the layers are written, one layer after the other, so the keystream is used in file order
  function* entries(first: number, end: number): Generator<TarEntry> {
    for (let d = 0; d < folders; d++) yield { name: `${folder(d)}/`, type: "dir" }
    for (let i = first; i < end; i++) {
      yield { name: `${folder(i % folders)}/f${String(i).padStart(5, "0")}`, content: stream.update(Buffer.alloc(sizes[i]!)) }
    }
  }
  const per = Math.ceil(count / layers)
  return Array.from({ length: layers }, (_, l) => {
    const [first, end] = [l * per, Math.min(count, (l + 1) * per)]
    return { entries: entries(first, end), content: { files: end - first, bytes: sizes.slice(first, end).reduce((sum, size) => sum + size, 0) } }
  })
}

/** Regular files and their bytes below `root`, links not followed. */
const countTree = async (root: string) => {
  let files = 0
  let bytes = 0
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name)
      if (entry.isDirectory()) await walk(file)
      else if (entry.isFile()) {
        files++
        bytes += (await fsp.lstat(file)).size
      }
    }
  }
  await walk(root)
  return { files, bytes }
}

/** Fails unless `bundle` holds config.json and a rootfs with the image's files and bytes. */
const checkBundle = async (bundle: string, content: BenchImage["content"]) => {
  if (!fs.existsSync(path.join(bundle, "config.json"))) throw new Error(`${bundle}: no config.json`)
  const found = await countTree(path.join(bundle, "rootfs"))
  if (found.files !== content.files || found.bytes !== content.bytes) {
    throw new Error(`${bundle}/rootfs: expected ${content.files} files of ${content.bytes} bytes, found ${found.files} of ${found.bytes}`)
  }
}

/** Runs the rootfs cases of `bench.only`, reusing the registry cases' layouts where they were made. */
export const rootfsCases = async (bench: Bench): Promise<string | undefined> => {
  const { needs, table } = bench
  if (!needs("rootfs4", "rootfs-files", "rootfs-cached", "rootfs-small")) return undefined
  const layout = async (name: string, make: (dir: string) => Promise<BenchImage>) => {
    const started = Date.now()
    const image = await make(fresh(`rootfs-image-${name}`))
    log(`bench: made the ${name} image in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    return image
  }
  const multi = needs("rootfs4", "rootfs-cached")
    ? bench.images.multi ?? await layout("multi", (dir) => makeImage(dir, "v1", bench.size, bench.layers))
    : undefined
  const small = needs("rootfs-small") ? bench.images.small ?? await layout("small", (dir) => makeImage(dir, "v1", bench.small, 1)) : undefined
  const spec = bench.quick ? { ...FILES, count: FILES.count / 100, folders: FILES.folders / 100 } : FILES
  const files = needs("rootfs-files") ? await layout("small-files", (dir) => makeLayout(dir, "v1", smallFiles(spec))) : undefined

  /** `rootfs build` of `image` into a new bundle with `home`; checks the bundle and `cached`, then removes the bundle. */
  const microagentBuild = async (image: BenchImage, home: string, cached: boolean) => {
    const out = fresh("bundle")
    try {
      const measured = await measure(
        [process.execPath, bench.bin, "rootfs", "build", `oci:${image.dir}:${image.tag}`, "--out", out, "--json"],
        envWithHome(home))
      if (JSON.parse(measured.stdout).cached !== cached) throw new Error(`rootfs build printed ${measured.stdout.trim()}; expected "cached":${cached}`)
      await checkBundle(out, image.content)
      return sampleOf(measured)
    } finally {
      await remove(out)
    }
  }
  /** microagent with a fresh HOME (nothing cached) against `umoci unpack`, each into a new bundle. */
  const contenders = (image: BenchImage) => ({
    microagent: async () => {
      const home = await freshHome()
      try {
        return await microagentBuild(image, home, false)
      } finally {
        await remove(home)
      }
    },
    umoci: async () => {
      const out = fresh("bundle")
      try {
        const measured = await measure(["umoci", "unpack", "--image", `${image.dir}:${image.tag}`, out], process.env)
        await checkBundle(out, image.content)
        return sampleOf(measured)
      } finally {
        await remove(out)
      }
    }
  })

  if (multi !== undefined && needs("rootfs4")) {
    log("bench: rootfs4")
    table.add("rootfs4", `rootfs build of the ${formatSize(bench.size)} image, ${bench.layers} layers, nothing cached`, MEMORY_TARGET,
      await bench.runCase("rootfs4", contenders(multi)), table.flatMemory)
  }
  if (files !== undefined) {
    log("bench: rootfs-files")
    table.add("rootfs-files", `rootfs build of ${spec.count} small files (0–4 KiB, ${spec.folders} folders, ${spec.layers} layers), nothing cached`,
      MEMORY_TARGET, await bench.runCase("rootfs-files", contenders(files)), table.flatMemory)
  }
  if (multi !== undefined && needs("rootfs-cached")) {
    log("bench: rootfs-cached")
    // one HOME whose cache has the image (built once, untimed); every run builds from it into a new
    // bundle. `node -e 0` is the baseline: a cache hit costs start-up and little more.
    const home = await freshHome()
    try {
      await microagentBuild(multi, home, false)
      table.add("rootfs-cached", `rootfs build of the ${formatSize(bench.size)} image again, from the cache`, `≤ 0.3 s; ${MEMORY_TARGET}`,
        await bench.runCase("rootfs-cached", {
          microagent: () => microagentBuild(multi, home, true),
          "node -e 0": () => measure([process.execPath, "-e", "0"], process.env).then(sampleOf)
        }),
        (row) => row.microagent <= 0.3 && table.flatMemory(row))
    } finally {
      await remove(home)
    }
  }
  if (small !== undefined) {
    log("bench: rootfs-small")
    table.add("rootfs-small", `rootfs build of a ${formatSize(bench.small)} image, 1 layer (memory comparison)`,
      `${MEMORY_TARGET}, as for the ${formatSize(bench.size)} image`,
      await bench.runCase("rootfs-small", contenders(small)), table.flatAgainst("rootfs4"))
  }
  return `rootfs: OCI layouts on disk, built into a new bundle each run; the ${formatSize(bench.size)} image's layers each hold one file, ` +
    `the small-files image ${spec.count} seeded files of 0–${FILES.maxSize / 1024} KiB in ${spec.folders} folders (${spec.layers} gzip level 0 layers)`
}
