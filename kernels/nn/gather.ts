/**
 * Mini-batch row gather and the GPU shuffle (shaders/nn/gather.wgsl, shaders/nn/feistel.wgsl).
 *
 * Shuffle: a keyed bijection of [0, n) instead of sorting random keys. An 8-round Feistel network
 * on b = ceil(log2 n) bits plus cycle-walking is a permutation by construction (each round is
 * invertible), costs O(1) per index (fewer than 2 encryptions on average), needs one dispatch (a
 * bitonic sort of n keys needs log2(n)(log2(n)+1)/2 passes over padded powers of two, i.e. 136
 * dispatches for 65536), and any single position's row can be computed on the fly, so `gather`
 * can draw a shuffled mini-batch straight from the library with no permutation buffer at all
 * (index 'feistel'). The round keys are 8 Philox4x32-10 words of (seed, SHUFFLE_RNG_PURPOSE,
 * epoch): the same (seed, epoch) gives the same permutation on any adapter, and feistelPermutation
 * is the bit-identical CPU twin (e.g. for a CPU reference trainer that must see the same batches).
 * Caveat: a keyed Feistel family reaches only a (key-sized) subset of the n! permutations and its
 * permutations of 2^b are even; for shuffling mini-batches that is immaterial (tested: positions
 * are uniform by chi-square and the rank correlation with the identity is at noise level).
 *
 * Gather (one thread per output element): dst[r, dstCol + c] = affine(src[s(r), srcCol + c]) for
 * r < rows, c < cols, where s(r) for pos = rowOffset + r is
 *   'contiguous': floor(pos / repeat)   'buffer': idx[pos]   'feistel': perm(pos)
 *   'feistelSubset': idx[perm(pos)]     (perm of [0, n) with n = the index buffer's length)
 * and affine is none, the z-score (v - mean) / std, or its inverse, with per-column mean/std read
 * from a buffer at meanOffset / stdOffset (standardize.ts packStandardization lays them out).
 * Bindings: 0 src (f32), 1 idx (u32; 'buffer' / 'feistelSubset'), 2 dst (f32), 3 meanStd (f32;
 * affine), 5 uniforms. permutation: 4 perm out (u32), 5 uniforms.
 */
import type { UniformField } from '../../src/gpu/buffers.js';
import { fold2D } from '../../src/gpu/dispatch.js';
import { type ComputeBatch, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';
import { RngPurpose, philox4x32_10 as philox4x32 } from '../../src/simulate/rng.js';

export const GATHER_WORKGROUP = 256;
/** Philox purpose word of the training shuffle (distinct from src/flow/rng.ts and src/simulate/rng.ts purposes). */
export const SHUFFLE_RNG_PURPOSE = RngPurpose.shuffle;
export const FEISTEL_ROUNDS = 8;
/** Largest permutation domain (u32 arithmetic with one spare bit). */
export const MAX_PERMUTATION_SIZE = 2 ** 31;

export interface FeistelKey {
  n: number;
  /** ceil(log2 n) (0 for n = 1). */
  bits: number;
  /** FEISTEL_ROUNDS u32 round keys. */
  keys: Uint32Array;
}

const split = (v: number, what: string): [number, number] => {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`shuffle: ${what} must be a non-negative safe integer, got ${v}`);
  return [v % 4294967296 >>> 0, Math.floor(v / 4294967296) >>> 0];
};

/** The permutation of [0, n) for (seed, epoch). */
export function feistelKey(n: number, seed: number, epoch: number): FeistelKey {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PERMUTATION_SIZE) throw new RangeError(`shuffle: n must be an integer in 1..2^31, got ${n}`);
  const [s0, s1] = split(seed, 'seed');
  const [e0, e1] = split(epoch, 'epoch');
  const keys = new Uint32Array(FEISTEL_ROUNDS);
  keys.set(philox4x32([e0, e1, SHUFFLE_RNG_PURPOSE, 0], [s0, s1]), 0);
  keys.set(philox4x32([e0, e1, SHUFFLE_RNG_PURPOSE, 1], [s0, s1]), 4);
  return { n, bits: n <= 1 ? 0 : Math.ceil(Math.log2(n)), keys };
}

function feistelHash(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function feistelEncrypt(x: number, bits: number, keys: Uint32Array): number {
  let lw = bits >>> 1;
  let rw = bits - lw;
  let l = x >>> rw;
  let r = x & ((1 << rw) - 1);
  for (let i = 0; i < FEISTEL_ROUNDS; i++) {
    const f = feistelHash((r ^ keys[i]) >>> 0) & ((1 << lw) - 1);
    const nl = r;
    r = (l ^ f) >>> 0;
    l = nl;
    const t = lw;
    lw = rw;
    rw = t;
  }
  return ((l << rw) | r) >>> 0;
}

/** perm(i) for i in [0, n): the CPU twin of the WGSL feistel_permute. */
export function feistelPermuteIndex(i: number, k: FeistelKey): number {
  if (!(i >= 0 && i < k.n)) throw new RangeError(`shuffle: index ${i} outside [0, ${k.n})`);
  let y = feistelEncrypt(i, k.bits, k.keys);
  while (y >= k.n) y = feistelEncrypt(y, k.bits, k.keys);
  return y;
}

/** The whole permutation of [0, n) for (seed, epoch), on the CPU (bit-identical to the GPU's). */
export function feistelPermutation(n: number, seed: number, epoch: number): Uint32Array {
  const k = feistelKey(n, seed, epoch);
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = feistelPermuteIndex(i, k);
  return out;
}

function keyUniforms(k: FeistelKey | null): UniformField[] {
  const u: UniformField[] = [
    ['u32', k?.n ?? 0],
    ['u32', k?.bits ?? 0],
  ];
  for (let i = 0; i < FEISTEL_ROUNDS; i++) u.push(['u32', k ? k.keys[i] : 0]);
  return u;
}

/** perm[i] = perm(i), i < n: one dispatch. Binding 4: perm (n u32). */
export function permutationProgram(k: FeistelKey): ProgramInfo {
  const { workgroups, gridX } = fold2D(ceilDiv(k.n, GATHER_WORKGROUP));
  return {
    name: 'shuffle.permutation',
    shader: 'nn/gather.wgsl',
    entryPoint: 'permutation',
    defines: { INDEX: 0, AFFINE: 0 },
    workgroups,
    uniforms: [['u32', 0], ['u32', 0], ['u32', gridX], ...Array.from({ length: 8 }, (): ['u32', number] => ['u32', 0]), ...keyUniforms(k)],
    uniformBinding: 5,
  };
}

/** Records the permutation of [0, n) for (seed, epoch) into `perm` (u32, >= n elements). */
export function encodePermutation(batch: ComputeBatch, perm: GPUBuffer, n: number, seed: number, epoch: number): ComputeBatch {
  if (perm.size < n * 4) throw new RangeError(`shuffle: perm buffer of ${perm.size} B is too small for ${n} indices`);
  return batch.add(permutationProgram(feistelKey(n, seed, epoch)), { 4: perm });
}

export type GatherIndex =
  | { kind: 'contiguous'; repeat?: number }
  | { kind: 'buffer' }
  | { kind: 'feistel'; key: FeistelKey }
  | { kind: 'feistelSubset'; key: FeistelKey };

export type GatherAffine = 'none' | 'standardize' | 'unstandardize';

export interface GatherShape {
  /** Output rows. */
  rows: number;
  /** Columns copied per row. */
  cols: number;
  index: GatherIndex;
  /** Position of output row 0 in the index sequence (e.g. batch k * batchSize). Default 0. */
  rowOffset?: number;
  /** Source row stride in elements (default cols) and first source column (default 0). */
  srcStride?: number;
  srcCol?: number;
  /** Destination row stride (default cols) and first destination column (default 0). */
  dstStride?: number;
  dstCol?: number;
  affine?: GatherAffine;
  /** Element offsets of mean[0] and std[0] in the meanStd buffer (defaults 0 and cols). */
  meanOffset?: number;
  stdOffset?: number;
}

const INDEX_CODE = { contiguous: 0, buffer: 1, feistel: 2, feistelSubset: 3 } as const;
const AFFINE_CODE: Record<GatherAffine, number> = { none: 0, standardize: 1, unstandardize: 2 };

const u32ok = (v: number) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

export function gatherProgram(s: GatherShape): ProgramInfo {
  const { rows, cols, index } = s;
  if (!Number.isInteger(rows) || rows < 1) throw new RangeError(`gather: rows must be a positive integer, got ${rows}`);
  if (!Number.isInteger(cols) || cols < 1) throw new RangeError(`gather: cols must be a positive integer, got ${cols}`);
  if (rows * cols > 0xffffffff) throw new RangeError(`gather: rows * cols = ${rows * cols} exceeds u32 indexing (split the batch)`);
  if (!(index?.kind in INDEX_CODE)) throw new RangeError(`gather: index.kind must be contiguous, buffer, feistel or feistelSubset`);
  const affine = s.affine ?? 'none';
  if (!(affine in AFFINE_CODE)) throw new RangeError(`gather: affine must be none, standardize or unstandardize, got "${affine}"`);
  const rowOffset = s.rowOffset ?? 0;
  const repeat = index.kind === 'contiguous' ? (index.repeat ?? 1) : 1;
  const srcStride = s.srcStride ?? cols;
  const srcCol = s.srcCol ?? 0;
  const dstStride = s.dstStride ?? cols;
  const dstCol = s.dstCol ?? 0;
  const meanOffset = s.meanOffset ?? 0;
  const stdOffset = s.stdOffset ?? cols;
  for (const [k, v] of Object.entries({ rowOffset, srcStride, srcCol, dstStride, dstCol, meanOffset, stdOffset })) if (!u32ok(v)) throw new RangeError(`gather: ${k} must be a u32, got ${v}`);
  if (!Number.isInteger(repeat) || repeat < 1) throw new RangeError(`gather: repeat must be a positive integer, got ${repeat}`);
  if (srcCol + cols > srcStride) throw new RangeError(`gather: source columns ${srcCol}..${srcCol + cols} exceed the row stride ${srcStride}`);
  if (dstCol + cols > dstStride) throw new RangeError(`gather: destination columns ${dstCol}..${dstCol + cols} exceed the row stride ${dstStride}`);
  const key = index.kind === 'feistel' || index.kind === 'feistelSubset' ? index.key : null;
  if (key && rowOffset + rows > key.n) throw new RangeError(`gather: positions ${rowOffset}..${rowOffset + rows} exceed the permutation size ${key.n}`);
  const { workgroups, gridX } = fold2D(ceilDiv(rows * cols, GATHER_WORKGROUP));
  return {
    name: `gather(${index.kind}${affine === 'none' ? '' : `, ${affine}`})`,
    shader: 'nn/gather.wgsl',
    entryPoint: 'gather',
    defines: { INDEX: INDEX_CODE[index.kind], AFFINE: AFFINE_CODE[affine] },
    workgroups,
    uniforms: [
      ['u32', rows],
      ['u32', cols],
      ['u32', gridX],
      ['u32', srcStride],
      ['u32', srcCol],
      ['u32', dstStride],
      ['u32', dstCol],
      ['u32', rowOffset],
      ['u32', repeat],
      ['u32', meanOffset],
      ['u32', stdOffset],
      ...keyUniforms(key),
    ],
    uniformBinding: 5,
  };
}

export interface GatherBuffers {
  src: GPUBuffer;
  dst: GPUBuffer;
  /** u32 indices: 'buffer' and 'feistelSubset'. */
  idx?: GPUBuffer;
  /** f32 means and stds: affine != 'none'. */
  meanStd?: GPUBuffer;
}

/** Records one gather dispatch. */
export function encodeGather(batch: ComputeBatch, bufs: GatherBuffers, shape: GatherShape): ComputeBatch {
  const prog = gatherProgram(shape);
  const b: Record<number, GPUBuffer> = { 0: bufs.src, 2: bufs.dst };
  const kind = shape.index.kind;
  if (kind === 'buffer' || kind === 'feistelSubset') {
    if (!bufs.idx) throw new Error(`gather(${kind}) needs an idx buffer`);
    if (kind === 'feistelSubset' && bufs.idx.size < shape.index.key.n * 4) throw new RangeError(`gather: idx buffer of ${bufs.idx.size} B holds fewer than the permutation's ${shape.index.key.n} indices`);
    b[1] = bufs.idx;
  }
  if ((shape.affine ?? 'none') !== 'none') {
    if (!bufs.meanStd) throw new Error(`gather(${shape.affine}) needs a meanStd buffer`);
    b[3] = bufs.meanStd;
  }
  return batch.add(prog, b);
}
