// Per-galaxy cosmology: age of the universe [yr] and luminosity distance [Mpc] at the galaxy's
// redshift, by the same cubic Hermite interpolation on a grid uniform in x = ln(1+z) as
// src/physics/cosmology.ts CosmologyTable (node values and exact x-derivatives from the CPU).
#include "common/grid.wgsl"
#include "synth/galaxy.wgsl"

struct Params {
  n: u32,
  nodes: u32,
  gridX: u32,
  dx: f32,
}

@group(0) @binding(0) var<storage, read> canon: array<f32>;
// 4 arrays of `nodes` values: comoving [Mpc], d comoving/dx, age [yr], d age/dx.
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read_write> aux: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

fn hermite(base: u32, dbase: u32, x: f32) -> f32 {
  let i = min(u32(max(floor(x / P.dx), 0.0)), P.nodes - 2u);
  let h = P.dx;
  let t = (x - f32(i) * h) / h;
  let t2 = t * t;
  let t3 = t2 * t;
  return (2.0 * t3 - 3.0 * t2 + 1.0) * table[base + i] + (t3 - 2.0 * t2 + t) * h * table[dbase + i]
    + (-2.0 * t3 + 3.0 * t2) * table[base + i + 1u] + (t3 - t2) * h * table[dbase + i + 1u];
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let g = linear_group(wid, P.gridX) * 64u + lid.x;
  if (g >= P.n) { return; }
  let z = canon[g * CANON_W + C_REDSHIFT];
  // ln(1+z) accurately for small z (log1p is not in WGSL): the series to z^4 below 1e-3.
  var x: f32;
  if (z < 1e-3) { x = z * (1.0 - z * (0.5 - z * (1.0 / 3.0 - 0.25 * z))); } else { x = log(1.0 + z); }
  let n = P.nodes;
  let comoving = hermite(0u, n, x);
  aux[g * AUX_W + A_AGE_UNIVERSE_YR] = hermite(2u * n, 3u * n, x);
  aux[g * AUX_W + A_DL_MPC] = (1.0 + z) * comoving;
  aux[g * AUX_W + 2u] = 0.0;
  aux[g * AUX_W + 3u] = 0.0;
}
