/**
 * Weights over a grid's metallicity axis (float64 CPU reference, mirrored by shaders/synth).
 *
 * The grid axis is given as metallicity mass fractions Z (e.g. BC03: 0.0001 ... 0.1), strictly
 * increasing. Weights are non-negative and sum to 1; the SFH's bin masses multiply them.
 * - single Z, cloud-in-cell between the two bracketing grid metallicities:
 *     'log10Z' (ours, default): linear in log10 Z — the SPS grids are roughly log-spaced and spectra
 *       vary smoothly with log Z;
 *     'linearZ': linear in Z, Synthesizer's convention (reference/synthesizer/README.md).
 *   Both clamp outside the grid (all weight on the edge metallicity).
 * - a normal distribution in log10 Z (mean, sigma in dex) integrated over the bins of the axis, with
 *   bin edges at the midpoints in log10 Z and the outer bins extended to ±∞ (so the tails are
 *   clamped onto the edge metallicities, as for single Z).
 */
import { standardNormalInterval } from './sfh.js';

export type MetallicityInterpolation = 'log10Z' | 'linearZ';

function checkAxis(gridZ: ArrayLike<number>): void {
  const n = gridZ.length;
  if (n < 1) throw new RangeError('the metallicity axis is empty');
  for (let i = 0; i < n; i++) {
    if (!(gridZ[i] > 0) || !Number.isFinite(gridZ[i])) throw new RangeError(`grid metallicity ${i} must be finite and > 0, got ${gridZ[i]}`);
    if (i > 0 && !(gridZ[i] > gridZ[i - 1])) throw new RangeError(`grid metallicities must increase strictly (index ${i}: ${gridZ[i - 1]} -> ${gridZ[i]})`);
  }
}

/** Index i of the grid interval [x_i, x_{i+1}] holding x and the weight of x_{i+1}, clamped. */
export function bracket(x: ArrayLike<number>, v: number): { index: number; upperWeight: number } {
  const n = x.length;
  if (n === 1 || v <= x[0]) return { index: 0, upperWeight: 0 };
  if (v >= x[n - 1]) return { index: n - 2, upperWeight: 1 };
  let lo = 0;
  let hi = n - 1; // x[lo] <= v < x[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x[mid] <= v) lo = mid;
    else hi = mid;
  }
  return { index: lo, upperWeight: (v - x[lo]) / (x[lo + 1] - x[lo]) };
}

/**
 * Cloud-in-cell weights of a single metallicity Z on the axis gridZ: the two bracketing grid
 * metallicities share the weight linearly in log10 Z ('log10Z') or in Z ('linearZ'); clamped outside
 * (Z <= 0 counts as below the grid). Inside the grid Σ w_i x_i = x (x = log10 Z or Z).
 */
export function singleMetallicityWeights(gridZ: ArrayLike<number>, Z: number, interpolation: MetallicityInterpolation = 'log10Z'): Float64Array {
  checkAxis(gridZ);
  if (Number.isNaN(Z)) throw new RangeError('metallicity Z is NaN');
  const n = gridZ.length;
  const w = new Float64Array(n);
  if (n === 1) {
    w[0] = 1;
    return w;
  }
  const axis = interpolation === 'log10Z' ? Float64Array.from(gridZ as ArrayLike<number>, Math.log10) : gridZ;
  const v = interpolation === 'log10Z' ? (Z > 0 ? Math.log10(Z) : -Infinity) : Z;
  const { index, upperWeight } = bracket(axis, v);
  w[index] = 1 - upperWeight;
  w[index + 1] += upperWeight;
  return w;
}

/** The n+1 edges of the metallicity bins in log10 Z: −∞, midpoints between grid log10 Z's, +∞. */
export function log10ZBinEdges(gridZ: ArrayLike<number>): Float64Array {
  checkAxis(gridZ);
  const n = gridZ.length;
  const e = new Float64Array(n + 1);
  e[0] = -Infinity;
  e[n] = Infinity;
  for (let i = 1; i < n; i++) e[i] = (Math.log10(gridZ[i - 1]) + Math.log10(gridZ[i])) / 2;
  return e;
}

/**
 * Weights of a normal distribution in log10 Z (mean meanLog10Z, standard deviation sigmaDex)
 * integrated over the log10 Z bins (log10ZBinEdges): w_i = Φ((e_{i+1}-μ)/σ) − Φ((e_i-μ)/σ), each
 * from the tail-stable normal interval (no 1 − Φ cancellation), then divided by their sum (1 to
 * rounding). sigmaDex = 0 is the delta limit: all weight on the bin holding the mean (the upper bin
 * on an edge) — nearest grid metallicity in log10 Z, NOT the cloud-in-cell split.
 */
export function logNormalMetallicityWeights(gridZ: ArrayLike<number>, meanLog10Z: number, sigmaDex: number): Float64Array {
  const e = log10ZBinEdges(gridZ);
  if (!Number.isFinite(meanLog10Z)) throw new RangeError(`meanLog10Z must be finite, got ${meanLog10Z}`);
  if (!(sigmaDex >= 0) || !Number.isFinite(sigmaDex)) throw new RangeError(`sigmaDex must be finite and >= 0, got ${sigmaDex}`);
  const n = gridZ.length;
  const w = new Float64Array(n);
  if (sigmaDex === 0) {
    let i = 0;
    while (i < n - 1 && meanLog10Z >= e[i + 1]) i++;
    w[i] = 1;
    return w;
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const a = (e[i] - meanLog10Z) / sigmaDex;
    const b = (e[i + 1] - meanLog10Z) / sigmaDex;
    w[i] = standardNormalInterval(a, b, Number.isFinite(a) && Number.isFinite(b) ? (e[i + 1] - e[i]) / sigmaDex : undefined);
    sum += w[i];
  }
  for (let i = 0; i < n; i++) w[i] /= sum;
  return w;
}
