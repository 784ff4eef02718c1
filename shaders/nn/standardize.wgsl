// z-score standardisation of row-major (rows x cols) data, or its inverse (src/flow/standardize.ts):
//   INVERSE false: y = (x - mean[c]) / std[c]      INVERSE true: y = x * std[c] + mean[c]
// with c = the column, mean[c] = ms[meanOffset + c], std[c] = ms[stdOffset + c] (one buffer can
// hold the theta and x statistics). IN_PLACE: y is x (binding 1 only).
#include "common/grid.wgsl"

struct Params {
  n: u32,
  cols: u32,
  gridX: u32,
  meanOffset: u32,
  stdOffset: u32,
}

#if !IN_PLACE
@group(0) @binding(0) var<storage, read> x: array<f32>;
#endif
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> ms: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = linear_group(wid, P.gridX) * 256u + lid.x;
  if (i >= P.n) { return; }
  let c = i % P.cols;
#if IN_PLACE
  let v = y[i];
#else
  let v = x[i];
#endif
#if INVERSE
  y[i] = v * ms[P.stdOffset + c] + ms[P.meanOffset + c];
#else
  y[i] = (v - ms[P.meanOffset + c]) / ms[P.stdOffset + c];
#endif
}
