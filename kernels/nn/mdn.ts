/**
 * Mixture density network head kernels (shaders/nn/mdn.wgsl): the f32 mirror of src/flow/mdn.ts,
 * by default one thread per row (a row's K components x C = 1 + 2P + P(P-1)/2 raw values are walked by its
 * thread; the per-thread vectors of length P live in private arrays of MAX_P).
 *
 *   logProb  raw, t -> logdet slot S = log q + P/2 log 2pi, z = 0         (the flow's forward)
 *   backward raw, t, gL = dL/dS -> gRaw = gL dS/draw                      (the flow's backward)
 *   sample   raw, z, draw indices -> t = mu_k + U_k^-1 z and S(t) + |z|^2/2 (the flow's inverse)
 *
 * The slot conventions let the flow's NLL kernel (kernels/nn/loss.ts: -|z|^2/2 - P/2 log 2pi +
 * logdet - logStdSum) serve the MDN unchanged: in training and evaluation it reads z = 0 and
 * logdet = log q + P/2 log 2pi, and seeds dL/dlogdet = -1/n; in sampling it reads the base normals
 * z and logdet = log q - log N(z; 0, I) (the NSF inverse's log-determinant plays the same role).
 *
 * Training / log-density have two schedules (MdnSchedule.perComponent): one thread per row (above;
 * MODES 0 / 1), or one thread per (row, component) (MODES 3 / 4: a workgroup of MDN_COMPONENT_WORKGROUP
 * threads holds floor(WG / K) rows, shares alpha_k and score_k in workgroup memory and reduces
 * each row's logsumexps there). Per row, the first runs 64 K (P^2 / 2) sequential work on one
 * thread and a warp's gradient stores land in 32 rows 4 K C bytes apart; the second spreads it
 * over K threads and a warp's stores cover one contiguous range (on an H100 at batch 65536, P = 8,
 * K = 10 the per-row backward took 31 % of a training step). Both are ONE dispatch each. Sampling
 * stays one thread per row (it writes P values per row).
 *
 * raw is dense row-major n x K C (the conditioner's output); t and z are (stride, offset) views
 * of row-major matrices (RowLayout, default dense n x P). Defines (pipeline key): MODE, MAX_P (the
 * smallest of 4, 8, .., 128 >= P), WG; everything else is a uniform, so a sampling plan rewrites
 * its seed and first draw in place.
 */
import { fold2D } from '../../src/gpu/dispatch.js';
import { type Bindings, type ComputeBatch, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';
import { mdnOutDim, mdnParamsPerComponent } from '../../src/flow/mdn.js';
import type { RowLayout } from './spline.js';

export type BufferRef = Bindings[number];
export type { RowLayout };

/** Threads (rows) per workgroup. */
export const MDN_WORKGROUP = 64;
/** Threads per workgroup of the per-component kernels (rows per workgroup = floor(this / K)). */
export const MDN_COMPONENT_WORKGROUP = 128;
/** Largest P the kernels take (private arrays of MAX_P f32 per thread; C = 8385 raw values per component at 128). */
export const MDN_MAX_P = 128;

export interface MdnKernelShape {
  /** Rows. */
  n: number;
  /** Dimension of t. */
  P: number;
  /** Mixture components. */
  K: number;
}

/** Thread schedule of log-density and backward (identical results up to f32 rounding). */
export interface MdnSchedule {
  /**
   * One thread per (row, component) (GPUs) instead of per row; ignored where K exceeds
   * MDN_COMPONENT_WORKGROUP (mdnPerComponentFits), which keeps the per-row kernels.
   */
  perComponent?: boolean;
}

/** Whether the per-component kernels take K components (a row's components share one workgroup). */
export function mdnPerComponentFits(K: number): boolean {
  return K <= MDN_COMPONENT_WORKGROUP;
}

export interface MdnLogProbShape extends MdnKernelShape, MdnSchedule {
  /** Layout of t (read) and of z (zeroed); default dense n x P. */
  t?: RowLayout;
  z?: RowLayout;
}

export interface MdnBackwardShape extends MdnKernelShape, MdnSchedule {
  t?: RowLayout;
}

export interface MdnSampleShape extends MdnKernelShape {
  /** Philox seed (non-negative safe integer) and purpose word of the component uniforms. */
  seed: number;
  purpose: number;
  /** Contiguous draws: row r is draw d0 + r (a safe integer); otherwise the draws buffer holds d P as (lo, hi) u32 pairs. */
  d0?: number;
  /** Layout of z (read) and of t (written); default dense n x P. */
  z?: RowLayout;
  t?: RowLayout;
}

/** The private-array size for P (a power of two >= 4, so that few pipelines serve all P). */
export function mdnMaxP(P: number): number {
  let m = 4;
  while (m < P) m *= 2;
  return m;
}

function check(name: string, s: MdnKernelShape): void {
  if (!Number.isInteger(s.n) || s.n < 1) throw new RangeError(`${name}: n must be a positive integer, got ${s.n}`);
  if (!Number.isInteger(s.P) || s.P < 1 || s.P > MDN_MAX_P) throw new RangeError(`${name}: P must be an integer in 1..${MDN_MAX_P}, got ${s.P}`);
  if (!Number.isInteger(s.K) || s.K < 1) throw new RangeError(`${name}: K must be a positive integer, got ${s.K}`);
  // Raw indices r K C + .. are u32 in the shader.
  if (s.n * mdnOutDim(s.P, s.K) > 0xffffffff) throw new RangeError(`${name}: ${s.n} x ${mdnOutDim(s.P, s.K)} raw values exceed 2^32 (split the batch)`);
}

function rowLayout(name: string, what: string, l: RowLayout | undefined, n: number, P: number): RowLayout {
  const r = l ?? { stride: P, offset: 0 };
  if (!Number.isInteger(r.stride) || !Number.isInteger(r.offset) || r.offset < 0 || r.stride < r.offset + P) {
    throw new RangeError(`${name}: ${what} layout needs integers with offset >= 0 and stride >= offset + P (${P}), got stride ${r.stride}, offset ${r.offset}`);
  }
  if ((n - 1) * r.stride + r.offset + P > 0xffffffff) throw new RangeError(`${name}: ${what} indices exceed 2^32`);
  return r;
}

interface Fields {
  t: RowLayout;
  z: RowLayout;
  seed?: number;
  purpose?: number;
  d0?: number;
}

function program(name: string, mode: 0 | 1 | 2 | 3 | 4, s: MdnKernelShape, f: Fields): ProgramInfo {
  const perComponent = mode >= 3;
  const wg = perComponent ? MDN_COMPONENT_WORKGROUP : MDN_WORKGROUP;
  const rowsPerGroup = perComponent ? Math.floor(wg / s.K) : wg;
  const { workgroups, gridX } = fold2D(ceilDiv(s.n, rowsPerGroup));
  const C = mdnParamsPerComponent(s.P);
  const seed = f.seed ?? 0;
  const d0 = f.d0 ?? 0;
  return {
    name: `${name}${perComponent ? 'PerComponent' : ''}(P<=${mdnMaxP(s.P)})`,
    shader: 'nn/mdn.wgsl',
    defines: { MODE: mode, MAX_P: `${mdnMaxP(s.P)}u`, WG: `${wg}u` },
    workgroups,
    uniforms: [
      ['u32', s.n],
      ['u32', s.P],
      ['u32', s.K],
      ['u32', C],
      ['u32', s.K * C],
      ['u32', f.t.stride],
      ['u32', f.t.offset],
      ['u32', f.z.stride],
      ['u32', f.z.offset],
      ['u32', gridX],
      ['u32', seed % 4294967296 >>> 0],
      ['u32', Math.floor(seed / 4294967296) >>> 0],
      ['u32', f.purpose ?? 0],
      ['u32', f.d0 === undefined ? 0 : 1],
      ['u32', d0 % 4294967296 >>> 0],
      ['u32', Math.floor(d0 / 4294967296) >>> 0],
      ['u32', rowsPerGroup],
    ],
    uniformBinding: 7,
  };
}

/** log q (either schedule): bindings 0 raw (n x K C), 1 t, 2 z (zeroed), 3 logdet (n; = log q + P/2 log 2pi). */
export function mdnLogProbProgram(s: MdnLogProbShape): ProgramInfo {
  const name = 'mdnLogProb';
  check(name, s);
  const mode = s.perComponent && mdnPerComponentFits(s.K) ? 3 : 0;
  return program(name, mode, s, { t: rowLayout(name, 't', s.t, s.n, s.P), z: rowLayout(name, 'z', s.z, s.n, s.P) });
}

/** Backward (either schedule): bindings 0 raw, 1 t, 4 gL (n, dL/dlogdet), 5 gRaw (n x K C, overwritten). */
export function mdnBackwardProgram(s: MdnBackwardShape): ProgramInfo {
  const name = 'mdnBackward';
  check(name, s);
  const t = rowLayout(name, 't', s.t, s.n, s.P);
  return program(name, s.perComponent && mdnPerComponentFits(s.K) ? 4 : 1, s, { t, z: t });
}

/** Sampling: bindings 0 raw, 1 z (base normals), 2 t (out), 3 logdet (n; log q(t) - log N(z)), 6 draws ((lo, hi) of d P per row; unread with d0). */
export function mdnSampleProgram(s: MdnSampleShape): ProgramInfo {
  const name = 'mdnSample';
  check(name, s);
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) throw new RangeError(`${name}: seed must be a non-negative safe integer, got ${s.seed}`);
  if (!Number.isInteger(s.purpose) || s.purpose < 0 || s.purpose > 0xffffffff) throw new RangeError(`${name}: purpose must be a u32, got ${s.purpose}`);
  if (s.d0 !== undefined && (!Number.isSafeInteger(s.d0) || s.d0 < 0 || !Number.isSafeInteger(s.d0 + s.n))) throw new RangeError(`${name}: d0 ${s.d0} + ${s.n} is not a safe integer`);
  return program(name, 2, s, { t: rowLayout(name, 't', s.t, s.n, s.P), z: rowLayout(name, 'z', s.z, s.n, s.P), seed: s.seed, purpose: s.purpose, d0: s.d0 });
}

export function encodeMdnLogProb(batch: ComputeBatch, b: { raw: BufferRef; t: BufferRef; z: BufferRef; logdet: BufferRef }, s: MdnLogProbShape): ComputeBatch {
  return batch.add(mdnLogProbProgram(s), { 0: b.raw, 1: b.t, 2: b.z, 3: b.logdet });
}

export function encodeMdnBackward(batch: ComputeBatch, b: { raw: BufferRef; t: BufferRef; gLogdet: BufferRef; gRaw: BufferRef }, s: MdnBackwardShape): ComputeBatch {
  return batch.add(mdnBackwardProgram(s), { 0: b.raw, 1: b.t, 4: b.gLogdet, 5: b.gRaw });
}

/** `draws` is bound even with d0 (any buffer: it is not read then). */
export function encodeMdnSample(batch: ComputeBatch, b: { raw: BufferRef; z: BufferRef; t: BufferRef; logdet: BufferRef; draws: BufferRef }, s: MdnSampleShape): ComputeBatch {
  return batch.add(mdnSampleProgram(s), { 0: b.raw, 1: b.z, 2: b.t, 3: b.logdet, 6: b.draws });
}
