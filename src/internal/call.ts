import type { StageCall } from "../types.js";

/**
 * The `call` argument given to a handler that declares three parameters. Its `signal` is the
 * attempt's signal; when the run has none, a never-aborting signal is made on first read, so
 * a handler that never reads it costs no `AbortController`.
 */
export class AttemptCall implements StageCall {
  #signal: AbortSignal | undefined;
  readonly attempt: number;
  readonly stageName: string;

  constructor(signal: AbortSignal | undefined, attempt: number, stageName: string) {
    this.#signal = signal;
    this.attempt = attempt;
    this.stageName = stageName;
  }

  get signal(): AbortSignal {
    return (this.#signal ??= new AbortController().signal);
  }
}
