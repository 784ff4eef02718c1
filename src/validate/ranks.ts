/**
 * Rank statistics / PIT histograms (simulation-based calibration, Talts, Betancourt, Simpson,
 * Vehtari & Gelman 2018, "Validating Bayesian inference algorithms with simulation-based
 * calibration", arXiv:1804.06788).
 *
 * The rank of the truth among an object's M posterior samples, r = #{j: s_j < t} (ties broken at
 * random, summary.ts), is uniform on {0, ..., M} when the posterior is exact and the truth was drawn
 * from the prior (a held-out simulation). The normalised rank (PIT) is (r + 1/2) / (M + 1).
 * Shapes: a U (ranks piled at 0 and M) = over-confident (too narrow); a hump = under-confident;
 * a slope = biased.
 *
 * Histogram: B bins over the L = M + 1 rank values, rank r in bin floor(r B / L) (Talts et al.
 * recommend B with L divisible by B; otherwise bins hold ceil((b + 1) L / B) - ceil(b L / B)
 * values and the expected counts follow). Uniformity: Pearson's chi-square
 * X^2 = sum_b (O_b - E_b)^2 / E_b with E_b = N (values in bin b) / L, B - 1 degrees of freedom,
 * p-value P(chi2_{B-1} >= X^2) (special.ts). Default B = clamp(floor(N / 10), 2, 20) and at most
 * L, so that every expected count is >= 5 for N >= 20 (the usual validity rule of the chi-square
 * approximation), as Talts et al.'s 20 bins for large N.
 */
import { chiSquareSf } from './special.js';
import { type PosteriorCube, summarizePosteriors } from './summary.js';

export interface RankHistogram {
  /** M: ranks take the values 0..M. */
  samplesPerObject: number;
  bins: number;
  /** B + 1 bin edges in normalised rank units [0, 1] (the rank values of bin b are [edges[b], edges[b+1]) x (M + 1)). */
  edges: number[];
  counts: number[];
  expected: number[];
  n: number;
  chi2: number;
  dof: number;
  pValue: number;
}

/** Default number of rank bins for N objects and M samples each (see the module comment). */
export function defaultRankBins(n: number, M: number): number {
  return Math.max(1, Math.min(M + 1, Math.max(2, Math.min(20, Math.floor(n / 10)))));
}

/** Histogram and chi-square uniformity test of ranks in 0..M (negative entries = excluded objects, skipped). */
export function rankHistogram(ranks: ArrayLike<number>, M: number, bins?: number): RankHistogram {
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`rank histogram: M must be a positive integer, got ${M}`);
  let n = 0;
  for (let i = 0; i < ranks.length; i++) if (ranks[i] >= 0) n++;
  const L = M + 1;
  const B = bins ?? defaultRankBins(n, M);
  if (!Number.isInteger(B) || B < 1 || B > L) throw new RangeError(`rank histogram: bins must be an integer in [1, ${L}], got ${B}`);
  const first = (b: number) => Math.ceil((b * L) / B);
  const counts = new Array<number>(B).fill(0);
  for (let i = 0; i < ranks.length; i++) {
    const r = ranks[i];
    if (r < 0) continue;
    if (!Number.isInteger(r) || r > M) throw new RangeError(`rank histogram: rank ${r} of object ${i} outside 0..${M}`);
    counts[Math.floor((r * B) / L)]++;
  }
  const edges: number[] = [];
  for (let b = 0; b <= B; b++) edges.push(first(b) / L);
  const expected = counts.map((_, b) => (n * (first(b + 1) - first(b))) / L);
  let chi2 = 0;
  for (let b = 0; b < B; b++) chi2 += expected[b] > 0 ? (counts[b] - expected[b]) ** 2 / expected[b] : 0;
  const dof = B - 1;
  return { samplesPerObject: M, bins: B, edges, counts, expected, n, chi2: n ? chi2 : NaN, dof, pValue: n && dof > 0 ? chiSquareSf(chi2, dof) : NaN };
}

/** Ranks (N x P, -1 for objects with NaN samples or truth) straight from truth (N x P) and samples (N x M x P). */
export function ranksFromSamples(truth: ArrayLike<number>, cube: PosteriorCube, seed = 0): Int32Array {
  return summarizePosteriors(truth, cube, { seed }).rank;
}

/** Per-parameter rank histograms straight from truth and samples. */
export function rankHistogramsFromSamples(truth: ArrayLike<number>, cube: PosteriorCube, opts: { seed?: number; bins?: number } = {}): RankHistogram[] {
  const r = ranksFromSamples(truth, cube, opts.seed);
  return Array.from({ length: cube.p }, (_, p) => {
    const col = new Int32Array(cube.n);
    for (let i = 0; i < cube.n; i++) col[i] = r[i * cube.p + p];
    return rankHistogram(col, cube.m, opts.bins);
  });
}
