/**
 * Posterior draws pushed back through the forward model, with the reference study's config
 * (examples/reference-study.yaml: quantile SFH, Calzetti, Inoue 2014, nebular, jades14): band fluxes
 * equal the GPU synthesiser's and the float64 forward model's for the same theta, spectra match the
 * CPU model (and give the GPU band fluxes back through the filters), SFH curves integrate to the
 * formed mass and average to the synthesis' SFR over 100 Myr.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bandWeightMatrix } from '../../src/physics/filterIntegration.js';
import { PosteriorReconstructor, columnQuantiles, pivotWavelengthAA, quantileSorted } from '../../src/report/reconstruct.js';
import { CANONICAL_WIDTH, fromCanonicalRow } from '../../src/simulate/canonical.js';
import { type SimulationConfig, configThetaSampler, loadSimulationConfig } from '../../src/simulate/config.js';
import { GpuSynthesizer, SYNTH_DERIVED_COLUMNS, SYNTH_DERIVED_W } from '../../src/simulate/gpuSynth.js';
import { thetaToCanonical } from '../../src/simulate/theta.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();
let config: SimulationConfig;
let rec: PosteriorReconstructor;
let theta: Float32Array; // M x P prior draws, f32 as a flow gives them
let P: number;
const M = 48;

beforeAll(async () => {
  config = await loadSimulationConfig(path.join(import.meta.dirname, '..', '..', 'examples', 'reference-study.yaml'));
  // As a library stores it: JSON (the reconstructor re-validates).
  rec = await PosteriorReconstructor.create({ gpu: ctx.gpu, config: JSON.parse(JSON.stringify({ ...config, n: 1000 })), chunk: 32 });
  P = rec.thetaColumns.length;
  theta = Float32Array.from(configThetaSampler(config, undefined).sample(0, M));
});
afterAll(() => rec?.destroy());

/** Relative flux error with a floor at 1e-6 of the galaxy's brightest band. */
function worstRel(got: ArrayLike<number>, want: ArrayLike<number>, B: number): { rel: number; at: number } {
  let worst = { rel: 0, at: -1 };
  for (let i = 0; i < got.length / B; i++) {
    let max = 0;
    for (let b = 0; b < B; b++) max = Math.max(max, Math.abs(want[i * B + b]));
    for (let b = 0; b < B; b++) {
      const k = i * B + b;
      const rel = Math.abs(got[k] - want[k]) / Math.max(Math.abs(want[k]), 1e-6 * max);
      if (!(rel <= worst.rel)) worst = { rel, at: k };
    }
  }
  return worst;
}

describe('band fluxes of the draws (GPU)', () => {
  it('equal GpuSynthesizer on thetaToCanonical rows and the float64 forward model', async () => {
    const r = await rec.reconstruct({ theta, n: M }, { sed: false, sfh: false });
    expect(r.invalid).toEqual([]);
    const B = rec.bandNames.length;
    expect(r.bands.fluxesNJy.length).toBe(M * B);
    expect(r.bands.derivedColumns).toEqual(SYNTH_DERIVED_COLUMNS);

    // The same synthesiser path by hand: identical numbers.
    const canon = Float32Array.from(thetaToCanonical(rec.layout, theta, M));
    const synth = await GpuSynthesizer.create(ctx.gpu, rec.model, { sfhFamily: config.sfh, chunk: 64 });
    try {
      const direct = await synth.synthesize(canon);
      expect(Array.from(r.bands.fluxesNJy)).toEqual(Array.from(direct.fluxesNJy));
      expect(Array.from(r.bands.derived)).toEqual(Array.from(direct.derived));
    } finally {
      synth.destroy();
    }

    // The float64 reference on the same f32 parameters. f32 synthesis vs float64: rel 1e-3 (the
    // synthesis' own bar, test/simulate/gpuSynth.test.ts) above 1e-6 of the brightest band (fainter
    // bands lie beyond the Lyman break, where exp(-tau_IGM) amplifies f32 rounding of tau).
    const ref = new Float64Array(M * B);
    for (let i = 0; i < M; i++) ref.set(rec.model.photometry(fromCanonicalRow(canon.subarray(i * CANONICAL_WIDTH, (i + 1) * CANONICAL_WIDTH), config.sfh)).fluxesNJy, i * B);
    const w = worstRel(r.bands.fluxesNJy, ref, B);
    expect(w.rel, `worst at draw ${Math.floor(w.at / B)} band ${w.at % B}`).toBeLessThan(1e-3);

    // Summaries: per band quantiles of the draws.
    const sorted = Float64Array.from({ length: M }, (_, i) => r.bands.fluxesNJy[i * B + 3]).sort();
    expect(r.bands.median[3]).toBe(quantileSorted(sorted, 0.5));
    expect(r.bands.p16[3]).toBeLessThanOrEqual(r.bands.median[3]);
    expect(r.bands.p84[3]).toBeGreaterThanOrEqual(r.bands.median[3]);
    expect(r.bands.pivotAA[rec.bandNames.indexOf('jwst_f444w')]).toBeGreaterThan(43000);
    expect(r.bands.pivotAA[rec.bandNames.indexOf('jwst_f444w')]).toBeLessThan(45000);
  });

  it('maps named columns: redshift known, a derived column ignored, another order', async () => {
    const names = rec.thetaColumns;
    const iz = names.indexOf('redshift');
    const z = 2.5;
    const full = Float32Array.from(theta);
    for (let i = 0; i < M; i++) full[i * P + iz] = z;
    // Model 1: redshift is a feature, not a parameter; the model also infers a derived quantity.
    const cols = [...names.filter((n) => n !== 'redshift').reverse(), 'log10_surviving_mass'];
    const t1 = new Float32Array(M * cols.length);
    for (let i = 0; i < M; i++) cols.forEach((c, j) => (t1[i * cols.length + j] = c === 'log10_surviving_mass' ? 9 : full[i * P + names.indexOf(c)]));
    const a = await rec.bandFluxes({ theta: full, n: M });
    const b = await rec.bandFluxes({ theta: t1, n: M, columns: cols, known: { redshift: z } });
    expect(b.ignoredColumns).toEqual(['log10_surviving_mass']);
    expect(Array.from(b.fluxesNJy)).toEqual(Array.from(a.fluxesNJy));
  });

  it('names a missing column, and flags invalid draws instead of returning numbers for them', async () => {
    const cols = rec.thetaColumns.filter((n) => n !== 'redshift');
    expect(() => rec.canonicalRows({ theta: new Float32Array(cols.length), n: 1, columns: cols })).toThrow(/"redshift" is neither a theta column/);
    expect(() => rec.canonicalRows({ theta: new Float32Array(P), n: 1, known: { nope: 1 } })).toThrow(/known.nope/);
    expect(() => rec.canonicalRows({ theta: new Float32Array(P + 1), n: 1 })).toThrow(/expected 1 x/);
    const bad = Float32Array.from(theta.subarray(0, 4 * P));
    const i25 = rec.thetaColumns.indexOf('sfh_t25');
    const i50 = rec.thetaColumns.indexOf('sfh_t50');
    [bad[P + i25], bad[P + i50]] = [0.6, 0.3]; // draw 1: t25 > t50
    bad[2 * P] = NaN; // draw 2: NaN redshift
    const r = await rec.reconstruct({ theta: bad, n: 4 }, { sed: { maxSpectra: 4 }, sfh: { nTimes: 8 } });
    expect(r.invalid.map((d) => d.index)).toEqual([1, 2]);
    expect(r.invalid[0].reason).toMatch(/t25 < t50 < t75/);
    const B = rec.bandNames.length;
    expect(Array.from(r.bands.fluxesNJy.subarray(B, 3 * B)).every(Number.isNaN)).toBe(true);
    expect(Number.isNaN(r.bands.derived[SYNTH_DERIVED_W])).toBe(true);
    expect(r.sed!.drawIndices).toEqual([0, 3]);
    expect(r.sfh!.drawIndices).toEqual([0, 3]);
    const q = columnQuantiles(r.bands.fluxesNJy, [0, 3], B);
    expect(Array.from(r.bands.median)).toEqual(Array.from(q.median));
  });
});

describe('spectra of the draws (CPU)', () => {
  it('identical draws: the summary is the forward model spectrum, and its band fluxes are the GPU ones', async () => {
    const n = 5;
    const one = new Float32Array(n * P);
    for (let i = 0; i < n; i++) one.set(theta.subarray(7 * P, 8 * P), i * P);
    const r = await rec.reconstruct({ theta: one, n }, { sed: { keepDraws: true }, sfh: false });
    const sed = r.sed!;
    expect(sed.singleRedshift).toBe(true);
    const canon = rec.canonicalRows({ theta: one.subarray(0, P), n: 1 }).canon;
    const p = rec.model.parseGalaxy(fromCanonicalRow(canon, config.sfh));
    const { lnu } = rec.model.restFrameSpectrum(p);
    const { fnuNJy } = rec.model.observedFnuNJy(p, lnu);
    expect(sed.redshiftRef).toBe(p.redshift);
    expect(Array.from(sed.rest.median)).toEqual(Array.from(lnu));
    expect(Array.from(sed.rest.p16)).toEqual(Array.from(lnu));
    expect(Array.from(sed.observed.median)).toEqual(Array.from(fnuNJy));
    expect(Array.from(sed.observed.p84)).toEqual(Array.from(fnuNJy));
    const lam = rec.model.data.grid.wavelengthAA;
    expect(sed.observed.wavelengthAA[100]).toBeCloseTo(lam[100] * (1 + p.redshift), 6);
    expect(sed.observed.spectra!.length).toBe(n * lam.length);
    // Through the filters: the GPU band fluxes (f32 synthesis vs float64, rel 1e-3 as above).
    const W = bandWeightMatrix(rec.model.data.filters, lam, p.redshift);
    const B = W.nFilters;
    const fromSed = new Float64Array(B);
    for (let b = 0; b < B; b++) for (let l = 0; l < W.nLambda; l++) fromSed[b] += W.matrix[b * W.nLambda + l] * sed.observed.median[l];
    expect(worstRel(r.bands.median, fromSed, B).rel).toBeLessThan(1e-3);
  });

  it('varying draws: 16 <= 50 <= 84 % everywhere, a strided subset of maxSpectra draws, interpolated onto the median redshift', () => {
    const r = rec.spectra({ theta, n: M }, { maxSpectra: 12 });
    expect(r.drawIndices).toEqual([0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44]);
    expect(r.singleRedshift).toBe(false);
    for (const s of [r.observed, r.rest]) {
      let finite = 0;
      for (let l = 0; l < s.median.length; l++) {
        if (!Number.isFinite(s.median[l])) continue;
        finite++;
        expect(s.p16[l]).toBeLessThanOrEqual(s.median[l]);
        expect(s.median[l]).toBeLessThanOrEqual(s.p84[l]);
      }
      expect(finite).toBeGreaterThan(s.median.length / 2);
    }
    const zs = r.drawIndices.map((i) => theta[i * P + rec.thetaColumns.indexOf('redshift')]).sort((a, b) => a - b);
    expect(r.redshiftRef).toBeCloseTo((zs[5] + zs[6]) / 2, 6);
    expect(r.observed.unit).toBe('nJy');
    expect(r.rest.unit).toBe('erg/s/Hz');
  });
});

describe('SFH curves of the draws', () => {
  it('integrate to the formed mass and average to the synthesis SFR over 100 Myr', async () => {
    const n = 16;
    const draws = { theta: theta.subarray(0, n * P), n };
    const bands = await rec.bandFluxes(draws);
    const tUniv = rec.sfh(draws, { nTimes: 2 }).ageOfUniverseYr;
    const tMax = Math.max(...tUniv);
    // Each draw on a grid from 0 to its own age of the universe (where its SFR stops), 20000 trapezoids:
    // what is left is the quadrature error of a smooth curve, rel 1e-4.
    const nT = 20001;
    for (let k = 0; k < n; k++) {
      const dt = tUniv[k] / (nT - 1);
      const one = rec.sfh({ theta: draws.theta.subarray(k * P, (k + 1) * P), n: 1 }, { lookbackYr: Float64Array.from({ length: nT }, (_, j) => dt * j), keepDraws: true });
      const sfr = one.sfrMsunPerYr!;
      let mass = 0;
      for (let j = 0; j + 1 < nT; j++) mass += 0.5 * dt * (sfr[j] + sfr[j + 1]);
      expect(Math.abs(mass / one.massFormedMsun[0] - 1), `draw ${k}`).toBeLessThan(1e-4);
      expect(one.massFormedMsun[0] / 10 ** draws.theta[k * P + rec.thetaColumns.indexOf('log10_mass_formed')] - 1).toBeCloseTo(0, 12);
    }
    // SFR averaged over the last 100 Myr against the GPU's sfr100 (f32, rel 1e-3 as the synthesis tests).
    const t100 = Float64Array.from({ length: 2001 }, (_, k) => (1e8 * k) / 2000);
    const recent = rec.sfh(draws, { lookbackYr: t100, keepDraws: true });
    const k100 = SYNTH_DERIVED_COLUMNS.indexOf('sfr100_msun_yr');
    for (let k = 0; k < n; k++) {
      let m = 0;
      for (let j = 0; j < 2000; j++) m += 0.5 * 5e4 * (recent.sfrMsunPerYr![k * 2001 + j] + recent.sfrMsunPerYr![k * 2001 + j + 1]);
      const gpu = bands.derived[k * SYNTH_DERIVED_W + k100];
      expect(Math.abs(m / 1e8 - gpu), `draw ${k}: ${m / 1e8} vs ${gpu}`).toBeLessThanOrEqual(2e-3 * Math.abs(gpu) + 1e-30);
    }
    // Default lookback axis and quantiles.
    const def = rec.sfh(draws);
    expect(def.lookbackYr.length).toBe(256);
    expect(def.lookbackYr[255]).toBeCloseTo(tMax, -2);
    for (let j = 0; j < 256; j++) {
      expect(def.p16[j]).toBeLessThanOrEqual(def.median[j]);
      expect(def.median[j]).toBeLessThanOrEqual(def.p84[j]);
    }
  });
});

describe('helpers', () => {
  it('pivot wavelength of a top-hat filter and numpy-style quantiles', () => {
    const f = { name: 't', wavelengthAA: Float64Array.from([1000, 1000.001, 2999.999, 3000]), throughput: Float64Array.from([0, 1, 1, 0]), source: '' };
    // Top hat on [a, b]: sqrt((b^2 - a^2) / 2 / ln(b / a)).
    expect(pivotWavelengthAA(f)).toBeCloseTo(Math.sqrt((3000 ** 2 - 1000 ** 2) / 2 / Math.log(3)), 2);
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantileSorted([1, 2, 3, 4], 0.16)).toBeCloseTo(1.48, 12);
    expect(Number.isNaN(quantileSorted([], 0.5))).toBe(true);
  });
});
