/**
 * Counter-based random numbers for the flow: Philox4x32-10 (Salmon et al. 2011, "Parallel random
 * numbers: as easy as 1, 2, 3"; the Random123 constants). Only 32-bit integer ops, so a WGSL port is
 * line for line; every draw is a pure function of (seed, purpose, index), no hidden state.
 *
 * Convention (DESIGN.md: "(seed, purpose, index)"): key = (seed lo 32 bits, seed hi 21 bits),
 * counter = (index lo, index hi, purpose, 0). Each call yields 4 u32 words.
 */

import { RngPurpose, philox4x32_10, philoxWords } from '../simulate/rng.js';

/** Purposes (the third counter word): the project-wide registry (init = 1, user = 2, ...). */
export { RngPurpose };

/** Philox4x32 with 10 rounds. ctr: 4 u32, key: 2 u32 (the shared implementation in src/simulate/rng.ts). */
export const philox4x32 = philox4x32_10;

/** The 4 raw words for (seed, purpose, index): sub-stream 0, block 0 of src/simulate/rng.ts. */
export function randomWords(seed: number, purpose: number, index: number): Uint32Array {
  return philoxWords(seed, purpose, index);
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
