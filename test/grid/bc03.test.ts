import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BC03_METALLICITY_CODES, ISED_TABLE, parseIsed, readBc03Grid, readGalaxevTable, readIsed } from '../../src/grid/bc03.js';
import { lnuIndex, type SpsGrid } from '../../src/grid/types.js';
import { resolveDataDir } from '../../src/io/paths.js';
import { L_SUN_BC03_ERG_S, L_SUN_SYNTHESIZER_ERG_S, SPEED_OF_LIGHT_AA_S } from '../../src/physics/constants.js';
import { expectAllClose } from '../helpers/allclose.js';

const dir = path.join(resolveDataDir(), 'sps', 'bc03_lr_basel_padova1994_chabrier');
const fixtures = path.join(import.meta.dirname, '..', 'fixtures', 'grid');
const m62 = path.join(dir, 'bc2003_lr_BaSeL_m62_chab_ssp.ised');

let grid: SpsGrid;
let tmp: string;
beforeAll(() => {
  grid = readBc03Grid(dir); // default L_sun = 3.828e33, t = 0 kept
  tmp = mkdtempSync(path.join(os.tmpdir(), 'synference-bc03-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('BC03 .ised reader (real files)', () => {
  it('reads all 7 metallicities into one 221 x 7 x 1238 grid', () => {
    expect(grid.ages.length).toBe(221);
    expect(grid.metallicities.length).toBe(7);
    expect(grid.wavelengthAA.length).toBe(1238);
    expect(grid.lnu.length).toBe(221 * 7 * 1238);
    expect(grid.ages[0]).toBe(0);
    expect(grid.ages[1]).toBe(1e5);
    expect(grid.ages[220]).toBe(2e10);
    expect(grid.wavelengthAA[0]).toBe(91);
    expect(grid.wavelengthAA[1237]).toBeCloseTo(3.6e8, -4);
    // Z from the track labels, in the order of the BC03 codes m22..m82.
    expect(Array.from(grid.metallicities)).toEqual(Object.values(BC03_METALLICITY_CODES));
    expect(grid.metadata.lSunErgS).toBe(L_SUN_SYNTHESIZER_ERG_S);
    expect(grid.metadata.imf).toMatch(/Chabrier/);
  });

  it('converts L_lambda [L_sun/A] to L_nu = L_lambda L_sun lambda^2 / c from the raw float32 bytes', () => {
    // Independent decode of record 2 + a (spectrum of age a) of the m62 (Z = 0.02, index 4) file.
    const buf = readFileSync(m62);
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let off = 0;
    const recOffsets: number[] = [];
    while (off < buf.byteLength) {
      recOffsets.push(off);
      off += 8 + dv.getInt32(off, true);
    }
    for (const [a, i] of [
      [150, 600],
      [1, 10],
      [220, 1237],
    ]) {
      const p = recOffsets[2 + a] + 4;
      const lLam = dv.getFloat32(p + 4 + 4 * i, true);
      const lam = dv.getFloat32(recOffsets[1] + 8 + 4 * i, true);
      const want = (lLam * L_SUN_SYNTHESIZER_ERG_S * lam * lam) / SPEED_OF_LIGHT_AA_S;
      // float64 arithmetic on the same float32 inputs, different operation order: rel 1e-15.
      expect(Math.abs(grid.lnu[lnuIndex(grid, a, 4, i)] / want - 1)).toBeLessThan(1e-14);
    }
  });

  it('L_sun is a parameter and the t = 0 age can be dropped (Synthesizer: 220 ages 1e5..2e10 yr)', () => {
    const g = readBc03Grid(dir, { lSunErgS: L_SUN_BC03_ERG_S, dropZeroAge: true });
    expect(g.ages.length).toBe(220);
    expect(g.ages[0]).toBe(1e5);
    expect(g.ages[219]).toBe(2e10);
    expect(g.metadata.droppedZeroAge).toBe(true);
    // Same node, other L_sun: ratio is exactly 3.826/3.828 (rel 1e-15).
    const a = lnuIndex(g, 99, 3, 500);
    const b = lnuIndex(grid, 100, 3, 500);
    expect(Math.abs(g.lnu[a] / grid.lnu[b] / (L_SUN_BC03_ERG_S / L_SUN_SYNTHESIZER_ERG_S) - 1)).toBeLessThan(1e-14);
    expect(g.survivingMassFraction[99 * 7 + 3]).toBe(grid.survivingMassFraction[100 * 7 + 3]);
  });

  it('surviving stellar mass (living + remnants) and living mass match the .4color M* columns at every age and Z', () => {
    grid.metallicities.forEach((_z, iZ) => {
      const file = grid.metadata.sourceFiles[iZ].replace(/\.ised$/, '.4color');
      const t = readGalaxevTable(file);
      const logAge = t.column('log-age-yr');
      const tot = t.column('M*_liv+M_rem');
      const liv = t.column('M*_liv');
      // .4color has no t = 0 row: its rows are ages 1..220 of the .ised.
      expect(logAge.length).toBe(220);
      const gotTot = Float64Array.from(logAge, (_l, r) => grid.survivingMassFraction[(r + 1) * 7 + iZ]);
      const gotLiv = Float64Array.from(logAge, (_l, r) => grid.livingMassFraction![(r + 1) * 7 + iZ]);
      logAge.forEach((l, r) => expect(Math.abs(Math.log10(grid.ages[r + 1]) - l)).toBeLessThan(1e-5));
      // .4color prints 5 significant digits (x.xxxxE+yy): half a unit in the last digit is rel 5e-5.
      expectAllClose(gotTot, tot, { rtol: 5e-5, atol: 1e-9, label: `${path.basename(file)} M*_liv+M_rem` });
      expectAllClose(gotLiv, liv, { rtol: 5e-5, atol: 1e-9, label: `${path.basename(file)} M*_liv` });
      // t = 0 has no .4color row; BC03 gives it the 1e5 yr value (1, except 0.99915 for the Z = 0.05 tracks).
      expect(grid.survivingMassFraction[iZ]).toBe(grid.survivingMassFraction[7 + iZ]);
      expect(grid.survivingMassFraction[iZ]).toBeGreaterThan(0.999);
    });
  });

  it('the per-age tables sit where ISED_TABLE says (remnants, returned gas and galaxy mass add up to 1)', () => {
    const f = readIsed(m62);
    expect(f.tables.length).toBeGreaterThanOrEqual(14);
    const t = readGalaxevTable(m62.replace(/\.ised$/, '.4color'));
    // M_galaxy = living + remnants + returned gas = 1 for a closed box; float32 sums: 1e-5 (4color rounding).
    const gal = f.tables[ISED_TABLE.galaxyMass];
    for (let a = 1; a < f.ages.length; a++) {
      const s = f.tables[ISED_TABLE.livingStarMass][a] + f.tables[ISED_TABLE.remnantMass][a] + f.tables[ISED_TABLE.returnedGasMass][a];
      expect(Math.abs(s - gal[a])).toBeLessThan(1e-5);
    }
    expectAllClose(f.tables[ISED_TABLE.returnedGasMass].subarray(1), t.column('M_ret_gas'), { rtol: 5e-5, atol: 1e-9, label: 'M_ret_gas' });
  });
});

describe('BC03 .ised reader (malformed files)', () => {
  const bytes = () => new Uint8Array(readFileSync(m62));

  it('a truncated copy (first N bytes) names the file, the record and says truncated', () => {
    for (const n of [2, 600, 10_000, 1_000_000]) {
      const b = bytes().subarray(0, n);
      expect(() => parseIsed(b, 'cut.ised')).toThrow(/^cut\.ised: record \d+ \(byte \d+\): truncated/);
    }
    // Cut exactly at a record boundary after the spectra: the stellar-mass tables are missing.
    const f = readIsed(m62);
    expect(f.tables.length).toBe(14);
    const file = path.join(tmp, 'bc2003_lr_BaSeL_m62_chab_ssp.ised');
    const all = bytes();
    const dv = new DataView(all.buffer, all.byteOffset, all.byteLength);
    let off = 0;
    for (let r = 0; r < 2 + 221; r++) off += 8 + dv.getInt32(off, true);
    writeFileSync(file, all.subarray(0, off));
    expect(() => readBc03Grid(tmp)).toThrow(/bc2003_lr_BaSeL_m62_chab_ssp\.ised: record 223: truncated: 0 per-age tables/);
  });

  it('a corrupted trailing length marker is reported with its record', () => {
    const b = bytes();
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const n0 = dv.getInt32(0, true);
    const n1 = dv.getInt32(8 + n0, true);
    dv.setInt32(8 + n0 + 4 + n1, n1 + 4, true); // record 1's trailing marker
    expect(() => parseIsed(b, 'bad.ised')).toThrow(`bad.ised: record 1 (byte ${8 + n0}): leading length marker ${n1} != trailing marker ${n1 + 4}`);
  });

  it('a spectrum whose count differs from the wavelength count is rejected', () => {
    const b = bytes();
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let off = 0;
    for (let r = 0; r < 5; r++) off += 8 + dv.getInt32(off, true); // record 5 = spectrum of age 3
    dv.setInt32(off + 4, 1237, true);
    expect(() => parseIsed(b, 'bad.ised')).toThrow(/bad\.ised: record 5 \(byte \d+\): spectrum of age 3: count 1237, expected 1238/);
  });

  it('NaN in a spectrum and descending ages are rejected with their position', () => {
    const b = bytes();
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    dv.setFloat32(4 + 4 + 4 * 3, 1, true); // age[3] = 1 yr < age[2]
    expect(() => parseIsed(b, 'bad.ised')).toThrow(/bad\.ised: record 0, age 3: ages must be .* strictly ascending/);
    const c = bytes();
    const dc = new DataView(c.buffer, c.byteOffset, c.byteLength);
    let off = 0;
    for (let r = 0; r < 2; r++) off += 8 + dc.getInt32(off, true);
    dc.setFloat32(off + 8 + 4 * 7, Number.NaN, true);
    expect(() => parseIsed(c, 'nan.ised')).toThrow(/nan\.ised: record 2, lambda 7: L_lambda = NaN/);
  });

  it('a missing directory / file and a directory without .ised are clear errors', () => {
    expect(() => readIsed(path.join(tmp, 'nope.ised'))).toThrow(/nope\.ised: cannot read/);
    const empty = path.join(tmp, 'empty');
    mkdirSync(empty);
    expect(() => readBc03Grid(empty)).toThrow(/no \*\.ised files/);
    expect(() => readBc03Grid(dir, { lSunErgS: -1 })).toThrow(/BC03 options: lSunErgS/);
  });

  it('two files with the same metallicity are rejected', () => {
    const d = path.join(tmp, 'dup');
    mkdirSync(d);
    copyFileSync(m62, path.join(d, 'a_m62_.ised'));
    copyFileSync(m62, path.join(d, 'b_m62_.ised'));
    expect(() => readBc03Grid(d)).toThrow(/duplicate metallicity Z=0\.02/);
  });
});

describe('GALAXEV side tables', () => {
  it('reads named columns (names with single spaces survive)', () => {
    const t = readGalaxevTable(m62.replace(/\.ised$/, '.acs_wfc_color'));
    expect(t.columns.slice(0, 4)).toEqual(['log-age-yr', 'Vmag', 'Kmag', 'V-F220w']);
    expect(t.columns).toContain('log Nly');
    expect(t.rows.length).toBe(220);
    expect(() => t.column('V-F850lp')).toThrow(/no column "V-F850lp"; columns are: log-age-yr, Vmag/);
  });

  it('a short row names the file and the line', () => {
    expect(() => readGalaxevTable(path.join(fixtures, 'galaxev_bad.4color'))).toThrow(/galaxev_bad\.4color: line 5: 3 values, header names 4 columns/);
  });
});
