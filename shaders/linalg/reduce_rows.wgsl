// Row-wise reduction of a rows x cols row-major matrix: out[r] = op(x[r, 0..cols)).
// OP: 0 = sum, 1 = max, 2 = logsumexp (one pass, running max + rescaled sum, so it never
// overflows). WGSL lets implementations assume no infinities, so the identity of max/logsumexp
// is the lowest finite f32: a row of only -inf (or empty) reduces to -3.4028235e38.
// ROW_PER_THREAD: each thread reduces a whole row (short rows, many of them); otherwise one
// workgroup of WG threads per row with a tree reduction in shared memory (long rows).
#include "common/grid.wgsl"

struct Params {
  rows: u32,
  cols: u32,
  gridX: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> P: Params;

const NEG_INF: f32 = -3.4028234e38;

// Running state: m = running max, s = sum (of x for OP 0, of exp(x - m) for OP 2).
struct Acc { m: f32, s: f32 }

fn acc_identity() -> Acc { return Acc(NEG_INF, 0.0); }

fn acc_push(a: Acc, v: f32) -> Acc {
#if OP == 0
  return Acc(a.m, a.s + v);
#elif OP == 1
  return Acc(max(a.m, v), 0.0);
#else
  if (v <= a.m) {
    return Acc(a.m, a.s + exp(v - a.m));
  }
  // New maximum: rescale the old sum (an empty state has s = 0 and contributes nothing).
  return Acc(v, select(a.s * exp(a.m - v), 0.0, a.s == 0.0) + 1.0);
#endif
}

fn acc_combine(a: Acc, b: Acc) -> Acc {
#if OP == 0
  return Acc(a.m, a.s + b.s);
#elif OP == 1
  return Acc(max(a.m, b.m), 0.0);
#else
  let m = max(a.m, b.m);
  let sa = select(a.s * exp(a.m - m), 0.0, a.s == 0.0);
  let sb = select(b.s * exp(b.m - m), 0.0, b.s == 0.0);
  return Acc(m, sa + sb);
#endif
}

fn acc_finish(a: Acc) -> f32 {
#if OP == 0
  return a.s;
#elif OP == 1
  return a.m;
#else
  if (a.s == 0.0) { return a.m; }
  return a.m + log(a.s);
#endif
}

#if ROW_PER_THREAD

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = linear_group(wid, P.gridX) * WG + lid.x;
  if (r >= P.rows) { return; }
  var a = acc_identity();
  let base = r * P.cols;
  for (var c = 0u; c < P.cols; c++) { a = acc_push(a, x[base + c]); }
  out[r] = acc_finish(a);
}

#else

var<workgroup> sm: array<f32, WG>;
var<workgroup> ss: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = linear_group(wid, P.gridX);
  // r is uniform across the workgroup, so the early return keeps barriers in uniform control flow.
  if (r >= P.rows) { return; }
  let base = r * P.cols;
  var a = acc_identity();
  for (var c = lid.x; c < P.cols; c += WG) { a = acc_push(a, x[base + c]); }
  sm[lid.x] = a.m;
  ss[lid.x] = a.s;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid.x < half) {
      let b = acc_combine(Acc(sm[lid.x], ss[lid.x]), Acc(sm[lid.x + half], ss[lid.x + half]));
      sm[lid.x] = b.m;
      ss[lid.x] = b.s;
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) { out[r] = acc_finish(Acc(sm[0], ss[0])); }
}

#endif
