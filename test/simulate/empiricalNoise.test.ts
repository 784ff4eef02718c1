import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AB_ZP_NJY,
  EMPIRICAL_NOISE_FORMAT,
  MAG_PER_LN,
  type EmpiricalNoiseModel,
  empiricalLnQuantilesAt,
  empiricalSigmaNJy,
  empiricalTables,
  fitEmpiricalNoiseModel,
  fluxNJyFromMag,
  loadEmpiricalNoiseModel,
  parseEmpiricalNoiseModel,
  percentileSorted,
  saveEmpiricalNoiseModel,
} from '../../src/simulate/empiricalNoise.js';
import { applyNoise, resolveNoise, resolveNoiseWith } from '../../src/simulate/noise.js';
import { PhiloxStream, RngPurpose } from '../../src/simulate/rng.js';

const FIX = join(import.meta.dirname, '../fixtures/noise');
const tmp = mkdtempSync(join(tmpdir(), 'synference-empnoise-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Synthetic error law: background sigma0 plus a 3 % floor, times a log-normal scatter (ln sd 0.15).
const SIGMA0 = 4;
const FLOOR = 0.03;
const LN_SCATTER = 0.15;
const lawSigma = (f: number) => Math.sqrt(SIGMA0 * SIGMA0 + (FLOOR * f) ** 2);

/** A synthetic catalogue: magnitudes uniform in [20, 31], errors from the law with scatter. */
function syntheticCatalogue(n: number, seed: number): { flux: Float64Array; err: Float64Array } {
  const flux = new Float64Array(n * 2);
  const err = new Float64Array(n * 2);
  for (let i = 0; i < n; i++) {
    const s = new PhiloxStream(seed, RngPurpose.user, i);
    for (let b = 0; b < 2; b++) {
      const f = fluxNJyFromMag(20 + 11 * s.uniform());
      flux[i * 2 + b] = f;
      err[i * 2 + b] = lawSigma(f) * Math.exp(LN_SCATTER * s.normal());
    }
  }
  // Unusable entries the fit must skip.
  flux[0] = -3;
  err[1] = NaN;
  flux[2] = 0;
  return { flux, err };
}

describe('empirical noise model: fit', () => {
  const N = 40000;
  const cat = syntheticCatalogue(N, 1);
  const model = fitEmpiricalNoiseModel(['A', 'B'], cat.flux, cat.err, { binWidthMag: 0.25, minCount: 20, source: { catalogue: 'synthetic' } });

  it('recovers the median and the 16/84 spread of a known error law', () => {
    expect(model.format).toBe(EMPIRICAL_NOISE_FORMAT);
    for (const band of model.bands) {
      expect(band.magNodes.length).toBeGreaterThan(40);
      for (let k = 0; k < band.magNodes.length; k++) {
        const m = band.magNodes[k];
        const f = fluxNJyFromMag(m);
        const want = lawSigma(f) / f;
        // ~900 entries per bin: the sample median of ln e has sd ~ 1.25 * 0.16 / sqrt(900) = 0.007,
        // and the law's curvature within a 0.25-mag bin shifts it by < 0.01: |ln ratio| < 0.05.
        expect(Math.abs(Math.log(band.p50[k] / want)), `${band.band} node ${m}`).toBeLessThan(0.05);
        // The 16/84 percentiles sit at +-1 sd of ln e: the scatter 0.15, widened by the law's slope
        // across the bin (<= 0.92/mag * 0.25/sqrt(12) = 0.066 in quadrature -> 0.164, bias <= 0.014);
        // a sample 84th percentile of ~900 has sd sqrt(0.16 * 0.84 / 900) / phi(1) * 0.15 = 0.008,
        // and we look at ~90 bins: 6 sd + bias -> |err| < 0.065.
        expect(Math.abs(Math.log(band.p84[k] / band.p50[k]) - LN_SCATTER), `${band.band} node ${m} upper`).toBeLessThan(0.065);
        expect(Math.abs(Math.log(band.p50[k] / band.p16[k]) - LN_SCATTER), `${band.band} node ${m} lower`).toBeLessThan(0.065);
      }
    }
  });

  it('evaluates between bins and extrapolates beyond them physically', () => {
    const t = empiricalTables(model, ['A'])[0];
    const nodes = t.magNodes;
    // Between nodes: the median error follows the law to the same accuracy.
    for (const m of [21.13, 24.77, 27.31, 29.9]) {
      const f = fluxNJyFromMag(m);
      expect(Math.abs(Math.log(empiricalSigmaNJy(t, f, 0) / lawSigma(f)))).toBeLessThan(0.05);
    }
    // Fainter than the data (and f <= 0): constant flux error (the law tends to sigma0 = 4 nJy).
    const faint = empiricalSigmaNJy(t, fluxNJyFromMag(nodes[nodes.length - 1]), 0);
    for (const f of [fluxNJyFromMag(33), 1e-3, 0, -50]) expect(empiricalSigmaNJy(t, f, 0)).toBe(faint);
    expect(Math.abs(Math.log(faint / SIGMA0))).toBeLessThan(0.06);
    // Brighter than the data: constant fractional error (the law tends to the 3 % floor).
    const rel = empiricalSigmaNJy(t, fluxNJyFromMag(nodes[0]), 0) / fluxNJyFromMag(nodes[0]);
    for (const m of [15, 18, 19.5]) expect(empiricalSigmaNJy(t, fluxNJyFromMag(m), 0) / fluxNJyFromMag(m)).toBeCloseTo(rel, 12);
    expect(Math.abs(Math.log(rel / FLOOR))).toBeLessThan(0.06);
  });

  it('sampling reproduces the fitted percentiles', () => {
    const noise = resolveNoiseWith({ type: 'empirical', model }, ['A', 'B']);
    const t = noise.tables![0];
    const m = 27.4;
    const f = fluxNJyFromMag(m);
    const n = 20000;
    const { sigmaNJy } = applyNoise(noise, new Float64Array(2 * n).fill(f), { seed: 4 });
    const [l16, l50, l84] = empiricalLnQuantilesAt(t, m);
    const sig = Float64Array.from({ length: n }, (_, i) => sigmaNJy[2 * i]).sort();
    // Fractions below the fitted percentiles: binomial sd sqrt(p (1 - p) / n) <= 0.0036; 5 sd.
    const frac = (x: number) => sig.findIndex((v) => v > x) / n;
    expect(Math.abs(frac(Math.exp(l16) * f) - 0.16)).toBeLessThan(5 * Math.sqrt(0.16 * 0.84 / n));
    expect(Math.abs(frac(Math.exp(l50) * f) - 0.5)).toBeLessThan(5 * Math.sqrt(0.25 / n));
    expect(Math.abs(frac(Math.exp(l84) * f) - 0.84)).toBeLessThan(5 * Math.sqrt(0.16 * 0.84 / n));
  });

  it("errorUnit 'mag' stores (2.5 / ln 10) x the relative error and evaluates identically", () => {
    const magModel = fitEmpiricalNoiseModel(['A', 'B'], cat.flux, cat.err, { binWidthMag: 0.25, minCount: 20, errorUnit: 'mag' });
    expect(magModel.bands[0].p50[3] / model.bands[0].p50[3]).toBeCloseTo(MAG_PER_LN, 12);
    const a = empiricalTables(model, ['B'])[0];
    const b = empiricalTables(magModel, ['B'])[0];
    for (const f of [-1, 10, 300, 1e5]) expect(empiricalSigmaNJy(b, f, 0.7)).toBeCloseTo(empiricalSigmaNJy(a, f, 0.7), 10);
  });

  it('rejects a band without usable bins, naming it', () => {
    const flux = new Float64Array([10, -1, 10.1, -1, 10.2, 5]);
    const err = new Float64Array([1, 1, 1, 1, 1, 1]);
    expect(() => fitEmpiricalNoiseModel(['X', 'Y'], flux, err, { minCount: 2 })).toThrow(/band Y has no magnitude bin with at least minCount = 2 entries/);
  });
});

describe('empirical noise model: JSON', () => {
  it('round-trips through a file and resolves from a relative path', async () => {
    const cat = syntheticCatalogue(3000, 2);
    const model = fitEmpiricalNoiseModel(['F200W', 'F444W'], cat.flux, cat.err, { binWidthMag: 1 });
    await saveEmpiricalNoiseModel(join(tmp, 'fit.json'), model);
    expect(await loadEmpiricalNoiseModel(join(tmp, 'fit.json'))).toEqual(model);
    const noise = await resolveNoise({ type: 'empirical', file: 'fit.json' }, ['F444W', 'F200W'], { baseDir: tmp });
    expect(noise.tables![0].magNodes).toEqual(Float64Array.from(model.bands[1].magNodes));
  });

  it('loads the fixture; interpolates ln q linearly in magnitude', async () => {
    const m = await loadEmpiricalNoiseModel(join(FIX, 'empirical_small.json'));
    const t = empiricalTables(m, ['F200W'])[0];
    // Halfway between nodes 26 (p50 0.05 mag) and 28 (0.2 mag): geometric mean 0.1 mag.
    const [, l50] = empiricalLnQuantilesAt(t, 27);
    expect(Math.exp(l50) * MAG_PER_LN).toBeCloseTo(0.1, 12);
    expect(() => empiricalTables(m, ['F090W'])).toThrow(/no band 'F090W' \(it has F200W, F444W\)/);
  });

  it('rejects malformed fitted-model JSON with a message naming the key', async () => {
    await expect(loadEmpiricalNoiseModel(join(FIX, 'malformed_unsorted.json'))).rejects.toThrow(/bands\[0\]\.magNodes\[2\]: magNodes must be strictly increasing/);
    await expect(loadEmpiricalNoiseModel(join(FIX, 'malformed_lengths.json'))).rejects.toThrow(/bands\[0\]\.p16: p16 must have 3 entries \(one per magNodes entry\), got 2/);
    await expect(loadEmpiricalNoiseModel(join(FIX, 'malformed_truncated.json'))).rejects.toThrow(/malformed_truncated\.json: not valid JSON/);
    const good = JSON.parse(JSON.stringify(await loadEmpiricalNoiseModel(join(FIX, 'empirical_small.json')))) as EmpiricalNoiseModel;
    const bad = (mut: (m: any) => void) => {
      const m = structuredClone(good) as any;
      mut(m);
      return () => parseEmpiricalNoiseModel(m);
    };
    expect(bad((m) => (m.format = 'other'))).toThrow(/format: format must be 'synference-webgpu\/empirical-noise'/);
    expect(bad((m) => (m.version = 2))).toThrow(/version: version must be 1/);
    expect(bad((m) => (m.errorUnit = 'flux'))).toThrow(/errorUnit: errorUnit must be 'relative' or 'mag'/);
    expect(bad((m) => (m.bands[0].p16[1] = -0.1))).toThrow(/bands\[0\]\.p16\[1\]: p16 entries must be > 0/);
    expect(bad((m) => (m.bands[0].p84[2] = 0.1))).toThrow(/bands\[0\]\.p50\[2\]: percentiles must satisfy p16 <= p50 <= p84/);
    expect(bad((m) => (m.bands[1].band = 'F200W'))).toThrow(/bands\[1\]\.band: band 'F200W' appears twice/);
    expect(bad((m) => (m.bands[0].magNodes[0] = 'x'))).toThrow(/bands\[0\]\.magNodes\[0\]: magNodes entries must be finite numbers/);
    expect(bad((m) => (m.bands = []))).toThrow(/bands: bands must have at least 1 entry/);
    expect(bad((m) => (m.extra = 1))).toThrow(/Unrecognized key\(s\) in object: 'extra'/);
    expect(bad((m) => delete m.bands[0].p50)).toThrow(/bands\[0\]\.p50: p50 is required/);
  });

  it('percentiles follow numpy (linear between order statistics)', () => {
    const s = Float64Array.from([1, 2, 3, 4, 10]);
    expect(percentileSorted(s, 50)).toBe(3);
    expect(percentileSorted(s, 16)).toBeCloseTo(1.64, 12);
    expect(percentileSorted(s, 84)).toBeCloseTo(4 + 0.36 * 6, 12);
  });
});

// Keep the zero point in sight: the fit bins in AB magnitudes of nJy fluxes.
it('magnitudes use the nJy AB zero point 31.4', () => {
  expect(AB_ZP_NJY).toBe(31.4);
  expect(fluxNJyFromMag(31.4)).toBe(1);
});
