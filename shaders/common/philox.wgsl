// Philox4x32-10 counter-based random numbers (Salmon et al. 2011, Random123 constants), bit-identical
// to src/simulate/rng.ts (see its doc for the stream convention):
//   key     = (seed lo, seed hi)
//   counter = (index lo, index hi, purpose, sub << 16 | block)
// A `Philox` stream hands out the 4 words of block 0, then block 1, ... of its sub-stream.
// Floats: philox_unit(w) = (w >> 9 + 0.5) * 2^-23, strictly inside (0, 1) and exact in f32.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const PHILOX_PI: f32 = 3.14159265358979;
const PHILOX_GAMMA_MAX_TRIES: u32 = 32u;

// High word of a * b from 16-bit halves (no 64-bit integers in WGSL).
fn philox_mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xFFFFu;
  let ah = a >> 16u;
  let bl = b & 0xFFFFu;
  let bh = b >> 16u;
  let p = al * bl;
  let m1 = ah * bl;
  let m2 = al * bh;
  let mid = (p >> 16u) + (m1 & 0xFFFFu) + (m2 & 0xFFFFu);
  return ah * bh + (m1 >> 16u) + (m2 >> 16u) + (mid >> 16u);
}

fn philox4x32_10(ctr_in: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
  var c = ctr_in;
  var k = key_in;
  for (var r = 0u; r < 10u; r = r + 1u) {
    let hi0 = philox_mulhi(PHILOX_M0, c.x);
    let lo0 = PHILOX_M0 * c.x;
    let hi1 = philox_mulhi(PHILOX_M1, c.z);
    let lo1 = PHILOX_M1 * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
  }
  return c;
}

struct Philox {
  key: vec2<u32>,
  ctr: vec4<u32>,
  buf: vec4<u32>,
  pos: u32,
}

// Stream (seed, purpose, index, sub); seed and index as (lo, hi) words.
fn philox_stream(seed: vec2<u32>, purpose: u32, index: vec2<u32>, sub: u32) -> Philox {
  return Philox(seed, vec4<u32>(index.x, index.y, purpose, sub << 16u), vec4<u32>(0u), 4u);
}

fn philox_next(s: ptr<function, Philox>) -> u32 {
  if ((*s).pos >= 4u) {
    (*s).buf = philox4x32_10((*s).ctr, (*s).key);
    (*s).ctr.w = (*s).ctr.w + 1u;
    (*s).pos = 0u;
  }
  let w = (*s).buf[(*s).pos];
  (*s).pos = (*s).pos + 1u;
  return w;
}

fn philox_unit(w: u32) -> f32 {
  return (f32(w >> 9u) + 0.5) * 1.1920928955078125e-7;
}

fn philox_uniform(s: ptr<function, Philox>) -> f32 {
  return philox_unit(philox_next(s));
}

// -ln(u) for u in (0, 1) with a small relative error everywhere: WGSL's log is only absolutely
// accurate on [0.5, 2] (2^-21), which is a large relative error of -ln u for u near 1. There,
// t = 1 - u is exact (u lies on the 2^-24 grid) and -ln(1 - t) = 2 atanh(s), s = t / (2 - t) <= 1/3,
// summed to s^19 (truncation < 2e-10 relative). Below 0.5 the f32 log is accurate to 3 ulp.
fn philox_neg_log(u: f32) -> f32 {
  if (u > 0.5) { return neg_log1m_series(1.0 - u); }
  return -log(u);
}

// -ln(1 - t) for t in [0, 1/2] = 2 atanh(s), s = t / (2 - t) <= 1/3, summed to s^19.
fn neg_log1m_series(t: f32) -> f32 {
  let q = t / (2.0 - t);
  let q2 = q * q;
  var p = 1.0 / 19.0;
  p = 1.0 / 17.0 + q2 * p;
  p = 1.0 / 15.0 + q2 * p;
  p = 1.0 / 13.0 + q2 * p;
  p = 1.0 / 11.0 + q2 * p;
  p = 1.0 / 9.0 + q2 * p;
  p = 1.0 / 7.0 + q2 * p;
  p = 0.2 + q2 * p;
  p = 1.0 / 3.0 + q2 * p;
  p = 1.0 + q2 * p;
  return 2.0 * q * p;
}

// cos(pi t) for t in [-1, 1] to ~1e-7 absolute on every device. WGSL leaves cos's accuracy to the
// implementation (SwiftShader's was ~2e-4 off, lavapipe's exact), which made Box-Muller draws differ
// across GPUs; a fixed polynomial makes them agree to f32 rounding. |t| is folded to u in [0, 1/2]
// (cos(pi u') = -cos(pi (1 - u')), exact by Sterbenz), then Taylor series of cos (u <= 1/4) or of
// sin(pi (1/2 - u)), both for |x| <= pi/4: truncation below 2e-9.
fn philox_cos_pi(t: f32) -> f32 {
  let a = abs(t);
  let flip = a > 0.5;
  let u = select(a, 1.0 - a, flip);
  var r: f32;
  if (u <= 0.25) {
    let x = PHILOX_PI * u;
    let x2 = x * x;
    r = 1.0 + x2 * (-0.5 + x2 * (1.0 / 24.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40320.0 + x2 * (-1.0 / 3628800.0)))));
  } else {
    let x = PHILOX_PI * (0.5 - u);
    let x2 = x * x;
    r = x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362880.0)))));
  }
  return select(r, -r, flip);
}

// Box-Muller from two words: -sqrt(-2 ln u1) cos(pi (2 u2 - 1)) (= r cos(2 pi u2), argument in (-pi, pi)).
fn philox_normal(s: ptr<function, Philox>) -> f32 {
  let u1 = philox_uniform(s);
  let u2 = philox_uniform(s);
  return -sqrt(2.0 * philox_neg_log(u1)) * philox_cos_pi(2.0 * u2 - 1.0);
}

fn philox_exponential(s: ptr<function, Philox>) -> f32 {
  return philox_neg_log(philox_uniform(s));
}

// ln Gamma(a, 1) variate for a >= 1 (a != 1): Marsaglia & Tsang with at most PHILOX_GAMMA_MAX_TRIES tries.
fn philox_log_gamma_mt(s: ptr<function, Philox>, a: f32) -> f32 {
  let d = a - 1.0 / 3.0;
  let c = 1.0 / sqrt(9.0 * d);
  for (var t = 0u; t < PHILOX_GAMMA_MAX_TRIES; t = t + 1u) {
    let x = philox_normal(s);
    let v0 = 1.0 + c * x;
    if (v0 <= 0.0) { continue; }
    let v = v0 * v0 * v0;
    let u = philox_uniform(s);
    let x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) { return log(d * v); }
    if (log(u) < 0.5 * x2 + d * (1.0 - v + log(v))) { return log(d * v); }
  }
  return log(d);
}

// ln of a Gamma(shape, 1) variate: shape = 1 exact exponential, shape < 1 by the boost u^(1/a).
fn philox_log_gamma(s: ptr<function, Philox>, shape: f32) -> f32 {
  if (shape == 1.0) { return log(philox_exponential(s)); }
  if (shape < 1.0) {
    let g = philox_log_gamma_mt(s, shape + 1.0);
    return g - philox_neg_log(philox_uniform(s)) / shape;
  }
  return philox_log_gamma_mt(s, shape);
}

fn philox_gamma(s: ptr<function, Philox>, shape: f32) -> f32 {
  return exp(philox_log_gamma(s, shape));
}
