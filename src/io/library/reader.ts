/**
 * Reads simulation libraries: any HDF5 file with 2-D numeric `theta` and `x` (see format.ts).
 *
 *   readLibrary(file)   everything in memory (float32)
 *   openLibrary(file)   metadata now, rows on demand: readRows(start, end), chunks(size)
 *
 * Errors are DataFileError: "<file>: dataset <name>: <what is wrong>".
 */
import { z } from 'zod';
import { zodIssues } from '../../grid/errors.js';
import {
  DataFileError,
  type H5Dataset,
  type H5File,
  LIBRARY_DATASETS,
  type LibraryDatasetName,
  OPTIONAL_DATASETS,
  type OptionalDatasetName,
  defaultColumnNames,
  h5wasm,
  openH5,
} from './format.js';

/** HDF5 type classes (H5Tpublic.h). */
const H5T_INTEGER = 0;
const H5T_FLOAT = 1;

/** Root attributes, all optional (a foreign library has none). */
export interface LibraryAttrs {
  formatVersion?: number;
  generator?: string;
  /** `config` parsed as JSON; undefined when absent or not JSON (then see configText). */
  config?: unknown;
  configText?: string;
  configHash?: string;
  seed?: number;
  chunkSize?: number;
  created?: string;
  /** Every root attribute, JSON-compatible values. */
  all: Record<string, unknown>;
}

export interface LibraryDatasetInfo {
  name: LibraryDatasetName;
  cols: number;
  columns: string[];
  /** Stored dtype, e.g. "<f", "<d", "<i". */
  dtype: string;
  units?: string;
}

/** Rows of the library's datasets, each rows x cols float32, row-major. */
export interface LibraryRows {
  start: number;
  rows: number;
  theta: Float32Array;
  x: Float32Array;
  fluxes?: Float32Array;
  errors?: Float32Array;
  derived?: Float32Array;
}

export interface Library extends LibraryRows {
  file: string;
  /** Total rows of the file (= rows when the whole file was read). */
  n: number;
  thetaNames: string[];
  xNames: string[];
  /** Column info of every dataset read (theta, x and the optional ones present). */
  datasets: Partial<Record<LibraryDatasetName, LibraryDatasetInfo>>;
  attrs: LibraryAttrs;
}

export const ReadLibraryOptionsSchema = z
  .object({
    /** Optional datasets to read when present (default all of fluxes, errors, derived); [] = theta and x only. */
    optional: z.array(z.enum(OPTIONAL_DATASETS)).optional(),
    /** Throw on NaN/Inf in theta or x, naming row and column (default false: a missing band may be NaN). */
    requireFinite: z.boolean().default(false),
    /** Row range [start, end) (default: all rows). */
    rows: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]).optional(),
  })
  .strict();
export type ReadLibraryOptions = z.input<typeof ReadLibraryOptionsSchema>;

const ColumnsAttrSchema = z.array(z.string());
const IntLike = z.union([z.number(), z.bigint()]).transform(Number).pipe(z.number().int());
/** Known root attributes. Each is optional and taken only when of the right type (a foreign file may use these names otherwise). */
const RootAttrFields = {
  format_version: IntLike,
  generator: z.string(),
  config: z.string(),
  config_hash: z.string(),
  seed: IntLike,
  chunk_size: IntLike,
  created: z.string(),
} as const;

function asString(v: unknown): unknown {
  // Fixed-length byte strings written by h5py come back as strings; a 1-element array of one string is a string.
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
  return v;
}

function readAttrs(obj: H5File | H5Dataset, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    try {
      out[k] = obj.get_attribute(k, true);
    } catch {
      out[k] = undefined; // types h5wasm cannot read (references, ...)
    }
  }
  return out;
}

function parseRootAttrs(f: H5File): LibraryAttrs {
  const all = readAttrs(f, Object.keys(f.attrs));
  const a: { [K in keyof typeof RootAttrFields]?: z.output<(typeof RootAttrFields)[K]> } = {};
  for (const [k, schema] of Object.entries(RootAttrFields)) {
    const v = all[k];
    const p = schema.safeParse(asString(Array.isArray(v) && v.length === 1 ? v[0] : v));
    if (p.success) (a as Record<string, unknown>)[k] = p.data;
  }
  let config: unknown;
  if (a.config !== undefined) {
    try {
      config = JSON.parse(a.config);
    } catch {
      config = undefined; // kept as configText: a foreign library may store YAML or free text
    }
  }
  return {
    formatVersion: a.format_version,
    generator: a.generator,
    config,
    configText: a.config,
    configHash: a.config_hash,
    seed: a.seed,
    chunkSize: a.chunk_size,
    created: a.created,
    all,
  };
}

function columnNamesOf(d: H5Dataset, file: string, name: string, cols: number): string[] {
  const attrs = d.attrs;
  let raw: unknown;
  let from = '';
  if ('columns' in attrs) {
    raw = asString(readAttrs(d, ['columns']).columns);
    from = 'columns';
    if (typeof raw === 'string') {
      // A single string: JSON text of the names, or (one column) the name itself.
      try {
        const j = JSON.parse(raw);
        raw = Array.isArray(j) ? j : [raw];
      } catch {
        raw = [raw];
      }
    }
  } else if ('columns_json' in attrs) {
    from = 'columns_json';
    const t = asString(readAttrs(d, ['columns_json']).columns_json);
    try {
      raw = typeof t === 'string' ? JSON.parse(t) : t;
    } catch (e) {
      throw new DataFileError(file, `dataset ${name}`, `attribute columns_json is not JSON (${(e as Error).message})`);
    }
  } else {
    return defaultColumnNames(name, cols);
  }
  const p = ColumnsAttrSchema.safeParse(raw);
  if (!p.success) throw new DataFileError(file, `dataset ${name}`, `attribute ${from} must be a list of strings (${zodIssues(p.error)})`);
  if (p.data.length !== cols) throw new DataFileError(file, `dataset ${name}`, `attribute ${from} names ${p.data.length} columns, the dataset has ${cols}`);
  return p.data;
}

interface DatasetHandle extends LibraryDatasetInfo {
  ds: H5Dataset;
  rows: number;
  oneD: boolean;
}

function describeDtype(d: H5Dataset): string {
  const dt = d.dtype;
  return typeof dt === 'string' ? dt : JSON.stringify(dt);
}

function inspectDataset(f: H5File, file: string, name: LibraryDatasetName, required: boolean): DatasetHandle | undefined {
  const e = f.get(name);
  if (e === null || e === undefined) {
    if (required) throw new DataFileError(file, `dataset ${name}`, `missing (a library needs 2-D datasets theta (N x P) and x (N x F) at the root; found: ${f.keys().join(', ') || 'nothing'})`);
    return undefined;
  }
  if (!(e instanceof h5wasm.Dataset)) throw new DataFileError(file, `dataset ${name}`, `is a ${(e as { type?: string }).type ?? 'non-dataset'}, not a dataset`);
  const md = e.metadata;
  if (md.type !== H5T_INTEGER && md.type !== H5T_FLOAT) {
    throw new DataFileError(file, `dataset ${name}`, `non-numeric dtype ${describeDtype(e)} (expected float or integer)`);
  }
  if (md.type === H5T_FLOAT && md.size !== 4 && md.size !== 8) {
    throw new DataFileError(file, `dataset ${name}`, `unsupported float size ${md.size} bytes (expected float32 or float64)`);
  }
  const shape = e.shape;
  if (!shape || (shape.length !== 2 && shape.length !== 1)) {
    throw new DataFileError(file, `dataset ${name}`, `shape [${(shape ?? []).join(', ')}], expected 2-D (rows x columns)`);
  }
  const oneD = shape.length === 1;
  const rows = shape[0];
  const cols = oneD ? 1 : shape[1];
  if (rows === 0) throw new DataFileError(file, `dataset ${name}`, 'has no rows');
  if (cols === 0) throw new DataFileError(file, `dataset ${name}`, 'has no columns');
  const columns = columnNamesOf(e, file, name, cols);
  let units: string | undefined;
  if ('units' in e.attrs) {
    const u = asString(readAttrs(e, ['units']).units);
    if (typeof u === 'string') units = u;
  }
  return { name, ds: e, rows, cols, columns, dtype: describeDtype(e), units, oneD };
}

function toFloat32(v: unknown, file: string, name: string): Float32Array {
  if (v instanceof Float32Array) return v;
  if (v instanceof Float64Array || v instanceof Int8Array || v instanceof Uint8Array || v instanceof Int16Array || v instanceof Uint16Array || v instanceof Int32Array || v instanceof Uint32Array) {
    return Float32Array.from(v);
  }
  if (v instanceof BigInt64Array || v instanceof BigUint64Array) return Float32Array.from(v as ArrayLike<bigint>, (b) => Number(b));
  throw new DataFileError(file, `dataset ${name}`, `cannot read values as numbers (got ${Object.prototype.toString.call(v)})`);
}

/** A library opened for chunked reading. Call close() when done. */
export class LibraryReader {
  readonly file: string;
  readonly n: number;
  readonly thetaNames: string[];
  readonly xNames: string[];
  readonly datasets: Partial<Record<LibraryDatasetName, LibraryDatasetInfo>>;
  readonly attrs: LibraryAttrs;
  private readonly f: H5File;
  private readonly handles: DatasetHandle[];
  private closed = false;

  private constructor(file: string, f: H5File, handles: DatasetHandle[], attrs: LibraryAttrs) {
    this.file = file;
    this.f = f;
    this.handles = handles;
    this.attrs = attrs;
    this.n = handles[0].rows;
    this.thetaNames = handles[0].columns;
    this.xNames = handles[1].columns;
    this.datasets = {};
    for (const h of handles) this.datasets[h.name] = { name: h.name, cols: h.cols, columns: h.columns, dtype: h.dtype, ...(h.units ? { units: h.units } : {}) };
  }

  /** Opens and validates `file`; `optional` picks the optional datasets to read (default all present). */
  static async open(file: string, optional: readonly OptionalDatasetName[] = OPTIONAL_DATASETS): Promise<LibraryReader> {
    const f = await openH5(file, 'r');
    try {
      const handles: DatasetHandle[] = [];
      for (const name of LIBRARY_DATASETS) {
        const required = name === 'theta' || name === 'x';
        if (!required && !optional.includes(name as OptionalDatasetName)) continue;
        const h = inspectDataset(f, file, name, required);
        if (h) handles.push(h);
      }
      const n = handles[0].rows;
      for (const h of handles.slice(1)) {
        if (h.rows !== n) throw new DataFileError(file, `dataset ${h.name}`, `${h.rows} rows, but dataset theta has ${n}`);
      }
      return new LibraryReader(file, f, handles, parseRootAttrs(f));
    } catch (e) {
      f.close();
      throw e;
    }
  }

  /** Rows [start, end) of theta, x and the optional datasets opened, as float32. */
  readRows(start: number, end: number, opts: { requireFinite?: boolean } = {}): LibraryRows {
    if (this.closed) throw new Error(`${this.file}: library reader is closed`);
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > this.n || start >= end) {
      throw new RangeError(`${this.file}: row range [${start}, ${end}) outside [0, ${this.n})`);
    }
    const out: Partial<LibraryRows> & { start: number; rows: number } = { start, rows: end - start };
    for (const h of this.handles) {
      let v: unknown;
      try {
        v = h.oneD ? h.ds.slice([[start, end]]) : h.ds.slice([[start, end], []]);
      } catch (e) {
        throw new DataFileError(this.file, `dataset ${h.name}`, `cannot read rows ${start}..${end}: ${(e as Error).message}`);
      }
      const a = toFloat32(v, this.file, h.name);
      if (a.length !== (end - start) * h.cols) throw new DataFileError(this.file, `dataset ${h.name}`, `read ${a.length} values for rows ${start}..${end}, expected ${(end - start) * h.cols}`);
      if (opts.requireFinite && (h.name === 'theta' || h.name === 'x')) {
        const bad = a.findIndex((x) => !Number.isFinite(x));
        if (bad >= 0) {
          const r = start + Math.floor(bad / h.cols);
          throw new DataFileError(this.file, `dataset ${h.name}`, `non-finite value ${a[bad]} at row ${r}, column ${h.columns[bad % h.cols]}`);
        }
      }
      out[h.name] = a;
    }
    return out as LibraryRows;
  }

  /** Consecutive row blocks of `size` rows (the last may be shorter). */
  *chunks(size: number, opts: { requireFinite?: boolean } = {}): Generator<LibraryRows> {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size ${size} must be a positive integer`);
    for (let s = 0; s < this.n; s += size) yield this.readRows(s, Math.min(this.n, s + size), opts);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.f.close();
  }
}

/** Opens a library for chunked reading (see LibraryReader). */
export function openLibrary(file: string, optional?: readonly OptionalDatasetName[]): Promise<LibraryReader> {
  return LibraryReader.open(file, optional);
}

/** Reads a library (or a row range of it) into memory, validated; see format.ts for what is accepted. */
export async function readLibrary(file: string, options: ReadLibraryOptions = {}): Promise<Library> {
  const p = ReadLibraryOptionsSchema.safeParse(options);
  if (!p.success) throw new Error(`readLibrary options: ${zodIssues(p.error)}`);
  const o = p.data;
  const r = await LibraryReader.open(file, o.optional ?? OPTIONAL_DATASETS);
  try {
    const [start, end] = o.rows ?? [0, r.n];
    const rows = r.readRows(start, end, { requireFinite: o.requireFinite });
    return { ...rows, file, n: r.n, thetaNames: r.thetaNames, xNames: r.xNames, datasets: r.datasets, attrs: r.attrs };
  } finally {
    r.close();
  }
}
