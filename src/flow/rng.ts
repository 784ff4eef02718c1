/**
 * Counter-based random numbers for the flow: Philox4x32-10 (Salmon et al. 2011, "Parallel random
 * numbers: as easy as 1, 2, 3"; the Random123 constants). Only 32-bit integer ops, so a WGSL port is
 * line for line; every draw is a pure function of (seed, purpose, index), no hidden state.
 *
 * Convention (DESIGN.md: "(seed, purpose, index)"): key = (seed lo 32 bits, seed hi 21 bits),
 * counter = (index lo, index hi, purpose, 0). Each call yields 4 u32 words.
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** Purposes (the third counter word), so independent streams never share counters. */
export const RngPurpose = {
  /** Parameter initialisation: index = global element index in the flat parameter vector. */
  init: 1,
  /** Free for tests and callers (normal draws for tests, data generation, ...). */
  user: 2,
} as const;

/** High 32 bits of the 64-bit product of two u32 (exact: every partial product stays < 2^53). */
function mulhi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const p = al * bl;
  const m1 = ah * bl;
  const m2 = al * bh;
  const mid = (p >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  return (ah * bh + (m1 >>> 16) + (m2 >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32 with 10 rounds. ctr: 4 u32, key: 2 u32. Returns 4 u32 (into `out` if given). */
export function philox4x32(ctr: ArrayLike<number>, key: ArrayLike<number>, out: Uint32Array = new Uint32Array(4)): Uint32Array {
  let c0 = ctr[0] >>> 0;
  let c1 = ctr[1] >>> 0;
  let c2 = ctr[2] >>> 0;
  let c3 = ctr[3] >>> 0;
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/** Splits a non-negative safe integer into (lo, hi) u32 words. */
function split(n: number): [number, number] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`rng: expected a non-negative safe integer, got ${n}`);
  return [n % 4294967296 >>> 0, Math.floor(n / 4294967296) >>> 0];
}

/** The 4 raw words for (seed, purpose, index). */
export function randomWords(seed: number, purpose: number, index: number): Uint32Array {
  const [s0, s1] = split(seed);
  const [i0, i1] = split(index);
  return philox4x32([i0, i1, purpose >>> 0, 0], [s0, s1]);
}

/** Two uniforms in [0, 1) with 53 random bits each, from one Philox call. */
export function uniformPair(seed: number, purpose: number, index: number): [number, number] {
  const w = randomWords(seed, purpose, index);
  const TWO_M53 = 1 / 9007199254740992;
  return [(w[0] * 2097152 + (w[1] >>> 11)) * TWO_M53, (w[2] * 2097152 + (w[3] >>> 11)) * TWO_M53];
}

/** One uniform in [0, 1) for (seed, purpose, index). */
export function uniform(seed: number, purpose: number, index: number): number {
  return uniformPair(seed, purpose, index)[0];
}

/** One standard normal for (seed, purpose, index), Box-Muller on one Philox call (u1 in (0, 1]). */
export function standardNormal(seed: number, purpose: number, index: number): number {
  const [a, b] = uniformPair(seed, purpose, index);
  const u1 = 1 - a;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * b);
}

/** n standard normals, element i from (seed, purpose, offset + i). */
export function standardNormals(n: number, seed: number, purpose: number = RngPurpose.user, offset = 0): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = standardNormal(seed, purpose, offset + i);
  return out;
}
