/**
 * The register-tiled linear kernels (kernels/nn/linearRows.ts) against float64 references on
 * awkward shapes: one row / column, K = 0 (bias only), sizes that are no multiple of any tile or
 * workgroup size, odd tiles, a few thousand rows (many workgroups), and 120-wide layers (beyond the
 * flow's 50-wide defaults). The fused backward (rowsXtgProgram: rowsMatmul and xtg in one dispatch)
 * against the same references and bit for bit against the two separate dispatches, and the flow's
 * gradients with and without it.
 *
 * Tolerances: inputs are exact f32 numbers, so the error is f32 rounding of the dot products,
 * |err| <= gamma_(K+c) (|X||op(B)| + |bias|) entrywise (Higham eq. 3.5), times |act'| where the
 * derivative multiplies, plus a few u of the residual added last; act'(post) = 1 - post^2 (tanh) is
 * itself rounded (a few u of 1 + post^2). tanh outputs add 2e-6 absolute (f32 exp and division,
 * |tanh| <= 1). Every output buffer starts filled with a sentinel that must survive wherever the
 * kernel must not write (masked rows / columns, strided gaps, padding between weight and bias).
 */
import { describe, expect, it } from 'vitest';
import {
  LINEAR_ROWS_TUNING,
  type RowsMatmulShape,
  type RowsTile,
  type XtgTile,
  rowsMatmulBindings,
  rowsMatmulProgram,
  rowsXtgBindings,
  rowsXtgFits,
  rowsXtgProgram,
  subgroupsOf8,
  xtgProgram,
} from '../../kernels/nn/linearRows.js';
import { createFlow, fitFlowStandardization } from '../../src/flow/flow.js';
import { GpuFlowEngine } from '../../src/flow/gpuEngine.js';
import { RngPurpose, standardNormals } from '../../src/flow/rng.js';
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

/** Inputs of a rowsMatmul case (x: M x K, b: op(B) stored K x N or N x K, ...) and its output lengths. */
function rowsData(c: RowsCase, seed = 0) {
  const { M, K, N } = c;
  const ldY = c.ldY ?? N;
  const ldR = c.ldRes ?? N;
  const offR = c.offRes ?? 0;
  return {
    x: randomF32(M * K, seed + 3 + M + K),
    b: randomF32(K * N, seed + 5 + N),
    bias: c.hasBias ? randomF32(N, seed + 7) : undefined,
    res: c.hasResidual ? randomF32(M * ldR + offR, seed + 11) : undefined,
    post: c.actGrad ? randomF32(M * N, seed + 13) : undefined,
    yLen: M * ldY + (c.offY ?? 0) + 5,
    aLen: M * N + 5,
  };
}

/** Checks rowsMatmul outputs (y: whole Y buffer, a: whole A buffer) against the float64 reference. */
function verifyRows(c: RowsCase, d: ReturnType<typeof rowsData>, y: Float32Array | null, a: Float32Array | null, label: string): void {
  const { M, K, N } = c;
  const { x, b, bias, res, post } = d;
  const ldY = c.ldY ?? N;
  const offY = c.offY ?? 0;
  const ldR = c.ldRes ?? N;
  const offR = c.offRes ?? 0;
  // Reference and bound, M x N.
  const s = K > 0 ? gemmRef(x, b, { M, N, K, transB: c.transB }) : new Float64Array(M * N);
  const mag = K > 0 ? gemmRef(x.map(Math.abs), b.map(Math.abs), { M, N, K, transB: c.transB }) : new Float64Array(M * N);
  const want = new Float64Array(M * N);
  const tol = new Float64Array(M * N);
  for (let r = 0; r < M; r++) {
    for (let j = 0; j < N; j++) {
      const i = r * N + j;
      let v = s[i] + (bias ? bias[j] : 0);
      let t = gamma(K + 4) * (mag[i] + (bias ? Math.abs(bias[j]) : 0));
      if (post) {
        const p = post[i];
        const dv = c.act === 'tanh' ? 1 - p * p : p > 0 ? 1 : 0;
        t = t * Math.abs(dv) + (c.act === 'tanh' ? 4 * U * (1 + p * p) * Math.abs(v) : 0);
        v *= dv;
      }
      if (res) {
        const rv = res[r * ldR + offR + j];
        v += rv;
        t += 2 * U * (Math.abs(v) + Math.abs(rv));
      }
      want[i] = v;
      tol[i] = t + 1e-30;
    }
  }
  if (y) {
    const inMatrix = new Float64Array(M * N);
    const written = new Uint8Array(d.yLen);
    for (let r = 0; r < M; r++) {
      for (let j = 0; j < N; j++) {
        inMatrix[r * N + j] = y[r * ldY + offY + j];
        written[r * ldY + offY + j] = 1;
      }
    }
    expectAllClose(inMatrix, want, { bound: tol, label: `${label} Y` });
    for (let i = 0; i < d.yLen; i++) if (!written[i]) expect(y[i], `${label}: Y[${i}] outside the output was written`).toBe(SENTINEL);
  }
  if (a) {
    const act = c.act === 'tanh' ? Math.tanh : (v: number) => Math.max(v, 0);
    // relu and tanh are 1-Lipschitz: the pre-activation bound carries over.
    expectAllClose(a.subarray(0, M * N), want.map(act), { bound: tol, atol: c.act === 'tanh' ? 2e-6 : 0, label: `${label} A` });
    for (let i = M * N; i < d.aLen; i++) expect(a[i], `${label}: A[${i}] beyond M x N was written`).toBe(SENTINEL);
  }
}

async function checkRows(c: RowsCase): Promise<void> {
  const { K } = c;
  const dev = ctx.device;
  const label = `rowsMatmul ${JSON.stringify(c)}`;
  const d = rowsData(c);
  const outPre = c.outPre ?? true;
  const bufs = {
    x: uploadBuffer(dev, K > 0 ? d.x : new Float32Array(1)),
    b: uploadBuffer(dev, K > 0 ? d.b : new Float32Array(1)),
    y: outPre ? uploadBuffer(dev, filled(d.yLen)) : undefined,
    a: c.outAct ? uploadBuffer(dev, filled(d.aLen)) : undefined,
    bias: d.bias ? uploadBuffer(dev, d.bias) : undefined,
    res: d.res ? uploadBuffer(dev, d.res) : undefined,
    post: d.post ? uploadBuffer(dev, d.post) : undefined,
  };
  try {
    await runProgram(dev, rowsMatmulProgram(c), rowsMatmulBindings(bufs));
    const y = bufs.y ? await readFloat32(dev, bufs.y, 0, d.yLen) : null;
    const a = bufs.a ? await readFloat32(dev, bufs.a, 0, d.aLen) : null;
    verifyRows(c, d, y, a, label);
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

const xtgLayout = (t: XtgCase) => {
  const S = Math.ceil(t.M / t.c);
  const stride = t.biasAt + t.N + (t.gap ?? 0);
  const outOffset = t.outOffset ?? 0;
  return { S, stride, outOffset, len: outOffset + S * stride + 7 };
};

/** Checks xtg's whole output buffer `got` (x: M x K, g: M x N) against the float64 reference. */
function verifyXtg(t: XtgCase, x: Float32Array, g: Float32Array, got: Float32Array, label: string): void {
  const { M, K, N, c, biasAt } = t;
  const { S, stride, outOffset, len } = xtgLayout(t);
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
}

async function checkXtg(t: XtgCase): Promise<void> {
  const { M, K, N, c, biasAt } = t;
  const dev = ctx.device;
  const label = `xtg ${JSON.stringify(t)}`;
  const { stride, outOffset, len } = xtgLayout(t);
  const x = randomF32(M * K, 17 + K);
  const g = randomF32(M * N, 19 + N);
  const bx = uploadBuffer(dev, K > 0 ? x : new Float32Array(1));
  const bg = uploadBuffer(dev, g);
  const out = uploadBuffer(dev, filled(len));
  try {
    await runProgram(dev, xtgProgram({ M, K, N, c, stride, biasAt, outOffset, tile: t.tile }), { 0: bx, 1: bg, 2: out });
    verifyXtg(t, x, g, await readFloat32(dev, out, 0, len), label);
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

interface FusedCase {
  /** The rowsMatmul half: X = G (M x K), the input gradient (M x N) with its epilogue. */
  rows: RowsCase;
  /** xtg's X width (its G is the rows half's X: N = rows.K). */
  xK: number;
  /** Rows per slice. */
  c: number;
  biasAt: number;
  gap?: number;
  outOffset?: number;
  xtgTile?: XtgTile;
  /** xtg's X bound as the same buffer as `post` (lin2: a1 is its input and its activation's output) or as G. */
  share?: 'post' | 'g';
}

const sameBits = (a: Float32Array, b: Float32Array) => {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return ua.length === ub.length ? ua.findIndex((v, i) => v !== ub[i]) : 0;
};

/**
 * rowsXtgProgram against the float64 references of both halves, and bit for bit against
 * rowsMatmulProgram + xtgProgram (same tiles: every output element is the same FMA chain).
 */
async function checkFused(f: FusedCase): Promise<void> {
  const dev = ctx.device;
  const label = `rows+xtg ${JSON.stringify(f)}`;
  const r = f.rows;
  const { M } = r;
  const d = rowsData(r, 100);
  const xt: XtgCase = { M, K: f.xK, N: r.K, c: f.c, biasAt: f.biasAt, gap: f.gap, outOffset: f.outOffset, tile: f.xtgTile };
  const { stride, outOffset, len } = xtgLayout(xt);
  const xf = f.share === 'post' ? d.post! : f.share === 'g' ? d.x : randomF32(M * f.xK, 23 + f.xK);
  if (f.share === 'post' && (!d.post || f.xK !== r.N)) throw new Error('share post needs actGrad and xK = N');
  if (f.share === 'g' && f.xK !== r.K) throw new Error('share g needs xK = K');
  const outPre = r.outPre ?? true;
  const inputs = {
    x: uploadBuffer(dev, r.K > 0 ? d.x : new Float32Array(1)),
    b: uploadBuffer(dev, r.K > 0 ? d.b : new Float32Array(1)),
    bias: d.bias ? uploadBuffer(dev, d.bias) : undefined,
    res: d.res ? uploadBuffer(dev, d.res) : undefined,
    post: d.post ? uploadBuffer(dev, d.post) : undefined,
  };
  const xfBuf = f.share === 'post' ? inputs.post! : f.share === 'g' ? inputs.x : uploadBuffer(dev, f.xK > 0 ? xf : new Float32Array(1));
  const outputs = () => ({
    y: outPre ? uploadBuffer(dev, filled(d.yLen)) : undefined,
    a: r.outAct ? uploadBuffer(dev, filled(d.aLen)) : undefined,
    d: uploadBuffer(dev, filled(len)),
  });
  const fo = outputs();
  const so = outputs();
  const read = async (o: ReturnType<typeof outputs>) => ({
    y: o.y ? await readFloat32(dev, o.y, 0, d.yLen) : null,
    a: o.a ? await readFloat32(dev, o.a, 0, d.aLen) : null,
    d: await readFloat32(dev, o.d, 0, len),
  });
  const xtg = { M, K: f.xK, N: r.K, c: f.c, stride, biasAt: f.biasAt, outOffset, tile: f.xtgTile };
  try {
    await runProgram(dev, rowsXtgProgram({ rows: r, xtg }), rowsXtgBindings({ ...inputs, y: fo.y, a: fo.a, xf: xfBuf, d: fo.d }));
    const got = await read(fo);
    verifyRows(r, d, got.y, got.a, label);
    verifyXtg(xt, xf, d.x, got.d, label);
    await runProgram(dev, rowsMatmulProgram(r), rowsMatmulBindings({ ...inputs, y: so.y, a: so.a }));
    await runProgram(dev, xtgProgram(xtg), { 0: xfBuf, 1: inputs.x, 2: so.d });
    const sep = await read(so);
    if (got.y) expect(sameBits(got.y, sep.y!), `${label}: Y differs from the separate rowsMatmul at`).toBe(-1);
    if (got.a) expect(sameBits(got.a, sep.a!), `${label}: A differs from the separate rowsMatmul at`).toBe(-1);
    expect(sameBits(got.d, sep.d), `${label}: out differs from the separate xtg at`).toBe(-1);
  } finally {
    for (const v of [...Object.values(inputs), ...Object.values(fo), ...Object.values(so), xfBuf]) v?.destroy();
  }
}

describe('rows + xtg in one dispatch (the fused Linear backward) vs float64 and vs the separate kernels', () => {
  const bwd = (M: number, K: number, N: number, more: Partial<RowsCase> = {}): RowsCase => ({ M, K, N, transB: true, ...more });
  const relu = { actGrad: true, act: 'relu', hasResidual: true } as const;
  const cases: [string, FusedCase][] = [
    ['1 row, 1 x 1', { rows: bwd(1, 1, 1, relu), xK: 1, c: 1, biasAt: 1 }],
    ['7 rows, 4-wide G, relu\' + residual, X = post', { rows: bwd(7, 4, 30, relu), xK: 30, c: 7, biasAt: 128, share: 'post' }],
    ['257 rows, 30 x 30, tanh\' + residual, 9 slices, X = post', { rows: bwd(257, 30, 30, { actGrad: true, act: 'tanh', hasResidual: true }), xK: 30, c: 32, biasAt: 960, gap: 2, share: 'post' }],
    ['257 rows, output Linear 30 -> 116 (no epilogue)', { rows: bwd(257, 116, 30), xK: 30, c: 257, biasAt: 3520, outOffset: 64 }],
    ['2049 rows, strided scatter output and residual, 33-wide X, 4 slices', { rows: bwd(2049, 30, 4, { hasResidual: true, ldY: 8, offY: 4, ldRes: 8, offRes: 4 }), xK: 33, c: 513, biasAt: 1024 }],
    ['2049 rows, 33 -> 116, relu\' + residual, X = post', { rows: bwd(2049, 33, 116, relu), xK: 116, c: 2049, biasAt: 3840, share: 'post' }],
    ['2049 rows, 1 x 1, 33 slices', { rows: bwd(2049, 1, 1, relu), xK: 1, c: 64, biasAt: 1 }],
    ['257 rows, X = G (the same buffer), 3 slices', { rows: bwd(257, 30, 30, { actGrad: true, act: 'relu' }), xK: 30, c: 100, biasAt: 900, share: 'g' }],
    ['65 rows, forward epilogue (bias, y and relu(y), no transB)', { rows: { M: 65, K: 33, N: 17, hasBias: true, outAct: true, act: 'relu' }, xK: 4, c: 65, biasAt: 140 }],
  ];
  for (const sg of [false, true]) {
    for (const [name, f] of cases) {
      it(`${name}${sg ? ' (subgroup broadcasts)' : ''}`, async (t) => {
        if (sg && !subgroupsOf8(ctx.device)) return t.skip();
        const rowsTile: RowsTile = { ...LINEAR_ROWS_TUNING.rows, NB: 8, sg };
        await checkFused({ ...f, rows: { ...f.rows, tile: rowsTile }, xtgTile: { KB: 8, NB: 8, sg } });
      });
    }
  }
  it('odd tiles: R 3 x NB 5 rows tiles, KB 3 x NB 5 xtg tiles, 6 slices', () =>
    checkFused({ rows: bwd(257, 33, 30, { ...relu, tile: { R: 3, NB: 5, wg: 7 } }), xK: 30, c: 45, biasAt: 1000, xtgTile: { KB: 3, NB: 5 }, share: 'post' }));
  it('one-element tiles, xtg and rows workgroups in all proportions', async () => {
    // nx = 13 k blocks x 2 slices = 26 xtg workgroups against 4 (M = 9) .. 514 (M = 2049) rows ones.
    for (const M of [9, 100, 2049]) {
      await checkFused({ rows: bwd(M, 1, 2, { ...relu, tile: { R: 1, NB: 1, wg: 1 } }), xK: 12, c: Math.ceil(M / 2), biasAt: 12, xtgTile: { KB: 1, NB: 1 } });
    }
  });
  it('rejects impossible combinations and aliased outputs', () => {
    const xtg = { M: 10, K: 3, N: 4, c: 10, stride: 16, biasAt: 12 };
    expect(() => rowsXtgProgram({ rows: { M: 10, K: 5, N: 3, transB: true }, xtg })).toThrow(/must be xtg's G/);
    expect(() => rowsXtgProgram({ rows: { M: 11, K: 4, N: 3, transB: true }, xtg })).toThrow(/must be xtg's G/);
    expect(rowsXtgFits({ rows: { M: 10, K: 4, N: 3, transB: true }, xtg })).toBe(true);
    // 65000 rows workgroups + 1000 slices: more than one dispatch dimension holds.
    const M = 4_160_000;
    const big = { rows: { M, K: 1, N: 1, transB: true }, xtg: { M, K: 1, N: 1, c: M / 1000, stride: 2, biasAt: 1 } };
    expect(rowsXtgFits(big)).toBe(false);
    expect(() => rowsXtgProgram(big)).toThrow(/66000 workgroups/);
    const buf = (n: number) => ({ label: n }) as unknown as GPUBuffer;
    const [g, w, y, out] = [buf(0), buf(1), buf(2), buf(3)];
    expect(() => rowsXtgBindings({ x: g, b: w, y, xf: g, d: out })).not.toThrow();
    expect(() => rowsXtgBindings({ x: g, b: w, y, xf: y, d: out })).toThrow(/output binding 2/);
    expect(() => rowsXtgBindings({ x: g, b: w, y, xf: g, d: { buffer: g, offset: 256 } })).toThrow(/output binding 9/);
  });
});

describe('flow backward with and without the fused dispatches', () => {
  for (const [name, arch] of [
    ['reference-study-like (T=4, H=30, relu)', { P: 8, F: 29, transforms: 4, hidden: 30, activation: 'relu' }],
    ['narrow, split xtg (P=3, F=0, H=7, tanh)', { P: 3, F: 0, transforms: 3, hidden: 7, activation: 'tanh' }],
  ] as const) {
    it(`${name}: the same gradient bit for bit, one dispatch fewer per Linear with an input gradient`, async () => {
      const n = 257;
      const theta = standardNormals(n * arch.P, 1, RngPurpose.user);
      const x = standardNormals(n * arch.F, 2, RngPurpose.user);
      const model = createFlow({ thetaDim: arch.P, contextDim: arch.F, transforms: arch.transforms, hidden: arch.hidden, blocks: 2, bins: 8, activation: arch.activation, seed: 4 });
      fitFlowStandardization(model, theta, x, n);
      const rows = Uint32Array.from({ length: n }, (_, i) => i);
      const saved = LINEAR_ROWS_TUNING.fuseBackward;
      const out: { grad: Float64Array; dispatches: number }[] = [];
      try {
        for (const fuse of [false, true]) {
          LINEAR_ROWS_TUNING.fuseBackward = fuse;
          const e = await GpuFlowEngine.create(model, { gpu: ctx.gpu, linear: 'rows' });
          try {
            await e.setData({ theta, x, n });
            await e.trainStep(rows, { lr: 0 });
            const grad = await e.getGradient();
            const dispatches = (await e.profileTrainStep(n, { lr: 0 })).reduce((s, p) => s + p.count, 0);
            out.push({ grad, dispatches });
          } finally {
            await e.dispose();
          }
        }
      } finally {
        LINEAR_ROWS_TUNING.fuseBackward = saved;
      }
      const [sep, fused] = out;
      expect(fused.grad.findIndex((v, i) => !Object.is(v, sep.grad[i]))).toBe(-1);
      // Per layer: output Linear and 2 per block have an input gradient; the input Linear for l > 0 with identity columns.
      const withInputGrad = model.layout.layers.reduce((s, l) => s + 1 + 2 * l.blocks.length + (l.index > 0 && l.identity.length > 0 ? 1 : 0), 0);
      expect(sep.dispatches - fused.dispatches).toBe(withInputGrad);
    });
  }
});
