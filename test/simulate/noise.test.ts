import { describe, expect, it } from 'vitest';
import { GALAXY_SUBSTREAM, NoiseConfigSchema, applyNoise, elementDraws, galaxyDraw, parseNoiseConfig, resolveNoise, resolveNoiseWith, sigmaFromDepth5NJy } from '../../src/simulate/noise.js';
import { PhiloxStream, RngPurpose } from '../../src/simulate/rng.js';

const BANDS = ['F115W', 'F277W', 'F444W'];

/** Mean and (unbiased) variance of the pulls z = (noisy - true) / sigma. */
function pullMoments(noisy: Float64Array, truth: ArrayLike<number>, sigma: Float64Array): { mean: number; variance: number; n: number } {
  const n = noisy.length;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const z = (noisy[i] - truth[i]) / sigma[i];
    s += z;
    s2 += z * z;
  }
  const mean = s / n;
  return { mean, variance: (s2 - n * mean * mean) / (n - 1), n };
}

/**
 * 5-sigma bounds from the sample size: the mean of n unit normals has sd 1/sqrt(n); the sample
 * variance has sd sqrt(2/(n-1)) (normal kurtosis). A false alarm needs a > 5-sigma fluctuation (6e-7).
 */
function expectStandardNormal(m: { mean: number; variance: number; n: number }, label: string): void {
  expect(Math.abs(m.mean), `${label}: mean ${m.mean}`).toBeLessThan(5 / Math.sqrt(m.n));
  expect(Math.abs(m.variance - 1), `${label}: variance ${m.variance}`).toBeLessThan(5 * Math.sqrt(2 / (m.n - 1)));
}

describe('noise config', () => {
  it('accepts the depth model and fills defaults', () => {
    const c = parseNoiseConfig({ type: 'depth', depth5SigmaMag: 29 });
    expect(c).toEqual({ type: 'depth', depth5SigmaMag: 29, errorFloorFrac: 0, depthScatterMag: 0, depthScatterMode: 'galaxy' });
    expect(NoiseConfigSchema.safeParse({ type: 'none' }).success).toBe(true);
  });

  it('rejects bad keys and ranges, naming them', () => {
    expect(() => parseNoiseConfig({ type: 'depth', depth5SigmaMag: 99 })).toThrow(/depth5SigmaMag must be a finite number in \[0, 50\]/);
    expect(() => parseNoiseConfig({ type: 'depth', depth5SigmaMag: 29, errorFloorFrac: -0.1 })).toThrow(/errorFloorFrac must be a finite number in \[0, 1\]/);
    expect(() => parseNoiseConfig({ type: 'depth', depth5SigmaMag: 29, depthScatterMode: 'pixel' })).toThrow(/depthScatterMode must be 'galaxy' or 'band'/);
    expect(() => parseNoiseConfig({ type: 'depth', depth5SigmaMag: 29, depthSatter: 0.1 })).toThrow(/depthSatter/);
    expect(() => parseNoiseConfig({ type: 'gaussian' })).toThrow(/type must be one of 'none', 'depth', 'empirical'/);
    expect(() => parseNoiseConfig({ type: 'empirical' })).toThrow(/exactly one of file .* or model/);
    expect(() => parseNoiseConfig({ type: 'empirical', file: 'a.json', errorFloorFrac: 2 })).toThrow(/errorFloorFrac/);
  });

  it('per-band depths must name exactly the model bands', () => {
    expect(() => resolveNoiseWith({ type: 'depth', depth5SigmaMag: { F115W: 29, F277W: 29 } }, BANDS)).toThrow(/no value for band\(s\) F444W/);
    expect(() => resolveNoiseWith({ type: 'depth', depth5SigmaMag: { F115W: 29, F277W: 29, F444W: 29, F999W: 1 } }, BANDS)).toThrow(/unknown band\(s\) F999W/);
    const r = resolveNoiseWith({ type: 'depth', depth5SigmaMag: { F444W: 30, F115W: 29, F277W: 29.5 } }, BANDS);
    expect(Array.from(r.depth5SigmaMag!)).toEqual([29, 29.5, 30]);
  });

  it('an empirical file that is missing is an error naming it', async () => {
    await expect(resolveNoise({ type: 'empirical', file: 'no/such/model.json' }, BANDS, { baseDir: '/nonexistent' })).rejects.toThrow(/no\/such\/model\.json: cannot read/);
  });
});

describe('depth noise model (float64 reference)', () => {
  it('5-sigma depth -> 1-sigma error: 10^(-0.4 (m5 - 31.4)) / 5 nJy', () => {
    // m5 = 31.4 is 1 nJy at 5 sigma; each 2.5 mag is a factor 10.
    expect(sigmaFromDepth5NJy(31.4)).toBeCloseTo(0.2, 14);
    expect(sigmaFromDepth5NJy(28.9)).toBeCloseTo(2, 13);
    // JADES-like depth 29.5: 5.75 nJy at 5 sigma.
    expect(sigmaFromDepth5NJy(29.5)).toBeCloseTo(Math.pow(10, 0.76) / 5, 12);
  });

  it('pulls are standard normal, and the floor adds in quadrature', () => {
    const r = resolveNoiseWith({ type: 'depth', depth5SigmaMag: { F115W: 28.5, F277W: 29, F444W: 29.5 }, errorFloorFrac: 0.05 }, BANDS);
    const N = 20000;
    const truth = Float64Array.from({ length: N * 3 }, (_, k) => [0, 3, 300, -2, 1e4][k % 5]);
    const { noisyFluxNJy, sigmaNJy } = applyNoise(r, truth, { seed: 7 });
    for (let k = 0; k < 30; k++) {
      const sd = r.sigma1NJy[k % 3];
      expect(sigmaNJy[k]).toBeCloseTo(Math.sqrt(sd * sd + (0.05 * truth[k]) ** 2), 10);
    }
    expectStandardNormal(pullMoments(noisyFluxNJy, truth, sigmaNJy), 'depth pulls');
  });

  it('per-galaxy depth scatter: one offset shared by all bands, sd = depthScatterMag', () => {
    const r = resolveNoiseWith({ type: 'depth', depth5SigmaMag: 29, depthScatterMag: 0.3 }, BANDS);
    const N = 20000;
    const truth = new Float64Array(N * 3).fill(10);
    const { noisyFluxNJy, sigmaNJy } = applyNoise(r, truth, { seed: 3 });
    const dm = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      // The depth offset implied by the sigma: m5' - m5 = -2.5 log10(sigma / sigma0).
      dm[i] = -2.5 * Math.log10(sigmaNJy[i * 3] / r.sigma1NJy[0]);
      for (let b = 1; b < 3; b++) expect(-2.5 * Math.log10(sigmaNJy[i * 3 + b] / r.sigma1NJy[b])).toBeCloseTo(dm[i], 10);
      expect(dm[i]).toBeCloseTo(0.3 * galaxyDraw(3, i), 10);
    }
    const m = pullMoments(dm.map((v) => v / 0.3), new Float64Array(N), new Float64Array(N).fill(1));
    expectStandardNormal(m, 'depth offsets / 0.3');
    expectStandardNormal(pullMoments(noisyFluxNJy, truth, sigmaNJy), 'pulls with depth scatter');
  });

  it("per-band depth scatter ('band') is independent between bands", () => {
    const r = resolveNoiseWith({ type: 'depth', depth5SigmaMag: 29, depthScatterMag: 0.2, depthScatterMode: 'band' }, BANDS);
    const N = 20000;
    const { sigmaNJy } = applyNoise(r, new Float64Array(N * 3).fill(5), { seed: 11 });
    let sxy = 0;
    for (let i = 0; i < N; i++) {
      const a = -2.5 * Math.log10(sigmaNJy[i * 3] / r.sigma1NJy[0]) / 0.2;
      const b = -2.5 * Math.log10(sigmaNJy[i * 3 + 1] / r.sigma1NJy[1]) / 0.2;
      expect(a).toBeCloseTo(elementDraws(11, i, 0).nAux, 10);
      sxy += a * b;
    }
    // Correlation of two independent unit normals: sd 1/sqrt(N).
    expect(Math.abs(sxy / N)).toBeLessThan(5 / Math.sqrt(N));
  });

  it("type 'none' returns the true fluxes with zero errors", () => {
    const r = resolveNoiseWith({ type: 'none' }, BANDS);
    const t = [1, -2, 3, 4, 5, 6];
    const { noisyFluxNJy, sigmaNJy } = applyNoise(r, t, { seed: 1 });
    expect(Array.from(noisyFluxNJy)).toEqual(t);
    expect(Array.from(sigmaNJy)).toEqual([0, 0, 0, 0, 0, 0]);
  });
});

describe('noise random streams', () => {
  it('follow (seed, purpose = noise, index = global row, sub = band) and do not depend on chunking', () => {
    const s = new PhiloxStream(5, RngPurpose.noise, 12345, 2);
    const a = s.normal();
    const b = s.normal();
    expect(elementDraws(5, 12345, 2)).toEqual({ nFlux: a, nAux: b });
    expect(galaxyDraw(5, 9)).toBe(new PhiloxStream(5, RngPurpose.noise, 9, GALAXY_SUBSTREAM).normal());
    const r = resolveNoiseWith({ type: 'depth', depth5SigmaMag: 29, depthScatterMag: 0.1 }, BANDS);
    const truth = Float64Array.from({ length: 30 }, (_, k) => k);
    const whole = applyNoise(r, truth, { seed: 9, indexOffset: 100 });
    const p1 = applyNoise(r, truth.subarray(0, 12), { seed: 9, indexOffset: 100 });
    const p2 = applyNoise(r, truth.subarray(12), { seed: 9, indexOffset: 104 });
    expect(Array.from(whole.noisyFluxNJy)).toEqual([...p1.noisyFluxNJy, ...p2.noisyFluxNJy]);
    const other = applyNoise(r, truth, { seed: 10, indexOffset: 100 });
    expect(other.noisyFluxNJy[0]).not.toBe(whole.noisyFluxNJy[0]);
  });
});
