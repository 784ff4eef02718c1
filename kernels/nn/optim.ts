/**
 * Global gradient-norm clipping + fused Adam / AdamW on the GPU (shaders/nn/optim.wgsl), the device
 * twin of src/flow/adam.ts (clipGradNorm + adamStep, torch semantics).
 *
 * One optimiser step = 3 dispatches in the caller's ComputeBatch (2 without clipping), no readback:
 *   1. sumsq_partials  G = normPartialCount(n, tuning) workgroups, grid-stride: partial sums of grad^2 (clip only)
 *   2. finalize        1 workgroup: norm, clip scale, step += 1, bias corrections -> state
 *   3. adam            min(ceil(n / 256), tuning.adamGroups) workgroups, grid-stride: the element update
 *
 * Buffers (all flat f32 of n elements unless stated; the flow's aligned layout, gaps stay 0):
 *   params (rw), grad (read; rw with zeroGrad), m (rw), v (rw),
 *   state: OPTIM_STATE_WORDS u32 words (layout OptimWord below; the step counter lives here, so
 *          steps recorded back to back in one submission each see their own t),
 *   partials: normPartialCount(n, tuning) f32 scratch.
 * Hyper-parameters are uniforms (lr per step: a schedule never recompiles); only clipping on/off,
 * `decoupled` and `zeroGrad` are compile-time (pipeline cache key).
 */
import { createStorageBuffer, readBytes } from '../../src/gpu/buffers.js';
import { type ComputeBatch, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';
import type { Defines } from '../../src/gpu/shaderSource.js';

export const OPTIM_WORKGROUP = 256;
/** Upper bound of the first-pass workgroups of the norm reduction (partials length). */
export const MAX_NORM_PARTIALS = 4096;

/**
 * Workgroup counts of the two grid-stride passes (performance only; results do not depend on
 * adamGroups, and the norm's rounding depends on normGroups only through the summation order).
 * GPUs want enough workgroups to fill the machine; CPU drivers (lavapipe) pay per workgroup,
 * and a barrier-synchronised workgroup costs ~30 us there: few, long workgroups are best.
 */
export interface OptimTuning {
  /** Cap on the sum-of-squares workgroups (<= MAX_NORM_PARTIALS). */
  normGroups: number;
  /** Cap on the Adam workgroups (<= 65535). */
  adamGroups: number;
}

export const TUNING_GPU: OptimTuning = { normGroups: 1024, adamGroups: 4096 };
/** Measured on lavapipe (2 cores), n = 10^6: sum of squares 0.7 ms with 2-8 groups vs 27 ms with 977; Adam 4.0 ms with 2-128 groups vs 10.4 ms with one element per thread. */
export const TUNING_CPU_DRIVER: OptimTuning = { normGroups: 8, adamGroups: 32 };

/** True on software adapters (llvmpipe / lavapipe, SwiftShader, WARP), from GPUDevice.adapterInfo (as src/gpu/device.ts decides). */
export function isCpuDriver(device: GPUDevice): boolean {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  const text = info ? `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase() : '';
  return /llvmpipe|lavapipe|swiftshader|warp|software|cpu/.test(text);
}

/** The tuning for a device: TUNING_CPU_DRIVER on software adapters, else TUNING_GPU. */
export function defaultOptimTuning(device: GPUDevice): OptimTuning {
  return isCpuDriver(device) ? TUNING_CPU_DRIVER : TUNING_GPU;
}

/** Words (u32) in the optimiser state buffer (64 bytes). */
export const OPTIM_STATE_WORDS = 16;
/** Largest n (u32 grid-stride indexing stays below 2^31). */
export const OPTIM_MAX_ELEMENTS = 2 ** 31 - 1;

/** Word index of each field of the state buffer (f32 fields are bit-cast). */
export const OptimWord = {
  /** u32: steps taken (t of the last step). */
  step: 0,
  /** f32: lr / (1 - beta1^t) of the last step. */
  stepSize: 1,
  /** f32: sqrt(1 - beta2^t) of the last step. */
  bc2Sqrt: 2,
  /** f32: clip factor applied in the last step (1 = not clipped). */
  clipScale: 3,
  /** f32: pre-clip global gradient norm of the last step (clipping on). */
  gradNorm: 4,
  /** f32: sum of pre-clip norms since the last reset (clipping on). */
  gradNormSum: 5,
  /** u32: clipped steps since the last reset. */
  clippedSteps: 6,
  /** u32: steps since the last reset. */
  stepsSinceReset: 7,
  /** f32: lr of the last step. */
  lr: 8,
} as const;

export interface AdamHyper {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** true: AdamW (decoupled weight decay); false: Adam (L2 folded into the gradient). */
  decoupled?: boolean;
  /** Global-norm clipping threshold (torch clip_grad_norm_, norm 2); null / undefined / Infinity: none. */
  maxNorm?: number | null;
  /** eps in maxNorm / (norm + eps); torch's 1e-6 by default. */
  clipEps?: number;
  /** Write 0 into grad after reading it (so the next backward may accumulate with +=). */
  zeroGrad?: boolean;
}

interface Resolved {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  clip: boolean;
  maxNorm: number;
  clipEps: number;
  zeroGrad: boolean;
}

function resolve(h: AdamHyper): Resolved {
  const r: Resolved = {
    lr: h.lr,
    beta1: h.beta1 ?? 0.9,
    beta2: h.beta2 ?? 0.999,
    eps: h.eps ?? 1e-8,
    weightDecay: h.weightDecay ?? 0,
    decoupled: h.decoupled ?? false,
    clip: h.maxNorm !== null && h.maxNorm !== undefined && h.maxNorm !== Infinity,
    maxNorm: h.maxNorm ?? Infinity,
    clipEps: h.clipEps ?? 1e-6,
    zeroGrad: h.zeroGrad ?? false,
  };
  const bad = (k: string, v: number, range: string) => new RangeError(`adam: ${k} must be ${range}, got ${v}`);
  if (!(r.lr >= 0 && Number.isFinite(r.lr))) throw bad('lr', r.lr, 'a finite number >= 0');
  if (!(r.beta1 >= 0 && r.beta1 < 1)) throw bad('beta1', r.beta1, 'in [0, 1)');
  if (!(r.beta2 >= 0 && r.beta2 < 1)) throw bad('beta2', r.beta2, 'in [0, 1)');
  if (!(r.eps >= 0 && Number.isFinite(r.eps))) throw bad('eps', r.eps, 'a finite number >= 0');
  if (!(r.weightDecay >= 0 && Number.isFinite(r.weightDecay))) throw bad('weightDecay', r.weightDecay, 'a finite number >= 0');
  if (r.clip && !(r.maxNorm > 0 && Number.isFinite(r.maxNorm))) throw bad('maxNorm', r.maxNorm, '> 0 (or null for no clipping)');
  if (!(r.clipEps >= 0 && Number.isFinite(r.clipEps))) throw bad('clipEps', r.clipEps, 'a finite number >= 0');
  return r;
}

function checkN(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > OPTIM_MAX_ELEMENTS) throw new RangeError(`adam: n must be an integer in 1..${OPTIM_MAX_ELEMENTS}, got ${n}`);
}

function checkTuning(t: OptimTuning): void {
  if (!Number.isInteger(t.normGroups) || t.normGroups < 1 || t.normGroups > MAX_NORM_PARTIALS) throw new RangeError(`adam: tuning.normGroups must be an integer in 1..${MAX_NORM_PARTIALS}, got ${t.normGroups}`);
  if (!Number.isInteger(t.adamGroups) || t.adamGroups < 1 || t.adamGroups > 65535) throw new RangeError(`adam: tuning.adamGroups must be an integer in 1..65535, got ${t.adamGroups}`);
}

/** Workgroups of the first norm pass (= length of the partials buffer). */
export function normPartialCount(n: number, tuning: OptimTuning = TUNING_GPU): number {
  checkN(n);
  checkTuning(tuning);
  return Math.min(tuning.normGroups, ceilDiv(n, OPTIM_WORKGROUP));
}

function defines(r: Resolved): Defines {
  return { CLIP: r.clip, DECOUPLED: r.decoupled, ZERO_GRAD: r.zeroGrad };
}

/** ln(beta) for the GPU's -expm1(t ln beta); beta = 0 (or tiny) clamps to -200 (beta^t = 0 in f32). */
const lnBeta = (b: number) => Math.max(Math.log(b), -200);

function uniforms(n: number, gridX: number, r: Resolved, t: OptimTuning): ProgramInfo['uniforms'] {
  return [
    ['u32', n],
    ['u32', gridX],
    ['u32', r.clip ? normPartialCount(n, t) : 0],
    ['f32', r.clip ? r.maxNorm : 0],
    ['f32', r.clipEps],
    ['f32', r.lr],
    ['f32', r.beta2],
    ['f32', 1 - r.beta1],
    ['f32', 1 - r.beta2],
    ['f32', lnBeta(r.beta1)],
    ['f32', lnBeta(r.beta2)],
    ['f32', r.eps],
    ['f32', r.weightDecay],
    ['f32', r.decoupled ? 1 - r.lr * r.weightDecay : 1],
  ];
}

/** Pass 1: partial sums of grad^2 (clipping only). Bindings: 1 grad, 5 partials. */
export function sumSqPartialsProgram(n: number, hyper: AdamHyper, tuning: OptimTuning = TUNING_GPU): ProgramInfo {
  const r = resolve(hyper);
  if (!r.clip) throw new Error('adam: sumSqPartialsProgram needs maxNorm (clipping)');
  const G = normPartialCount(n, tuning);
  return { name: 'clipNorm.partials', shader: 'nn/optim.wgsl', entryPoint: 'sumsq_partials', defines: defines(r), workgroups: [G, 1, 1], uniforms: uniforms(n, 1, r, tuning), uniformBinding: 6 };
}

/** Pass 2: norm + clip scale (with clipping), step += 1, bias corrections. Bindings: 4 state, 5 partials (clip). */
export function optimFinalizeProgram(n: number, hyper: AdamHyper, tuning: OptimTuning = TUNING_GPU): ProgramInfo {
  checkN(n);
  const r = resolve(hyper);
  return { name: 'adam.finalize', shader: 'nn/optim.wgsl', entryPoint: 'finalize', defines: defines(r), workgroups: [1, 1, 1], uniforms: uniforms(n, 1, r, tuning), uniformBinding: 6 };
}

/** Pass 3: the element update (grid-stride). Bindings: 0 params, 1 grad, 2 m, 3 v, 4 state. */
export function adamProgram(n: number, hyper: AdamHyper, tuning: OptimTuning = TUNING_GPU): ProgramInfo {
  checkN(n);
  checkTuning(tuning);
  const r = resolve(hyper);
  const G = Math.min(tuning.adamGroups, ceilDiv(n, OPTIM_WORKGROUP));
  return { name: r.decoupled ? 'adamw' : 'adam', shader: 'nn/optim.wgsl', entryPoint: 'adam', defines: defines(r), workgroups: [G, 1, 1], uniforms: uniforms(n, G, r, tuning), uniformBinding: 6 };
}

export interface OptimBuffers {
  params: GPUBuffer;
  grad: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  state: GPUBuffer;
  /** normPartialCount(n, tuning) f32 (MAX_NORM_PARTIALS always suffices); needed with clipping. */
  partials?: GPUBuffer;
}

/** Records one clip + Adam step (3 dispatches; 2 without clipping) over the first n elements. */
export function encodeClipAdam(batch: ComputeBatch, bufs: OptimBuffers, n: number, hyper: AdamHyper, tuning: OptimTuning = TUNING_GPU): ComputeBatch {
  const r = resolve(hyper);
  if (r.clip) {
    if (!bufs.partials) throw new Error('adam: clipping needs a partials buffer (normPartialCount(n) f32)');
    if (bufs.partials.size < normPartialCount(n, tuning) * 4) throw new RangeError(`adam: partials buffer of ${bufs.partials.size} B is smaller than ${normPartialCount(n, tuning)} f32`);
    batch.add(sumSqPartialsProgram(n, hyper, tuning), { 1: bufs.grad, 5: bufs.partials });
    batch.add(optimFinalizeProgram(n, hyper, tuning), { 4: bufs.state, 5: bufs.partials });
  } else {
    batch.add(optimFinalizeProgram(n, hyper, tuning), { 4: bufs.state });
  }
  return batch.add(adamProgram(n, hyper, tuning), { 0: bufs.params, 1: bufs.grad, 2: bufs.m, 3: bufs.v, 4: bufs.state });
}

export interface OptimStats {
  step: number;
  stepSize: number;
  bc2Sqrt: number;
  clipScale: number;
  gradNorm: number;
  gradNormSum: number;
  clippedSteps: number;
  stepsSinceReset: number;
  lr: number;
}

/** Decodes the state words (e.g. read back with readBytes). */
export function decodeOptimState(bytes: ArrayBuffer): OptimStats {
  const u = new Uint32Array(bytes, 0, OPTIM_STATE_WORDS);
  const f = new Float32Array(bytes, 0, OPTIM_STATE_WORDS);
  return {
    step: u[OptimWord.step],
    stepSize: f[OptimWord.stepSize],
    bc2Sqrt: f[OptimWord.bc2Sqrt],
    clipScale: f[OptimWord.clipScale],
    gradNorm: f[OptimWord.gradNorm],
    gradNormSum: f[OptimWord.gradNormSum],
    clippedSteps: u[OptimWord.clippedSteps],
    stepsSinceReset: u[OptimWord.stepsSinceReset],
    lr: f[OptimWord.lr],
  };
}

export async function readOptimState(device: GPUDevice, state: GPUBuffer): Promise<OptimStats> {
  return decodeOptimState(await readBytes(device, state, 0, OPTIM_STATE_WORDS * 4));
}

/** The state buffer for a fresh optimiser (all zero) or one resumed at `step`. */
export function createOptimState(device: GPUDevice, step = 0, label = 'optim state'): GPUBuffer {
  const b = createStorageBuffer(device, OPTIM_STATE_WORDS * 4, label);
  if (step) writeOptimStep(device, b, step);
  return b;
}

/** Sets the step counter (resume from a checkpoint). Queue-ordered: lands before later submissions. */
export function writeOptimStep(device: GPUDevice, state: GPUBuffer, step: number): void {
  if (!Number.isInteger(step) || step < 0 || step > 0xffffffff) throw new RangeError(`adam: step must be a u32, got ${step}`);
  device.queue.writeBuffer(state, OptimWord.step * 4, new Uint32Array([step]));
}

/** Zeroes the since-reset statistics (norm sum, clipped steps, steps), e.g. at the start of an epoch. */
export function resetOptimStats(device: GPUDevice, state: GPUBuffer): void {
  device.queue.writeBuffer(state, OptimWord.gradNormSum * 4, new Uint32Array(3));
}

/**
 * An optimiser over a flat vector of n f32: owns m, v, state and the norm scratch. Usage per step:
 * `adam.encodeStep(batch, params, grad)` (optionally `{ lr }` from a schedule), then batch.run()
 * whenever convenient (many steps may share one submission).
 */
export class GpuAdam {
  readonly m: GPUBuffer;
  readonly v: GPUBuffer;
  readonly state: GPUBuffer;
  readonly partials: GPUBuffer | null;
  readonly tuning: OptimTuning;
  private readonly hyper: AdamHyper;

  /** `tuning` defaults to defaultOptimTuning(device). */
  constructor(
    readonly device: GPUDevice,
    readonly n: number,
    hyper: AdamHyper,
    tuning?: OptimTuning,
  ) {
    const r = resolve(hyper);
    checkN(n);
    this.tuning = tuning ?? defaultOptimTuning(device);
    checkTuning(this.tuning);
    this.hyper = { ...hyper };
    this.m = createStorageBuffer(device, n * 4, 'adam m');
    this.v = createStorageBuffer(device, n * 4, 'adam v');
    this.state = createOptimState(device);
    this.partials = r.clip ? createStorageBuffer(device, normPartialCount(n, this.tuning) * 4, 'clip partials') : null;
  }

  /** Records one step; `over` changes per-step uniforms (lr, weightDecay, ...) but not compile-time options. */
  encodeStep(batch: ComputeBatch, params: GPUBuffer, grad: GPUBuffer, over: Partial<Pick<AdamHyper, 'lr' | 'beta1' | 'beta2' | 'eps' | 'weightDecay' | 'maxNorm' | 'clipEps'>> = {}): ComputeBatch {
    const h = { ...this.hyper, ...over };
    const clip = (h.maxNorm ?? Infinity) !== Infinity;
    if (clip !== (this.partials !== null)) throw new Error('adam: clipping cannot be switched on or off per step (create another GpuAdam)');
    return encodeClipAdam(batch, { params, grad, m: this.m, v: this.v, state: this.state, partials: this.partials ?? undefined }, this.n, h, this.tuning);
  }

  readState(): Promise<OptimStats> {
    return readOptimState(this.device, this.state);
  }

  resetStats(): void {
    resetOptimStats(this.device, this.state);
  }

  /** Restores a checkpoint: step counter and (optionally) the moments. */
  load(step: number, m?: Float32Array, v?: Float32Array): void {
    for (const [name, a] of [['m', m], ['v', v]] as const) if (a && a.length !== this.n) throw new RangeError(`adam.load: ${name} has ${a.length} elements, expected ${this.n}`);
    writeOptimStep(this.device, this.state, step);
    if (m) this.device.queue.writeBuffer(this.m, 0, Float32Array.from(m));
    if (v) this.device.queue.writeBuffer(this.v, 0, Float32Array.from(v));
  }

  destroy(): void {
    this.m.destroy();
    this.v.destroy();
    this.state.destroy();
    this.partials?.destroy();
  }
}
