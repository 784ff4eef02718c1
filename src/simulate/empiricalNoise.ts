/**
 * Empirical noise model (issue 4, after the Synference reference study, Harvey et al. 2025): the
 * error law of a real catalogue, fitted per band in bins of AB magnitude, and sampled for model
 * fluxes.
 *
 * Fit (fitEmpiricalNoiseModel): per band, the catalogue entries with a finite flux f > 0 and a finite
 * error s > 0 are binned in magnitude m = 31.4 - 2.5 log10(f / nJy) (fixed width, from the data's
 * range or given edges). In each bin with at least `minCount` entries we store the median magnitude
 * of the members (the bin's node) and the 16th, 50th and 84th percentiles (linear interpolation
 * between order statistics, numpy's default) of the error e, in the chosen unit:
 *   'relative'  e = s / f
 *   'mag'       e = (2.5 / ln 10) s / f      (the linearised magnitude error)
 * The two differ by a constant factor, so the percentiles convert exactly.
 *
 * Evaluation at a model flux f (empiricalQuantilesAt / empiricalSigmaNJy):
 *   - q16, q50, q84 (relative units) at magnitude m are interpolated linearly in (m, log10 q)
 *     between the nodes;
 *   - beyond the data, the physical extrapolation: brighter than the first node the relative error
 *     is held (a constant fractional error, the calibration-limited regime); fainter than the last
 *     node, including f <= 0, the flux error is held (the background-limited regime). Both at once:
 *       f_last = 10^(-0.4 (m_last - 31.4)),  f_eff = max(f, f_last),  m_eff = max(mag(f_eff), m_first),
 *       sigma_f = q(m_eff) * f_eff.
 * Sampling: the relative error is drawn from a split normal in ln q with median q50 and the 16/84
 * percentiles as its two 1-sigma points (so the draw reproduces the fitted percentiles exactly):
 *       ln e = ln q50 + n * (n < 0 ? ln(q50 / q16) : ln(q84 / q50)),  n ~ N(0, 1),
 *       sigma_f = e * f_eff.
 *
 * The fit is saved as JSON (saveEmpiricalNoiseModel / parseEmpiricalNoiseModel, zod-validated with
 * messages naming the key): { format, version, errorUnit, bands: [{ band, magNodes, p16, p50, p84,
 * counts }], source? }.
 */
import { z } from 'zod';

/** AB zero point for fluxes in nJy: m = 31.4 - 2.5 log10(f / nJy). */
export const AB_ZP_NJY = 31.4;
/** 2.5 / ln 10: d(mag) = MAG_PER_LN * d(flux) / flux. */
export const MAG_PER_LN = 2.5 / Math.LN10;

export const EMPIRICAL_NOISE_FORMAT = 'synference-webgpu/empirical-noise';
export const EMPIRICAL_NOISE_VERSION = 1;

/** AB magnitude of a flux in nJy (NaN for f <= 0). */
export function magFromFluxNJy(fluxNJy: number): number {
  return fluxNJy > 0 ? AB_ZP_NJY - 2.5 * Math.log10(fluxNJy) : NaN;
}

/** Flux in nJy of an AB magnitude. */
export function fluxNJyFromMag(mag: number): number {
  return Math.pow(10, -0.4 * (mag - AB_ZP_NJY));
}

const finiteArray = (key: string, positive: boolean) =>
  z.array(
    z
      .number({ invalid_type_error: `${key} entries must be finite numbers` })
      .finite({ message: `${key} entries must be finite numbers` })
      .refine((v) => !positive || v > 0, { message: `${key} entries must be > 0` }),
    { invalid_type_error: `${key} must be an array of numbers`, required_error: `${key} is required (an array of numbers)` },
  );

export const EmpiricalBandSchema = z
  .object({
    band: z.string({ required_error: 'band is required (the band name)', invalid_type_error: 'band must be a string' }).min(1, { message: 'band must be a non-empty string' }),
    /** Bin nodes: the median magnitude of each bin's members [AB mag], strictly increasing. */
    magNodes: finiteArray('magNodes', false).min(1, { message: 'magNodes must have at least 1 entry' }),
    /** 16th / 50th / 84th percentiles of the error in `errorUnit`, one per node, 0 < p16 <= p50 <= p84. */
    p16: finiteArray('p16', true),
    p50: finiteArray('p50', true),
    p84: finiteArray('p84', true),
    /** Catalogue entries per bin (informative). */
    counts: z.array(z.number().int().min(0), { invalid_type_error: 'counts must be an array of non-negative integers' }).optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    const n = b.magNodes.length;
    for (const k of ['p16', 'p50', 'p84', 'counts'] as const) {
      const a = b[k];
      if (a !== undefined && a.length !== n)
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [k], message: `${k} must have ${n} entries (one per magNodes entry), got ${a.length}` });
    }
    for (let i = 1; i < n; i++)
      if (!(b.magNodes[i] > b.magNodes[i - 1])) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['magNodes', i], message: `magNodes must be strictly increasing (entry ${i}: ${b.magNodes[i]} after ${b.magNodes[i - 1]})` });
        break;
      }
    if (b.p16.length === n && b.p50.length === n && b.p84.length === n)
      for (let i = 0; i < n; i++)
        if (!(b.p16[i] <= b.p50[i] && b.p50[i] <= b.p84[i])) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['p50', i], message: `percentiles must satisfy p16 <= p50 <= p84 (entry ${i}: ${b.p16[i]}, ${b.p50[i]}, ${b.p84[i]})` });
          break;
        }
  });

export const EmpiricalNoiseModelSchema = z
  .object({
    format: z.literal(EMPIRICAL_NOISE_FORMAT, { errorMap: () => ({ message: `format must be '${EMPIRICAL_NOISE_FORMAT}'` }) }),
    version: z.literal(EMPIRICAL_NOISE_VERSION, { errorMap: () => ({ message: `version must be ${EMPIRICAL_NOISE_VERSION}` }) }),
    errorUnit: z.enum(['relative', 'mag'], { errorMap: () => ({ message: "errorUnit must be 'relative' or 'mag'" }) }),
    bands: z
      .array(EmpiricalBandSchema, { invalid_type_error: 'bands must be an array', required_error: 'bands is required' })
      .min(1, { message: 'bands must have at least 1 entry' }),
    /** Free-form provenance (catalogue, fit options). */
    source: z.record(z.unknown()).optional(),
  })
  .strict()
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    m.bands.forEach((b, i) => {
      if (seen.has(b.band)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['bands', i, 'band'], message: `band '${b.band}' appears twice` });
      seen.add(b.band);
    });
  });

export type EmpiricalBand = z.output<typeof EmpiricalBandSchema>;
export type EmpiricalNoiseModel = z.output<typeof EmpiricalNoiseModelSchema>;

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const key = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '') || '(root)';
      return `${key}: ${i.message}`;
    })
    .join('; ');
}

/** Validates a fitted model (parsed JSON); throws an Error naming every bad key. */
export function parseEmpiricalNoiseModel(input: unknown, what = 'empirical noise model'): EmpiricalNoiseModel {
  const r = EmpiricalNoiseModelSchema.safeParse(input);
  if (!r.success) throw new Error(`${what}: ${formatIssues(r.error)}`);
  return r.data;
}

/** Reads and validates a fitted model JSON file (Node only; node:fs is imported lazily so browsers can use the rest). */
export async function loadEmpiricalNoiseModel(path: string): Promise<EmpiricalNoiseModel> {
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`empirical noise model ${path}: cannot read (${(e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`empirical noise model ${path}: not valid JSON (${(e as Error).message})`);
  }
  return parseEmpiricalNoiseModel(json, `empirical noise model ${path}`);
}

/** The fitted model as JSON text (validated first). */
export function empiricalNoiseModelToJson(model: EmpiricalNoiseModel): string {
  return JSON.stringify(parseEmpiricalNoiseModel(model), null, 2) + '\n';
}

/** Writes a fitted model as JSON (validated first; Node only). */
export async function saveEmpiricalNoiseModel(path: string, model: EmpiricalNoiseModel): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, empiricalNoiseModelToJson(model));
}

// ---------------------------------------------------------------------------------------------
// Fit
// ---------------------------------------------------------------------------------------------

export interface EmpiricalFitOptions {
  /** Unit of the binned error (default 'relative'). */
  errorUnit?: 'relative' | 'mag';
  /** Bin width [mag] when `binEdgesMag` is not given (default 0.5). */
  binWidthMag?: number;
  /** Explicit increasing bin edges [AB mag], shared by all bands. */
  binEdgesMag?: number[];
  /** Bins with fewer members are dropped (default 10). */
  minCount?: number;
  /** Free-form provenance stored in the JSON. */
  source?: Record<string, unknown>;
}

/** Percentile (0..100) of sorted data, linear interpolation between order statistics (numpy default). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = ((n - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/**
 * Fits the error law per band. fluxNJy / errorNJy: N x B row-major (NaN, non-finite, f <= 0 or
 * s <= 0 entries are ignored). Throws naming the band when a band has no bin with `minCount` members.
 */
export function fitEmpiricalNoiseModel(
  bands: readonly string[],
  fluxNJy: ArrayLike<number>,
  errorNJy: ArrayLike<number>,
  options: EmpiricalFitOptions = {},
): EmpiricalNoiseModel {
  const B = bands.length;
  if (B === 0) throw new Error('fitEmpiricalNoiseModel: bands must not be empty');
  if (fluxNJy.length !== errorNJy.length || fluxNJy.length % B !== 0)
    throw new Error(`fitEmpiricalNoiseModel: fluxNJy (${fluxNJy.length}) and errorNJy (${errorNJy.length}) must both be N x ${B}`);
  const errorUnit = options.errorUnit ?? 'relative';
  const width = options.binWidthMag ?? 0.5;
  if (!(width > 0) || !Number.isFinite(width)) throw new Error(`fitEmpiricalNoiseModel: binWidthMag must be a finite number > 0, got ${width}`);
  const minCount = options.minCount ?? 10;
  if (!Number.isInteger(minCount) || minCount < 1) throw new Error(`fitEmpiricalNoiseModel: minCount must be an integer >= 1, got ${minCount}`);
  const edgesGiven = options.binEdgesMag;
  if (edgesGiven) {
    if (edgesGiven.length < 2) throw new Error('fitEmpiricalNoiseModel: binEdgesMag needs at least 2 edges');
    for (let i = 1; i < edgesGiven.length; i++)
      if (!(edgesGiven[i] > edgesGiven[i - 1])) throw new Error(`fitEmpiricalNoiseModel: binEdgesMag must be strictly increasing (entry ${i})`);
  }
  const unitFactor = errorUnit === 'mag' ? MAG_PER_LN : 1;
  const N = fluxNJy.length / B;
  const out: EmpiricalBand[] = [];
  for (let b = 0; b < B; b++) {
    const mags: number[] = [];
    const errs: number[] = [];
    for (let i = 0; i < N; i++) {
      const f = fluxNJy[i * B + b];
      const s = errorNJy[i * B + b];
      if (!(Number.isFinite(f) && Number.isFinite(s) && f > 0 && s > 0)) continue;
      mags.push(magFromFluxNJy(f));
      errs.push((unitFactor * s) / f);
    }
    let edges: number[];
    if (edgesGiven) edges = edgesGiven.slice();
    else {
      if (mags.length === 0) throw new Error(`fitEmpiricalNoiseModel: band ${bands[b]} has no entry with flux > 0 and error > 0`);
      let lo = Infinity;
      let hi = -Infinity;
      for (const m of mags) {
        lo = Math.min(lo, m);
        hi = Math.max(hi, m);
      }
      const start = Math.floor(lo / width) * width;
      const nb = Math.max(1, Math.ceil((hi - start) / width + 1e-12));
      edges = Array.from({ length: nb + 1 }, (_, k) => start + k * width);
      // hi falls in the last bin when the upper edge is inclusive (below).
    }
    const nBins = edges.length - 1;
    const members: { m: number[]; e: number[] }[] = Array.from({ length: nBins }, () => ({ m: [], e: [] }));
    for (let j = 0; j < mags.length; j++) {
      const m = mags[j];
      if (m < edges[0] || m > edges[nBins]) continue;
      // Binary search for k with edges[k] <= m < edges[k+1] (last bin closed).
      let lo = 0;
      let hi = nBins - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (edges[mid] <= m) lo = mid;
        else hi = mid - 1;
      }
      members[lo].m.push(m);
      members[lo].e.push(errs[j]);
    }
    const band: EmpiricalBand = { band: bands[b], magNodes: [], p16: [], p50: [], p84: [], counts: [] };
    for (const bin of members) {
      if (bin.m.length < minCount) continue;
      const ms = Float64Array.from(bin.m).sort();
      const es = Float64Array.from(bin.e).sort();
      const node = percentileSorted(ms, 50);
      if (band.magNodes.length > 0 && !(node > band.magNodes[band.magNodes.length - 1])) continue;
      band.magNodes.push(node);
      band.p16.push(percentileSorted(es, 16));
      band.p50.push(percentileSorted(es, 50));
      band.p84.push(percentileSorted(es, 84));
      band.counts!.push(bin.m.length);
    }
    if (band.magNodes.length === 0)
      throw new Error(`fitEmpiricalNoiseModel: band ${bands[b]} has no magnitude bin with at least minCount = ${minCount} entries (${mags.length} usable entries)`);
    out.push(band);
  }
  return parseEmpiricalNoiseModel({
    format: EMPIRICAL_NOISE_FORMAT,
    version: EMPIRICAL_NOISE_VERSION,
    errorUnit,
    bands: out,
    ...(options.source ? { source: options.source } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// Evaluation and sampling
// ---------------------------------------------------------------------------------------------

/** One band's tables in relative units (what the CPU reference and the GPU kernel evaluate). */
export interface EmpiricalBandTable {
  magNodes: Float64Array;
  /** ln of the 16/50/84 percentiles of the relative error at each node. */
  lnQ16: Float64Array;
  lnQ50: Float64Array;
  lnQ84: Float64Array;
}

/**
 * The fitted tables for the given bands, in that order, converted to relative units (ln q).
 * Throws naming a band the model does not have.
 */
export function empiricalTables(model: EmpiricalNoiseModel, bands: readonly string[]): EmpiricalBandTable[] {
  const unitFactor = model.errorUnit === 'mag' ? MAG_PER_LN : 1;
  return bands.map((name) => {
    const b = model.bands.find((x) => x.band === name);
    if (!b) throw new Error(`empirical noise model has no band '${name}' (it has ${model.bands.map((x) => x.band).join(', ')})`);
    const ln = (a: number[]) => Float64Array.from(a, (v) => Math.log(v / unitFactor));
    return { magNodes: Float64Array.from(b.magNodes), lnQ16: ln(b.p16), lnQ50: ln(b.p50), lnQ84: ln(b.p84) };
  });
}

/** Interpolated (ln q16, ln q50, ln q84) at magnitude m (clamped to the node range). */
export function empiricalLnQuantilesAt(t: EmpiricalBandTable, mag: number): [number, number, number] {
  const x = t.magNodes;
  const n = x.length;
  if (n === 1 || mag <= x[0]) return [t.lnQ16[0], t.lnQ50[0], t.lnQ84[0]];
  if (mag >= x[n - 1]) return [t.lnQ16[n - 1], t.lnQ50[n - 1], t.lnQ84[n - 1]];
  let k = 0;
  while (k < n - 2 && x[k + 1] <= mag) k++;
  const w = (mag - x[k]) / (x[k + 1] - x[k]);
  const lerp = (a: Float64Array) => a[k] + w * (a[k + 1] - a[k]);
  return [lerp(t.lnQ16), lerp(t.lnQ50), lerp(t.lnQ84)];
}

/** f_eff = max(f, flux of the faintest node): the flux that multiplies the relative error. */
export function empiricalEffectiveFluxNJy(t: EmpiricalBandTable, fluxNJy: number): number {
  const fLast = fluxNJyFromMag(t.magNodes[t.magNodes.length - 1]);
  return fluxNJy > fLast ? fluxNJy : fLast;
}

/**
 * The flux error [nJy] of the fitted law at a model flux, for a standard normal draw n (n = 0 gives
 * the median error; n = -1 / +1 the 16th / 84th percentiles).
 */
export function empiricalSigmaNJy(t: EmpiricalBandTable, fluxNJy: number, n: number): number {
  const fEff = empiricalEffectiveFluxNJy(t, fluxNJy);
  const m = AB_ZP_NJY - 2.5 * Math.log10(fEff); // clamped below at the first node by the lookup
  const [l16, l50, l84] = empiricalLnQuantilesAt(t, m);
  const lnE = l50 + n * (n < 0 ? l50 - l16 : l84 - l50);
  return Math.exp(lnE) * fEff;
}

/** Flux error at the faintest node (median): the catalogue's 1-sigma "depth" for asinh softening. */
export function empiricalFaintSigmaNJy(t: EmpiricalBandTable): number {
  const n = t.magNodes.length;
  return Math.exp(t.lnQ50[n - 1]) * fluxNJyFromMag(t.magNodes[n - 1]);
}
