/** What a memory child (memory-child.ts) reports, shared with cases/memory.ts. */

export const LIBRARIES = ["hand-written worker pool", "async-pipeline", "p-map"] as const;
/** A `map` with a file checkpoint: measured by the checkpoint case (9), not by case 3. */
export const CHECKPOINTED = "async-pipeline + fileCheckpoint" as const;
export type LibraryName = (typeof LIBRARIES)[number] | typeof CHECKPOINTED;
export type Mode = "peak" | "live";

export interface MemoryReport {
  readonly library: LibraryName;
  readonly items: number;
  readonly concurrency: number;
  readonly mode: Mode;
  /** After imports and a forced GC, before the run. */
  readonly baseline: { readonly heapUsed: number; readonly rss: number };
  /** Highest sample during the run (mode `peak`). */
  readonly peak: { readonly heapUsed: number; readonly rss: number };
  /** Mode `live`: heapUsed after a forced GC, every tenth of the input. */
  readonly checkpoints: readonly { readonly items: number; readonly heapUsed: number }[];
  /**
   * The heap a plain array of the same numbers, filled in order, holds at each checkpoint
   * (mode `live`) and at the end (both modes): what "the results array" costs, so that what
   * the library holds beyond it is the checkpoint minus the baseline minus this.
   */
  readonly reference: readonly { readonly items: number; readonly bytes: number }[];
  /** Heap after GC with the results alive, minus without them (0 when something else holds them). */
  readonly resultsBytes: number;
  readonly elapsedMs: number;
}

/** Heap held beyond the baseline and a plain results array of the same length, per checkpoint. */
export function beyondResults(report: MemoryReport): { items: number; bytes: number }[] {
  return report.checkpoints.map((checkpoint) => {
    const reference = report.reference.find((entry) => entry.items === checkpoint.items);
    return {
      items: checkpoint.items,
      bytes: checkpoint.heapUsed - report.baseline.heapUsed - (reference?.bytes ?? NaN),
    };
  });
}
