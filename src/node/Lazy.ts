/**
 * Services whose real implementation is loaded on first use. Every start pays for each module
 * the bundle evaluates, so code that only some commands need (HTTP, the terminal's readline) is
 * loaded by those commands: `registry list` never touches either.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

/**
 * The service `layer` builds, built at most once, when the returned effect first runs, in the
 * scope of the layer that calls this (so its finalizers run when the program ends). `load` is a
 * dynamic `import`: the bundler keeps the module, and Node's modules it needs, unevaluated until
 * then. The layer's own needs are taken from the caller's context.
 */
export const onFirstUse = <I, S, R>(
  tag: Context.Tag<I, S>,
  load: () => Promise<Layer.Layer<I, never, R>>
): Effect.Effect<Effect.Effect<S>, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const needs = yield* Effect.context<R>()
    return yield* Effect.cached(
      Effect.promise(load).pipe(
        Effect.flatMap((layer) => Layer.buildWithScope(Layer.provide(layer, Layer.succeedContext(needs)), scope)),
        Effect.map(Context.get(tag))
      )
    )
  })
