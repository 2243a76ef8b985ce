/**
 * Every service wired to every other, for programs that want all of microagent at once.
 * Still platform-free: it needs FileSystem, Path, an HttpClient and a ConfigProvider (`HOME`,
 * `REGISTRY_AUTH_FILE`). Layers are memoised, so the TlsPolicy here is the one an HttpClient
 * built from it (as the CLI's is) sees.
 */
import * as Layer from "effect/Layer"
import * as AuthStore from "./AuthStore.js"
import * as CredentialResolver from "./CredentialResolver.js"
import * as Images from "./Images.js"
import * as ImageStore from "./ImageStore.js"
import * as TlsPolicy from "./registry/TlsPolicy.js"
import * as RegistryClient from "./RegistryClient.js"

export const layer = Images.layer.pipe(
  Layer.provideMerge(RegistryClient.layer),
  Layer.provideMerge(ImageStore.layer),
  Layer.provideMerge(CredentialResolver.layer),
  Layer.provideMerge(AuthStore.layer),
  Layer.provideMerge(TlsPolicy.layer)
)
