/**
 * Point-estimate accuracy metrics of posterior summaries against the truth (float64). The point
 * estimate is the posterior median; sigma_post = (p84 - p16) / 2 is the half-width of the central
 * 68 % interval (= sigma for a Gaussian posterior, robust to tails). Pairs with a NaN anywhere are
 * skipped; `n` says how many were used; a metric that is undefined (no pairs, zero variance) is NaN.
 *
 *   r2              coefficient of determination 1 - sum (m - t)^2 / sum (t - mean t)^2
 *                   (scikit-learn's r2_score; 1 = perfect, 0 = no better than the mean truth)
 *   rmse            sqrt(mean (m - t)^2)
 *   bias            mean (m - t)
 *   normalizedBias  bias / sd(t) (population sd of the truths): the bias in units of the spread of
 *                   the test set, comparable across parameters
 *   meanPull        mean (m - t) / sigma_post over objects with sigma_post > 0: the bias in units of
 *                   the posterior width (~0 for an unbiased calibrated posterior)
 *   outlierFraction fraction with |m - t| > 3 sigma_post (a 3-sigma miss: for a calibrated Gaussian
 *                   posterior t - m ~ N(0, sigma_post^2), so the expected fraction is 0.27 %; heavy
 *                   tails, bias or over-confidence raise it); sigma_post = 0 counts as an outlier
 *                   when m != t
 *
 * Redshift (photometric-redshift conventions; dz = z_median - z_true):
 *   nmad            1.48 x median(|dz - median(dz)| / (1 + z_true)) (the normalised median absolute
 *                   deviation, e.g. Brammer, van Dokkum & Coppi 2008, ApJ 686, 1503)
 *   outlierFraction fraction with |dz| / (1 + z_true) > 0.15 (catastrophic outliers, e.g.
 *                   Hildebrandt et al. 2010, A&A 523, A31)
 *   bias            median(dz / (1 + z_true))
 *
 * Signal to noise of an object from its noiseless band fluxes f_b and errors sigma_b (library
 * datasets `fluxes`, `errors`), bands with a finite f_b and sigma_b > 0 only:
 *   total   sqrt(sum_b (f_b / sigma_b)^2)  (the S/N of the optimally weighted sum of the bands)
 *   median  median_b f_b / sigma_b
 *   max     max_b f_b / sigma_b
 *   band    f_b / sigma_b of one named band
 */

export interface PointMetrics {
  n: number;
  r2: number;
  rmse: number;
  bias: number;
  normalizedBias: number;
  meanPull: number;
  outlierFraction: number;
}

export interface RedshiftMetrics {
  n: number;
  nmad: number;
  outlierFraction: number;
  bias: number;
  /** |dz| / (1 + z) above which an object is an outlier (0.15). */
  outlierThreshold: number;
}

export const REDSHIFT_OUTLIER_THRESHOLD = 0.15;
/** sigma_post multiples beyond which |median - truth| is an outlier. */
export const OUTLIER_SIGMA = 3;

function finitePairs(a: ArrayLike<number>, b: ArrayLike<number>): [Float64Array, Float64Array] {
  if (a.length !== b.length) throw new RangeError(`metrics: ${a.length} truths but ${b.length} estimates`);
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) || Number.isNaN(b[i])) continue;
    x.push(a[i]);
    y.push(b[i]);
  }
  return [Float64Array.from(x), Float64Array.from(y)];
}

function mean(v: ArrayLike<number>): number {
  if (!v.length) return NaN;
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s / v.length;
}

/** Coefficient of determination of `pred` for `truth` (NaN if fewer than 2 pairs or the truths are constant). */
export function r2Score(truth: ArrayLike<number>, pred: ArrayLike<number>): number {
  const [t, m] = finitePairs(truth, pred);
  if (t.length < 2) return NaN;
  const mt = mean(t);
  let ssRes = 0;
  let ssTot = 0;
  for (let i = 0; i < t.length; i++) {
    ssRes += (m[i] - t[i]) ** 2;
    ssTot += (t[i] - mt) ** 2;
  }
  return ssTot > 0 ? 1 - ssRes / ssTot : NaN;
}

export function rmse(truth: ArrayLike<number>, pred: ArrayLike<number>): number {
  const [t, m] = finitePairs(truth, pred);
  let s = 0;
  for (let i = 0; i < t.length; i++) s += (m[i] - t[i]) ** 2;
  return t.length ? Math.sqrt(s / t.length) : NaN;
}

export function meanBias(truth: ArrayLike<number>, pred: ArrayLike<number>): number {
  const [t, m] = finitePairs(truth, pred);
  let s = 0;
  for (let i = 0; i < t.length; i++) s += m[i] - t[i];
  return t.length ? s / t.length : NaN;
}

/** bias / population sd of the truths. */
export function normalizedBias(truth: ArrayLike<number>, pred: ArrayLike<number>): number {
  const [t, m] = finitePairs(truth, pred);
  if (!t.length) return NaN;
  const mt = mean(t);
  let v = 0;
  let b = 0;
  for (let i = 0; i < t.length; i++) {
    v += (t[i] - mt) ** 2;
    b += m[i] - t[i];
  }
  const sd = Math.sqrt(v / t.length);
  return sd > 0 ? b / t.length / sd : NaN;
}

function pullInputs(truth: ArrayLike<number>, med: ArrayLike<number>, p16: ArrayLike<number>, p84: ArrayLike<number>): { t: number; m: number; s: number }[] {
  if (truth.length !== med.length || truth.length !== p16.length || truth.length !== p84.length) throw new RangeError('metrics: truth, median, p16 and p84 must have the same length');
  const out: { t: number; m: number; s: number }[] = [];
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i];
    const m = med[i];
    const s = (p84[i] - p16[i]) / 2;
    if (Number.isNaN(t) || Number.isNaN(m) || Number.isNaN(s)) continue;
    out.push({ t, m, s });
  }
  return out;
}

/** mean (median - truth) / sigma_post over objects with sigma_post > 0. */
export function meanPull(truth: ArrayLike<number>, med: ArrayLike<number>, p16: ArrayLike<number>, p84: ArrayLike<number>): number {
  let s = 0;
  let n = 0;
  for (const o of pullInputs(truth, med, p16, p84)) {
    if (!(o.s > 0)) continue;
    s += (o.m - o.t) / o.s;
    n++;
  }
  return n ? s / n : NaN;
}

/** Fraction with |median - truth| > k sigma_post (k = 3). */
export function outlierFraction(truth: ArrayLike<number>, med: ArrayLike<number>, p16: ArrayLike<number>, p84: ArrayLike<number>, k = OUTLIER_SIGMA): number {
  const v = pullInputs(truth, med, p16, p84);
  let c = 0;
  for (const o of v) if (Math.abs(o.m - o.t) > k * o.s) c++;
  return v.length ? c / v.length : NaN;
}

/** All point metrics of one parameter. */
export function pointMetrics(truth: ArrayLike<number>, med: ArrayLike<number>, p16: ArrayLike<number>, p84: ArrayLike<number>): PointMetrics {
  return {
    n: pullInputs(truth, med, p16, p84).length,
    r2: r2Score(truth, med),
    rmse: rmse(truth, med),
    bias: meanBias(truth, med),
    normalizedBias: normalizedBias(truth, med),
    meanPull: meanPull(truth, med, p16, p84),
    outlierFraction: outlierFraction(truth, med, p16, p84),
  };
}

function medianOf(v: number[]): number {
  if (!v.length) return NaN;
  const s = Float64Array.from(v).sort();
  const h = (s.length - 1) / 2;
  const a = Math.floor(h);
  return s[a] + (h - a) * (s[Math.min(s.length - 1, a + 1)] - s[a]);
}

/** NMAD, outlier fraction and median bias of photometric redshifts (see the module comment). */
export function redshiftMetrics(zTrue: ArrayLike<number>, zPred: ArrayLike<number>, threshold = REDSHIFT_OUTLIER_THRESHOLD): RedshiftMetrics {
  const [t, m] = finitePairs(zTrue, zPred);
  const dz: number[] = [];
  const onePlusZ: number[] = [];
  for (let i = 0; i < t.length; i++) {
    if (!(1 + t[i] > 0)) continue; // z <= -1 is not a redshift
    dz.push(m[i] - t[i]);
    onePlusZ.push(1 + t[i]);
  }
  const n = dz.length;
  if (!n) return { n: 0, nmad: NaN, outlierFraction: NaN, bias: NaN, outlierThreshold: threshold };
  const mdz = medianOf(dz);
  const dev = dz.map((d, i) => Math.abs(d - mdz) / onePlusZ[i]);
  const norm = dz.map((d, i) => d / onePlusZ[i]);
  let out = 0;
  for (const v of norm) if (Math.abs(v) > threshold) out++;
  return { n, nmad: 1.48 * medianOf(dev), outlierFraction: out / n, bias: medianOf(norm), outlierThreshold: threshold };
}

export type SnrMode = 'total' | 'median' | 'max' | { band: number };

/** Per-object S/N (n values, NaN where no band qualifies) from fluxes and errors (n x B each). */
export function signalToNoise(fluxes: ArrayLike<number>, errors: ArrayLike<number>, n: number, B: number, mode: SnrMode = 'total'): Float64Array {
  if (fluxes.length !== n * B || errors.length !== n * B) throw new RangeError(`S/N: fluxes/errors have ${fluxes.length}/${errors.length} values, expected ${n} x ${B}`);
  if (typeof mode === 'object' && !(Number.isInteger(mode.band) && mode.band >= 0 && mode.band < B)) throw new RangeError(`S/N: band index ${mode.band} outside [0, ${B})`);
  const out = new Float64Array(n).fill(NaN);
  const v: number[] = [];
  for (let i = 0; i < n; i++) {
    v.length = 0;
    for (let b = 0; b < B; b++) {
      if (typeof mode === 'object' && b !== mode.band) continue;
      const f = fluxes[i * B + b];
      const e = errors[i * B + b];
      if (Number.isFinite(f) && Number.isFinite(e) && e > 0) v.push(f / e);
    }
    if (!v.length) continue;
    if (mode === 'total') out[i] = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    else if (mode === 'median') out[i] = medianOf(v);
    else if (mode === 'max') out[i] = Math.max(...v);
    else out[i] = v[0];
  }
  return out;
}

/** Default S/N bin edges (the last bin is open: [100, inf)). */
export const DEFAULT_SNR_EDGES: readonly number[] = [0, 3, 5, 10, 20, 50, 100, Infinity];

/** Bin of each value for ascending edges (bin b = [edges[b], edges[b+1])); -1 outside or NaN. */
export function binIndex(values: ArrayLike<number>, edges: readonly number[]): Int32Array {
  for (let b = 1; b < edges.length; b++) if (!(edges[b] > edges[b - 1])) throw new RangeError(`S/N bin edges must be strictly ascending, got ${edges.join(', ')}`);
  const out = new Int32Array(values.length).fill(-1);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v)) continue;
    for (let b = 0; b + 1 < edges.length; b++) {
      if (v >= edges[b] && v < edges[b + 1]) {
        out[i] = b;
        break;
      }
    }
  }
  return out;
}
