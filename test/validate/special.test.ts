/** Special functions and order statistics of src/validate/special.ts against scipy reference values. */
import { describe, expect, it } from 'vitest';
import {
  binomialBand,
  binomialQuantile,
  chiSquareSf,
  gammaP,
  gammaQ,
  kolmogorovSf,
  ksUniform,
  lnGamma,
  lowerBound,
  median,
  quantileSorted,
  upperBound,
} from '../../src/validate/special.js';

describe('special functions (reference values: scipy 1.x)', () => {
  it('lnGamma', () => {
    // Lanczos g = 7: relative error < 1e-14 (NR).
    expect(lnGamma(5)).toBeCloseTo(Math.log(24), 13);
    expect(lnGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13);
    expect(lnGamma(0.1)).toBeCloseTo(2.2527126517342055, 12);
    expect(lnGamma(100.5)).toBeCloseTo(361.4355404677776, 10);
    expect(lnGamma(-1)).toBeNaN();
  });

  it('incomplete gamma and chi-square survival', () => {
    expect(gammaP(1, 2)).toBeCloseTo(1 - Math.exp(-2), 14);
    expect(gammaP(0.5, 1)).toBeCloseTo(0.8427007929497149, 13); // erf(1)
    expect(gammaP(3.5, 2)).toBeCloseTo(0.22022259152428406, 13);
    // Tail (continued fraction): relative accuracy.
    expect(gammaQ(3.5, 20) / 1.258790387371308e-6).toBeCloseTo(1, 10);
    expect(chiSquareSf(3.841458820694124, 1)).toBeCloseTo(0.05, 12);
    expect(chiSquareSf(18.307038053275146, 10)).toBeCloseTo(0.05, 12);
    expect(chiSquareSf(150, 100) / 0.0009039320423540184).toBeCloseTo(1, 9);
    expect(chiSquareSf(0.5, 7)).toBeCloseTo(0.9994464813904249, 12);
    expect(chiSquareSf(2, 2)).toBeCloseTo(Math.exp(-1), 14);
    expect(chiSquareSf(0, 3)).toBe(1);
  });

  it('Kolmogorov survival function (both series, continuous at the switch)', () => {
    expect(kolmogorovSf(1)).toBeCloseTo(0.26999967167735456, 12);
    expect(kolmogorovSf(0.5)).toBeCloseTo(0.9639452436648751, 12);
    expect(kolmogorovSf(1.18)).toBeCloseTo(0.1234538094297657, 12);
    expect(kolmogorovSf(1.18 - 1e-12)).toBeCloseTo(kolmogorovSf(1.18), 10);
    expect(kolmogorovSf(2)).toBeCloseTo(0.0006709252557796953, 14);
    expect(kolmogorovSf(0.3)).toBeCloseTo(0.9999906941986655, 12);
    expect(kolmogorovSf(0)).toBe(1);
  });

  it('one-sample KS against U(0, 1)', () => {
    const r = ksUniform([0.9, 0.1, NaN, 0.5]);
    expect(r.n).toBe(3);
    expect(r.statistic).toBeCloseTo(0.9 - 2 / 3, 14);
    expect(ksUniform([]).pValue).toBeNaN();
  });

  it('binomial quantiles and band', () => {
    expect(binomialQuantile(10, 0.5, 0.025)).toBe(2);
    expect(binomialQuantile(10, 0.5, 0.975)).toBe(8);
    expect(binomialQuantile(1000, 0.68, 0.0005)).toBe(631);
    expect(binomialQuantile(1000, 0.68, 0.9995)).toBe(728);
    expect(binomialQuantile(100000, 0.01, 0.025)).toBe(939);
    expect(binomialQuantile(5, 0, 0.5)).toBe(0);
    expect(binomialQuantile(5, 1, 0.5)).toBe(5);
    expect(binomialBand(10, 0.5)).toEqual([0.2, 0.8]);
    expect(() => binomialQuantile(-1, 0.5, 0.5)).toThrow(/non-negative integer/);
  });

  it('quantiles (numpy linear), bounds, median', () => {
    const c = [1, 2, 4, 8];
    expect(quantileSorted(c, 0)).toBe(1);
    expect(quantileSorted(c, 1)).toBe(8);
    expect(quantileSorted(c, 0.5)).toBe(3);
    expect(quantileSorted(c, 0.16)).toBeCloseTo(1.48, 14); // h = 0.48
    expect(quantileSorted([], 0.5)).toBeNaN();
    expect(lowerBound(c, 4)).toBe(2);
    expect(upperBound(c, 4)).toBe(3);
    expect(lowerBound(c, 0)).toBe(0);
    expect(upperBound(c, 9)).toBe(4);
    expect(median([3, NaN, 1, 2, 10])).toBe(2.5);
  });
});
