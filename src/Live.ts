/**
 * Every service wired to every other, for programs that want all of microagent at once.
 * Still platform-free: it needs FileSystem, Path, an HttpClient and a ConfigProvider (`HOME`,
 * `REGISTRY_AUTH_FILE`). Layers are memoised, so the TlsPolicy here is the one an HttpClient
 * built from it (as the CLI's is) sees.
 */
import * as Layer from "effect/Layer"
import * as AuthStore from "./AuthStore.js"
import * as Copy from "./Copy.js"
import * as CredentialResolver from "./CredentialResolver.js"
import * as Images from "./Images.js"
import * as ImageStore from "./ImageStore.js"
import * as TlsPolicy from "./registry/TlsPolicy.js"
import * as RegistryClient from "./RegistryClient.js"
import * as Rootfs from "./Rootfs.js"
import * as Runner from "./Runner.js"

/** The credential stores: AuthStore and CredentialResolver, all that needs no network. */
export const credentials = CredentialResolver.layer.pipe(Layer.provideMerge(AuthStore.layer))

/**
 * What talking to registries takes: Copy, Images, RegistryClient, ImageStore, Rootfs, Runner and TlsPolicy. Needs
 * CredentialResolver (from `credentials`) and an HttpClient besides the platform.
 */
export const registry = Copy.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(Images.layer, Rootfs.layer, Runner.layer)),
  Layer.provideMerge(RegistryClient.layer),
  Layer.provideMerge(ImageStore.layer),
  Layer.provideMerge(TlsPolicy.layer)
)

export const layer = registry.pipe(Layer.provideMerge(credentials))
