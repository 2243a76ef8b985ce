import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const lib = fileURLToPath(new URL("../dist/lib/", import.meta.url))

/**
 * Every module a built entry imports statically (the modules it evaluates on import), and the
 * Node built-ins among them. Dynamic `import()`s load on first use and are not followed.
 */
const staticGraph = (entry: string) => {
  const seen = new Set<string>()
  const builtins = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    const text = readFileSync(file, "utf8")
    for (const match of text.matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)"|^import\s+"([^"]+)"/gm)) {
      const spec = match[1] ?? match[2]!
      if (spec.startsWith("node:")) builtins.add(spec)
      else if (spec.startsWith(".")) visit(path.resolve(path.dirname(file), spec))
    }
  }
  visit(path.join(lib, entry))
  return { modules: seen, builtins }
}

describe("the published package", () => {
  it("[library] its main export offers the services, their layers and the typed errors", async () => {
    // The built entry, as `import "microagent"` resolves it for a user (npm test builds first).
    const main = await import(new URL("../dist/lib/index.js", import.meta.url).href)
    for (const service of ["AuthStore", "CredentialResolver", "RegistryClient", "Images", "Copy", "ImageStore", "BlobFiles"]) {
      assert.isDefined(main[service][service], `${service} tag`)
      assert.isDefined(main[service].layer, `${service} layer`)
    }
    for (const error of ["AuthFileError", "MissingCredentials", "RegistryDenied", "RegistryUnavailable", "UsageError"]) {
      assert.isFunction(main[error], error)
    }
  })

  it("[library] `microagent/node` offers Node's HttpClient, blob file I/O and platform layer", async () => {
    const node = await import(new URL("../dist/lib/node/index.js", import.meta.url).href)
    assert.isDefined(node.NodeHttp.layer, "NodeHttp layer, the CLI's HttpClient")
    assert.isDefined(node.NodeBlobFiles.layer, "NodeBlobFiles layer")
    assert.isDefined(node.layer, "Node's platform layer")
  })

  it("[library] importing the main export loads none of Node's http, fs, stream, net or child_process", () => {
    const { builtins, modules } = staticGraph("index.js")
    assert.isAbove(modules.size, 20, "the import graph was not followed")
    const platform = [...builtins].filter((b) => /^node:(https?|fs|fs\/promises|stream|net|tls|child_process)$/.test(b))
    assert.deepStrictEqual(platform, [], `reached from index.js: ${[...builtins].join(", ")}`)
    // The check itself sees Node's modules where they are imported.
    assert.include([...staticGraph("node/index.js").builtins], "node:fs")
  })
})
