/**
 * Runs a command under a pseudo-terminal, to test interactive prompting.
 * python3's `pty` module does the terminal work so that no native npm module is needed.
 */
import { spawn } from "node:child_process"
import { StringDecoder } from "node:string_decoder"

export interface PtySession {
  /**
   * Resolves with the accumulated output once it matches. Each call searches only the
   * output after the previous match, so a prompt that repeats can be waited for again.
   */
  readonly waitFor: (pattern: RegExp | string, timeoutMs?: number) => Promise<string>
  readonly write: (data: string) => void
  /** resolves with exit code and the full terminal output once the child exits */
  readonly exited: Promise<{ code: number | null; output: string }>
  readonly kill: () => void
}

// The terminal keeps its default modes (ECHO, ICANON, ONLCR), as a user's would: a program
// that forgets to turn echo off shows typed characters in the output.
// Input is queued and written as the master accepts it, so nothing is lost or deadlocks before the
// child reads; the master is drained until EIO (EOF on BSDs) so all output arrives before we exit.
const relay = String.raw`
import errno, fcntl, os, pty, select, signal, struct, sys, termios

argv = sys.argv[1:]
pid, master = pty.fork()
if pid == 0:
    fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        os.write(2, ("%s: %s\r\n" % (argv[0], e.strerror)).encode())
    os._exit(127)

def terminate(*_):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

signal.signal(signal.SIGTERM, terminate)
os.set_blocking(master, False)
pending, stdin_open = b"", True
while True:
    readable, writable, _ = select.select([master] + [0] * stdin_open, [master] * bool(pending), [])
    if 0 in readable:
        data = os.read(0, 65536)
        pending += data
        stdin_open = bool(data)
    if writable:
        try:
            pending = pending[os.write(master, pending):]
        except BlockingIOError:
            pass
    if master in readable:
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            continue
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            break
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
sys.exit(code if code >= 0 else 128 - code)
`

const search = (text: string, pattern: RegExp | string): { index: number; length: number } | undefined => {
  if (typeof pattern === "string") {
    const index = text.indexOf(pattern)
    return index < 0 ? undefined : { index, length: pattern.length }
  }
  // A global or sticky pattern would carry lastIndex over from an earlier call.
  const match = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, "")).exec(text)
  return match === null ? undefined : { index: match.index, length: match[0].length }
}

export const spawnPty = (
  command: string,
  args: ReadonlyArray<string>,
  options: { env: Record<string, string>; cwd?: string }
): PtySession => {
  const child = spawn("python3", ["-c", relay, command, ...args], {
    // NO_COLOR as in runCli: on a terminal, colour is otherwise on and tests compare plain text.
    env: { PATH: process.env["PATH"] ?? "", TERM: "xterm", NO_COLOR: "1", ...options.env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdio: ["pipe", "pipe", "pipe"]
  })
  const decoder = new StringDecoder("utf8")
  let output = ""
  let relayErrors = ""
  let cursor = 0
  let done = false
  const listeners = new Set<() => void>()
  const notify = () => listeners.forEach((listener) => listener())

  child.stdout.on("data", (chunk: Buffer) => {
    output += decoder.write(chunk)
    notify()
  })
  child.stderr.on("data", (chunk: Buffer) => {
    relayErrors += chunk.toString("utf8")
  })
  child.stdin.on("error", () => {})

  const exited = new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code) => {
      output += decoder.end()
      done = true
      notify()
      resolve({ code, output })
    })
  })
  // Callers that only use waitFor would otherwise see a spawn failure as an unhandled rejection.
  exited.catch(() => {})

  const waitFor = (pattern: RegExp | string, timeoutMs = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const fail = (why: string) => {
        finish()
        reject(new Error(`${why} waiting for ${String(pattern)}\n--- output ---\n${output}${relayErrors}`))
      }
      const check = () => {
        const found = search(output.slice(cursor), pattern)
        if (found !== undefined) {
          cursor += found.index + found.length
          finish()
          resolve(output)
        } else if (done) {
          fail("process exited")
        }
      }
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs)
      const finish = () => {
        clearTimeout(timer)
        listeners.delete(check)
      }
      listeners.add(check)
      check()
    })

  return {
    waitFor,
    write: (data) => {
      child.stdin.write(data)
    },
    exited,
    // The relay answers SIGTERM by killing the child, then still drains and reports its output.
    kill: () => {
      child.kill("SIGTERM")
    }
  }
}
