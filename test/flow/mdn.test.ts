/**
 * The MDN head's float64 reference (src/flow/mdn.ts): log-density against a direct evaluation of
 * the mixture (explicit precision matrices), gradients with respect to every raw value and to t by
 * central finite differences, and sampling: the drawn component follows pi, samples of one
 * component have mean mu and covariance (U^T U)^-1, and the returned log q is the density's.
 */
import { describe, expect, it } from 'vitest';
import { RngPurpose, standardNormals, uniform } from '../../src/flow/rng.js';
import { HALF_LOG_2PI, mdnBackward, mdnComponent, mdnLogProb, mdnOutDim, mdnParamsPerComponent, mdnSample, mdnUpperIndex } from '../../src/flow/mdn.js';

function randomRaw(n: number, P: number, K: number, seed: number, scale = 0.7): Float64Array {
  const z = standardNormals(n * mdnOutDim(P, K), seed, RngPurpose.user);
  return z.map((v) => scale * v);
}

/** log q by explicit matrices: precision L = U^T U, log N = -d^T L d / 2 + log det U - P/2 log 2pi. */
function direct(raw: Float64Array, off: number, t: ArrayLike<number>, toff: number, P: number, K: number): number {
  const C = mdnParamsPerComponent(P);
  const alphas = Array.from({ length: K }, (_, k) => raw[off + k * C]);
  const am = Math.max(...alphas);
  const lse = am + Math.log(alphas.reduce((a, v) => a + Math.exp(v - am), 0));
  let dens = 0;
  for (let k = 0; k < K; k++) {
    const c = off + k * C;
    const U = Array.from({ length: P }, () => new Float64Array(P));
    for (let i = 0; i < P; i++) {
      U[i][i] = Math.exp(raw[c + 1 + P + i]);
      for (let j = i + 1; j < P; j++) U[i][j] = raw[c + 1 + 2 * P + mdnUpperIndex(P, i, j)];
    }
    let quad = 0;
    let logdet = 0;
    for (let i = 0; i < P; i++) {
      let e = 0;
      for (let j = 0; j < P; j++) e += U[i][j] * (t[toff + j] - raw[c + 1 + j]);
      quad += e * e;
      logdet += Math.log(U[i][i]);
    }
    dens += Math.exp(raw[c] - lse - 0.5 * quad + logdet - P * HALF_LOG_2PI);
  }
  return Math.log(dens);
}

describe('MDN head: float64 reference', () => {
  for (const [P, K] of [
    [1, 1],
    [1, 3],
    [3, 1],
    [4, 5],
    [8, 10],
  ]) {
    it(`P = ${P}, K = ${K}: log q = the explicit mixture density; gradients = central differences`, () => {
      const n = 5;
      const raw = randomRaw(n, P, K, 3 + P + K);
      const t = standardNormals(n * P, 11 + P, RngPurpose.user);
      const lq = mdnLogProb(raw, t, n, { P, K });
      for (let r = 0; r < n; r++) expect(lq[r]).toBeCloseTo(direct(raw, r * mdnOutDim(P, K), t, r * P, P, K), 10);
      const gl = Float64Array.from({ length: n }, (_, r) => 0.5 + r);
      const { gRaw, gT } = mdnBackward(raw, t, gl, n, { P, K });
      const h = 1e-6;
      const obj = (rw: Float64Array, tt: Float64Array) => mdnLogProb(rw, tt, n, { P, K }).reduce((a, v, r) => a + gl[r] * v, 0);
      let worst = 0;
      for (let i = 0; i < raw.length; i++) {
        const a = raw.slice();
        const b = raw.slice();
        a[i] += h;
        b[i] -= h;
        const fd = (obj(a, t) - obj(b, t)) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - gRaw[i]) / (1 + Math.abs(fd)));
      }
      for (let i = 0; i < t.length; i++) {
        const a = t.slice();
        const b = t.slice();
        a[i] += h;
        b[i] -= h;
        const fd = (obj(raw, a) - obj(raw, b)) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - gT[i]) / (1 + Math.abs(fd)));
      }
      expect(worst).toBeLessThan(1e-6);
    });
  }

  it('samples: components follow pi, a component has mean mu and covariance (U^T U)^-1, log q is the density', () => {
    const P = 3;
    const K = 3;
    const C = mdnParamsPerComponent(P);
    const one = randomRaw(1, P, K, 5, 0.5);
    const n = 40000;
    const raw = new Float64Array(n * mdnOutDim(P, K));
    for (let r = 0; r < n; r++) raw.set(one, r * one.length);
    const z = standardNormals(n * P, 9, RngPurpose.user);
    const u = Float64Array.from({ length: n }, (_, i) => uniform(9, RngPurpose.user, n * P + i));
    const { t, logq } = mdnSample(raw, z, u, n, { P, K });
    const back = mdnLogProb(raw, t, n, { P, K });
    for (let r = 0; r < 50; r++) expect(logq[r]).toBeCloseTo(back[r], 12);
    const am = Math.max(...[0, 1, 2].map((k) => one[k * C]));
    const pis = [0, 1, 2].map((k) => Math.exp(one[k * C] - am));
    const ps = pis.reduce((a, b) => a + b, 0);
    const counts = [0, 0, 0];
    const sums = [0, 1, 2].map(() => new Float64Array(P));
    const outer = [0, 1, 2].map(() => new Float64Array(P * P));
    for (let r = 0; r < n; r++) {
      const k = mdnComponent(raw, r * one.length, { P, K }, u[r]);
      counts[k]++;
      for (let i = 0; i < P; i++) {
        sums[k][i] += t[r * P + i];
        for (let j = 0; j < P; j++) outer[k][i * P + j] += t[r * P + i] * t[r * P + j];
      }
    }
    for (let k = 0; k < K; k++) {
      const pi = pis[k] / ps;
      // Binomial standard error; 5 sigma.
      expect(Math.abs(counts[k] / n - pi)).toBeLessThan(5 * Math.sqrt((pi * (1 - pi)) / n));
      // Covariance = U^-1 U^-T: check U Cov U^T = I and the mean, to sampling error.
      const c = k * C;
      const U = Array.from({ length: P }, (_, i) => Float64Array.from({ length: P }, (_, j) => (j === i ? Math.exp(one[c + 1 + P + i]) : j > i ? one[c + 1 + 2 * P + mdnUpperIndex(P, i, j)] : 0)));
      const m = counts[k];
      const mean = Array.from(sums[k], (s) => s / m);
      const cov = Array.from({ length: P * P }, (_, ij) => outer[k][ij] / m - mean[Math.floor(ij / P)] * mean[ij % P]);
      for (let i = 0; i < P; i++) {
        // Whitened mean offset U (mean - mu) ~ N(0, I / m).
        let wi = 0;
        for (let j = 0; j < P; j++) wi += U[i][j] * (mean[j] - one[c + 1 + j]);
        expect(Math.abs(wi)).toBeLessThan(5 / Math.sqrt(m));
        for (let j = 0; j < P; j++) {
          let s = 0;
          for (let a = 0; a < P; a++) for (let b = 0; b < P; b++) s += U[i][a] * cov[a * P + b] * U[j][b];
          expect(Math.abs(s - (i === j ? 1 : 0))).toBeLessThan(6 * Math.sqrt(2 / m));
        }
      }
    }
  });

  it('rejects bad shapes', () => {
    expect(() => mdnLogProb(new Float64Array(3), new Float64Array(2), 1, { P: 2, K: 1 })).toThrow(/raw has 3 values, expected 1 x 6/);
    expect(() => mdnSample(new Float64Array(6), new Float64Array(2), new Float64Array(2), 1, { P: 2, K: 1 })).toThrow(/u has 2 values/);
  });
});
