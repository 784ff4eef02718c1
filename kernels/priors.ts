/**
 * Prior sampling on the GPU (shaders/simulate/priors.wgsl), random design: one thread per galaxy
 * row fills its theta row (N x P f32) and its canonical row (N x W f32) from Philox words of
 * (seed, purpose, global row). A second entry point maps given theta rows (e.g. a Latin hypercube or
 * Sobol design sampled on the CPU) to canonical rows.
 *
 * The model (priors, theta -> canonical map, fixed values) is one storage buffer of u32 words,
 * `packPriorModel` (its layout below is the shader's contract):
 *   [0] nPriors  [1] colTable offset  [2] priorTable offset  [3..7] 0
 *   [8 .. 8+W)   base canonical row (f32 bits): fixed values and defaults
 *   colTable:    per theta column: slot (0xffffffff = none), transform (0 identity, 1 10^x)
 *   priorTable:  per prior, 16 words: kind, col, count, sub, alphaOffset, 0, 0, 0, p0..p7 (f32 bits)
 *                kind 0 uniform     p = low, high - low, low, high
 *                kind 1 loguniform  p = ln low, ln(high/low), low, high
 *                kind 2 normal      p = mean, sigma, low, high, Φ(a), 1-Φ(b), Φ(b)-Φ(a)
 *                kind 3 dirichlet   count = K concentrations at alphaOffset; fills K-1 columns
 *                                   (cumulative sums) from Philox sub-stream `sub`
 * Shapes (n, P, W, offsets) are uniforms: a new batch size does not recompile.
 */
import { fold2D } from '../src/gpu/dispatch.js';
import { type ComputeBatch, type ProgramInfo, ceilDiv } from '../src/gpu/kernel.js';

export const PRIOR_KIND = { uniform: 0, loguniform: 1, normal: 2, dirichlet: 3 } as const;
export const COLUMN_TRANSFORM = { identity: 0, pow10: 1 } as const;
/** Limits of the shader's per-thread arrays. */
export const PRIORS_MAX_COLS = 32;
export const PRIORS_MAX_K = 16;
export const PRIORS_MAX_CANONICAL = 16;
const WORKGROUP = 64;
const HEADER = 8;
const PRIOR_RECORD = 16;
const NO_SLOT = 0xffffffff;

export interface PriorKernelPrior {
  kind: number;
  col: number;
  /** Dirichlet: K; others 1. */
  count: number;
  /** Dirichlet: Philox sub-stream; others 0 (the shared scalar stream). */
  sub: number;
  /** Up to 8 f32 parameters (see the module doc). */
  params: number[];
  alpha?: readonly number[];
}

export interface PriorKernelModel {
  nCols: number;
  /** Base canonical row (length W). */
  base: ArrayLike<number>;
  /** Per theta column: canonical slot (-1 = none) and transform code. */
  columns: { slot: number; transform: number }[];
  priors: PriorKernelPrior[];
}

export function packPriorModel(m: PriorKernelModel): Uint32Array {
  const W = m.base.length;
  if (W < 1 || W > PRIORS_MAX_CANONICAL) throw new RangeError(`priors kernel: canonical width must be 1..${PRIORS_MAX_CANONICAL}, got ${W}`);
  if (m.nCols > PRIORS_MAX_COLS) throw new RangeError(`priors kernel: at most ${PRIORS_MAX_COLS} theta columns, got ${m.nCols}`);
  if (m.columns.length !== m.nCols) throw new Error(`priors kernel: ${m.columns.length} column maps for ${m.nCols} columns`);
  const colOff = HEADER + W;
  const priorOff = colOff + 2 * m.nCols;
  let alphaOff = priorOff + PRIOR_RECORD * m.priors.length;
  const nAlpha = m.priors.reduce((s, p) => s + (p.alpha?.length ?? 0), 0);
  const words = new Uint32Array(alphaOff + nAlpha);
  const f = new Float32Array(words.buffer);
  words[0] = m.priors.length;
  words[1] = colOff;
  words[2] = priorOff;
  for (let k = 0; k < W; k++) f[HEADER + k] = m.base[k];
  m.columns.forEach((c, j) => {
    if (c.slot >= W) throw new RangeError(`priors kernel: column ${j} maps to slot ${c.slot} >= ${W}`);
    words[colOff + 2 * j] = c.slot < 0 ? NO_SLOT : c.slot;
    words[colOff + 2 * j + 1] = c.transform;
  });
  m.priors.forEach((p, q) => {
    const r = priorOff + PRIOR_RECORD * q;
    const cols = p.kind === PRIOR_KIND.dirichlet ? p.count - 1 : 1;
    if (p.col + cols > m.nCols) throw new RangeError(`priors kernel: prior ${q} fills columns ${p.col}..${p.col + cols - 1} of ${m.nCols}`);
    if (p.kind === PRIOR_KIND.dirichlet && (!p.alpha || p.alpha.length !== p.count || p.count < 2 || p.count > PRIORS_MAX_K))
      throw new RangeError(`priors kernel: Dirichlet prior ${q} needs 2..${PRIORS_MAX_K} concentrations`);
    if (p.params.length > 8) throw new RangeError(`priors kernel: prior ${q} has more than 8 parameters`);
    words[r] = p.kind;
    words[r + 1] = p.col;
    words[r + 2] = p.count;
    words[r + 3] = p.sub;
    words[r + 4] = p.alpha ? alphaOff : 0;
    p.params.forEach((v, k) => (f[r + 8 + k] = v));
    if (p.alpha) {
      p.alpha.forEach((a, k) => (f[alphaOff + k] = a));
      alphaOff += p.alpha.length;
    }
  });
  return words;
}

export interface PriorsShape {
  /** Rows in this batch. */
  n: number;
  /** Theta columns P. */
  nCols: number;
  /** Canonical width W. */
  canonicalWidth: number;
}

export interface PriorsSampleShape extends PriorsShape {
  /** Non-negative safe integer seed. */
  seed: number;
  /** Global row of this batch's first row (row r draws from counter (r lo, r hi, purpose, ...)). */
  offset: number;
  /** Philox purpose word (RngPurpose.prior). */
  purpose: number;
}

function splitWords(v: number, what: string): [number, number] {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`priors kernel: ${what} must be a non-negative safe integer, got ${v}`);
  return [v % 4294967296 >>> 0, Math.floor(v / 4294967296) >>> 0];
}

function check(shape: PriorsShape): void {
  if (!Number.isInteger(shape.n) || shape.n < 1) throw new RangeError(`priors kernel: n must be a positive integer, got ${shape.n}`);
  if (!Number.isInteger(shape.nCols) || shape.nCols < 0 || shape.nCols > PRIORS_MAX_COLS) throw new RangeError(`priors kernel: nCols must be 0..${PRIORS_MAX_COLS}, got ${shape.nCols}`);
  if (!Number.isInteger(shape.canonicalWidth) || shape.canonicalWidth < 1 || shape.canonicalWidth > PRIORS_MAX_CANONICAL)
    throw new RangeError(`priors kernel: canonicalWidth must be 1..${PRIORS_MAX_CANONICAL}, got ${shape.canonicalWidth}`);
}

/** Random design: theta and canonical rows for global rows [offset, offset + n). */
export function priorsSampleProgram(shape: PriorsSampleShape): ProgramInfo {
  check(shape);
  const [seedLo, seedHi] = splitWords(shape.seed, 'seed');
  const [offLo, offHi] = splitWords(shape.offset, 'offset');
  const { workgroups, gridX } = fold2D(ceilDiv(shape.n, WORKGROUP));
  return {
    name: 'priors.sample',
    shader: 'simulate/priors.wgsl',
    entryPoint: 'sample',
    defines: {},
    workgroups,
    uniforms: [
      ['u32', shape.n],
      ['u32', shape.nCols],
      ['u32', shape.canonicalWidth],
      ['u32', gridX],
      ['u32', seedLo],
      ['u32', seedHi],
      ['u32', offLo],
      ['u32', offHi],
      ['u32', shape.purpose >>> 0],
    ],
    uniformBinding: 3,
  };
}

/** Given theta rows -> canonical rows. */
export function thetaToCanonicalProgram(shape: PriorsShape): ProgramInfo {
  check(shape);
  const { workgroups, gridX } = fold2D(ceilDiv(shape.n, WORKGROUP));
  return {
    name: 'priors.toCanonical',
    shader: 'simulate/priors.wgsl',
    entryPoint: 'to_canonical',
    defines: {},
    workgroups,
    uniforms: [
      ['u32', shape.n],
      ['u32', shape.nCols],
      ['u32', shape.canonicalWidth],
      ['u32', gridX],
      ['u32', 0],
      ['u32', 0],
      ['u32', 0],
      ['u32', 0],
      ['u32', 0],
    ],
    uniformBinding: 3,
  };
}

export interface PriorsBuffers {
  /** packPriorModel words. */
  model: GPUBuffer;
  /** n x P f32 (written by sample, read by toCanonical). */
  theta: GPUBuffer;
  /** n x W f32 (written). */
  canonical: GPUBuffer;
}

/** Theta buffers need >= 4 bytes even when P = 0 (WebGPU forbids empty bindings). */
export function encodePriorsSample(batch: ComputeBatch, bufs: PriorsBuffers, shape: PriorsSampleShape): ComputeBatch {
  return batch.add(priorsSampleProgram(shape), { 0: bufs.model, 1: bufs.theta, 2: bufs.canonical });
}

export function encodeThetaToCanonical(batch: ComputeBatch, bufs: PriorsBuffers, shape: PriorsShape): ComputeBatch {
  return batch.add(thetaToCanonicalProgram(shape), { 0: bufs.model, 1: bufs.theta, 2: bufs.canonical });
}
