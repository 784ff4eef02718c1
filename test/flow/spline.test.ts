import { describe, expect, it } from 'vitest';
import {
  type SplineSpec,
  softplus,
  splineBackward,
  splineForward,
  splineForwardScalar,
  splineInverse,
  splineInverseScalar,
  splineKnots,
  splineParamCount,
} from '../../src/flow/spline.js';
import { expectAllClose } from '../helpers/allclose.js';
import { centralDiff, linspace, randn } from './helpers.js';

const spec = (K: number, extra: Partial<SplineSpec> = {}): SplineSpec => ({
  bins: K,
  bound: 3,
  minBinWidth: 1e-3,
  minBinHeight: 1e-3,
  minDerivative: 1e-3,
  logitScale: 1 / Math.sqrt(7),
  ...extra,
});

/** Raw parameters with logits of scale 2 (uneven bins, derivatives from ~0.1 to ~4). */
const rawFor = (K: number, seed: number, scale = 2) => randn(splineParamCount(K), seed, scale);

/** Evaluation points: a grid over [-B, B], every knot exactly, and points far outside. */
function points(s: SplineSpec, raw: Float64Array): number[] {
  const { cw } = splineKnots(raw, 0, s);
  const B = s.bound;
  return [...linspace(-B, B, 601), ...cw, -B, B, B * (1 + 1e-15), -B * (1 + 1e-15), 3.0000001, -3.0000001, 10, -10, 1e6, -1e6, 1e300, -1e300];
}

describe('rational-quadratic spline (nflows unconstrained_rational_quadratic_spline, linear tails)', () => {
  for (const K of [2, 5, 10]) {
    it(`K=${K}: inverse(forward(u)) = u inside, on every knot and far outside; inverse logdet = -forward logdet`, () => {
      const s = spec(K);
      for (const seed of [1, 2, 3]) {
        const raw = rawFor(K, seed);
        for (const u of points(s, raw)) {
          const f = splineForwardScalar(u, raw, 0, s);
          const g = splineInverseScalar(f.out, raw, 0, s);
          expect(Number.isFinite(f.out) && Number.isFinite(f.logdet) && Number.isFinite(g.logdet)).toBe(true);
          // |u| <= 3 and every operation is O(1)-conditioned (no division by a small number in the
          // cancellation-free root): a few ulps of 3 -> 1e-10 absolute is generous but exact enough
          // to catch any wrong bin or formula (those give errors ~1e-3 and up).
          expect(Math.abs(g.out - u), `u=${u}`).toBeLessThanOrEqual(1e-10 * Math.max(1, Math.abs(u)));
          expect(Math.abs(g.logdet + f.logdet), `u=${u}`).toBeLessThanOrEqual(1e-9);
        }
      }
    });
  }

  it('knots map to knots exactly (bin edges: xi = 0, no 0/0 in the inverse)', () => {
    const s = spec(10);
    const raw = rawFor(10, 4);
    const { cw, ch } = splineKnots(raw, 0, s);
    for (let k = 0; k <= 10; k++) {
      // On a knot xi = 0 (or 1 for x = B): y = ch_k with no rounding beyond the knot itself.
      expect(Math.abs(splineForwardScalar(cw[k], raw, 0, s).out - ch[k])).toBeLessThanOrEqual(1e-15 * 3);
      expect(Math.abs(splineInverseScalar(ch[k], raw, 0, s).out - cw[k])).toBeLessThanOrEqual(1e-15 * 3);
    }
  });

  it('outside [-B, B] is the identity with logdet 0; extreme logits give no NaN', () => {
    const s = spec(5, { logitScale: 1 });
    for (const raw of [rawFor(5, 5), rawFor(5, 6, 60)]) {
      for (const u of [-1e300, -50, -3.0000000001, 3.0000000001, 7, 1e300, Infinity, -Infinity]) {
        const f = splineForwardScalar(u, raw, 0, s);
        expect(f.out).toBe(u);
        expect(f.logdet).toBe(0);
        expect(splineInverseScalar(u, raw, 0, s).out).toBe(u);
      }
      for (const u of points(s, raw)) {
        const f = splineForwardScalar(u, raw, 0, s);
        const g = splineInverseScalar(f.out, raw, 0, s);
        expect(Number.isNaN(f.out) || Number.isNaN(f.logdet) || Number.isNaN(g.out) || Number.isNaN(g.logdet)).toBe(false);
      }
    }
  });

  it('widths and heights: fractions sum to 1 (so the forced endpoint is only a rounding fix), bins >= min size', () => {
    for (const K of [2, 5, 10]) {
      const s = spec(K);
      const raw = rawFor(K, 7, 5);
      const { cw, ch, smW, smH } = splineKnots(raw, 0, s);
      for (const [q, sm, minF] of [
        [cw, smW, s.minBinWidth],
        [ch, smH, s.minBinHeight],
      ] as const) {
        let frac = 0;
        for (let k = 0; k < K; k++) frac += minF + (1 - minF * K) * sm[k];
        // Sum of K fractions of O(1): rounding ~K ulps.
        expect(Math.abs(2 * s.bound * frac - 2 * s.bound)).toBeLessThanOrEqual(1e-14);
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const wk = q[k + 1] - q[k];
          expect(wk).toBeGreaterThanOrEqual(2 * s.bound * minF * (1 - 1e-9));
          sum += wk;
        }
        expect(q[0]).toBe(-s.bound);
        expect(q[K]).toBe(s.bound);
        expect(Math.abs(sum - 2 * s.bound)).toBeLessThanOrEqual(1e-14);
      }
    }
  });

  it('boundary derivative is 1 (continuity with the identity tails), as nflows padding constant', () => {
    const minD = 1e-3;
    // nflows pads the derivative logits with log(exp(1 - minD) - 1): minD + softplus(.) = 1.
    expect(Math.abs(minD + softplus(Math.log(Math.exp(1 - minD) - 1)) - 1)).toBeLessThanOrEqual(1e-15);
    const s = spec(10);
    const raw = rawFor(10, 8);
    const B = s.bound;
    // log f'(+-B) = 0 analytically (xi = 1 in the last bin, xi = 0 in the first).
    expect(Math.abs(splineForwardScalar(B, raw, 0, s).logdet)).toBeLessThanOrEqual(1e-14);
    expect(Math.abs(splineForwardScalar(-B, raw, 0, s).logdet)).toBeLessThanOrEqual(1e-14);
    expect(splineForwardScalar(B, raw, 0, s).out).toBeCloseTo(B, 14);
    // One-sided differences from inside: error h f''/2 with f'' = O(10) here -> 1e-5 at h = 1e-7.
    const h = 1e-7;
    expect(Math.abs((B - splineForwardScalar(B - h, raw, 0, s).out) / h - 1)).toBeLessThanOrEqual(1e-5);
    expect(Math.abs((splineForwardScalar(-B + h, raw, 0, s).out + B) / h - 1)).toBeLessThanOrEqual(1e-5);
  });

  it('hand-computed case: all logits 0 -> uniform bins, interior d = minD + ln 2; bin midpoints are fixed points', () => {
    const s = spec(4, { logitScale: 1 });
    const raw = new Float64Array(splineParamCount(4));
    const d = 1e-3 + Math.LN2;
    // Bin 1 = [-1.5, 0], midpoint -0.75: xi = 1/2, s = 1, d0 = d1 = d:
    // y = y0 + h (1/4 + d/4) / (1/2 + d/2) = y0 + h/2;  dy/dx = (1/2 + d/2) / (1/2 + d/2)^2.
    const f = splineForwardScalar(-0.75, raw, 0, s);
    expect(f.out).toBeCloseTo(-0.75, 15);
    expect(f.logdet).toBeCloseTo(-Math.log(0.5 + 0.5 * d), 14);
    // Bin 0 = [-3, -1.5] at xi = 1/4: d0 = 1, d1 = d, s = 1, t = 3/16:
    const xi = 0.25;
    const t = xi * (1 - xi);
    const y = -3 + 1.5 * (xi * xi + 1 * t) / (1 + (1 + d - 2) * t);
    const dydx = (d * xi * xi + 2 * t + (1 - xi) * (1 - xi)) / (1 + (d - 1) * t) ** 2;
    const g = splineForwardScalar(-3 + 1.5 * xi, raw, 0, s);
    expect(g.out).toBeCloseTo(y, 14);
    expect(g.logdet).toBeCloseTo(Math.log(dydx), 14);
  });

  it('is strictly increasing and log f\' matches central differences (C^1 also across knots)', () => {
    for (const K of [2, 5, 10]) {
      const s = spec(K);
      const raw = rawFor(K, 9 + K);
      const { cw } = splineKnots(raw, 0, s);
      let prev = -Infinity;
      for (const u of linspace(-2.999, 2.999, 997)) {
        const f = splineForwardScalar(u, raw, 0, s);
        expect(f.out).toBeGreaterThan(prev);
        prev = f.out;
        const h = 1e-6;
        const near = cw.some((c) => Math.abs(c - u) < 2 * h);
        if (near) continue;
        // Within one bin f is smooth: truncation h^2 f'''/6 ~ 1e-11, rounding 3 eps / h ~ 1e-9,
        // relative to f' >= ~1e-2 here -> 1e-6 on log f'.
        const fd = (splineForwardScalar(u + h, raw, 0, s).out - splineForwardScalar(u - h, raw, 0, s).out) / (2 * h);
        expect(Math.abs(Math.log(fd) - f.logdet), `K=${K} u=${u}`).toBeLessThanOrEqual(1e-6);
      }
      // Exactly on interior knots: f'' jumps, so the central difference has error h/4 |f''+ - f''-|
      // (~1e-5 relative at h = 1e-6); a slope mismatch across the knot would be O(1).
      for (let k = 1; k < K; k++) {
        const h = 1e-6;
        const fd = (splineForwardScalar(cw[k] + h, raw, 0, s).out - splineForwardScalar(cw[k] - h, raw, 0, s).out) / (2 * h);
        expect(Math.abs(Math.log(fd) - splineForwardScalar(cw[k], raw, 0, s).logdet)).toBeLessThanOrEqual(1e-4);
      }
    }
  });

  it('backward (dL/du and dL/draw of L = sum gY y + gL logdet) matches central differences', () => {
    for (const K of [2, 5, 10]) {
      const s = spec(K);
      const per = splineParamCount(K);
      const m = 7;
      const u = randn(m, 20 + K, 2);
      u[0] = 4.5; // outside: identity, no parameter gradient
      u[1] = -3.2;
      const raw = randn(m * per, 30 + K, 1.5);
      const gY = randn(m, 40 + K);
      const gL = randn(m, 50 + K);
      const loss = (uu: Float64Array, rr: Float64Array) => {
        const { y, logdet } = splineForward(uu, rr, s);
        let L = 0;
        for (let e = 0; e < m; e++) L += gY[e] * y[e] + gL[e] * logdet[e];
        return L;
      };
      const { gU, gRaw } = splineBackward(u, raw, gY, gL, s);
      // h = 1e-6 on O(1) inputs: truncation ~h^2 |L'''| ~ 1e-11, rounding ~ eps |L| / h ~ 1e-9;
      // tolerance 1e-6 relative + 1e-8 absolute (a few x the rounding floor).
      const h = 1e-6;
      const fdU = Array.from(u, (_, i) => centralDiff((p) => loss(p, raw), u, i, h));
      const fdR = Array.from(raw, (_, i) => centralDiff((p) => loss(u, p), raw, i, h));
      expectAllClose(gU, fdU, { rtol: 1e-6, atol: 1e-8, label: `K=${K} dL/du` });
      expectAllClose(gRaw, fdR, { rtol: 1e-6, atol: 1e-8, label: `K=${K} dL/draw` });
      expect(gU[0]).toBe(gY[0]);
      for (let i = 0; i < per; i++) expect(gRaw[i]).toBe(0);
      // Non-trivial: most parameter gradients of inside points are well above the tolerance floor.
      const big = Array.from(gRaw.subarray(2 * per)).filter((g) => Math.abs(g) > 1e-4).length;
      expect(big).toBeGreaterThan(0.5 * 5 * per);
    }
  });

  it('batched inverse undoes batched forward', () => {
    const s = spec(6);
    const m = 50;
    const u = randn(m, 60, 2.5);
    const raw = randn(m * splineParamCount(6), 61, 2);
    const { y, logdet } = splineForward(u, raw, s);
    const inv = splineInverse(y, raw, s);
    expectAllClose(inv.x, u, { atol: 1e-10 });
    expectAllClose(inv.logdet, Array.from(logdet, (v) => -v), { atol: 1e-9 });
    expect(() => splineForward(u, raw.subarray(1), s)).toThrow(/raw length/);
  });
});
