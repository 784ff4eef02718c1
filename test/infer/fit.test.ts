/**
 * Catalogue fitting end to end: a small flow trained (CPU engine) on the toy world of bench/fit.ts
 * (4 bands, asinh magnitudes + errors + masks + redshift, 2 parameters), and a 40-row catalogue
 * written as CSV and as FITS with the same values, including NaN, empty and infinite cells, a
 * missing band, a zero error, magnitudes with sentinels, a bad and an out-of-range redshift and an
 * absurdly bright galaxy.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ToyWorldSpec, buildToyModel, toyBandNames, toyObservations, toySimulationConfig, toyTruth, writeToyFitsCatalog } from '../../bench/fit.js';
import { registerFit } from '../../src/cli/commands/fit.js';
import { loadModelDir } from '../../src/flow/modelFiles.js';
import { type ColumnMapInput, errorToNJy, fluxToNJy, loadColumnMap, parseColumnMap, parseUnit } from '../../src/infer/columnMap.js';
import { FIT_FLAGS, type FitProgress, fitCatalog, modelFeatureDefinition } from '../../src/infer/fit.js';
import { readFitsTable, writeFitsTable } from '../../src/io/fits.js';
import { openH5 } from '../../src/io/library/format.js';
import { deviceOptionsFromEnv } from '../../src/gpu/device.js';

const SPEC: ToyWorldSpec = { bands: 4, params: 2, mask: true, redshift: true };
const BANDS = toyBandNames(SPEC);
const N = 40;
const M = 200;
const dir = mkdtempSync(path.join(tmpdir(), 'fit-test-'));
let modelDir = '';
let libraryFile = '';
const csvFile = path.join(dir, 'cat.csv');
const fitsFile = path.join(dir, 'cat.fits');
let truthTheta: Float64Array;

/** Columns: id, band0/1 in uJy, band2 in AB mag (+ mag error), band3 in nJy, z. */
const MAP: ColumnMapInput = {
  id: 'ID',
  redshift: 'z',
  units: 'nJy',
  bands: {
    band0: { flux: 'f0', error: 'e0', units: 'uJy' },
    band1: { flux: 'f1', error: 'e1', units: 'uJy' },
    band2: { flux: 'mag2', error: 'magerr2', units: 'ABmag' },
    band3: { flux: 'f3', error: 'e3' },
  },
};

/** Rows with a deliberate problem, and what must be flagged. */
const SPECIAL: Record<number, { what: string; flags: number; masked?: string }> = {
  3: { what: 'band1 flux NaN', flags: FIT_FLAGS.MASKED_BANDS, masked: 'band1' },
  5: { what: 'band2 error empty', flags: FIT_FLAGS.MASKED_BANDS, masked: 'band2' },
  7: { what: 'no photometry', flags: FIT_FLAGS.NO_PHOTOMETRY | FIT_FLAGS.NOT_FITTED | FIT_FLAGS.MASKED_BANDS, masked: 'band0;band1;band2;band3' },
  9: { what: 'redshift NaN', flags: FIT_FLAGS.BAD_REDSHIFT | FIT_FLAGS.NOT_FITTED },
  11: { what: 'redshift 5 (prior 0.5-3)', flags: FIT_FLAGS.REDSHIFT_OUT_OF_RANGE },
  13: { what: 'band0 at 1e13 nJy', flags: FIT_FLAGS.OUT_OF_DISTRIBUTION },
  15: { what: 'band3 negative', flags: FIT_FLAGS.NEGATIVE_FLUX },
  17: { what: 'band0 error 0', flags: FIT_FLAGS.MASKED_BANDS, masked: 'band0' },
  19: { what: 'band3 flux inf', flags: FIT_FLAGS.MASKED_BANDS, masked: 'band3' },
};

const mag = (f: number) => (f > 0 ? 31.4 - 2.5 * Math.log10(f) : 99);
const magErr = (f: number, e: number) => (f > 0 ? (2.5 / Math.LN10) * (e / f) : 99);

beforeAll(async () => {
  const m = await buildToyModel(path.join(dir, 'world'), SPEC, { nTrain: 3000, epochs: 20, seed: 11 });
  modelDir = m.modelDir;
  libraryFile = m.libraryFile;
  const truth = toyTruth(SPEC, N, 99);
  truthTheta = truth.theta;
  const obs = await toyObservations(SPEC, truth, 100);
  const B = BANDS.length;
  const flux = Float64Array.from(obs.flux);
  const err = Float64Array.from(obs.error);
  const z = Float64Array.from(truth.z);
  // Keep the special rows clean of natural problems (noise can make faint fluxes negative).
  for (const r of Object.keys(SPECIAL).map(Number)) for (let b = 0; b < B; b++) flux[r * B + b] = Math.max(flux[r * B + b], 50);
  flux[3 * B + 1] = NaN;
  err[5 * B + 2] = NaN; // written as an empty cell
  for (let b = 0; b < B; b++) flux[7 * B + b] = NaN;
  z[9] = NaN;
  z[11] = 5;
  flux[13 * B + 0] = 1e13;
  flux[15 * B + 3] = -20;
  err[17 * B + 0] = 0;
  flux[19 * B + 3] = Infinity;
  const cols: Record<string, number[]> = { f0: [], e0: [], f1: [], e1: [], mag2: [], magerr2: [], f3: [], e3: [], z: [] };
  for (let i = 0; i < N; i++) {
    cols.f0.push(flux[i * B] / 1e3);
    cols.e0.push(err[i * B] / 1e3);
    cols.f1.push(flux[i * B + 1] / 1e3);
    cols.e1.push(err[i * B + 1] / 1e3);
    const f2 = flux[i * B + 2];
    cols.mag2.push(Number.isNaN(f2) ? 99 : mag(f2));
    cols.magerr2.push(Number.isNaN(err[i * B + 2]) ? NaN : magErr(f2, err[i * B + 2]));
    cols.f3.push(flux[i * B + 3]);
    cols.e3.push(err[i * B + 3]);
    cols.z.push(z[i]);
  }
  const ids = Array.from({ length: N }, (_, i) => `G-${1000 + i}`);
  const names = Object.keys(cols);
  const cell = (v: number, name: string, i: number) => (Number.isNaN(v) ? (name === 'magerr2' && i === 5 ? '' : 'nan') : v === Infinity ? 'inf' : String(v));
  const lines = ['# a comment line', ['ID', ...names].join(',')];
  for (let i = 0; i < N; i++) lines.push([ids[i], ...names.map((n) => cell(cols[n][i], n, i))].join(','));
  writeFileSync(csvFile, lines.join('\n') + '\n');
  writeFitsTable(
    fitsFile,
    [{ name: 'ID', type: 'A', repeat: 8 }, ...names.map((n) => ({ name: n, type: 'D' as const }))],
    { ID: ids, ...Object.fromEntries(names.map((n) => [n, cols[n]])) },
    N,
    { extname: 'PHOT' },
  );
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const csvRows = (file: string): Record<string, string>[] => parse(readFileSync(file, 'utf8'), { columns: true });
/** A cell of the written catalogue (row i, column name). */
const cellOf = (i: number, col: string): string => (parse(readFileSync(csvFile, 'utf8'), { columns: true, comment: '#' }) as Record<string, string>[])[i][col];
const num = (s: string) => (s === 'nan' ? NaN : Number(s));

describe('column maps and units', () => {
  it('units: names, aliases and conversions (magnitude errors to first order)', () => {
    expect(parseUnit('µJy')).toBe('uJy');
    expect(parseUnit('AB mag')).toBe('ABmag');
    expect(parseUnit('mag')).toBe('ABmag');
    expect(parseUnit('erg/s')).toBeUndefined();
    expect(fluxToNJy(1, 'uJy')).toBe(1000);
    expect(fluxToNJy(1, 'Jy')).toBe(1e9);
    expect(fluxToNJy(31.4, 'ABmag')).toBeCloseTo(1, 12);
    expect(fluxToNJy(23.9, 'ABmag')).toBeCloseTo(1000, 9); // 23.9 AB = 1 uJy
    expect(fluxToNJy(99, 'ABmag')).toBeNaN(); // sentinel
    expect(fluxToNJy(-99, 'ABmag')).toBeNaN();
    // sigma_m = 2.5 / ln 10 sigma_f / f  <=>  sigma_f = f ln 10 / 2.5 sigma_m
    expect(errorToNJy(0.1, 'ABmag', 1000)).toBeCloseTo((1000 * Math.LN10 * 0.1) / 2.5, 12);
    expect(errorToNJy(2, 'mJy', NaN)).toBe(2e6);
  });

  it('the example map in test/fixtures/catalog parses', async () => {
    const m = await loadColumnMap(path.join(import.meta.dirname, '..', 'fixtures', 'catalog', 'columns.example.yaml'));
    expect(Object.keys(m.bands).length).toBe(14);
    expect(m.bands.jwst_f410m.units).toBe('ABmag');
    expect(m.bands.jwst_f444w.fluxUnits).toBe('uJy');
  });

  it('schema errors name the key and the allowed values', () => {
    expect(() => parseColumnMap({ bands: { band0: { flux: 'a', error: 'b', units: 'furlongs' } } })).toThrow(/bands\.band0\.units: unknown unit "furlongs" \(allowed: nJy, uJy, mJy, Jy, ABmag\)/);
    expect(() => parseColumnMap({ bands: { band0: { flux: 'a' } } })).toThrow(/bands\.band0\.error: error is required \(a column name\)/);
    expect(() => parseColumnMap({ bands: {} })).toThrow(/bands: bands must map at least one model band/);
    expect(() => parseColumnMap({ bands: { band0: { flux: 'a', error: 'b' } }, colour: 1 })).toThrow(/unknown key "colour"/);
    expect(() => parseColumnMap({ bands: { band0: { flux: 'a', error: 'b' } }, negativeFlux: 'drop' })).toThrow(/negativeFlux must be 'keep' or 'mask'/);
  });
});

describe('the feature definition of a model', () => {
  it('comes from the training library recorded in config.json and reproduces the feature names', async () => {
    const model = await loadModelDir(modelDir);
    const d = await modelFeatureDefinition(model);
    expect(d.source).toContain('library.h5');
    expect(d.features.names).toEqual(model.config.context.map((c) => c.name));
    expect(d.features.includeMask && d.features.includeRedshift).toBe(true);
    expect(d.redshiftRange).toEqual([0.5, 3]);
    // Lupton softening from the 28.5 AB depth: 1.042 x 10^(-0.4 (28.5 - 31.4)) / 5 nJy.
    expect(d.features.softeningNJy[0]).toBeCloseTo((Math.sqrt(2.5 * Math.LOG10E) * Math.pow(10, 1.16)) / 5, 9);
  });

  it('a definition that does not match the model is refused, naming the first difference', async () => {
    const model = await loadModelDir(modelDir);
    await expect(modelFeatureDefinition(model, { simulationConfig: toySimulationConfig({ ...SPEC, mask: false }) })).rejects.toThrow(
      /defines 9 features, the model has 13 context features; first difference at feature 8: the definition gives "redshift", the model "band0_mask"/,
    );
  });
});

describe('fitCatalog end to end', () => {
  let base = '';
  it("rows that fail the training library's detection selection are flagged BELOW_SELECTION (and still fitted)", async () => {
    // A selection on the stack of band0 + band1 at S/N 30: some rows pass, some do not.
    const selection = { bands: ['band0', 'band1'], combine: 'stack', minSnr: 30 };
    const out = path.join(dir, 'out-selection');
    const r = await fitCatalog({ model: modelDir, catalog: csvFile, map: MAP, out, samples: 50, chunk: 16, seed: 3, saveSamples: false, simulationConfig: { ...toySimulationConfig(SPEC), selection }, onWarning: () => {} });
    const rows = csvRows(r.files.summaryCsv);
    let below = 0;
    rows.forEach((row, i) => {
      const f0 = Number(cellOf(i, 'f0'));
      const e0 = Number(cellOf(i, 'e0'));
      const f1 = Number(cellOf(i, 'f1'));
      const e1 = Number(cellOf(i, 'e1'));
      const use = [[f0, e0], [f1, e1]].filter(([f, e]) => Number.isFinite(f) && Number.isFinite(e) && e > 0);
      const snr = use.length ? use.reduce((a, [f]) => a + f, 0) / Math.sqrt(use.reduce((a, [, e]) => a + e * e, 0)) : NaN;
      const expected = !(snr >= 30);
      expect((Number(row.flags) & FIT_FLAGS.BELOW_SELECTION) !== 0, `row ${i}: S/N ${snr}`).toBe(expected);
      if (expected) below++;
    });
    expect(below).toBeGreaterThan(2);
    expect(below).toBeLessThan(N - 2);
    expect(r.flagCounts.BELOW_SELECTION).toBe(below);
  });

  it('CSV: summaries, flags and samples', async () => {
    const out = path.join(dir, 'out-csv');
    const warnings: string[] = [];
    const progress: FitProgress[] = [];
    const r = await fitCatalog({ model: modelDir, catalog: csvFile, map: MAP, out, samples: M, chunk: 16, seed: 3, onWarning: (w) => warnings.push(w), onProgress: (p) => void (p.chunkDone && progress.push(p)) });
    expect(warnings).toEqual([]);
    expect(r.nRows).toBe(N);
    expect(r.nChunks).toBe(3);
    expect(progress.map((p) => p.rowsDone)).toEqual([0, 16, 32, 40]);
    expect(r.fitted).toBe(N - 2);
    expect(r.flagCounts.NOT_FITTED).toBe(2);
    expect(readdirSync(out).sort()).toEqual(['fit.json', 'samples.h5', 'summary.csv', 'summary.fits']);
    const rows = csvRows(r.files.summaryCsv);
    expect(rows.length).toBe(N);
    expect(Object.keys(rows[0])).toEqual([
      'id', 'row', 'log10_mass_median', 'log10_mass_p16', 'log10_mass_p84', 'shape1_median', 'shape1_p16', 'shape1_p84',
      'flags', 'flag_names', 'masked_bands', 'n_bands', 'acceptance', 'log_prob_median', 'max_abs_z',
    ]);
    for (const [k, s] of Object.entries(SPECIAL)) {
      const row = rows[Number(k)];
      expect(row.id).toBe(`G-${1000 + Number(k)}`);
      const fl = Number(row.flags);
      expect(fl & s.flags, `row ${k} (${s.what}): flags ${row.flag_names}`).toBe(s.flags);
      if (s.masked) expect(row.masked_bands).toBe(s.masked);
      const fitted = !(fl & FIT_FLAGS.NOT_FITTED);
      expect(Number.isNaN(num(row.log10_mass_median)), `row ${k}`).toBe(!fitted);
    }
    expect(rows[7].flag_names).toBe('NOT_FITTED,MASKED_BANDS,NO_PHOTOMETRY');
    expect(rows[7].n_bands).toBe('0');
    expect(rows[3].n_bands).toBe('3');
    // Clean rows: fitted, medians inside the prior, 16 <= 50 <= 84; log M within 0.3 dex of the truth
    // for most (a 20-epoch flow on 3000 simulations: loose, but far tighter than the prior's 2.5 dex).
    let close = 0;
    let clean = 0;
    for (let i = 0; i < N; i++) {
      const row = rows[i];
      if (Number(row.flags) & FIT_FLAGS.NOT_FITTED) continue;
      const [q16, q50, q84] = [num(row.log10_mass_p16), num(row.log10_mass_median), num(row.log10_mass_p84)];
      expect(q16 <= q50 && q50 <= q84 && q16 >= 8 && q84 <= 10.5).toBe(true);
      if (i in SPECIAL) continue;
      clean++;
      if (Math.abs(q50 - truthTheta[i * 2]) < 0.3) close++;
    }
    expect(close / clean).toBeGreaterThan(0.8);

    // samples.h5: N x M x P, NaN rows where not fitted; the summary median is the samples' median.
    const f = await openH5(r.files.samples!, 'r');
    try {
      const s = f.get('samples') as unknown as { shape: number[]; value: Float32Array; get_attribute(k: string, j: boolean): unknown };
      expect(s.shape).toEqual([N, M, 2]);
      expect(s.get_attribute('parameters', true)).toEqual(['log10_mass', 'shape1']);
      const ids = (f.get('ids') as unknown as { value: string[] }).value;
      expect(ids[0]).toBe('G-1000');
      expect(Array.from((f.get('flags') as unknown as { value: Int32Array }).value)).toEqual(rows.map((x) => Number(x.flags)));
      const v = s.value;
      expect(Number.isNaN(v[7 * M * 2])).toBe(true);
      const col = Array.from({ length: M }, (_, j) => v[(0 * M + j) * 2]).sort((a, b) => a - b);
      const med = (col[M / 2 - 1] + col[M / 2]) / 2;
      expect(Math.abs(med - num(rows[0].log10_mass_median))).toBeLessThan(1e-5); // f32 storage of the samples
      for (let j = 0; j < M; j++) expect(v[(0 * M + j) * 2] >= 8 && v[(0 * M + j) * 2] <= 10.5).toBe(true);
    } finally {
      f.close();
    }
    // summary.fits holds the same numbers as summary.csv.
    const { data } = readFitsTable(r.files.summaryFits, { hdu: 'POSTERIOR' });
    expect(data.id).toEqual(rows.map((x) => x.id));
    for (const c of ['log10_mass_median', 'shape1_p84', 'acceptance', 'max_abs_z', 'flags', 'n_bands']) {
      const a = Array.from(data[c] as Float64Array);
      rows.forEach((x, i) => expect(Object.is(a[i], num(x[c])) || a[i] === num(x[c]), `${c} row ${i}`).toBe(true));
    }
    expect(data.flag_names[7]).toBe('NOT_FITTED,MASKED_BANDS,NO_PHOTOMETRY');
    const rec = JSON.parse(readFileSync(r.files.record, 'utf8'));
    expect(rec.status).toBe('complete');
    expect(rec.counts.fitted).toBe(N - 2);
    expect(rec.flags.OUT_OF_DISTRIBUTION.bit).toBe(128);
    base = readFileSync(r.files.summaryCsv, 'utf8');
  });

  it('FITS gives the same medians as CSV, and the chunk size does not change any number', async () => {
    const r = await fitCatalog({ model: modelDir, catalog: fitsFile, map: MAP, out: path.join(dir, 'out-fits'), samples: M, chunk: 16, seed: 3, onWarning: () => {} });
    expect(readFileSync(r.files.summaryCsv, 'utf8')).toBe(base);
    const r7 = await fitCatalog({ model: modelDir, catalog: csvFile, map: MAP, out: path.join(dir, 'out-chunk7'), samples: M, chunk: 7, seed: 3, saveSamples: false, onWarning: () => {} });
    expect(readFileSync(r7.files.summaryCsv, 'utf8')).toBe(base);
    expect(readdirSync(r7.out).includes('samples.h5')).toBe(false);
  });

  it('resumes after an interrupt without recomputing finished chunks; same output as an uninterrupted run', async () => {
    const out = path.join(dir, 'out-resume');
    const opts = { model: modelDir, catalog: csvFile, map: MAP, out, samples: M, chunk: 16, seed: 3, onWarning: () => {} };
    await expect(
      fitCatalog({
        ...opts,
        onProgress: (p) => {
          if (p.chunk === 0 && p.chunkDone) throw new Error('simulated crash after chunk 0');
        },
      }),
    ).rejects.toThrow(/simulated crash/);
    expect(readdirSync(path.join(out, 'parts'))).toEqual(['chunk-000000.part']);
    expect(JSON.parse(readFileSync(path.join(out, 'fit.json'), 'utf8')).status).toBe('running');
    // An aborted signal stops before the next chunk, keeping what is done.
    const ac = new AbortController();
    ac.abort();
    await expect(fitCatalog({ ...opts, signal: ac.signal })).rejects.toThrow(/fit interrupted after 16 of 40 rows; the finished chunks are kept/);
    const r = await fitCatalog(opts);
    expect(r.rowsResumed).toBe(16);
    expect(r.rowsComputed).toBe(24);
    expect(readFileSync(r.files.summaryCsv, 'utf8')).toBe(base);
    expect(readdirSync(out).includes('parts')).toBe(false);
    // Again: nothing to do.
    const again = await fitCatalog(opts);
    expect(again.alreadyComplete).toBe(true);
    expect(again.rowsComputed).toBe(0);
    // Another seed into the same folder: refused unless overwrite.
    await expect(fitCatalog({ ...opts, seed: 4 })).rejects.toThrow(/holds the finished fit of another model, catalogue, map or options.*--overwrite/);
    const o = await fitCatalog({ ...opts, seed: 4, overwrite: true, saveSamples: false });
    expect(o.rowsComputed).toBe(N);
    expect(readFileSync(o.files.summaryCsv, 'utf8')).not.toBe(base);
  });

  it('the GPU engine gives the same posteriors to f32 precision (lavapipe or a real GPU)', async () => {
    const r = await fitCatalog({
      model: modelDir,
      catalog: csvFile,
      map: MAP,
      out: path.join(dir, 'out-gpu'),
      samples: M,
      chunk: 16,
      seed: 3,
      engine: 'gpu',
      engineOptions: { device: deviceOptionsFromEnv() },
      saveSamples: false,
      onWarning: () => {},
    });
    const g = csvRows(r.files.summaryCsv);
    const c = csvRows(path.join(dir, 'out-csv', 'summary.csv'));
    expect(g.map((x) => x.flags)).toEqual(c.map((x) => x.flags));
    // Same draws (base normals from the same Philox words), f32 vs float64 arithmetic through the
    // flow: quantiles agree to ~1e-5; 1e-3 leaves room for a draw that lands on the other side of
    // a prior bound (it then shifts which candidates fill the M slots).
    let worst = 0;
    for (let i = 0; i < N; i++)
      for (const col of ['log10_mass_median', 'log10_mass_p16', 'shape1_p84']) {
        const a = num(g[i][col]);
        const b = num(c[i][col]);
        if (Number.isNaN(b)) expect(a).toBeNaN();
        else worst = Math.max(worst, Math.abs(a - b));
      }
    expect(worst).toBeLessThan(1e-3);
  });

  it('a band missing from the map is masked in every row (with a warning)', async () => {
    const warnings: string[] = [];
    const { band3: _, ...bands } = MAP.bands;
    const progress: FitProgress[] = [];
    const r = await fitCatalog({
      model: modelDir,
      catalog: csvFile,
      map: { ...MAP, bands },
      out: path.join(dir, 'out-noband3'),
      samples: 50,
      chunk: 40,
      onWarning: (w) => warnings.push(w),
      onProgress: (p) => void progress.push(p),
      saveSamples: false,
    });
    // One chunk of 40 rows, sampled in runs of fitted rows (at most 32 at a time on the CPU; rows 7
    // and 9 are not fitted): reports from inside the chunk, then the chunk.
    expect(progress.map((p) => [p.rowsDone, p.chunkDone])).toEqual([
      [0, true],
      [7, false],
      [9, false],
      [40, true],
    ]);
    expect(warnings.join('\n')).toMatch(/band band3 not in the map: masked in every row/);
    const rows = csvRows(r.files.summaryCsv);
    expect(rows.every((x) => x.masked_bands.includes('band3') && Number(x.flags) & FIT_FLAGS.MASKED_BANDS)).toBe(true);
  });
});

describe('bad input', () => {
  const run = (o: Partial<Parameters<typeof fitCatalog>[0]>) =>
    fitCatalog({ model: modelDir, catalog: csvFile, map: MAP, out: path.join(dir, `bad-${Math.random().toString(36).slice(2)}`), samples: 20, onWarning: () => {}, ...o });

  it('map problems: unknown band, missing column, no units, magnitude error on a flux, no redshift column', async () => {
    await expect(run({ map: { ...MAP, bands: { ...MAP.bands, F444W: { flux: 'f0', error: 'e0' } } } })).rejects.toThrow(
      /band F444W is not one of the model's bands \(the model was trained on band0, band1, band2, band3\)/,
    );
    await expect(run({ map: { ...MAP, bands: { ...MAP.bands, band3: { flux: 'F3_FLUX', error: 'e3' } } } })).rejects.toThrow(/column not in .*cat\.csv: F3_FLUX \(flux of band3\) \(columns: ID, f0/);
    const { units: _, ...noUnits } = MAP;
    await expect(run({ map: noUnits })).rejects.toThrow(/band band3: no units for the flux column "f3": give units/);
    await expect(run({ map: { ...MAP, bands: { ...MAP.bands, band3: { flux: 'f3', error: 'e3', errorUnits: 'ABmag' } } } })).rejects.toThrow(
      /band band3: the error column "e3" is in magnitudes but the flux column "f3" is in nJy/,
    );
    const { redshift: __, ...noZ } = MAP;
    await expect(run({ map: noZ })).rejects.toThrow(/this model takes the redshift as a feature: give its column/);
  });

  it('a model without masks: a band missing from the map is an error; a NaN band leaves the row unfitted', async () => {
    const spec: ToyWorldSpec = { bands: 4, params: 2 };
    const m = await buildToyModel(path.join(dir, 'nomask'), spec, { nTrain: 500, epochs: 0 });
    const { band3: _, ...bands } = MAP.bands;
    const { redshift: __, ...base } = MAP;
    await expect(run({ model: m.modelDir, map: { ...base, bands } })).rejects.toThrow(/no columns for band band3: this model has no mask features/);
    const r = await run({ model: m.modelDir, map: base, chunk: 40 });
    const rows = csvRows(r.files.summaryCsv);
    expect(Number(rows[3].flags)).toBe(FIT_FLAGS.MISSING_BAND | FIT_FLAGS.NOT_FITTED);
    expect(rows[3].masked_bands).toBe('band1');
    expect(rows[3].log10_mass_median).toBe('nan');
    // A FITS catalogue whose columns carry TUNIT nJy and a map without units.
    const { map: toyMap } = await writeToyFitsCatalog(path.join(dir, 'toy.fits'), spec, 5, 7);
    expect(JSON.stringify(toyMap)).not.toMatch(/units/i);
    const t = await run({ model: m.modelDir, catalog: path.join(dir, 'toy.fits'), map: toyMap, saveSamples: false });
    expect(t.fitted).toBe(5);
    expect(JSON.parse(readFileSync(t.files.record, 'utf8')).map.bands[0].fluxUnit).toBe('nJy');
    // Not needed by this model: the redshift column is ignored, with a warning.
    const warnings: string[] = [];
    await run({ model: m.modelDir, map: MAP, chunk: 40, saveSamples: false, onWarning: (w) => warnings.push(w) });
    expect(warnings.join('\n')).toMatch(/the model infers the redshift \(it is not a feature\); the redshift column "z" is ignored/);
  });

  it('a model folder that does not say how its features were made', async () => {
    const m = await buildToyModel(path.join(dir, 'nolib'), { bands: 4, params: 2 }, { nTrain: 200, epochs: 0, recordLibrary: false });
    const { redshift: _, ...map } = MAP;
    await expect(run({ model: m.modelDir, map })).rejects.toThrow(/does not store how its features were made .* give the training library \(--library lib\.h5/);
    const r = await run({ model: m.modelDir, map, library: m.libraryFile, chunk: 40, saveSamples: false });
    expect(r.featureSource).toContain('library.h5');
  });

  it('malformed catalogues: a non-numeric cell, a ragged row, a truncated FITS file, an unknown format', async () => {
    const text = readFileSync(csvFile, 'utf8').split('\n');
    text[5] = text[5].replace(/^([^,]*),[^,]*/, '$1,abc');
    const bad = path.join(dir, 'bad-cell.csv');
    writeFileSync(bad, text.join('\n'));
    await expect(run({ catalog: bad })).rejects.toThrow(/bad-cell\.csv: line 6, column "f0": "abc" is not a number/);
    const ragged = readFileSync(csvFile, 'utf8').split('\n');
    ragged[4] += ',1';
    writeFileSync(path.join(dir, 'ragged.csv'), ragged.join('\n'));
    await expect(run({ catalog: path.join(dir, 'ragged.csv') })).rejects.toThrow(/ragged\.csv: .*line 5/i);
    const fits = readFileSync(fitsFile);
    writeFileSync(path.join(dir, 'trunc.fits'), fits.subarray(0, fits.length - 2880));
    await expect(run({ catalog: path.join(dir, 'trunc.fits') })).rejects.toThrow(/trunc\.fits: HDU 1: truncated data/);
    await expect(run({ catalog: path.join(dir, 'cat.txt') })).rejects.toThrow(/cat\.txt: cannot read \(ENOENT\)/);
    writeFileSync(path.join(dir, 'cat.txt'), 'a,b\n');
    await expect(run({ catalog: path.join(dir, 'cat.txt') })).rejects.toThrow(/cannot tell the catalogue format/);
    writeFileSync(path.join(dir, 'empty.csv'), 'ID,f0\n');
    await expect(run({ catalog: path.join(dir, 'empty.csv') })).rejects.toThrow(/the catalogue has no rows/);
  });

  it('bad options', async () => {
    await expect(run({ samples: 0 })).rejects.toThrow(/samples must be a positive integer/);
    await expect(run({ chunk: 1.5 })).rejects.toThrow(/chunk must be a positive integer/);
    await expect(run({ oodSigma: -1 })).rejects.toThrow(/oodSigma must be > 0/);
    await expect(run({ model: path.join(dir, 'nope') })).rejects.toThrow(/no such model folder/);
  });
});

describe('synference fit (CLI)', () => {
  const cli = async (args: string[]) => {
    const program = new Command('synference').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    registerFit(program);
    await program.parseAsync(['node', 'synference', 'fit', ...args]);
  };
  const mapFile = path.join(dir, 'columns.yaml');

  it('fits a catalogue from a YAML map', async () => {
    writeFileSync(
      mapFile,
      [
        'id: ID',
        'redshift: z',
        'units: nJy',
        'bands:',
        '  band0: { flux: f0, error: e0, units: uJy }',
        '  band1: { flux: f1, error: e1, units: µJy }',
        '  band2: { flux: mag2, error: magerr2, units: AB mag }',
        '  band3: { flux: f3, error: e3 }',
      ].join('\n'),
    );
    const out = path.join(dir, 'out-cli');
    const errs: string[] = [];
    const w = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (errs.push(String(s)), true)) as typeof process.stderr.write;
    try {
      await cli(['--model', modelDir, '--catalog', fitsFile, '--map', mapFile, '--out', out, '--samples', String(M), '--seed', '3', '--chunk', '16', '--no-progress']);
    } finally {
      process.stderr.write = w;
    }
    expect(errs.join('')).toMatch(/fit: 40 galaxies \(38 fitted\)/);
    expect(readFileSync(path.join(out, 'summary.csv'), 'utf8')).toBe(base());
  });

  it('bad arguments', async () => {
    await expect(cli(['--model', modelDir, '--catalog', csvFile, '--map', mapFile, '--out', dir, '--samples', '0'])).rejects.toThrow(/--samples must be a positive integer, got "0"/);
    await expect(cli(['--model', modelDir, '--catalog', csvFile, '--out', dir])).rejects.toThrow(/required option '--map <file>' not specified/);
    await expect(cli(['--model', modelDir, '--catalog', csvFile, '--map', mapFile, '--out', path.join(dir, 'x'), '--engine', 'tpu'])).rejects.toThrow(/engine must be one of cpu, gpu, got "tpu"/);
    await expect(cli(['--model', modelDir, '--catalog', csvFile, '--map', mapFile, '--out', dir, '--min-acceptance', '2'])).rejects.toThrow(/--min-acceptance must be a number in \[0, 1\]/);
    await expect(cli(['--model', modelDir, '--catalog', csvFile, '--map', mapFile, '--out', dir, '--format', 'xlsx'])).rejects.toThrow(/--format must be fits or csv/);
    await expect(cli(['--model', modelDir, '--catalog', csvFile, '--map', mapFile, '--out', path.join(dir, 'y'), '--library', libraryFile, '--sim-config', mapFile])).rejects.toThrow(/exclude each other/);
    await expect(cli(['--model', modelDir, '--catalog', csvFile, '--map', path.join(dir, 'nomap.yaml'), '--out', path.join(dir, 'z')])).rejects.toThrow(/nomap\.yaml: cannot read \(ENOENT\)/);
  });
});

function base(): string {
  return readFileSync(path.join(dir, 'out-csv', 'summary.csv'), 'utf8');
}
