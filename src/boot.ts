#!/usr/bin/env node
/**
 * The launcher (dist/bin.cjs): runs the bundled CLI (dist/cli.cjs, from bin.ts) through V8's code
 * cache. Node 20 compiles the ~500 KB bundle afresh on every start and has no compile cache for
 * modules (that came in Node 22); with the cache a start takes ~60 ms less (docs/performance.md).
 *
 * The cache lives beside the bundle when that folder is writable, else in the user's cache
 * folder, named after the bundle's content and the V8 that made it. A cache V8 rejects (another
 * Node, a changed bundle) only costs the compile it would have saved, and is written afresh.
 *
 * Every module this file loads is paid for by every start, `registry list` included: it is
 * CommonJS (Node's ES module loader costs ~5 ms more) and loads `crypto`, `os` and `v8` only when
 * it needs them.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel"
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Script } from "node:vm"

const setV8Flag = (flag: string) => (require("node:v8") as typeof import("node:v8")).setFlagsFromString(flag)

/**
 * V8 sizes its next full collection from the live heap (~10 MB here) and counts the network
 * buffers allocated since the last one against it, so a 1 GiB pull ran ~50 full collections
 * that freed almost nothing. Letting the heap grow 7-fold first leaves room for the buffers: a
 * 4-layer pull went from ~3.2 s to ~1.6 s of CPU, with no more peak memory (docs/performance.md).
 * V8 reads the flag whenever it recomputes that limit, so it can be set late: on the first HTTP
 * request, because Node's own modules loaded after a flag change lose their code cache (a
 * `registry list` took ~20 ms longer with it set from the start).
 *
 * Set here rather than on Node's command line, where every replacement measured worse: any V8
 * flag given at launch makes Node compile its own modules without their built-in code cache
 * (`--expose-gc` +7 ms on `registry list`, this flag +90 ms); `--max-semi-space-size` slows a
 * 4-layer pull by ~0.7 s; forced scavenges (`--expose-gc`) save ~10 MiB but cost start-up and
 * ~0.1 s of pull; without any, a 4-layer pull takes ~0.6 s longer (docs/performance.md).
 */
const heapGrowth = "--heap-growing-percent"
/**
 * Where bulk work starts: Node's first HTTP request, and the first layer a root filesystem build
 * applies from a layout on disk (rootfs/LayerStream.ts), whose file buffers weigh the same: a
 * 4-layer 1 GiB build ran ~43 full collections, ~0.6 s longer than with the flag.
 */
const bulkWork = ["http.client.request.start", "microagent.rootfs.layer"]
const tuneHeap = () => {
  for (const name of bulkWork) unsubscribe(name, tuneHeap)
  setV8Flag(`${heapGrowth}=600`)
}
for (const name of bulkWork) subscribe(name, tuneHeap)

/** FNV-1a: names a set of Node flags in a file name, without loading `crypto` for it. */
const fnv = (text: string) => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return (hash >>> 0).toString(16).padStart(8, "0")
}

const here = __dirname
const bundle = join(here, "cli.cjs")
const source = readFileSync(bundle, "utf8").replace(/^#!.*/, "")
// V8 rejects a cache made under other flags: runs with other flags keep their own.
const runtime = `${process.versions.v8}-${process.arch}-${fnv(`${process.execArgv.join(" ")}\n${process.env["NODE_OPTIONS"] ?? ""}`)}`

/** `compute` run at most once, when first asked for. */
const once = <A>(compute: () => A): (() => A) => {
  let done: { readonly value: A } | undefined
  return () => (done ??= { value: compute() }).value
}

/**
 * Where a cache may be, best first: beside the bundle (a build clears it there), else in the
 * user's cache folder, where the bundle's content names it; none there without a home (a
 * container's nameless user). Functions, so the content is hashed only when it is needed.
 */
const places: ReadonlyArray<() => string | undefined> = [
  () => join(here, `cli-${runtime}.cache`),
  once(() => {
    try {
      const folder = process.env["XDG_CACHE_HOME"] || join((require("node:os") as typeof import("node:os")).homedir(), ".cache")
      const crypto = require("node:crypto") as typeof import("node:crypto")
      const content = crypto.createHash("sha256").update(source).digest("hex").slice(0, 16)
      return join(folder, "microagent", `cli-${content}-${runtime}.cache`)
    } catch {
      return undefined
    }
  })
]

const read = (file: string | undefined) => {
  try {
    return file === undefined ? undefined : readFileSync(file)
  } catch {
    return undefined
  }
}
let found: Buffer | undefined
for (const place of places) if ((found = read(place())) !== undefined) break

const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  ...(found === undefined ? {} : { cachedData: found })
})

if (found === undefined || script.cachedDataRejected === true) {
  // After the run, so the cache also holds the functions this command compiled on the way.
  process.once("exit", () => {
    // Back to the flags the next start compiles under: V8 checks them against the cache.
    setV8Flag(`${heapGrowth}=0`)
    const data = script.createCachedData()
    for (const place of places) {
      const file = place()
      if (file === undefined) continue
      const temp = `${file}.${process.pid}.tmp`
      try {
        mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
        writeFileSync(temp, data)
        renameSync(temp, file)
        return
      } catch {
        rmSync(temp, { force: true })
      }
    }
  })
}

const module = { exports: {} }
script.runInThisContext()(module.exports, require, module, bundle, here)
