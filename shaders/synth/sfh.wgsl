// Star-formation histories integrated over age bins: the f32 GPU mirror of src/physics/sfh.ts.
// One family per compile (SFH_FAMILY, codes of SFH_FAMILY_CODES in src/simulate/canonical.ts):
//   0 constant  1 exponential  2 delayedExponential  3 logNormal  4 doublePowerLaw  5 quantiles
// Slots (canonical row s0..s3, passed as a vec4): see canonical.ts.
//
// Interface (every family):
//   sfh_init(s: vec4<f32>, maxAgeYr: f32, topEdgeYr: f32)  per-galaxy setup into the private SFH
//   sfh_mass_scaled(lo: vec2<f32>, hi: vec2<f32>) -> f32
//       C * (fraction of the formed mass with lookback ages in [lo, hi]), clipped to the support as
//       massFractionBetween; lo, hi are two-float ages (value = x + y).
//   SFH.support (yr), SFH.lnScale = ln C.
// The per-galaxy constant C is chosen per family so that the bins inside the grid's covered range
// [0, min(support, topEdgeYr)] neither underflow nor overflow in f32 even when the float64
// reference's fractions are far below 1e-38 (an SFH mostly beyond the oldest grid age); the bins
// are normalised by their sum, so C cancels exactly as the reference's coveredFraction does, and
// coveredFraction = sum * exp(-lnScale).
//
// The closed forms are those of sfh.ts, with the same cancellation-free structure. Where f32 would
// lose what float64 keeps, the formulation is shifted, never approximated differently:
//  - ages are two-float values and every difference of ages (bin widths, start - age, maxAge - age)
//    is formed before rounding (df_diff), so narrow bins near a large age stay exact;
//  - exponents are written relative to a reference point (logNormal: the point of the covered
//    range closest to the mode; doublePowerLaw: its peak), so no exponent is the difference of two
//    large rounded numbers (the reference's -a^2/2 - lnTotal, p u + ell with ell ~ -p u);
//  - compensated steps (TwoSum, TwoProduct) go through opaque() (common/special.wgsl): shader
//    compilers apply real-number identities to floats (Mesa folds (a + b) - a to b), and the kernel
//    sets SP_ONE from a uniform so that they cannot.
#include "common/special.wgsl"

// ---------------------------------------------------------------------------------------------
// Two-float values: v = x + y with |y| <= ulp(x)/2 (ages from a float64 grid).
// ---------------------------------------------------------------------------------------------

fn df(x: f32) -> vec2<f32> {
  return vec2<f32>(x, 0.0);
}

// a - b rounded to f32, accurate to ~1 ulp of the result even when a ~ b (the high parts cancel
// exactly by Sterbenz' lemma before the low parts are added).
fn df_diff(a: vec2<f32>, b: vec2<f32>) -> f32 {
  return (a.x - b.x) + (a.y - b.y);
}

// Dekker's TwoProduct (Veltkamp splitting, no FMA needed): a b = p + e exactly.
fn split_f(a: f32) -> vec2<f32> {
  let c = opaque(4097.0 * a);
  let hi = opaque(c - opaque(c - a));
  return vec2<f32>(hi, a - hi);
}

fn two_prod(a: f32, b: f32) -> vec2<f32> {
  let p = opaque(a * b);
  let x = split_f(a);
  let y = split_f(b);
  return vec2<f32>(p, ((x.x * y.x - p) + x.x * y.y + x.y * y.x) + x.y * y.y);
}

fn df_gt(a: vec2<f32>, b: vec2<f32>) -> bool {
  return a.x > b.x || (a.x == b.x && a.y > b.y);
}

// Knuth's TwoSum: a + b = s + e exactly (needs SP_ONE set opaquely, see common/special.wgsl).
fn two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = opaque(a + b);
  let bb = opaque(s - a);
  return vec2<f32>(s, (a - opaque(s - bb)) + (b - bb));
}

// ln(num/den) for num, den > 0 given diff = num - den accurately: log1p(diff/den) keeps full
// relative precision when num ~ den; below num/den = 1/2 the rounding of 1 + diff/den would cost
// digits (ln of a small ratio), so the ratio is formed directly there.
fn ln_ratio(num: f32, diff: f32, den: f32) -> f32 {
  let x = diff / den;
  if (x < -0.5) {
    return log(num / den);
  }
  return log1p_f(x);
}

// ---------------------------------------------------------------------------------------------
// Families
// ---------------------------------------------------------------------------------------------

#if SFH_FAMILY == 0
// constant: SFR = 1/S on [0, S], S = min(startAgeYr, maxAgeYr).
struct Sfh {
  support: f32,
  lnScale: f32,
}
var<private> SFH: Sfh;

fn sfh_init(s: vec4<f32>, maxAgeYr: f32, topEdgeYr: f32) {
  SFH.support = min(s.x, maxAgeYr);
  SFH.lnScale = 0.0;
}

fn sfh_between(lo: vec2<f32>, hi: vec2<f32>) -> f32 {
  return df_diff(hi, lo) / SFH.support;
}

#elif SFH_FAMILY == 1
// exponential: SFR ~ exp(age/tau) on [0, S] (sfh.ts ExponentialModel). Scaled by C:
//  tau > 0: C = norm e^{(S-T)/tau}, bin = e^{(hi-T)/tau} (1 - e^{-(hi-lo)/tau})  (T = top of the
//           covered range: the SFR grows with age, so the bins just below T are the largest and
//           never underflow, however far S lies beyond the grid);
//  tau < 0: C = -expm1(S/tau),      bin = e^{lo/tau} (1 - e^{(hi-lo)/tau}).
struct Sfh {
  support: f32,
  lnScale: f32,
  tau: f32,
  top: f32,
}
var<private> SFH: Sfh;

fn sfh_init(s: vec4<f32>, maxAgeYr: f32, topEdgeYr: f32) {
  let S = min(s.x, maxAgeYr);
  let tau = s.y;
  let T = min(S, topEdgeYr);
  SFH.support = S;
  SFH.tau = tau;
  SFH.top = T;
  if (tau > 0.0) {
    SFH.lnScale = (S - T) / tau + log(-expm1_f(-S / tau));
  } else {
    SFH.lnScale = log(-expm1_f(S / tau));
  }
}

fn sfh_between(lo: vec2<f32>, hi: vec2<f32>) -> f32 {
  let tau = SFH.tau;
  let w = df_diff(hi, lo);
  if (tau > 0.0) {
    return exp_capped(df_diff(hi, df(SFH.top)) / tau) * -expm1_f(-w / tau);
  }
  return exp((lo.x + lo.y) / tau) * -expm1_f(w / tau);
}

#elif SFH_FAMILY == 2
// delayedExponential: SFR ~ t e^{-t/tau}, t = S0 - age (sfh.ts DelayedExponentialModel). With
// x = t/tau the bin is e^{-x1}[x1 (1 - e^{-D}) + P(D)] (D = (hi-lo)/tau): a sum of non-negative
// terms. Scaled by e^{(T-hi)/tau} relative to the top of the covered range T (instead of the support
// end S as the reference), in units of tau.
struct Sfh {
  support: f32,
  lnScale: f32,
  tau: f32,
  top: f32,
  start: f32,
}
var<private> SFH: Sfh;

// P(x) = 1 - (1+x) e^{-x} (sfh.ts delayedIncompleteGamma2): Taylor series below 1 (alternating,
// terms shrink >= 2x per step, partial sums never below half the result), closed form above.
fn delayed_gamma2(x: f32) -> f32 {
  if (x < 1.0) {
    var pw = x;
    var sum = 0.0;
    for (var k = 2; k < 24; k++) {
      pw = pw * x / f32(k);
      let term = select(-1.0, 1.0, (k & 1) == 0) * f32(k - 1) * pw;
      sum += term;
      if (abs(term) <= abs(sum) * 1e-9) {
        break;
      }
    }
    return sum;
  }
  return -expm1_f(-x) - x * exp(-x);
}

fn sfh_init(s: vec4<f32>, maxAgeYr: f32, topEdgeYr: f32) {
  let S0 = s.x;
  let tau = s.y;
  let S = min(S0, maxAgeYr);
  let T = min(S, topEdgeYr);
  SFH.support = S;
  SFH.tau = tau;
  SFH.top = T;
  SFH.start = S0;
  // Total over [0, S] in the reference's scaling (d = 0 at hi = S), units of tau.
  let x = S / tau;
  let total = ((S0 - S) / tau) * -expm1_f(-x) + delayed_gamma2(x);
  SFH.lnScale = (S - T) / tau + log(total);
}

fn sfh_between(lo: vec2<f32>, hi: vec2<f32>) -> f32 {
  let tau = SFH.tau;
  let d = df_diff(df(SFH.top), hi) / tau;
  let delta = df_diff(hi, lo) / tau;
  let x1 = df_diff(df(SFH.start), hi) / tau;
  return exp_capped(-d) * (x1 * -expm1_f(-delta) + delayed_gamma2(delta));
}

#elif SFH_FAMILY == 3
// logNormal: the mass is normal in ln t, t = S0 - age, mean t0 = ln(S0 - peak) + tau^2, sd tau
// (sfh.ts LogNormalModel): bin = Phi(z(lo)) - Phi(z(hi)), z(age) = (ln(S0-age) - t0)/tau.
// f32: z is formed as (log1p((peak-age)/(S0-peak)) - tau^2)/tau, and every z enters relative to
// the reference age R = the covered age in [0, T] nearest the mode: z - z(R) =
// log1p((R - age)/(S0 - R))/tau is accurate however far into a tail or however small tau, and
// zr = z(R) when the mode is outside [0, T] (else zr = 0 and z(R) ~ 0). Bins are
// exp(ln(Phi(b)-Phi(a)) + zr^2/2) (ln_normal_interval_rel), C = exp(lnTotal + zr^2/2).
struct Sfh {
  support: f32,
  lnScale: f32,
  start: f32,
  tau: f32,
  zr: f32,
  zoff: f32,
  refAge: f32,
}
var<private> SFH: Sfh;

// z(age) - zr for age < S0.
fn lognormal_dz(age: vec2<f32>) -> f32 {
  let S0 = df(SFH.start);
  return SFH.zoff + ln_ratio(df_diff(S0, age), df_diff(df(SFH.refAge), age), SFH.start - SFH.refAge) / SFH.tau;
}

fn lognormal_ln_between(lo: vec2<f32>, hi: vec2<f32>) -> f32 {
  let S0 = df(SFH.start);
  let aInf = !df_gt(S0, hi);  // hi >= S0: z(hi) = -inf
  let db = lognormal_dz(lo);
  var da = 0.0;
  var width = 0.0;
  if (!aInf) {
    da = lognormal_dz(hi);
    width = log1p_f(df_diff(hi, lo) / df_diff(S0, hi)) / SFH.tau;
  }
  return ln_normal_interval_rel(SFH.zr, da, db, width, aInf, false);
}

fn sfh_init(s: vec4<f32>, maxAgeYr: f32, topEdgeYr: f32) {
  let S0 = s.x;
  let tau = s.y;
  let peak = s.z;
  let S = min(S0, maxAgeYr);
  let T = min(S, topEdgeYr);
  SFH.support = S;
  SFH.start = S0;
  SFH.tau = tau;
  let s0mPeak = S0 - peak;
  // Mode (z = 0) at age S0 - (S0 - peak) e^{tau^2}; the reference age R is the covered age nearest it.
  let am = peak - s0mPeak * expm1_f(tau * tau);
  let R = clamp(am, 0.0, T);
  let zR = (ln_ratio(S0 - R, peak - R, s0mPeak) - tau * tau) / tau;
  SFH.refAge = R;
  if (am <= 0.0 || am >= T) {
    // The mode lies outside the covered range: scale by phi at its nearest end (the largest
    // density there), so deep-tail bins stay O(1).
    SFH.zr = zR;
    SFH.zoff = 0.0;
  } else {
    // Mode covered: no scaling; z = z(R) + (z - z(R)) with z(R) ~ 0 and the offset exact.
    SFH.zr = 0.0;
    SFH.zoff = zR;
  }
  SFH.lnScale = lognormal_ln_between(df(0.0), df(S));
}

fn sfh_between(lo: vec2<f32>, hi: vec2<f32>) -> f32 {
  return exp_capped(lognormal_ln_between(lo, hi));
}

#elif SFH_FAMILY == 4
// doublePowerLaw (Carnall et al. 2018) in cosmic time t = A - age: in u = ln(t/tau) the mass element
// is g(u) du, g = 1/(e^{pu} + e^{-qu}), p = alpha-1, q = beta+1, c = alpha+beta (sfh.ts
// DoublePowerLawModel: Gauss-Legendre on narrow intervals, else the 2F1 series K_b after peeling
// exponentials, split at u = 0), scaled by 1/g_max.
// f32: u is carried as an anchor r = u_m, the maximum of g over the covered range (the peak
// ln(q/p)/c, or the end of the covered range nearest it), plus an accurate offset
// v = ln(t/t_r) = log1p((t - t_r)/t_r) (t - t_r from two-float ages). The reference's exponents
// p u + ell, -q u + ell (ell = -ln g_max, ~ -p u_m: their difference cancels) become p v + K1,
// -q v + K2 with K1 = -softplus(-c r), K2 = -softplus(c r) -- no large numbers where the mass is.
// Where u multiplies c (w = e^{cu} in the K series, the split at u = 0), u = r + v is an exact
// two-float sum. t_r = fl(tau e^r) (or A, or A - T) is rounded, so g is evaluated at u + eps with
// one eps ~ 1e-7 |r| for all bins: a relative backward error of that size in tau. |r| is small when
// the peak is covered and alpha, beta (the sensitivity to such a shift) are large; when the peak is
// outside, the covered part is a pure power law, which a shift only rescales.
struct Sfh {
  support: f32,
  lnScale: f32,
  p: f32,
  q: f32,
  c: f32,
  rate: f32,
  r: f32,
  tr: f32,
  K1: f32,
  K2: f32,
  amtr: vec2<f32>,  // A - t_r, exact two-float
}
var<private> SFH: Sfh;

struct DplPoint {
  v: f32,
  u: vec2<f32>,
}

fn softplus_f(x: f32) -> f32 {
  return max(x, 0.0) + log1p_f(exp(-abs(x)));
}

// v at a lookback age (< A).
fn dpl_v(age: vec2<f32>) -> f32 {
  return ln_ratio(df_diff(df(SFH.support), age), df_diff(SFH.amtr, age), SFH.tr);
}

fn dpl_point(v: f32) -> DplPoint {
  return DplPoint(v, two_sum(SFH.r, v));
}

fn dpl_g(v: f32) -> f32 {
  return 1.0 / (exp_capped(SFH.p * v + SFH.K1) + exp_capped(-SFH.q * v + SFH.K2));
}

fn dpl_cu(pt: DplPoint) -> f32 {
  return SFH.c * pt.u.x + SFH.c * pt.u.y;
}

// sum_{n>=0} n!/(b+1)_n z^n = 2F1(1,1;b+1;z), 0 <= z <= 1/2: positive terms, ratio <= z.
fn hyp2f1_one_one(b: f32, z: f32) -> f32 {
  var term = 1.0;
  var sum = 1.0;
  for (var n = 0; n < 64; n++) {
    term *= (f32(n + 1) * z) / (b + 1.0 + f32(n));
    sum += term;
    if (term <= sum * 1e-8) {
      break;
    }
  }
  return sum;
}

// (1/c) K_b(w)/g_max with w = e^{lnW} (lnW <= 0) and w^b/g_max = e^{expo}.
fn dpl_kseries(b: f32, lnW: f32, expo: f32) -> f32 {
  let w = exp(lnW);
  let zz = w / (1.0 + w);
  return exp_capped(expo) / (b * (1.0 + w)) * hyp2f1_one_one(b, zz) / SFH.c;
}

// Integral of g over u1 < u2 <= 0 (u1Inf: u1 = -inf).
fn dpl_negative(P1: DplPoint, P2: DplPoint, width: f32, u1Inf: bool) -> f32 {
  let a = SFH.q / SFH.c;
  let cu2 = dpl_cu(P2);
  let e2 = SFH.q * P2.v - SFH.K2;  // q u2 - ell
  var cu1 = 0.0;
  var e1 = 0.0;
  if (!u1Inf) {
    cu1 = dpl_cu(P1);
    e1 = SFH.q * P1.v - SFH.K2;
  }
  if (a >= 0.5) {
    var k1 = 0.0;
    if (!u1Inf) {
      k1 = dpl_kseries(a, cu1, e1);
    }
    return dpl_kseries(a, cu2, e2) - k1;
  }
  // g = e^{qu} - e^{(q+c)u}/(1+e^{cu})
  var peelW = 1.0;
  if (!u1Inf) {
    peelW = -expm1_f(-SFH.q * width);
  }
  let peeled = exp_capped(e2) * peelW / SFH.q;
  var k1 = 0.0;
  if (!u1Inf) {
    k1 = dpl_kseries(a + 1.0, cu1, e1 + cu1);
  }
  return peeled - (dpl_kseries(a + 1.0, cu2, e2 + cu2) - k1);
}

// Integral of e^{-s u}/g_max over [u1, u2], s = p + k c, written around the larger end.
fn dpl_exp_integral(k: f32, P1: DplPoint, P2: DplPoint, width: f32) -> f32 {
  let s = SFH.p + k * SFH.c;
  // -s u - ell = -(p v + K1) - k c u
  if (s > 0.0) {
    return exp_capped(-(SFH.p * P1.v + SFH.K1) - k * dpl_cu(P1)) * -expm1_f(-s * width) / s;
  }
  let e2 = exp_capped(-(SFH.p * P2.v + SFH.K1) - k * dpl_cu(P2));
  if (s < 0.0) {
    return e2 * -expm1_f(s * width) / -s;
  }
  return width * e2;
}

// Composite 8-point Gauss-Legendre on g over [v1, v1 + width] in panels of <= 0.5/rate (each
// exact to rounding, as the reference's single narrow panel).
fn dpl_gauss(v1: f32, width: f32) -> f32 {
  let panels = max(1.0, ceil(2.0 * width * SFH.rate));
  let h = 0.5 * width / panels;
  var s = 0.0;
  for (var j = 0.0; j < panels; j += 1.0) {
    let vm = v1 + (2.0 * j + 1.0) * h;
    var sp = 0.0;
    for (var k = 0; k < 4; k++) {
      let d = h * GL8_X[k];
      sp += GL8_W[k] * (dpl_g(vm - d) + dpl_g(vm + d));
    }
    s += sp;
  }
  return s * h;
}

// Integral of g over 0 <= u1 < u2.
fn dpl_positive(P1: DplPoint, P2: DplPoint, width: f32) -> f32 {
  let b0 = SFH.p / SFH.c;
  let m = max(0.0, ceil(0.5 - b0));
  // m peeled exponentials e^{-(p + kc)u} alternate in sign with nearly equal sizes when c is small
  // (alpha + beta << 1: m ~ 1/c): f32 would lose ~m ulps x their ratio to the result. The integrand
  // is smooth there (poles pi/c away), so composite Gauss-Legendre is exact to rounding instead
  // (up to 32 panels; wider intervals keep the series).
  if (m >= 2.0 && width * SFH.rate <= 16.0) {
    return dpl_gauss(P1.v, width);
  }
  var sum = 0.0;
  for (var k = 0.0; k < m; k += 1.0) {
    let t = dpl_exp_integral(k, P1, P2, width);
    sum += select(-t, t, (i32(k) & 1) == 0);
  }
  let b = b0 + m;
  let cu1 = dpl_cu(P1);
  let cu2 = dpl_cu(P2);
  // w^b/g_max = e^{-(p + m c) u - ell} = e^{-(p v + K1) - m c u}
  let rem = dpl_kseries(b, -cu1, -(SFH.p * P1.v + SFH.K1) - m * cu1) - dpl_kseries(b, -cu2, -(SFH.p * P2.v + SFH.K1) - m * cu2);
  return sum + select(-rem, rem, (i32(m) & 1) == 0);
}

fn dpl_integral(P1: DplPoint, P2: DplPoint, width: f32, u1Inf: bool) -> f32 {
  if (!u1Inf && width * SFH.rate <= 0.5) {
    return dpl_gauss(P1.v, width);
  }
  let u2 = P2.u.x + P2.u.y;
  if (u2 <= 0.0) {
    return dpl_negative(P1, P2, width, u1Inf);
  }
  let u1 = P1.u.x + P1.u.y;
  if (!u1Inf && u1 >= 0.0) {
    return dpl_positive(P1, P2, width);
  }
  let P0 = DplPoint(-SFH.r, vec2<f32>(0.0, 0.0));
  return dpl_negative(P1, P0, -u1, u1Inf) + dpl_positive(P0, P2, u2);
}

fn dpl_between(lo: vec2<f32>, hi: vec2<f32>) -> f32 {
  let A = df(SFH.support);
  let P2 = dpl_point(dpl_v(lo));
  let u1Inf = !df_gt(A, hi);
  var P1 = DplPoint(0.0, vec2<f32>(0.0, 0.0));
  var width = 0.0;
  if (!u1Inf) {
    P1 = dpl_point(dpl_v(hi));
    width = log1p_f(df_diff(hi, lo) / df_diff(A, hi));
  }
  return dpl_integral(P1, P2, width, u1Inf);
}

fn sfh_init(s: vec4<f32>, maxAgeYr: f32, topEdgeYr: f32) {
  let A = maxAgeYr;
  let alpha = s.x;
  let beta = s.y;
  let tau = s.z;
  let p = alpha - 1.0;
  let q = beta + 1.0;
  let c = alpha + beta;
  SFH.support = A;
  SFH.p = p;
  SFH.q = q;
  SFH.c = c;
  SFH.rate = max(abs(p), q);
  // Anchor: g peaks at e^{cu} = q/p (p > 0), else increases to the end of the support; clamp the
  // peak into the covered cosmic times [A - T, A].
  var tr = A;
  if (p > 0.0) {
    tr = min(A, tau * exp(log(q / p) / c));
  }
  let T = min(A, topEdgeYr);
  if (T < A) {
    tr = max(tr, A - T);
  }
  SFH.tr = tr;
  SFH.r = ln_ratio(tr, tr - tau, tau);
  SFH.amtr = two_sum(A, -tr);
  let cr = c * SFH.r;
  SFH.K1 = -softplus_f(-cr);
  SFH.K2 = -softplus_f(cr);
  SFH.lnScale = log(dpl_integral(DplPoint(0.0, vec2<f32>(0.0, 0.0)), dpl_point(dpl_v(df(0.0))), 0.0, true));
}

fn sfh_between(lo: vec2<f32>, hi: vec2<f32>) -> f32 {
  return dpl_between(lo, hi);
}

#elif SFH_FAMILY == 5
// quantiles: cumulative mass through (0,0), (t25 A, .25), (t50 A, .5), (t75 A, .75), the sSFR point
// (A - 100 Myr, 1 - f100) and (A, 1), Steffen monotone cubic (sfh.ts quantileKnots/QuantilesModel).
// f32: knots are kept as exact two-float LOOKBACK ages L_i = A - t_i (for cosmic times near 0 and
// near A alike; the sSFR knot is exactly 1e8), and the masses as increments dy_i (the last 100 Myr
// carry exactly f100, not 1 - (1 - f100)), so young bins keep full relative precision however low
// the sSFR.
struct Sfh {
  support: f32,
  lnScale: f32,
  n: i32,
  L: array<vec2<f32>, 6>,  // lookback ages of the knots, descending (L[0] = A, L[n-1] = 0)
  h: array<f32, 5>,        // interval widths L[i] - L[i+1] (= cosmic-time widths)
  dy: array<f32, 5>,       // mass increments over the intervals
  d: array<f32, 6>,        // Steffen slopes dM/dt at the knots [1/yr]
}
var<private> SFH: Sfh;

fn steffen_end_slope(s0: f32, s1: f32, h0: f32, h1: f32) -> f32 {
  let p0 = s0 * (1.0 + h0 / (h0 + h1)) - (s1 * h0) / (h0 + h1);
  if (p0 * s0 <= 0.0) {
    return 0.0;
  }
  if (abs(p0) > 2.0 * abs(s0)) {
    return 2.0 * s0;
  }
  return p0;
}

// A - t A exactly, as a two-float value ((1 - t) is exact for t >= 1/2; products by TwoProduct):
// the knots sit where the reference's float64 t A puts them, however close two of them are.
fn quantile_lookback(A: f32, t: f32) -> vec2<f32> {
  if (t >= 0.5) {
    return two_prod(A, 1.0 - t);
  }
  let x = two_prod(t, A);
  let l = two_sum(A, -x.x);
  return vec2<f32>(l.x, l.y - x.y);
}

fn df_eq(a: vec2<f32>, b: vec2<f32>) -> bool {
  return a.x == b.x && a.y == b.y;
}

fn sfh_init(s: vec4<f32>, maxAgeYr: f32, topEdgeYr: f32) {
  let A = maxAgeYr;
  SFH.support = A;
  SFH.lnScale = 0.0;
  // cm = 1 - M at the knots (remaining mass), so increments are differences of small numbers.
  var L = array<vec2<f32>, 6>(df(A), quantile_lookback(A, s.y), quantile_lookback(A, s.z), quantile_lookback(A, s.w), df(0.0), df(0.0));
  var cm = array<f32, 6>(1.0, 0.75, 0.5, 0.25, 0.0, 0.0);
  var n = 5;
  let LS = df(1e8);
  if (A > 1e8) {
    var f100 = 0.0;
    if (s.x > -40.0) {
      f100 = pow10_f(s.x) * 1e8;
    }
    var j = 1;
    while (df_gt(L[j], LS)) {
      j++;
    }
    if (!df_eq(L[j], LS) && !df_eq(L[j - 1], LS)) {
      let cS = clamp(f100, cm[j], cm[j - 1]);
      for (var i = 5; i > j; i--) {
        L[i] = L[i - 1];
        cm[i] = cm[i - 1];
      }
      L[j] = LS;
      cm[j] = cS;
      n = 6;
    }
  }
  SFH.n = n;
  var sec = array<f32, 5>();
  for (var i = 0; i < n - 1; i++) {
    SFH.L[i] = L[i];
    SFH.h[i] = df_diff(L[i], L[i + 1]);
    SFH.dy[i] = cm[i] - cm[i + 1];
    sec[i] = SFH.dy[i] / SFH.h[i];
  }
  SFH.L[n - 1] = df(0.0);
  for (var i = 1; i < n - 1; i++) {
    let hm = SFH.h[i - 1];
    let hp = SFH.h[i];
    let pi = (sec[i - 1] * hp + sec[i] * hm) / (hm + hp);
    SFH.d[i] = (sign(sec[i - 1]) + sign(sec[i])) * min(min(abs(sec[i - 1]), abs(sec[i])), 0.5 * abs(pi));
  }
  SFH.d[0] = steffen_end_slope(sec[0], sec[1], SFH.h[0], SFH.h[1]);
  SFH.d[n - 1] = steffen_end_slope(sec[n - 2], sec[n - 3], SFH.h[n - 2], SFH.h[n - 3]);
}

// Knot interval holding a lookback age (sfh.ts interval() on t = A - age).
fn quantile_interval(age: vec2<f32>) -> i32 {
  var i = 0;
  while (i < SFH.n - 2 && !df_gt(age, SFH.L[i + 1])) {
    i++;
  }
  return i;
}

// Mass over [ua, ua + du] of interval i (units of its width; va = 1 - ua, passed accurately):
// the Hermite basis differences factored by du, so no bin is a difference of two values near 1
// (sfh.ts QuantilesModel.piece). Near the interval's upper end the same differences are written in
// v = 1 - u with H(u) = 1 - H(v), G1(u) = v^2 - v^3, G2(u) = -(v - 2v^2 + v^3): otherwise
// 3(ua+ub) - 2(ub^2+ua ub+ua^2) -> 0 as u -> 1 would cancel in f32 where the SFR vanishes there.
fn quantile_piece(i: i32, ua: f32, va: f32, du: f32) -> f32 {
  let h = SFH.h[i];
  if (!(h > 0.0)) {
    return 0.0;
  }
  let ub = ua + du;
  if (ua + ub <= 1.0) {
    let sm = ub + ua;
    let sq = ub * ub + ua * ub + ua * ua;
    let dH = du * (3.0 * sm - 2.0 * sq);
    let dG1 = du * (1.0 - 2.0 * sm + sq);
    let dG2 = du * (sq - sm);
    return SFH.dy[i] * dH + h * SFH.d[i] * dG1 + h * SFH.d[i + 1] * dG2;
  }
  let vb = va - du;
  let sm = va + vb;
  let sq = va * va + va * vb + vb * vb;
  let dH = du * (3.0 * sm - 2.0 * sq);
  let dG1 = du * (sq - sm);
  let dG2 = du * (1.0 - 2.0 * sm + sq);
  return SFH.dy[i] * dH + h * SFH.d[i] * dG1 + h * SFH.d[i + 1] * dG2;
}

fn sfh_between(lo: vec2<f32>, hi: vec2<f32>) -> f32 {
  let ia = quantile_interval(hi);
  let ib = quantile_interval(lo);
  var m = 0.0;
  // In lookback ages: u = (L_i - age)/h_i, 1 - u = (age - L_{i+1})/h_i.
  if (ia == ib) {
    let h = SFH.h[ia];
    m = quantile_piece(ia, df_diff(SFH.L[ia], hi) / h, df_diff(hi, SFH.L[ia + 1]) / h, df_diff(hi, lo) / h);
  } else {
    let ha = SFH.h[ia];
    let va = df_diff(hi, SFH.L[ia + 1]) / ha;
    m = quantile_piece(ia, df_diff(SFH.L[ia], hi) / ha, va, va);
    for (var i = ia + 1; i < ib; i++) {
      m += SFH.dy[i];
    }
    let hb = SFH.h[ib];
    m += quantile_piece(ib, 0.0, 1.0, df_diff(SFH.L[ib], lo) / hb);
  }
  return max(0.0, m);
}
#endif

// massFractionBetween: clip [lo, hi] to [0, support]; 0 when empty. Scaled by exp(SFH.lnScale).
fn sfh_mass_scaled(lo: vec2<f32>, hi: vec2<f32>) -> f32 {
  let S = df(SFH.support);
  var l = lo;
  if (l.x < 0.0) {
    l = df(0.0);
  }
  var h = hi;
  if (df_gt(h, S)) {
    h = S;
  }
  if (!df_gt(h, l)) {
    return 0.0;
  }
  return sfh_between(l, h);
}
