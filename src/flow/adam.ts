/**
 * Optimiser reference: global gradient-norm clipping and Adam / AdamW, element for element as
 * PyTorch's single-tensor (foreach=False) implementations, so the fused WGSL kernel can be
 * checked against it.
 *
 * clipGradNorm (torch.nn.utils.clip_grad_norm_, norm_type 2):
 *   total = sqrt(sum g^2);  coef = maxNorm / (total + eps), eps = 1e-6 (torch's constant);
 *   if coef < 1: g *= coef.   Returns `total` (the norm BEFORE clipping), as torch.
 *   NB: with torch's eps the clipped norm is maxNorm * total / (total + 1e-6), not exactly maxNorm;
 *   pass eps = 0 for an exact rescale to maxNorm.
 *
 * adamStep (torch.optim.Adam / AdamW, amsgrad = false, maximize = false), step t = state.step + 1:
 *   Adam:  g <- g + wd * p                       (L2 penalty folded into the gradient)
 *   AdamW: p <- p * (1 - lr * wd)                (decoupled weight decay, before the update)
 *   m <- m + (1 - beta1) (g - m)                 (torch's lerp form of beta1 m + (1 - beta1) g)
 *   v <- beta2 v + (1 - beta2) g^2
 *   bc1 = 1 - beta1^t,  bc2 = 1 - beta2^t
 *   p <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
 * The optimiser's moments use the same flat layout as the parameters (alignment gaps stay 0).
 */

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** true: AdamW (decoupled weight decay); false: Adam (L2 added to the gradient). */
  decoupled?: boolean;
}

export interface AdamState {
  /** Steps taken so far. */
  step: number;
  m: Float64Array;
  v: Float64Array;
}

export function createAdamState(size: number): AdamState {
  return { step: 0, m: new Float64Array(size), v: new Float64Array(size) };
}

/** sqrt(sum g^2) in float64. */
export function globalNorm(g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/** In-place global-norm clipping like torch.nn.utils.clip_grad_norm_. Returns the pre-clip norm. */
export function clipGradNorm(g: Float64Array, maxNorm = 5, eps = 1e-6): number {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  const total = globalNorm(g);
  const coef = maxNorm / (total + eps);
  if (coef < 1) for (let i = 0; i < g.length; i++) g[i] *= coef;
  return total;
}

/** One Adam/AdamW step, in place on params and state. `grad` is not modified. */
export function adamStep(params: Float64Array, grad: ArrayLike<number>, state: AdamState, o: AdamOptions): void {
  const lr = o.lr;
  const b1 = o.beta1 ?? 0.9;
  const b2 = o.beta2 ?? 0.999;
  const eps = o.eps ?? 1e-8;
  const wd = o.weightDecay ?? 0;
  if (params.length !== grad.length || params.length !== state.m.length) throw new RangeError('adamStep: params, grad and state sizes differ');
  state.step += 1;
  const t = state.step;
  const bc1 = 1 - b1 ** t;
  const bc2Sqrt = Math.sqrt(1 - b2 ** t);
  const stepSize = lr / bc1;
  const { m, v } = state;
  for (let i = 0; i < params.length; i++) {
    let g = grad[i];
    if (wd !== 0) {
      if (o.decoupled) params[i] *= 1 - lr * wd;
      else g += wd * params[i];
    }
    m[i] += (1 - b1) * (g - m[i]);
    v[i] = v[i] * b2 + (1 - b2) * g * g;
    const denom = Math.sqrt(v[i]) / bc2Sqrt + eps;
    params[i] -= (stepSize * m[i]) / denom;
  }
}
