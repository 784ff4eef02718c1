import { describe, expect, it } from 'vitest';
import { log10ZBinEdges, logNormalMetallicityWeights, singleMetallicityWeights } from '../../src/physics/metallicity.js';
import { erf } from '../../src/physics/sfh.js';

// BC03's seven metallicities (data/README.md): irregular in both Z and log Z.
const BC03_Z = [0.0001, 0.0004, 0.004, 0.008, 0.02, 0.05, 0.1];
const sum = (w: ArrayLike<number>): number => Array.from(w).reduce((s, v) => s + v, 0);

describe('single-metallicity cloud-in-cell weights', () => {
  it('log10Z (default): sum to 1, two neighbours, reproduce log10 Z inside the grid', () => {
    for (const log10Z of [-4, -3.9, -3.4, -2.2, -1.7, -1.3, -1.05, -1]) {
      const w = singleMetallicityWeights(BC03_Z, 10 ** log10Z);
      // Two products and a sum: a few ulps.
      expect(Math.abs(sum(w) - 1)).toBeLessThan(1e-15);
      expect(w.filter((v) => v > 0).length).toBeLessThanOrEqual(2);
      const mean = BC03_Z.reduce((s, z, i) => s + w[i] * Math.log10(z), 0);
      expect(Math.abs(mean - log10Z)).toBeLessThan(1e-14);
    }
  });

  it('linearZ (Synthesizer): reproduces Z itself, which differs from the log10Z split', () => {
    const Z = 0.011;
    const w = singleMetallicityWeights(BC03_Z, Z, 'linearZ');
    expect(Math.abs(sum(w) - 1)).toBeLessThan(1e-15);
    expect(Math.abs(BC03_Z.reduce((s, z, i) => s + w[i] * z, 0) - Z)).toBeLessThan(1e-17);
    // Between 0.008 and 0.02: linear weight of 0.02 is 0.25, in log it is log(11/8)/log(2.5) = 0.3475.
    expect(w[4]).toBeCloseTo(0.25, 15);
    expect(singleMetallicityWeights(BC03_Z, Z)[4]).toBeCloseTo(Math.log(11 / 8) / Math.log(2.5), 14);
  });

  it('clamps outside the grid (and Z <= 0 counts as below it)', () => {
    for (const mode of ['log10Z', 'linearZ'] as const) {
      expect(Array.from(singleMetallicityWeights(BC03_Z, 1e-6, mode))).toEqual([1, 0, 0, 0, 0, 0, 0]);
      expect(Array.from(singleMetallicityWeights(BC03_Z, 0, mode))).toEqual([1, 0, 0, 0, 0, 0, 0]);
      expect(Array.from(singleMetallicityWeights(BC03_Z, 0.3, mode))).toEqual([0, 0, 0, 0, 0, 0, 1]);
      expect(Array.from(singleMetallicityWeights(BC03_Z, 0.02, mode))).toEqual([0, 0, 0, 0, 1, 0, 0]);
    }
    expect(() => singleMetallicityWeights(BC03_Z, NaN)).toThrow(/NaN/);
    expect(() => singleMetallicityWeights([0.02, 0.01], 0.01)).toThrow(/increase strictly/);
  });
});

describe('log-normal metallicity distribution', () => {
  it('bin edges are the log10 midpoints, open at both ends', () => {
    const e = log10ZBinEdges(BC03_Z);
    expect(e[0]).toBe(-Infinity);
    expect(e[7]).toBe(Infinity);
    expect(e[1]).toBeCloseTo((-4 + Math.log10(0.0004)) / 2, 15);
  });

  it('weights are the normal integrals over the bins and sum to 1', () => {
    const mu = -2.3;
    const sigma = 0.4;
    const w = logNormalMetallicityWeights(BC03_Z, mu, sigma);
    expect(Math.abs(sum(w) - 1)).toBeLessThan(1e-15);
    const e = log10ZBinEdges(BC03_Z);
    // Independent route: Φ differences from erf (no tail issue at these few sigma). erf: 1e-15 abs.
    const Phi = (x: number): number => (x === Infinity ? 1 : x === -Infinity ? 0 : 0.5 * (1 + erf((x - mu) / (sigma * Math.SQRT2))));
    for (let i = 0; i < 7; i++) expect(Math.abs(w[i] - (Phi(e[i + 1]) - Phi(e[i])))).toBeLessThan(3e-15);
  });

  it('clamps the tails onto the edge metallicities, narrows to the nearest node as sigma -> 0', () => {
    // Mean far below the grid: everything in the first bin, to underflow of the others.
    const low = logNormalMetallicityWeights(BC03_Z, -9, 0.1);
    expect(low[0]).toBe(1);
    expect(sum(low.subarray(1))).toBe(0);
    const high = logNormalMetallicityWeights(BC03_Z, 3, 0.5);
    expect(high[6]).toBeCloseTo(1, 15);
    // sigma = 0 and sigma tiny agree: the bin holding the mean (-2.2 lies in the 0.008 bin's range).
    const delta = logNormalMetallicityWeights(BC03_Z, -2.2, 0);
    expect(Array.from(delta)).toEqual([0, 0, 0, 1, 0, 0, 0]);
    const tiny = logNormalMetallicityWeights(BC03_Z, -2.2, 1e-6);
    expect(tiny[3]).toBeCloseTo(1, 15);
    // A very wide distribution (sigma = 100 dex): the density is flat, 1/(σ√(2π)), across the inner
    // bins to (Δ/σ)² ~ 1e-4, and the half-open outer bins collect the rest.
    const sigma = 100;
    const wide = logNormalMetallicityWeights(BC03_Z, -2.5, sigma);
    const e = log10ZBinEdges(BC03_Z);
    const inner = sum(wide.subarray(1, 6));
    expect(inner / ((e[6] - e[1]) / (sigma * Math.sqrt(2 * Math.PI)))).toBeCloseTo(1, 3);
    expect(wide[0] + wide[6]).toBeCloseTo(1 - inner, 15);
    expect(() => logNormalMetallicityWeights(BC03_Z, -2, -1)).toThrow(/sigmaDex/);
  });
});
