/**
 * Register-tiled linear layers for small widths (shaders/nn/linear_rows.wgsl), the flow's
 * conditioner path on CPU drivers (llvmpipe / lavapipe):
 *
 *   rowsMatmul   Y = X op(B) (+ bias) (* act'(post)) (+ res), writing y and/or act(y)
 *                — forward Linear (+ activation, + residual) and input gradient G W^T
 *                  (+ activation backward, + skip gradient)
 *   xtg          D = [X | 1]^T G over row slices — weight and bias gradient of a Linear
 *   rowsXtg      both in one dispatch — a Linear's backward (G = rowsMatmul's X = xtg's G)
 *
 * Why: on llvmpipe a workgroup runs on one CPU thread with its invocations in SIMD lanes, barriers
 * switch coroutines, and a memory access instruction (storage or workgroup) whose address is not a
 * compile-time constant becomes a loop over the lanes with bounds checks: ~10 FMAs' worth, even when
 * every lane reads the same address. The tiled GEMM (kernels/gemm.ts) stages tiles through shared
 * memory with barriers; these kernels load straight from storage into an R x NB register tile and,
 * with subgroup broadcasts of the values a whole workgroup shares, run the flow's 35..174-wide
 * layers at 15-30 GFLOP/s on 2 cores, ~4x the GEMM path over a training step. On real GPUs the
 * tiled GEMM stays (src/flow/gpu/network.ts picks per adapter).
 *
 * Shapes are uniforms and only the tile and the epilogue are compile-time: llvmpipe needs a few
 * hundred ms (LLVM) per pipeline of these unrolled tiles, so the ~10 epilogue variants a flow uses
 * are shared by every layer shape and by both of `npm start`'s models. Matrices are row-major and
 * may be buffer sub-ranges (256-byte aligned offsets); outputs must not alias inputs.
 */
import type { UniformField } from '../../src/gpu/buffers.js';
import { type Bindings, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';
import type { Defines } from '../../src/gpu/shaderSource.js';
import type { ActivationKind } from './activation.js';

export type BufferRef = Bindings[number];

const ACT_CODE: Record<ActivationKind, number> = { relu: 0, tanh: 1 };

const MAX_DIM = 4096;
const MAX_GROUPS = 65535;

/** Register tile of rowsMatmul: R rows x NB columns per invocation. */
export interface RowsTile {
  R: number;
  NB: number;
  wg: number;
  /**
   * Share B through subgroupBroadcast: each lane loads NB / 8 values of a k step instead of NB
   * (needs NB a multiple of 8 and subgroups of >= 8 invocations: `subgroupsOf8`). llvmpipe: +25-40 %.
   */
  sg?: boolean;
}

/** Whether the device runs tiles with `sg` (the subgroups feature, subgroups of >= 8 invocations). */
export function subgroupsOf8(device: GPUDevice): boolean {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo & { subgroupMinSize?: number } }).adapterInfo;
  return device.features.has('subgroups') && (info?.subgroupMinSize ?? 0) >= 8;
}

/**
 * Tile of xtg: KB rows x NB columns of D per invocation; a workgroup is 8 invocations side by side
 * along N. `sg`: a row's X values loaded once per workgroup and broadcast (KB = 8; `subgroupsOf8`).
 */
export interface XtgTile {
  KB: number;
  NB: number;
  sg?: boolean;
}

/** Invocations per xtg workgroup (tiles along N sharing the X values of a row), and per rowsXtg one. */
const XTG_WG = 8;

/**
 * Tile and slicing choices (measured on llvmpipe, 2-core AVX2 machine, the flow's 35..174-wide
 * layers). Mutable so that benchmarks can compare settings; kernels read it when a program is made.
 */
export const LINEAR_ROWS_TUNING = {
  /**
   * rowsMatmul tile. With subgroup broadcasts on 2 threads (4096 x 50 x 50 / x 174): 8 x 8 18.7 / 19.0
   * GFLOP/s (0.25 s to compile), 16 x 8 20.9 / 22.2 (0.36 s), 8 x 16 20.7 / 23.9 (0.56 s), 16 x 16
   * 4.6 (spills); over a whole training step the larger tiles were within 2 %, and 8 x 8 wastes
   * fewer columns on narrow layers. Without subgroups 8 x 8 gives 15.2 GFLOP/s.
   */
  rows: { R: 8, NB: 8, wg: 16 } as RowsTile,
  xtg: { KB: 8, NB: 8 } as XtgTile,
  /**
   * xtg aims for this many workgroups (of one SIMD vector on llvmpipe: 2 per thread on 2 cores)
   * over tiles x slices. More slices only add partial gradients to sum (and a colSum dispatch): with
   * 2 threads a step ran 5-10 % faster with the 50-wide gradients unsliced (7 workgroups) than with
   * 11 slices, and ~5 % faster with the 30-wide ones (4 workgroups) unsliced than in 2 slices.
   * Many-core CPUs may want more ...
   */
  xtgTargetGroups: 4,
  /** ... with at least this many rows per slice. */
  xtgMinSlice: 32,
  /**
   * Backward of a Linear (src/flow/gpu/network.ts 'rows' path): its weight gradient (xtg) and input
   * gradient (rowsMatmul) as one rowsXtgProgram dispatch instead of two. Read when a plan is
   * recorded. llvmpipe, 2 threads, training samples/s separate -> fused (one process, alternated
   * epochs, medians): reference study (14 x 30, 300 -> 217 dispatches per step) at batch 256 /
   * 512 / 4096 10066 -> 12020 / 14534 -> 15987 / 25501 -> 25124; sbi default (5 x 50, 111 -> 82)
   * 20411 -> 21050 / 30650 -> 32483 / 40889 -> 41195. A 30 x 30 Linear at batch 256: xtg 107 us +
   * rowsMatmul 97 us -> 126 us (timestamps, each dispatch alone). Gains at small batches, parity
   * at 4096.
   */
  fuseBackward: true,
};

export interface RowsMatmulShape {
  M: number;
  K: number;
  N: number;
  transB?: boolean;
  hasBias?: boolean;
  /** Adds res[r * ldRes + offRes + j]. */
  hasResidual?: boolean;
  ldRes?: number;
  offRes?: number;
  /** Writes y to Y[r * ldY + offY + j] (default true). */
  outPre?: boolean;
  ldY?: number;
  offY?: number;
  /** Writes act(y) to A (M x N). */
  outAct?: boolean;
  /** Multiplies y by act'(post[r, j]) (post: M x N, the activation's forward output). */
  actGrad?: boolean;
  act?: ActivationKind;
  tile?: RowsTile;
}

function dim(name: string, what: string, v: number, min: number, max = 0xffffffff): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name}: ${what} must be an integer in ${min}..${max}, got ${v}`);
}

interface Part {
  name: string;
  defines: Defines;
  /** Params (shaders/nn/linear_rows.wgsl), without e and f. */
  fields: number[];
}

/** Defines, uniforms and workgroups of rowsMatmul (MODE 0, and the rows tiles of MODE 2). */
function rowsPart(s: RowsMatmulShape): Part & { groupsX: number; groupsY: number; tile: RowsTile } {
  const name = 'rowsMatmul';
  dim(name, 'M', s.M, 1);
  dim(name, 'K', s.K, 0, MAX_DIM);
  dim(name, 'N', s.N, 1, MAX_DIM);
  const outPre = s.outPre ?? true;
  if (!outPre && !s.outAct) throw new Error(`${name}: nothing to write (outPre and outAct both off)`);
  if ((s.outAct || s.actGrad) && !s.act) throw new Error(`${name}: outAct / actGrad need act`);
  if (s.act && !(s.act in ACT_CODE)) throw new RangeError(`${name}: act must be relu or tanh, got "${s.act}"`);
  const tile = s.tile ?? LINEAR_ROWS_TUNING.rows;
  if (tile.sg && tile.NB % 8) throw new RangeError(`${name}: subgroup tiles need NB a multiple of 8, got ${tile.NB}`);
  const G = ceilDiv(s.M, tile.R);
  const ldY = s.ldY ?? s.N;
  const ldRes = s.ldRes ?? s.N;
  const offY = s.offY ?? 0;
  const offRes = s.offRes ?? 0;
  if (ldY < s.N || ldRes < s.N) throw new RangeError(`${name}: row strides must be >= N`);
  if (s.M * Math.max(ldY, ldRes, s.K) + Math.max(offY, offRes) > 0xffffffff) throw new RangeError(`${name}: indices exceed u32`);
  const groupsX = ceilDiv(G, tile.wg);
  const groupsY = ceilDiv(s.N, tile.NB);
  if (groupsX > MAX_GROUPS) throw new RangeError(`${name}: ${s.M} rows need ${groupsX} workgroups (> ${MAX_GROUPS}); split the batch`);
  return {
    name: `${s.M}x${s.N}x${s.K}${s.transB ? ' tB' : ''}`,
    defines: {
      RNB_: `${tile.NB}u`,
      R_: `${tile.R}u`,
      WG_: tile.wg,
      RSG: !!tile.sg,
      TRANS_B: !!s.transB,
      HAS_BIAS: !!s.hasBias,
      HAS_RES: !!s.hasResidual,
      OUT_PRE: outPre,
      OUT_ACT: !!s.outAct,
      ACT_GRAD: !!s.actGrad,
      ACT: ACT_CODE[s.act ?? 'relu'],
    },
    fields: [s.M, s.K, s.N, G, ldY, offY, ldRes, offRes, 0, 0],
    groupsX,
    groupsY,
    tile,
  };
}

const u32s = (v: number[]): UniformField[] => v.map((x) => ['u32', x]);

/** Bindings: 0 X, 1 B, 2 Y (outPre), 3 bias, 5 res, 6 A (outAct), 7 post (actGrad). */
export function rowsMatmulProgram(s: RowsMatmulShape): ProgramInfo {
  const p = rowsPart(s);
  return {
    name: `rowsMatmul ${p.name}`,
    shader: 'nn/linear_rows.wgsl',
    defines: { MODE: 0, SG: !!p.tile.sg, ...p.defines },
    workgroups: [p.groupsX, p.groupsY, 1],
    uniforms: u32s([...p.fields, 0, 0]),
    uniformBinding: 4,
  };
}

export interface RowsMatmulBuffers {
  x: BufferRef;
  b: BufferRef;
  y?: BufferRef;
  bias?: BufferRef;
  res?: BufferRef;
  a?: BufferRef;
  post?: BufferRef;
}

export function rowsMatmulBindings(r: RowsMatmulBuffers): Bindings {
  const out: Bindings = { 0: r.x, 1: r.b };
  if (r.y) out[2] = r.y;
  if (r.bias) out[3] = r.bias;
  if (r.res) out[5] = r.res;
  if (r.a) out[6] = r.a;
  if (r.post) out[7] = r.post;
  return out;
}

export interface XtgShape {
  /** Rows summed over. */
  M: number;
  /** Columns of X (rows of the weight gradient; row K of D is the bias gradient). */
  K: number;
  /** Columns of G. */
  N: number;
  /** Rows per slice (S = ceil(M / c) slices). */
  c: number;
  /** Elements between slices' outputs (>= biasAt + N when S > 1). */
  stride: number;
  /** Offset of the bias row within a slice's output (>= K N). */
  biasAt: number;
  /** Offset of slice 0's output. */
  outOffset?: number;
  tile?: XtgTile;
}

/** xtg workgroups per slice: k blocks (of K + 1 rows: the bias row) x groups of 8 column blocks. */
function xtgGroups(K: number, N: number, tile: XtgTile): { kBlocks: number; nGroups: number } {
  return { kBlocks: ceilDiv(K + 1, tile.KB), nGroups: ceilDiv(ceilDiv(N, tile.NB), XTG_WG) };
}

/** The most slices xtgSliceRows picks for a K x N gradient, whatever M (sizes the partials). */
export function xtgMaxSlices(K: number, N: number, tile: XtgTile = LINEAR_ROWS_TUNING.xtg): number {
  const g = xtgGroups(K, N, tile);
  return Math.max(1, Math.ceil(LINEAR_ROWS_TUNING.xtgTargetGroups / (g.kBlocks * g.nGroups)));
}

/**
 * Rows per slice of xtg over M rows: enough workgroups to keep the CPU threads busy, few partial
 * gradients to sum afterwards, at least xtgMinSlice rows per slice.
 */
export function xtgSliceRows(M: number, K: number, N: number, tile: XtgTile = LINEAR_ROWS_TUNING.xtg): number {
  const S = Math.max(1, Math.min(ceilDiv(M, LINEAR_ROWS_TUNING.xtgMinSlice), xtgMaxSlices(K, N, tile)));
  return ceilDiv(M, S);
}

/** Defines, uniforms and tile groups of xtg (MODE 1, and the xtg tiles of MODE 2). */
function xtgPart(s: XtgShape): Part & { S: number; perSlice: number; tile: XtgTile } {
  const name = 'xtg';
  dim(name, 'M', s.M, 1);
  dim(name, 'K', s.K, 0, MAX_DIM);
  dim(name, 'N', s.N, 1, MAX_DIM);
  dim(name, 'c', s.c, 1);
  const tile = s.tile ?? LINEAR_ROWS_TUNING.xtg;
  if (tile.sg && tile.KB !== 8) throw new RangeError(`${name}: subgroup tiles need KB = 8, got ${tile.KB}`);
  const S = ceilDiv(s.M, s.c);
  const { kBlocks, nGroups } = xtgGroups(s.K, s.N, tile);
  if (s.biasAt < s.K * s.N) throw new RangeError(`${name}: biasAt ${s.biasAt} overlaps the weight (K N = ${s.K * s.N})`);
  if (S > 1 && s.stride < s.biasAt + s.N) throw new RangeError(`${name}: slice stride ${s.stride} < biasAt + N`);
  const outOffset = s.outOffset ?? 0;
  if (outOffset + S * s.stride > 0xffffffff || s.M * Math.max(s.K, s.N) > 0xffffffff) throw new RangeError(`${name}: indices exceed u32`);
  return {
    name: `${s.K}x${s.N} S${S}`,
    defines: { XNB_: `${tile.NB}u`, KB_: `${tile.KB}u`, XSG: !!tile.sg },
    fields: [s.M, s.K, s.N, s.c, S, nGroups, s.stride, s.biasAt, outOffset, kBlocks],
    S,
    perSlice: kBlocks * nGroups,
    tile,
  };
}

/** Bindings: 0 X (M x K; any buffer when K = 0), 1 G (M x N), 2 out. */
export function xtgProgram(s: XtgShape): ProgramInfo {
  const p = xtgPart(s);
  const groups = p.S * p.perSlice;
  if (groups > MAX_GROUPS) throw new RangeError(`xtg: ${groups} workgroups (> ${MAX_GROUPS}); use longer slices`);
  return {
    name: `xtg ${p.name}`,
    shader: 'nn/linear_rows.wgsl',
    defines: { MODE: 1, SG: !!p.tile.sg, ACT: 0, ...p.defines },
    workgroups: [groups, 1, 1],
    uniforms: u32s([...p.fields, 0, 0]),
    uniformBinding: 4,
  };
}

/**
 * A Linear's backward in one dispatch: rowsMatmul `rows` (the input gradient G W^T with its
 * epilogue) and xtg `xtg` (the weight and bias gradient [X | 1]^T G) over the same M rows, where
 * G, rows' X, is xtg's G (so rows.K = xtg.N). The fixed cost of a dispatch on llvmpipe (20-40 us)
 * is paid once instead of twice; each tile does exactly the arithmetic of its own kernel, in the
 * same order, so the results are bit for bit those of the two dispatches.
 *
 * Workgroups of 8 invocations (shaders/nn/linear_rows.wgsl MODE 2): xtg's own workgroups, spread
 * evenly among rowsMatmul's tiles in workgroups of 8 (rows.tile.wg is not used: see the shader).
 * The tiles' `sg` need what the separate kernels need (`subgroupsOf8`).
 */
export interface RowsXtgShape {
  rows: RowsMatmulShape;
  xtg: XtgShape;
}

function rowsXtgLayout(s: RowsXtgShape) {
  const rowsTile = s.rows.tile ?? LINEAR_ROWS_TUNING.rows;
  const r = rowsPart({ ...s.rows, tile: { ...rowsTile, wg: XTG_WG } });
  const x = xtgPart(s.xtg);
  if (s.rows.M !== s.xtg.M || s.rows.K !== s.xtg.N) throw new RangeError(`rows+xtg: rows' X (${s.rows.M} x ${s.rows.K}) must be xtg's G (${s.xtg.M} x ${s.xtg.N})`);
  const nx = x.S * x.perSlice;
  return { r, x, nx, total: nx + r.groupsX * r.groupsY };
}

/** Whether rowsXtgProgram can run these shapes (in one dimension of at most 65535 workgroups). */
export function rowsXtgFits(s: RowsXtgShape): boolean {
  return rowsXtgLayout(s).total <= MAX_GROUPS;
}

/** Bindings (rowsXtgBindings): 0 G, 1 B, 2 Y, 3 bias, 5 res, 6 A, 7 post as rowsMatmul; 8 xtg's X, 9 xtg's out. */
export function rowsXtgProgram(s: RowsXtgShape): ProgramInfo {
  const { r, x, nx, total } = rowsXtgLayout(s);
  if (total > MAX_GROUPS) throw new RangeError(`rows+xtg: ${total} workgroups (> ${MAX_GROUPS}); split the batch`);
  return {
    name: `rows+xtg ${r.name} | ${x.name}`,
    shader: 'nn/linear_rows.wgsl',
    defines: { ...r.defines, ...x.defines, MODE: 2, SG: !!r.tile.sg || !!x.tile.sg },
    workgroups: [total, 1, 1],
    // Params of the rows tiles (e: workgroups along the rows, f: all), then of the xtg ones (f: theirs).
    uniforms: u32s([...r.fields, r.groupsX, total, ...x.fields, 0, nx]),
    uniformBinding: 4,
  };
}

export interface RowsXtgBuffers extends RowsMatmulBuffers {
  /** xtg's X (M x xtg.K; any buffer when xtg.K = 0). */
  xf: BufferRef;
  /** xtg's output. */
  d: BufferRef;
}

const bufferOf = (r: BufferRef): GPUBuffer => ('buffer' in r ? r.buffer : r);

/**
 * Bindings of rowsXtgProgram. `x` is G for both kinds of tiles (bound once). Read-only buffers may
 * repeat (e.g. xf = post: lin2's input a1 is also its activation's output); an output may not
 * share its buffer with any other binding (WebGPU forbids a writable storage binding next to
 * another use of the same buffer in one dispatch).
 */
export function rowsXtgBindings(r: RowsXtgBuffers): Bindings {
  const out = rowsMatmulBindings(r);
  out[8] = r.xf;
  out[9] = r.d;
  const writable = new Set([2, 6, 9]);
  const entries = Object.entries(out).map(([k, v]) => [Number(k), bufferOf(v)] as const);
  for (const [k, b] of entries) {
    if (!writable.has(k)) continue;
    const other = entries.find(([k2, b2]) => k2 !== k && b2 === b);
    if (other) throw new Error(`rows+xtg: output binding ${k} shares its buffer with binding ${other[0]}`);
  }
  return out;
}
