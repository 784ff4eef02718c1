/**
 * The per-galaxy math of catalogue fitting, shared by `synference fit` (src/infer/fit.ts: files,
 * chunks on disk, resumption, outputs) and the browser page (web/): flags, the model's feature
 * definition from its simulation config, and one chunk of rows -> features -> posterior samples ->
 * summaries. No node: imports, so that the page runs exactly this code (see fit.ts for the rules).
 */
import type { FlowModel } from '../flow/flow.js';
import type { LoadedModel, ParameterInfo } from '../flow/modelFiles.js';
import { type ResolvedFeatures, computeFeatures, resolveFeatures } from '../simulate/features.js';
import { type ResolvedSelection, SelectionConfigSchema, detectionSnr, resolveSelection } from '../simulate/selection.js';
import { type FeatureConfig, type NoiseConfig, type ResolvedNoise, parseFeatureConfig, parseNoiseConfig, resolveNoise } from '../simulate/noise.js';
import { PriorSchema, priorSupport } from '../simulate/priors.js';
import type { FlowEngine } from '../train/engine.js';
import { type ResolvedColumnMap, errorToNJy, fluxToNJy } from './columnMap.js';
import { boundsFromParameters, samplePosterior, summarizeSamples } from './sample.js';

// ---------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------

export const FIT_FLAGS = {
  /** No posterior for this row (see the other flags for why); summaries and samples are NaN. */
  NOT_FITTED: 1,
  /** One or more bands masked (missing column, NaN / non-finite flux or error, error <= 0, magnitude sentinel). */
  MASKED_BANDS: 2,
  /** One or more negative fluxes (kept: valid for asinh magnitudes; masked with negativeFlux: mask). */
  NEGATIVE_FLUX: 4,
  /** A band is missing and the model has no mask features: not fitted. */
  MISSING_BAND: 8,
  /** No usable band at all: not fitted. */
  NO_PHOTOMETRY: 16,
  /** The model needs the redshift and it is missing, non-finite or negative: not fitted. */
  BAD_REDSHIFT: 32,
  /** The redshift is outside the training prior's range. */
  REDSHIFT_OUT_OF_RANGE: 64,
  /** A standardised feature beyond +-oodSigma of the training set. */
  OUT_OF_DISTRIBUTION: 128,
  /** Prior-bounded rejection accepted fewer than minAcceptance of the flow's draws. */
  LOW_ACCEPTANCE: 256,
  /** The rejection cap was hit: some samples are NaN. */
  SAMPLING_CAPPED: 512,
  /** A masked band was never masked in the training set. */
  MASK_UNTRAINED: 1024,
  /** The row fails the training library's detection selection: outside the population the model learned. */
  BELOW_SELECTION: 2048,
} as const;
export type FitFlagName = keyof typeof FIT_FLAGS;

export const FIT_FLAG_DESCRIPTIONS: Record<FitFlagName, string> = {
  NOT_FITTED: 'no posterior for this row (see the other flags); summaries and samples are NaN',
  MASKED_BANDS: 'one or more bands masked (listed in masked_bands): not in the map, NaN/non-finite flux or error, error <= 0, magnitude sentinel',
  NEGATIVE_FLUX: 'one or more negative fluxes (kept as data unless negativeFlux: mask)',
  MISSING_BAND: 'a band is missing and the model has no mask features: not fitted',
  NO_PHOTOMETRY: 'no usable band: not fitted',
  BAD_REDSHIFT: 'the model needs the redshift and it is missing, non-finite or negative: not fitted',
  REDSHIFT_OUT_OF_RANGE: "the redshift is outside the training prior's range",
  OUT_OF_DISTRIBUTION: 'a standardised feature lies beyond +-oodSigma of the training set',
  LOW_ACCEPTANCE: 'the prior-bounded rejection sampler accepted fewer than minAcceptance of the draws',
  SAMPLING_CAPPED: 'the rejection cap was hit: some samples are NaN',
  MASK_UNTRAINED: 'a masked band was never masked in the training set',
  BELOW_SELECTION: "the row fails the training library's detection selection (S/N below selection.minSnr in its detection bands): the model never saw such galaxies",
};

/** Names of the bits set in a flag value. */
export function flagNames(flags: number): FitFlagName[] {
  return (Object.keys(FIT_FLAGS) as FitFlagName[]).filter((k) => (flags & FIT_FLAGS[k]) !== 0);
}

export class FitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FitError';
  }
}

// ---------------------------------------------------------------------------------------------
// The feature definition of a model
// ---------------------------------------------------------------------------------------------

/** A feature definition as read from a simulation config (FeatureDefinition of fit.ts without the hash). */
export interface FeatureDefinitionCore {
  features: ResolvedFeatures;
  /** Where the definition came from (for messages and fit.json). */
  source: string;
  /** The training prior's range of the redshift feature, when known. */
  redshiftRange?: [number, number];
  /** What identifies the definition (fit.ts hashes its canonical JSON): the features and noise sections used. */
  identity: { features: FeatureConfig; noise: unknown; softeningNJy: number[] };
  /** The training library's detection selection, bound to the model's bands (BELOW_SELECTION). */
  selection?: ResolvedSelection;
}

/** config.json keys under `training` that may hold the simulation config, in the order they are tried. */
export const STORED_SIMULATION_KEYS = ['simulation', 'simulationConfig', 'libraryConfig'] as const;

/** The simulation config stored in a model's config.json (`training.simulation`, ...), if any. */
export function storedSimulationConfig(model: Pick<LoadedModel, 'config'>): { config: unknown; source: string } | undefined {
  const training = (model.config.training ?? {}) as Record<string, unknown>;
  const key = STORED_SIMULATION_KEYS.find((k) => training[k] !== undefined);
  return key ? { config: training[key], source: `config.json training.${key}` } : undefined;
}

const PHOT_SUFFIX = { asinhMag: '_asinh_mag', flux: '_flux' } as const;

/**
 * The model's feature definition from a simulation config (object or JSON text; its features, noise
 * and parameters sections are used). Checks that it reproduces the model's context feature names.
 * `loadNoise` resolves the noise model (needed for softening 'noise'); default resolveNoise relative
 * to the working directory.
 */
export async function featureDefinitionFromConfig(
  model: Pick<LoadedModel, 'config'>,
  config: unknown,
  source: string,
  loadNoise: (noise: NoiseConfig, bands: readonly string[]) => Promise<ResolvedNoise> = (n, b) => resolveNoise(n, b),
): Promise<FeatureDefinitionCore> {
  const names = model.config.context.map((c) => c.name);
  let cfg = config;
  if (typeof cfg === 'string') {
    try {
      cfg = JSON.parse(cfg);
    } catch (e) {
      throw new FitError(`${source}: not valid JSON (${(e as Error).message})`);
    }
  }
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new FitError(`${source}: not a simulation config (an object with features and noise sections)`);
  const c = cfg as { features?: unknown; noise?: unknown; parameters?: unknown; selection?: unknown };
  let featureCfg;
  try {
    featureCfg = parseFeatureConfig(c.features ?? {});
  } catch (e) {
    throw new FitError(`${source}: ${(e as Error).message}`);
  }
  // Bands: the leading photometry features of the model.
  const suffix = PHOT_SUFFIX[featureCfg.photometry];
  const bands: string[] = [];
  for (const n of names) {
    if (!n.endsWith(suffix) || n.endsWith('_err')) break;
    bands.push(n.slice(0, -suffix.length));
  }
  if (bands.length === 0) {
    throw new FitError(`the model's features (${names.slice(0, 4).join(', ')}${names.length > 4 ? ', ...' : ''}) do not start with band features "<band>${suffix}" as ${source} (photometry: ${featureCfg.photometry}) defines them`);
  }
  let noise;
  const needsNoise = featureCfg.photometry === 'asinhMag' && featureCfg.softeningNJy === 'noise';
  if (needsNoise) {
    if (c.noise === undefined) throw new FitError(`${source}: features.softeningNJy is 'noise' but there is no noise section to take the 1-sigma errors from`);
    try {
      noise = await loadNoise(parseNoiseConfig(c.noise), bands);
    } catch (e) {
      throw new FitError(`${source}: the noise model (needed for the asinh softening): ${(e as Error).message}`);
    }
  }
  let features: ResolvedFeatures;
  try {
    features = resolveFeatures(featureCfg, bands, noise);
  } catch (e) {
    throw new FitError(`${source}: ${(e as Error).message}`);
  }
  if (features.names.length !== names.length || features.names.some((n, i) => n !== names[i])) {
    const k = features.names.findIndex((n, i) => n !== names[i]);
    const at = k >= 0 ? k : Math.min(features.names.length, names.length);
    throw new FitError(
      `${source} defines ${features.names.length} features, the model has ${names.length} context features; first difference at feature ${at}: ` +
        `the definition gives "${features.names[at] ?? '(none)'}", the model "${names[at] ?? '(none)'}" (is this the model's library?)`,
    );
  }
  let redshiftRange: [number, number] | undefined;
  if (features.includeRedshift && c.parameters && typeof c.parameters === 'object') {
    const p = PriorSchema.safeParse((c.parameters as Record<string, unknown>).redshift);
    if (p.success && p.data.prior !== 'fixed') redshiftRange = priorSupport(p.data);
  }
  let selection: ResolvedSelection | undefined;
  if (c.selection !== undefined) {
    try {
      selection = resolveSelection(SelectionConfigSchema.parse(c.selection), bands);
    } catch (e) {
      throw new FitError(`${source}: selection: ${(e as Error).message}`);
    }
  }
  return { features, source, redshiftRange, selection, identity: { features: featureCfg, noise: needsNoise ? c.noise : null, softeningNJy: Array.from(features.softeningNJy) } };
}

// ---------------------------------------------------------------------------------------------
// Summaries
// ---------------------------------------------------------------------------------------------

/** Numeric summary columns after the per-parameter ones. */
export const EXTRA_NUMERIC = ['row', 'n_bands', 'acceptance', 'log_prob_median', 'max_abs_z'] as const;

/** Names of the numeric summary values of a row (ChunkFit.summary's layout): <p>_median, <p>_p16, <p>_p84 per parameter, then EXTRA_NUMERIC. */
export function summaryNumericNames(params: readonly string[]): string[] {
  return [...params.flatMap((p) => [`${p}_median`, `${p}_p16`, `${p}_p84`]), ...EXTRA_NUMERIC];
}

/** Columns of summary.csv. */
export function summaryCsvHeader(params: readonly string[]): string[] {
  return ['id', 'row', ...params.flatMap((p) => [`${p}_median`, `${p}_p16`, `${p}_p84`]), 'flags', 'flag_names', 'masked_bands', 'n_bands', 'acceptance', 'log_prob_median', 'max_abs_z'];
}

const csvCell = (v: number) => (Number.isNaN(v) ? 'nan' : String(v));
/** A CSV text cell, quoted when needed. */
export function csvText(s: string): string {
  return /[",\n\r]/.test(s) || s !== s.trim() || s === '' ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One line of summary.csv (with its newline): `s` is the row's summary values (summaryNumericNames layout, P parameters). */
export function summaryCsvLine(P: number, id: string, s: ArrayLike<number>, flags: number, masked: string): string {
  const cells = [csvText(id), String(s[3 * P])];
  for (let c = 0; c < 3 * P; c++) cells.push(csvCell(s[c]));
  cells.push(String(flags), csvText(flagNames(flags).join(',')), csvText(masked), String(s[3 * P + 1]), csvCell(s[3 * P + 2]), csvCell(s[3 * P + 3]), csvCell(s[3 * P + 4]));
  return cells.join(',') + '\n';
}

// ---------------------------------------------------------------------------------------------
// One chunk
// ---------------------------------------------------------------------------------------------

export interface ChunkContext {
  engine: FlowEngine;
  /** Rows of the current chunk sampled so far (progress within a chunk). */
  onRows?: (rowsOfChunk: number) => void | Promise<void>;
  /** Training mean and std of each feature over the rows where its band was observed (observedFeatureStats). */
  observedStats: { mean: Float64Array; std: Float64Array };
  feats: ResolvedFeatures;
  rmap: ResolvedColumnMap;
  /** The training prior's range of the redshift feature, when known (REDSHIFT_OUT_OF_RANGE). */
  redshiftRange?: [number, number];
  /** The training library's detection selection, when it had one (BELOW_SELECTION). */
  selection?: ResolvedSelection;
  xMean: Float64Array;
  bounds: ReturnType<typeof boundsFromParameters>;
  M: number;
  P: number;
  seed: number;
  maxDraws: number;
  oodSigma: number;
  minAcceptance: number;
  saveSamples: boolean;
}

/** Options of the per-chunk computation (fit.ts validates them). */
export interface ChunkOptions {
  /** Posterior samples per galaxy. */
  M: number;
  seed: number;
  /** Rejection cap: at most M x maxDraws draws per galaxy. */
  maxDraws: number;
  oodSigma: number;
  minAcceptance: number;
  /** Return the samples (and their log-densities). */
  saveSamples: boolean;
}

/** The context of fitChunk for a model, its feature definition and a resolved column map. */
export function chunkContext(
  engine: FlowEngine,
  model: { flow: Pick<FlowModel, 'xStd'>; config: { parameters: readonly Pick<ParameterInfo, 'low' | 'high'>[] } },
  feats: ResolvedFeatures,
  rmap: ResolvedColumnMap,
  redshiftRange: [number, number] | undefined,
  o: ChunkOptions,
  selection?: ResolvedSelection,
): ChunkContext {
  return {
    engine,
    observedStats: observedFeatureStats(feats, model.flow.xStd),
    feats,
    rmap,
    redshiftRange,
    selection,
    xMean: model.flow.xStd.mean,
    bounds: boundsFromParameters(model.config.parameters),
    P: model.config.parameters.length,
    ...o,
  };
}

export interface ChunkFit {
  ids: string[];
  masked: string[];
  flags: Uint32Array;
  /** rows x S (summaryNumericNames order). */
  summary: Float64Array;
  samples?: Float32Array;
  logProb?: Float32Array;
}

/**
 * Training mean and std of each feature over the rows where its band was observed. The model stores
 * the mean and std over all training rows; with mask features, a band's photometry and error features
 * hold fillValue c where it was dropped, and its mask feature's mean is the observed fraction q, so
 *   mu = q mu_o + (1 - q) c,   sigma^2 + mu^2 = q (sigma_o^2 + mu_o^2) + (1 - q) c^2
 * (up to the N / (N - 1) of the unbiased std, negligible here) give mu_o and sigma_o. Without this,
 * the fill values inflate sigma so much that nothing would ever be out of distribution.
 */
export function observedFeatureStats(feats: ResolvedFeatures, xStd: { mean: ArrayLike<number>; std: ArrayLike<number> }): { mean: Float64Array; std: Float64Array } {
  const mean = Float64Array.from(xStd.mean);
  const std = Float64Array.from(xStd.std);
  if (feats.maskColumn < 0) return { mean, std };
  const B = feats.bands.length;
  const c = feats.fillValue;
  for (let b = 0; b < B; b++) {
    const q = xStd.mean[feats.maskColumn + b];
    if (!(q > 0 && q < 1)) continue;
    for (const k of [b, ...(feats.errorColumn >= 0 ? [feats.errorColumn + b] : [])]) {
      const mu = xStd.mean[k];
      const sd = xStd.std[k];
      const muO = (mu - (1 - q) * c) / q;
      const varO = (sd * sd + mu * mu - (1 - q) * c * c) / q - muO * muO;
      if (Number.isFinite(muO) && varO > 0) {
        mean[k] = muO;
        std[k] = Math.sqrt(varO);
      }
    }
  }
  return { mean, std };
}

/** Photometry of rows of a catalogue block in nJy (model band order; NaN where missing). */
export function blockPhotometry(rmap: ResolvedColumnMap, block: { numeric(ref: string): Float64Array }, rows: number): { flux: Float64Array; error: Float64Array } {
  const B = rmap.bands.length;
  const flux = new Float64Array(rows * B).fill(NaN);
  const error = new Float64Array(rows * B).fill(NaN);
  rmap.bands.forEach((rb, b) => {
    if (!rb) return;
    const fv = block.numeric(rb.flux);
    const ev = block.numeric(rb.error);
    for (let i = 0; i < rows; i++) {
      const f = fluxToNJy(fv[i], rb.fluxUnit);
      flux[i * B + b] = f;
      error[i * B + b] = errorToNJy(ev[i], rb.errorUnit, f);
    }
  });
  return { flux, error };
}

/** Fits rows [start, start + rows) of a catalogue block (see fit.ts for the rules); draws depend on (seed, global row) only. */
export async function fitChunk(ctx: ChunkContext, start: number, rows: number, block: { numeric(ref: string): Float64Array; text(ref: string): string[] }): Promise<ChunkFit> {
  const { feats, rmap, M, P } = ctx;
  const B = feats.bands.length;
  const F = feats.width;
  const ids = rmap.id ? block.text(rmap.id) : Array.from({ length: rows }, (_, i) => String(start + i));
  const { flux, error } = blockPhotometry(rmap, block, rows);
  const z = rmap.redshift ? block.numeric(rmap.redshift) : undefined;
  const flags = new Uint32Array(rows);
  const observed = new Uint8Array(rows * B);
  const nBands = new Float64Array(rows);
  const masked: string[] = new Array(rows);
  const zFeat = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let f = 0;
    const m: string[] = [];
    let untrained = false;
    for (let b = 0; b < B; b++) {
      const fl = flux[i * B + b];
      const er = error[i * B + b];
      let ok = Number.isFinite(fl) && Number.isFinite(er) && er > 0;
      if (ok && fl < 0) {
        if (rmap.negativeFlux === 'mask') ok = false;
        else f |= FIT_FLAGS.NEGATIVE_FLUX;
      }
      if (ok) {
        observed[i * B + b] = 1;
        nBands[i]++;
      } else {
        m.push(feats.bands[b]);
        if (feats.maskColumn >= 0 && 1 - ctx.xMean[feats.maskColumn + b] < 1e-6) untrained = true;
      }
    }
    if (m.length) {
      if (feats.includeMask) {
        f |= FIT_FLAGS.MASKED_BANDS;
        if (untrained) f |= FIT_FLAGS.MASK_UNTRAINED;
      } else f |= FIT_FLAGS.MISSING_BAND | FIT_FLAGS.NOT_FITTED;
    }
    if (nBands[i] === 0) f |= FIT_FLAGS.NO_PHOTOMETRY | FIT_FLAGS.NOT_FITTED;
    if (feats.includeRedshift) {
      const zi = z![i];
      if (!Number.isFinite(zi) || zi < 0) f |= FIT_FLAGS.BAD_REDSHIFT | FIT_FLAGS.NOT_FITTED;
      else {
        zFeat[i] = zi;
        const rr = ctx.redshiftRange;
        if (rr && (zi < rr[0] || zi > rr[1])) f |= FIT_FLAGS.REDSHIFT_OUT_OF_RANGE;
      }
    }
    // detectionSnr uses the usable bands only (finite values, error > 0).
    if (ctx.selection && !(detectionSnr(ctx.selection, flux, error, i, B) >= ctx.selection.config.minSnr)) f |= FIT_FLAGS.BELOW_SELECTION;
    flags[i] = f;
    masked[i] = m.join(';');
  }
  const x = computeFeatures(feats, flux, error, { observed, redshift: feats.includeRedshift ? zFeat : undefined });

  // Distance from the training distribution; placeholders (the training mean) for rows not fitted.
  const { mean: oodMean, std: oodStd } = ctx.observedStats;
  const maxAbsZ = new Float64Array(rows).fill(NaN);
  for (let i = 0; i < rows; i++) {
    if (flags[i] & FIT_FLAGS.NOT_FITTED) {
      x.set(ctx.xMean, i * F);
      continue;
    }
    let worst = 0;
    let finite = true;
    for (let k = 0; k < F; k++) {
      if (!Number.isFinite(x[i * F + k])) finite = false;
      if (feats.maskColumn >= 0 && k >= feats.maskColumn && k < feats.maskColumn + B) continue;
      const b = k < B ? k : feats.errorColumn >= 0 && k >= feats.errorColumn && k < feats.errorColumn + B ? k - feats.errorColumn : -1;
      if (b >= 0 && !observed[i * B + b]) continue;
      const d = Math.abs((x[i * F + k] - oodMean[k]) / oodStd[k]);
      if (d > worst || Number.isNaN(d)) worst = d;
    }
    maxAbsZ[i] = worst;
    if (!(worst <= ctx.oodSigma)) flags[i] |= FIT_FLAGS.OUT_OF_DISTRIBUTION;
    if (!finite) {
      // A feature overflowed (e.g. a flux of 1e300 with flux features): no posterior for it.
      flags[i] |= FIT_FLAGS.OUT_OF_DISTRIBUTION | FIT_FLAGS.NOT_FITTED;
      x.set(ctx.xMean, i * F);
    }
  }

  // Posterior samples: runs of fitted rows (on a GPU, short gaps of unfitted rows are sampled too,
  // with placeholders, to keep batches large; draw streams depend on the global row only).
  const S = 3 * P + EXTRA_NUMERIC.length;
  const summary = new Float64Array(rows * S).fill(NaN);
  const samples = ctx.saveSamples ? new Float32Array(rows * M * P).fill(NaN) : undefined;
  const logProb = ctx.saveSamples ? new Float32Array(rows * M).fill(NaN) : undefined;
  // On the CPU, calls of at most 32 rows (progress and memory; the GPU wants large batches).
  const gap = ctx.engine.kind === 'gpu' ? 16 : 0;
  const maxRows = ctx.engine.kind === 'gpu' ? Infinity : 32;
  const fitted: number[] = [];
  for (let i = 0; i < rows; i++) if (!(flags[i] & FIT_FLAGS.NOT_FITTED)) fitted.push(i);
  let k = 0;
  while (k < fitted.length) {
    const a = fitted[k];
    let e = k;
    while (e + 1 < fitted.length && fitted[e + 1] - fitted[e] - 1 <= gap && fitted[e + 1] - a < maxRows) e++;
    const b = fitted[e] + 1;
    const n = b - a;
    const res = await samplePosterior(ctx.engine, x.subarray(a * F, b * F), n, M, {
      seed: ctx.seed,
      bounds: ctx.bounds,
      maxDrawsPerSample: ctx.maxDraws,
      obsOffset: start + a,
      onWarning: () => {},
    });
    const sm = summarizeSamples(res, [0.16, 0.5, 0.84]);
    const capped = new Set(res.capped);
    const lp = new Float64Array(M);
    for (let o = 0; o < n; o++) {
      const i = a + o;
      if (flags[i] & FIT_FLAGS.NOT_FITTED) continue;
      for (let p = 0; p < P; p++) {
        summary[i * S + 3 * p] = sm.quantiles[1][o * P + p];
        summary[i * S + 3 * p + 1] = sm.quantiles[0][o * P + p];
        summary[i * S + 3 * p + 2] = sm.quantiles[2][o * P + p];
      }
      const acc = res.draws[o] > 0 ? res.accepted[o] / res.draws[o] : NaN;
      summary[i * S + 3 * P + 2] = acc;
      if (!(acc >= ctx.minAcceptance)) flags[i] |= FIT_FLAGS.LOW_ACCEPTANCE;
      if (capped.has(o)) flags[i] |= FIT_FLAGS.SAMPLING_CAPPED;
      let nl = 0;
      for (let j = 0; j < M; j++) {
        const v = res.logProb[o * M + j];
        if (!Number.isNaN(v)) lp[nl++] = v;
      }
      summary[i * S + 3 * P + 3] = nl ? medianOf(lp.subarray(0, nl)) : NaN;
      if (samples) {
        samples.set(res.theta.subarray(o * M * P, (o + 1) * M * P), i * M * P);
        logProb!.set(res.logProb.subarray(o * M, (o + 1) * M), i * M);
      }
    }
    k = e + 1;
    await ctx.onRows?.(b);
  }
  for (let i = 0; i < rows; i++) {
    summary[i * S + 3 * P] = start + i;
    summary[i * S + 3 * P + 1] = nBands[i];
    summary[i * S + 3 * P + 4] = maxAbsZ[i];
  }
  return { ids, masked, flags, summary, samples, logProb };
}

function medianOf(a: Float64Array): number {
  const s = Float64Array.from(a).sort();
  const h = (s.length - 1) / 2;
  const lo = Math.floor(h);
  return s[lo] + (h - lo) * (s[Math.min(s.length - 1, lo + 1)] - s[lo]);
}
