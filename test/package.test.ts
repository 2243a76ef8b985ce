import { assert, describe, it } from "@effect/vitest"

describe("the published package", () => {
  it("[library] its main export offers the services, their layers and the typed errors", async () => {
    // The built entry, as `import "microagent"` resolves it for a user (npm test builds first).
    const lib = await import(new URL("../dist/lib/index.js", import.meta.url).href)
    for (const service of ["AuthStore", "CredentialResolver", "RegistryClient"]) {
      assert.isDefined(lib[service][service], `${service} tag`)
      assert.isDefined(lib[service].layer, `${service} layer`)
    }
    assert.isDefined(lib.NodeHttp.layer, "NodeHttp layer, the CLI's HttpClient")
    for (const error of ["AuthFileError", "MissingCredentials", "RegistryDenied", "RegistryUnavailable", "UsageError"]) {
      assert.isFunction(lib[error], error)
    }
  })
})
