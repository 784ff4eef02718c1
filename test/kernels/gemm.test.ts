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

/**
 * Activation epilogues (act / writePre / actGrad, with and without the residual) against float64.
 * Tolerance: the dot-product bound gamma_(K+3) (|op(A)||op(B)| + |bias|) (Higham eq. 3.5), times
 * |act'| where the derivative multiplies, plus 2u of each later add; tanh' = 1 - post^2 is itself
 * rounded (a few u of 1 + post^2, times |G W^T|). act outputs: relu and tanh are 1-Lipschitz, so
 * the pre-activation bound carries over; tanh adds 2e-6 absolute (f32 exp and division, |tanh| <= 1).
 * Outputs start filled with a sentinel that must survive in the gaps between strided batch items.
 */
describe('gemm activation epilogues vs float64 reference', () => {
  const U = 2 ** -24;
  const gamma = (n: number) => (n * U) / (1 - n * U);
  const SENTINEL = 12345.5;
  type Kind = 'relu' | 'tanh';
  interface EpiCase {
    M: number;
    N: number;
    K: number;
    batch?: number;
    /** Gap (elements) after each batch item of C / R / post / act, and of A. */
    gapC?: number;
    gapA?: number;
    broadcastB?: boolean;
    transB?: boolean;
    bias?: boolean;
    residual?: boolean;
    act?: Kind;
    writePre?: boolean;
    actGrad?: Kind;
    tile?: typeof TILE_LARGE;
  }

  async function checkEpi(c: EpiCase): Promise<void> {
    const { M, N, K } = c;
    const batch = c.batch ?? 1;
    const kind = (c.act ?? c.actGrad)!;
    const label = `gemm epilogue ${JSON.stringify(c)}`;
    const strideA = M * K + (c.gapA ?? 0);
    const strideB = c.broadcastB ? 0 : K * N;
    const strideC = M * N + (c.gapC ?? 0);
    const lenC = batch * strideC;
    const a = randomF32(batch * strideA, 31 + M + K);
    const b = randomF32((c.broadcastB ? 1 : batch) * K * N, 37 + N);
    const bias = c.bias ? randomF32(N, 41) : undefined;
    const r = c.residual ? randomF32(lenC, 43) : undefined;
    let post: Float32Array | undefined;
    if (c.actGrad) {
      // Forward outputs: tanh in (-1, 1); relu >= 0 with exact zeros (relu'(0) = 0, torch's convention).
      post = randomF32(lenC, 47);
      if (c.actGrad === 'relu') post = post.map((v, i) => (i % 3 === 0 ? 0 : Math.abs(v)));
    }
    const writePre = c.writePre ?? true;
    const dev = ctx.device;
    const bufs = {
      a: uploadBuffer(dev, a),
      b: uploadBuffer(dev, b),
      c: writePre ? uploadBuffer(dev, new Float32Array(lenC).fill(SENTINEL)) : undefined,
      bias: bias ? uploadBuffer(dev, bias) : undefined,
      residual: r ? uploadBuffer(dev, r) : undefined,
      act: c.act ? uploadBuffer(dev, new Float32Array(lenC).fill(SENTINEL)) : undefined,
      post: post ? uploadBuffer(dev, post) : undefined,
    };
    try {
      await encodeGemm(new ComputeBatch(dev), bufs, {
        M, N, K, batch, transB: c.transB, strideA, strideB, strideC, strideBias: 0, tile: c.tile,
        act: c.act, writePre: c.writePre, actGrad: c.actGrad,
      }).run();
      const want = new Float64Array(lenC).fill(SENTINEL);
      const tol = new Float64Array(lenC);
      const inside = new Uint8Array(lenC);
      for (let i = 0; i < batch; i++) {
        const ai = a.subarray(i * strideA, i * strideA + M * K);
        const bi = c.broadcastB ? b : b.subarray(i * K * N, (i + 1) * K * N);
        const shape = { M, N, K, transB: c.transB };
        const s = gemmRef(ai, bi, shape, { bias });
        const mag = gemmRef(ai.map(Math.abs), bi.map(Math.abs), shape, { bias: bias?.map(Math.abs) });
        for (let e = 0; e < M * N; e++) {
          const o = i * strideC + e;
          let y = s[e];
          let t = gamma(K + 3) * mag[e];
          if (post) {
            const p = post[o];
            const d = kind === 'tanh' ? 1 - p * p : p > 0 ? 1 : 0;
            t = t * Math.abs(d) + (kind === 'tanh' ? 4 * U * (1 + p * p) * Math.abs(y) : 0);
            y *= d;
          }
          if (r) {
            y += r[o];
            t += 2 * U * (Math.abs(y) + Math.abs(r[o]));
          }
          want[o] = y;
          tol[o] = t + 1e-30;
          inside[o] = 1;
        }
      }
      const checkOut = async (buf: GPUBuffer, w: Float64Array, atol: number, what: string) => {
        const got = await readFloat32(dev, buf, 0, lenC);
        expectAllClose(got, w, { bound: tol, atol, label: `${label} ${what}` });
        for (let o = 0; o < lenC; o++) if (!inside[o]) expect(got[o], `${label}: ${what}[${o}] between batch items was written`).toBe(SENTINEL);
      };
      if (bufs.c) await checkOut(bufs.c, want, 0, 'C');
      if (bufs.act) {
        const f = kind === 'tanh' ? Math.tanh : (v: number) => Math.max(v, 0);
        await checkOut(bufs.act, want.map((v, o) => (inside[o] ? f(v) : v)), kind === 'tanh' ? 2e-6 : 0, 'act');
      }
    } finally {
      for (const v of Object.values(bufs)) v?.destroy();
    }
  }

  const SMALL32 = { wgX: 8, wgY: 8, tm4: 1, tn4: 1, bk: 8 };
  // `few`: only the residual variants (the large tile compiles slowly on CPU drivers).
  const shapes: { name: string; c: EpiCase; few?: boolean }[] = [
    { name: '1x1x1', c: { M: 1, N: 1, K: 1 } },
    { name: '37x5x3', c: { M: 37, N: 5, K: 3, tile: SMALL32 } },
    { name: '130x50x33', c: { M: 130, N: 50, K: 33, tile: TILE_SMALL } },
    { name: '131x129x17 large tile', c: { M: 131, N: 129, K: 17, tile: TILE_LARGE }, few: true },
    { name: 'batch 3, strided, broadcast B', c: { M: 33, N: 17, K: 9, batch: 3, gapA: 5, gapC: 7, broadcastB: true } },
  ];
  for (const kind of ['relu', 'tanh'] as const) {
    for (const { name, c, few } of shapes) {
      if (!few) it(`${name} ${kind}: act(C + bias) with C`, () => checkEpi({ ...c, bias: true, act: kind }));
      it(`${name} ${kind}: act(C + bias + R), C too`, () => checkEpi({ ...c, bias: true, residual: true, act: kind }));
      if (!few) it(`${name} ${kind}: act(C + bias + R) only (writePre = false)`, () => checkEpi({ ...c, bias: true, residual: true, act: kind, writePre: false }));
      if (!few) it(`${name} ${kind}: act(C) only, no bias`, () => checkEpi({ ...c, act: kind, writePre: false }));
      if (!few) it(`${name} ${kind}: (G W^T) act'(post)`, () => checkEpi({ ...c, transB: true, actGrad: kind }));
      it(`${name} ${kind}: (G W^T) act'(post) + R`, () => checkEpi({ ...c, transB: true, actGrad: kind, residual: true }));
    }
  }

  it('the act epilogue leaves C bit-identical to the plain GEMM', async () => {
    const M = 70, N = 50, K = 50;
    const dev = ctx.device;
    const a = uploadBuffer(dev, randomF32(M * K, 1)), b = uploadBuffer(dev, randomF32(K * N, 2)), bias = uploadBuffer(dev, randomF32(N, 3)), r = uploadBuffer(dev, randomF32(M * N, 4));
    const c0 = createStorageBuffer(dev, M * N * 4), c1 = createStorageBuffer(dev, M * N * 4), act = createStorageBuffer(dev, M * N * 4);
    try {
      const batch = new ComputeBatch(dev);
      encodeGemm(batch, { a, b, c: c0, bias, residual: r }, { M, N, K });
      encodeGemm(batch, { a, b, c: c1, bias, residual: r, act }, { M, N, K, act: 'tanh' });
      await batch.run();
      expect(await readFloat32(dev, c1)).toEqual(await readFloat32(dev, c0));
    } finally {
      for (const x of [a, b, bias, r, c0, c1, act]) x.destroy();
    }
  });

  it('rejects inconsistent epilogue options and buffers', () => {
    expect(() => gemmProgram({ M: 1, N: 1, K: 1, act: 'relu', actGrad: 'relu' })).toThrow(/exclusive/);
    expect(() => gemmProgram({ M: 1, N: 1, K: 1, writePre: false })).toThrow(/needs act/);
    expect(() => gemmProgram({ M: 1, N: 1, K: 1, act: 'relu', writePre: false, beta: 1 })).toThrow(/beta/);
    expect(() => gemmProgram({ M: 1, N: 1, K: 1, act: 'sigmoid' as 'relu' })).toThrow(/relu or tanh/);
    const dev = ctx.device;
    const x = createStorageBuffer(dev, 4);
    try {
      expect(() => encodeGemm(new ComputeBatch(dev), { a: x, b: x, c: x }, { M: 1, N: 1, K: 1, act: 'relu' })).toThrow(/act buffer/);
      expect(() => encodeGemm(new ComputeBatch(dev), { a: x, b: x, c: x }, { M: 1, N: 1, K: 1, actGrad: 'tanh' })).toThrow(/post buffer/);
      expect(() => encodeGemm(new ComputeBatch(dev), { a: x, b: x, c: x, act: x }, { M: 1, N: 1, K: 1, act: 'relu', writePre: false })).toThrow(/c buffer/);
    } finally {
      x.destroy();
    }
  });
});

/**
 * onesRow: C = [op(A); 1^T] op(B) with transA, the ones row stored at onesAt (a split-K weight
 * gradient X^T G with its bias partial 1^T G in the same dispatch), against float64.
 * Layout of each batch item of C: M x N matrix | gap (sentinel) | ones row (N) | gapC (sentinel);
 * every sentinel must survive. Tolerance: gamma_(K+2) |alpha| |op(A)||op(B)| entrywise (Higham
 * eq. 3.5); the ones row is the same bound with |op(A)| = 1.
 */
describe('gemm onesRow (column sums of op(B) as an extra output row) vs float64 reference', () => {
  const U = 2 ** -24;
  const gamma = (n: number) => (n * U) / (1 - n * U);
  const SENTINEL = -777.25;
  const SMALL32 = { wgX: 8, wgY: 8, tm4: 1, tn4: 1, bk: 8 };
  const MIXED = { wgX: 16, wgY: 8, tm4: 1, tn4: 1, bk: 8 };
  interface OnesCase {
    M: number;
    N: number;
    K: number;
    batch?: number;
    /** Elements between the matrix and the ones row (onesAt = M*N + gap), and after the ones row. */
    gap?: number;
    gapC?: number;
    /** Extra elements after each batch item of A / B. */
    gapA?: number;
    gapB?: number;
    transB?: boolean;
    alpha?: number;
    tile?: typeof TILE_LARGE;
  }

  async function checkOnes(c: OnesCase): Promise<void> {
    const { M, N, K } = c;
    const batch = c.batch ?? 1;
    const alpha = c.alpha ?? 1;
    const label = `gemm onesRow ${JSON.stringify(c)}`;
    const onesAt = M * N + (c.gap ?? 0);
    const strideA = K * M + (c.gapA ?? 0);
    const strideB = K * N + (c.gapB ?? 0);
    const strideC = onesAt + N + (c.gapC ?? 0);
    const lenC = batch * strideC;
    const a = randomF32(Math.max(1, batch * strideA), 53 + M + K);
    const b = randomF32(batch * strideB, 59 + N);
    const dev = ctx.device;
    const bufs = { a: uploadBuffer(dev, a), b: uploadBuffer(dev, b), c: uploadBuffer(dev, new Float32Array(lenC).fill(SENTINEL)) };
    try {
      await encodeGemm(new ComputeBatch(dev), bufs, {
        M, N, K, batch, transA: true, transB: c.transB, alpha: c.alpha, strideA, strideB, strideC, onesRow: true, onesAt, tile: c.tile,
      }).run();
      const want = new Float64Array(lenC).fill(SENTINEL);
      const tol = new Float64Array(lenC);
      const inside = new Uint8Array(lenC);
      for (let i = 0; i < batch; i++) {
        // op(A)[m][k] = A[k*M + m] (transA); row M of op(A) is ones.
        const opA = (m: number, k: number) => (m === M ? 1 : a[i * strideA + k * M + m]);
        const opB = (k: number, n: number) => b[i * strideB + (c.transB ? n * K + k : k * N + n)];
        for (let m = 0; m <= M; m++) {
          for (let n = 0; n < N; n++) {
            let s = 0;
            let mag = 0;
            for (let k = 0; k < K; k++) {
              s += opA(m, k) * opB(k, n);
              mag += Math.abs(opA(m, k) * opB(k, n));
            }
            const o = i * strideC + (m === M ? onesAt : m * N) + n;
            want[o] = alpha * s;
            tol[o] = gamma(K + 2) * Math.abs(alpha) * mag + 1e-30;
            inside[o] = 1;
          }
        }
      }
      const got = await readFloat32(dev, bufs.c, 0, lenC);
      expectAllClose(got, want, { bound: tol, atol: 0, label });
      for (let o = 0; o < lenC; o++) if (!inside[o]) expect(got[o], `${label}: C[${o}] outside the matrix and the ones row was written`).toBe(SENTINEL);
    } finally {
      for (const v of Object.values(bufs)) v.destroy();
    }
  }

  const cases: { name: string; c: OnesCase }[] = [
    { name: 'M = 1, K = 1', c: { M: 1, N: 1, K: 1 } },
    { name: 'M = 1, N = 7, K = 300', c: { M: 1, N: 7, K: 300, gap: 3 } },
    { name: 'K = 1, 50 x 50', c: { M: 50, N: 50, K: 1, tile: TILE_SMALL } },
    { name: 'M = 0 (only the ones row)', c: { M: 0, N: 13, K: 37, gap: 5, gapC: 2 } },
    { name: 'M = 0, batch 3', c: { M: 0, N: 30, K: 129, batch: 3, gap: 34, gapC: 1, tile: SMALL32 } },
    { name: '50x50 (weight | pad to 2560 | bias), K = 131', c: { M: 50, N: 50, K: 131, gap: 2560 - 2500, tile: TILE_SMALL } },
    { name: '30x30, 32-tiles (ones row fills the tile)', c: { M: 31, N: 30, K: 77, gap: 1, tile: SMALL32 } },
    { name: '32x30, 32-tiles (ones row needs another tile row)', c: { M: 32, N: 30, K: 45, gap: 0, tile: SMALL32 } },
    { name: '63x65, 64-tiles (ones row is the tile\'s last row)', c: { M: 63, N: 65, K: 19, gap: 9, tile: TILE_SMALL } },
    { name: '64x20, 64-tiles (ones row needs another tile row)', c: { M: 64, N: 20, K: 33, gap: 0, tile: TILE_SMALL } },
    { name: '33x116, mixed tile', c: { M: 33, N: 116, K: 70, gap: 12, tile: MIXED } },
    { name: '33x116, batch 4 strided (split-K)', c: { M: 33, N: 116, K: 128, batch: 4, gap: 12, gapC: 3, gapA: 5, gapB: 7 } },
    { name: '50x50, batch 5 strided, alpha', c: { M: 50, N: 50, K: 61, batch: 5, gap: 60, gapA: 2, gapB: 1, alpha: -0.5 } },
    { name: 'transB, 37x29', c: { M: 37, N: 29, K: 41, gap: 4, transB: true } },
    { name: '130x70, large tile, batch 2', c: { M: 130, N: 70, K: 40, batch: 2, gap: 100, gapC: 5, tile: TILE_LARGE } },
    { name: '127x129, large tile (ones row is the tile\'s last row)', c: { M: 127, N: 129, K: 17, gap: 2, tile: TILE_LARGE } },
  ];
  for (const { name, c } of cases) it(name, () => checkOnes(c));
  it('130x70, default tile choice', () => checkOnes({ M: 130, N: 70, K: 40, batch: 3, gap: 64 }));

  it('picks tiles and workgroups for M + 1 rows', () => {
    expect(gemmProgram({ M: 64, N: 10, K: 3, transA: true, onesRow: true, tile: TILE_SMALL }).workgroups).toEqual([1, 2, 1]);
    expect(gemmProgram({ M: 63, N: 10, K: 3, transA: true, onesRow: true, tile: TILE_SMALL }).workgroups).toEqual([1, 1, 1]);
    expect(gemmProgram({ M: 64, N: 10, K: 3, transA: true, tile: TILE_SMALL }).workgroups).toEqual([1, 1, 1]);
    expect(gemmProgram({ M: 0, N: 10, K: 3, transA: true, onesRow: true, batch: 4 }).workgroups).toEqual([1, 1, 4]);
  });

  it('rejects unsupported combinations', () => {
    const base = { M: 4, N: 3, K: 2, transA: true, onesRow: true };
    expect(() => gemmProgram({ ...base, transA: false })).toThrow(/onesRow needs transA/);
    expect(() => gemmProgram({ ...base, hasBias: true })).toThrow(/does not combine with hasBias/);
    expect(() => gemmProgram({ ...base, beta: 1 })).toThrow(/does not combine with beta/);
    expect(() => gemmProgram({ ...base, hasResidual: true })).toThrow(/does not combine with hasResidual/);
    expect(() => gemmProgram({ ...base, act: 'relu' })).toThrow(/does not combine with act/);
    expect(() => gemmProgram({ ...base, actGrad: 'tanh' })).toThrow(/does not combine with actGrad/);
    expect(() => gemmProgram({ ...base, onesAt: 11 })).toThrow(/onesAt must be an integer >= M\*N = 12/);
    expect(() => gemmProgram({ ...base, batch: 2, strideC: 14 })).toThrow(/strideC 14 < onesAt \+ N = 15/);
    expect(() => gemmProgram({ M: 4, N: 3, K: 2, onesAt: 12 })).toThrow(/onesAt needs onesRow/);
    expect(() => gemmProgram({ ...base, M: 0, onesRow: false })).toThrow(/M must be a positive integer/);
    expect(() => gemmProgram({ ...base, K: 0 })).toThrow(/K must be a positive integer/);
  });
});
