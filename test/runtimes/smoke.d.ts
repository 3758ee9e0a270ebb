/** The outcome of one check of the runtime smoke suite. */
export interface SmokeResult {
  /** The check's name. */
  name: string;
  /** Whether every assertion of the check held. */
  ok: boolean;
  /** Why it failed: the message and the stack. */
  error?: string;
}

/** The names of every check, in the order `runSmoke` runs them. */
export const checkNames: readonly string[];

/** Runs every check against the build's two ESM modules; never rejects. */
export function runSmoke(core: unknown, middlewares: unknown): Promise<SmokeResult[]>;

/** Throws `message` unless `condition` holds. */
export function check(condition: unknown, message: string): void;

/** Throws unless `actual` and `expected` have the same JSON form. */
export function same(actual: unknown, expected: unknown, what: string): void;

/** Runs every check of `suite`, each given `argument`; never rejects. */
export function runChecks<A>(
  suite: Record<string, (argument: A) => unknown>,
  argument: A,
): Promise<SmokeResult[]>;
