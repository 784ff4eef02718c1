/**
 * The browser page's catalogue path (src/infer/catalogText.ts, guessColumnMap, parseColumnMapText)
 * against Node's: the same CSV text gives the same numbers and text as openCatalog streaming the
 * file, and the same errors.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openCatalog } from '../../src/infer/catalog.js';
import { parseCsvCatalog } from '../../src/infer/catalogText.js';
import { guessColumnMap, parseColumnMapText } from '../../src/infer/columnMap.js';

const dir = mkdtempSync(path.join(tmpdir(), 'catalog-text-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CSV = [
  '\ufeff# a comment',
  'id,f_a,e_a,"name, quoted",z',
  'g1, 1.5 ,0.1,"x, y",0.5',
  '',
  'g2,nan,,plain,inf',
  '# another comment',
  'g3,-2e3,1e-2,"say ""hi""",-INF',
  'g4,NULL,--,last,masked',
].join('\n');

describe('CSV text catalogues', () => {
  it('equal openCatalog on the same bytes: every numeric and text column, rows in order', async () => {
    const file = path.join(dir, 'cat.csv');
    writeFileSync(file, CSV);
    const node = await openCatalog(file);
    const web = parseCsvCatalog(CSV, 'cat.csv');
    expect(web.columns).toEqual(node.columns);
    expect(web.nRows).toBe(node.nRows);
    const numeric = ['f_a', 'e_a', 'z'];
    const text = ['id', 'name, quoted'];
    const chunks = [];
    for await (const c of node.chunks(3, { numeric, text })) chunks.push(c);
    for (const c of chunks) {
      const b = web.block(c.start, c.rows, { numeric, text });
      for (const r of numeric) expect(Array.from(b.numeric(r))).toEqual(Array.from(c.block!.numeric(r)));
      for (const r of text) expect(b.text(r)).toEqual(c.block!.text(r));
    }
    expect(Array.from(web.block(0, 4, { numeric, text: [] }).numeric('z'))).toEqual([0.5, Infinity, -Infinity, NaN]);
    expect(web.block(2, 1, { numeric: [], text }).text('name, quoted')).toEqual(['say "hi"']);
  });

  it('errors name the file, line and column', () => {
    expect(() => parseCsvCatalog('', 'e.csv')).toThrow(/e\.csv: no header line/);
    expect(() => parseCsvCatalog('a,a\n1,2\n', 'e.csv')).toThrow('e.csv: duplicate column name a');
    expect(() => parseCsvCatalog('a,b\n1,2\n3\n', 'e.csv')).toThrow(/e\.csv: .*Invalid Record Length.*line 3/);
    const cat = parseCsvCatalog('a,b\n1,2\n3,x1\n', 'e.csv');
    expect(() => cat.block(0, 2, { numeric: ['b'], text: [] })).toThrow('e.csv: line 3, column "b": "x1" is not a number');
    expect(() => cat.block(0, 2, { numeric: ['c'], text: [] })).toThrow('e.csv: no column "c" (columns: a, b)');
    expect(() => cat.block(1, 2, { numeric: [], text: [] })).toThrow(/rows \[1, 3\) are outside the catalogue's 2 rows/);
  });
});

describe('column maps from the page', () => {
  it('guessColumnMap: <band>/<band>_err, _flux/_err, case-insensitive; id; redshift only when needed; unmatched bands left out', () => {
    const cols = ['ID', 'JWST_F200W', 'jwst_f200w_err', 'jwst_f444w_flux', 'jwst_f444w_error', 'acs_f435w_flux', 'z'];
    const bands = ['jwst_f200w', 'jwst_f444w', 'acs_f435w'];
    expect(guessColumnMap(bands, cols)).toEqual({
      units: 'nJy',
      id: 'ID',
      bands: { jwst_f200w: { flux: 'JWST_F200W', error: 'jwst_f200w_err' }, jwst_f444w: { flux: 'jwst_f444w_flux', error: 'jwst_f444w_error' } },
    });
    expect(guessColumnMap(bands, cols, { units: 'uJy', needsRedshift: true })).toMatchObject({ units: 'uJy', redshift: 'z' });
  });

  it('parseColumnMapText reads YAML and JSON; errors name the source', async () => {
    const m = await parseColumnMapText('units: uJy\nbands:\n  b1: { flux: F1, error: E1 }\n', 'typed map');
    expect(m.bands.b1).toEqual({ flux: 'F1', error: 'E1' });
    expect((await parseColumnMapText('{"bands": {"b": {"flux": "f", "error": "e"}}}')).bands.b.flux).toBe('f');
    await expect(parseColumnMapText('bands: [', 'typed map')).rejects.toThrow(/typed map: cannot parse/);
    await expect(parseColumnMapText('bands: {b: {flux: f}}', 'typed map')).rejects.toThrow(/typed map: bands\.b\.error: error is required/);
  });
});
