// Bundles the CLI: unbundled @effect barrels cost about a second per start.
import { build } from "esbuild"
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs"

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
// Another folder for the bundles (MICROAGENT_DIST), so two builds at once do not replace each other's.
const dist = process.env.MICROAGENT_DIST || "dist"

// Left from earlier layouts of dist/, and code caches of an older bundle.
rmSync(`${dist}/chunks`, { recursive: true, force: true })
rmSync(`${dist}/bin.mjs`, { force: true })
mkdirSync(dist, { recursive: true })
for (const file of readdirSync(dist, { withFileTypes: true }).filter((f) => f.name.endsWith(".cache"))) {
  rmSync(`${dist}/${file.name}`)
}

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning"
}

// The CLI as one CommonJS script: src/boot.ts compiles it with V8's code cache, which Node 20
// offers for scripts only, not for ES modules.
await build({
  ...common,
  entryPoints: ["src/bin.ts"],
  outfile: `${dist}/cli.cjs`,
  format: "cjs",
  define: { MICROAGENT_VERSION: JSON.stringify(version) }
})

await build({
  ...common,
  entryPoints: ["src/boot.ts"],
  outfile: `${dist}/bin.cjs`,
  format: "cjs"
})

// Runnable as ./dist/bin.cjs, not only through npm's bin link.
chmodSync(`${dist}/bin.cjs`, 0o755)
