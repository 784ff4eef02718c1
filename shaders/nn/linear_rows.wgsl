// Register-tiled linear layers for small widths, without shared memory or barriers
// (kernels/nn/linearRows.ts; float64 mirror: src/flow/mlp.ts). Written for CPU drivers (llvmpipe
// runs one workgroup per CPU thread with invocations in SIMD lanes; a memory access instruction
// costs roughly ten FMAs there, a barrier a coroutine switch): each invocation keeps an R x NB tile
// of accumulators in registers, so one k step does R + NB loads for R NB FMAs.
// Only the tile (R, NB, KB) and the epilogue are compile-time: shapes are uniforms, so one pipeline
// serves every layer shape, and loop trip counts stay unknown to the compiler (llvmpipe takes
// seconds to compile a fully unrolled small-K loop). Compile time is what limits the unrolled
// tiles: the epilogues avoid `break` and per-element loads that do not depend on the row (the bias
// starts the sums), which took llvmpipe from 2.2 s to 0.25 s for an 8 x 8 tile. Out-of-range rows
// and columns are clamped for loading and masked for storing, so any M, N >= 1 work; K = 0 gives
// the bias alone.
//
// MODE 0  rows:  for r < M, j < N (invocation: R rows g + i G, i < R, G = ceil(M / R); columns
//                [NB wid.y, NB wid.y + NB)):
//                  y = sum_k X[r, k] op(B)[k, j] (+ bias[j])
//                  (ACT_GRAD: y *= act'(post[r, j]), act' from the forward output as activation.wgsl)
//                  (HAS_RES: y += res[r ldR + offR + j])
//                  OUT_PRE: Y[r ldY + offY + j] = y;  OUT_ACT: A[r N + j] = act(y)
//                X is M x K row-major; op(B) = B (K x N row-major) or, with TRANS_B, B^T (B stored
//                N x K: row j of B is column j of op(B)).
//                Bindings: 0 X, 1 B, 2 Y (OUT_PRE), 3 bias (HAS_BIAS), 4 uniforms, 5 res (HAS_RES),
//                6 A (OUT_ACT), 7 post (ACT_GRAD).
// MODE 1  xtg:   weight gradient partials, D = [X | 1]^T G over the rows of one slice: for slice
//                s < S (rows [s c, min(s c + c, M))), k <= K, j < N:
//                  out[outOffset + s stride + (k < K ? k N : biasAt) + j] = sum_r [X | 1][r, k] G[r, j]
//                (row K, a column of ones in X, is the bias gradient 1^T G). An invocation owns a
//                tile of KB rows x NB columns of D in one slice; a group of 8 invocations is 8 tiles
//                along N (xtg workgroup = one group = (slice, k block, group of 8 column blocks)).
//                One slice (S = 1) writes the gradient directly; S > 1 partials are summed by colSum.
//                Bindings: 0 X, 1 G, 2 out, 4 uniforms.
// MODE 2  rows + xtg in one dispatch (a Linear's backward: input gradient G W^T and weight
//                gradient [X | 1]^T G are independent; on llvmpipe every dispatch has a fixed cost
//                of some 20-40 us, as much as either's arithmetic at batch 256).
//                Workgroups of 8 invocations: nx of them are MODE 1 workgroups (one group of 8 xtg
//                tiles), nr are MODE 0 workgroups of 8 (flattened: rows workgroup (x, y) =
//                (i % e, i / e)). The xtg workgroups are spread evenly, each followed by its share
//                of rows workgroups: llvmpipe hands each of its T threads a contiguous 1 / T of a
//                dispatch's workgroups (lp_cs_tpool: n / T each, the remainder one by one), and
//                an xtg workgroup (all the rows of a slice) is long, a rows one short: with the xtg
//                ones first, one thread got them all (training at batch 4096 ~20 % slower than
//                with two dispatches). 8 invocations, not MODE 0's 16: workgroups of 16 holding
//                two xtg groups are heavier units, which balance worse over the threads for odd
//                group counts (and broadcast different values in one workgroup); measured the
//                same or slower.
//                Bindings: 0 rows' X = xtg's G (bound once), 1 B, 2 Y, 3 bias, 5 res, 6 A, 7 post
//                as MODE 0; 8 xtg's X, 9 xtg's out; 4 uniforms (rows' Params, then xtg's).
// ACT: 0 relu, 1 tanh.
// SG (subgroups of >= 8 invocations): values that every invocation of a workgroup needs are loaded
// once, one per lane, and handed out with subgroupBroadcast. Rows tiles (RSG, NB a multiple of 8):
// the B values of a k step (same columns for the whole workgroup), NB / 8 memory instructions per k
// step instead of NB. Xtg tiles (XSG, KB = 8): the X values of a row (same rows and k block for the
// workgroup), 1 + NB memory instructions per row instead of KB + NB.
#if SG
enable subgroups;
#endif
#include "common/math.wgsl"

struct Params {
  M: u32,
  K: u32,
  N: u32,
  G: u32,      // rows: row groups ceil(M / R); xtg: rows per slice c
  a: u32,      // rows: ldY, offY, ldR, offR; xtg: S, groups of 8 column blocks, slice stride, biasAt
  b: u32,
  c: u32,
  d: u32,
  outOffset: u32,
  G2: u32,     // xtg: k blocks
  e: u32,      // MODE 2: rows: workgroups along the rows
  f: u32,      // MODE 2: rows: all workgroups of the dispatch; xtg: its workgroups
}

#if MODE == 2
struct Fused {
  r: Params,
  x: Params,
}
@group(0) @binding(4) var<uniform> U: Fused;
#else
@group(0) @binding(4) var<uniform> U: Params;
#endif

@group(0) @binding(0) var<storage, read> X: array<f32>;
#if MODE == 1
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> D: array<f32>;
#else
@group(0) @binding(1) var<storage, read> B: array<f32>;
#if OUT_PRE
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
#endif
#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
#if HAS_RES
@group(0) @binding(5) var<storage, read> res: array<f32>;
#endif
#if OUT_ACT
@group(0) @binding(6) var<storage, read_write> A: array<f32>;
#endif
#if ACT_GRAD
@group(0) @binding(7) var<storage, read> post: array<f32>;
#endif
#endif
#if MODE == 2
@group(0) @binding(8) var<storage, read> XF: array<f32>;
@group(0) @binding(9) var<storage, read_write> D: array<f32>;
#endif

fn act(y: f32) -> f32 {
#if ACT == 0
  return max(y, 0.0);
#else
  return safe_tanh(y);
#endif
}

fn actGrad(a: f32) -> f32 {
#if ACT == 0
  return select(0.0, 1.0, a > 0.0);
#else
  return 1.0 - a * a;
#endif
}

#if MODE != 1
const R: u32 = R_;
const NB: u32 = RNB_;

// Rows tile of invocation g (row group) in column block cb; U: the rows Params.
fn rowsTile(P: Params, g: u32, cb: u32, lane: u32) {
  let K = P.K;
  let N = P.N;
  let n0 = cb * NB;
  var rows: array<u32, R>;
  for (var i = 0u; i < R; i++) { rows[i] = min(g + i * P.G, P.M - 1u); }
  var cols: array<u32, NB>;
  for (var j = 0u; j < NB; j++) { cols[j] = min(n0 + j, N - 1u); }
  var acc: array<f32, R * NB>;
#if HAS_BIAS
  // The bias starts the sums (NB loads instead of R NB in the epilogue).
  for (var j = 0u; j < NB; j++) {
    let bj = bias[cols[j]];
    for (var i = 0u; i < R; i++) { acc[i * NB + j] = bj; }
  }
#endif
#if RSG
  var myCols: array<u32, NB / 8u>;
  for (var c = 0u; c < NB / 8u; c++) { myCols[c] = cols[c * 8u + lane % 8u]; }
#endif
  for (var k = 0u; k < K; k++) {
    var b: array<f32, NB>;
#if RSG
    for (var c = 0u; c < NB / 8u; c++) {
#if TRANS_B
      let mine = B[myCols[c] * K + k];
#else
      let mine = B[k * N + myCols[c]];
#endif
      // subgroupBroadcast takes a constant lane.
      b[c * 8u] = subgroupBroadcast(mine, 0u);
      b[c * 8u + 1u] = subgroupBroadcast(mine, 1u);
      b[c * 8u + 2u] = subgroupBroadcast(mine, 2u);
      b[c * 8u + 3u] = subgroupBroadcast(mine, 3u);
      b[c * 8u + 4u] = subgroupBroadcast(mine, 4u);
      b[c * 8u + 5u] = subgroupBroadcast(mine, 5u);
      b[c * 8u + 6u] = subgroupBroadcast(mine, 6u);
      b[c * 8u + 7u] = subgroupBroadcast(mine, 7u);
    }
#else
    for (var j = 0u; j < NB; j++) {
#if TRANS_B
      b[j] = B[cols[j] * K + k];
#else
      b[j] = B[k * N + cols[j]];
#endif
    }
#endif
    for (var i = 0u; i < R; i++) {
      let x = X[rows[i] * K + k];
      for (var j = 0u; j < NB; j++) { acc[i * NB + j] = fma(x, b[j], acc[i * NB + j]); }
    }
  }
  for (var i = 0u; i < R; i++) {
    let r = rows[i];
    let rowOk = g < P.G && g + i * P.G < P.M;  // g >= G: workgroup padding
    for (var j = 0u; j < NB; j++) {
      let n = n0 + j;
      if (!rowOk || n >= N) { continue; }
      var y = acc[i * NB + j];
#if ACT_GRAD
      y *= actGrad(post[r * N + n]);
#endif
#if HAS_RES
      y += res[r * P.c + P.d + n];
#endif
#if OUT_PRE
      Y[r * P.a + P.b + n] = y;
#endif
#if OUT_ACT
      A[r * N + n] = act(y);
#endif
    }
  }
}
#endif

#if MODE != 0
const KB: u32 = KB_;
const XNB: u32 = XNB_;

// X of the xtg tiles (MODE 1 binding 0; MODE 2 binding 8) and G (MODE 1 binding 1; MODE 2 binding
// 0, shared with the rows tiles' X).
fn xtgX(i: u32) -> f32 {
#if MODE == 1
  return X[i];
#else
  return XF[i];
#endif
}

fn xtgG(i: u32) -> f32 {
#if MODE == 1
  return B[i];
#else
  return X[i];
#endif
}

// Xtg tile of invocation li (< 8) of tile group j (= k block j / groups + group of column blocks
// j % groups) in slice s; P: the xtg Params. s must be uniform (it bounds the row loop, around the
// broadcasts).
fn xtgTile(P: Params, s: u32, j: u32, li: u32, lane: u32) {
  let K = P.K;
  let N = P.N;
  let nGroups = P.b;
  let k0 = (j / nGroups) * KB;
  let n0 = ((j % nGroups) * 8u + li) * XNB;
  var cols: array<u32, XNB>;
  for (var jj = 0u; jj < XNB; jj++) { cols[jj] = min(n0 + jj, N - 1u); }
#if XSG
  // Lane l loads column k0 + l of X (1 for the bias row K; rows beyond K are never stored).
  let myK = k0 + lane % 8u;
  let myKc = min(myK, max(K, 1u) - 1u);
#else
  var ks: array<u32, KB>;
  for (var i = 0u; i < KB; i++) { ks[i] = min(k0 + i, max(K, 1u) - 1u); }
#endif
  var acc: array<f32, KB * XNB>;
  let r0 = s * P.G;
  let r1 = min(r0 + P.G, P.M);
  for (var r = r0; r < r1; r++) {
    var x: array<f32, KB>;
#if XSG
    let mine = select(1.0, xtgX(r * K + myKc), myK < K);
    // subgroupBroadcast takes a constant lane.
    x[0] = subgroupBroadcast(mine, 0u);
    x[1] = subgroupBroadcast(mine, 1u);
    x[2] = subgroupBroadcast(mine, 2u);
    x[3] = subgroupBroadcast(mine, 3u);
    x[4] = subgroupBroadcast(mine, 4u);
    x[5] = subgroupBroadcast(mine, 5u);
    x[6] = subgroupBroadcast(mine, 6u);
    x[7] = subgroupBroadcast(mine, 7u);
#else
    for (var i = 0u; i < KB; i++) { x[i] = select(1.0, xtgX(r * K + ks[i]), k0 + i < K); }
#endif
    for (var jj = 0u; jj < XNB; jj++) {
      let gv = xtgG(r * N + cols[jj]);
      for (var i = 0u; i < KB; i++) { acc[i * XNB + jj] = fma(x[i], gv, acc[i * XNB + jj]); }
    }
  }
  let base = P.outOffset + s * P.c;
  for (var i = 0u; i < KB; i++) {
    let k = k0 + i;
    let rowAt = select(P.d, k * N, k < K);
    for (var jj = 0u; jj < XNB; jj++) {
      let n = n0 + jj;
      if (k <= K && n < N) { D[base + rowAt + n] = acc[i * XNB + jj]; }
    }
  }
}
#endif

#if MODE == 0
@compute @workgroup_size(WG_)
fn main(@builtin(global_invocation_id) gid: vec3<u32>
#if SG
  , @builtin(subgroup_invocation_id) lane: u32
#endif
) {
#if SG
  rowsTile(U, gid.x, gid.y, lane);
#else
  rowsTile(U, gid.x, gid.y, 0u);
#endif
}
#elif MODE == 1
// Workgroup = 8 invocations = 8 tiles side by side along N, same slice and k block: the X values
// of a row are the same for all of them (XSG: loaded once, one per lane, and broadcast).
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32
#if SG
  , @builtin(subgroup_invocation_id) lane: u32
#endif
) {
  let perSlice = U.b * U.G2;
#if SG
  xtgTile(U, wid.x / perSlice, wid.x % perSlice, li, lane);
#else
  xtgTile(U, wid.x / perSlice, wid.x % perSlice, li, 0u);
#endif
}
#else
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32
#if SG
  , @builtin(subgroup_invocation_id) lane: u32
#endif
) {
#if !SG
  let lane = 0u;
#endif
  // Xtg workgroup b is the first of block b, which starts at b + floor(b nr / nx) (n = nx + nr <=
  // 65535 workgroups, so the products fit in u32): b = floor(w nx / n) or one more.
  let w = wid.x;
  let nx = U.x.f;
  let n = U.r.f;
  let nr = n - nx;
  var b = (w * nx) / n;
  if (b + 1u < nx && b + 1u + ((b + 1u) * nr) / nx <= w) { b += 1u; }
  if (w == b + (b * nr) / nx) {
    let perSlice = U.x.b * U.x.G2;
    xtgTile(U.x, b / perSlice, b % perSlice, li, lane);
  } else {
    let i = w - b - 1u;
    rowsTile(U.r, (i % U.r.e) * 8u + li, i / U.r.e, lane);
  }
}
#endif
