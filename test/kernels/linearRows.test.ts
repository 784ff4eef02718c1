/**
 * The register-tiled linear kernels (kernels/nn/linearRows.ts) against float64 references on
 * awkward shapes: one row / column, K = 0 (bias only), sizes that are no multiple of any tile or
 * workgroup size, odd tiles, a few thousand rows (many workgroups), and 120-wide layers (beyond the
 * flow's 50-wide defaults).
 *
 * Tolerances: inputs are exact f32 numbers, so the error is f32 rounding of the dot products,
 * |err| <= gamma_(K+c) (|X||op(B)| + |bias|) entrywise (Higham eq. 3.5), times |act'| where the
 * derivative multiplies, plus a few u of the residual added last; act'(post) = 1 - post^2 (tanh) is
 * itself rounded (a few u of 1 + post^2). tanh outputs add 2e-6 absolute (f32 exp and division,
 * |tanh| <= 1). Every output buffer starts filled with a sentinel that must survive wherever the
 * kernel must not write (masked rows / columns, strided gaps, padding between weight and bias).
 */
import { describe, expect, it } from 'vitest';
import { LINEAR_ROWS_TUNING, type RowsMatmulShape, type RowsTile, type XtgTile, rowsMatmulBindings, rowsMatmulProgram, subgroupsOf8, xtgProgram } from '../../kernels/nn/linearRows.js';
import { readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { runProgram } from '../../src/gpu/kernel.js';
import { gemmRef, randomF32 } from '../../src/reference/linalg.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();
const U = 2 ** -24;
const gamma = (n: number) => (n * U) / (1 - n * U);
const SENTINEL = 12345.5;

function filled(n: number, v = SENTINEL): Float32Array {
  return new Float32Array(Math.max(n, 1)).fill(v);
}

type RowsCase = Omit<RowsMatmulShape, 'tile'> & { tile?: RowsTile };

async function checkRows(c: RowsCase): Promise<void> {
  const { M, K, N } = c;
  const dev = ctx.device;
  const label = `rowsMatmul ${JSON.stringify(c)}`;
  const x = randomF32(M * K, 3 + M + K);
  const b = randomF32(K * N, 5 + N);
  const bias = c.hasBias ? randomF32(N, 7) : undefined;
  const ldY = c.ldY ?? N;
  const offY = c.offY ?? 0;
  const ldR = c.ldRes ?? N;
  const offR = c.offRes ?? 0;
  const res = c.hasResidual ? randomF32(M * ldR + offR, 11) : undefined;
  const post = c.actGrad ? randomF32(M * N, 13) : undefined;
  const outPre = c.outPre ?? true;
  const yLen = M * ldY + offY + 5;
  const aLen = M * N + 5;
  const bufs = {
    x: uploadBuffer(dev, K > 0 ? x : new Float32Array(1)),
    b: uploadBuffer(dev, K > 0 ? b : new Float32Array(1)),
    y: outPre ? uploadBuffer(dev, filled(yLen)) : undefined,
    a: c.outAct ? uploadBuffer(dev, filled(aLen)) : undefined,
    bias: bias ? uploadBuffer(dev, bias) : undefined,
    res: res ? uploadBuffer(dev, res) : undefined,
    post: post ? uploadBuffer(dev, post) : undefined,
  };
  try {
    await runProgram(dev, rowsMatmulProgram(c), rowsMatmulBindings(bufs));
    // Reference and bound, M x N.
    const s = K > 0 ? gemmRef(x, b, { M, N, K, transB: c.transB }) : new Float64Array(M * N);
    const mag = K > 0 ? gemmRef(x.map(Math.abs), b.map(Math.abs), { M, N, K, transB: c.transB }) : new Float64Array(M * N);
    const want = new Float64Array(M * N);
    const tol = new Float64Array(M * N);
    for (let r = 0; r < M; r++) {
      for (let j = 0; j < N; j++) {
        const i = r * N + j;
        let y = s[i] + (bias ? bias[j] : 0);
        let t = gamma(K + 4) * (mag[i] + (bias ? Math.abs(bias[j]) : 0));
        if (post) {
          const p = post[i];
          const d = c.act === 'tanh' ? 1 - p * p : p > 0 ? 1 : 0;
          t = t * Math.abs(d) + (c.act === 'tanh' ? 4 * U * (1 + p * p) * Math.abs(y) : 0);
          y *= d;
        }
        if (res) {
          const rv = res[r * ldR + offR + j];
          y += rv;
          t += 2 * U * (Math.abs(y) + Math.abs(rv));
        }
        want[i] = y;
        tol[i] = t + 1e-30;
      }
    }
    if (bufs.y) {
      const got = await readFloat32(dev, bufs.y, 0, yLen);
      const inMatrix = new Float64Array(M * N);
      const written = new Uint8Array(yLen);
      for (let r = 0; r < M; r++) {
        for (let j = 0; j < N; j++) {
          inMatrix[r * N + j] = got[r * ldY + offY + j];
          written[r * ldY + offY + j] = 1;
        }
      }
      expectAllClose(inMatrix, want, { bound: tol, label: `${label} Y` });
      for (let i = 0; i < yLen; i++) if (!written[i]) expect(got[i], `${label}: Y[${i}] outside the output was written`).toBe(SENTINEL);
    }
    if (bufs.a) {
      const got = await readFloat32(dev, bufs.a, 0, aLen);
      const act = c.act === 'tanh' ? Math.tanh : (v: number) => Math.max(v, 0);
      // relu and tanh are 1-Lipschitz: the pre-activation bound carries over.
      expectAllClose(got.subarray(0, M * N), want.map(act), { bound: tol, atol: c.act === 'tanh' ? 2e-6 : 0, label: `${label} A` });
      for (let i = M * N; i < aLen; i++) expect(got[i], `${label}: A[${i}] beyond M x N was written`).toBe(SENTINEL);
    }
  } finally {
    for (const v of Object.values(bufs)) v?.destroy();
  }
}

interface XtgCase {
  M: number;
  K: number;
  N: number;
  c: number;
  biasAt: number;
  /** stride - (biasAt + N). */
  gap?: number;
  outOffset?: number;
  tile?: XtgTile;
}

async function checkXtg(t: XtgCase): Promise<void> {
  const { M, K, N, c, biasAt } = t;
  const dev = ctx.device;
  const label = `xtg ${JSON.stringify(t)}`;
  const S = Math.ceil(M / c);
  const stride = biasAt + N + (t.gap ?? 0);
  const outOffset = t.outOffset ?? 0;
  const len = outOffset + S * stride + 7;
  const x = randomF32(M * K, 17 + K);
  const g = randomF32(M * N, 19 + N);
  const bx = uploadBuffer(dev, K > 0 ? x : new Float32Array(1));
  const bg = uploadBuffer(dev, g);
  const out = uploadBuffer(dev, filled(len));
  try {
    await runProgram(dev, xtgProgram({ M, K, N, c, stride, biasAt, outOffset, tile: t.tile }), { 0: bx, 1: bg, 2: out });
    const got = await readFloat32(dev, out, 0, len);
    const written = new Uint8Array(len);
    for (let s = 0; s < S; s++) {
      const r0 = s * c;
      const r1 = Math.min(r0 + c, M);
      const want = new Float64Array((K + 1) * N);
      const tol = new Float64Array((K + 1) * N);
      const gotS = new Float64Array((K + 1) * N);
      for (let k = 0; k <= K; k++) {
        for (let j = 0; j < N; j++) {
          let sum = 0;
          let mag = 0;
          for (let r = r0; r < r1; r++) {
            const xv = k < K ? x[r * K + k] : 1;
            sum += xv * g[r * N + j];
            mag += Math.abs(xv * g[r * N + j]);
          }
          const at = outOffset + s * stride + (k < K ? k * N : biasAt) + j;
          want[k * N + j] = sum;
          tol[k * N + j] = gamma(r1 - r0 + 2) * mag + 1e-30;
          gotS[k * N + j] = got[at];
          written[at] = 1;
        }
      }
      expectAllClose(gotS, want, { bound: tol, label: `${label} slice ${s}` });
    }
    for (let i = 0; i < len; i++) if (!written[i]) expect(got[i], `${label}: out[${i}] (padding / outside) was written`).toBe(SENTINEL);
  } finally {
    bx.destroy();
    bg.destroy();
    out.destroy();
  }
}

for (const sg of [false, true]) {
  // sg: B shared through subgroup broadcasts (the default where the device has subgroups of >= 8).
  const tile: RowsTile = { ...LINEAR_ROWS_TUNING.rows, NB: 8, sg };
  const test = (name: string, c: RowsCase) =>
    it(name, async (t) => {
      if (sg && !subgroupsOf8(ctx.device)) return t.skip();
      await checkRows({ tile, ...c });
    });
  describe(`rowsMatmul vs float64 reference${sg ? ' (subgroup broadcast of B)' : ''}`, () => {
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [1, 0, 3],
      [7, 5, 3],
      [3, 50, 1],
      [33, 50, 50],
      [17, 36, 50],
      [129, 50, 174],
      [257, 120, 120],
      [2049, 50, 50],
    ];
    for (const [M, K, N] of shapes) test(`forward ${M}x${K} . ${K}x${N} + bias, y and relu(y)`, { M, K, N, hasBias: true, outAct: true, act: 'relu' });
    test('forward + residual, tanh(y) only', { M: 65, K: 50, N: 50, hasBias: true, hasResidual: true, outPre: false, outAct: true, act: 'tanh' });
    for (const [M, K, N] of [[1, 1, 1], [100, 50, 6], [61, 174, 50], [257, 120, 120], [2050, 50, 35]] as [number, number, number][]) {
      test(`input gradient ${M}x${K} . (${N}x${K})^T * relu'(post) + res`, { M, K, N, transB: true, actGrad: true, act: 'relu', hasResidual: true });
    }
    test("input gradient * tanh'(post)", { M: 77, K: 50, N: 50, transB: true, actGrad: true, act: 'tanh' });
    test('strided output and residual (the fused identity-column scatter)', { M: 37, K: 50, N: 5, transB: true, hasResidual: true, ldY: 11, offY: 6, ldRes: 11, offRes: 6 });
    test('narrow outputs at the edge of a strided matrix', { M: 9, K: 7, N: 3, transB: true, hasResidual: true, ldY: 8, offY: 5, ldRes: 8, offRes: 5 });
    if (sg) test('16-column subgroup tile', { M: 45, K: 13, N: 21, hasBias: true, outAct: true, act: 'relu', tile: { R: 2, NB: 16, wg: 8, sg } });
  });
}

describe('rowsMatmul: odd tiles, argument checks', () => {
  for (const tile of [
    { R: 1, NB: 1, wg: 1 },
    { R: 3, NB: 5, wg: 7 },
  ]) {
    it(`odd tile ${JSON.stringify(tile)}`, () => checkRows({ M: 53, K: 13, N: 17, hasBias: true, hasResidual: true, outAct: true, act: 'relu', tile }));
  }
  it('rejects impossible shapes', () => {
    expect(() => rowsMatmulProgram({ M: 0, K: 1, N: 1 })).toThrow(/M must be/);
    expect(() => rowsMatmulProgram({ M: 1, K: 1, N: 1, outPre: false })).toThrow(/nothing to write/);
    expect(() => rowsMatmulProgram({ M: 1, K: 1, N: 1, outAct: true })).toThrow(/need act/);
    expect(() => rowsMatmulProgram({ M: 4, K: 1, N: 5, ldY: 4 })).toThrow(/strides/);
    expect(() => rowsMatmulProgram({ M: 4, K: 1, N: 5, tile: { R: 2, NB: 4, wg: 8, sg: true } })).toThrow(/multiple of 8/);
  });
});

describe('xtg (weight + bias gradient) vs float64 reference', () => {
  const cases: XtgCase[] = [
    { M: 1, K: 1, N: 1, c: 1, biasAt: 1 },
    { M: 1, K: 0, N: 5, c: 1, biasAt: 0 },
    { M: 37, K: 5, N: 3, c: 8, biasAt: 64, gap: 3 },
    { M: 300, K: 50, N: 50, c: 64, biasAt: 2560 },
    { M: 129, K: 36, N: 174, c: 129, biasAt: 6272, outOffset: 320 },
    { M: 1000, K: 120, N: 120, c: 97, biasAt: 14400 },
    { M: 513, K: 50, N: 7, c: 32, biasAt: 384, gap: 1 },
    { M: 70, K: 13, N: 17, c: 11, biasAt: 230, tile: { KB: 3, NB: 5 } },
    { M: 70, K: 13, N: 17, c: 70, biasAt: 221, tile: { KB: 1, NB: 1 } },
  ];
  for (const sg of [false, true]) {
    for (const t of cases) {
      const tile = t.tile ?? { KB: 8, NB: 8 };
      if (sg && tile.KB !== 8) continue;
      const c = { ...t, tile: { ...tile, sg } };
      it(`${t.K}x${t.N} over ${t.M} rows in slices of ${t.c}, tile ${JSON.stringify(c.tile)}`, async (ctx2) => {
        if (sg && !subgroupsOf8(ctx.device)) return ctx2.skip();
        await checkXtg(c);
      });
    }
  }
  it('subgroup tile with 3-column blocks', async (ctx2) => {
    if (!subgroupsOf8(ctx.device)) return ctx2.skip();
    await checkXtg({ M: 90, K: 20, N: 31, c: 40, biasAt: 640, tile: { KB: 8, NB: 3, sg: true } });
  });
  it('rejects overlapping layouts', () => {
    expect(() => xtgProgram({ M: 4, K: 3, N: 5, c: 4, stride: 20, biasAt: 14 })).toThrow(/overlaps/);
    expect(() => xtgProgram({ M: 4, K: 3, N: 5, c: 2, stride: 19, biasAt: 15 })).toThrow(/stride/);
    expect(() => xtgProgram({ M: 4, K: 3, N: 5, c: 4, stride: 20, biasAt: 15, tile: { KB: 4, NB: 8, sg: true } })).toThrow(/KB = 8/);
  });
});
