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
