/**
 * Credentials as integration tests seed them: base64 `user:password`, the paths of microagent's
 * own files under a HOME, and auth files in the `{"auths": {...}}` format.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"

export const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64")

/** An `Authorization: Basic` value. */
export const basic = (user: string, password: string) => `Basic ${b64(`${user}:${password}`)}`

/** `~/.microagent`, the directory of microagent's own files. */
export const storeDir = (home: string) => path.join(home, ".microagent")
/** `~/.microagent/auth.json`, microagent's own credential store ([C1]). */
export const storePath = (home: string) => path.join(home, ".microagent", "auth.json")
/** `~/.microagent/images`, the shared image store of a HOME ([I2]). */
export const imagesDir = (home: string) => path.join(home, ".microagent", "images")

export type Auths = Record<string, { auth: string }>

/** An auth file's content: each `key → "user:password"` as an `auth` entry. */
export const authsFor = (entries: Record<string, string>): { auths: Auths } => ({
  auths: Object.fromEntries(Object.entries(entries).map(([key, userPass]) => [key, { auth: b64(userPass) }]))
})

/** Writes `content` as two-space indented JSON, the file 0600, its directory created 0700 if missing. Returns the file. */
export const writeAuthJson = async (file: string, content: unknown): Promise<string> => {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  await fs.writeFile(file, JSON.stringify(content, null, 2), { mode: 0o600 })
  return file
}
