/**
 * Statistics helpers for the simulate tests (priors, designs, rng): Kolmogorov-Smirnov statistic
 * and its critical value, moments, the regularised lower incomplete gamma function, Philox KATs.
 */

// Random123 kat_vectors (philox4x32 10: counter[4] key[2] -> output[4]); checked against the
// Random123 distribution's tests/kat_vectors file as quoted in several independent ports.
export const PHILOX_KAT: { ctr: number[]; key: number[]; out: string }[] = [
  { ctr: [0, 0, 0, 0], key: [0, 0], out: '6627e8d5 e169c58d bc57ac4c 9b00dbd8' },
  { ctr: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], key: [0xffffffff, 0xffffffff], out: '408f276d 41c83b0e a20bc7c6 6d5451fd' },
  { ctr: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], key: [0xa4093822, 0x299f31d0], out: 'd16cfe09 94fdcceb 5001e420 24126ea1' },
];

/** Two-sided one-sample KS statistic D_n = sup |F_n(x) - F(x)|. */
export function ksStatistic(samples: ArrayLike<number>, cdf: (x: number) => number): number {
  const x = Float64Array.from(samples).sort();
  const n = x.length;
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(x[i]);
    d = Math.max(d, f - i / n, (i + 1) / n - f);
  }
  return d;
}

/**
 * Critical value of D_n at significance `alpha` (asymptotic Kolmogorov distribution:
 * P(sqrt(n) D_n > c) ~ 2 exp(-2 c^2), accurate for n >= 100). With fixed seeds the tests are
 * deterministic; alpha = 1e-3 keeps a correct sampler from failing by bad luck at ~0.1 % per check.
 */
export function ksCritical(n: number, alpha = 1e-3): number {
  return Math.sqrt(-0.5 * Math.log(alpha / 2)) / Math.sqrt(n);
}

export function mean(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
}

export function variance(x: ArrayLike<number>): number {
  const m = mean(x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - m) ** 2;
  return s / (x.length - 1);
}

/** Column j of an n x p row-major matrix. */
export function column(a: ArrayLike<number>, n: number, p: number, j: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = a[i * p + j];
  return out;
}

/** ln Γ(x), Lanczos (test-local copy so the tests do not rely on the code they test). */
function lnGammaRef(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGammaRef(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised lower incomplete gamma P(a, x) (series below a + 1, continued fraction above). */
export function gammaP(a: number, x: number): number {
  if (x <= 0) return 0;
  const lnFront = -x + a * Math.log(x) - lnGammaRef(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 10000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return sum * Math.exp(lnFront);
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return 1 - Math.exp(lnFront) * h;
}
