/**
 * Rational-quadratic spline coupling kernels (shaders/nn/spline.wgsl + spline_common.wgsl): the f32
 * mirror of src/flow/spline.ts (nflows' unconstrained RQ spline, linear tails on [-B, B]).
 *
 *   forward   u (n x dims) -> y, logdet[n] (+)= sum_j log f'(u_nj)
 *   inverse   y -> u,           logdet[n] (+)= sum_j log f'(u_nj)   (forward log-derivative at u;
 *             the reference's splineInverse returns its negative)
 *   backward  (u, raw, gY, gLogdet) -> gU = dL/du, gRaw = dL/draw   (backward of `forward`)
 *
 * raw is the conditioner output, dense row-major n x dims(3K - 1): scalar (n, j) owns
 * raw[(n dims + j)(3K - 1) ...], K width logits, K height logits, K - 1 interior derivative logits.
 * gRaw has the same layout and is fully written (zeros where the input is outside [-B, B]).
 * Data matrices (u, y, gY, gU) may be columns of a wider row-major matrix: element (n, j) at
 * n * stride + offset + j (`RowLayout`, default dense: stride dims, offset 0).
 *
 * Defines (the pipeline cache key): BINS = K, because it sizes the loops (unrolled by the
 * compiler), the per-scalar softmax arrays held in registers and the parameter stride 3K - 1, and K
 * is fixed for a model; WG (threads per group); MODE; STAGE (backward, K <= 21: the group's
 * parameters and gradients go through workgroup memory so that global loads and stores are
 * coalesced). Everything else — n, dims, layouts, B, the minimum bin width/height/derivative and the
 * logit scale — is a uniform, so one pipeline per (K, mode) serves every batch and every config.
 */
import { summariseAdapter } from '../../src/gpu/device.js';
import { fold2D } from '../../src/gpu/dispatch.js';
import { type Bindings, type ComputeBatch, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';

/** A whole buffer or a sub-range of one (offsets: minStorageBufferOffsetAlignment, 256 bytes by default). */
export type BufferRef = Bindings[number];

/** Threads per workgroup of every spline program. */
export const SPLINE_WORKGROUP = 64;

/** Workgroup memory the kernels may use for staging (WebGPU's guaranteed minimum). */
const STAGE_BYTES = 16384;

/** Whether a backward workgroup's raw parameters (WG x (3K - 1) f32) fit the workgroup-memory stage: K <= 21. */
export function splineStaged(bins: number): boolean {
  return SPLINE_WORKGROUP * splineRawPerScalar(bins) * 4 <= STAGE_BYTES;
}

/** Backward batches (n x dims scalars) up to which the staged path is the default on GPUs. */
export const SPLINE_STAGE_MAX_SCALARS = 1 << 21;

/**
 * The backward's default staging for a device and batch: on hardware GPUs when K fits and the batch
 * has at most SPLINE_STAGE_MAX_SCALARS scalars; never on CPU adapters. Measured on an H100 (D = 4,
 * K = 10): staged / direct 0.106 / 0.144 ms at N = 65536, 1.18-1.25 / 1.53-1.73 ms at N = 262144,
 * but 3.8-4.4 / 2.09 ms at N = 2^20 (one earlier run: 1.47 ms staged; not understood); lavapipe:
 * staged 2x slower (workgroup memory and barriers cost more than they save on a CPU).
 */
export function splineStageFor(device: GPUDevice, bins: number, scalars = 0): boolean {
  if (!splineStaged(bins) || scalars > SPLINE_STAGE_MAX_SCALARS) return false;
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return !(info && summariseAdapter(info).isSoftware);
}

/** The spline's constants; structurally the same as src/flow/spline.ts SplineSpec (pass one directly). */
export interface SplineKernelSpec {
  /** K, number of bins (>= 1). */
  bins: number;
  /** B: the spline acts on [-B, B], identity outside. */
  bound: number;
  minBinWidth: number;
  minBinHeight: number;
  minDerivative: number;
  /** Multiplies the width and height logits (nflows: 1/sqrt(hidden)). */
  logitScale: number;
}

/** Element (n, j) of a data matrix at n * stride + offset + j. */
export interface RowLayout {
  stride: number;
  offset: number;
}

export interface SplineShape {
  /** Samples (rows). */
  n: number;
  /** Transformed dims per sample (D). */
  dims: number;
  spec: SplineKernelSpec;
}

export interface SplineMapShape extends SplineShape {
  /** Add the per-sample sum to logdet instead of overwriting it (the flow sums over layers). */
  accumulate?: boolean;
  /** Layout of the input (u for forward, y for inverse); default dense n x dims. */
  input?: RowLayout;
  /** Layout of the output (y for forward, u for inverse); default dense n x dims. */
  output?: RowLayout;
  /**
   * One thread per sample walking its dims (no workgroup memory, no barrier): for CPU drivers, where
   * a barrier switches coroutines (`splineSerialFor`). The same sums in the same order (dims <= 64),
   * so the same bits.
   */
  serial?: boolean;
}

/** The forward / inverse default for a device: serial on CPU adapters. */
export function splineSerialFor(device: GPUDevice): boolean {
  const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  return !!info && summariseAdapter(info).isSoftware;
}

export interface SplineBackwardShape extends SplineShape {
  /** Layouts of u, gY and gU; default dense n x dims. */
  u?: RowLayout;
  gY?: RowLayout;
  gU?: RowLayout;
  /**
   * Copy the workgroup's raw parameters and gradients through workgroup memory (coalesced global
   * loads and stores; K <= 21). Default: splineBackwardProgram (no device at hand) reads directly;
   * encodeSplineBackward uses splineStageFor(device, K, n dims) (hardware GPUs up to 2^21 scalars
   * yes, CPU adapters no): pass that when building the program yourself. Same arithmetic either way (bitwise equal on lavapipe; a GPU compiler may contract
   * the two paths into FMAs differently, last-ulp differences).
   */
  stage?: boolean;
}

/** Raw parameters per scalar: 3K - 1. */
export function splineRawPerScalar(bins: number): number {
  return 3 * bins - 1;
}

function checkSpec(s: SplineKernelSpec): void {
  const K = s.bins;
  if (!Number.isInteger(K) || K < 1 || K > 256) throw new RangeError(`spline: bins must be an integer in 1..256, got ${K}`);
  if (!(Number.isFinite(s.bound) && s.bound > 0)) throw new RangeError(`spline: bound must be a positive finite number, got ${s.bound}`);
  for (const key of ['minBinWidth', 'minBinHeight'] as const) {
    const v = s[key];
    // > 0 keeps every bin at least 2 B min wide (no 0/0); min K < 1 keeps the softmax share positive.
    if (!(v > 0 && v * K < 1)) throw new RangeError(`spline: ${key} must be in (0, 1/bins) = (0, ${1 / K}), got ${v}`);
  }
  if (!(s.minDerivative >= 0 && Number.isFinite(s.minDerivative))) throw new RangeError(`spline: minDerivative must be >= 0 and finite, got ${s.minDerivative}`);
  if (!(Number.isFinite(s.logitScale) && s.logitScale > 0)) throw new RangeError(`spline: logitScale must be a positive finite number, got ${s.logitScale}`);
}

function checkShape(name: string, { n, dims, spec }: SplineShape): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name}: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(dims) || dims < 1) throw new RangeError(`${name}: dims must be a positive integer, got ${dims}`);
  checkSpec(spec);
  // Raw indices (n dims + j)(3K - 1) are u32 in the shader.
  if (n * dims * splineRawPerScalar(spec.bins) > 0xffffffff) throw new RangeError(`${name}: ${n} x ${dims} x ${splineRawPerScalar(spec.bins)} raw parameters exceed 2^32 (split the batch)`);
}

function layout(name: string, what: string, l: RowLayout | undefined, n: number, dims: number): RowLayout {
  const r = l ?? { stride: dims, offset: 0 };
  if (!Number.isInteger(r.stride) || !Number.isInteger(r.offset) || r.offset < 0 || r.stride < r.offset + dims) {
    throw new RangeError(`${name}: ${what} layout needs integers with offset >= 0 and stride >= offset + dims (${dims}), got stride ${r.stride}, offset ${r.offset}`);
  }
  if ((n - 1) * r.stride + r.offset + dims > 0xffffffff) throw new RangeError(`${name}: ${what} indices exceed 2^32`);
  return r;
}

function specUniforms(s: SplineKernelSpec): ['f32', number][] {
  return [
    ['f32', s.bound],
    ['f32', s.minBinWidth],
    ['f32', s.minBinHeight],
    ['f32', s.minDerivative],
    ['f32', s.logitScale],
  ];
}

function stageOf(name: string, shape: SplineBackwardShape): boolean {
  if (shape.stage === undefined) return false;
  if (shape.stage && !splineStaged(shape.spec.bins)) throw new RangeError(`${name}: stage needs bins <= 21 (the workgroup's parameters in 16 KiB), got ${shape.spec.bins}`);
  return shape.stage;
}

function mapProgram(shape: SplineMapShape, mode: 0 | 1): ProgramInfo {
  const name = mode === 0 ? 'splineForward' : 'splineInverse';
  checkShape(name, shape);
  const { n, dims, spec } = shape;
  const inL = layout(name, 'input', shape.input, n, dims);
  const outL = layout(name, 'output', shape.output, n, dims);
  const serial = !!shape.serial;
  const lanes = serial ? 1 : Math.min(dims, SPLINE_WORKGROUP);
  const spg = Math.floor(SPLINE_WORKGROUP / lanes);
  const { workgroups, gridX } = fold2D(ceilDiv(n, spg));
  return {
    name: `${name}(K=${spec.bins}${serial ? ', serial' : ''})`,
    shader: 'nn/spline.wgsl',
    defines: { BINS: `${spec.bins}u`, WG: `${SPLINE_WORKGROUP}u`, MODE: mode, RQ_GRAD: false, SERIAL: serial },
    workgroups,
    uniforms: [
      ['u32', n],
      ['u32', dims],
      ['u32', gridX],
      ['u32', spg],
      ['u32', lanes],
      ['u32', inL.stride],
      ['u32', inL.offset],
      ['u32', outL.stride],
      ['u32', outL.offset],
      ['u32', shape.accumulate ? 1 : 0],
      ...specUniforms(spec),
    ],
    uniformBinding: 4,
  };
}

/** Forward program: bindings 0 u, 1 raw, 2 y, 3 logdet (n), 4 uniforms. */
export function splineForwardProgram(shape: SplineMapShape): ProgramInfo {
  return mapProgram(shape, 0);
}

/** Inverse program: bindings 0 y, 1 raw, 2 u, 3 logdet (n; log f'(u), the forward's), 4 uniforms. */
export function splineInverseProgram(shape: SplineMapShape): ProgramInfo {
  return mapProgram(shape, 1);
}

/** Backward program: bindings 0 u, 1 raw, 2 gY, 3 gLogdet (n), 4 gU, 5 gRaw, 6 uniforms. */
export function splineBackwardProgram(shape: SplineBackwardShape): ProgramInfo {
  const name = 'splineBackward';
  checkShape(name, shape);
  const { n, dims, spec } = shape;
  const uL = layout(name, 'u', shape.u, n, dims);
  const gyL = layout(name, 'gY', shape.gY, n, dims);
  const guL = layout(name, 'gU', shape.gU, n, dims);
  const stage = stageOf(name, shape);
  const { workgroups, gridX } = fold2D(ceilDiv(n * dims, SPLINE_WORKGROUP));
  return {
    name: `${name}(K=${spec.bins})`,
    shader: 'nn/spline.wgsl',
    defines: { BINS: `${spec.bins}u`, WG: `${SPLINE_WORKGROUP}u`, MODE: 2, RQ_GRAD: true, STAGE: stage },
    workgroups,
    uniforms: [
      ['u32', n],
      ['u32', dims],
      ['u32', gridX],
      ['u32', uL.stride],
      ['u32', uL.offset],
      ['u32', gyL.stride],
      ['u32', gyL.offset],
      ['u32', guL.stride],
      ['u32', guL.offset],
      ...specUniforms(spec),
    ],
    uniformBinding: 6,
  };
}

function withStage<T extends SplineBackwardShape>(batch: ComputeBatch, shape: T): T {
  return shape.stage === undefined ? { ...shape, stage: splineStageFor(batch.device, shape.spec.bins, shape.n * shape.dims) } : shape;
}

/** y = f(u) and logdet (n) = or += sum over dims of log f'(u). y must not alias u. */
export function encodeSplineForward(batch: ComputeBatch, bufs: { u: BufferRef; raw: BufferRef; y: BufferRef; logdet: BufferRef }, shape: SplineMapShape): ComputeBatch {
  return batch.add(splineForwardProgram(shape), { 0: bufs.u, 1: bufs.raw, 2: bufs.y, 3: bufs.logdet });
}

/** u = f^-1(y) and logdet (n) = or += sum over dims of log f'(u) (forward sign). u must not alias y. */
export function encodeSplineInverse(batch: ComputeBatch, bufs: { y: BufferRef; raw: BufferRef; u: BufferRef; logdet: BufferRef }, shape: SplineMapShape): ComputeBatch {
  return batch.add(splineInverseProgram(shape), { 0: bufs.y, 1: bufs.raw, 2: bufs.u, 3: bufs.logdet });
}

/** gU = dL/du and gRaw = dL/draw (overwritten) from gY = dL/dy and gLogdet = dL/dlogdet (n). */
export function encodeSplineBackward(
  batch: ComputeBatch,
  bufs: { u: BufferRef; raw: BufferRef; gY: BufferRef; gLogdet: BufferRef; gU: BufferRef; gRaw: BufferRef },
  shape: SplineBackwardShape,
): ComputeBatch {
  return batch.add(splineBackwardProgram(withStage(batch, shape)), { 0: bufs.u, 1: bufs.raw, 2: bufs.gY, 3: bufs.gLogdet, 4: bufs.gU, 5: bufs.gRaw });
}
