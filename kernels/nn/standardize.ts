/**
 * z-score standardisation on the GPU (shaders/nn/standardize.wgsl), the twin of
 * src/flow/standardize.ts standardize / unstandardize:
 *   forward  y = (x - mean[c]) / std[c]        inverse  y = x * std[c] + mean[c]
 * over row-major (rows x cols) data, with the statistics read from a small f32 buffer (one buffer
 * may hold theta's and x's: see packStandardization). For mini-batches, kernels/nn/gather.ts can
 * fuse the same affine map into the row gather.
 * Bindings: 0 x (read; absent in place), 1 y (read_write), 2 meanStd (read), 3 uniforms.
 */
import { fold2D } from '../../src/gpu/dispatch.js';
import { type ComputeBatch, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';

export interface StandardizeShape {
  rows: number;
  cols: number;
  /** false: z-score; true: back to original units. */
  inverse?: boolean;
  /** Element offsets of mean[0] and std[0] in the meanStd buffer (defaults 0 and cols). */
  meanOffset?: number;
  stdOffset?: number;
  /** Overwrite the input (binding 1 only). */
  inPlace?: boolean;
}

export interface MeanStd {
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
}

/**
 * Lays out several standardisations back to back as [mean_0, std_0, mean_1, std_1, ...] in one f32
 * array; returns the array and each one's { meanOffset, stdOffset } for StandardizeShape / gather.
 */
export function packStandardization(...parts: MeanStd[]): { data: Float32Array; offsets: { meanOffset: number; stdOffset: number }[] } {
  let len = 0;
  for (const p of parts) {
    if (p.mean.length !== p.std.length) throw new RangeError(`standardize: mean (${p.mean.length}) and std (${p.std.length}) differ in length`);
    len += 2 * p.mean.length;
  }
  const data = new Float32Array(Math.max(len, 1));
  const offsets: { meanOffset: number; stdOffset: number }[] = [];
  let o = 0;
  for (const p of parts) {
    const d = p.mean.length;
    for (let j = 0; j < d; j++) {
      if (!(p.std[j] > 0) || !Number.isFinite(p.std[j]) || !Number.isFinite(p.mean[j])) throw new RangeError(`standardize: column ${j} has mean ${p.mean[j]}, std ${p.std[j]} (std must be finite and > 0)`);
      data[o + j] = p.mean[j];
      data[o + d + j] = p.std[j];
    }
    offsets.push({ meanOffset: o, stdOffset: o + d });
    o += 2 * d;
  }
  return { data, offsets };
}

export function standardizeProgram(s: StandardizeShape): ProgramInfo {
  const { rows, cols } = s;
  if (!Number.isInteger(rows) || rows < 1) throw new RangeError(`standardize: rows must be a positive integer, got ${rows}`);
  if (!Number.isInteger(cols) || cols < 1) throw new RangeError(`standardize: cols must be a positive integer, got ${cols}`);
  const n = rows * cols;
  if (n > 0xffffffff) throw new RangeError(`standardize: rows * cols = ${n} exceeds u32 indexing (split the data)`);
  const meanOffset = s.meanOffset ?? 0;
  const stdOffset = s.stdOffset ?? cols;
  for (const [k, v] of Object.entries({ meanOffset, stdOffset })) if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`standardize: ${k} must be a u32, got ${v}`);
  const { workgroups, gridX } = fold2D(ceilDiv(n, 256));
  return {
    name: s.inverse ? 'unstandardize' : 'standardize',
    shader: 'nn/standardize.wgsl',
    defines: { INVERSE: !!s.inverse, IN_PLACE: !!s.inPlace },
    workgroups,
    uniforms: [
      ['u32', n],
      ['u32', cols],
      ['u32', gridX],
      ['u32', meanOffset],
      ['u32', stdOffset],
    ],
    uniformBinding: 3,
  };
}

/** Records y = standardize(x) (or its inverse). In place: pass only y and set shape.inPlace. */
export function encodeStandardize(batch: ComputeBatch, bufs: { x?: GPUBuffer; y: GPUBuffer; meanStd: GPUBuffer }, shape: StandardizeShape): ComputeBatch {
  const prog = standardizeProgram(shape);
  if (shape.inPlace) return batch.add(prog, { 1: bufs.y, 2: bufs.meanStd });
  if (!bufs.x) throw new Error('standardize: x is required unless inPlace');
  if (bufs.x === bufs.y) throw new Error('standardize: x and y are the same buffer: use inPlace');
  return batch.add(prog, { 0: bufs.x, 1: bufs.y, 2: bufs.meanStd });
}
