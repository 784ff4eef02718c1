/**
 * The GPU engine with the MDN head (config.head 'mdn': kernels/nn/mdn.ts behind the conditioner)
 * against the CPU engine (float64, src/flow/mdn.ts), on both conditioner paths ('gemm', forced on
 * lavapipe with a 4-way row split so that padded rows are exercised, and 'rows') and with a real
 * GPU's kernel choices (gpuKernels): log-densities, the validation loss, every gradient tensor,
 * posterior draws (same draw indices: same base normals and component uniforms) and three
 * training epochs.
 *
 * Tolerances (f32 against float64; measured worst values in the comments at each check):
 * - log q: the conditioner's f32 outputs (relative ~1e-6 of |raw| ~ 1) move log q by |d log q /
 *   d raw| |raw| 1e-6 ~ |e|^2 1e-6, plus the mixture kernel's own rounding (test/kernels/mdn.test.ts):
 *   2e-5 absolute + 4e-6 relative (log q ~ -10 .. -40 on these perturbed models).
 * - gradients: f32 sums over the batch's rows in another order than float64's: 2e-6 of the global
 *   gradient norm per element (as the NSF engine tests).
 * - draws: t = mu_k + U_k^-1 z from f32 raw values: 1e-4 standard deviations, log q as above; a
 *   draw whose u lies within 1e-6 of a cumulative mixture weight may pick the neighbouring
 *   component in f32 (counted; none expected in these few hundred draws).
 * - epochs: f32 vs float64 through 15 Adam steps, as the NSF engine tests.
 */
import { describe, expect, it } from 'vitest';
import { type FlowModel, createFlow, fitFlowStandardization, forwardStd, nllAndGrad } from '../../src/flow/flow.js';
import { GpuFlowEngine } from '../../src/flow/gpuEngine.js';
import { mdnParamsPerComponent } from '../../src/flow/mdn.js';
import { RngPurpose, standardNormals, uniform } from '../../src/flow/rng.js';
import { standardize } from '../../src/flow/standardize.js';
import { CpuFlowEngine } from '../../src/train/engine.js';
import { TrainRngPurpose } from '../../src/train/split.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';
import { threeEpochLosses } from './helpers.js';

const ctx = useGpu();

interface Case {
  P: number;
  F: number;
  K: number;
}

const CASES: Case[] = [
  { P: 8, F: 29, K: 10 },
  { P: 1, F: 0, K: 3 },
];

function setup(c: Case, n: number, seed: number): { model: FlowModel; theta: Float64Array; x: Float64Array } {
  const theta = standardNormals(n * c.P, seed, RngPurpose.user);
  const e = standardNormals(n * c.F, seed + 1, RngPurpose.user);
  const x = new Float64Array(n * c.F);
  for (let r = 0; r < n; r++) for (let f = 0; f < c.F; f++) x[r * c.F + f] = theta[r * c.P + (f % c.P)] + 0.5 * e[r * c.F + f];
  const model = createFlow({ thetaDim: c.P, contextDim: c.F, head: 'mdn', components: c.K, hidden: 50, blocks: 2, seed });
  fitFlowStandardization(model, theta, x, n);
  // Perturbed weights (lin2 starts at ~1e-3 and, with F = 0, the conditioner at its biases only).
  const z = standardNormals(model.layout.size, seed + 2, RngPurpose.user);
  for (let i = 0; i < model.params.length; i++) model.params[i] += 0.05 * z[i];
  return { model, theta, x };
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));
const CONFIGS = ['gemm', 'rows', 'gpu'] as const;
type Config = (typeof CONFIGS)[number];

function engineFor(model: FlowModel, config: Config, extra: { evalBlock?: number } = {}): Promise<GpuFlowEngine> {
  const linear = config === 'rows' ? 'rows' : 'gemm';
  // gemm: split-K over 4 chunks (257 rows: 3 padded rows, whose zero seeds the MDN backward skips).
  return GpuFlowEngine.create(model, { gpu: ctx.gpu, linear, gpuKernels: config === 'gpu', split: config === 'gemm' ? { maxSplits: 4, minChunk: 32 } : undefined, ...extra });
}

/** Whether u lies within `tol` of a cumulative mixture weight of context row r (float64 raw). */
function nearBoundary(raw: Float64Array, r: number, c: Case, u: number, tol = 1e-6): boolean {
  const C = mdnParamsPerComponent(c.P);
  const off = r * c.K * C;
  const a = Array.from({ length: c.K }, (_, k) => raw[off + k * C]);
  const am = Math.max(...a);
  const s = a.reduce((acc, v) => acc + Math.exp(v - am), 0);
  let cum = 0;
  for (let k = 0; k < c.K - 1; k++) {
    cum += Math.exp(a[k] - am) / s;
    if (Math.abs(u - cum) < tol) return true;
  }
  return false;
}

describe('GPU engine, MDN head, against the CPU engine', () => {
  for (const c of CASES) {
    it(`P=${c.P} F=${c.F} K=${c.K} (H=50, 2 blocks): log-probs, eval loss, gradients and draws on every path`, async () => {
      const n = 257;
      const { model, theta, x } = setup(c, n, 3);
      const cpu = new CpuFlowEngine(model);
      await cpu.setData({ theta, x, n });
      const rows = Uint32Array.from({ length: n }, (_, i) => i);
      const lpRef = await cpu.logProb(theta, x, n);
      const evalRef = await cpu.evalLoss(rows);
      const g = nllAndGrad(model, theta, x, n);
      const gn = norm(g.grad);
      // Draws: 7 contexts, contiguous draw indices (the fast path) and scattered ones, some above
      // 2^32 (the kernel recovers d from the base normals' offsets d P).
      const nCtx = 7;
      const m = 150;
      const ctxIndex = Uint32Array.from({ length: m }, (_, i) => i % nCtx);
      const drawSets = {
        contiguous: Float64Array.from({ length: m }, (_, i) => 1000 + i),
        scattered: Float64Array.from({ length: m }, (_, i) => (i % 2 ? 2 ** 36 + 13 * i : 7 * i)),
      };
      const req = (drawIndex: Float64Array) => ({ x: x.subarray(0, nCtx * c.F), nCtx, ctxIndex, drawIndex, seed: 5 });
      const sRef = { contiguous: await cpu.sample(req(drawSets.contiguous)), scattered: await cpu.sample(req(drawSets.scattered)) };
      // The mixture's raw values per context (float64), for the boundary test of a differing draw.
      const xsCtx = standardize(x.subarray(0, nCtx * c.F), model.xStd);
      const rawCtx = forwardStd(model, model.params, new Float64Array(nCtx * c.P), xsCtx, nCtx).cache.layers[0].raw;
      const std = model.thetaStd.std;
      for (const config of CONFIGS) {
        const e = await engineFor(model, config, { evalBlock: 100 });
        try {
          expect(e.net.head).toBe('mdn');
          const lp = await e.logProb(theta, x, n);
          // measured worst (lavapipe): 5e-6 at P = 8 (log q -8 .. -26), 5e-7 at P = 1
          expectAllClose(lp, lpRef, { atol: 2e-5, rtol: 4e-6, label: `${config} logProb` });
          await e.setData({ theta, x, n });
          expect(await e.evalLoss(rows)).toBeCloseTo(evalRef, 4);
          await e.trainStep(rows, { lr: 0 });
          const grad = await e.getGradient();
          for (const t of model.layout.tensors) {
            const sl = (a: Float64Array) => a.subarray(t.offset, t.offset + t.size);
            // measured worst: 4e-7 of the norm (P = 1), 4e-8 (P = 8)
            expectAllClose(sl(grad), sl(g.grad), { atol: 2e-6 * gn, label: `${config} grad ${t.name}` });
          }
          for (const [kind, drawIndex] of Object.entries(drawSets) as [keyof typeof drawSets, Float64Array][]) {
            const s = await e.sample(req(drawIndex));
            const ref = sRef[kind];
            let other = 0;
            for (let i = 0; i < m; i++) {
              // measured worst: 2.2e-5 standard deviations; log q 6.5e-6
              const close = Array.from({ length: c.P }, (_, p) => Math.abs(s.theta[i * c.P + p] - ref.theta[i * c.P + p]) <= 1e-4 * std[p]).every(Boolean);
              if (!close) {
                // A different component: only where u is within 1e-6 of a boundary.
                const u = uniform(5, TrainRngPurpose.mixture, drawIndex[i]);
                if (!nearBoundary(rawCtx, ctxIndex[i], c, u)) throw new Error(`${config} ${kind} draw ${i}: theta ${Array.from(s.theta.subarray(i * c.P, (i + 1) * c.P))} vs ${Array.from(ref.theta.subarray(i * c.P, (i + 1) * c.P))}`);
                other++;
                continue;
              }
              expect(Math.abs(s.logProb[i] - ref.logProb[i])).toBeLessThanOrEqual(2e-5 + 4e-6 * Math.abs(ref.logProb[i]));
            }
            if (other) console.log(`${config} ${kind}: ${other} draw(s) at a component boundary`);
            expect(other).toBeLessThanOrEqual(1);
          }
        } finally {
          await e.dispose();
        }
      }
      await cpu.dispose();
    });
  }

  it('three epochs on the same mini-batches: every path follows the CPU engine', async () => {
    const c = CASES[0];
    const n = 600;
    const { model, theta, x } = setup(c, n, 9);
    const losses: number[][] = [];
    for (const kind of ['cpu', ...CONFIGS] as const) {
      const e = kind === 'cpu' ? new CpuFlowEngine(model) : await engineFor(model, kind);
      losses.push(await threeEpochLosses(e, { theta, x, n }, (g) => g instanceof GpuFlowEngine && console.log(`mdn ${kind}: ${g.lastStepDispatches} dispatches per training step (batch 100)`)));
    }
    expect(losses[0][2]).toBeLessThan(losses[0][0]);
    for (const l of losses.slice(1)) expectAllClose(l, losses[0], { atol: 2e-4, rtol: 1e-5, label: 'epoch losses' });
  });
});
