/**
 * Node-side training job: a simulation library (HDF5) in, a model folder out (config.json +
 * weights.safetensors), with the checkpoint in the model folder while training runs.
 *
 *   out/checkpoint.safetensors   written every N epochs, removed once the model is saved
 *
 * Prior bounds of the model: from the library's `config` attribute where it is a simulation config
 * with `parameters: {name: prior}` (uniform / loguniform: [low, high]; normal: its truncation or
 * unbounded; dirichlet: [0, 1] for each of its columns), else the training data's [min, max].
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { type ContextFeature, MODEL_CONFIG_FILE, type ModelConfigJson, type ParameterInfoInput, saveModelDir } from '../flow/modelFiles.js';
import { type Library, type LibraryAttrs, readLibrary } from '../io/library/index.js';
import { PriorSchema, priorSupport } from '../simulate/priors.js';
import { PARAMETERS } from '../simulate/theta.js';
import { CHECKPOINT_FILE, FileCheckpointStore } from './checkpoint.js';
import type { EngineKind, EngineOptions, FlowEngine } from './engine.js';
import { type EpochProgress, type FlowArchitectureInput, type TrainOptionsInput, type TrainResult, trainFlow } from './trainer.js';
import type { FlowModel } from '../flow/flow.js';

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/**
 * Parameter names, units and prior bounds of a library's theta columns (see the module comment).
 * `theta` (rows x P) gives the data range where the config says nothing.
 */
export function parameterInfoFromLibrary(attrs: LibraryAttrs, thetaNames: string[], theta: ArrayLike<number>, rows: number): ParameterInfoInput[] {
  const fromPrior = new Map<string, { low: number | null; high: number | null; unit: string }>();
  const cfg = attrs.config as { parameters?: unknown } | undefined;
  const params = cfg && typeof cfg === 'object' && cfg.parameters && typeof cfg.parameters === 'object' ? (cfg.parameters as Record<string, unknown>) : {};
  for (const [name, raw] of Object.entries(params)) {
    const p = PriorSchema.safeParse(raw);
    if (!p.success || p.data.prior === 'fixed') continue;
    const [lo, hi] = priorSupport(p.data);
    const def = PARAMETERS[name];
    const cols = def?.columns ?? (p.data.prior === 'dirichlet' ? [] : [name]);
    for (const c of cols) fromPrior.set(c, { low: finiteOrNull(lo), high: finiteOrNull(hi), unit: def?.unit ?? '' });
  }
  const P = thetaNames.length;
  return thetaNames.map((name, j) => {
    const pr = fromPrior.get(name);
    if (pr) return { name, unit: pr.unit, low: pr.low, high: pr.high, boundsSource: 'prior' as const };
    let lo = Infinity;
    let hi = -Infinity;
    for (let r = 0; r < rows; r++) {
      const v = theta[r * P + j];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const unit = PARAMETERS[name]?.unit ?? '';
    if (Number.isFinite(lo) && Number.isFinite(hi) && lo < hi) return { name, unit, low: lo, high: hi, boundsSource: 'data' as const };
    return { name, unit, low: null, high: null, boundsSource: 'none' as const };
  });
}

export interface TrainLibraryOptions {
  library: string;
  /** Model folder. */
  out: string;
  flow?: FlowArchitectureInput;
  options?: TrainOptionsInput;
  engine?: EngineKind | ((model: FlowModel) => Promise<FlowEngine>);
  engineOptions?: EngineOptions;
  resume?: boolean;
  /** Replace a trained model or discard a checkpoint in `out`. */
  overwrite?: boolean;
  /** Weights dtype (default F32). */
  dtype?: 'F32' | 'F64';
  onEpoch?: (p: EpochProgress) => void | Promise<void>;
  onCheckpoint?: (epochsDone: number) => void | Promise<void>;
  onLog?: (message: string) => void;
  /** Called with the library once read (e.g. to print its size). */
  onLibrary?: (lib: Library) => void;
  /**
   * Which columns the flow learns (theta) and sees (x). Names come from the library's `theta` and
   * `derived` datasets (for theta) or `x` and `theta` (for x), so redshift can be a known feature
   * (Model 1) or a parameter (Model 2). `log10:<name>` takes log10(max(value, 1e-6)) (for derived
   * masses and SFRs that span many decades; the floor keeps quenched SFRs finite). Default: theta, x.
   */
  columns?: { theta?: string[]; x?: string[] };
}

const LOG_FLOOR = 1e-6;

/** Picks named columns from row-major datasets (first match wins), with the `log10:` transform. */
export function selectColumns(
  sources: { name: string; data: Float32Array; names: string[] }[],
  wanted: string[],
  rows: number,
  what: string,
): { data: Float32Array; names: string[] } {
  const out = new Float32Array(rows * wanted.length);
  wanted.forEach((spec, j) => {
    const log = spec.startsWith('log10:');
    const name = log ? spec.slice(6) : spec;
    const src = sources.find((s) => s.names.includes(name));
    if (!src) throw new Error(`${what} column "${name}" is in none of ${sources.map((s) => `${s.name} (${s.names.join(', ')})`).join('; ')}`);
    const k = src.names.indexOf(name);
    const w = src.names.length;
    for (let r = 0; r < rows; r++) {
      const v = src.data[r * w + k];
      out[r * wanted.length + j] = log ? Math.log10(Math.max(v, LOG_FLOOR)) : v;
    }
  });
  return { data: out, names: wanted.map((s) => (s.startsWith('log10:') ? `log10_${s.slice(6)}` : s)) };
}

/** Trains a flow on a library and writes the model folder; returns its config.json and the run. */
export async function trainFromLibrary(o: TrainLibraryOptions): Promise<{ config: ModelConfigJson; result: TrainResult; checkpointFile: string }> {
  const ckFile = path.join(o.out, CHECKPOINT_FILE);
  const store = new FileCheckpointStore(ckFile);
  if (existsSync(o.out) && !statSync(o.out).isDirectory()) throw new Error(`--out ${o.out} exists and is not a folder (a model is a folder)`);
  const hasModel = existsSync(path.join(o.out, MODEL_CONFIG_FILE));
  const hasCk = existsSync(ckFile);
  if (o.resume && o.overwrite) throw new Error('--resume and --overwrite exclude each other (resume continues the checkpoint, overwrite discards it)');
  if (hasCk && !o.resume && !o.overwrite) {
    throw new Error(`${o.out} holds a checkpoint of an interrupted training run (${ckFile}); pass --resume to continue it or --overwrite to start again`);
  }
  if (hasModel && !hasCk && !o.overwrite) throw new Error(`${o.out} already holds a trained model (${MODEL_CONFIG_FILE}); pass --overwrite to replace it, or choose another --out`);
  if (o.overwrite) await store.remove();

  const wantsDerived = [...(o.columns?.theta ?? []), ...(o.columns?.x ?? [])].length > 0;
  const lib = await readLibrary(o.library, { optional: wantsDerived ? ['derived'] : [], requireFinite: true });
  o.onLibrary?.(lib);
  const thetaSources = [{ name: 'theta', data: lib.theta, names: lib.thetaNames }];
  if (lib.derived) thetaSources.push({ name: 'derived', data: lib.derived, names: lib.datasets.derived?.columns ?? [] });
  const xSources = [{ name: 'x', data: lib.x, names: lib.xNames }, { name: 'theta', data: lib.theta, names: lib.thetaNames }];
  const th = o.columns?.theta ? selectColumns(thetaSources, o.columns.theta, lib.rows, 'theta') : { data: lib.theta, names: lib.thetaNames };
  const xs = o.columns?.x ? selectColumns(xSources, o.columns.x, lib.rows, 'x') : { data: lib.x, names: lib.xNames };
  const parameters = parameterInfoFromLibrary(lib.attrs, th.names, th.data, lib.rows);
  const context: ContextFeature[] = xs.names.map((name) => ({ name }));
  const result = await trainFlow({
    data: { theta: th.data, x: xs.data, n: lib.rows },
    flow: o.flow,
    options: o.options,
    engine: o.engine,
    engineOptions: o.engineOptions,
    checkpoint: store,
    resume: o.resume,
    onEpoch: o.onEpoch,
    onCheckpoint: o.onCheckpoint,
    onLog: o.onLog,
  });
  const config = await saveModelDir(o.out, result.model, {
      parameters,
      context,
      // The simulation config travels with the model: fitting a catalogue needs its feature definition.
      training: { library: path.resolve(o.library), ...(lib.attrs.config ? { simulation: lib.attrs.config } : {}), ...result.summary },
    }, { dtype: o.dtype });
  await store.remove();
  return { config, result, checkpointFile: ckFile };
}
