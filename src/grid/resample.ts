/**
 * Flux-conserving resampling of SPS spectra onto a new wavelength grid.
 *
 * The native spectrum is taken as piecewise linear in lambda between its samples (the same assumption
 * as the trapezoid rule). The new value of a bin [e_k, e_k+1] is the MEAN of L_nu over the bin,
 *   Lnew_k = (C(e_k+1) − C(e_k)) / (e_k+1 − e_k),   C(x) = ∫_{lambda_0}^{x} L_nu dlambda,
 * so Σ_k Lnew_k (e_k+1 − e_k) = ∫ L_nu dlambda over the covered range exactly (up to rounding). Each
 * difference C(e_k+1) − C(e_k) is evaluated locally (sum of the partial-interval integrals inside the
 * bin), not as a difference of two large running sums, so bins where L_nu is 1e-20 of its peak (far-UV
 * of old populations) keep full relative precision. The map is linear, so it is built once as a sparse
 * operator and applied to every (age, Z) spectrum.
 */
import { type SpsGrid, validateGrid } from './types.js';

/** Bin edges uniform in ln(lambda) with ln-width 1/R (adjusted so the last edge is exactly maxAA). */
export function logWavelengthBins(minAA: number, maxAA: number, resolution: number): { edges: Float64Array; centers: Float64Array } {
  if (!(minAA > 0 && maxAA > minAA)) throw new Error(`wavelength range must satisfy 0 < min < max, got [${minAA}, ${maxAA}]`);
  if (!(resolution > 0) || !Number.isFinite(resolution)) throw new Error(`resolution must be a positive number, got ${resolution}`);
  const span = Math.log(maxAA / minAA);
  const n = Math.max(1, Math.round(span * resolution));
  const edges = new Float64Array(n + 1);
  for (let k = 0; k <= n; k++) edges[k] = minAA * Math.exp((span * k) / n);
  edges[0] = minAA;
  edges[n] = maxAA;
  const centers = new Float64Array(n);
  for (let k = 0; k < n; k++) centers[k] = Math.sqrt(edges[k] * edges[k + 1]);
  return { edges, centers };
}

/** Sparse linear operator: out[k] = Σ_{p in row k} coef[p] · in[col[p]]. */
export interface BinOperator {
  rowStart: Int32Array; // length nOut + 1
  col: Int32Array;
  coef: Float64Array;
  nIn: number;
  nOut: number;
}

/**
 * The operator giving the mean of the piecewise-linear interpolant of samples (x, y) over each bin
 * [edges[k], edges[k+1]]. The edges must lie within [x[0], x[n-1]].
 */
export function binMeanOperator(x: ArrayLike<number>, edges: ArrayLike<number>): BinOperator {
  const n = x.length;
  const nOut = edges.length - 1;
  if (n < 2) throw new Error('binMeanOperator: need at least 2 native samples');
  if (!(edges[0] >= x[0] && edges[nOut] <= x[n - 1])) {
    throw new Error(`binMeanOperator: bins [${edges[0]}, ${edges[nOut]}] extend beyond the native range [${x[0]}, ${x[n - 1]}]`);
  }
  const rowStart = new Int32Array(nOut + 1);
  const col: number[] = [];
  const coef: number[] = [];
  let j = 0; // native interval [x[j], x[j+1]]
  for (let k = 0; k < nOut; k++) {
    const a = edges[k];
    const b = edges[k + 1];
    if (!(b > a)) throw new Error(`binMeanOperator: edges must ascend (edge ${k}: ${a}, ${b})`);
    rowStart[k] = col.length;
    while (j < n - 2 && x[j + 1] <= a) j++;
    const acc = new Map<number, number>();
    for (let i = j; i < n - 1 && x[i] < b; i++) {
      const lo = Math.max(a, x[i]);
      const hi = Math.min(b, x[i + 1]);
      if (!(hi > lo)) continue;
      // ∫_lo^hi of the line through (x_i, y_i), (x_i+1, y_i+1): h [y_i (u − (tb²−ta²)/2) + y_i+1 (tb²−ta²)/2]
      const h = x[i + 1] - x[i];
      const ta = (lo - x[i]) / h;
      const tb = (hi - x[i]) / h;
      const q = 0.5 * (tb * tb - ta * ta);
      acc.set(i, (acc.get(i) ?? 0) + h * (tb - ta - q));
      acc.set(i + 1, (acc.get(i + 1) ?? 0) + h * q);
    }
    const width = b - a;
    for (const [c, v] of [...acc.entries()].sort((p, q) => p[0] - q[0])) {
      col.push(c);
      coef.push(v / width);
    }
  }
  rowStart[nOut] = col.length;
  return { rowStart, col: Int32Array.from(col), coef: Float64Array.from(coef), nIn: n, nOut };
}

export function applyOperator(op: BinOperator, input: ArrayLike<number>, inOffset: number, out: Float64Array, outOffset: number): void {
  for (let k = 0; k < op.nOut; k++) {
    let s = 0;
    for (let p = op.rowStart[k]; p < op.rowStart[k + 1]; p++) s += op.coef[p] * input[inOffset + op.col[p]];
    out[outOffset + k] = s;
  }
}

/** ∫ of the piecewise-linear interpolant of (x, y) over [a, b] ⊂ [x0, xn] (used to check conservation). */
export function integrateLinear(x: ArrayLike<number>, y: ArrayLike<number>, a: number, b: number, yOffset = 0): number {
  let s = 0;
  for (let i = 0; i + 1 < x.length; i++) {
    const lo = Math.max(a, x[i]);
    const hi = Math.min(b, x[i + 1]);
    if (!(hi > lo)) continue;
    const h = x[i + 1] - x[i];
    const ylo = y[yOffset + i] + ((lo - x[i]) / h) * (y[yOffset + i + 1] - y[yOffset + i]);
    const yhi = y[yOffset + i] + ((hi - x[i]) / h) * (y[yOffset + i + 1] - y[yOffset + i]);
    s += 0.5 * (hi - lo) * (ylo + yhi);
  }
  return s;
}

export interface ResampleOptions {
  /** lambda/Δlambda of the new log-uniform bins; undefined keeps the native samples. */
  resolution?: number;
  /** Range to keep [A]; defaults to the native range. */
  wavelengthMinAA?: number;
  wavelengthMaxAA?: number;
}

export interface ResampleInfo {
  method: 'native' | 'flux-conserving-mean';
  resolution: number | null;
  wavelengthMinAA: number;
  wavelengthMaxAA: number;
  /** Bin edges [A] of the new grid (null for native). */
  edgesAA: Float64Array | null;
}

/**
 * Resamples every spectrum of the grid (see the file comment), or, without `resolution`, crops the
 * native grid to the samples within [min, max].
 */
export function resampleGrid(grid: SpsGrid, options: ResampleOptions = {}): { grid: SpsGrid; info: ResampleInfo } {
  const x = grid.wavelengthAA;
  const nat0 = x[0];
  const nat1 = x[x.length - 1];
  const lo = options.wavelengthMinAA ?? nat0;
  const hi = options.wavelengthMaxAA ?? nat1;
  if (!(lo < hi)) throw new Error(`wavelength range: min ${lo} must be < max ${hi}`);
  if (lo < nat0 || hi > nat1) throw new Error(`wavelength range [${lo}, ${hi}] A extends beyond the grid's native range [${nat0}, ${nat1}] A`);
  const nA = grid.ages.length;
  const nZ = grid.metallicities.length;
  const nL = x.length;
  if (options.resolution === undefined) {
    const i0 = x.findIndex((v) => v >= lo);
    let i1 = nL;
    while (i1 > 0 && x[i1 - 1] > hi) i1--;
    if (i1 - i0 < 2) throw new Error(`wavelength range [${lo}, ${hi}] A keeps fewer than 2 native samples`);
    const m = i1 - i0;
    const lnu = new Float64Array(nA * nZ * m);
    for (let s = 0; s < nA * nZ; s++) lnu.set(grid.lnu.subarray(s * nL + i0, s * nL + i1), s * m);
    const out: SpsGrid = { ...grid, wavelengthAA: x.slice(i0, i1), lnu, metadata: { ...grid.metadata, notes: [...grid.metadata.notes] } };
    validateGrid(out);
    return { grid: out, info: { method: 'native', resolution: null, wavelengthMinAA: x[i0], wavelengthMaxAA: x[i1 - 1], edgesAA: null } };
  }
  const { edges, centers } = logWavelengthBins(lo, hi, options.resolution);
  const op = binMeanOperator(x, edges);
  const m = centers.length;
  const lnu = new Float64Array(nA * nZ * m);
  for (let s = 0; s < nA * nZ; s++) applyOperator(op, grid.lnu, s * nL, lnu, s * m);
  const out: SpsGrid = {
    ...grid,
    wavelengthAA: centers,
    lnu,
    metadata: {
      ...grid.metadata,
      notes: [...grid.metadata.notes, `resampled to R = ${options.resolution} log bins on [${lo}, ${hi}] A: mean of L_nu over each bin (conserves ∫ L_nu dlambda)`],
    },
  };
  validateGrid(out);
  return { grid: out, info: { method: 'flux-conserving-mean', resolution: options.resolution, wavelengthMinAA: lo, wavelengthMaxAA: hi, edgesAA: edges } };
}
