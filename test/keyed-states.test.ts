/** The table of per-key state behind a keyed limiter or breaker, and its sweep of idle keys. */
import { describe, expect, it } from "vitest";
import { KeyedStates, SWEEP_FLOOR, type KeyedState } from "../src/flow/keyed.js";

class State implements KeyedState {
  recent = true;
  busy = false;
  constructor(readonly key: unknown) {}
}

function table() {
  let made = 0;
  const states = new KeyedStates<State>((state) => !state.busy);
  const obtain = (key: unknown): State =>
    states.obtain(key, (made_key) => {
      made++;
      return new State(made_key);
    });
  return { states, obtain, made: () => made };
}

describe("KeyedStates", () => {
  it("keeps keys in steady use: each is made once, however many others come and go", () => {
    const { states, obtain, made } = table();
    for (let round = 0; round < 200; round++) {
      for (let key = 0; key < 64; key++) obtain(`steady-${String(key)}`);
      for (let key = 0; key < 50; key++) obtain(`once-${String(round)}-${String(key)}`);
    }
    // 64 steady keys, made once each, and 10,000 keys seen once.
    expect(made()).toBe(64 + 10_000);
    for (let key = 0; key < 64; key++) expect(states.get(`steady-${String(key)}`)).toBeDefined();
    expect(states.size).toBeLessThanOrEqual(2 * SWEEP_FLOOR);
  });

  it("holds at most about twice the sweep floor of keys seen once, however many", () => {
    const { states, obtain } = table();
    let most = 0;
    for (let key = 0; key < 100_000; key++) {
      obtain(key);
      most = Math.max(most, states.size);
    }
    expect(most).toBeLessThanOrEqual(2 * SWEEP_FLOOR);
    expect(states.get(0)).toBeUndefined();
    expect(states.get(99_999)).toBeDefined();
  });

  it("never drops a busy state, and holds about three times the busy ones at most", () => {
    const { states, obtain } = table();
    const busy = Array.from({ length: 3_000 }, (_, key) => {
      const state = obtain(`busy-${String(key)}`);
      state.busy = true;
      return state;
    });
    let most = 0;
    for (let key = 0; key < 100_000; key++) {
      obtain(key);
      most = Math.max(most, states.size);
    }
    for (const state of busy) expect(states.get(state.key)).toBe(state);
    // About 3 × the busy ones at most, however long it goes on: each sweep keeps the busy
    // ones and the keys added since the last, and the next one comes half as many later.
    expect(most).toBeLessThanOrEqual(3 * 3_000 + SWEEP_FLOOR);
    for (const state of busy) state.busy = false;
    for (let key = 0; key < 20_000; key++) obtain(`after-${String(key)}`);
    expect(states.get("busy-0")).toBeUndefined();
  });

  it("compares keys as a Map does", () => {
    const { obtain, made } = table();
    expect(obtain(Number.NaN)).toBe(obtain(Number.NaN));
    expect(obtain(0)).toBe(obtain(-0));
    expect(obtain({})).not.toBe(obtain({}));
    expect(made()).toBe(4);
  });
});
