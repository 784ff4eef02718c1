import { describe, expect, it } from 'vitest';
import { LatinHypercube, SOBOL_MAX_DIMS, SobolSequence, l2StarDiscrepancySq, lhsPermutation } from '../../src/simulate/designs.js';
import { PhiloxStream, RngPurpose } from '../../src/simulate/rng.js';

// scipy.stats.qmc.Sobol(d=32, scramble=False) (Joe & Kuo new-joe-kuo-6.21201, Gray-code order):
// the first 16 points times 16, and points 1000, 65535, 123456, 1048575 times 2^30 (scipy keeps 30 bits).
const SCIPY_FIRST16_X16 = [
  [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  [8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8],
  [12, 4, 4, 4, 12, 12, 4, 12, 12, 12, 12, 12, 4, 4, 12, 4, 12, 4, 12, 4, 4, 12, 4, 4, 4, 12, 4, 12, 4, 12, 4, 4],
  [4, 12, 12, 12, 4, 4, 12, 4, 4, 4, 4, 4, 12, 12, 4, 12, 4, 12, 4, 12, 12, 4, 12, 12, 12, 4, 12, 4, 12, 4, 12, 12],
  [6, 6, 10, 14, 6, 2, 6, 14, 14, 10, 14, 6, 6, 10, 6, 14, 6, 14, 14, 2, 2, 2, 6, 14, 14, 14, 6, 10, 2, 2, 6, 2],
  [14, 14, 2, 6, 14, 10, 14, 6, 6, 2, 6, 14, 14, 2, 14, 6, 14, 6, 6, 10, 10, 10, 14, 6, 6, 6, 14, 2, 10, 10, 14, 10],
  [10, 2, 14, 10, 10, 14, 2, 2, 2, 6, 2, 10, 2, 14, 10, 10, 10, 10, 2, 6, 6, 14, 2, 10, 10, 2, 2, 6, 6, 14, 2, 6],
  [2, 10, 6, 2, 2, 6, 10, 10, 10, 14, 10, 2, 10, 6, 2, 2, 2, 2, 10, 14, 14, 6, 10, 2, 2, 10, 10, 14, 14, 6, 10, 14],
  [3, 5, 15, 7, 9, 5, 7, 15, 15, 5, 11, 1, 15, 15, 13, 15, 13, 13, 15, 5, 3, 11, 3, 15, 7, 1, 9, 3, 11, 15, 7, 13],
  [11, 13, 7, 15, 1, 13, 15, 7, 7, 13, 3, 9, 7, 7, 5, 7, 5, 5, 7, 13, 11, 3, 11, 7, 15, 9, 1, 11, 3, 7, 15, 5],
  [15, 1, 11, 3, 5, 9, 3, 3, 3, 9, 7, 13, 11, 11, 1, 11, 1, 9, 3, 1, 7, 7, 7, 11, 3, 13, 13, 15, 15, 3, 3, 9],
  [7, 9, 3, 11, 13, 1, 11, 11, 11, 1, 15, 5, 3, 3, 9, 3, 9, 1, 11, 9, 15, 15, 15, 3, 11, 5, 5, 7, 7, 11, 11, 1],
  [5, 3, 5, 9, 15, 7, 1, 1, 1, 15, 5, 7, 9, 5, 11, 1, 11, 3, 1, 7, 1, 9, 5, 1, 9, 15, 15, 9, 9, 13, 1, 15],
  [13, 11, 13, 1, 7, 15, 9, 9, 9, 7, 13, 15, 1, 13, 3, 9, 3, 11, 9, 15, 9, 1, 13, 9, 1, 7, 7, 1, 1, 5, 9, 7],
  [9, 7, 1, 13, 3, 11, 5, 13, 13, 3, 9, 11, 13, 1, 7, 5, 7, 7, 13, 3, 5, 5, 1, 5, 13, 3, 11, 5, 13, 1, 5, 11],
  [1, 15, 9, 5, 11, 3, 13, 5, 5, 11, 1, 3, 5, 9, 15, 13, 15, 15, 5, 11, 13, 13, 9, 13, 5, 11, 3, 13, 5, 9, 13, 3],
];
const SCIPY_DEEP_X2_30: Record<number, number[]> = {
  1000: [235929600, 103809024, 556793856, 726663168, 300941312, 974127104, 49283072, 965738496, 537919488, 74448896, 91226112, 273678336, 173015040, 412090368, 154140672, 397410304, 772800512, 370147328, 1064304640, 779091968, 560988160, 590348288, 1020264448, 579862528, 625999872, 974127104, 42991616, 1051721728, 63963136, 365953024, 158334976, 156237824],
  65535: [16384, 1073725440, 605372416, 817971200, 271499264, 586072064, 555335680, 781336576, 961101824, 175980544, 184795136, 77185024, 1003339776, 352468992, 494387200, 514605056, 171884544, 200065024, 141574144, 469811200, 608223232, 457195520, 47235072, 298893312, 314359808, 727465984, 804044800, 723795968, 89243648, 1050624000, 856276992, 546553856],
  123456: [28450816, 196222976, 329916416, 483516416, 181657600, 218243072, 768614400, 498278400, 758554624, 267427840, 535912448, 838787072, 592683008, 301129728, 819634176, 710139904, 613441536, 399056896, 947052544, 168747008, 126803968, 647389184, 500867072, 533602304, 800071680, 563126272, 925409280, 481878016, 787505152, 349233152, 724049920, 81289216],
  1048575: [1024, 1006648320, 828646400, 494291968, 929870848, 851446784, 354022400, 954000384, 794608640, 444587008, 813575168, 798041088, 319628288, 38964224, 829731840, 250430464, 214109184, 621011968, 218905600, 524303360, 24394752, 279743488, 96297984, 329747456, 95171584, 352379904, 813822976, 806161408, 38919168, 926131200, 966005760, 861674496],
};

describe('Sobol (Joe & Kuo 6.21201)', () => {
  it('supports at least 21 dimensions', () => {
    expect(SOBOL_MAX_DIMS).toBeGreaterThanOrEqual(21);
    expect(() => new SobolSequence(SOBOL_MAX_DIMS + 1)).toThrow(/dimensions must be 1\.\./);
  });

  it('reproduces scipy.stats.qmc.Sobol (unscrambled): first 16 points and deep points', () => {
    const s = new SobolSequence(32);
    for (let i = 0; i < 16; i++) expect(Array.from(s.pointU32(i), (x) => x >>> 28)).toEqual(SCIPY_FIRST16_X16[i]);
    for (const [i, want] of Object.entries(SCIPY_DEEP_X2_30)) expect(Array.from(s.pointU32(Number(i)), (x) => x >>> 2)).toEqual(want);
  });

  it('uniforms: Gray-code stepping equals direct points, chunking does not matter, values in (0, 1)', () => {
    const s = new SobolSequence(7, 99);
    const whole = s.uniforms(0, 3000);
    const parts = [s.uniforms(0, 1), s.uniforms(1, 1022), s.uniforms(1023, 1977)];
    const joined = new Float64Array(3000 * 7);
    let o = 0;
    for (const p of parts) {
      joined.set(p, o);
      o += p.length;
    }
    expect(joined).toEqual(whole);
    const direct = new Uint32Array(7);
    for (const i of [0, 1, 2, 1023, 1024, 2999]) {
      s.pointU32(i, direct);
      for (let d = 0; d < 7; d++) expect(whole[i * 7 + d]).toBe(((direct[d] ^ s.shift[d]) >>> 0) * 2 ** -32 + 2 ** -33);
    }
    expect(whole.every((u) => u > 0 && u < 1)).toBe(true);
  });

  it('the first 2^m points stratify every dimension (one per 2^-m cell), with or without the shift', () => {
    const m = 10;
    for (const shift of [undefined, 12345]) {
      const u = new SobolSequence(SOBOL_MAX_DIMS, shift).uniforms(0, 2 ** m);
      for (let d = 0; d < SOBOL_MAX_DIMS; d++) {
        const seen = new Uint8Array(2 ** m);
        for (let i = 0; i < 2 ** m; i++) seen[Math.floor(u[i * SOBOL_MAX_DIMS + d] * 2 ** m)]++;
        expect(seen.every((c) => c === 1)).toBe(true);
      }
    }
  });

  it('dimensions 1-2 form a (0, m, 2)-net: every 2^-a x 2^-(m-a) box holds one of the first 2^m points', () => {
    const m = 8;
    const u = new SobolSequence(2).uniforms(0, 2 ** m);
    for (let a = 0; a <= m; a++) {
      const seen = new Uint8Array(2 ** m);
      for (let i = 0; i < 2 ** m; i++) seen[Math.floor(u[2 * i] * 2 ** a) * 2 ** (m - a) + Math.floor(u[2 * i + 1] * 2 ** (m - a))]++;
      expect(seen.every((c) => c === 1)).toBe(true);
    }
  });

  it('has a far lower L2-star discrepancy than random points', () => {
    const uniformRows = (seed: number, n: number, D: number) => {
      const u = new Float64Array(n * D);
      for (let i = 0; i < n; i++) {
        const s = new PhiloxStream(seed, RngPurpose.user, i);
        for (let d = 0; d < D; d++) u[i * D + d] = s.uniform();
      }
      return u;
    };
    // E[T^2] = (2^-D - 3^-D) / n for independent uniforms (Warnock); a Sobol set's T^2 falls like
    // (log n)^D / n^2: measured ratios to E are ~0.005 (D = 2, n = 512) and ~0.085 (D = 5, n = 1024)
    // for three shifts; bounds at 5x / 1.8x those leave room for other shifts.
    for (const [n, D, bound] of [[512, 2, 0.03], [1024, 5, 0.15]] as const) {
      const expectedRandom = (2 ** -D - 3 ** -D) / n;
      const sobol = l2StarDiscrepancySq(new SobolSequence(D, 7).uniforms(0, n), n, D);
      const random = l2StarDiscrepancySq(uniformRows(1, n, D), n, D);
      // T^2 of a random set is a positive variable with sd ~ its mean: it lands within [0.2, 5] E.
      expect(random).toBeGreaterThan(0.2 * expectedRandom);
      expect(random).toBeLessThan(5 * expectedRandom);
      expect(sobol).toBeLessThan(bound * expectedRandom);
    }
  });
});

describe('Latin hypercube', () => {
  for (const [n, dims] of [[1, 3], [997, 6], [1024, 2]] as const) {
    it(`hits every stratum of every dimension exactly once (n = ${n}, ${dims} dims)`, () => {
      const u = new LatinHypercube(n, dims, 42).uniforms(0, n);
      for (let d = 0; d < dims; d++) {
        const seen = new Uint16Array(n);
        for (let i = 0; i < n; i++) {
          const x = u[i * dims + d];
          expect(x > 0 && x < 1).toBe(true);
          seen[Math.floor(x * n)]++;
        }
        expect(seen.every((c) => c === 1)).toBe(true);
      }
    });
  }

  it('chunks equal the whole; seeds and dimensions differ', () => {
    const lhs = new LatinHypercube(500, 4, 9);
    const whole = lhs.uniforms(0, 500);
    const joined = new Float64Array(500 * 4);
    joined.set(lhs.uniforms(0, 123), 0);
    joined.set(lhs.uniforms(123, 377), 123 * 4);
    expect(joined).toEqual(whole);
    expect(new LatinHypercube(500, 4, 10).uniforms(0, 500)).not.toEqual(whole);
    expect(Array.from(lhsPermutation(500, 9, 0))).not.toEqual(Array.from(lhsPermutation(500, 9, 1)));
    expect(() => lhs.uniforms(400, 101)).toThrow(/outside the design of 500/);
  });

  it('permutations are uniform (all 24 of 4 elements over 4800 streams: chi-square, 23 dof, 99.9 % quantile 49.73)', () => {
    const counts = new Map<string, number>();
    const trials = 4800;
    for (let d = 0; d < trials; d++) {
      const key = Array.from(lhsPermutation(4, 123, d)).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    const e = trials / 24;
    const chi2 = [...counts.values()].reduce((a, c) => a + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(49.73);
  });
});
