/**
 * Plots of the validation and the fits, as Vega-Lite specs rendered to SVG strings in Node (vega's
 * headless View, renderer 'none'); the same specs render in a browser. Every function takes plain
 * typed arrays (not any file format) and skips non-finite values (NaN, ±Infinity) point by point,
 * so a missing number is never drawn as zero.
 *
 * Mark names (for tests and for anyone post-processing the SVG): each layer has a `name`, which vega
 * writes into the mark group's class as `<name>_marks` (e.g. `<g class="mark-symbol role-mark
 * points_marks">`), one child element per drawn datum (one per series for lines and areas).
 *
 *   trueVsPredicted  identity (line), errorbars (rule, one per point with finite p16/p84), points
 *   coverageCurve    band (area, optional), diagonal (line), coverage (line, one per parameter)
 *   tarpCurve        band (area, optional), diagonal (line), tarp (line)
 *   rankHistogram    band (rect), expected (rule), bars (rect, one per bin)
 *   corner           hist_<i> (rect per bin), density_<r>_<c> (rect per non-empty 2-D bin) or
 *                    scatter_<r>_<c> (point per draw), truth_<i>, truthx_<r>_<c>, truthy_<r>_<c>,
 *                    truthpt_<r>_<c> (rules / point, when truth is given), blank_<r>_<c> (upper triangle)
 *   sedPlot          sed_band (area), sed_median (line), truth_sed (line), model_errors (rule),
 *                    model_bands (point), obs_errors (rule), obs_points (point)
 *   sfhPlot          sfh_band (area), sfh_median (line), sfh_truth (line)
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';

type Json = Record<string, unknown>;
type Num = ArrayLike<number>;

/** Common size and title options. */
export interface PlotOptions {
  /** Plot area width [px] (per cell for the corner plot). */
  width?: number;
  /** Plot area height [px]. */
  height?: number;
  title?: string;
  subtitle?: string;
}

export const PLOT_COLORS = {
  primary: '#1f5fa8',
  secondary: '#d9480f',
  band: '#8fb3de',
  reference: '#777777',
  truth: '#c92a2a',
  observed: '#111111',
} as const;

const BASE_CONFIG: Json = {
  font: 'Helvetica, Arial, sans-serif',
  background: 'white',
  padding: 8,
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#ececec', tickColor: '#888', domainColor: '#888' },
  legend: { labelFontSize: 11, titleFontSize: 11, orient: 'bottom-right', fillColor: 'rgba(255,255,255,0.85)', padding: 4, strokeColor: '#ccc' },
  title: { fontSize: 13, fontWeight: 'bold', anchor: 'start', subtitleFontSize: 11, subtitleColor: '#555', offset: 10 },
  view: { stroke: '#888' },
};

/** Helvetica advance widths (AFM, 1/1000 em) of ASCII 32..126; other characters count 556. */
const HELVETICA_WIDTHS = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722,
  778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/** Text width [px] in Helvetica / Arial metrics (bold ~7 % wider). */
export function helveticaTextWidth(text: string, fontSizePx: number, bold = false): number {
  let w = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    w += c >= 32 && c <= 126 ? HELVETICA_WIDTHS[c - 32] : 556;
  }
  // +6 %: room for the sans-serif that replaces Helvetica where it is missing (DejaVu Sans, wider).
  return (w / 1000) * fontSizePx * (bold ? 1.07 : 1) * 1.06;
}

// Without a canvas, vega estimates every character as 0.8 em wide, which leaves wide margins
// around long axis titles; font metrics give layouts that fit (vl-convert overrides it the same way).
{
  const tm = (vega as unknown as { textMetrics?: { width: unknown; estimateWidth: unknown } }).textMetrics;
  if (tm && tm.width === tm.estimateWidth) {
    tm.width = (item: { text?: unknown; fontSize?: number; fontWeight?: unknown; limit?: number }, text?: unknown) => {
      const t = (text ?? item.text ?? '') + '';
      const size = item.fontSize != null ? +item.fontSize || 0 : 11;
      const bold = item.fontWeight === 'bold' || Number(item.fontWeight) >= 600;
      return helveticaTextWidth(t.trim(), size, bold);
    };
  }
}

/** Compiles a Vega-Lite spec and renders it to an SVG string (headless). */
export async function renderVegaLite(spec: Json): Promise<string> {
  const top = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', ...spec, config: { ...BASE_CONFIG, ...((spec.config as Json | undefined) ?? {}) } };
  const compiled = vl.compile(top as unknown as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return compactSvgNumbers(await view.toSVG());
  } finally {
    view.finalize();
  }
}

/**
 * Rounds the long decimals vega writes in attributes (coordinates like 73.28243506259777, opacities
 * like 0.36000000000000004) to 2 decimals: 1/100 px is invisible and a scatter plot shrinks by
 * ~40 %. Text content (tick labels, titles) is left as it is.
 */
export function compactSvgNumbers(svg: string): string {
  return svg.replace(/="([^"]*)"/g, (m, v: string) => (/\d\.\d{3}/.test(v) ? `="${v.replace(/(\d\.\d\d)\d+/g, '$1')}"` : m));
}

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/** "name [unit]" (just the name for dimensionless quantities). */
export function axisLabel(name: string, unit?: string): string {
  return unit ? `${name} [${unit}]` : name;
}

/** Max / min of the finite values (no argument spreading: arrays may be long); -Infinity / Infinity when none. */
function maxOf(values: Iterable<number>): number {
  let m = -Infinity;
  for (const v of values) if (Number.isFinite(v) && v > m) m = v;
  return m;
}
function minOf(values: Iterable<number>): number {
  let m = Infinity;
  for (const v of values) if (Number.isFinite(v) && v < m) m = v;
  return m;
}

function titleOf(o: PlotOptions, fallback?: string): Json | undefined {
  const text = o.title ?? fallback;
  if (!text && !o.subtitle) return undefined;
  return o.subtitle ? { text: text ?? '', subtitle: o.subtitle } : { text };
}

function withTitle(spec: Json, o: PlotOptions, fallback?: string): Json {
  const t = titleOf(o, fallback);
  return t ? { title: t, ...spec } : spec;
}

/** Indices 0..n-1 at which every given array is finite. */
function finiteRows(n: number, ...arrays: (Num | undefined)[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (arrays.every((a) => !a || Number.isFinite(a[i]))) out.push(i);
  return out;
}

/** At most `max` of the given indices, evenly strided (deterministic). */
export function subsampleIndices(idx: readonly number[], max: number): number[] {
  if (idx.length <= max) return [...idx];
  const out: number[] = [];
  for (let k = 0; k < max; k++) out.push(idx[Math.floor((k * idx.length) / max)]);
  return out;
}

/** [min, max] of the finite values of the arrays, padded by `pad` of the span (a tiny span widened). */
function paddedRange(values: Iterable<number>, pad = 0.04): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi >= lo)) return null;
  let span = hi - lo;
  if (!(span > 0)) span = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
  return [lo - pad * span, hi + pad * span];
}

function checkLength(what: string, a: Num | undefined, n: number): void {
  if (a && a.length !== n) throw new RangeError(`${what} has ${a.length} values, expected ${n}`);
}

const q = (field: string, title?: string | null, extra: Json = {}): Json => ({ field, type: 'quantitative', ...(title !== undefined ? { title } : {}), ...extra });

// ---------------------------------------------------------------------------------------------
// true vs predicted
// ---------------------------------------------------------------------------------------------

export interface TrueVsPredictedOptions extends PlotOptions {
  /** Points drawn at most (evenly strided subsample of the finite ones); default 1000 (~250 kB of SVG with error bars). */
  maxPoints?: number;
  /** Marker opacity; default from the number of points (0.8 for a few, 0.15 for thousands). */
  opacity?: number;
}

/**
 * Posterior median against the true value, one point per test galaxy, with the 16-84 % interval as a
 * vertical error bar and the 1:1 line. Galaxies with a non-finite truth or median are skipped (error
 * bars also when p16 or p84 is not finite). Many points: an evenly strided subsample of at most
 * `maxPoints`, with an opacity that falls with the number of points; the subtitle says how many.
 */
export async function trueVsPredicted(param: string, unit: string, truth: Num, median: Num, p16?: Num, p84?: Num, o: TrueVsPredictedOptions = {}): Promise<string> {
  const n = truth.length;
  checkLength('median', median, n);
  checkLength('p16', p16, n);
  checkLength('p84', p84, n);
  const finite = finiteRows(n, truth, median);
  const shown = subsampleIndices(finite, o.maxPoints ?? 1000);
  const opacity = o.opacity ?? Math.min(0.8, Math.max(0.15, 40 / Math.sqrt(Math.max(1, shown.length))));
  const points = shown.map((i) => ({ t: truth[i], m: median[i] }));
  const bars = p16 && p84 ? shown.filter((i) => Number.isFinite(p16[i]) && Number.isFinite(p84[i])).map((i) => ({ t: truth[i], lo: p16[i], hi: p84[i] })) : [];
  const vals: number[] = [];
  for (const i of shown) vals.push(truth[i], median[i]);
  const dom = paddedRange(vals) ?? [0, 1];
  const scale = { domain: dom, nice: false, zero: false };
  const xTitle = `true ${axisLabel(param, unit)}`;
  const yTitle = `posterior median ${axisLabel(param, unit)}`;
  const size = Math.max(6, Math.min(30, 400 / Math.sqrt(Math.max(1, shown.length))));
  const layer: Json[] = [
    {
      name: 'identity',
      data: { values: [{ t: dom[0], m: dom[0] }, { t: dom[1], m: dom[1] }] },
      mark: { type: 'line', color: PLOT_COLORS.reference, strokeDash: [5, 4], strokeWidth: 1.2, clip: true },
      encoding: { x: q('t', xTitle, { scale }), y: q('m', yTitle, { scale }) },
    },
  ];
  if (bars.length)
    layer.push({
      name: 'errorbars',
      data: { values: bars },
      mark: { type: 'rule', color: PLOT_COLORS.primary, opacity: opacity * 0.45, strokeWidth: 1, clip: true, aria: false },
      encoding: { x: q('t'), y: q('lo'), y2: { field: 'hi' } },
    });
  layer.push({
    name: 'points',
    data: { values: points },
    mark: { type: 'circle', color: PLOT_COLORS.primary, opacity, size, clip: true, aria: false },
    encoding: { x: q('t'), y: q('m') },
  });
  const sub = o.subtitle ?? `${shown.length}${shown.length < finite.length ? ` of ${finite.length}` : ''} galaxies${finite.length < n ? ` (${n - finite.length} non-finite skipped)` : ''}; bars: 16-84 %`;
  return renderVegaLite(withTitle({ width: o.width ?? 300, height: o.height ?? 300, layer }, { ...o, subtitle: sub }, param));
}

// ---------------------------------------------------------------------------------------------
// coverage and TARP
// ---------------------------------------------------------------------------------------------

export interface CoverageOptions extends PlotOptions {
  /**
   * Number of test galaxies: draws a band of ±1.96 binomial standard deviations around the diagonal
   * (what a calibrated posterior's coverage scatters within, 95 %).
   */
  nTest?: number;
}

/** Binomial ±1.96 σ band around the diagonal at `steps` levels. */
function binomialBand(n: number, steps = 101) {
  return Array.from({ length: steps }, (_, k) => {
    const p = k / (steps - 1);
    const s = 1.96 * Math.sqrt((p * (1 - p)) / n);
    return { x: p, lo: Math.max(0, p - s), hi: Math.min(1, p + s) };
  });
}

function calibrationSpec(series: { name: string; x: Num; y: Num }[], layerName: string, xTitle: string, yTitle: string, o: CoverageOptions, band?: { x: number; lo: number; hi: number }[]): Json {
  const scale = { domain: [0, 1], nice: false };
  const layer: Json[] = [];
  if (band)
    layer.push({
      name: 'band',
      data: { values: band },
      mark: { type: 'area', color: PLOT_COLORS.reference, opacity: 0.18 },
      encoding: { x: q('x', xTitle, { scale }), y: q('lo', yTitle, { scale }), y2: { field: 'hi' } },
    });
  layer.push({
    name: 'diagonal',
    data: { values: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
    mark: { type: 'line', color: PLOT_COLORS.reference, strokeDash: [5, 4], strokeWidth: 1.2 },
    encoding: { x: q('x', xTitle, { scale }), y: q('y', yTitle, { scale }) },
  });
  const rows: Json[] = [];
  for (const s of series) {
    checkLength(`${s.name}: values`, s.y, s.x.length);
    for (let i = 0; i < s.x.length; i++) if (Number.isFinite(s.x[i]) && Number.isFinite(s.y[i])) rows.push({ x: s.x[i], y: s.y[i], parameter: s.name });
  }
  const many = series.length > 1;
  layer.push({
    name: layerName,
    data: { values: rows },
    mark: { type: 'line', strokeWidth: 2, clip: true, ...(many ? {} : { color: PLOT_COLORS.primary }) },
    encoding: {
      x: q('x', xTitle, { scale }),
      y: q('y', yTitle, { scale }),
      order: { field: 'x', type: 'quantitative' },
      ...(many ? { color: { field: 'parameter', type: 'nominal', title: 'parameter', sort: series.map((s) => s.name), scale: { scheme: 'tableau10' } } } : {}),
    },
  });
  return { width: o.width ?? 300, height: o.height ?? 300, layer };
}

/**
 * Empirical coverage of central credible intervals against their nominal level, one line per
 * parameter, with the diagonal (calibrated) and, given nTest, the binomial 95 % band around it.
 * `empirical`: per parameter the fraction of test galaxies whose truth falls in the interval, at each
 * of `levels` (both fractions in [0, 1]).
 */
export async function coverageCurve(levels: Num, empirical: Record<string, Num> | { name: string; values: Num }[], o: CoverageOptions = {}): Promise<string> {
  const list = Array.isArray(empirical) ? empirical : Object.entries(empirical).map(([name, values]) => ({ name, values }));
  const series = list.map((s) => ({ name: s.name, x: levels, y: s.values }));
  const spec = calibrationSpec(series, 'coverage', 'nominal credible level (fraction)', 'empirical coverage (fraction)', o, o.nTest ? binomialBand(o.nTest) : undefined);
  return renderVegaLite(withTitle(spec, o, 'Coverage of central credible intervals'));
}

export interface TarpOptions extends CoverageOptions {
  /** Optional uncertainty band of the ECP (e.g. bootstrap 16/84 %), per alpha. */
  ecpLow?: Num;
  ecpHigh?: Num;
}

/**
 * TARP (Lemos et al. 2023): expected coverage probability against the credibility level 1 − α, with
 * the diagonal; optionally the ECP's bootstrap band (ecpLow/ecpHigh) or, given nTest, the binomial
 * 95 % band around the diagonal. `alpha` is the credibility level on the x axis as TARP returns it.
 */
export async function tarpCurve(alpha: Num, ecp: Num, o: TarpOptions = {}): Promise<string> {
  checkLength('ecp', ecp, alpha.length);
  let band: { x: number; lo: number; hi: number }[] | undefined;
  if (o.ecpLow && o.ecpHigh) {
    checkLength('ecpLow', o.ecpLow, alpha.length);
    checkLength('ecpHigh', o.ecpHigh, alpha.length);
    band = finiteRows(alpha.length, alpha, o.ecpLow, o.ecpHigh).map((i) => ({ x: alpha[i], lo: o.ecpLow![i], hi: o.ecpHigh![i] }));
  } else if (o.nTest) band = binomialBand(o.nTest);
  const spec = calibrationSpec([{ name: 'TARP', x: alpha, y: ecp }], 'tarp', 'credibility level 1 − α (fraction)', 'expected coverage probability (fraction)', o, band);
  return renderVegaLite(withTitle(spec, o, 'TARP coverage test'));
}

// ---------------------------------------------------------------------------------------------
// rank histogram
// ---------------------------------------------------------------------------------------------

/** z of a two-sided normal interval for a few confidence levels (no inverse erf needed). */
function zFor(conf: number): number {
  const table: [number, number][] = [[0.68, 0.994457883], [0.9, 1.644853627], [0.95, 1.959963985], [0.99, 2.575829304], [0.997, 2.967737925]];
  for (const [c, z] of table) if (Math.abs(c - conf) < 1e-9) return z;
  throw new RangeError(`confidence must be one of ${table.map((t) => t[0]).join(', ')}, got ${conf}`);
}

export interface RankHistogramOptions extends PlotOptions {
  /** Parameter name for the title. */
  param?: string;
  /** Confidence of the band around the uniform expectation: 0.68, 0.9, 0.95, 0.99 (default) or 0.997. */
  confidence?: number;
}

/**
 * Histogram of the ranks of the true values among M posterior samples (SBC, Talts et al. 2018):
 * rank r in {0..M} (number of samples below the truth) goes to bin floor(r nBins / (M + 1)). A
 * calibrated posterior gives uniform counts: the rule is the expectation N / nBins and the band its
 * binomial interval (normal approximation) at `confidence`. Non-finite ranks are skipped; ranks
 * outside [0, M] are an error.
 */
export async function rankHistogram(ranks: Num, nBins: number, M: number, o: RankHistogramOptions = {}): Promise<string> {
  if (!Number.isInteger(nBins) || nBins < 1) throw new RangeError(`nBins must be a positive integer, got ${nBins}`);
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`M (posterior samples) must be a positive integer, got ${M}`);
  if (nBins > M + 1) throw new RangeError(`nBins ${nBins} > M + 1 = ${M + 1} possible ranks`);
  const counts = new Array<number>(nBins).fill(0);
  let N = 0;
  for (let i = 0; i < ranks.length; i++) {
    const r = ranks[i];
    if (!Number.isFinite(r)) continue;
    if (r < 0 || r > M) throw new RangeError(`rank ${r} at index ${i} is outside [0, ${M}]`);
    counts[Math.min(nBins - 1, Math.floor((r * nBins) / (M + 1)))]++;
    N++;
  }
  const edges = Array.from({ length: nBins + 1 }, (_, k) => (k * (M + 1)) / nBins);
  const p = 1 / nBins;
  const expected = N * p;
  const half = zFor(o.confidence ?? 0.99) * Math.sqrt(N * p * (1 - p));
  const xTitle = `rank of the true value among ${M} posterior samples`;
  const xScale = { domain: [0, M + 1], nice: false, zero: false };
  const yMax = Math.max(expected + half, ...counts) * 1.08 || 1;
  const yScale = { domain: [0, yMax], nice: false };
  const layer: Json[] = [
    {
      name: 'bars',
      data: { values: counts.map((c, k) => ({ x0: edges[k], x1: edges[k + 1], count: c })) },
      mark: { type: 'rect', color: PLOT_COLORS.primary, opacity: 0.85, stroke: 'white', strokeWidth: 0.5 },
      encoding: { x: q('x0', xTitle, { scale: xScale }), x2: { field: 'x1' }, y: q('count', 'galaxies per bin (count)', { scale: yScale }), y2: { datum: 0 } },
    },
    {
      name: 'band',
      data: { values: [{ x0: 0, x1: M + 1, lo: Math.max(0, expected - half), hi: expected + half }] },
      mark: { type: 'rect', color: PLOT_COLORS.reference, opacity: 0.22 },
      encoding: { x: q('x0'), x2: { field: 'x1' }, y: q('lo'), y2: { field: 'hi' } },
    },
    {
      name: 'expected',
      data: { values: [{ y: expected }] },
      mark: { type: 'rule', color: PLOT_COLORS.reference, strokeDash: [5, 4], strokeWidth: 1.5 },
      encoding: { y: q('y') },
    },
  ];
  const sub = o.subtitle ?? `${N} galaxies; grey: ${Math.round((o.confidence ?? 0.99) * 1000) / 10} % band if uniform`;
  return renderVegaLite(withTitle({ width: o.width ?? 300, height: o.height ?? 220, layer }, { ...o, subtitle: sub }, o.param ? `Rank histogram: ${o.param}` : 'Rank histogram'));
}

// ---------------------------------------------------------------------------------------------
// corner plot
// ---------------------------------------------------------------------------------------------

export interface CornerOptions extends PlotOptions {
  /** Units per parameter (axis titles). */
  units?: readonly string[];
  /** Histogram bins per axis (1-D and 2-D); default 20. */
  bins?: number;
  /** 'density' (2-D histograms), 'scatter' (points) or 'auto' (scatter up to 400 draws); default auto. */
  kind?: 'density' | 'scatter' | 'auto';
  /** Points drawn at most in scatter cells (evenly strided subsample); default 1000. */
  maxPoints?: number;
}

/**
 * Corner plot of posterior draws: `samples` is M x P row-major (P = names.length), 1-D histograms on
 * the diagonal, 2-D histograms (or scatter) below it, the truth (optional, length P; non-finite
 * entries skipped) as rules. A grid of Vega-Lite views (concat with P columns; the upper triangle
 * holds blank views). A draw with any non-finite value is dropped from the 2-D cells that use it;
 * the 1-D histogram of a parameter uses its finite values.
 */
export async function corner(samples: Num, names: readonly string[], truth?: Num, o: CornerOptions = {}): Promise<string> {
  const P = names.length;
  if (P < 1) throw new RangeError('corner: no parameters');
  if (samples.length % P) throw new RangeError(`corner: ${samples.length} values is not a multiple of ${P} parameters`);
  if (truth) checkLength('truth', truth, P);
  if (o.units) checkLength('units', o.units as unknown as Num, P);
  const M = samples.length / P;
  const nb = o.bins ?? 20;
  const cell = o.width ?? (P > 4 ? 110 : 140);
  const kind = o.kind === 'scatter' || (o.kind !== 'density' && M <= 400) ? 'scatter' : 'density';
  const col = (j: number) => Array.from({ length: M }, (_, i) => samples[i * P + j]);
  const cols = Array.from({ length: P }, (_, j) => col(j));
  const doms = cols.map((c, j) => {
    const vals = truth && Number.isFinite(truth[j]) ? [...c, truth[j]] : c;
    return paddedRange(vals, 0.02) ?? [0, 1];
  });
  const label = (j: number) => axisLabel(names[j], o.units?.[j]);
  const binOf = (v: number, j: number) => {
    const [lo, hi] = doms[j];
    return Math.min(nb - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * nb)));
  };
  const edge = (k: number, j: number) => doms[j][0] + ((doms[j][1] - doms[j][0]) * k) / nb;
  const axisFor = (show: boolean, title: string): Json => (show ? { title, labelFontSize: 9, titleFontSize: 10, tickCount: 4, labelOverlap: true } : { title: null, labels: false, ticks: true, tickCount: 4 });
  const views: Json[] = [];
  for (let r = 0; r < P; r++) {
    for (let c = 0; c < P; c++) {
      const bottom = r === P - 1;
      const left = c === 0;
      if (c > r) {
        views.push({ name: `blank_${r}_${c}`, width: cell, height: cell, data: { values: [] }, mark: { type: 'point', opacity: 0 }, view: { stroke: null } });
        continue;
      }
      const xScale = { domain: doms[c], nice: false, zero: false };
      const xEnc = q('x0', null, { scale: xScale, axis: axisFor(bottom, label(c)) });
      const layer: Json[] = [];
      if (r === c) {
        const counts = new Array<number>(nb).fill(0);
        for (const v of cols[c]) if (Number.isFinite(v)) counts[binOf(v, c)]++;
        const yMax = Math.max(1, ...counts) * 1.05;
        layer.push({
          name: `hist_${c}`,
          data: { values: counts.map((n, k) => ({ x0: edge(k, c), x1: edge(k + 1, c), n })) },
          mark: { type: 'rect', color: PLOT_COLORS.primary, opacity: 0.8, aria: false },
          encoding: { x: xEnc, x2: { field: 'x1' }, y: q('n', null, { scale: { domain: [0, yMax], nice: false }, axis: null }), y2: { datum: 0 } },
        });
        if (truth && Number.isFinite(truth[c]))
          layer.push({ name: `truth_${c}`, data: { values: [{ x0: truth[c] }] }, mark: { type: 'rule', color: PLOT_COLORS.truth, strokeWidth: 1.5 }, encoding: { x: q('x0') } });
      } else {
        const yScale = { domain: doms[r], nice: false, zero: false };
        const yAxis = axisFor(left, label(r));
        const ok = finiteRows(M, cols[c], cols[r]);
        if (kind === 'scatter') {
          const idx = subsampleIndices(ok, o.maxPoints ?? 1000);
          layer.push({
            name: `scatter_${r}_${c}`,
            data: { values: idx.map((i) => ({ x0: cols[c][i], y0: cols[r][i] })) },
            mark: { type: 'circle', color: PLOT_COLORS.primary, size: 6, opacity: Math.min(0.7, Math.max(0.1, 20 / Math.sqrt(Math.max(1, idx.length)))), clip: true, aria: false },
            encoding: { x: xEnc, y: q('y0', null, { scale: yScale, axis: yAxis }) },
          });
        } else {
          const grid = new Map<number, number>();
          for (const i of ok) {
            const key = binOf(cols[r][i], r) * nb + binOf(cols[c][i], c);
            grid.set(key, (grid.get(key) ?? 0) + 1);
          }
          const rects = [...grid.entries()].map(([key, n]) => {
            const by = Math.floor(key / nb);
            const bx = key % nb;
            return { x0: edge(bx, c), x1: edge(bx + 1, c), y0: edge(by, r), y1: edge(by + 1, r), n };
          });
          layer.push({
            name: `density_${r}_${c}`,
            data: { values: rects },
            mark: { type: 'rect', aria: false },
            encoding: {
              x: xEnc,
              x2: { field: 'x1' },
              y: q('y0', null, { scale: yScale, axis: yAxis }),
              y2: { field: 'y1' },
              color: { field: 'n', type: 'quantitative', scale: { scheme: 'blues', zero: true }, legend: null },
            },
          });
        }
        if (truth && Number.isFinite(truth[c]) && Number.isFinite(truth[r])) {
          const t = { x0: truth[c], y0: truth[r] };
          layer.push(
            { name: `truthx_${r}_${c}`, data: { values: [t] }, mark: { type: 'rule', color: PLOT_COLORS.truth, strokeWidth: 1 }, encoding: { x: q('x0') } },
            { name: `truthy_${r}_${c}`, data: { values: [t] }, mark: { type: 'rule', color: PLOT_COLORS.truth, strokeWidth: 1 }, encoding: { y: q('y0') } },
            { name: `truthpt_${r}_${c}`, data: { values: [t] }, mark: { type: 'square', color: PLOT_COLORS.truth, size: 30 }, encoding: { x: q('x0'), y: q('y0') } },
          );
        }
      }
      views.push({ width: cell, height: cell, layer, resolve: { scale: { color: 'independent' } } });
    }
  }
  const sub = o.subtitle ?? `${M} posterior draws${truth ? '; red: truth' : ''}`;
  return renderVegaLite(withTitle({ columns: P, spacing: 6, concat: views, resolve: { scale: { color: 'independent' } } }, { ...o, subtitle: sub }, 'Posterior'));
}

// ---------------------------------------------------------------------------------------------
// SED and SFH
// ---------------------------------------------------------------------------------------------

export interface SedPlotInput extends PlotOptions {
  /** 'observed': f_nu [nJy] against observed wavelength; 'rest': L_nu [erg/s/Hz] against rest wavelength. */
  frame: 'observed' | 'rest';
  /** Wavelengths of the spectrum [Å] (observed or rest frame, as `frame`). */
  wavelengthAA: Num;
  /** Posterior median spectrum (nJy observed, erg/s/Hz rest). */
  median: Num;
  /** 16 / 84 % of the spectra of the posterior draws (same units). */
  p16?: Num;
  p84?: Num;
  /** A true spectrum to overlay (mock galaxies), on its own wavelengths [Å]. */
  truth?: { wavelengthAA: Num; flux: Num };
  /** Measured band fluxes with errors, at the bands' pivot wavelengths [Å]. */
  observed?: { wavelengthAA: Num; flux: Num; error?: Num; names?: readonly string[] };
  /** Model band fluxes of the posterior draws (median, optionally 16/84 %), at the pivot wavelengths [Å]. */
  model?: { wavelengthAA: Num; median: Num; p16?: Num; p84?: Num };
  /** Plotted wavelength range [Å]; default: the bands' range widened (×0.7 .. ×1.4), else 900 Å - 5 µm rest (3000 Å - 6 µm observed). */
  wavelengthRangeAA?: [number, number];
  /** y scale; default 'log' (non-positive values are then not drawn: the band is cut at the axis floor). */
  yScale?: 'log' | 'linear';
  /** Decades of flux shown below the maximum in log scale; default 3. */
  decades?: number;
}

/**
 * Reconstructed SED: posterior median spectrum with its 16-84 % band, the model band fluxes of the
 * draws and the measured photometry with error bars. x: wavelength in µm (log), y: f_nu [nJy]
 * (observed frame) or L_nu [erg s^-1 Hz^-1] (rest frame), log by default.
 */
export async function sedPlot(s: SedPlotInput): Promise<string> {
  const nL = s.wavelengthAA.length;
  checkLength('median', s.median, nL);
  checkLength('p16', s.p16, nL);
  checkLength('p84', s.p84, nL);
  const obs = s.observed;
  const mod = s.model;
  if (obs) {
    checkLength('observed.flux', obs.flux, obs.wavelengthAA.length);
    checkLength('observed.error', obs.error, obs.wavelengthAA.length);
  }
  if (mod) {
    checkLength('model.median', mod.median, mod.wavelengthAA.length);
    checkLength('model.p16', mod.p16, mod.wavelengthAA.length);
    checkLength('model.p84', mod.p84, mod.wavelengthAA.length);
  }
  const bandsAA = [...(obs ? Array.from(obs.wavelengthAA) : []), ...(mod ? Array.from(mod.wavelengthAA) : [])].filter((v) => v > 0 && Number.isFinite(v));
  const range: [number, number] = s.wavelengthRangeAA ?? (bandsAA.length ? [minOf(bandsAA) * 0.7, maxOf(bandsAA) * 1.4] : s.frame === 'rest' ? [900, 5e4] : [3000, 6e4]);
  const inRange = (l: number) => l >= range[0] && l <= range[1];
  const um = (aa: number) => aa / 1e4;
  const log = (s.yScale ?? 'log') === 'log';
  // y range: from the band fluxes when there are any (emission lines may then run off the top, as
  // in any SED figure), else from the spectrum, inside the wavelength range.
  const ys: number[] = [];
  if (obs) for (let i = 0; i < obs.flux.length; i++) if (inRange(obs.wavelengthAA[i])) ys.push(obs.flux[i] + (obs.error?.[i] ?? 0));
  if (mod) for (let i = 0; i < mod.median.length; i++) if (inRange(mod.wavelengthAA[i])) ys.push(mod.p84?.[i] ?? mod.median[i]);
  const fromBands = ys.some(Number.isFinite);
  if (!fromBands) for (let i = 0; i < nL; i++) if (inRange(s.wavelengthAA[i])) ys.push(s.median[i], s.p84?.[i] ?? NaN);
  const finiteYs = ys.filter(Number.isFinite);
  const yMaxRaw = (finiteYs.length ? maxOf(finiteYs) : 1) * (fromBands ? 1.5 : 1);
  let yDomain: [number, number];
  if (log) {
    const top = yMaxRaw > 0 ? yMaxRaw * 2 : 1;
    yDomain = [top / 10 ** (s.decades ?? 3), top];
  } else {
    let low = Math.min(0, minOf(finiteYs));
    if (s.p16) for (let i = 0; i < nL; i++) if (inRange(s.wavelengthAA[i]) && s.p16[i] < low) low = s.p16[i];
    yDomain = paddedRange([low, yMaxRaw], 0.05) ?? [0, 1];
  }
  const floor = yDomain[0];
  const yv = (v: number) => (log ? Math.max(v, floor) : v); // log axis: clamp to the floor so bands stay drawable
  const fluxTitle = s.frame === 'observed' ? 'f_ν [nJy]' : 'L_ν [erg s⁻¹ Hz⁻¹]';
  const lamTitle = s.frame === 'observed' ? 'observed wavelength λ [µm]' : 'rest-frame wavelength λ [µm]';
  const xScale = { type: 'log', domain: [um(range[0]), um(range[1])], nice: false };
  const yScaleSpec = { type: log ? 'log' : 'linear', domain: yDomain, nice: false, ...(log ? {} : { zero: false }) };
  const xEnc = q('x', lamTitle, { scale: xScale });
  const yEnc = q('y', fluxTitle, { scale: yScaleSpec, axis: { format: log ? '~g' : '~s' } });
  const legendItems: string[] = [];
  const legendColors: string[] = [];
  const legend = (label: string, color: string) => {
    legendItems.push(label);
    legendColors.push(color);
    return { datum: label };
  };
  const layer: Json[] = [];
  // Lines are drawn only where the value is finite (and positive in log scale); the band is clamped.
  const lineOk = (v: number) => Number.isFinite(v) && (!log || v > 0);
  if (s.p16 && s.p84) {
    const rows = [];
    for (let i = 0; i < nL; i++) {
      const l = s.wavelengthAA[i];
      if (!inRange(l) || !Number.isFinite(s.p16[i]) || !Number.isFinite(s.p84[i])) continue;
      rows.push({ x: um(l), y: yv(s.p16[i]), y2: yv(s.p84[i]) });
    }
    layer.push({ name: 'sed_band', data: { values: rows }, mark: { type: 'area', opacity: 0.35, clip: true, aria: false }, encoding: { x: xEnc, y: yEnc, y2: { field: 'y2' }, color: legend('16-84 % of draws', PLOT_COLORS.band) } });
  }
  {
    const rows = [];
    for (let i = 0; i < nL; i++) if (inRange(s.wavelengthAA[i]) && lineOk(s.median[i])) rows.push({ x: um(s.wavelengthAA[i]), y: s.median[i] });
    layer.push({ name: 'sed_median', data: { values: rows }, mark: { type: 'line', strokeWidth: 1.3, clip: true, aria: false }, encoding: { x: xEnc, y: yEnc, color: legend('posterior median SED', PLOT_COLORS.primary) } });
  }
  if (s.truth) {
    checkLength('truth.flux', s.truth.flux, s.truth.wavelengthAA.length);
    const rows = [];
    for (let i = 0; i < s.truth.flux.length; i++) if (inRange(s.truth.wavelengthAA[i]) && lineOk(s.truth.flux[i])) rows.push({ x: um(s.truth.wavelengthAA[i]), y: s.truth.flux[i] });
    layer.push({ name: 'truth_sed', data: { values: rows }, mark: { type: 'line', strokeWidth: 1, strokeDash: [4, 3], clip: true, aria: false }, encoding: { x: xEnc, y: yEnc, color: legend('true SED', PLOT_COLORS.truth) } });
  }
  if (mod) {
    const idx = finiteRows(mod.median.length, mod.wavelengthAA, mod.median).filter((i) => inRange(mod.wavelengthAA[i]) && lineOk(mod.median[i]));
    const color = legend('model band fluxes', PLOT_COLORS.secondary);
    if (mod.p16 && mod.p84) {
      const e = idx.filter((i) => Number.isFinite(mod.p16![i]) && Number.isFinite(mod.p84![i])).map((i) => ({ x: um(mod.wavelengthAA[i]), y: yv(mod.p16![i]), y2: yv(mod.p84![i]) }));
      layer.push({ name: 'model_errors', data: { values: e }, mark: { type: 'rule', strokeWidth: 2, clip: true }, encoding: { x: xEnc, y: yEnc, y2: { field: 'y2' }, color } });
    }
    layer.push({ name: 'model_bands', data: { values: idx.map((i) => ({ x: um(mod.wavelengthAA[i]), y: mod.median[i] })) }, mark: { type: 'square', size: 45, filled: true, clip: true }, encoding: { x: xEnc, y: yEnc, color } });
  }
  if (obs) {
    const idx = finiteRows(obs.flux.length, obs.wavelengthAA, obs.flux).filter((i) => inRange(obs.wavelengthAA[i]) && lineOk(obs.flux[i]));
    const color = legend('observed photometry', PLOT_COLORS.observed);
    if (obs.error) {
      const e = idx.filter((i) => Number.isFinite(obs.error![i])).map((i) => ({ x: um(obs.wavelengthAA[i]), y: yv(obs.flux[i] - obs.error![i]), y2: yv(obs.flux[i] + obs.error![i]) }));
      layer.push({ name: 'obs_errors', data: { values: e }, mark: { type: 'rule', strokeWidth: 1.2, clip: true }, encoding: { x: xEnc, y: yEnc, y2: { field: 'y2' }, color } });
    }
    layer.push({
      name: 'obs_points',
      data: { values: idx.map((i) => ({ x: um(obs.wavelengthAA[i]), y: obs.flux[i], band: obs.names?.[i] ?? '' })) },
      mark: { type: 'circle', size: 40, opacity: 1, clip: true },
      encoding: { x: xEnc, y: yEnc, color, ...(obs.names ? { tooltip: { field: 'band', type: 'nominal' } } : {}) },
    });
  }
  // One shared color scale: the legend lists the layers present.
  (layer[0].encoding as Json).color = { ...((layer[0].encoding as Json).color as Json), scale: { domain: legendItems, range: legendColors }, legend: { title: null, symbolType: 'circle', orient: 'bottom', direction: 'horizontal', columns: 2 } };
  return renderVegaLite(withTitle({ width: s.width ?? 460, height: s.height ?? 280, layer }, s, s.frame === 'observed' ? 'Reconstructed SED (observed frame)' : 'Reconstructed SED (rest frame)'));
}

export interface SfhPlotInput extends PlotOptions {
  /** Lookback times [yr] (plotted in Gyr). */
  lookbackYr: Num;
  /** Posterior median SFR [Msun/yr] at each lookback time. */
  median: Num;
  p16?: Num;
  p84?: Num;
  /** A true SFH (mock galaxies) on the same lookback times [Msun/yr]. */
  truth?: Num;
  /** y scale; default 'linear'. */
  yScale?: 'linear' | 'log';
}

/** Reconstructed star formation history: SFR [Msun/yr] against lookback time [Gyr], median and 16-84 % band. */
export async function sfhPlot(s: SfhPlotInput): Promise<string> {
  const n = s.lookbackYr.length;
  checkLength('median', s.median, n);
  checkLength('p16', s.p16, n);
  checkLength('p84', s.p84, n);
  checkLength('truth', s.truth, n);
  const log = s.yScale === 'log';
  const gyr = (yr: number) => yr / 1e9;
  const ok = (v: number) => Number.isFinite(v) && (!log || v > 0);
  const xs = Array.from(s.lookbackYr).filter(Number.isFinite);
  const xDom = xs.length ? [gyr(minOf(xs)), gyr(maxOf(xs))] : [0, 1];
  const tops = [...Array.from(s.p84 ?? s.median), ...Array.from(s.truth ?? [])].filter((v) => Number.isFinite(v) && (!log || v > 0));
  const top = tops.length ? maxOf(tops) : 1;
  const yDomain = log ? [Math.max(top, 1e-30) * 1e-4, Math.max(top, 1e-30) * 2] : [0, top > 0 ? top * 1.08 : 1];
  const floor = yDomain[0];
  const xEnc = q('x', 'lookback time [Gyr]', { scale: { domain: xDom, nice: false, zero: false } });
  const yEnc = q('y', 'SFR [M☉ yr⁻¹]', { scale: { type: log ? 'log' : 'linear', domain: yDomain, nice: false, ...(log ? {} : { zero: true }) } });
  const layer: Json[] = [];
  const items: string[] = [];
  const colors: string[] = [];
  const legend = (label: string, color: string) => (items.push(label), colors.push(color), { datum: label });
  if (s.p16 && s.p84) {
    const rows = finiteRows(n, s.lookbackYr, s.p16, s.p84).map((i) => ({ x: gyr(s.lookbackYr[i]), y: log ? Math.max(s.p16![i], floor) : s.p16![i], y2: log ? Math.max(s.p84![i], floor) : s.p84![i] }));
    layer.push({ name: 'sfh_band', data: { values: rows }, mark: { type: 'area', opacity: 0.35, clip: true, aria: false }, encoding: { x: xEnc, y: yEnc, y2: { field: 'y2' }, color: legend('16-84 % of draws', PLOT_COLORS.band) } });
  }
  const med = finiteRows(n, s.lookbackYr).filter((i) => ok(s.median[i])).map((i) => ({ x: gyr(s.lookbackYr[i]), y: s.median[i] }));
  layer.push({ name: 'sfh_median', data: { values: med }, mark: { type: 'line', strokeWidth: 1.8, clip: true, aria: false }, encoding: { x: xEnc, y: yEnc, color: legend('posterior median', PLOT_COLORS.primary) } });
  if (s.truth) {
    const tr = finiteRows(n, s.lookbackYr).filter((i) => ok(s.truth![i])).map((i) => ({ x: gyr(s.lookbackYr[i]), y: s.truth![i] }));
    layer.push({ name: 'sfh_truth', data: { values: tr }, mark: { type: 'line', strokeWidth: 1.3, strokeDash: [5, 3], clip: true, aria: false }, encoding: { x: xEnc, y: yEnc, color: legend('truth', PLOT_COLORS.truth) } });
  }
  (layer[0].encoding as Json).color = { ...((layer[0].encoding as Json).color as Json), scale: { domain: items, range: colors }, legend: { title: null, symbolType: 'stroke', orient: 'top-right' } };
  return renderVegaLite(withTitle({ width: s.width ?? 420, height: s.height ?? 240, layer }, s, 'Reconstructed star formation history'));
}
