import { whenAborted } from "./abort.js";

/**
 * A signal that aborts when either `outer` or `inner` does (with the first one's reason), and a
 * `dispose` that cancels its subscriptions. The reason to prefer this to `AbortSignal.any`:
 * nothing is left on the signals once the work settles, instead of living as long as they do.
 */
export function linkSignals(
  outer: AbortSignal,
  inner: AbortSignal,
): { signal: AbortSignal; dispose: () => void } {
  if (outer === inner || outer.aborted) return { signal: outer, dispose: noDispose };
  if (inner.aborted) return { signal: inner, dispose: noDispose };
  const controller = new AbortController();
  const fromOuter = whenAborted(outer, () => {
    dispose();
    controller.abort(outer.reason);
  });
  const fromInner = whenAborted(inner, () => {
    dispose();
    controller.abort(inner.reason);
  });
  const dispose = (): void => {
    fromOuter.cancel();
    fromInner.cancel();
  };
  return { signal: controller.signal, dispose };
}

function noDispose(): void {
  // Nothing was added.
}
