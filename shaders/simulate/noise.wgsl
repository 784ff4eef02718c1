// Noise model + features in one pass (issue 4). One thread per galaxy, looping over the B bands.
// float64 reference: src/simulate/features.ts simulateObservations (formulas and random streams are
// documented in src/simulate/noise.ts and features.ts; this file mirrors them line for line).
//
// Defines (kernels/noise.ts):
//   NOISE     0 none, 1 depth (5-sigma depths), 2 empirical (fitted bin tables)
//   SCATTER   0 no depth scatter, 1 one draw per galaxy, 2 one draw per galaxy and band (depth only)
//   PHOT      0 asinh magnitudes, 1 scaled fluxes
//   ERRORS, MASK, REDSHIFT   bool: write the error / 0-1 mask / redshift features
//
// Bindings:
//   0 true_flux  N x B f32 [nJy], read
//   1 bandp      B x 8 f32 per band: [sigma1 nJy, dropout p, softening b nJy, 31.4 - 2.5 log10 b,
//                emp node offset, emp node count, emp f_last nJy, 0]
//   2 emp        (NOISE == 2) vec4 per node: (mag, ln q16, ln q50, ln q84), relative-error units
//   3 zsrc       (REDSHIFT) redshift of galaxy i at zsrc[i * z_stride + z_offset]
//   4 noisy      N x B f32 [nJy], write
//   5 sigma      N x B f32 [nJy], write
//   6 feat       N x F f32, write (row i at i * F)
//   7 P          uniforms
#include "common/grid.wgsl"
#include "common/philox.wgsl"

struct Params {
  n: u32,
  n_bands: u32,
  width: u32,
  grid_x: u32,
  seed_lo: u32,
  seed_hi: u32,
  off_lo: u32,
  off_hi: u32,
  z_stride: u32,
  z_offset: u32,
  err_col: u32,
  mask_col: u32,
  z_col: u32,
  floor_frac: f32,
  scatter_mag: f32,
  flux_scale: f32,
  fill_value: f32,
}

@group(0) @binding(0) var<storage, read> true_flux: array<f32>;
@group(0) @binding(1) var<storage, read> bandp: array<f32>;
#if NOISE == 2
@group(0) @binding(2) var<storage, read> emp: array<vec4<f32>>;
#endif
#if REDSHIFT
@group(0) @binding(3) var<storage, read> zsrc: array<f32>;
#endif
@group(0) @binding(4) var<storage, read_write> noisy: array<f32>;
@group(0) @binding(5) var<storage, read_write> sigma: array<f32>;
@group(0) @binding(6) var<storage, read_write> feat: array<f32>;
@group(0) @binding(7) var<uniform> P: Params;

const RNG_PURPOSE_NOISE: u32 = 0x14u;    // rng.ts RngPurpose.noise
const RNG_PURPOSE_DROPOUT: u32 = 0x15u;  // rng.ts RngPurpose.bandDropout
const GALAXY_SUBSTREAM: u32 = 0xFFFFu;   // noise.ts GALAXY_SUBSTREAM
const AB_ZP_NJY: f32 = 31.4;
const MAG_PER_LN: f32 = 1.0857362047581294;  // 2.5 / ln 10
const LOG10_E: f32 = 0.4342944819032518;
const LN10: f32 = 2.302585092994046;

// -ln(u) for u in (0, 1), accurate to a few ulp also near u = 1 (where WGSL's log only promises an
// absolute error of 2^-21): ln u = 2 atanh(t), t = (u - 1) / (u + 1), |t| <= 1/3 for u >= 0.5,
// series to t^15 (relative truncation < 2e-8); u - 1 is exact for u in [0.5, 1].
fn neg_ln_unit(u: f32) -> f32 {
  if (u < 0.5) { return -log(u); }
  let t = (u - 1.0) / (u + 1.0);
  let t2 = t * t;
  let s = t * (1.0 + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0 + t2 * (1.0 / 11.0 + t2 * (1.0 / 13.0 + t2 * (1.0 / 15.0))))))));
  return -2.0 * s;
}

// rng.ts PhiloxStream.normal(): -sqrt(-2 ln u1) cos(pi (2 u2 - 1)).
fn noise_normal(s: ptr<function, Philox>) -> f32 {
  let u1 = philox_uniform(s);
  let u2 = philox_uniform(s);
  return -sqrt(2.0 * neg_ln_unit(u1)) * philox_cos_pi(2.0 * u2 - 1.0);
}

// asinh without cancellation for x < 0 and without overflow of x^2 for large |x|.
fn asinh_stable(x: f32) -> f32 {
  let a = abs(x);
  var r: f32;
  if (a > 4096.0) {
    r = log(2.0 * a);  // + 1/(4 a^2) < 1.5e-8
  } else {
    r = log(a + sqrt(a * a + 1.0));
  }
  return select(r, -r, x < 0.0);
}

fn is_finite_f32(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7F800000u) != 0x7F800000u;
}

#if NOISE == 2
// Empirical flux error at true flux f for the standard normal draw nd (empiricalNoise.ts:
// empiricalSigmaNJy): f_eff = max(f, f_last), m = 31.4 - 2.5 log10 f_eff, ln q interpolated linearly
// in m between the nodes (held beyond them), split normal in ln e, sigma = e * f_eff.
fn empirical_sigma(b: u32, f: f32, nd: f32) -> f32 {
  let off = u32(bandp[b * 8u + 4u]);
  let cnt = u32(bandp[b * 8u + 5u]);
  let f_last = bandp[b * 8u + 6u];
  let f_eff = max(f, f_last);
  let m = AB_ZP_NJY - 2.5 * LOG10_E * log(f_eff);
  var q: vec3<f32>;
  let first = emp[off];
  let last = emp[off + cnt - 1u];
  if (cnt == 1u || m <= first.x) {
    q = first.yzw;
  } else if (m >= last.x) {
    q = last.yzw;
  } else {
    // Largest k with node[k] <= m (k in [0, cnt - 2]).
    var lo = 0u;
    var hi = cnt - 2u;
    loop {
      if (lo >= hi) { break; }
      let mid = (lo + hi + 1u) >> 1u;
      if (emp[off + mid].x <= m) { lo = mid; } else { hi = mid - 1u; }
    }
    let a = emp[off + lo];
    let c = emp[off + lo + 1u];
    let w = (m - a.x) / (c.x - a.x);
    q = a.yzw + w * (c.yzw - a.yzw);
  }
  let spread = select(q.z - q.y, q.y - q.x, nd < 0.0);
  return exp(q.y + nd * spread) * f_eff;
}
#endif

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = linear_group(wid, P.grid_x) * 64u + lid.x;
  if (i >= P.n) { return; }
  let B = P.n_bands;
  // Global row = offset + i as a 64-bit (lo, hi) pair.
  let row_lo = P.off_lo + i;
  let row = vec2<u32>(row_lo, P.off_hi + select(0u, 1u, row_lo < i));
  let seed = vec2<u32>(P.seed_lo, P.seed_hi);

#if SCATTER == 1
  var gs = philox_stream(seed, RNG_PURPOSE_NOISE, row, GALAXY_SUBSTREAM);
  let n_gal = noise_normal(&gs);
#endif
  var ds = philox_stream(seed, RNG_PURPOSE_DROPOUT, row, 0u);
  let fo = i * P.width;

  for (var b = 0u; b < B; b = b + 1u) {
    let e = i * B + b;
    let t = true_flux[e];
    var ns = philox_stream(seed, RNG_PURPOSE_NOISE, row, b);
    let n_flux = noise_normal(&ns);
    let n_aux = noise_normal(&ns);
    let u_drop = philox_uniform(&ds);

#if NOISE == 0
    let f = t;
    let s = 0.0;
#else
#if NOISE == 1
#if SCATTER == 1
    let sigma0 = bandp[b * 8u] * exp(-0.4 * LN10 * P.scatter_mag * n_gal);
#elif SCATTER == 2
    let sigma0 = bandp[b * 8u] * exp(-0.4 * LN10 * P.scatter_mag * n_aux);
#else
    let sigma0 = bandp[b * 8u];
#endif
#else
    let sigma0 = empirical_sigma(b, t, n_aux);
#endif
    let fl = P.floor_frac * t;
    let s = sqrt(sigma0 * sigma0 + fl * fl);
    let f = t + s * n_flux;
#endif
    noisy[e] = f;
    sigma[e] = s;

    let present = is_finite_f32(t) && !(u_drop < bandp[b * 8u + 1u]);
    var v = P.fill_value;
    var ev = P.fill_value;
    if (present) {
#if PHOT == 0
      let soft = bandp[b * 8u + 2u];
      v = bandp[b * 8u + 3u] - MAG_PER_LN * asinh_stable(f / (2.0 * soft));
      let h = max(abs(f), 2.0 * soft);
      let fr = f / h;
      let br = 2.0 * soft / h;
      ev = MAG_PER_LN * s / (h * sqrt(fr * fr + br * br));
#else
      v = f * P.flux_scale;
      ev = s * P.flux_scale;
#endif
    }
    feat[fo + b] = v;
#if ERRORS
    feat[fo + P.err_col + b] = ev;
#endif
#if MASK
    feat[fo + P.mask_col + b] = select(0.0, 1.0, present);
#endif
  }
#if REDSHIFT
  feat[fo + P.z_col] = zsrc[i * P.z_stride + P.z_offset];
#endif
}
