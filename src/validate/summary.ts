/**
 * Per-object reductions of posterior samples: everything the validation metrics need, so the
 * samples themselves never have to be kept (validate.ts samples a held-out set in chunks and
 * reduces each chunk here; memory O(N x P), not O(N x M x P)).
 *
 * Input layout (`PosteriorCube`, as src/infer/sample.ts's PosteriorSamples.theta): sample j of
 * object i, parameter p at samples[(i * M + j) * P + p]; truth (N x P) row-major.
 *
 * Per object i and parameter p (float64):
 *   median, p16, p84   numpy-linear quantiles 0.5, 0.16, 0.84 of the M samples
 *   rank               #{j: s_j < t} (Talts et al. 2018, SBC), ties with t broken uniformly at random
 *                      (stream (seed, VALIDATE_RNG.rankTies, i * P + p)); in 0..M
 *   level              the smallest central credible level alpha whose interval
 *                      [Q((1 - alpha) / 2), Q((1 + alpha) / 2)] (numpy-linear sample quantiles Q)
 *                      contains t, i.e. |2 F(t) - 1| with F the inverse of Q; Infinity when t lies
 *                      outside [min, max] of the samples (not covered at any level)
 *   tarpMarginal       1-D TARP credibility of parameter p alone (see tarp.ts)
 * Per object i:
 *   tarp               joint TARP credibility over all P parameters (tarp.ts)
 *   status             OBJECT_STATUS: ok, or why the object is excluded (non-finite truth, non-finite
 *                      samples = sampling hit the rejection cap, non-finite features x)
 * Excluded objects keep NaN (rank -1) everywhere and are counted, never averaged in.
 */
import { uniform } from '../flow/rng.js';
import { RngPurpose } from '../simulate/rng.js';
import { lowerBound, quantileSorted, upperBound } from './special.js';

/** Philox purposes of the validation streams, from the project registry (src/simulate/rng.ts). */
export const VALIDATE_RNG = {
  tarpReference: RngPurpose.tarpReference,
  rankTies: RngPurpose.rankTies,
} as const;

export const OBJECT_STATUS = { ok: 0, nonFiniteTruth: 1, nonFiniteSamples: 2, nonFiniteX: 3 } as const;
export type ObjectStatusCode = (typeof OBJECT_STATUS)[keyof typeof OBJECT_STATUS];

/** N objects x M samples x P parameters (see the module comment for the layout). */
export interface PosteriorCube {
  n: number;
  m: number;
  p: number;
  samples: ArrayLike<number>;
}

/** The standardisation box of TARP: theta' = (theta - low) / (high - low). */
export interface TarpBox {
  low: Float64Array;
  high: Float64Array;
}

export interface PosteriorSummaries {
  n: number;
  P: number;
  M: number;
  truth: Float64Array;
  median: Float64Array;
  p16: Float64Array;
  p84: Float64Array;
  rank: Int32Array;
  level: Float64Array;
  tarpMarginal: Float64Array;
  tarp: Float64Array;
  status: Uint8Array;
}

export interface SummarizeOptions {
  /** Seed of the TARP reference points and the rank tie-breaks (default 0). */
  seed?: number;
  /** TARP standardisation box (default: none, TARP values NaN). */
  box?: TarpBox | null;
}

export function createSummaries(n: number, P: number, M: number): PosteriorSummaries {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`summaries: N must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(P) || P < 1) throw new RangeError(`summaries: P must be a positive integer, got ${P}`);
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`summaries: M (samples per object) must be a positive integer, got ${M}`);
  const nan = (k: number) => new Float64Array(k).fill(NaN);
  return {
    n,
    P,
    M,
    truth: nan(n * P),
    median: nan(n * P),
    p16: nan(n * P),
    p84: nan(n * P),
    rank: new Int32Array(n * P).fill(-1),
    level: nan(n * P),
    tarpMarginal: nan(n * P),
    tarp: nan(n),
    status: new Uint8Array(n),
  };
}

/**
 * Smallest central credible level containing t (see the module comment), from the ascending samples
 * c[0..M). Ties (t equal to samples) take the level closest to 0.
 */
export function centralLevel(c: ArrayLike<number>, t: number, M: number = c.length): number {
  if (M < 1 || Number.isNaN(t)) return NaN;
  const a = lowerBound(c, t, M);
  const b = upperBound(c, t, M);
  if (b === 0 || a === M) return Infinity;
  if (M === 1) return 0; // t === c[0]
  let F: number;
  if (a < b) F = Math.min((b - 1) / (M - 1), Math.max(a / (M - 1), 0.5));
  else F = (a - 1 + (t - c[a - 1]) / (c[a] - c[a - 1])) / (M - 1);
  return Math.abs(2 * F - 1);
}

/** Rank of t among ascending c[0..M): #{< t} plus a uniform share (u in [0, 1)) of the ties. */
export function rankOf(c: ArrayLike<number>, t: number, u: number, M: number = c.length): number {
  const less = lowerBound(c, t, M);
  const eq = upperBound(c, t, M) - less;
  return less + (eq > 0 ? Math.min(eq, Math.floor(u * (eq + 1))) : 0);
}

/**
 * Reduces objects [start, start + count) of `s` from their truth (count x P) and samples
 * (count x M x P); object k of the chunk is global object start + k (random streams use that index).
 * Objects whose status is already non-ok are skipped.
 */
export function summarizeInto(
  s: PosteriorSummaries,
  start: number,
  truth: ArrayLike<number>,
  samples: ArrayLike<number>,
  count: number,
  opts: SummarizeOptions = {},
): void {
  const { P, M } = s;
  if (start < 0 || start + count > s.n) throw new RangeError(`summaries: objects [${start}, ${start + count}) outside [0, ${s.n})`);
  if (truth.length !== count * P) throw new RangeError(`summaries: truth has ${truth.length} values, expected ${count} x ${P}`);
  if (samples.length !== count * M * P) throw new RangeError(`summaries: samples have ${samples.length} values, expected ${count} x ${M} x ${P}`);
  const seed = opts.seed ?? 0;
  const box = opts.box ?? null;
  if (box && (box.low.length !== P || box.high.length !== P)) throw new RangeError(`summaries: TARP box has ${box.low.length}/${box.high.length} entries, expected ${P}`);
  const col = new Float64Array(M);
  const d2 = new Float64Array(M);
  const ref = new Float64Array(P);
  const width = new Float64Array(P);
  if (box) for (let p = 0; p < P; p++) width[p] = box.high[p] - box.low[p];
  for (let k = 0; k < count; k++) {
    const i = start + k;
    for (let p = 0; p < P; p++) s.truth[i * P + p] = truth[k * P + p];
    if (s.status[i] !== OBJECT_STATUS.ok) continue;
    let ok = true;
    for (let p = 0; p < P && ok; p++) ok = Number.isFinite(truth[k * P + p]);
    if (!ok) {
      s.status[i] = OBJECT_STATUS.nonFiniteTruth;
      continue;
    }
    const base = k * M * P;
    for (let q = 0; q < M * P && ok; q++) ok = Number.isFinite(samples[base + q]);
    if (!ok) {
      s.status[i] = OBJECT_STATUS.nonFiniteSamples;
      continue;
    }
    if (box) for (let p = 0; p < P; p++) ref[p] = uniform(seed, VALIDATE_RNG.tarpReference, i * P + p);
    for (let p = 0; p < P; p++) {
      const t = truth[k * P + p];
      for (let j = 0; j < M; j++) col[j] = samples[base + j * P + p];
      col.sort();
      const ip = i * P + p;
      s.median[ip] = quantileSorted(col, 0.5);
      s.p16[ip] = quantileSorted(col, 0.16);
      s.p84[ip] = quantileSorted(col, 0.84);
      s.rank[ip] = rankOf(col, t, upperBound(col, t) > lowerBound(col, t) ? uniform(seed, VALIDATE_RNG.rankTies, ip) : 0);
      s.level[ip] = centralLevel(col, t);
      if (box) {
        // 1-D TARP: samples closer than the truth to the reference R (original units: monotone map).
        const R = box.low[p] + ref[p] * width[p];
        const d = Math.abs(t - R);
        const less = lowerBound(col, R + d) - upperBound(col, R - d);
        const eq = d > 0 ? upperBound(col, R + d) - lowerBound(col, R + d) + upperBound(col, R - d) - lowerBound(col, R - d) : upperBound(col, R) - lowerBound(col, R);
        s.tarpMarginal[ip] = (Math.max(0, less) + eq / 2 + 0.5) / (M + 1);
      }
    }
    if (box) {
      let dt = 0;
      for (let p = 0; p < P; p++) {
        const v = (truth[k * P + p] - box.low[p]) / width[p] - ref[p];
        dt += v * v;
      }
      d2.fill(0);
      for (let j = 0; j < M; j++) {
        let a = 0;
        for (let p = 0; p < P; p++) {
          const v = (samples[base + j * P + p] - box.low[p]) / width[p] - ref[p];
          a += v * v;
        }
        d2[j] = a;
      }
      let less = 0;
      let eq = 0;
      for (let j = 0; j < M; j++) {
        if (d2[j] < dt) less++;
        else if (d2[j] === dt) eq++;
      }
      s.tarp[i] = (less + eq / 2 + 0.5) / (M + 1);
    }
  }
}

/** Summaries of N objects at once (truth N x P, cube N x M x P). */
export function summarizePosteriors(truth: ArrayLike<number>, cube: PosteriorCube, opts: SummarizeOptions = {}): PosteriorSummaries {
  const s = createSummaries(cube.n, cube.p, cube.m);
  summarizeInto(s, 0, truth, cube.samples, cube.n, opts);
  return s;
}

/** Indices of the objects with status ok. */
export function validObjects(s: PosteriorSummaries): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.n; i++) if (s.status[i] === OBJECT_STATUS.ok) out.push(i);
  return out;
}
