/**
 * Node's FileSystem, with named pipes read without blocking a thread. Node opens files on its
 * thread pool, and opening a pipe that has no writer blocks that thread until one comes; Node
 * waits for its threads before it exits, so a command reading such a pipe (an auth file given as
 * a FIFO) could not be ended by Ctrl-C. A pipe is opened non-blocking instead and read on the
 * event loop, like stdin: its bytes when a writer is there (`<(…)` in a shell), none when not.
 * Reads stop past a cap, so an endless pipe cannot fill memory either.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { SystemError } from "@effect/platform/Error"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { constants, open } from "node:fs"
import { Socket } from "node:net"

/** More than any file microagent reads whole from a pipe (auth files stop at 4 MiB). */
const maxPipeBytes = 16 * 1024 * 1024

const failure = (path: string, method: string, description: string) =>
  new SystemError({ module: "FileSystem", method, reason: "Unknown", pathOrDescriptor: path, description })

/** A pipe's bytes read on the event loop, up to the cap; interrupting closes it. */
const readPipe = (path: string): Effect.Effect<Uint8Array, SystemError> =>
  Effect.async<Uint8Array, SystemError>((resume) => {
    let socket: Socket | undefined
    open(path, constants.O_RDONLY | constants.O_NONBLOCK, (error, fd) => {
      if (error !== null) return resume(Effect.fail(failure(path, "readFile", error.message)))
      const parts: Array<Buffer> = []
      let size = 0
      const pipe = new Socket({ fd, readable: true, writable: false })
      socket = pipe
      pipe.on("data", (chunk: Buffer) => {
        size += chunk.length
        if (size > maxPipeBytes) {
          pipe.destroy()
          return resume(Effect.fail(failure(path, "readFile", `the pipe sent more than ${maxPipeBytes / 1024 / 1024} MiB`)))
        }
        parts.push(chunk)
      })
      pipe.on("error", (cause) => resume(Effect.fail(failure(path, "readFile", cause.message))))
      pipe.on("end", () => resume(Effect.succeed(new Uint8Array(Buffer.concat(parts)))))
    })
    return Effect.sync(() => socket?.destroy())
  })

const isPipe = (fs: FileSystem.FileSystem, path: string) =>
  fs.stat(path).pipe(Effect.map((info) => info.type === "FIFO"), Effect.orElseSucceed(() => false))

/** NodeFileSystem with `readFile` and `readFileString` reading pipes as above. */
export const layer = Layer.effect(
  FileSystem.FileSystem,
  Effect.map(FileSystem.FileSystem, (fs): FileSystem.FileSystem => {
    const readFile = (path: string) => Effect.flatMap(isPipe(fs, path), (pipe) => pipe ? readPipe(path) : fs.readFile(path))
    return {
      ...fs,
      readFile,
      readFileString: (path, encoding) =>
        Effect.flatMap(isPipe(fs, path), (pipe) =>
          pipe
            ? Effect.map(readPipe(path), (bytes) => new TextDecoder(encoding ?? "utf-8").decode(bytes))
            : fs.readFileString(path, encoding))
    }
  })
).pipe(Layer.provide(NodeFileSystem.layer))
