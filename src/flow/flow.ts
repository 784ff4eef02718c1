/**
 * Conditional neural spline flow q(theta | x): float64 CPU reference (forward, log-density, manual
 * backward of the mean NLL, sampling). The GPU path (kernels/nn, shaders/nn) mirrors these functions
 * layer by layer and is tested against them.
 *
 * Model (issue 5; see layout.ts, mlp.ts, spline.ts for the pieces):
 *   thetaStd = (theta - mu_theta) / sd_theta,  xStd = (x - mu_x) / sd_x     (standardize.ts)
 *   v_0 = thetaStd; for l = 0 .. T-1 (coupling layer l, split from couplingSplit):
 *     raw_l = conditioner_l([v_l[identity], xStd])                         (n x D_t(3K - 1))
 *     v_{l+1}[transformed] = spline(v_l[transformed]; raw_l),  v_{l+1}[identity] = v_l[identity]
 *   z = v_T ~ N(0, I)  (standard-normal base; the flow maps data -> noise, as nflows' Flow.log_prob)
 *   log q(theta | x) = sum_p log N(z_p; 0, 1) + sum_l sum_{transformed} log|spline'| - sum_p log sd_theta[p]
 *   loss = mean over the batch of -log q (the NLL, in ORIGINAL units, so it includes + sum log sd).
 * Sampling inverts the stack from l = T-1 down to 0 with the spline's closed-form inverse, then
 * un-standardises. Data arrays are row-major: theta (n x P), x (n x F), z (n x P).
 *
 * MDN head (config.head = 'mdn', layout.ts: ONE conditioner on xStd alone, mdn.ts: the mixture):
 *   raw = conditioner_0(xStd),  log q(theta | x) = mdn log q(thetaStd | raw) - sum_p log sd_theta[p].
 * It is not a bijection, so the model-level functions keep the NSF's interface by convention:
 * - forward / forwardStd return z = 0 and logdet = mdn log q + P log sqrt(2 pi), so that
 *   log N(z; 0, I) + logdet - logStdSum is the log-density and the NLL's seeds (dL/dz = z / n = 0,
 *   dL/dlogdet = -1/n) drive backwardStd unchanged;
 * - inverseStd / sample take, besides the base normals z, one uniform u per draw (the component
 *   choice, mdn.ts mdnComponent) and return logdet = log N(z; 0, I) - mdn log q, so that
 *   log N(z) - logdet - logStdSum is again the log-density of the draw.
 * The GPU engine follows the same conventions.
 */
import { type FlowConfig, type FlowConfigInput, parseFlowConfig } from './config.js';
import { type CouplingLayerSpec, type FlowLayout, type LayoutOptions, buildLayout } from './layout.js';
import { HALF_LOG_2PI, mdnBackward, mdnLogProb, mdnSample } from './mdn.js';
import { type ConditionerCache, conditionerBackward, conditionerForward } from './mlp.js';
import { RngPurpose, uniform } from './rng.js';
import { type SplineSpec, splineBackward, splineForward, splineInverse, splineSpecFromConfig } from './spline.js';
import { type Standardization, fitStandardization, identityStandardization, logStdSum, standardize, unstandardize } from './standardize.js';

export interface FlowModel {
  config: FlowConfig;
  layout: FlowLayout;
  spline: SplineSpec;
  /** Flat parameter vector (layout.size long, alignment gaps zero). */
  params: Float64Array;
  /** Standardisation of theta (P columns) and x (F columns). */
  thetaStd: Standardization;
  xStd: Standardization;
}

/**
 * Initial parameters: element i of tensor t is initBound_t * (2u - 1) with
 * u = uniform(seed, RngPurpose.init, t.denseOffset + i) (Philox4x32-10, rng.ts), i.e. the torch/
 * nflows init distributions (layout.ts) from a counter-based stream: the same seed gives the same
 * weights on any machine, independently of the layout alignment.
 */
export function initParams(layout: FlowLayout, seed: number): Float64Array {
  const p = new Float64Array(layout.size);
  for (const t of layout.tensors) {
    if (t.initBound === 0) continue;
    for (let i = 0; i < t.size; i++) p[t.offset + i] = t.initBound * (2 * uniform(seed, RngPurpose.init, t.denseOffset + i) - 1);
  }
  return p;
}

/** A freshly initialised flow with identity standardisation (call `fitFlowStandardization` next). */
export function createFlow(config: FlowConfigInput | FlowConfig, opts: LayoutOptions = {}): FlowModel {
  const cfg = parseFlowConfig(config);
  const layout = buildLayout(cfg, opts);
  return {
    config: cfg,
    layout,
    spline: splineSpecFromConfig(cfg),
    params: initParams(layout, cfg.seed),
    thetaStd: identityStandardization(cfg.thetaDim),
    xStd: identityStandardization(cfg.contextDim),
  };
}

/** Fits the z-score standardisation of theta and x on a training set of n rows (in place). */
export function fitFlowStandardization(model: FlowModel, theta: ArrayLike<number>, x: ArrayLike<number>, n: number): void {
  model.thetaStd = fitStandardization(theta, n, model.config.thetaDim);
  model.xStd = model.config.contextDim > 0 ? fitStandardization(x, n, model.config.contextDim) : identityStandardization(0);
}

function checkRows(name: string, a: ArrayLike<number>, n: number, d: number): void {
  if (a.length !== n * d) throw new RangeError(`flow: ${name} has length ${a.length}, expected ${n} x ${d} = ${n * d}`);
}

/** True for the MDN head (one conditioner, no coupling layers). */
export function isMdn(model: FlowModel): boolean {
  return model.config.head === 'mdn';
}

function noCoupling(model: FlowModel, name: string): void {
  if (isMdn(model)) throw new Error(`${name}: an MDN model has no coupling layers (use forwardStd / backwardStd / inverseStd)`);
}

/** Columns `cols` of the row-major (n x P) matrix v, followed by all F columns of xs (if given). */
function gatherColumns(v: Float64Array, n: number, P: number, cols: number[], xs?: Float64Array, F = 0): Float64Array {
  const w = cols.length + F;
  const out = new Float64Array(n * w);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < cols.length; j++) out[r * w + j] = v[r * P + cols[j]];
    for (let f = 0; f < F; f++) out[r * w + cols.length + f] = xs![r * F + f];
  }
  return out;
}

export interface CouplingCache {
  /** Layer input v_l (n x P). */
  vIn: Float64Array;
  /** Spline inputs v_l[transformed] (n x D_t); MDN: thetaStd (n x P). */
  u: Float64Array;
  /** Conditioner output = raw spline params (n x D_t(3K-1)); MDN: the mixture's raw values (n x K C). */
  raw: Float64Array;
  cond: ConditionerCache;
}

export interface ForwardCache {
  n: number;
  /** Standardised context (n x F). */
  xs: Float64Array;
  /** One entry per coupling layer (MDN: one entry, the conditioner on xs and the mixture's input). */
  layers: CouplingCache[];
}

/** One coupling layer, data -> noise direction. Returns v_{l+1} and adds the log-dets into `logdet`. */
export function couplingForward(
  model: FlowModel,
  params: ArrayLike<number>,
  layer: CouplingLayerSpec,
  v: Float64Array,
  xs: Float64Array,
  n: number,
  logdet: Float64Array,
): { v: Float64Array; cache: CouplingCache } {
  noCoupling(model, 'couplingForward');
  const P = model.config.thetaDim;
  const F = model.config.contextDim;
  const H = model.config.hidden;
  const condIn = gatherColumns(v, n, P, layer.identity, xs, F);
  const { out: raw, cache: cond } = conditionerForward(params, layer, condIn, n, H, model.config.activation);
  const u = gatherColumns(v, n, P, layer.transformed);
  const { y, logdet: ld } = splineForward(u, raw, model.spline);
  const out = v.slice();
  const Dt = layer.transformed.length;
  for (let r = 0; r < n; r++)
    for (let j = 0; j < Dt; j++) {
      out[r * P + layer.transformed[j]] = y[r * Dt + j];
      logdet[r] += ld[r * Dt + j];
    }
  return { v: out, cache: { vIn: v, u, raw, cond } };
}

/** The MDN's conditioner on the standardised context xs (n x F): raw mixture values (n x K C). */
function mdnConditioner(model: FlowModel, params: ArrayLike<number>, xs: Float64Array, n: number): { raw: Float64Array; cond: ConditionerCache } {
  const layer = model.layout.layers[0];
  const { out, cache } = conditionerForward(params, layer, xs, n, model.config.hidden, model.config.activation);
  return { raw: out, cond: cache };
}

const mdnShape = (model: FlowModel) => ({ P: model.config.thetaDim, K: model.config.components });

/**
 * Standardised-space forward: thetaStd (n x P), xs (n x F) -> z (n x P) and the summed
 * log|det dz/dthetaStd| per sample, with the per-layer cache for `backward`.
 * MDN: z = 0 and logdet = mdn log q + P log sqrt(2 pi) (see the module comment).
 */
export function forwardStd(
  model: FlowModel,
  params: ArrayLike<number>,
  thetaStd: Float64Array,
  xs: Float64Array,
  n: number,
): { z: Float64Array; logdet: Float64Array; cache: ForwardCache } {
  if (isMdn(model)) {
    const P = model.config.thetaDim;
    const { raw, cond } = mdnConditioner(model, params, xs, n);
    const logdet = mdnLogProb(raw, thetaStd, n, mdnShape(model));
    for (let r = 0; r < n; r++) logdet[r] += P * HALF_LOG_2PI;
    return { z: new Float64Array(n * P), logdet, cache: { n, xs, layers: [{ vIn: thetaStd, u: thetaStd, raw, cond }] } };
  }
  const logdet = new Float64Array(n);
  let v = thetaStd;
  const layers: CouplingCache[] = [];
  for (const layer of model.layout.layers) {
    const r = couplingForward(model, params, layer, v, xs, n, logdet);
    layers.push(r.cache);
    v = r.v;
  }
  return { z: v, logdet, cache: { n, xs, layers } };
}

/** Forward in original units: z and log q(theta | x) per sample, plus the cache. */
export function forward(
  model: FlowModel,
  theta: ArrayLike<number>,
  x: ArrayLike<number>,
  n: number,
  params: ArrayLike<number> = model.params,
): { z: Float64Array; logProb: Float64Array; logdet: Float64Array; cache: ForwardCache } {
  const P = model.config.thetaDim;
  checkRows('theta', theta, n, P);
  checkRows('x', x, n, model.config.contextDim);
  const ts = standardize(theta, model.thetaStd);
  const xs = standardize(x, model.xStd);
  const { z, logdet, cache } = forwardStd(model, params, ts, xs, n);
  const lsd = logStdSum(model.thetaStd);
  const logProb = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let q = 0;
    for (let p = 0; p < P; p++) q += z[r * P + p] * z[r * P + p];
    logProb[r] = -0.5 * q - P * HALF_LOG_2PI + logdet[r] - lsd;
  }
  return { z, logProb, logdet, cache };
}

/** log q(theta | x) per sample, original units. */
export function logProb(model: FlowModel, theta: ArrayLike<number>, x: ArrayLike<number>, n: number, params: ArrayLike<number> = model.params): Float64Array {
  return forward(model, theta, x, n, params).logProb;
}

/** Mean negative log-likelihood over the batch (original units). */
export function meanNll(model: FlowModel, theta: ArrayLike<number>, x: ArrayLike<number>, n: number, params: ArrayLike<number> = model.params): number {
  const lp = logProb(model, theta, x, n, params);
  let s = 0;
  for (let r = 0; r < n; r++) s -= lp[r];
  return s / n;
}

/**
 * Backward of one coupling layer. gvOut = dL/dv_{l+1} (n x P); every (sample, transformed dim)
 * log-det term has weight `gLogdetEach` in L. Accumulates the conditioner's parameter gradients
 * into `grad` and returns dL/dv_l: the spline's input gradient on the transformed dims, and on the
 * identity dims the pass-through gradient PLUS the conditioner's input gradient (later layers'
 * conditioners see dims transformed by earlier layers, so this is how theta -> z of earlier
 * layers enters). The context part of the conditioner's input gradient is dropped (x is data).
 */
export function couplingBackward(
  model: FlowModel,
  params: ArrayLike<number>,
  layer: CouplingLayerSpec,
  c: CouplingCache,
  gvOut: Float64Array,
  gLogdetEach: number,
  grad: Float64Array,
): Float64Array {
  noCoupling(model, 'couplingBackward');
  const P = model.config.thetaDim;
  const n = c.cond.n;
  const Dt = layer.transformed.length;
  const gY = gatherColumns(gvOut, n, P, layer.transformed);
  const gLd = new Float64Array(n * Dt).fill(gLogdetEach);
  const { gU, gRaw } = splineBackward(c.u, c.raw, gY, gLd, model.spline);
  const gIn = conditionerBackward(params, grad, layer, c.cond, gRaw, model.config.hidden, model.config.activation);
  const gPrev = gvOut.slice();
  const Di = layer.identity.length;
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < Dt; j++) gPrev[r * P + layer.transformed[j]] = gU[r * Dt + j];
    for (let j = 0; j < Di; j++) gPrev[r * P + layer.identity[j]] += gIn[r * layer.inDim + j];
  }
  return gPrev;
}

/**
 * Backward through the whole stack given dL/dz (n x P) and the weight of every log-det term
 * (`gLogdetEach`). Accumulates parameter gradients into `grad` (layout.size) and returns
 * dL/dthetaStd (n x P).
 * MDN: z = 0 does not depend on anything, so gZ drops out; each sample's logdet (= log q + const)
 * has weight gLogdetEach. The context part of the conditioner's input gradient is dropped.
 */
export function backwardStd(
  model: FlowModel,
  params: ArrayLike<number>,
  cache: ForwardCache,
  gZ: Float64Array,
  gLogdetEach: number,
  grad: Float64Array,
): Float64Array {
  if (isMdn(model)) {
    const n = cache.n;
    const c = cache.layers[0];
    const { gRaw, gT } = mdnBackward(c.raw, c.u, new Float64Array(n).fill(gLogdetEach), n, mdnShape(model));
    conditionerBackward(params, grad, model.layout.layers[0], c.cond, gRaw, model.config.hidden, model.config.activation);
    return gT;
  }
  let gv = gZ;
  for (let l = model.layout.layers.length - 1; l >= 0; l--) gv = couplingBackward(model, params, model.layout.layers[l], cache.layers[l], gv, gLogdetEach, grad);
  return gv;
}

export interface NllGrad {
  /** Mean NLL over the batch (original units). */
  loss: number;
  /** d loss / d params (layout.size; alignment gaps 0). */
  grad: Float64Array;
  /** d loss / d theta (n x P, original units). */
  gTheta: Float64Array;
  logProb: Float64Array;
}

/** Mean NLL and its exact gradient w.r.t. every parameter (manual backprop). */
export function nllAndGrad(model: FlowModel, theta: ArrayLike<number>, x: ArrayLike<number>, n: number, params: ArrayLike<number> = model.params): NllGrad {
  const P = model.config.thetaDim;
  const f = forward(model, theta, x, n, params);
  let loss = 0;
  for (let r = 0; r < n; r++) loss -= f.logProb[r];
  loss /= n;
  // loss = (1/n) sum_r [ 0.5 |z_r|^2 + P/2 log 2pi - logdet_r ] + sum log sd:
  // dL/dz = z / n, dL/dlogdet = -1/n for every (sample, transformed dim) term (MDN: z = 0, one
  // logdet = log q + const per sample).
  const gZ = new Float64Array(f.z.length);
  for (let i = 0; i < gZ.length; i++) gZ[i] = f.z[i] / n;
  const grad = new Float64Array(model.layout.size);
  const gStd = backwardStd(model, params, f.cache, gZ, -1 / n, grad);
  const gTheta = new Float64Array(gStd.length);
  for (let i = 0; i < gStd.length; i++) gTheta[i] = gStd[i] / model.thetaStd.std[i % P];
  return { loss, grad, gTheta, logProb: f.logProb };
}

/** One coupling layer inverted (noise -> data direction); adds log|dv_l/dv_{l+1}| into `logdet`. */
export function couplingInverse(
  model: FlowModel,
  params: ArrayLike<number>,
  layer: CouplingLayerSpec,
  v: Float64Array,
  xs: Float64Array,
  n: number,
  logdet: Float64Array,
): Float64Array {
  noCoupling(model, 'couplingInverse');
  const P = model.config.thetaDim;
  const F = model.config.contextDim;
  const condIn = gatherColumns(v, n, P, layer.identity, xs, F);
  const { out: raw } = conditionerForward(params, layer, condIn, n, model.config.hidden, model.config.activation);
  const yT = gatherColumns(v, n, P, layer.transformed);
  const { x, logdet: ld } = splineInverse(yT, raw, model.spline);
  const out = v.slice();
  const Dt = layer.transformed.length;
  for (let r = 0; r < n; r++)
    for (let j = 0; j < Dt; j++) {
      out[r * P + layer.transformed[j]] = x[r * Dt + j];
      logdet[r] += ld[r * Dt + j];
    }
  return out;
}

/**
 * Standardised-space inverse: z (n x P) -> thetaStd, plus sum of inverse log-dets per sample.
 * MDN: `u` (n uniforms in [0, 1), the component choices) is required; thetaStd = mdnSample(raw, z,
 * u) and logdet = log N(z; 0, I) - mdn log q (see the module comment).
 */
export function inverseStd(
  model: FlowModel,
  params: ArrayLike<number>,
  z: Float64Array,
  xs: Float64Array,
  n: number,
  u?: ArrayLike<number>,
): { thetaStd: Float64Array; logdet: Float64Array } {
  if (isMdn(model)) {
    if (!u) throw new Error('inverseStd: an MDN model needs one component uniform u per draw (uniform(seed, TrainRngPurpose.mixture, draw))');
    const P = model.config.thetaDim;
    const { raw } = mdnConditioner(model, params, xs, n);
    const { t, logq } = mdnSample(raw, z, u, n, mdnShape(model));
    const logdet = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      let q = 0;
      for (let p = 0; p < P; p++) q += z[r * P + p] * z[r * P + p];
      logdet[r] = -0.5 * q - P * HALF_LOG_2PI - logq[r];
    }
    return { thetaStd: t, logdet };
  }
  const logdet = new Float64Array(n);
  let v = z;
  const layers = model.layout.layers;
  for (let l = layers.length - 1; l >= 0; l--) v = couplingInverse(model, params, layers[l], v, xs, n, logdet);
  return { thetaStd: v, logdet };
}

/**
 * Posterior samples from caller-supplied standard-normal draws z (m x P, m = nCtx * samplesPerContext):
 * sample row i uses context row floor(i / samplesPerContext) of x (nCtx x F). Returns theta (m x P,
 * original units) and log q(theta | x) of each sample (= log N(z) - sum of forward log-dets - sum log sd).
 * MDN models also need `u`: one uniform in [0, 1) per sample row (the mixture component choice);
 * it is ignored by the NSF.
 */
export function sample(
  model: FlowModel,
  x: ArrayLike<number>,
  nCtx: number,
  z: ArrayLike<number>,
  samplesPerContext = 1,
  params: ArrayLike<number> = model.params,
  u?: ArrayLike<number>,
): { theta: Float64Array; logProb: Float64Array } {
  const P = model.config.thetaDim;
  const F = model.config.contextDim;
  checkRows('x', x, nCtx, F);
  const m = nCtx * samplesPerContext;
  checkRows('z', z, m, P);
  if (isMdn(model)) {
    if (!u) throw new Error('sample: an MDN model needs one component uniform u per sample row (uniform(seed, TrainRngPurpose.mixture, draw))');
    checkRows('u', u, m, 1);
  }
  const xsCtx = standardize(x, model.xStd);
  const xs = new Float64Array(m * F);
  for (let i = 0; i < m; i++) xs.set(xsCtx.subarray(Math.floor(i / samplesPerContext) * F, (Math.floor(i / samplesPerContext) + 1) * F), i * F);
  const z64 = Float64Array.from(z);
  const { thetaStd, logdet } = inverseStd(model, params, z64, xs, m, u);
  const lsd = logStdSum(model.thetaStd);
  const lp = new Float64Array(m);
  for (let r = 0; r < m; r++) {
    let q = 0;
    for (let p = 0; p < P; p++) q += z64[r * P + p] * z64[r * P + p];
    lp[r] = -0.5 * q - P * HALF_LOG_2PI - logdet[r] - lsd;
  }
  return { theta: unstandardize(thetaStd, model.thetaStd), logProb: lp };
}
