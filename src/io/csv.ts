/** CSV tables (csv-parse / csv-stringify) with errors that name the file, row and column. */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';

export interface CsvTable {
  file: string;
  columns: string[];
  /** Raw string cells, one record per data row. */
  rows: Record<string, string>[];
}

export function readCsv(file: string): CsvTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  let rows: Record<string, string>[];
  try {
    rows = parse(text, { columns: true, comment: '#', skip_empty_lines: true, trim: true, relax_column_count: false });
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  const columns = rows.length ? Object.keys(rows[0]) : (text.split(/\r?\n/).find((l) => l.trim() && !l.startsWith('#')) ?? '').split(',').map((s) => s.trim());
  return { file, columns, rows };
}

/** A numeric cell; empty / "nan" cells give NaN only when `optional`, otherwise an error naming row and column. */
export function numberCell(t: CsvTable, row: number, column: string, optional = false): number {
  const raw = t.rows[row][column];
  // Row numbers in messages count the header as line 1.
  const where = `${t.file}: row ${row + 2}, column "${column}"`;
  if (raw === undefined) {
    if (optional) return NaN;
    throw new Error(`${where}: missing column (columns: ${t.columns.join(', ')})`);
  }
  if (raw === '' || /^nan$/i.test(raw)) {
    if (optional) return NaN;
    throw new Error(`${where}: empty value`);
  }
  const v = Number(raw);
  if (Number.isNaN(v)) throw new Error(`${where}: "${raw}" is not a number`);
  return v;
}

export function writeCsv(file: string, columns: string[], rows: (string | number)[][]): void {
  writeFileSync(file, stringify(rows, { header: true, columns, cast: { number: (v) => (Number.isFinite(v) ? String(v) : 'nan') } }));
}
