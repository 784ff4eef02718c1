/**
 * Simulators of the flow acceptance tasks with analytic posteriors, and the acceptance checks on a
 * trained engine (shared by the NSF's GPU acceptance tests, test/flow/acceptance.test.ts, and the
 * MDN head's CPU ones, test/flow/mdnAcceptance.test.ts; each passes its own allowances and quotes
 * its measured errors). Counter-based Philox streams: deterministic in the seeds.
 */
import { expect } from 'vitest';
import { RngPurpose, standardNormal, uniform } from '../../src/flow/rng.js';
import { samplePosterior } from '../../src/infer/sample.js';
import type { FlowEngine } from '../../src/train/engine.js';
import type { TrainResult } from '../../src/train/trainer.js';

/** Every epoch's training and validation loss is finite (no NaN / Inf anywhere in the run), over the full epoch budget. */
export function expectFiniteLosses(r: TrainResult, epochs: number): void {
  expect(r.stoppedBy).toBe('maxEpochs');
  expect(r.history.length).toBe(epochs);
  for (const h of r.history) {
    expect(Number.isFinite(h.trainLoss), `epoch ${h.epoch} train loss ${h.trainLoss}`).toBe(true);
    expect(Number.isFinite(h.valLoss), `epoch ${h.epoch} validation loss ${h.valLoss}`).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Linear-Gaussian: theta ~ N(0, I_2), x = A theta + b + sigma eps, eps ~ N(0, I_3).
//    Posterior N(mu(x), S), S = (I + A^T A / sigma^2)^-1, mu(x) = S A^T (x - b) / sigma^2.
//    With this A: posterior sds 0.559 / 0.564 (prior 1) and correlation -0.741.
export const LG = {
  A: [
    [1.0, 0.9],
    [0.6, 0.8],
    [-0.4, 0.2],
  ],
  b: [0.5, -1.0, 2.0],
  sigma: 0.5,
};
export const P = 2;
export const F = 3;

/** n simulations of the linear-Gaussian task from Philox streams (seedTheta, seedNoise). */
export function simulateLinearGaussian(n: number, seedTheta: number, seedNoise: number): { theta: Float64Array; x: Float64Array } {
  const theta = new Float64Array(n * P);
  const x = new Float64Array(n * F);
  for (let r = 0; r < n; r++) {
    for (let p = 0; p < P; p++) theta[r * P + p] = standardNormal(seedTheta, RngPurpose.user, r * P + p);
    for (let f = 0; f < F; f++) {
      x[r * F + f] = LG.b[f] + LG.sigma * standardNormal(seedNoise, RngPurpose.user, r * F + f);
      for (let p = 0; p < P; p++) x[r * F + f] += LG.A[f][p] * theta[r * P + p];
    }
  }
  return { theta, x };
}

/** Analytic posterior: covariance S (2 x 2), its precision, and the mean for an observation. */
export function analyticPosterior(): { S: number[][]; prec: number[][]; logDetS: number; mean: (x: ArrayLike<number>, off: number) => number[] } {
  const s2 = LG.sigma * LG.sigma;
  const prec = [0, 1].map((i) => [0, 1].map((j) => (i === j ? 1 : 0) + LG.A.reduce((t, row) => t + row[i] * row[j], 0) / s2));
  const det = prec[0][0] * prec[1][1] - prec[0][1] * prec[1][0];
  const S = [
    [prec[1][1] / det, -prec[0][1] / det],
    [-prec[1][0] / det, prec[0][0] / det],
  ];
  const mean = (x: ArrayLike<number>, off: number) => {
    const r = [0, 0];
    for (let f = 0; f < F; f++) for (let p = 0; p < P; p++) r[p] += (LG.A[f][p] * (x[off + f] - LG.b[f])) / s2;
    return [S[0][0] * r[0] + S[0][1] * r[1], S[1][0] * r[0] + S[1][1] * r[1]];
  };
  return { S, prec, logDetS: -Math.log(det), mean };
}

/** Allowances of expectLinearGaussianPosterior (the caller quotes the errors measured behind them). */
export interface LinearGaussianAllowances {
  /** Posterior samples per held-out observation. */
  M: number;
  /** Fit allowance for a posterior mean, in posterior sds (added to 4 sampling standard errors). */
  meanAllow: number;
  /** Fit allowance for a covariance entry, in sd_i sd_j (added to 4 sampling standard errors). */
  covAllow: number;
  /** Bound on the RMS of the 12 mean errors (posterior sds). */
  rmsMax: number;
  /** Bound on the average KL(p || q), nats. */
  klMax: number;
}

/** What expectLinearGaussianPosterior measured (for the caller's log line). */
export interface LinearGaussianErrors {
  worstMean: number;
  rmsMean: number;
  worstCov: number;
  kl: number;
  klSe: number;
}

/**
 * The linear-Gaussian acceptance check of a trained engine against the analytic posterior:
 * - on 6 held-out observations (fresh prior draws and noise, streams 13 / 14, not used in training),
 *   M posterior samples each (samplePosterior seed 5; none capped, all finite): the sample means and
 *   covariances match the analytic ones. Tolerances, in posterior sds (mean) and in sd_i sd_j
 *   (covariance entries): 4 standard errors of the M-sample estimate for the TRUE posterior,
 *   sd_p / sqrt(M) for a mean, sqrt((S_ij^2 + S_ii S_jj) / M) for a covariance entry (Gaussian 4th
 *   moments), plus the caller's fit allowance; the RMS of the 12 mean errors below rmsMax;
 * - average KL(p || q) over the joint: the mean over 4000 fresh (theta, x) pairs (streams 15 / 16) of
 *   log p(theta | x) - log q(theta | x), q from the engine's logProb in original units (so a missing
 *   standardisation Jacobian, sum log sd_theta = O(0.1), would show): standard error < 0.01,
 *   KL < klMax and >= 0 up to 4 standard errors.
 */
export async function expectLinearGaussianPosterior(engine: FlowEngine, allow: LinearGaussianAllowances): Promise<LinearGaussianErrors> {
  const { M, meanAllow, covAllow, rmsMax, klMax } = allow;
  const { S, prec, logDetS, mean } = analyticPosterior();
  const sd = [Math.sqrt(S[0][0]), Math.sqrt(S[1][1])];
  const nObs = 6;
  const obs = simulateLinearGaussian(nObs, 13, 14);
  const s = await samplePosterior(engine, obs.x, nObs, M, { seed: 5 });
  expect(s.capped).toEqual([]);
  for (let i = 0; i < s.theta.length; i++) if (!Number.isFinite(s.theta[i])) throw new Error(`sample value ${i} is ${s.theta[i]}`);

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
      expect(err, `obs ${o}: mean of theta_${p} ${m[p].toFixed(4)} vs analytic ${mu[p].toFixed(4)} (error in posterior sds)`).toBeLessThan(4 / Math.sqrt(M) + meanAllow);
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
      expect(err, `obs ${o}: covariance (${a}, ${b}) ${C[a][b].toFixed(4)} vs analytic ${S[a][b].toFixed(4)} (error in sd_a sd_b)`).toBeLessThan(4 * se + covAllow);
    }
  }
  const rmsMean = Math.sqrt(sumSq / (nObs * P));
  expect(rmsMean, 'RMS of the mean errors (posterior sds)').toBeLessThan(rmsMax);

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
  expect(kl, 'average KL(p || q), nats').toBeLessThan(klMax);
  expect(kl, 'average KL(p || q), nats (>= 0 up to noise)').toBeGreaterThan(-4 * klSe);
  return { worstMean, rmsMean, worstCov, kl, klSe };
}

// ---------------------------------------------------------------------------------------------
// 2. Two moons (sbi / sbibm "two_moons"): theta ~ U(-1, 1)^2, a ~ U(-pi/2, pi/2), r ~ N(0.1, 0.01^2),
//    x = (r cos a + 0.25 - |theta_1 + theta_2| / sqrt 2, r sin a + (theta_2 - theta_1) / sqrt 2).
//    In u = (theta_1 + theta_2) / sqrt 2, v = (theta_2 - theta_1) / sqrt 2 the posterior for x is two
//    mirror-image crescents: |u| = 0.25 - x_1 + r cos a, v = x_2 - r sin a, i.e. two modes at
//    u = +-(0.25 - x_1 + 0.2 / pi) (the mean of r cos a is 0.1 * 2 / pi) with NO mass for
//    |u| < 0.25 - x_1 - O(0.03): the axis joining the modes is u, the midpoint u = 0.
export function simulateTwoMoons(n: number, seed: number): { theta: Float64Array; x: Float64Array } {
  const theta = new Float64Array(n * 2);
  const x = new Float64Array(n * 2);
  for (let r = 0; r < n; r++) {
    const t1 = 2 * uniform(seed, RngPurpose.user, 2 * r) - 1;
    const t2 = 2 * uniform(seed, RngPurpose.user, 2 * r + 1) - 1;
    const a = Math.PI * (uniform(seed + 1, RngPurpose.user, r) - 0.5);
    const rad = 0.1 + 0.01 * standardNormal(seed + 2, RngPurpose.user, r);
    theta[2 * r] = t1;
    theta[2 * r + 1] = t2;
    x[2 * r] = rad * Math.cos(a) + 0.25 - Math.abs(t1 + t2) * Math.SQRT1_2;
    x[2 * r + 1] = rad * Math.sin(a) + (t2 - t1) * Math.SQRT1_2;
  }
  return { theta, x };
}

/** The two-moons training run of the acceptance tests: 8000 simulations (seed 21), 30 epochs, batch 256, lr 5e-3 with a cosine schedule, trainer seed 1. */
export function twoMoonsTraining(): { epochs: number; data: { theta: Float64Array; x: Float64Array; n: number }; options: { seed: number; batchSize: number; lr: number; maxEpochs: number; patience: number; schedule: { kind: 'cosine'; minLr: number } } } {
  const n = 8000;
  const epochs = 30;
  const sim = simulateTwoMoons(n, 21);
  return {
    epochs,
    data: { theta: sim.theta, x: sim.x, n },
    options: { seed: 1, batchSize: 256, lr: 5e-3, maxEpochs: epochs, patience: 1000, schedule: { kind: 'cosine', minLr: 1e-4 } },
  };
}

/**
 * The two-moons bimodality check of a trained engine: 20 000 posterior samples (samplePosterior
 * seed 7, rejection at the prior box [-1, 1]^2; none capped, all finite) for x_o = (0, 0) and
 * (-0.2, 0.1), in u = (theta_1 + theta_2) / sqrt 2 (the axis joining the two analytic modes
 * u = +-uc) and v = (theta_2 - theta_1) / sqrt 2:
 * (a) both halves of the axis hold a substantial share (truth: 1/2 each by symmetry): > 30 % each;
 * (b) dip: samples in a window of half-width h = 0.05 around the midpoint u = 0 vs around each
 *     analytic mode (truth: 0 vs ~ 40 % of the samples). The ratio of the window counts (= ratio of
 *     histogram densities) must be < 0.1; a unimodal fit covering both modes has its maximum near
 *     the midpoint (ratio >= 1);
 * (c) the mass sits on the analytic crescents: |u| - (0.25 - x_1) = r cos a in [0, 0.13] and
 *     v - x_2 = -r sin a in [-0.13, 0.13] (r <= 0.13 to 3 sigma); with a 0.05 margin for the fit's
 *     smoothing, >= 85 % of the samples.
 * Returns the sampler's acceptance rate and a report line per observation for the caller's log line.
 */
export async function expectTwoMoonsBimodal(engine: FlowEngine): Promise<{ acceptanceRate: number; report: string[] }> {
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
    // (a)
    const fracPos = count((j) => u[j] > 0) / M;
    expect(fracPos, `obs ${o}: share of samples with u > 0`).toBeGreaterThan(0.3);
    expect(1 - fracPos, `obs ${o}: share of samples with u < 0`).toBeGreaterThan(0.3);
    // (b)
    const h = 0.05;
    const mid = count((j) => Math.abs(u[j]) < h);
    const modePos = count((j) => Math.abs(u[j] - uc) < h);
    const modeNeg = count((j) => Math.abs(u[j] + uc) < h);
    const dip = mid / Math.max(1, Math.min(modePos, modeNeg));
    expect(dip, `obs ${o}: density at the midpoint / at the modes (counts ${mid} / ${modePos}, ${modeNeg})`).toBeLessThan(0.1);
    // (c)
    const onMoons = count((j) => Math.abs(u[j]) - (0.25 - x1) > -0.05 && Math.abs(u[j]) - (0.25 - x1) < 0.18 && Math.abs(v[j] - x2) < 0.18) / M;
    expect(onMoons, `obs ${o}: share of samples on the analytic crescents`).toBeGreaterThan(0.85);
    report.push(`x = (${x1}, ${x2}): u > 0 ${fracPos.toFixed(3)}, dip ratio ${dip.toFixed(4)}, on crescents ${onMoons.toFixed(3)}`);
  }
  return { acceptanceRate: s.acceptanceRate, report };
}
