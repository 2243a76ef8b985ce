/**
 * microagent as a library: the services, their live layers and the domain types.
 * Provide your own FileSystem, Path, HttpClient and ConfigProvider; nothing here picks a platform.
 */
export * as AuthStore from "./AuthStore.js"
export * as CredentialResolver from "./CredentialResolver.js"
export * as RegistryClient from "./RegistryClient.js"
export * as AuthFile from "./domain/AuthFile.js"
export * as AuthKey from "./domain/AuthKey.js"
export * as Challenge from "./domain/Challenge.js"
export * as Credential from "./domain/Credential.js"
export * from "./domain/Errors.js"
