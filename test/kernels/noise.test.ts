import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NoiseKernel, noiseProgram } from '../../kernels/noise.js';
import { fitEmpiricalNoiseModel, fluxNJyFromMag, loadEmpiricalNoiseModel } from '../../src/simulate/empiricalNoise.js';
import { type ResolvedFeatures, resolveFeatures, simulateObservations } from '../../src/simulate/features.js';
import { type NoiseConfigInput, type ResolvedNoise, resolveNoiseWith } from '../../src/simulate/noise.js';
import { PhiloxStream, RngPurpose } from '../../src/simulate/rng.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();

const BANDS14 = ['F435W', 'F606W', 'F775W', 'F814W', 'F850LP', 'F090W', 'F115W', 'F150W', 'F200W', 'F277W', 'F335M', 'F356W', 'F410M', 'F444W'];
const DEPTHS14 = Object.fromEntries(BANDS14.map((b, k) => [b, 28.6 + 0.1 * k]));

/** Noiseless fluxes spanning negative, zero, faint and bright (f32-representable). */
function trueFluxes(n: number, nBands: number, seed: number): Float32Array {
  const out = new Float32Array(n * nBands);
  for (let i = 0; i < n; i++) {
    const s = new PhiloxStream(seed, RngPurpose.user, i);
    for (let b = 0; b < nBands; b++) {
      const u = s.uniform();
      out[i * nBands + b] = u < 0.1 ? -20 * s.uniform() : u < 0.15 ? 0 : Math.pow(10, -1 + 6 * s.uniform());
    }
  }
  return out;
}

/**
 * GPU vs the float64 reference on the same Philox draws. Tolerances: the GPU's normal draw and sigma
 * differ from float64 by f32 rounding of log/sqrt/cos/exp (measured ~1e-6 relative on lavapipe; WGSL
 * allows cos/sin an absolute 2^-11 only in theory, real drivers are near 2^-21): noisy fluxes to
 * 1e-4 sigma + 3e-7 |f| (f32 storage), sigmas and error features to 3e-5 relative; asinh magnitudes
 * to 1e-4 mag (the flux difference propagated, <= 1.09 * 1e-4 sigma / 2b < 6e-5, plus ulp(30) = 2e-6);
 * masks, fill values and redshifts exactly.
 */
async function compare(noise: ResolvedNoise, feats: ResolvedFeatures, truth: Float32Array, o: { seed: number; indexOffset?: number; redshift?: Float32Array; redshiftStride?: number; redshiftOffset?: number }, label: string) {
  const k = new NoiseKernel(ctx.device, noise, feats);
  let gpu;
  try {
    gpu = await k.run(truth, o);
  } finally {
    k.destroy();
  }
  const cpu = simulateObservations(noise, feats, truth, o);
  const B = noise.bands.length;
  const N = truth.length / B;
  const finite = (i: number) => Number.isFinite(truth[i]);
  const pick = (a: ArrayLike<number>, keep: (i: number) => boolean) => Float64Array.from(Array.from(a).filter((_, i) => keep(i)));
  const sig = pick(cpu.errorNJy, finite);
  const noisyC = pick(cpu.noisyFluxNJy, finite);
  expectAllClose(pick(gpu.noisyFluxNJy, finite), noisyC, { bound: Float64Array.from(noisyC, (v, j) => 1e-4 * sig[j] + 3e-7 * Math.abs(v)), label: `${label} noisy` });
  expectAllClose(pick(gpu.errorNJy, finite), sig, { rtol: 3e-5, label: `${label} sigma` });
  const F = feats.width;
  const col = (j: number) => j % F;
  const isMaskOrZ = (c: number) => (feats.maskColumn >= 0 && c >= feats.maskColumn && c < feats.maskColumn + B) || c === feats.redshiftColumn;
  const exact = (j: number) => isMaskOrZ(col(j)) || !cpu.observed[Math.floor(j / F) * B + (col(j) % B)];
  expect(pick(gpu.features, exact), `${label} masks, fills, redshift`).toEqual(pick(Float32Array.from(cpu.features), exact));
  const isErr = (c: number) => feats.errorColumn >= 0 && c >= feats.errorColumn && c < feats.errorColumn + B;
  const values = (j: number) => !exact(j) && !isErr(col(j));
  const errs = (j: number) => !exact(j) && isErr(col(j));
  if (feats.photometry === 'asinhMag') expectAllClose(pick(gpu.features, values), pick(cpu.features, values), { atol: 1e-4, label: `${label} asinh mags` });
  else {
    const v = pick(cpu.features, values);
    const s = pick(Float64Array.from({ length: N * F }, (_, j) => cpu.errorNJy[Math.floor(j / F) * B + (col(j) % B)] * feats.fluxScale), values);
    expectAllClose(pick(gpu.features, values), v, { bound: Float64Array.from(v, (x, j) => 1e-4 * s[j] + 3e-7 * Math.abs(x)), label: `${label} flux features` });
  }
  expectAllClose(pick(gpu.features, errs), pick(cpu.features, errs), { rtol: 3e-5, atol: 1e-9, label: `${label} error features` });
  return { gpu, cpu };
}

interface Case {
  name: string;
  bands: string[];
  noise: () => Promise<NoiseConfigInput>;
  features: object;
}

const fixtureModel = () => loadEmpiricalNoiseModel(join(import.meta.dirname, '../fixtures/noise/empirical_small.json'));

/** A fitted model with ~50 nodes per band (exercises the shader's binary search). */
function fittedModel(bands: string[]) {
  const n = 6000;
  const flux = new Float64Array(n * bands.length);
  const err = new Float64Array(n * bands.length);
  for (let i = 0; i < n; i++) {
    const s = new PhiloxStream(99, RngPurpose.user, i);
    for (let b = 0; b < bands.length; b++) {
      const f = fluxNJyFromMag(19 + 12 * s.uniform());
      flux[i * bands.length + b] = f;
      err[i * bands.length + b] = Math.hypot(2 + b, 0.04 * f) * Math.exp(0.2 * s.normal());
    }
  }
  return fitEmpiricalNoiseModel(bands, flux, err, { binWidthMag: 0.25, minCount: 5, errorUnit: 'mag' });
}

const CASES: Case[] = [
  {
    name: 'depth + floor + galaxy scatter, asinh, drop-out, redshift',
    bands: BANDS14,
    noise: async () => ({ type: 'depth', depth5SigmaMag: DEPTHS14, errorFloorFrac: 0.05, depthScatterMag: 0.2 }),
    features: { dropoutProb: 0.15, includeRedshift: true, fillValue: -1 },
  },
  {
    name: 'depth + band scatter, scaled fluxes',
    bands: ['F200W', 'F444W'],
    noise: async () => ({ type: 'depth', depth5SigmaMag: 29.5, depthScatterMag: 0.3, depthScatterMode: 'band' }),
    features: { photometry: 'flux', fluxScale: 1e-3 },
  },
  {
    name: 'empirical + floor, asinh, drop-out',
    bands: ['F444W', 'F200W'],
    noise: async () => ({ type: 'empirical', model: await fixtureModel(), errorFloorFrac: 0.02 }),
    features: { dropoutProb: { F444W: 0.5, F200W: 0.1 } },
  },
  {
    name: 'empirical fitted (~50 nodes), asinh, redshift',
    bands: ['A', 'B', 'C'],
    noise: async () => ({ type: 'empirical', model: fittedModel(['A', 'B', 'C']) }),
    features: { includeRedshift: true },
  },
  {
    name: 'none, explicit softening, no errors',
    bands: ['F115W', 'F150W', 'F277W'],
    noise: async () => ({ type: 'none' }),
    features: { softeningNJy: 2, includeErrors: false, mask: true },
  },
];

describe('noise kernel vs float64 reference', () => {
  for (const c of CASES) {
    for (const n of [1, 257, c.bands.length > 3 ? 5003 : 20011]) {
      it(`${c.name}, N = ${n}`, async () => {
        const noise = resolveNoiseWith(await c.noise(), c.bands);
        const feats = resolveFeatures(c.features, c.bands, noise);
        const truth = trueFluxes(n, c.bands.length, n);
        const redshift = Float32Array.from({ length: n * 12 }, (_, k) => k / 100);
        await compare(noise, feats, truth, { seed: 1234 + n, indexOffset: 17, redshift, redshiftStride: 12, redshiftOffset: 0 }, `${c.name} N=${n}`);
      });
    }
  }

  it('a non-finite noiseless flux is masked; the 64-bit row offset carries across 2^32', async () => {
    const bands = ['F200W', 'F444W'];
    const noise = resolveNoiseWith({ type: 'depth', depth5SigmaMag: 29 }, bands);
    const feats = resolveFeatures({ mask: true, fillValue: 7 }, bands, noise);
    const truth = trueFluxes(40, 2, 5);
    truth[3] = NaN;
    const { gpu } = await compare(noise, feats, truth, { seed: 2 ** 40 + 3, indexOffset: 2 ** 32 - 20 }, 'offset');
    expect([gpu.features[feats.width + 1], gpu.features[feats.width + 3], gpu.features[feats.width + feats.maskColumn + 1]]).toEqual([7, 7, 0]);
  });

  it('chunks give the same result as one dispatch; shapes are uniforms (one pipeline)', async () => {
    const bands = ['F115W', 'F444W', 'F356W'];
    const noise = resolveNoiseWith({ type: 'depth', depth5SigmaMag: 29, depthScatterMag: 0.1 }, bands);
    const feats = resolveFeatures({ dropoutProb: 0.2 }, bands, noise);
    const truth = trueFluxes(300, 3, 9);
    const k = new NoiseKernel(ctx.device, noise, feats);
    try {
      const whole = await k.run(truth, { seed: 5, indexOffset: 1000 });
      const a = await k.run(truth.subarray(0, 3 * 123), { seed: 5, indexOffset: 1000 });
      const b = await k.run(truth.subarray(3 * 123), { seed: 5, indexOffset: 1123 });
      expect(whole.features).toEqual(Float32Array.from([...a.features, ...b.features]));
      expect(whole.noisyFluxNJy).toEqual(Float32Array.from([...a.noisyFluxNJy, ...b.noisyFluxNJy]));
    } finally {
      k.destroy();
    }
    const p1 = noiseProgram(noise, feats, { n: 10, seed: 1 });
    const p2 = noiseProgram(noise, feats, { n: 100000, seed: 2, indexOffset: 7 });
    expect(p1.defines).toEqual(p2.defines);
  });

  it('GPU pulls (noisy - true) / sigma are standard normal over 2e5 draws', async () => {
    const bands = ['F200W', 'F444W'];
    const noise = resolveNoiseWith({ type: 'depth', depth5SigmaMag: 29, errorFloorFrac: 0.1, depthScatterMag: 0.2 }, bands);
    const feats = resolveFeatures({ photometry: 'flux', includeErrors: false }, bands, noise);
    const n = 100000;
    const truth = Float32Array.from({ length: 2 * n }, (_, k) => (k % 3) * 50);
    const k = new NoiseKernel(ctx.device, noise, feats);
    let out;
    try {
      out = await k.run(truth, { seed: 77 });
    } finally {
      k.destroy();
    }
    let s = 0;
    let s2 = 0;
    for (let j = 0; j < 2 * n; j++) {
      const z = (out.noisyFluxNJy[j] - truth[j]) / out.errorNJy[j];
      s += z;
      s2 += z * z;
    }
    const m = s / (2 * n);
    const v = (s2 - 2 * n * m * m) / (2 * n - 1);
    // 5-sigma bounds from the sample size: sd(mean) = 1/sqrt(M), sd(variance) = sqrt(2/(M - 1)).
    expect(Math.abs(m)).toBeLessThan(5 / Math.sqrt(2 * n));
    expect(Math.abs(v - 1)).toBeLessThan(5 * Math.sqrt(2 / (2 * n - 1)));
  });
});
