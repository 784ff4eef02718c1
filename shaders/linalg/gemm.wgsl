// Batched tiled GEMM:  C[b] = alpha * op(A[b]) . op(B[b]) (+ beta * C[b]) (+ bias[b] broadcast over rows)
//                                                     (+ R[b], a residual matrix shaped like C, if HAS_RESIDUAL)
//
// Optional activation epilogues (the conditioner MLP's, so that its activations are no separate
// passes; formulas as shaders/nn/activation.wgsl), per element o of C, in this order:
//   out = alpha * acc (+ bias) (+ beta * C[o])
//   ACT_GRAD:      out *= act'(post[o])    post = the forward OUTPUT act(pre): relu' = [post > 0],
//                                          tanh' = 1 - post^2 (binding 7)
//   HAS_RESIDUAL:  out += R[o]             (after the act' multiply: dL/dh = (G W^T) act'(h) + skip)
//   C[o] = out                             unless NO_PRE (then C is not bound; needs beta = 0)
//   ACT:           Aout[o] = act(out)      (binding 6; the forward residual is inside: act(h + R))
// ACT_TANH picks tanh, else relu. R, post and Aout share C's layout and batch stride. Only boolean
// defines: the preprocessor evaluates every condition, also inside false blocks, and a comparison
// on an unset name is an error (callers that predate these defines do not set them).
//
// op(A) is M x K: A stored M x K row-major, or K x M when TRANS_A.
// ONES_ROW (with TRANS_A, no bias / beta / residual / act epilogue): op(A) gets an extra row m = M
// of ones, so output row M = alpha * 1^T op(B) (the column sums of op(B) over K), stored at
// baseC + onesAt + n instead of baseC + M*N + n. A split-K weight gradient X^T G thereby also yields
// its bias partial 1^T G in the same dispatch (src/flow/gpu/network.ts linearWeightGrad). M = 0 is
// allowed then (only the ones row; A is never read).
// op(B) is K x N: B stored K x N row-major, or N x K when TRANS_B.
// A workgroup of WG_X x WG_Y threads computes a BM x BN tile of C (BM = WG_Y*4*TM4, BN = WG_X*4*TN4);
// each thread owns TM4 x TN4 blocks of 4x4, interleaved by WG so that shared-memory reads of
// neighbouring threads are contiguous (no bank conflicts) and global writes are coalesced.
// K is walked in slices of BK; the next slice is prefetched into registers while the current one is
// multiplied from shared memory. Shapes are uniforms (no recompilation per size); out-of-range
// elements load as zero and are never stored, so any M, N, K >= 1 works.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  strideA: u32,     // elements between consecutive batch items (0 = broadcast)
  strideB: u32,
  strideC: u32,
  strideBias: u32,
  alpha: f32,
  beta: f32,
  onesAt: u32,      // ONES_ROW: element offset (per batch item) of the ones row's output
}

#include "common/math.wgsl"

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
#if !NO_PRE
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
#endif
#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<f32>;
#endif
@group(0) @binding(4) var<uniform> P: Params;
#if HAS_RESIDUAL
@group(0) @binding(5) var<storage, read> residual: array<f32>;
#endif
#if ACT
@group(0) @binding(6) var<storage, read_write> Aout: array<f32>;
#endif
#if ACT_GRAD
@group(0) @binding(7) var<storage, read> post: array<f32>;
#endif

fn act(x: f32) -> f32 {
#if ACT_TANH
  return safe_tanh(x);
#else
  return max(x, 0.0);
#endif
}

// g * act'(post); relu as a select (a masked gradient stays 0 even where g is not finite).
fn actGradMul(g: f32, p: f32) -> f32 {
#if ACT_TANH
  return g * (1.0 - p * p);
#else
  return select(0.0, g, p > 0.0);
#endif
}

const WGX: u32 = WG_X;
const WGY: u32 = WG_Y;
const THREADS: u32 = WG_X * WG_Y;
const TM4_: u32 = TM4;
const TN4_: u32 = TN4;
const BM: u32 = WG_Y * 4u * TM4;
const BN: u32 = WG_X * 4u * TN4;
const BKK: u32 = BK;
const LOADS_A: u32 = (BM * BK) / THREADS;
const LOADS_B: u32 = (BN * BK) / THREADS;

// As[k * BM/4 + m4] holds rows 4*m4 .. 4*m4+3 of column k of the A tile (k-major).
var<workgroup> As: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> Bs: array<vec4<f32>, BK * BN / 4u>;

// Element (m, k) of op(A) for this batch item, zero outside the matrix.
fn loadA(base: u32, m: u32, k: u32) -> f32 {
#if ONES_ROW
  if (m > P.M || k >= P.K) { return 0.0; }
  if (m == P.M) { return 1.0; }
#else
  if (m >= P.M || k >= P.K) { return 0.0; }
#endif
#if TRANS_A
  return A[base + k * P.M + m];
#else
  return A[base + m * P.K + k];
#endif
}

fn loadB(base: u32, k: u32, n: u32) -> f32 {
  if (k >= P.K || n >= P.N) { return 0.0; }
#if TRANS_B
  return B[base + n * P.K + k];
#else
  return B[base + k * P.N + n];
#endif
}

// Position inside the tile of the l-th element a thread group loads. The fastest-varying index
// follows the memory layout so that neighbouring threads read neighbouring addresses.
fn tileCoordA(l: u32) -> vec2<u32> {  // (m, k)
#if TRANS_A
  return vec2<u32>(l % BM, l / BM);
#else
  return vec2<u32>(l / BKK, l % BKK);
#endif
}

fn tileCoordB(l: u32) -> vec2<u32> {  // (k, n)
#if TRANS_B
  return vec2<u32>(l % BKK, l / BKK);
#else
  return vec2<u32>(l / BN, l % BN);
#endif
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tx = lid.x;
  let ty = lid.y;
  let tid = ty * WGX + tx;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let batch = wid.z;
  let baseA = batch * P.strideA;
  let baseB = batch * P.strideB;
  let baseC = batch * P.strideC;

  var acc: array<vec4<f32>, TM4 * 4u * TN4>;
  for (var i = 0u; i < TM4_ * 4u * TN4_; i++) { acc[i] = vec4<f32>(0.0); }

  var ra: array<f32, LOADS_A>;
  var rb: array<f32, LOADS_B>;
  let numTiles = (P.K + BKK - 1u) / BKK;

  // Prefetch slice 0.
  for (var e = 0u; e < LOADS_A; e++) {
    let c = tileCoordA(e * THREADS + tid);
    ra[e] = loadA(baseA, row0 + c.x, c.y);
  }
  for (var e = 0u; e < LOADS_B; e++) {
    let c = tileCoordB(e * THREADS + tid);
    rb[e] = loadB(baseB, c.x, col0 + c.y);
  }

  for (var t = 0u; t < numTiles; t++) {
    // Registers -> shared memory.
    for (var e = 0u; e < LOADS_A; e++) {
      let c = tileCoordA(e * THREADS + tid);
      As[c.y * (BM / 4u) + c.x / 4u][c.x % 4u] = ra[e];
    }
    for (var e = 0u; e < LOADS_B; e++) {
      let c = tileCoordB(e * THREADS + tid);
      Bs[c.x * (BN / 4u) + c.y / 4u][c.y % 4u] = rb[e];
    }
    workgroupBarrier();

    // Prefetch the next slice while this one is multiplied.
    if (t + 1u < numTiles) {
      let k0 = (t + 1u) * BKK;
      for (var e = 0u; e < LOADS_A; e++) {
        let c = tileCoordA(e * THREADS + tid);
        ra[e] = loadA(baseA, row0 + c.x, k0 + c.y);
      }
      for (var e = 0u; e < LOADS_B; e++) {
        let c = tileCoordB(e * THREADS + tid);
        rb[e] = loadB(baseB, k0 + c.x, col0 + c.y);
      }
    }

    for (var kk = 0u; kk < BKK; kk++) {
      var a: array<vec4<f32>, TM4>;
      var b: array<vec4<f32>, TN4>;
      for (var i = 0u; i < TM4_; i++) { a[i] = As[kk * (BM / 4u) + i * WGY + ty]; }
      for (var j = 0u; j < TN4_; j++) { b[j] = Bs[kk * (BN / 4u) + j * WGX + tx]; }
      for (var i = 0u; i < TM4_; i++) {
        for (var r = 0u; r < 4u; r++) {
          let av = vec4<f32>(a[i][r]);
          for (var j = 0u; j < TN4_; j++) {
            let idx = (i * 4u + r) * TN4_ + j;
            acc[idx] = fma(av, b[j], acc[idx]);
          }
        }
      }
    }
    workgroupBarrier();
  }

  // Epilogue: alpha, bias, beta*C, act', residual, act (header); only in-range elements are written.
  for (var i = 0u; i < TM4_; i++) {
    for (var r = 0u; r < 4u; r++) {
      let m = row0 + (i * WGY + ty) * 4u + r;
#if ONES_ROW
      if (m > P.M) { continue; }
      // Row M (the ones row) goes to onesAt; the elements between M*N and onesAt are not touched.
      let rowAt = select(m * P.N, P.onesAt, m == P.M);
#else
      if (m >= P.M) { continue; }
#endif
      for (var j = 0u; j < TN4_; j++) {
        let v = acc[(i * 4u + r) * TN4_ + j];
        for (var c = 0u; c < 4u; c++) {
          let n = col0 + (j * WGX + tx) * 4u + c;
          if (n >= P.N) { continue; }
#if ONES_ROW
          let o = baseC + rowAt + n;
#else
          let o = baseC + m * P.N + n;
#endif
          var out = P.alpha * v[c];
#if HAS_BIAS
          out += bias[batch * P.strideBias + n];
#endif
#if BETA
          if (P.beta != 0.0) { out += P.beta * C[o]; }
#endif
#if ACT_GRAD
          out = actGradMul(out, post[o]);
#endif
#if HAS_RESIDUAL
          out += residual[o];
#endif
#if !NO_PRE
          C[o] = out;
#endif
#if ACT
          Aout[o] = act(out);
#endif
        }
      }
    }
  }
}
