import { describe, expect, it } from 'vitest';
import { TILE_LARGE, TILE_SMALL, encodeGemm, gemmProgram } from '../../kernels/gemm.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch } from '../../src/gpu/kernel.js';
import { gemmErrorBound, gemmRef, normwiseRelError, randomF32 } from '../../src/reference/linalg.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();

interface Case {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  bias?: boolean;
  alpha?: number;
  beta?: number;
  tile?: typeof TILE_LARGE;
  broadcastB?: boolean;
}

/**
 * Runs one GEMM on the GPU and checks every entry against the float64 reference.
 * Tolerance: the inputs are exact f32 numbers, so the only error is f32 rounding in the dot
 * products; |err| <= gamma_(K+3) * (|alpha||op(A)||op(B)| + |bias| + |beta||C0|) entrywise
 * (Higham, Accuracy and Stability, eq. 3.5). A wrong index or a missed tile is far outside it.
 */
async function check(c: Case): Promise<void> {
  const { M, N, K } = c;
  const batch = c.batch ?? 1;
  const a = randomF32(batch * M * K, 11 + M);
  const b = randomF32((c.broadcastB ? 1 : batch) * K * N, 23 + N);
  const bias = c.bias ? randomF32(N, 5) : undefined;
  const c0 = c.beta ? randomF32(batch * M * N, 7) : undefined;
  const dev = ctx.device;
  const A = uploadBuffer(dev, a);
  const B = uploadBuffer(dev, b);
  const C = c0 ? uploadBuffer(dev, c0) : createStorageBuffer(dev, batch * M * N * 4);
  const Bias = bias ? uploadBuffer(dev, bias) : undefined;
  await encodeGemm(new ComputeBatch(dev), { a: A, b: B, c: C, bias: Bias }, {
    M, N, K, batch, transA: c.transA, transB: c.transB, alpha: c.alpha, beta: c.beta, tile: c.tile,
    strideB: c.broadcastB ? 0 : undefined,
  }).run();
  const got = await readFloat32(dev, C, 0, batch * M * N);
  for (const buf of [A, B, C, Bias]) buf?.destroy();
  for (let i = 0; i < batch; i++) {
    const ai = a.subarray(i * M * K, (i + 1) * M * K);
    const bi = c.broadcastB ? b : b.subarray(i * K * N, (i + 1) * K * N);
    const ci = c0?.subarray(i * M * N, (i + 1) * M * N);
    const shape = { M, N, K, transA: c.transA, transB: c.transB, alpha: c.alpha, beta: c.beta };
    const want = gemmRef(ai, bi, shape, { bias, c0: ci });
    const bound = gemmErrorBound(ai, bi, shape, { bias, c0: ci });
    const g = got.subarray(i * M * N, (i + 1) * M * N);
    expectAllClose(g, want, { bound, atol: 1e-30, label: `gemm ${JSON.stringify(c)} batch ${i}` });
  }
}

describe('gemm kernel vs float64 reference', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 1, 4096],
    [4096, 1, 1],
    [1, 4096, 1],
    [4096, 4096, 1],
    [7, 13, 5],
    [37, 53, 29],
    [63, 65, 17],
    [64, 64, 64],
    [65, 129, 127],
    [127, 1, 129],
    [129, 131, 9],
    [257, 255, 67],
  ];
  for (const [M, N, K] of shapes) {
    for (const tile of [TILE_SMALL, TILE_LARGE]) {
      it(`${M}x${K} . ${K}x${N}, tile ${tile.tm4 * 4 * tile.wgY}`, () => check({ M, N, K, tile }));
    }
  }

  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      it(`transA=${transA} transB=${transB} on 67x71x43, both tiles`, async () => {
        await check({ M: 67, N: 71, K: 43, transA, transB, tile: TILE_SMALL });
        await check({ M: 131, N: 129, K: 33, transA, transB, tile: TILE_LARGE });
      });
    }
  }

  it('bias, alpha and beta (C = 0.5 A.B + 2 C0 + bias)', () => check({ M: 45, N: 70, K: 19, bias: true, alpha: 0.5, beta: 2 }));
  it('residual: C = A.B + bias + R (the residual block epilogue)', async () => {
    const M = 37, N = 50, K = 23;
    const a = randomF32(M * K, 3), b = randomF32(K * N, 4), bias = randomF32(N, 5), r = randomF32(M * N, 6);
    const dev = ctx.device;
    const A = uploadBuffer(dev, a), B = uploadBuffer(dev, b), Bias = uploadBuffer(dev, bias), R = uploadBuffer(dev, r), C = createStorageBuffer(dev, M * N * 4);
    await encodeGemm(new ComputeBatch(dev), { a: A, b: B, c: C, bias: Bias, residual: R }, { M, N, K }).run();
    const got = await readFloat32(dev, C);
    for (const buf of [A, B, C, Bias, R]) buf.destroy();
    const ref = gemmRef(a, b, { M, N, K }, { bias }).map((v, i) => v + r[i]);
    // The dot-product bound plus one more rounding for the residual add.
    const bound = gemmErrorBound(a, b, { M, N, K }, { bias }).map((v, i) => v + Math.abs(ref[i]) * 2 ** -23);
    expectAllClose(got, ref, { bound, atol: 1e-30, label: 'gemm residual' });
  });

  it('batched with a broadcast B (shared weights)', () => check({ M: 33, N: 17, K: 23, batch: 5, broadcastB: true, bias: true }));
  it('batched, transposed, large tiles', () => check({ M: 130, N: 70, K: 40, batch: 3, transA: true, tile: TILE_LARGE }));
  it('large: 1024 x 768 . 768 x 1000 (normwise error < 1e-5)', async () => {
    const M = 1024, K = 768, N = 1000;
    const a = randomF32(M * K, 1);
    const b = randomF32(K * N, 2);
    const dev = ctx.device;
    const A = uploadBuffer(dev, a), B = uploadBuffer(dev, b), C = createStorageBuffer(dev, M * N * 4);
    await encodeGemm(new ComputeBatch(dev), { a: A, b: B, c: C }, { M, N, K }).run();
    const got = await readFloat32(dev, C);
    for (const buf of [A, B, C]) buf.destroy();
    // Check a spread of rows against the reference (the full reference takes seconds on 2 cores).
    const rows = [0, 1, 127, 128, 511, 777, 1023];
    for (const r of rows) {
      const want = gemmRef(a, b, { M, N, K }, { rowStart: r, rowEnd: r + 1 }).subarray(r * N, (r + 1) * N);
      // Random [-1,1) inputs: error grows like sqrt(K) u |row|; 1e-5 normwise is ~60x above it.
      expect(normwiseRelError(got.subarray(r * N, (r + 1) * N), want)).toBeLessThan(1e-5);
    }
  });

  it('rejects bad shapes with the parameter name', () => {
    expect(() => gemmProgram({ M: 0, N: 1, K: 1 })).toThrow(/M must be a positive integer/);
    expect(() => gemmProgram({ M: 1, N: 1.5, K: 1 })).toThrow(/N must be a positive integer/);
  });
});
