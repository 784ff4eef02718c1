import { describe, expect, it } from 'vitest';
import { type ReduceOp, encodeReduceRows, reduceRowsProgram } from '../../kernels/reduce.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch } from '../../src/gpu/kernel.js';
import { randomF32, reduceRowsRef } from '../../src/reference/linalg.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();

async function runReduce(x: Float32Array, rows: number, cols: number, op: ReduceOp): Promise<Float32Array> {
  const dev = ctx.device;
  const X = uploadBuffer(dev, x);
  const O = createStorageBuffer(dev, rows * 4);
  await encodeReduceRows(new ComputeBatch(dev), X, O, { rows, cols, op }).run();
  const out = await readFloat32(dev, O, 0, rows);
  X.destroy();
  O.destroy();
  return out;
}

/**
 * Tolerances. sum: f32 sequential + tree summation, |err| <= (cols/WG + log2 WG + 1) u sum|x| <= cols u sum|x|,
 * bounded here by cols * 2^-24 * sum|x| per row. max: exact. logsumexp: exp/log in WGSL are
 * accurate to ~2 ulp (relative 3e-7) for each term; the sum adds cols u relative; the result's
 * absolute error is <= that relative error of the sum (d log s = ds / s), plus rounding of m + log s.
 */
function tolerance(x: Float32Array, rows: number, cols: number, op: ReduceOp, want: Float64Array): Float64Array {
  const u = 2 ** -24;
  const t = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    if (op === 'sum') {
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.abs(x[r * cols + c]);
      t[r] = (cols + 2) * u * s;
    } else if (op === 'max') {
      t[r] = 0;
    } else {
      t[r] = (cols + 8) * u * 4 + 2 * u * Math.abs(want[r]);
    }
  }
  return t;
}

describe('row reduction vs float64 reference', () => {
  const shapes: [number, number][] = [
    [1, 1],
    [1, 4096],
    [4096, 1],
    [3, 7],
    [17, 63],
    [17, 64],
    [19, 65],
    [5, 255],
    [5, 257],
    [2, 1000],
    [70000, 3], // > 65535 rows in row-per-thread mode folds the dispatch into 2D
    [66000, 70], // > 65535 workgroups (one per row) folds too
  ];
  for (const op of ['sum', 'max', 'logsumexp'] as const) {
    for (const [rows, cols] of shapes) {
      it(`${op} over ${rows} x ${cols}`, async () => {
        // Scale 30 makes naive exp overflow-prone sums and large cancellations in sum.
        const x = randomF32(rows * cols, rows * 31 + cols, 30);
        const got = await runReduce(x, rows, cols, op);
        const want = reduceRowsRef(x, rows, cols, op);
        expectAllClose(got, want, { bound: tolerance(x, rows, cols, op, want), atol: 1e-30, label: `${op} ${rows}x${cols}` });
      });
    }
  }

  it('logsumexp does not overflow for values near the f32 exp limit', async () => {
    const x = new Float32Array([100, 100, 100, 0, -1e30, 200, 88, 89, 90]);
    const got = await runReduce(x, 3, 3, 'logsumexp');
    const want = reduceRowsRef(x, 3, 3, 'logsumexp');
    expectAllClose(got, want, { rtol: 1e-6, label: 'logsumexp large' });
  });

  it('rejects bad arguments', () => {
    expect(() => reduceRowsProgram({ rows: 0, cols: 1, op: 'sum' })).toThrow(/rows/);
    expect(() => reduceRowsProgram({ rows: 1, cols: 1, op: 'mean' as ReduceOp })).toThrow(/unknown op "mean"/);
  });
});
