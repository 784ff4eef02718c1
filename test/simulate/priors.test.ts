import { describe, expect, it } from 'vitest';
import {
  type PriorInput,
  PriorSchema,
  type PriorSpec,
  ThetaSampler,
  betaCdf,
  betaQuantile,
  compilePriors,
  lnGamma,
  normalCdf,
  normalConstants,
  normalQuantile,
} from '../../src/simulate/priors.js';
import { column, ksCritical, ksStatistic } from './stats.js';

describe('special functions (float64)', () => {
  it('normal quantile matches scipy.special.ndtri and inverts the CDF to 1e-13', () => {
    // scipy 1.17 ndtri values.
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 14);
    expect(normalQuantile(0.3)).toBeCloseTo(-0.5244005127080409, 14);
    expect(normalQuantile(1e-10) / -6.361340902404056).toBeCloseTo(1, 14);
    expect(normalQuantile(1e-300) / -37.0470962993612).toBeCloseTo(1, 13);
    for (const p of [1e-200, 1e-50, 1e-9, 0.001, 0.02, 0.02425, 0.1, 0.4, 0.5, 0.6, 0.9, 0.999]) {
      const back = normalCdf(normalQuantile(p));
      expect(Math.abs(back - p) / p).toBeLessThan(1e-13);
    }
  });

  it('Beta quantile matches scipy.special.betaincinv and inverts the CDF', () => {
    expect(betaQuantile(0.3, 2.5, 0.7)).toBeCloseTo(0.7097758912148804, 12);
    expect(betaQuantile(0.9, 0.3, 0.4)).toBeCloseTo(0.9812695283421334, 12);
    expect(betaQuantile(1e-6, 3, 3) / 0.004652416361586582).toBeCloseTo(1, 10);
    for (const [a, b] of [[1, 3], [2, 1], [0.2, 0.2], [5, 50], [1, 1]]) {
      for (const p of [1e-8, 0.01, 0.3, 0.5, 0.77, 0.999]) {
        const x = betaQuantile(p, a, b);
        // 1e-12, or the CDF's step over a few ulp of x where it is steep (Beta(0.2, 0.2) near 1:
        // x = 1 - 2.5e-14 has only ~2 significant digits of 1 - x, scipy gives the same x).
        const step = Math.abs(betaCdf(Math.max(0, x - 4 * Number.EPSILON * x), a, b) - betaCdf(Math.min(1, x + 4 * Number.EPSILON * x), a, b));
        expect(Math.abs(betaCdf(x, a, b) - p)).toBeLessThan(1e-12 + step);
      }
    }
  });

  it('lnGamma', () => {
    expect(lnGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13);
    expect(lnGamma(10)).toBeCloseTo(Math.log(362880), 12);
    expect(lnGamma(1e-3)).toBeCloseTo(6.907178885383854, 12); // ln Γ(0.001), scipy.special.gammaln
  });
});

describe('prior schema', () => {
  const parse = (v: PriorInput) => PriorSchema.safeParse(v);
  it('accepts every kind and the fixed shorthand', () => {
    expect(parse({ prior: 'uniform', low: 0, high: 1 }).success).toBe(true);
    expect(parse({ prior: 'loguniform', low: 1e7, high: 1e10 }).success).toBe(true);
    expect(parse({ prior: 'normal', mean: 0, sigma: 1 }).success).toBe(true);
    expect(parse({ prior: 'dirichlet', alpha: [1, 1, 1, 1] }).success).toBe(true);
    expect(parse(-2).data).toEqual({ prior: 'fixed', value: -2 });
    expect(parse([0.2, 0.5, 0.7]).data).toEqual({ prior: 'fixed', value: [0.2, 0.5, 0.7] });
  });

  it('rejects bad ranges with messages naming the key', () => {
    const msg = (v: unknown) => {
      const r = PriorSchema.safeParse(v);
      expect(r.success).toBe(false);
      return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    expect(msg({ prior: 'uniform', low: 2, high: 1 })).toMatch(/high: high must be > low \(2\), got 1/);
    expect(msg({ prior: 'loguniform', low: 0, high: 1 })).toMatch(/low: low must be > 0/);
    expect(msg({ prior: 'normal', mean: 0, sigma: 0 })).toMatch(/sigma: sigma must be > 0/);
    expect(msg({ prior: 'normal', mean: 0, sigma: 1, low: 40, high: 41 })).toMatch(/low: the truncation \[40, 41\] keeps only .* \(need >= 1e-30/);
    expect(msg({ prior: 'dirichlet', alpha: [1] })).toMatch(/alpha: alpha needs 2\.\.16/);
    expect(msg({ prior: 'dirichlet', alpha: [1, 0] })).toMatch(/alpha\.1: alpha must be in \[0\.001, 10000\]/);
    expect(msg({ prior: 'gaussian', mean: 0 })).toMatch(/prior must be one of uniform, loguniform, normal, fixed, dirichlet/);
    expect(msg({ prior: 'uniform', low: 0, high: 1, mean: 3 })).toMatch(/Unrecognized key|unknown key/);
  });

  it('truncated normal constants do not cancel in either tail', () => {
    const up = normalConstants({ mean: 0, sigma: 1, low: 8, high: 9 });
    expect(up.qb / 1.1285884059538324e-19).toBeCloseTo(1, 12); // Q(9), scipy.special.ndtr(-9)
    expect(up.w / (6.22096057427174e-16 - 1.1285884059538324e-19)).toBeCloseTo(1, 12); // Q(8) - Q(9)
    const free = normalConstants({ mean: 3, sigma: 2 });
    expect(free).toEqual({ a: -Infinity, b: Infinity, pa: 0, qb: 0, w: 1 });
  });
});

/** Analytic CDF of each theta column of a compiled prior (Dirichlet cumulative sums are Beta). */
function columnCdfs(spec: PriorSpec): ((x: number) => number)[] {
  switch (spec.prior) {
    case 'uniform':
      return [(x) => (x - spec.low) / (spec.high - spec.low)];
    case 'loguniform':
      return [(x) => Math.log(x / spec.low) / Math.log(spec.high / spec.low)];
    case 'normal': {
      const c = normalConstants(spec);
      return [(x) => (normalCdf((x - spec.mean) / spec.sigma) - c.pa) / c.w];
    }
    case 'dirichlet': {
      const a0 = spec.alpha.reduce((a, b) => a + b, 0);
      let cum = 0;
      return spec.alpha.slice(0, -1).map((a) => {
        cum += a;
        const s = cum;
        return (x: number) => betaCdf(x, s, a0 - s);
      });
    }
    default:
      return [];
  }
}

const SPECS: [string, PriorSpec][] = [
  ['u', { prior: 'uniform', low: 0.01, high: 14 }],
  ['lu', { prior: 'loguniform', low: 1e7, high: 1e10 }],
  ['n', { prior: 'normal', mean: -1, sigma: 0.3 }],
  ['tn', { prior: 'normal', mean: 0, sigma: 1, low: 1.5, high: 6 }],
  ['q', { prior: 'dirichlet', alpha: [1, 1, 1, 1] }],
  ['d', { prior: 'dirichlet', alpha: [0.4, 2, 6] }],
];
const SET = compilePriors(SPECS.map(([name, spec]) => ({ name, spec })));

describe('theta sampling by design (every prior kind)', () => {
  const n = 4096;
  for (const design of ['random', 'lhs', 'sobol'] as const) {
    it(`${design}: every column follows its prior (KS); ${design === 'random' ? 'alpha 1e-3' : 'stratified scalar columns within 1/n'}`, () => {
      const theta = new ThetaSampler(SET, { design, seed: 2718, n }).sample(0, n);
      for (const p of SET.priors) {
        const cdfs = columnCdfs(p.spec);
        cdfs.forEach((cdf, k) => {
          const x = column(theta, n, SET.nCols, p.col + k);
          const [lo, hi] = p.spec.prior === 'dirichlet' ? [0, 1] : [(p.spec as { low?: number }).low ?? -Infinity, (p.spec as { high?: number }).high ?? Infinity];
          expect(x.every((v) => v >= lo && v <= hi)).toBe(true);
          const d = ksStatistic(x, cdf);
          // A stratified design (LHS: one point per 1/n stratum; Sobol with n = 2^12: one per 2^-12
          // cell) puts exactly i points below each stratum edge, so D <= 1/n up to rounding of the
          // monotone inverse CDF; stick-breaking's first fraction is such a column too.
          const stratified = design !== 'random' && (p.spec.prior !== 'dirichlet' || k === 0);
          expect(d, `${design} ${p.name}[${k}]`).toBeLessThan(stratified ? 1 / n + 1e-9 : ksCritical(n));
        });
      }
    });

    it(`${design}: chunks equal one call`, () => {
      const s = new ThetaSampler(SET, { design, seed: 17, n: 1000 });
      const whole = s.sample(0, 1000);
      const joined = new Float64Array(whole.length);
      joined.set(s.sample(0, 401), 0);
      joined.set(s.sample(401, 599), 401 * SET.nCols);
      expect(joined).toEqual(whole);
      expect(new ThetaSampler(SET, { design, seed: 18, n: 1000 }).sample(0, 1000)).not.toEqual(whole);
    });
  }

  it('Dirichlet cumulative sums are strictly increasing in (0, 1)', () => {
    for (const design of ['random', 'lhs', 'sobol'] as const) {
      const theta = new ThetaSampler(SET, { design, seed: 5, n: 2000 }).sample(0, 2000);
      const q = SET.priors.find((p) => p.name === 'q')!;
      for (let i = 0; i < 2000; i++) {
        const t = [0, 1, 2].map((k) => theta[i * SET.nCols + q.col + k]);
        expect(0 < t[0] && t[0] < t[1] && t[1] < t[2] && t[2] < 1).toBe(true);
      }
    }
  });

  it('layout: columns and design dimensions are consecutive; Dirichlets get their own sub-streams', () => {
    expect(SET.nCols).toBe(4 + 3 + 2);
    expect(SET.dims).toBe(9);
    expect(SET.priors.map((p) => [p.col, p.nCols, p.sub])).toEqual([[0, 1, 0], [1, 1, 0], [2, 1, 0], [3, 1, 0], [4, 3, 1], [7, 2, 2]]);
  });

  it('errors: lhs needs the library size; rows beyond it', () => {
    expect(() => new ThetaSampler(SET, { design: 'lhs', seed: 1 })).toThrow(/total number of rows n is required/);
    expect(() => new ThetaSampler(SET, { design: 'sobol', seed: 1, n: 10 }).sample(5, 6)).toThrow(/beyond the library size 10/);
  });
});
