// Seeded randomness for generated data (synthetic traces, random snapshots in tests and benches):
// the same seed gives the same sequence, so results reproduce.

export type Rng = () => number;

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; uniform in [0, 1). Not for secrets. */
export function seededRandom(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
