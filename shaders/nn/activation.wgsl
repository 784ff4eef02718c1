// Elementwise activation of the conditioner MLP (kernels/nn/activation.ts; float64 mirror:
// src/flow/mlp.ts activationForward / activationBackward), over `count` elements of a flat
// (row-major) matrix, one thread per element.
//
// MODE 0 forward:   y = act(x).                              Bindings: 0 x, 2 y, 5 uniforms.
// MODE 1 backward:  gx = g * act'(post) (+ res).             Bindings: 0 g, 1 post, 2 gx,
//                                                            3 res (RESIDUAL), 5 uniforms.
//   act'(post) from the forward OUTPUT post = act(pre), which is all a layer keeps:
//   relu: 1 if post > 0 else 0 (= pre > 0; torch's convention at 0), tanh: 1 - post^2.
//   RESIDUAL fuses the residual block's skip connection into the same pass:
//   dL/dh = act'(h) * dL/d act(h) + dL/d out.
// ACT: 0 relu, 1 tanh.
#include "common/math.wgsl"
#include "common/grid.wgsl"

struct Params {
  count: u32,
  gridX: u32,
}

const WG: u32 = 256u;

#if MODE == 0
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
#else
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> post: array<f32>;
@group(0) @binding(2) var<storage, read_write> gx: array<f32>;
#if RESIDUAL
@group(0) @binding(3) var<storage, read> res: array<f32>;
#endif
#endif
@group(0) @binding(5) var<uniform> U: Params;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = linear_group(wid, U.gridX) * WG + lid.x;
  if (i >= U.count) { return; }
#if MODE == 0
#if ACT == 0
  y[i] = max(x[i], 0.0);
#else
  y[i] = safe_tanh(x[i]);
#endif
#else
  let a = post[i];
#if ACT == 0
  var d = select(0.0, g[i], a > 0.0);
#else
  var d = g[i] * (1.0 - a * a);
#endif
#if RESIDUAL
  d = d + res[i];
#endif
  gx[i] = d;
#endif
}
