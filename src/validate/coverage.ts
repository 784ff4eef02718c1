/**
 * Coverage of central credible intervals (frequentist calibration of marginal posteriors).
 *
 * For a credible level alpha, an object's central interval of parameter p is
 * [Q((1 - alpha) / 2), Q((1 + alpha) / 2)], Q the numpy-linear quantiles of its posterior samples.
 * The empirical coverage at alpha is the fraction of objects whose true value lies in that interval.
 * A calibrated posterior covers a fraction alpha (e.g. Hermans et al. 2022, "A trust crisis in
 * simulation-based inference?", the expected coverage test; Talts et al. 2018); coverage below
 * alpha means intervals too narrow (over-confident) or shifted (biased), above alpha too wide
 * (under-confident / conservative).
 *
 * Computed from each object's smallest covering level alpha* (summary.ts `level`): covered at alpha
 * iff alpha* <= alpha, so one pass gives the whole curve.
 *
 * Finite samples: with M samples per object even a perfect posterior covers at most
 * (M - 1) / (M + 1) at alpha -> 1 (the truth falls outside [min, max] of the samples with probability
 * 2 / (M + 1)); the bias is below 2 / (M + 1) at every level.
 *
 * `lower`/`upper`: the central 95 % band of Bin(N, alpha) / N, where the empirical coverage of a
 * calibrated posterior over N independent objects falls (pointwise, per level).
 */
import { binomialBand } from './special.js';
import { type PosteriorCube, summarizePosteriors } from './summary.js';

/** 0.01, 0.02, ..., 0.99. */
export const DEFAULT_COVERAGE_LEVELS: readonly number[] = Array.from({ length: 99 }, (_, k) => (k + 1) / 100);

export interface CoverageCurve {
  /** Nominal credible levels. */
  levels: number[];
  /** Empirical coverage per level (NaN when n = 0). */
  empirical: number[];
  /** Binomial band of a calibrated posterior (see the module comment). */
  lower: number[];
  upper: number[];
  confidence: number;
  /** Objects counted (those with a non-NaN alpha*). */
  n: number;
  /** Mean of empirical - nominal over the levels: < 0 over-confident or biased, > 0 under-confident. */
  meanDeviation: number;
  /** Largest |empirical - nominal| over the levels. */
  maxAbsDeviation: number;
}

/** Fraction of objects with alpha* <= alpha (NaN entries skipped; NaN when none). */
export function coverageAt(alphaStar: ArrayLike<number>, alpha: number): number {
  let n = 0;
  let c = 0;
  for (let i = 0; i < alphaStar.length; i++) {
    const a = alphaStar[i];
    if (Number.isNaN(a)) continue;
    n++;
    if (a <= alpha) c++;
  }
  return n ? c / n : NaN;
}

/** The coverage curve of the objects' alpha* values at `levels`. */
export function coverageCurve(alphaStar: ArrayLike<number>, levels: readonly number[] = DEFAULT_COVERAGE_LEVELS, confidence = 0.95): CoverageCurve {
  for (const l of levels) if (!(l >= 0 && l <= 1)) throw new RangeError(`coverage levels must be in [0, 1], got ${l}`);
  const v = Float64Array.from(Array.prototype.filter.call(alphaStar, (a: number) => !Number.isNaN(a)) as number[]).sort();
  const n = v.length;
  const empirical: number[] = [];
  const lower: number[] = [];
  const upper: number[] = [];
  let k = 0;
  let sum = 0;
  let max = 0;
  const order = levels.map((l, i) => [l, i] as const).sort((a, b) => a[0] - b[0]);
  const emp = new Array<number>(levels.length);
  for (const [l, i] of order) {
    while (k < n && v[k] <= l) k++;
    emp[i] = n ? k / n : NaN;
  }
  levels.forEach((l, i) => {
    empirical.push(emp[i]);
    const [lo, hi] = binomialBand(n, l, confidence);
    lower.push(lo);
    upper.push(hi);
    sum += emp[i] - l;
    max = Math.max(max, Math.abs(emp[i] - l));
  });
  return { levels: [...levels], empirical, lower, upper, confidence, n, meanDeviation: n ? sum / levels.length : NaN, maxAbsDeviation: n ? max : NaN };
}

/** Per-parameter coverage curves straight from truth (N x P) and samples (N x M x P); objects with NaN samples or truth are skipped. */
export function coverageFromSamples(truth: ArrayLike<number>, cube: PosteriorCube, levels: readonly number[] = DEFAULT_COVERAGE_LEVELS, confidence = 0.95): CoverageCurve[] {
  const s = summarizePosteriors(truth, cube);
  return Array.from({ length: cube.p }, (_, p) => {
    const a = new Float64Array(cube.n);
    for (let i = 0; i < cube.n; i++) a[i] = s.level[i * cube.p + p];
    return coverageCurve(a, levels, confidence);
  });
}
