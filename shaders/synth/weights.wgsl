// SFH x metallicity weights per galaxy: the matrix that the photometry GEMM multiplies with the
// spectral grid L_nu[age][Z][lambda]. Mirrors binSfh + sfhDerivedQuantities (src/physics/sfh.ts)
// and single/logNormalMetallicityWeights (src/physics/metallicity.ts).
//
//   Wold[g][a*nZ + z]   = mass formed in age bin a [Msun] * metallicity weight z   (N x A*nZ)
//   Wyoung[g][a*nZ + z] = the same for the young ages a < nYoung (SPLIT_YOUNG; Wold is 0 there)
//   derived[g]          = (sfr10MyrMsunPerYr, sfr100MyrMsunPerYr, coveredFraction, 0)
//
//   PAIR_Z: Wold[g][a*2 + t] = mass in bin a * weight of grid metallicity zLo + t (N x 2A), for
//   galaxies with a single metallicity between grid nodes zLo and zLo + 1 (chosen by the host, which
//   groups galaxies by zLo so that each group's GEMM has K = 2A instead of A*nZ); the CIC weight is
//   clamped to [0, 1], so a host choice off by one at a node gives the same weights.
//
// Defines: SFH_FAMILY (0..5, see synth/sfh.wgsl), Z_INTERP (0 = linear in log10 Z, 1 = linear in Z),
// SPLIT_YOUNG (bool), PAIR_Z (bool; not with SPLIT_YOUNG), WG (threads per workgroup, a power of two), MAX_AGES (>= A, a multiple of WG),
// MAX_Z (>= nZ).
//
// Parallelisation: one workgroup per galaxy, threads over age bins. Each thread evaluates the
// closed-form bin integrals of bins lid, lid+WG, ... into workgroup memory (the per-galaxy setup --
// normalisations, quantile knots, DPL anchors -- is recomputed by every thread: it costs about one
// bin and needs no extra barrier), a tree reduction gives the covered sum for the normalisation,
// and the row of A*nZ outputs is written by consecutive threads to consecutive addresses
// (coalesced). A thread per galaxy would write 6 KB rows (BC03: 220 x 7) with a 6 KB stride between
// neighbouring threads, and keep 220 masses in registers or recompute them for the normalisation.
// Measured (bench/synthWeights.ts, BC03-like 220 x 7, 262144 galaxies): on an H100 (Dawn/Vulkan)
// constant/exponential/delayed 1.6-2.4e8 galaxies/s (1-1.5 TB/s of weights written: memory bound),
// quantiles 1.2e8, logNormal 3.8e7, doublePowerLaw 4.1e7 (special functions: compute bound);
// 32 threads per galaxy were as fast as or faster than 64/128/256, on lavapipe too (2-8e4/s).
#include "common/grid.wgsl"
#include "synth/galaxy.wgsl"
#include "synth/sfh.wgsl"

struct Params {
  nGalaxies: u32,
  nAges: u32,
  nZ: u32,
  nYoung: u32,
  gridX: u32,
  fallbackAge: u32,  // the oldest non-empty bin: gets all the mass when nothing falls in the bins
  one: f32,          // 1.0, made opaque to the shader compiler (SP_ONE, common/special.wgsl)
  gOffset: u32,      // first galaxy (row of params / aux / weights / derived) of this dispatch
  zLo: u32,          // PAIR_Z: the lower grid metallicity of every galaxy of this dispatch
}

// Canonical rows (N x CANON_W) and aux rows (N x AUX_W = 4: ageOfUniverseYr, luminosityDistanceMpc, -, -),
// layouts in synth/galaxy.wgsl.
@group(0) @binding(0) var<storage, read> params: array<f32>;
@group(0) @binding(1) var<storage, read> aux: array<f32>;
// A+1 age-bin edges [yr] as two-float values (hi, lo), ascending, edge 0 = 0.
@group(0) @binding(2) var<storage, read> ageEdges: array<vec2<f32>>;
// Per grid metallicity: (log10 Z, Z, upper log10 Z bin edge as two-float hi, lo); the last edge is unused.
@group(0) @binding(3) var<storage, read> zTable: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> wOld: array<f32>;
@group(0) @binding(5) var<storage, read_write> derived: array<vec4<f32>>;
#if SPLIT_YOUNG
@group(0) @binding(6) var<storage, read_write> wYoung: array<f32>;
#endif
@group(0) @binding(7) var<uniform> P: Params;

const WG_SIZE: u32 = WG;

var<workgroup> massScaled: array<f32, MAX_AGES>;
var<workgroup> red: array<f32, WG>;
var<workgroup> wz: array<f32, MAX_Z>;

// Weight of grid metallicity z for a galaxy (before the log-normal renormalisation).
fn metallicity_weight(z: u32, log10Z: f32, sigmaDex: f32) -> f32 {
  let n = P.nZ;
  if (n == 1u) {
    return 1.0;
  }
  if (sigmaDex > 0.0) {
    // Normal in log10 Z integrated over [e_z, e_{z+1}], e_0 = -inf, e_n = +inf (log10ZBinEdges).
    let aInf = z == 0u;
    let bInf = z == n - 1u;
    var lower = vec2<f32>(0.0, 0.0);
    var upper = vec2<f32>(0.0, 0.0);
    if (!aInf) {
      lower = zTable[z - 1u].zw;
    }
    if (!bInf) {
      upper = zTable[z].zw;
    }
    let a = ((lower.x - log10Z) + lower.y) / sigmaDex;
    let b = ((upper.x - log10Z) + upper.y) / sigmaDex;
    let width = df_diff(upper, lower) / sigmaDex;
    return exp(ln_normal_interval_rel(0.0, a, b, width, aInf, bInf));
  }
  // Cloud-in-cell between the bracketing metallicities, clamped outside the grid (bracket()).
#if Z_INTERP == 0
  let v = log10Z;
#else
  let v = pow10_f(log10Z);
#endif
  var idx = 0u;
  var uw = 0.0;
#if Z_INTERP == 0
  let x0 = zTable[0].x;
  let xn = zTable[n - 1u].x;
#else
  let x0 = zTable[0].y;
  let xn = zTable[n - 1u].y;
#endif
  if (v >= xn) {
    idx = n - 2u;
    uw = 1.0;
  } else if (v > x0) {
    var lo = 0u;
    for (var i = 1u; i < n - 1u; i++) {
#if Z_INTERP == 0
      let xi = zTable[i].x;
#else
      let xi = zTable[i].y;
#endif
      if (xi <= v) {
        lo = i;
      }
    }
#if Z_INTERP == 0
    let xl = zTable[lo].x;
    let xh = zTable[lo + 1u].x;
#else
    let xl = zTable[lo].y;
    let xh = zTable[lo + 1u].y;
#endif
    idx = lo;
    uw = (v - xl) / (xh - xl);
  }
  return select(0.0, 1.0 - uw, z == idx) + select(0.0, uw, z == idx + 1u);
}

// Weight of grid metallicity lo + 1 for a galaxy between nodes lo and lo + 1 (linear in log10 Z or
// Z, as metallicity_weight; clamped, so the end nodes take everything beyond them).
fn pair_weight(lo: u32, log10Z: f32) -> f32 {
#if Z_INTERP == 0
  let v = log10Z;
  let xl = zTable[lo].x;
  let xh = zTable[lo + 1u].x;
#else
  let v = pow10_f(log10Z);
  let xl = zTable[lo].y;
  let xh = zTable[lo + 1u].y;
#endif
  return clamp((v - xl) / (xh - xl), 0.0, 1.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let gLocal = linear_group(wid, P.gridX);
  // g is uniform across the workgroup: the early return keeps the barriers in uniform control flow.
  if (gLocal >= P.nGalaxies) {
    return;
  }
  let g = gLocal + P.gOffset;
  SP_ONE = P.one;
  let lid = lid3.x;
  let row = g * CANON_W;
  let s = vec4<f32>(params[row + C_S0], params[row + C_S0 + 1u], params[row + C_S0 + 2u], params[row + C_S0 + 3u]);
  let nA = P.nAges;
  let nZ = P.nZ;
  sfh_init(s, aux[g * AUX_W + A_AGE_UNIVERSE_YR], ageEdges[nA].x);

  var partial = 0.0;
  for (var a = lid; a < nA; a += WG_SIZE) {
    let m = sfh_mass_scaled(ageEdges[a], ageEdges[a + 1u]);
    massScaled[a] = m;
    partial += m;
  }
  let log10Z = params[row + C_LOG10_Z];
  let sigmaDex = params[row + C_LOG10_Z_SIGMA];
#if PAIR_Z
  if (lid == 0u) {
    let uw = pair_weight(P.zLo, log10Z);
    wz[0] = 1.0 - uw;
    wz[1] = uw;
  }
#else
  for (var z = lid; z < nZ; z += WG_SIZE) {
    wz[z] = metallicity_weight(z, log10Z, sigmaDex);
  }
#endif
  red[lid] = partial;
  workgroupBarrier();
  for (var half = WG_SIZE / 2u; half > 0u; half /= 2u) {
    if (lid < half) {
      red[lid] += red[lid + half];
    }
    workgroupBarrier();
  }
  let total = red[0];
  var zNorm = 1.0;
  if (sigmaDex > 0.0) {
    var wsum = 0.0;
    for (var z = 0u; z < nZ; z++) {
      wsum += wz[z];
    }
    zNorm = 1.0 / wsum;
  }
  let M = pow10_f(params[row + C_LOG10_MASS]);
  let covered = total > 0.0;
  let k = select(0.0, M / total, covered);

#if PAIR_Z
  let nCols = nA * 2u;
  let base = g * nCols;
  for (var j = lid; j < nCols; j += WG_SIZE) {
    let a = j / 2u;
    var m = massScaled[a] * k;
    if (!covered) {
      m = select(0.0, M, a == P.fallbackAge);
    }
    wOld[base + j] = m * wz[j - a * 2u];
  }
#else
  let nCols = nA * nZ;
  let base = g * nCols;
#if SPLIT_YOUNG
  let nYoungCols = P.nYoung * nZ;
  let baseYoung = g * nYoungCols;
#endif
  for (var j = lid; j < nCols; j += WG_SIZE) {
    let a = j / nZ;
    let z = j - a * nZ;
    var m = massScaled[a] * k;
    if (!covered) {
      m = select(0.0, M, a == P.fallbackAge);
    }
    let v = m * (wz[z] * zNorm);
#if SPLIT_YOUNG
    if (j < nYoungCols) {
      wYoung[baseYoung + j] = v;
      wOld[base + j] = 0.0;
    } else {
      wOld[base + j] = v;
    }
#else
    wOld[base + j] = v;
#endif
  }
#endif

  if (lid == 0u) {
    var sfr10 = 0.0;
    var sfr100 = 0.0;
    var coveredFraction = 0.0;
    if (covered) {
      sfr10 = M * (sfh_mass_scaled(df(0.0), df(1e7)) / total) / 1e7;
      sfr100 = M * (sfh_mass_scaled(df(0.0), df(1e8)) / total) / 1e8;
      coveredFraction = exp(log(total) - SFH.lnScale);
    }
    derived[g] = vec4<f32>(sfr10, sfr100, coveredFraction, 0.0);
  }
}
