/**
 * The GPU flow engine (src/flow/gpuEngine.ts) and its own kernels (kernels/nn/columns.ts,
 * kernels/nn/activation.ts) against the float64 CPU reference (src/flow, CpuFlowEngine): log-probs,
 * every parameter-gradient tensor, Adam steps, samples from the same base normals, epochs on the
 * same mini-batches, a short training run, createFlowEngine('gpu') and `train --engine gpu`.
 *
 * Tolerances are f32 ones. u = 2^-24 = 6e-8; the flow's values pass through T layers of GEMMs with
 * inner dimensions <= 50 (+ 29 context features), softmax/softplus knots and the rational-quadratic
 * formula, each a few u relative, so a log-density of magnitude ~10 carries ~1e-5 absolute error
 * (measured worst: see each test's comment).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { activationBackwardBindings, activationBackwardProgram, activationForwardBindings, activationForwardProgram } from '../../kernels/nn/activation.js';
import {
  baseNormalOffsets,
  baseNormalsProgram,
  contiguousDraws,
  encodeBaseNormals,
  encodeCondInput,
  encodeEpochOrder,
  encodeFill,
  encodeScatterAdd,
} from '../../kernels/nn/columns.js';
import { registerSample } from '../../src/cli/commands/sample.js';
import { registerTrain } from '../../src/cli/commands/train.js';
import { adamStep, clipGradNorm, createAdamState } from '../../src/flow/adam.js';
import { type FlowConfigInput } from '../../src/flow/config.js';
import { type FlowModel, createFlow, fitFlowStandardization, forward, nllAndGrad } from '../../src/flow/flow.js';
import { type GpuEngineOptions, GpuFlowEngine } from '../../src/flow/gpuEngine.js';
import { rowSplit } from '../../src/flow/gpu/network.js';
import { RngPurpose, standardNormals } from '../../src/flow/rng.js';
import { createStorageBuffer, readFloat32, readTyped, uploadBuffer } from '../../src/gpu/buffers.js';
import { deviceOptionsFromEnv } from '../../src/gpu/device.js';
import { ComputeBatch } from '../../src/gpu/kernel.js';
import { CpuFlowEngine, baseNormals, createFlowEngine } from '../../src/train/engine.js';
import { TrainRngPurpose, epochOrder } from '../../src/train/split.js';
import { trainFlow } from '../../src/train/trainer.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';
import { linearGaussianData, writeLinearGaussianLibrary } from '../train/helpers.js';

const ctx = useGpu();

/** Row splits that make n = 257 use 4 chunks of 65 rows (nPad = 260: 3 padded rows) in the weight gradients. */
const SPLIT_TEST = { maxSplits: 4, minChunk: 32 };

function engine(model: FlowModel, o: GpuEngineOptions = {}): Promise<GpuFlowEngine> {
  return GpuFlowEngine.create(model, { gpu: ctx.gpu, split: SPLIT_TEST, ...o });
}

/**
 * Heavy-tailed theta (every 7th row x 4, so standardised values fall outside [-B, B] = the linear
 * tails) and x correlated with theta.
 */
function problem(P: number, F: number, n: number, seed: number): { theta: Float64Array; x: Float64Array } {
  const theta = standardNormals(n * P, seed, RngPurpose.user);
  for (let r = 0; r < n; r++) for (let p = 0; p < P; p++) theta[r * P + p] = (r % 7 === 3 ? 4 : 1) * theta[r * P + p] * (p + 1) + 10 * p;
  const e = standardNormals(n * F, seed + 1, RngPurpose.user);
  const x = new Float64Array(n * F);
  for (let r = 0; r < n; r++) for (let f = 0; f < F; f++) x[r * F + f] = theta[r * P + (f % P)] * 0.5 + e[r * F + f] * (1 + f / 10);
  return { theta, x };
}

/** A flow with standardisation fitted on the problem and perturbed weights (uneven bins, active residual blocks). */
function perturbedFlow(cfg: FlowConfigInput, d: { theta: Float64Array; x: Float64Array }, n: number, seed: number): FlowModel {
  const model = createFlow(cfg);
  fitFlowStandardization(model, d.theta, d.x, n);
  const z = standardNormals(model.layout.size, seed, RngPurpose.user, 777);
  for (const t of model.layout.tensors) {
    const s = t.role.startsWith('out') ? 0.5 : t.role.startsWith('lin2') ? 0.2 : 0.05;
    for (let k = 0; k < t.size; k++) model.params[t.offset + k] += s * z[t.offset + k];
  }
  return model;
}

/**
 * Per-sample conditioning of log q in float64: the largest change of the reference log-density over
 * 3 random relative perturbations of one f32 ulp of every parameter and every theta. A perturbed flow
 * can have steep bins, where the f32 rounding of the inputs alone moves log q by 1e-4 (measured).
 */
function f32Sensitivity(model: FlowModel, theta: Float64Array, x: Float64Array, n: number): { logProb: Float64Array; grad: Float64Array } {
  const base = nllAndGrad(model, theta, x, n);
  const out = { logProb: new Float64Array(n), grad: new Float64Array(model.params.length) };
  for (let t = 0; t < 3; t++) {
    const zp = standardNormals(model.params.length, 50 + t, RngPurpose.user);
    const zt = standardNormals(theta.length, 60 + t, RngPurpose.user);
    const p = model.params.map((v, i) => v * (1 + 6e-8 * zp[i]));
    const th = theta.map((v, i) => v * (1 + 6e-8 * zt[i]));
    const r = nllAndGrad(model, th, x, n, p);
    for (let i = 0; i < n; i++) out.logProb[i] = Math.max(out.logProb[i], Math.abs(r.logProb[i] - base.logProb[i]));
    for (let i = 0; i < p.length; i++) out.grad[i] = Math.max(out.grad[i], Math.abs(r.grad[i] - base.grad[i]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
describe('columns and activation kernels', () => {
  it('epochOrder = src/train/split.ts epochOrder bit for bit (n = 1 .. 70001, subsets of rows)', async () => {
    const dev = ctx.device;
    for (const [n, seed, epoch] of [
      [1, 0, 0],
      [2, 1, 5],
      [3, 7, 1],
      [5, 2, 2],
      [257, 3, 9],
      [4099, 11, 123],
      [70001, 5, 0],
    ]) {
      const rows = Uint32Array.from({ length: n }, (_, i) => 3 * i + (i % 5));
      const want = epochOrder(rows, seed, epoch);
      const rb = uploadBuffer(dev, rows);
      const ob = createStorageBuffer(dev, n * 4);
      const { EpochPermutation } = await import('../../src/train/split.js');
      await encodeEpochOrder(new ComputeBatch(dev), { rows: rb, order: ob }, new EpochPermutation(seed, epoch, n)).run();
      const got = await readTyped(dev, ob, Uint32Array, 0, n);
      expect(Array.from(got), `n=${n}`).toEqual(Array.from(want));
      rb.destroy();
      ob.destroy();
    }
  });

  it('baseNormals = the engine base normals (src/flow/rng.ts) to f32 accuracy, across 32-bit index carries', async () => {
    const dev = ctx.device;
    const P = 3;
    const draws = Float64Array.from({ length: 2000 }, (_, i) => (i < 1000 ? i : i < 1500 ? Math.floor(2 ** 32 / P) - 250 + (i - 1000) : 2 ** 40 + 17 * i));
    const seed = 2 ** 33 + 5;
    const want = baseNormals(seed, draws, P);
    const bases = uploadBuffer(dev, baseNormalOffsets(draws, P));
    const z = createStorageBuffer(dev, want.length * 4);
    await encodeBaseNormals(new ComputeBatch(dev), { bases, z }, { m: draws.length, P, seed, purpose: TrainRngPurpose.posterior }).run();
    const got = await readFloat32(dev, z, 0, want.length);
    // f32 Box-Muller: -ln u1 to a few u relative (series below 1/2), sqrt, cos with |arg| <= pi: ~1e-6 absolute.
    expectAllClose(got, want, { atol: 2e-6, rtol: 2e-6, label: 'base normals' });
    bases.destroy();
    z.destroy();
  });

  it('baseNormals of contiguous draws (base0 uniform, no offsets buffer) = the buffered ones bit for bit, across 32-bit carries', async () => {
    const dev = ctx.device;
    const P = 3;
    const seed = 77;
    for (const d0 of [0, 5, Math.floor(2 ** 32 / P) - 300, 2 ** 40 + 3]) {
      const m = 777;
      const draws = Float64Array.from({ length: m }, (_, i) => d0 + i);
      expect(contiguousDraws(draws)).toBe(d0);
      const bases = uploadBuffer(dev, baseNormalOffsets(draws, P));
      const zBuf = createStorageBuffer(dev, m * P * 4);
      const zRun = createStorageBuffer(dev, m * P * 4);
      const unused = uploadBuffer(dev, new Uint32Array(2).fill(0xdeadbeef));
      const shape = { m, P, seed, purpose: TrainRngPurpose.posterior };
      await encodeBaseNormals(new ComputeBatch(dev), { bases, z: zBuf }, shape).run();
      await encodeBaseNormals(new ComputeBatch(dev), { bases: unused, z: zRun }, { ...shape, base0: d0 * P }).run();
      const a = await readFloat32(dev, zBuf, 0, m * P);
      const b = await readFloat32(dev, zRun, 0, m * P);
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer)), `d0 = ${d0}`).toBe(true);
      expectAllClose(a, baseNormals(seed, draws, P), { atol: 2e-6, rtol: 2e-6, label: `base normals d0 = ${d0}` });
      for (const buf of [bases, zBuf, zRun, unused]) buf.destroy();
    }
    expect(contiguousDraws(Float64Array.of(3, 4, 6))).toBeNull();
    expect(contiguousDraws(new Float64Array(0))).toBeNull();
    expect(() => baseNormalsProgram({ m: 4, P: 3, seed: 1, purpose: 0, base0: 2 ** 53 - 5 })).toThrow(/safe integer/);
  });

  it('condInput / scatterAdd / fill copy exactly; activation forward / backward (+ residual) for relu and tanh', async () => {
    const dev = ctx.device;
    const n = 37;
    const P = 5;
    const F = 3;
    const v = standardNormals(n * P, 1);
    const xs = standardNormals(n * F, 2);
    const f32 = (a: Float64Array) => Float32Array.from(a);
    const vb = uploadBuffer(dev, f32(v));
    const xb = uploadBuffer(dev, f32(xs));
    const cond = createStorageBuffer(dev, n * (2 + F) * 4);
    const vOut = createStorageBuffer(dev, n * P * 4);
    const gc = uploadBuffer(dev, f32(standardNormals(n * 2, 3)));
    const gOut = createStorageBuffer(dev, n * P * 4);
    const fillB = uploadBuffer(dev, new Float32Array(50).fill(7));
    const b = new ComputeBatch(dev);
    encodeCondInput(b, { v: vb, xs: xb, cond, vOut }, { n, P, F, identityStart: 3, identityCount: 2, copy: true });
    encodeScatterAdd(b, { gIn: vb, gc, gOut }, { n, P, identityStart: 1, identityCount: 2 });
    encodeFill(b, fillB, { count: 10, offset: 33, value: -1.5 });
    await b.run();
    const c = await readFloat32(dev, cond, 0, n * 5);
    const vo = await readFloat32(dev, vOut, 0, n * P);
    const go = await readFloat32(dev, gOut, 0, n * P);
    const gcv = await readFloat32(dev, gc, 0, n * 2);
    const fl = await readFloat32(dev, fillB, 0, 50);
    const v32 = f32(v);
    const x32 = f32(xs);
    for (let r = 0; r < n; r++) {
      expect(Array.from(c.subarray(r * 5, r * 5 + 5))).toEqual([v32[r * P + 3], v32[r * P + 4], x32[r * F], x32[r * F + 1], x32[r * F + 2]]);
      expect([vo[r * P + 3], vo[r * P + 4], vo[r * P]]).toEqual([v32[r * P + 3], v32[r * P + 4], 0]);
      expect([go[r * P + 1], go[r * P + 2], go[r * P]]).toEqual([Math.fround(v32[r * P + 1] + gcv[r * 2]), Math.fround(v32[r * P + 2] + gcv[r * 2 + 1]), 0]);
    }
    expect(Array.from(fl)).toEqual(Array.from({ length: 50 }, (_, i) => (i >= 33 && i < 43 ? -1.5 : 7)));

    const count = 1031;
    const x = f32(standardNormals(count, 4, RngPurpose.user).map((t, i) => (i % 11 === 0 ? 0 : i % 13 === 0 ? 40 * t : 3 * t)));
    const g = f32(standardNormals(count, 5));
    const res = f32(standardNormals(count, 6));
    const [xb2, gb, rb] = [x, g, res].map((a) => uploadBuffer(dev, a));
    for (const act of ['relu', 'tanh'] as const) {
      const y = createStorageBuffer(dev, count * 4);
      const gx = createStorageBuffer(dev, count * 4);
      const gxr = createStorageBuffer(dev, count * 4);
      const bb = new ComputeBatch(dev);
      bb.add(activationForwardProgram({ count, act }), activationForwardBindings({ x: xb2, y }));
      bb.add(activationBackwardProgram({ count, act }), activationBackwardBindings({ g: gb, post: y, gx }));
      bb.add(activationBackwardProgram({ count, act, residual: true }), activationBackwardBindings({ g: gb, post: y, gx: gxr, res: rb }));
      await bb.run();
      const yv = await readFloat32(dev, y, 0, count);
      const want = Float64Array.from(x, (t) => (act === 'relu' ? Math.max(t, 0) : Math.tanh(t)));
      // relu is exact; the overflow-free tanh (1 - e)/(1 + e) with e = exp(-2|x|): a few u.
      expectAllClose(yv, want, { atol: act === 'relu' ? 0 : 3e-7, label: `${act} forward` });
      const wantG = Float64Array.from(g, (t, i) => (act === 'relu' ? (yv[i] > 0 ? t : 0) : t * (1 - yv[i] * yv[i])));
      // g (1 - post^2) in f32: 1 - post^2 cancels near |post| = 1, so the bound is a few u of |g|, not of the result.
      const U = 2 ** -24;
      expectAllClose(await readFloat32(dev, gx, 0, count), wantG, { bound: Float64Array.from(g, (t) => 3 * U * Math.abs(t)), label: `${act} backward` });
      expectAllClose(await readFloat32(dev, gxr, 0, count), Float64Array.from(wantG, (t, i) => t + res[i]), {
        bound: Float64Array.from(g, (t, i) => 3 * U * Math.abs(t) + 2 * U * (Math.abs(wantG[i]) + Math.abs(res[i]))),
        label: `${act} backward + residual`,
      });
      for (const bf of [y, gx, gxr]) bf.destroy();
    }
    for (const bf of [vb, xb, cond, vOut, gc, gOut, fillB, xb2, gb, rb]) bf.destroy();
  });
});

// ---------------------------------------------------------------------------------------------
interface Case {
  P: number;
  F: number;
  hidden: number;
  blocks: number;
  bins: number;
  n: number;
  transforms: number;
  activation?: 'relu' | 'tanh';
}

/** Every value of P {1, 3, 8}, F {0, 5, 29}, hidden {7, 50}, blocks {0, 2}, K {4, 10}, n {1, 257} appears; P = 1 with F = 0 (an unconditional spline with a constant conditioner). */
const CASES: Case[] = [
  { P: 1, F: 0, hidden: 7, blocks: 0, bins: 4, n: 257, transforms: 2 },
  { P: 1, F: 5, hidden: 50, blocks: 2, bins: 10, n: 1, transforms: 3 },
  { P: 3, F: 0, hidden: 7, blocks: 2, bins: 10, n: 257, transforms: 3 },
  { P: 3, F: 29, hidden: 50, blocks: 0, bins: 4, n: 257, transforms: 2 },
  { P: 8, F: 5, hidden: 7, blocks: 2, bins: 4, n: 1, transforms: 4, activation: 'tanh' },
  { P: 8, F: 29, hidden: 50, blocks: 2, bins: 10, n: 257, transforms: 5 },
];

const caseName = (c: Case) => `P=${c.P} F=${c.F} H=${c.hidden} blocks=${c.blocks} K=${c.bins} T=${c.transforms} n=${c.n}${c.activation ? ` ${c.activation}` : ''}`;

function setup(c: Case, seed = 1) {
  const d = problem(c.P, c.F, Math.max(c.n, 64), seed);
  const cfg = { thetaDim: c.P, contextDim: c.F, transforms: c.transforms, hidden: c.hidden, blocks: c.blocks, bins: c.bins, activation: c.activation ?? 'relu', seed };
  const model = perturbedFlow(cfg, d, Math.max(c.n, 64), seed + 100);
  return { d, model, theta: d.theta.subarray(0, c.n * c.P), x: d.x.subarray(0, c.n * c.F) };
}

describe('GpuFlowEngine vs the float64 reference', () => {
  for (const c of CASES) {
    it(`${caseName(c)}: log-probs and every parameter-gradient tensor`, async () => {
      const { model, theta, x, d } = setup(c);
      const e = await engine(model);
      try {
        const ref = forward(model, theta, x, c.n);
        const lp = await e.logProb(theta, x, c.n);
        // f32 rounding everywhere ~ a few input-rounding perturbations per layer: 1e-5 + 2e-6 |lp|
        // plus 10x the measured float64 sensitivity to one-ulp perturbations (up to 4.5e-4 at a
        // steep bin; the GPU's error there is 7e-4).
        const sens = f32Sensitivity(model, theta, x, c.n);
        expectAllClose(lp, ref.logProb, { atol: 1e-5, rtol: 2e-6, bound: sens.logProb.map((v) => 10 * v), label: `${caseName(c)} logProb` });

        const rows = Uint32Array.from({ length: c.n }, (_, i) => i);
        await e.setData({ theta: d.theta, x: d.x, n: d.theta.length / c.P });
        const loss = await e.trainStep(rows, { lr: 0 });
        const g = nllAndGrad(model, theta, x, c.n);
        expect(Math.abs(loss - g.loss), 'batch loss').toBeLessThan(1e-4 + 1e-5 * Math.abs(g.loss));
        const got = await e.getGradient();
        let norm = 0;
        for (const v of g.grad) norm += v * v;
        norm = Math.sqrt(norm);
        // Per tensor, relative to the global gradient norm: f32 products summed over n rows (in 4
        // chunks, split-K) and through the layers, 2e-6 of the norm (measured: 3e-7 on well-conditioned
        // cases), plus 10x the float64 sensitivity to one-ulp perturbations (the steep-bin sample).
        const gb = sens.grad.map((v) => 10 * v);
        for (const t of model.layout.tensors) {
          const sl = (a: Float64Array) => a.subarray(t.offset, t.offset + t.size);
          expectAllClose(sl(got), sl(g.grad), { atol: 2e-6 * norm, bound: sl(gb), label: `${caseName(c)} grad ${t.name}` });
        }
        // Alignment gaps of the gradient stay exactly zero.
        const inTensor = new Uint8Array(model.layout.size);
        for (const t of model.layout.tensors) inTensor.fill(1, t.offset, t.offset + t.size);
        for (let i = 0; i < got.length; i++) if (!inTensor[i]) expect(got[i]).toBe(0);
      } finally {
        await e.dispose();
      }
    });
  }

  it('split-K weight gradients with padded rows (4 x 65 and 52 x 5 rows for n = 257) = one chunk', async () => {
    const c = CASES[5];
    const { model } = setup(c, 3);
    const d = problem(c.P, c.F, 300, 3);
    const rows = Uint32Array.from({ length: 257 }, (_, i) => (i * 31) % 300);
    const grads: Float64Array[] = [];
    for (const split of [{ maxSplits: 1, minChunk: 1 }, SPLIT_TEST, { maxSplits: 64, minChunk: 2 }]) {
      const rs = rowSplit(257, split);
      expect([rs.S, rs.c, rs.nPad]).toEqual(split.maxSplits === 1 ? [1, 257, 257] : split.maxSplits === 4 ? [4, 65, 260] : [52, 5, 260]);
      const e = await engine(model, { split });
      await e.setData({ theta: d.theta, x: d.x, n: 300 });
      await e.trainStep(rows, { lr: 0 });
      grads.push(await e.getGradient());
      await e.dispose();
    }
    let norm = 0;
    for (const v of grads[0]) norm += v * v;
    norm = Math.sqrt(norm);
    // Different f32 summation orders only.
    expectAllClose(grads[1], grads[0], { atol: 1e-5 * norm, label: 'split 4 vs 1' });
    expectAllClose(grads[2], grads[0], { atol: 1e-5 * norm, label: 'split 64 vs 1' });
  });

  it('Adam steps (clipping on, weight decay) = src/flow/adam.ts on the engine gradients; the CPU engine step agrees', async () => {
    const c = CASES[3];
    const { model, d } = setup(c, 5);
    const N = d.theta.length / c.P;
    const e = await engine(model);
    const cpu = new CpuFlowEngine(model);
    try {
      await e.setData({ theta: d.theta, x: d.x, n: N });
      await cpu.setData({ theta: d.theta, x: d.x, n: N });
      const opts = { lr: 1e-3, clipNorm: 0.5, weightDecay: 1e-2, beta1: 0.8, beta2: 0.99, eps: 1e-7 };
      const ref = Float64Array.from(await e.getParams());
      const state = createAdamState(ref.length);
      // Rounding bounds of the f32 moments: each step adds (1 - beta) times a term rounded to a few u
      // of (|g| + wd |p|) (Adam's L2 term cancels against g for some elements: relative bounds fail).
      const U = 2 ** -24;
      const bm = new Float64Array(ref.length);
      const bv = new Float64Array(ref.length);
      let clipped = 0;
      for (let s = 0; s < 3; s++) {
        const rows = Uint32Array.from({ length: 40 }, (_, i) => (i * 7 + s * 13) % N);
        await e.trainStep(rows, opts);
        const g = await e.getGradient();
        if (clipGradNorm(g, opts.clipNorm) > opts.clipNorm) clipped++;
        for (let i = 0; i < ref.length; i++) {
          const a = Math.abs(g[i]) + opts.weightDecay * Math.abs(ref[i]);
          bm[i] = opts.beta1 * bm[i] + (1 - opts.beta1) * 8 * U * a + 2 * U * Math.abs(state.m[i]);
          bv[i] = opts.beta2 * bv[i] + (1 - opts.beta2) * 16 * U * a * a + 2 * U * state.v[i];
        }
        adamStep(ref, g, state, { lr: opts.lr, beta1: opts.beta1, beta2: opts.beta2, eps: opts.eps, weightDecay: opts.weightDecay });
        if (s === 0) await cpu.trainStep(rows, opts);
        if (s === 0) {
          // Against the float64 engine after one step: the update lr m/(sqrt v + eps) = lr sign(g) for
          // |g| >> eps, so only elements whose gradient is above the f32 noise (1e-5 of the norm) are comparable.
          const pg = await e.getParams();
          const pc = await cpu.getParams();
          const gc = nllAndGrad(cpu.model, d.theta.subarray(0, 40 * c.P), d.x.subarray(0, 40 * c.F), 40, model.params).grad;
          let norm = 0;
          for (const v of gc) norm += v * v;
          norm = Math.sqrt(norm);
          let compared = 0;
          for (let i = 0; i < pg.length; i++) {
            if (Math.abs(gc[i]) < 1e-3 * norm) continue;
            compared++;
            expect(Math.abs(pg[i] - pc[i]), `param ${i}`).toBeLessThan(1e-6 + 1e-6 * Math.abs(pc[i]) + 1e-3 * opts.lr);
          }
          expect(compared).toBeGreaterThan(100);
        }
      }
      expect(clipped).toBeGreaterThan(0);
      // f32 parameters (|p| <= ~2: 1.2e-7) and an f32 update of size <= lr (1e-6 relative of it).
      expectAllClose(await e.getParams(), ref, { atol: 1e-8, rtol: 3e-7, label: 'params after 3 Adam steps' });
      const st = await e.getOptimizerState();
      expect(st.step).toBe(3);
      expectAllClose(st.m, state.m, { bound: bm, label: 'Adam m' });
      expectAllClose(st.v, state.v, { bound: bv, label: 'Adam v' });
      // The state round-trips; a reset zeroes it.
      await e.setOptimizerState({ step: 7, m: state.m, v: state.v });
      const st2 = await e.getOptimizerState();
      expect(st2.step).toBe(7);
      expectAllClose(st2.m, state.m, { rtol: 1e-7, atol: 0 });
      await e.resetOptimizer();
      expect((await e.getOptimizerState()).step).toBe(0);
    } finally {
      await e.dispose();
    }
  });

  for (const c of [CASES[0], CASES[4], CASES[5]]) {
    it(`${caseName(c)}: samples from the same base normals (inverse) = the CPU engine's; log-probs of the samples agree`, async () => {
      const { model, d } = setup(c, 7);
      // evalBlock 100: 257 draws run as three pipelined blocks (100, 100, 57).
      const e = await engine(model, { evalBlock: 100 });
      const cpu = new CpuFlowEngine(model);
      try {
        const nCtx = 9;
        const m = 257;
        const req = {
          x: d.x.subarray(0, nCtx * c.F),
          nCtx,
          ctxIndex: Uint32Array.from({ length: m }, (_, i) => (i * 5) % nCtx),
          drawIndex: Float64Array.from({ length: m }, (_, i) => (i < 200 ? i : 2 ** 41 + 3 * i)),
          seed: 11,
        };
        const [sg, sc] = [await e.sample(req), await cpu.sample(req)];
        // z differs by ~1e-6 (f32 Box-Muller), then T inverse layers in f32: measured worst 1.3e-5 std
        // (allowed 1e-4 std); log-probs 2.7e-4 on the (5, 50) case, whose perturbed bins are steep
        // (the float64 log-density moves by up to 1.6e-4 under one-ulp input perturbations there).
        const std = model.thetaStd.std;
        expectAllClose(sg.theta, sc.theta, { atol: 0, bound: Float64Array.from(sc.theta, (_, i) => 1e-4 * std[i % c.P]), label: 'samples' });
        expectAllClose(sg.logProb, sc.logProb, { atol: 1e-3, rtol: 1e-5, label: 'sample log-probs' });
        // The forward pass of the samples gives their log-densities back.
        const xs = new Float64Array(m * c.F);
        for (let i = 0; i < m; i++) xs.set(req.x.subarray(req.ctxIndex[i] * c.F, (req.ctxIndex[i] + 1) * c.F), i * c.F);
        expectAllClose(await e.logProb(sg.theta, xs, m), sg.logProb, { atol: 1e-3, rtol: 1e-5, label: 'logProb(samples)' });
        // Batching does not change a draw.
        const one = await e.sample({ ...req, ctxIndex: req.ctxIndex.subarray(250, 251), drawIndex: req.drawIndex.subarray(250, 251) });
        expect(Array.from(one.theta)).toEqual(Array.from(sg.theta.subarray(250 * c.P, 251 * c.P)));
        await expect(e.sample({ ...req, ctxIndex: Uint32Array.of(nCtx) , drawIndex: Float64Array.of(0) })).rejects.toThrow(/context index 9 outside/);
      } finally {
        await e.dispose();
      }
    });
  }

  it('trainEpoch walks the CPU engine mini-batches: epoch losses, validation losses and parameters agree', async () => {
    const c = CASES[5];
    const n = 700;
    const d = problem(c.P, c.F, n, 9);
    const model = createFlow({ thetaDim: c.P, contextDim: c.F, transforms: 3, hidden: 20, blocks: 1, bins: 6, seed: 2 });
    fitFlowStandardization(model, d.theta, d.x, n);
    const e = await engine(model, { evalBlock: 64 });
    const cpu = new CpuFlowEngine(model);
    try {
      await e.setData({ theta: d.theta, x: d.x, n });
      await cpu.setData({ theta: d.theta, x: d.x, n });
      const rows = Uint32Array.from({ length: 600 }, (_, i) => (i * 7) % n);
      const val = Uint32Array.from({ length: 100 }, (_, i) => 600 + i);
      for (let epoch = 0; epoch < 3; epoch++) {
        const spec = { rows, seed: 4, epoch, batchSize: 128, lr: 2e-3, clipNorm: 5 };
        const [sg, sc] = [await e.trainEpoch(spec), await cpu.trainEpoch(spec)];
        expect(sg.steps).toBe(5);
        expect(sg.samples).toBe(600);
        // 15 Adam steps in f32 vs f64 (sign-like first updates amplify f32 noise on tiny gradients): measured 1.1e-6.
        expect(Math.abs(sg.meanLoss - sc.meanLoss), `epoch ${epoch} train loss`).toBeLessThan(1e-3);
        expect(Math.abs((await e.evalLoss(val)) - (await cpu.evalLoss(val))), `epoch ${epoch} val loss`).toBeLessThan(1e-3);
      }
      expectAllClose(await e.getParams(), await cpu.getParams(), { atol: 1e-3, label: 'params after 3 epochs' });
      await expect(e.trainEpoch({ rows: Uint32Array.of(n), seed: 0, epoch: 0, batchSize: 4, lr: 1e-3 })).rejects.toThrow(/row 700 outside the dataset/);
      await expect(e.trainEpoch({ rows, seed: 0, epoch: 0, batchSize: 0, lr: 1e-3 })).rejects.toThrow(/batchSize must be a positive integer/);
    } finally {
      await e.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('training with the GPU engine', () => {
  it('linear-Gaussian library: the validation loss falls like the CPU engine (same batches, f32)', async () => {
    // theta ~ N(0, I_2), x = theta + 0.5 eps: posterior N(0.8 x, 0.2 I), expected NLL 1.228.
    const d = linearGaussianData({ n: 1500, seed: 3, P: 2, F: 2 });
    const run = (kind: 'cpu' | 'gpu') =>
      trainFlow({
        data: { theta: d.theta, x: d.x, n: 1500 },
        flow: { transforms: 2, hidden: 16, blocks: 1, bins: 8 },
        options: { batchSize: 100, lr: 5e-3, maxEpochs: 8, patience: 50, seed: 1 },
        engine: kind === 'gpu' ? (m) => engine(m) : 'cpu',
      });
    const [g, c] = [await run('gpu'), await run('cpu')];
    expect(g.summary.engine).toBe('gpu');
    const vg = g.history.map((h) => h.valLoss!);
    const vc = c.history.map((h) => h.valLoss!);
    expect(vg[vg.length - 1]).toBeLessThan(vg[0] - 0.3);
    expect(vg[vg.length - 1]).toBeLessThan(1.5);
    // 8 epochs x 14 steps in f32 vs float64 on identical batches: the curves coincide to 2.5e-7 (measured).
    for (let i = 0; i < vg.length; i++) expect(Math.abs(vg[i] - vc[i]), `epoch ${i}`).toBeLessThan(0.01);
  });

  it('a model with a dense layout (alignElements 1) runs on the 64-aligned device layout; parameters convert both ways', async () => {
    const c = CASES[2];
    const d = problem(c.P, c.F, 100, 4);
    const model = createFlow({ thetaDim: c.P, contextDim: c.F, transforms: 3, hidden: 7, blocks: 2, bins: 5, seed: 4 }, { alignElements: 1 });
    fitFlowStandardization(model, d.theta, d.x, 100);
    expect(model.layout.size).toBe(model.layout.denseSize);
    const e = await engine(model);
    try {
      expect(e.layout.alignElements).toBe(64);
      expectAllClose(await e.getParams(), model.params, { rtol: 6e-8, atol: 0 });
      expectAllClose(await e.logProb(d.theta, d.x, 100), forward(model, d.theta, d.x, 100).logProb, { atol: 1e-4, rtol: 1e-5 });
      await e.setData({ theta: d.theta, x: d.x, n: 100 });
      await e.trainStep(Uint32Array.from({ length: 100 }, (_, i) => i), { lr: 0 });
      const g = nllAndGrad(model, d.theta, d.x, 100).grad;
      let norm = 0;
      for (const v of g) norm += v * v;
      expectAllClose(await e.getGradient(), g, { atol: 2e-6 * Math.sqrt(norm) });
    } finally {
      await e.dispose();
    }
  });

  it("createFlowEngine('gpu') creates its own device and releases it", async () => {
    const { model } = setup(CASES[2]);
    const e = await createFlowEngine('gpu', model, { device: deviceOptionsFromEnv() });
    try {
      expect(e.kind).toBe('gpu');
      const { theta, x } = problem(3, 0, 5, 1);
      expectAllClose(await e.logProb(theta, x, 5), forward(model, theta, x, 5).logProb, { atol: 1e-4, rtol: 1e-5 });
      await expect(e.setParams(new Float64Array(3))).rejects.toThrow(/setParams: 3 values/);
      await expect(e.evalLoss(Uint32Array.of(0))).rejects.toThrow(/no data/);
      // Parameters round-trip (f32).
      const p = await e.getParams();
      expectAllClose(p, model.params, { rtol: 6e-8, atol: 0 });
    } finally {
      await e.dispose();
    }
  });

  it('synference train --engine gpu trains a tiny library; sample --engine gpu draws from it', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'gpuflow-'));
    const lib = path.join(tmp, 'lib.h5');
    await writeLinearGaussianLibrary(lib, { n: 400, seed: 21, P: 2, F: 2, noise: 0.3, uniform: { low: -2, high: 2 }, withPriorConfig: true });
    let stderr = '';
    const cli = async (args: string[]) => {
      const program = new Command('synference').option('--adapter <name>').option('--gpu-backend <name>').option('--power-preference <pref>').exitOverride();
      program.configureOutput({ writeErr: (s) => (stderr += s), writeOut: (s) => (stderr += s) });
      registerTrain(program);
      registerSample(program);
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
        stderr += String(s);
        return true;
      });
      try {
        await program.parseAsync(['node', 'synference', ...args]);
        return 0;
      } catch (e) {
        if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
        stderr += `synference: ${(e as Error).message}\n`;
        return 1;
      } finally {
        spy.mockRestore();
      }
    };
    const model = path.join(tmp, 'model');
    const flowYaml = path.join(tmp, 'flow.yaml');
    writeFileSync(flowYaml, 'flow:\n  transforms: 2\n  hidden: 12\n  blocks: 1\n  bins: 6\ntrain:\n  lr: 0.005\n  valFraction: 0.2\n');
    expect(await cli(['train', '--library', lib, '--out', model, '--config', flowYaml, '--epochs', '4', '--batch-size', '64', '--seed', '3', '--engine', 'gpu']), stderr).toBe(0);
    expect(stderr).toMatch(/engine gpu/);
    expect(stderr).toMatch(/train: wrote .*model \(4 epochs, stopped by maxEpochs/);
    const cfg = JSON.parse(readFileSync(path.join(model, 'config.json'), 'utf8'));
    expect(cfg.training.engine).toBe('gpu');
    const obs = path.join(tmp, 'obs.csv');
    writeFileSync(obs, 'id,obs0,obs1\ng1,0.1,0.2\n');
    const out = path.join(tmp, 'samples.csv');
    expect(await cli(['sample', '--model', model, '--x', obs, '--n', '50', '--out', out, '--engine', 'gpu', '--seed', '2']), stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(51);
  });
});


