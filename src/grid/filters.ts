/**
 * Filter transmission curves: two-column ASCII (sedpy `.par`: wavelength [A], throughput; `#` comments,
 * blank lines) and EAZY `FILTER.RES` (Brammer, van Dokkum & Coppi 2008: blocks of a header line
 * "NPTS name [description]" followed by NPTS rows "index lambda throughput").
 *
 * Throughputs are taken as given (photon-to-electron efficiencies for the sedpy curves): the AB band
 * flux is a ratio, so their normalisation cancels (src/physics/filterIntegration.ts).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { resolveDataDir } from '../io/paths.js';
import { DataFileError } from './errors.js';

export interface FilterCurve {
  /** Short name (file stem for .par files; the name token of a FILTER.RES header). */
  name: string;
  /** [A], strictly ascending. */
  wavelengthAA: Float64Array;
  /** Dimensionless, >= 0. */
  throughput: Float64Array;
  /** Where it came from: a path, or "path#id" for FILTER.RES entries. */
  source: string;
}

/** The last component of a '/'-separated path (as path.basename on POSIX; the parsers run in browsers too). */
function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Checks a curve; `lineOf(i)` maps a point index to its line in the file for the message. */
function checkCurve(c: FilterCurve, file: string, lineOf: (i: number) => number): FilterCurve {
  const n = c.wavelengthAA.length;
  if (n < 2) throw new DataFileError(file, undefined, `filter ${c.name}: ${n} points, need at least 2`);
  let anyPositive = false;
  for (let i = 0; i < n; i++) {
    const l = c.wavelengthAA[i];
    const t = c.throughput[i];
    if (!(l > 0) || !Number.isFinite(l)) throw new DataFileError(file, `line ${lineOf(i)}`, `wavelength ${l} must be positive and finite`);
    if (i > 0 && !(l > c.wavelengthAA[i - 1])) {
      throw new DataFileError(file, `line ${lineOf(i)}`, `wavelengths must be strictly ascending: ${l} after ${c.wavelengthAA[i - 1]}`);
    }
    if (!(t >= 0) || !Number.isFinite(t)) throw new DataFileError(file, `line ${lineOf(i)}`, `throughput ${t} must be finite and >= 0`);
    if (t > 0) anyPositive = true;
  }
  if (!anyPositive) throw new DataFileError(file, undefined, `filter ${c.name}: throughput is zero everywhere`);
  return c;
}

/** Parses a two-column filter file's text. */
export function parseTwoColumnFilter(text: string, file: string, name = baseName(file).replace(/\.[^.]*$/, '')): FilterCurve {
  const lam: number[] = [];
  const thr: number[] = [];
  const lines: number[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const t = raw.replace(/#.*/, '').trim();
    if (t === '') return;
    const f = t.split(/[\s,]+/);
    if (f.length !== 2) throw new DataFileError(file, `line ${i + 1}`, `expected 2 columns (wavelength, throughput), got ${f.length}: "${raw.trim()}"`);
    const [l, tr] = f.map(Number);
    if (!Number.isFinite(l) || !Number.isFinite(tr)) throw new DataFileError(file, `line ${i + 1}`, `not a number: "${raw.trim()}"`);
    lam.push(l);
    thr.push(tr);
    lines.push(i + 1);
  });
  if (lam.length === 0) throw new DataFileError(file, undefined, 'no data rows');
  return checkCurve({ name, wavelengthAA: Float64Array.from(lam), throughput: Float64Array.from(thr), source: file }, file, (i) => lines[i]);
}

export function readTwoColumnFilter(file: string, name?: string): FilterCurve {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataFileError(file, undefined, `cannot read filter: ${(e as Error).message}`);
  }
  return parseTwoColumnFilter(text, file, name);
}

export interface FilterResEntry {
  /** 1-based position in the file (EAZY's filter id). */
  id: number;
  /** First token after the point count (usually a path-like name). */
  name: string;
  /** The whole header text after the count. */
  header: string;
  /** 1-based line of the header. */
  line: number;
  wavelengthAA: Float64Array;
  throughput: Float64Array;
}

const ResHeader = z.tuple([z.coerce.number().int().positive()]).rest(z.string());

/**
 * Parses a FILTER.RES file into entries. The block structure (counts, numeric rows) is checked here;
 * the curve itself (ascending, non-negative) when an entry is selected, so one odd curve in a
 * several-hundred-filter file does not make the others unusable.
 */
export function readFilterRes(file: string): FilterResEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataFileError(file, undefined, `cannot read FILTER.RES: ${(e as Error).message}`);
  }
  return parseFilterRes(text, file);
}

/** Parses the text of a FILTER.RES file (see readFilterRes); `file` names it in errors. */
export function parseFilterRes(text: string, file: string): FilterResEntry[] {
  const lines = text.split(/\r?\n/);
  const out: FilterResEntry[] = [];
  let i = 0;
  const skipBlank = () => {
    while (i < lines.length && lines[i].trim() === '') i++;
  };
  skipBlank();
  while (i < lines.length) {
    const headLine = i + 1;
    const fields = lines[i].trim().split(/\s+/);
    const h = ResHeader.safeParse(fields);
    if (!h.success || fields.length < 2) {
      throw new DataFileError(file, `line ${headLine}`, `expected a filter header "NPTS name ...", got "${lines[i].trim().slice(0, 80)}"`);
    }
    const n = h.data[0];
    const header = lines[i].trim().slice(fields[0].length).trim();
    i++;
    const lam = new Float64Array(n);
    const thr = new Float64Array(n);
    for (let k = 0; k < n; k++, i++) {
      if (i >= lines.length || lines[i].trim() === '') {
        throw new DataFileError(file, `line ${i + 1}`, `truncated filter ${out.length + 1} (${fields[1]}, header line ${headLine}): ${k} of ${n} rows`);
      }
      const f = lines[i].trim().split(/\s+/);
      const v = f.map(Number);
      if (f.length < 3 || v.slice(0, 3).some((x) => !Number.isFinite(x))) {
        throw new DataFileError(file, `line ${i + 1}`, `expected "index lambda throughput" (row ${k + 1} of ${n} of filter ${out.length + 1}), got "${lines[i].trim()}"`);
      }
      lam[k] = v[1];
      thr[k] = v[2];
    }
    out.push({ id: out.length + 1, name: fields[1], header, line: headLine, wavelengthAA: lam, throughput: thr });
    skipBlank();
  }
  if (out.length === 0) throw new DataFileError(file, undefined, 'no filters');
  return out;
}

/** Selects a FILTER.RES entry by 1-based id or by a (case-insensitive) substring of its header. */
export function selectFilterRes(entries: readonly FilterResEntry[], selector: number | string, file: string): FilterCurve {
  let e: FilterResEntry | undefined;
  const asId = typeof selector === 'number' ? selector : /^\d+$/.test(selector.trim()) ? Number(selector) : undefined;
  if (asId !== undefined) {
    e = entries[asId - 1];
    if (!e) throw new DataFileError(file, undefined, `no filter with id ${asId} (ids are 1..${entries.length})`);
  } else {
    const s = String(selector).toLowerCase();
    const hits = entries.filter((x) => x.header.toLowerCase().includes(s));
    const exact = hits.filter((x) => x.name.toLowerCase() === s || baseName(x.name).toLowerCase().replace(/\.[^.]*$/, '') === s);
    if (exact.length === 1) e = exact[0];
    else if (hits.length === 1) e = hits[0];
    else if (hits.length === 0) throw new DataFileError(file, undefined, `no filter header contains "${selector}"`);
    else {
      const list = hits.slice(0, 10).map((x) => `${x.id}: ${x.name}`).join('; ');
      throw new DataFileError(file, undefined, `"${selector}" matches ${hits.length} filters (${list}${hits.length > 10 ? '; ...' : ''}); use the id or a longer name`);
    }
  }
  const entry = e;
  const curve: FilterCurve = {
    name: baseName(entry.name).replace(/\.(dat|txt|res|par)$/i, ''),
    wavelengthAA: entry.wavelengthAA,
    throughput: entry.throughput,
    source: `${file}#${entry.id}`,
  };
  return checkCurve(curve, file, (i) => entry.line + 1 + i);
}

/** Named filter sets (file stems under <data>/filters). */
export const FILTER_SETS: Readonly<Record<string, readonly string[]>> = {
  /** The 14-band HST/ACS + JWST/NIRCam set of the reference study (JADES-like). */
  jades14: [
    'acs_wfc_f435w',
    'acs_wfc_f606w',
    'acs_wfc_f775w',
    'acs_wfc_f814w',
    'acs_wfc_f850lp',
    'jwst_f090w',
    'jwst_f115w',
    'jwst_f150w',
    'jwst_f200w',
    'jwst_f277w',
    'jwst_f335m',
    'jwst_f356w',
    'jwst_f410m',
    'jwst_f444w',
  ],
};

/** A filter-set spec: a set name ("jades14"), or a list (array or comma-separated) of items. */
export const FilterSetSpecSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
export type FilterSetSpec = z.infer<typeof FilterSetSpecSchema>;

const resCache = new Map<string, FilterResEntry[]>();

/**
 * Resolves a filter-set spec to curves, in order. Items may be:
 *  - a set name from FILTER_SETS (only as the whole spec);
 *  - a path to a two-column file;
 *  - `path/FILTER.RES#<id or name substring>`;
 *  - a file stem under `<dataDir>/filters` (e.g. "jwst_f200w").
 * `dataDir` is resolved with resolveDataDir() only when needed.
 */
export function resolveFilterSet(spec: FilterSetSpec, dataDir?: string): FilterCurve[] {
  const parsed = FilterSetSpecSchema.safeParse(spec);
  if (!parsed.success) throw new Error(`filter set: expected a set name or a list of filter files, got ${JSON.stringify(spec)}`);
  const items = typeof parsed.data === 'string' ? parsed.data.split(',').map((s) => s.trim()).filter(Boolean) : parsed.data;
  const isSet = (name: string) => Object.hasOwn(FILTER_SETS, name);
  if (items.length === 1 && isSet(items[0])) {
    const dir = path.join(resolveDataDir(dataDir), 'filters');
    return FILTER_SETS[items[0]].map((stem) => readTwoColumnFilter(path.join(dir, `${stem}.par`), stem));
  }
  return items.map((item) => {
    const hash = item.lastIndexOf('#');
    if (hash > 0) {
      const file = item.slice(0, hash);
      const sel = item.slice(hash + 1);
      if (!sel) throw new Error(`filter "${item}": empty selector after "#"`);
      let entries = resCache.get(path.resolve(file));
      if (!entries) {
        entries = readFilterRes(file);
        resCache.set(path.resolve(file), entries);
      }
      return selectFilterRes(entries, sel, file);
    }
    if (existsSync(item) && statSync(item).isFile()) return readTwoColumnFilter(item);
    if (isSet(item)) throw new Error(`filter set "${item}" can only be used on its own, not inside a list`);
    let dir: string | undefined;
    try {
      dir = path.join(resolveDataDir(dataDir), 'filters');
    } catch {
      dir = undefined;
    }
    if (dir) {
      for (const cand of [path.join(dir, item), path.join(dir, `${item}.par`)]) if (existsSync(cand)) return readTwoColumnFilter(cand);
    }
    let known = '';
    try {
      if (dir) known = `; filters in ${dir}: ${readdirSync(dir).map((f) => f.replace(/\.par$/, '')).join(', ')}`;
    } catch {
      /* no listing */
    }
    throw new Error(`unknown filter or filter set "${item}": not a file, not a set (${Object.keys(FILTER_SETS).join(', ')})${known}`);
  });
}
