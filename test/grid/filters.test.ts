import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FILTER_SETS, readFilterRes, readTwoColumnFilter, resolveFilterSet, selectFilterRes } from '../../src/grid/filters.js';
import { resolveDataDir } from '../../src/io/paths.js';

const fixtures = path.join(import.meta.dirname, '..', 'fixtures', 'grid');
const filtersDir = path.join(resolveDataDir(), 'filters');
const fx = (f: string) => path.join(fixtures, f);

describe('two-column filter files', () => {
  it('reads a sedpy .par file with comments and blank lines', () => {
    const f = readTwoColumnFilter(path.join(filtersDir, 'acs_wfc_f435w.par'));
    expect(f.name).toBe('acs_wfc_f435w');
    expect(f.wavelengthAA.length).toBe(7501); // data rows (3 comment and 2 blank lines skipped)
    expect(f.wavelengthAA[0]).toBe(3000);
    expect(f.throughput[0]).toBe(1.25595e-36);
    expect(f.wavelengthAA[7500]).toBe(10500);
  });

  it.each([
    ['filter_three_columns.par', /filter_three_columns\.par: line 3: expected 2 columns \(wavelength, throughput\), got 3/],
    ['filter_descending.par', /filter_descending\.par: line 5: wavelengths must be strictly ascending: 4100 after 4200/],
    ['filter_negative.par', /filter_negative\.par: line 2: throughput -0\.2 must be finite and >= 0/],
    ['filter_not_number.par', /filter_not_number\.par: line 3: not a number: "4100\.0  abc"/],
    ['filter_zero.par', /filter_zero\.par: filter filter_zero: throughput is zero everywhere/],
  ])('rejects %s naming the line', (file, msg) => {
    expect(() => readTwoColumnFilter(fx(file))).toThrow(msg);
  });

  it('a missing file is a clear error', () => {
    expect(() => readTwoColumnFilter(fx('nope.par'))).toThrow(/nope\.par: cannot read filter/);
  });
});

describe('EAZY FILTER.RES', () => {
  const res = fx('FILTER.RES');

  it('parses blocks and selects by 1-based id or name substring', () => {
    const entries = readFilterRes(res);
    expect(entries.map((e) => [e.id, e.name, e.line, e.wavelengthAA.length])).toEqual([
      [1, 'hst/acs_wfc_f435w.dat', 1, 4],
      [2, 'jwst/nircam_f200w.dat', 6, 3],
      [3, 'jwst/nircam_f200w_modB.dat', 10, 5],
    ]);
    const byId = selectFilterRes(entries, 2, res);
    expect(byId.name).toBe('nircam_f200w');
    expect(Array.from(byId.throughput)).toEqual([0, 0.5, 0]);
    expect(byId.source).toBe(`${res}#2`);
    expect(selectFilterRes(entries, '3', res).wavelengthAA.length).toBe(5);
    expect(selectFilterRes(entries, 'f435w', res).name).toBe('acs_wfc_f435w');
    expect(selectFilterRes(entries, 'modb', res).name).toBe('nircam_f200w_modB');
    // "nircam_f200w" is a substring of both f200w blocks, but an exact name match of block 2.
    expect(selectFilterRes(entries, 'nircam_f200w', res).source).toBe(`${res}#2`);
  });

  it('unknown id, unknown name and ambiguous substrings are clear errors', () => {
    const entries = readFilterRes(res);
    expect(() => selectFilterRes(entries, 4, res)).toThrow(/no filter with id 4 \(ids are 1\.\.3\)/);
    expect(() => selectFilterRes(entries, 'f999w', res)).toThrow(/no filter header contains "f999w"/);
    expect(() => selectFilterRes(entries, 'f200w', res)).toThrow(/"f200w" matches 2 filters \(2: jwst\/nircam_f200w\.dat; 3: jwst\/nircam_f200w_modB\.dat\)/);
  });

  it('a truncated block and a short row name the line', () => {
    expect(() => readFilterRes(fx('FILTER_truncated.RES'))).toThrow(/FILTER_truncated\.RES: line 8: truncated filter 2 \(block_two\.dat, header line 5\): 2 of 4 rows/);
    expect(() => readFilterRes(fx('FILTER_badrow.RES'))).toThrow(/FILTER_badrow\.RES: line 3: expected "index lambda throughput"/);
    expect(() => readFilterRes(fx('filter_descending.par'))).toThrow(/filter_descending\.par: line 1: expected a filter header "NPTS name \.\.\."/);
  });
});

describe('filter-set specs', () => {
  it('jades14 resolves to the 14 reference bands in order', () => {
    const set = resolveFilterSet('jades14');
    expect(set.map((f) => f.name)).toEqual([...FILTER_SETS.jades14]);
    expect(set.every((f) => f.source.startsWith(filtersDir))).toBe(true);
  });

  it('lists of stems, paths and FILTER.RES selections', () => {
    const set = resolveFilterSet(['jwst_f200w', path.join(filtersDir, 'acs_wfc_f606w.par'), `${fx('FILTER.RES')}#modB`]);
    expect(set.map((f) => f.name)).toEqual(['jwst_f200w', 'acs_wfc_f606w', 'nircam_f200w_modB']);
    expect(resolveFilterSet('jwst_f090w, jwst_f115w').map((f) => f.name)).toEqual(['jwst_f090w', 'jwst_f115w']);
  });

  it('unknown names, sets inside lists and empty specs are clear errors', () => {
    expect(() => resolveFilterSet('jades15')).toThrow(/unknown filter or filter set "jades15": not a file, not a set \(jades14\); filters in .*: acs_wfc_f435w/);
    expect(() => resolveFilterSet(['jwst_f200w', 'jades14'])).toThrow(/filter set "jades14" can only be used on its own/);
    expect(() => resolveFilterSet('toString')).toThrow(/unknown filter or filter set "toString"/);
    expect(() => resolveFilterSet([])).toThrow(/filter set: expected a set name or a list/);
    expect(() => resolveFilterSet(`${fx('FILTER.RES')}#`)).toThrow(/empty selector/);
    expect(() => resolveFilterSet('jades14', path.join(fixtures, 'no-such-dir'))).toThrow(/data directory ".*no-such-dir" does not exist/);
  });
});
