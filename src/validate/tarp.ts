/**
 * TARP: Tests of Accuracy with Random Points (Lemos, Coogan, Hezaveh & Perreault-Levasseur 2023,
 * "Sampling-based accuracy testing of posterior estimators for general inference", ICML,
 * arXiv:2302.03026), a joint (all parameters at once) calibration test that needs only samples.
 *
 * Per object i with truth t_i and samples s_ij (j = 1..M), all standardised into the box
 * theta' = (theta - low) / (high - low):
 *   - a reference point r_i ~ U([0, 1]^P), uniform in the standardised prior box (the paper's
 *     "random" references; stream (seed, VALIDATE_RNG.tarpReference, i * P + p));
 *   - the credibility f_i = (#{j: |s'_ij - r_i| < |t'_i - r_i|} + ties / 2 + 1/2) / (M + 1), the
 *     fraction of the posterior closer to r_i than the truth (Euclidean distance). The midpoint
 *     form makes f_i exactly uniform on the M + 1 cell centres for a calibrated posterior; the
 *     `tarp` package / sbi use count / M, which differs by less than 1 / (M + 1).
 *   - ECP(alpha) = #{i: f_i <= alpha} / N, the expected coverage probability of the ball around
 *     r_i of credibility alpha. A calibrated posterior gives ECP(alpha) = alpha (the paper's
 *     theorem: necessary and sufficient for a posterior estimator to be exact when the references
 *     are drawn from a suitable distribution).
 * Summary statistics:
 *   - atc: "area to curve" as sbi's check_tarp: sum over the alpha grid points >= 0.5 (the upper
 *     half of the 101-point grid 0, 0.01, .., 1: 51 points) of ECP(alpha) - alpha. ~0 for a
 *     calibrated posterior; > 0: posterior too wide (over-dispersed); < 0: too narrow
 *     (under-dispersed) or biased. Its scale depends on the grid (sbi's default grid has N/10 bins).
 *   - ks: one-sample Kolmogorov-Smirnov test of the f_i against U(0, 1) (D = sup |ECP(alpha) -
 *     alpha| over all alpha, asymptotic p-value); sbi instead runs a two-sample KS between the ECP
 *     and alpha arrays.
 * The box: the prior bounds where the model has them, else the range of the test set's truths
 * (what `tarp`'s norm=True does for every parameter).
 * The same statistic in one dimension per parameter (`tarpMarginal` of summary.ts) gives a
 * per-parameter TARP curve.
 */
import { binomialBand, type KsResult, ksUniform } from './special.js';
import { type PosteriorCube, type TarpBox, summarizePosteriors } from './summary.js';

/** 0, 0.01, ..., 1. */
export const DEFAULT_TARP_ALPHAS: readonly number[] = Array.from({ length: 101 }, (_, k) => k / 100);

export interface TarpCurve {
  /** Credibility levels. */
  alpha: number[];
  /** Expected coverage probability per level (NaN when n = 0). */
  ecp: number[];
  /** Pointwise binomial band of a calibrated posterior: Bin(N, alpha) / N, central `confidence`. */
  lower: number[];
  upper: number[];
  confidence: number;
  n: number;
  atc: number;
  ks: KsResult;
}

/**
 * The standardisation box: per parameter [low, high] from `bounds` where both are finite numbers,
 * else the range of the finite truths (N x P); a degenerate range becomes [v - 0.5, v + 0.5].
 */
export function tarpBox(truth: ArrayLike<number>, n: number, P: number, bounds?: { low: (number | null)[]; high: (number | null)[] } | null): TarpBox {
  const low = new Float64Array(P);
  const high = new Float64Array(P);
  for (let p = 0; p < P; p++) {
    const bl = bounds?.low[p];
    const bh = bounds?.high[p];
    if (typeof bl === 'number' && typeof bh === 'number' && Number.isFinite(bl) && Number.isFinite(bh) && bl < bh) {
      low[p] = bl;
      high[p] = bh;
      continue;
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = truth[i * P + p];
      if (!Number.isFinite(v)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    if (typeof bl === 'number' && Number.isFinite(bl)) lo = Math.min(lo, bl);
    if (typeof bh === 'number' && Number.isFinite(bh)) hi = Math.max(hi, bh);
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
      lo = -0.5;
      hi = 0.5;
    } else if (!(hi > lo)) {
      lo -= 0.5;
      hi += 0.5;
    }
    low[p] = lo;
    high[p] = hi;
  }
  return { low, high };
}

/** sbi's area to curve: sum of ecp - alpha over the grid points from the middle index (length / 2, floored) on. */
export function tarpAtc(ecp: readonly number[], alpha: readonly number[]): number {
  const mid = Math.floor(alpha.length / 2);
  let s = 0;
  for (let k = mid; k < alpha.length; k++) s += ecp[k] - alpha[k];
  return s;
}

/** ECP curve, band, ATC and KS of TARP credibilities f_i (NaN entries = excluded objects, skipped). */
export function tarpCurve(credibility: ArrayLike<number>, alphas: readonly number[] = DEFAULT_TARP_ALPHAS, confidence = 0.95): TarpCurve {
  const f = Float64Array.from(Array.prototype.filter.call(credibility, (v: number) => !Number.isNaN(v)) as number[]).sort();
  const n = f.length;
  const ecp: number[] = [];
  const lower: number[] = [];
  const upper: number[] = [];
  let k = 0;
  let prev = -Infinity;
  for (const a of alphas) {
    if (!(a >= prev)) throw new RangeError('tarp: alpha grid must be ascending');
    prev = a;
    while (k < n && f[k] <= a) k++;
    ecp.push(n ? k / n : NaN);
    const [lo, hi] = binomialBand(n, Math.min(1, Math.max(0, a)), confidence);
    lower.push(lo);
    upper.push(hi);
  }
  return { alpha: [...alphas], ecp, lower, upper, confidence, n, atc: n ? tarpAtc(ecp, alphas as number[]) : NaN, ks: ksUniform(f) };
}

export interface TarpFromSamplesOptions {
  /** Prior bounds of the box (default: the truths' range). */
  bounds?: { low: (number | null)[]; high: (number | null)[] } | null;
  seed?: number;
  alphas?: readonly number[];
}

/** Joint TARP straight from truth (N x P) and samples (N x M x P); objects with NaN samples or truth are skipped. */
export function tarpFromSamples(truth: ArrayLike<number>, cube: PosteriorCube, opts: TarpFromSamplesOptions = {}): TarpCurve & { credibility: Float64Array; box: TarpBox } {
  const box = tarpBox(truth, cube.n, cube.p, opts.bounds);
  const s = summarizePosteriors(truth, cube, { seed: opts.seed, box });
  return { ...tarpCurve(s.tarp, opts.alphas), credibility: s.tarp, box };
}
