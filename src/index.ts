/**
 * async-pipeline: compose async stages with timeouts, retries, hooks, context and bounded
 * concurrency.
 *
 * @packageDocumentation
 */

export { Stage } from "./stage.js";
export type { StageOptions } from "./options/stage.js";
export type { RetryOptions } from "./options/retry.js";
export { Pipeline } from "./pipeline.js";
export type { PipelineConstructor } from "./pipeline.js";
export type { PipelineOptions, RunWrapper } from "./options/pipeline.js";
export type { MapOptions, StreamOptions } from "./options/batch.js";
export type { AfterStageHook, BeforeStageHook } from "./hooks.js";
export type { Middleware, Next } from "./middleware.js";
export type {
  AnyStage,
  ChainCheck,
  PipelineContext,
  PipelineInput,
  PipelineOutput,
  StageContext,
  StageInput,
  StageInputMismatch,
  StageOutput,
  ValidStages,
} from "./chain.js";
export type {
  Backoff,
  CheckpointStore,
  Context,
  Handler,
  Progress,
  RetryEvent,
  RunOptions,
  StageCall,
  OnRetry,
  ShouldRetry,
} from "./types.js";
export { PipelineError } from "./errors/PipelineError.js";
export { StageExecutionError } from "./errors/StageExecutionError.js";
export { TimeoutError } from "./errors/TimeoutError.js";
export { BrokenCircuitError } from "./errors/BrokenCircuitError.js";
export { RateLimiter } from "./flow/rate-limiter.js";
export type { RateLimitOptions } from "./flow/rate-limiter.js";
export { CircuitBreaker } from "./flow/circuit-breaker.js";
export type { CircuitBreakerOptions, CircuitState, WhenOpen } from "./flow/circuit-breaker.js";
export { parseRetryAfter } from "./flow/retry-after.js";
export type { RetryAfter } from "./flow/retry-after.js";
export type { PerKeyOptions } from "./flow/per-key.js";
export { adaptiveConcurrency } from "./flow/adaptive.js";
export type { AdaptiveConcurrency, AdaptiveConcurrencyOptions } from "./flow/adaptive.js";
// Not exported on purpose: the internal symbols `Pipeline` calls on a `Stage`, the pool, the
// timer and delay helpers. They may change in any release.
