import { describe, expect, it } from 'vitest';
import { adamStep, clipGradNorm, createAdamState, globalNorm } from '../../src/flow/adam.js';
import { expectAllClose } from '../helpers/allclose.js';
import { randn } from './helpers.js';

/**
 * f(p) = 1/2 sum_i a_i (p_i - c_i)^2 with a = (1, 100, 1e-9): the third coordinate's gradient
 * (~3e-9) is below eps = 1e-8, so the placement of eps (outside the sqrt, after the bias
 * correction) decides its step. Expected values: the textbook algorithm (Kingma & Ba with torch's
 * eps placement; m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t), p -= lr m_hat / (sqrt(v_hat) + eps);
 * Adam adds wd p to the gradient, AdamW multiplies p by 1 - lr wd first), run step by step in
 * Python float64 scalars. Step 1 by hand: p0 - lr g / (|g| + eps) = 1 - 0.1 / (1 + 1e-8) =
 * 0.900000001 and 2 - 0.1 * 3e-9 / (3e-9 + 1e-8) = 1.976923076923077.
 */
const A = [1, 100, 1e-9];
const C = [0, 0.3, -1];
const EXPECTED: Record<string, number[][]> = {
  'adam wd=0': [
    [0.900000001, -0.4000000000125, 1.976923076923077],
    [0.8004122297123382, -0.30056828286472825, 1.953919194239466],
    [0.701586274504415, -0.20222006562049583, 1.9309914448408005],
  ],
  'adam wd=0.05': [
    [0.900000000952381, -0.400000000012496, 1.9000000099999987],
    [0.8004122296151434, -0.3005684401866749, 1.8001665058239318],
    [0.7015862743559974, -0.20222071245968454, 1.700623421898955],
  ],
  'adamw wd=0.05': [
    [0.895000001, -0.39750000001249997, 1.966923076923077],
    [0.7909665855106481, -0.29610195304129394, 1.9341162945660104],
    [0.6882699991703867, -0.1963327956252956, 1.90158246127481],
  ],
};

describe('Adam / AdamW (torch.optim semantics)', () => {
  for (const [name, decoupled, wd] of [
    ['adam wd=0', false, 0],
    ['adam wd=0.05', false, 0.05],
    ['adamw wd=0.05', true, 0.05],
  ] as const) {
    it(`${name}: three steps on a quadratic equal the hand-computed values`, () => {
      const p = Float64Array.of(1, -0.5, 2);
      const state = createAdamState(3);
      for (let t = 0; t < 3; t++) {
        const g = Float64Array.from(p, (v, i) => A[i] * (v - C[i]));
        adamStep(p, g, state, { lr: 0.1, weightDecay: wd, decoupled });
        // Same operations up to association (torch's lerp for m, sqrt(v)/sqrt(bc2) vs
        // sqrt(v/bc2)): a few ulps.
        expectAllClose(p, EXPECTED[name][t], { rtol: 1e-14, atol: 1e-15, label: `${name} step ${t + 1}` });
      }
      expect(state.step).toBe(3);
    });
  }

  it('leaves zero-gradient zero-valued entries (layout gaps) at exactly zero, also with weight decay', () => {
    const p = Float64Array.of(0, 1);
    const s = createAdamState(2);
    for (let t = 0; t < 5; t++) adamStep(p, Float64Array.of(0, 0.5), s, { lr: 0.01, weightDecay: 0.1, decoupled: t % 2 === 0 });
    expect(p[0]).toBe(0);
    expect(p[1]).not.toBe(1);
  });
});

describe('global gradient-norm clipping (torch.nn.utils.clip_grad_norm_)', () => {
  it('scales the global norm to maxNorm * N / (N + 1e-6) (exactly maxNorm with eps = 0) and returns N', () => {
    const g = randn(1000, 1, 3);
    const n0 = globalNorm(g);
    expect(n0).toBeGreaterThan(50);
    const a = g.slice();
    expect(clipGradNorm(a, 5)).toBe(n0);
    // One multiply per element then a sum of squares: ~1e-15 relative.
    expect(Math.abs(globalNorm(a) - (5 * n0) / (n0 + 1e-6)) / 5).toBeLessThanOrEqual(1e-14);
    expect(a[7] / g[7]).toBeCloseTo(5 / (n0 + 1e-6), 15);
    const b = g.slice();
    clipGradNorm(b, 5, 0);
    expect(Math.abs(globalNorm(b) - 5) / 5).toBeLessThanOrEqual(1e-14);
    // Below the threshold: untouched, bit for bit.
    const c = g.slice();
    expect(clipGradNorm(c, 2 * n0)).toBe(n0);
    expect(Array.from(c)).toEqual(Array.from(g));
    expect(() => clipGradNorm(c, 0)).toThrow(/maxNorm/);
  });
});
