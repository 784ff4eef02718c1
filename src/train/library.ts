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

  const lib = await readLibrary(o.library, { optional: [], requireFinite: true });
  o.onLibrary?.(lib);
  const parameters = parameterInfoFromLibrary(lib.attrs, lib.thetaNames, lib.theta, lib.rows);
  const context: ContextFeature[] = lib.xNames.map((name) => ({ name }));
  const result = await trainFlow({
    data: { theta: lib.theta, x: lib.x, n: lib.rows },
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
  const config = await saveModelDir(o.out, result.model, { parameters, context, training: { library: path.resolve(o.library), ...result.summary } }, { dtype: o.dtype });
  await store.remove();
  return { config, result, checkpointFile: ckFile };
}
