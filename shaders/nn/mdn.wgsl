// Mixture density network head (kernels/nn/mdn.ts; float64 reference src/flow/mdn.ts, whose
// functions these entry points mirror operation for operation). One thread per row r < U.n; row r's
// raw mixture parameters are raw[r rawStride ..] (K components of C values, component-major:
// [alpha | mu (P) | d (P) | strict upper triangle of U, row-major], U_ii = exp(d_i)); a row of a
// data matrix is addressed as (stride, offset): element (r, i) at r stride + offset + i, so the
// kernels read and write the flow's n x P buffers directly.
//
//   score_k = alpha_k - lse(alpha) - |e_k|^2 / 2 + sum_i d_ki,  e_k = U_k (t - mu_k)
//   S = logsumexp_k score_k  (= log q + P/2 log 2 pi: the flow's "logdet" slot, see below)
//
// MODE 0  log-density: logdet[r] = S(t_r), and z[r, :] = 0. With z = 0 the flow's NLL kernel
//         (shaders/nn/nll.wgsl: -|z|^2/2 - P/2 log 2pi + logdet - logStdSum) yields log q, and its
//         seeds dL/dz = z/n = 0, dL/dlogdet = -1/n drive MODE 1 unchanged.
//         Bindings: 0 raw, 1 t (in), 2 z (out), 3 logdet (out), 7 uniforms.
// MODE 1  backward: gRaw[r, :] = gL[r] d S / d raw (d log q = d S), gL = dL/dlogdet. Rows with
//         gL = 0 (the padded rows of a split batch) get exact zeros without being evaluated.
//         Bindings: 0 raw, 1 t, 4 gL, 5 gRaw (out, dense like raw), 7 uniforms.
// MODE 2  sample: u = uniform(seed, purpose, d) from the draw index d (the same Philox words as
//         src/flow/rng.ts uniform), component k = the first with u < pi_0 + .. + pi_k (K - 1 if
//         none), t = mu_k + y with U_k y = z (back substitution), and logdet[r] = S(t) + |z|^2 / 2,
//         i.e. log q(t) - log N(z; 0, I): the nll kernel, which reads z, then yields log q(t).
//         Draw d = d0 + r (contiguous = 1; d0 = (d0Lo, d0Hi)) or the (lo, hi) pair
//         draws[2r .. 2r + 1] = d P (the base normals' offsets, kernels/nn/columns.ts), divided by P.
//         Bindings: 0 raw, 1 z (in), 2 t (out), 3 logdet (out), 6 draws (u32), 7 uniforms.
//
// MODE 3  log-density as MODE 0, MODE 4 backward as MODE 1, ONE THREAD PER (ROW, COMPONENT)
//         (same bindings): a workgroup of WG threads holds R = floor(WG / K) rows (U.rowsPerGroup;
//         thread lid = (row lr, component k) = (lid / K, lid % K)). Each thread forms its
//         component's e_k (the P x P triangle), shares alpha_k, then score_k, in workgroup memory;
//         after each barrier every thread of a row walks its row's K shared values in the same
//         order (deterministic; no atomics) for lse(alpha) and S. MODE 4 then writes the C
//         gradients of its own component at r K C + k C: consecutive threads write consecutive
//         components, so a warp's stores cover one contiguous range instead of 32 rows 4 K C bytes
//         apart, and a row's K P^2 work runs on K threads. Scores that far from the maximum give
//         w = 0 exactly as in MODE 1. Needs K <= WG (the host falls back to MODES 0 / 1 beyond).
//
// f32 numerics: both logsumexps subtract their maximum (scores of rows far from every mean,
// ~ -1e3, and logits that differ by ~40 stay finite); nothing is clamped (exp(d) overflows only for
// d > 88). Defines: MODE, MAX_P (u32 literal >= P: the per-thread arrays), WG (u32 literal).
#include "common/grid.wgsl"
#if MODE == 2
#include "common/philox.wgsl"
#endif

struct Params {
  n: u32,
  p: u32,
  k: u32,
  c: u32,
  rawStride: u32,
  tStride: u32,
  tOffset: u32,
  zStride: u32,
  zOffset: u32,
  gridX: u32,
  seedLo: u32,
  seedHi: u32,
  purpose: u32,
  contiguous: u32,
  d0Lo: u32,
  d0Hi: u32,
  rowsPerGroup: u32,
}

@group(0) @binding(0) var<storage, read> raw: array<f32>;
#if MODE == 2
@group(0) @binding(1) var<storage, read> zin: array<f32>;
@group(0) @binding(2) var<storage, read_write> tout: array<f32>;
@group(0) @binding(3) var<storage, read_write> logdet: array<f32>;
@group(0) @binding(6) var<storage, read> draws: array<u32>;
#elif MODE == 1
@group(0) @binding(1) var<storage, read> tin: array<f32>;
@group(0) @binding(4) var<storage, read> gl: array<f32>;
@group(0) @binding(5) var<storage, read_write> graw: array<f32>;
#elif MODE == 4
@group(0) @binding(1) var<storage, read> tin: array<f32>;
@group(0) @binding(4) var<storage, read> gl: array<f32>;
@group(0) @binding(5) var<storage, read_write> graw: array<f32>;
#else
@group(0) @binding(1) var<storage, read> tin: array<f32>;
@group(0) @binding(2) var<storage, read_write> zout: array<f32>;
@group(0) @binding(3) var<storage, read_write> logdet: array<f32>;
#endif
@group(0) @binding(7) var<uniform> U: Params;

// The lowest f32: the running maximum's start (WGSL has no -inf literal).
const LOWEST: f32 = -3.4028234663852886e38;

// This thread's t (or, while sampling, y = t - mu_k), t - mu_k of the current component, e_k, and
// (backward) U_k^T e_k.
var<private> tv: array<f32, MAX_P>;
var<private> dv: array<f32, MAX_P>;
var<private> ev: array<f32, MAX_P>;
var<private> uv: array<f32, MAX_P>;

// (max alpha, sum exp(alpha - max)) of the row at `base`.
fn alpha_lse(base: u32) -> vec2<f32> {
  var amax = LOWEST;
  for (var k = 0u; k < U.k; k++) { amax = max(amax, raw[base + k * U.c]); }
  var asum = 0.0;
  for (var k = 0u; k < U.k; k++) { asum += exp(raw[base + k * U.c] - amax); }
  return vec2<f32>(amax, asum);
}

// (|e|^2, sum_i d_i) of the component at raw[c ..] for t = tv; leaves delta in dv, e in ev.
fn component_quad(c: u32) -> vec2<f32> {
  let P = U.p;
  for (var i = 0u; i < P; i++) { dv[i] = tv[i] - raw[c + 1u + i]; }
  var quad = 0.0;
  var ldet = 0.0;
  // U_{i, i+1 .. P-1} are contiguous (row-major strict upper triangle): o walks them in order.
  var o = c + 1u + 2u * P;
  for (var i = 0u; i < P; i++) {
    let di = raw[c + 1u + P + i];
    var e = exp(di) * dv[i];
    for (var j = i + 1u; j < P; j++) {
      e += raw[o] * dv[j];
      o++;
    }
    ev[i] = e;
    quad += e * e;
    ldet += di;
  }
  return vec2<f32>(quad, ldet);
}

// score of the component at raw[c ..] for t = tv (lseA = lse(alpha)); leaves delta in dv, e in ev.
fn component_score(c: u32, lseA: f32) -> f32 {
  let q = component_quad(c);
  return raw[c] - lseA - 0.5 * q.x + q.y;
}

// (max score, sum exp(score - max)) over the row's components for t = tv, in one streaming pass
// (the running sum is rescaled when the maximum grows: no per-component storage for any K).
fn score_lse(base: u32, lseA: f32) -> vec2<f32> {
  var smax = LOWEST;
  var ssum = 0.0;
  for (var k = 0u; k < U.k; k++) {
    let s = component_score(base + k * U.c, lseA);
    if (s > smax) {
      ssum = ssum * exp(smax - s) + 1.0;
      smax = s;
    } else {
      ssum += exp(s - smax);
    }
  }
  return vec2<f32>(smax, ssum);
}

// MODES 1 and 4 only (graw is bound there; the preprocessor has no ||, hence the nesting).
#if MODE != 0
#if MODE != 2
#if MODE != 3
// The gradients of the component at raw[c ..] into graw[c ..] (g = dL/dlogdet of its row, w its
// responsibility, pi its mixture weight), from delta in dv and e in ev as component_quad left them.
fn component_grad(c: u32, g: f32, w: f32, pi: f32) {
  let P = U.p;
  graw[c] = g * (w - pi);
  let gw = g * w;
  // U^T e in the same row-major walk as the off-diagonal gradients -gw e_i delta_j: column j
  // of U is U_jj (first) and U_ij for i < j (in increasing i, as the reference sums).
  for (var j = 0u; j < P; j++) { uv[j] = exp(raw[c + 1u + P + j]) * ev[j]; }
  var o = c + 1u + 2u * P;
  for (var i = 0u; i < P; i++) {
    let ei = ev[i];
    for (var j = i + 1u; j < P; j++) {
      uv[j] += raw[o] * ei;
      graw[o] = -gw * ei * dv[j];
      o++;
    }
  }
  for (var i = 0u; i < P; i++) {
    graw[c + 1u + i] = gw * uv[i];
    graw[c + 1u + P + i] = gw * (1.0 - ev[i] * dv[i] * exp(raw[c + 1u + P + i]));
  }
}
#endif
#endif
#endif

#if MODE == 2
const TWO_M21: f32 = 4.76837158203125e-7;
const TWO_M32: f32 = 2.3283064365386963e-10;

// (lo, hi) / p for p < 2^16 (WGSL has no 64-bit integers): long division in 16-bit digits.
fn div_small(lo: u32, hi: u32, p: u32) -> vec2<u32> {
  let qh = hi / p;
  let rh = hi - qh * p;
  let x1 = (rh << 16u) | (lo >> 16u);
  let q1 = x1 / p;
  let r1 = x1 - q1 * p;
  let x0 = (r1 << 16u) | (lo & 0xffffu);
  return vec2<u32>((q1 << 16u) | (x0 / p), qh);
}
#endif

#if MODE >= 3
// Row lr's alphas (MODE 4 only reads them back) and scores, at lr K + k = lid.
var<workgroup> sAlpha: array<f32, WG>;
var<workgroup> sScore: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let K = U.k;
  let P = U.p;
  let lr = lid.x / K;
  let k = lid.x - lr * K;
  let r = linear_group(wid, U.gridX) * U.rowsPerGroup + lr;
  // No early returns: every thread reaches both barriers (uniform control flow).
  var live = lr < U.rowsPerGroup && r < U.n;
  let row0 = lid.x - k;
  let c = r * U.rawStride + k * U.c;
#if MODE == 4
  var g = 0.0;
  if (live) {
    g = gl[r];
    // Padded rows (gL = 0): exact zeros, nothing evaluated (no other thread reads their shares).
    if (g == 0.0) {
      for (var i = 0u; i < U.c; i++) { graw[c + i] = 0.0; }
      live = false;
    }
  }
#endif
  var qd = vec2<f32>(0.0, 0.0);
  var alpha = 0.0;
  if (live) {
    for (var i = 0u; i < P; i++) { tv[i] = tin[r * U.tStride + U.tOffset + i]; }
#if MODE == 3
    // z = 0, spread over the row's K threads.
    for (var i = k; i < P; i += K) { zout[r * U.zStride + U.zOffset + i] = 0.0; }
#endif
    alpha = raw[c];
    sAlpha[lid.x] = alpha;
    qd = component_quad(c);
  }
  workgroupBarrier();
  // lse(alpha) over the row's K shares, in alpha_lse's order (the same value on every thread).
  var amax = LOWEST;
  var asum = 0.0;
  if (live) {
    for (var j = 0u; j < K; j++) { amax = max(amax, sAlpha[row0 + j]); }
    for (var j = 0u; j < K; j++) { asum += exp(sAlpha[row0 + j] - amax); }
    sScore[lid.x] = alpha - (amax + log(asum)) - 0.5 * qd.x + qd.y;
  }
  workgroupBarrier();
  if (!live) { return; }
  // S = logsumexp of the row's scores (two passes over the shares: max, then the sum).
#if MODE == 3
  if (k != 0u) { return; }
#endif
  var smax = LOWEST;
  for (var j = 0u; j < K; j++) { smax = max(smax, sScore[row0 + j]); }
  var ssum = 0.0;
  for (var j = 0u; j < K; j++) { ssum += exp(sScore[row0 + j] - smax); }
#if MODE == 3
  logdet[r] = smax + log(ssum);
#else
  // This component's gradients, as MODE 1 (dv, ev still hold delta and e from component_quad).
  let w = exp(sScore[lid.x] - smax) / ssum;
  let pi = exp(alpha - amax) / asum;
  component_grad(c, g, w, pi);
#endif
}
#else
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = linear_group(wid, U.gridX) * WG + lid.x;
  if (r >= U.n) { return; }
  let P = U.p;
  let base = r * U.rawStride;
#if MODE == 0
  for (var i = 0u; i < P; i++) {
    tv[i] = tin[r * U.tStride + U.tOffset + i];
    zout[r * U.zStride + U.zOffset + i] = 0.0;
  }
  let a = alpha_lse(base);
  let s = score_lse(base, a.x + log(a.y));
  logdet[r] = s.x + log(s.y);
#elif MODE == 1
  let g = gl[r];
  if (g == 0.0) {
    for (var i = 0u; i < U.rawStride; i++) { graw[base + i] = 0.0; }
    return;
  }
  for (var i = 0u; i < P; i++) { tv[i] = tin[r * U.tStride + U.tOffset + i]; }
  let a = alpha_lse(base);
  let lseA = a.x + log(a.y);
  let s = score_lse(base, lseA);
  // Second pass: each component's score again (recomputed rather than stored: K is unbounded),
  // its responsibility w and mixture weight pi, then its gradients.
  for (var k = 0u; k < U.k; k++) {
    let c = base + k * U.c;
    let w = exp(component_score(c, lseA) - s.x) / s.y;
    let pi = exp(raw[c] - a.x) / a.y;
    component_grad(c, g, w, pi);
  }
#else
  let a = alpha_lse(base);
  var dlo: u32;
  var dhi: u32;
  if (U.contiguous == 1u) {
    dlo = U.d0Lo + r;
    dhi = U.d0Hi + select(0u, 1u, dlo < r);
  } else {
    let d = div_small(draws[2u * r], draws[2u * r + 1u], P);
    dlo = d.x;
    dhi = d.y;
  }
  let w = philox4x32_10(vec4<u32>(dlo, dhi, U.purpose, 0u), vec2<u32>(U.seedLo, U.seedHi));
  // u = (w0 2^21 + (w1 >> 11)) 2^-53, formed as columns.wgsl forms the base normals' `a`.
  let u = (f32(w.x) + f32(w.y >> 11u) * TWO_M21) * TWO_M32;
  var kc = U.k - 1u;
  var cum = 0.0;
  for (var k = 0u; k + 1u < U.k; k++) {
    cum += exp(raw[base + k * U.c] - a.x) / a.y;
    if (u < cum) {
      kc = k;
      break;
    }
  }
  let c = base + kc * U.c;
  // Back substitution, last row first: y_i = (z_i - sum_{j > i} U_ij y_j) / U_ii (y in dv).
  for (var ii = 0u; ii < P; ii++) {
    let i = P - 1u - ii;
    var acc = zin[r * U.zStride + U.zOffset + i];
    var o = c + 1u + 2u * P + i * P - (i * (i + 1u)) / 2u;
    for (var j = i + 1u; j < P; j++) {
      acc -= raw[o] * dv[j];
      o++;
    }
    dv[i] = acc / exp(raw[c + 1u + P + i]);
  }
  for (var i = 0u; i < P; i++) {
    let t = raw[c + 1u + i] + dv[i];
    tv[i] = t;
    tout[r * U.tStride + U.tOffset + i] = t;
  }
  // |z|^2 in the nll kernel's order, so that its (logdet - |z|^2 / 2) recovers S closely.
  var q = 0.0;
  for (var i = 0u; i < P; i++) {
    let zi = zin[r * U.zStride + U.zOffset + i];
    q += zi * zi;
  }
  let s = score_lse(base, a.x + log(a.y));
  logdet[r] = (s.x + log(s.y)) + 0.5 * q;
#endif
}
#endif
