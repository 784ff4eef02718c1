// Elementwise map over n elements:  y[i] = EXPR  with x = a[i] and, when BINARY, b = b[i % bLen]
// (bLen = n: same shape; = cols: a row vector broadcast over rows; = 1: a scalar).
// EXPR is a WGSL expression chosen by kernels/elementwise.ts (part of the pipeline cache key);
// s0, s1 are scalar uniforms some expressions use (e.g. affine: s0 * x + s1).
#include "common/math.wgsl"
#include "common/grid.wgsl"

struct Params {
  n: u32,
  bLen: u32,
  gridX: u32,
  s0: f32,
  s1: f32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
#if BINARY
@group(0) @binding(1) var<storage, read> bv: array<f32>;
#endif
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

fn apply(x: f32, b: f32) -> f32 {
  let s0 = P.s0;
  let s1 = P.s1;
  return EXPR;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = linear_group(wid, P.gridX) * 256u + lid.x;
  if (i >= P.n) { return; }
#if BINARY
  let b = bv[i % P.bLen];
#else
  let b = 0.0;
#endif
  y[i] = apply(a[i], b);
}
