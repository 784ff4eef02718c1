/**
 * GEMM program: C[b] = alpha * op(A[b]) . op(B[b]) + beta * C[b] + bias[b] (+ R[b]), batched.
 * Shapes are uniforms; transposes, bias, beta, the epilogue and the tile configuration are
 * compile-time defines (the pipeline cache key).
 *
 * Activation epilogues (shaders/linalg/gemm.wgsl header), so that an MLP's activations cost no
 * dispatch of their own:
 *   act:      also writes act(C) to the `act` buffer (the forward residual is added before act);
 *             writePre = false skips C itself (then no `c` buffer is bound).
 *   actGrad:  C = (alpha op(A) op(B) + ...) * act'(post) + R, act' from the forward output `post`.
 *
 * onesRow (transA only, no epilogue): op(A) gets an extra row of ones, so the GEMM also writes
 * alpha * 1^T op(B) (column sums over K) at C[b] + onesAt; e.g. a split-K weight gradient X^T G
 * produces its bias partial 1^T G without a column-sum dispatch of its own.
 */
import { type Bindings, ComputeBatch, type ProgramInfo, ceilDiv } from '../src/gpu/kernel.js';
import type { ActivationKind } from './nn/activation.js';

export interface GemmTile {
  /** Workgroup size (threads) in x (columns) and y (rows). */
  wgX: number;
  wgY: number;
  /** 4x4 blocks per thread in rows / columns: tile = wgY*4*tm4 x wgX*4*tn4. */
  tm4: number;
  tn4: number;
  /** K slice per shared-memory stage. */
  bk: number;
}

/** 128x128 tiles, 8x8 outputs per thread: for large matrices. */
export const TILE_LARGE: GemmTile = { wgX: 16, wgY: 16, tm4: 2, tn4: 2, bk: 8 };
/** 64x64 tiles, 4x4 outputs per thread: more workgroups for small or skinny matrices. */
export const TILE_SMALL: GemmTile = { wgX: 16, wgY: 16, tm4: 1, tn4: 1, bk: 8 };

export interface GemmShape {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  /** Elements between batch items; 0 broadcasts one matrix to every item. Default: dense. */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  strideBias?: number;
  alpha?: number;
  /** 0 (default) overwrites C; otherwise C = ... + beta * C. */
  beta?: number;
  hasBias?: boolean;
  /** Adds a residual matrix R shaped like C (same batch stride): C = ... + R (after actGrad's multiply). */
  hasResidual?: boolean;
  /** Also writes act(C) to the `act` buffer (laid out like C). Excludes actGrad. */
  act?: ActivationKind;
  /** With `act`: whether C itself is written (default true); false needs beta = 0 and binds no C. */
  writePre?: boolean;
  /** Multiplies by act'(post) before the residual: `post` (laid out like C) holds forward outputs. */
  actGrad?: ActivationKind;
  /**
   * With transA: op(A) gets one more row (m = M) of ones; that output row, alpha * 1^T op(B), is
   * stored at element `onesAt` of each batch item's C (default M*N, i.e. C is (M+1) x N). Elements
   * between M*N and onesAt are not written. M may be 0 (then A is never read). No bias, beta,
   * residual or activation epilogue.
   */
  onesRow?: boolean;
  /** onesRow: element offset of the ones row inside a batch item of C (>= M*N). */
  onesAt?: number;
  tile?: GemmTile;
}

export function tileBytes(t: GemmTile): number {
  return (t.bk * (t.wgY * 4 * t.tm4) + t.bk * (t.wgX * 4 * t.tn4)) * 4;
}

/** Picks the tile: large tiles only when they still fill the GPU with workgroups. */
export function chooseTile(M: number, N: number, batch = 1): GemmTile {
  const largeGroups = ceilDiv(M, 128) * ceilDiv(N, 128) * batch;
  return largeGroups >= 64 ? TILE_LARGE : TILE_SMALL;
}

function check(shape: GemmShape): void {
  for (const k of ['M', 'N', 'K'] as const) {
    const v = shape[k];
    // onesRow allows M = 0: only the ones row (the column sums of op(B)) is computed.
    if (k === 'M' && shape.onesRow && v === 0) continue;
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`gemm: ${k} must be a positive integer, got ${v}`);
  }
  const t = shape.tile ?? TILE_LARGE;
  const threads = t.wgX * t.wgY;
  const bm = t.wgY * 4 * t.tm4;
  const bn = t.wgX * 4 * t.tn4;
  if ((bm * t.bk) % threads || (bn * t.bk) % threads) throw new RangeError(`gemm: tile ${JSON.stringify(t)} does not divide evenly among ${threads} threads`);
  for (const k of ['act', 'actGrad'] as const) {
    const v = shape[k];
    if (v !== undefined && v !== 'relu' && v !== 'tanh') throw new RangeError(`gemm: ${k} must be relu or tanh, got "${v}"`);
  }
  if (shape.act && shape.actGrad) throw new RangeError('gemm: act and actGrad are exclusive');
  if (shape.writePre === false) {
    if (!shape.act) throw new RangeError('gemm: writePre = false needs act (otherwise nothing is written)');
    if ((shape.beta ?? 0) !== 0) throw new RangeError('gemm: writePre = false needs beta = 0 (beta reads C)');
  }
  if (shape.onesAt !== undefined && !shape.onesRow) throw new RangeError('gemm: onesAt needs onesRow');
  if (shape.onesRow) {
    if (!shape.transA) throw new RangeError('gemm: onesRow needs transA');
    const unsupported: string[] = (['hasBias', 'hasResidual', 'act', 'actGrad'] as const).filter((k) => !!shape[k]);
    if ((shape.beta ?? 0) !== 0) unsupported.push('beta');
    if (shape.writePre === false) unsupported.push('writePre = false');
    if (unsupported.length) throw new RangeError(`gemm: onesRow does not combine with ${unsupported.join(', ')}`);
    const { M, N } = shape;
    const at = onesAtOf(shape);
    // Below M*N the ones row would overwrite (race with) the matrix rows.
    if (!Number.isInteger(at) || at < M * N) throw new RangeError(`gemm: onesAt must be an integer >= M*N = ${M * N}, got ${at}`);
    const strideC = shape.strideC ?? at + N;
    if ((shape.batch ?? 1) > 1 && strideC < at + N) throw new RangeError(`gemm: strideC ${strideC} < onesAt + N = ${at + N}: a batch item's ones row would overlap the next item`);
  }
}

function onesAtOf(shape: GemmShape): number {
  return shape.onesAt ?? shape.M * shape.N;
}

export function gemmProgram(shape: GemmShape): ProgramInfo {
  check(shape);
  const { M, N, K } = shape;
  const batch = shape.batch ?? 1;
  const onesRow = !!shape.onesRow;
  // Rows of op(A) actually computed: the ones row is one more (it may need another row of tiles).
  const rows = onesRow ? M + 1 : M;
  const tile = shape.tile ?? chooseTile(rows, N, batch);
  const bm = tile.wgY * 4 * tile.tm4;
  const bn = tile.wgX * 4 * tile.tn4;
  return {
    name: 'gemm',
    shader: 'linalg/gemm.wgsl',
    defines: {
      TRANS_A: !!shape.transA,
      TRANS_B: !!shape.transB,
      HAS_BIAS: !!shape.hasBias,
      BETA: (shape.beta ?? 0) !== 0,
      HAS_RESIDUAL: !!shape.hasResidual,
      ACT: !!shape.act,
      ACT_GRAD: !!shape.actGrad,
      ACT_TANH: (shape.act ?? shape.actGrad) === 'tanh',
      NO_PRE: shape.writePre === false,
      ONES_ROW: onesRow,
      WG_X: `${tile.wgX}u`,
      WG_Y: `${tile.wgY}u`,
      TM4: `${tile.tm4}u`,
      TN4: `${tile.tn4}u`,
      BK: `${tile.bk}u`,
    },
    workgroups: [ceilDiv(N, bn), ceilDiv(rows, bm), batch],
    uniforms: [
      ['u32', M],
      ['u32', N],
      ['u32', K],
      ['u32', shape.strideA ?? M * K],
      ['u32', shape.strideB ?? K * N],
      ['u32', shape.strideC ?? (onesRow ? onesAtOf(shape) + N : M * N)],
      ['u32', shape.strideBias ?? 0],
      ['f32', shape.alpha ?? 1],
      ['f32', shape.beta ?? 0],
      ['u32', onesRow ? onesAtOf(shape) : 0],
    ],
    uniformBinding: 4,
  };
}

/** A whole buffer, or a sub-range of one (offsets must be multiples of 256 bytes). */
export type BufferRef = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

/** Buffers of a GEMM. Outputs (c, act) must not alias each other or any input. */
export interface GemmBuffers {
  a: BufferRef;
  b: BufferRef;
  /** C; omitted only with writePre = false. */
  c?: BufferRef;
  bias?: BufferRef;
  /** Read-only residual added to C. */
  residual?: BufferRef;
  /** act(C) output (binding 6), with shape.act. */
  act?: BufferRef;
  /** Forward activation outputs (binding 7), with shape.actGrad. */
  post?: BufferRef;
}

export function gemmBindings(buffers: GemmBuffers): Bindings {
  const b: Bindings = { 0: buffers.a, 1: buffers.b };
  if (buffers.c) b[2] = buffers.c;
  if (buffers.bias) b[3] = buffers.bias;
  if (buffers.residual) b[5] = buffers.residual;
  if (buffers.act) b[6] = buffers.act;
  if (buffers.post) b[7] = buffers.post;
  return b;
}

/** Records a GEMM into `batch`. */
export function encodeGemm(batch: ComputeBatch, buffers: GemmBuffers, shape: GemmShape): ComputeBatch {
  const hasBias = shape.hasBias ?? !!buffers.bias;
  if (hasBias && !buffers.bias) throw new Error('gemm: hasBias set but no bias buffer given');
  const hasResidual = shape.hasResidual ?? !!buffers.residual;
  if (hasResidual && !buffers.residual) throw new Error('gemm: hasResidual set but no residual buffer given');
  if (!!shape.act !== !!buffers.act) throw new Error('gemm: the act option and the act buffer go together');
  if (!!shape.actGrad !== !!buffers.post) throw new Error('gemm: the actGrad option and the post buffer go together');
  if ((shape.writePre !== false) !== !!buffers.c) throw new Error('gemm: a c buffer is needed exactly when C is written (writePre)');
  return batch.add(gemmProgram({ ...shape, hasBias, hasResidual }), gemmBindings(buffers));
}
