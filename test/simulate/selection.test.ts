/**
 * Detection selection (src/simulate/selection.ts): the S/N rules, config errors, and a GPU-simulated
 * library whose rows all pass the cut and are distributed as the passing rows of an unselected
 * library of the same model (two-sample KS on mass and redshift), i.e. draws from p(theta | detected).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLibrary } from '../../src/io/library/index.js';
import { parseSimulationConfig, type SimulationConfigInput } from '../../src/simulate/config.js';
import { candidateBase, detectionSnr, resolveSelection, SelectionConfigSchema, selectionMask } from '../../src/simulate/selection.js';
import { simulateLibrary } from '../../src/simulate/simulate.js';
import { useGpu } from '../helpers/gpu.js';

const sel = (c: Record<string, unknown>, bands = ['a', 'b', 'c']) => resolveSelection(SelectionConfigSchema.parse(c), bands);

describe('detection S/N', () => {
  const flux = [10, 20, -5, /* row 1 */ 1, Number.NaN, 3];
  const err = [1, 2, 5, /* row 1 */ 1, 1, 0];
  it('stack: sum f / sqrt(sum sigma^2); any: best band; all: worst band', () => {
    expect(detectionSnr(sel({ bands: ['a', 'b', 'c'], minSnr: 5 }), flux, err, 0, 3)).toBeCloseTo(25 / Math.sqrt(30), 12);
    expect(detectionSnr(sel({ bands: ['a', 'c'], combine: 'any', minSnr: 5 }), flux, err, 0, 3)).toBe(10);
    expect(detectionSnr(sel({ bands: ['a', 'b', 'c'], combine: 'all', minSnr: 5 }), flux, err, 0, 3)).toBe(-1);
  });
  it('leaves out non-finite values and errors <= 0; a row with no usable band is never selected', () => {
    expect(detectionSnr(sel({ bands: ['a', 'b', 'c'], minSnr: 5 }), flux, err, 1, 3)).toBe(1);
    expect(detectionSnr(sel({ bands: ['a', 'b', 'c'], combine: 'all', minSnr: 0.5 }), flux, err, 1, 3)).toBeNaN();
    expect(detectionSnr(sel({ bands: ['b', 'c'], minSnr: 5 }), flux, err, 1, 3)).toBeNaN();
    expect([...selectionMask(sel({ bands: ['a'], minSnr: 1 }), flux, err, 2, 3)]).toEqual([1, 1]);
    expect([...selectionMask(sel({ bands: ['b', 'c'], minSnr: 1 }), flux, err, 2, 3)]).toEqual([1, 0]);
  });
  it('errors name the key, the band and the allowed values', () => {
    expect(() => sel({ bands: ['z'], minSnr: 5 })).toThrow(/selection\.bands: unknown band "z"; the bands are a, b, c/);
    expect(() => sel({ bands: ['a', 'a'], minSnr: 5 })).toThrow(/listed twice/);
    expect(() => SelectionConfigSchema.parse({ bands: ['a'], minSnr: 0 })).toThrow(/minSnr must be a number in \(0, 1e4\]/);
    expect(() => SelectionConfigSchema.parse({ bands: ['a'], minSnr: 5, combine: 'sum' })).toThrow(/combine must be one of stack, any, all/);
    expect(() => candidateBase(-1)).toThrow(RangeError);
    expect(candidateBase(0)).toBe(2 ** 32);
  });
});

const MODEL: SimulationConfigInput = {
  grid: 'bc03',
  filters: 'jades14',
  sfh: 'delayedExponential',
  parameters: {
    redshift: { prior: 'uniform', low: 0.01, high: 12 },
    log10_mass_formed: { prior: 'uniform', low: 5, high: 11 },
    log10Z: { prior: 'uniform', low: -3, high: -1.6 },
    log10_av: { prior: 'uniform', low: -3, high: 0.5 },
    tau_yr: { prior: 'loguniform', low: 1e8, high: 3e9 },
    start_age_yr: { prior: 'uniform', low: 5e7, high: 1e9 },
  },
  noise: { type: 'depth', depth5SigmaMag: 29, errorFloorFrac: 0.05 },
  features: { photometry: 'flux', includeErrors: true },
  seed: 5,
  chunkSize: 700,
};

describe('config', () => {
  it('a selection needs design random and known bands', () => {
    expect(() => parseSimulationConfig({ ...MODEL, design: 'lhs', n: 10, selection: { bands: ['jwst_f444w'], minSnr: 5 } })).toThrow(/selection: a selection needs design: random/);
    expect(() => parseSimulationConfig({ ...MODEL, selection: { bands: ['jwst_f999w'], minSnr: 5 } })).toThrow(/selection\.bands\.0: unknown band "jwst_f999w"/);
    expect(() => parseSimulationConfig({ ...MODEL, selection: { bands: ['jwst_f444w'] } })).toThrow(/selection\.minSnr/);
  });
});

describe('a selected library (GPU)', () => {
  const g = useGpu();
  const tmp = mkdtempSync(path.join(tmpdir(), 'sel-'));
  const detection = { bands: ['jwst_f277w', 'jwst_f356w', 'jwst_f444w'], combine: 'stack' as const, minSnr: 5 };

  function twoSampleKs(a: number[], b: number[]): number {
    const x = [...a].sort((p, q) => p - q);
    const y = [...b].sort((p, q) => p - q);
    let i = 0;
    let j = 0;
    let d = 0;
    while (i < x.length && j < y.length) {
      const v = Math.min(x[i], y[j]);
      while (i < x.length && x[i] === v) i++;
      while (j < y.length && y[j] === v) j++;
      d = Math.max(d, Math.abs(i / x.length - j / y.length));
    }
    return d;
  }

  it('keeps only detected rows, drawn as the detected rows of the unselected prior', async () => {
    const n = 1500;
    const selected = path.join(tmp, 'selected.h5');
    const res = await simulateLibrary({ gpu: g.gpu, config: parseSimulationConfig({ ...MODEL, selection: detection }), n, out: selected });
    expect(res.computedRows).toBe(n);
    const lib = await readLibrary(selected, { optional: ['fluxes', 'errors'] });
    expect(lib.rows).toBe(n);
    const B = 14;
    const F = lib.xNames.length;
    expect(lib.xNames[0]).toBe('acs_wfc_f435w_flux');
    // The features are the observed fluxes and errors: every row passes the cut on them.
    const r = resolveSelection(SelectionConfigSchema.parse(detection), lib.xNames.slice(0, B).map((c) => c.replace(/_flux$/, '')));
    const obsFlux = new Float64Array(n * B);
    const obsErr = new Float64Array(n * B);
    for (let i = 0; i < n; i++)
      for (let b = 0; b < B; b++) {
        obsFlux[i * B + b] = lib.x[i * F + b];
        obsErr[i * B + b] = lib.x[i * F + B + b];
      }
    const snr = Array.from({ length: n }, (_, i) => detectionSnr(r, obsFlux, obsErr, i, B));
    expect(Math.min(...snr)).toBeGreaterThanOrEqual(5 * (1 - 1e-6));

    // The same model without a selection: its passing rows estimate p(theta | detected).
    const all = path.join(tmp, 'all.h5');
    const nAll = 4000;
    await simulateLibrary({ gpu: g.gpu, config: parseSimulationConfig(MODEL), n: nAll, out: all });
    const ref = await readLibrary(all, {});
    const pass: number[] = [];
    for (let i = 0; i < nAll; i++) {
      const f = Float64Array.from({ length: B }, (_, b) => ref.x[i * F + b]);
      const e = Float64Array.from({ length: B }, (_, b) => ref.x[i * F + B + b]);
      if (detectionSnr(r, f, e, 0, B) >= 5) pass.push(i);
    }
    const accept = pass.length / nAll;
    // The acceptance seen by the selected run agrees with the unselected library's (binomial, 5 sigma).
    const seen = n / res.candidates;
    expect(accept).toBeGreaterThan(0.2);
    expect(accept).toBeLessThan(0.9);
    expect(Math.abs(seen - accept)).toBeLessThan(5 * Math.sqrt((accept * (1 - accept)) / nAll + (seen * (1 - seen)) / res.candidates));
    // Distributions of mass and redshift: the selected library vs the passing rows (KS, alpha = 1e-3),
    // and vs the whole prior, which they must NOT match (the test can fail).
    const P = lib.thetaNames.length;
    for (const name of ['log10_mass_formed', 'redshift']) {
      const p = lib.thetaNames.indexOf(name);
      const a = Array.from({ length: n }, (_, i) => lib.theta[i * P + p]);
      const b = pass.map((i) => ref.theta[i * P + p]);
      const everything = Array.from({ length: nAll }, (_, i) => ref.theta[i * P + p]);
      const crit = 1.949 * Math.sqrt((a.length + b.length) / (a.length * b.length));
      expect(twoSampleKs(a, b), name).toBeLessThan(crit);
      expect(twoSampleKs(a, everything), name).toBeGreaterThan(1.949 * Math.sqrt((a.length + nAll) / (a.length * nAll)));
    }
    // Reproducible: the same config and seed give the same rows.
    const again = path.join(tmp, 'again.h5');
    await simulateLibrary({ gpu: g.gpu, config: parseSimulationConfig({ ...MODEL, selection: detection }), n: 800, out: again });
    const lib2 = await readLibrary(again, {});
    expect(Array.from(lib2.theta.subarray(0, 700 * P))).toEqual(Array.from(lib.theta.subarray(0, 700 * P)));
  }, 300_000);
});
