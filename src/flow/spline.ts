/**
 * Unconstrained monotonic rational-quadratic spline (Durkan et al. 2019, "Neural Spline Flows";
 * Gregory & Delbourgo 1982) with linear (identity) tails — the float64 mirror of nflows'
 * `unconstrained_rational_quadratic_spline(tails="linear")` + `rational_quadratic_spline`, as used
 * by `PiecewiseRationalQuadraticCouplingTransform`. One scalar input per call, so the WGSL kernel can
 * be one thread per (sample, transformed dim) that recomputes its knots from the raw parameters.
 *
 * Raw parameters per scalar (3K - 1 of them, conditioner output order): K width logits, K height
 * logits, K - 1 interior derivative logits.
 *
 * Knots (on [-B, B] in both x and y):
 *   widths   w = minW + (1 - minW K) softmax(rawW * logitScale)     (fractions, sum 1)
 *   cumwidths cw_0 = -B, cw_k = -B + 2B sum_{j<k} w_j, cw_K = B (endpoints FORCED, as nflows)
 *   bin widths W_k = cw_{k+1} - cw_k;  heights the same with minH, rawH -> ch_k, H_k
 *   derivatives d_0 = d_K = 1 (continuity with the identity tails; nflows pads with
 *   log(exp(1 - minD) - 1) so that minD + softplus(.) = 1 up to rounding — we set 1 exactly),
 *   d_k = minD + softplus(rawD_{k-1}) for k = 1 .. K-1.
 *   logitScale = 1/sqrt(hidden): nflows divides the width and height logits (not the derivative
 *   logits) by sqrt(transform_net.hidden_features) so the initial bins are nearly uniform.
 *   softplus is the exact stable form log1p(exp(-|r|)) + max(r, 0) (torch switches to r for r > 20:
 *   a difference below 2e-9 relative).
 *
 * Forward (x -> y, the data -> noise direction of the flow), in bin k (nflows searchsorted: k = the
 * number of interior knots cw_1..cw_{K-1} that are <= x, so a point exactly on a knot belongs to
 * the bin on its right and x = B to the last bin):
 *   s = H_k / W_k,  xi = (x - cw_k) / W_k,  t = xi (1 - xi)
 *   y = ch_k + H_k (s xi^2 + d_k t) / (s + (d_k + d_{k+1} - 2 s) t)
 *   dy/dx = s^2 (d_{k+1} xi^2 + 2 s t + d_k (1 - xi)^2) / (s + (d_k + d_{k+1} - 2 s) t)^2
 * Outside [-B, B] (inclusive interval inside, as nflows): y = x, log|dy/dx| = 0.
 *
 * Inverse (y -> x, sampling): the root in [0, 1] of a xi^2 + b xi + c = 0 with
 *   a = H_k (s - d_k) + (y - ch_k)(d_k + d_{k+1} - 2 s),  b = H_k d_k - (y - ch_k)(d_k + d_{k+1} - 2 s),
 *   c = -s (y - ch_k),  xi = 2c / (-b - sqrt(b^2 - 4ac))   (the cancellation-free form, as nflows).
 * Here a + b = H_k s > 0 and c <= 0, so the denominator is < 0 whenever c < 0, and equals
 * -2 H_k d_k < 0 at c = 0: no 0/0 on bin edges. The discriminant is clamped at 0 against rounding.
 */
import type { FlowConfig } from './config.js';

export interface SplineSpec {
  /** K */
  bins: number;
  /** B */
  bound: number;
  minBinWidth: number;
  minBinHeight: number;
  minDerivative: number;
  /** Multiplies the width and height logits (nflows: 1/sqrt(hidden)). */
  logitScale: number;
}

export function splineSpecFromConfig(cfg: FlowConfig): SplineSpec {
  return {
    bins: cfg.bins,
    bound: cfg.bound,
    minBinWidth: cfg.minBinWidth,
    minBinHeight: cfg.minBinHeight,
    minDerivative: cfg.minDerivative,
    logitScale: 1 / Math.sqrt(cfg.hidden),
  };
}

/** Number of raw parameters per scalar: 3K - 1. */
export function splineParamCount(K: number): number {
  return 3 * K - 1;
}

export function softplus(r: number): number {
  return Math.max(r, 0) + Math.log1p(Math.exp(-Math.abs(r)));
}

export function sigmoid(r: number): number {
  if (r >= 0) return 1 / (1 + Math.exp(-r));
  const e = Math.exp(r);
  return e / (1 + e);
}

export interface SplineKnots {
  /** Knot x positions, K + 1 (cw_0 = -B, cw_K = B). */
  cw: Float64Array;
  /** Knot y positions, K + 1. */
  ch: Float64Array;
  /** Knot derivatives, K + 1 (d_0 = d_K = 1). */
  d: Float64Array;
  /** softmax(rawW * logitScale), K (kept for the backward pass). */
  smW: Float64Array;
  /** softmax(rawH * logitScale), K. */
  smH: Float64Array;
}

function softmaxInto(raw: ArrayLike<number>, off: number, K: number, scale: number, out: Float64Array): void {
  let m = -Infinity;
  for (let i = 0; i < K; i++) m = Math.max(m, raw[off + i] * scale);
  let s = 0;
  for (let i = 0; i < K; i++) {
    out[i] = Math.exp(raw[off + i] * scale - m);
    s += out[i];
  }
  for (let i = 0; i < K; i++) out[i] /= s;
}

/** Cumulative knots from softmax fractions, endpoints forced to -B and B (nflows). */
function cumKnots(sm: Float64Array, K: number, minFrac: number, B: number, out: Float64Array): void {
  const scale = 1 - minFrac * K;
  let acc = 0;
  out[0] = -B;
  for (let k = 1; k < K; k++) {
    acc += minFrac + scale * sm[k - 1];
    out[k] = 2 * B * acc - B;
  }
  out[K] = B;
}

/** Knots of the spline whose 3K - 1 raw parameters start at raw[off]. */
export function splineKnots(raw: ArrayLike<number>, off: number, spec: SplineSpec): SplineKnots {
  const K = spec.bins;
  const smW = new Float64Array(K);
  const smH = new Float64Array(K);
  const cw = new Float64Array(K + 1);
  const ch = new Float64Array(K + 1);
  const d = new Float64Array(K + 1);
  softmaxInto(raw, off, K, spec.logitScale, smW);
  softmaxInto(raw, off + K, K, spec.logitScale, smH);
  cumKnots(smW, K, spec.minBinWidth, spec.bound, cw);
  cumKnots(smH, K, spec.minBinHeight, spec.bound, ch);
  d[0] = 1;
  d[K] = 1;
  for (let k = 1; k < K; k++) d[k] = spec.minDerivative + softplus(raw[off + 2 * K + k - 1]);
  return { cw, ch, d, smW, smH };
}

/** Bin index of v among knots q_0..q_K: the number of interior knots q_1..q_{K-1} that are <= v. */
export function searchBin(q: Float64Array, K: number, v: number): number {
  let k = 0;
  while (k + 1 < K && v >= q[k + 1]) k++;
  return k;
}

export interface SplineScalarResult {
  /** Output (y for forward, x for inverse). */
  out: number;
  /** log|d out / d in| of the map that was applied. */
  logdet: number;
  /** Bin used (-1 outside [-B, B]). */
  bin: number;
}

function inside(v: number, B: number): boolean {
  return v >= -B && v <= B;
}

/** Forward spline y = f(x) and log f'(x) for one scalar with raw parameters at raw[off]. */
export function splineForwardScalar(x: number, raw: ArrayLike<number>, off: number, spec: SplineSpec): SplineScalarResult {
  if (!inside(x, spec.bound)) return { out: x, logdet: 0, bin: -1 };
  const K = spec.bins;
  const { cw, ch, d } = splineKnots(raw, off, spec);
  const k = searchBin(cw, K, x);
  const x0 = cw[k];
  const w = cw[k + 1] - x0;
  const y0 = ch[k];
  const h = ch[k + 1] - y0;
  const s = h / w;
  const d0 = d[k];
  const d1 = d[k + 1];
  const xi = (x - x0) / w;
  const om = 1 - xi;
  const t = xi * om;
  const num = h * (s * xi * xi + d0 * t);
  const den = s + (d0 + d1 - 2 * s) * t;
  const dnum = s * s * (d1 * xi * xi + 2 * s * t + d0 * om * om);
  return { out: y0 + num / den, logdet: Math.log(dnum) - 2 * Math.log(den), bin: k };
}

/** Inverse spline x = f^-1(y) and log|dx/dy| = -log f'(x) for one scalar. */
export function splineInverseScalar(y: number, raw: ArrayLike<number>, off: number, spec: SplineSpec): SplineScalarResult {
  if (!inside(y, spec.bound)) return { out: y, logdet: 0, bin: -1 };
  const K = spec.bins;
  const { cw, ch, d } = splineKnots(raw, off, spec);
  const k = searchBin(ch, K, y);
  const x0 = cw[k];
  const w = cw[k + 1] - x0;
  const y0 = ch[k];
  const h = ch[k + 1] - y0;
  const s = h / w;
  const d0 = d[k];
  const d1 = d[k + 1];
  const dy = y - y0;
  const sum = d0 + d1 - 2 * s;
  const a = h * (s - d0) + dy * sum;
  const b = h * d0 - dy * sum;
  const c = -s * dy;
  const disc = Math.max(b * b - 4 * a * c, 0);
  const xi = (2 * c) / (-b - Math.sqrt(disc));
  const om = 1 - xi;
  const t = xi * om;
  const den = s + sum * t;
  const dnum = s * s * (d1 * xi * xi + 2 * s * t + d0 * om * om);
  return { out: xi * w + x0, logdet: -(Math.log(dnum) - 2 * Math.log(den)), bin: k };
}

/**
 * Backward of the forward spline for one scalar: given gY = dL/dy and gLogdet = dL/dlog f'(x),
 * ACCUMULATES dL/draw into gRaw[gOff .. gOff + 3K - 1) and returns dL/dx.
 *
 * Derivation (bin k, symbols as in the header; N = s xi^2 + d0 t, D = s + (d0 + d1 - 2s) t,
 * M = d1 xi^2 + 2 s t + d0 (1 - xi)^2, y = y0 + h N / D, L = 2 log s + log M - 2 log D):
 *   dy/dxi = h (N' D - N D') / D^2,  N' = 2 s xi + d0 (1 - 2 xi),  D' = (d0 + d1 - 2s)(1 - 2 xi)
 *   dy/ds  = h (xi^2 D - N (1 - 2t)) / D^2,   dy/dh|_s = N / D,   dy/dy0 = 1
 *   dy/dd0 = h t (D - N) / D^2,               dy/dd1 = -h t N / D^2
 *   dL/dxi = M'/M - 2 D'/D,  M' = 2 d1 xi + 2 s (1 - 2 xi) - 2 d0 (1 - xi)
 *   dL/ds  = 2/s + 2t/M - 2 (1 - 2t)/D,  dL/dd0 = (1 - xi)^2/M - 2t/D,  dL/dd1 = xi^2/M - 2t/D
 * then s = h/w, xi = (x - x0)/w, x0 = -B + sum_{j<k} W_j, y0 = -B + sum_{j<k} H_j; the bin
 * widths are W_j = 2B wfrac_j (equal to the endpoint-forced differences in exact arithmetic, so this
 * is the exact gradient of the function the forward computes), wfrac = minW + (1 - minW K) softmax;
 * softmax backward ga_i = sm_i (g_i - sum_j sm_j g_j); times logitScale. d_k = minD + softplus(r)
 * gives dd/dr = sigmoid(r); the boundary derivatives d_0, d_K are constants. The bin index is
 * piecewise constant (no gradient). Outside [-B, B]: dL/dx = gY, no parameter gradient.
 */
export function splineBackwardScalar(
  x: number,
  raw: ArrayLike<number>,
  off: number,
  spec: SplineSpec,
  gY: number,
  gLogdet: number,
  gRaw: Float64Array,
  gOff: number,
): number {
  const B = spec.bound;
  if (!inside(x, B)) return gY;
  const K = spec.bins;
  const { cw, ch, d, smW, smH } = splineKnots(raw, off, spec);
  const k = searchBin(cw, K, x);
  const x0 = cw[k];
  const w = cw[k + 1] - x0;
  const y0 = ch[k];
  const h = ch[k + 1] - y0;
  const s = h / w;
  const d0 = d[k];
  const d1 = d[k + 1];
  const xi = (x - x0) / w;
  const om = 1 - xi;
  const t = xi * om;
  const sum = d0 + d1 - 2 * s;
  const N = s * xi * xi + d0 * t;
  const D = s + sum * t;
  const M = d1 * xi * xi + 2 * s * t + d0 * om * om;
  const D2 = D * D;
  const Np = 2 * s * xi + d0 * (1 - 2 * xi);
  const Dp = sum * (1 - 2 * xi);
  const Mp = 2 * d1 * xi + 2 * s * (1 - 2 * xi) - 2 * d0 * om;

  const gXi = gY * ((h * (Np * D - N * Dp)) / D2) + gLogdet * (Mp / M - (2 * Dp) / D);
  const gS = gY * ((h * (xi * xi * D - N * (1 - 2 * t))) / D2) + gLogdet * (2 / s + (2 * t) / M - (2 * (1 - 2 * t)) / D);
  const gD0 = gY * ((h * t * (D - N)) / D2) + gLogdet * ((om * om) / M - (2 * t) / D);
  const gD1 = gY * ((-h * t * N) / D2) + gLogdet * ((xi * xi) / M - (2 * t) / D);
  const gY0 = gY;
  const gH = gY * (N / D) + gS / w;
  const gW = (-gS * s) / w - (gXi * xi) / w;
  const gX0 = -gXi / w;
  const gX = gXi / w;

  // Knot positions -> bin widths/heights (W_j, H_j) -> softmax fractions -> logits.
  const gWbin = new Float64Array(K);
  const gHbin = new Float64Array(K);
  for (let j = 0; j < k; j++) {
    gWbin[j] += gX0;
    gHbin[j] += gY0;
  }
  gWbin[k] += gW;
  gHbin[k] += gH;
  softmaxBackwardAccum(smW, gWbin, 2 * B * (1 - spec.minBinWidth * K) * spec.logitScale, gRaw, gOff, K);
  softmaxBackwardAccum(smH, gHbin, 2 * B * (1 - spec.minBinHeight * K) * spec.logitScale, gRaw, gOff + K, K);
  // Interior derivatives d_k (k = 1..K-1) live at raw[off + 2K + k - 1].
  if (k >= 1) gRaw[gOff + 2 * K + k - 1] += gD0 * sigmoid(raw[off + 2 * K + k - 1]);
  if (k + 1 <= K - 1) gRaw[gOff + 2 * K + k] += gD1 * sigmoid(raw[off + 2 * K + k]);
  return gX;
}

/** gRaw[i] += factor * sm_i (g_i - sum_j sm_j g_j). */
function softmaxBackwardAccum(sm: Float64Array, g: Float64Array, factor: number, gRaw: Float64Array, gOff: number, K: number): void {
  let dot = 0;
  for (let j = 0; j < K; j++) dot += sm[j] * g[j];
  for (let i = 0; i < K; i++) gRaw[gOff + i] += factor * sm[i] * (g[i] - dot);
}

// ---------------------------------------------------------------------------------------------
// Batched forms: u has m scalars, raw has m * (3K - 1) values (scalar e's parameters at e(3K - 1)).
// For a coupling layer, m = n * D_t with e = row * D_t + j, which is exactly the conditioner's
// row-major (n x D_t(3K - 1)) output.
// ---------------------------------------------------------------------------------------------

export function splineForward(u: ArrayLike<number>, raw: ArrayLike<number>, spec: SplineSpec): { y: Float64Array; logdet: Float64Array } {
  const per = splineParamCount(spec.bins);
  checkBatch(u.length, raw.length, per);
  const y = new Float64Array(u.length);
  const logdet = new Float64Array(u.length);
  for (let e = 0; e < u.length; e++) {
    const r = splineForwardScalar(u[e], raw, e * per, spec);
    y[e] = r.out;
    logdet[e] = r.logdet;
  }
  return { y, logdet };
}

export function splineInverse(y: ArrayLike<number>, raw: ArrayLike<number>, spec: SplineSpec): { x: Float64Array; logdet: Float64Array } {
  const per = splineParamCount(spec.bins);
  checkBatch(y.length, raw.length, per);
  const x = new Float64Array(y.length);
  const logdet = new Float64Array(y.length);
  for (let e = 0; e < y.length; e++) {
    const r = splineInverseScalar(y[e], raw, e * per, spec);
    x[e] = r.out;
    logdet[e] = r.logdet;
  }
  return { x, logdet };
}

/** Backward of `splineForward`: returns dL/du and dL/draw given dL/dy and dL/dlogdet (per scalar). */
export function splineBackward(
  u: ArrayLike<number>,
  raw: ArrayLike<number>,
  gY: ArrayLike<number>,
  gLogdet: ArrayLike<number>,
  spec: SplineSpec,
): { gU: Float64Array; gRaw: Float64Array } {
  const per = splineParamCount(spec.bins);
  checkBatch(u.length, raw.length, per);
  const gU = new Float64Array(u.length);
  const gRaw = new Float64Array(raw.length);
  for (let e = 0; e < u.length; e++) gU[e] = splineBackwardScalar(u[e], raw, e * per, spec, gY[e], gLogdet[e], gRaw, e * per);
  return { gU, gRaw };
}

function checkBatch(m: number, rawLen: number, per: number): void {
  if (rawLen !== m * per) throw new RangeError(`spline: raw length ${rawLen} != ${m} scalars * ${per} params`);
}
