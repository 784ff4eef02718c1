// Column plumbing of the coupling flow (kernels/nn/columns.ts; the float64 mirror is
// src/flow/flow.ts gatherColumns / couplingForward / couplingBackward), plus the two index/noise
// generators the GPU flow engine needs. Row-major matrices; one thread per output element.
// MODE selects the entry point's bindings (the define is part of the pipeline cache key):
//
// MODE 0  cond_input   conditioner input of a coupling layer, for r < n, j < Di + F:
//                        cond[r, j] = v[r, i0 + j]        (j < Di: the identity columns)
//                        cond[r, j] = xs[r, j - Di]       (j >= Di: the standardised context)
//                      with COPY also vOut[r, i0 + j] = v[r, i0 + j] (the identity half passes
//                      through the layer unchanged). Bindings: 0 v (n x P), 1 xs (n x F; HAS_X),
//                      2 cond (n x (Di + F)), 3 vOut (n x P; COPY), 5 uniforms.
// MODE 1  scatter_add  identity-column gradients, for r < n, j < Di:
//                        gOut[r, i0 + j] = gIn[r, i0 + j] + gc[r, j]
//                      (the pass-through gradient plus the conditioner's input gradient; gc is
//                      n x Di, the first Di columns of dL/dcond). Bindings: 0 gIn, 1 gc, 2 gOut.
// MODE 2  fill         y[offset + i] = value for i < count. Binding 2 y.
// MODE 3  epoch_order  order[i] = rows[perm(i)] for i < n, perm = src/train/split.ts
//                      EpochPermutation(seed, epoch, n) bit for bit: a 6-round balanced Feistel
//                      network on 2 * half bits (round function lowbias32(R ^ key_r) & mask),
//                      cycle-walking back into [0, n). Bindings: 0 rows (u32), 4 order (u32).
// MODE 5  colsum       column sums of row chunks: for s < S, j < cols,
//                        out[s * outStride + outOffset + j] = sum_{r in [s c, min((s + 1) c, n))} g[r * P + j]
//                      (P = the row stride of g; c = rows per chunk in `i0`). The bias gradient
//                      1^T G (S = 1 or per split-K chunk) and the sum of S partial gradients.
//                      One thread per (s, j), rows in order (deterministic).
//                      Bindings: 0 g (read), 2 out (read_write).
// MODE 6  colsum_wide  the same sums for GPUs: one workgroup per (chunk s, block of 32 columns);
//                      8 row lanes stride the chunk's rows (coalesced 32-column reads) and a
//                      fixed-order tree in workgroup memory adds the lanes (deterministic). MODE 5
//                      leaves a GPU with S x cols threads each walking c rows alone (~100 us for a
//                      bias gradient over 65536 rows on an H100); this is ~10x the parallelism.
// MODE 4  base_normals z[i, p] = standardNormal(seed, purpose, base_i + p) for i < m, p < P, as
//                      src/flow/rng.ts: one Philox4x32-10 call with counter (index lo, index hi,
//                      purpose, 0), u1 = 1 - a, a = (w0 2^21 + (w1 >> 11)) 2^-53,
//                      b = (w2 2^21 + (w3 >> 11)) 2^-53, z = sqrt(-2 ln u1) cos(2 pi b), in f32.
//                      base_i (= drawIndex_i * P, < 2^53) comes as (lo, hi) u32 pairs, or, for
//                      contiguous draws (di = 1), as base_0 + i P from base_0 = (k0, k1).
//                      Bindings: 0 bases (u32, 2m; unread when contiguous), 2 z (f32, m x P).
#include "common/grid.wgsl"

struct Params {
  n: u32,
  cols: u32,
  gridX: u32,
  P: u32,
  F: u32,
  i0: u32,
  di: u32,
  offset: u32,
  value: f32,
  half: u32,
  mask: u32,
  k0: u32,
  k1: u32,
  k2: u32,
  k3: u32,
  k4: u32,
  k5: u32,
  seedLo: u32,
  seedHi: u32,
  purpose: u32,
}

const WG: u32 = 256u;

#if MODE == 0
@group(0) @binding(0) var<storage, read> v: array<f32>;
#if HAS_X
@group(0) @binding(1) var<storage, read> xs: array<f32>;
#endif
@group(0) @binding(2) var<storage, read_write> cond: array<f32>;
#if COPY
@group(0) @binding(3) var<storage, read_write> vOut: array<f32>;
#endif
#elif MODE == 1
@group(0) @binding(0) var<storage, read> gIn: array<f32>;
@group(0) @binding(1) var<storage, read> gc: array<f32>;
@group(0) @binding(2) var<storage, read_write> gOut: array<f32>;
#elif MODE == 2
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
#elif MODE == 5
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;
#elif MODE == 6
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;
#elif MODE == 3
@group(0) @binding(0) var<storage, read> rows: array<u32>;
@group(0) @binding(4) var<storage, read_write> order: array<u32>;
#else
#include "common/philox.wgsl"
@group(0) @binding(0) var<storage, read> bases: array<u32>;
@group(0) @binding(2) var<storage, read_write> z: array<f32>;
#endif
@group(0) @binding(5) var<uniform> U: Params;

#if MODE == 0
// cols = Di + F
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let e = linear_group(wid, U.gridX) * WG + lid.x;
  if (e >= U.n * U.cols) { return; }
  let r = e / U.cols;
  let j = e - r * U.cols;
  if (j < U.di) {
    let s = r * U.P + U.i0 + j;
    let val = v[s];
    cond[e] = val;
#if COPY
    vOut[s] = val;
#endif
  } else {
#if HAS_X
    cond[e] = xs[r * U.F + (j - U.di)];
#endif
  }
}
#elif MODE == 1
// cols = Di
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let e = linear_group(wid, U.gridX) * WG + lid.x;
  if (e >= U.n * U.cols) { return; }
  let r = e / U.cols;
  let j = e - r * U.cols;
  let s = r * U.P + U.i0 + j;
  gOut[s] = gIn[s] + gc[e];
}
#elif MODE == 2
// n = count
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = linear_group(wid, U.gridX) * WG + lid.x;
  if (i >= U.n) { return; }
  y[U.offset + i] = U.value;
}
#elif MODE == 5
// n = rows, cols, P = row stride of g, i0 = rows per chunk c, di = chunks S, offset = outOffset, F = outStride
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let e = linear_group(wid, U.gridX) * WG + lid.x;
  if (e >= U.di * U.cols) { return; }
  let s = e / U.cols;
  let j = e - s * U.cols;
  let r0 = s * U.i0;
  let r1 = min(r0 + U.i0, U.n);
  var acc = 0.0;
  for (var r = r0; r < r1; r++) { acc += g[r * U.P + j]; }
  sums[s * U.F + U.offset + j] = acc;
}
#elif MODE == 6
// n = rows, cols, P = row stride of g, i0 = rows per chunk c, di = chunks S, offset = outOffset,
// F = outStride, gridX = column blocks (workgroup id = s * gridX + column block).
const LANES: u32 = 8u;
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let w = wid.y * 65535u + wid.x;
  let s = w / U.gridX;
  let j = (w - s * U.gridX) * 32u + (lid.x & 31u);
  let lane = lid.x >> 5u;
  var acc = 0.0;
  if (s < U.di && j < U.cols) {
    let r0 = s * U.i0;
    let r1 = min(r0 + U.i0, U.n);
    // Four independent sums: four loads in flight per thread (a long chunk is latency-bound).
    var a1 = 0.0;
    var a2 = 0.0;
    var a3 = 0.0;
    var r = r0 + lane;
    for (; r + 3u * LANES < r1; r += 4u * LANES) {
      acc += g[r * U.P + j];
      a1 += g[(r + LANES) * U.P + j];
      a2 += g[(r + 2u * LANES) * U.P + j];
      a3 += g[(r + 3u * LANES) * U.P + j];
    }
    for (; r < r1; r += LANES) { acc += g[r * U.P + j]; }
    acc = (acc + a1) + (a2 + a3);
  }
  part[lid.x] = acc;
  workgroupBarrier();
  for (var h = LANES / 2u; h > 0u; h >>= 1u) {
    if (lane < h) { part[lid.x] += part[lid.x + h * 32u]; }
    workgroupBarrier();
  }
  if (lane == 0u && s < U.di && j < U.cols) { sums[s * U.F + U.offset + j] = part[lid.x]; }
}
#elif MODE == 3
fn hash32(x0: u32) -> u32 {
  var x = x0;
  x ^= x >> 16u;
  x *= 0x7feb352du;
  x ^= x >> 15u;
  x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}

fn network(x: u32) -> u32 {
  var keys = array<u32, 6>(U.k0, U.k1, U.k2, U.k3, U.k4, U.k5);
  var l = x >> U.half;
  var r = x & U.mask;
  for (var k = 0u; k < 6u; k++) {
    let nl = r;
    r = l ^ (hash32(r ^ keys[k]) & U.mask);
    l = nl;
  }
  return (l << U.half) | r;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = linear_group(wid, U.gridX) * WG + lid.x;
  if (i >= U.n) { return; }
  var x = network(i);
  // Cycle-walking: terminates because the walk stays on i's cycle, which contains i < n.
  loop {
    if (x < U.n) { break; }
    x = network(x);
  }
  order[i] = rows[x];
}
#else
const TWO_M21: f32 = 4.76837158203125e-7;
const TWO_M32: f32 = 2.3283064365386963e-10;

// -ln(1 - a) for a in [0, 1): the series 2 atanh(a / (2 - a)) below 1/2 (WGSL's log is only
// absolutely accurate near 1), log of the exactly formed u1 = 1 - a above.
fn neg_log1m(a: f32, u1: f32) -> f32 {
  if (a < 0.5) { return neg_log1m_series(a); }
  return -log(u1);
}

// cols = P, n = m
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let e = linear_group(wid, U.gridX) * WG + lid.x;
  if (e >= U.n * U.cols) { return; }
  let i = e / U.cols;
  let p = e - i * U.cols;
  var lo0 = bases[2u * i];
  var hi0 = bases[2u * i + 1u];
  if (U.di == 1u) {
    // Contiguous draws: base_i = base_0 + i P, base_0 = (k0, k1); i P < 2^32 (m P is u32).
    let d = i * U.cols;
    lo0 = U.k0 + d;
    hi0 = U.k1 + select(0u, 1u, lo0 < d);
  }
  let lo = lo0 + p;
  let hi = hi0 + select(0u, 1u, lo < lo0);
  let w = philox4x32_10(vec4<u32>(lo, hi, U.purpose, 0u), vec2<u32>(U.seedLo, U.seedHi));
  // a = (w0 2^21 + (w1 >> 11)) 2^-53 and u1 = 1 - a = ((~w0) + (2^21 - (w1 >> 11)) 2^-21) 2^-32,
  // both formed without cancellation.
  let a = (f32(w.x) + f32(w.y >> 11u) * TWO_M21) * TWO_M32;
  let u1 = (f32(~w.x) + f32((1u << 21u) - (w.y >> 11u)) * TWO_M21) * TWO_M32;
  let b = (f32(w.z) + f32(w.w >> 11u) * TWO_M21) * TWO_M32;
  // cos(2 pi b) = -cos(pi (2b - 1)), 2b - 1 in [-1, 1); philox_cos_pi: the same on every GPU.
  z[e] = -sqrt(2.0 * neg_log1m(a, u1)) * philox_cos_pi(2.0 * b - 1.0);
}
#endif
