/**
 * Simulators of the flow acceptance tasks with analytic posteriors (shared by the NSF's GPU
 * acceptance tests, test/flow/acceptance.test.ts, and the MDN head's CPU ones,
 * test/flow/mdnAcceptance.test.ts). Counter-based Philox streams: deterministic in the seeds.
 */
import { RngPurpose, standardNormal, uniform } from '../../src/flow/rng.js';

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
