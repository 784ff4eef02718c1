/**
 * The MDN head at model level (src/flow/flow.ts with config.head = 'mdn'; the mixture math itself is
 * test/flow/mdn.test.ts): the mean-NLL gradient w.r.t. every parameter and theta by finite
 * differences, the forward's conventions (z = 0, logdet = log q + P log sqrt(2 pi), logProb = mdn
 * log q of the conditioner's output - sum log sd), normalisation, the CPU engine's sampling RNG
 * convention (z from TrainRngPurpose.posterior, u from TrainRngPurpose.mixture), model files and
 * config validation.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFlowConfig } from '../../src/flow/config.js';
import {
  type FlowModel,
  backwardStd,
  couplingForward,
  createFlow,
  fitFlowStandardization,
  forward,
  inverseStd,
  logProb,
  meanNll,
  nllAndGrad,
  sample,
} from '../../src/flow/flow.js';
import { HALF_LOG_2PI, mdnLogProb, mdnOutDim, mdnSample } from '../../src/flow/mdn.js';
import { conditionerForward } from '../../src/flow/mlp.js';
import { type ModelInfo, loadModelDir, parseModel, parseModelConfig, saveModelDir, serializeModel } from '../../src/flow/modelFiles.js';
import { uniform } from '../../src/flow/rng.js';
import { logStdSum, standardize } from '../../src/flow/standardize.js';
import { CpuFlowEngine, baseNormals, mixtureUniforms } from '../../src/train/engine.js';
import { TrainRngPurpose } from '../../src/train/split.js';
import { expectAllClose } from '../helpers/allclose.js';
import { expectNllGradMatchesFd, linspace, randn } from './helpers.js';

type Case = { thetaDim: number; contextDim: number; components: number; hidden: number; blocks: number; activation?: 'relu' | 'tanh' };

/** An MDN with fitted (non-trivial) standardisation and every weight perturbed by N(0, scale^2). */
function bentMdn(c: Case, seed: number, scale = 0.4): FlowModel {
  const m = createFlow({ ...c, head: 'mdn', seed });
  const P = c.thetaDim;
  const F = c.contextDim;
  const nTrain = 40;
  const tTrain = randn(nTrain * P, seed + 1, 0.8);
  for (let i = 0; i < tTrain.length; i++) tTrain[i] += 0.3 * (i % P) - 1;
  fitFlowStandardization(m, tTrain, randn(nTrain * F, seed + 2, 2), nTrain);
  const noise = randn(m.params.length, seed + 3, scale);
  for (const t of m.layout.tensors) for (let i = 0; i < t.size; i++) m.params[t.offset + i] += noise[t.offset + i];
  return m;
}

/** The conditioner's raw mixture values for contexts x (n x F), computed directly from mlp.ts. */
function rawOf(m: FlowModel, x: Float64Array, n: number): Float64Array {
  return conditionerForward(m.params, m.layout.layers[0], standardize(x, m.xStd), n, m.config.hidden, m.config.activation).out;
}

const shape = (m: FlowModel) => ({ P: m.config.thetaDim, K: m.config.components });

// P = 1 and 3, F = 0 and 2, K = 1 and 3, blocks 0 and 1, relu and tanh (every value of each at least twice).
const CASES: Case[] = [
  { thetaDim: 1, contextDim: 0, components: 1, hidden: 3, blocks: 0 },
  { thetaDim: 1, contextDim: 2, components: 3, hidden: 5, blocks: 1, activation: 'tanh' },
  { thetaDim: 1, contextDim: 2, components: 1, hidden: 4, blocks: 1 },
  { thetaDim: 3, contextDim: 0, components: 3, hidden: 4, blocks: 1 },
  { thetaDim: 3, contextDim: 2, components: 1, hidden: 5, blocks: 0, activation: 'tanh' },
  { thetaDim: 3, contextDim: 2, components: 3, hidden: 6, blocks: 1 },
];

const H = 1e-5;

describe('MDN head: mean-NLL gradient vs central finite differences', () => {
  // Same scheme as grad.test.ts: 5-point stencil, h = 1e-5 (truncation ~h^4, rounding ~1.5 eps |L| / h),
  // rtol 1e-6 plus atol = 100 eps |L| / h; a guard that most checked entries are far above atol.
  CASES.forEach((c, ci) => {
    it(`P=${c.thetaDim} F=${c.contextDim} K=${c.components} H=${c.hidden} blocks=${c.blocks} ${c.activation ?? 'relu'}`, () => {
      const m = bentMdn(c, 500 + 10 * ci);
      const P = c.thetaDim;
      const F = c.contextDim;
      const n = 6;
      const theta = randn(n * P, 600 + ci, 1.5);
      const x = randn(n * F, 700 + ci, 2);
      const g = nllAndGrad(m, theta, x, n);
      expect(Number.isFinite(g.loss)).toBe(true);
      expectNllGradMatchesFd(m, theta, x, n, g, { h: H, picks: 8, pickSeed: 11 * ci });
    });
  });
});

describe('MDN head: model-level conventions', () => {
  it('logProb = mdn log q(thetaStd | conditioner(xStd)) - sum log sd; forward gives z = 0, logdet = log q_std + P log sqrt(2 pi)', () => {
    for (const c of CASES) {
      const m = bentMdn(c, 41);
      const P = c.thetaDim;
      const n = 20;
      const theta = randn(n * P, 42, 2);
      const x = randn(n * c.contextDim, 43, 1.5);
      const lqStd = mdnLogProb(rawOf(m, x, n), standardize(theta, m.thetaStd), n, shape(m));
      const lsd = logStdSum(m.thetaStd);
      expect(Math.abs(lsd)).toBeGreaterThan(0.05); // the Jacobian term is really there
      const f = forward(m, theta, x, n);
      expect(Array.from(f.z)).toEqual(new Array(n * P).fill(0));
      expectAllClose(f.logdet, lqStd.map((v) => v + P * HALF_LOG_2PI), { atol: 1e-12, label: 'logdet' });
      expectAllClose(logProb(m, theta, x, n), lqStd.map((v) => v - lsd), { atol: 1e-12, label: 'logProb' });
    }
  });

  it('the log-density integrates to 1 (P = 1 over a grid; P = 2 over a 2-D grid), original units', () => {
    // P = 1, K = 3: box of +-60 std(theta) around the mean; the perturbed components have sds e^{-d}
    // of 0.16-3.5 standardised units and means within +-5.3 (these contexts), so the mass outside
    // is < 1e-40. The
    // trapezoid rule converges geometrically for a smooth integrand that decays to 0 at both ends
    // (measured 6e-13 with a step of 0.006 std); tolerance 1e-8. Without the -log sd term the
    // integral would be 1/sd = 2.5.
    const m = bentMdn({ thetaDim: 1, contextDim: 2, components: 3, hidden: 6, blocks: 1 }, 51, 0.5);
    m.thetaStd = { mean: Float64Array.of(1.5), std: Float64Array.of(0.4) };
    const n = 20001;
    const theta = linspace(1.5 - 60 * 0.4, 1.5 + 60 * 0.4, n);
    const h = theta[1] - theta[0];
    for (const xv of [
      [0, 0],
      [1.5, -2],
      [-3, 1],
    ]) {
      const x = new Float64Array(2 * n);
      for (let i = 0; i < n; i++) x.set(xv, 2 * i);
      const lp = logProb(m, theta, x, n);
      let s = 0;
      for (let i = 0; i < n; i++) s += (i === 0 || i === n - 1 ? 0.5 : 1) * Math.exp(lp[i]);
      expect(Math.abs(s * h - 1), `x = ${xv}`).toBeLessThan(1e-8);
    }
    // P = 2, K = 2, full covariance: a 601 x 601 grid over +-20 std (the density is negligible at the
    // edges, so the plain sum is the trapezoid rule); measured 9e-15, tolerance 1e-8.
    const m2 = bentMdn({ thetaDim: 2, contextDim: 1, components: 2, hidden: 5, blocks: 0 }, 52, 0.3);
    const g = 601;
    const sd = Array.from(m2.thetaStd.std);
    const mu = Array.from(m2.thetaStd.mean);
    const ax = [0, 1].map((p) => linspace(mu[p] - 20 * sd[p], mu[p] + 20 * sd[p], g));
    const th = new Float64Array(g * g * 2);
    for (let i = 0; i < g; i++)
      for (let j = 0; j < g; j++) {
        th[2 * (i * g + j)] = ax[0][i];
        th[2 * (i * g + j) + 1] = ax[1][j];
      }
    const lp = logProb(m2, th, new Float64Array(g * g).fill(0.7), g * g);
    let s = 0;
    for (let k = 0; k < g * g; k++) s += Math.exp(lp[k]);
    expect(Math.abs(s * (ax[0][1] - ax[0][0]) * (ax[1][1] - ax[1][0]) - 1)).toBeLessThan(1e-8);
  });

  it('sample / inverseStd: t = mdnSample(raw, z, u), theta = t sd + mean, logProb = the density of the draw; u is required', () => {
    const m = bentMdn({ thetaDim: 3, contextDim: 2, components: 3, hidden: 6, blocks: 1 }, 61);
    const nCtx = 4;
    const M = 25;
    const x = randn(nCtx * 2, 62);
    const z = randn(nCtx * M * 3, 63);
    const u = Float64Array.from({ length: nCtx * M }, (_, i) => uniform(64, TrainRngPurpose.mixture, i));
    const s = sample(m, x, nCtx, z, M, m.params, u);
    const raw = rawOf(m, x, nCtx);
    const O = mdnOutDim(3, 3);
    const rawRep = new Float64Array(nCtx * M * O);
    for (let i = 0; i < nCtx * M; i++) rawRep.set(raw.subarray(Math.floor(i / M) * O, (Math.floor(i / M) + 1) * O), i * O);
    const want = mdnSample(rawRep, z, u, nCtx * M, shape(m));
    const thetaWant = want.t.map((v, i) => v * m.thetaStd.std[i % 3] + m.thetaStd.mean[i % 3]);
    expectAllClose(s.theta, thetaWant, { atol: 1e-12, rtol: 1e-12, label: 'theta' });
    const xRep = new Float64Array(nCtx * M * 2);
    for (let i = 0; i < nCtx * M; i++) xRep.set(x.subarray(Math.floor(i / M) * 2, Math.floor(i / M) * 2 + 2), i * 2);
    expectAllClose(s.logProb, logProb(m, s.theta, xRep, nCtx * M), { atol: 1e-11, label: 'logProb of the draws' });
    // Different uniforms pick different components (the draws are not all from one Gaussian).
    const s2 = sample(m, x, nCtx, z, M, m.params, u.map((v) => (v + 0.5) % 1));
    expect(s2.theta.some((v, i) => Math.abs(v - s.theta[i]) > 1e-6)).toBe(true);
    expect(() => sample(m, x, nCtx, z, M)).toThrow(/MDN model needs one component uniform u per sample row/);
    expect(() => sample(m, x, nCtx, z, M, m.params, u.subarray(1))).toThrow(/u has length 99, expected 100 x 1/);
    expect(() => inverseStd(m, m.params, z, standardize(xRep, m.xStd), nCtx * M)).toThrow(/MDN model needs one component uniform/);
    // The per-layer coupling functions do not apply to an MDN.
    expect(() => couplingForward(m, m.params, m.layout.layers[0], z, x, 1, new Float64Array(1))).toThrow(/MDN model has no coupling layers/);
    // backwardStd ignores dL/dz (z = 0 is constant).
    const f = forward(m, s.theta, xRep, nCtx * M);
    const g1 = new Float64Array(m.layout.size);
    const g2 = new Float64Array(m.layout.size);
    backwardStd(m, m.params, f.cache, new Float64Array(f.z.length), -0.01, g1);
    backwardStd(m, m.params, f.cache, randn(f.z.length, 65), -0.01, g2);
    expect(Array.from(g2)).toEqual(Array.from(g1));
  });

  it('CPU engine: draw d uses z = baseNormals(seed, d) and u = uniform(seed, mixture, d), independent of batching', async () => {
    const m = bentMdn({ thetaDim: 2, contextDim: 2, components: 4, hidden: 6, blocks: 1 }, 71);
    const x = randn(3 * 2, 72);
    const m3 = 3 * 7;
    const ctxIndex = Uint32Array.from({ length: m3 }, (_, i) => i % 3);
    const drawIndex = Float64Array.from({ length: m3 }, (_, i) => 1000 + 3 * i);
    const eng = new CpuFlowEngine(m, { evalBlock: 5 });
    const r = await eng.sample({ x, nCtx: 3, ctxIndex, drawIndex, seed: 9 });
    const xRows = new Float64Array(m3 * 2);
    for (let i = 0; i < m3; i++) xRows.set(x.subarray(ctxIndex[i] * 2, ctxIndex[i] * 2 + 2), i * 2);
    const u = mixtureUniforms(9, drawIndex);
    expect(u[4]).toBe(uniform(9, TrainRngPurpose.mixture, drawIndex[4]));
    const ref = sample(m, xRows, m3, baseNormals(9, drawIndex, 2), 1, m.params, u);
    expect(Array.from(r.theta)).toEqual(Array.from(ref.theta));
    expect(Array.from(r.logProb)).toEqual(Array.from(ref.logProb));
    const big = await new CpuFlowEngine(m).sample({ x, nCtx: 3, ctxIndex, drawIndex, seed: 9 });
    expect(Array.from(big.theta)).toEqual(Array.from(r.theta));
    // logProb / evalLoss through the engine = the flow's.
    expectAllClose(await eng.logProb(r.theta, xRows, m3), logProb(m, r.theta, xRows, m3), { atol: 1e-12 });
    await eng.setData({ theta: r.theta, x: xRows, n: m3 });
    const rows = Uint32Array.from({ length: m3 }, (_, i) => i);
    expect(await eng.evalLoss(rows)).toBeCloseTo(meanNll(m, r.theta, xRows, m3), 12);
    // A training step moves the parameters and lowers the loss on the batch (small lr).
    const before = await eng.evalLoss(rows);
    for (let i = 0; i < 5; i++) await eng.trainStep(rows, { lr: 1e-3 });
    expect(await eng.evalLoss(rows)).toBeLessThan(before);
  });
});

describe('MDN head: config and model files', () => {
  const info: ModelInfo = {
    parameters: [
      { name: 'a', low: -3, high: 3, boundsSource: 'prior' },
      { name: 'b', low: null, high: null, boundsSource: 'none' },
      { name: 'c', low: 0, high: null, boundsSource: 'data' },
    ],
    context: [{ name: 'f0' }, { name: 'f1' }],
    created: '2024-01-01T00:00:00.000Z',
  };

  it('config: head and components validated, naming the key', () => {
    const c = parseFlowConfig({ thetaDim: 2, contextDim: 1, head: 'mdn' });
    expect(c).toMatchObject({ head: 'mdn', components: 10 });
    expect(parseFlowConfig({ thetaDim: 2, contextDim: 1 }).head).toBe('nsf');
    expect(() => parseFlowConfig({ thetaDim: 2, contextDim: 1, head: 'maf' })).toThrow(/head must be 'nsf' or 'mdn'/);
    expect(() => parseFlowConfig({ thetaDim: 2, contextDim: 1, head: 'mdn', components: 0 })).toThrow(/components must be an integer in \[1, 1000\]/);
    expect(() => parseFlowConfig({ thetaDim: 2, contextDim: 1, head: 'mdn', components: 2.5 })).toThrow(/components must be an integer in \[1, 1000\]/);
    expect(() => parseFlowConfig({ thetaDim: 2, contextDim: 1, head: 'mdn', components: 1001 })).toThrow(/components must be an integer in \[1, 1000\]/);
  });

  it('save / load round trip (F64: bit-identical logProb and engine samples for a fixed seed); tensor names from the layout', async () => {
    const m = bentMdn({ thetaDim: 3, contextDim: 2, components: 3, hidden: 5, blocks: 1 }, 81);
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'mdn-model-')), 'model');
    const cfg = await saveModelDir(dir, m, info, { dtype: 'F64' });
    expect(cfg.flow).toMatchObject({ head: 'mdn', components: 3, thetaDim: 3, contextDim: 2, hidden: 5, blocks: 1 });
    const json = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(json.flow.head).toBe('mdn');
    expect(json.flow.components).toBe(3);
    const loaded = await loadModelDir(dir);
    expect(loaded.flow.config.head).toBe('mdn');
    expect(loaded.flow.layout.tensors.map((t) => t.name)).toEqual(['t0.in.weight', 't0.in.bias', 't0.block0.lin1.weight', 't0.block0.lin1.bias', 't0.block0.lin2.weight', 't0.block0.lin2.bias', 't0.out.weight', 't0.out.bias']);
    expect(loaded.flow.layout.layers[0].output.weight.shape).toEqual([5, mdnOutDim(3, 3)]);
    const n = 30;
    const theta = randn(n * 3, 82, 1.5);
    const x = randn(n * 2, 83);
    expect(Array.from(logProb(loaded.flow, theta, x, n))).toEqual(Array.from(logProb(m, theta, x, n)));
    const req = { x, nCtx: n, ctxIndex: Uint32Array.from({ length: 2 * n }, (_, i) => i % n), drawIndex: Float64Array.from({ length: 2 * n }, (_, i) => i), seed: 4 };
    const a = await new CpuFlowEngine(m).sample(req);
    const b = await new CpuFlowEngine(loaded.flow).sample(req);
    expect(Array.from(b.theta)).toEqual(Array.from(a.theta));
    expect(Array.from(b.logProb)).toEqual(Array.from(a.logProb));
    // F32 (the default): the same model up to float32 rounding of the weights.
    const s32 = serializeModel(m, info);
    const l32 = parseModel(s32.configText, s32.weights);
    expectAllClose(logProb(l32.flow, theta, x, n), logProb(m, theta, x, n), { atol: 1e-4, rtol: 1e-5, label: 'F32 weights' });
  });

  it('an old config.json without head / components loads as an NSF; a head that does not fit the weights is refused', () => {
    const nsf = createFlow({ thetaDim: 3, contextDim: 2, transforms: 2, hidden: 4, bins: 3 });
    const s = serializeModel(nsf, info);
    const old = JSON.parse(s.configText);
    delete old.flow.head;
    delete old.flow.components;
    const l = parseModel(old, s.weights);
    expect(l.flow.config.head).toBe('nsf');
    expect(l.flow.layout.layers.length).toBe(2);
    expect(Array.from(logProb(l.flow, randn(6, 91), randn(4, 92), 2))).toEqual(Array.from(logProb(parseModel(s.configText, s.weights).flow, randn(6, 91), randn(4, 92), 2)));
    // The NSF's weights under an MDN config (and vice versa): a clear tensor error.
    expect(() => parseModel({ ...old, flow: { ...old.flow, head: 'mdn', components: 2 } }, s.weights)).toThrow(/unexpected tensor\(s\) t1\./);
    const mdn = serializeModel(bentMdn({ thetaDim: 3, contextDim: 2, components: 2, hidden: 4, blocks: 2 }, 93), info);
    const asNsf = JSON.parse(mdn.configText);
    asNsf.flow.head = 'nsf';
    expect(() => parseModel(asNsf, mdn.weights)).toThrow(/tensor "t0.in.weight": shape \[2, 4\], the flow in config.json needs \[3, 4\]/);
    // Validation errors name the key inside config.json.
    expect(() => parseModelConfig({ ...old, flow: { ...old.flow, head: 'mdn', components: 0 } })).toThrow(/flow.components: components must be an integer in \[1, 1000\]/);
    expect(() => parseModelConfig({ ...old, flow: { ...old.flow, head: 'gmm' } })).toThrow(/flow.head: head must be 'nsf' or 'mdn'/);
  });
});
