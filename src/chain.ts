import type { Stage } from "./stage.js";
import type { Context } from "./types.js";

/** Any stage, whatever its types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyStage = Stage<any, any, any>;

/**
 * The input type of a stage.
 * @example
 * ```ts
 * type In = StageInput<Stage<string, number>>; // string
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StageInput<S> = S extends Stage<infer I, any, any> ? I : never;

/**
 * The output type of a stage (its handler's result, awaited).
 * @example
 * ```ts
 * type Out = StageOutput<Stage<string, number>>; // number
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StageOutput<S> = S extends Stage<any, infer O, any> ? O : never;

/**
 * The context type a stage reads.
 * @example
 * ```ts
 * type Ctx = StageContext<Stage<string, number, { user: string }>>; // { user: string }
 * ```
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StageContext<S> = S extends Stage<any, any, infer C> ? C : never;

type Intersect<U> = (U extends unknown ? (value: U) => void : never) extends (
  value: infer R,
) => void
  ? R
  : never;

/**
 * What a stage list must look like for its types to chain: each stage's input must accept the
 * previous stage's output. A stage that does not is replaced by a description of the mismatch,
 * so the compiler points at it.
 */
export type ChainCheck<
  S extends readonly AnyStage[],
  Previous = never,
  First = true,
> = S extends readonly [infer Head extends AnyStage, ...infer Rest extends readonly AnyStage[]]
  ? readonly [
      First extends true
        ? Head
        : [Previous] extends [StageInput<Head>]
          ? Head
          : StageInputMismatch<Previous, Head>,
      ...ChainCheck<Rest, StageOutput<Head>, false>,
    ]
  : S extends readonly []
    ? readonly []
    : S;

/**
 * The type a `new Pipeline(stages)` argument must have: a non-empty list whose stages chain
 * (see {@link ChainCheck}).
 */
export type ValidStages<S extends readonly AnyStage[]> = S extends readonly []
  ? {
      /** Never present: its name is the compiler's error message for an empty stage list. */
      readonly "error: a Pipeline needs at least one stage": never;
    }
  : ChainCheck<S>;

/**
 * Shown by the compiler in place of a stage whose input type does not accept what the
 * previous stage returns.
 */
export interface StageInputMismatch<Previous, S> {
  /** Never present: its name is the compiler's error message, its type the two types involved. */
  readonly "error: this stage's input type does not accept the previous stage's output": {
    /** What the previous stage returns. */
    readonly previousOutput: Previous;
    /** What this stage accepts. */
    readonly stageInput: StageInput<S>;
  };
}

/** The first stage's input type, or `unknown` for a list of unknown length. */
export type PipelineInput<S extends readonly AnyStage[]> = S extends readonly [
  infer Head extends AnyStage,
  ...AnyStage[],
]
  ? StageInput<Head>
  : StageInput<S[number]>;

/** The last stage's output type. */
export type PipelineOutput<S extends readonly AnyStage[]> = S extends readonly [
  ...AnyStage[],
  infer Last extends AnyStage,
]
  ? StageOutput<Last>
  : StageOutput<S[number]>;

/** `unknown` for `any`: a stage whose context was inferred as `any` must not erase the others. */
type KnownContext<C> = 0 extends 1 & C ? unknown : C;

/** The intersection of a stage tuple's context types, left to right. */
type IntersectContexts<S extends readonly unknown[], Acc = unknown> = S extends readonly [
  infer Head,
  ...infer Rest,
]
  ? IntersectContexts<Rest, Acc & KnownContext<StageContext<Head>>>
  : Acc;

/**
 * The context a pipeline needs: every stage's context type at once (`Context` when no stage
 * names one).
 * @example
 * ```ts
 * type Ctx = PipelineContext<[Stage<string, number, { user: string }>, Stage<number, number, { tenant: string }>]>;
 * // { user: string } & { tenant: string }
 * ```
 */
export type PipelineContext<S extends readonly AnyStage[]> = number extends S["length"]
  ? Intersect<StageContext<S[number]>> extends infer C extends object
    ? C
    : never
  : IntersectContexts<S> extends infer C
    ? unknown extends C
      ? Context
      : C extends object
        ? C
        : never
    : never;
