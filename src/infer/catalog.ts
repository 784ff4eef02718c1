/**
 * Catalogues for fitting, streamed in row chunks with bounded memory: FITS binary tables
 * (src/io/fits.ts; random access) and CSV (csv-parse, sequential). One interface:
 *
 *   const cat = await openCatalog('cat.fits' | 'cat.csv', { hdu });
 *   cat.nRows, cat.columns, cat.hasColumn(ref), cat.unitOf(ref), await cat.sha256()
 *   for await (const c of cat.chunks(1024, { skip: (i) => done.has(i) })) c.block?.numeric(ref) ...
 *
 * Column references: a column name; for a FITS vector column `NAME[i]` picks element i (0-based).
 * FITS names match exactly, else case-insensitively when unique.
 *
 * CSV: a header line with the column names, then one record per line; lines starting with # are
 * comments; cells are trimmed. Opening makes one pass over the file (row count, sha256, and the
 * structure: a row with the wrong number of cells is an error naming the line). Numeric cells:
 * empty, nan, na, n/a, null, none, -- and masked read as NaN (missing); inf / -inf as +-Infinity;
 * anything else that is not a number is an error naming the file, line and column.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { parse } from 'csv-parse';
import { FitsError, type FitsRowBlock, FitsTable } from '../io/fits.js';
import { type CatalogBlock, CSV_PARSE_OPTIONS, CatalogError, checkCsvHeader, parseNumericCell } from './catalogText.js';

// The CSV rules (cells, parser options, header checks) live in catalogText.ts, shared with the browser.
export { type CatalogBlock, CatalogError, parseNumericCell } from './catalogText.js';

export type CatalogFormat = 'fits' | 'csv';

export interface CatalogChunk {
  index: number;
  start: number;
  rows: number;
  /** Undefined for a skipped chunk. */
  block?: CatalogBlock;
}

export interface ChunkOptions {
  /** Chunks not to decode (already done). */
  skip?: (index: number) => boolean;
  /** Columns to decode as numbers / text (CSV reads only these; default: all). */
  numeric?: readonly string[];
  text?: readonly string[];
}

export interface Catalog {
  file: string;
  format: CatalogFormat;
  /** FITS: the HDU read. */
  hdu?: number;
  nRows: number;
  columns: readonly string[];
  hasColumn(ref: string): boolean;
  unitOf(ref: string): string | undefined;
  /** sha256 (hex) of the file's bytes (streamed; cached). */
  sha256(): Promise<string>;
  chunks(size: number, opts?: ChunkOptions): AsyncGenerator<CatalogChunk>;
  close(): void;
}

/** The format of a catalogue from its extension (or `format`). */
export function catalogFormat(file: string, format?: string): CatalogFormat {
  if (format !== undefined) {
    const f = format.toLowerCase();
    if (f === 'fits' || f === 'csv') return f;
    throw new CatalogError(file, `unknown catalogue format "${format}" (allowed: fits, csv)`);
  }
  if (/\.(fits|fit|fts)$/i.test(file)) return 'fits';
  if (/\.csv$/i.test(file)) return 'csv';
  if (/\.(fits|fit|fts)\.(gz|fz|bz2)$/i.test(file)) throw new CatalogError(file, 'compressed FITS is not supported: decompress it first (gunzip)');
  throw new CatalogError(file, 'cannot tell the catalogue format from the file name (.fits/.fit/.fts or .csv); give the format');
}

async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function openCatalog(file: string, opts: { format?: string; hdu?: number | string } = {}): Promise<Catalog> {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new CatalogError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (st.isDirectory()) throw new CatalogError(file, 'is a folder, not a catalogue file');
  const format = catalogFormat(file, opts.format);
  if (format === 'fits') return openFitsCatalog(file, opts.hdu);
  if (opts.hdu !== undefined) throw new CatalogError(file, 'hdu applies to FITS catalogues only');
  return openCsvCatalog(file);
}

// ---------------------------------------------------------------------------------------------
// FITS
// ---------------------------------------------------------------------------------------------

const VECTOR_REF = /^(.*)\[(\d+)\]$/;

function openFitsCatalog(file: string, hdu: number | string | undefined): Catalog {
  const t = FitsTable.open(file, { hdu });
  const resolve = (ref: string): { name: string; element?: number } | undefined => {
    const c = t.findColumn(ref);
    if (c) return { name: c.name };
    const m = VECTOR_REF.exec(ref);
    if (m) {
      const v = t.findColumn(m[1]);
      if (v && v.type !== 'A' && Number(m[2]) < v.repeat) return { name: v.name, element: Number(m[2]) };
    }
    return undefined;
  };
  const columns = t.columns.map((c) => (c.repeat > 1 && c.type !== 'A' ? `${c.name}[0..${c.repeat - 1}]` : c.name));
  let hash: Promise<string> | undefined;
  const wrap = (b: FitsRowBlock): CatalogBlock => ({
    start: b.start,
    rows: b.rows,
    numeric(ref) {
      const r = resolve(ref);
      if (!r) throw new FitsError(file, t.hdu, ref, 'no such column');
      return b.numeric(r.name, r.element);
    },
    text(ref) {
      const r = resolve(ref);
      if (!r) throw new FitsError(file, t.hdu, ref, 'no such column');
      return b.text(r.name, r.element);
    },
  });
  return {
    file,
    format: 'fits',
    hdu: t.hdu,
    nRows: t.nRows,
    columns,
    hasColumn: (ref) => resolve(ref) !== undefined,
    unitOf: (ref) => {
      const r = resolve(ref);
      return r ? t.findColumn(r.name)?.unit : undefined;
    },
    sha256: () => (hash ??= fileSha256(file)),
    async *chunks(size, o = {}) {
      if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
      for (let s = 0, i = 0; s < t.nRows; s += size, i++) {
        const rows = Math.min(size, t.nRows - s);
        if (o.skip?.(i)) yield { index: i, start: s, rows };
        else yield { index: i, start: s, rows, block: wrap(t.readRows(s, rows)) };
      }
    },
    close: () => t.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

function csvParser() {
  return parse(CSV_PARSE_OPTIONS);
}

type CsvRecord = { record: string[]; info: { lines: number } };

async function openCsvCatalog(file: string): Promise<Catalog> {
  // One pass: header, row count, structure check, sha256.
  const hash = createHash('sha256');
  let header: string[] | undefined;
  let n = 0;
  try {
    const input = createReadStream(file);
    input.on('data', (c) => hash.update(c as Buffer));
    const parser = input.pipe(csvParser());
    input.on('error', (e) => parser.destroy(e));
    for await (const r of parser as AsyncIterable<CsvRecord>) {
      if (!header) header = r.record;
      else n++;
    }
  } catch (e) {
    throw new CatalogError(file, (e as Error).message);
  }
  const cols = checkCsvHeader(header, file);
  const digest = hash.digest('hex');
  const index = new Map(cols.map((c, i) => [c, i]));
  return {
    file,
    format: 'csv',
    nRows: n,
    columns: cols,
    hasColumn: (ref) => index.has(ref),
    unitOf: () => undefined,
    sha256: async () => digest,
    async *chunks(size, o = {}) {
      if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
      const numRefs = o.numeric ?? cols;
      const textRefs = o.text ?? cols;
      for (const r of [...numRefs, ...textRefs]) if (!index.has(r)) throw new CatalogError(file, `no column "${r}" (columns: ${cols.join(', ')})`);
      const numIdx = numRefs.map((r) => index.get(r)!);
      const textIdx = textRefs.map((r) => index.get(r)!);
      const input = createReadStream(file);
      const parser = input.pipe(csvParser());
      input.on('error', (e) => parser.destroy(e));
      let chunk = 0;
      let start = 0;
      let inChunk = 0;
      let skipping = o.skip?.(0) ?? false;
      let num: Float64Array[] = [];
      let txt: string[][] = [];
      const begin = () => {
        const rows = Math.min(size, n - start);
        skipping = o.skip?.(chunk) ?? false;
        num = skipping ? [] : numRefs.map(() => new Float64Array(rows));
        txt = skipping ? [] : textRefs.map(() => new Array<string>(rows));
      };
      const finish = (): CatalogChunk => {
        const rows = inChunk;
        if (skipping) return { index: chunk, start, rows };
        const numMap = new Map(numRefs.map((r, k) => [r, num[k]]));
        const txtMap = new Map(textRefs.map((r, k) => [r, txt[k]]));
        const block: CatalogBlock = {
          start,
          rows,
          numeric: (ref) => {
            const a = numMap.get(ref);
            if (!a) throw new CatalogError(file, `column "${ref}" was not read as a number`);
            return a;
          },
          text: (ref) => {
            const a = txtMap.get(ref);
            if (!a) throw new CatalogError(file, `column "${ref}" was not read as text`);
            return a;
          },
        };
        return { index: chunk, start, rows, block };
      };
      let first = true;
      let seen = 0;
      try {
        if (n > 0) begin();
        for await (const r of parser as AsyncIterable<CsvRecord>) {
          if (first) {
            first = false;
            continue;
          }
          if (seen >= n) throw new CatalogError(file, 'the file changed while it was read (more rows than when it was opened)');
          if (!skipping) {
            const rec = r.record;
            for (let k = 0; k < numIdx.length; k++) {
              const c = numIdx[k];
              num[k][inChunk] = parseNumericCell(rec[c], () => `${file}: line ${r.info.lines}, column "${cols[c]}"`);
            }
            for (let k = 0; k < textIdx.length; k++) txt[k][inChunk] = rec[textIdx[k]];
          }
          inChunk++;
          seen++;
          if (inChunk === Math.min(size, n - start)) {
            yield finish();
            chunk++;
            start += inChunk;
            inChunk = 0;
            if (start < n) begin();
          }
        }
      } catch (e) {
        if (e instanceof CatalogError) throw e;
        const msg = (e as Error).message;
        throw new CatalogError(file, msg.startsWith(file) ? msg.slice(file.length + 2) : msg);
      } finally {
        input.destroy();
      }
      if (seen !== n) throw new CatalogError(file, `the file changed while it was read (${seen} rows, ${n} when it was opened)`);
    },
    close: () => {},
  };
}
