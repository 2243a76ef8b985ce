import { build } from "esbuild"
await build({ bundle: true, platform: "node", target: "node20", minify: true, logLevel: "warning",
  entryPoints: [process.argv[2]], outfile: process.argv[3], format: "cjs", define: { MICROAGENT_VERSION: '"0"' } })
