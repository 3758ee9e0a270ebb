/**
 * A seeded, deterministic source of "randomness": the same seed and key always give the same
 * number, so two runs of the demo with the same seed see the same records and the same
 * failures, whatever order requests arrive in.
 */

/** A number in [0, 1) determined by `seed` and `key` alone. */
export function unit(seed: number, key: string): number {
  // FNV-1a over the key, seeded, then the mulberry32 finaliser to spread the bits.
  let hash = (2166136261 ^ seed) >>> 0;
  for (let index = 0; index < key.length; index++) {
    hash = Math.imul(hash ^ key.charCodeAt(index), 16777619) >>> 0;
  }
  hash = (hash + 0x6d2b79f5) >>> 0;
  hash = Math.imul(hash ^ (hash >>> 15), hash | 1);
  hash ^= hash + Math.imul(hash ^ (hash >>> 7), hash | 61);
  return ((hash ^ (hash >>> 14)) >>> 0) / 4294967296;
}

/** An integer in [min, max] determined by `seed` and `key`. */
export function between(seed: number, key: string, min: number, max: number): number {
  return min + Math.floor(unit(seed, key) * (max - min + 1));
}
