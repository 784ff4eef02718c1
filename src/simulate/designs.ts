/**
 * Space-filling designs on the unit cube (0, 1)^D, generated on the CPU; priors.ts maps them through
 * the priors' inverse CDFs. Every row is a pure function of (seed, row) and the design's size, so a
 * library built in chunks equals one built at once.
 *
 * - Latin hypercube (McKay, Beckman & Conover 1979): dimension d has its own random permutation π_d
 *   of 0..n−1 (Fisher-Yates driven by Philox: counter = (d, 0, RngPurpose.lhsPermutation, k) for
 *   the k-th block of words, integers by rejection, so unbiased); row i gets
 *   u_id = (π_d(i) + v_id) / n with the jitter v_id = word d of the stream
 *   (seed, RngPurpose.lhsJitter, i, sub 0) as a (0, 1) uniform. Every stratum [k/n, (k+1)/n) of
 *   every dimension holds exactly one row. The permutations need n in advance (the library size).
 * - Sobol (1967) with Joe & Kuo's direction numbers (2008, file new-joe-kuo-6.21201, dimensions
 *   2..32; dimension 1 is van der Corput), points in Gray-code order as Joe & Kuo's sobol.cc and
 *   scipy.stats.qmc.Sobol produce them: x_i = XOR of v_k over the bits k of i ^ (i >> 1), 32-bit.
 *   Optional seeded digital shift (x ^= s_d, s_d = word 0 of (seed, RngPurpose.sobolShift, d, 0)),
 *   which keeps every (t, m, s)-net property. u = (x + 1/2) / 2^32: the centre of the point's
 *   32-bit cell, so u is never 0 or 1. Up to 2^32 points.
 */
import { PhiloxStream, RngPurpose, philox4x32_10, seedKey, u32ToUnitF32 } from './rng.js';

export type DesignKind = 'random' | 'lhs' | 'sobol';

// ---------------------------------------------------------------------------------------------
// Sobol
// ---------------------------------------------------------------------------------------------

/**
 * Joe & Kuo (2008) new-joe-kuo-6.21201, dimensions 2..32: "s a m_1 ... m_s" per dimension
 * (s = degree of the primitive polynomial, a = its inner coefficients, m = initial direction integers).
 */
const JOE_KUO_6_21201 =
  '1 0 1|2 1 1 3|3 1 1 3 1|3 2 1 1 1|4 1 1 1 3 3|4 4 1 3 5 13|5 2 1 1 5 5 17|5 4 1 1 5 5 5|5 7 1 1 7 11 19|' +
  '5 11 1 1 5 1 1|5 13 1 1 1 3 11|5 14 1 3 5 5 31|6 1 1 3 3 9 7 49|6 13 1 1 1 15 21 21|6 16 1 3 1 13 27 49|' +
  '6 19 1 1 1 15 7 5|6 22 1 3 1 15 13 25|6 25 1 1 5 5 19 61|7 1 1 3 7 11 23 15 103|7 4 1 3 7 13 13 15 69|' +
  '7 7 1 1 3 13 7 35 63|7 8 1 3 5 9 1 25 53|7 14 1 3 1 13 9 35 107|7 19 1 3 1 5 27 61 31|7 21 1 1 5 11 19 41 61|' +
  '7 28 1 3 5 3 3 13 69|7 31 1 1 7 13 1 19 1|7 32 1 3 7 5 13 19 59|7 37 1 1 3 9 25 29 41|7 41 1 3 5 13 23 1 55|' +
  '7 42 1 3 7 3 13 59 17';

export const SOBOL_MAX_DIMS = 1 + JOE_KUO_6_21201.split('|').length;
const SOBOL_BITS = 32;

/** Direction numbers v[d * 32 + k] (32-bit, k = bit). */
export function sobolDirections(dims: number): Uint32Array {
  if (!Number.isInteger(dims) || dims < 1 || dims > SOBOL_MAX_DIMS) throw new RangeError(`sobol: dimensions must be 1..${SOBOL_MAX_DIMS}, got ${dims}`);
  const rows = JOE_KUO_6_21201.split('|').map((r) => r.split(' ').map(Number));
  const v = new Uint32Array(dims * SOBOL_BITS);
  for (let k = 0; k < SOBOL_BITS; k++) v[k] = (1 << (31 - k)) >>> 0;
  for (let d = 1; d < dims; d++) {
    const [s, a, ...m] = rows[d - 1];
    const o = d * SOBOL_BITS;
    for (let k = 0; k < Math.min(s, SOBOL_BITS); k++) v[o + k] = (m[k] << (31 - k)) >>> 0;
    for (let k = s; k < SOBOL_BITS; k++) {
      let x = (v[o + k - s] ^ (v[o + k - s] >>> s)) >>> 0;
      for (let i = 1; i < s; i++) if ((a >>> (s - 1 - i)) & 1) x = (x ^ v[o + k - i]) >>> 0;
      v[o + k] = x;
    }
  }
  return v;
}

export class SobolSequence {
  private readonly v: Uint32Array;
  readonly shift: Uint32Array;

  /** `shiftSeed`: seeded digital shift; undefined = the plain sequence. */
  constructor(
    readonly dims: number,
    shiftSeed?: number,
  ) {
    this.v = sobolDirections(dims);
    this.shift = new Uint32Array(dims);
    if (shiftSeed !== undefined) for (let d = 0; d < dims; d++) this.shift[d] = new PhiloxStream(shiftSeed, RngPurpose.sobolShift, d, 0).nextU32();
  }

  /** Point `index` as 32-bit integers per dimension (without the shift). */
  pointU32(index: number, out: Uint32Array = new Uint32Array(this.dims)): Uint32Array {
    if (!Number.isInteger(index) || index < 0 || index >= 2 ** SOBOL_BITS) throw new RangeError(`sobol: index must be in 0..2^32-1, got ${index}`);
    const g = (index ^ (index >>> 1)) >>> 0;
    out.fill(0);
    for (let k = 0; k < SOBOL_BITS; k++) {
      if (!((g >>> k) & 1)) continue;
      for (let d = 0; d < this.dims; d++) out[d] = (out[d] ^ this.v[d * SOBOL_BITS + k]) >>> 0;
    }
    return out;
  }

  /** Rows [start, start + count) as (x ^ shift + 1/2) / 2^32 in (0, 1), row-major count x dims. */
  uniforms(start: number, count: number): Float64Array {
    if (start + count > 2 ** SOBOL_BITS) throw new RangeError(`sobol: at most 2^32 points, asked for rows up to ${start + count}`);
    const out = new Float64Array(count * this.dims);
    if (count === 0) return out;
    const x = this.pointU32(start);
    const D = this.dims;
    for (let i = 0; i < count; i++) {
      if (i > 0) {
        // Gray-code order: point j = point j-1 XOR v[ctz(j)].
        const j = start + i;
        const k = 31 - Math.clz32(j & -j);
        for (let d = 0; d < D; d++) x[d] = (x[d] ^ this.v[d * SOBOL_BITS + k]) >>> 0;
      }
      for (let d = 0; d < D; d++) out[i * D + d] = ((x[d] ^ this.shift[d]) >>> 0) * 2 ** -32 + 2 ** -33;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Latin hypercube
// ---------------------------------------------------------------------------------------------

/** A uniformly random permutation of 0..n−1 for dimension `dim` (Fisher-Yates, unbiased integers). */
export function lhsPermutation(n: number, seed: number, dim: number): Uint32Array {
  const key = seedKey(seed);
  const ctr = [dim >>> 0, 0, RngPurpose.lhsPermutation, 0];
  const buf = new Uint32Array(4);
  let pos = 4;
  const next = (): number => {
    if (pos >= 4) {
      philox4x32_10(ctr, key, buf);
      ctr[3] = (ctr[3] + 1) >>> 0;
      pos = 0;
    }
    return buf[pos++];
  };
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const m = i + 1;
    const limit = Math.floor(4294967296 / m) * m;
    let w = next();
    while (w >= limit) w = next();
    const j = w % m;
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

export class LatinHypercube {
  private readonly perms: Uint32Array[];

  constructor(
    readonly n: number,
    readonly dims: number,
    readonly seed: number,
  ) {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`lhs: n must be in 1..2^32, got ${n}`);
    if (!Number.isInteger(dims) || dims < 1 || dims > 4096) throw new RangeError(`lhs: dimensions must be 1..4096, got ${dims}`);
    this.perms = Array.from({ length: dims }, (_, d) => lhsPermutation(n, seed, d));
  }

  /** Rows [start, start + count) as (π_d(i) + v_id) / n, row-major count x dims. */
  uniforms(start: number, count: number): Float64Array {
    if (start < 0 || start + count > this.n) throw new RangeError(`lhs: rows ${start}..${start + count - 1} outside the design of ${this.n}`);
    const D = this.dims;
    const out = new Float64Array(count * D);
    for (let i = 0; i < count; i++) {
      const row = start + i;
      const s = new PhiloxStream(this.seed, RngPurpose.lhsJitter, row, 0);
      for (let d = 0; d < D; d++) out[i * D + d] = (this.perms[d][row] + u32ToUnitF32(s.nextU32())) / this.n;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Quality measures (tests and reports)
// ---------------------------------------------------------------------------------------------

/**
 * Squared L2-star discrepancy of n points in [0, 1]^D (Warnock 1972), O(n² D):
 * T² = 3^−D − (2^{1−D}/n) Σ_i Π_k (1 − x_ik²) + (1/n²) Σ_i Σ_j Π_k (1 − max(x_ik, x_jk)).
 * For independent uniform points E[T²] = (2^−D − 3^−D) / n.
 */
export function l2StarDiscrepancySq(x: ArrayLike<number>, n: number, dims: number): number {
  let s1 = 0;
  for (let i = 0; i < n; i++) {
    let p = 1;
    for (let k = 0; k < dims; k++) p *= 1 - x[i * dims + k] ** 2;
    s1 += p;
  }
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let p = 1;
      for (let k = 0; k < dims; k++) p *= 1 - Math.max(x[i * dims + k], x[j * dims + k]);
      s2 += p;
    }
  }
  return 3 ** -dims - (2 ** (1 - dims) / n) * s1 + s2 / (n * n);
}
