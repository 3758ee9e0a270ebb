/**
 * A producer's hold on a batch: taken with the batch's meta record (refused while another
 * producer holds the batch), renewed every third of `lockDuration` together with the expiry
 * of the batch's keys, and lost when another producer took the batch over, or when the batch
 * is gone after this producer could not renew its hold for a `lockDuration` (a paused
 * process: another producer may have run the batch to the end meanwhile).
 */
import { now } from "../internal/clock.js";
import { BatchInUseError } from "./errors.js";
import type { BatchKeys } from "./keys.js";
import type { ProducerScripts } from "./scripts.js";

export interface HoldSettings {
  readonly batchId: string;
  readonly keys: BatchKeys;
  readonly scripts: ProducerScripts;
  readonly lockDuration: number;
  readonly keepFor: number;
  /** Called once, when the hold is lost: the batch must end, touching nothing of it. */
  readonly onLost: (error: BatchInUseError) => void;
}

export class Hold {
  /** This run's id: the hold's value, and the run in the meta record. */
  readonly holder = globalThis.crypto.randomUUID();
  readonly #settings: HoldSettings;
  #held = false;
  #lost = false;
  /** When the hold was last taken or renewed (the clock of `now()`). */
  #heldAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #renewing: Promise<void> | undefined = undefined;

  constructor(settings: HoldSettings) {
    this.#settings = settings;
  }

  /** True once taken, until lost: the batch's keys are this run's to clean up. */
  get held(): boolean {
    return this.#held && !this.#lost;
  }

  /** True when another producer may have had the batch: nothing of it may be touched. */
  get lost(): boolean {
    return this.#lost;
  }

  /** True when the hold may have lapsed: not renewed for a `lockDuration`. */
  get lapsed(): boolean {
    return now() - this.#heldAt >= this.#settings.lockDuration;
  }

  /**
   * Takes the hold (or keeps it) and writes the meta record `meta` (see
   * `ProducerScripts.start`); then renews it until {@link Hold.release}.
   * @throws BatchInUseError when another producer holds the batch
   */
  async take(meta: readonly string[]): Promise<void> {
    const { batchId, keys, scripts, lockDuration, keepFor } = this.#settings;
    const asked = now();
    if (!(await scripts.start(keys, this.holder, lockDuration, keepFor, meta))) {
      throw new BatchInUseError(batchId, this.#held ? "taken" : "running");
    }
    this.#held = true;
    this.#heldAt = asked;
    this.#stopRenewing();
    this.#schedule();
  }

  /** Renews the hold now unless it was renewed within half a `lockDuration`. */
  async freshen(): Promise<void> {
    if (now() - this.#heldAt > this.#settings.lockDuration / 2) await this.#renew();
  }

  /** The batch's meta record is gone: Redis lost it, unless the hold lapsed (then: lost). */
  metaGone(): void {
    if (this.lapsed) this.#lose("gone");
  }

  /** Stops renewing (the batch ends; its cleanup deletes or keeps the keys). */
  release(): void {
    this.#stopRenewing();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      void this.#renew();
    }, this.#settings.lockDuration / 3);
  }

  #stopRenewing(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One renewal at a time; the next is scheduled after it, unless released meanwhile. */
  #renew(): Promise<void> {
    this.#renewing ??= this.#renewOnce().finally(() => {
      this.#renewing = undefined;
      if (this.#timer !== undefined) this.#schedule();
    });
    return this.#renewing;
  }

  async #renewOnce(): Promise<void> {
    const { keys, scripts, lockDuration, keepFor } = this.#settings;
    const asked = now();
    let state: "held" | "lost" | "gone";
    try {
      state = await scripts.renew(keys, this.holder, lockDuration, keepFor);
    } catch {
      return; // Redis is away: the batch's own awaits notice the outage.
    }
    if (state === "held") this.#heldAt = asked;
    else if (state === "lost") this.#lose("taken");
    else this.metaGone();
  }

  #lose(how: "taken" | "gone"): void {
    if (this.#lost) return;
    this.#lost = true;
    this.#stopRenewing();
    this.#settings.onLost(new BatchInUseError(this.#settings.batchId, how));
  }
}
