// Bundles the CLI: unbundled @effect barrels cost about a second per start.
import { build } from "esbuild"
import { chmodSync, readFileSync, rmSync } from "node:fs"

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))

// Chunk names carry content hashes: old ones would pile up.
rmSync("dist/chunks", { recursive: true, force: true })

await build({
  entryPoints: { bin: "src/bin.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  // Code only some commands need (the HTTP client) goes in chunks loaded on first use.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  define: { MICROAGENT_VERSION: JSON.stringify(version) },
  // Some bundled CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" }
})

// Runnable as ./dist/bin.mjs, not only through npm's bin link.
chmodSync("dist/bin.mjs", 0o755)
