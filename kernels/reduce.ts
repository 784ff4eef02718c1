/** Row-wise reduction program (sum, max, logsumexp) over a rows x cols row-major matrix. */
import { fold2D } from '../src/gpu/dispatch.js';
import { type ComputeBatch, type ProgramInfo, ceilDiv } from '../src/gpu/kernel.js';

export type ReduceOp = 'sum' | 'max' | 'logsumexp';
const OP_CODE: Record<ReduceOp, number> = { sum: 0, max: 1, logsumexp: 2 };

/** Rows shorter than this are reduced by one thread each; longer ones by a workgroup each. */
export const ROW_PER_THREAD_MAX_COLS = 64;

export interface ReduceShape {
  rows: number;
  cols: number;
  op: ReduceOp;
}

export function reduceRowsProgram({ rows, cols, op }: ReduceShape): ProgramInfo {
  if (!Number.isInteger(rows) || rows < 1) throw new RangeError(`reduceRows: rows must be a positive integer, got ${rows}`);
  if (!Number.isInteger(cols) || cols < 1) throw new RangeError(`reduceRows: cols must be a positive integer, got ${cols}`);
  if (!(op in OP_CODE)) throw new RangeError(`reduceRows: unknown op "${op}" (sum, max, logsumexp)`);
  const rowPerThread = cols <= ROW_PER_THREAD_MAX_COLS;
  // Workgroup size: 64 rows per group, or a power of two up to 256 threads per row.
  const wg = rowPerThread ? 64 : Math.min(256, 2 ** Math.ceil(Math.log2(cols)));
  const { workgroups, gridX } = fold2D(rowPerThread ? ceilDiv(rows, wg) : rows);
  return {
    name: `reduceRows(${op})`,
    shader: 'linalg/reduce_rows.wgsl',
    defines: { OP: OP_CODE[op], ROW_PER_THREAD: rowPerThread, WG: `${wg}u` },
    workgroups,
    uniforms: [
      ['u32', rows],
      ['u32', cols],
      ['u32', gridX],
    ],
    uniformBinding: 2,
  };
}

export function encodeReduceRows(batch: ComputeBatch, x: GPUBuffer, out: GPUBuffer, shape: ReduceShape): ComputeBatch {
  return batch.add(reduceRowsProgram(shape), { 0: x, 1: out });
}
