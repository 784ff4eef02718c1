import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MARASTON_Z_SUN, readMaraston05Grid, readMarastonSed, readMarastonStellarMass } from '../../src/grid/maraston05.js';
import { lnuIndex, type SpsGrid } from '../../src/grid/types.js';
import { resolveDataDir } from '../../src/io/paths.js';
import { SPEED_OF_LIGHT_AA_S } from '../../src/physics/constants.js';

const dir = path.join(resolveDataDir(), 'sps', 'maraston05_kroupa_rhb');
const fixtures = path.join(import.meta.dirname, '..', 'fixtures', 'grid');

let grid: SpsGrid;
let tmp: string;
beforeAll(() => {
  grid = readMaraston05Grid(dir);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'synference-m05-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('Maraston 2005 reader (real files)', () => {
  it('reads 67 ages x 4 metallicities x 1221 wavelengths', () => {
    expect(grid.ages.length).toBe(67);
    expect(grid.metallicities.length).toBe(4);
    expect(grid.wavelengthAA.length).toBe(1221);
    expect(grid.ages[0]).toBe(1e3); // 1e-6 Gyr
    expect(grid.ages[66]).toBe(1.5e10);
    expect(grid.wavelengthAA[0]).toBe(91);
    // [Z/H] from the column: -1.35, -0.33, 0.00, +0.35 -> Z = 0.02 * 10^[Z/H] (rel 1e-15).
    const want = [-1.35, -0.33, 0, 0.35].map((zh) => MARASTON_Z_SUN * 10 ** zh);
    grid.metallicities.forEach((z, i) => expect(Math.abs(z / want[i] - 1)).toBeLessThan(1e-15));
  });

  it('converts F_lambda to L_nu = F_lambda lambda^2 / c', () => {
    // sed.krz002.rhb (Z index 2), first row: 1e-6 Gyr, 91 A, 0.1926E+26 erg/s/A.
    const want = (0.1926e26 * 91 * 91) / SPEED_OF_LIGHT_AA_S;
    expect(Math.abs(grid.lnu[lnuIndex(grid, 0, 2, 0)] / want - 1)).toBeLessThan(1e-15);
    // last row of sed.krz002.rhb: 15 Gyr, 1.6e6 A, 0.5878E+21.
    const w2 = (0.5878e21 * 1.6e6 * 1.6e6) / SPEED_OF_LIGHT_AA_S;
    expect(Math.abs(grid.lnu[lnuIndex(grid, 66, 2, 1220)] / w2 - 1)).toBeLessThan(1e-15);
  });

  it('surviving mass is M*_T and living mass M*_alive of stellarmass.kroupa at the same ([Z/H], age)', () => {
    const rows = readMarastonStellarMass(path.join(dir, 'stellarmass.kroupa'));
    expect(rows.length).toBe(300);
    // [Z/H] = -1.35 at 2 Myr: 0.9960 / 0.9919 (read off the file).
    const iA = grid.ages.findIndex((a) => Math.abs(a - 2e6) < 1);
    expect(grid.survivingMassFraction[iA * 4 + 0]).toBe(0.996);
    expect(grid.livingMassFraction![iA * 4 + 0]).toBe(0.9919);
    // Independent lookup in the raw text for every node ([Z/H] printed with 2 decimals, age with 6).
    const text = readFileSync(path.join(dir, 'stellarmass.kroupa'), 'latin1');
    const zh = ['-1.35', '-0.33', '0.00', '0.35'];
    for (let a = 0; a < 67; a += 11) {
      for (let z = 0; z < 4; z++) {
        const age = (grid.ages[a] / 1e9).toFixed(6);
        const line = text.split('\n').find((l) => l.trim().startsWith(`${zh[z]} `) && l.trim().split(/\s+/)[1] === age);
        expect(line, `${zh[z]} ${age}`).toBeDefined();
        const f = line!.trim().split(/\s+/).map(Number);
        expect(grid.survivingMassFraction[a * 4 + z]).toBe(f[2]);
        expect(grid.livingMassFraction![a * 4 + z]).toBe(f[3]);
      }
    }
    for (let a = 0; a < 67; a++) {
      for (let z = 0; z < 4; z++) {
        expect(grid.survivingMassFraction[a * 4 + z]).toBeGreaterThanOrEqual(grid.livingMassFraction![a * 4 + z]);
      }
    }
  });
});

describe('Maraston 2005 reader (malformed files)', () => {
  it('a truncated last age block is reported with the line', () => {
    expect(() => readMarastonSed(path.join(fixtures, 'maraston_truncated.rhb'))).toThrow(
      /maraston_truncated\.rhb: line \d+: truncated: last age 0\.0001 Gyr has 2 of 3 wavelengths/,
    );
  });
  it('a row with the wrong number of columns names its line', () => {
    expect(() => readMarastonSed(path.join(fixtures, 'maraston_bad_row.rhb'))).toThrow(/maraston_bad_row\.rhb: line 2: 3 columns, expected 4/);
  });
  it('a [Z/H] change inside one file is rejected', () => {
    expect(() => readMarastonSed(path.join(fixtures, 'maraston_mixed_zh.rhb'))).toThrow(/maraston_mixed_zh\.rhb: line 3: \[Z\/H\] = 0\.35 differs/);
  });
  it('an age block with other wavelengths is rejected', () => {
    expect(() => readMarastonSed(path.join(fixtures, 'maraston_wrong_lambda.rhb'))).toThrow(/maraston_wrong_lambda\.rhb: line 4: wavelength 95 A does not match/);
  });
  it('a truncated real file (cut mid-line) is rejected naming the line', () => {
    const src = path.join(dir, 'sed.krz002.rhb');
    const text = readFileSync(src, 'latin1');
    const cut = path.join(tmp, 'sed.cut.rhb');
    writeFileSync(cut, text.slice(0, 1_000_000 + 17));
    expect(() => readMarastonSed(cut)).toThrow(/sed\.cut\.rhb: line \d+: (\d columns, expected 4|truncated)/);
  });
  it('a missing stellar-mass row names stellarmass.kroupa and the node', () => {
    const d = path.join(tmp, 'nomass');
    mkdirSync(d);
    writeFileSync(path.join(d, 'sed.x.rhb'), '  0.00000100    0.00      91.0   1.0E+26\n  0.00000100    0.00      94.0   1.0E+26\n');
    writeFileSync(path.join(d, 'stellarmass.kroupa'), '#[Z/H] t(Gyr) ...\n  0.00  1.000  0.6  0.5  0.05  0.01  0.03  1.7\n');
    expect(() => readMaraston05Grid(d)).toThrow(/stellarmass\.kroupa: no row for \[Z\/H\] = 0, age 0\.000001 Gyr/);
    expect(() => readMaraston05Grid(path.join(tmp, 'missing'))).toThrow(/cannot list Maraston directory/);
  });
});
