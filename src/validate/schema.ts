/**
 * metrics.json: the machine-readable result of `synference validate` (format
 * "synference-validation-metrics", formatVersion 1). This zod schema is its single definition;
 * assemble.ts builds it, validate.ts writes it, plots and reports read it.
 *
 * Numbers: JSON has no NaN or Infinity, so a metric that is undefined (no objects, zero variance)
 * or infinite is null. Summary metrics carry full float64 precision; the per-object arrays
 * (parameters[].objects) carry 7 significant digits (float32 precision of the samples).
 *
 * Layout (all per-object arrays are aligned with objects.row, i.e. the objects used, in order):
 *   format, formatVersion, generator, created
 *   definitions            text of every metric (self-describing; METRIC_DEFINITIONS in assemble.ts)
 *   model                  {dir, parameters: names, context: feature names}
 *   library                {file, rows (in the file), selection ("all" | "validation"), first}
 *   sampling               {engine, samplesPerObject M, seed, maxDrawsPerSample, acceptanceRate, seconds}
 *   objects                {requested, used, excluded: counts by reason, excludedRows: library rows
 *                           by reason, row: library row of each used object}
 *   parameters[]           per parameter, in model order:
 *     name, unit, low, high (prior bounds, null = unbounded)
 *     metrics              {n, r2, rmse, bias, normalizedBias, meanPull, outlierFraction, coverage68, coverage95}
 *     coverage             {levels 0.01..0.99, empirical, lower, upper (binomial band), confidence, n,
 *                           meanDeviation, maxAbsDeviation}
 *     ranks                {samplesPerObject, bins, edges (normalised), counts, expected, n, chi2, dof, pValue}
 *     tarp                 1-D TARP of this parameter: {n, alpha 0..1, ecp, lower, upper, confidence, atc, ks}
 *     redshift             {n, nmad, outlierFraction, bias, outlierThreshold} for the redshift parameter, else null
 *     objects              {truth, median, p16, p84, rank} per used object
 *   tarp                   joint TARP over all parameters (same fields) + box {low, high}, references "uniform"
 *   snr                    null when the library has no fluxes/errors (or --snr none); else
 *                          {definition, edges (null = +inf), values per used object (null = none),
 *                           noSnr (objects without a finite S/N), bins: [{low, high, n,
 *                           parameters: {name: metrics}, redshift}]}
 *   redshift               {parameter, n, nmad, outlierFraction, bias, outlierThreshold} or null
 *   warnings               what the user should know (capped objects, ignored columns, training rows)
 */
import { z } from 'zod';

export const METRICS_FORMAT = 'synference-validation-metrics';
export const METRICS_FORMAT_VERSION = 1;
export const METRICS_FILE = 'metrics.json';

/** A number, or null where it is NaN / infinite. */
const Num = z.number().nullable();
const Int = z.number().int().nonnegative();

export const PointMetricsJsonSchema = z
  .object({
    n: Int,
    r2: Num,
    rmse: Num,
    bias: Num,
    normalizedBias: Num,
    meanPull: Num,
    outlierFraction: Num,
    coverage68: Num,
    coverage95: Num,
  })
  .strict();

export const RedshiftMetricsJsonSchema = z.object({ n: Int, nmad: Num, outlierFraction: Num, bias: Num, outlierThreshold: z.number() }).strict();

export const CoverageJsonSchema = z
  .object({
    levels: z.array(z.number()),
    empirical: z.array(Num),
    lower: z.array(Num),
    upper: z.array(Num),
    confidence: z.number(),
    n: Int,
    meanDeviation: Num,
    maxAbsDeviation: Num,
  })
  .strict();

export const RanksJsonSchema = z
  .object({
    samplesPerObject: Int,
    bins: Int,
    edges: z.array(z.number()),
    counts: z.array(Int),
    expected: z.array(z.number()),
    n: Int,
    chi2: Num,
    dof: Int,
    pValue: Num,
  })
  .strict();

export const TarpJsonSchema = z
  .object({
    n: Int,
    alpha: z.array(z.number()),
    ecp: z.array(Num),
    lower: z.array(Num),
    upper: z.array(Num),
    confidence: z.number(),
    atc: Num,
    ks: z.object({ statistic: Num, pValue: Num }).strict(),
  })
  .strict();

export const ObjectArraysJsonSchema = z
  .object({
    truth: z.array(Num),
    median: z.array(Num),
    p16: z.array(Num),
    p84: z.array(Num),
    rank: z.array(z.number().int()),
  })
  .strict();

export const ParameterResultJsonSchema = z
  .object({
    name: z.string(),
    unit: z.string(),
    low: Num,
    high: Num,
    metrics: PointMetricsJsonSchema,
    coverage: CoverageJsonSchema,
    ranks: RanksJsonSchema,
    tarp: TarpJsonSchema,
    redshift: RedshiftMetricsJsonSchema.nullable(),
    objects: ObjectArraysJsonSchema,
  })
  .strict();

export const SnrBinJsonSchema = z
  .object({
    low: z.number(),
    /** null: unbounded. */
    high: Num,
    n: Int,
    parameters: z.record(PointMetricsJsonSchema),
    redshift: RedshiftMetricsJsonSchema.nullable(),
  })
  .strict();

export const SnrJsonSchema = z
  .object({
    definition: z.string(),
    edges: z.array(Num),
    values: z.array(Num),
    noSnr: Int,
    bins: z.array(SnrBinJsonSchema),
  })
  .strict();

const ExcludedCounts = z.object({ nonFiniteSamples: Int, nonFiniteTruth: Int, nonFiniteX: Int }).strict();
const ExcludedRows = z.object({ nonFiniteSamples: z.array(Int), nonFiniteTruth: z.array(Int), nonFiniteX: z.array(Int) }).strict();

export const ValidationMetricsSchema = z
  .object({
    format: z.literal(METRICS_FORMAT),
    formatVersion: z.literal(METRICS_FORMAT_VERSION),
    generator: z.string(),
    created: z.string(),
    definitions: z.record(z.string()),
    model: z.object({ dir: z.string().nullable(), parameters: z.array(z.string()), context: z.array(z.string()) }).strict(),
    library: z.object({ file: z.string(), rows: Int, selection: z.enum(['all', 'validation']), first: Int.nullable() }).strict().nullable(),
    sampling: z
      .object({
        engine: z.string().nullable(),
        samplesPerObject: Int,
        seed: Int,
        maxDrawsPerSample: Int.nullable(),
        acceptanceRate: Num,
        seconds: Num,
      })
      .strict(),
    objects: z
      .object({
        requested: Int,
        used: Int,
        excluded: ExcludedCounts,
        excludedRows: ExcludedRows,
        row: z.array(Int),
      })
      .strict(),
    parameters: z.array(ParameterResultJsonSchema),
    tarp: TarpJsonSchema.extend({
      references: z.literal('uniform'),
      box: z.object({ low: z.array(z.number()), high: z.array(z.number()) }).strict(),
    }).strict(),
    snr: SnrJsonSchema.nullable(),
    redshift: RedshiftMetricsJsonSchema.extend({ parameter: z.string() }).strict().nullable(),
    warnings: z.array(z.string()),
  })
  .strict();

export type ValidationMetrics = z.infer<typeof ValidationMetricsSchema>;
export type PointMetricsJson = z.infer<typeof PointMetricsJsonSchema>;
export type ParameterResultJson = z.infer<typeof ParameterResultJsonSchema>;
export type TarpJson = z.infer<typeof TarpJsonSchema>;

/** Validates a parsed metrics.json (throws naming the bad keys). */
export function parseValidationMetrics(v: unknown, source = METRICS_FILE): ValidationMetrics {
  const r = ValidationMetricsSchema.safeParse(v);
  if (!r.success) throw new Error(`${source}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}
