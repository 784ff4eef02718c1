import { describe, expect, it } from 'vitest';
import { type FlowModel, createFlow, fitFlowStandardization, forward, nllAndGrad } from '../../src/flow/flow.js';
import { standardize } from '../../src/flow/standardize.js';
import { expectNllGradMatchesFd, randn } from './helpers.js';

/**
 * Gradient of the mean NLL (manual backprop) vs finite differences, every parameter tensor,
 * tiny awkward sizes. Steps and tolerances (float64):
 * - 4th-order central differences (5-point stencil) with h = 1e-5 on parameters of size O(1):
 *   truncation h^4 |L^(5)| / 30 ~ 3e-22 |L^(5)|, rounding ~ 1.5 eps |L| / h ~ 3e-11 |L|. The plain
 *   2-point difference is NOT enough here: with perturbed weights, 29 context features and inputs
 *   in the tails the loss has |L'''| ~ 1e6, and its h^2 |L'''| / 6 truncation (measured: the error
 *   drops exactly 100x per decade of h) exceeds a 1e-6 relative tolerance.
 * - tolerance: rtol 1e-6, atol = 100 eps |L| / h (~70x the rounding floor; ~1e-8 for |L| ~ 5),
 *   so gradients far below that are only checked in absolute terms; a guard asserts that most
 *   checked entries are far above atol (so the test is not vacuous).
 * - relu kinks / bin edges: with seeded draws no pre-activation or spline input lies within h of
 *   a kink (a hit would show up as a loud failure, not as a silent pass).
 */
const CASES = [
  { thetaDim: 1, contextDim: 0, transforms: 2, hidden: 3, blocks: 0, bins: 2 },
  { thetaDim: 1, contextDim: 1, transforms: 3, hidden: 7, blocks: 1, bins: 5 },
  { thetaDim: 2, contextDim: 29, transforms: 3, hidden: 3, blocks: 2, bins: 10 },
  { thetaDim: 3, contextDim: 1, transforms: 4, hidden: 7, blocks: 2, bins: 5, activation: 'tanh' as const },
  { thetaDim: 8, contextDim: 29, transforms: 3, hidden: 7, blocks: 1, bins: 10 },
  { thetaDim: 8, contextDim: 0, transforms: 2, hidden: 3, blocks: 2, bins: 2 },
  { thetaDim: 3, contextDim: 1, transforms: 3, hidden: 3, blocks: 1, bins: 5, bound: 1.5 },
];

const H = 1e-5;

function setup(c: (typeof CASES)[number], seed: number): { model: FlowModel; theta: Float64Array; x: Float64Array; n: number } {
  const model = createFlow({ ...c, seed });
  const P = c.thetaDim;
  const F = c.contextDim;
  // Standardisation fitted on a training set whose theta is narrower than the test batch, so some
  // standardised test inputs fall outside [-B, B] (tails) and some inside.
  const nTrain = 40;
  const tTrain = randn(nTrain * P, seed + 1, 0.8);
  for (let i = 0; i < tTrain.length; i++) tTrain[i] += 0.3 * (i % P);
  const xTrain = randn(nTrain * F, seed + 2, 2);
  fitFlowStandardization(model, tTrain, xTrain, nTrain);
  // Perturb the init so residual second Linears (init +-1e-3) and the splines are far from trivial.
  const noise = randn(model.params.length, seed + 3, 0.4);
  for (const t of model.layout.tensors) for (let i = 0; i < t.size; i++) model.params[t.offset + i] += noise[t.offset + i];
  const n = 5;
  const theta = randn(n * P, seed + 4, 2.5);
  // Guarantee tail inputs: row 0 / row 1 of dim 0 at +(B + 1.5) and -(B + 0.7) standard deviations.
  const B = model.config.bound;
  theta[0] = model.thetaStd.mean[0] + (B + 1.5) * model.thetaStd.std[0];
  theta[P] = model.thetaStd.mean[0] - (B + 0.7) * model.thetaStd.std[0];
  const x = randn(n * F, seed + 5, 2);
  return { model, theta, x, n };
}

describe('mean-NLL gradient vs central finite differences', () => {
  CASES.forEach((c, ci) => {
    it(`P=${c.thetaDim} F=${c.contextDim} T=${c.transforms} H=${c.hidden} blocks=${c.blocks} K=${c.bins}${c.activation ? ' ' + c.activation : ''}${c.bound ? ' B=' + c.bound : ''}`, () => {
      const { model, theta, x, n } = setup(c, 100 * (ci + 1));
      const B = model.config.bound;
      // Some inputs of the first layer's splines are in the tails, some inside.
      const ts = standardize(theta, model.thetaStd);
      expect(ts.some((v) => Math.abs(v) > B)).toBe(true);
      expect(ts.some((v) => Math.abs(v) < B)).toBe(true);

      const g = nllAndGrad(model, theta, x, n);
      // (relu with H = 3 leaves some units dead for the whole batch: their gradients are exactly 0.)
      expectNllGradMatchesFd(model, theta, x, n, g, { h: H, picks: 6, pickSeed: 7 * ci });
      // logProb returned by nllAndGrad is the forward's.
      expect(Array.from(g.logProb)).toEqual(Array.from(forward(model, theta, x, n).logProb));
    });
  });
});
