// The rootfs cases of the benchmark (docs/performance.md): `microagent rootfs build` of an OCI layout
// into a fresh runtime bundle, side by side with `umoci unpack`, as root. Run by bench/run.mjs after
// its other cases, or alone: node bench/run.mjs --only rootfs.
import { createCipheriv, createHash } from "node:crypto"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import { makeImage, makeLayout, MiB, tarEnd, tarHeader, tarPadding } from "./images.mjs"

export const ROOTFS_CASES = ["rootfs4", "rootfs-files", "rootfs-cached", "rootfs-small"]

/** The small-files image: 20 000 files of 0–4 KiB in 200 folders, in 2 layers (a tenth of that with --quick). */
const FILES = { count: 20_000, folders: 200, layers: 2, maxSize: 4096, seed: 5 }

/** A seeded PRNG (mulberry32): numbers in [0, 1), the same on every machine. */
const prng = (seed) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
}

/**
 * The small-files image's layers (iterables of tar chunks, in ~1 MiB pieces) and what its root
 * filesystem holds. Sizes, names and content follow from the seed alone (content: an AES-CTR keystream).
 */
const smallFiles = ({ count, folders, layers, maxSize, seed }) => {
  const random = prng(seed)
  const sizes = Array.from({ length: count }, () => Math.floor(random() * (maxSize + 1)))
  const stream = createCipheriv("aes-128-ctr", createHash("sha256").update(`bench-${seed}`).digest().subarray(0, 16), Buffer.alloc(16))
  const folder = (i) => `d${String(i).padStart(3, "0")}`
  function* layer(first, end) {
    let pending = []
    let pendingBytes = 0
    const add = (buffer) => {
      pending.push(buffer)
      pendingBytes += buffer.length
    }
    const flush = () => {
      const chunk = Buffer.concat(pending)
      pending = []
      pendingBytes = 0
      return chunk
    }
    for (let d = 0; d < folders; d++) add(tarHeader({ name: `${folder(d)}/`, type: "5" }))
    for (let i = first; i < end; i++) {
      add(tarHeader({ name: `${folder(i % folders)}/f${String(i).padStart(5, "0")}`, size: sizes[i] }))
      add(stream.update(Buffer.alloc(sizes[i])))
      add(tarPadding(sizes[i]))
      if (pendingBytes >= MiB) yield flush()
    }
    add(tarEnd())
    yield flush()
  }
  const per = Math.ceil(count / layers)
  return {
    // generators run in order, one after the other, so the keystream is consumed in file order
    layers: Array.from({ length: layers }, (_, l) => layer(l * per, Math.min(count, (l + 1) * per))),
    content: { files: count, bytes: sizes.reduce((sum, size) => sum + size, 0) }
  }
}

/** Regular files and their bytes below `root`, links not followed. */
const countTree = async (root) => {
  let files = 0
  let bytes = 0
  const walk = async (dir) => {
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
const checkBundle = async (bundle, content) => {
  if (!fs.existsSync(path.join(bundle, "config.json"))) throw new Error(`${bundle}: no config.json`)
  const found = await countTree(path.join(bundle, "rootfs"))
  if (found.files !== content.files || found.bytes !== content.bytes) {
    throw new Error(`${bundle}/rootfs: expected ${content.files} files of ${content.bytes} bytes, found ${found.files} of ${found.bytes}`)
  }
}

/**
 * Runs the rootfs cases of `bench.only`. `bench` is bench/run.mjs's toolbox: its options (size,
 * layers, small, runs, quick), its scratch folders (fresh, remove, freshHome, envWithHome), its
 * timing (measure, runCase), its table (add, flatMemory, flatAgainst, memoryTarget), log and
 * formatSize, `bin` (dist/bin.cjs) and `images`, layouts it has made already (multi, small).
 */
export const rootfsCases = async (bench) => {
  const needs = (...ids) => ids.some((id) => bench.only.includes(id))
  if (!needs(...ROOTFS_CASES)) return undefined
  const layout = async (name, make) => {
    const started = Date.now()
    const image = await make(bench.fresh(`rootfs-image-${name}`))
    bench.log(`bench: made the ${name} image in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    return image
  }
  const multi = !needs("rootfs4", "rootfs-cached") ? undefined
    : bench.images.multi ?? await layout("multi", (dir) => makeImage(dir, "v1", bench.size, bench.layers))
  const small = !needs("rootfs-small") ? undefined
    : bench.images.small ?? await layout("small", (dir) => makeImage(dir, "v1", bench.small, 1))
  const spec = bench.quick ? { ...FILES, count: FILES.count / 10, folders: FILES.folders / 10 } : FILES
  const files = !needs("rootfs-files") ? undefined : await layout("small-files", async (dir) => {
    const { layers, content } = smallFiles(spec)
    return { ...(await makeLayout(dir, "v1", layers)), content }
  })

  /** `rootfs build` of `image` into a new bundle with `home`; checks the bundle and `cached`, then removes the bundle. */
  const microagentBuild = async (image, home, cached) => {
    const out = bench.fresh("bundle")
    try {
      const { stdout, ...sample } = await bench.measure(
        [process.execPath, bench.bin, "rootfs", "build", `oci:${image.dir}:${image.tag}`, "--out", out, "--json"],
        bench.envWithHome(home))
      if (JSON.parse(stdout).cached !== cached) throw new Error(`rootfs build printed ${stdout.trim()}; expected "cached":${cached}`)
      await checkBundle(out, image.content)
      return sample
    } finally {
      await bench.remove(out)
    }
  }
  /** microagent with a fresh HOME (nothing cached) against `umoci unpack`, each into a new bundle. */
  const contenders = (image) => ({
    microagent: async () => {
      const home = await bench.freshHome()
      try {
        return await microagentBuild(image, home, false)
      } finally {
        await bench.remove(home)
      }
    },
    umoci: async () => {
      const out = bench.fresh("bundle")
      try {
        const { stdout, ...sample } = await bench.measure(["umoci", "unpack", "--image", `${image.dir}:${image.tag}`, out], process.env)
        await checkBundle(out, image.content)
        return sample
      } finally {
        await bench.remove(out)
      }
    }
  })
  const { add, flatMemory, memoryTarget, formatSize, runs } = bench

  if (needs("rootfs4")) {
    bench.log("bench: rootfs4")
    add("rootfs4", `rootfs build of the ${formatSize(bench.size)} image, ${bench.layers} layers, nothing cached`, memoryTarget,
      await bench.runCase("rootfs4", contenders(multi), runs), flatMemory)
  }
  if (needs("rootfs-files")) {
    bench.log("bench: rootfs-files")
    add("rootfs-files", `rootfs build of ${spec.count} small files (0–4 KiB, ${spec.folders} folders, ${spec.layers} layers), nothing cached`, memoryTarget,
      await bench.runCase("rootfs-files", contenders(files), runs), flatMemory)
  }
  if (needs("rootfs-cached")) {
    bench.log("bench: rootfs-cached")
    // one HOME whose cache has the image (built once, untimed); every run builds from it into a new bundle
    const home = await bench.freshHome()
    try {
      await microagentBuild(multi, home, false)
      add("rootfs-cached", `rootfs build of the ${formatSize(bench.size)} image again, from the cache`, `≤ 0.3 s; ${memoryTarget}`,
        await bench.runCase("rootfs-cached", { microagent: () => microagentBuild(multi, home, true) }, runs),
        (row) => row.microagent <= 0.3 && flatMemory(row))
    } finally {
      await bench.remove(home)
    }
  }
  if (needs("rootfs-small")) {
    bench.log("bench: rootfs-small")
    add("rootfs-small", `rootfs build of a ${formatSize(bench.small)} image, 1 layer (memory comparison)`,
      `${memoryTarget}, as for the ${formatSize(bench.size)} image`,
      await bench.runCase("rootfs-small", contenders(small), runs), bench.flatAgainst("rootfs4"))
  }
  return `rootfs: OCI layouts on disk, built into a new bundle each run; the ${formatSize(bench.size)} image's layers each hold one file, ` +
    `the small-files image ${spec.count} seeded files of 0–${FILES.maxSize / 1024} KiB in ${spec.folders} folders (${spec.layers} gzip level 0 layers)`
}
