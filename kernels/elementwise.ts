/**
 * Elementwise map programs. Each op is a WGSL expression in x (the element), b (the second
 * operand, for binary ops) and s0, s1 (scalar uniforms); the expression is a compile-time define,
 * so every op gets its own cached pipeline and no runtime switch.
 */
import { fold2D } from '../src/gpu/dispatch.js';
import { type ComputeBatch, type ProgramInfo, ceilDiv } from '../src/gpu/kernel.js';

export const UNARY_OPS = {
  identity: 'x',
  neg: '-x',
  abs: 'abs(x)',
  square: 'x * x',
  exp: 'exp(x)',
  log: 'log(x)',
  relu: 'max(x, 0.0)',
  tanh: 'safe_tanh(x)',
  sigmoid: 'sigmoid(x)',
  softplus: 'softplus(x)',
  /** s0 * x + s1 */
  affine: 's0 * x + s1',
} as const;

export const BINARY_OPS = {
  add: 'x + b',
  sub: 'x - b',
  mul: 'x * b',
  div: 'x / b',
  max: 'max(x, b)',
  min: 'min(x, b)',
} as const;

export type UnaryOp = keyof typeof UNARY_OPS;
export type BinaryOp = keyof typeof BINARY_OPS;

export interface MapShape {
  n: number;
  op: UnaryOp | BinaryOp;
  /** Length of the second operand, broadcast cyclically (n, a row length, or 1). Binary ops only. */
  bLen?: number;
  s0?: number;
  s1?: number;
}

export function isBinaryOp(op: string): op is BinaryOp {
  return op in BINARY_OPS;
}

export function mapProgram(shape: MapShape): ProgramInfo {
  const { n, op } = shape;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`map: n must be a positive integer, got ${n}`);
  const binary = isBinaryOp(op);
  const expr = binary ? BINARY_OPS[op] : (UNARY_OPS as Record<string, string>)[op];
  if (expr === undefined) throw new RangeError(`map: unknown op "${op}" (${[...Object.keys(UNARY_OPS), ...Object.keys(BINARY_OPS)].join(', ')})`);
  const bLen = binary ? (shape.bLen ?? n) : 1;
  if (binary && (!Number.isInteger(bLen) || bLen < 1 || bLen > n)) throw new RangeError(`map(${op}): bLen must be in 1..${n}, got ${bLen}`);
  const { workgroups, gridX } = fold2D(ceilDiv(n, 256));
  return {
    name: `map(${op})`,
    shader: 'linalg/map.wgsl',
    defines: { BINARY: binary, EXPR: expr },
    workgroups,
    uniforms: [
      ['u32', n],
      ['u32', bLen],
      ['u32', gridX],
      ['f32', shape.s0 ?? 0],
      ['f32', shape.s1 ?? 0],
    ],
    uniformBinding: 3,
  };
}

/** y = op(x) or op(x, b). y must not alias x or b: WebGPU forbids binding one buffer as read and read_write in a dispatch. */
export function encodeMap(batch: ComputeBatch, bufs: { x: GPUBuffer; b?: GPUBuffer; y: GPUBuffer }, shape: MapShape): ComputeBatch {
  const binary = isBinaryOp(shape.op);
  if (binary && !bufs.b) throw new Error(`map(${shape.op}) needs a second operand buffer b`);
  const bindings: Record<number, GPUBuffer> = { 0: bufs.x, 2: bufs.y };
  if (binary) bindings[1] = bufs.b!;
  return batch.add(mapProgram(shape), bindings);
}
