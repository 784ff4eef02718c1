/**
 * The GPU engine's two conditioner paths (src/flow/gpu/network.ts LinearPath) agree with each other
 * and with the float64 reference: 'rows' (the default on CPU drivers, which the other engine tests
 * exercise here) and 'gemm' (the default on GPUs, forced here so that it stays tested on lavapipe).
 * Plus the idle event pump (src/flow/gpu/pump.ts) that CPU drivers wait with.
 *
 * Tolerances are f32 ones on mildly perturbed flows (no steep bins): log-densities to 5e-5 absolute
 * + 2e-6 relative (T layers of f32 products of width <= 50 + 29 features, a few u each, on
 * log q ~ 10-20; measured worst 1.5e-5 at -18.6), gradients to 2e-6 of the global gradient norm per
 * element (f32 sums over 257 rows in different orders, as the engine tests; measured 5e-8), samples
 * to 1e-4 standard deviations (as the engine tests).
 */
import { describe, expect, it } from 'vitest';
import { type FlowModel, createFlow, fitFlowStandardization, forward, nllAndGrad } from '../../src/flow/flow.js';
import { withBusyPump, withIdlePump } from '../../src/gpu/pump.js';
import { GpuFlowEngine } from '../../src/flow/gpuEngine.js';
import { RngPurpose, standardNormals } from '../../src/flow/rng.js';
import { CpuFlowEngine } from '../../src/train/engine.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';
import { threeEpochLosses } from './helpers.js';

const ctx = useGpu();

interface Case {
  P: number;
  F: number;
  hidden: number;
  blocks: number;
  transforms: number;
  activation: 'relu' | 'tanh';
}

const CASES: Case[] = [
  { P: 8, F: 29, hidden: 50, blocks: 2, transforms: 5, activation: 'relu' },
  { P: 3, F: 0, hidden: 7, blocks: 1, transforms: 3, activation: 'tanh' },
  { P: 1, F: 0, hidden: 5, blocks: 0, transforms: 2, activation: 'relu' },
];

function setup(c: Case, n: number, seed: number): { model: FlowModel; theta: Float64Array; x: Float64Array } {
  const theta = standardNormals(n * c.P, seed, RngPurpose.user);
  const e = standardNormals(n * c.F, seed + 1, RngPurpose.user);
  const x = new Float64Array(n * c.F);
  for (let r = 0; r < n; r++) for (let f = 0; f < c.F; f++) x[r * c.F + f] = theta[r * c.P + (f % c.P)] + 0.5 * e[r * c.F + f];
  const model = createFlow({ thetaDim: c.P, contextDim: c.F, transforms: c.transforms, hidden: c.hidden, blocks: c.blocks, bins: 8, activation: c.activation, seed });
  fitFlowStandardization(model, theta, x, n);
  const z = standardNormals(model.layout.size, seed + 2, RngPurpose.user);
  for (let i = 0; i < model.params.length; i++) model.params[i] += 0.05 * z[i];
  return { model, theta, x };
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

describe("GPU engine: 'gemm' and 'rows' conditioner paths", () => {
  for (const c of CASES) {
    it(`P=${c.P} F=${c.F} H=${c.hidden} blocks=${c.blocks} T=${c.transforms} ${c.activation}: log-probs, gradients and samples agree with each other and float64`, async () => {
      const n = 257;
      const { model, theta, x } = setup(c, n, 3);
      const ref = forward(model, theta, x, n);
      const g = nllAndGrad(model, theta, x, n);
      const gn = norm(g.grad);
      const rows = Uint32Array.from({ length: n }, (_, i) => i);
      const results: { lp: Float64Array; grad: Float64Array; samples: Float64Array }[] = [];
      // 'gemm' as CPU drivers run it, 'rows', and 'gpu': everything a real GPU gets (the gemm path,
      // workgroup column sums, the barrier-synchronised spline).
      for (const config of ['gemm', 'rows', 'gpu'] as const) {
        const linear = config === 'rows' ? 'rows' : 'gemm';
        // gemm: split-K over 4 chunks of 65 rows (3 padded rows), as the engine tests do.
        const e = await GpuFlowEngine.create(model, { gpu: ctx.gpu, linear, gpuKernels: config === 'gpu', split: linear === 'gemm' ? { maxSplits: 4, minChunk: 32 } : undefined, evalBlock: 100 });
        try {
          expect(e.net.linear).toBe(linear);
          expect([e.net.wideColSum, e.net.serialSpline]).toEqual(config === 'gpu' ? [true, false] : [false, true]);
          const lp = await e.logProb(theta, x, n);
          expectAllClose(lp, ref.logProb, { atol: 5e-5, rtol: 2e-6, label: `${linear} logProb` });
          await e.setData({ theta, x, n });
          await e.trainStep(rows, { lr: 0 });
          const grad = await e.getGradient();
          for (const t of model.layout.tensors) {
            const sl = (a: Float64Array) => a.subarray(t.offset, t.offset + t.size);
            expectAllClose(sl(grad), sl(g.grad), { atol: 2e-6 * gn, label: `${linear} grad ${t.name}` });
          }
          const nCtx = 7;
          const s = await e.sample({
            x: x.subarray(0, nCtx * c.F),
            nCtx,
            ctxIndex: Uint32Array.from({ length: 150 }, (_, i) => i % nCtx),
            drawIndex: Float64Array.from({ length: 150 }, (_, i) => i),
            seed: 5,
          });
          results.push({ lp, grad, samples: s.theta });
        } finally {
          await e.dispose();
        }
      }
      const [a, ...others] = results;
      const std = model.thetaStd.std;
      for (const [i, b] of others.entries()) {
        const label = `${['rows', 'gpu'][i]} vs gemm`;
        expectAllClose(b.lp, a.lp, { atol: 5e-5, rtol: 2e-6, label: `${label} logProb` });
        expectAllClose(b.grad, a.grad, { atol: 2e-6 * gn, label: `${label} gradient` });
        expectAllClose(b.samples, a.samples, { atol: 0, bound: Float64Array.from(a.samples, (_, i) => 1e-4 * std[i % c.P]), label: `${label} samples` });
      }
    });
  }

  it('three epochs on the same mini-batches: both paths follow the CPU engine', async () => {
    const c = CASES[0];
    const n = 600;
    const { model, theta, x } = setup(c, n, 9);
    const losses: number[][] = [];
    for (const kind of ['cpu', 'gemm', 'rows', 'gpu'] as const) {
      const e = kind === 'cpu' ? new CpuFlowEngine(model) : kind === 'gpu' ? await GpuFlowEngine.create(model, { gpu: ctx.gpu, gpuKernels: true }) : await GpuFlowEngine.create(model, { gpu: ctx.gpu, linear: kind });
      losses.push(await threeEpochLosses(e, { theta, x, n }));
    }
    // f32 vs float64 through 15 Adam steps (lr 2e-3): the parameters drift apart by ~1e-6 relative.
    for (const l of losses.slice(1)) expectAllClose(l, losses[0], { atol: 2e-4, rtol: 1e-5, label: 'epoch losses' });
  });
});

describe('withIdlePump', () => {
  it('swaps setImmediate for a timer while GPU-bound calls run (nested), and restores it (also on errors)', async () => {
    const original = globalThis.setImmediate;
    let inner: unknown;
    await withIdlePump(true, async () => {
      expect(globalThis.setImmediate).not.toBe(original);
      await withIdlePump(true, async () => {
        inner = globalThis.setImmediate;
      });
      // Still swapped after the inner call ended: the outer one is running.
      expect(globalThis.setImmediate).toBe(inner);
      // The replacement still runs callbacks, with their arguments.
      await new Promise<void>((resolve) => globalThis.setImmediate((v: number) => (expect(v).toBe(3), resolve()), 3));
    });
    expect(globalThis.setImmediate).toBe(original);
    await expect(withIdlePump(true, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(globalThis.setImmediate).toBe(original);
    await withIdlePump(false, async () => expect(globalThis.setImmediate).toBe(original));
    // withBusyPump puts Dawn's own pump back inside an idle scope, and the timer after it.
    await withIdlePump(true, async () => {
      const timer = globalThis.setImmediate;
      expect(timer).not.toBe(original);
      await withBusyPump(async () => expect(globalThis.setImmediate).toBe(original));
      expect(globalThis.setImmediate).toBe(timer);
    });
    expect(globalThis.setImmediate).toBe(original);
  });
});
