/**
 * Fused clip + Adam / AdamW (kernels/nn/optim.ts) against the float64 reference src/flow/adam.ts
 * (clipGradNorm + adamStep, torch semantics), on awkward sizes, several steps recorded into ONE
 * submission (so the GPU step counter and per-step lr uniforms are exercised).
 */
import { describe, expect, it } from 'vitest';
import { type AdamHyper, GpuAdam, type OptimTuning, TUNING_CPU_DRIVER, TUNING_GPU, adamProgram, createOptimState, defaultOptimTuning, encodeClipAdam, normPartialCount, optimFinalizeProgram, readOptimState, writeOptimStep } from '../../kernels/nn/optim.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch } from '../../src/gpu/kernel.js';
import { adamStep, clipGradNorm, createAdamState } from '../../src/flow/adam.js';
import { randomF32 } from '../../src/reference/linalg.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();
const U = 2 ** -24; // f32 unit roundoff

/** Spacing of f32 numbers at |x| (2^-149 below the normal range). */
function ulp(x: number): number {
  const a = Math.abs(x);
  return a < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(a)) - 23);
}

/** Every 17th element plays an alignment gap: zero parameter, zero gradient (must stay exactly 0). */
const isGap = (i: number) => i % 17 === 5;

function initialParams(n: number): Float32Array {
  const p = randomF32(n, 1234 + n, 0.5);
  for (let i = 0; i < n; i++) if (isGap(i)) p[i] = 0;
  return p;
}

/** Gradients of step t: uniform noise rescaled so that the global norm is normFactor[t] * maxNorm (or scale 0.1 without clipping). */
function stepGradients(n: number, steps: number, maxNorm: number | null, normFactors: number[]): Float32Array[] {
  return Array.from({ length: steps }, (_, t) => {
    const g = randomF32(n, 77 * t + n, 1);
    for (let i = 0; i < n; i++) if (isGap(i)) g[i] = 0;
    if (maxNorm === null) return g.map((x) => 0.1 * x);
    let s = 0;
    for (const x of g) s += x * x;
    const k = (normFactors[t % normFactors.length] * maxNorm) / Math.sqrt(s || 1);
    return g.map((x) => x * k);
  });
}

interface RefResult {
  params: Float64Array;
  m: Float64Array;
  v: Float64Array;
  /** First-order bounds of the f32 kernel's absolute error, propagated step by step. */
  errP: Float64Array;
  errM: Float64Array;
  errV: Float64Array;
  norms: number[];
  coefs: number[];
}

/**
 * The float64 reference, step by step, with a running bound of what f32 arithmetic may change.
 * Per step and element (u = 2^-24; each rounded operation <= u of its result; sRel = the clip
 * scale's relative error; the GPU's bias corrections carry <= 8 u, see the test below):
 *   g      = scale g + l2 p          dg  = sRel |g| + 2u (|g| + l2 |p|) + l2 dp
 *   m'     = m + (1-b1)(g - m)       dm' = b1 dm + (1-b1) dg + 3u (|m| + |m'| + (1-b1)|g - m|)
 *   v'     = b2 v + (1-b2) g^2       dv' = b2 dv + (1-b2)(2|g| dg + dg^2) + 3u (b2 v + (1-b2) g^2 + v')
 *   sqrt:  ds <= min(dv' / (2 sqrt v'), sqrt dv') + u sqrt v'
 *   denom  = s / bc2 + eps           dd  = ds / bc2 + 10u s / bc2 + u denom
 *   upd    = step m' / denom         du  = step dm' / denom + |upd| (dd / denom + 10u)
 *   p'     = p decay - upd           dp' = decay dp + du + ulp(p)      (two roundings of 1/2 ulp)
 * Near-cancelling gradients (g + l2 p ~ 0 or m ~ 0) make m / sqrt(v) ill-conditioned; the bound
 * grows there exactly as the f32 result may move, instead of a blanket relative tolerance.
 */
function reference(p0: Float32Array, grads: Float32Array[], hyper: AdamHyper, lrs: number[], sRel: number): RefResult {
  const n = p0.length;
  const p = Float64Array.from(p0);
  const st = createAdamState(n);
  const errP = new Float64Array(n);
  const errM = new Float64Array(n);
  const errV = new Float64Array(n);
  const norms: number[] = [];
  const coefs: number[] = [];
  const b1 = hyper.beta1 ?? 0.9;
  const b2 = hyper.beta2 ?? 0.999;
  const eps = hyper.eps ?? 1e-8;
  const wd = hyper.weightDecay ?? 0;
  const l2 = hyper.decoupled ? 0 : wd;
  grads.forEach((g32, t) => {
    const g = Float64Array.from(g32);
    if (hyper.maxNorm != null) {
      const norm = clipGradNorm(g, hyper.maxNorm, hyper.clipEps ?? 1e-6);
      norms.push(norm);
      coefs.push(Math.min(1, hyper.maxNorm / (norm + (hyper.clipEps ?? 1e-6))));
    }
    const pPrev = p.slice();
    const mPrev = st.m.slice();
    const vPrev = st.v.slice();
    const lr = lrs[t];
    adamStep(p, g, st, { ...hyper, lr });
    const step = st.step;
    const stepSize = lr / (1 - b1 ** step);
    const bc2 = Math.sqrt(1 - b2 ** step);
    const decay = hyper.decoupled ? 1 - lr * wd : 1;
    for (let i = 0; i < n; i++) {
      const gEff = g[i] + l2 * pPrev[i];
      const dg = sRel * Math.abs(g[i]) + 2 * U * (Math.abs(g[i]) + l2 * Math.abs(pPrev[i])) + l2 * errP[i];
      const m = st.m[i];
      const v = st.v[i];
      errM[i] = b1 * errM[i] + (1 - b1) * dg + 3 * U * (Math.abs(mPrev[i]) + Math.abs(m) + (1 - b1) * Math.abs(gEff - mPrev[i]));
      errV[i] = b2 * errV[i] + (1 - b2) * (2 * Math.abs(gEff) * dg + dg * dg) + 3 * U * (b2 * vPrev[i] + (1 - b2) * gEff * gEff + v);
      const s = Math.sqrt(v);
      const ds = Math.min(s > 0 ? errV[i] / (2 * s) : Infinity, Math.sqrt(errV[i])) + U * s;
      const denom = s / bc2 + eps;
      const dd = ds / bc2 + (10 * U * s) / bc2 + U * denom;
      const upd = (stepSize * m) / denom;
      const du = (stepSize * errM[i]) / denom + Math.abs(upd) * (dd / denom + 10 * U);
      errP[i] = decay * errP[i] + du + Math.max(ulp(pPrev[i]), ulp(p[i]));
    }
  });
  return { params: p, m: st.m, v: st.v, errP, errM, errV, norms, coefs };
}

/** Runs `steps` optimiser steps recorded into one ComputeBatch; returns params, m, v and the state. */
async function runGpu(p0: Float32Array, grads: Float32Array[], hyper: AdamHyper, lrs: number[], tuning?: OptimTuning) {
  const dev = ctx.device;
  const n = p0.length;
  const params = uploadBuffer(dev, p0, 'params');
  const gbufs = grads.map((g) => uploadBuffer(dev, g, 'grad'));
  const adam = new GpuAdam(dev, n, hyper, tuning);
  try {
    const batch = new ComputeBatch(dev, { label: 'adam test' });
    gbufs.forEach((g, t) => adam.encodeStep(batch, params, g, { lr: lrs[t] }));
    expect(batch.length).toBe(grads.length * (hyper.maxNorm != null ? 3 : 2));
    await batch.run();
    return {
      params: await readFloat32(dev, params, 0, n),
      m: await readFloat32(dev, adam.m, 0, n),
      v: await readFloat32(dev, adam.v, 0, n),
      state: await adam.readState(),
    };
  } finally {
    adam.destroy();
    params.destroy();
    for (const g of gbufs) g.destroy();
  }
}

/**
 * Relative error bound of the GPU's clip scale: sum of squares of positive terms in f32 with
 * ceil(n / (G 256)) sequential adds per thread, a 256-wide tree, then in the 64-wide finalize
 * pass ceil(G / 64) sequential adds and a 64-wide tree (error <= (adds + 8 + G/64 + 6) u of the
 * sum), then sqrt (halves it), an add and a division (1 u each). Doubled for the constant terms.
 */
function scaleRelBound(n: number, tuning: OptimTuning = defaultOptimTuning(ctx.device)): number {
  const G = normPartialCount(n, tuning);
  return 2 * (Math.ceil(n / (G * 256)) + 8 + Math.ceil(G / 64) + 6 + 4) * U;
}

const SIZES = [1, 63, 64, 65, 100_003];
const STEPS = 5;
const CONFIGS: { name: string; hyper: AdamHyper; factors: number[] }[] = [
  { name: 'adam, clip 5 (clips steps 1, 3, 5)', hyper: { lr: 1e-3, maxNorm: 5 }, factors: [3, 0.3] },
  { name: 'adam + L2 0.01, clip 1 (never clips)', hyper: { lr: 2e-3, maxNorm: 1, weightDecay: 0.01 }, factors: [0.9, 0.2] },
  { name: 'adamw 0.05, clip 2 (always clips)', hyper: { lr: 5e-3, maxNorm: 2, weightDecay: 0.05, decoupled: true }, factors: [10, 1.5] },
  { name: 'adamw 0.1, no clip, betas (0.8, 0.95), eps 1e-6', hyper: { lr: 1e-2, weightDecay: 0.1, decoupled: true, beta1: 0.8, beta2: 0.95, eps: 1e-6 }, factors: [] },
  { name: 'adam, no clip, zeroGrad', hyper: { lr: 1e-3, zeroGrad: true }, factors: [] },
];

describe('clip + Adam/AdamW vs the float64 reference', () => {
  for (const { name, hyper, factors } of CONFIGS) {
    for (const n of SIZES) {
      it(`${name}, n = ${n}, ${STEPS} steps in one submission`, async () => {
        const p0 = initialParams(n);
        const maxNorm = hyper.maxNorm ?? null;
        const grads = stepGradients(n, STEPS, maxNorm, factors);
        const lrs = Array.from({ length: STEPS }, (_, t) => hyper.lr * (1 - 0.1 * t)); // an lr schedule
        const sRel = scaleRelBound(n);
        const want = reference(p0, grads, hyper, lrs, maxNorm === null ? 0 : sRel);
        const got = await runGpu(p0, grads, hyper, lrs);

        // Clip scale and norm of the last step; step counter and statistics.
        expect(got.state.step).toBe(STEPS);
        expect(got.state.stepsSinceReset).toBe(STEPS);
        expect(got.state.lr).toBe(Math.fround(lrs[STEPS - 1]));
        if (maxNorm !== null) {
          const last = STEPS - 1;
          expectAllClose([got.state.gradNorm], [want.norms[last]], { rtol: sRel, label: 'grad norm' });
          if (want.coefs[last] === 1) expect(got.state.clipScale).toBe(1);
          else expectAllClose([got.state.clipScale], [want.coefs[last]], { rtol: sRel, label: 'clip scale' });
          expect(got.state.clippedSteps).toBe(want.coefs.filter((c) => c < 1).length);
          expectAllClose([got.state.gradNormSum], [want.norms.reduce((a, b) => a + b, 0)], { rtol: sRel + STEPS * U, label: 'norm sum' });
        } else {
          expect(got.state.clipScale).toBe(1);
        }

        // Tolerances: the propagated first-order bounds of reference() (see there).
        expectAllClose(got.m, want.m, { bound: want.errM, atol: 1e-30, label: 'm' });
        expectAllClose(got.v, want.v, { bound: want.errV, atol: 1e-30, label: 'v' });
        expectAllClose(got.params, want.params, { bound: want.errP, atol: 1e-30, label: 'params' });
        for (let i = 0; i < n; i++) if (isGap(i)) expect(got.params[i]).toBe(0);
      });
    }
  }

  it('both tunings (CPU driver / GPU workgroup counts) agree: bitwise without clipping, within the norm bound with it', async () => {
    const n = 100_003;
    const p0 = initialParams(n);
    for (const hyper of [{ lr: 1e-3 }, { lr: 1e-3, maxNorm: 1 }] as AdamHyper[]) {
      const grads = stepGradients(n, 3, hyper.maxNorm ?? null, [3, 0.5]);
      const lrs = [1e-3, 1e-3, 1e-3];
      const a = await runGpu(p0, grads, hyper, lrs, TUNING_CPU_DRIVER);
      const b = await runGpu(p0, grads, hyper, lrs, TUNING_GPU);
      if (hyper.maxNorm === undefined) {
        expect(Array.from(a.params)).toEqual(Array.from(b.params));
        expect(Array.from(a.v)).toEqual(Array.from(b.v));
      } else {
        const want = reference(p0, grads, hyper, lrs, scaleRelBound(n, TUNING_CPU_DRIVER) + scaleRelBound(n, TUNING_GPU));
        expectAllClose(a.params, b.params, { bound: want.errP.map((e) => 2 * e), atol: 1e-30, label: 'params, two tunings' });
        expectAllClose([a.state.gradNorm], [b.state.gradNorm], { rtol: scaleRelBound(n, TUNING_CPU_DRIVER) + scaleRelBound(n, TUNING_GPU), label: 'norm, two tunings' });
      }
    }
  });

  it('the clip scale is exact for an exactly representable norm (eps 0) and exactly 1 below maxNorm', async () => {
    const dev = ctx.device;
    const n = 64;
    const grad = uploadBuffer(dev, new Float32Array(n).fill(3)); // norm = sqrt(64 * 9) = 24 exactly
    const params = uploadBuffer(dev, new Float32Array(n));
    try {
      for (const [maxNorm, scale, clipped] of [
        [6, 0.25, 1],
        [12, 0.5, 1],
        [24, 1, 0], // coef = 1 exactly is not < 1: not clipped (torch clamps to 1)
        [100, 1, 0],
      ] as const) {
        const adam = new GpuAdam(dev, n, { lr: 1e-3, maxNorm, clipEps: 0 });
        await adam.encodeStep(new ComputeBatch(dev), params, grad).run();
        const s = await adam.readState();
        expect(s.gradNorm).toBe(24);
        expect(s.clipScale).toBe(scale);
        expect(s.clippedSteps).toBe(clipped);
        adam.destroy();
      }
    } finally {
      grad.destroy();
      params.destroy();
    }
  });

  it('bias corrections from the GPU step counter match float64 for t = 1 .. 10^6', async () => {
    const dev = ctx.device;
    const state = createOptimState(dev);
    try {
      for (const [b1, b2] of [[0.9, 0.999], [0.5, 0.9999], [0, 0.99]]) {
        for (const t of [1, 2, 3, 10, 100, 1000, 12345, 1_000_000]) {
          writeOptimStep(dev, state, t - 1);
          const lr = 3e-4;
          await new ComputeBatch(dev).add(optimFinalizeProgram(1, { lr, beta1: b1, beta2: b2 }), { 4: state }).run();
          const s = await readOptimState(dev, state);
          expect(s.step).toBe(t);
          // -expm1(t ln beta) in f32: ln beta rounded (u), times t (u), expm1 (~3 u), then the
          // division / sqrt (u): 8 u.
          expectAllClose([s.stepSize, s.bc2Sqrt], [lr / (1 - b1 ** t), Math.sqrt(1 - b2 ** t)], { rtol: 8 * U, label: `bias corrections b=(${b1}, ${b2}) t=${t}` });
        }
      }
    } finally {
      state.destroy();
    }
  });

  it('zeroGrad clears the gradient; resetStats clears the epoch statistics only', async () => {
    const dev = ctx.device;
    const n = 1000;
    const g = randomF32(n, 5, 1);
    const grad = uploadBuffer(dev, g);
    const params = uploadBuffer(dev, initialParams(n));
    const adam = new GpuAdam(dev, n, { lr: 1e-3, maxNorm: 1, zeroGrad: true });
    try {
      await adam.encodeStep(new ComputeBatch(dev), params, grad).run();
      expect(Array.from(await readFloat32(dev, grad, 0, n)).every((x) => x === 0)).toBe(true);
      let s = await adam.readState();
      expect(s.clippedSteps).toBe(1);
      expect(s.gradNormSum).toBeGreaterThan(1);
      adam.resetStats();
      s = await adam.readState();
      expect([s.step, s.gradNormSum, s.clippedSteps, s.stepsSinceReset]).toEqual([1, 0, 0, 0]);
      // A zero gradient: norm 0, not clipped.
      await adam.encodeStep(new ComputeBatch(dev), params, grad).run();
      s = await adam.readState();
      expect([s.step, s.gradNorm, s.clipScale, s.clippedSteps]).toEqual([2, 0, 1, 0]);
    } finally {
      adam.destroy();
      grad.destroy();
      params.destroy();
    }
  });

  it('resumes from a checkpoint (step and moments) exactly as an uninterrupted run', async () => {
    const dev = ctx.device;
    const n = 257;
    const p0 = initialParams(n);
    const grads = stepGradients(n, 4, 1, [2, 0.5]);
    const hyper: AdamHyper = { lr: 1e-3, maxNorm: 1 };
    const lrs = [1e-3, 1e-3, 1e-3, 1e-3];
    const full = await runGpu(p0, grads, hyper, lrs);
    const half = await runGpu(p0, grads.slice(0, 2), hyper, lrs);
    const params = uploadBuffer(dev, half.params);
    const gb = grads.slice(2).map((g) => uploadBuffer(dev, g));
    const adam = new GpuAdam(dev, n, hyper);
    try {
      adam.load(2, half.m, half.v);
      const batch = new ComputeBatch(dev);
      for (const g of gb) adam.encodeStep(batch, params, g);
      await batch.run();
      expect(Array.from(await readFloat32(dev, params, 0, n))).toEqual(Array.from(full.params));
      expect((await adam.readState()).step).toBe(4);
    } finally {
      adam.destroy();
      params.destroy();
      for (const g of gb) g.destroy();
    }
  });

  it('encodeClipAdam records 3 dispatches with clipping and 2 without', () => {
    const dev = ctx.device;
    const b = createStorageBuffer(dev, 16);
    const batch = new ComputeBatch(dev);
    encodeClipAdam(batch, { params: b, grad: b, m: b, v: b, state: b, partials: b }, 4, { lr: 1, maxNorm: 1 });
    expect(batch.length).toBe(3);
    encodeClipAdam(batch, { params: b, grad: b, m: b, v: b, state: b }, 4, { lr: 1 });
    expect(batch.length).toBe(5);
    b.destroy();
  });

  it('rejects bad hyper-parameters and sizes', () => {
    expect(() => adamProgram(0, { lr: 1 })).toThrow(/n must be/);
    expect(() => adamProgram(10, { lr: -1 })).toThrow(/lr/);
    expect(() => adamProgram(10, { lr: 1, beta1: 1 })).toThrow(/beta1/);
    expect(() => adamProgram(10, { lr: 1, beta2: -0.1 })).toThrow(/beta2/);
    expect(() => adamProgram(10, { lr: 1, maxNorm: 0 })).toThrow(/maxNorm/);
    expect(() => adamProgram(10, { lr: 1, weightDecay: Number.NaN })).toThrow(/weightDecay/);
    expect(() => adamProgram(10, { lr: 1 }, { normGroups: 1, adamGroups: 0 })).toThrow(/adamGroups/);
    expect(() => normPartialCount(10, { normGroups: 5000, adamGroups: 1 })).toThrow(/normGroups/);
    expect(() => encodeClipAdam(new ComputeBatch(ctx.device), {} as never, 10, { lr: 1, maxNorm: 1 })).toThrow(/partials/);
  });
});
