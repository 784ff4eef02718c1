/**
 * Float64 special functions and order statistics for the validation metrics (src/validate).
 *
 *   quantileSorted      numpy.quantile's default ("linear", Hyndman & Fan 1996 type 7)
 *   lowerBound/upperBound  counts of sorted values < / <= t (binary search)
 *   lnGamma             Lanczos approximation (g = 7, 9 terms; Numerical Recipes 3rd ed. §6.1), |rel err| < 1e-14
 *   gammaP / gammaQ     regularized incomplete gamma functions (NR §6.2: series for x < a + 1,
 *                       Lentz continued fraction otherwise)
 *   chiSquareSf         P(chi2_k >= x) = Q(k / 2, x / 2)
 *   kolmogorovSf        P(K > lambda) = 2 sum_{j>=1} (-1)^{j-1} exp(-2 j^2 lambda^2) (Kolmogorov 1933)
 *   ksUniform           one-sample Kolmogorov-Smirnov test against U(0, 1), p-value with Stephens'
 *                       (1970) finite-n correction lambda = (sqrt n + 0.12 + 0.11 / sqrt n) D (NR §14.3)
 *   binomialQuantile    smallest k with P(Bin(n, p) <= k) >= q (exact pmf summed around the mean)
 *   binomialBand        the central `conf` interval of Bin(n, p) / n: where an empirical fraction of
 *                       n independent trials with success probability p falls
 *
 * Everything here is a pure function of its arguments.
 */

/** Quantile q in [0, 1] of ascending `c[0..k)` by linear interpolation at h = (k - 1) q (numpy's default). NaN if k = 0. */
export function quantileSorted(c: ArrayLike<number>, q: number, k: number = c.length): number {
  if (k <= 0) return NaN;
  const h = (k - 1) * q;
  const a = Math.floor(h);
  const b = Math.min(k - 1, a + 1);
  const lo = c[a];
  return lo + (h - a) * (c[b] - lo);
}

/** Number of elements of ascending `c[0..k)` that are < t. */
export function lowerBound(c: ArrayLike<number>, t: number, k: number = c.length): number {
  let lo = 0;
  let hi = k;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (c[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Number of elements of ascending `c[0..k)` that are <= t. */
export function upperBound(c: ArrayLike<number>, t: number, k: number = c.length): number {
  let lo = 0;
  let hi = k;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (c[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
  9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Gamma(x) for x > 0 (Lanczos, g = 7). */
export function lnGamma(x: number): number {
  if (!(x > 0)) return NaN;
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let s = LANCZOS[0];
  for (let i = 1; i < 9; i++) s += LANCZOS[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

const EPS = 1e-15;
const FPMIN = 1e-300;

function gammaSeries(a: number, x: number): number {
  let ap = a;
  let sum = 1 / a;
  let del = sum;
  for (let n = 0; n < 10000; n++) {
    ap += 1;
    del *= x / ap;
    sum += del;
    if (Math.abs(del) < Math.abs(sum) * EPS) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - lnGamma(a));
}

function gammaContinuedFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / FPMIN;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = b + an / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return Math.exp(-x + a * Math.log(x) - lnGamma(a)) * h;
}

/** Regularized lower incomplete gamma P(a, x), a > 0, x >= 0. */
export function gammaP(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) return NaN;
  if (x === 0) return 0;
  if (x === Infinity) return 1;
  return x < a + 1 ? gammaSeries(a, x) : 1 - gammaContinuedFraction(a, x);
}

/** Regularized upper incomplete gamma Q(a, x) = 1 - P(a, x), accurate in the tail. */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) return NaN;
  if (x === 0) return 1;
  if (x === Infinity) return 0;
  return x < a + 1 ? 1 - gammaSeries(a, x) : gammaContinuedFraction(a, x);
}

/** Survival function of the chi-square distribution with k degrees of freedom: P(X >= x). */
export function chiSquareSf(x: number, k: number): number {
  if (!(k > 0) || Number.isNaN(x)) return NaN;
  if (x <= 0) return 1;
  return gammaQ(k / 2, x / 2);
}

/**
 * Kolmogorov distribution's survival function Q_KS(lambda) = P(K > lambda). Two series (as scipy's
 * kolmogorov): for lambda >= 1.18 the alternating one, 2 sum_{j>=1} (-1)^{j-1} exp(-2 j^2 lambda^2);
 * below, 1 - sqrt(2 pi) / lambda sum_{j>=1} exp(-(2j - 1)^2 pi^2 / (8 lambda^2)). Both converge in a
 * few terms there.
 */
export function kolmogorovSf(lambda: number): number {
  if (Number.isNaN(lambda)) return NaN;
  if (lambda <= 0) return 1;
  if (lambda < 1.18) {
    const w = (Math.PI * Math.PI) / (8 * lambda * lambda);
    let s = 0;
    for (let j = 1; j <= 20; j++) {
      const t = Math.exp(-(2 * j - 1) * (2 * j - 1) * w);
      s += t;
      if (t < 1e-17 * s) break;
    }
    return Math.min(1, Math.max(0, 1 - (Math.sqrt(2 * Math.PI) / lambda) * s));
  }
  const a2 = -2 * lambda * lambda;
  let sum = 0;
  let sign = 1;
  for (let j = 1; j <= 100; j++) {
    const term = 2 * sign * Math.exp(a2 * j * j);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
    sign = -sign;
  }
  return Math.min(1, Math.max(0, sum));
}

export interface KsResult {
  /** D = sup |ECDF(u) - u|. */
  statistic: number;
  /** Asymptotic p-value with Stephens' correction (NR §14.3.3); NaN when n = 0. */
  pValue: number;
  n: number;
}

/** One-sample KS test of values in [0, 1] against U(0, 1). NaN values are skipped. */
export function ksUniform(values: ArrayLike<number>): KsResult {
  const v = Float64Array.from(Array.prototype.filter.call(values, (x: number) => !Number.isNaN(x)) as number[]).sort();
  const n = v.length;
  if (!n) return { statistic: NaN, pValue: NaN, n: 0 };
  let d = 0;
  for (let i = 0; i < n; i++) {
    const u = Math.min(1, Math.max(0, v[i]));
    d = Math.max(d, (i + 1) / n - u, u - i / n);
  }
  const en = Math.sqrt(n);
  return { statistic: d, pValue: kolmogorovSf((en + 0.12 + 0.11 / en) * d), n };
}

function logBinomPmf(n: number, p: number, k: number, lnc: number): number {
  return lnc - lnGamma(k + 1) - lnGamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p);
}

/** Smallest k in [0, n] with P(Bin(n, p) <= k) >= q. */
export function binomialQuantile(n: number, p: number, q: number): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`binomialQuantile: n must be a non-negative integer, got ${n}`);
  if (!(p >= 0 && p <= 1) || !(q >= 0 && q <= 1)) throw new RangeError(`binomialQuantile: p and q must be in [0, 1], got ${p}, ${q}`);
  if (n === 0 || p === 0) return 0;
  if (p === 1) return n;
  // The mass more than 12 sd (+ 12) from the mean is < 1e-30: sum the pmf over that window only.
  const mean = n * p;
  const sd = Math.sqrt(n * p * (1 - p));
  const lo = Math.max(0, Math.floor(mean - 12 * sd - 12));
  const hi = Math.min(n, Math.ceil(mean + 12 * sd + 12));
  const lnc = lnGamma(n + 1);
  let cdf = 0;
  for (let k = lo; k <= hi; k++) {
    cdf += Math.exp(logBinomPmf(n, p, k, lnc));
    if (cdf >= q * (1 - 1e-12)) return k;
  }
  return hi;
}

/** Central `conf` band of an empirical fraction Bin(n, p) / n: [quantile((1 - conf) / 2), quantile((1 + conf) / 2)] / n. */
export function binomialBand(n: number, p: number, conf = 0.95): [number, number] {
  if (n === 0) return [NaN, NaN];
  return [binomialQuantile(n, p, (1 - conf) / 2) / n, binomialQuantile(n, p, (1 + conf) / 2) / n];
}

/** Median of the non-NaN values (NaN when none). */
export function median(values: ArrayLike<number>): number {
  const v = Float64Array.from(Array.prototype.filter.call(values, (x: number) => !Number.isNaN(x)) as number[]).sort();
  return quantileSorted(v, 0.5);
}
