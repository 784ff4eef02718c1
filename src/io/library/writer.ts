/**
 * `LibraryWriter`: writes a simulation library in chunks, resumably.
 *
 * Life of a run (`out` = lib.h5):
 *  1. `LibraryWriter.open(...)` creates (or finds) `lib.h5.parts/` with `manifest.json` (identity =
 *     config hash, seed, n, chunk size; column names; `created`) and takes `lib.h5.parts/lock`.
 *  2. The simulator asks `pendingChunks()` and, for each, computes the rows of `chunk(i)` and calls
 *     `writeChunk(i, data)`: the chunk becomes `chunk-00000i.part` (temp name + fsync + rename), then
 *     the manifest lists it (same). Chunks may be written in any order.
 *  3. `finalize()` streams the parts, one at a time and checksum-verified, into `lib.h5.assembling`
 *     (preallocated, HDF5-chunked datasets written by row hyperslabs), fsyncs it, renames it to
 *     `lib.h5` and removes the parts folder (renamed to `lib.h5.parts.removing` first; unless `keepParts`).
 * Killed at any moment (kill -9 included), a restart with the same out, config, seed, n and chunk
 * size verifies the finished parts (a part renamed into place but not yet in the manifest is adopted,
 * a damaged one is dropped and recomputed), and continues; `created` comes from the manifest, so the
 * final file has the same content as an uninterrupted run's. A restart with another identity is
 * refused (`LibraryResumeError`) unless `overwrite`. When `lib.h5` is already complete for the same
 * identity, the writer opens with nothing pending and `finalize()` does nothing.
 *
 * Memory: one chunk while writing it, one part while assembling.
 */
import { existsSync, mkdirSync, openSync, closeSync, fsyncSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { acquireFolderLock, forgetFolderLock, releaseFolderLock } from '../folderLock.js';
import { zodIssues } from '../../grid/errors.js';
import {
  DATASET_UNITS,
  LIBRARY_DATASETS,
  LIBRARY_FORMAT_VERSION,
  LIBRARY_GENERATOR,
  type LibraryDatasetName,
  configHash as hashConfig,
  openH5,
} from './format.js';
import {
  type ChunkRecord,
  type DatasetColumns,
  LOCK_NAME,
  MANIFEST_NAME,
  type Manifest,
  ManifestSchema,
  PART_RE,
  type RunIdentity,
  TMP_SUFFIX,
  decodePart,
  encodePart,
  fsyncDir,
  partName,
  writeFileAtomic,
} from './parts.js';

/** Refused start or resume (another identity, a live writer, a foreign output): the message says what to do. */
export class LibraryResumeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibraryResumeError';
  }
}

const columnNames = z
  .array(z.string().min(1, 'empty column name'))
  .min(1, 'needs at least one column')
  .refine((a) => new Set(a).size === a.length, { message: 'column names must be unique' });

export const LibraryColumnsSchema = z
  .object({ theta: columnNames, x: columnNames, fluxes: columnNames.optional(), errors: columnNames.optional(), derived: columnNames.optional() })
  .strict();
export type LibraryColumns = z.infer<typeof LibraryColumnsSchema>;

export const LibraryWriterOptionsSchema = z
  .object({
    /** Output HDF5 path; the parts go to `<out>.parts/`. */
    out: z.string().min(1),
    /** Total rows. */
    n: z.number().int().positive().max(2 ** 31 - 1),
    /** Rows per chunk (the last chunk may be shorter). */
    chunkSize: z.number().int().positive(),
    /** The simulation config (JSON-serialisable); stored as JSON text, its canonical hash is part of the identity. */
    config: z.unknown(),
    /** Seed of every random stream (non-negative safe integer); stored as int64. */
    seed: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    /** Column names per dataset; their counts fix the widths. `theta` and `x` are required. */
    columns: LibraryColumnsSchema,
    /** Discard an unfinished run of another identity (and replace an existing output at finalize). */
    overwrite: z.boolean().default(false),
    /** Keep `<out>.parts/` after assembling. */
    keepParts: z.boolean().default(false),
    /** `created` attribute for a new run (default: now); a resumed run keeps its manifest's. */
    created: z.string().optional(),
    /** gzip level of the final HDF5 datasets, 0 (default) = none. */
    compression: z.number().int().min(0).max(9).default(0),
    /** Where warnings go (damaged parts dropped, ...); default console.warn. */
    onWarning: z.custom<(message: string) => void>((v) => typeof v === 'function', 'must be a function').optional(),
  })
  .strict();
export type LibraryWriterOptions = z.input<typeof LibraryWriterOptionsSchema>;

/**
 * Rows of one dataset for one chunk: a flat row-major array of rows x cols numbers
 * (Float32Array, Float64Array, number[]), or an array of rows.
 */
export type Rows = Float32Array | Float64Array | ArrayLike<number> | ArrayLike<ArrayLike<number>>;
export interface ChunkData {
  theta: Rows;
  x: Rows;
  fluxes?: Rows;
  errors?: Rows;
  derived?: Rows;
}
export interface ChunkSpec {
  index: number;
  /** First row (global index). */
  start: number;
  rows: number;
}
export interface LibraryWriteResult {
  out: string;
  n: number;
  nChunks: number;
}

function acquireLock(dir: string, out: string): void {
  const lockFile = path.join(dir, LOCK_NAME);
  acquireFolderLock(lockFile, (c) => {
    switch (c.kind) {
      case 'this-process':
        return new LibraryResumeError(`${out}: a LibraryWriter of this process already has it open (close() it first)`);
      case 'other-host':
        return new LibraryResumeError(`${out}: ${lockFile} says host ${c.host} (pid ${c.pid}) is writing this library; if that run is dead, delete the lock file`);
      case 'other-process':
        return new LibraryResumeError(`${out}: another process (pid ${c.pid}) is writing this library (${lockFile}); if it is not a simulation run, delete the lock file`);
      default:
        return new LibraryResumeError(`${out}: cannot take the lock ${lockFile}`);
    }
  });
}

function releaseLock(dir: string): void {
  releaseFolderLock(path.join(dir, LOCK_NAME));
}

function short(h: string): string {
  return h.slice(0, 12);
}

/** Differences between a stored identity (+ columns) and the requested one, as phrases. */
function identityDiff(have: RunIdentity, want: RunIdentity, haveCols: DatasetColumns[], wantCols: DatasetColumns[]): string[] {
  const d: string[] = [];
  if (have.configHash !== want.configHash) d.push(`config (hash ${short(have.configHash)}, now ${short(want.configHash)})`);
  if (have.seed !== want.seed) d.push(`seed (${have.seed}, now ${want.seed})`);
  if (have.n !== want.n) d.push(`n (${have.n}, now ${want.n})`);
  if (have.chunkSize !== want.chunkSize) d.push(`chunk size (${have.chunkSize}, now ${want.chunkSize})`);
  const names = (c: DatasetColumns[]) => c.map((x) => x.name).join(',');
  if (names(haveCols) !== names(wantCols)) d.push(`datasets (${names(haveCols)}, now ${names(wantCols)})`);
  else {
    for (let k = 0; k < haveCols.length; k++) {
      const [a, b] = [haveCols[k].columns, wantCols[k].columns];
      const j = a.findIndex((v, i) => v !== b[i]);
      if (a.length !== b.length || j >= 0) d.push(`columns of ${haveCols[k].name} (${a.length} columns, now ${b.length}${j >= 0 ? `; column ${j} "${a[j]}", now "${b[j] ?? ''}"` : ''})`);
    }
  }
  return d;
}

function toFloat32(where: string, rows: number, cols: number, input: Rows): Float32Array {
  const want = rows * cols;
  if (input == null || typeof (input as ArrayLike<unknown>).length !== 'number') throw new Error(`${where}: expected an array, got ${typeof input}`);
  const a = input as ArrayLike<unknown>;
  if (a.length > 0 && typeof a[0] === 'object' && a[0] !== null) {
    if (a.length !== rows) throw new Error(`${where}: ${a.length} rows, expected ${rows}`);
    const out = new Float32Array(want);
    for (let r = 0; r < rows; r++) {
      const row = a[r] as ArrayLike<number>;
      if (row == null || row.length !== cols) throw new Error(`${where}: row ${r} has ${row == null ? 'no' : row.length} values, expected ${cols}`);
      for (let c = 0; c < cols; c++) {
        const v = row[c];
        if (typeof v !== 'number') throw new Error(`${where}: row ${r}, column ${c}: not a number (${typeof v})`);
        out[r * cols + c] = v;
      }
    }
    return out;
  }
  if (a.length !== want) throw new Error(`${where}: ${a.length} values, expected ${rows} x ${cols} = ${want} (flat row-major) or an array of ${rows} rows`);
  if (input instanceof Float32Array) return input;
  if (ArrayBuffer.isView(input)) return Float32Array.from(input as Float64Array);
  const out = new Float32Array(want);
  for (let i = 0; i < want; i++) {
    const v = a[i];
    if (typeof v !== 'number') throw new Error(`${where}: value ${i} (row ${Math.floor(i / cols)}, column ${i % cols}): not a number (${typeof v})`);
    out[i] = v;
  }
  return out;
}

interface ExistingOutput {
  identity: RunIdentity;
  columns: DatasetColumns[];
}

/** Identity of a finished library written by this writer, or a reason why `out` is not one. */
async function readExistingOutput(out: string): Promise<ExistingOutput | string> {
  let f;
  try {
    f = await openH5(out, 'r');
  } catch (e) {
    return (e as Error).message;
  }
  try {
    const attr = (k: string) => (k in f.attrs ? f.get_attribute(k, true) : undefined);
    if (attr('generator') !== LIBRARY_GENERATOR) return 'not written by synference-webgpu (no generator attribute)';
    const columns: DatasetColumns[] = [];
    let n = -1;
    for (const name of LIBRARY_DATASETS) {
      const d = f.get(name);
      if (!d) continue;
      const c = (d as { get_attribute: (k: string, j: true) => unknown }).get_attribute('columns', true);
      columns.push({ name, columns: (Array.isArray(c) ? c : [c]).map(String) });
      if (name === 'theta') n = ((d as { shape: number[] | null }).shape ?? [-1])[0];
    }
    const identity = { configHash: String(attr('config_hash')), seed: Number(attr('seed')), n, chunkSize: Number(attr('chunk_size')) };
    return { identity, columns };
  } catch (e) {
    return `unreadable as a library (${(e as Error).message})`;
  } finally {
    f.close();
  }
}

export class LibraryWriter {
  readonly out: string;
  readonly partsDir: string;
  readonly n: number;
  readonly chunkSize: number;
  readonly nChunks: number;
  readonly seed: number;
  readonly configHash: string;
  /** Datasets in file order with their column names. */
  readonly datasets: readonly DatasetColumns[];
  /** True when finished parts of an earlier run were found and kept. */
  readonly resumed: boolean;
  private manifest: Manifest | null;
  private completeOutput: boolean;
  private closed = false;
  private readonly opts: z.output<typeof LibraryWriterOptionsSchema>;
  private readonly warn: (msg: string) => void;

  private constructor(opts: z.output<typeof LibraryWriterOptionsSchema>, state: { manifest: Manifest | null; complete: boolean; resumed: boolean; datasets: DatasetColumns[]; configHash: string }) {
    this.opts = opts;
    this.out = path.resolve(opts.out);
    this.partsDir = this.out + '.parts';
    this.n = opts.n;
    this.chunkSize = opts.chunkSize;
    this.nChunks = Math.ceil(opts.n / opts.chunkSize);
    this.seed = opts.seed;
    this.configHash = state.configHash;
    this.datasets = state.datasets;
    this.manifest = state.manifest;
    this.completeOutput = state.complete;
    this.resumed = state.resumed;
    this.warn = opts.onWarning ?? ((m: string) => console.warn(m));
  }

  /** Starts a run, resumes an unfinished one, or finds the finished output (see the module comment). */
  static async open(options: LibraryWriterOptions): Promise<LibraryWriter> {
    const parsed = LibraryWriterOptionsSchema.safeParse(options);
    if (!parsed.success) throw new Error(`LibraryWriter options: ${zodIssues(parsed.error)}`);
    const opts = parsed.data;
    let configText: string | undefined;
    try {
      configText = JSON.stringify(opts.config, null, 2);
    } catch (e) {
      throw new Error(`LibraryWriter options: config is not JSON-serialisable: ${(e as Error).message}`);
    }
    if (configText === undefined) throw new Error('LibraryWriter options: config is missing (undefined)');
    const out = path.resolve(opts.out);
    const partsDir = out + '.parts';
    const identity: RunIdentity = { configHash: hashConfig(opts.config), seed: opts.seed, n: opts.n, chunkSize: opts.chunkSize };
    const datasets: DatasetColumns[] = [];
    for (const name of LIBRARY_DATASETS) {
      const c = opts.columns[name];
      if (c) datasets.push({ name, columns: [...c] });
    }
    const warn = opts.onWarning ?? ((m: string) => console.warn(m));
    const base = { datasets, configHash: identity.configHash };
    const fresh = (): Manifest => ({
      format: 'synference-library-parts',
      version: 1,
      output: path.basename(out),
      identity,
      configText,
      datasets,
      created: opts.created ?? new Date().toISOString(),
      chunks: {},
    });

    rmSync(partsDir + '.removing', { recursive: true, force: true }); // a finished run killed while cleaning up
    if (!existsSync(partsDir)) {
      if (existsSync(out) && !opts.overwrite) {
        const ex = await readExistingOutput(out);
        if (typeof ex === 'string') {
          throw new LibraryResumeError(`${out} exists and is not a finished library of this run: ${ex}; pass overwrite (--overwrite) to replace it, or choose another output`);
        }
        const diff = identityDiff(ex.identity, identity, ex.columns, datasets);
        if (diff.length) {
          throw new LibraryResumeError(`${out} exists as a finished library with a different ${diff.join(', ')}; pass overwrite (--overwrite) to replace it, or choose another output`);
        }
        return new LibraryWriter(opts, { ...base, manifest: null, complete: true, resumed: false });
      }
      mkdirSync(partsDir, { recursive: true });
      acquireLock(partsDir, out);
      const m = fresh();
      writeManifest(partsDir, m);
      return new LibraryWriter(opts, { ...base, manifest: m, complete: false, resumed: false });
    }

    if (!statSync(partsDir).isDirectory()) throw new LibraryResumeError(`${partsDir} exists and is not a folder`);
    acquireLock(partsDir, out);
    try {
      // Leftovers of a killed run: temp files and a half-assembled output.
      for (const f of readdirSync(partsDir)) if (f.endsWith(TMP_SUFFIX)) rmSync(path.join(partsDir, f), { force: true });
      rmSync(out + '.assembling', { force: true });

      const manifestFile = path.join(partsDir, MANIFEST_NAME);
      if (opts.overwrite) {
        for (const f of readdirSync(partsDir)) if (f !== LOCK_NAME) rmSync(path.join(partsDir, f), { recursive: true, force: true });
        const m = fresh();
        writeManifest(partsDir, m);
        return new LibraryWriter(opts, { ...base, manifest: m, complete: false, resumed: false });
      }
      if (!existsSync(manifestFile)) {
        // Killed between creating the folder and writing the manifest: no part can exist yet.
        const stray = readdirSync(partsDir).filter((f) => PART_RE.test(f));
        if (stray.length) throw new LibraryResumeError(`${partsDir} has parts but no ${MANIFEST_NAME}; pass overwrite (--overwrite) to start again`);
        const m = fresh();
        writeManifest(partsDir, m);
        return new LibraryWriter(opts, { ...base, manifest: m, complete: false, resumed: false });
      }
      let m: Manifest;
      try {
        const p = ManifestSchema.safeParse(JSON.parse(readFileSync(manifestFile, 'utf8')));
        if (!p.success) throw new Error(zodIssues(p.error));
        m = p.data;
      } catch (e) {
        throw new LibraryResumeError(`${manifestFile} is damaged (${(e as Error).message}); pass overwrite (--overwrite) to start again`);
      }
      const diff = identityDiff(m.identity, identity, m.datasets, datasets);
      if (diff.length) {
        throw new LibraryResumeError(
          `${partsDir} holds an unfinished run of ${path.basename(out)} with a different ${diff.join(', ')}: ` +
            `restart with the same config, seed, n and chunk size to resume it, or pass overwrite (--overwrite) to discard it`,
        );
      }
      // Verify every finished part; adopt parts renamed into place just before a kill.
      let changed = false;
      const rowsOf = (i: number) => Math.min(identity.chunkSize, identity.n - i * identity.chunkSize);
      const nChunks = Math.ceil(identity.n / identity.chunkSize);
      const onDisk = new Map<number, string>();
      for (const f of readdirSync(partsDir)) {
        const mm = PART_RE.exec(f);
        if (mm) onDisk.set(Number(mm[1]), f);
      }
      for (const key of Object.keys(m.chunks)) {
        const i = Number(key);
        if (!onDisk.has(i)) {
          warn(`${partsDir}: chunk ${i} is listed but its part file is missing; it will be recomputed`);
          delete m.chunks[key];
          changed = true;
        }
      }
      for (const [i, f] of onDisk) {
        const file = path.join(partsDir, f);
        let problem: string | undefined;
        let rec: ChunkRecord | undefined;
        try {
          const { header, bytes } = decodePart(file);
          if (header.chunk !== i) problem = `header says chunk ${header.chunk}`;
          else if (i >= nChunks || header.rows !== rowsOf(i) || header.start !== i * identity.chunkSize) problem = `rows ${header.start}+${header.rows} do not fit chunk ${i}`;
          else if (identityDiff(header.identity, identity, [], []).length) problem = 'written by another run';
          else if (header.datasets.map(([n, c]) => `${n}:${c}`).join() !== datasets.map((d) => `${d.name}:${d.columns.length}`).join()) problem = 'other datasets';
          else rec = { rows: header.rows, bytes, sha256: header.payloadSha256 };
        } catch (e) {
          problem = (e as Error).message;
        }
        const listed = m.chunks[String(i)];
        if (rec && listed && (listed.sha256 !== rec.sha256 || listed.bytes !== rec.bytes)) problem = 'checksum differs from the manifest';
        if (problem || !rec) {
          warn(`${file}: damaged or foreign part (${problem}); chunk ${i} will be recomputed`);
          rmSync(file, { force: true });
          if (listed) delete m.chunks[String(i)];
          changed = true;
        } else if (!listed) {
          m.chunks[String(i)] = rec;
          changed = true;
        }
      }
      if (changed) writeManifest(partsDir, m);
      return new LibraryWriter(opts, { ...base, manifest: m, complete: false, resumed: Object.keys(m.chunks).length > 0 });
    } catch (e) {
      releaseLock(partsDir);
      throw e;
    }
  }

  /** Rows of chunk `index`. */
  chunk(index: number): ChunkSpec {
    if (!Number.isInteger(index) || index < 0 || index >= this.nChunks) throw new RangeError(`chunk index ${index} out of range 0..${this.nChunks - 1}`);
    const start = index * this.chunkSize;
    return { index, start, rows: Math.min(this.chunkSize, this.n - start) };
  }

  /** Chunk indices still to compute, ascending. */
  pendingChunks(): number[] {
    if (this.completeOutput || !this.manifest) return [];
    const done = this.manifest.chunks;
    const out: number[] = [];
    for (let i = 0; i < this.nChunks; i++) if (!(String(i) in done)) out.push(i);
    return out;
  }

  completedChunks(): number[] {
    if (this.completeOutput || !this.manifest) return Array.from({ length: this.nChunks }, (_, i) => i);
    return Object.keys(this.manifest.chunks)
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** Rows already finished (for a progress bar). */
  get completedRows(): number {
    return this.completedChunks().reduce((s, i) => s + this.chunk(i).rows, 0);
  }

  /** True once the output file is complete (nothing left to do). */
  get complete(): boolean {
    return this.completeOutput;
  }

  /** The `created` attribute the output gets (kept from the first start of the run). */
  get created(): string | undefined {
    return this.manifest?.created;
  }

  private live(): Manifest {
    if (this.closed) throw new Error(`${this.out}: writer is closed`);
    if (this.completeOutput || !this.manifest) throw new Error(`${this.out}: the library is already complete`);
    return this.manifest;
  }

  /** Stores chunk `index` durably. `data` must hold exactly the declared datasets, `chunk(index).rows` rows each. */
  async writeChunk(index: number, data: ChunkData): Promise<void> {
    const m = this.live();
    const spec = this.chunk(index);
    if (String(index) in m.chunks) throw new Error(`${this.out}: chunk ${index} is already written (ask pendingChunks())`);
    const declared = new Set(this.datasets.map((d) => d.name));
    for (const k of Object.keys(data)) {
      if (!declared.has(k as LibraryDatasetName) && (data as unknown as Record<string, unknown>)[k] !== undefined) {
        throw new Error(`${this.out}: chunk ${index}: dataset "${k}" was not declared in columns (declared: ${[...declared].join(', ')})`);
      }
    }
    const parts = this.datasets.map((d) => {
      const input = data[d.name];
      if (input === undefined) throw new Error(`${this.out}: chunk ${index}: dataset "${d.name}" is missing`);
      return { name: d.name, cols: d.columns.length, data: toFloat32(`${this.out}: chunk ${index}, dataset ${d.name}`, spec.rows, d.columns.length, input) };
    });
    const enc = encodePart(m.identity, { chunk: index, start: spec.start, rows: spec.rows, datasets: parts });
    writeFileAtomic(path.join(this.partsDir, partName(index)), enc.chunks);
    m.chunks[String(index)] = { rows: spec.rows, bytes: enc.bytes, sha256: enc.sha256 };
    writeManifest(this.partsDir, m);
  }

  /**
   * Computes every pending chunk with `compute`, writes it, then assembles the output.
   * On an error the lock is released (the finished chunks stay) and the error is rethrown.
   */
  async run(compute: (chunk: ChunkSpec) => ChunkData | Promise<ChunkData>, onChunk?: (chunk: ChunkSpec, writer: LibraryWriter) => void): Promise<LibraryWriteResult> {
    try {
      for (const i of this.pendingChunks()) {
        const spec = this.chunk(i);
        await this.writeChunk(i, await compute(spec));
        onChunk?.(spec, this);
      }
      return await this.finalize();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Assembles the output from the parts (all chunks must be written); a no-op when already complete. */
  async finalize(): Promise<LibraryWriteResult> {
    const result = { out: this.out, n: this.n, nChunks: this.nChunks };
    if (this.completeOutput) return result;
    const m = this.live();
    const pending = this.pendingChunks();
    if (pending.length) {
      const list = pending.length > 10 ? `${pending.slice(0, 10).join(', ')}, ...` : pending.join(', ');
      throw new Error(`${this.out}: cannot finalize, ${pending.length} of ${this.nChunks} chunks not written (${list})`);
    }
    const tmp = this.out + '.assembling';
    rmSync(tmp, { force: true });
    await assemble(tmp, m, this.partsDir, this.opts.compression);
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.out);
    fsyncDir(path.dirname(this.out));
    if (this.opts.keepParts) releaseLock(this.partsDir);
    else {
      // Rename first, so a kill during the removal leaves no half-deleted parts folder behind.
      forgetFolderLock(path.join(this.partsDir, LOCK_NAME));
      const trash = this.partsDir + '.removing';
      rmSync(trash, { recursive: true, force: true });
      renameSync(this.partsDir, trash);
      rmSync(trash, { recursive: true, force: true });
    }
    this.completeOutput = true;
    this.closed = true;
    return result;
  }

  /** Releases the lock without finalizing (finished chunks stay for a later resume). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.completeOutput) releaseLock(this.partsDir);
  }
}

function writeManifest(dir: string, m: Manifest): void {
  writeFileAtomic(path.join(dir, MANIFEST_NAME), [Buffer.from(JSON.stringify(m, null, 1), 'utf8')]);
}

/** HDF5 chunk rows: about 256 KiB of whole rows. */
function hdf5ChunkRows(n: number, cols: number): number {
  return Math.max(1, Math.min(n, Math.floor((256 * 1024) / (4 * cols))));
}

async function assemble(file: string, m: Manifest, partsDir: string, compression: number): Promise<void> {
  const { n, chunkSize, seed, configHash } = m.identity;
  const f = await openH5(file, 'w');
  try {
    f.create_attribute('format_version', LIBRARY_FORMAT_VERSION, [], '<i4');
    f.create_attribute('generator', LIBRARY_GENERATOR);
    f.create_attribute('config', m.configText);
    f.create_attribute('config_hash', configHash);
    // Plain JS numbers above 2^31 would be guessed as int32 by h5wasm: pass int64 explicitly.
    f.create_attribute('seed', BigInt64Array.of(BigInt(seed)), []);
    f.create_attribute('chunk_size', BigInt64Array.of(BigInt(chunkSize)), []);
    f.create_attribute('created', m.created);
    const dsets = m.datasets.map((d) => {
      const cols = d.columns.length;
      const ds = f.create_dataset({
        name: d.name,
        data: new Float32Array(0),
        shape: [0, cols],
        maxshape: [n, cols],
        chunks: [hdf5ChunkRows(n, cols), cols],
        dtype: '<f4',
        ...(compression > 0 ? { compression } : {}),
      });
      ds.resize([n, cols]);
      ds.create_attribute('columns', d.columns);
      ds.create_attribute('columns_json', JSON.stringify(d.columns));
      const units = DATASET_UNITS[d.name];
      if (units) ds.create_attribute('units', units);
      return { name: d.name, ds };
    });
    const nChunks = Math.ceil(n / chunkSize);
    for (let i = 0; i < nChunks; i++) {
      const partFile = path.join(partsDir, partName(i));
      const { header, datasets } = decodePart(partFile);
      const rec = m.chunks[String(i)];
      if (!rec || rec.sha256 !== header.payloadSha256) {
        throw new Error(`${partFile}: checksum differs from ${MANIFEST_NAME}; rerun the same command to recompute this chunk`);
      }
      const start = i * chunkSize;
      for (const { name, ds } of dsets) {
        const a = datasets.get(name);
        if (!a) throw new Error(`${partFile}: no dataset ${name}`);
        ds.write_slice([[start, start + header.rows], []], a);
      }
    }
  } finally {
    f.close();
  }
}
