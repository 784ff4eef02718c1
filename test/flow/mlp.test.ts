import { describe, expect, it } from 'vitest';
import { parseFlowConfig } from '../../src/flow/config.js';
import { buildLayout } from '../../src/flow/layout.js';
import { type Activation, activationBackward, activationForward, linearBackward, linearForward, residualBlockBackward, residualBlockForward } from '../../src/flow/mlp.js';
import { gemmRef } from '../../src/reference/linalg.js';
import { expectAllClose } from '../helpers/allclose.js';
import { centralDiff, randn } from './helpers.js';

// Finite differences below: h = 1e-6 on O(1) values of functions that are polynomial of degree
// <= 2 in each entry (linear layers) or smooth away from relu's kink; rounding error
// ~ eps |L| / h ~ 1e-9, so rtol 1e-6 + atol 1e-8 (a few times that floor).
const H_FD = 1e-6;

describe('linear layer (Y = X W + b, W[in][out])', () => {
  for (const [n, i, o] of [
    [1, 1, 1],
    [3, 7, 5],
    [5, 29, 3],
    [2, 0, 4],
  ] as const) {
    it(`forward equals the GEMM reference and backward equals finite differences (n=${n}, in=${i}, out=${o})`, () => {
      const X = randn(n * i, 1);
      const W = randn(i * o, 2);
      const b = randn(o, 3);
      const Y = linearForward(X, n, i, o, W, b);
      // Independent implementation (src/reference/linalg.ts): both exact to a few ulps.
      expectAllClose(Y, i > 0 ? gemmRef(X, W, { M: n, N: o, K: i }, { bias: b }) : Array.from({ length: n * o }, (_, k) => b[k % o]), { rtol: 1e-14, atol: 1e-14 });
      const gY = randn(n * o, 4);
      const L = (XX: Float64Array, WW: Float64Array, bb: Float64Array) => linearForward(XX, n, i, o, WW, bb).reduce((s, y, k) => s + y * gY[k], 0);
      const gW = new Float64Array(i * o);
      const gb = new Float64Array(o);
      const gX = linearBackward(X, gY, n, i, o, W, gW, gb, true)!;
      expectAllClose(gX, Array.from(X, (_, k) => centralDiff((p) => L(p, W, b), X, k, H_FD)), { rtol: 1e-6, atol: 1e-8, label: 'gX' });
      expectAllClose(gW, Array.from(W, (_, k) => centralDiff((p) => L(X, p, b), W, k, H_FD)), { rtol: 1e-6, atol: 1e-8, label: 'gW' });
      expectAllClose(gb, Array.from(b, (_, k) => centralDiff((p) => L(X, W, p), b, k, H_FD)), { rtol: 1e-6, atol: 1e-8, label: 'gb' });
      // Accumulates (+=) rather than overwrites.
      linearBackward(X, gY, n, i, o, W, gW, gb, false);
      expectAllClose(gb, Array.from(b, (_, k) => 2 * centralDiff((p) => L(X, W, p), b, k, H_FD)), { rtol: 1e-6, atol: 1e-8 });
    });
  }
});

describe('activations', () => {
  it('relu / tanh forward values and backward (relu\'(0) = 0, as torch)', () => {
    const x = Float64Array.from([-2, -1e-300, 0, 1e-300, 0.5, 3]);
    expect(Array.from(activationForward('relu', x))).toEqual([0, 0, 0, 1e-300, 0.5, 3]);
    const y = activationForward('tanh', x);
    expectAllClose(y, Array.from(x, Math.tanh), { rtol: 0, atol: 0 });
    const g = Float64Array.from([1, 2, 3, 4, 5, 6]);
    expect(Array.from(activationBackward('relu', x, activationForward('relu', x), g))).toEqual([0, 0, 0, 4, 5, 6]);
    const xs = randn(20, 5, 2);
    const gy = randn(20, 6);
    const gx = activationBackward('tanh', xs, activationForward('tanh', xs), gy);
    const L = (p: Float64Array) => activationForward('tanh', p).reduce((s, v, k) => s + v * gy[k], 0);
    expectAllClose(gx, Array.from(xs, (_, k) => centralDiff(L, xs, k, H_FD)), { rtol: 1e-6, atol: 1e-8 });
  });
});

describe('residual block (h + W2 act(W1 act(h) + b1) + b2)', () => {
  for (const act of ['relu', 'tanh'] as Activation[]) {
    for (const H of [3, 7]) {
      it(`${act}, H=${H}: backward equals finite differences for h and all four tensors`, () => {
        const cfg = parseFlowConfig({ thetaDim: 2, contextDim: 1, transforms: 1, hidden: H, blocks: 1, bins: 3, activation: act });
        const layout = buildLayout(cfg);
        const blk = layout.layers[0].blocks[0];
        const params = randn(layout.size, 7 + H, 0.7);
        const n = 4;
        const h = randn(n * H, 8 + H, 1.5);
        const gOut = randn(n * H, 9 + H);
        const L = (hh: Float64Array, pp: Float64Array) => residualBlockForward(hh, n, H, pp, blk, act).out.reduce((s, v, k) => s + v * gOut[k], 0);
        const { cache } = residualBlockForward(h, n, H, params, blk, act);
        const grad = new Float64Array(layout.size);
        const gH = residualBlockBackward(cache, gOut, n, H, params, grad, blk, act);
        // relu kinks: no pre-activation of these seeded draws lies within h of 0 (the check would
        // then fail loudly, not pass silently).
        expectAllClose(gH, Array.from(h, (_, k) => centralDiff((p) => L(p, params), h, k, H_FD)), { rtol: 1e-6, atol: 1e-8, label: 'gH' });
        for (const t of [blk.lin1.weight, blk.lin1.bias, blk.lin2.weight, blk.lin2.bias]) {
          const idx = Array.from({ length: t.size }, (_, k) => t.offset + k);
          expectAllClose(
            idx.map((k) => grad[k]),
            idx.map((k) => centralDiff((p) => L(h, p), params, k, H_FD)),
            { rtol: 1e-6, atol: 1e-8, label: t.name },
          );
        }
      });
    }
  }
});
