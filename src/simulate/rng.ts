/**
 * Counter-based random numbers for simulation: Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011,
 * "Parallel random numbers: as easy as 1, 2, 3", SC11; the Random123 constants and round order).
 * Only 32-bit integer arithmetic (Math.imul, and the high word of a 32x32 product from 16-bit halves),
 * so shaders/common/philox.wgsl computes the same words bit for bit.
 *
 * Streams (DESIGN.md: every random stream derives from (seed, purpose, index)):
 *   key     = (seed lo 32 bits, seed hi 21 bits)            seed: a non-negative safe integer
 *   counter = (index lo, index hi, purpose, sub·2^16 + block)
 * `index` is e.g. the galaxy's global row (so a row's numbers do not depend on chunking), `purpose`
 * separates independent uses (RngPurpose), `sub` separates sub-streams of one row (e.g. one per prior
 * that consumes a variable number of words), and `block` counts the Philox calls inside a sub-stream
 * (4 words each, at most 2^16 calls). With sub = 0, block 0 this is the convention of src/flow/rng.ts
 * (counter = (index lo, index hi, purpose, 0)), so both modules draw the same words for the same
 * (seed, purpose, index).
 *
 * Floats: `u32ToUnitF32` maps a word to (k + 1/2)·2^-23, k = the top 23 bits: strictly inside (0, 1),
 * exactly representable in f32 and computed exactly in both f64 and f32, so CPU and GPU uniforms are
 * identical. The smallest value is 2^-24: a Box-Muller normal is bounded by sqrt(48 ln 2) = 5.77
 * (P(|z| > 5.77) = 8e-9), an exponential by 16.6, which is fine for f32 simulations.
 *
 * Normal, exponential, gamma and Dirichlet draws use the same words and formulas as the WGSL, which
 * evaluates them in f32 (with an accurate -ln u near u = 1, philox_neg_log): they agree to a few f32
 * ulp. The gamma's rejection test can, with probability ~1e-6 per try, fall the other way on the
 * GPU; that draw then differs entirely (seen once in 2^20 Dirichlet(0.3, 2.5, 7) rows on an H100).
 */

export const PHILOX_M0 = 0xd2511f53;
export const PHILOX_M1 = 0xcd9e8d57;
export const PHILOX_W0 = 0x9e3779b9;
export const PHILOX_W1 = 0xbb67ae85;

/** Purposes (the third counter word); 1 and 2 are src/flow/rng.ts's (same meaning). */
export const RngPurpose = {
  /** Flow parameter initialisation (src/flow/rng.ts). */
  init: 1,
  /** Free for tests and ad-hoc callers. */
  user: 2,
  /** Random-design prior draws: index = galaxy row; sub 0 = scalar priors, 1 + j = j-th Dirichlet. */
  prior: 0x10,
  /** Latin hypercube permutations: index = dimension, words consumed sequentially. */
  lhsPermutation: 0x11,
  /** Latin hypercube jitter inside a stratum: index = galaxy row, one word per dimension. */
  lhsJitter: 0x12,
  /** Sobol digital shift: index = dimension, one word. */
  sobolShift: 0x13,
  /** Observational noise: index = galaxy row (src/simulate/noise.ts). */
  noise: 0x14,
  /** Random band drop-out: index = galaxy row. */
  bandDropout: 0x15,
  /** Train / validation / test splits: index = galaxy row. */
  split: 0x16,
  /** Flow training epoch shuffles (src/train/split.ts): index = 2 * epoch, 2 * epoch + 1. */
  shuffle: 0x20,
  /** Posterior sampling base normals (src/infer): index = drawIndex * P + p. */
  posterior: 0x21,
  /** MDN head component choice per posterior draw (src/flow/mdn.ts): index = drawIndex, u = uniform(). */
  mixture: 0x22,
  /** Validation TARP reference points (src/validate): index = object * P + p. */
  tarpReference: 0x30,
  /** Validation rank tie-breaking (src/validate): index = object * P + p. */
  rankTies: 0x31,
} as const;

/** Philox calls per sub-stream (the block part of the fourth counter word). */
export const PHILOX_BLOCKS_PER_SUB = 0x10000;

/** High 32 bits of the 64-bit product of two u32, from 16-bit halves (every partial product < 2^32). */
export function mulhi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const p = al * bl;
  const m1 = ah * bl;
  const m2 = al * bh;
  const mid = (p >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  return (ah * bh + (m1 >>> 16) + (m2 >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox4x32 with 10 rounds: ctr = 4 u32, key = 2 u32 -> 4 u32 (written into `out`). */
export function philox4x32_10(ctr: ArrayLike<number>, key: ArrayLike<number>, out: Uint32Array = new Uint32Array(4)): Uint32Array {
  let c0 = ctr[0] >>> 0;
  let c1 = ctr[1] >>> 0;
  let c2 = ctr[2] >>> 0;
  let c3 = ctr[3] >>> 0;
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + PHILOX_W0) >>> 0;
    k1 = (k1 + PHILOX_W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/** (lo, hi) u32 words of a non-negative safe integer. */
export function splitU64(n: number, what = 'value'): [number, number] {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`rng: ${what} must be a non-negative safe integer, got ${n}`);
  return [n % 4294967296 >>> 0, Math.floor(n / 4294967296) >>> 0];
}

/** The Philox key of a seed. */
export function seedKey(seed: number): [number, number] {
  return splitU64(seed, 'seed');
}

/** The counter of block `block` of sub-stream `sub` of (purpose, index). */
export function streamCounter(purpose: number, index: number, sub = 0, block = 0): [number, number, number, number] {
  const [i0, i1] = splitU64(index, 'index');
  if (!Number.isInteger(sub) || sub < 0 || sub >= 0x10000) throw new RangeError(`rng: sub-stream must be in 0..65535, got ${sub}`);
  if (!Number.isInteger(block) || block < 0 || block >= PHILOX_BLOCKS_PER_SUB) throw new RangeError(`rng: block must be in 0..65535, got ${block}`);
  return [i0, i1, purpose >>> 0, (sub * 0x10000 + block) >>> 0];
}

/** The 4 words of one Philox call for (seed, purpose, index, sub, block). */
export function philoxWords(seed: number, purpose: number, index: number, sub = 0, block = 0): Uint32Array {
  return philox4x32_10(streamCounter(purpose, index, sub, block), seedKey(seed));
}

const TWO_M23 = 2 ** -23;

/** A word -> (k + 1/2)·2^-23 with k = w >> 9: in (0, 1), exact in f32 (shaders/common/philox.wgsl: philox_unit). */
export function u32ToUnitF32(w: number): number {
  return ((w >>> 9) + 0.5) * TWO_M23;
}

/** Two words -> (k + 1/2)·2^-52 with k the top 52 bits: in (0, 1), exact in f64 (CPU only). */
export function u32PairToUnitF64(hi: number, lo: number): number {
  return ((hi >>> 0) * 1048576 + (lo >>> 12) + 0.5) * 2 ** -52;
}

/** Marsaglia-Tsang tries before giving up (acceptance >= 95 % per try for shape >= 1: failure < 1e-41). */
export const GAMMA_MAX_TRIES = 32;

/**
 * A sequential stream of words from (seed, purpose, index, sub): block 0, 1, 2... of that sub-stream,
 * 4 words per block, consumed in order. The WGSL `Philox` struct does the same.
 */
export class PhiloxStream {
  private readonly key: [number, number];
  private readonly ctr: [number, number, number, number];
  private readonly buf = new Uint32Array(4);
  private pos = 4;
  private block = 0;
  private readonly sub: number;

  constructor(seed: number, purpose: number, index: number, sub = 0) {
    this.key = seedKey(seed);
    this.ctr = streamCounter(purpose, index, sub, 0);
    this.sub = sub;
  }

  /** The next raw word. */
  nextU32(): number {
    if (this.pos >= 4) {
      if (this.block >= PHILOX_BLOCKS_PER_SUB) throw new RangeError('rng: sub-stream exhausted (2^16 Philox calls)');
      this.ctr[3] = (this.sub * 0x10000 + this.block) >>> 0;
      philox4x32_10(this.ctr, this.key, this.buf);
      this.block++;
      this.pos = 0;
    }
    return this.buf[this.pos++];
  }

  /** Uniform in (0, 1), f32-exact (one word). */
  uniform(): number {
    return u32ToUnitF32(this.nextU32());
  }

  /** Uniform in (0, 1) with 52 bits (two words; CPU only). */
  uniform52(): number {
    const hi = this.nextU32();
    return u32PairToUnitF64(hi, this.nextU32());
  }

  /** Unbiased integer in [0, n) for 1 <= n <= 2^32 (rejection of the top partial range). */
  integer(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new RangeError(`rng: integer range must be 1..2^32, got ${n}`);
    const limit = Math.floor(4294967296 / n) * n;
    for (;;) {
      const w = this.nextU32();
      if (w < limit) return w % n;
    }
  }

  /**
   * Standard normal by Box-Muller from two words: r = sqrt(-2 ln u1), z = r cos(2π u2), evaluated as
   * -r cos(π (2 u2 - 1)) so that the cosine's argument lies in (-π, π) (where WGSL's cos is accurate)
   * and 2 u2 - 1 is exact in f32.
   */
  normal(): number {
    const u1 = this.uniform();
    const u2 = this.uniform();
    return -Math.sqrt(-2 * Math.log(u1)) * Math.cos(Math.PI * (2 * u2 - 1));
  }

  /** Exponential with unit rate: -ln u (one word). */
  exponential(): number {
    return -Math.log(this.uniform());
  }

  /**
   * Gamma(shape, 1), Marsaglia & Tsang (2000, ACM TOMS 26, 363) for shape >= 1, at most
   * GAMMA_MAX_TRIES normal draws (then the mode-like value d is returned); shape = 1 is an exact
   * exponential (no rejection); shape < 1 by the boost Gamma(a) = Gamma(a + 1) · u^(1/a).
   */
  gamma(shape: number): number {
    return Math.exp(this.logGamma(shape));
  }

  /** ln of a Gamma(shape, 1) variate (see `gamma`); finite even when u^(1/a) would underflow. */
  logGamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape)) throw new RangeError(`rng: gamma shape must be finite and > 0, got ${shape}`);
    if (shape === 1) return Math.log(this.exponential());
    if (shape < 1) {
      const g = this.logGammaMT(shape + 1);
      return g + Math.log(this.uniform()) / shape;
    }
    return this.logGammaMT(shape);
  }

  private logGammaMT(a: number): number {
    const d = a - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (let t = 0; t < GAMMA_MAX_TRIES; t++) {
      const x = this.normal();
      const v0 = 1 + c * x;
      if (v0 <= 0) continue;
      const v = v0 * v0 * v0;
      const u = this.uniform();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2) return Math.log(d * v);
      if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return Math.log(d * v);
    }
    return Math.log(d);
  }

  /**
   * Dirichlet(alpha): x_i = G_i / Σ G_j with G_i ~ Gamma(alpha_i), drawn in order, normalised in log
   * space (softmax of ln G) so that tiny alphas cannot underflow every component.
   */
  dirichlet(alpha: ArrayLike<number>, out: Float64Array = new Float64Array(alpha.length)): Float64Array {
    let m = -Infinity;
    for (let i = 0; i < alpha.length; i++) {
      out[i] = this.logGamma(alpha[i]);
      if (out[i] > m) m = out[i];
    }
    let s = 0;
    for (let i = 0; i < alpha.length; i++) {
      out[i] = Math.exp(out[i] - m);
      s += out[i];
    }
    for (let i = 0; i < alpha.length; i++) out[i] /= s;
    return out;
  }
}
