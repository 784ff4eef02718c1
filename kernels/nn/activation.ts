/**
 * Conditioner activations (shaders/nn/activation.wgsl), the f32 twins of src/flow/mlp.ts
 * activationForward / activationBackward:
 *   forward   y = act(x)                                  (relu, or tanh in the overflow-free form)
 *   backward  gx = g * act'(post) (+ res)                 act' from the forward OUTPUT post:
 *             relu' = [post > 0], tanh' = 1 - post^2; `res` fuses a residual block's skip gradient.
 * Elementwise over `count` values of flat matrices; inputs and outputs may be buffer sub-ranges
 * (256-byte aligned offsets) but an output must not alias an input (WebGPU binding rules).
 * The activation kind and mode are compile-time (pipeline cache key); count is a uniform.
 */
import { fold2D } from '../../src/gpu/dispatch.js';
import { type Bindings, type ComputeBatch, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';

export type BufferRef = Bindings[number];
export type ActivationKind = 'relu' | 'tanh';

export const ACTIVATION_WORKGROUP = 256;
const ACT_CODE: Record<ActivationKind, number> = { relu: 0, tanh: 1 };

export interface ActivationShape {
  /** Elements (rows x cols). */
  count: number;
  act: ActivationKind;
}

function check(name: string, s: ActivationShape): void {
  if (!Number.isInteger(s.count) || s.count < 1 || s.count > 0xffffffff) throw new RangeError(`${name}: count must be an integer in 1..2^32-1, got ${s.count}`);
  if (!(s.act in ACT_CODE)) throw new RangeError(`${name}: act must be relu or tanh, got "${s.act}"`);
}

function program(name: string, s: ActivationShape, mode: 0 | 1, residual: boolean): ProgramInfo {
  check(name, s);
  const { workgroups, gridX } = fold2D(ceilDiv(s.count, ACTIVATION_WORKGROUP));
  return {
    name: `${name}(${s.act}${residual ? ', +res' : ''})`,
    shader: 'nn/activation.wgsl',
    defines: { MODE: mode, ACT: ACT_CODE[s.act], RESIDUAL: residual },
    workgroups,
    uniforms: [
      ['u32', s.count],
      ['u32', gridX],
    ],
    uniformBinding: 5,
  };
}

/** Forward program. Bindings: 0 x, 2 y. */
export function activationForwardProgram(s: ActivationShape): ProgramInfo {
  return program('activation', s, 0, false);
}

/** Backward program. Bindings: 0 g, 1 post, 2 gx, 3 res (with `residual`). */
export function activationBackwardProgram(s: ActivationShape & { residual?: boolean }): ProgramInfo {
  return program('activationBackward', s, 1, !!s.residual);
}

export function activationForwardBindings(b: { x: BufferRef; y: BufferRef }): Bindings {
  return { 0: b.x, 2: b.y };
}

export function activationBackwardBindings(b: { g: BufferRef; post: BufferRef; gx: BufferRef; res?: BufferRef }): Bindings {
  const out: Bindings = { 0: b.g, 1: b.post, 2: b.gx };
  if (b.res) out[3] = b.res;
  return out;
}

/** y = act(x). */
export function encodeActivation(batch: ComputeBatch, b: { x: BufferRef; y: BufferRef }, s: ActivationShape): ComputeBatch {
  return batch.add(activationForwardProgram(s), activationForwardBindings(b));
}

/** gx = g * act'(post) (+ res when given). */
export function encodeActivationBackward(batch: ComputeBatch, b: { g: BufferRef; post: BufferRef; gx: BufferRef; res?: BufferRef }, s: ActivationShape): ComputeBatch {
  return batch.add(activationBackwardProgram({ ...s, residual: !!b.res }), activationBackwardBindings(b));
}
