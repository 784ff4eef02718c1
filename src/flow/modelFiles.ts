/**
 * Model folder of a trained flow (issue 5): `config.json` + `weights.safetensors`.
 *
 * config.json (format "synference-flow-model", formatVersion 1; zod-validated on load):
 *   flow            the architecture (FlowConfigSchema, every key explicit)
 *   standardization theta {mean[P], std[P]}, x {mean[F], std[F]} (z-score fitted on the training set)
 *   parameters      [{name, unit, low, high, boundsSource}] for the P theta columns in order; low/high
 *                   are the prior bounds (null = unbounded on that side); boundsSource "prior" (from
 *                   the library's simulation config), "data" (training data range) or "none"
 *   context         [{name, unit?}] for the F context features x in order (the columns an
 *                   observation table must have)
 *   training        optional summary (library, sizes, options, epochs, losses, history, ...)
 *   weights         {file: "weights.safetensors", dtype: "F32" | "F64"}
 *   generator, created
 * weights.safetensors: one tensor per entry of src/flow/layout.ts (`t0.in.weight` [inDim, H], ...;
 * W[in][out] row-major, the transpose of torch's nn.Linear.weight), dtype F32 by default; metadata
 * {format: "synference-flow-weights", formatVersion: "1"}. Tensors are named, so the flat vector's
 * alignment is a property of the engine, not of the file.
 *
 * `serializeModel` / `parseModel` work on strings and ArrayBuffers (Node and browser); the Node
 * wrappers `saveModelDir` / `loadModelDir` import node:fs dynamically; `loadModelFromUrl` uses fetch;
 * `loadModelFrom` reads through any FileSource (the browser page's picked folders).
 */
import { z } from 'zod';
import { type FlowConfig, FlowConfigSchema } from './config.js';
import { type FlowModel, createFlow } from './flow.js';
import type { LayoutOptions } from './layout.js';
import { SafetensorsError, parseSafetensors, serializeSafetensors, tensorToFloat64 } from './safetensors.js';

export const MODEL_FORMAT = 'synference-flow-model';
export const MODEL_FORMAT_VERSION = 1;
export const WEIGHTS_FORMAT = 'synference-flow-weights';
export const MODEL_CONFIG_FILE = 'config.json';
export const MODEL_WEIGHTS_FILE = 'weights.safetensors';

export class ModelFileError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'ModelFileError';
  }
}

const finiteNumber = z.number().finite();
const bound = z.number().finite().nullable();

export const ParameterInfoSchema = z
  .object({
    name: z.string().min(1),
    unit: z.string().default(''),
    /** Prior lower bound (null: unbounded). */
    low: bound,
    /** Prior upper bound (null: unbounded). */
    high: bound,
    boundsSource: z.enum(['prior', 'data', 'none']),
  })
  .strict()
  .refine((p) => p.low === null || p.high === null || p.low < p.high, { message: 'low must be < high' });
export type ParameterInfo = z.output<typeof ParameterInfoSchema>;
export type ParameterInfoInput = z.input<typeof ParameterInfoSchema>;

export const ContextFeatureSchema = z.object({ name: z.string().min(1), unit: z.string().optional() }).strict();
export type ContextFeature = z.output<typeof ContextFeatureSchema>;

export const EpochRecordSchema = z.object({ epoch: z.number().int().nonnegative(), trainLoss: z.number().nullable(), valLoss: z.number().nullable(), lr: z.number(), seconds: z.number().optional() }).strict();
export type EpochRecord = z.output<typeof EpochRecordSchema>;

/** Training summary: informative, so unknown keys are kept (passthrough), known ones typed. */
export const TrainingSummarySchema = z
  .object({
    library: z.string().optional(),
    engine: z.string().optional(),
    n: z.number().int().nonnegative().optional(),
    nTrain: z.number().int().nonnegative().optional(),
    nVal: z.number().int().nonnegative().optional(),
    seed: z.number().int().nonnegative().optional(),
    options: z.record(z.unknown()).optional(),
    epochs: z.number().int().nonnegative().optional(),
    bestEpoch: z.number().int().min(-1).optional(),
    bestValLoss: z.number().nullable().optional(),
    lastTrainLoss: z.number().nullable().optional(),
    stoppedBy: z.string().optional(),
    seconds: z.number().nonnegative().optional(),
    resumedFrom: z.number().int().nullable().optional(),
    history: z.array(EpochRecordSchema).optional(),
  })
  .passthrough();
export type TrainingSummary = z.output<typeof TrainingSummarySchema>;

const StdSchema = z.object({ mean: z.array(finiteNumber), std: z.array(finiteNumber.gt(0, { message: 'std must be > 0' })) }).strict();

export const ModelConfigSchema = z
  .object({
    format: z.literal(MODEL_FORMAT, { errorMap: () => ({ message: `format must be "${MODEL_FORMAT}" (is this a synference model folder?)` }) }),
    formatVersion: z.literal(MODEL_FORMAT_VERSION, { errorMap: () => ({ message: `formatVersion must be ${MODEL_FORMAT_VERSION} (this program reads version ${MODEL_FORMAT_VERSION} only)` }) }),
    generator: z.string().optional(),
    created: z.string().optional(),
    flow: FlowConfigSchema,
    standardization: z.object({ theta: StdSchema, x: StdSchema }).strict(),
    parameters: z.array(ParameterInfoSchema),
    context: z.array(ContextFeatureSchema),
    training: TrainingSummarySchema.optional(),
    weights: z.object({ file: z.string().min(1).default(MODEL_WEIGHTS_FILE), dtype: z.enum(['F32', 'F64']).default('F32') }).strict().default({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const P = c.flow.thetaDim;
    const F = c.flow.contextDim;
    const len = (path: (string | number)[], got: number, want: number, what: string) => {
      if (got !== want) ctx.addIssue({ code: z.ZodIssueCode.custom, path, message: `has ${got} entries, but flow.${what} is ${want}` });
    };
    len(['standardization', 'theta', 'mean'], c.standardization.theta.mean.length, P, 'thetaDim');
    len(['standardization', 'theta', 'std'], c.standardization.theta.std.length, P, 'thetaDim');
    len(['standardization', 'x', 'mean'], c.standardization.x.mean.length, F, 'contextDim');
    len(['standardization', 'x', 'std'], c.standardization.x.std.length, F, 'contextDim');
    len(['parameters'], c.parameters.length, P, 'thetaDim');
    len(['context'], c.context.length, F, 'contextDim');
    const dup = (names: string[], path: string) => {
      const seen = new Set<string>();
      for (const n of names) {
        if (seen.has(n)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [path], message: `duplicate name "${n}"` });
        seen.add(n);
      }
    };
    dup(c.parameters.map((p) => p.name), 'parameters');
    dup(c.context.map((p) => p.name), 'context');
  });
export type ModelConfigJson = z.output<typeof ModelConfigSchema>;
export type ModelConfigInput = z.input<typeof ModelConfigSchema>;

function issuesText(e: z.ZodError): string {
  return e.issues
    .map((i) => {
      const key = i.path.join('.') || '(root)';
      return i.message.startsWith(key + ' ') ? i.message : `${key}: ${i.message}`;
    })
    .join('; ');
}

/** Validates a model config object (throws ModelFileError naming every bad key). */
export function parseModelConfig(input: unknown, source = MODEL_CONFIG_FILE): ModelConfigJson {
  const r = ModelConfigSchema.safeParse(input);
  if (!r.success) throw new ModelFileError(source, issuesText(r.error));
  return r.data;
}

/** What a model folder says besides the flow itself. */
export interface ModelInfo {
  parameters: ParameterInfoInput[];
  context: ContextFeature[];
  training?: TrainingSummary;
  created?: string;
}

/** A loaded model: the float64 flow (params in the requested layout) and its config.json. */
export interface LoadedModel {
  flow: FlowModel;
  config: ModelConfigJson;
}

/** Builds (and validates) the config.json object of a flow. */
export function buildModelConfig(flow: FlowModel, info: ModelInfo, dtype: 'F32' | 'F64' = 'F32'): ModelConfigJson {
  const cfg: FlowConfig = flow.config;
  return parseModelConfig(
    {
      format: MODEL_FORMAT,
      formatVersion: MODEL_FORMAT_VERSION,
      generator: 'synference-webgpu',
      created: info.created ?? new Date().toISOString(),
      flow: { ...cfg },
      standardization: {
        theta: { mean: Array.from(flow.thetaStd.mean), std: Array.from(flow.thetaStd.std) },
        x: { mean: Array.from(flow.xStd.mean), std: Array.from(flow.xStd.std) },
      },
      parameters: info.parameters,
      context: info.context,
      ...(info.training ? { training: info.training } : {}),
      weights: { file: MODEL_WEIGHTS_FILE, dtype },
    },
    'model config',
  );
}

/** The flow's parameters as named tensors (layout order). */
export function weightsToSafetensors(flow: FlowModel, dtype: 'F32' | 'F64' = 'F32', params: ArrayLike<number> = flow.params): Uint8Array {
  const tensors = flow.layout.tensors.map((t) => {
    const data = new Float64Array(t.size);
    for (let i = 0; i < t.size; i++) data[i] = params[t.offset + i];
    return [t.name, { dtype, shape: t.shape, data }] as const;
  });
  return serializeSafetensors(tensors, { format: WEIGHTS_FORMAT, formatVersion: String(MODEL_FORMAT_VERSION) });
}

/** config.json text and weights.safetensors bytes of a flow. */
export function serializeModel(flow: FlowModel, info: ModelInfo, opts: { dtype?: 'F32' | 'F64'; params?: ArrayLike<number> } = {}): { config: ModelConfigJson; configText: string; weights: Uint8Array } {
  const dtype = opts.dtype ?? 'F32';
  const config = buildModelConfig(flow, info, dtype);
  return { config, configText: JSON.stringify(config, null, 2) + '\n', weights: weightsToSafetensors(flow, dtype, opts.params ?? flow.params) };
}

/** Fills a flow's params from a parsed weights file; every layout tensor must be there with its shape, nothing else. */
function fillParams(flow: FlowModel, weights: ArrayBuffer | Uint8Array, source: string): void {
  let st;
  try {
    st = parseSafetensors(weights, source);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new ModelFileError(source, e.message.slice(source.length + 2));
    throw e;
  }
  const want = new Set(flow.layout.tensors.map((t) => t.name));
  const extra = st.tensors.filter((t) => !want.has(t.name)).map((t) => t.name);
  if (extra.length) throw new ModelFileError(source, `unexpected tensor(s) ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''} (the flow in config.json has no such tensor; config and weights do not belong together?)`);
  for (const t of flow.layout.tensors) {
    const e = st.byName.get(t.name);
    if (!e) throw new ModelFileError(source, `missing tensor "${t.name}" (shape [${t.shape.join(', ')}]) that the flow in config.json needs`);
    if (e.dtype !== 'F32' && e.dtype !== 'F64') throw new ModelFileError(source, `tensor "${t.name}": dtype ${e.dtype}, expected F32 or F64`);
    if (e.shape.length !== t.shape.length || e.shape.some((d, i) => d !== t.shape[i])) {
      throw new ModelFileError(source, `tensor "${t.name}": shape [${e.shape.join(', ')}], the flow in config.json needs [${t.shape.join(', ')}]`);
    }
    const v = tensorToFloat64(e, source);
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i])) throw new ModelFileError(source, `tensor "${t.name}": non-finite value ${v[i]} at element ${i}`);
    }
    flow.params.set(v, t.offset);
  }
}

/**
 * Parses a model from config.json (text or object) and weights.safetensors bytes. `layout` picks the
 * flat vector's alignment (default: src/flow/layout.ts's).
 */
export function parseModel(
  config: string | unknown,
  weights: ArrayBuffer | Uint8Array,
  opts: LayoutOptions & { configSource?: string; weightsSource?: string } = {},
): LoadedModel {
  const cs = opts.configSource ?? MODEL_CONFIG_FILE;
  let obj: unknown = config;
  if (typeof config === 'string') {
    try {
      obj = JSON.parse(config);
    } catch (e) {
      throw new ModelFileError(cs, `not valid JSON (${(e as Error).message})`);
    }
  }
  const cfg = parseModelConfig(obj, cs);
  const flow = createFlow(cfg.flow, { alignElements: opts.alignElements });
  flow.params.fill(0);
  flow.thetaStd = { mean: Float64Array.from(cfg.standardization.theta.mean), std: Float64Array.from(cfg.standardization.theta.std) };
  flow.xStd = { mean: Float64Array.from(cfg.standardization.x.mean), std: Float64Array.from(cfg.standardization.x.std) };
  fillParams(flow, weights, opts.weightsSource ?? cfg.weights.file);
  return { flow, config: cfg };
}

/** Writes `dir/config.json` and `dir/weights.safetensors` (each via a temporary file + rename). Node only. */
export async function saveModelDir(dir: string, flow: FlowModel, info: ModelInfo, opts: { dtype?: 'F32' | 'F64'; params?: ArrayLike<number> } = {}): Promise<ModelConfigJson> {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  const s = serializeModel(flow, info, opts);
  await fs.mkdir(dir, { recursive: true });
  const put = async (name: string, data: string | Uint8Array) => {
    const file = path.join(dir, name);
    const tmp = `${file}.tmp-${process.pid}`;
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  };
  // Weights first: a folder with a config.json always has the weights that go with it.
  await put(MODEL_WEIGHTS_FILE, s.weights);
  await put(MODEL_CONFIG_FILE, s.configText);
  return s.config;
}

/** Reads a model folder (Node only). Errors name the file. */
export async function loadModelDir(dir: string, opts: LayoutOptions = {}): Promise<LoadedModel> {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  const cfgFile = path.join(dir, MODEL_CONFIG_FILE);
  let st;
  try {
    st = await fs.stat(dir);
  } catch {
    throw new ModelFileError(dir, 'no such model folder');
  }
  if (!st.isDirectory()) throw new ModelFileError(dir, `not a folder (a model is a folder with ${MODEL_CONFIG_FILE} and ${MODEL_WEIGHTS_FILE})`);
  let text: string;
  try {
    text = await fs.readFile(cfgFile, 'utf8');
  } catch (e) {
    throw new ModelFileError(cfgFile, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); a model folder needs ${MODEL_CONFIG_FILE} and ${MODEL_WEIGHTS_FILE}`);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(cfgFile, `not valid JSON (${(e as Error).message})`);
  }
  const cfg = parseModelConfig(obj, cfgFile);
  const wFile = path.join(dir, cfg.weights.file);
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(wFile);
  } catch (e) {
    throw new ModelFileError(wFile, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseModel(cfg, bytes, { ...opts, configSource: cfgFile, weightsSource: wFile });
}

/** Loads a model folder served over HTTP (browser or Node >= 18): `${base}/config.json` and the weights. */
export async function loadModelFromUrl(base: string, opts: LayoutOptions & { fetch?: typeof fetch } = {}): Promise<LoadedModel> {
  const f = opts.fetch ?? fetch;
  const root = base.endsWith('/') ? base : base + '/';
  const get = async (name: string) => {
    const r = await f(root + name);
    if (!r.ok) throw new ModelFileError(root + name, `HTTP ${r.status} ${r.statusText}`);
    return r;
  };
  const cfgText = await (await get(MODEL_CONFIG_FILE)).text();
  let obj: unknown;
  try {
    obj = JSON.parse(cfgText);
  } catch (e) {
    throw new ModelFileError(root + MODEL_CONFIG_FILE, `not valid JSON (${(e as Error).message})`);
  }
  const cfg = parseModelConfig(obj, root + MODEL_CONFIG_FILE);
  const w = await (await get(cfg.weights.file)).arrayBuffer();
  return parseModel(cfg, w, { ...opts, configSource: root + MODEL_CONFIG_FILE, weightsSource: root + cfg.weights.file });
}

/** Loads a model folder from any reader of its files (src/io/fileSource.ts: picked files, a URL, memory). */
export async function loadModelFrom(
  src: { text(rel: string): Promise<string>; bytes(rel: string): Promise<Uint8Array>; where(rel: string): string },
  opts: LayoutOptions = {},
): Promise<LoadedModel> {
  const cfgWhere = src.where(MODEL_CONFIG_FILE);
  const text = await src.text(MODEL_CONFIG_FILE);
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new ModelFileError(cfgWhere, `not valid JSON (${(e as Error).message})`);
  }
  const cfg = parseModelConfig(obj, cfgWhere);
  const w = await src.bytes(cfg.weights.file);
  return parseModel(cfg, w, { ...opts, configSource: cfgWhere, weightsSource: src.where(cfg.weights.file) });
}
