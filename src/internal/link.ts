/**
 * A signal that aborts when either `outer` or `inner` does (with the first one's reason), and a
 * `dispose` that removes the listeners it added. The reason to prefer this to `AbortSignal.any`:
 * the listeners are removed as soon as the work settles, instead of living as long as the
 * signals do.
 */
export function linkSignals(
  outer: AbortSignal,
  inner: AbortSignal,
): { signal: AbortSignal; dispose: () => void } {
  if (outer === inner || outer.aborted) return { signal: outer, dispose: noDispose };
  if (inner.aborted) return { signal: inner, dispose: noDispose };
  const controller = new AbortController();
  const fromOuter = (): void => {
    dispose();
    controller.abort(outer.reason);
  };
  const fromInner = (): void => {
    dispose();
    controller.abort(inner.reason);
  };
  const dispose = (): void => {
    outer.removeEventListener("abort", fromOuter);
    inner.removeEventListener("abort", fromInner);
  };
  outer.addEventListener("abort", fromOuter, { once: true });
  inner.addEventListener("abort", fromInner, { once: true });
  return { signal: controller.signal, dispose };
}

function noDispose(): void {
  // Nothing was added.
}
