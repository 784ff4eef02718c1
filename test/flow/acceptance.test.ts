/**
 * Acceptance tests of the conditional NSF (issue 5, "Done when"), trained and sampled with the GPU
 * engine (createFlowEngine('gpu'); lavapipe in CI):
 *
 * 1. Linear-Gaussian task with an analytic posterior: learned posterior means and covariances on
 *    held-out observations match the analytic ones (plus the average KL on fresh pairs).
 * 2. sbi's two-moons task: trains without a non-finite loss and its posterior samples are bimodal by
 *    a numeric test (mass on both sides of the axis joining the two analytic modes, a deep dip between).
 *
 * Everything is seeded (simulations: counter-based Philox streams of src/flow/rng.ts; training: the
 * trainer's seed; draws: samplePosterior's seed), so a run is deterministic on a given device. The
 * sizes (a few 10^4 simulations, 3 small coupling layers, a fixed epoch budget with a cosine learning
 * rate) keep each training at ~10-20 s on lavapipe with 2 cores. The tolerances below are derived
 * from the sample size M plus an explicit allowance for the amortised-flow approximation error; the
 * allowances are ~1.3-2x the worst error measured over training seeds 1-5 (quoted per check).
 */
import { describe, expect, it } from 'vitest';
import type { GpuEngineOptions } from '../../src/flow/gpuEngine.js';
import { samplePosterior } from '../../src/infer/sample.js';
import { type FlowEngine, createFlowEngine } from '../../src/train/engine.js';
import { type TrainResult, trainFlow } from '../../src/train/trainer.js';
import { useGpu } from '../helpers/gpu.js';
import { F, P, analyticPosterior, simulateLinearGaussian, simulateTwoMoons } from './tasks.js';

const ctx = useGpu();

/** The GPU engine on this file's device (createFlowEngine('gpu') does not destroy a device it was given). */
function gpuEngine(model: Parameters<typeof createFlowEngine>[1]): Promise<FlowEngine> {
  const opts: GpuEngineOptions = { gpu: ctx.gpu };
  return createFlowEngine('gpu', model, opts);
}

/** Every epoch's training and validation loss is finite (no NaN / Inf anywhere in the run). */
function expectFiniteLosses(r: TrainResult, epochs: number): void {
  expect(r.stoppedBy).toBe('maxEpochs');
  expect(r.history.length).toBe(epochs);
  for (const h of r.history) {
    expect(Number.isFinite(h.trainLoss), `epoch ${h.epoch} train loss ${h.trainLoss}`).toBe(true);
    expect(Number.isFinite(h.valLoss), `epoch ${h.epoch} validation loss ${h.valLoss}`).toBe(true);
  }
}

// 1. Linear-Gaussian and 2. two moons: the tasks are in ./tasks.ts (simulators, analytic posteriors).

describe('acceptance: linear-Gaussian task with an analytic posterior (GPU engine)', () => {
  it('posterior means and covariances on held-out observations match the analytic ones; average KL small', async () => {
    const t0 = performance.now();
    const n = 16_000;
    const epochs = 40;
    const sim = simulateLinearGaussian(n, 11, 12);
    const res = await trainFlow({
      data: { theta: sim.theta, x: sim.x, n },
      // bound 5 (not the default 3): the spline is the identity outside [-B, B] in standardised units,
      // so a base draw with |z| > B (0.27 % per dimension at B = 3) lands at the PRIOR's scale, not the
      // posterior's. That leakage cannot be trained away; at B = 3 it put 0.5 % of the samples beyond
      // 6 posterior sds, inflated sample (co)variances by up to 17 % of sd_i sd_j and cost 0.036-0.044 nats
      // of KL (measured, seed 1; the KL check below fails) vs 0.010-0.016 at B = 5, where P(|z| > 5) = 6e-7.
      flow: { transforms: 3, hidden: 32, blocks: 1, bins: 8, bound: 5 },
      options: { seed: 1, batchSize: 512, lr: 5e-3, maxEpochs: epochs, patience: 1000, schedule: { kind: 'cosine', minLr: 1e-4 } },
      engine: gpuEngine,
    });
    const tTrain = (performance.now() - t0) / 1000;
    expect(res.summary.engine).toBe('gpu');
    expectFiniteLosses(res, epochs);

    const { S, prec, logDetS, mean } = analyticPosterior();
    const sd = [Math.sqrt(S[0][0]), Math.sqrt(S[1][1])];
    const engine = await gpuEngine(res.model);
    try {
      // Held-out observations: fresh prior draws and noise (streams 13 / 14, not used in training).
      const nObs = 6;
      const M = 5000;
      const obs = simulateLinearGaussian(nObs, 13, 14);
      const s = await samplePosterior(engine, obs.x, nObs, M, { seed: 5 });
      expect(s.capped).toEqual([]);
      for (let i = 0; i < s.theta.length; i++) if (!Number.isFinite(s.theta[i])) throw new Error(`sample value ${i} is ${s.theta[i]}`);

      // Tolerances, in posterior sds (mean) and in sd_i sd_j (covariance entries):
      // - sampling: 4 standard errors of the M-sample estimate for the TRUE posterior: sd_p / sqrt(M)
      //   for a mean, sqrt((S_ij^2 + S_ii S_jj) / M) for a covariance entry (Gaussian 4th moments);
      // - flow approximation (amortised over x, 14 400 training pairs, 40 epochs): 0.2 sd for a
      //   mean, 0.2 sd_i sd_j for a covariance entry. Measured worst over training seeds 1-5 (6 obs
      //   each, sampling noise included): 0.168 sd and 0.157 sd_i sd_j; this seed: see the log line.
      // A flow that ignored x (the prior) misses the means by |mu| / sd ~ 0.5-4 and the variances by
      // 2.2x; one with the wrong sign of the correlation (-0.74) misses S_01 by 1.5 sd_0 sd_1.
      const MEAN_ALLOW = 0.2;
      const COV_ALLOW = 0.2;
      let worstMean = 0;
      let worstCov = 0;
      let sumSq = 0;
      for (let o = 0; o < nObs; o++) {
        const mu = mean(obs.x, o * F);
        const m = [0, 0];
        for (let j = 0; j < M; j++) for (let p = 0; p < P; p++) m[p] += s.theta[(o * M + j) * P + p] / M;
        const C = [
          [0, 0],
          [0, 0],
        ];
        for (let j = 0; j < M; j++) {
          const d = [s.theta[(o * M + j) * P] - m[0], s.theta[(o * M + j) * P + 1] - m[1]];
          for (let a = 0; a < P; a++) for (let b = 0; b < P; b++) C[a][b] += (d[a] * d[b]) / (M - 1);
        }
        for (let p = 0; p < P; p++) {
          const err = Math.abs(m[p] - mu[p]) / sd[p];
          worstMean = Math.max(worstMean, err);
          sumSq += err * err;
          expect(err, `obs ${o}: mean of theta_${p} ${m[p].toFixed(4)} vs analytic ${mu[p].toFixed(4)} (error in posterior sds)`).toBeLessThan(4 / Math.sqrt(M) + MEAN_ALLOW);
        }
        for (const [a, b] of [
          [0, 0],
          [0, 1],
          [1, 1],
        ]) {
          const scale = sd[a] * sd[b];
          const err = Math.abs(C[a][b] - S[a][b]) / scale;
          worstCov = Math.max(worstCov, err);
          const se = Math.sqrt((S[a][b] ** 2 + S[a][a] * S[b][b]) / M) / scale;
          expect(err, `obs ${o}: covariance (${a}, ${b}) ${C[a][b].toFixed(4)} vs analytic ${S[a][b].toFixed(4)} (error in sd_a sd_b)`).toBeLessThan(4 * se + COV_ALLOW);
        }
      }
      // Aggregate over the 12 mean errors: RMS (measured 0.043-0.078 over seeds 1-5; the sampling part alone is ~0.014).
      const rmsMean = Math.sqrt(sumSq / (nObs * P));
      expect(rmsMean, 'RMS of the mean errors (posterior sds)').toBeLessThan(0.12);

      // Average KL(p || q) over the joint: mean over fresh (theta, x) pairs of log p(theta | x) -
      // log q(theta | x), the flow's density from the GPU engine in original units (so a missing
      // standardisation Jacobian, sum log sd_theta = O(0.1), would show). Measured 0.0098-0.0158
      // over seeds 1-5 (0.036-0.044 at B = 3) with a standard error of 0.0022-0.0027 (0.005 at B = 3).
      const nTest = 4000;
      const test = simulateLinearGaussian(nTest, 15, 16);
      const lq = await engine.logProb(test.theta, test.x, nTest);
      const lr = new Float64Array(nTest);
      for (let r = 0; r < nTest; r++) {
        const mu = mean(test.x, r * F);
        const d = [test.theta[r * P] - mu[0], test.theta[r * P + 1] - mu[1]];
        const q = d[0] * d[0] * prec[0][0] + 2 * d[0] * d[1] * prec[0][1] + d[1] * d[1] * prec[1][1];
        lr[r] = -0.5 * q - Math.log(2 * Math.PI) - 0.5 * logDetS - lq[r];
      }
      const kl = lr.reduce((t, v) => t + v, 0) / nTest;
      const klSe = Math.sqrt(lr.reduce((t, v) => t + (v - kl) ** 2, 0) / (nTest - 1) / nTest);
      expect(klSe, 'standard error of the KL estimate').toBeLessThan(0.01);
      expect(kl, 'average KL(p || q), nats').toBeLessThan(0.03);
      expect(kl, 'average KL(p || q), nats (>= 0 up to noise)').toBeGreaterThan(-4 * klSe);

      console.log(
        `linear-Gaussian (GPU): train ${tTrain.toFixed(1)} s, best val loss ${res.summary.bestValLoss?.toFixed(4)} (epoch ${res.summary.bestEpoch}); ` +
          `mean error worst ${worstMean.toFixed(3)} / RMS ${rmsMean.toFixed(3)} posterior sds; covariance worst ${worstCov.toFixed(3)} sd_i sd_j; ` +
          `KL ${kl.toFixed(4)} +- ${klSe.toFixed(4)} nats; total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      await engine.dispose();
    }
  });
});

describe('acceptance: two-moons task (GPU engine)', () => {
  it('trains without a non-finite loss; posterior samples are bimodal along the axis joining the two analytic modes', async () => {
    const t0 = performance.now();
    const n = 8000;
    const epochs = 30;
    const sim = simulateTwoMoons(n, 21);
    const res = await trainFlow({
      data: { theta: sim.theta, x: sim.x, n },
      // Default bound 3: theta is bounded (standardised |theta| <= 1.73), and rejection at the prior
      // box removes the few identity-tail draws (acceptance ~99 %).
      flow: { transforms: 3, hidden: 32, blocks: 1, bins: 8 },
      options: { seed: 1, batchSize: 256, lr: 5e-3, maxEpochs: epochs, patience: 1000, schedule: { kind: 'cosine', minLr: 1e-4 } },
      engine: gpuEngine,
    });
    const tTrain = (performance.now() - t0) / 1000;
    expect(res.summary.engine).toBe('gpu');
    expectFiniteLosses(res, epochs);
    // It learned something: the validation NLL falls by > 1.5 nats (measured -0.2..-0.9 -> -3.24..-3.31 over seeds 1-5).
    const val = res.history.map((h) => h.valLoss!);
    expect(val[val.length - 1]).toBeLessThan(val[0] - 1.5);

    const engine = await gpuEngine(res.model);
    try {
      const xo = [
        [0, 0],
        [-0.2, 0.1],
      ];
      const M = 20_000;
      const s = await samplePosterior(engine, xo.flat(), xo.length, M, { seed: 7, bounds: { low: [-1, -1], high: [1, 1] } });
      expect(s.capped).toEqual([]);
      const report: string[] = [];
      for (let o = 0; o < xo.length; o++) {
        const [x1, x2] = xo[o];
        const uc = 0.25 - x1 + 0.2 / Math.PI;
        const u = new Float64Array(M);
        const v = new Float64Array(M);
        for (let j = 0; j < M; j++) {
          const t1 = s.theta[(o * M + j) * 2];
          const t2 = s.theta[(o * M + j) * 2 + 1];
          if (!Number.isFinite(t1) || !Number.isFinite(t2)) throw new Error(`obs ${o} sample ${j} is not finite (${t1}, ${t2})`);
          u[j] = (t1 + t2) * Math.SQRT1_2;
          v[j] = (t2 - t1) * Math.SQRT1_2;
        }
        const count = (pred: (j: number) => boolean) => {
          let c = 0;
          for (let j = 0; j < M; j++) if (pred(j)) c++;
          return c;
        };
        // (a) Both halves of the axis hold a substantial share (truth: 1/2 each by symmetry; measured
        //     0.46-0.53 over seeds 1-5). Required: > 30 % each.
        const fracPos = count((j) => u[j] > 0) / M;
        expect(fracPos, `obs ${o}: share of samples with u > 0`).toBeGreaterThan(0.3);
        expect(1 - fracPos, `obs ${o}: share of samples with u < 0`).toBeGreaterThan(0.3);
        // (b) Dip: samples in a window of half-width h = 0.05 around the midpoint u = 0 vs around each
        //     analytic mode u = +-uc (truth: 0 vs ~ 40 % of the samples). The ratio of the window
        //     counts (= ratio of histogram densities) must be < 0.1; measured <= 0.0075 over seeds 1-5, 0.78 after
        //     2 epochs. A unimodal fit covering both modes has its maximum near the midpoint (ratio >= 1).
        const h = 0.05;
        const mid = count((j) => Math.abs(u[j]) < h);
        const modePos = count((j) => Math.abs(u[j] - uc) < h);
        const modeNeg = count((j) => Math.abs(u[j] + uc) < h);
        const dip = mid / Math.max(1, Math.min(modePos, modeNeg));
        expect(dip, `obs ${o}: density at the midpoint / at the modes (counts ${mid} / ${modePos}, ${modeNeg})`).toBeLessThan(0.1);
        // (c) The mass sits on the analytic crescents: |u| - (0.25 - x_1) = r cos a in [0, 0.13] and
        //     v - x_2 = -r sin a in [-0.13, 0.13] (r <= 0.13 to 3 sigma); with a 0.05 margin for the
        //     flow's smoothing, >= 85 % of the samples (measured >= 95.7 % over seeds 1-5).
        const onMoons = count((j) => Math.abs(u[j]) - (0.25 - x1) > -0.05 && Math.abs(u[j]) - (0.25 - x1) < 0.18 && Math.abs(v[j] - x2) < 0.18) / M;
        expect(onMoons, `obs ${o}: share of samples on the analytic crescents`).toBeGreaterThan(0.85);
        report.push(`x = (${x1}, ${x2}): u > 0 ${fracPos.toFixed(3)}, dip ratio ${dip.toFixed(4)}, on crescents ${onMoons.toFixed(3)}`);
      }
      console.log(
        `two moons (GPU): train ${tTrain.toFixed(1)} s, val loss ${val[0].toFixed(3)} -> ${val[val.length - 1].toFixed(3)}, acceptance ${s.acceptanceRate.toFixed(4)}; ` +
          `${report.join('; ')}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      await engine.dispose();
    }
  });
});
