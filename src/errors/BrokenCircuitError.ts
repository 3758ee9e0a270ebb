import { brandClass } from "./brand.js";
import { PipelineError } from "./PipelineError.js";

/**
 * A stage execution was refused because its {@link CircuitBreaker} is open (or half-open
 * with its one trial execution already running): the handler was not called. With
 * `whenOpen: "wait"`, the execution waited `maxWait` ms for the circuit to close, in vain
 * (`waited` says how long).
 *
 * It reaches the caller as the `originalError` of a {@link StageExecutionError} whose
 * `attempts` is 0. Its `cause` is the failure that last opened the circuit, when there was
 * one, so that a log line can say why the service is considered down.
 *
 * @example
 * ```ts
 * import { BrokenCircuitError, CircuitBreaker, Stage, StageExecutionError } from "async-pipeline";
 *
 * const breaker = new CircuitBreaker({ threshold: 1, cooldown: 30_000 });
 * const call = new Stage("call", (): number => {
 *   throw new Error("service down");
 * }, { circuitBreaker: breaker });
 *
 * await call.run(undefined).catch(() => undefined); // opens the circuit
 * try {
 *   await call.run(undefined);
 * } catch (error) {
 *   if (error instanceof StageExecutionError && error.originalError instanceof BrokenCircuitError) {
 *     error.originalError.stageName; // "call"
 *     error.attempts; // 0: the handler was not called
 *   }
 * }
 * ```
 */
export class BrokenCircuitError extends PipelineError {
  /** Always `"BrokenCircuitError"`. */
  override name = "BrokenCircuitError" as const;

  /** The name of the stage whose execution was refused. */
  readonly stageName: string;

  /**
   * How long the execution waited for the circuit to close, in ms: its `maxWait` with
   * `whenOpen: "wait"`; 0 when it was refused at once.
   * @default 0
   * @example
   * ```ts
   * import { BrokenCircuitError } from "async-pipeline";
   *
   * new BrokenCircuitError("fetch", undefined, 60_000).waited; // 60000
   * ```
   */
  readonly waited: number;

  /**
   * @param stageName - the stage whose execution was refused
   * @param cause - the failure that last opened the circuit, if any
   * @param waited - how long the execution waited in vain, in ms (0: refused at once)
   */
  constructor(stageName: string, cause?: unknown, waited = 0) {
    super(
      waited > 0
        ? `Circuit still open after waiting ${String(waited)} ms: stage "${stageName}" was not run`
        : `Circuit is open: stage "${stageName}" was not run`,
      cause === undefined ? undefined : { cause },
    );
    this.stageName = stageName;
    this.waited = waited;
  }
}

// `instanceof BrokenCircuitError` holds for an instance made by any copy of the library.
brandClass(BrokenCircuitError, "BrokenCircuitError");
