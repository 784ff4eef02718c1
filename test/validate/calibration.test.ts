/**
 * Statistical tests of the calibration metrics on synthetic posteriors with known calibration
 * (synthetic.ts): N = 1000 objects, M = 300 samples, P = 2 correlated parameters, fixed seeds.
 *
 * Tolerances (from the sample sizes):
 * - coverage at level a of a calibrated posterior ~ Bin(N, a') / N with a' within 2 / (M + 1) below a
 *   (finite-M quantiles, coverage.ts): we accept the central 99.9 % binomial band widened by
 *   2 / (M + 1) below;
 * - rank histograms: chi-square p-value > 0.001;
 * - TARP: the KS distance of the credibilities is below the 0.1 % critical value
 *   D = 1.9495 / sqrt(N) (Kolmogorov lambda_0.001) plus the 1 / (M + 1) granularity of f, and the ATC,
 *   a sum over 51 grid points of ECP - alpha, is within 51 x that.
 * Miscalibrated posteriors (sd x 0.5, sd x 2, shifted by 1 sd) must fall outside those bounds.
 */
import { describe, expect, it } from 'vitest';
import { computeValidationMetrics } from '../../src/validate/assemble.js';
import { coverageFromSamples } from '../../src/validate/coverage.js';
import { pointMetrics } from '../../src/validate/metrics.js';
import { rankHistogramsFromSamples } from '../../src/validate/ranks.js';
import { parseValidationMetrics, type ValidationMetrics } from '../../src/validate/schema.js';
import { binomialBand } from '../../src/validate/special.js';
import { summarizePosteriors } from '../../src/validate/summary.js';
import { tarpFromSamples } from '../../src/validate/tarp.js';
import { SYNTH_BOUNDS, syntheticPosterior } from './synthetic.js';

const N = 1000;
const M = 300;
const D_CRIT = 1.9495 / Math.sqrt(N) + 1 / (M + 1);
const ATC_MAX = 51 * D_CRIT;
const params = [
  { name: 'a', low: SYNTH_BOUNDS.low[0], high: SYNTH_BOUNDS.high[0] },
  { name: 'b', low: SYNTH_BOUNDS.low[1], high: SYNTH_BOUNDS.high[1] },
];

function run(scale: number, shift: number, seed = 11): ValidationMetrics {
  const { truth, cube } = syntheticPosterior({ n: N, m: M, seed, scale, shift });
  return computeValidationMetrics(truth, cube, { parameters: params, seed: 5 }).metrics;
}

function band(level: number, n: number): [number, number] {
  const [lo, hi] = binomialBand(n, level, 0.999);
  return [lo - 2 / (M + 1), hi];
}

describe('a perfectly calibrated posterior (truth drawn from the posterior itself)', () => {
  const m = run(1, 0);

  it('coverage within binomial bounds of nominal at every level 1..99 %', () => {
    for (const p of m.parameters) {
      expect(p.coverage.n).toBe(N);
      expect(p.coverage.levels).toHaveLength(99);
      p.coverage.levels.forEach((a, k) => {
        const [lo, hi] = band(a, N);
        const e = p.coverage.empirical[k]!;
        expect(e >= lo && e <= hi, `${p.name} level ${a}: coverage ${e} outside [${lo}, ${hi}]`).toBe(true);
        // The 95 % band stored in the file brackets the nominal value.
        expect(p.coverage.lower[k]!).toBeLessThanOrEqual(a);
        expect(p.coverage.upper[k]!).toBeGreaterThanOrEqual(a);
      });
      expect(Math.abs(p.metrics.coverage68! - 0.68)).toBeLessThan(0.68 - band(0.68, N)[0]);
      expect(Math.abs(p.metrics.coverage95! - 0.95)).toBeLessThan(0.95 - band(0.95, N)[0]);
    }
  });

  it('uniform ranks (chi-square p not tiny)', () => {
    for (const p of m.parameters) {
      expect(p.ranks.n).toBe(N);
      expect(p.ranks.bins).toBe(20);
      expect(p.ranks.counts.reduce((s, c) => s + c, 0)).toBe(N);
      expect(p.ranks.pValue!, p.name).toBeGreaterThan(1e-3);
    }
  });

  it('TARP curve near the diagonal (joint and per parameter)', () => {
    for (const t of [m.tarp, ...m.parameters.map((p) => p.tarp)]) {
      expect(t.n).toBe(N);
      expect(t.alpha).toHaveLength(101);
      expect(t.ecp[0]).toBe(0);
      expect(t.ecp[100]).toBe(1);
      t.alpha.forEach((a, k) => expect(Math.abs(t.ecp[k]! - a)).toBeLessThanOrEqual(D_CRIT));
      expect(t.ks.statistic!).toBeLessThanOrEqual(D_CRIT);
      expect(t.ks.pValue!).toBeGreaterThan(1e-3);
      expect(Math.abs(t.atc!)).toBeLessThanOrEqual(ATC_MAX);
    }
  });

  it('outliers rare, pulls centred, R^2 as the posterior widths allow', () => {
    for (const p of m.parameters) {
      // P(|N(0,1)| > 3) = 0.27 %: binomial 99.9 % upper bound for N = 1000 is 1.0 %.
      expect(p.metrics.outlierFraction!).toBeLessThan(0.01);
      // mean pull ~ N(0, 1/N) (plus the median's own scatter, ~1.25 / sqrt(M)): 4 sigma.
      expect(Math.abs(p.metrics.meanPull!)).toBeLessThan(4 / Math.sqrt(N) + 4 * 1.25 / Math.sqrt(M * N));
      // Var(truth) = 3 (U(-3, 3)) + E sd^2 (0.1733); residual variance E sd^2 (1 + pi/(2M)): R^2 ~ 0.945.
      expect(p.metrics.r2!).toBeGreaterThan(0.93);
      expect(p.metrics.r2!).toBeLessThan(0.96);
    }
  });

  it('metrics.json round trip through the schema (nulls for NaN)', () => {
    const back = parseValidationMetrics(JSON.parse(JSON.stringify(m)));
    expect(back.parameters[0].metrics.r2).toBe(m.parameters[0].metrics.r2);
    expect(back.parameters[0].objects.truth).toHaveLength(N);
    expect(back.tarp.box).toEqual({ low: [-5, -5], high: [5, 5] });
    expect(back.redshift).toBeNull();
    expect(back.snr).toBeNull();
    expect(() => parseValidationMetrics({ ...m, formatVersion: 2 })).toThrow(/formatVersion/);
  });
});

describe('miscalibrated posteriors are flagged', () => {
  it('over-confident (sd x 0.5): coverage below nominal, U-shaped ranks, TARP ATC < 0', () => {
    const m = run(0.5, 0);
    for (const p of m.parameters) {
      // Expected coverage68 = P(|z| < 0.5 x 0.994) = 0.38.
      expect(p.metrics.coverage68!).toBeLessThan(band(0.68, N)[0]);
      expect(p.metrics.coverage95!).toBeLessThan(band(0.95, N)[0]);
      expect(p.coverage.meanDeviation!).toBeLessThan(-0.1);
      expect(p.ranks.pValue!).toBeLessThan(1e-10);
      const h = p.ranks.counts;
      expect(h[0] + h[h.length - 1]).toBeGreaterThan(4 * (2 * N) / h.length); // piled at the ends
      expect(p.tarp.atc!).toBeLessThan(-ATC_MAX);
      expect(p.metrics.outlierFraction!).toBeGreaterThan(0.05);
    }
    expect(m.tarp.atc!).toBeLessThan(-ATC_MAX);
    expect(m.tarp.ks.pValue!).toBeLessThan(1e-10);
  });

  it('under-confident (sd x 2): coverage above nominal, TARP ATC > 0', () => {
    const m = run(2, 0);
    for (const p of m.parameters) {
      expect(p.metrics.coverage68!).toBeGreaterThan(band(0.68, N)[1]);
      expect(p.coverage.meanDeviation!).toBeGreaterThan(0.1);
      expect(p.ranks.pValue!).toBeLessThan(1e-10);
      expect(p.tarp.atc!).toBeGreaterThan(ATC_MAX);
    }
    expect(m.tarp.atc!).toBeGreaterThan(ATC_MAX);
  });

  it('biased (shifted by +1 sd): coverage below nominal, sloped ranks, pull ~ 1, TARP deviates', () => {
    const m = run(1, 1);
    for (const p of m.parameters) {
      // Expected coverage68 = P(|z + 1| < 0.994) = 0.48.
      expect(p.metrics.coverage68!).toBeLessThan(band(0.68, N)[0]);
      expect(p.metrics.coverage95!).toBeLessThan(band(0.95, N)[0]);
      expect(p.ranks.pValue!).toBeLessThan(1e-10);
      const h = p.ranks.counts;
      expect(h.slice(0, 5).reduce((s, c) => s + c, 0)).toBeGreaterThan(h.slice(-5).reduce((s, c) => s + c, 0)); // truth below most samples
      expect(Math.abs(p.metrics.meanPull! - 1)).toBeLessThan(0.15);
      expect(p.metrics.bias!).toBeGreaterThan(0.3); // 1 x E sd = 0.4
      expect(p.tarp.ks.statistic!).toBeGreaterThan(D_CRIT);
    }
    expect(m.tarp.ks.statistic!).toBeGreaterThan(D_CRIT);
    expect(m.tarp.ks.pValue!).toBeLessThan(1e-5);
  });
});

describe('pure entry points agree with the assembled file', () => {
  it('coverageFromSamples, rankHistogramsFromSamples, tarpFromSamples', () => {
    const { truth, cube } = syntheticPosterior({ n: 300, m: 100, seed: 3 });
    const { metrics } = computeValidationMetrics(truth, cube, { parameters: params, seed: 9 });
    const cov = coverageFromSamples(truth, cube);
    const ranks = rankHistogramsFromSamples(truth, cube, { seed: 9 });
    const tarp = tarpFromSamples(truth, cube, { bounds: { low: [-5, -5], high: [5, 5] }, seed: 9 });
    for (let p = 0; p < 2; p++) {
      expect(metrics.parameters[p].coverage.empirical).toEqual(cov[p].empirical);
      expect(metrics.parameters[p].ranks.counts).toEqual(ranks[p].counts);
    }
    expect(metrics.tarp.ecp).toEqual(tarp.ecp);
    expect(metrics.tarp.atc).toBe(tarp.atc);
    // Another seed moves the reference points: a different but equally calibrated curve.
    const other = tarpFromSamples(truth, cube, { bounds: { low: [-5, -5], high: [5, 5] }, seed: 10 });
    expect(other.ecp).not.toEqual(tarp.ecp);
  });
});

describe('NaN samples (sampling hit the cap) and NaN truths', () => {
  it('are excluded and counted; the other objects give the same metrics as without them', () => {
    const n = 200;
    const m = 50;
    const { truth, cube } = syntheticPosterior({ n, m, seed: 4 });
    const samples = Float64Array.from(cube.samples as Float64Array);
    const tr = Float64Array.from(truth);
    // Object 3: the last 10 samples missing (NaN rows, as samplePosterior leaves them); object 7: NaN truth.
    for (let j = m - 10; j < m; j++) for (let p = 0; p < 2; p++) samples[(3 * m + j) * 2 + p] = NaN;
    tr[7 * 2 + 1] = NaN;
    const { metrics, summaries } = computeValidationMetrics(tr, { n, m, p: 2, samples }, { parameters: params });
    expect(metrics.objects).toMatchObject({ requested: n, used: n - 2, excluded: { nonFiniteSamples: 1, nonFiniteTruth: 1, nonFiniteX: 0 } });
    expect(metrics.objects.excludedRows).toEqual({ nonFiniteSamples: [3], nonFiniteTruth: [7], nonFiniteX: [] });
    expect(metrics.objects.row).not.toContain(3);
    expect(metrics.objects.row).toHaveLength(n - 2);
    expect(summaries.median[3 * 2]).toBeNaN();
    // Same numbers as the cube without objects 3 and 7.
    const keep = Array.from({ length: n }, (_, i) => i).filter((i) => i !== 3 && i !== 7);
    const t2 = new Float64Array(keep.length * 2);
    const s2 = new Float64Array(keep.length * m * 2);
    keep.forEach((i, k) => {
      t2.set(truth.subarray(i * 2, i * 2 + 2), k * 2);
      s2.set(samples.subarray(i * m * 2, (i + 1) * m * 2), k * m * 2);
    });
    const ref = computeValidationMetrics(t2, { n: keep.length, m, p: 2, samples: s2 }, { parameters: params }).metrics;
    for (let p = 0; p < 2; p++) {
      expect(metrics.parameters[p].metrics).toEqual(ref.parameters[p].metrics);
      expect(metrics.parameters[p].coverage.empirical).toEqual(ref.parameters[p].coverage.empirical);
      expect(metrics.parameters[p].objects.median).toEqual(ref.parameters[p].objects.median);
    }
    expect(metrics.tarp.n).toBe(n - 2);
    expect(metrics.tarp.atc).not.toBeNull();
  });

  it('every object excluded: counts, null metrics, no crash', () => {
    const { metrics } = computeValidationMetrics([NaN, 1], { n: 1, m: 3, p: 2, samples: new Float64Array(6) });
    expect(metrics.objects.used).toBe(0);
    expect(metrics.parameters[0].metrics).toMatchObject({ n: 0, r2: null, rmse: null, coverage68: null });
    expect(metrics.tarp.atc).toBeNull();
    expect(metrics.parameters[0].ranks.pValue).toBeNull();
    parseValidationMetrics(JSON.parse(JSON.stringify(metrics)));
  });
});

describe('S/N bins and redshift', () => {
  it('bins the objects by S/N and computes per-bin metrics, incl. redshift NMAD', () => {
    const n = 400;
    const { truth, cube } = syntheticPosterior({ n, m: 60, seed: 8 });
    // Make parameter 0 a redshift: shift into [0.5, 6.5].
    const t = Float64Array.from(truth, (v, k) => (k % 2 === 0 ? v + 3.5 : v));
    const s = Float64Array.from(cube.samples as Float64Array, (v, k) => (k % 2 === 0 ? v + 3.5 : v));
    const snr = Float64Array.from({ length: n }, (_, i) => (i % 4 === 0 ? NaN : i % 2 === 0 ? 4 : 30));
    const { metrics, summaries } = computeValidationMetrics(t, { n, m: 60, p: 2, samples: s }, {
      parameters: [{ name: 'redshift', low: -1.5, high: 8.5 }, { name: 'b', low: -5, high: 5 }],
      snr,
      snrEdges: [0, 10, Infinity],
    });
    const sn = metrics.snr!;
    expect(sn.edges).toEqual([0, 10, null]);
    expect(sn.noSnr).toBe(n / 4);
    expect(sn.bins.map((b) => b.n)).toEqual([n / 4, n / 2]);
    expect(sn.values).toHaveLength(n);
    // Bin 1 = the odd objects: same metrics as computed on them directly.
    const odd = Array.from({ length: n / 2 }, (_, k) => 2 * k + 1);
    const col = (a: Float64Array, p: number) => odd.map((i) => a[i * 2 + p]);
    const pm = pointMetrics(col(summaries.truth, 1), col(summaries.median, 1), col(summaries.p16, 1), col(summaries.p84, 1));
    expect(sn.bins[1].parameters.b.r2).toBe(pm.r2);
    expect(sn.bins[1].parameters.b.rmse).toBe(pm.rmse);
    expect(sn.bins[1].redshift!.n).toBe(n / 2);
    // Redshift metrics on the whole set: a calibrated sd of 0.2..0.6 in z over 1 + z in [1.5, 7.5].
    expect(metrics.redshift!.parameter).toBe('redshift');
    expect(metrics.redshift!.n).toBe(n);
    expect(metrics.redshift!.nmad!).toBeGreaterThan(0.02);
    expect(metrics.redshift!.nmad!).toBeLessThan(0.3);
    expect(metrics.parameters[0].redshift).toEqual({ n, nmad: metrics.redshift!.nmad, outlierFraction: metrics.redshift!.outlierFraction, bias: metrics.redshift!.bias, outlierThreshold: 0.15 });
    expect(metrics.parameters[1].redshift).toBeNull();
  });
});

describe('summaries', () => {
  it('TARP credibility: the fraction of samples closer to the reference than the truth', () => {
    // P = 1, box [0, 10]: the reference r is uniform(seed 0, purpose 0x30, 0) in [0, 1] -> 10 r.
    const s = summarizePosteriors([5], { n: 1, m: 4, p: 1, samples: [1, 4, 6, 9] }, { box: { low: Float64Array.of(0), high: Float64Array.of(10) } });
    // The joint and the 1-D credibility coincide for P = 1; value in {0.5, 1.5, ..., 4.5} / 5.
    expect(s.tarp[0]).toBe(s.tarpMarginal[0]);
    expect([0.1, 0.3, 0.5, 0.7, 0.9].some((v) => Math.abs(v - s.tarp[0]) < 1e-15)).toBe(true);
  });
});
