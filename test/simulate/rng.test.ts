import { describe, expect, it } from 'vitest';
import { randomWords as flowRandomWords } from '../../src/flow/rng.js';
import { betaCdf, normalCdf } from '../../src/simulate/priors.js';
import { PhiloxStream, RngPurpose, mulhi32, philox4x32_10, philoxWords, seedKey, streamCounter, u32PairToUnitF64, u32ToUnitF32 } from '../../src/simulate/rng.js';
import { PHILOX_KAT, gammaP, ksCritical, ksStatistic, mean, variance } from './stats.js';

const hex = (a: ArrayLike<number>) => Array.from(a, (x) => (x >>> 0).toString(16).padStart(8, '0')).join(' ');


const N = 20_000;

describe('Philox4x32-10', () => {
  it('reproduces the Random123 known-answer vectors', () => {
    for (const k of PHILOX_KAT) expect(hex(philox4x32_10(k.ctr, k.key))).toBe(k.out);
  });

  it('mulhi32 equals the high word of the exact 64-bit product', () => {
    const s = new PhiloxStream(1, RngPurpose.user, 0);
    const cases = [[0, 0], [0xffffffff, 0xffffffff], [0xd2511f53, 0xffffffff], [1, 0xffffffff], [0x10000, 0x10000]];
    for (let i = 0; i < 2000; i++) cases.push([s.nextU32(), s.nextU32()]);
    for (const [a, b] of cases) expect(mulhi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
  });

  it('streams: counter = (index lo, index hi, purpose, sub << 16 | block), key = seed words', () => {
    expect(seedKey(2 ** 40 + 7)).toEqual([7, 256]);
    expect(streamCounter(5, 2 ** 33 + 3, 2, 9)).toEqual([3, 2, 5, 0x20009]);
    const seed = 2 ** 35 + 12345;
    const s = new PhiloxStream(seed, RngPurpose.prior, 2 ** 32 + 17, 3);
    const words = Array.from({ length: 12 }, () => s.nextU32());
    const want = [0, 1, 2].flatMap((b) => Array.from(philoxWords(seed, RngPurpose.prior, 2 ** 32 + 17, 3, b)));
    expect(words).toEqual(want);
    // Sub-stream 0, block 0 is src/flow/rng.ts's (seed, purpose, index) convention.
    expect(Array.from(philoxWords(99, 2, 1234))).toEqual(Array.from(flowRandomWords(99, 2, 1234)));
  });

  it('rejects seeds and indices that are not non-negative safe integers', () => {
    expect(() => new PhiloxStream(-1, 1, 0)).toThrow(/seed must be a non-negative safe integer/);
    expect(() => new PhiloxStream(1.5, 1, 0)).toThrow(/seed/);
    expect(() => new PhiloxStream(1, 1, 2 ** 53)).toThrow(/index/);
    expect(() => new PhiloxStream(1, 1, 0, 65536)).toThrow(/sub-stream/);
  });
});

describe('uniforms', () => {
  it('are strictly inside (0, 1) and exact in f32', () => {
    expect(u32ToUnitF32(0)).toBe(2 ** -24);
    expect(u32ToUnitF32(0xffffffff)).toBe(1 - 2 ** -24);
    expect(Math.fround(u32ToUnitF32(0xffffffff))).toBe(1 - 2 ** -24);
    expect(u32PairToUnitF64(0, 0)).toBeGreaterThan(0);
    expect(u32PairToUnitF64(0xffffffff, 0xffffffff)).toBeLessThan(1);
    const s = new PhiloxStream(7, RngPurpose.user, 0);
    for (let i = 0; i < 10_000; i++) {
      const u = s.uniform();
      expect(u > 0 && u < 1 && Math.fround(u) === u).toBe(true);
    }
  });

  it('are uniform (KS, one stream per index as rows use them)', () => {
    const u = Float64Array.from({ length: N }, (_, i) => new PhiloxStream(11, RngPurpose.user, i).uniform());
    expect(ksStatistic(u, (x) => x)).toBeLessThan(ksCritical(N));
    // Mean within 4 sigma (sigma = 1/sqrt(12 N)).
    expect(Math.abs(mean(u) - 0.5)).toBeLessThan(4 / Math.sqrt(12 * N));
  });

  it('integer(n) is unbiased (chi-square over 7 cells, 6 dof: 99.9 % quantile 22.46)', () => {
    const s = new PhiloxStream(3, RngPurpose.user, 0);
    const counts = new Array(7).fill(0);
    const n = 70_000;
    for (let i = 0; i < n; i++) counts[s.integer(7)]++;
    const chi2 = counts.reduce((a, c) => a + (c - n / 7) ** 2 / (n / 7), 0);
    expect(chi2).toBeLessThan(22.46);
  });
});

describe('continuous distributions (KS at alpha 1e-3 with N = 20000, fixed seed)', () => {
  it('normal: KS, mean within 4/sqrt(N), variance within 4 sqrt(2/N)', () => {
    const z = Float64Array.from({ length: N }, (_, i) => new PhiloxStream(21, RngPurpose.user, i).normal());
    expect(ksStatistic(z, normalCdf)).toBeLessThan(ksCritical(N));
    expect(Math.abs(mean(z))).toBeLessThan(4 / Math.sqrt(N));
    expect(Math.abs(variance(z) - 1)).toBeLessThan(4 * Math.sqrt(2 / N));
    // Box-Muller from 23-bit uniforms: |z| <= sqrt(-2 ln 2^-24) = 5.77.
    expect(Math.max(...z.map(Math.abs))).toBeLessThan(5.78);
  });

  it('exponential: KS', () => {
    const e = Float64Array.from({ length: N }, (_, i) => new PhiloxStream(22, RngPurpose.user, i).exponential());
    expect(ksStatistic(e, (x) => 1 - Math.exp(-x))).toBeLessThan(ksCritical(N));
  });

  for (const shape of [0.05, 0.3, 1, 2.5, 10, 150]) {
    it(`gamma(${shape}): KS against P(a, x), mean within 4 sigma`, () => {
      const g = Float64Array.from({ length: N }, (_, i) => new PhiloxStream(23, RngPurpose.user, i).gamma(shape));
      // Tiny shapes: u^(1/a) underflows in f64 for a = 0.05 (x < 1e-308 with probability ~1e-2);
      // the CDF is ~0 there either way, and logGamma keeps the log finite.
      expect(ksStatistic(g, (x) => gammaP(shape, x))).toBeLessThan(ksCritical(N));
      expect(Math.abs(mean(g) - shape)).toBeLessThan(4 * Math.sqrt(shape / N));
    });
  }

  it('logGamma stays finite where the gamma variate underflows', () => {
    const s = new PhiloxStream(5, RngPurpose.user, 0);
    for (let i = 0; i < 2000; i++) expect(Number.isFinite(s.logGamma(0.001))).toBe(true);
  });

  for (const alpha of [[1, 1, 1, 1], [0.2, 3, 0.7], [50, 5]]) {
    it(`Dirichlet(${alpha.join(', ')}): sums to 1, marginals Beta(alpha_i, alpha_0 - alpha_i) by KS`, () => {
      const K = alpha.length;
      const a0 = alpha.reduce((a, b) => a + b, 0);
      const x = Array.from({ length: K }, () => new Float64Array(N));
      const out = new Float64Array(K);
      for (let i = 0; i < N; i++) {
        new PhiloxStream(31, RngPurpose.user, i).dirichlet(alpha, out);
        let s = 0;
        for (let k = 0; k < K; k++) {
          x[k][i] = out[k];
          s += out[k];
        }
        expect(Math.abs(s - 1)).toBeLessThan(1e-14);
      }
      for (let k = 0; k < K; k++) expect(ksStatistic(x[k], (v) => betaCdf(v, alpha[k], a0 - alpha[k]))).toBeLessThan(ksCritical(N));
    });
  }
});
