/** Settings shared by the property-based suites (test/property*.test.ts). */

/** Runs per property; `PROPERTY_RUNS` overrides the default. */
export const NUM_RUNS = Number(process.env.PROPERTY_RUNS ?? 150);

/** Generous: a property takes about 10 ms per run here. */
export const TIMEOUT = 20_000 + NUM_RUNS * 100;
