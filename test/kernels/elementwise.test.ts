import { describe, expect, it } from 'vitest';
import { BINARY_OPS, type BinaryOp, UNARY_OPS, type UnaryOp, encodeMap, mapProgram } from '../../kernels/elementwise.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch } from '../../src/gpu/kernel.js';
import { randomF32 } from '../../src/reference/linalg.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();

/** float64 references of the WGSL expressions. */
const unaryRef: Record<UnaryOp, (x: number, s0: number, s1: number) => number> = {
  identity: (x) => x,
  neg: (x) => -x,
  abs: Math.abs,
  square: (x) => x * x,
  exp: Math.exp,
  log: Math.log,
  relu: (x) => Math.max(x, 0),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  softplus: (x) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))),
  affine: (x, s0, s1) => s0 * x + s1,
};
const binaryRef: Record<BinaryOp, (x: number, b: number) => number> = {
  add: (x, b) => x + b,
  sub: (x, b) => x - b,
  mul: (x, b) => x * b,
  div: (x, b) => x / b,
  max: Math.max,
  min: Math.min,
};

// WGSL exp/log/tanh are accurate to a few ulp over their domain (WGSL spec, "Floating point
// accuracy": exp 3 + 2|x| ulp, log 3 ulp beyond [0.5, 2]); rtol 2e-6 plus a tiny atol near zero.
const RTOL = 2e-6;
const ATOL = 1e-7;

describe('elementwise map vs float64 reference', () => {
  for (const n of [1, 255, 257, 100_003]) {
    for (const op of Object.keys(UNARY_OPS) as UnaryOp[]) {
      it(`${op} over ${n}`, async () => {
        const dev = ctx.device;
        let x = randomF32(n, n + op.length, 10);
        if (op === 'log') x = x.map((v) => Math.abs(v) + 1e-3);
        const s0 = 1.5, s1 = -0.25;
        const X = uploadBuffer(dev, x), Y = createStorageBuffer(dev, n * 4);
        await encodeMap(new ComputeBatch(dev), { x: X, y: Y }, { n, op, s0, s1 }).run();
        const got = await readFloat32(dev, Y, 0, n);
        X.destroy();
        Y.destroy();
        const want = Float64Array.from(x, (v) => unaryRef[op](v, s0, s1));
        // exp(10) ~ 2e4: the absolute error scales with the value, covered by rtol.
        expectAllClose(got, want, { rtol: RTOL, atol: ATOL, label: `${op} n=${n}` });
      });
    }
  }

  for (const op of Object.keys(BINARY_OPS) as BinaryOp[]) {
    for (const [n, bLen] of [[1, 1], [257, 257], [6 * 37, 37], [1000, 1]] as const) {
      it(`${op} over ${n} with b of length ${bLen}`, async () => {
        const dev = ctx.device;
        const x = randomF32(n, 3 * n, 5);
        const b = randomF32(bLen, 7 * bLen + 1, 5).map((v) => (op === 'div' ? Math.sign(v || 1) * (Math.abs(v) + 0.5) : v));
        const X = uploadBuffer(dev, x), B = uploadBuffer(dev, b), Y = createStorageBuffer(dev, n * 4);
        await encodeMap(new ComputeBatch(dev), { x: X, b: B, y: Y }, { n, op, bLen }).run();
        const got = await readFloat32(dev, Y, 0, n);
        for (const buf of [X, B, Y]) buf.destroy();
        const want = Float64Array.from(x, (v, i) => binaryRef[op](v, b[i % bLen]));
        // One f32 rounding (division: WGSL allows 2.5 ulp).
        expectAllClose(got, want, { rtol: 3e-7, atol: 1e-30, label: `${op} n=${n} bLen=${bLen}` });
      });
    }
  }

  it('tanh, sigmoid and softplus are finite for huge inputs', async () => {
    const dev = ctx.device;
    const x = new Float32Array([-1e30, -1000, -89, 89, 1000, 1e30]);
    for (const op of ['tanh', 'sigmoid', 'softplus'] as const) {
      const X = uploadBuffer(dev, x), Y = createStorageBuffer(dev, x.length * 4);
      await encodeMap(new ComputeBatch(dev), { x: X, y: Y }, { n: x.length, op }).run();
      const got = await readFloat32(dev, Y, 0, x.length);
      X.destroy();
      Y.destroy();
      const want = Float64Array.from(x, (v) => unaryRef[op](v, 0, 0));
      expectAllClose(got, want, { rtol: RTOL, atol: ATOL, label: op });
    }
  });

  it('rejects unknown ops and missing operands', () => {
    expect(() => mapProgram({ n: 4, op: 'cube' as UnaryOp })).toThrow(/unknown op "cube"/);
    expect(() => mapProgram({ n: 4, op: 'add', bLen: 5 })).toThrow(/bLen must be in 1..4/);
  });
});
