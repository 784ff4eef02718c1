// From combined spectra to band fluxes, one workgroup per galaxy (WG threads over wavelengths):
//   nebular (Q(H) x Inoue 2011 template interpolated in log10 Z and log U), dust (single screen or
//   Charlot & Fall with a separate young spectrum), redshift and distance, IGM, then photon-counting
//   band fluxes with per-galaxy trapezoid weights on the spectrum's own samples
//   (src/physics/filterIntegration.ts: W_i = T(l_i (1+z)) (g-_i [T_(i-1) > 0] + g+_i [T_(i+1) > 0])).
// Mirrors src/physics/forwardModel.ts line by line; see kernels/synth/observe.ts for the layouts.
//
// spec rows (SPEC_W = nLam + 4): L_nu[nLam] | Q(H)/1e45 | surviving mass | sum m*age | sum m  (the extra
// columns are linear in the weights, so the GEMM with the augmented grid computes them for free).
#include "common/grid.wgsl"
#include "synth/galaxy.wgsl"

struct Params {
  n: u32,
  nLam: u32,
  nBands: u32,
  specW: u32,
  gridX: u32,
  offLam: u32,
  offGm: u32,
  offGp: u32,
  offDustIsm: u32,
  offDustBc: u32,
  offNeb: u32,
  offNebLogZ: u32,
  nNebZ: u32,
  offIgm: u32,
  nIgm: u32,
  pad0: u32,
  fluxScale: f32,   // 1 / (4 pi (1 Mpc in cm)^2) / 1 nJy
  absScale: f32,    // 1 / (4 pi (10 pc in cm)^2) / 1 nJy
  magPerNeper: f32,
  pad1: f32,
}

@group(0) @binding(0) var<storage, read> canon: array<f32>;
@group(0) @binding(1) var<storage, read> aux: array<f32>;
@group(0) @binding(2) var<storage, read> spec: array<f32>;
#if SPLIT_YOUNG
@group(0) @binding(3) var<storage, read> specYoung: array<f32>;
#endif
@group(0) @binding(4) var<storage, read> tables: array<f32>;
// Per band: [offset of the filter's wavelengths in `tables`, number of samples, 0, 0]; throughputs follow the wavelengths.
@group(0) @binding(5) var<storage, read> bands: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read_write> fluxes: array<f32>;
// Per galaxy (DERIVED_W = 8, src/simulate/gpuSynth.ts SYNTH_DERIVED_COLUMNS): surviving mass [Msun],
// mass-weighted age [yr], UV slope beta, log10 Q(H) [photons/s], SFR over 10 and 100 Myr [Msun/yr]
// (from the weights kernel), age of the universe [yr] and d_L [Mpc] (from the cosmology kernel).
@group(0) @binding(7) var<storage, read_write> derived: array<f32>;
@group(0) @binding(8) var<uniform> P: Params;
// Per galaxy from the weights kernel: sfr10, sfr100, covered fraction, unused.
@group(0) @binding(9) var<storage, read> sfhDerived: array<f32>;

#include "synth/igm.wgsl"

const WGS: u32 = WG;
const NB: u32 = NBANDS;
// Reduced per thread: num/den per band, then the 5 sums of the UV-slope fit.
const NRED: u32 = 2u * NBANDS + 5u;
const UV_LO: f32 = 1268.0;
const UV_HI: f32 = 2580.0;
const LN_C_AA_S: f32 = 42.544452;  // ln(2.99792458e18 A/s)

// fsh = scratch[0 .. LCAP): observed f_nu; tsh = scratch[LCAP .. 2 LCAP): band throughput.
// After the band loop the same memory holds the reduction (WG x NRED).
var<workgroup> scratch: array<f32, SCRATCH>;

// Filter throughput at an observed wavelength: linear interpolation, 0 outside (numpy.interp left=right=0).
fn throughput(b: u32, l: f32) -> f32 {
  let info = bands[b];
  let o = info.x;
  let m = info.y;
  if (!(l >= tables[o] && l <= tables[o + m - 1u])) { return 0.0; }
  var lo = 0u;
  var hi = m - 1u;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (tables[o + mid] <= l) { lo = mid; } else { hi = mid; }
  }
  let xl = tables[o + lo];
  let xh = tables[o + hi];
  if (l == xh) { return tables[o + m + hi]; }
  let yl = tables[o + m + lo];
  return yl + (l - xl) / (xh - xl) * (tables[o + m + hi] - yl);
}

// First grid index with lambda_rest >= v (nLam when none).
fn lower_index(v: f32) -> u32 {
  var lo = 0u;
  var hi = P.nLam;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (tables[P.offLam + mid] < v) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}

// Bracket of v on an ascending table (metallicity.ts `bracket`): index and upper weight, clamped.
fn bracket_table(off: u32, n: u32, v: f32) -> vec2<f32> {
  if (n == 1u || v <= tables[off]) { return vec2<f32>(0.0, 0.0); }
  if (v >= tables[off + n - 1u]) { return vec2<f32>(f32(n - 2u), 1.0); }
  var lo = 0u;
  var hi = n - 1u;
  while (hi - lo > 1u) {
    let mid = (lo + hi) / 2u;
    if (tables[off + mid] <= v) { lo = mid; } else { hi = mid; }
  }
  return vec2<f32>(f32(lo), (v - tables[off + lo]) / (tables[off + lo + 1u] - tables[off + lo]));
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let g = linear_group(wid, P.gridX);
  if (g >= P.n) { return; }  // uniform across the workgroup
  let t = lid.x;
  let nLam = P.nLam;
  let cz = canon[g * CANON_W + C_REDSHIFT];
  let log10Z = canon[g * CANON_W + C_LOG10_Z];
  let tauIsm = canon[g * CANON_W + C_AV] / P.magPerNeper;
  let tauBc = canon[g * CANON_W + C_AV_BC] / P.magPerNeper;
  let opz = 1.0 + cz;
  var scale: f32;
  if (cz > 0.0) {
    let dl = aux[g * AUX_W + A_DL_MPC];
    scale = opz * P.fluxScale / (dl * dl);
  } else {
    scale = P.absScale;
  }
  let so = g * P.specW;
  var qh = spec[so + nLam];
#if SPLIT_YOUNG
  qh += specYoung[so + nLam];
#endif

#if NEBULAR
  // Bilinear weights over (log10 Z, log U) of the base templates (nebular.ts nebularInterpolationWeights).
  let bz = bracket_table(P.offNebLogZ, P.nNebZ, log10Z);
  let logU = canon[g * CANON_W + C_LOGU];
  let uc = clamp(logU, -3.0, -1.0);
  let iu = min(u32(floor(uc + 3.0)), 1u);
  let wu = uc - (f32(iu) - 3.0);
  let iz = u32(bz.x);
  let nebRow0 = P.offNeb + ((iz * 3u) + iu) * nLam;
  let nebRow1 = P.offNeb + (((iz + 1u) * 3u) + iu) * nLam;
  let w00 = (1.0 - bz.y) * (1.0 - wu);
  let w01 = (1.0 - bz.y) * wu;
  let w10 = bz.y * (1.0 - wu);
  let w11 = bz.y * wu;
#endif

  var uv = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
  var uvBad = false;
  for (var l = t; l < nLam; l += WGS) {
    var old = spec[so + l];
#if SPLIT_YOUNG
    var young = specYoung[so + l];
#else
    var young = 0.0;
#endif
#if NEBULAR
    var neb = w00 * tables[nebRow0 + l] + w01 * tables[nebRow0 + nLam + l];
    if (w10 != 0.0 || w11 != 0.0) { neb += w10 * tables[nebRow1 + l] + w11 * tables[nebRow1 + nLam + l]; }
#if SPLIT_YOUNG
    young += qh * neb;
#else
    old += qh * neb;
#endif
#endif
    let lam = tables[P.offLam + l];
#if SPLIT_YOUNG
    var L = exp(-tauIsm * tables[P.offDustIsm + l]) * (exp(-tauBc * tables[P.offDustBc + l]) * young + old);
#else
    var L = exp(-tauIsm * tables[P.offDustIsm + l]) * old;  // young = 0: the birth-cloud factor drops out
#endif
    if (lam >= UV_LO && lam <= UV_HI) {
      // ln f_lambda = ln L_nu + ln c - 2 ln lambda, in logs: L_nu c would overflow f32 (1e33 x 3e18).
      if (!(L > 0.0)) { uvBad = true; }
      else {
        // x centred near the window's middle (ln 1900 ~ 7.55): the slope is unchanged, the f32 sums cancel less.
        let x = log(lam) - 7.55;
        let y = log(L) + LN_C_AA_S - 2.0 * log(lam);
        uv[0] += 1.0; uv[1] += x; uv[2] += y; uv[3] += x * x; uv[4] += x * y;
      }
    }
    var tr = 1.0;
    // L = 0 (the Lyman continuum, zeroed with nebular emission at f_esc = 0): nothing to transmit;
    // skipping the IGM there saves most of its ~40 powers per sample.
    if (cz > 0.0 && L != 0.0) {
#if IGM == 1
      if (lam < 1215.67) { tr = inoue14_transmission(lam * opz, cz); }
#elif IGM == 2
      tr = madau95_transmission(lam * opz, cz);
#endif
    }
    scratch[l] = L * scale * tr;
  }

  var red: array<f32, NRED>;
  for (var b = 0u; b < NB; b++) {
    // Only the rest-frame samples that can fall inside the filter matter: [a, e) from two binary
    // searches on the grid (identical in every thread), widened by 2 samples against f32 rounding
    // of lambda (1+z); throughput() itself decides exactly. The written range has one more sample on
    // each side so the neighbour tests below never read the previous band's values.
    let fo = bands[b].x;
    let fm = bands[b].y;
    let a = lower_index(tables[fo] / opz);
    let e = lower_index(tables[fo + fm - 1u] / opz);
    let lo = select(0u, a - 2u, a >= 2u);
    let hi = min(e + 2u, nLam);
    let wlo = select(0u, lo - 1u, lo >= 1u);
    let whi = min(hi + 1u, nLam);
    workgroupBarrier();
    for (var l = wlo + t; l < whi; l += WGS) { scratch[LCAP + l] = throughput(b, tables[P.offLam + l] * opz); }
    workgroupBarrier();
    var num = 0.0;
    var den = 0.0;
    for (var l = lo + t; l < hi; l += WGS) {
      let tl = scratch[LCAP + l];
      if (tl > 0.0) {
        var gsum = 0.0;
        if (l > 0u && scratch[LCAP + l - 1u] > 0.0) { gsum += tables[P.offGm + l]; }
        if (l + 1u < nLam && scratch[LCAP + l + 1u] > 0.0) { gsum += tables[P.offGp + l]; }
        let w = tl * gsum;
        num += w * scratch[l];
        den += w;
      }
    }
    red[2u * b] = num;
    red[2u * b + 1u] = den;
  }
  for (var k = 0u; k < 5u; k++) { red[2u * NB + k] = select(uv[k], -1e30, uvBad); }
  workgroupBarrier();
  for (var k = 0u; k < NRED; k++) { scratch[k * WGS + t] = red[k]; }
  workgroupBarrier();
  for (var half = WGS / 2u; half > 0u; half /= 2u) {
    if (t < half) {
      for (var k = 0u; k < NRED; k++) { scratch[k * WGS + t] += scratch[k * WGS + t + half]; }
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    for (var b = 0u; b < NB; b++) {
      let den = scratch[(2u * b + 1u) * WGS];
      fluxes[g * NB + b] = select(0.0, scratch[2u * b * WGS] / den, den > 0.0);
    }
    let n = scratch[(2u * NB) * WGS];
    let sx = scratch[(2u * NB + 1u) * WGS];
    let sy = scratch[(2u * NB + 2u) * WGS];
    let sxx = scratch[(2u * NB + 3u) * WGS];
    let sxy = scratch[(2u * NB + 4u) * WGS];
    // NaN is not portable in WGSL: an invalid fit (too few samples or a non-positive flux) writes -999.
    var beta = -999.0;
    if (n >= 2.0) { beta = (n * sxy - sx * sy) / (n * sxx - sx * sx); }
    var surv = spec[so + nLam + 1u];
    var mage = spec[so + nLam + 2u];
    var mass = spec[so + nLam + 3u];
#if SPLIT_YOUNG
    surv += specYoung[so + nLam + 1u];
    mage += specYoung[so + nLam + 2u];
    mass += specYoung[so + nLam + 3u];
#endif
    let d = g * 8u;
    derived[d] = surv;
    derived[d + 1u] = select(0.0, mage / mass, mass > 0.0);
    derived[d + 2u] = beta;
    // Q(H) arrives in units of 1e45 photons/s (kernels/synth/observe.ts QH_UNIT); -999 when zero.
    derived[d + 3u] = select(-999.0, log(qh) / log(10.0) + 45.0, qh > 0.0);
    derived[d + 4u] = sfhDerived[g * 4u];
    derived[d + 5u] = sfhDerived[g * 4u + 1u];
    derived[d + 6u] = aux[g * AUX_W + A_AGE_UNIVERSE_YR];
    derived[d + 7u] = aux[g * AUX_W + A_DL_MPC];
  }
}
