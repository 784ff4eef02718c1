/**
 * The CSV rules of catalogues (see catalog.ts) without the file system: numeric cells, the parser
 * options, the header checks, and a CSV catalogue held in memory as text (the browser page's
 * catalogue; catalog.ts streams files from disk with the same options and checks). No node: imports.
 */
import { parse } from 'csv-parse/browser/esm/sync';

export class CatalogError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'CatalogError';
  }
}

/** A chunk of rows: numeric (NaN = missing) and text values of referenced columns. */
export interface CatalogBlock {
  start: number;
  rows: number;
  numeric(ref: string): Float64Array;
  text(ref: string): string[];
}

const MISSING = new Set(['', 'nan', '+nan', '-nan', 'na', 'n/a', 'null', 'none', '--', 'masked']);

/** A numeric CSV cell (see catalog.ts's module comment); throws naming line and column. */
export function parseNumericCell(raw: string, where: () => string): number {
  const s = raw.trim();
  const l = s.toLowerCase();
  if (MISSING.has(l)) return NaN;
  if (l === 'inf' || l === '+inf' || l === 'infinity' || l === '+infinity') return Infinity;
  if (l === '-inf' || l === '-infinity') return -Infinity;
  const v = Number(s);
  if (Number.isNaN(v) || /^0[xob]/i.test(s)) throw new Error(`${where()}: "${raw}" is not a number`);
  return v;
}

/** csv-parse options of every catalogue: # comments, blank lines skipped, cells trimmed, equal row lengths. */
export const CSV_PARSE_OPTIONS = { comment: '#', skip_empty_lines: true, trim: true, relax_column_count: false, info: true, bom: true } as const;

/** Checks a CSV header (present, unique, named columns); returns it. */
export function checkCsvHeader(header: string[] | undefined, file: string): string[] {
  if (!header || header.length === 0 || (header.length === 1 && header[0] === '')) throw new CatalogError(file, 'no header line (the first line must name the columns)');
  const dup = header.filter((h, i) => header.indexOf(h) !== i);
  if (dup.length) throw new CatalogError(file, `duplicate column name${dup.length > 1 ? 's' : ''} ${[...new Set(dup)].join(', ')}`);
  const empty = header.findIndex((h) => h === '');
  if (empty >= 0) throw new CatalogError(file, `column ${empty + 1} of the header has no name`);
  return header;
}

/** A CSV catalogue parsed from text: its columns and blocks of rows. */
export interface TextCatalog {
  file: string;
  format: 'csv';
  nRows: number;
  columns: readonly string[];
  hasColumn(ref: string): boolean;
  /** CSV has no units. */
  unitOf(ref: string): string | undefined;
  /** Rows [start, start + rows), the referenced columns decoded (numeric cells as parseNumericCell). */
  block(start: number, rows: number, refs: { numeric: readonly string[]; text: readonly string[] }): CatalogBlock;
}

type CsvRecord = { record: string[]; info: { lines: number } };

/** Parses CSV text (the whole catalogue) with the rules of catalog.ts; `file` names it in errors. */
export function parseCsvCatalog(text: string, file: string): TextCatalog {
  let records: CsvRecord[];
  try {
    records = parse(text, CSV_PARSE_OPTIONS) as unknown as CsvRecord[];
  } catch (e) {
    throw new CatalogError(file, (e as Error).message);
  }
  const cols = checkCsvHeader(records[0]?.record, file);
  const body = records.slice(1);
  const index = new Map(cols.map((c, i) => [c, i]));
  const column = (ref: string) => {
    const c = index.get(ref);
    if (c === undefined) throw new CatalogError(file, `no column "${ref}" (columns: ${cols.join(', ')})`);
    return c;
  };
  return {
    file,
    format: 'csv',
    nRows: body.length,
    columns: cols,
    hasColumn: (ref) => index.has(ref),
    unitOf: () => undefined,
    block(start, rows, refs) {
      if (!(Number.isInteger(start) && Number.isInteger(rows) && start >= 0 && rows >= 0 && start + rows <= body.length)) {
        throw new RangeError(`${file}: rows [${start}, ${start + rows}) are outside the catalogue's ${body.length} rows`);
      }
      const num = new Map<string, Float64Array>();
      const txt = new Map<string, string[]>();
      for (const ref of refs.numeric) {
        const c = column(ref);
        const a = new Float64Array(rows);
        for (let i = 0; i < rows; i++) {
          const r = body[start + i];
          try {
            a[i] = parseNumericCell(r.record[c], () => `line ${r.info.lines}, column "${cols[c]}"`);
          } catch (e) {
            throw new CatalogError(file, (e as Error).message);
          }
        }
        num.set(ref, a);
      }
      for (const ref of refs.text) {
        const c = column(ref);
        txt.set(ref, Array.from({ length: rows }, (_, i) => body[start + i].record[c]));
      }
      return {
        start,
        rows,
        numeric: (ref) => {
          const a = num.get(ref);
          if (!a) throw new CatalogError(file, `column "${ref}" was not read as a number`);
          return a;
        },
        text: (ref) => {
          const a = txt.get(ref);
          if (!a) throw new CatalogError(file, `column "${ref}" was not read as text`);
          return a;
        },
      };
    },
  };
}
