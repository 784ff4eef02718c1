/**
 * Column sums of row chunks (kernels/nn/columns.ts colSumProgram): the per-thread kernel (MODE 5,
 * CPU drivers) and the workgroup-reduction kernel (MODE 6, GPUs) against float64 sums, on awkward
 * shapes: one row, one column, column counts around the 32-column block, chunks that do not divide
 * the rows, a row stride wider than the summed columns, strided and offset outputs, and more
 * workgroups than one grid dimension holds. f32 sums of n terms: |error| <= n u sum |g| (u = 2^-24)
 * for any order; the bound used is 4 n u sum |g|.
 */
import { describe, expect, it } from 'vitest';
import { type ColSumShape, encodeColSum } from '../../kernels/nn/columns.js';
import { readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch } from '../../src/gpu/kernel.js';
import { randomF32 } from '../../src/reference/linalg.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();
const U = 2 ** -24;

interface Case extends ColSumShape {
  label: string;
}

const CASES: Case[] = [
  { label: '1 row, 1 column', rows: 1, cols: 1 },
  { label: '65536 rows x 30 (a bias gradient)', rows: 65536, cols: 30 },
  { label: '1000 x 33 in chunks of 77 (last chunk short)', rows: 1000, cols: 33, chunkRows: 77 },
  { label: '513 x 116, row stride 130, chunks of 64, strided + offset output', rows: 513, cols: 116, rowStride: 130, chunkRows: 64, outStride: 200, outOffset: 64 },
  { label: '7 partials x 2600 columns (summing split-K partial gradients)', rows: 7, cols: 2600 },
  { label: '70000 chunks of 1 row x 1 column (grid folded over y)', rows: 70000, cols: 1, chunkRows: 1 },
];

async function run(shape: ColSumShape, g: Float32Array, outLen: number): Promise<Float32Array> {
  const dev = ctx.device;
  const gb = uploadBuffer(dev, g);
  const out = uploadBuffer(dev, new Float32Array(outLen).fill(-7)); // untouched elements stay -7
  try {
    await encodeColSum(new ComputeBatch(dev), { g: gb, out }, shape).run();
    return await readFloat32(dev, out, 0, outLen);
  } finally {
    gb.destroy();
    out.destroy();
  }
}

describe('colSum: column sums of row chunks', () => {
  for (const c of CASES) {
    for (const wide of [false, true]) {
      it(`${c.label} (${wide ? 'workgroup reduction' : 'thread per column'})`, async () => {
        const stride = c.rowStride ?? c.cols;
        const chunk = c.chunkRows ?? c.rows;
        const S = Math.ceil(c.rows / chunk);
        const outStride = c.outStride ?? c.cols;
        const off = c.outOffset ?? 0;
        const g = randomF32(c.rows * stride, 11 + c.rows, 3);
        const outLen = (S - 1) * outStride + off + c.cols + 5;
        const got = await run({ ...c, chunks: S, wide }, g, outLen);
        const written = new Set<number>();
        let worst = 0;
        for (let s = 0; s < S; s++) {
          for (let j = 0; j < c.cols; j++) {
            let sum = 0;
            let abs = 0;
            for (let r = s * chunk; r < Math.min((s + 1) * chunk, c.rows); r++) {
              sum += g[r * stride + j];
              abs += Math.abs(g[r * stride + j]);
            }
            const o = s * outStride + off + j;
            written.add(o);
            const n = Math.min(chunk, c.rows - s * chunk);
            const err = Math.abs(got[o] - sum) / (4 * n * U * abs + 1e-30);
            worst = Math.max(worst, err);
          }
        }
        expect(worst).toBeLessThanOrEqual(1);
        for (let o = 0; o < outLen; o++) if (!written.has(o)) expect(got[o]).toBe(-7);
      });
    }
  }

  it('is deterministic (fixed summation order) on the workgroup path', async () => {
    const shape = { rows: 4099, cols: 50, chunkRows: 512, chunks: 9, wide: true };
    const g = randomF32(4099 * 50, 5, 1);
    const a = await run(shape, g, 9 * 50);
    const b = await run(shape, g, 9 * 50);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });
});
