/**
 * The conditioner: a residual MLP as nflows' `ResidualNet` (without its context-GLU gating and
 * without batch norm / dropout), written layer by layer with explicit backward passes. Each
 * function is the CPU mirror of one GPU kernel.
 *
 *   h   = X . W_in + b_in                                   (Linear(inDim, H))
 *   for each block:  h = h + (act(act(h) . W1 + b1)) . W2 + b2
 *   out = h . W_out + b_out                                  (Linear(H, outDim), NO activation
 *                                                             before it, as nflows' ResidualNet)
 *
 * The context enters only through the input concatenation [identity dims, xStd]. (sbi's NSF passes
 * the context to nflows' ResidualNet, which ALSO gates every block's output with
 * GLU(cat(t2, Linear(context))); we leave that out, as the issue's brief specifies — results are
 * comparable in spirit, not weight-for-weight.)
 * With blocks = 0 the conditioner is Linear -> Linear (affine), exactly as ResidualNet(num_blocks=0).
 * All matrices are row-major; weights W[in][out] (see layout.ts). Backward functions ACCUMULATE
 * (+=) into the parameter-gradient arrays (so per-layer gradients can share one flat vector) and
 * return fresh input gradients.
 */
import type { CouplingLayerSpec, LinearSpec } from './layout.js';

export type Activation = 'relu' | 'tanh';

/** Y (n x outDim) = X (n x inDim) . W (inDim x outDim) + b. `wOff`/`bOff` index into flat arrays. */
export function linearForward(
  X: ArrayLike<number>,
  n: number,
  inDim: number,
  outDim: number,
  W: ArrayLike<number>,
  b: ArrayLike<number>,
  wOff = 0,
  bOff = 0,
): Float64Array {
  const Y = new Float64Array(n * outDim);
  for (let r = 0; r < n; r++) {
    const yo = r * outDim;
    for (let o = 0; o < outDim; o++) Y[yo + o] = b[bOff + o];
    for (let i = 0; i < inDim; i++) {
      const xv = X[r * inDim + i];
      if (xv === 0) continue;
      const wo = wOff + i * outDim;
      for (let o = 0; o < outDim; o++) Y[yo + o] += xv * W[wo + o];
    }
  }
  return Y;
}

/**
 * Backward of Y = X W + b given gY = dL/dY:
 *   gW += X^T gY   (inDim x outDim),   gb += sum over rows of gY,   returns gX = gY W^T (n x inDim)
 * (gX is skipped, returned as null, when `needGX` is false).
 */
export function linearBackward(
  X: ArrayLike<number>,
  gY: ArrayLike<number>,
  n: number,
  inDim: number,
  outDim: number,
  W: ArrayLike<number>,
  gW: Float64Array,
  gb: Float64Array,
  needGX: boolean,
  wOff = 0,
  bOff = 0,
): Float64Array | null {
  for (let r = 0; r < n; r++) {
    const go = r * outDim;
    for (let o = 0; o < outDim; o++) gb[bOff + o] += gY[go + o];
    for (let i = 0; i < inDim; i++) {
      const xv = X[r * inDim + i];
      if (xv === 0) continue;
      const wo = wOff + i * outDim;
      for (let o = 0; o < outDim; o++) gW[wo + o] += xv * gY[go + o];
    }
  }
  if (!needGX) return null;
  const gX = new Float64Array(n * inDim);
  for (let r = 0; r < n; r++) {
    const go = r * outDim;
    for (let i = 0; i < inDim; i++) {
      const wo = wOff + i * outDim;
      let s = 0;
      for (let o = 0; o < outDim; o++) s += gY[go + o] * W[wo + o];
      gX[r * inDim + i] = s;
    }
  }
  return gX;
}

/** Elementwise activation. relu(x) = max(x, 0); tanh. */
export function activationForward(kind: Activation, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(x.length);
  if (kind === 'relu') for (let i = 0; i < x.length; i++) y[i] = x[i] > 0 ? x[i] : 0;
  else for (let i = 0; i < x.length; i++) y[i] = Math.tanh(x[i]);
  return y;
}

/**
 * gx = gy * act'(x). relu'(x) = 1 for x > 0, else 0 (torch's convention at 0); tanh' = 1 - y^2 with
 * y = tanh(x) the forward output (what a kernel keeps).
 */
export function activationBackward(kind: Activation, x: ArrayLike<number>, y: ArrayLike<number>, gy: ArrayLike<number>): Float64Array {
  const gx = new Float64Array(gy.length);
  if (kind === 'relu') for (let i = 0; i < gy.length; i++) gx[i] = x[i] > 0 ? gy[i] : 0;
  else for (let i = 0; i < gy.length; i++) gx[i] = gy[i] * (1 - y[i] * y[i]);
  return gx;
}

export interface ResidualBlockCache {
  /** Block input h (n x H). */
  h: Float64Array;
  /** act(h). */
  a0: Float64Array;
  /** act(h) W1 + b1. */
  t1: Float64Array;
  /** act(t1). */
  a1: Float64Array;
}

/** out = h + act(act(h) W1 + b1) W2 + b2 (nflows ResidualBlock, no batch norm, no dropout). */
export function residualBlockForward(
  h: Float64Array,
  n: number,
  H: number,
  params: ArrayLike<number>,
  spec: { lin1: LinearSpec; lin2: LinearSpec },
  act: Activation,
): { out: Float64Array; cache: ResidualBlockCache } {
  const a0 = activationForward(act, h);
  const t1 = linearForward(a0, n, H, H, params, params, spec.lin1.weight.offset, spec.lin1.bias.offset);
  const a1 = activationForward(act, t1);
  const t2 = linearForward(a1, n, H, H, params, params, spec.lin2.weight.offset, spec.lin2.bias.offset);
  for (let i = 0; i < t2.length; i++) t2[i] += h[i];
  return { out: t2, cache: { h, a0, t1, a1 } };
}

/** Backward of the residual block: accumulates into `grad` (flat), returns dL/dh. */
export function residualBlockBackward(
  cache: ResidualBlockCache,
  gOut: Float64Array,
  n: number,
  H: number,
  params: ArrayLike<number>,
  grad: Float64Array,
  spec: { lin1: LinearSpec; lin2: LinearSpec },
  act: Activation,
): Float64Array {
  const gA1 = linearBackward(cache.a1, gOut, n, H, H, params, grad, grad, true, spec.lin2.weight.offset, spec.lin2.bias.offset)!;
  const gT1 = activationBackward(act, cache.t1, cache.a1, gA1);
  const gA0 = linearBackward(cache.a0, gT1, n, H, H, params, grad, grad, true, spec.lin1.weight.offset, spec.lin1.bias.offset)!;
  const gH = activationBackward(act, cache.h, cache.a0, gA0);
  for (let i = 0; i < gH.length; i++) gH[i] += gOut[i];
  return gH;
}

export interface ConditionerCache {
  n: number;
  /** Conditioner input (n x inDim). */
  input: Float64Array;
  blocks: ResidualBlockCache[];
  /** Input of the output Linear (n x H): the last block's output, or the first Linear's. */
  hLast: Float64Array;
}

/** Conditioner forward for one coupling layer: input (n x inDim) -> spline params (n x outDim). */
export function conditionerForward(
  params: ArrayLike<number>,
  layer: CouplingLayerSpec,
  input: Float64Array,
  n: number,
  H: number,
  act: Activation,
): { out: Float64Array; cache: ConditionerCache } {
  let h = linearForward(input, n, layer.inDim, H, params, params, layer.input.weight.offset, layer.input.bias.offset);
  const blocks: ResidualBlockCache[] = [];
  for (const blk of layer.blocks) {
    const r = residualBlockForward(h, n, H, params, blk, act);
    blocks.push(r.cache);
    h = r.out;
  }
  const out = linearForward(h, n, H, layer.outDim, params, params, layer.output.weight.offset, layer.output.bias.offset);
  return { out, cache: { n, input, blocks, hLast: h } };
}

/** Conditioner backward: accumulates parameter gradients into `grad`; returns dL/dinput (n x inDim). */
export function conditionerBackward(
  params: ArrayLike<number>,
  grad: Float64Array,
  layer: CouplingLayerSpec,
  cache: ConditionerCache,
  gOut: Float64Array,
  H: number,
  act: Activation,
): Float64Array {
  const n = cache.n;
  let gH = linearBackward(cache.hLast, gOut, n, H, layer.outDim, params, grad, grad, true, layer.output.weight.offset, layer.output.bias.offset)!;
  for (let b = layer.blocks.length - 1; b >= 0; b--) gH = residualBlockBackward(cache.blocks[b], gH, n, H, params, grad, layer.blocks[b], act);
  return linearBackward(cache.input, gH, n, layer.inDim, H, params, grad, grad, true, layer.input.weight.offset, layer.input.bias.offset)!;
}
