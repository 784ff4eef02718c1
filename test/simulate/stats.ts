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

/** Regularised lower incomplete gamma P(a, x): the validation module's (tested against scipy there). */
export { gammaP } from '../../src/validate/special.js';
