/**
 * What the page computes, without the DOM: a model folder and (optionally) a grid build and a data
 * folder in, a catalogue fitted on the user's GPU out, plus one galaxy's posterior draws, corner plot
 * and reconstructed SED. Every step is the Node code's own: model files (src/flow/modelFiles.ts),
 * the feature definition and the per-chunk fit (src/infer/fitCore.ts, which `synference fit` runs),
 * the GPU flow engine, the reconstruction (src/report/reconstruct.ts) and the plots
 * (src/report/plots.ts). Nothing is sent anywhere.
 */
import { type LoadedModel, loadModelFrom } from '../../src/flow/modelFiles.js';
import { type Gpu, createGpu } from '../../src/gpu/device.js';
import { type TextCatalog, parseCsvCatalog } from '../../src/infer/catalogText.js';
import { type ColumnMapInput, type ResolvedColumnMap, guessColumnMap, parseColumnMap, parseColumnMapText, resolveColumnMap } from '../../src/infer/columnMap.js';
import { type FeatureDefinitionCore, FitError, blockPhotometry, chunkContext, featureDefinitionFromConfig, fitChunk, storedSimulationConfig, summaryCsvHeader, summaryCsvLine, summaryNumericNames } from '../../src/infer/fitCore.js';
import type { FileSource } from '../../src/io/fileSource.js';
import { forwardModelFrom } from '../../src/io/forwardModelData.js';
import { corner, sedPlot } from '../../src/report/plots.js';
import { PosteriorReconstructor } from '../../src/report/reconstruct.js';
import { parseSimulationConfig } from '../../src/simulate/config.js';
import type { GpuEngineOptions } from '../../src/flow/gpuEngine.js';
import { type FlowEngine, createFlowEngine } from '../../src/train/engine.js';

export interface FitSettings {
  /** Posterior samples per galaxy (synference fit --samples; default 1000). */
  samples: number;
  seed: number;
  /** Rows per chunk: the unit of progress (the numbers do not depend on it). */
  chunk: number;
  maxDrawsPerSample: number;
  oodSigma: number;
  minAcceptance: number;
}

/** Posterior draws pushed through the forward model for one SED, at most. */
export const SED_MAX_DRAWS = 200;

export const DEFAULT_SETTINGS: FitSettings = { samples: 1000, seed: 0, chunk: 64, maxDrawsPerSample: 100, oodSigma: 10, minAcceptance: 0.1 };

export interface FitProgress {
  rowsDone: number;
  rowsTotal: number;
  seconds: number;
}

/** A fitted catalogue (the contents of summary.csv). */
export interface FitTable {
  parameters: string[];
  units: string[];
  nRows: number;
  ids: string[];
  masked: string[];
  flags: Uint32Array;
  /** nRows x S, summaryNumericNames(parameters) order. */
  summary: Float64Array;
  S: number;
  settings: FitSettings;
  /** Seconds of fitting (features, sampling, summaries; after the engine is ready) and galaxies/s. */
  seconds: number;
  galaxiesPerSecond: number;
}

export interface GalaxyDetail {
  row: number;
  id: string;
  /** M x P posterior draws (NaN rows where sampling was capped). */
  samples: Float32Array;
  /** Observed fluxes and errors [nJy] in the model's band order (NaN = masked). */
  fluxNJy: Float64Array;
  errorNJy: Float64Array;
  redshift?: number;
}

export class Session {
  model?: LoadedModel;
  modelName = '';
  def?: FeatureDefinitionCore;
  /** The simulation config the model was trained on (config.json training.simulation). */
  simulationConfig?: unknown;
  private engine?: FlowEngine;
  private recon?: PosteriorReconstructor;
  gridName = '';
  catalog?: TextCatalog;
  rmap?: ResolvedColumnMap;
  mapInput?: ColumnMapInput;
  table?: FitTable;

  private constructor(readonly gpu: Gpu) {}

  /** Acquires the GPU (throws GpuUnavailableError without WebGPU). */
  static async create(): Promise<Session> {
    return new Session(await createGpu({ powerPreference: 'high-performance' }));
  }

  get adapterName(): string {
    const a = this.gpu.adapter;
    return [a.vendor, a.architecture, a.description || a.device].filter(Boolean).join(' ') + (a.isSoftware ? ' (software)' : '');
  }

  get parameters(): string[] {
    return this.model?.config.parameters.map((p) => p.name) ?? [];
  }

  get bands(): string[] {
    return [...(this.def?.features.bands ?? [])];
  }

  get needsRedshift(): boolean {
    return this.def?.features.includeRedshift ?? false;
  }

  /** Loads a model folder; its config.json must hold the simulation config (as `synference train` writes it). */
  async loadModel(src: FileSource): Promise<void> {
    const model = await loadModelFrom(src);
    const stored = storedSimulationConfig(model);
    if (!stored) {
      throw new FitError(
        `${src.where('config.json')}: the model does not store the simulation config it was trained on (training.simulation), which says how its features were made; ` +
          'models written by `synference train` from a simulated library have it',
      );
    }
    const def = await featureDefinitionFromConfig(model, stored.config, stored.source);
    await this.engine?.dispose();
    this.engine = undefined;
    this.recon?.destroy();
    this.recon = undefined;
    this.gridName = '';
    this.model = model;
    this.modelName = src.name;
    this.def = def;
    this.simulationConfig = typeof stored.config === 'string' ? JSON.parse(stored.config) : stored.config;
    this.catalog = undefined;
    this.rmap = undefined;
    this.table = undefined;
  }

  /** Loads the forward model for SED reconstruction (grid build + data folder), for the model's simulation config. */
  async loadForwardModel(grid: FileSource, data: FileSource): Promise<void> {
    if (!this.simulationConfig) throw new Error('load a model first: the forward model follows its simulation config');
    const config = parseSimulationConfig(this.simulationConfig, 'the model\'s simulation config');
    const fm = await forwardModelFrom(config, { grid, data });
    this.recon?.destroy();
    // One GPU chunk holds the draws of one SED (sedSvg's maxDraws): small scratch buffers.
    this.recon = await PosteriorReconstructor.create({ gpu: this.gpu, config, model: fm.model, chunk: SED_MAX_DRAWS });
    this.gridName = fm.grid.manifest.name;
  }

  get hasForwardModel(): boolean {
    return !!this.recon;
  }

  /** Reads a CSV catalogue and resolves the column map (given, or guessed from the column names). */
  async setCatalog(text: string, file: string, map?: ColumnMapInput | string, warn: (m: string) => void = () => {}): Promise<ColumnMapInput> {
    const def = this.requireModel();
    const cat = parseCsvCatalog(text, file);
    if (cat.nRows === 0) throw new FitError(`${file}: the catalogue has no rows`);
    const feats = def.features;
    const input: ColumnMapInput =
      map === undefined || (typeof map === 'string' && map.trim() === '')
        ? guessColumnMap(feats.bands, cat.columns, { needsRedshift: feats.includeRedshift })
        : typeof map === 'string'
          ? await parseColumnMapText(map, 'column map')
          : map;
    const parsed = parseColumnMap(input, 'column map');
    const rmap = resolveColumnMap(parsed, { bands: feats.bands, hasMask: feats.includeMask, needsRedshift: feats.includeRedshift }, { source: file, columns: cat.columns, hasColumn: (r) => cat.hasColumn(r), unitOf: (r) => cat.unitOf(r) }, { source: 'column map', onWarning: warn });
    if (rmap.unmapped.length) warn(`column map: band${rmap.unmapped.length > 1 ? 's' : ''} ${rmap.unmapped.join(', ')} not in the map: masked in every row`);
    this.catalog = cat;
    this.rmap = rmap;
    this.mapInput = input;
    this.table = undefined;
    return input;
  }

  private requireModel(): FeatureDefinitionCore {
    if (!this.model || !this.def) throw new Error('load a model first');
    return this.def;
  }

  private async getEngine(): Promise<FlowEngine> {
    const opts: GpuEngineOptions = { gpu: this.gpu }; // the page's one device, shared with the reconstruction
    this.engine ??= await createFlowEngine('gpu', this.model!.flow, opts);
    return this.engine;
  }

  /** Fits the catalogue chunk by chunk (fitCore.fitChunk: the numbers of `synference fit` with the same model, seed and samples). */
  async fit(settings: FitSettings, onProgress?: (p: FitProgress) => void): Promise<FitTable> {
    const def = this.requireModel();
    const cat = this.catalog;
    const rmap = this.rmap;
    if (!cat || !rmap) throw new Error('give a catalogue first');
    checkSettings(settings);
    const model = this.model!;
    const engine = await this.getEngine();
    const params = this.parameters;
    const S = summaryNumericNames(params).length;
    const n = cat.nRows;
    const summary = new Float64Array(n * S);
    const flags = new Uint32Array(n);
    const ids: string[] = [];
    const masked: string[] = [];
    const ctx = chunkContext(engine, model, def.features, rmap, def.redshiftRange, {
      M: settings.samples,
      seed: settings.seed,
      maxDraws: settings.maxDrawsPerSample,
      oodSigma: settings.oodSigma,
      minAcceptance: settings.minAcceptance,
      saveSamples: false,
    }, def.selection);
    const t0 = performance.now();
    for (let start = 0; start < n; start += settings.chunk) {
      const rows = Math.min(settings.chunk, n - start);
      const block = cat.block(start, rows, { numeric: rmap.numericColumns, text: rmap.textColumns });
      const r = await fitChunk(ctx, start, rows, block);
      summary.set(r.summary, start * S);
      flags.set(r.flags, start);
      ids.push(...r.ids);
      masked.push(...r.masked);
      onProgress?.({ rowsDone: start + rows, rowsTotal: n, seconds: (performance.now() - t0) / 1000 });
    }
    const seconds = (performance.now() - t0) / 1000;
    this.table = {
      parameters: params,
      units: model.config.parameters.map((p) => p.unit),
      nRows: n,
      ids,
      masked,
      flags,
      summary,
      S,
      settings: { ...settings },
      seconds,
      galaxiesPerSecond: seconds > 0 ? n / seconds : 0,
    };
    return this.table;
  }

  /** summary.csv of the last fit, as `synference fit` writes it. */
  summaryCsv(): string {
    const t = this.table;
    if (!t) return '';
    let out = summaryCsvHeader(t.parameters).join(',') + '\n';
    for (let i = 0; i < t.nRows; i++) out += summaryCsvLine(t.parameters.length, t.ids[i], t.summary.subarray(i * t.S, (i + 1) * t.S), t.flags[i], t.masked[i]);
    return out;
  }

  /**
   * The posterior draws of one catalogue row: the row is fitted again on its own (the draws depend on
   * the seed and the global row only, so they are the draws the table summarises).
   */
  async galaxy(row: number): Promise<GalaxyDetail> {
    const def = this.requireModel();
    const t = this.table;
    const cat = this.catalog;
    const rmap = this.rmap;
    if (!t || !cat || !rmap) throw new Error('fit a catalogue first');
    const s = t.settings;
    const ctx = chunkContext(await this.getEngine(), this.model!, def.features, rmap, def.redshiftRange, {
      M: s.samples,
      seed: s.seed,
      maxDraws: s.maxDrawsPerSample,
      oodSigma: s.oodSigma,
      minAcceptance: s.minAcceptance,
      saveSamples: true,
    }, def.selection);
    const block = cat.block(row, 1, { numeric: rmap.numericColumns, text: rmap.textColumns });
    const r = await fitChunk(ctx, row, 1, block);
    const { flux, error } = blockPhotometry(rmap, block, 1);
    return { row, id: r.ids[0], samples: r.samples!, fluxNJy: flux, errorNJy: error, redshift: rmap.redshift ? block.numeric(rmap.redshift)[0] : undefined };
  }

  /** Corner plot (SVG) of a galaxy's draws: the first `maxParams` parameters. */
  async cornerSvg(g: GalaxyDetail, maxParams = 6): Promise<string> {
    const params = this.parameters;
    const P = params.length;
    const show = Math.min(P, maxParams);
    const M = g.samples.length / P;
    const sub = new Float64Array(M * show);
    for (let j = 0; j < M; j++) for (let k = 0; k < show; k++) sub[j * show + k] = g.samples[j * P + k];
    const units = this.model!.config.parameters.slice(0, show).map((p) => p.unit);
    return corner(sub, params.slice(0, show), undefined, { units, title: `${g.id}: posterior${show < P ? ` (first ${show} of ${P} parameters)` : ''}` });
  }

  /** The reconstructed SED (SVG) of a galaxy's draws against its photometry; needs the forward model. */
  async sedSvg(g: GalaxyDetail, maxDraws = SED_MAX_DRAWS): Promise<{ svg: string; invalid: number; used: number; draws: number }> {
    const recon = this.recon;
    if (!recon) throw new Error('load the grid build and the data folder to reconstruct SEDs');
    const params = this.parameters;
    const P = params.length;
    const M = g.samples.length / P;
    // At most maxDraws evenly strided draws: the synthesis is a GEMM with the whole grid per draw,
    // seconds per hundred draws on a software adapter; a few hundred draws already fix the bands.
    const m = Math.min(M, maxDraws);
    const theta = new Float32Array(m * P);
    for (let k = 0; k < m; k++) theta.set(g.samples.subarray(Math.floor((k * M) / m) * P, (Math.floor((k * M) / m) + 1) * P), k * P);
    const known: Record<string, number> = {};
    for (const c of recon.thetaColumns) {
      if (params.includes(c)) continue;
      if (c === 'redshift' && g.redshift !== undefined && Number.isFinite(g.redshift)) known.redshift = g.redshift;
      else throw new Error(`the simulation config's parameter "${c}" is neither inferred by the model nor known: cannot reconstruct the SED`);
    }
    const r = await recon.reconstruct({ theta, n: m, columns: params, known }, { sed: { maxSpectra: 100 }, sfh: false });
    if (!r.sed) throw new Error('no SED');
    // Observed photometry in the reconstructor's band order (the config's filters).
    const B = recon.bandNames.length;
    const flux = new Float64Array(B).fill(NaN);
    const err = new Float64Array(B).fill(NaN);
    recon.bandNames.forEach((b, k) => {
      const i = this.bands.indexOf(b);
      if (i >= 0) {
        flux[k] = g.fluxNJy[i];
        err[k] = g.errorNJy[i];
      }
    });
    const svg = await sedPlot({
      frame: 'observed',
      wavelengthAA: r.sed.observed.wavelengthAA,
      median: r.sed.observed.median,
      p16: r.sed.observed.p16,
      p84: r.sed.observed.p84,
      observed: { wavelengthAA: recon.pivotAA, flux, error: err, names: recon.bandNames },
      model: { wavelengthAA: recon.pivotAA, median: r.bands.median, p16: r.bands.p16, p84: r.bands.p84 },
      title: `${g.id}: reconstructed SED (observed frame)`,
      subtitle: `bands from ${m} of ${M} draws, spectra from ${r.sed.drawIndices.length}; grid ${this.gridName}`,
    });
    return { svg, invalid: r.invalid.length, used: r.sed.drawIndices.length, draws: m };
  }

  async dispose(): Promise<void> {
    await this.engine?.dispose();
    this.recon?.destroy();
    this.gpu.destroy();
  }
}

function checkSettings(s: FitSettings): void {
  const int = (k: keyof FitSettings, min: number) => {
    if (!Number.isInteger(s[k]) || s[k] < min) throw new RangeError(`${k} must be an integer >= ${min}, got ${s[k]}`);
  };
  int('samples', 1);
  int('seed', 0);
  int('chunk', 1);
  int('maxDrawsPerSample', 1);
  if (!(s.oodSigma > 0)) throw new RangeError(`oodSigma must be > 0, got ${s.oodSigma}`);
  if (!(s.minAcceptance >= 0 && s.minAcceptance <= 1)) throw new RangeError(`minAcceptance must be in [0, 1], got ${s.minAcceptance}`);
}

/** CSV text of one galaxy typed into the form: id, <band>_flux, <band>_err[, redshift] (guessColumnMap reads it). */
export function oneGalaxyCsv(bands: readonly string[], id: string, flux: readonly string[], error: readonly string[], redshift?: string): string {
  const cell = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const head = ['id', ...bands.flatMap((b) => [`${b}_flux`, `${b}_err`]), ...(redshift !== undefined ? ['redshift'] : [])];
  const row = [id || 'galaxy', ...bands.flatMap((_, k) => [flux[k] ?? '', error[k] ?? '']), ...(redshift !== undefined ? [redshift] : [])];
  return head.join(',') + '\n' + row.map((s) => cell(s.trim())).join(',') + '\n';
}
