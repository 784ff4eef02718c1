import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { BOLTZMANN_ERG_K, PLANCK_ERG_S, SPEED_OF_LIGHT_AA_S } from '../../src/physics/constants.js';
import {
  HBETA_ERG_PER_IONISING_PHOTON,
  INOUE11_Z_LABELS,
  addNebularEmission,
  depositLines,
  frequencyCellWidthsHz,
  ionisingPhotonRateFromLlambda,
  ionisingPhotonRateFromLnu,
  loadInoue11,
  nebularBaseTemplate,
  nebularBaseTemplates,
  nebularInterpolationWeights,
  nebularLineLuminositiesPerPhoton,
  nebularTemplatePerPhoton,
  parseInoue11Continuum,
  parseInoue11Lines,
  type Inoue11Table,
} from '../../src/physics/nebular.js';
import { resolveDataDir } from '../../src/io/paths.js';
import { expectAllClose } from '../helpers/allclose.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'nebular');
const INOUE_DIR = path.join(resolveDataDir(), 'nebular', 'inoue11');
const fixture = async (name: string): Promise<string> => readFile(path.join(FIXTURES, name), 'utf8');

let table: Inoue11Table;
beforeAll(async () => {
  table = await loadInoue11(INOUE_DIR);
});

/** Trapezoid rule in ν over the samples, written independently of frequencyCellWidthsHz. */
function trapezoidNu(wavelengthAA: ArrayLike<number>, lnu: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i + 1 < wavelengthAA.length; i++)
    s += 0.5 * (lnu[i] + lnu[i + 1]) * (SPEED_OF_LIGHT_AA_S / wavelengthAA[i] - SPEED_OF_LIGHT_AA_S / wavelengthAA[i + 1]);
  return s;
}

describe('Inoue 2011 reader', () => {
  it('reads the six metallicities with the CIGALE column choice', () => {
    expect(table.lineWavelengthAA.length).toBe(124);
    expect(table.continuumWavelengthAA.length).toBe(1600);
    expect(table.lineWavelengthAA[table.hbetaIndex]).toBe(4861);
    // lines_0.02.dat: 5007 and 4861 rows, file columns 4 / 8 / 12 (log U = -3 / -2 / -1).
    const i5007 = table.lineWavelengthAA.indexOf(5007);
    const zi = 4; // Z = 0.02
    expect(table.lineRatioToHbeta[zi][0][i5007]).toBeCloseTo(10 ** (40.951 - 40.726), 12);
    expect(table.lineRatioToHbeta[zi][1][i5007]).toBeCloseTo(10 ** (41.315 - 40.734), 12);
    expect(table.lineRatioToHbeta[zi][2][i5007]).toBeCloseTo(10 ** (41.443 - 40.739), 12);
    for (const u of [0, 1, 2]) expect(table.lineRatioToHbeta[zi][u][table.hbetaIndex]).toBe(1);
    // continuum_0.02.dat last row (1e10 A), column 4, per photon with Q_ref(0.02) = 1.24713e53.
    expect(table.continuumLnuPerPhoton[zi][0][1599] / (2.04015e27 / 1.24713e53)).toBeCloseTo(1, 14);
  });

  it('accepts comments and blank lines', async () => {
    const f = parseInoue11Lines(await fixture('lines_valid.dat'), 'lines_valid.dat');
    expect(Array.from(f.wavelengthAA)).toEqual([303.8, 584.3, 625.6, 4861, 4922, 4959, 5007]);
    expect(f.models[2][3]).toBe(40.726);
  });

  it('names file and line on malformed files', async () => {
    const cases: [string, (t: string, s: string) => unknown, RegExp][] = [
      ['lines_truncated.dat', parseInoue11Lines, /lines_truncated\.dat:6: expected 13 columns .*found 5 \(truncated file\?\)/],
      ['lines_bad_number.dat', parseInoue11Lines, /lines_bad_number\.dat:4: column 5 \("39\.O99"\) is not a number/],
      ['lines_no_hbeta.dat', parseInoue11Lines, /lines_no_hbeta\.dat: expected exactly one H-beta row/],
      ['continuum_nonmonotonic.dat', parseInoue11Continuum, /continuum_nonmonotonic\.dat:6: wavelengths must increase strictly \(2675 -> 2665\)/],
      ['continuum_negative.dat', parseInoue11Continuum, /continuum_negative\.dat:4: column 13: L_nu must be >= 0/],
    ];
    for (const [name, parse, re] of cases) expect(() => parse(fixtureText[name], name), name).toThrow(re);
  });
  const fixtureText: Record<string, string> = {};
  beforeAll(async () => {
    for (const n of ['lines_truncated.dat', 'lines_bad_number.dat', 'lines_no_hbeta.dat', 'continuum_nonmonotonic.dat', 'continuum_negative.dat'])
      fixtureText[n] = await fixture(n);
  });

  it('detects a file truncated at a row boundary and a missing file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'inoue11-'));
    try {
      await mkdir(dir, { recursive: true });
      for (const z of INOUE11_Z_LABELS)
        for (const kind of ['lines', 'continuum']) await copyFile(path.join(INOUE_DIR, `${kind}_${z}.dat`), path.join(dir, `${kind}_${z}.dat`));
      const cut = path.join(dir, 'continuum_0.008.dat');
      const rows = (await readFile(cut, 'utf8')).split('\n');
      await writeFile(cut, rows.slice(0, 1599).join('\n') + '\n');
      await expect(loadInoue11(dir)).rejects.toThrow(/continuum_0\.008\.dat: 1599 continuum rows but .*continuum_0\.0001\.dat has 1600 \(truncated file\?\)/);
      await rm(path.join(dir, 'lines_0.05.dat'));
      await expect(loadInoue11(dir)).rejects.toThrow(/lines_0\.05\.dat: cannot read/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Lyman-continuum photon rate', () => {
  it('flat L_lambda: exact, with the Lyman limit between two samples (BC03 has 905 and 915 A)', () => {
    const lam = [100, 250, 400, 611.1, 800, 905, 915, 1200, 2000];
    const K = 3.2e30; // erg/s/A
    // ∫_100^911.8 K λ/(hc) dλ: the integrand is linear in λ, which the trapezoid + linear
    // interpolation to 911.8 integrates exactly (rounding only).
    const want = (K / (PLANCK_ERG_S * SPEED_OF_LIGHT_AA_S)) * (911.8 ** 2 - 100 ** 2) / 2;
    expect(ionisingPhotonRateFromLlambda(lam, lam.map(() => K)) / want).toBeCloseTo(1, 13);
    const lnu = lam.map((l) => (K * l * l) / SPEED_OF_LIGHT_AA_S); // the same spectrum as L_nu
    expect(ionisingPhotonRateFromLnu(lam, lnu) / want).toBeCloseTo(1, 13);
    // Nothing below the limit -> 0.
    expect(ionisingPhotonRateFromLnu([1000, 2000], [1, 1])).toBe(0);
  });

  it('blackbody: matches the analytic integral', () => {
    const T = 5e4;
    const hc = PLANCK_ERG_S * SPEED_OF_LIGHT_AA_S; // erg A
    const kappa = (BOLTZMANN_ERG_K * T) / hc; // 1/A
    // L_λ = λ^-5 / (e^x - 1), x = hc/(λkT): Q = κ³/(hc) ∫_{xL}^∞ x²/(e^x-1) dx,
    // ∫_{x0}^∞ x² e^{-kx} dx = e^{-k x0}(x0²/k + 2x0/k² + 2/k³) summed over k.
    const xL = 1 / (kappa * 911.8);
    let I = 0;
    for (let k = 1; k < 200; k++) I += Math.exp(-k * xL) * (xL * xL / k + (2 * xL) / k ** 2 + 2 / k ** 3);
    const want = (kappa ** 3 / hc) * I;
    const n = 40000;
    const lam = Float64Array.from({ length: n }, (_, i) => 10 + (2990 * i) / (n - 1)); // 10..3000 A, h = 0.075 A
    const llam = Float64Array.from(lam, (l) => l ** -5 / Math.expm1(1 / (kappa * l)));
    // Trapezoid error ~ h²/12 · |f''/f| with f varying on ~50 A: (0.075/50)²/12 ≈ 2e-7; the part
    // below 10 A is e^-288. Tolerance 1e-6.
    expect(ionisingPhotonRateFromLlambda(lam, llam) / want).toBeCloseTo(1, 6);
  });
});

describe('nebular lines and templates', () => {
  it('H-beta = 4.757e-13 Q exactly, other lines at the interpolated tabulated ratios', () => {
    const i5007 = table.lineWavelengthAA.indexOf(5007);
    const at = nebularLineLuminositiesPerPhoton(table, 0.02, -2);
    expect(at[table.hbetaIndex]).toBe(HBETA_ERG_PER_IONISING_PHOTON);
    expect(at[i5007] / HBETA_ERG_PER_IONISING_PHOTON).toBeCloseTo(10 ** (41.315 - 40.734), 12);
    // Between the tabulated models: Z = 0.011 (log10 Z weight of 0.02: ln(11/8)/ln(2.5)), log U = -2.3.
    const Z = 0.011;
    const wz = Math.log(11 / 8) / Math.log(2.5);
    const wu = 0.7; // weight of log U = -2
    const mid = nebularLineLuminositiesPerPhoton(table, Z, -2.3);
    // Σ weights = 1 to rounding, Hβ ratio 1 in every model.
    expect(mid[table.hbetaIndex] / HBETA_ERG_PER_IONISING_PHOTON).toBeCloseTo(1, 15);
    // File values (lines_0.008.dat / lines_0.02.dat, columns 4 and 8 of the 5007 and 4861 rows).
    const want =
      (1 - wz) * (1 - wu) * 10 ** (41.289 - 40.83) +
      (1 - wz) * wu * 10 ** (41.644 - 40.835) +
      wz * (1 - wu) * 10 ** (40.951 - 40.726) +
      wz * wu * 10 ** (41.315 - 40.734);
    expect(mid[i5007] / HBETA_ERG_PER_IONISING_PHOTON / want).toBeCloseTo(1, 12);
    // Clamping: beyond the tables = the edge models.
    expect(Array.from(nebularLineLuminositiesPerPhoton(table, 0.1, 0))).toEqual(Array.from(nebularLineLuminositiesPerPhoton(table, 0.05, -1)));
    expect(nebularInterpolationWeights(table, 1e-5, -4)).toEqual([{ zIndex: 0, uIndex: 0, weight: 1 }]);
    expect(nebularInterpolationWeights(table, 0.011, -2, 'nearest')).toEqual([{ zIndex: 3, uIndex: 1, weight: 1 }]);
  });

  it('deposition conserves every line on a coarse grid and picks the cell nearest in frequency', () => {
    // 40 log-spaced samples 912 A .. 1e6 A: several lines share cells.
    const grid = Float64Array.from({ length: 40 }, (_, i) => 912 * Math.pow(1e6 / 912, i / 39));
    const L = nebularLineLuminositiesPerPhoton(table, 0.004, -2.6).map((v) => v * 1e53);
    const lnu = depositLines(grid, table.lineWavelengthAA, L);
    let inside = 0;
    table.lineWavelengthAA.forEach((l, k) => {
      if (l >= grid[0] && l <= grid[grid.length - 1]) inside += L[k];
    });
    // Trapezoid in ν is exactly Σ L_ν,i Δν_i: rounding only (124 lines, 40 cells).
    expect(trapezoidNu(grid, lnu) / inside).toBeCloseTo(1, 13);
    // Each line individually: alone on the grid, in the cell whose sample is nearest in ν.
    for (let k = 0; k < L.length; k++) {
      const l = table.lineWavelengthAA[k];
      if (!(l >= grid[0] && l <= grid[grid.length - 1])) continue;
      const one = depositLines(grid, [l], [L[k]]);
      const cell = one.findIndex((v) => v > 0);
      const nu = SPEED_OF_LIGHT_AA_S / l;
      let nearest = 0;
      for (let i = 1; i < grid.length; i++)
        if (Math.abs(SPEED_OF_LIGHT_AA_S / grid[i] - nu) < Math.abs(SPEED_OF_LIGHT_AA_S / grid[nearest] - nu)) nearest = i;
      expect(cell, `line ${l}`).toBe(nearest);
      expect((one[cell] * frequencyCellWidthsHz(grid)[cell]) / L[k]).toBeCloseTo(1, 14);
    }
    // Lines outside the grid are dropped.
    expect(Array.from(depositLines(grid, [500, 2e6], [1, 1])).every((v) => v === 0)).toBe(true);
  });

  it('template per photon: continuum from the table, zero below 911.8 A, linear in the base templates', () => {
    // Continuum table samples 1955 .. 2300 A: no lines there (C III] 1909, C II] 2326), so the base
    // template equals the tabulated L_nu / Q_ref at the table's own wavelengths.
    const rows: number[] = [];
    table.continuumWavelengthAA.forEach((l, i) => {
      if (l >= 1950 && l <= 2300) rows.push(i);
    });
    const lam = rows.map((i) => table.continuumWavelengthAA[i]);
    const base = nebularBaseTemplate(table, lam, 4, 0);
    expect(Array.from(base)).toEqual(rows.map((i) => table.continuumLnuPerPhoton[4][0][i]));
    expect(base[0] / (4.40088e26 / 1.24713e53)).toBeCloseTo(1, 14); // continuum_0.02.dat, 1955 A, column 4

    const grid = Float64Array.from({ length: 600 }, (_, i) => 200 * Math.pow(1e5 / 200, i / 599));
    const tpl = nebularTemplatePerPhoton(table, grid, 0.011, -2.3);
    for (let i = 0; i < grid.length && grid[i] < 911.8; i++) expect(tpl[i]).toBe(0);
    const bases = nebularBaseTemplates(table, grid);
    const combo = new Float64Array(grid.length);
    for (const { zIndex, uIndex, weight } of nebularInterpolationWeights(table, 0.011, -2.3))
      bases[zIndex][uIndex].forEach((v, i) => (combo[i] += weight * v));
    // Same sums in the same order: identical to rounding.
    expectAllClose(tpl, combo, { rtol: 1e-15, atol: 0, label: 'template = Σ w base' });
  });

  it('addNebularEmission: stellar LyC removed, H-beta carries 4.757e-13 Q(H)', () => {
    const grid = Float64Array.from({ length: 800 }, (_, i) => 100 * Math.pow(1e5 / 100, i / 799));
    // A hot stellar spectrum: blackbody at 4e4 K, scaled to ~1e53 ionising photons/s.
    const kT = (BOLTZMANN_ERG_K * 4e4) / (PLANCK_ERG_S * SPEED_OF_LIGHT_AA_S);
    const lnuStar = Float64Array.from(grid, (l) => ((1e56 * l ** -3) / Math.expm1(1 / (kT * l))) * 1e20);
    const tpl = nebularTemplatePerPhoton(table, grid, 0.02, -2);
    const { lnuErgSHz, qHPhotonsS } = addNebularEmission(grid, lnuStar, tpl);
    expect(qHPhotonsS).toBe(ionisingPhotonRateFromLnu(grid, lnuStar));
    expect(qHPhotonsS).toBeGreaterThan(0);
    for (let i = 0; i < grid.length && grid[i] < 911.8; i++) expect(lnuErgSHz[i]).toBe(0);
    // The nebular part of the output carries Q × (lines + continuum): its H-beta is 4.757e-13 Q(H).
    const lines = nebularLineLuminositiesPerPhoton(table, 0.02, -2);
    expect(lines[table.hbetaIndex] * qHPhotonsS).toBe(HBETA_ERG_PER_IONISING_PHOTON * qHPhotonsS);
    // Luminosity bookkeeping through the trapezoid in ν: output − stellar(λ >= 911.8) − Q × continuum
    // = Q × Σ lines with 911.8 <= λ <= 1e5 A (the continuum-only template is the template minus the
    // deposited lines there). Rounding of ~1e3 terms of mixed size: 1e-12.
    const stellarKept = Float64Array.from(grid, (l, i) => (l < 911.8 ? 0 : lnuStar[i]));
    const keep = table.lineWavelengthAA.map((l) => (l >= 911.8 && l <= 1e5 ? 1 : 0));
    const deposited = depositLines(grid, table.lineWavelengthAA, lines.map((v, k) => v * keep[k]));
    const continuumOnly = Float64Array.from(tpl, (v, i) => v - deposited[i]);
    const nebularLines = trapezoidNu(grid, lnuErgSHz) - trapezoidNu(grid, stellarKept) - qHPhotonsS * trapezoidNu(grid, continuumOnly);
    const wantLines = qHPhotonsS * lines.reduce((acc, v, k) => acc + v * keep[k], 0);
    expect(nebularLines / wantLines).toBeCloseTo(1, 10);
    // Total output = stellar (λ >= 911.8) + Q × template, exactly.
    expect(lnuErgSHz[500]).toBe(lnuStar[500] + qHPhotonsS * tpl[500]);
  });
});
