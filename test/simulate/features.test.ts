import { describe, expect, it } from 'vitest';
import { MAG_PER_LN, magFromFluxNJy } from '../../src/simulate/empiricalNoise.js';
import {
  LUPTON_SOFTENING_FACTOR,
  asinhMag,
  asinhMagErr,
  computeFeatures,
  fluxFromAsinhMag,
  resolveFeatures,
  simulateObservations,
} from '../../src/simulate/features.js';
import { applyNoise, parseFeatureConfig, resolveNoiseWith } from '../../src/simulate/noise.js';

const BANDS = ['F115W', 'F277W', 'F444W'];
const depth = resolveNoiseWith({ type: 'depth', depth5SigmaMag: { F115W: 29, F277W: 29.5, F444W: 29.7 } }, BANDS);

describe('feature config and order', () => {
  it('documents names in order: values, errors, masks, redshift', () => {
    const f = resolveFeatures({ dropoutProb: 0.1, includeRedshift: true }, BANDS, depth);
    expect(f.names).toEqual([
      'F115W_asinh_mag', 'F277W_asinh_mag', 'F444W_asinh_mag',
      'F115W_asinh_mag_err', 'F277W_asinh_mag_err', 'F444W_asinh_mag_err',
      'F115W_mask', 'F277W_mask', 'F444W_mask',
      'redshift',
    ]);
    expect([f.width, f.errorColumn, f.maskColumn, f.redshiftColumn]).toEqual([10, 3, 6, 9]);
    const g = resolveFeatures({ photometry: 'flux', includeErrors: false }, BANDS, depth);
    expect(g.names).toEqual(['F115W_flux', 'F277W_flux', 'F444W_flux']);
    expect(g.includeMask).toBe(false); // no drop-out -> no mask unless asked
    expect(resolveFeatures({ photometry: 'flux', mask: true }, BANDS, depth).names.slice(3)).toEqual(['F115W_flux_err', 'F277W_flux_err', 'F444W_flux_err', 'F115W_mask', 'F277W_mask', 'F444W_mask']);
  });

  it("default softening is Lupton's b = sqrt(2.5 log10 e) sigma_1 from the depths", () => {
    const f = resolveFeatures({}, BANDS, depth);
    expect(LUPTON_SOFTENING_FACTOR).toBeCloseTo(1.0420, 4);
    for (let b = 0; b < 3; b++) expect(f.softeningNJy[b]).toBeCloseTo(LUPTON_SOFTENING_FACTOR * depth.sigma1NJy[b], 12);
    expect(Array.from(resolveFeatures({ softeningNJy: { F115W: 1, F277W: 2, F444W: 3 } }, BANDS, depth).softeningNJy)).toEqual([1, 2, 3]);
  });

  it('rejects bad feature configs, naming the key', () => {
    expect(() => parseFeatureConfig({ photometry: 'mag' })).toThrow(/photometry must be 'asinhMag' or 'flux'/);
    expect(() => parseFeatureConfig({ dropoutProb: 1.5 })).toThrow(/dropoutProb must be a (finite )?number in \[0, 1\]/);
    expect(() => parseFeatureConfig({ dropoutProb: { F115W: -0.5 } })).toThrow(/dropoutProb/);
    expect(() => parseFeatureConfig({ fluxScale: 0 })).toThrow(/fluxScale must be a finite number in \(0, 1e\+30\]/);
    expect(() => parseFeatureConfig({ includeRedshif: true })).toThrow(/includeRedshif/);
    expect(() => resolveFeatures({}, BANDS, resolveNoiseWith({ type: 'none' }, BANDS))).toThrow(/softeningNJy: 'noise' needs a noise model/);
    expect(() => resolveFeatures({ dropoutProb: { F115W: 0.1 } }, BANDS, depth)).toThrow(/features\.dropoutProb: no value for band\(s\) F277W, F444W/);
  });
});

describe('asinh magnitudes (Lupton et al. 1999)', () => {
  const b = LUPTON_SOFTENING_FACTOR * 1.15; // sigma_1 = 1.15 nJy (m5 ~ 29.5)

  it('equal the AB magnitude at high S/N: |mu - m| = (2.5/ln10) b^2/f^2 to leading order', () => {
    for (const snr of [20, 100, 1e3, 1e5]) {
      const f = snr * 1.15;
      const diff = asinhMag(f, b) - magFromFluxNJy(f);
      const lead = MAG_PER_LN * (b / f) ** 2;
      // Next order is O((b/f)^4): within 1 % of the leading term for S/N >= 20.
      expect(Math.abs(Math.abs(diff) - lead)).toBeLessThan(0.01 * lead + 1e-13);
      expect(diff).toBeLessThanOrEqual(0);
      // Stated tolerance: S/N >= 100 -> |mu - m_AB| < 1.2e-4 mag.
      if (snr >= 100) expect(Math.abs(diff)).toBeLessThan(1.2e-4);
      // The error tends to the usual (2.5/ln10) sigma/f: ratio 1/sqrt(1 + 4 b^2/f^2) >= 1 - 2 b^2/f^2.
      expect(Math.abs(asinhMagErr(f, 1.15, b) / ((MAG_PER_LN * 1.15) / f) - 1)).toBeLessThanOrEqual(2 * (b / f) ** 2 + 1e-12);
    }
  });

  it('stay finite and decreasing through zero and negative fluxes, and invert', () => {
    let prev = Infinity;
    for (const f of [-1e6, -300, -10, -1, 0, 1e-3, 1, 10, 1e4, 1e9]) {
      const mu = asinhMag(f, b);
      expect(Number.isFinite(mu)).toBe(true);
      expect(mu).toBeLessThan(prev);
      prev = mu;
      expect(Number.isFinite(asinhMagErr(f, 1.15, b))).toBe(true);
      expect(fluxFromAsinhMag(mu, b)).toBeCloseTo(f, Math.abs(f) > 1e5 ? 0 : 6);
    }
    // mu(0) = 31.4 - 2.5 log10 b; err(0) = (2.5/ln10) sigma / (2b).
    expect(asinhMag(0, b)).toBeCloseTo(31.4 - 2.5 * Math.log10(b), 12);
    expect(asinhMagErr(0, 1.15, b)).toBeCloseTo((MAG_PER_LN * 1.15) / (2 * b), 12);
  });
});

describe('simulated observations: noise, drop-out, masks', () => {
  it('drops each band with its probability, fills masked entries, keeps the fluxes', () => {
    const f = resolveFeatures({ dropoutProb: { F115W: 0, F277W: 0.3, F444W: 1 }, fillValue: -99, includeRedshift: true }, BANDS, depth);
    const N = 20000;
    const truth = Float64Array.from({ length: N * 3 }, (_, k) => 5 + (k % 7));
    const z = Float64Array.from({ length: N }, (_, i) => (i % 100) / 10);
    const sim = simulateObservations(depth, f, truth, { seed: 21, redshift: z });
    // Drop-out acts on the features only: the noisy fluxes are those of applyNoise.
    const ref = applyNoise(depth, truth, { seed: 21 });
    expect(sim.noisyFluxNJy).toEqual(ref.noisyFluxNJy);
    expect(sim.errorNJy).toEqual(ref.sigmaNJy);
    const dropped = [0, 0, 0];
    for (let i = 0; i < N; i++) {
      const row = sim.features.subarray(i * f.width, (i + 1) * f.width);
      for (let b = 0; b < 3; b++) {
        const obs = sim.observed[i * 3 + b];
        expect(row[f.maskColumn + b]).toBe(obs);
        if (!obs) {
          dropped[b]++;
          expect(row[b]).toBe(-99);
          expect(row[f.errorColumn + b]).toBe(-99);
        } else {
          expect(row[b]).toBe(asinhMag(sim.noisyFluxNJy[i * 3 + b], f.softeningNJy[b]));
          expect(row[f.errorColumn + b]).toBe(asinhMagErr(sim.noisyFluxNJy[i * 3 + b], sim.errorNJy[i * 3 + b], f.softeningNJy[b]));
        }
      }
      expect(row[f.redshiftColumn]).toBe(z[i]);
    }
    expect(dropped[0]).toBe(0);
    expect(dropped[2]).toBe(N);
    // Binomial: sd sqrt(p (1 - p) / N) = 0.0032; 5 sd.
    expect(Math.abs(dropped[1] / N - 0.3)).toBeLessThan(5 * Math.sqrt((0.3 * 0.7) / N));
  });

  it('flux features are scaled fluxes; redshift read with a stride from the canonical matrix', () => {
    const f = resolveFeatures({ photometry: 'flux', fluxScale: 1e-3, includeRedshift: true }, BANDS, depth);
    const truth = [100, 200, 300, -4, 5, 6];
    const canonical = Float64Array.from({ length: 24 }, (_, k) => (k % 12 === 0 ? 1.5 + k : -1));
    const sim = simulateObservations(depth, f, truth, { seed: 2, redshift: canonical, redshiftStride: 12, redshiftOffset: 0 });
    for (let k = 0; k < 6; k++) {
      const [i, b] = [Math.floor(k / 3), k % 3];
      expect(sim.features[i * f.width + b]).toBeCloseTo(sim.noisyFluxNJy[k] * 1e-3, 15);
      expect(sim.features[i * f.width + 3 + b]).toBeCloseTo(sim.errorNJy[k] * 1e-3, 15);
    }
    expect([sim.features[f.redshiftColumn], sim.features[f.width + f.redshiftColumn]]).toEqual([1.5, 13.5]);
  });

  it('catalogue features: missing (non-finite) and flagged bands are masked', () => {
    const f = resolveFeatures({ mask: true, fillValue: 0 }, BANDS, depth);
    const flux = [10, NaN, 30, 1, 2, 3];
    const err = [1, 1, 1, 1, Infinity, 1];
    const x = computeFeatures(f, flux, err, { observed: [1, 1, 1, 0, 1, 1] });
    expect(Array.from(x.subarray(f.maskColumn, f.maskColumn + 3))).toEqual([1, 0, 1]);
    expect(Array.from(x.subarray(f.width + f.maskColumn, f.width + f.maskColumn + 3))).toEqual([0, 0, 1]);
    expect(x[1]).toBe(0);
    expect(x[f.width + 5]).toBe(asinhMagErr(3, 1, f.softeningNJy[2]));
    expect(() => computeFeatures(resolveFeatures({ includeRedshift: true }, BANDS, depth), flux, err)).toThrow(/includeRedshift needs a redshift per galaxy/);
  });
});
