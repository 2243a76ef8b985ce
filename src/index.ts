/**
 * microagent as a library: the services, their live layers and the domain types.
 * Provide your own FileSystem, Path, HttpClient and ConfigProvider; `NodeHttp.layer` is the CLI's
 * HttpClient, for programs that want the same behaviour.
 */
export * as AuthStore from "./AuthStore.js"
export * as Live from "./Live.js"
export * as CredentialResolver from "./CredentialResolver.js"
export * as Images from "./Images.js"
export * as ImageStore from "./ImageStore.js"
export * as RegistryClient from "./RegistryClient.js"
export * as TlsPolicy from "./registry/TlsPolicy.js"
export * as NodeHttp from "./node/Http.js"
export * as AuthFile from "./domain/AuthFile.js"
export * as AuthKey from "./domain/AuthKey.js"
export * as Challenge from "./domain/Challenge.js"
export * as Credential from "./domain/Credential.js"
export * as Digest from "./domain/Digest.js"
export * as Manifest from "./domain/Manifest.js"
export * as Platform from "./domain/Platform.js"
export * as Reference from "./domain/Reference.js"
export * from "./domain/Errors.js"
