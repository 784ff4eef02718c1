/**
 * `validateModel`: a trained model folder + a held-out library -> every validation metric
 * (assemble.ts) -> `out/metrics.json` (schema.ts). Node only (reads HDF5 and the model folder).
 *
 * Steps
 *  1. Load the model (src/flow/modelFiles.ts) and open the library (src/io/library). The library's
 *     theta columns must include every model parameter and its x columns every model feature, by
 *     name (order free; extra columns are ignored with a warning); otherwise a clear error naming
 *     the missing columns.
 *  2. Objects: selection "all" (every row) or "validation" (the rows of the training run's own
 *     validation split, recomputed from the model's training summary: same library size, seed and
 *     valFraction); then the first `n` of them.
 *  3. Posterior samples (src/infer/sample.ts samplePosterior, prior-bound rejection, cap
 *     maxDrawsPerSample) in chunks of about 2^20 samples, each chunk reduced at once to per-object
 *     summaries (summary.ts), so memory stays O(N x P). Sampling is deterministic: object k of the
 *     selection is observation k of the seed's stream whatever the chunking. Objects with NaN/inf
 *     features cannot be sampled and are excluded (counted); objects that hit the cap too.
 *  4. S/N per object from the library's fluxes and errors when present (metrics.ts signalToNoise).
 *  5. assembleValidationMetrics -> ValidationMetrics; written to `<out>/metrics.json` (temp + rename).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { loadModelDir } from '../flow/modelFiles.js';
import { boundsFromParameters, samplePosterior } from '../infer/sample.js';
import { type LibraryReader, type LibraryRows, openLibrary } from '../io/library/index.js';
import { createFlowEngine, ENGINE_KINDS, type EngineOptions } from '../train/engine.js';
import { splitTrainVal } from '../train/split.js';
import { assembleValidationMetrics } from './assemble.js';
import { DEFAULT_SNR_EDGES, type SnrMode, signalToNoise } from './metrics.js';
import { METRICS_FILE, type ValidationMetrics } from './schema.js';
import { createSummaries, OBJECT_STATUS, type PosteriorSummaries, summarizeInto } from './summary.js';
import { tarpBox } from './tarp.js';

export { METRICS_FILE, METRICS_FORMAT, METRICS_FORMAT_VERSION, ValidationMetricsSchema, parseValidationMetrics, type ValidationMetrics } from './schema.js';
export { METRIC_DEFINITIONS, assembleValidationMetrics, computeValidationMetrics } from './assemble.js';

const intMin = (name: string, min: number) =>
  z.number({ invalid_type_error: `${name} must be an integer >= ${min}` }).int({ message: `${name} must be an integer >= ${min}` }).min(min, { message: `${name} must be an integer >= ${min}` });

export const ValidateOptionsSchema = z
  .object({
    /** Model folder (config.json + weights.safetensors). */
    model: z.string().min(1, 'model: a model folder is required'),
    /** Held-out library (HDF5 with theta and x). */
    library: z.string().min(1, 'library: a library file is required'),
    /** Folder for metrics.json (created); omitted: nothing is written. */
    out: z.string().min(1).optional(),
    /** Use the first n objects of the selection (default all). */
    n: intMin('n', 1).optional(),
    samplesPerObject: intMin('samplesPerObject', 2).default(1000),
    engine: z.enum(['cpu', 'gpu'], { errorMap: () => ({ message: `engine must be one of ${ENGINE_KINDS.join(', ')}` }) }).default('cpu'),
    seed: intMin('seed', 0).max(Number.MAX_SAFE_INTEGER).default(0),
    /** Rejection cap of samplePosterior. */
    maxDrawsPerSample: intMin('maxDrawsPerSample', 1).default(100),
    /** "all" rows of the library, or the model's own training "validation" split. */
    split: z.enum(['all', 'validation'], { errorMap: () => ({ message: 'split must be "all" or "validation"' }) }).default('all'),
    /** S/N per object: total | median | max | none | a band name (a column of the library's fluxes). */
    snr: z.string().min(1).default('total'),
    /** S/N bin edges, strictly ascending (default 0, 3, 5, 10, 20, 50, 100, inf). */
    snrEdges: z.array(z.number()).min(2).optional(),
    redshiftParameter: z.string().min(1).default('redshift'),
    /** Objects per sampling call (default: about 2^20 samples per call). */
    batchObjects: intMin('batchObjects', 1).optional(),
    engineOptions: z.custom<EngineOptions>((v) => v === undefined || (typeof v === 'object' && v !== null)).optional(),
    onProgress: z.custom<(done: number, total: number) => void>((v) => typeof v === 'function', 'onProgress must be a function').optional(),
    onWarning: z.custom<(message: string) => void>((v) => typeof v === 'function', 'onWarning must be a function').optional(),
  })
  .strict();
export type ValidateOptions = z.input<typeof ValidateOptionsSchema>;

export interface ValidateResult {
  metrics: ValidationMetrics;
  /** The metrics.json written, or null without `out`. */
  file: string | null;
  /** Per-object summaries (aligned with `rows`). */
  summaries: PosteriorSummaries;
  /** Library row of each object of the selection. */
  rows: Uint32Array;
}

function issues(e: z.ZodError): string {
  return e.issues.map((i) => (i.path.length && !i.message.startsWith(String(i.path[0])) ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

/** Rows of the selection, read in blocks (the selection is ascending). */
function gatherRows(r: LibraryReader, rows: Uint32Array, datasets: readonly ('theta' | 'x' | 'fluxes' | 'errors')[]): Partial<Record<'theta' | 'x' | 'fluxes' | 'errors', Float32Array>> {
  const out: Partial<Record<'theta' | 'x' | 'fluxes' | 'errors', Float32Array>> = {};
  const cols: Record<string, number> = {};
  for (const d of datasets) {
    cols[d] = r.datasets[d]!.cols;
    out[d] = new Float32Array(rows.length * cols[d]);
  }
  if (!rows.length) return out;
  const contiguous = rows[rows.length - 1] - rows[0] + 1 === rows.length;
  const block = 65536;
  const first = rows[0];
  const last = rows[rows.length - 1] + 1;
  let k = 0;
  for (let s = first; s < last && k < rows.length; s += block) {
    const e = Math.min(last, s + block);
    if (!contiguous && rows[k] >= e) continue;
    const chunk: LibraryRows = r.readRows(s, e);
    while (k < rows.length && rows[k] < e) {
      const local = rows[k] - s;
      for (const d of datasets) {
        const c = cols[d];
        out[d]!.set((chunk[d] as Float32Array).subarray(local * c, (local + 1) * c), k * c);
      }
      k++;
    }
  }
  return out;
}

/** Validates a trained model on a held-out library (see the module comment). */
export async function validateModel(options: ValidateOptions): Promise<ValidateResult> {
  const parsed = ValidateOptionsSchema.safeParse(options);
  if (!parsed.success) throw new Error(`validate: ${issues(parsed.error)}`);
  const o = parsed.data;
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    o.onWarning?.(m);
  };

  const { flow, config } = await loadModelDir(o.model);
  const pNames = config.parameters.map((p) => p.name);
  const fNames = config.context.map((c) => c.name);
  const P = pNames.length;
  const F = fNames.length;

  const wantSnr = o.snr !== 'none';
  const reader = await openLibrary(o.library, wantSnr ? ['fluxes', 'errors'] : []);
  let rows: Uint32Array;
  let data: ReturnType<typeof gatherRows>;
  let thetaIdx: number[];
  let xIdx: number[];
  let snrMode: SnrMode | null = null;
  let snrDefinition = '';
  try {
    // Columns by name.
    const miss = (want: string[], have: string[]) => want.filter((w) => !have.includes(w));
    const mt = miss(pNames, reader.thetaNames);
    if (mt.length) {
      throw new Error(
        `${o.library}: dataset theta has no column(s) ${mt.join(', ')} that the model ${o.model} infers ` +
          `(model parameters: ${pNames.join(', ')}; library theta columns: ${reader.thetaNames.join(', ')}). Validate on a library simulated for this model.`,
      );
    }
    const mx = miss(fNames, reader.xNames);
    if (mx.length) {
      throw new Error(
        `${o.library}: dataset x has no column(s) ${mx.join(', ')} that the model ${o.model} takes as features ` +
          `(model features: ${fNames.join(', ')}; library x columns: ${reader.xNames.join(', ')}). Validate on a library simulated for this model.`,
      );
    }
    const extraT = reader.thetaNames.filter((c) => !pNames.includes(c));
    const extraX = reader.xNames.filter((c) => !fNames.includes(c));
    if (extraT.length) warn(`library theta column(s) ${extraT.join(', ')} are not model parameters: ignored`);
    if (extraX.length) warn(`library x column(s) ${extraX.join(', ')} are not model features: ignored`);
    thetaIdx = pNames.map((nm) => reader.thetaNames.indexOf(nm));
    xIdx = fNames.map((nm) => reader.xNames.indexOf(nm));

    // Selection.
    const libAbs = path.resolve(o.library);
    const tr = config.training;
    if (o.split === 'validation') {
      const valFraction = (tr?.options as { valFraction?: unknown } | undefined)?.valFraction;
      if (!tr || tr.n === undefined || tr.seed === undefined || typeof valFraction !== 'number') {
        throw new Error(`split "validation": the model's config.json has no training summary with n, seed and options.valFraction, so its validation rows cannot be recomputed; use split "all" with a held-out library`);
      }
      if (tr.n !== reader.n) throw new Error(`split "validation": ${o.library} has ${reader.n} rows, but the model was trained on a library of ${tr.n} rows (${tr.library ?? 'unknown'}); pass the training library or use split "all"`);
      if (tr.library && path.resolve(tr.library) !== libAbs) warn(`split "validation": the model was trained on ${tr.library}, not on ${libAbs}; its validation rows are taken from this library by position`);
      rows = splitTrainVal(tr.n, valFraction, tr.seed).val;
    } else {
      if (tr?.library && path.resolve(tr.library) === libAbs) warn(`${o.library} is the model's training library: "all" includes the training rows (use split "validation" or a held-out library for an honest test)`);
      rows = Uint32Array.from({ length: reader.n }, (_, i) => i);
    }
    if (o.n !== undefined) {
      if (o.n > rows.length) warn(`n = ${o.n} exceeds the ${rows.length} rows of the selection: using ${rows.length}`);
      rows = rows.slice(0, Math.min(o.n, rows.length));
    }

    // S/N.
    const ds: ('theta' | 'x' | 'fluxes' | 'errors')[] = ['theta', 'x'];
    if (wantSnr) {
      const fl = reader.datasets.fluxes;
      const er = reader.datasets.errors;
      const named = !['total', 'median', 'max'].includes(o.snr);
      if (!fl || !er) {
        if (named) throw new Error(`--snr ${o.snr}: ${o.library} has no fluxes and errors datasets to take a band's S/N from`);
        warn(`${o.library} has no fluxes/errors datasets: no S/N bins`);
      } else if (fl.cols !== er.cols) {
        warn(`${o.library}: fluxes (${fl.cols} bands) and errors (${er.cols}) differ in width: no S/N bins`);
      } else {
        if (named) {
          const b = fl.columns.indexOf(o.snr);
          if (b < 0) throw new Error(`--snr ${o.snr}: no such band in ${o.library} (bands: ${fl.columns.join(', ')}; or use total, median, max, none)`);
          snrMode = { band: b };
          snrDefinition = `band ${o.snr}: f/sigma`;
        } else {
          snrMode = o.snr as 'total' | 'median' | 'max';
          snrDefinition = { total: 'total: sqrt(sum_b (f_b/sigma_b)^2)', median: 'median_b f_b/sigma_b', max: 'max_b f_b/sigma_b' }[o.snr as 'total' | 'median' | 'max'];
        }
        ds.push('fluxes', 'errors');
      }
    }
    data = gatherRows(reader, rows, ds);
  } finally {
    reader.close();
  }

  const N = rows.length;
  const M = o.samplesPerObject;
  const lt = data.theta!;
  const lx = data.x!;
  const LP = reader.thetaNames.length;
  const LF = reader.xNames.length;
  const truth = new Float64Array(N * P);
  const x = new Float64Array(N * F);
  for (let i = 0; i < N; i++) {
    for (let p = 0; p < P; p++) truth[i * P + p] = lt[i * LP + thetaIdx[p]];
    for (let f = 0; f < F; f++) x[i * F + f] = lx[i * LF + xIdx[f]];
  }
  const snr = snrMode && data.fluxes && data.errors ? signalToNoise(data.fluxes, data.errors, N, reader.datasets.fluxes!.cols, snrMode) : null;

  const summaries = createSummaries(N, P, M);
  summaries.truth.set(truth);
  for (let i = 0; i < N; i++) {
    for (let f = 0; f < F; f++) {
      if (!Number.isFinite(x[i * F + f])) {
        summaries.status[i] = OBJECT_STATUS.nonFiniteX;
        break;
      }
    }
  }
  const bounds = boundsFromParameters(config.parameters);
  const box = tarpBox(truth, N, P, bounds);

  const engine = await createFlowEngine(o.engine, flow, o.engine === 'gpu' ? (o.engineOptions ?? {}) : {});
  let accepted = 0;
  let drawn = 0;
  let capped = 0;
  const cappedRows: number[] = [];
  const tSample = performance.now();
  try {
    const chunk = o.batchObjects ?? Math.max(1, Math.floor((1 << 20) / M));
    for (let s = 0; s < N; s += chunk) {
      const e = Math.min(N, s + chunk);
      // Contiguous runs of sampleable objects (finite x), each one samplePosterior call at its global offset.
      for (let a = s; a < e; ) {
        if (summaries.status[a] !== OBJECT_STATUS.ok) {
          a++;
          continue;
        }
        let b = a;
        while (b < e && summaries.status[b] === OBJECT_STATUS.ok) b++;
        const res = await samplePosterior(engine, x.subarray(a * F, b * F), b - a, M, {
          seed: o.seed,
          bounds,
          maxDrawsPerSample: o.maxDrawsPerSample,
          obsOffset: a,
          onWarning: () => {},
        });
        for (let k = 0; k < b - a; k++) {
          accepted += res.accepted[k];
          drawn += res.draws[k];
        }
        capped += res.capped.length;
        for (const c of res.capped) if (cappedRows.length < 5) cappedRows.push(rows[a + c]);
        summarizeInto(summaries, a, truth.subarray(a * P, b * P), res.theta, b - a, { seed: o.seed, box });
        a = b;
      }
      o.onProgress?.(e, N);
    }
  } finally {
    await engine.dispose();
  }
  const tEnd = performance.now();
  if (capped) {
    warn(
      `${capped} of ${N} objects hit the cap of ${o.maxDrawsPerSample} draws per sample before ${M} samples fell inside the prior bounds ` +
        `(rows ${cappedRows.join(', ')}${capped > cappedRows.length ? ', ...' : ''}): excluded from the metrics`,
    );
  }
  let nonFiniteX = 0;
  for (let i = 0; i < N; i++) if (summaries.status[i] === OBJECT_STATUS.nonFiniteX) nonFiniteX++;
  if (nonFiniteX) warn(`${nonFiniteX} of ${N} objects have NaN/inf features x and cannot be sampled: excluded from the metrics`);

  const metrics = assembleValidationMetrics(summaries, {
    parameters: config.parameters.map((p) => ({ name: p.name, unit: p.unit, low: p.low, high: p.high })),
    box,
    rows,
    snr,
    snrDefinition,
    snrEdges: o.snrEdges ?? DEFAULT_SNR_EDGES,
    redshiftParameter: o.redshiftParameter,
    model: { dir: path.resolve(o.model), parameters: pNames, context: fNames },
    library: { file: path.resolve(o.library), rows: reader.n, selection: o.split, first: o.n ?? null },
    sampling: {
      engine: o.engine,
      seed: o.seed,
      maxDrawsPerSample: o.maxDrawsPerSample,
      acceptanceRate: drawn > 0 ? accepted / drawn : null,
      seconds: (tEnd - tSample) / 1000,
    },
    requested: N,
    warnings,
  });

  let file: string | null = null;
  if (o.out) file = await writeMetricsJson(o.out, metrics);
  return { metrics, file, summaries, rows };
}

/** Writes `<dir>/metrics.json` (temporary file + rename); returns its path. */
export async function writeMetricsJson(dir: string, metrics: ValidationMetrics): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, METRICS_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(metrics) + '\n');
  await rename(tmp, file);
  return file;
}

const fmt = (v: number | null | undefined, digits = 3): string => (v === null || v === undefined ? '-' : Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : v.toFixed(digits));
const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : `${(100 * v).toFixed(1)}%`);

/** A short text table: per parameter R^2, RMSE, bias, outliers, coverage at 68/95 %, 1-D TARP ATC, rank p; joint TARP; redshift. */
export function formatValidationTable(m: ValidationMetrics): string {
  const head = ['parameter', 'n', 'R2', 'RMSE', 'bias', 'outl', 'cov68', 'cov95', 'TARP ATC', 'rank p'];
  const rows: string[][] = m.parameters.map((p) => [
    p.name,
    String(p.metrics.n),
    fmt(p.metrics.r2),
    fmt(p.metrics.rmse),
    fmt(p.metrics.bias),
    pct(p.metrics.outlierFraction),
    pct(p.metrics.coverage68),
    pct(p.metrics.coverage95),
    fmt(p.tarp.atc, 2),
    fmt(p.ranks.pValue, 3),
  ]);
  rows.push(['joint (TARP)', String(m.tarp.n), '', '', '', '', '', '', fmt(m.tarp.atc, 2), `KS p ${fmt(m.tarp.ks.pValue, 3)}`]);
  const w = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c === 0 ? v.padEnd(w[c]) : v.padStart(w[c]))).join('  ');
  const out = [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)];
  if (m.redshift) out.push(`redshift (${m.redshift.parameter}): NMAD ${fmt(m.redshift.nmad, 4)}, outliers |dz|/(1+z) > ${m.redshift.outlierThreshold}: ${pct(m.redshift.outlierFraction)}`);
  const ex = m.objects.excluded;
  out.push(
    `objects: ${m.objects.used} used of ${m.objects.requested}` +
      (ex.nonFiniteSamples + ex.nonFiniteTruth + ex.nonFiniteX ? ` (excluded: ${ex.nonFiniteSamples} hit the sampling cap, ${ex.nonFiniteTruth} non-finite truth, ${ex.nonFiniteX} non-finite features)` : '') +
      `; ${m.sampling.samplesPerObject} samples each`,
  );
  return out.join('\n') + '\n';
}
