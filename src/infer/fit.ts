/**
 * Catalogue fitting (issue 6): a catalogue (FITS binary table or CSV) + a column map + a trained
 * model folder -> per-galaxy posterior summaries (CSV and FITS), all posterior samples (HDF5) and
 * per-row flags. Chunked, resumable, bounded memory.
 *
 *   const r = await fitCatalog({ model: 'm/', catalog: 'cat.fits', map: 'columns.yaml', out: 'post/' });
 *
 * Features. The model's context features must be built exactly as the simulation built them
 * (src/simulate/features.ts): asinh magnitudes with the per-band softening (or scaled fluxes),
 * errors, masks, redshift. The model folder's config.json names the features but does not store
 * how they were made (softening, fluxScale, fillValue, the noise model behind softening 'noise'),
 * so the definition comes from the simulation config, looked up in this order: the
 * `simulationConfig` option; the `config` attribute of the `library` option (an HDF5 library);
 * config.json `training.simulation` / `training.simulationConfig` (if a trainer stored it); the
 * `config` attribute of the library config.json records as `training.library`, when that file is
 * there. The definition's feature names must equal the model's context names, in order.
 *
 * Per row (catalogue order), in the model's band order:
 *   flux and error -> nJy (columnMap.ts); a band is usable when both are finite and error > 0
 *   (and, with negativeFlux: mask, flux >= 0); otherwise it is masked (mask features) or the row is
 *   not fitted (a model without masks). The features are computeFeatures' (the simulation's own
 *   function). Rows that can be fitted get M posterior samples inside the prior bounds
 *   (src/infer/sample.ts: rejection with a cap); draw streams depend on (seed, catalogue row) only,
 *   so results do not depend on the chunk size or on interruptions.
 *
 * Flags (bit mask `flags`, names in `flag_names`, masked bands in `masked_bands`): see FIT_FLAGS.
 * A row that is not fitted has NaN summaries and NaN samples, never a made-up number.
 *
 * Out of distribution: a feature standardised with the training set's mean and std (stored with
 * the model) beyond +-oodSigma (default 10; masked bands' values and mask features are not
 * tested), a masked band that was never masked in training, a redshift outside its training prior,
 * and a low acceptance of the prior-bounded rejection sampler (the flow puts much of its mass
 * outside the prior: default below 0.1) are flagged; such rows keep their posterior.
 *
 * Output folder `out/`:
 *   summary.csv, summary.fits   one row per catalogue row: id, row, <p>_median, <p>_p16, <p>_p84
 *                               for every parameter, flags, flag_names, masked_bands, n_bands,
 *                               acceptance, log_prob_median, max_abs_z
 *   samples.h5                  samples (N x M x P float32), log_prob (N x M), ids, row, flags,
 *                               parameter_names (also attribute `parameters` of samples)
 *   fit.json                    what was run (identity, options, sources, flags legend, counts)
 *   parts/                      while running: one file per finished chunk (written to a temporary
 *                               name, fsync'ed, renamed), removed after the outputs are assembled
 * Resumption: a run stopped at any point (error, kill) keeps its finished chunks; the same call
 * (same model, catalogue bytes, map, samples, seed, chunk size, engine and thresholds) skips them.
 * Another identity is refused unless `overwrite`.
 *
 * The per-row computation (features, flags, sampling, summaries) is fitCore.ts, which the browser
 * page (web/) runs too; this module adds the files, chunks on disk and resumption around it.
 */
import { acquireFolderLock, releaseFolderLock } from '../io/folderLock.js';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { type LoadedModel, MODEL_CONFIG_FILE, loadModelDir } from '../flow/modelFiles.js';
import { FitsTableWriter } from '../io/fits.js';
import { canonicalJson, openH5 } from '../io/library/format.js';
import { fsyncDir, writeFileAtomic } from '../io/library/parts.js';
import { openLibrary } from '../io/library/reader.js';
import { resolveNoise } from '../simulate/noise.js';
import { type EngineKind, type EngineOptions, type FlowEngine, createFlowEngine } from '../train/engine.js';
import { type Catalog, openCatalog } from './catalog.js';
import { type ColumnMap, type ColumnMapInput, loadColumnMap, parseColumnMap, resolveColumnMap } from './columnMap.js';
import {
  FIT_FLAGS,
  FIT_FLAG_DESCRIPTIONS,
  type FeatureDefinitionCore,
  FitError,
  type FitFlagName,
  chunkContext,
  featureDefinitionFromConfig,
  fitChunk,
  flagNames,
  storedSimulationConfig,
  csvText,
  summaryCsvHeader,
  summaryCsvLine,
  summaryNumericNames,
} from './fitCore.js';

// The per-galaxy math lives in fitCore.ts (shared with the browser page); re-exported here.
export { FIT_FLAGS, FIT_FLAG_DESCRIPTIONS, FitError, type FitFlagName, flagNames } from './fitCore.js';
export { type ChunkFit, blockPhotometry, observedFeatureStats } from './fitCore.js';

// ---------------------------------------------------------------------------------------------
// The feature definition of a model
// ---------------------------------------------------------------------------------------------

export interface FeatureDefinition extends Omit<FeatureDefinitionCore, 'identity'> {
  /** sha256 of the canonical JSON of the features and noise sections used. */
  hash: string;
}

export interface FeatureSourceOptions {
  /** A simulation config object (its features, noise and parameters sections are used). */
  simulationConfig?: unknown;
  /** An HDF5 library whose `config` attribute is the simulation config. */
  library?: string;
  /** Folder against which an empirical noise model's relative `file` is resolved (default: the library's folder, else the cwd). */
  baseDir?: string;
}

async function libraryConfig(file: string): Promise<unknown> {
  const r = await openLibrary(file, []);
  try {
    if (r.attrs.config === undefined) {
      throw new FitError(`${file}: the library has no simulation config (root attribute "config" as JSON), so the feature definition cannot be read from it`);
    }
    return r.attrs.config;
  } finally {
    r.close();
  }
}

/**
 * The model's feature definition (see the module comment for where it is looked up). Checks that it
 * reproduces the model's context feature names.
 */
export async function modelFeatureDefinition(model: LoadedModel, opts: FeatureSourceOptions = {}): Promise<FeatureDefinition> {
  const training = (model.config.training ?? {}) as Record<string, unknown>;
  let cfg: unknown;
  let source: string;
  let baseDir = opts.baseDir;
  const stored = storedSimulationConfig(model);
  if (opts.simulationConfig !== undefined) {
    cfg = opts.simulationConfig;
    source = 'the given simulation config';
  } else if (opts.library) {
    cfg = await libraryConfig(opts.library);
    source = `the config attribute of ${opts.library}`;
    baseDir ??= path.dirname(path.resolve(opts.library));
  } else if (stored) {
    cfg = stored.config;
    source = stored.source;
  } else if (typeof training.library === 'string' && existsSync(training.library)) {
    cfg = await libraryConfig(training.library);
    source = `the config attribute of ${training.library} (the model's training library)`;
    baseDir ??= path.dirname(training.library);
  } else {
    const lib = typeof training.library === 'string' ? ` (config.json names the training library ${training.library}, which is not there)` : '';
    throw new FitError(
      `the model folder does not store how its features were made (asinh softening per band, flux scale, fill value, noise model)${lib}: ` +
        'give the training library (--library lib.h5, whose config attribute holds the simulation config) or the simulation config (--sim-config config.yaml)',
    );
  }
  const def = await featureDefinitionFromConfig(model, cfg, source, (noise, bands) => resolveNoise(noise, bands, { baseDir: baseDir ?? process.cwd() }));
  const { identity, ...rest } = def;
  const hash = createHash('sha256').update(canonicalJson(identity)).digest('hex');
  return { ...rest, hash };
}

// ---------------------------------------------------------------------------------------------
// Options and results
// ---------------------------------------------------------------------------------------------

export interface FitProgress {
  /** Chunk just finished (-1 for the report at the start). */
  chunk: number;
  nChunks: number;
  /** Rows done, skipped (finished by an earlier run) ones included. */
  rowsDone: number;
  rowsTotal: number;
  /** Rows computed by this call so far. */
  rowsComputed: number;
  /** Rows finished by an earlier run (resumed). */
  rowsResumed: number;
  /** Seconds spent computing in this call. */
  seconds: number;
  /** False for a report from inside a chunk (rows sampled so far; nothing of that chunk is stored yet). */
  chunkDone: boolean;
}

export interface FitCatalogOptions extends FeatureSourceOptions {
  /** Model folder (config.json + weights.safetensors). */
  model: string;
  /** Catalogue: .fits/.fit/.fts (first BINTABLE, or `hdu`) or .csv. */
  catalog: string;
  format?: 'fits' | 'csv';
  /** FITS HDU: number (1 = first extension) or EXTNAME. */
  hdu?: number | string;
  /** Column map: a YAML/JSON file or the map itself. */
  map: string | ColumnMapInput;
  /** Output folder. */
  out: string;
  /** Posterior samples per galaxy (default 1000). */
  samples?: number;
  /** Engine kind (default cpu), or an engine already created for this model (not disposed). */
  engine?: EngineKind | FlowEngine;
  engineOptions?: EngineOptions;
  seed?: number;
  /** Rows per chunk: the unit of progress, resumption and memory (default 1024). */
  chunk?: number;
  /** Rejection cap: at most samples x maxDrawsPerSample draws per galaxy (default 100). */
  maxDrawsPerSample?: number;
  /** OUT_OF_DISTRIBUTION when a standardised feature is beyond this (default 10). */
  oodSigma?: number;
  /** LOW_ACCEPTANCE below this acceptance rate (default 0.1). */
  minAcceptance?: number;
  /** Write samples.h5 (default true). */
  saveSamples?: boolean;
  /** Discard an unfinished or finished run of another identity in `out`. */
  overwrite?: boolean;
  /** Keep out/parts after assembling. */
  keepParts?: boolean;
  onProgress?: (p: FitProgress) => void | Promise<void>;
  onWarning?: (message: string) => void;
  /** Stop (with an error, keeping the finished chunks) when aborted; checked between chunks. */
  signal?: AbortSignal;
}

export interface FitResult {
  out: string;
  files: { summaryCsv: string; summaryFits: string; samples?: string; record: string };
  nRows: number;
  nChunks: number;
  /** Rows with a posterior. */
  fitted: number;
  /** Rows per flag name (non-zero ones). */
  flagCounts: Partial<Record<FitFlagName, number>>;
  rowsComputed: number;
  rowsResumed: number;
  /** Seconds spent computing chunks in this call; galaxies/s over them. */
  seconds: number;
  galaxiesPerSecond: number;
  parameters: string[];
  featureSource: string;
  /** True when `out` was already complete for this identity (nothing done). */
  alreadyComplete: boolean;
}

export const FIT_FORMAT = 'synference-fit';
export const SUMMARY_CSV = 'summary.csv';
export const SUMMARY_FITS = 'summary.fits';
export const SAMPLES_H5 = 'samples.h5';
export const RUN_RECORD = 'fit.json';
export const PARTS_DIR = 'parts';
const PART_MAGIC = 'SYNFITP1';
const LOCK = 'lock';

// ---------------------------------------------------------------------------------------------
// Parts
// ---------------------------------------------------------------------------------------------

interface PartHeader {
  chunk: number;
  start: number;
  rows: number;
  identity: string;
  S: number;
  M: number;
  P: number;
  samples: boolean;
  ids: string[];
  masked: string[];
  payloadSha256: string;
}

interface PartData {
  header: PartHeader;
  summary: Float64Array;
  flags: Uint32Array;
  samples?: Float32Array;
  logProb?: Float32Array;
}

const partName = (i: number) => `chunk-${String(i).padStart(6, '0')}.part`;
const PART_RE = /^chunk-(\d{6,})\.part$/;

const bytesOf = (a: Float64Array | Float32Array | Uint32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function writePart(dir: string, d: Omit<PartData, 'header'> & { header: Omit<PartHeader, 'payloadSha256'> }): void {
  const blobs = [bytesOf(d.summary), bytesOf(d.flags), ...(d.samples ? [bytesOf(d.samples), bytesOf(d.logProb!)] : [])];
  const h = createHash('sha256');
  for (const b of blobs) h.update(b);
  const header: PartHeader = { ...d.header, payloadSha256: h.digest('hex') };
  const hb = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(12);
  pre.write(PART_MAGIC, 0, 'latin1');
  pre.writeUInt32LE(hb.byteLength, 8);
  writeFileAtomic(path.join(dir, partName(d.header.chunk)), [pre, hb, ...blobs]);
}

function payloadBytes(h: Pick<PartHeader, 'rows' | 'S' | 'M' | 'P' | 'samples'>): number {
  return h.rows * h.S * 8 + h.rows * 4 + (h.samples ? h.rows * h.M * h.P * 4 + h.rows * h.M * 4 : 0);
}

/** Reads a part's header only (and checks the file's size against it). */
function readPartHeader(file: string): PartHeader {
  const fd = openSync(file, 'r');
  try {
    const pre = Buffer.alloc(12);
    if (readSync(fd, pre, 0, 12, 0) < 12 || pre.toString('latin1', 0, 8) !== PART_MAGIC) throw new Error('not a fit part file (bad magic)');
    const hlen = pre.readUInt32LE(8);
    const hb = Buffer.alloc(hlen);
    if (readSync(fd, hb, 0, hlen, 12) < hlen) throw new Error('truncated header');
    const header = JSON.parse(hb.toString('utf8')) as PartHeader;
    const size = statSync(file).size;
    if (size !== 12 + hlen + payloadBytes(header)) throw new Error(`size ${size} bytes, expected ${12 + hlen + payloadBytes(header)} (truncated?)`);
    return header;
  } finally {
    closeSync(fd);
  }
}

function readPart(file: string): PartData {
  const buf = readFileSync(file);
  if (buf.byteLength < 12 || buf.toString('latin1', 0, 8) !== PART_MAGIC) throw new Error(`${file}: not a fit part file (bad magic)`);
  const hlen = buf.readUInt32LE(8);
  const header = JSON.parse(buf.toString('utf8', 12, 12 + hlen)) as PartHeader;
  const payload = buf.subarray(12 + hlen);
  if (payload.byteLength !== payloadBytes(header)) throw new Error(`${file}: payload is ${payload.byteLength} bytes, expected ${payloadBytes(header)}`);
  const sha = createHash('sha256').update(payload).digest('hex');
  if (sha !== header.payloadSha256) throw new Error(`${file}: checksum mismatch (damaged part)`);
  let off = 0;
  const take = <T extends Float64Array | Float32Array | Uint32Array>(C: new (n: number) => T, n: number, bytesPer: number): T => {
    const a = new C(n);
    new Uint8Array(a.buffer).set(payload.subarray(off, off + n * bytesPer));
    off += n * bytesPer;
    return a;
  };
  const { rows, S, M, P } = header;
  const summary = take(Float64Array, rows * S, 8);
  const flags = take(Uint32Array, rows, 4);
  const samples = header.samples ? take(Float32Array, rows * M * P, 4) : undefined;
  const logProb = header.samples ? take(Float32Array, rows * M, 4) : undefined;
  return { header, summary, flags, samples, logProb };
}

// ---------------------------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------------------------

function acquireLock(dir: string): void {
  const file = path.join(dir, LOCK);
  acquireFolderLock(file, (c) => {
    switch (c.kind) {
      case 'this-process':
        return new FitError(`${dir}: a fit of this process is already writing there`);
      case 'other-host':
        return new FitError(`${file}: host ${c.host} (pid ${c.pid}) is fitting into this folder; if that run is dead, delete the lock file`);
      case 'other-process':
        return new FitError(`${file}: another process (pid ${c.pid}) is fitting into this folder`);
      default:
        return new FitError(`cannot take the lock ${file}`);
    }
  });
}

function releaseLock(dir: string): void {
  releaseFolderLock(path.join(dir, LOCK));
}

// ---------------------------------------------------------------------------------------------
// The fit
// ---------------------------------------------------------------------------------------------

interface RunRecord {
  format: typeof FIT_FORMAT;
  version: 1;
  status: 'running' | 'complete';
  identity: string;
  created: string;
  finished?: string;
  [k: string]: unknown;
}

function readRecord(file: string): RunRecord | string {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
    if (r.format !== FIT_FORMAT || typeof r.identity !== 'string' || (r.status !== 'running' && r.status !== 'complete')) return 'not a fit record';
    return r;
  } catch (e) {
    return (e as Error).message;
  }
}

function writeJsonAtomic(file: string, v: unknown): void {
  writeFileAtomic(file, [Buffer.from(JSON.stringify(v, null, 2) + '\n', 'utf8')]);
}

function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Posterior summaries of a catalogue; see the module comment. */
export async function fitCatalog(o: FitCatalogOptions): Promise<FitResult> {
  const warn = o.onWarning ?? ((m: string) => console.warn(m));
  const M = o.samples ?? 1000;
  if (!Number.isInteger(M) || M < 1) throw new FitError(`samples must be a positive integer, got ${M}`);
  const chunkSize = o.chunk ?? 1024;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new FitError(`chunk must be a positive integer, got ${chunkSize}`);
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new FitError(`seed must be a non-negative integer, got ${seed}`);
  const maxDraws = o.maxDrawsPerSample ?? 100;
  if (!Number.isInteger(maxDraws) || maxDraws < 1) throw new FitError(`maxDrawsPerSample must be a positive integer, got ${maxDraws}`);
  const oodSigma = o.oodSigma ?? 10;
  if (!(oodSigma > 0)) throw new FitError(`oodSigma must be > 0, got ${oodSigma}`);
  const minAcceptance = o.minAcceptance ?? 0.1;
  if (!(minAcceptance >= 0 && minAcceptance <= 1)) throw new FitError(`minAcceptance must be in [0, 1], got ${minAcceptance}`);
  const saveSamples = o.saveSamples ?? true;

  // Model, features, map, catalogue.
  const loaded = await loadModelDir(o.model);
  const params = loaded.config.parameters.map((p) => p.name);
  const P = params.length;
  const def = await modelFeatureDefinition(loaded, o);
  const feats = def.features;
  const map: ColumnMap = typeof o.map === 'string' ? await loadColumnMap(o.map) : parseColumnMap(o.map);
  const mapSource = typeof o.map === 'string' ? o.map : 'column map';
  const cat: Catalog = await openCatalog(o.catalog, { format: o.format, hdu: o.hdu });
  let engine: FlowEngine | undefined;
  let ownEngine = false;
  const out = path.resolve(o.out);
  const partsDir = path.join(out, PARTS_DIR);
  let locked = false;
  try {
    if (cat.nRows === 0) throw new FitError(`${o.catalog}: the catalogue has no rows`);
    const rmap = resolveColumnMap(map, { bands: feats.bands, hasMask: feats.includeMask, needsRedshift: feats.includeRedshift }, { source: o.catalog, columns: cat.columns, hasColumn: (r) => cat.hasColumn(r), unitOf: (r) => cat.unitOf(r) }, { source: mapSource, onWarning: warn });
    if (rmap.unmapped.length) warn(`${mapSource}: band${rmap.unmapped.length > 1 ? 's' : ''} ${rmap.unmapped.join(', ')} not in the map: masked in every row`);
    const nRows = cat.nRows;
    const nChunks = Math.ceil(nRows / chunkSize);
    const engineKind: EngineKind = typeof o.engine === 'object' ? o.engine.kind : (o.engine ?? 'cpu');

    // Identity of the run.
    const weightsFile = path.join(o.model, loaded.config.weights.file);
    const identityDetail = {
      model: { config: sha256File(path.join(o.model, MODEL_CONFIG_FILE)), weights: sha256File(weightsFile) },
      catalog: { sha256: await cat.sha256(), format: cat.format, hdu: cat.hdu ?? null, rows: nRows },
      map: { bands: rmap.bands, id: rmap.id ?? null, redshift: rmap.redshift ?? null, negativeFlux: rmap.negativeFlux },
      features: def.hash,
      samples: M,
      seed,
      chunk: chunkSize,
      engine: engineKind,
      maxDrawsPerSample: maxDraws,
      oodSigma,
      minAcceptance,
      saveSamples,
    };
    const identity = createHash('sha256').update(canonicalJson(identityDetail)).digest('hex');

    // Output folder state.
    if (existsSync(out) && !statSync(out).isDirectory()) throw new FitError(`--out ${o.out} exists and is not a folder`);
    mkdirSync(out, { recursive: true });
    const recordFile = path.join(out, RUN_RECORD);
    const files = {
      summaryCsv: path.join(out, SUMMARY_CSV),
      summaryFits: path.join(out, SUMMARY_FITS),
      ...(saveSamples ? { samples: path.join(out, SAMPLES_H5) } : {}),
      record: recordFile,
    };
    let created = new Date().toISOString();
    rmSync(partsDir + '.removing', { recursive: true, force: true }); // a finished run killed while cleaning up
    mkdirSync(partsDir, { recursive: true });
    acquireLock(partsDir);
    locked = true;
    const clearParts = () => {
      for (const f of readdirSync(partsDir)) if (f !== LOCK) rmSync(path.join(partsDir, f), { recursive: true, force: true });
    };
    if (existsSync(recordFile)) {
      const rec = readRecord(recordFile);
      const same = typeof rec !== 'string' && rec.identity === identity;
      if (!same && !o.overwrite) {
        const what = typeof rec === 'string' ? `an unreadable ${RUN_RECORD} (${rec})` : rec.status === 'complete' ? 'the finished fit' : 'an unfinished fit';
        throw new FitError(
          `${o.out} holds ${what} of another model, catalogue, map or options; rerun with the same ones to ${typeof rec !== 'string' && rec.status === 'running' ? 'resume it' : 'keep it'}, pass overwrite (--overwrite) to replace it, or choose another --out`,
        );
      }
      if (same && rec.status === 'complete' && existsSync(files.summaryCsv) && existsSync(files.summaryFits) && (!saveSamples || existsSync(files.samples!))) {
        const r = rec as RunRecord & { counts?: { fitted: number; flags: Partial<Record<FitFlagName, number>> } };
        releaseLock(partsDir);
        locked = false;
        if (!readdirSync(partsDir).length) rmSync(partsDir, { recursive: true, force: true });
        return {
          out,
          files,
          nRows,
          nChunks,
          fitted: r.counts?.fitted ?? 0,
          flagCounts: r.counts?.flags ?? {},
          rowsComputed: 0,
          rowsResumed: nRows,
          seconds: 0,
          galaxiesPerSecond: 0,
          parameters: params,
          featureSource: def.source,
          alreadyComplete: true,
        };
      }
      if (same) created = rec.created;
      else {
        clearParts();
        for (const f of [SUMMARY_CSV, SUMMARY_FITS, SAMPLES_H5]) rmSync(path.join(out, f), { force: true });
      }
    } else if (readdirSync(partsDir).some((f) => PART_RE.test(f))) {
      if (!o.overwrite) throw new FitError(`${partsDir} holds parts but there is no ${RUN_RECORD}; pass overwrite (--overwrite) to start again`);
      clearParts();
    }
    const record: RunRecord = {
      format: FIT_FORMAT,
      version: 1,
      status: 'running',
      identity,
      created,
      model: path.resolve(o.model),
      catalog: { file: path.resolve(o.catalog), format: cat.format, hdu: cat.hdu ?? null, rows: nRows },
      map: { source: typeof o.map === 'string' ? path.resolve(o.map) : null, ...identityDetail.map, unmapped: rmap.unmapped },
      features: { source: def.source, names: feats.names, photometry: feats.photometry, softeningNJy: Array.from(feats.softeningNJy), includeMask: feats.includeMask, includeRedshift: feats.includeRedshift },
      options: { samples: M, seed, chunk: chunkSize, engine: engineKind, maxDrawsPerSample: maxDraws, oodSigma, minAcceptance, saveSamples },
      identityDetail,
      parameters: loaded.config.parameters,
      nChunks,
      flags: Object.fromEntries((Object.keys(FIT_FLAGS) as FitFlagName[]).map((k) => [k, { bit: FIT_FLAGS[k], description: FIT_FLAG_DESCRIPTIONS[k] }])),
    };
    writeJsonAtomic(recordFile, record);

    // Finished chunks (a part is complete once renamed into place; the checksum is verified at assembly).
    const S = summaryNumericNames(params).length;
    const done = new Set<number>();
    for (const f of readdirSync(partsDir)) {
      if (f.endsWith('.tmp')) {
        rmSync(path.join(partsDir, f), { force: true });
        continue;
      }
      const m = PART_RE.exec(f);
      if (!m) continue;
      const i = Number(m[1]);
      const file = path.join(partsDir, f);
      let problem: string | undefined;
      try {
        const h = readPartHeader(file);
        const rows = Math.min(chunkSize, nRows - i * chunkSize);
        if (h.identity !== identity) problem = 'written by another run';
        else if (h.chunk !== i || i >= nChunks || h.rows !== rows || h.start !== i * chunkSize || h.S !== S || h.M !== M || h.P !== P || h.samples !== saveSamples) problem = 'does not fit this run';
      } catch (e) {
        problem = (e as Error).message;
      }
      if (problem) {
        warn(`${file}: ${problem}; chunk ${i} will be recomputed`);
        rmSync(file, { force: true });
      } else done.add(i);
    }

    const rowsOfChunk = (i: number) => Math.min(chunkSize, nRows - i * chunkSize);
    const rowsResumed = [...done].reduce((s, i) => s + rowsOfChunk(i), 0);
    let rowsComputed = 0;
    let seconds = 0;
    const report = async (chunk: number, partialRows = 0, partialSeconds = 0) =>
      o.onProgress?.({
        chunk,
        nChunks,
        rowsDone: rowsResumed + rowsComputed + partialRows,
        rowsTotal: nRows,
        rowsComputed: rowsComputed + partialRows,
        rowsResumed,
        seconds: seconds + partialSeconds,
        chunkDone: partialRows === 0,
      });
    await report(-1);

    if (done.size < nChunks) {
      if (typeof o.engine === 'object') {
        engine = o.engine;
        const { thetaDim, contextDim } = engine.model.config;
        if (thetaDim !== P || contextDim !== feats.width) throw new FitError(`the given engine's flow has ${thetaDim} parameters and ${contextDim} features, the model ${P} and ${feats.width}`);
      } else {
        engine = await createFlowEngine(engineKind, loaded.flow, o.engineOptions ?? {});
        ownEngine = true;
      }
      const ctx = chunkContext(engine, loaded, feats, rmap, def.redshiftRange, { M, seed, maxDraws, oodSigma, minAcceptance, saveSamples }, def.selection);
      for await (const c of cat.chunks(chunkSize, { skip: (i) => done.has(i), numeric: rmap.numericColumns, text: rmap.textColumns })) {
        if (!c.block) continue;
        if (o.signal?.aborted) throw new FitError(`fit interrupted after ${rowsResumed + rowsComputed} of ${nRows} rows; the finished chunks are kept in ${partsDir}: rerun the same command to resume`);
        const t0 = performance.now();
        ctx.onRows = c.rows > 32 ? (n) => (n < c.rows ? report(c.index, n, (performance.now() - t0) / 1000) : undefined) : undefined;
        const r = await fitChunk(ctx, c.block.start, c.block.rows, c.block);
        writePart(partsDir, {
          header: { chunk: c.index, start: c.start, rows: c.rows, identity, S, M, P, samples: saveSamples, ids: r.ids, masked: r.masked },
          summary: r.summary,
          flags: r.flags,
          samples: r.samples,
          logProb: r.logProb,
        });
        done.add(c.index);
        seconds += (performance.now() - t0) / 1000;
        rowsComputed += c.rows;
        await report(c.index);
      }
      if (ownEngine) {
        await engine.dispose();
        engine = undefined;
      }
    }
    if (done.size < nChunks) throw new FitError(`internal: ${nChunks - done.size} chunks not computed`);

    // Assemble the outputs from the parts.
    const counts = await assemble({ out, partsDir, files, nRows, nChunks, params, M, P, saveSamples, record });
    const finished: RunRecord = { ...record, status: 'complete', finished: new Date().toISOString(), counts, outputs: { summaryCsv: SUMMARY_CSV, summaryFits: SUMMARY_FITS, samples: saveSamples ? SAMPLES_H5 : null } };
    writeJsonAtomic(recordFile, finished);
    releaseLock(partsDir);
    locked = false;
    if (!o.keepParts) {
      const trash = partsDir + '.removing';
      rmSync(trash, { recursive: true, force: true });
      renameSync(partsDir, trash);
      rmSync(trash, { recursive: true, force: true });
      fsyncDir(out);
    }
    return {
      out,
      files,
      nRows,
      nChunks,
      fitted: counts.fitted,
      flagCounts: counts.flags,
      rowsComputed,
      rowsResumed,
      seconds,
      galaxiesPerSecond: seconds > 0 ? rowsComputed / seconds : 0,
      parameters: params,
      featureSource: def.source,
      alreadyComplete: false,
    };
  } finally {
    if (locked) releaseLock(partsDir);
    if (engine && ownEngine) await engine.dispose();
    cat.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Assembly
// ---------------------------------------------------------------------------------------------

async function assemble(a: {
  out: string;
  partsDir: string;
  files: FitResult['files'];
  nRows: number;
  nChunks: number;
  params: string[];
  M: number;
  P: number;
  saveSamples: boolean;
  record: RunRecord;
}): Promise<{ fitted: number; rows: number; flags: Partial<Record<FitFlagName, number>> }> {
  const { params, M, P } = a;
  const numNames = summaryNumericNames(params);
  const S = numNames.length;
  // Pass 1: string widths from the part headers (cheap).
  let idW = 1;
  let maskedW = 1;
  let flagW = 1;
  const partFiles = Array.from({ length: a.nChunks }, (_, i) => path.join(a.partsDir, partName(i)));
  for (const f of partFiles) {
    const h = readPartHeader(f);
    for (const s of h.ids) idW = Math.max(idW, Buffer.byteLength(s, 'latin1'));
    for (const s of h.masked) maskedW = Math.max(maskedW, s.length);
  }
  flagW = Math.max(1, (Object.keys(FIT_FLAGS) as FitFlagName[]).join(',').length);

  const paramCols = params.flatMap((p) => [`${p}_median`, `${p}_p16`, `${p}_p84`]);
  const csvHeader = summaryCsvHeader(params);
  const csvTmp = a.files.summaryCsv + '.tmp';
  const csvFd = openSync(csvTmp, 'w');
  let csvPos = 0;
  const csvWrite = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    let off = 0;
    while (off < b.length) off += writeSync(csvFd, b, off, b.length - off, csvPos + off);
    csvPos += b.length;
  };
  const fits = new FitsTableWriter(
    a.files.summaryFits,
    [
      { name: 'id', type: 'A', repeat: idW },
      { name: 'row', type: 'K' },
      ...paramCols.map((c, k) => ({ name: c, type: 'D' as const, unit: (a.record.parameters as { unit?: string }[])[Math.floor(k / 3)]?.unit || undefined })),
      { name: 'flags', type: 'J' },
      { name: 'flag_names', type: 'A', repeat: flagW },
      { name: 'masked_bands', type: 'A', repeat: maskedW },
      { name: 'n_bands', type: 'I' },
      { name: 'acceptance', type: 'D' },
      { name: 'log_prob_median', type: 'D' },
      { name: 'max_abs_z', type: 'D' },
    ],
    { extname: 'POSTERIOR', keywords: { SAMPLES: M, ORIGIN: 'synference-webgpu' } },
  );
  let h5: Awaited<ReturnType<typeof openH5>> | undefined;
  const h5Tmp = a.files.samples ? a.files.samples + '.tmp' : undefined;
  type H5Ds = ReturnType<Awaited<ReturnType<typeof openH5>>['create_dataset']>;
  let dsSamples: H5Ds | undefined;
  let dsLogProb: H5Ds | undefined;
  const allIds: string[] = [];
  const allRows = new BigInt64Array(a.nRows);
  const allFlags = new Int32Array(a.nRows);
  const counts: Partial<Record<FitFlagName, number>> = {};
  let fitted = 0;
  try {
    csvWrite(csvHeader.map(csvText).join(',') + '\n');
    if (h5Tmp) {
      rmSync(h5Tmp, { force: true });
      h5 = await openH5(h5Tmp, 'w');
      const rowBytes = M * P * 4;
      const chunkRows = Math.max(1, Math.min(a.nRows, Math.floor((1 << 20) / rowBytes)));
      dsSamples = h5.create_dataset({ name: 'samples', data: new Float32Array(0), shape: [0, M, P], maxshape: [a.nRows, M, P], chunks: [chunkRows, M, P], dtype: '<f4' });
      dsSamples.resize([a.nRows, M, P]);
      dsSamples.create_attribute('parameters', params);
      dsSamples.create_attribute('parameters_json', JSON.stringify(params));
      dsLogProb = h5.create_dataset({
        name: 'log_prob',
        data: new Float32Array(0),
        shape: [0, M],
        maxshape: [a.nRows, M],
        chunks: [Math.max(1, Math.min(a.nRows, Math.floor((1 << 20) / (M * 4)))), M],
        dtype: '<f4',
      });
      dsLogProb.resize([a.nRows, M]);
    }
    for (let i = 0; i < a.nChunks; i++) {
      let part: PartData;
      try {
        part = readPart(partFiles[i]);
      } catch (e) {
        rmSync(partFiles[i], { force: true });
        throw new FitError(`${(e as Error).message}; it was removed: rerun the same command to recompute chunk ${i}`);
      }
      const { header, summary, flags } = part;
      const n = header.rows;
      let lines = '';
      const colData: Record<string, Float64Array | string[] | Float64Array> = {};
      for (let c = 0; c < 3 * P; c++) colData[paramCols[c]] = new Float64Array(n);
      const rowCol = new Float64Array(n);
      const flagCol = new Float64Array(n);
      const nb = new Float64Array(n);
      const acc = new Float64Array(n);
      const lpm = new Float64Array(n);
      const mz = new Float64Array(n);
      const fnames: string[] = [];
      for (let r = 0; r < n; r++) {
        const s = summary.subarray(r * S, (r + 1) * S);
        const fl = flags[r];
        const names = flagNames(fl);
        for (const nm of names) counts[nm] = (counts[nm] ?? 0) + 1;
        if (!(fl & FIT_FLAGS.NOT_FITTED)) fitted++;
        for (let c = 0; c < 3 * P; c++) (colData[paramCols[c]] as Float64Array)[r] = s[c];
        lines += summaryCsvLine(P, header.ids[r], s, fl, header.masked[r]);
        rowCol[r] = s[3 * P];
        flagCol[r] = fl;
        nb[r] = s[3 * P + 1];
        acc[r] = s[3 * P + 2];
        lpm[r] = s[3 * P + 3];
        mz[r] = s[3 * P + 4];
        fnames.push(names.join(','));
        allIds.push(header.ids[r]);
        allRows[header.start + r] = BigInt(s[3 * P]);
        allFlags[header.start + r] = fl;
      }
      csvWrite(lines);
      fits.writeRows(
        { id: header.ids, row: rowCol, ...colData, flags: flagCol, flag_names: fnames, masked_bands: header.masked, n_bands: nb, acceptance: acc, log_prob_median: lpm, max_abs_z: mz },
        n,
      );
      if (h5 && part.samples) {
        dsSamples!.write_slice([[header.start, header.start + n], [], []], part.samples);
        dsLogProb!.write_slice([[header.start, header.start + n], []], part.logProb!);
      }
    }
    if (h5) {
      h5.create_dataset({ name: 'ids', data: allIds });
      h5.create_dataset({ name: 'row', data: allRows, shape: [a.nRows] });
      h5.create_dataset({ name: 'flags', data: allFlags, shape: [a.nRows] });
      h5.create_dataset({ name: 'parameter_names', data: params });
      h5.create_attribute('format', FIT_FORMAT);
      h5.create_attribute('generator', 'synference-webgpu');
      h5.create_attribute('samples_per_galaxy', M, [], '<i4');
      h5.create_attribute('model', String(a.record.model));
      h5.create_attribute('catalog', String((a.record.catalog as { file: string }).file));
      h5.create_attribute('identity', a.record.identity);
      h5.create_attribute('created', a.record.created);
      h5.create_attribute('flags_json', JSON.stringify(FIT_FLAGS));
      h5.close();
      h5 = undefined;
      renameSync(h5Tmp!, a.files.samples!);
    }
    fits.close();
    fsyncSync(csvFd);
    closeSync(csvFd);
    renameSync(csvTmp, a.files.summaryCsv);
    fsyncDir(a.out);
  } catch (e) {
    try {
      closeSync(csvFd);
    } catch {
      // already closed
    }
    rmSync(csvTmp, { force: true });
    fits.abort();
    if (h5) h5.close();
    if (h5Tmp) rmSync(h5Tmp, { force: true });
    throw e;
  }
  return { fitted, rows: a.nRows, flags: counts };
}
