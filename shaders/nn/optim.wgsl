// Global gradient-norm clipping + fused Adam / AdamW over ONE flat f32 vector (the flow's parameter
// layout, src/flow/layout.ts; gradient and moments share it). Three entry points, recorded in this
// order (kernels/nn/optim.ts), all state on the GPU, no host round trip:
//
//   sumsq_partials  G = numPartials workgroups, grid-stride:  partials[g] = sum of grad^2 over g's slice
//   finalize        1 workgroup of 64: norm = sqrt(sum partials) (fixed order, deterministic),
//                   clip scale = min(1, maxNorm / (norm + clipEps)) as torch's clip_grad_norm_,
//                   step += 1, bias corrections, logging stats -> state
//   adam            gridX workgroups, grid-stride: the element update (src/flow/adam.ts adamStep),
//                   reading the clip scale, step size and sqrt(bias correction 2) from state
//
// Without CLIP (no clipping), sumsq_partials is not dispatched and finalize only advances the step.
//
// state (array<u32>, f32 words bit-cast), kernels/nn/optim.ts OptimWord:
//   0 step (u32, steps taken)       1 stepSize = lr / (1 - beta1^t)   2 sqrt(1 - beta2^t)
//   3 clip scale of the last step   4 pre-clip norm of the last step
//   5 sum of pre-clip norms since reset   6 clipped steps since reset (u32)
//   7 steps since reset (u32)       8 lr of the last step             9..15 reserved
//
// Bias corrections: 1 - beta^t = -expm1(t ln beta) with ln beta from the host (float64 -> f32) and
// an expm1 that keeps its relative accuracy for small arguments (t = 1: 1 - beta2 = 1e-3 would lose
// 4 digits as 1 - pow(beta2, t) in f32).
// Defines: CLIP (bool), DECOUPLED (bool: AdamW), ZERO_GRAD (bool: adam writes grad = 0 after use,
// so the next backward may accumulate).

struct Params {
  n: u32,
  gridX: u32,
  numPartials: u32,
  maxNorm: f32,
  clipEps: f32,
  lr: f32,
  beta2: f32,
  oneMinusBeta1: f32,
  oneMinusBeta2: f32,
  lnBeta1: f32,
  lnBeta2: f32,
  eps: f32,
  weightDecay: f32,
  // 1 - lr * weightDecay (AdamW), rounded once from float64 as torch does.
  decay: f32,
}

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
#if ZERO_GRAD
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;
#else
@group(0) @binding(1) var<storage, read> grad: array<f32>;
#endif
@group(0) @binding(2) var<storage, read_write> mom1: array<f32>;
@group(0) @binding(3) var<storage, read_write> mom2: array<f32>;
@group(0) @binding(4) var<storage, read_write> state: array<u32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;

const WG: u32 = 256u;

const S_STEP: u32 = 0u;
const S_STEP_SIZE: u32 = 1u;
const S_BC2_SQRT: u32 = 2u;
const S_CLIP_SCALE: u32 = 3u;
const S_NORM: u32 = 4u;
const S_NORM_SUM: u32 = 5u;
const S_CLIPPED: u32 = 6u;
const S_STEPS: u32 = 7u;
const S_LR: u32 = 8u;

// The finalize pass is one small workgroup (fewer barrier-synchronised invocations: cheaper on
// CPU drivers, and 1024 partials are only 16 loads per invocation on a GPU).
const FIN_WG: u32 = 64u;

var<workgroup> red: array<f32, WG>;

// Tree sum over the `width` (a power of two) invocations' values into red[0]; call from uniform
// control flow.
fn workgroup_sum(lid: u32, v: f32, width: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var half = width / 2u; half > 0u; half /= 2u) {
    if (lid < half) { red[lid] = red[lid] + red[lid + half]; }
    workgroupBarrier();
  }
  return red[0];
}

// exp(y) - 1 with a small RELATIVE error for all y <= 0: degree-14 Taylor polynomial for |y| < 1
// (truncation < 1/15! = 8e-13 relative), exp(y) - 1 beyond (no cancellation worse than 1.6x there).
fn expm1_f32(y: f32) -> f32 {
  if (abs(y) < 1.0) {
    var r = 1.0 + y / 14.0;
    r = 1.0 + y / 13.0 * r;
    r = 1.0 + y / 12.0 * r;
    r = 1.0 + y / 11.0 * r;
    r = 1.0 + y / 10.0 * r;
    r = 1.0 + y / 9.0 * r;
    r = 1.0 + y / 8.0 * r;
    r = 1.0 + y / 7.0 * r;
    r = 1.0 + y / 6.0 * r;
    r = 1.0 + y / 5.0 * r;
    r = 1.0 + y / 4.0 * r;
    r = 1.0 + y / 3.0 * r;
    r = 1.0 + y / 2.0 * r;
    return y * r;
  }
  return exp(y) - 1.0;
}

@compute @workgroup_size(WG)
fn sumsq_partials(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  var s = 0.0;
  let stride = P.numPartials * WG;
  for (var i = wid.x * WG + lid.x; i < P.n; i += stride) {
    let g = grad[i];
    s += g * g;
  }
  let total = workgroup_sum(lid.x, s, WG);
  if (lid.x == 0u) { partials[wid.x] = total; }
}

@compute @workgroup_size(FIN_WG)
fn finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
#if CLIP
  var s = 0.0;
  for (var i = lid.x; i < P.numPartials; i += FIN_WG) { s += partials[i]; }
  let sumsq = workgroup_sum(lid.x, s, FIN_WG);
#endif
  if (lid.x == 0u) {
    let t = state[S_STEP] + 1u;
    state[S_STEP] = t;
    let tf = f32(t);
    let bc1 = -expm1_f32(tf * P.lnBeta1);
    let bc2 = -expm1_f32(tf * P.lnBeta2);
    state[S_STEP_SIZE] = bitcast<u32>(P.lr / bc1);
    state[S_BC2_SQRT] = bitcast<u32>(sqrt(bc2));
    state[S_LR] = bitcast<u32>(P.lr);
    state[S_STEPS] = state[S_STEPS] + 1u;
#if CLIP
    let norm = sqrt(sumsq);
    let coef = P.maxNorm / (norm + P.clipEps);
    let clipped = coef < 1.0;
    state[S_CLIP_SCALE] = bitcast<u32>(select(1.0, coef, clipped));
    state[S_NORM] = bitcast<u32>(norm);
    state[S_NORM_SUM] = bitcast<u32>(bitcast<f32>(state[S_NORM_SUM]) + norm);
    state[S_CLIPPED] = state[S_CLIPPED] + select(0u, 1u, clipped);
#else
    state[S_CLIP_SCALE] = bitcast<u32>(1.0);
#endif
  }
}

@compute @workgroup_size(WG)
fn adam(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let scale = bitcast<f32>(state[S_CLIP_SCALE]);
  let stepSize = bitcast<f32>(state[S_STEP_SIZE]);
  let bc2Sqrt = bitcast<f32>(state[S_BC2_SQRT]);
  // Grid-stride over the vector: P.gridX workgroups (a tuning choice: few on CPU drivers, many on GPUs).
  let stride = P.gridX * WG;
  for (var i = wid.x * WG + lid.x; i < P.n; i += stride) {
    var g = grad[i] * scale;
#if ZERO_GRAD
    grad[i] = 0.0;
#endif
    var p = params[i];
#if DECOUPLED
    p = p * P.decay;
#else
    g = g + P.weightDecay * p;
#endif
    var m = mom1[i];
    m = m + P.oneMinusBeta1 * (g - m);
    var v = mom2[i];
    v = v * P.beta2 + P.oneMinusBeta2 * g * g;
    let denom = sqrt(v) / bc2Sqrt + P.eps;
    p = p - (stepSize * m) / denom;
    mom1[i] = m;
    mom2[i] = v;
    params[i] = p;
  }
}
