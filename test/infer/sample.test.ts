import { describe, expect, it } from 'vitest';
import type { AdamState } from '../../src/flow/adam.js';
import { type FlowModel, createFlow, fitFlowStandardization, logProb } from '../../src/flow/flow.js';
import { boundsFromParameters, logProbOf, samplePosterior, summarizeSamples } from '../../src/infer/sample.js';
import { CpuFlowEngine, type FlowEngine, type SampleBatch, type SampleRequest, baseNormals } from '../../src/train/engine.js';
import { linearGaussianData } from '../train/helpers.js';

/**
 * A stand-in engine with a known posterior: theta | x ~ N(x, I) per dimension (P = F), drawn from the
 * engine base-normal stream like a real engine. Counts the candidates it was asked for.
 */
class ShiftEngine implements FlowEngine {
  readonly kind = 'cpu' as const;
  readonly model: FlowModel;
  calls = 0;
  candidates = 0;
  constructor(P: number) {
    this.model = createFlow({ thetaDim: P, contextDim: P, transforms: 1, hidden: 1, blocks: 0, bins: 2 });
  }
  async sample(req: SampleRequest): Promise<SampleBatch> {
    const P = this.model.config.thetaDim;
    this.calls++;
    this.candidates += req.ctxIndex.length;
    const z = baseNormals(req.seed, req.drawIndex, P);
    const theta = new Float64Array(z.length);
    const lp = new Float64Array(req.ctxIndex.length);
    for (let i = 0; i < req.ctxIndex.length; i++)
      for (let p = 0; p < P; p++) {
        theta[i * P + p] = req.x[req.ctxIndex[i] * P + p] + z[i * P + p];
        lp[i] -= 0.5 * z[i * P + p] ** 2 + 0.5 * Math.log(2 * Math.PI);
      }
    return { theta, logProb: lp };
  }
  private no(): never {
    throw new Error('not used');
  }
  getParams = async (): Promise<Float64Array> => this.no();
  setParams = async (): Promise<void> => this.no();
  getOptimizerState = async (): Promise<AdamState> => this.no();
  setOptimizerState = async (): Promise<void> => this.no();
  resetOptimizer = async (): Promise<void> => this.no();
  setData = async (): Promise<void> => this.no();
  trainStep = async (): Promise<number> => this.no();
  trainEpoch = async (): Promise<never> => this.no();
  evalLoss = async (): Promise<number> => this.no();
  logProb = async (): Promise<Float64Array> => this.no();
  dispose = async (): Promise<void> => {};
}

describe('posterior sampling with prior-bound rejection', () => {
  it('no bounds: every candidate kept; mean of 4000 draws within 4 standard errors of x', async () => {
    const e = new ShiftEngine(1);
    const r = await samplePosterior(e, Float64Array.of(0.7), 1, 4000, { seed: 3 });
    expect(e.candidates).toBe(4000);
    const mean = r.theta.reduce((a, b) => a + b, 0) / 4000;
    expect(Math.abs(mean - 0.7)).toBeLessThan(4 / Math.sqrt(4000));
    expect(r.accepted[0]).toBe(4000);
    expect(r.capped).toEqual([]);
  });

  it('bounds [-1, 1] on N(0, 1): every sample inside; the truncated normal variance 0.2911 within 5 standard errors', async () => {
    const e = new ShiftEngine(2);
    const M = 4000;
    const warnings: string[] = [];
    const r = await samplePosterior(e, Float64Array.of(0, 0), 1, M, { seed: 5, bounds: { low: [-1, null], high: [1, null] }, onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
    expect(r.accepted[0]).toBe(M);
    let s = 0;
    let s2 = 0;
    for (let j = 0; j < M; j++) {
      const v = r.theta[j * 2];
      expect(v).toBeGreaterThanOrEqual(-1);
      expect(v).toBeLessThanOrEqual(1);
      expect(Number.isFinite(r.theta[j * 2 + 1])).toBe(true);
      s += v;
      s2 += v * v;
    }
    // Var of N(0,1) truncated to [-1, 1]: 1 - 2 phi(1) / (Phi(1) - Phi(-1)) = 0.29112; its fourth
    // moment is (3 x 0.68269 - 8 phi(1)) / 0.68269 = 0.16452, so Var(S^2) ~ (0.16452 - 0.29112^2) / M
    // = 0.0798 / M: 5 standard errors.
    const varr = s2 / M - (s / M) ** 2;
    expect(Math.abs(varr - 0.29112)).toBeLessThan(5 * Math.sqrt(0.0798 / M));
    // Acceptance 0.683: the rounds drew about M / 0.683 candidates.
    expect(r.acceptanceRate).toBeGreaterThan(0.6);
    expect(r.acceptanceRate).toBeLessThan(0.76);
  });

  it('the cap: an observation far outside the bounds stops after M x maxDrawsPerSample candidates, NaN samples, one warning naming the count', async () => {
    const e = new ShiftEngine(1);
    const warnings: string[] = [];
    const M = 50;
    // Observation 0 at x = 0 (accepts ~68 %), observation 1 at x = 12 (never inside [-1, 1]).
    const r = await samplePosterior(e, Float64Array.of(0, 12), 2, M, {
      seed: 1,
      bounds: { low: [-1], high: [1] },
      maxDrawsPerSample: 7,
      onWarning: (w) => warnings.push(w),
      obsLabels: ['near', 'far'],
    });
    expect(r.capped).toEqual([1]);
    expect(r.accepted[0]).toBe(M);
    expect(r.accepted[1]).toBe(0);
    expect(r.draws[1]).toBe(M * 7);
    expect(e.candidates).toBeLessThan(M * 7 + 2 * M * 2);
    for (let j = 0; j < M; j++) expect(r.theta[M + j]).toBeNaN();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^1 of 2 observations hit the cap of 7 draws per sample \(350 candidates\) before 50 samples fell inside the prior bounds.*\(observations: far\)/);
  });

  it('deterministic: independent of engine batch size and of splitting the catalogue (obsOffset)', async () => {
    const x = Float64Array.of(0, 0.5, -0.3, 2.5);
    const opts = { seed: 9, bounds: { low: [-1], high: [1] }, maxDrawsPerSample: 20, onWarning: () => {} };
    const all = await samplePosterior(new ShiftEngine(1), x, 4, 30, opts);
    const tiny = await samplePosterior(new ShiftEngine(1), x, 4, 30, { ...opts, batchDraws: 7 });
    expect(Array.from(tiny.theta)).toEqual(Array.from(all.theta));
    const a = await samplePosterior(new ShiftEngine(1), x.subarray(0, 2), 2, 30, opts);
    const b = await samplePosterior(new ShiftEngine(1), x.subarray(2), 2, 30, { ...opts, obsOffset: 2 });
    expect([...a.theta, ...b.theta]).toEqual(Array.from(all.theta));
    const other = await samplePosterior(new ShiftEngine(1), x, 4, 30, { ...opts, seed: 10 });
    expect(Array.from(other.theta)).not.toEqual(Array.from(all.theta));
  });

  it('bad arguments', async () => {
    const e = new ShiftEngine(1);
    await expect(samplePosterior(e, [0], 1, 0)).rejects.toThrow(/positive integer/);
    await expect(samplePosterior(e, [0, 1], 1, 5)).rejects.toThrow(/x has 2 values, expected 1 x 1/);
    await expect(samplePosterior(e, [NaN], 1, 5)).rejects.toThrow(/observation 0, feature 0: non-finite value NaN/);
    await expect(samplePosterior(e, [0], 1, 5, { bounds: { low: [2], high: [1] } })).rejects.toThrow(/low 2 must be < high 1/);
    await expect(samplePosterior(e, [0], 1, 5, { bounds: { low: [0, 0], high: [1, 1] } })).rejects.toThrow(/model has 1 parameters/);
  });

  it('on the CPU engine: samples inside the bounds, logProbOf = the flow log-density; summaries', async () => {
    const d = linearGaussianData({ n: 200, seed: 2, P: 2, F: 2 });
    const model = createFlow({ thetaDim: 2, contextDim: 2, transforms: 2, hidden: 8, blocks: 1, bins: 4, seed: 2 });
    fitFlowStandardization(model, d.theta, d.x, 200);
    const engine = new CpuFlowEngine(model);
    const bounds = boundsFromParameters([
      { low: -0.5, high: 0.5 },
      { low: null, high: 0 },
    ]);
    const x = Float64Array.of(0, 0, 0.3, -0.3);
    const r = await samplePosterior(engine, x, 2, 200, { seed: 4, bounds });
    for (let i = 0; i < 400; i++) {
      expect(r.theta[2 * i]).toBeGreaterThanOrEqual(-0.5);
      expect(r.theta[2 * i]).toBeLessThanOrEqual(0.5);
      expect(r.theta[2 * i + 1]).toBeLessThanOrEqual(0);
    }
    const xs = Float64Array.from({ length: 400 * 2 }, (_, k) => x[Math.floor(k / 2 / 200) * 2 + (k % 2)]);
    const lp = await logProbOf(engine, r.theta, xs, 400);
    const ref = logProb(model, r.theta, xs, 400);
    for (let i = 0; i < 400; i++) {
      expect(lp[i]).toBe(ref[i]);
      expect(Math.abs(lp[i] - r.logProb[i])).toBeLessThan(1e-9 * (1 + Math.abs(lp[i]))); // inverse vs forward pass
    }
    await expect(logProbOf(engine, r.theta, x, 400)).rejects.toThrow(/x has 4 values, expected 400 x 2/);
    const sm = summarizeSamples(r);
    for (let o = 0; o < 2; o++) {
      const col = Array.from({ length: 200 }, (_, j) => r.theta[(o * 200 + j) * 2]).sort((a, b) => a - b);
      expect(sm.quantiles[1][o * 2]).toBeCloseTo((col[99] + col[100]) / 2, 12);
      expect(sm.mean[o * 2]).toBeCloseTo(col.reduce((a, b) => a + b, 0) / 200, 12);
    }
  });
});
