/** Helpers about `AbortSignal`s, shared by the test files. */
import { getEventListeners } from "node:events";

/** How many "abort" listeners are registered on `signal` now. */
export function abortListeners(signal: AbortSignal): number {
  return getEventListeners(signal, "abort").length;
}
