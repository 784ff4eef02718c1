/**
 * Builds the metrics.json object (schema.ts) from per-object posterior summaries (summary.ts):
 * point metrics, coverage curves, rank histograms, 1-D and joint TARP, S/N bins, redshift metrics.
 * Pure and browser-safe (no Node imports): validate.ts calls it after sampling a library;
 * `computeValidationMetrics` runs it straight on truth + samples.
 */
import { type CoverageCurve, coverageAt, coverageCurve, DEFAULT_COVERAGE_LEVELS } from './coverage.js';
import { binIndex, DEFAULT_SNR_EDGES, OUTLIER_SIGMA, pointMetrics, REDSHIFT_OUTLIER_THRESHOLD, type RedshiftMetrics, redshiftMetrics } from './metrics.js';
import { rankHistogram, type RankHistogram } from './ranks.js';
import {
  METRICS_FORMAT,
  METRICS_FORMAT_VERSION,
  type PointMetricsJson,
  type TarpJson,
  type ValidationMetrics,
  ValidationMetricsSchema,
} from './schema.js';
import { OBJECT_STATUS, type PosteriorCube, type PosteriorSummaries, type TarpBox, summarizePosteriors } from './summary.js';
import { tarpBox, tarpCurve, type TarpCurve } from './tarp.js';

/** What every field of metrics.json means (written into the file). */
export const METRIC_DEFINITIONS: Record<string, string> = {
  pointEstimate: 'posterior median of each parameter; sigma_post = (p84 - p16) / 2, p16/p84 the 16th/84th percentiles of the samples (numpy linear quantiles)',
  r2: 'coefficient of determination 1 - sum (median - truth)^2 / sum (truth - mean truth)^2 (sklearn r2_score)',
  rmse: 'sqrt(mean (median - truth)^2)',
  bias: 'mean (median - truth)',
  normalizedBias: 'bias / sd(truth) (population sd of the test-set truths)',
  meanPull: 'mean (median - truth) / sigma_post over objects with sigma_post > 0',
  outlierFraction: `fraction of objects with |median - truth| > ${OUTLIER_SIGMA} sigma_post (0.27 % expected for a calibrated Gaussian posterior)`,
  coverage:
    'empirical coverage: fraction of objects whose truth lies in the central credible interval [Q((1-a)/2), Q((1+a)/2)] of its samples, per nominal level a; lower/upper: central 95 % band of Bin(n, a)/n, where a calibrated posterior falls; meanDeviation = mean(empirical - a) (< 0: over-confident or biased, > 0: under-confident)',
  coverage68: 'empirical coverage of the central 68 % interval',
  coverage95: 'empirical coverage of the central 95 % interval',
  ranks:
    'SBC ranks (Talts et al. 2018): rank = #{samples < truth} in 0..M, uniform for a calibrated posterior; histogram over bins of the M+1 rank values (edges in normalised rank units), expected counts, Pearson chi-square with bins-1 dof and its p-value',
  tarp:
    'TARP (Lemos et al. 2023): reference r ~ U(box) per object, credibility f = (#{samples closer to r than the truth} + 1/2) / (M + 1) in box-standardised units, ecp(alpha) = fraction with f <= alpha (= alpha when calibrated); atc = sum over alpha >= 0.5 grid points of ecp - alpha (sbi check_tarp; > 0 too wide, < 0 too narrow or biased); ks = one-sample KS of f against U(0, 1). parameters[].tarp: the same in one dimension per parameter; tarp: joint over all parameters',
  tarpBox: 'the standardisation box: prior bounds where the model has them, else the range of the test-set truths',
  redshift: `for the redshift parameter, dz = median - truth: nmad = 1.48 median(|dz - median(dz)| / (1 + z_true)); outlierFraction = fraction with |dz| / (1 + z_true) > ${REDSHIFT_OUTLIER_THRESHOLD}; bias = median(dz / (1 + z_true))`,
  snr: 'per-object S/N from the library fluxes (noiseless) and errors: total = sqrt(sum_b (f_b/sigma_b)^2), median / max over bands, or one band; bins [low, high), metrics per bin',
  excluded:
    'objects left out of every metric: nonFiniteSamples (posterior sampling hit the rejection cap: some samples NaN), nonFiniteTruth (NaN/inf theta), nonFiniteX (NaN/inf features: cannot be sampled)',
  objects: 'per-parameter arrays aligned with objects.row (library rows of the objects used), 7 significant digits',
};

const num = (v: number): number | null => (Number.isFinite(v) ? v : null);
const r7 = (v: number): number | null => (Number.isFinite(v) ? Number(v.toPrecision(7)) : null);

function column(a: ArrayLike<number>, P: number, p: number, idx: readonly number[]): Float64Array {
  const out = new Float64Array(idx.length);
  idx.forEach((i, k) => (out[k] = a[i * P + p]));
  return out;
}

function tarpJson(c: TarpCurve): TarpJson {
  return {
    n: c.n,
    alpha: c.alpha,
    ecp: c.ecp.map(num),
    lower: c.lower.map(num),
    upper: c.upper.map(num),
    confidence: c.confidence,
    atc: num(c.atc),
    ks: { statistic: num(c.ks.statistic), pValue: num(c.ks.pValue) },
  };
}

function coverageJson(c: CoverageCurve) {
  return {
    levels: c.levels,
    empirical: c.empirical.map(num),
    lower: c.lower.map(num),
    upper: c.upper.map(num),
    confidence: c.confidence,
    n: c.n,
    meanDeviation: num(c.meanDeviation),
    maxAbsDeviation: num(c.maxAbsDeviation),
  };
}

function ranksJson(r: RankHistogram) {
  return { samplesPerObject: r.samplesPerObject, bins: r.bins, edges: r.edges, counts: r.counts, expected: r.expected, n: r.n, chi2: num(r.chi2), dof: r.dof, pValue: num(r.pValue) };
}

function redshiftJson(r: RedshiftMetrics) {
  return { n: r.n, nmad: num(r.nmad), outlierFraction: num(r.outlierFraction), bias: num(r.bias), outlierThreshold: r.outlierThreshold };
}

function pointJson(s: PosteriorSummaries, p: number, idx: readonly number[]): PointMetricsJson {
  const P = s.P;
  const m = pointMetrics(column(s.truth, P, p, idx), column(s.median, P, p, idx), column(s.p16, P, p, idx), column(s.p84, P, p, idx));
  const lv = column(s.level, P, p, idx);
  return {
    n: m.n,
    r2: num(m.r2),
    rmse: num(m.rmse),
    bias: num(m.bias),
    normalizedBias: num(m.normalizedBias),
    meanPull: num(m.meanPull),
    outlierFraction: num(m.outlierFraction),
    coverage68: num(coverageAt(lv, 0.68)),
    coverage95: num(coverageAt(lv, 0.95)),
  };
}

export interface ParameterDescription {
  name: string;
  unit?: string;
  low?: number | null;
  high?: number | null;
}

export interface AssembleOptions {
  parameters: ParameterDescription[];
  /** TARP box used in the summaries. */
  box: TarpBox;
  /** Library row (or any id number) of each object (default: its index). */
  rows?: ArrayLike<number>;
  /** Per-object S/N (length N; NaN = none), or null for no S/N bins. */
  snr?: ArrayLike<number> | null;
  snrDefinition?: string;
  snrEdges?: readonly number[];
  /** Name of the redshift parameter (default "redshift"); absent from the parameters: no redshift metrics. */
  redshiftParameter?: string;
  coverageLevels?: readonly number[];
  rankBins?: number;
  model?: ValidationMetrics['model'];
  library?: ValidationMetrics['library'];
  sampling?: Partial<ValidationMetrics['sampling']>;
  /** Objects requested (default N). */
  requested?: number;
  warnings?: string[];
  created?: string;
}

/** metrics.json from summaries (validated against the schema). */
export function assembleValidationMetrics(s: PosteriorSummaries, o: AssembleOptions): ValidationMetrics {
  const { n, P, M } = s;
  if (o.parameters.length !== P) throw new RangeError(`validation: ${o.parameters.length} parameter names for ${P} parameters`);
  const rowOf = (i: number) => (o.rows ? o.rows[i] : i);
  const idx: number[] = [];
  const excludedRows = { nonFiniteSamples: [] as number[], nonFiniteTruth: [] as number[], nonFiniteX: [] as number[] };
  for (let i = 0; i < n; i++) {
    switch (s.status[i]) {
      case OBJECT_STATUS.ok:
        idx.push(i);
        break;
      case OBJECT_STATUS.nonFiniteSamples:
        excludedRows.nonFiniteSamples.push(rowOf(i));
        break;
      case OBJECT_STATUS.nonFiniteTruth:
        excludedRows.nonFiniteTruth.push(rowOf(i));
        break;
      default:
        excludedRows.nonFiniteX.push(rowOf(i));
    }
  }
  const zName = o.redshiftParameter ?? 'redshift';
  const zp = o.parameters.findIndex((q) => q.name === zName);
  const levels = o.coverageLevels ?? DEFAULT_COVERAGE_LEVELS;

  const parameters = o.parameters.map((q, p) => {
    const truth = column(s.truth, P, p, idx);
    const med = column(s.median, P, p, idx);
    const rank = Array.from(column(s.rank, P, p, idx));
    const cov = coverageCurve(column(s.level, P, p, idx), levels);
    return {
      name: q.name,
      unit: q.unit ?? '',
      low: q.low ?? null,
      high: q.high ?? null,
      metrics: pointJson(s, p, idx),
      coverage: coverageJson(cov),
      ranks: ranksJson(rankHistogram(rank, M, o.rankBins)),
      tarp: tarpJson(tarpCurve(column(s.tarpMarginal, P, p, idx))),
      redshift: p === zp ? redshiftJson(redshiftMetrics(truth, med)) : null,
      objects: {
        truth: Array.from(truth, r7),
        median: Array.from(med, r7),
        p16: Array.from(column(s.p16, P, p, idx), r7),
        p84: Array.from(column(s.p84, P, p, idx), r7),
        rank,
      },
    };
  });

  const joint = tarpCurve(idx.map((i) => s.tarp[i]));

  let snr: ValidationMetrics['snr'] = null;
  if (o.snr) {
    if (o.snr.length !== n) throw new RangeError(`validation: ${o.snr.length} S/N values for ${n} objects`);
    const edges = o.snrEdges ?? DEFAULT_SNR_EDGES;
    const values = idx.map((i) => o.snr![i]);
    const bin = binIndex(values, edges);
    let noSnr = 0;
    for (const v of values) if (!Number.isFinite(v)) noSnr++;
    const bins = [];
    for (let b = 0; b + 1 < edges.length; b++) {
      const sub: number[] = [];
      bin.forEach((bb, k) => {
        if (bb === b) sub.push(idx[k]);
      });
      const perParam: Record<string, PointMetricsJson> = {};
      o.parameters.forEach((q, p) => (perParam[q.name] = pointJson(s, p, sub)));
      bins.push({
        low: edges[b],
        high: num(edges[b + 1]),
        n: sub.length,
        parameters: perParam,
        redshift: zp >= 0 ? redshiftJson(redshiftMetrics(column(s.truth, P, zp, sub), column(s.median, P, zp, sub))) : null,
      });
    }
    snr = { definition: o.snrDefinition ?? 'given', edges: edges.map(num), values: values.map(r7), noSnr, bins };
  }

  const metrics: ValidationMetrics = {
    format: METRICS_FORMAT,
    formatVersion: METRICS_FORMAT_VERSION,
    generator: 'synference-webgpu',
    created: o.created ?? new Date().toISOString(),
    definitions: METRIC_DEFINITIONS,
    model: o.model ?? { dir: null, parameters: o.parameters.map((q) => q.name), context: [] },
    library: o.library ?? null,
    sampling: {
      engine: o.sampling?.engine ?? null,
      samplesPerObject: M,
      seed: o.sampling?.seed ?? 0,
      maxDrawsPerSample: o.sampling?.maxDrawsPerSample ?? null,
      acceptanceRate: o.sampling?.acceptanceRate ?? null,
      seconds: o.sampling?.seconds ?? null,
    },
    objects: {
      requested: o.requested ?? n,
      used: idx.length,
      excluded: { nonFiniteSamples: excludedRows.nonFiniteSamples.length, nonFiniteTruth: excludedRows.nonFiniteTruth.length, nonFiniteX: excludedRows.nonFiniteX.length },
      excludedRows,
      row: idx.map(rowOf),
    },
    parameters,
    tarp: { ...tarpJson(joint), references: 'uniform', box: { low: Array.from(o.box.low), high: Array.from(o.box.high) } },
    snr,
    redshift: zp >= 0 ? { parameter: zName, ...parameters[zp].redshift! } : null,
    warnings: o.warnings ?? [],
  };
  const r = ValidationMetricsSchema.safeParse(metrics);
  if (!r.success) throw new Error(`validation metrics do not match their schema (a bug): ${r.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return metrics;
}

export interface ComputeMetricsOptions {
  /** Parameter names (default theta_0, ...), units and prior bounds (the TARP box). */
  parameters?: ParameterDescription[];
  seed?: number;
  snr?: ArrayLike<number> | null;
  snrEdges?: readonly number[];
  redshiftParameter?: string;
  coverageLevels?: readonly number[];
  rankBins?: number;
}

/**
 * Every validation metric straight from true theta (N x P) and posterior samples (N x M x P):
 * objects with NaN samples (sampling hit the cap) or non-finite truth are excluded and counted.
 */
export function computeValidationMetrics(truth: ArrayLike<number>, cube: PosteriorCube, o: ComputeMetricsOptions = {}): { metrics: ValidationMetrics; summaries: PosteriorSummaries } {
  const params: ParameterDescription[] = o.parameters ?? Array.from({ length: cube.p }, (_, p) => ({ name: `theta_${p}` }));
  if (params.length !== cube.p) throw new RangeError(`validation: ${params.length} parameters described for samples of ${cube.p}`);
  const box = tarpBox(truth, cube.n, cube.p, { low: params.map((q) => q.low ?? null), high: params.map((q) => q.high ?? null) });
  const summaries = summarizePosteriors(truth, cube, { seed: o.seed, box });
  const metrics = assembleValidationMetrics(summaries, {
    parameters: params,
    box,
    snr: o.snr,
    snrEdges: o.snrEdges,
    redshiftParameter: o.redshiftParameter,
    coverageLevels: o.coverageLevels,
    rankBins: o.rankBins,
    sampling: { seed: o.seed ?? 0 },
  });
  return { metrics, summaries };
}
