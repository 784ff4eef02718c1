import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveDataDir } from '../../src/io/paths.js';
import {
  Inoue14,
  inoue14TauLcDla,
  inoue14TauLcLaf,
  loadInoue14,
  madau1995Tau,
  madau1995Transmission,
  parseDlaCoefficients,
  parseLafCoefficients,
  readInoue14Coefficients,
} from '../../src/physics/igm.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'igm');
const igmDir = path.join(resolveDataDir(), 'igm');
const coeffs = readInoue14Coefficients();
const igm = new Inoue14(coeffs);
const LL = 911.8;
const rel = (a: number, b: number): number => Math.abs(a / b - 1);

describe('Inoue et al. 2014 coefficient files', () => {
  it('reads the 39 lines j = 2..40 of Table 2', () => {
    expect(coeffs.lambdaAA.length).toBe(39);
    expect(coeffs.lambdaAA[0]).toBe(1215.67);
    expect(coeffs.lambdaAA[38]).toBe(912.324);
    expect(coeffs.laf2[0]).toBe(2.35379e-3);
    expect(coeffs.laf3[38]).toBe(9.16925e-8);
    expect(coeffs.dla1[0]).toBe(1.61698e-4);
    expect(coeffs.dla2[38]).toBeGreaterThan(0);
  });

  it('has coefficients that make each line continuous at the redshift breaks', () => {
    // Table 2 is built so that A_j1 (1+z1)^1.2 = A_j2 (1+z1)^3.7 etc. (tau continuous in z_abs).
    // Coefficients are printed with 6 significant figures: rounding allows ~1e-5; tolerance 1e-4.
    // A swapped or misread column breaks this by orders of magnitude.
    for (let j = 0; j < 39; j++) {
      expect(rel(coeffs.laf1[j] * 2.2 ** 1.2, coeffs.laf2[j] * 2.2 ** 3.7), `LAF j=${j + 2} z1`).toBeLessThan(1e-4);
      expect(rel(coeffs.laf2[j] * 5.7 ** 3.7, coeffs.laf3[j] * 5.7 ** 5.5), `LAF j=${j + 2} z2`).toBeLessThan(1e-4);
      expect(rel(coeffs.dla1[j] * 3 ** 2, coeffs.dla2[j] * 3 ** 3), `DLA j=${j + 2} z1`).toBeLessThan(1e-4);
    }
  });

  const bad: [string, 'LAF' | 'DLA', RegExp][] = [
    ['laf_missing_column.txt', 'LAF', /laf_missing_column\.txt:4: expected 5 columns \(j, lambda_j \[A\], A_j1, A_j2, A_j3\), found 4/],
    ['laf_bad_number.txt', 'LAF', /laf_bad_number\.txt:2: A_j3 is not a number column 5 \("2\.0E-0x"\)/],
    ['laf_negative_coefficient.txt', 'LAF', /laf_negative_coefficient\.txt:4: A_j1 must be >= 0 column 3/],
    ['laf_empty.txt', 'LAF', /laf_empty\.txt: no data rows; expected 39 rows/],
    ['dla_skipped_line.txt', 'DLA', /dla_skipped_line\.txt:2: expected line j = 3 .* found j = 4/],
    ['dla_extra_column.txt', 'DLA', /dla_extra_column\.txt:2: expected 4 columns .* found 5/],
  ];
  for (const [file, kind, message] of bad) {
    it(`rejects ${file} naming the file and line`, () => {
      const p = path.join(fixtures, file);
      const text = readFileSync(p, 'utf8');
      const parse = kind === 'LAF' ? () => parseLafCoefficients(text, p) : () => parseDlaCoefficients(text, p);
      expect(parse).toThrow(message);
    });
  }

  describe('whole-file checks (derived from the real files in a temporary folder)', () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'igm-test-'));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));
    const lafText = readFileSync(path.join(igmDir, 'LAFcoeff.txt'), 'utf8');
    const dlaText = readFileSync(path.join(igmDir, 'DLAcoeff.txt'), 'utf8');

    it('reports a file truncated at a line boundary', () => {
      const cut = path.join(tmp, 'LAF_truncated.txt');
      writeFileSync(cut, lafText.split('\n').slice(0, 10).join('\n'));
      expect(() => readInoue14Coefficients({ lafPath: cut, dlaPath: path.join(igmDir, 'DLAcoeff.txt') })).toThrow(
        /LAF_truncated\.txt: the data end after j = 11 \(line 10\); expected 39 rows .* truncated file\?/,
      );
    });

    it('reports a file truncated mid-line', () => {
      const cut = path.join(tmp, 'DLA_cut.txt');
      writeFileSync(cut, dlaText.slice(0, dlaText.indexOf('\n', 500) - 12));
      expect(() => readInoue14Coefficients({ lafPath: path.join(igmDir, 'LAFcoeff.txt'), dlaPath: cut })).toThrow(/DLA_cut\.txt:\d+: /);
    });

    it('reports files that disagree on lambda_j', () => {
      const shifted = path.join(tmp, 'DLA_shifted.txt');
      writeFileSync(shifted, dlaText.replace('1025.720', '1025.730'));
      expect(() => readInoue14Coefficients({ lafPath: path.join(igmDir, 'LAFcoeff.txt'), dlaPath: shifted })).toThrow(
        /DLA_shifted\.txt: lambda_j for j = 3 is 1025\.73 but 1025\.72/,
      );
    });

    it('reports a missing file', () => {
      expect(() => readInoue14Coefficients({ lafPath: path.join(tmp, 'nope.txt'), dlaPath: path.join(tmp, 'nope2.txt') })).toThrow(
        /nope\.txt: cannot read/,
      );
    });
  });
});

describe('Inoue et al. 2014 transmission', () => {
  it('is exactly 1 redward of Lyman-alpha at the source and below 1 just blueward', () => {
    for (const z of [0.1, 1.5, 3, 6.2, 9]) {
      const lya = 1215.67 * (1 + z);
      for (let f = 1; f < 3; f += 0.05) expect(igm.transmission(lya * f, z)).toBe(1);
      expect(igm.transmission(lya * (1 - 1e-6), z)).toBeLessThan(1);
    }
  });

  it('is ~0 blueward of the Lyman limit at high redshift', () => {
    // Inoue+2014 Fig. 7: the mean Lyman-continuum transmission is already < 1e-3 at z ~ 5-6.
    for (const z of [6, 8]) {
      for (let rest = 600; rest <= 850; rest += 10) expect(igm.transmission(rest * (1 + z), z), `z=${z} rest=${rest}`).toBeLessThan(1e-3);
    }
  });

  it('gives the published mean Lyman-alpha forest optical depth at z = 3', () => {
    // Just blueward of Ly-alpha at z_S = 3 only line j = 2 absorbs, in the 1.2 <= z < 4.7 regime:
    // tau_LAF = A_22 * 4^3.7 = 0.3976. Observed tau_eff(z=3) = 0.40 (Becker et al. 2013, MNRAS 430,
    // 2067, fit tau0 (1+z/4.5)^2.90 - 0.132 with tau0 = 0.751, z0 = 3.5), which Inoue+2014 reproduce;
    // 10 % covers the data scatter at z = 3.
    const l = 1215.67 * 4 * (1 - 1e-12);
    const tauLaf = igm.tauLsLaf(l, 3);
    expect(rel(tauLaf, 2.35379e-3 * 4 ** 3.7)).toBeLessThan(1e-11);
    const becker = 0.751 * (4 / 4.5) ** 2.9 - 0.132;
    expect(Math.abs(tauLaf - becker) / becker).toBeLessThan(0.1);
    expect(tauLaf).toBeGreaterThan(0.3);
    expect(tauLaf).toBeLessThan(0.45);
  });

  it('matches hand evaluation of eqs. 21-29', () => {
    // z_S = 3, lambda_obs = 4800 A (rest 1200 A): only Ly-alpha absorbs; LAF in the 1.2-4.7 regime
    // (4800 >= 2.2 * 1215.67), DLA in the >= 2 regime (4800 >= 3 * 1215.67); no Lyman continuum.
    const x = 4800 / 1215.67;
    const tau = 2.35379e-3 * x ** 3.7 + 5.38995e-5 * x ** 3;
    expect(rel(igm.tau(4800, 3), tau)).toBeLessThan(1e-13);
    // Lyman continuum at z_S = 3, lambda_obs = 3000 A: LAF eq. 26 (>= 2.2 lambda_L) and DLA eq. 29 (>= 3 lambda_L).
    const xc = 3000 / LL;
    expect(rel(inoue14TauLcLaf(3000, 3), 2.545e-2 * (4 ** 1.6 * xc ** 2.1 - xc ** 3.7))).toBeLessThan(1e-13);
    expect(rel(inoue14TauLcDla(3000, 3), 0.04696 * 4 ** 3 - 0.01779 * 4 ** 3.3 * xc ** -0.3 - 0.02916 * xc ** 3)).toBeLessThan(1e-13);
    // z_S = 0.8 (< 1.2 and < 2), lambda_obs = 1200 A: eqs. 25 and 28.
    const xl = 1200 / LL;
    expect(rel(inoue14TauLcLaf(1200, 0.8), 0.3248 * (xl ** 1.2 - 1.8 ** -0.9 * xl ** 2.1))).toBeLessThan(1e-13);
    expect(rel(inoue14TauLcDla(1200, 0.8), 0.2113 * 1.8 ** 2 - 0.07661 * 1.8 ** 2.3 * xl ** -0.3 - 0.1347 * xl ** 2)).toBeLessThan(1e-13);
    // z_S = 6 and lambda_obs = 1500 A (< 2.2 lambda_L) and 4000 A (2.2-5.7 lambda_L): eq. 27.
    const a = 1500 / LL;
    const b = 4000 / LL;
    expect(rel(inoue14TauLcLaf(1500, 6), 5.221e-4 * 7 ** 3.4 * a ** 2.1 + 0.3248 * a ** 1.2 - 3.14e-2 * a ** 2.1)).toBeLessThan(1e-13);
    expect(rel(inoue14TauLcLaf(4000, 6), 5.221e-4 * 7 ** 3.4 * b ** 2.1 + 0.2182 * b ** 2.1 - 2.545e-2 * b ** 3.7)).toBeLessThan(1e-13);
    // No continuum absorption redward of lambda_L (1 + z_S).
    expect(inoue14TauLcLaf(LL * 4, 3)).toBe(0);
    expect(inoue14TauLcDla(LL * 4 + 1e-9, 3)).toBe(0);
  });

  it('has Lyman-continuum fits continuous across their wavelength and redshift breaks', () => {
    // The published coefficients have 4 significant figures and the terms reach ~10, so the pieces
    // can disagree by ~1e-3 at the joins (measured <= 5.3e-4): absolute tolerance 1e-3 on tau.
    const e = 1e-9;
    const jump = (f: (l: number, z: number) => number, l: number, z: number) => Math.abs(f(l * (1 - e), z) - f(l * (1 + e), z));
    for (const z of [2, 3, 4.5, 5, 6, 8]) expect(jump(inoue14TauLcLaf, 2.2 * LL, z), `LAF 2.2 lambda_L z=${z}`).toBeLessThan(1e-3);
    for (const z of [5, 6, 8]) expect(jump(inoue14TauLcLaf, 5.7 * LL, z), `LAF 5.7 lambda_L z=${z}`).toBeLessThan(1e-3);
    for (const z of [2.5, 4, 8]) expect(jump(inoue14TauLcDla, 3 * LL, z), `DLA 3 lambda_L z=${z}`).toBeLessThan(1e-3);
    for (const l of [1000, 1500, 1900]) expect(Math.abs(inoue14TauLcLaf(l, 1.2 - e) - inoue14TauLcLaf(l, 1.2))).toBeLessThan(1e-3);
    for (const l of [1000, 2500, 4000, 5000]) expect(Math.abs(inoue14TauLcLaf(l, 4.7 - e) - inoue14TauLcLaf(l, 4.7))).toBeLessThan(1e-3);
    for (const l of [1000, 2000, 2500]) expect(Math.abs(inoue14TauLcDla(l, 2 - e) - inoue14TauLcDla(l, 2))).toBeLessThan(1e-3);
  });

  it("reproduces Synthesizer's Inoue14 (numpy transcription) at reference points", () => {
    // Values from a numpy transcription of Synthesizer's Inoue14.get_transmission (igm.py); same
    // operations, so only pow() rounding differs: 1e-12 relative (a full 4001 x 18 grid agreed to 1e-13).
    const cases: [number, number, number][] = [
      [0.5, 1000, 0.7825780686742742],
      [3, 1000, 0.15076535540754685],
      [3, 3000, 0.17184886593162021],
      [3, 4800, 0.6823358870591981],
      [6, 1000, 0.0015242926231325558],
      [6, 3000, 2.3009150767646674e-6],
      [6, 4800, 5.094785602520965e-7],
      [6, 5500, 5.231066426380066e-6],
      [6, 6000, 0.0002014308589306059],
      [6, 8000, 0.03823486746751051],
    ];
    for (const [z, l, want] of cases) expect(rel(igm.transmission(l, z), want), `z=${z} lambda=${l}`).toBeLessThan(1e-12);
  });

  it('clips negative optical depths (far below the Lyman limit at low z) to transmission 1', () => {
    // At z = 0.01 and lambda_obs = 10 A the DLA continuum fit (eq. 28) is negative: 0.2156 - 0.3034.
    expect(igm.tau(10, 0.01)).toBeLessThan(0);
    expect(igm.transmission(10, 0.01)).toBe(1);
  });

  it('scales tau with scaleTau and vectorises', () => {
    const doubled = new Inoue14(coeffs, { scaleTau: 2 });
    const t1 = igm.transmission(4500, 3);
    expect(rel(doubled.transmission(4500, 3), t1 * t1)).toBeLessThan(1e-14);
    const ls = [3000, 4500, 5000];
    expect(Array.from(igm.transmissionArray(ls, 3))).toEqual(ls.map((l) => igm.transmission(l, 3)));
    expect(loadInoue14().transmission(4500, 3)).toBe(t1);
  });
});

describe('Madau 1995', () => {
  it('matches eq. 12 and footnote 3 by hand and is 1 redward of Lyman-alpha', () => {
    // z = 3, lambda_obs = 4800 A: Ly-alpha only (4800 > 1026 * 4).
    expect(rel(madau1995Tau(4800, 3), 3.6e-3 * (4800 / 1216) ** 3.46)).toBeLessThan(1e-14);
    expect(madau1995Transmission(1216 * 4 + 1e-9, 3)).toBe(1);
    // z = 3, lambda_obs = 3000 A: all four lines plus the photoelectric term with x_c = 3000/912.
    const xc = 3000 / 912;
    const lines = 3.6e-3 * (3000 / 1216) ** 3.46 + 1.7e-3 * (3000 / 1026) ** 3.46 + 1.2e-3 * (3000 / 973) ** 3.46 + 9.3e-4 * (3000 / 950) ** 3.46;
    const lc = 0.25 * xc ** 3 * (4 ** 0.46 - xc ** 0.46) + 9.4 * xc ** 1.5 * (4 ** 0.18 - xc ** 0.18) - 0.7 * xc ** 3 * (xc ** -1.32 - 4 ** -1.32) - 0.023 * (4 ** 1.68 - xc ** 1.68);
    expect(rel(madau1995Tau(3000, 3), lines + lc)).toBeLessThan(1e-14);
    // The photoelectric term vanishes at lambda_L (1 + z): continuous to rounding there.
    expect(Math.abs(madau1995Tau(912 * 4 * (1 - 1e-12), 3) - madau1995Tau(912 * 4 * (1 + 1e-12), 3))).toBeLessThan(1e-9);
    // Just blueward of Ly-alpha at z = 3: 0.0036 * 4^3.46 = 0.436 (the 1e-12 offset moves it by 3.5e-12
    // relative, hence 1e-11), close to Inoue+2014's 0.40 from newer data.
    expect(rel(madau1995Tau(1216 * 4 * (1 - 1e-12), 3), 3.6e-3 * 4 ** 3.46)).toBeLessThan(1e-11);
  });
});
