/**
 * Where a registry is reached ([I1], [P1]): Docker Hub's API host, and which hosts may fall
 * back to plain http.
 */
import { DockerHub } from "../domain/AuthKey.js"

/** The host requests go to: Docker Hub's API lives at `registry-1.docker.io`. */
export const apiHost = (registry: string): string => registry === DockerHub ? "registry-1.docker.io" : registry

const hostname = (host: string): string => host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "")

/** `localhost`, `127.0.0.0/8` and `[::1]`: the hosts for which http is tried after https fails ([P1]). */
export const isLoopback = (host: string): boolean => {
  const name = hostname(host).toLowerCase()
  return name === "localhost" || name === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
}
