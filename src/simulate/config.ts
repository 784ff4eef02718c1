/**
 * The simulation config (a model for a library): one zod schema, the single source of truth for
 * YAML / JSON files, the CLI and the library's metadata.
 *
 *   grid:         bc03 | maraston05 | a path (Synthesizer .h5/.hdf5 grid or a built grid folder)
 *   filters:      a filter-set name (jades14) or a list of filter names / files (src/grid/filters.ts)
 *   forwardModel: src/physics/forwardModel.ts ForwardModelConfigSchema (dust, IGM, nebular, ...)
 *   sfh:          the SFH family (src/physics/sfh.ts)
 *   parameters:   name -> prior (src/simulate/priors.ts); names and ranges in theta.ts PARAMETERS
 *   noise:        src/simulate/noise.ts NoiseConfigSchema
 *   features:     src/simulate/noise.ts FeatureConfigSchema
 *   design:       random | lhs | sobol
 *   seed:         non-negative integer (< 2^53): every random stream derives from it
 *   chunkSize:    galaxies per chunk (the unit of progress, resumption and memory)
 *   n:            optional library size (the CLI's --n overrides it; lhs needs it)
 *   selection:    optional detection cut (src/simulate/selection.ts): rows are drawn from the prior
 *                 conditioned on detection; needs design: random
 * An unknown key or a value out of range is an error naming the key path and the allowed range.
 */
import { z } from 'zod';
import { FILTER_SETS, FilterSetSpecSchema } from '../grid/filters.js';
import { ForwardModelConfigSchema } from '../physics/forwardModel.js';
import type { SfhFamily } from '../physics/sfh.js';
import { SFH_FAMILY_CODES } from './canonical.js';
import { SOBOL_MAX_DIMS } from './designs.js';
import { FeatureConfigSchema, NoiseConfigSchema } from './noise.js';
import { PriorSchema, ThetaSampler } from './priors.js';
import { SelectionConfigSchema } from './selection.js';
import { type ParameterContext, type ThetaLayout, buildThetaLayout, checkParameters } from './theta.js';

/** Built-in grid names (src/grid/build.ts BUILTIN_GRIDS; kept here so the config does not load the readers). */
export const BUILTIN_GRID_NAMES = ['bc03', 'maraston05'] as const;
export const DESIGNS = ['random', 'lhs', 'sobol'] as const;
export const SFH_FAMILIES = Object.keys(SFH_FAMILY_CODES) as SfhFamily[];
export const MAX_CHUNK_SIZE = 1 << 22;
const MAX_SEED = Number.MAX_SAFE_INTEGER;
const MAX_N = 2 ** 32;

const intIn = (key: string, min: number, max: number) => {
  const msg = `${key} must be an integer in [${min}, ${max}]`;
  return z.number({ invalid_type_error: msg, required_error: `${key} is required (${msg.slice(key.length + 1)})` }).int({ message: msg }).min(min, { message: msg }).max(max, { message: msg });
};

const gridSchema = z
  .string({ invalid_type_error: 'grid must be bc03, maraston05 or a path', required_error: 'grid is required (bc03, maraston05 or a path)' })
  .min(1)
  .refine((g) => (BUILTIN_GRID_NAMES as readonly string[]).includes(g) || /[\\/]/.test(g) || /\.(h5|hdf5)$/i.test(g), {
    message: `grid must be one of ${BUILTIN_GRID_NAMES.join(', ')} or a path (a Synthesizer .h5/.hdf5 file or a built grid folder)`,
  });

const ConfigObjectSchema = z
  .object({
    grid: gridSchema,
    filters: FilterSetSpecSchema,
    forwardModel: ForwardModelConfigSchema.default({}),
    sfh: z.enum(SFH_FAMILIES as [SfhFamily, ...SfhFamily[]], { errorMap: () => ({ message: `sfh must be one of ${SFH_FAMILIES.join(', ')}` }) }),
    parameters: z.record(z.string(), PriorSchema),
    noise: NoiseConfigSchema,
    features: FeatureConfigSchema.default({}),
    design: z.enum(DESIGNS, { errorMap: () => ({ message: `design must be one of ${DESIGNS.join(', ')}` }) }).default('random'),
    seed: intIn('seed', 0, MAX_SEED),
    chunkSize: intIn('chunkSize', 1, MAX_CHUNK_SIZE).default(65536),
    n: intIn('n', 1, MAX_N).optional(),
    selection: SelectionConfigSchema.optional(),
  })
  .strict();

/** Band names known without reading files: a named set, or a list of plain filter names. */
export function staticBandNames(filters: string | string[]): string[] | undefined {
  const items = typeof filters === 'string' ? filters.split(',').map((s) => s.trim()).filter(Boolean) : filters;
  if (items.length === 1 && Object.hasOwn(FILTER_SETS, items[0])) return [...FILTER_SETS[items[0]]];
  if (items.every((s) => /^[A-Za-z0-9_.-]+$/.test(s) && !/\.[A-Za-z]+$/.test(s))) return items;
  return undefined;
}

function checkBandMap(ctx: z.RefinementCtx, path: (string | number)[], value: unknown, bands: string[]): void {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return;
  const keys = Object.keys(value);
  for (const k of keys) if (!bands.includes(k)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, k], message: `unknown band "${k}"; the bands are ${bands.join(', ')}` });
  const missing = bands.filter((b) => !keys.includes(b));
  if (missing.length) ctx.addIssue({ code: z.ZodIssueCode.custom, path, message: `no value for band${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (give every band, or one number for all)` });
}

export function parameterContext(c: Pick<SimulationConfig, 'sfh' | 'forwardModel'>): ParameterContext {
  return { sfh: c.sfh, dustLaw: c.forwardModel.dust.law, nebular: c.forwardModel.nebular.enabled, logU: c.forwardModel.nebular.logU };
}

/** The simulation config schema (validated as a whole: parameters against the SFH family and model). */
export const SimulationConfigSchema = ConfigObjectSchema.superRefine((c, ctx) => {
  const issues = checkParameters(c.parameters, parameterContext(c));
  for (const i of issues) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['parameters', ...i.path], message: i.message });
  if (issues.length) return;
  const layout = buildThetaLayout(c.parameters, parameterContext(c));
  if (c.design === 'sobol' && layout.priors.dims > SOBOL_MAX_DIMS)
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['design'], message: `the sobol design supports at most ${SOBOL_MAX_DIMS} dimensions; this model has ${layout.priors.dims}` });
  if (c.selection && c.design !== 'random')
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['selection'], message: `a selection needs design: random (rejection would break the ${c.design} design's stratification)` });
  const bands = staticBandNames(c.filters);
  if (bands && c.selection)
    c.selection.bands.forEach((b, i) => {
      if (!bands.includes(b)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['selection', 'bands', i], message: `unknown band "${b}"; the bands are ${bands.join(', ')}` });
    });
  if (bands) {
    if (c.noise.type === 'depth') checkBandMap(ctx, ['noise', 'depth5SigmaMag'], c.noise.depth5SigmaMag, bands);
    checkBandMap(ctx, ['features', 'dropoutProb'], c.features.dropoutProb, bands);
    checkBandMap(ctx, ['features', 'softeningNJy'], c.features.softeningNJy, bands);
  }
});

export type SimulationConfig = z.output<typeof SimulationConfigSchema>;
export type SimulationConfigInput = z.input<typeof SimulationConfigSchema>;

/** A config that failed validation: `issues` are "key.path: message" lines. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: string[],
  ) {
    super(`${source}: invalid simulation config:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const describe = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'a map' : String(v));

const REQUIRED_HINTS: Record<string, string> = {
  filters: 'a filter-set name such as jades14, or a list of filters',
  parameters: 'a map parameter name -> prior',
  noise: "a noise model: type 'none', 'depth' or 'empirical'",
};

function valueAt(input: unknown, path: (string | number)[]): unknown {
  let v = input;
  for (const k of path) v = v && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

/**
 * Rewrites zod's generic messages ("Number must be greater than or equal to 1", "Required", ...)
 * into ones with the bound and the offending value; messages written in the schemas stay as they are.
 */
function readableMessage(i: z.ZodIssue, input: unknown): string {
  const got = () => describe(valueAt(input, i.path));
  if (i.code === z.ZodIssueCode.too_small && i.type === 'number' && /^Number must be/.test(i.message)) return `must be ${i.inclusive ? '>=' : '>'} ${i.minimum}, got ${got()}`;
  if (i.code === z.ZodIssueCode.too_big && i.type === 'number' && /^Number must be/.test(i.message)) return `must be ${i.inclusive ? '<=' : '<'} ${i.maximum}, got ${got()}`;
  if (i.code === z.ZodIssueCode.too_small && i.type === 'array' && /^Array must/.test(i.message)) return `needs at least ${i.minimum} entries`;
  if (i.code === z.ZodIssueCode.too_big && i.type === 'array' && /^Array must/.test(i.message)) return `takes at most ${i.maximum} entries`;
  if (i.code === z.ZodIssueCode.invalid_type && i.message === 'Required') return `is required (${(i.path.length === 1 && REQUIRED_HINTS[String(i.path[0])]) || i.expected})`;
  if (i.code === z.ZodIssueCode.invalid_type && /^Expected /.test(i.message)) return `must be ${i.expected}, got ${got()}`;
  if (i.code === z.ZodIssueCode.unrecognized_keys) return `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
  return i.message;
}

/** Keys allowed by the object schema at `path` (following plain objects only). */
function allowedKeysAt(schema: z.ZodTypeAny, path: (string | number)[]): string[] | undefined {
  let s: z.ZodTypeAny = schema;
  const unwrap = (t: z.ZodTypeAny): z.ZodTypeAny => {
    for (;;) {
      if (t instanceof z.ZodEffects) t = t.innerType();
      else if (t instanceof z.ZodDefault) t = t._def.innerType;
      else if (t instanceof z.ZodOptional) t = t.unwrap();
      else return t;
    }
  };
  s = unwrap(s);
  for (const key of path) {
    if (!(s instanceof z.ZodObject)) return undefined;
    const next = (s.shape as Record<string, z.ZodTypeAny>)[String(key)];
    if (!next) return undefined;
    s = unwrap(next);
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : undefined;
}

function formatIssues(error: z.ZodError, input: unknown): string[] {
  return error.issues.map((i) => {
    const where = i.path.join('.') || '(root)';
    let msg = readableMessage(i, input);
    if (i.code === z.ZodIssueCode.unrecognized_keys) {
      const allowed = allowedKeysAt(SimulationConfigSchema, i.path);
      const prefix = i.path.length ? `${where}.` : '';
      return `${prefix}${i.keys.join(`, ${prefix}`)}: ${msg}${allowed ? ` (allowed: ${allowed.join(', ')})` : ''}`;
    }
    if (msg.startsWith(`${String(i.path[i.path.length - 1])} `)) msg = msg.slice(String(i.path[i.path.length - 1]).length + 1);
    return `${where}: ${msg}`;
  });
}

/** Validates a parsed config object; throws ConfigError listing every issue. */
export function parseSimulationConfig(input: unknown, source = 'config'): SimulationConfig {
  const r = SimulationConfigSchema.safeParse(input);
  if (!r.success) throw new ConfigError(source, formatIssues(r.error, input));
  return r.data;
}

/** Parses YAML (a superset of JSON) or JSON text, then validates. */
export async function parseSimulationConfigText(text: string, source = 'config', format: 'yaml' | 'json' = 'yaml'): Promise<SimulationConfig> {
  let obj: unknown;
  try {
    if (format === 'json') obj = JSON.parse(text);
    else {
      const YAML = await import('yaml');
      obj = YAML.parse(text, { uniqueKeys: true });
    }
  } catch (e) {
    throw new ConfigError(source, [`cannot parse ${format.toUpperCase()}: ${(e as Error).message.split('\n')[0]}`]);
  }
  return parseSimulationConfig(obj, source);
}

/** Reads and validates a .yaml / .yml / .json config file (Node). */
export async function loadSimulationConfig(file: string): Promise<SimulationConfig> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [`cannot read the file: ${(e as Error).message}`]);
  }
  return parseSimulationConfigText(text, file, /\.json$/i.test(file) ? 'json' : 'yaml');
}

/** Theta columns, priors and fixed values of a validated config. */
export function configThetaLayout(config: SimulationConfig): ThetaLayout {
  return buildThetaLayout(config.parameters, parameterContext(config));
}

/** A CPU theta sampler for the config's design (n: library size, default config.n). */
export function configThetaSampler(config: SimulationConfig, n: number | undefined = config.n, layout = configThetaLayout(config)): ThetaSampler {
  return new ThetaSampler(layout.priors, { design: config.design, seed: config.seed, n });
}
