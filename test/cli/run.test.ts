/**
 * `run`'s command line ([R3]): flags before the image, the command after it, as `docker run`
 * reads them, so the command's own flags (`sh -c …`, `ls -la`) are never taken for microagent's.
 */
import { describe, expect, it } from "vitest"
import { commandAfterImage } from "../../src/cli/run.js"

const argv = (...words: ReadonlyArray<string>) => ["node", "microagent", ...words]

describe("[R3] run's command line", () => {
  it("puts -- before the image, skipping flags and their values", () => {
    expect(commandAfterImage(argv("run", "-e", "A=1", "--network", "host", "--keep", "app:1", "sh", "-c", "echo hi")))
      .toEqual(argv("run", "-e", "A=1", "--network", "host", "--keep", "--", "app:1", "sh", "-c", "echo hi"))
  })

  it("after global flags too, with --log-level's value", () => {
    expect(commandAfterImage(argv("--log-level", "debug", "run", "-i", "app", "ls", "-la")))
      .toEqual(argv("--log-level", "debug", "run", "-i", "--", "app", "ls", "-la"))
  })

  it("leaves other commands, and a -- the user typed, as they are", () => {
    expect(commandAfterImage(argv("pull", "run"))).toEqual(argv("pull", "run"))
    expect(commandAfterImage(argv("run", "--", "app", "-x"))).toEqual(argv("run", "--", "app", "-x"))
    expect(commandAfterImage(argv("run", "--help"))).toEqual(argv("run", "--help"))
  })
})
