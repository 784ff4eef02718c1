// Special functions in f32, the GPU mirror of the float64 helpers in src/physics/sfh.ts.
//
// WGSL has exp/log (accurate to a few ulp away from cancellation) but no expm1, log1p or error
// functions. Everything here is evaluated so that no result is a difference of nearly equal
// numbers; relative accuracy ~1e-7 (a few f32 ulp) unless stated. Arguments are finite (WGSL lets
// implementations assume no inf/NaN): callers pass flags where the float64 reference uses ±Infinity.
// test/kernels/synthWeights.test.ts checks each function against the float64 reference.

const SP_LN2: f32 = 0.6931471805599453;
const SP_SQRT1_2: f32 = 0.7071067811865476;
const SP_LN_SQRT_2PI: f32 = 0.9189385332046728;
const SP_LOG2_10: f32 = 3.321928094887362;
// An opaque 1.0. Shader compilers may apply algebraic identities to float arithmetic that are
// false in floating point (Mesa's NIR folds x - ((1 + x) - 1) and the TwoSum error term to 0), which
// silently destroys compensated arithmetic: a rounded sum must pass through opaque() before
// anything is subtracted from it. A kernel that relies on it sets SP_ONE from a uniform
// (= 1.0) at entry; opaque(x) = x * SP_ONE is then exact but cannot be folded.
var<private> SP_ONE: f32 = 1.0;

fn opaque(x: f32) -> f32 {
  return x * SP_ONE;
}

// Largest argument given to exp() where an overflow would turn into inf (e^80 ~ 5.5e34).
const SP_EXP_CAP: f32 = 80.0;

// exp(x) clamped to e^80, so that scaled intermediate quantities never become inf.
fn exp_capped(x: f32) -> f32 {
  return exp(min(x, SP_EXP_CAP));
}

// e^x - 1. |x| <= 1/2: nested Taylor series y(1 + y/2(1 + y/3(...(1 + y/10)))) (truncation
// 0.5^10/11! < 3e-11 relative); 1/2 < |x| < 2: the series at x/2 or x/4, doubled back with
// e^{2y} - 1 = (e^y - 1)(e^y + 1) (no cancellation, ~1 ulp per step); |x| >= 2: exp(x) - 1, which
// loses at most a factor 1.16 (x >= 2) and nothing for x <= -2 (result in [-1, -0.86]).
fn expm1_f(x: f32) -> f32 {
  let ax = abs(x);
  if (ax >= 2.0) {
    return exp(x) - 1.0;
  }
  var y = x;
  var k = 0;
  if (ax > 1.0) {
    y = 0.25 * x;
    k = 2;
  } else if (ax > 0.5) {
    y = 0.5 * x;
    k = 1;
  }
  var t = 1.0 + y * (1.0 / 10.0);
  t = 1.0 + y * (1.0 / 9.0) * t;
  t = 1.0 + y * (1.0 / 8.0) * t;
  t = 1.0 + y * (1.0 / 7.0) * t;
  t = 1.0 + y * (1.0 / 6.0) * t;
  t = 1.0 + y * (1.0 / 5.0) * t;
  t = 1.0 + y * (1.0 / 4.0) * t;
  t = 1.0 + y * (1.0 / 3.0) * t;
  t = 1.0 + y * 0.5 * t;
  var e = y * t;
  for (var i = 0; i < k; i++) {
    e = e * (e + 2.0);
  }
  return e;
}

// 2 atanh(s) = ln((1+s)/(1-s)) by its all-odd series, for |s| <= 0.172 (s^2 <= 0.0295: the
// first omitted term s^15/15 is < 4e-13 relative).
fn log_atanh_series(s: f32) -> f32 {
  let s2 = s * s;
  var p = 1.0 / 13.0;
  p = 1.0 / 11.0 + s2 * p;
  p = 1.0 / 9.0 + s2 * p;
  p = 1.0 / 7.0 + s2 * p;
  p = 1.0 / 5.0 + s2 * p;
  p = 1.0 / 3.0 + s2 * p;
  p = 1.0 + s2 * p;
  return 2.0 * s * p;
}

// ln(1 + x) for x > -1, accurate in relative terms for tiny x. |x| < 1/4: 2 atanh(x/(2+x)).
// Otherwise u = 1 + x is split as m 2^e with m in [1/sqrt2, sqrt2) (frexp), ln m from the atanh
// series, and the rounding of 1 + x restored to first order by (x - (u - 1))/u (fdlibm's scheme).
fn log1p_f(x: f32) -> f32 {
  if (abs(x) < 0.25) {
    return log_atanh_series(x / (2.0 + x));
  }
  let u = opaque(1.0 + x);
  let c = (x - (u - 1.0)) / u;
  let fr = frexp(u);
  var m = fr.fract;
  var e = f32(fr.exp);
  if (m < SP_SQRT1_2) {
    m = 2.0 * m;
    e = e - 1.0;
  }
  return e * SP_LN2 + log_atanh_series((m - 1.0) / (m + 1.0)) + c;
}

// 10^x, with the integer part of x applied exactly (powers of ten up to 1e10 are exact in f32) and
// 10^frac from exp2: relative error ~2e-7 instead of pow()'s |x| ln10 ulp.
fn pow10_f(x: f32) -> f32 {
  let n = floor(x);
  var r = exp2((x - n) * SP_LOG2_10);
  var k = i32(n);
  if (k >= 0) {
    for (; k >= 10; k -= 10) { r = r * 1e10; }
    for (; k > 0; k--) { r = r * 10.0; }
  } else {
    k = -k;
    for (; k >= 10; k -= 10) { r = r / 1e10; }
    for (; k > 0; k--) { r = r / 10.0; }
  }
  return r;
}

// erfcx(x) = e^{x^2} erfc(x) for x >= 0: erfcx(x) = t exp(P(s)), t = 2/(2+x), s = 2t - 1 =
// (2-x)/(2+x) in (-1, 1], P a 14-term Chebyshev series of ln(erfcx(x)/t) (the Numerical Recipes
// erfccheb idea; coefficients fitted here by Chebyshev interpolation at 200 nodes of the float64
// erfcx of src/physics/sfh.ts, truncation error 1.2e-9 absolute in P). Relative accuracy ~1e-7
// for every x >= 0, with no cancellation anywhere (t exp(P) are products of positive numbers).
const ERFCX_CHEB = array<f32, 14>(
  -0.6513268599, 0.6419697924, 0.01947647320, -0.009561514787, -0.0009465953445, 0.0003668394979,
  0.00004252332481, -0.00002027857811, -0.000001624290005, 0.000001303655836, 1.562644171e-8,
  -8.523809633e-8, 6.529054524e-9, 5.059343644e-9);

fn erfcx_f(x: f32) -> f32 {
  let t = 2.0 / (2.0 + x);
  let s = (2.0 - x) / (2.0 + x);
  // Clenshaw recurrence for sum_k c_k T_k(s).
  var b1 = 0.0;
  var b2 = 0.0;
  for (var k = 13; k >= 1; k--) {
    let b = 2.0 * s * b1 - b2 + ERFCX_CHEB[k];
    b2 = b1;
    b1 = b;
  }
  return t * exp(s * b1 - b2 + ERFCX_CHEB[0]);
}

// erfc(x): e^{-x^2} erfcx(x) for x >= 0 (relative accuracy down to underflow, x ~ 9.2), 2 - erfc(-x) below.
fn erfc_f(x: f32) -> f32 {
  if (x < 0.0) {
    return 2.0 - exp(-x * x) * erfcx_f(-x);
  }
  return exp(-x * x) * erfcx_f(x);
}

// erf(x): the alternating Maclaurin series for |x| < 1/2 (x^2 < 1/4; 8 terms, truncation < 1e-9
// relative), 1 - erfc(|x|) (>= 0.52, no significant cancellation) beyond.
fn erf_f(x: f32) -> f32 {
  let ax = abs(x);
  if (ax < 0.5) {
    let x2 = x * x;
    // sum_n (-x^2)^n / (n! (2n+1)), Horner with the ratio of consecutive terms.
    var p = 1.0 / 15.0;
    p = 1.0 / 13.0 - x2 * p * (1.0 / 7.0);
    p = 1.0 / 11.0 - x2 * p * (1.0 / 6.0);
    p = 1.0 / 9.0 - x2 * p * (1.0 / 5.0);
    p = 1.0 / 7.0 - x2 * p * (1.0 / 4.0);
    p = 1.0 / 5.0 - x2 * p * (1.0 / 3.0);
    p = 1.0 / 3.0 - x2 * p * (1.0 / 2.0);
    p = 1.0 - x2 * p;
    return 1.1283791670955126 * x * p;
  }
  let r = 1.0 - erfc_f(ax);
  return select(r, -r, x < 0.0);
}

// 8-point Gauss-Legendre rule on [-1, 1]: the non-negative nodes and their weights (the rule is
// symmetric), gaussLegendre(8) of src/physics/sfh.ts to 17 digits.
const GL8_X = array<f32, 4>(0.18343464249564978, 0.52553240991632899, 0.79666647741362684, 0.96028985649753629);
const GL8_W = array<f32, 4>(0.36268378337836199, 0.31370664587788738, 0.22238103445337445, 0.10122853629037679);

// ln(Phi(b) - Phi(a)) + zr^2/2 for the standard normal, a < b, in coordinates relative to a
// reference point zr: a = zr + da, b = zr + db, width = b - a (given separately: the caller knows it
// more accurately than db - da). aInf / bInf mark a = -inf / b = +inf (da, db, width unused then).
// The scaling by e^{zr^2/2} keeps deep tails representable in f32 and -- with da, db computed
// accurately by the caller -- free of the cancellation of -a^2/2 + zr^2/2 between large numbers.
// Branches as lnStandardNormalInterval in src/physics/sfh.ts:
//  - narrow (width max(1,|mid|) <= 1/2): 8-point Gauss-Legendre on phi scaled by its midpoint value;
//  - a >= 0: scaled upper-tail difference Q(a) - Q(b) = Q(a)(1 - r), r <= e^{-1/2};
//  - b <= 0: the mirror image;
//  - straddling 0: 1 - Q(-a) - Q(b) (>= 0.19).
// Any zr is valid; accuracy in the tails needs |zr| <= |a|, |b| on the same side of 0 (callers
// scale to the point of a range closest to the mode).
fn ln_normal_interval_rel(zr: f32, da: f32, db: f32, width: f32, aInf: bool, bInf: bool) -> f32 {
  let a = zr + da;
  let b = zr + db;
  if (!aInf && !bInf) {
    let mid = a + 0.5 * width;
    if (width * max(1.0, abs(mid)) <= 0.5) {
      let h = 0.5 * width;
      var s = 0.0;
      for (var k = 0; k < 4; k++) {
        let d = h * GL8_X[k];
        // phi(mid +- d) / phi(mid) = exp(-d (2 mid +- d) / 2)
        s += GL8_W[k] * (exp(-0.5 * d * (2.0 * mid + d)) + exp(0.5 * d * (2.0 * mid - d)));
      }
      let dm = da + h;  // mid - zr
      return -0.5 * dm * (2.0 * zr + dm) + log(s * h) - SP_LN_SQRT_2PI;
    }
  }
  if (!aInf && a >= 0.0) {
    let ea = erfcx_f(a * SP_SQRT1_2);
    let base = -0.5 * da * (2.0 * zr + da) + log(0.5 * ea);
    if (bInf) {
      return base;
    }
    // (b - a)(b + a) = width (2a + width)
    let r = exp(-0.5 * width * (2.0 * a + width)) * (erfcx_f(b * SP_SQRT1_2) / ea);
    return base + log1p_f(-r);
  }
  if (!bInf && b <= 0.0) {
    let eb = erfcx_f(-b * SP_SQRT1_2);
    let base = -0.5 * db * (2.0 * zr + db) + log(0.5 * eb);
    if (aInf) {
      return base;
    }
    // (-a - (-b))(-a + -b) = width (width - 2b)
    let r = exp(-0.5 * width * (width - 2.0 * b)) * (erfcx_f(-a * SP_SQRT1_2) / eb);
    return base + log1p_f(-r);
  }
  var qa = 0.0;
  var qb = 0.0;
  if (!aInf) {
    qa = 0.5 * erfc_f(-a * SP_SQRT1_2);
  }
  if (!bInf) {
    qb = 0.5 * erfc_f(b * SP_SQRT1_2);
  }
  return log1p_f(-(qa + qb)) + 0.5 * zr * zr;
}
