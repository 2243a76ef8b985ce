/**
 * `HOME`, under which microagent keeps its stores and caches. An empty one is no home at all:
 * taken as it is, it would put `.microagent/auth.json` (secrets) and the image store in whatever
 * folder the command runs in. It fails as an unset HOME does, and says the same.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Either from "effect/Either"

export const home: Config.Config<string> = Config.string("HOME").pipe(
  Config.mapOrFail((value) =>
    value === "" ? Either.left(ConfigError.MissingData([], "HOME is empty")) : Either.right(value)
  )
)
