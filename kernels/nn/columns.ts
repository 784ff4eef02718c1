/**
 * Column plumbing of the coupling flow on the GPU (shaders/nn/columns.wgsl), plus the epoch's row
 * order and the posterior base normals:
 *
 *   condInput    cond = [v[:, identity], xs] (n x (Di + F)), optionally copying v[:, identity] into
 *                vOut (the identity half of a coupling layer passes through)   — flow.ts gatherColumns
 *   scatterAdd   gOut[:, identity] = gIn[:, identity] + gc (n x Di)             — couplingBackward
 *   fill         y[offset .. offset + count) = value (e.g. zero the padded rows' gradient seeds)
 *   colSum       column sums of row chunks (bias gradients, sums of split-K partial gradients)
 *   epochOrder   order[i] = rows[perm(i)], perm = src/train/split.ts EpochPermutation bit for bit
 *   baseNormals  z[i, p] = standardNormal(seed, purpose, base_i + p) (src/flow/rng.ts), in f32
 *
 * The identity columns are one contiguous range [i0, i0 + Di) of the P columns (as layout.ts
 * couplingSplit makes them); the transformed columns are the spline kernels' (stride, offset)
 * views, so no gather is needed for them. Matrices are row-major; bindings may be sub-ranges
 * (256-byte aligned offsets); outputs must not alias inputs.
 */
import { fold2D } from '../../src/gpu/dispatch.js';
import { type Bindings, type ComputeBatch, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';

export type BufferRef = Bindings[number];

export const COLUMNS_WORKGROUP = 256;
/** Feistel rounds of src/train/split.ts EpochPermutation (the shader has them unrolled as 6 keys). */
export const EPOCH_FEISTEL_ROUNDS = 6;

type U = ['u32' | 'f32', number];

interface Fields {
  n: number;
  cols: number;
  gridX: number;
  P?: number;
  F?: number;
  i0?: number;
  di?: number;
  offset?: number;
  value?: number;
  half?: number;
  mask?: number;
  keys?: ArrayLike<number>;
  seedLo?: number;
  seedHi?: number;
  purpose?: number;
}

function uniforms(f: Fields): U[] {
  const k = f.keys ?? [];
  return [
    ['u32', f.n],
    ['u32', f.cols],
    ['u32', f.gridX],
    ['u32', f.P ?? 0],
    ['u32', f.F ?? 0],
    ['u32', f.i0 ?? 0],
    ['u32', f.di ?? 0],
    ['u32', f.offset ?? 0],
    ['f32', f.value ?? 0],
    ['u32', f.half ?? 0],
    ['u32', f.mask ?? 0],
    ...Array.from({ length: EPOCH_FEISTEL_ROUNDS }, (_, i): U => ['u32', k[i] ?? 0]),
    ['u32', f.seedLo ?? 0],
    ['u32', f.seedHi ?? 0],
    ['u32', f.purpose ?? 0],
  ];
}

const posInt = (name: string, k: string, v: number, min = 1) => {
  if (!Number.isInteger(v) || v < min || v > 0xffffffff) throw new RangeError(`${name}: ${k} must be an integer in ${min}..2^32-1, got ${v}`);
};

function grid(name: string, elements: number): { workgroups: [number, number, number]; gridX: number } {
  if (elements > 0xffffffff) throw new RangeError(`${name}: ${elements} elements exceed u32 indexing (split the batch)`);
  return fold2D(ceilDiv(elements, COLUMNS_WORKGROUP));
}

export interface CondInputShape {
  n: number;
  /** Columns of v (theta dimension). */
  P: number;
  /** Context columns (0: no xs binding). */
  F: number;
  /** First identity column and their count (Di + F >= 1). */
  identityStart: number;
  identityCount: number;
  /** Also write v[:, identity] into vOut (binding 3). */
  copy?: boolean;
}

/** Bindings: 0 v (n x P), 1 xs (n x F; F > 0), 2 cond (n x (Di + F)), 3 vOut (n x P; copy). */
export function condInputProgram(s: CondInputShape): ProgramInfo {
  const name = 'condInput';
  posInt(name, 'n', s.n);
  posInt(name, 'P', s.P);
  posInt(name, 'F', s.F, 0);
  posInt(name, 'identityCount', s.identityCount, 0);
  posInt(name, 'identityStart', s.identityStart, 0);
  if (s.identityStart + s.identityCount > s.P) throw new RangeError(`${name}: identity columns ${s.identityStart}..${s.identityStart + s.identityCount} exceed P = ${s.P}`);
  const cols = s.identityCount + s.F;
  if (cols < 1) throw new RangeError(`${name}: no identity columns and no context: the conditioner input is empty`);
  if (s.copy && s.identityCount === 0) throw new RangeError(`${name}: copy needs identity columns`);
  const { workgroups, gridX } = grid(name, s.n * cols);
  if (s.n * s.P > 0xffffffff) throw new RangeError(`${name}: n x P exceeds u32 indexing`);
  return {
    name,
    shader: 'nn/columns.wgsl',
    defines: { MODE: 0, HAS_X: s.F > 0, COPY: !!s.copy },
    workgroups,
    uniforms: uniforms({ n: s.n, cols, gridX, P: s.P, F: s.F, i0: s.identityStart, di: s.identityCount }),
    uniformBinding: 5,
  };
}

export function condInputBindings(b: { v: BufferRef; xs?: BufferRef; cond: BufferRef; vOut?: BufferRef }, s: CondInputShape): Bindings {
  const out: Bindings = { 0: b.v, 2: b.cond };
  if (s.F > 0) {
    if (!b.xs) throw new Error('condInput: F > 0 needs xs');
    out[1] = b.xs;
  }
  if (s.copy) {
    if (!b.vOut) throw new Error('condInput: copy needs vOut');
    out[3] = b.vOut;
  }
  return out;
}

export interface ScatterAddShape {
  n: number;
  P: number;
  identityStart: number;
  identityCount: number;
}

/** Bindings: 0 gIn (n x P), 1 gc (n x Di), 2 gOut (n x P). */
export function scatterAddProgram(s: ScatterAddShape): ProgramInfo {
  const name = 'scatterAdd';
  posInt(name, 'n', s.n);
  posInt(name, 'P', s.P);
  posInt(name, 'identityCount', s.identityCount);
  posInt(name, 'identityStart', s.identityStart, 0);
  if (s.identityStart + s.identityCount > s.P) throw new RangeError(`${name}: identity columns exceed P = ${s.P}`);
  if (s.n * s.P > 0xffffffff) throw new RangeError(`${name}: n x P exceeds u32 indexing`);
  const { workgroups, gridX } = grid(name, s.n * s.identityCount);
  return {
    name,
    shader: 'nn/columns.wgsl',
    defines: { MODE: 1 },
    workgroups,
    uniforms: uniforms({ n: s.n, cols: s.identityCount, gridX, P: s.P, i0: s.identityStart, di: s.identityCount }),
    uniformBinding: 5,
  };
}

export function scatterAddBindings(b: { gIn: BufferRef; gc: BufferRef; gOut: BufferRef }): Bindings {
  return { 0: b.gIn, 1: b.gc, 2: b.gOut };
}

/** y[offset .. offset + count) = value. Binding: 2 y. */
export function fillProgram(s: { count: number; offset?: number; value?: number }): ProgramInfo {
  const name = 'fill';
  posInt(name, 'count', s.count);
  posInt(name, 'offset', s.offset ?? 0, 0);
  const { workgroups, gridX } = grid(name, s.count);
  return {
    name,
    shader: 'nn/columns.wgsl',
    defines: { MODE: 2 },
    workgroups,
    uniforms: uniforms({ n: s.count, cols: 1, gridX, offset: s.offset ?? 0, value: s.value ?? 0 }),
    uniformBinding: 5,
  };
}

export interface ColSumShape {
  /** Rows of g summed (row r of chunk s: r in [s c, min((s + 1) c, rows))). */
  rows: number;
  cols: number;
  /** Row stride of g (default cols). */
  rowStride?: number;
  /** Rows per chunk c (default rows: one chunk) and number of chunks S (default ceil(rows / c)). */
  chunkRows?: number;
  chunks?: number;
  /** out[s * outStride + outOffset + j] (defaults: cols, 0). */
  outStride?: number;
  outOffset?: number;
  /** GPUs: a workgroup per (chunk, 32 columns) with 8 row lanes (MODE 6) instead of a thread per (chunk, column). */
  wide?: boolean;
}

/**
 * Column sums of row chunks of g (rows x cols, row stride rowStride): a bias gradient 1^T G, per
 * split-K chunk, or the sum of S stacked partial gradients. One thread per (chunk, column), rows
 * in order. Bindings: 0 g, 2 out.
 */
export function colSumProgram(s: ColSumShape): ProgramInfo {
  const name = 'colSum';
  posInt(name, 'rows', s.rows);
  posInt(name, 'cols', s.cols);
  const rowStride = s.rowStride ?? s.cols;
  const c = s.chunkRows ?? s.rows;
  const S = s.chunks ?? Math.ceil(s.rows / c);
  const outStride = s.outStride ?? s.cols;
  const outOffset = s.outOffset ?? 0;
  posInt(name, 'rowStride', rowStride);
  posInt(name, 'chunkRows', c);
  posInt(name, 'chunks', S);
  posInt(name, 'outStride', outStride, 0);
  posInt(name, 'outOffset', outOffset, 0);
  if (rowStride < s.cols) throw new RangeError(`${name}: rowStride ${rowStride} < cols ${s.cols}`);
  if ((S - 1) * c >= s.rows) throw new RangeError(`${name}: ${S} chunks of ${c} rows: chunk ${S - 1} starts beyond the ${s.rows} rows`);
  if (s.rows * rowStride > 0xffffffff || S * outStride + outOffset > 0xffffffff) throw new RangeError(`${name}: indices exceed u32`);
  if (s.wide) {
    const blocks = ceilDiv(s.cols, 32);
    const groups = S * blocks;
    if (groups > 65535 * 65535) throw new RangeError(`${name}: ${groups} workgroups exceed the dispatch grid`);
    return {
      name: 'colSum(wide)',
      shader: 'nn/columns.wgsl',
      defines: { MODE: 6 },
      workgroups: [Math.min(groups, 65535), Math.ceil(groups / 65535), 1],
      uniforms: uniforms({ n: s.rows, cols: s.cols, gridX: blocks, P: rowStride, F: outStride, i0: c, di: S, offset: outOffset }),
      uniformBinding: 5,
    };
  }
  const { workgroups, gridX } = grid(name, S * s.cols);
  return {
    name,
    shader: 'nn/columns.wgsl',
    defines: { MODE: 5 },
    workgroups,
    uniforms: uniforms({ n: s.rows, cols: s.cols, gridX, P: rowStride, F: outStride, i0: c, di: S, offset: outOffset }),
    uniformBinding: 5,
  };
}

export function encodeColSum(batch: ComputeBatch, b: { g: BufferRef; out: BufferRef }, s: ColSumShape): ComputeBatch {
  return batch.add(colSumProgram(s), { 0: b.g, 2: b.out });
}

/** What the shader needs of src/train/split.ts EpochPermutation (pass one directly). */
export interface EpochPermutationKey {
  n: number;
  half: number;
  mask: number;
  keys: ArrayLike<number>;
}

/** order[i] = rows[perm(i)], i < n. Bindings: 0 rows (u32, n), 4 order (u32, n). */
export function epochOrderProgram(k: EpochPermutationKey): ProgramInfo {
  const name = 'epochOrder';
  posInt(name, 'n', k.n);
  if (!Number.isInteger(k.half) || k.half < 1 || k.half > 16 || k.mask !== 2 ** k.half - 1) throw new RangeError(`${name}: half must be in 1..16 with mask 2^half - 1, got ${k.half}, ${k.mask}`);
  if (k.keys.length !== EPOCH_FEISTEL_ROUNDS) throw new RangeError(`${name}: need ${EPOCH_FEISTEL_ROUNDS} round keys, got ${k.keys.length}`);
  const { workgroups, gridX } = grid(name, k.n);
  return {
    name,
    shader: 'nn/columns.wgsl',
    defines: { MODE: 3 },
    workgroups,
    uniforms: uniforms({ n: k.n, cols: 1, gridX, half: k.half, mask: k.mask, keys: k.keys }),
    uniformBinding: 5,
  };
}

export interface BaseNormalsShape {
  /** Draws (rows). */
  m: number;
  /** Normals per draw. */
  P: number;
  /** Philox seed (non-negative safe integer) and purpose word. */
  seed: number;
  purpose: number;
  /** Contiguous draws: base_i = base0 + i P (base0 = first draw index x P, a safe integer); otherwise the bases buffer. */
  base0?: number;
}

/** z[i, p] = standardNormal(seed, purpose, base_i + p). Bindings: 0 bases (u32 (lo, hi) pairs, 2m; unread with base0), 2 z (m x P). */
export function baseNormalsProgram(s: BaseNormalsShape): ProgramInfo {
  const name = 'baseNormals';
  posInt(name, 'm', s.m);
  posInt(name, 'P', s.P);
  posInt(name, 'purpose', s.purpose, 0);
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) throw new RangeError(`${name}: seed must be a non-negative safe integer, got ${s.seed}`);
  const { workgroups, gridX } = grid(name, s.m * s.P);
  const b0 = s.base0;
  if (b0 !== undefined && (!Number.isSafeInteger(b0) || b0 < 0 || !Number.isSafeInteger(b0 + s.m * s.P))) throw new RangeError(`${name}: base0 ${b0} + ${s.m} x ${s.P} is not a safe integer`);
  const contiguous = b0 === undefined ? {} : { di: 1, keys: [b0 % 4294967296 >>> 0, Math.floor(b0 / 4294967296) >>> 0] };
  return {
    name,
    shader: 'nn/columns.wgsl',
    defines: { MODE: 4 },
    workgroups,
    uniforms: uniforms({ n: s.m, cols: s.P, gridX, seedLo: s.seed % 4294967296 >>> 0, seedHi: Math.floor(s.seed / 4294967296) >>> 0, purpose: s.purpose, ...contiguous }),
    uniformBinding: 5,
  };
}

/** The first draw index when drawIndex is d0, d0 + 1, ... (then baseNormalsProgram takes base0 = d0 P and no buffer); else null. */
export function contiguousDraws(drawIndex: ArrayLike<number>): number | null {
  const n = drawIndex.length;
  if (n === 0) return null;
  const d0 = drawIndex[0];
  for (let i = 1; i < n; i++) if (drawIndex[i] !== d0 + i) return null;
  return d0;
}

/** The (lo, hi) u32 pairs of base_i = drawIndex_i * P (exact below 2^53), for baseNormalsProgram. */
export function baseNormalOffsets(drawIndex: ArrayLike<number>, P: number, out: Uint32Array = new Uint32Array(2 * drawIndex.length)): Uint32Array {
  for (let i = 0; i < drawIndex.length; i++) {
    const v = drawIndex[i] * P;
    if (!Number.isSafeInteger(v) || v < 0 || !Number.isSafeInteger(v + P - 1)) throw new RangeError(`baseNormals: draw index ${drawIndex[i]} x P = ${v} is not a safe integer`);
    out[2 * i] = v % 4294967296 >>> 0;
    out[2 * i + 1] = Math.floor(v / 4294967296) >>> 0;
  }
  return out;
}

export function encodeCondInput(batch: ComputeBatch, b: { v: BufferRef; xs?: BufferRef; cond: BufferRef; vOut?: BufferRef }, s: CondInputShape): ComputeBatch {
  return batch.add(condInputProgram(s), condInputBindings(b, s));
}

export function encodeScatterAdd(batch: ComputeBatch, b: { gIn: BufferRef; gc: BufferRef; gOut: BufferRef }, s: ScatterAddShape): ComputeBatch {
  return batch.add(scatterAddProgram(s), scatterAddBindings(b));
}

export function encodeFill(batch: ComputeBatch, y: BufferRef, s: { count: number; offset?: number; value?: number }): ComputeBatch {
  return batch.add(fillProgram(s), { 2: y });
}

export function encodeEpochOrder(batch: ComputeBatch, b: { rows: BufferRef; order: BufferRef }, k: EpochPermutationKey): ComputeBatch {
  return batch.add(epochOrderProgram(k), { 0: b.rows, 4: b.order });
}

export function encodeBaseNormals(batch: ComputeBatch, b: { bases: BufferRef; z: BufferRef }, s: BaseNormalsShape): ComputeBatch {
  return batch.add(baseNormalsProgram(s), { 0: b.bases, 2: b.z });
}
