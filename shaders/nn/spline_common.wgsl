// Unconstrained monotonic rational-quadratic spline with linear (identity) tails on [-B, B]:
// the f32 mirror of src/flow/spline.ts (nflows `unconstrained_rational_quadratic_spline`,
// tails = "linear"). One scalar per call; the knots are recomputed from the raw parameters, so a
// thread needs no per-scalar scratch beyond registers.
//
// The includer defines BINS (a u32 literal, e.g. `10u`: K, the number of bins) and
//   fn rq_raw(i: u32) -> f32          raw parameter i (a storage buffer or a workgroup copy):
//                                      3 BINS - 1 per scalar, BINS width logits, BINS height logits,
//                                      BINS - 1 interior derivative logits
//   fn rq_grad_out(i: u32, v: f32)    (RQ_GRAD only) stores the gradient of raw parameter i
//
// Knots (q_0 = -B, q_K = B forced, as nflows):
//   frac_i = minF + (1 - minF K) softmax(logitScale raw_i),  q_k = 2 B sum_{i<k} frac_i - B
//   d_0 = d_K = 1, d_k = minD + softplus(raw_{2K + k - 1}) for k = 1 .. K-1
// Bin of v: the number of interior knots q_1 .. q_{K-1} that are <= v (searchsorted).
// Numerical safety: softmax with max subtraction (exp of non-positive arguments only), softplus
// as max(r, 0) + log1p(exp(-|r|)) with an accurate log1p, xi clamped to [0, 1] against division
// rounding (2.5 ulp in WGSL); the inverse solves the same quadratic as the reference through a
// cancellation-free form of its discriminant (see rq_inverse), scaled by an exact power of two.
#include "common/math.wgsl"

struct RqSpec {
  bound: f32,
  minW: f32,
  minH: f32,
  minD: f32,
  logitScale: f32,
}

struct RqResult {
  out: f32,
  // log f'(x) of the FORWARD map at the input (forward) or at the output (inverse).
  logdet: f32,
}

alias RqVec = array<f32, BINS>;

// Bin k of a value and the knots around it: q0 = q_k, q1 = q_{k+1}.
struct RqBin {
  k: u32,
  q0: f32,
  q1: f32,
}

// log(1 + e) for e in [0, 1] to ~1e-9 relative: 2 atanh(z), z = e / (2 + e) in [0, 1/3], series to
// z^15 (the next term, z^17 / 17, is below 2e-9 of the sum). Unlike log(1 + e) it keeps full relative
// precision for tiny e, which matters for d = minD + softplus(r) with r << 0 (d ~ minD).
fn rq_log1p01(e: f32) -> f32 {
  let z = e / (2.0 + e);
  let z2 = z * z;
  var p = 1.0 / 15.0;
  p = p * z2 + 1.0 / 13.0;
  p = p * z2 + 1.0 / 11.0;
  p = p * z2 + 1.0 / 9.0;
  p = p * z2 + 1.0 / 7.0;
  p = p * z2 + 1.0 / 5.0;
  p = p * z2 + 1.0 / 3.0;
  p = p * z2 + 1.0;
  return 2.0 * z * p;
}

fn rq_softplus(r: f32) -> f32 {
  return max(r, 0.0) + rq_log1p01(exp(-abs(r)));
}

// softmax(logitScale raw[off .. off + BINS)) as the reference computes it: exp(z_i - max z) / sum.
// Computed once per scalar and kept in registers (BINS is a compile-time constant).
fn rq_softmax(off: u32, scale: f32) -> RqVec {
  var e: RqVec;
  var m = rq_raw(off) * scale;
  for (var i = 1u; i < BINS; i++) {
    m = max(m, rq_raw(off + i) * scale);
  }
  var s = 0.0;
  for (var i = 0u; i < BINS; i++) {
    e[i] = exp(rq_raw(off + i) * scale - m);
    s += e[i];
  }
  for (var i = 0u; i < BINS; i++) {
    e[i] = e[i] / s;
  }
  return e;
}

// Bin of v among the knots of the softmax shares sm (v inside [-B, B]).
fn rq_search(sm: RqVec, minF: f32, B: f32, v: f32) -> RqBin {
  let fs = 1.0 - minF * f32(BINS);
  var acc = 0.0;
  var k = 0u;
  var q0 = -B;
  var q1 = B;
  for (var i = 1u; i < BINS; i++) {
    acc += minF + fs * sm[i - 1u];
    let q = 2.0 * B * acc - B;
    // Knots increase, so the last one <= v is q_k and the first one > v is q_{k+1}.
    if (v >= q) {
      k = i;
      q0 = q;
    } else {
      q1 = min(q1, q);
    }
  }
  return RqBin(k, q0, q1);
}

// Knots q_k and q_{k+1} of the softmax shares sm for a given bin k.
fn rq_pair(sm: RqVec, minF: f32, B: f32, k: u32) -> vec2<f32> {
  let fs = 1.0 - minF * f32(BINS);
  var acc = 0.0;
  var q0 = -B;
  var q1 = B;
  for (var i = 1u; i < BINS; i++) {
    acc += minF + fs * sm[i - 1u];
    let q = 2.0 * B * acc - B;
    q0 = select(q0, q, i == k);
    q1 = select(q1, q, i == k + 1u);
  }
  return vec2<f32>(q0, q1);
}

// Knot derivative d_k of the scalar whose parameters start at raw[off].
fn rq_deriv(off: u32, k: u32, minD: f32) -> f32 {
  if (k == 0u || k >= BINS) { return 1.0; }
  return minD + rq_softplus(rq_raw(off + 2u * BINS + k - 1u));
}

fn rq_inside(v: f32, B: f32) -> bool {
  return v >= -B && v <= B;
}

// Forward y = f(x), log f'(x).
fn rq_forward(x: f32, off: u32, sp: RqSpec) -> RqResult {
  let B = sp.bound;
  if (!rq_inside(x, B)) { return RqResult(x, 0.0); }
  let smW = rq_softmax(off, sp.logitScale);
  let smH = rq_softmax(off + BINS, sp.logitScale);
  let bin = rq_search(smW, sp.minW, B, x);
  let k = bin.k;
  let hq = rq_pair(smH, sp.minH, B, k);
  let x0 = bin.q0;
  let w = bin.q1 - x0;
  let y0 = hq.x;
  let h = hq.y - y0;
  let s = h / w;
  let d0 = rq_deriv(off, k, sp.minD);
  let d1 = rq_deriv(off, k + 1u, sp.minD);
  let xi = clamp((x - x0) / w, 0.0, 1.0);
  let om = 1.0 - xi;
  let t = xi * om;
  let num = h * (s * xi * xi + d0 * t);
  let den = s + (d0 + d1 - 2.0 * s) * t;
  let dnum = s * s * (d1 * xi * xi + 2.0 * s * t + d0 * om * om);
  // y is in [-B, B] mathematically; the clamp stops a last-ulp overshoot at x = B being a tail value.
  return RqResult(clamp(y0 + num / den, -B, B), log(dnum) - 2.0 * log(den));
}

// Inverse x = f^-1(y) and log f'(x) (the FORWARD log-derivative at the result; the reference's
// splineInverse returns its negative, log|dx/dy|).
fn rq_inverse(y: f32, off: u32, sp: RqSpec) -> RqResult {
  let B = sp.bound;
  if (!rq_inside(y, B)) { return RqResult(y, 0.0); }
  let smW = rq_softmax(off, sp.logitScale);
  let smH = rq_softmax(off + BINS, sp.logitScale);
  let bin = rq_search(smH, sp.minH, B, y);
  let k = bin.k;
  let wq = rq_pair(smW, sp.minW, B, k);
  let x0 = wq.x;
  let w = wq.y - x0;
  let y0 = bin.q0;
  let h = bin.q1 - y0;
  let s = h / w;
  let d0 = rq_deriv(off, k, sp.minD);
  let d1 = rq_deriv(off, k + 1u, sp.minD);
  // The root xi in [0, 1] of a xi^2 + b xi + c = 0 (reference: a = h (s - d0) + p sum,
  // b = h d0 - p sum, c = -s p, sum = d0 + d1 - 2 s, p = y - y0). With q = y1 - y = h - p:
  //   b = dl + 2 s p,  b^2 - 4 a c = dl^2 + 4 s^2 p q,  dl = d0 q - d1 p,
  // so xi = 2 s p / (b + sqrt(disc)) = 2 s p / (2 s p + dl + r), r = sqrt(dl^2 + 4 s^2 p q), and for
  // dl < 0, dl + r = 4 s^2 p q / (r - dl). Every sum is of non-negative terms: the reference's
  // b^2 - 4ac cancels catastrophically in f32 where s >> d (e.g. 4 s^2 h^2 - 4 s^2 h^2 + h^2 d1^2
  // at the top of a steep bin: 1e-4 errors in u for s ~ 1e3).
  let p = y - y0;
  let q = max(bin.q1 - y, 0.0);
  let sum = d0 + d1 - 2.0 * s;
  // Scale by an exact power of two so that squares cannot overflow for huge derivatives.
  let ex = frexp(max(max(d0 * q, d1 * p), s * max(p, q))).exp;
  let dl = ldexp(d0 * q, -ex) - ldexp(d1 * p, -ex);
  let spx = ldexp(s * p, -ex);
  let sqx = ldexp(s * q, -ex);
  let r = sqrt(dl * dl + 4.0 * spx * sqx);
  let dlr = select(dl + r, (4.0 * spx * sqx) / (r - dl), dl < 0.0);
  let xi = clamp((2.0 * spx) / (2.0 * spx + dlr), 0.0, 1.0);
  let om = 1.0 - xi;
  let t = xi * om;
  let den = s + sum * t;
  let dnum = s * s * (d1 * xi * xi + 2.0 * s * t + d0 * om * om);
  return RqResult(clamp(xi * w + x0, -B, B), log(dnum) - 2.0 * log(den));
}

#if RQ_GRAD
// Backward of rq_forward for one scalar: given gY = dL/dy and gL = dL/dlog f'(x), stores dL/draw
// through rq_grad_out(goff .. goff + 3 BINS - 1) and
// returns dL/dx. Term by term the derivation of splineBackwardScalar in src/flow/spline.ts; the
// per-bin gradients of the softmax backward are (gX0 for j < k, gW for j = k, 0 for j > k) for the
// widths and (gY for j < k, gH for j = k, 0) for the heights, so no K-vectors are stored.
// Outside [-B, B]: dL/dx = gY and zero parameter gradients.
// goff may equal off over one shared array: each raw parameter is read before its own gradient
// slot is written (the softmaxes and d_k, d_{k+1} first, each derivative logit just before its slot).
fn rq_backward(x: f32, off: u32, sp: RqSpec, gY: f32, gL: f32, goff: u32) -> f32 {
  let B = sp.bound;
  if (!rq_inside(x, B)) {
    for (var i = 0u; i < 3u * BINS - 1u; i++) { rq_grad_out(goff + i, 0.0); }
    return gY;
  }
  let scale = sp.logitScale;
  let smW = rq_softmax(off, scale);
  let smH = rq_softmax(off + BINS, scale);
  let bin = rq_search(smW, sp.minW, B, x);
  let k = bin.k;
  let hq = rq_pair(smH, sp.minH, B, k);
  let x0 = bin.q0;
  let w = bin.q1 - x0;
  let y0 = hq.x;
  let h = hq.y - y0;
  let s = h / w;
  let d0 = rq_deriv(off, k, sp.minD);
  let d1 = rq_deriv(off, k + 1u, sp.minD);
  let xi = clamp((x - x0) / w, 0.0, 1.0);
  let om = 1.0 - xi;
  let t = xi * om;
  let sum = d0 + d1 - 2.0 * s;
  let N = s * xi * xi + d0 * t;
  let D = s + sum * t;
  let M = d1 * xi * xi + 2.0 * s * t + d0 * om * om;
  let D2 = D * D;
  let Np = 2.0 * s * xi + d0 * (1.0 - 2.0 * xi);
  let Dp = sum * (1.0 - 2.0 * xi);
  let Mp = 2.0 * d1 * xi + 2.0 * s * (1.0 - 2.0 * xi) - 2.0 * d0 * om;

  let gXi = gY * ((h * (Np * D - N * Dp)) / D2) + gL * (Mp / M - (2.0 * Dp) / D);
  let gS = gY * ((h * (xi * xi * D - N * (1.0 - 2.0 * t))) / D2) + gL * (2.0 / s + (2.0 * t) / M - (2.0 * (1.0 - 2.0 * t)) / D);
  let gD0 = gY * ((h * t * (D - N)) / D2) + gL * ((om * om) / M - (2.0 * t) / D);
  let gD1 = gY * ((-h * t * N) / D2) + gL * ((xi * xi) / M - (2.0 * t) / D);
  let gY0 = gY;
  let gH = gY * (N / D) + gS / w;
  let gW = (-gS * s) / w - (gXi * xi) / w;
  let gX0 = -gXi / w;
  let gX = gXi / w;

  // Softmax backward: ga_i = factor sm_i (g_i - sum_j sm_j g_j).
  let fW = 2.0 * B * (1.0 - sp.minW * f32(BINS)) * scale;
  let fH = 2.0 * B * (1.0 - sp.minH * f32(BINS)) * scale;
  var dotW = 0.0;
  var dotH = 0.0;
  for (var j = 0u; j < BINS; j++) {
    let gw = select(select(0.0, gW, j == k), gX0, j < k);
    let gh = select(select(0.0, gH, j == k), gY0, j < k);
    dotW += smW[j] * gw;
    dotH += smH[j] * gh;
  }
  for (var i = 0u; i < BINS; i++) {
    let gw = select(select(0.0, gW, i == k), gX0, i < k);
    let gh = select(select(0.0, gH, i == k), gY0, i < k);
    rq_grad_out(goff + i, fW * smW[i] * (gw - dotW));
    rq_grad_out(goff + BINS + i, fH * smH[i] * (gh - dotH));
  }
  // Interior derivative d_i (i = 1 .. K-1) at raw[off + 2K + i - 1]; dd/dr = sigmoid(r).
  for (var i = 1u; i < BINS; i++) {
    let r = rq_raw(off + 2u * BINS + i - 1u);
    let g = select(select(0.0, gD1, i == k + 1u), gD0, i == k);
    rq_grad_out(goff + 2u * BINS + i - 1u, g * sigmoid(r));
  }
  return gX;
}
#endif
