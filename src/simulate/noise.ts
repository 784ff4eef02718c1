/**
 * Noise models and feature configuration (issue 4): the zod schemas (the single source of truth for
 * the `noise:` and `features:` sections of a model config) and the float64 reference of the noise
 * models. The features themselves (asinh magnitudes, errors, mask, redshift) live in features.ts;
 * the empirical (catalogue-fitted) error law in empiricalNoise.ts; the GPU kernel in kernels/noise.ts.
 *
 * Units: fluxes and flux errors in nJy, magnitudes AB. For nJy the AB zero point is 31.4:
 *   m = 31.4 - 2.5 log10(f / nJy).
 *
 * Noise models (`type`):
 *   none       noisy = true flux, sigma = 0 (features then need an explicit softening).
 *   depth      5-sigma depths m5 per band -> sigma_depth = 10^(-0.4 (m5 - 31.4)) / 5 nJy. Optional
 *              per-galaxy depth scatter: m5' = m5 + depthScatterMag * n (one n per galaxy shared by
 *              all bands when depthScatterMode = 'galaxy', one per galaxy and band for 'band').
 *              Optional floor in quadrature: sigma^2 = sigma_depth'^2 + (errorFloorFrac * |f_true|)^2.
 *              noisy = f_true + sigma * n_flux.
 *   empirical  an error law fitted from a catalogue (empiricalNoise.ts): the flux error is drawn from
 *              the fitted distribution at the model flux's magnitude (split-normal in log error with
 *              the fitted 16/50/84 percentiles), the floor is added in quadrature as above, then
 *              noisy = f_true + sigma * n_flux.
 * The error reported with a noisy flux is the sigma that scattered it (computed from the noiseless
 * flux; a model with scatter reports the scattered sigma).
 *
 * Random draws (Philox4x32-10, src/simulate/rng.ts; every stream from (seed, purpose, index = the
 * galaxy's global row, so chunking does not change the result):
 *   band b:      PhiloxStream(seed, RngPurpose.noise, row, sub = b): n_flux = normal(), n_aux = normal()
 *                (Box-Muller on words 0,1 and 2,3); n_aux is the empirical model's error draw or the
 *                per-band depth-scatter draw.
 *   per galaxy:  PhiloxStream(seed, RngPurpose.noise, row, sub = 0xffff).normal() (depth scatter 'galaxy').
 *   drop-out:    PhiloxStream(seed, RngPurpose.bandDropout, row, sub 0): word b -> uniform u_b; band b
 *                is dropped when u_b < p_b (features.ts).
 * The GPU kernel (shaders/simulate/noise.wgsl) draws the same words, so GPU and CPU agree to f32
 * rounding of the transcendental functions.
 */
import { z } from 'zod';
import {
  AB_ZP_NJY,
  type EmpiricalBandTable,
  type EmpiricalNoiseModel,
  EmpiricalNoiseModelSchema,
  empiricalFaintSigmaNJy,
  empiricalSigmaNJy,
  empiricalTables,
  loadEmpiricalNoiseModel,
} from './empiricalNoise.js';
import { PhiloxStream, RngPurpose } from './rng.js';

export { AB_ZP_NJY } from './empiricalNoise.js';


const MAG_MIN = 0;
const MAG_MAX = 50;

const num = (key: string, min: number, max: number, opts: { minExclusive?: boolean; maxExclusive?: boolean } = {}) => {
  const range = `${opts.minExclusive ? '(' : '['}${min}, ${max}${opts.maxExclusive ? ')' : ']'}`;
  const msg = `${key} must be a finite number in ${range}`;
  let s = z.number({ invalid_type_error: msg, required_error: `${key} is required (a number in ${range})` }).finite({ message: msg });
  s = opts.minExclusive ? s.gt(min, { message: msg }) : s.min(min, { message: msg });
  s = opts.maxExclusive ? s.lt(max, { message: msg }) : s.max(max, { message: msg });
  return s;
};

/** A per-band value: one number for every band, or a map band name -> number. */
const perBand = (key: string, min: number, max: number, opts: { minExclusive?: boolean; maxExclusive?: boolean } = {}) =>
  z.union([num(key, min, max, opts), z.record(z.string().min(1), num(key, min, max, opts))], {
    errorMap: (issue, ctx) =>
      issue.code === z.ZodIssueCode.invalid_union
        ? { message: `${key} must be a number in [${min}, ${max}] or a map band -> number` }
        : { message: ctx.defaultError },
  });

export const NoneNoiseSchema = z.object({ type: z.literal('none') }).strict();

export const DepthNoiseSchema = z
  .object({
    type: z.literal('depth'),
    /** 5-sigma point-source depths [AB mag]: one for all bands or a map band -> m5. */
    depth5SigmaMag: perBand('depth5SigmaMag', MAG_MIN, MAG_MAX),
    /** Fractional error floor added in quadrature (0.05 = 5 % of the noiseless flux). */
    errorFloorFrac: num('errorFloorFrac', 0, 1).default(0),
    /** Per-galaxy scatter of the depths [mag, 1-sigma Gaussian]; 0 = none. */
    depthScatterMag: num('depthScatterMag', 0, 5).default(0),
    /** 'galaxy': one depth offset per galaxy for all bands; 'band': independent per galaxy and band. */
    depthScatterMode: z
      .enum(['galaxy', 'band'], { errorMap: () => ({ message: "depthScatterMode must be 'galaxy' or 'band'" }) })
      .default('galaxy'),
  })
  .strict();

export const EmpiricalNoiseConfigSchema = z
  .object({
    type: z.literal('empirical'),
    /** Path of a fitted model JSON (empiricalNoise.ts: saveEmpiricalNoiseModel); or `model` inline. */
    file: z.string({ invalid_type_error: 'file must be a path (string)' }).min(1, { message: 'file must be a non-empty path' }).optional(),
    /** The fitted model inline (same schema as the JSON file). */
    model: EmpiricalNoiseModelSchema.optional(),
    /** Fractional error floor added in quadrature to the drawn error. */
    errorFloorFrac: num('errorFloorFrac', 0, 1).default(0),
  })
  .strict();


/** The `noise:` section of a model config. `type` picks the model. */
export const NoiseConfigSchema = z
  .discriminatedUnion('type', [NoneNoiseSchema, DepthNoiseSchema, EmpiricalNoiseConfigSchema], {
    errorMap: (issue, ctx) =>
      issue.code === z.ZodIssueCode.invalid_union_discriminator
        ? { message: "type must be one of 'none', 'depth', 'empirical'" }
        : { message: ctx.defaultError },
  })
  .superRefine((c, ctx) => {
    if (c.type === 'empirical' && (c.file === undefined) === (c.model === undefined))
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['file'], message: 'empirical noise needs exactly one of file (a fitted-model JSON path) or model (the fit inline)' });
  });

export type NoneNoiseConfig = z.output<typeof NoneNoiseSchema>;
export type DepthNoiseConfig = z.output<typeof DepthNoiseSchema>;
export type EmpiricalNoiseConfig = z.output<typeof EmpiricalNoiseConfigSchema>;
export type NoiseConfig = z.output<typeof NoiseConfigSchema>;
export type NoiseConfigInput = z.input<typeof NoiseConfigSchema>;

/**
 * The `features:` section of a model config: what the flow sees as its context x. Feature order
 * (features.ts: featureNames): the B photometry values, then (includeErrors) the B errors, then
 * (mask) the B 0/1 masks, then (includeRedshift) the redshift:
 *   asinhMag: `${band}_asinh_mag`..., `${band}_asinh_mag_err`..., `${band}_mask`..., `redshift`
 *   flux:     `${band}_flux`...,      `${band}_flux_err`...,      `${band}_mask`..., `redshift`
 */
export const FeatureConfigSchema = z
  .object({
    /** asinhMag: Lupton et al. (1999) asinh magnitudes; flux: fluxes in nJy times fluxScale. */
    photometry: z.enum(['asinhMag', 'flux'], { errorMap: () => ({ message: "photometry must be 'asinhMag' or 'flux'" }) }).default('asinhMag'),
    /**
     * Asinh softening b per band [nJy]: 'noise' = Lupton's recommendation b = sqrt(2.5 log10 e) *
     * sigma_1, with sigma_1 the noise model's nominal 1-sigma flux error (depth model: from the
     * 5-sigma depth; empirical model: the median error at the faintest fitted bin); or a number for
     * all bands, or a map band -> b.
     */
    softeningNJy: z
      .union([z.literal('noise'), num('softeningNJy', 0, 1e30, { minExclusive: true }), z.record(z.string().min(1), num('softeningNJy', 0, 1e30, { minExclusive: true }))], {
        errorMap: (issue, ctx) =>
          issue.code === z.ZodIssueCode.invalid_union ? { message: "softeningNJy must be 'noise', a number > 0 [nJy] or a map band -> number" } : { message: ctx.defaultError },
      })
      .default('noise'),
    /** photometry 'flux': feature = flux [nJy] * fluxScale (and its error likewise). */
    fluxScale: num('fluxScale', 0, 1e30, { minExclusive: true }).default(1),
    /** Include the photometric errors (asinh-magnitude errors, or scaled flux errors). */
    includeErrors: z.boolean({ invalid_type_error: 'includeErrors must be true or false' }).default(true),
    /** Append the redshift as the last feature. */
    includeRedshift: z.boolean({ invalid_type_error: 'includeRedshift must be true or false' }).default(false),
    /** Probability that a band is dropped (masked) per galaxy during simulation: one for all bands or a map band -> p. */
    dropoutProb: perBand('dropoutProb', 0, 1).default(0),
    /** Include the 0/1 mask per band (1 = observed, 0 = missing). Default: true when any dropoutProb > 0. */
    mask: z.boolean({ invalid_type_error: 'mask must be true or false' }).optional(),
    /** Value of the photometry and error features of a masked band. */
    fillValue: num('fillValue', -1e30, 1e30).default(0),
  })
  .strict();

export type FeatureConfig = z.output<typeof FeatureConfigSchema>;
export type FeatureConfigInput = z.input<typeof FeatureConfigSchema>;

function formatIssues(what: string, error: z.ZodError): Error {
  const msgs = error.issues.map((i) => {
    const key = i.path.join('.') || '(root)';
    return i.message.startsWith(key) ? i.message : `${key}: ${i.message}`;
  });
  return new Error(`${what}: ${msgs.join('; ')}`);
}

/** Validates a `noise:` section; throws an Error naming every bad key and its allowed range. */
export function parseNoiseConfig(input: unknown): NoiseConfig {
  const r = NoiseConfigSchema.safeParse(input);
  if (!r.success) throw formatIssues('noise config', r.error);
  return r.data;
}

/** Validates a `features:` section; throws an Error naming every bad key and its allowed range. */
export function parseFeatureConfig(input: unknown): FeatureConfig {
  const r = FeatureConfigSchema.safeParse(input ?? {});
  if (!r.success) throw formatIssues('feature config', r.error);
  return r.data;
}

/** A per-band config value (number or map) as an array in band order; a missing or unknown band is an error naming it. */
export function perBandValues(key: string, value: number | Record<string, number>, bands: readonly string[]): Float64Array {
  if (typeof value === 'number') return new Float64Array(bands.length).fill(value);
  const unknown = Object.keys(value).filter((k) => !bands.includes(k));
  if (unknown.length) throw new Error(`${key}: unknown band(s) ${unknown.join(', ')} (the model's bands are ${bands.join(', ')})`);
  const missing = bands.filter((b) => !(b in value));
  if (missing.length) throw new Error(`${key}: no value for band(s) ${missing.join(', ')}`);
  return Float64Array.from(bands, (b) => value[b]);
}

// ---------------------------------------------------------------------------------------------
// Resolved noise model (config + bands) and its float64 reference
// ---------------------------------------------------------------------------------------------

/** 1-sigma flux error [nJy] of a 5-sigma depth m5 [AB mag]: 10^(-0.4 (m5 - 31.4)) / 5. */
export function sigmaFromDepth5NJy(depth5SigmaMag: number): number {
  return Math.pow(10, -0.4 * (depth5SigmaMag - AB_ZP_NJY)) / 5;
}

export interface ResolvedNoise {
  type: 'none' | 'depth' | 'empirical';
  bands: readonly string[];
  /** Nominal 1-sigma flux error per band [nJy] (depth: from m5; empirical: faint-end median; none: 0). */
  sigma1NJy: Float64Array;
  /** depth: 5-sigma depths per band [AB mag]. */
  depth5SigmaMag?: Float64Array;
  errorFloorFrac: number;
  depthScatterMag: number;
  depthScatterMode: 'galaxy' | 'band';
  /** empirical: the fitted tables in band order. */
  tables?: EmpiricalBandTable[];
}

/**
 * Binds a noise config to the model's bands (a per-band map must name exactly those bands; an
 * empirical model must contain them). An empirical config with `file` needs the loaded model as
 * `fileModel` (resolveNoise loads it).
 */
export function resolveNoiseWith(config: NoiseConfig | NoiseConfigInput, bands: readonly string[], fileModel?: EmpiricalNoiseModel): ResolvedNoise {
  const c = parseNoiseConfig(config);
  if (bands.length === 0) throw new Error('noise: the model has no bands');
  if (bands.length >= GALAXY_SUBSTREAM) throw new Error(`noise: at most ${GALAXY_SUBSTREAM - 1} bands, got ${bands.length}`);
  const base = { bands: [...bands], errorFloorFrac: 0, depthScatterMag: 0, depthScatterMode: 'galaxy' as const };
  if (c.type === 'none') return { ...base, type: 'none', sigma1NJy: new Float64Array(bands.length) };
  if (c.type === 'depth') {
    const m5 = perBandValues('noise.depth5SigmaMag', c.depth5SigmaMag, bands);
    return {
      ...base,
      type: 'depth',
      sigma1NJy: m5.map(sigmaFromDepth5NJy),
      depth5SigmaMag: m5,
      errorFloorFrac: c.errorFloorFrac,
      depthScatterMag: c.depthScatterMag,
      depthScatterMode: c.depthScatterMode,
    };
  }
  const model = c.model ?? fileModel;
  if (!model) throw new Error(`noise.file: the empirical model ${c.file} is not loaded (use resolveNoise, which reads it)`);
  const tables = empiricalTables(model, bands);
  return { ...base, type: 'empirical', sigma1NJy: Float64Array.from(tables, empiricalFaintSigmaNJy), errorFloorFrac: c.errorFloorFrac, tables };
}

/** resolveNoiseWith, reading an empirical model `file` (relative to `baseDir`, default the cwd; Node only). */
export async function resolveNoise(config: NoiseConfig | NoiseConfigInput, bands: readonly string[], options: { baseDir?: string } = {}): Promise<ResolvedNoise> {
  const c = parseNoiseConfig(config);
  let fileModel: EmpiricalNoiseModel | undefined;
  if (c.type === 'empirical' && c.file !== undefined) {
    const path = await import('node:path');
    fileModel = await loadEmpiricalNoiseModel(path.resolve(options.baseDir ?? process.cwd(), c.file));
  }
  return resolveNoiseWith(c, bands, fileModel);
}

/** Sub-stream of the per-galaxy draw (the per-band draws use sub-stream = band index). */
export const GALAXY_SUBSTREAM = 0xffff;

export interface ElementDraws {
  /** Standard normal scattering the flux. */
  nFlux: number;
  /** Standard normal for the empirical error draw or the per-band depth scatter. */
  nAux: number;
}

/**
 * Draws of galaxy `index` (global row), band `band`: Philox stream (seed, RngPurpose.noise, index,
 * sub = band), two Box-Muller normals from its first four words (rng.ts: PhiloxStream.normal).
 */
export function elementDraws(seed: number, index: number, band: number): ElementDraws {
  const s = new PhiloxStream(seed, RngPurpose.noise, index, band);
  const nFlux = s.normal();
  return { nFlux, nAux: s.normal() };
}

/** The per-galaxy standard normal (depth scatter shared by all bands): sub-stream GALAXY_SUBSTREAM. */
export function galaxyDraw(seed: number, index: number): number {
  return new PhiloxStream(seed, RngPurpose.noise, index, GALAXY_SUBSTREAM).normal();
}

/**
 * Drop-out uniforms of galaxy `index`, one per band in order: Philox stream (seed,
 * RngPurpose.bandDropout, index, sub 0), word b for band b (u32ToUnitF32, exact in f32).
 */
export function dropoutUniforms(seed: number, index: number, nBands: number): Float64Array {
  const s = new PhiloxStream(seed, RngPurpose.bandDropout, index, 0);
  const u = new Float64Array(nBands);
  for (let b = 0; b < nBands; b++) u[b] = s.uniform();
  return u;
}

/**
 * The noise model for one flux given its draws: returns [noisy flux, sigma] in nJy.
 * nGalaxy is the per-galaxy draw (used by depthScatterMode 'galaxy').
 */
export function noisyFluxOne(r: ResolvedNoise, band: number, trueFluxNJy: number, nFlux: number, nAux: number, nGalaxy: number): [number, number] {
  let sigma0: number;
  switch (r.type) {
    case 'none':
      return [trueFluxNJy, 0];
    case 'depth': {
      const n = r.depthScatterMode === 'galaxy' ? nGalaxy : nAux;
      sigma0 = r.sigma1NJy[band] * Math.pow(10, -0.4 * r.depthScatterMag * n);
      break;
    }
    case 'empirical':
      sigma0 = empiricalSigmaNJy(r.tables![band], trueFluxNJy, nAux);
      break;
  }
  const fl = r.errorFloorFrac * trueFluxNJy;
  const sigma = Math.sqrt(sigma0 * sigma0 + fl * fl);
  return [trueFluxNJy + sigma * nFlux, sigma];
}

/**
 * float64 reference of the noise models: N x B noiseless fluxes [nJy] -> noisy fluxes and sigmas.
 * Galaxy i uses the streams of global index indexOffset + i.
 */
export function applyNoise(
  r: ResolvedNoise,
  trueFluxNJy: ArrayLike<number>,
  options: { seed: number; indexOffset?: number },
): { noisyFluxNJy: Float64Array; sigmaNJy: Float64Array } {
  const B = r.bands.length;
  if (trueFluxNJy.length % B !== 0) throw new Error(`applyNoise: ${trueFluxNJy.length} fluxes are not N x ${B}`);
  const N = trueFluxNJy.length / B;
  const noisy = new Float64Array(N * B);
  const sig = new Float64Array(N * B);
  const off = options.indexOffset ?? 0;
  for (let i = 0; i < N; i++) {
    const nGal = r.type === 'depth' && r.depthScatterMag > 0 && r.depthScatterMode === 'galaxy' ? galaxyDraw(options.seed, off + i) : 0;
    for (let b = 0; b < B; b++) {
      const d = elementDraws(options.seed, off + i, b);
      const [f, s] = noisyFluxOne(r, b, trueFluxNJy[i * B + b], d.nFlux, d.nAux, nGal);
      noisy[i * B + b] = f;
      sig[i * B + b] = s;
    }
  }
  return { noisyFluxNJy: noisy, sigmaNJy: sig };
}
