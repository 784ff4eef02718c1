// Prior sampling (random design) and the theta -> canonical map, one thread per galaxy row.
// The model buffer layout is documented in kernels/priors.ts (packPriorModel); the float64
// reference is src/simulate/priors.ts (sampleRandomTheta) and src/simulate/theta.ts (thetaToCanonical).
//   sample:        theta[i, :] from Philox words of global row offset + i, then canonical[i, :]
//   to_canonical:  canonical[i, :] from the given theta[i, :]
// Scalar priors take one word each, in column order, from sub-stream 0; a Dirichlet uses its own
// sub-stream (normalised gammas in log space, then cumulative sums).
#include "common/grid.wgsl"
#include "common/philox.wgsl"

struct Params {
  n: u32,
  n_cols: u32,
  canon_w: u32,
  grid_x: u32,
  seed_lo: u32,
  seed_hi: u32,
  offset_lo: u32,
  offset_hi: u32,
  purpose: u32,
}

@group(0) @binding(0) var<storage, read> model: array<u32>;
@group(0) @binding(1) var<storage, read_write> theta: array<f32>;
@group(0) @binding(2) var<storage, read_write> canonical: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

const MAX_COLS: u32 = 32u;
const MAX_K: u32 = 16u;
const MAX_CANON: u32 = 16u;
const HEADER: u32 = 8u;
const PRIOR_RECORD: u32 = 16u;
const KIND_UNIFORM: u32 = 0u;
const KIND_LOGUNIFORM: u32 = 1u;
const KIND_NORMAL: u32 = 2u;
const KIND_DIRICHLET: u32 = 3u;
const LOG2_10: f32 = 3.321928094887362;

fn mf(i: u32) -> f32 {
  return bitcast<f32>(model[i]);
}

// Standard normal quantile for 0 < p <= 0.5, well conditioned in f32 (relative error <= 4e-7 in an
// f32 emulation against scipy's ndtri): below p = 0.02425 Acklam's tail approximation (its central
// branch cancels in f32), above it Giles' single-precision erfinv ("Approximating the erfinv
// function", GPU Computing Gems 2011; branch w < 5) with x = 2p - 1 and w = -ln(4 p (1 - p)).
fn normal_quantile_lower(p: f32) -> f32 {
  if (p < 0.02425) {
    let q = sqrt(-2.0 * log(p));
    return (((((-7.784894002430293e-3 * q - 3.223964580411365e-1) * q - 2.400758277161838) * q - 2.549732539343734) * q + 4.374664141464968) * q + 2.938163982698783)
      / ((((7.784695709041462e-3 * q + 3.224671290700398e-1) * q + 2.445134137142996) * q + 3.754408661907416) * q + 1.0);
  }
  let w = -log(4.0 * p * (1.0 - p)) - 2.5;
  var r = 2.81022636e-08;
  r = 3.43273939e-07 + r * w;
  r = -3.5233877e-06 + r * w;
  r = -4.39150654e-06 + r * w;
  r = 0.00021858087 + r * w;
  r = -0.00125372503 + r * w;
  r = -0.00417768164 + r * w;
  r = 0.246640727 + r * w;
  r = 1.50140941 + r * w;
  return 1.4142135623730951 * r * (2.0 * p - 1.0);
}

// Inverse CDF of a scalar prior whose f32 parameters start at model[pb].
fn scalar_inverse_cdf(kind: u32, pb: u32, u: f32) -> f32 {
  if (kind == KIND_UNIFORM) {
    return clamp(mf(pb) + mf(pb + 1u) * u, mf(pb + 2u), mf(pb + 3u));
  }
  if (kind == KIND_LOGUNIFORM) {
    return clamp(exp(mf(pb) + mf(pb + 1u) * u), mf(pb + 2u), mf(pb + 3u));
  }
  // normal: p = Φ(a) + u w, q = 1 - Φ(b) + (1 - u) w; the smaller one goes to the quantile.
  let w = mf(pb + 6u);
  let pp = mf(pb + 4u) + u * w;
  let qq = mf(pb + 5u) + (1.0 - u) * w;
  var z: f32;
  if (pp <= qq) {
    z = normal_quantile_lower(pp);
  } else {
    z = -normal_quantile_lower(qq);
  }
  return clamp(mf(pb) + mf(pb + 1u) * z, mf(pb + 2u), mf(pb + 3u));
}

fn write_canonical(i: u32, th: ptr<function, array<f32, MAX_COLS>>) {
  var c: array<f32, MAX_CANON>;
  for (var k = 0u; k < P.canon_w; k = k + 1u) {
    c[k] = mf(HEADER + k);
  }
  let co = model[1];
  for (var j = 0u; j < P.n_cols; j = j + 1u) {
    let slot = model[co + 2u * j];
    if (slot >= P.canon_w) { continue; }
    var v = (*th)[j];
    if (model[co + 2u * j + 1u] == 1u) {
      v = exp2(v * LOG2_10);
    }
    c[slot] = v;
  }
  let base = i * P.canon_w;
  for (var k = 0u; k < P.canon_w; k = k + 1u) {
    canonical[base + k] = c[k];
  }
}

@compute @workgroup_size(64)
fn sample(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = linear_group(wid, P.grid_x) * 64u + lid.x;
  if (i >= P.n) { return; }
  let row_lo = P.offset_lo + i;
  let row = vec2<u32>(row_lo, P.offset_hi + select(0u, 1u, row_lo < i));
  let seed = vec2<u32>(P.seed_lo, P.seed_hi);
  var scalar = philox_stream(seed, P.purpose, row, 0u);
  var th: array<f32, MAX_COLS>;
  let n_priors = model[0];
  let po = model[2];
  for (var q = 0u; q < n_priors; q = q + 1u) {
    let r = po + PRIOR_RECORD * q;
    let kind = model[r];
    let col = model[r + 1u];
    if (kind == KIND_DIRICHLET) {
      let count = min(model[r + 2u], MAX_K);
      let aoff = model[r + 4u];
      var s = philox_stream(seed, P.purpose, row, model[r + 3u]);
      var g: array<f32, MAX_K>;
      var m = -3.0e38;
      for (var k = 0u; k < count; k = k + 1u) {
        g[k] = philox_log_gamma(&s, mf(aoff + k));
        m = max(m, g[k]);
      }
      var sum = 0.0;
      for (var k = 0u; k < count; k = k + 1u) {
        g[k] = exp(g[k] - m);
        sum = sum + g[k];
      }
      var cum = 0.0;
      for (var k = 0u; k + 1u < count; k = k + 1u) {
        cum = cum + g[k] / sum;
        th[min(col + k, MAX_COLS - 1u)] = cum;
      }
    } else {
      let u = philox_uniform(&scalar);
      th[min(col, MAX_COLS - 1u)] = scalar_inverse_cdf(kind, r + 8u, u);
    }
  }
  let base = i * P.n_cols;
  for (var j = 0u; j < P.n_cols; j = j + 1u) {
    theta[base + j] = th[j];
  }
  write_canonical(i, &th);
}

@compute @workgroup_size(64)
fn to_canonical(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = linear_group(wid, P.grid_x) * 64u + lid.x;
  if (i >= P.n) { return; }
  var th: array<f32, MAX_COLS>;
  let base = i * P.n_cols;
  for (var j = 0u; j < min(P.n_cols, MAX_COLS); j = j + 1u) {
    th[j] = theta[base + j];
  }
  write_canonical(i, &th);
}
