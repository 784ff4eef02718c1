// Row gather (mini-batches) and the GPU shuffle. Entry points:
//
//   gather       one thread per output element (r, c), r < rows, c < cols:
//                  dst[r * dstStride + dstCol + c] = AFFINE(src[s * srcStride + srcCol + c])
//                with the source row s of output row r (pos = rowOffset + r):
//                  INDEX 0: s = pos / repeat            (contiguous slice; repeat > 1 repeats rows,
//                                                          e.g. one context per posterior sample)
//                  INDEX 1: s = idx[pos]                (an index buffer, e.g. a permutation)
//                  INDEX 2: s = perm(pos)               (the keyed permutation of [0, n), inline:
//                                                          no permutation buffer at all)
//                  INDEX 3: s = idx[perm(pos)]          (a shuffled subset, e.g. the training rows)
//                AFFINE 0: copy, 1: (v - mean[c]) / std[c], 2: v * std[c] + mean[c], with
//                mean[c] = ms[meanOffset + c], std[c] = ms[stdOffset + c].
//   permutation  perm[i] = perm(i) for i < n (u32).
#include "common/grid.wgsl"
#include "nn/feistel.wgsl"

struct Params {
  rows: u32,
  cols: u32,
  gridX: u32,
  srcStride: u32,
  srcCol: u32,
  dstStride: u32,
  dstCol: u32,
  rowOffset: u32,
  repeat: u32,
  meanOffset: u32,
  stdOffset: u32,
  n: u32,
  bits: u32,
  k0: u32,
  k1: u32,
  k2: u32,
  k3: u32,
  k4: u32,
  k5: u32,
  k6: u32,
  k7: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
#if INDEX == 1
@group(0) @binding(1) var<storage, read> idx: array<u32>;
#elif INDEX == 3
@group(0) @binding(1) var<storage, read> idx: array<u32>;
#endif
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
#if AFFINE
@group(0) @binding(3) var<storage, read> ms: array<f32>;
#endif
@group(0) @binding(4) var<storage, read_write> perm: array<u32>;
@group(0) @binding(5) var<uniform> P: Params;

const WG: u32 = 256u;

fn round_keys() -> array<u32, 8> {
  return array<u32, 8>(P.k0, P.k1, P.k2, P.k3, P.k4, P.k5, P.k6, P.k7);
}

@compute @workgroup_size(WG)
fn gather(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let e = linear_group(wid, P.gridX) * WG + lid.x;
  if (e >= P.rows * P.cols) { return; }
  let r = e / P.cols;
  let c = e - r * P.cols;
  let pos = P.rowOffset + r;
#if INDEX == 0
  let s = pos / P.repeat;
#elif INDEX == 1
  let s = idx[pos];
#else
  var keys = round_keys();
#if INDEX == 2
  let s = feistel_permute(pos, P.n, P.bits, &keys);
#else
  let s = idx[feistel_permute(pos, P.n, P.bits, &keys)];
#endif
#endif
  var v = src[s * P.srcStride + P.srcCol + c];
#if AFFINE == 1
  v = (v - ms[P.meanOffset + c]) / ms[P.stdOffset + c];
#elif AFFINE == 2
  v = v * ms[P.stdOffset + c] + ms[P.meanOffset + c];
#endif
  dst[r * P.dstStride + P.dstCol + c] = v;
}

@compute @workgroup_size(WG)
fn permutation(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = linear_group(wid, P.gridX) * WG + lid.x;
  if (i >= P.n) { return; }
  var keys = round_keys();
  perm[i] = feistel_permute(i, P.n, P.bits, &keys);
}
