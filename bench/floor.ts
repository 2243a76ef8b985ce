// The least a Node.js pull has to do, as a yardstick for microagent: GET each blob over kept-alive
// node:http connections, at most 4 at once, hash it with SHA-256 on the way, write it through a
// 1 MiB write queue, flush it to disk every 64 MiB on the way (as microagent's FileSink does) and
// fsync it at the end, check the digest, rename it into place. No manifests, no auth, no
// retries, no Effect. microagent does all of this and more, so its time over this one is what
// its own code costs; this one over curl is what Node.js and hashing cost on this machine.
// bench/registry-cases.ts bundles it into a plain script before running it, so no TypeScript
// loader is measured.
//
// usage: node floor.mjs <host:port> <repository> <out dir> <digest>...
import { createHash } from "node:crypto"
import { createWriteStream, fdatasync, openSync, promises as fsp } from "node:fs"
import http from "node:http"
import path from "node:path"

const [host, repository, out, ...digests] = process.argv.slice(2) as [string, string, string, ...Array<string>]
const agent = new http.Agent({ keepAlive: true })

const fetchBlob = (digest: string) =>
  new Promise<void>((resolve, reject) => {
    const temp = path.join(out, `.${digest.replace(":", "-")}.tmp`)
    http.get(`http://${host}/v2/${repository}/blobs/${digest}`, { agent }, (response) => {
      if (response.statusCode !== 200) return reject(new Error(`${digest}: HTTP ${response.statusCode}`))
      const hash = createHash("sha256")
      const fd = openSync(temp, "w")
      const file = createWriteStream(temp, { fd, highWaterMark: 1024 * 1024 })
      let unflushed = 0
      let flushing = false
      response.on("data", (chunk: Buffer) => {
        hash.update(chunk)
        unflushed += chunk.length
        if (unflushed >= 64 * 1024 * 1024 && !flushing) {
          unflushed = 0
          flushing = true
          fdatasync(fd, () => (flushing = false))
        }
        if (!file.write(chunk)) {
          response.pause()
          file.once("drain", () => response.resume())
        }
      })
      response.on("error", reject)
      file.on("error", reject)
      response.on("end", () => file.end())
      file.on("close", async () => {
        try {
          if (`sha256:${hash.digest("hex")}` !== digest) throw new Error(`${digest}: digest mismatch`)
          const handle = await fsp.open(temp, "r")
          await handle.sync()
          await handle.close()
          await fsp.rename(temp, path.join(out, digest.replace(":", "-")))
          resolve()
        } catch (error) {
          reject(error)
        }
      })
    }).on("error", reject)
  })

const queue = [...digests]
await Promise.all([1, 2, 3, 4].map(async () => {
  for (let digest; (digest = queue.shift()) !== undefined;) await fetchBlob(digest)
}))
agent.destroy()
