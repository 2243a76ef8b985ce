import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

export default defineConfig({
  // Examples in docs/ import the package by name, as a user would; tests run them against src/.
  resolve: {
    alias: [
      { find: /^microagent\/node$/, replacement: fileURLToPath(new URL("./src/node/index.ts", import.meta.url)) },
      { find: /^microagent$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
