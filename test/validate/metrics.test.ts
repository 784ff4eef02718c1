/** Exact, hand-computed cases of the point metrics, redshift metrics, S/N, coverage levels and rank histograms. */
import { describe, expect, it } from 'vitest';
import { coverageAt, coverageCurve } from '../../src/validate/coverage.js';
import {
  binIndex,
  meanBias,
  meanPull,
  normalizedBias,
  outlierFraction,
  pointMetrics,
  r2Score,
  redshiftMetrics,
  rmse,
  signalToNoise,
} from '../../src/validate/metrics.js';
import { defaultRankBins, rankHistogram } from '../../src/validate/ranks.js';
import { centralLevel, rankOf, summarizePosteriors } from '../../src/validate/summary.js';

describe('point metrics (hand-made)', () => {
  // residuals m - t = [0.5, 0, -0.5, 1]; SS_res = 1.5; mean t = 2.5, SS_tot = 5.
  const t = [1, 2, 3, 4];
  const m = [1.5, 2, 2.5, 5];
  // sigma_post = (p84 - p16) / 2 = [0.1, 1, 1, 0.2]: pulls [5, 0, -0.5, 5].
  const p16 = [1.4, 1, 1.5, 4.8];
  const p84 = [1.6, 3, 3.5, 5.2];

  it('R^2, RMSE, bias, normalised bias, pull, outliers', () => {
    expect(r2Score(t, m)).toBeCloseTo(1 - 1.5 / 5, 15);
    expect(rmse(t, m)).toBeCloseTo(Math.sqrt(1.5 / 4), 15);
    expect(meanBias(t, m)).toBeCloseTo(0.25, 15);
    expect(normalizedBias(t, m)).toBeCloseTo(0.25 / Math.sqrt(5 / 4), 15);
    expect(meanPull(t, m, p16, p84)).toBeCloseTo((5 + 0 - 0.5 + 5) / 4, 12);
    expect(outlierFraction(t, m, p16, p84)).toBe(0.5); // |pull| > 3: objects 0 and 3
    expect(pointMetrics(t, m, p16, p84)).toMatchObject({ n: 4, outlierFraction: 0.5 });
  });

  it('perfect predictions, constant truths, NaN pairs', () => {
    expect(r2Score(t, t)).toBe(1);
    expect(rmse(t, t)).toBe(0);
    expect(r2Score([2, 2, 2], [1, 2, 3])).toBeNaN(); // no variance to explain
    expect(r2Score([1], [1])).toBeNaN();
    // A NaN anywhere drops the pair: same as without it.
    expect(r2Score([...t, NaN, 7], [...m, 3, NaN])).toBeCloseTo(r2Score(t, m), 15);
    expect(pointMetrics([...t, 9], [...m, NaN], [...p16, 0], [...p84, 1]).n).toBe(4);
    expect(rmse([], [])).toBeNaN();
    expect(() => rmse([1, 2], [1])).toThrow(/2 truths but 1 estimates/);
  });

  it('zero posterior width: outlier unless exact, no pull', () => {
    expect(outlierFraction([1, 2], [1, 2.5], [1, 2.5], [1, 2.5])).toBe(0.5);
    expect(meanPull([1, 2], [1, 2.5], [1, 2.5], [1, 2.5])).toBeNaN();
  });
});

describe('redshift metrics (hand-made)', () => {
  it('NMAD, outlier fraction, bias', () => {
    // dz = [0.1, 0, 0.3, 0, 2], median dz = 0.1;
    // |dz - 0.1| / (1 + z) = [0, 0.05, 0.0667, 0.025, 0.95] -> median 0.05 -> NMAD 0.074;
    // |dz| / (1 + z) = [0.1, 0, 0.1, 0, 1] -> one outlier (> 0.15); median = 0.1.
    const r = redshiftMetrics([0, 1, 2, 3, 1], [0.1, 1, 2.3, 3, 3]);
    expect(r.n).toBe(5);
    expect(r.nmad).toBeCloseTo(1.48 * 0.05, 14);
    expect(r.outlierFraction).toBeCloseTo(0.2, 15);
    expect(r.bias).toBeCloseTo(0.1, 14);
    expect(r.outlierThreshold).toBe(0.15);
  });

  it('threshold is strict, NaN pairs skipped, empty input', () => {
    // |dz| / (1 + z) = 0.15 exactly (z = 0) is not an outlier; 0.3 / 1.5 = 0.2 is.
    const r = redshiftMetrics([0, 0.5, NaN], [0.15, 0.8, 1]);
    expect(r.n).toBe(2);
    expect(r.outlierFraction).toBe(0.5);
    expect(redshiftMetrics([], []).nmad).toBeNaN();
  });
});

describe('S/N and bins', () => {
  it('total, median, max and one band; bad bands skipped', () => {
    // Object 0: S/N per band [3, 4, NaN (error 0)]; object 1: no usable band.
    const f = [3, 8, 5, NaN, 1, 1];
    const e = [1, 2, 0, 1, -1, NaN];
    expect(Array.from(signalToNoise(f, e, 2, 3, 'total'))).toEqual([5, NaN]);
    expect(signalToNoise(f, e, 2, 3, 'median')[0]).toBe(3.5);
    expect(signalToNoise(f, e, 2, 3, 'max')[0]).toBe(4);
    expect(signalToNoise(f, e, 2, 3, { band: 1 })[0]).toBe(4);
    expect(() => signalToNoise(f, e, 2, 3, { band: 3 })).toThrow(/band index 3 outside/);
  });

  it('binIndex: [low, high), NaN and out of range -> -1', () => {
    expect(Array.from(binIndex([0, 2.9, 3, 150, NaN, -1], [0, 3, 5, Infinity]))).toEqual([0, 0, 1, 2, -1, -1]);
    expect(() => binIndex([1], [0, 0, 1])).toThrow(/strictly ascending/);
  });
});

describe('central credible levels and coverage (hand-made)', () => {
  // Samples 0..10: Q(q) = 10 q, so the central level of t is |2 t / 10 - 1|.
  const c = Array.from({ length: 11 }, (_, k) => k);

  it('levels from the inverse of the numpy-linear quantile function', () => {
    expect(centralLevel(c, 5)).toBe(0);
    expect(centralLevel(c, 8)).toBeCloseTo(0.6, 14);
    expect(centralLevel(c, 1.5)).toBeCloseTo(0.7, 14);
    expect(centralLevel(c, 0)).toBe(1);
    expect(centralLevel(c, -0.1)).toBe(Infinity);
    expect(centralLevel(c, 10.1)).toBe(Infinity);
    // Ties: the level closest to 0 among the tied positions.
    expect(centralLevel([1, 2, 2, 2, 3], 2)).toBe(0);
    expect(centralLevel([1, 2, 2, 3, 4], 2)).toBe(0); // F in [1/4, 2/4] -> 0.5
    expect(centralLevel([7], 7)).toBe(0);
    expect(centralLevel([7], 6)).toBe(Infinity);
  });

  it('coverage at a level = fraction of objects with level <= alpha', () => {
    const lv = [0, 0.6, 0.7, 1, Infinity, NaN];
    expect(coverageAt(lv, 0.68)).toBeCloseTo(2 / 5, 15);
    expect(coverageAt(lv, 0.95)).toBeCloseTo(3 / 5, 15);
    const cc = coverageCurve(lv, [0.5, 0.7, 0.99]);
    expect(cc.n).toBe(5);
    expect(cc.empirical).toEqual([0.2, 0.6, 0.6]);
    expect(cc.meanDeviation).toBeCloseTo((0.2 - 0.5 + 0.6 - 0.7 + 0.6 - 0.99) / 3, 14);
    expect(cc.maxAbsDeviation).toBeCloseTo(0.39, 14);
    expect(() => coverageCurve(lv, [1.5])).toThrow(/levels must be in \[0, 1\]/);
  });

  it('interval check agrees with the quantiles directly (the definition)', () => {
    // Object with samples 0..10 and truths on a grid: covered at alpha iff Q((1-a)/2) <= t <= Q((1+a)/2).
    const alphas = [0.1, 0.3, 0.68, 0.9];
    for (let t = -0.5; t <= 10.5; t += 0.37) {
      const lv = centralLevel(c, t);
      for (const a of alphas) expect(lv <= a, `t ${t} a ${a}`).toBe(10 * ((1 - a) / 2) <= t && t <= 10 * ((1 + a) / 2));
    }
  });
});

describe('ranks (hand-made)', () => {
  it('rank = #samples below the truth; ties shared by a uniform draw', () => {
    const c = [1, 2, 2, 2, 5];
    expect(rankOf(c, 0, 0.5)).toBe(0);
    expect(rankOf(c, 6, 0.5)).toBe(5);
    expect(rankOf(c, 3, 0.9)).toBe(4);
    expect(rankOf(c, 2, 0)).toBe(1);
    expect(rankOf(c, 2, 0.999)).toBe(4);
  });

  it('histogram with equal bins and its chi-square', () => {
    // M = 9: ranks 0..9, 5 bins of 2 values; 20 objects, expected 4 per bin.
    const ranks = [0, 1, 1, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, -1];
    const h = rankHistogram(ranks, 9, 5);
    expect(h.n).toBe(20);
    expect(h.counts).toEqual([4, 4, 4, 4, 4]);
    expect(h.expected).toEqual([4, 4, 4, 4, 4]);
    expect(h.edges).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(h.chi2).toBe(0);
    expect(h.pValue).toBe(1);
    const all0 = rankHistogram(new Array(20).fill(0), 9, 5);
    expect(all0.chi2).toBeCloseTo(16 ** 2 / 4 + 4 * 4, 12); // (20 - 4)^2 / 4 + 4 x (0 - 4)^2 / 4
    expect(all0.dof).toBe(4);
  });

  it('unequal bins: expected counts follow the number of rank values per bin', () => {
    // M = 10: 11 rank values in 4 bins starting at ceil(11 b / 4) = 0, 3, 6, 9 (widths 3, 3, 3, 2).
    const h = rankHistogram([0, 2, 3, 8, 9, 10], 10, 4);
    expect(h.counts).toEqual([2, 1, 1, 2]);
    expect(h.expected.map((e) => e * 11)).toEqual([18, 18, 18, 12]);
    expect(h.edges.map((e) => e * 11)).toEqual([0, 3, 6, 9, 11]);
    expect(() => rankHistogram([11], 10, 4)).toThrow(/rank 11 of object 0 outside 0..10/);
    expect(() => rankHistogram([1], 10, 12)).toThrow(/bins must be an integer in \[1, 11\]/);
    expect(defaultRankBins(1000, 1000)).toBe(20);
    expect(defaultRankBins(55, 1000)).toBe(5);
    expect(defaultRankBins(5, 1000)).toBe(2);
    expect(defaultRankBins(1000, 3)).toBe(4);
  });

  it('summaries of a tiny cube: median, p16, p84, rank, level', () => {
    // One object, P = 1, M = 5 samples [4, 0, 2, 1, 3] (sorted 0..4): median 2, p16 = 0.64, p84 = 3.36.
    const s = summarizePosteriors([2.5], { n: 1, m: 5, p: 1, samples: [4, 0, 2, 1, 3] });
    expect(s.median[0]).toBe(2);
    expect(s.p16[0]).toBeCloseTo(0.64, 14);
    expect(s.p84[0]).toBeCloseTo(3.36, 14);
    expect(s.rank[0]).toBe(3);
    expect(s.level[0]).toBeCloseTo(0.25, 14); // F = 2.5 / 4
    expect(s.tarp[0]).toBeNaN(); // no box given
  });
});
