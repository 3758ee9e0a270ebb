import type { SmokeResult } from "./smoke.js";

/** The names of every check, in the order `runCheckpointSmoke` runs them. */
export const checkpointCheckNames: readonly string[];

/**
 * Runs every check against the built checkpoint module and core entry point, with files in
 * `folder`; never rejects.
 */
export function runCheckpointSmoke(
  checkpoint: unknown,
  core: unknown,
  folder: string,
): Promise<SmokeResult[]>;
