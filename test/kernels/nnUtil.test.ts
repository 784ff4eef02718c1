/**
 * The flow's training utilities on the GPU against the float64 references: NLL + gradient seeds +
 * on-GPU loss accumulation (kernels/nn/loss.ts vs src/flow/flow.ts), z-score standardisation
 * (kernels/nn/standardize.ts vs src/flow/standardize.ts), row gather and the Feistel shuffle
 * (kernels/nn/gather.ts).
 */
import { describe, expect, it } from 'vitest';
import { GATHER_WORKGROUP, type GatherShape, encodeGather, encodePermutation, feistelKey, feistelPermutation, gatherProgram } from '../../kernels/nn/gather.js';
import { LOSS_SLOT_WORDS, NLL_GROUPS_GPU, encodeNll, logProbConstant, nllGroupsFor, nllPartialCount, nllSamplesProgram, readLossSlot, resetLossSlot } from '../../kernels/nn/loss.js';
import { encodeStandardize, packStandardization, standardizeProgram } from '../../kernels/nn/standardize.js';
import { createFlow, fitFlowStandardization, forward, meanNll } from '../../src/flow/flow.js';
import { RngPurpose, standardNormals } from '../../src/flow/rng.js';
import { type Standardization, fitStandardization, logStdSum, standardize, unstandardize } from '../../src/flow/standardize.js';
import { createStorageBuffer, readFloat32, readTyped, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch } from '../../src/gpu/kernel.js';
import { randomF32 } from '../../src/reference/linalg.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();
const U = 2 ** -24;

/** Theta-like data: columns with very different means and scales (e.g. log10 mass ~ 10, av ~ 0.5). */
function library(n: number, d: number, seed: number): Float64Array {
  const z = standardNormals(n * d, seed, RngPurpose.user);
  for (let i = 0; i < n * d; i++) {
    const j = i % d;
    z[i] = 10 ** ((j % 5) - 2) * z[i] + (j % 3 === 0 ? 10 * (j + 1) : -(j % 3));
  }
  return z;
}

// ---------------------------------------------------------------------------------------------
describe('NLL, gradient seeds and the on-GPU loss accumulation', () => {
  const cache = new Map<string, ReturnType<typeof flowBatchUncached>>();
  const flowBatch = (n: number, P: number, F: number) => {
    const k = `${n},${P},${F}`;
    if (!cache.has(k)) cache.set(k, flowBatchUncached(n, P, F));
    return cache.get(k)!;
  };

  /** A real flow's z, logdet and logProb (float64 reference) for n samples. */
  function flowBatchUncached(n: number, P: number, F: number) {
    const model = createFlow({ thetaDim: P, contextDim: F, transforms: 2, hidden: 8, blocks: 1, seed: 3 });
    const theta = library(n, P, 11 + P);
    const x = library(n, F, 12 + F);
    fitFlowStandardization(model, theta, x, n);
    const f = forward(model, theta, x, n);
    return { model, theta, x, ...f, lsd: logStdSum(model.thetaStd) };
  }

  /**
   * Bound on |GPU logProb - float64 formula on the same f32 inputs|: the sum of P squares
   * (<= (P + 1) u of 1/2 |z|^2), the subtraction, the addition of the f32-rounded constant (u |c|
   * rounding + u of each partial result).
   */
  function lpBound(z32: Float32Array, ld32: Float32Array, P: number, c: number): Float64Array {
    const out = new Float64Array(ld32.length);
    for (let r = 0; r < ld32.length; r++) {
      let q = 0;
      for (let p = 0; p < P; p++) q += z32[r * P + p] ** 2;
      const lp = ld32[r] - 0.5 * q + c;
      out[r] = (P + 2) * U * 0.5 * q + 2 * U * (Math.abs(ld32[r]) + 0.5 * q) + 2 * U * Math.abs(c) + U * Math.abs(lp);
    }
    return out;
  }

  async function runNll(z32: Float32Array, ld32: Float32Array, P: number, lsd: number, seeds: 'separate' | 'inPlace', maxGroups: number) {
    const dev = ctx.device;
    const n = ld32.length;
    const z = uploadBuffer(dev, z32);
    const ld = uploadBuffer(dev, ld32);
    const lp = createStorageBuffer(dev, n * 4);
    const gz = createStorageBuffer(dev, n * P * 4);
    const gld = createStorageBuffer(dev, n * 4);
    const partials = createStorageBuffer(dev, nllPartialCount(n, maxGroups) * 4);
    const stats = createStorageBuffer(dev, 3 * LOSS_SLOT_WORDS * 4);
    try {
      await encodeNll(new ComputeBatch(dev), { z, logdet: ld, logProb: lp, gz, gLogdet: gld, partials, stats }, { n, p: P, logStdSum: lsd, seeds, lossSlot: 2, maxGroups }).run();
      const inPlace = seeds === 'inPlace';
      return {
        logProb: await readFloat32(dev, lp, 0, n),
        gz: await readFloat32(dev, inPlace ? z : gz, 0, n * P),
        gLogdet: await readFloat32(dev, inPlace ? ld : gld, 0, n),
        slot: await readLossSlot(dev, stats, 2),
        otherSlots: await readTyped(dev, stats, Uint32Array, 0, 2 * LOSS_SLOT_WORDS),
      };
    } finally {
      for (const b of [z, ld, lp, gz, gld, partials, stats]) b.destroy();
    }
  }

  for (const [n, P, F] of [
    [1, 1, 0],
    [255, 3, 2],
    [256, 8, 29],
    [257, 2, 5],
    [65_537, 8, 3],
  ] as const) {
    // Both seed modes, each with another workgroup cap (this device's choice, and the GPU default).
    for (const seeds of ['separate', 'inPlace'] as const) {
      it(`n = ${n}, P = ${P}: logProb, mean NLL and seeds (${seeds}) vs the flow reference`, async () => {
        const maxGroups = seeds === 'separate' ? nllGroupsFor(ctx.device) : NLL_GROUPS_GPU;
        const ref = flowBatch(n, P, F);
        const z32 = Float32Array.from(ref.z);
        const ld32 = Float32Array.from(ref.logdet);
        const got = await runNll(z32, ld32, P, ref.lsd, seeds, maxGroups);
        const c = logProbConstant(P, ref.lsd);

        // 1. Against the analytic formula on the same f32 inputs (arithmetic error only).
        const lpF32In = new Float64Array(n);
        for (let r = 0; r < n; r++) {
          let q = 0;
          for (let p = 0; p < P; p++) q += z32[r * P + p] ** 2;
          lpF32In[r] = ld32[r] - 0.5 * q + c;
        }
        const bound = lpBound(z32, ld32, P, c);
        expectAllClose(got.logProb, lpF32In, { bound, atol: 1e-30, label: 'logProb vs formula' });
        // 2. Against the flow's float64 logProb: plus the rounding of z (|z| u each: u |z|^2 in
        //    1/2 |z|^2) and of logdet (u |logdet|) to f32.
        const inBound = bound.map((b, r) => {
          let q = 0;
          for (let p = 0; p < P; p++) q += ref.z[r * P + p] ** 2;
          return b + U * q + U * Math.abs(ref.logdet[r]);
        });
        expectAllClose(got.logProb, ref.logProb, { bound: inBound, atol: 1e-30, label: 'logProb vs flow.forward' });

        // 3. The batch's mean NLL on the GPU vs meanNll: per-thread sequential sums over
        //    n / (256 G) samples, the 256-wide tree, the 64-wide finalize loop and tree add
        //    (n / (256 G) + 8 + G / 64 + 6 + 2) u of sum |logProb|.
        // meanNll re-runs the CPU flow: call it where that is cheap (it is -mean(logProb) anyway).
        const want = n <= 1000 ? meanNll(ref.model, ref.theta, ref.x, n) : -ref.logProb.reduce((a, b) => a + b, 0) / n;
        let absSum = 0;
        let boundSum = 0;
        for (let r = 0; r < n; r++) {
          absSum += Math.abs(ref.logProb[r]);
          boundSum += inBound[r];
        }
        const G = nllPartialCount(n, maxGroups);
        const sumTol = (Math.ceil(n / (256 * G)) + 16 + Math.ceil(G / 64)) * U * absSum + boundSum;
        expect(got.slot.count).toBe(n);
        expectAllClose([got.slot.sum], [want * n], { atol: sumTol, label: 'summed NLL' });
        expectAllClose([got.slot.mean, got.slot.lastBatchMean], [want, want], { atol: sumTol / n + U * Math.abs(want), label: 'mean NLL' });
        expect(Array.from(got.otherSlots).every((w) => w === 0)).toBe(true); // only slot 2 written

        // 4. Seeds: dL/dz = z / N as one f32 product z * fround(1/N) (correctly rounded: exact
        //    match), within 2 u of the exact z / N; dL/dlogdet = -fround(1/N).
        const invN = Math.fround(1 / n);
        expect(Array.from(got.gz)).toEqual(Array.from(z32, (v) => Math.fround(v * invN)));
        expectAllClose(got.gz, Array.from(ref.z, (v) => v / n), { rtol: 2 * U + 1e-12, atol: 1e-38, bound: Array.from(ref.z, (v) => (U * Math.abs(v)) / n), label: 'dL/dz' });
        expect(Array.from(got.gLogdet).every((v) => v === -invN)).toBe(true);
      });
    }
  }

  it('accumulates an epoch of uneven batches on the GPU (one readback) and resets', async () => {
    const dev = ctx.device;
    const P = 4;
    const sizes = [1024, 1024, 1024, 337]; // last batch partial; offsets stay 256-byte aligned
    const total = sizes.reduce((a, b) => a + b, 0);
    const ref = flowBatch(total, P, 3);
    const z32 = Float32Array.from(ref.z);
    const ld32 = Float32Array.from(ref.logdet);
    const z = uploadBuffer(dev, z32);
    const ld = uploadBuffer(dev, ld32);
    const lp = createStorageBuffer(dev, total * 4);
    const partials = createStorageBuffer(dev, nllPartialCount(1024, nllGroupsFor(dev)) * 4);
    const stats = createStorageBuffer(dev, LOSS_SLOT_WORDS * 4);
    try {
      const batch = new ComputeBatch(dev);
      let off = 0;
      for (const n of sizes) {
        // Batch views: sub-ranges of z / logdet / logProb (offsets are multiples of 256 B here).
        encodeNll(
          batch,
          {
            z: { buffer: z, offset: off * P * 4, size: n * P * 4 },
            logdet: { buffer: ld, offset: off * 4, size: n * 4 },
            logProb: { buffer: lp, offset: off * 4, size: n * 4 },
            partials,
            stats,
          },
          { n, p: P, logStdSum: ref.lsd, lossSlot: 0, maxGroups: nllGroupsFor(dev) },
        );
        off += n;
      }
      await batch.run();
      const slot = await readLossSlot(dev, stats, 0);
      let want = 0;
      let absSum = 0;
      for (let r = 0; r < total; r++) {
        want -= ref.logProb[r];
        absSum += Math.abs(ref.logProb[r]);
      }
      expect(slot.count).toBe(total);
      // Per-sample input rounding (~ (P + 4) u |logProb| in all), the batch sums, and the
      // compensated epoch sum (2 u): 30 u of sum |logProb|.
      expectAllClose([slot.sum], [want], { atol: 30 * U * absSum, label: 'epoch NLL sum' });
      let last = 0;
      for (let r = total - 337; r < total; r++) last -= ref.logProb[r];
      expectAllClose([slot.lastBatchMean], [last / 337], { rtol: 30 * U * 10, label: 'last batch mean' });
      resetLossSlot(dev, stats, 0);
      const cleared = await readLossSlot(dev, stats, 0);
      expect([cleared.sum, cleared.count]).toEqual([0, 0]);
      expect(cleared.mean).toBeNaN();
    } finally {
      for (const b of [z, ld, lp, partials, stats]) b.destroy();
    }
  });

  it('evaluates log-probs only (no seeds, no loss) in one dispatch', async () => {
    const dev = ctx.device;
    const n = 70_000; // 274 workgroups under the default cap, not a multiple of 256
    const P = 3;
    const z32 = randomF32(n * P, 9, 3);
    const ld32 = randomF32(n, 10, 5);
    const z = uploadBuffer(dev, z32);
    const ld = uploadBuffer(dev, ld32);
    const lp = createStorageBuffer(dev, n * 4);
    try {
      const batch = new ComputeBatch(dev);
      encodeNll(batch, { z, logdet: ld, logProb: lp }, { n, p: P });
      expect(batch.length).toBe(1);
      await batch.run();
      const got = await readFloat32(dev, lp, 0, n);
      const c = logProbConstant(P);
      const want = Array.from(ld32, (l, r) => l - 0.5 * (z32[3 * r] ** 2 + z32[3 * r + 1] ** 2 + z32[3 * r + 2] ** 2) + c);
      expectAllClose(got, want, { bound: lpBound(z32, ld32, P, c), atol: 1e-30, label: 'logProb' });
    } finally {
      for (const b of [z, ld, lp]) b.destroy();
    }
  });

  it('rejects bad shapes', () => {
    expect(() => nllSamplesProgram({ n: 0, p: 1 })).toThrow(/n must/);
    expect(() => nllSamplesProgram({ n: 1, p: 0 })).toThrow(/p must/);
    expect(() => nllSamplesProgram({ n: 1, p: 1, seeds: 'both' as never })).toThrow(/seeds/);
    expect(() => nllSamplesProgram({ n: 1, p: 1, logStdSum: Number.NaN })).toThrow(/logStdSum/);
    const b = createStorageBuffer(ctx.device, 16);
    expect(() => encodeNll(new ComputeBatch(ctx.device), { z: b, logdet: b, logProb: b }, { n: 1, p: 1, seeds: 'separate' })).toThrow(/gz/);
    expect(() => encodeNll(new ComputeBatch(ctx.device), { z: b, logdet: b, logProb: b }, { n: 1, p: 1, lossSlot: 0 })).toThrow(/partials/);
    b.destroy();
  });
});

// ---------------------------------------------------------------------------------------------
/**
 * Bound of |f32 z-score - float64 z-score|: mean and std are rounded to f32 (u |mean|, u |y|),
 * x - mean rounds (u |x - mean|), the WGSL division is within 2.5 ulp (<= 5 u |y|).
 */
function zBound(x: ArrayLike<number>, s: Standardization, want: Float64Array): Float64Array {
  const d = s.mean.length;
  return want.map((y, i) => {
    const j = i % d;
    return (U * (Math.abs(s.mean[j]) + Math.abs(x[i] - s.mean[j]))) / s.std[j] + 6 * U * Math.abs(y);
  });
}

describe('standardise / un-standardise', () => {
  for (const [rows, cols] of [
    [1, 1],
    [257, 8],
    [1000, 29],
    [66_000, 3],
  ] as const) {
    it(`${rows} x ${cols}: matches src/flow/standardize.ts and round-trips`, async () => {
      const dev = ctx.device;
      const x32 = Float32Array.from(library(rows, cols, rows + cols));
      const s = rows > 1 ? fitStandardization(x32, rows, cols) : { mean: Float64Array.of(3), std: Float64Array.of(0.25) };
      // Two standardisations in one buffer: a dummy first, so the offsets are non-zero.
      const { data, offsets } = packStandardization({ mean: [1, 2], std: [3, 4] }, s);
      const ms = uploadBuffer(dev, data);
      const xb = uploadBuffer(dev, x32);
      const yb = createStorageBuffer(dev, x32.byteLength);
      const back = createStorageBuffer(dev, x32.byteLength);
      try {
        const batch = new ComputeBatch(dev);
        encodeStandardize(batch, { x: xb, y: yb, meanStd: ms }, { rows, cols, ...offsets[1] });
        encodeStandardize(batch, { x: yb, y: back, meanStd: ms }, { rows, cols, inverse: true, ...offsets[1] });
        encodeStandardize(batch, { y: xb, meanStd: ms }, { rows, cols, inPlace: true, ...offsets[1] });
        await batch.run();
        const want = standardize(x32, s);
        const y = await readFloat32(dev, yb);
        expectAllClose(y, want, { bound: zBound(x32, s, want), atol: 1e-30, label: 'standardize' });
        expect(Array.from(await readFloat32(dev, xb))).toEqual(Array.from(y)); // in place = out of place
        // Round trip: y carries the bound above (times std back in x units) plus the f32
        // multiply-add (2 u of |y std| + |x|).
        const rt = await readFloat32(dev, back);
        const yBound = zBound(x32, s, want);
        const rtBound = Array.from(x32, (v, i) => {
          const j = i % cols;
          return yBound[i] * s.std[j] + 2 * U * (Math.abs(want[i] * s.std[j]) + Math.abs(v)) + U * Math.abs(s.mean[j]);
        });
        expectAllClose(rt, x32, { bound: rtBound, atol: 1e-30, label: 'round trip' });
        expectAllClose(rt, unstandardize(want, s), { bound: rtBound, atol: 1e-30, label: 'unstandardize' });
      } finally {
        for (const b of [ms, xb, yb, back]) b.destroy();
      }
    });
  }

  it('rejects bad statistics and shapes', () => {
    expect(() => packStandardization({ mean: [0], std: [0] })).toThrow(/std must be finite and > 0/);
    expect(() => packStandardization({ mean: [0, 1], std: [1] })).toThrow(/differ/);
    expect(() => standardizeProgram({ rows: 0, cols: 1 })).toThrow(/rows/);
    const b = createStorageBuffer(ctx.device, 16);
    expect(() => encodeStandardize(new ComputeBatch(ctx.device), { x: b, y: b, meanStd: b }, { rows: 1, cols: 1 })).toThrow(/inPlace/);
    b.destroy();
  });
});

// ---------------------------------------------------------------------------------------------
describe('row gather', () => {
  const N = 1003;
  const C = 37; // library row: 8 theta + 29 x columns
  const lib = randomF32(N * C, 42, 100);

  async function gather(shape: GatherShape, extra: { idx?: Uint32Array; meanStd?: Float32Array } = {}, dstLen = shape.rows * (shape.dstStride ?? shape.cols)): Promise<Float32Array> {
    const dev = ctx.device;
    const src = uploadBuffer(dev, lib);
    const dst = uploadBuffer(dev, new Float32Array(dstLen).fill(-7)); // untouched elements stay -7
    const idx = extra.idx ? uploadBuffer(dev, extra.idx) : undefined;
    const ms = extra.meanStd ? uploadBuffer(dev, extra.meanStd) : undefined;
    try {
      await encodeGather(new ComputeBatch(dev), { src, dst, idx, meanStd: ms }, shape).run();
      return await readFloat32(dev, dst, 0, dstLen);
    } finally {
      for (const b of [src, dst, idx, ms]) b?.destroy();
    }
  }

  /** The CPU gather: rows of lib at the given source rows, columns [srcCol, srcCol + cols). */
  function cpuGather(srcRows: ArrayLike<number>, cols: number, srcCol = 0): Float32Array {
    const out = new Float32Array(srcRows.length * cols);
    for (let r = 0; r < srcRows.length; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = lib[srcRows[r] * C + srcCol + c];
    return out;
  }

  it('gathers rows by an index buffer with an offset (a mini-batch of a permutation), exactly', async () => {
    const perm = feistelPermutation(N, 5, 0);
    for (const [rowOffset, rows] of [
      [0, 1],
      [0, 256],
      [256, 256],
      [768, N - 768], // the partial last batch
    ]) {
      const got = await gather({ rows, cols: C, srcStride: C, index: { kind: 'buffer' }, rowOffset }, { idx: perm });
      expect(Array.from(got)).toEqual(Array.from(cpuGather(perm.subarray(rowOffset, rowOffset + rows), C)));
    }
  });

  it('splits columns (theta | x) into strided destinations and repeats rows (contexts per sample)', async () => {
    // x columns 8..36 of rows 10.. into columns 1..29 of a 31-wide destination.
    const rows = 300;
    const got = await gather({ rows, cols: 29, srcStride: C, srcCol: 8, dstStride: 31, dstCol: 1, index: { kind: 'contiguous' }, rowOffset: 10 });
    const want = cpuGather(Array.from({ length: rows }, (_, r) => 10 + r), 29, 8);
    for (let r = 0; r < rows; r++) {
      expect(got[r * 31]).toBe(-7);
      expect(got[r * 31 + 30]).toBe(-7);
      expect(Array.from(got.subarray(r * 31 + 1, r * 31 + 30))).toEqual(Array.from(want.subarray(r * 29, (r + 1) * 29)));
    }
    // Sample i uses context floor((offset + i) / 7).
    const rep = await gather({ rows: 100, cols: C, index: { kind: 'contiguous', repeat: 7 }, rowOffset: 3 });
    expect(Array.from(rep)).toEqual(Array.from(cpuGather(Array.from({ length: 100 }, (_, i) => Math.floor((3 + i) / 7)), C)));
  });

  it('fuses the z-score and its inverse into the gather', async () => {
    const s = fitStandardization(lib, N, C);
    const { data, offsets } = packStandardization(s);
    const idx = feistelPermutation(N, 1, 1);
    const rows = 500;
    const got = await gather({ rows, cols: C, index: { kind: 'buffer' }, affine: 'standardize', ...offsets[0] }, { idx, meanStd: data });
    const raw = cpuGather(idx.subarray(0, rows), C);
    const want = standardize(raw, s);
    expectAllClose(got, want, { bound: zBound(raw, s, want), atol: 1e-30, label: 'gather + standardize' });
    const inv = await gather({ rows, cols: C, index: { kind: 'buffer' }, affine: 'unstandardize', ...offsets[0] }, { idx, meanStd: data });
    const wantInv = unstandardize(raw, s);
    expectAllClose(inv, wantInv, { bound: Array.from(raw, (v, i) => 2 * U * (Math.abs(v * s.std[i % C]) + Math.abs(wantInv[i])) + U * Math.abs(s.mean[i % C])), atol: 1e-30, label: 'gather + unstandardize' });
  });

  it('draws shuffled batches inline (no permutation buffer) identical to the buffered permutation, and shuffled subsets', async () => {
    const key = feistelKey(N, 9, 4);
    const perm = feistelPermutation(N, 9, 4);
    const got = await gather({ rows: 200, cols: C, index: { kind: 'feistel', key }, rowOffset: 800 });
    expect(Array.from(got)).toEqual(Array.from(cpuGather(perm.subarray(800, 1000), C)));
    // A training subset (every row not divisible by 10), shuffled per epoch.
    const train = Uint32Array.from({ length: N }, (_, i) => i).filter((i) => i % 10 !== 0);
    const tKey = feistelKey(train.length, 9, 4);
    const tPerm = feistelPermutation(train.length, 9, 4);
    const sub = await gather({ rows: 256, cols: C, index: { kind: 'feistelSubset', key: tKey }, rowOffset: 512 }, { idx: train });
    expect(Array.from(sub)).toEqual(Array.from(cpuGather(Array.from(tPerm.subarray(512, 768), (p) => train[p]), C)));
  });

  it('rejects bad shapes', () => {
    expect(() => gatherProgram({ rows: 0, cols: 1, index: { kind: 'contiguous' } })).toThrow(/rows/);
    expect(() => gatherProgram({ rows: 1, cols: 5, srcStride: 4, index: { kind: 'contiguous' } })).toThrow(/stride/);
    expect(() => gatherProgram({ rows: 10, cols: 1, rowOffset: 95, index: { kind: 'feistel', key: feistelKey(100, 0, 0) } })).toThrow(/permutation size/);
    expect(() => gatherProgram({ rows: 1, cols: 1, index: { kind: 'contiguous', repeat: 0 } })).toThrow(/repeat/);
    const b = createStorageBuffer(ctx.device, 16);
    expect(() => encodeGather(new ComputeBatch(ctx.device), { src: b, dst: b }, { rows: 1, cols: 1, index: { kind: 'buffer' } })).toThrow(/idx/);
    b.destroy();
    expect(GATHER_WORKGROUP).toBe(256);
  });
});

// ---------------------------------------------------------------------------------------------
describe('GPU shuffle: keyed Feistel permutation of [0, N)', () => {
  async function gpuPermutation(n: number, seed: number, epoch: number): Promise<Uint32Array> {
    const dev = ctx.device;
    const perm = createStorageBuffer(dev, n * 4);
    try {
      await encodePermutation(new ComputeBatch(dev), perm, n, seed, epoch).run();
      return await readTyped(dev, perm, Uint32Array, 0, n);
    } finally {
      perm.destroy();
    }
  }

  const isBijection = (p: Uint32Array) => {
    const seen = new Uint8Array(p.length);
    for (const v of p) {
      if (v >= p.length || seen[v]) return false;
      seen[v] = 1;
    }
    return true;
  };

  for (const n of [1, 2, 3, 1000, 65_537]) {
    it(`N = ${n}: a bijection, bit-identical to the CPU twin, reproducible, new per epoch`, async () => {
      const a = await gpuPermutation(n, 2024, 0);
      expect(isBijection(a)).toBe(true);
      expect(Array.from(a)).toEqual(Array.from(feistelPermutation(n, 2024, 0)));
      expect(Array.from(await gpuPermutation(n, 2024, 0))).toEqual(Array.from(a)); // reproducible
      const b = await gpuPermutation(n, 2024, 1);
      expect(isBijection(b)).toBe(true);
      if (n >= 1000) {
        expect(Array.from(b)).not.toEqual(Array.from(a)); // another epoch
        expect(Array.from(await gpuPermutation(n, 2025, 0))).not.toEqual(Array.from(a)); // another seed
        // Far from the identity and from each other: fixed points ~ Poisson(1), and the rank
        // correlation of two independent uniform permutations has sd 1/sqrt(N - 1): allow 5 sd.
        const corr = (x: ArrayLike<number>, y: ArrayLike<number>) => {
          const m = (n - 1) / 2;
          let s = 0;
          for (let i = 0; i < n; i++) s += (x[i] - m) * (y[i] - m);
          return s / ((n * (n * n - 1)) / 12);
        };
        const ident = Uint32Array.from({ length: n }, (_, i) => i);
        expect(Math.abs(corr(a, ident))).toBeLessThan(5 / Math.sqrt(n - 1));
        expect(Math.abs(corr(a, b))).toBeLessThan(5 / Math.sqrt(n - 1));
        expect(a.filter((v, i) => v === i).length).toBeLessThan(12); // P(Poisson(1) >= 12) < 1e-9
      }
    });
  }

  it('every N in 1..600 (all bit widths, both half splits) gives a bijection on the CPU twin', () => {
    for (let n = 1; n <= 600; n++) {
      const p = feistelPermutation(n, n * 7, 3);
      const seen = new Set(p);
      expect(seen.size === n && Math.max(...p) === n - 1).toBe(true);
    }
  });

  it('positions are uniform over epochs (chi-square) and N = 2 swaps about half the time', () => {
    // N = 10, E = 4000 epochs: counts[i][perm[i]] ~ E / N = 400 each. Chi-square over the 10 x 10
    // table has (N - 1)^2 = 81 degrees of freedom (rows and columns sum to E): mean 81, sd 12.7;
    // fail beyond 6 sd.
    const n = 10;
    const E = 4000;
    const counts = new Float64Array(n * n);
    for (let e = 0; e < E; e++) {
      const p = feistelPermutation(n, 77, e);
      for (let i = 0; i < n; i++) counts[i * n + p[i]]++;
    }
    const exp = E / n;
    let chi2 = 0;
    for (const c of counts) chi2 += (c - exp) ** 2 / exp;
    const dof = (n - 1) ** 2;
    expect(chi2).toBeLessThan(dof + 6 * Math.sqrt(2 * dof));
    // N = 2 over 400 epochs: swaps ~ Binomial(400, 1/2), sd 10; allow 5 sd.
    let swaps = 0;
    for (let e = 0; e < 400; e++) swaps += feistelPermutation(2, 5, e)[0];
    expect(Math.abs(swaps - 200)).toBeLessThan(50);
  });

  it('rejects bad arguments', () => {
    expect(() => feistelKey(0, 0, 0)).toThrow(/n must/);
    expect(() => feistelKey(10, -1, 0)).toThrow(/seed/);
    expect(() => feistelKey(10, 0, 1.5)).toThrow(/epoch/);
    const b = createStorageBuffer(ctx.device, 16);
    expect(() => encodePermutation(new ComputeBatch(ctx.device), b, 5, 0, 0)).toThrow(/too small/);
    b.destroy();
  });
});
