#!/usr/bin/env node
/**
 * The launcher (dist/bin.mjs): runs the bundled CLI (dist/cli.cjs, from bin.ts) through V8's code
 * cache. Node 20 compiles the ~500 KB bundle afresh on every start and has no compile cache for
 * modules (that came in Node 22); with the cache a start takes ~60 ms less (docs/performance.md).
 *
 * The cache lives beside the bundle when that folder is writable, else in the user's cache
 * folder, named after the bundle's content and the V8 that made it. A cache V8 rejects (another
 * Node, a changed bundle) only costs the compile it would have saved, and is written afresh.
 */
import { createHash } from "node:crypto"
import { subscribe, unsubscribe } from "node:diagnostics_channel"
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { homedir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { setFlagsFromString } from "node:v8"
import { Script } from "node:vm"

/**
 * V8 sizes its next full collection from the live heap (~10 MB here) and counts the network
 * buffers allocated since the last one against it, so a 1 GiB pull ran ~50 full collections
 * that freed almost nothing. Letting the heap grow 7-fold first leaves room for the buffers: a
 * 4-layer pull went from ~3.2 s to ~1.6 s of CPU, with no more peak memory (docs/performance.md).
 * V8 reads the flag whenever it recomputes that limit, so it can be set late: on the first HTTP
 * request, because Node's own modules loaded after a flag change lose their code cache (a
 * `registry list` took ~20 ms longer with it set from the start).
 */
const heapGrowth = "--heap-growing-percent"
const tuneHeap = () => {
  unsubscribe("http.client.request.start", tuneHeap)
  setFlagsFromString(`${heapGrowth}=600`)
}
subscribe("http.client.request.start", tuneHeap)

const here = dirname(fileURLToPath(import.meta.url))
const bundle = join(here, "cli.cjs")
const source = readFileSync(bundle, "utf8").replace(/^#!.*/, "")
// V8 rejects a cache made under other flags: runs with other flags keep their own.
const flags = createHash("sha256").update(`${process.execArgv.join(" ")}\n${process.env["NODE_OPTIONS"] ?? ""}`).digest("hex").slice(0, 8)
const runtime = `${process.versions.v8}-${process.arch}-${flags}`
const content = createHash("sha256").update(source).digest("hex").slice(0, 16)
/** The user's cache folder; none where there is no home (a container's nameless user). */
const userCache = (() => {
  try {
    return join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "microagent")
  } catch {
    return undefined
  }
})()
const places = [
  join(here, `cli-${runtime}.cache`),
  ...(userCache === undefined ? [] : [join(userCache, `cli-${content}-${runtime}.cache`)])
]

const read = (file: string) => {
  try {
    return readFileSync(file)
  } catch {
    return undefined
  }
}
let found: Buffer | undefined
for (const file of places) if ((found = read(file)) !== undefined) break

const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  ...(found === undefined ? {} : { cachedData: found })
})

if (found === undefined || script.cachedDataRejected === true) {
  // After the run, so the cache also holds the functions this command compiled on the way.
  process.once("exit", () => {
    // Back to the flags the next start compiles under: V8 checks them against the cache.
    setFlagsFromString(`${heapGrowth}=0`)
    const data = script.createCachedData()
    for (const file of places) {
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
script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, here)
