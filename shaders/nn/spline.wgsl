// Rational-quadratic spline coupling transforms (kernels/nn/spline.ts; math in spline_common.wgsl,
// float64 reference in src/flow/spline.ts). Scalar (n, j): sample n < P.n, transformed dim
// j < P.dims; its 3 BINS - 1 raw parameters start at raw[(n dims + j)(3 BINS - 1)] (the
// conditioner's row-major n x dims(3 BINS - 1) output). Data matrices are addressed through
// (stride, offset): element (n, j) at n stride + offset + j, so a kernel can read and write the
// transformed columns of a wider n x P matrix in place of a dense n x dims one.
//
// MODE 0, forward:  y = f(u), logdet[n] (+)= sum_j log f'(u_nj)
// MODE 1, inverse:  u = f^-1(y), logdet[n] (+)= sum_j log f'(u_nj)   (the forward's log-derivative
//                   at the result, as sampling with log-probs needs)
//   bindings: 0 input (read), 1 raw (read), 2 output (read_write), 3 logdet (read_write, n),
//   4 uniforms. Threads: P.lanes per sample (lanes = min(dims, WG)), P.spg = WG / lanes samples per
//   workgroup; lane l handles dims l, l + lanes, ...; the per-sample sum goes through workgroup
//   memory and lane 0 adds the partials in lane order (deterministic, no atomics). SERIAL (CPU
//   drivers, lanes = 1): no workgroup memory and no barrier, each thread sums its dims itself.
// MODE 2, backward of the forward: gU = dL/du, gRaw = dL/draw given gY = dL/dy and gL = dL/dlogdet
//   (per sample, shared by its dims). One thread per scalar, WG consecutive scalars per group.
//   bindings: 0 u, 1 raw, 2 gY, 3 gL (n), 4 gU (read_write), 5 gRaw (read_write, dense like raw),
//   6 uniforms.
// STAGE (backward only; WG (3 BINS - 1) f32 fit in 16 KiB: BINS <= 21): the group's raw parameters
// are one contiguous block, copied into workgroup memory with coalesced loads; the gradients are
// written there in place and copied out coalesced (a thread's own 3 BINS - 1 values are strided by
// that much across a warp: every store instruction would touch 32 sectors). H100, D = 4, K = 10:
// 1.35x faster up to N = 262144, slower at N = 2^20 (kernels/nn/spline.ts splineStageFor);
// lavapipe: 2x slower. The forward/inverse read directly: staging them measured 4-18x slower on the
// H100 (the L1 cache absorbs the strided loads: 2.7 TB/s effective at N = 65536).
// Defines: BINS (u32 literal), WG (u32 literal), MODE, RQ_GRAD (MODE 2), STAGE (MODE 2).
#include "common/grid.wgsl"

const PER: u32 = 3u * BINS - 1u;

#if MODE == 2
struct Params {
  n: u32,
  dims: u32,
  gridX: u32,
  uStride: u32,
  uOffset: u32,
  gyStride: u32,
  gyOffset: u32,
  guStride: u32,
  guOffset: u32,
  bound: f32,
  minW: f32,
  minH: f32,
  minD: f32,
  logitScale: f32,
}

@group(0) @binding(0) var<storage, read> uin: array<f32>;
@group(0) @binding(1) var<storage, read> raw: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read> gl: array<f32>;
@group(0) @binding(4) var<storage, read_write> gu: array<f32>;
@group(0) @binding(5) var<storage, read_write> graw: array<f32>;
@group(0) @binding(6) var<uniform> P: Params;
#else
struct Params {
  n: u32,
  dims: u32,
  gridX: u32,
  spg: u32,
  lanes: u32,
  inStride: u32,
  inOffset: u32,
  outStride: u32,
  outOffset: u32,
  accumulate: u32,
  bound: f32,
  minW: f32,
  minH: f32,
  minD: f32,
  logitScale: f32,
}

@group(0) @binding(0) var<storage, read> xin: array<f32>;
@group(0) @binding(1) var<storage, read> raw: array<f32>;
@group(0) @binding(2) var<storage, read_write> xout: array<f32>;
@group(0) @binding(3) var<storage, read_write> logdet: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;

#if !SERIAL
var<workgroup> part: array<f32, WG>;
#endif
#endif

#if MODE == 2
#if STAGE
var<workgroup> stage: array<f32, WG * PER>;
fn rq_raw(i: u32) -> f32 { return stage[i]; }
fn rq_grad_out(i: u32, v: f32) { stage[i] = v; }
#else
fn rq_raw(i: u32) -> f32 { return raw[i]; }
fn rq_grad_out(i: u32, v: f32) { graw[i] = v; }
#endif
#else
fn rq_raw(i: u32) -> f32 { return raw[i]; }
#endif

#include "nn/spline_common.wgsl"

fn spec() -> RqSpec {
  return RqSpec(P.bound, P.minW, P.minH, P.minD, P.logitScale);
}

#if MODE == 2
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let total = P.n * P.dims;
  let e0 = linear_group(wid, P.gridX) * WG;
  let e = e0 + lid.x;
#if STAGE
  // Scalars e0 .. e0 + cnt of this group; their parameters are raw[e0 PER .. (e0 + cnt) PER).
  let cnt = select(0u, min(WG, total - e0), e0 < total);
  for (var i = lid.x; i < cnt * PER; i += WG) {
    stage[i] = raw[e0 * PER + i];
  }
  workgroupBarrier();
  let off = lid.x * PER;
#else
  let off = e * PER;
#endif
  if (e < total) {
    let n = e / P.dims;
    let j = e - n * P.dims;
    let g = rq_backward(uin[n * P.uStride + P.uOffset + j], off, spec(), gy[n * P.gyStride + P.gyOffset + j], gl[n], off);
    gu[n * P.guStride + P.guOffset + j] = g;
  }
#if STAGE
  workgroupBarrier();
  for (var i = lid.x; i < cnt * PER; i += WG) {
    graw[e0 * PER + i] = stage[i];
  }
#endif
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tid = lid.x;
  let slot = tid / P.lanes;
  let lane = tid - slot * P.lanes;
  let n = linear_group(wid, P.gridX) * P.spg + slot;
  let live = slot < P.spg && n < P.n;
  let sp = spec();
  var acc = 0.0;
  if (live) {
    for (var j = lane; j < P.dims; j += P.lanes) {
      let e = n * P.dims + j;
#if MODE == 0
      let r = rq_forward(xin[n * P.inStride + P.inOffset + j], e * PER, sp);
#else
      let r = rq_inverse(xin[n * P.inStride + P.inOffset + j], e * PER, sp);
#endif
      xout[n * P.outStride + P.outOffset + j] = r.out;
      acc += r.logdet;
    }
  }
#if SERIAL
  // lanes = 1: acc is the sample's whole sum, in the same order as lane 0's below.
  if (live) {
    logdet[n] = select(acc, logdet[n] + acc, P.accumulate != 0u);
  }
#else
  part[tid] = acc;
  workgroupBarrier();
  if (live && lane == 0u) {
    var sum = 0.0;
    for (var i = 0u; i < P.lanes; i++) {
      sum += part[tid + i];
    }
    if (P.accumulate != 0u) {
      sum = logdet[n] + sum;
    }
    logdet[n] = sum;
  }
#endif
}
#endif
