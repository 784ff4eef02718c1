/**
 * `GpuFlowEngine`: the FlowEngine (src/train/engine.ts) of the conditional NSF on WebGPU. The
 * parameters, their gradient and the Adam moments are flat f32 storage buffers in a 64-element
 * aligned layout (src/flow/layout.ts), so every tensor binds as a 256-byte aligned sub-range; the
 * training set lives on the GPU (standardised once, in float64 on the host, then rounded to f32);
 * a training step is forward -> NLL -> backward -> clip -> Adam without any host round trip, and an
 * epoch reads ONE loss value back (accumulated on the GPU, kernels/nn/loss.ts).
 *
 * Mini-batches: position i of epoch e reads training row rows[perm_e(i)] with perm_e =
 * src/train/split.ts EpochPermutation(seed, e, n) — the same batches as the CPU engine. The
 * permutation is evaluated on the GPU (kernels/nn/columns.ts epochOrder, a bit-exact WGSL port of
 * the 6-round Feistel network: u32 arithmetic only, so no tolerance) into an order buffer, one
 * dispatch per epoch; each step copies its slice of that buffer into the batch-index buffer
 * (copyBufferToBuffer) and the gather kernel reads the rows. Host work per epoch is O(1), and the
 * training rows are uploaded once (re-uploaded only if they change).
 *
 * Dispatches: a step's (8 + 10 blocks) per transform + 4 dispatches on the 'gemm' path with split
 * weight gradients (144 for the sbi default, 396 for 14 transforms; 111 and 300 on the 'rows' path
 * of CPU drivers, see src/flow/gpu/network.ts) are recorded ONCE per batch size into a DispatchPlan
 * (src/flow/gpu/plan.ts: pipelines, bind groups and uniforms built once) and replayed; steps are
 * submitted in groups of about 2048 dispatches with at most two groups in flight. Passes are split
 * at 256 dispatches.
 *
 * CPU drivers (llvmpipe): the conditioner runs on the 'rows' kernels, the spline forward / inverse
 * without barriers, and every GPU-bound call waits with Dawn's event pump on a timer
 * (src/gpu/pump.ts) so that the JS thread does not spin a core the driver's threads need.
 * Together 4-7x the training throughput of the GEMM path with the busy pump on a 2-core machine
 * (bench/flow.ts compares them).
 *
 * Sampling: inverse through the stack (spline inverse kernel) for a block of draws in one
 * submission; the base normals z_p = standardNormal(seed, posterior, d P + p) are generated on the
 * GPU from the same Philox words as src/flow/rng.ts (f32 arithmetic: agree to ~1e-6). Blocks are
 * pipelined (the next block is submitted before the previous one is read back).
 *
 * MDN head (config.head 'mdn'): the same plans with the conditioner on the context and the mixture
 * kernels (kernels/nn/mdn.ts) in place of the coupling stack: the forward leaves z = 0 and
 * logdet = log q + P/2 log 2pi, so the NLL kernels, their seeds and the backward's conditioner part
 * are the NSF's; sampling draws the component from u = uniform(seed, TrainRngPurpose.mixture, d) on
 * the GPU (the CPU engine's words) and leaves logdet = log q - log N(z) for the same NLL kernel.
 * A step is 21 dispatches on the 'rows' path (26 on the unsplit 'gemm' path) for P 8, F 29, 50
 * hidden, 2 blocks, 10 components; a sampling block 11.
 *
 * Differences from the CPU engine (float64): results agree to f32 rounding, not bit for bit; a
 * non-finite batch loss does not skip that step's update (the loss is only read at the end of the
 * epoch; the epoch's mean loss is then non-finite and the trainer restores the best weights), and
 * `steps` counts every step of the epoch.
 */
import { gatherProgram } from '../../kernels/nn/gather.js';
import { subgroupsOf8 } from '../../kernels/nn/linearRows.js';
import { LOSS_SLOT_WORDS, decodeLossSlot, nllFinalizeProgram, nllGroupsFor, nllSamplesProgram } from '../../kernels/nn/loss.js';
import { baseNormalOffsets, baseNormalsProgram, contiguousDraws, epochOrderProgram } from '../../kernels/nn/columns.js';
import {
  type AdamHyper,
  MAX_NORM_PARTIALS,
  OPTIM_STATE_WORDS,
  OptimWord,
  type OptimTuning,
  adamProgram,
  defaultOptimTuning,
  isCpuDriver,
  optimFinalizeProgram,
  sumSqPartialsProgram,
} from '../../kernels/nn/optim.js';
import { packStandardization, standardizeProgram } from '../../kernels/nn/standardize.js';
import { createStorageBuffer, readBytes } from '../gpu/buffers.js';
import { type Gpu, createGpu } from '../gpu/device.js';
import { withErrorScopes } from '../gpu/errors.js';
import type { Bindings, ProgramInfo } from '../gpu/kernel.js';
import type { AdamState } from './adam.js';
import type { FlowModel } from './flow.js';
import { type FlowLayout, buildLayout } from './layout.js';
import { logStdSum } from './standardize.js';
import type { EngineOptions, EpochSpec, EpochStats, FlowData, FlowEngine, SampleBatch, SampleRequest, StepOptions } from '../train/engine.js';
import { EpochPermutation, TrainRngPurpose } from '../train/split.js';
import {
  type LinearPath,
  type NetBuffers,
  type NetShape,
  type RowSplit,
  SPLIT_CPU_DRIVER,
  SPLIT_GPU,
  SPLIT_NONE,
  type SplitTuning,
  Workspace,
  mdnSampleKernel,
  netShape,
  recordBackward,
  recordForward,
  recordInverse,
  recordMdnSample,
  recordZeroPadSeeds,
  rowSplit,
} from './gpu/network.js';
import { MDN_MAX_P } from '../../kernels/nn/mdn.js';
import { DispatchPlan, PlanRecorder } from './gpu/plan.js';
import { withBusyPump, withIdlePump } from '../gpu/pump.js';

export interface GpuEngineOptions extends EngineOptions {
  /** Use this device (not destroyed by dispose) instead of creating one from `device`. */
  gpu?: Gpu;
  /** Row split of the weight-gradient GEMMs (default by adapter: SPLIT_GPU / SPLIT_CPU_DRIVER; SPLIT_NONE on the 'rows' path). */
  split?: SplitTuning;
  /** Kernels of the conditioner's Linear layers (default: 'rows' on CPU drivers, 'gemm' on GPUs; see network.ts LinearPath). */
  linear?: LinearPath;
  /**
   * The kernel choices of a real GPU (the 'gemm' path unless `linear` says otherwise, workgroup
   * column sums, the barrier-synchronised spline, SPLIT_GPU) whatever the adapter (default: on GPUs
   * only). Tests force it on CPU drivers so the H100's code path stays tested here.
   */
  gpuKernels?: boolean;
  /** Dawn's event pump on a timer while waiting (default: on CPU drivers; src/gpu/pump.ts). */
  idlePump?: boolean;
  /** Dispatches per submitted command buffer while training (default: 2048 on CPU drivers, 512 on GPUs). */
  dispatchesPerSubmit?: number;
  /** Rows per evaluation / sampling block (default 65536; the workspace grows to it as needed). */
  evalBlock?: number;
}

/**
 * MDN log-density / backward schedule on CPU drivers (kernels/nn/mdn.ts MdnSchedule): one thread
 * per row. On lavapipe (2 cores, `bench flow --archs mdn --profile`) the per-(row, component)
 * kernels were slower: log q 0.38 vs 0.20 ms at batch 256, 5.5-7.6 vs 4.1-4.5 ms at 4096; backward
 * 0.70-0.80 vs 0.63 ms and 11-17 vs 11-13 ms (barriers and idle lanes cost there; stores do not
 * coalesce). GPUs (and gpuKernels) take the per-component kernels.
 */
const MDN_PER_COMPONENT_CPU = false;

/** Loss slots in the stats buffer. */
const SLOT_TRAIN = 0;
const SLOT_EVAL = 1;
const N_SLOTS = 4;
/**
 * Dispatches per submitted command buffer while training (about). CPU drivers: few submissions (the
 * host and the "GPU" share the cores). GPUs: short ones, and the first after one step, so the GPU
 * starts while the host encodes the rest (with 2048, an H100 idled ~7 ms per epoch at batch 256
 * waiting for the first 14 steps to be encoded).
 */
const DISPATCHES_PER_SUBMIT_CPU = 2048;
const DISPATCHES_PER_SUBMIT_GPU = 512;

interface TrainPlan {
  plan: DispatchPlan;
  split: RowSplit;
  optimItems: number[];
  hyperKey: string;
}

function cloneModel(m: FlowModel): FlowModel {
  return {
    config: { ...m.config },
    layout: m.layout,
    spline: m.spline,
    params: Float64Array.from(m.params),
    thetaStd: { mean: Float64Array.from(m.thetaStd.mean), std: Float64Array.from(m.thetaStd.std) },
    xStd: { mean: Float64Array.from(m.xStd.mean), std: Float64Array.from(m.xStd.std) },
  };
}

/** queue.writeBuffer of a typed array (any backing buffer). */
function write(device: GPUDevice, buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
  device.queue.writeBuffer(buffer, offset, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
}

function sameRows(a: Uint32Array | null, b: Uint32Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A staging buffer that is mapped for reading once the copies recorded into it have run. With a
 * `pool` the buffer is borrowed from it and returned after reading (no host-visible allocation per
 * block: on a discrete GPU a fresh MAP_READ buffer of megabytes is a driver allocation each time).
 */
class Readback {
  readonly buffer: GPUBuffer;
  private used = 0;
  readonly parts: { offset: number; bytes: number }[] = [];

  constructor(
    device: GPUDevice,
    bytes: number,
    private readonly pool?: GPUBuffer[],
  ) {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const i = pool ? pool.findIndex((b) => b.size >= size) : -1;
    this.buffer = i >= 0 ? pool!.splice(i, 1)[0] : device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'flow readback' });
  }

  /** Records a copy of `bytes` from `src`; returns the part index. */
  copy(enc: GPUCommandEncoder, src: GPUBuffer, bytes: number, srcOffset = 0): number {
    enc.copyBufferToBuffer(src, srcOffset, this.buffer, this.used, bytes);
    this.parts.push({ offset: this.used, bytes });
    this.used += Math.ceil(bytes / 4) * 4;
    return this.parts.length - 1;
  }

  /** Starts mapping (after the submitted copies); `use` then reads the mapped parts. */
  map(): Promise<void> {
    return this.buffer.mapAsync(GPUMapMode.READ);
  }

  /**
   * Passes f32 views of the parts, straight on the mapped range (no copies: fresh megabyte-sized
   * ArrayBuffers per block cost more in allocation and GC than the conversion itself), then unmaps
   * and returns the buffer to the pool. After `map()` has resolved.
   */
  use<T>(fn: (parts: Float32Array[]) => T): T {
    let ok = false;
    try {
      const all = this.buffer.getMappedRange();
      const out = fn(this.parts.map((p) => new Float32Array(all, p.offset, p.bytes >> 2)));
      this.buffer.unmap();
      ok = true;
      return out;
    } finally {
      if (ok && this.pool && this.pool.length < 2) this.pool.push(this.buffer);
      else this.buffer.destroy();
    }
  }
}

export class GpuFlowEngine implements FlowEngine {
  readonly kind = 'gpu' as const;
  readonly model: FlowModel;
  readonly device: GPUDevice;
  /** The engine's internal (64-aligned) layout; get/setParams convert from/to model.layout. */
  readonly layout: FlowLayout;
  readonly net: NetShape;
  readonly splitTuning: SplitTuning;
  readonly evalBlock: number;
  /** Waits with Dawn's event pump on a timer (CPU drivers: the host and the "GPU" share the cores). */
  private readonly idlePump: boolean;
  private readonly dispatchesPerSubmit: number;
  private readonly optimTuning: OptimTuning;
  private readonly nllGroups: number;
  private readonly lpConst: number;

  private readonly params: GPUBuffer;
  private readonly grad: GPUBuffer;
  private readonly mom1: GPUBuffer;
  private readonly mom2: GPUBuffer;
  private readonly optState: GPUBuffer;
  private readonly normPartials: GPUBuffer;
  private readonly stats: GPUBuffer;
  private readonly nllPartials: GPUBuffer;
  /** theta's [mean | std] in f32: samples leave the GPU in the original units. */
  private readonly thetaMeanStd: GPUBuffer;

  private data: { n: number; theta: GPUBuffer; x: GPUBuffer | null } | null = null;
  private trainRows: { host: Uint32Array; buf: GPUBuffer; order: GPUBuffer } | null = null;
  private evalRows: { host: Uint32Array; buf: GPUBuffer } | null = null;
  private ctx: { buf: GPUBuffer; floats: number } | null = null;
  private trainWs: Workspace | null = null;
  private evalWs: Workspace | null = null;
  private readonly trainPlans = new Map<string, TrainPlan>();
  private readonly evalPlans = new Map<string, { plan: DispatchPlan; items: Record<string, number>; out?: GPUBuffer }>();
  private disposed = false;
  /** Dispatches of the last full training step's plan (for benchmarks). */
  lastStepDispatches = 0;
  /** Host-side phases of the last sample() call, ms (for benchmarks): before the first submission, waiting for readbacks, converting results. */
  lastSampleTimings = { prepMs: 0, waitMs: 0, finishMs: 0 };
  /** Staging buffers reused by sample() / logProb() readbacks (at most two: blocks are pipelined two deep). */
  private readonly stagingPool: GPUBuffer[] = [];

  private constructor(
    readonly gpu: Gpu,
    private readonly ownsGpu: boolean,
    model: FlowModel,
    opts: GpuEngineOptions,
  ) {
    this.model = cloneModel(model);
    this.device = gpu.device;
    const cfg = this.model.config;
    this.layout = model.layout.alignElements % 64 === 0 ? model.layout : buildLayout(cfg, { alignElements: 64 });
    const software = gpu.adapter.isSoftware || isCpuDriver(this.device);
    this.idlePump = opts.idlePump ?? software;
    this.dispatchesPerSubmit = opts.dispatchesPerSubmit ?? (software ? DISPATCHES_PER_SUBMIT_CPU : DISPATCHES_PER_SUBMIT_GPU);
    if (!Number.isInteger(this.dispatchesPerSubmit) || this.dispatchesPerSubmit < 1) throw new RangeError(`gpu engine: dispatchesPerSubmit must be a positive integer, got ${this.dispatchesPerSubmit}`);
    // The register-tiled 'rows' kernels are written for CPU drivers' execution model (a workgroup
    // per thread, costly memory instructions and barriers); GPUs keep the tiled GEMM.
    const gpuKernels = opts.gpuKernels ?? !software;
    const linear = opts.linear ?? (gpuKernels ? 'gemm' : 'rows');
    if (cfg.head === 'mdn' && cfg.thetaDim > MDN_MAX_P) throw new RangeError(`gpu engine: the MDN kernels take thetaDim <= ${MDN_MAX_P}, got ${cfg.thetaDim}`);
    this.net = netShape(this.layout, cfg.activation, cfg.blocks, this.model.spline, { linear, subgroups: subgroupsOf8(this.device), serialSpline: !gpuKernels, wideColSum: gpuKernels, mdnPerComponent: gpuKernels || MDN_PER_COMPONENT_CPU });
    this.splitTuning = opts.split ?? (linear === 'rows' ? SPLIT_NONE : gpuKernels ? SPLIT_GPU : SPLIT_CPU_DRIVER);
    this.evalBlock = opts.evalBlock ?? 65536;
    if (!Number.isInteger(this.evalBlock) || this.evalBlock < 1) throw new RangeError(`gpu engine: evalBlock must be a positive integer, got ${this.evalBlock}`);
    this.optimTuning = defaultOptimTuning(this.device);
    this.nllGroups = nllGroupsFor(this.device);
    this.lpConst = logStdSum(this.model.thetaStd);
    const L = this.layout.size;
    const buf = (floats: number, label: string) => createStorageBuffer(this.device, floats * 4, label);
    this.params = buf(L, 'flow params');
    this.grad = buf(L, 'flow grad');
    this.mom1 = buf(L, 'adam m');
    this.mom2 = buf(L, 'adam v');
    this.optState = buf(OPTIM_STATE_WORDS, 'adam state');
    this.normPartials = buf(MAX_NORM_PARTIALS, 'clip partials');
    this.stats = buf(N_SLOTS * LOSS_SLOT_WORDS, 'loss slots');
    this.nllPartials = buf(Math.max(1, this.nllGroups), 'nll partials');
    write(this.device, this.params, 0, this.toDevice(this.model.params));
    const ms = packStandardization(this.model.thetaStd).data;
    this.thetaMeanStd = createStorageBuffer(this.device, ms.byteLength, 'flow theta mean/std');
    write(this.device, this.thetaMeanStd, 0, ms);
  }

  /** Creates the engine (and a device from opts.device unless opts.gpu is given). */
  static async create(model: FlowModel, opts: GpuEngineOptions = {}): Promise<GpuFlowEngine> {
    const gpu = opts.gpu ?? (await createGpu(opts.device ?? {}));
    try {
      return new GpuFlowEngine(gpu, !opts.gpu, model, opts);
    } catch (e) {
      if (!opts.gpu) gpu.destroy();
      throw e;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Parameters and optimiser state

  private toDevice(src: ArrayLike<number>): Float32Array<ArrayBuffer> {
    const out = new Float32Array(this.layout.size);
    const from = this.model.layout.tensors;
    this.layout.tensors.forEach((t, i) => {
      const s = from[i];
      for (let k = 0; k < t.size; k++) out[t.offset + k] = src[s.offset + k];
    });
    return out;
  }

  private fromDevice(src: Float32Array): Float64Array {
    const out = new Float64Array(this.model.layout.size);
    const from = this.layout.tensors;
    this.model.layout.tensors.forEach((t, i) => {
      const s = from[i];
      for (let k = 0; k < t.size; k++) out[t.offset + k] = src[s.offset + k];
    });
    return out;
  }

  /**
   * A GPU-bound call: WebGPU error scopes around it and, on CPU drivers in Node, Dawn's event pump
   * on a timer while it waits (src/gpu/pump.ts: the busy pump would take a core from llvmpipe).
   */
  private gpuCall<T>(label: string, fn: () => Promise<T>): Promise<T> {
    // idlePump: false on a software adapter means Dawn's busy pump, even inside withGpu's idle scope.
    return this.idlePump ? withIdlePump(true, () => withErrorScopes(this.device, label, fn)) : withBusyPump(() => withErrorScopes(this.device, label, fn));
  }

  private async readF32(b: GPUBuffer, floats: number): Promise<Float32Array> {
    return new Float32Array(await readBytes(this.device, b, 0, floats * 4));
  }

  async getParams(): Promise<Float64Array> {
    return this.fromDevice(await this.readF32(this.params, this.layout.size));
  }

  async setParams(params: ArrayLike<number>): Promise<void> {
    if (params.length !== this.model.layout.size) throw new RangeError(`setParams: ${params.length} values, the layout has ${this.model.layout.size}`);
    write(this.device, this.params, 0, this.toDevice(params));
  }

  /** The last computed gradient (of the last training step, before clipping), model layout. */
  async getGradient(): Promise<Float64Array> {
    return this.fromDevice(await this.readF32(this.grad, this.layout.size));
  }

  async getOptimizerState(): Promise<AdamState> {
    const [m, v, st] = await Promise.all([this.readF32(this.mom1, this.layout.size), this.readF32(this.mom2, this.layout.size), readBytes(this.device, this.optState, 0, OPTIM_STATE_WORDS * 4)]);
    return { step: new Uint32Array(st)[OptimWord.step], m: this.fromDevice(m), v: this.fromDevice(v) };
  }

  async setOptimizerState(s: AdamState): Promise<void> {
    const L = this.model.layout.size;
    if (s.m.length !== L || s.v.length !== L) throw new RangeError(`setOptimizerState: moments of length ${s.m.length}/${s.v.length}, the layout has ${L}`);
    if (!Number.isInteger(s.step) || s.step < 0 || s.step > 0xffffffff) throw new RangeError(`setOptimizerState: step must be a u32, got ${s.step}`);
    write(this.device, this.mom1, 0, this.toDevice(s.m));
    write(this.device, this.mom2, 0, this.toDevice(s.v));
    const st = new Uint32Array(OPTIM_STATE_WORDS);
    st[OptimWord.step] = s.step;
    write(this.device, this.optState, 0, st);
  }

  async resetOptimizer(): Promise<void> {
    const z = new Float32Array(this.layout.size);
    write(this.device, this.mom1, 0, z);
    write(this.device, this.mom2, 0, z);
    write(this.device, this.optState, 0, new Uint32Array(OPTIM_STATE_WORDS));
  }

  // ---------------------------------------------------------------------------------------------
  // Data

  private standardized(a: ArrayLike<number>, mean: Float64Array, std: Float64Array, rows: number, from = 0): Float32Array<ArrayBuffer> {
    const d = mean.length;
    const out = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) out[r * d + j] = (a[(from + r) * d + j] - mean[j]) / std[j];
    return out;
  }

  private checkBindable(what: string, bytes: number): void {
    const max = Math.min(this.device.limits.maxStorageBufferBindingSize, this.device.limits.maxBufferSize);
    if (bytes > max) throw new RangeError(`gpu engine: ${what} needs ${bytes} bytes, more than the device's storage binding limit ${max}`);
  }

  async setData(data: FlowData): Promise<void> {
    const { thetaDim: P, contextDim: F } = this.model.config;
    if (data.theta.length !== data.n * P) throw new RangeError(`setData: theta has ${data.theta.length} values, expected ${data.n} x ${P}`);
    if (data.x.length !== data.n * F) throw new RangeError(`setData: x has ${data.x.length} values, expected ${data.n} x ${F}`);
    this.checkBindable('the training set (theta)', data.n * P * 4);
    this.checkBindable('the training set (x)', data.n * F * 4);
    this.dropData();
    const up = (a: Float32Array<ArrayBuffer>, label: string) => {
      const b = createStorageBuffer(this.device, a.byteLength, label);
      write(this.device, b, 0, a);
      return b;
    };
    const theta = up(this.standardized(data.theta, this.model.thetaStd.mean, this.model.thetaStd.std, data.n), 'flow data theta');
    const x = F > 0 ? up(this.standardized(data.x, this.model.xStd.mean, this.model.xStd.std, data.n), 'flow data x') : null;
    this.data = { n: data.n, theta, x };
  }

  private dropData(): void {
    if (this.data) {
      this.data.theta.destroy();
      this.data.x?.destroy();
      this.data = null;
    }
    // Plans that gather from the data bind its buffers.
    for (const p of this.trainPlans.values()) p.plan.destroy();
    this.trainPlans.clear();
    for (const [k, p] of this.evalPlans) {
      if (k.startsWith('eval:')) {
        p.plan.destroy();
        this.evalPlans.delete(k);
      }
    }
  }

  private requireData(rows: Uint32Array): { n: number; theta: GPUBuffer; x: GPUBuffer | null } {
    const d = this.data;
    if (!d) throw new Error('engine: no data (call setData first)');
    for (let i = 0; i < rows.length; i++) if (rows[i] >= d.n) throw new RangeError(`engine: row ${rows[i]} outside the dataset (${d.n} rows)`);
    return d;
  }

  // ---------------------------------------------------------------------------------------------
  // Workspaces and plans

  private trainWorkspace(nPad: number): Workspace {
    if (this.trainWs && this.trainWs.cap >= nPad) return this.trainWs;
    this.trainWs?.destroy();
    for (const p of this.trainPlans.values()) p.plan.destroy();
    this.trainPlans.clear();
    this.trainWs = new Workspace(this.device, this.net, nPad, 'train', this.splitTuning.maxSplits);
    return this.trainWs;
  }

  /** The evaluation workspace, grown (by powers of two, up to evalBlock rows) to hold `rows` rows of a block. */
  private ensureEvalWorkspace(rows: number): void {
    const need = Math.min(this.evalBlock, Math.max(rows, 1));
    if (this.evalWs && this.evalWs.cap >= need) return;
    const cap = Math.min(this.evalBlock, Math.max(1024, 2 ** Math.ceil(Math.log2(need))));
    this.evalWs?.destroy();
    for (const p of this.evalPlans.values()) p.plan.destroy();
    this.evalPlans.clear();
    this.evalWs = new Workspace(this.device, this.net, cap, 'eval');
  }

  private evalWorkspace(): Workspace {
    if (!this.evalWs) throw new Error('gpu engine: no evaluation workspace (internal error)');
    return this.evalWs;
  }

  private hyperOf(o: StepOptions): AdamHyper {
    const wd = o.weightDecay ?? 0;
    return {
      lr: o.lr,
      beta1: o.beta1,
      beta2: o.beta2,
      eps: o.eps,
      weightDecay: wd,
      decoupled: !!o.decoupled && wd > 0,
      maxNorm: o.clipNorm && o.clipNorm > 0 ? o.clipNorm : null,
    };
  }

  private optimPrograms(h: AdamHyper): { program: ProgramInfo; bindings: Bindings }[] {
    const n = this.layout.size;
    const progs: { program: ProgramInfo; bindings: Bindings }[] = [];
    if (h.maxNorm) progs.push({ program: sumSqPartialsProgram(n, h, this.optimTuning), bindings: { 1: this.grad, 5: this.normPartials } });
    progs.push({ program: optimFinalizeProgram(n, h, this.optimTuning), bindings: h.maxNorm ? { 4: this.optState, 5: this.normPartials } : { 4: this.optState } });
    progs.push({ program: adamProgram(n, h, this.optimTuning), bindings: { 0: this.params, 1: this.grad, 2: this.mom1, 3: this.mom2, 4: this.optState } });
    return progs;
  }

  /** The replayable plan of one training step on n rows (batch indices in ws.idx). */
  private async trainPlan(n: number, o: StepOptions): Promise<TrainPlan> {
    const split = rowSplit(n, this.splitTuning);
    const ws = this.trainWorkspace(split.nPad);
    const h = this.hyperOf(o);
    const key = `${n}|${!!h.maxNorm}|${!!h.decoupled}`;
    const hyperKey = JSON.stringify(h);
    let tp = this.trainPlans.get(key);
    if (!tp) {
      const d = this.data!;
      const { P, F } = this.net;
      const b: NetBuffers = { net: this.net, params: this.params, grad: this.grad, ws };
      const rec = new PlanRecorder();
      rec.add(gatherProgram({ rows: n, cols: P, index: { kind: 'buffer' } }), { 0: d.theta, 1: ws.idx, 2: ws.v[0] });
      if (F > 0) rec.add(gatherProgram({ rows: n, cols: F, index: { kind: 'buffer' } }), { 0: d.x!, 1: ws.idx, 2: ws.xs! });
      recordForward(rec, b, split.nPad);
      const nll = { n, p: P, logStdSum: this.lpConst, seeds: 'separate' as const, lossSlot: SLOT_TRAIN, maxGroups: this.nllGroups };
      rec.add(nllSamplesProgram(nll), { 0: ws.v[this.net.T], 1: ws.logdet, 2: ws.logProb, 3: ws.gvA!, 4: ws.gLd!, 5: this.nllPartials });
      rec.add(nllFinalizeProgram(nll), { 5: this.nllPartials, 6: this.stats });
      recordZeroPadSeeds(rec, b, split);
      recordBackward(rec, b, split);
      const optimItems = this.optimPrograms(h).map((p) => rec.add(p.program, p.bindings));
      const plan = await rec.build(this.device, `flow train step (n=${n})`);
      tp = { plan, split, optimItems, hyperKey };
      this.trainPlans.set(key, tp);
    } else if (tp.hyperKey !== hyperKey) {
      this.optimPrograms(h).forEach((p, i) => tp!.plan.rewrite(tp!.optimItems[i], p.program));
      tp.hyperKey = hyperKey;
    }
    return tp;
  }

  private resetSlot(slot: number): void {
    write(this.device, this.stats, slot * LOSS_SLOT_WORDS * 4, new Uint32Array(LOSS_SLOT_WORDS));
  }

  private async readSlot(slot: number): Promise<{ sum: number; count: number }> {
    const s = decodeLossSlot(await readBytes(this.device, this.stats, slot * LOSS_SLOT_WORDS * 4, LOSS_SLOT_WORDS * 4));
    return { sum: s.sum, count: s.count };
  }

  /** Per-kernel profile of one training step on `batchSize` rows 0.. of the data (DispatchPlan.profile; a tuning aid). */
  async profileTrainStep(batchSize: number, opts: StepOptions, repeats = 1): Promise<{ name: string; count: number; ms: number }[]> {
    const rows = Uint32Array.from({ length: batchSize }, (_, i) => i);
    this.requireData(rows);
    const tp = await this.trainPlan(batchSize, opts);
    write(this.device, this.trainWs!.idx, 0, rows);
    return this.gpuCall('flow profile', () => tp.plan.profile(repeats));
  }

  /** Per-kernel profile of one sampling block of m draws (contexts: row 0 of a zero context set; a tuning aid). */
  async profileSample(m: number, repeats = 1): Promise<{ name: string; count: number; ms: number }[]> {
    const { F } = this.net;
    return this.gpuCall('flow profile sample', async () => {
      this.ensureEvalWorkspace(m);
      if (F > 0) this.uploadContexts(new Float64Array(F), 1);
      const mb = Math.min(m, this.evalBlock);
      const e = await this.evalPlan('sample', mb, 0);
      write(this.device, this.evalWorkspace().idx, 0, new Uint32Array(mb));
      return e.plan.profile(repeats);
    });
  }

  /** Host milliseconds to encode one training step's plan (setPipeline / setBindGroup / dispatch; never submitted). */
  async encodeMsTrainStep(batchSize: number, opts: StepOptions, repeats = 20): Promise<number> {
    const tp = await this.trainPlan(batchSize, opts);
    const enc = this.device.createCommandEncoder({ label: 'encode timing' });
    const t0 = performance.now();
    for (let r = 0; r < repeats; r++) tp.plan.encode(enc);
    const ms = (performance.now() - t0) / repeats;
    enc.finish();
    return ms;
  }

  // ---------------------------------------------------------------------------------------------
  // Training

  async trainStep(rows: Uint32Array, opts: StepOptions): Promise<number> {
    if (rows.length === 0) throw new RangeError('trainStep: empty batch');
    this.requireData(rows);
    return this.gpuCall('flow train step', async () => {
      const tp = await this.trainPlan(rows.length, opts);
      write(this.device, this.trainWs!.idx, 0, rows);
      this.resetSlot(SLOT_TRAIN);
      tp.plan.submit();
      const s = await this.readSlot(SLOT_TRAIN);
      return s.sum / s.count;
    });
  }

  private uploadTrainRows(rows: Uint32Array): { buf: GPUBuffer; order: GPUBuffer } {
    if (this.trainRows && sameRows(this.trainRows.host, rows)) return this.trainRows;
    if (this.trainRows) {
      this.trainRows.buf.destroy();
      this.trainRows.order.destroy();
    }
    const buf = createStorageBuffer(this.device, rows.byteLength, 'flow train rows');
    write(this.device, buf, 0, rows);
    const order = createStorageBuffer(this.device, rows.byteLength, 'flow epoch order');
    this.trainRows = { host: rows.slice(), buf, order };
    return this.trainRows;
  }

  async trainEpoch(spec: EpochSpec): Promise<EpochStats> {
    if (!Number.isInteger(spec.batchSize) || spec.batchSize < 1) throw new RangeError(`trainEpoch: batchSize must be a positive integer, got ${spec.batchSize}`);
    const N = spec.rows.length;
    if (N === 0) throw new RangeError('trainEpoch: no training rows');
    this.requireData(spec.rows);
    const B = Math.min(spec.batchSize, N);
    return this.gpuCall(`flow train epoch ${spec.epoch}`, async () => {
      const rem = N % B;
      // Size the workspace for both batch sizes first (growing it drops the plans built on it).
      const ws = this.trainWorkspace(Math.max(rowSplit(B, this.splitTuning).nPad, rem ? rowSplit(rem, this.splitTuning).nPad : 0));
      const fullPlan = (await this.trainPlan(B, spec)).plan;
      const lastPlan = rem ? (await this.trainPlan(rem, spec)).plan : null;
      this.lastStepDispatches = fullPlan.length;
      const { buf, order } = this.uploadTrainRows(spec.rows);
      const perm = new EpochPermutation(spec.seed, spec.epoch, N);
      const orderPlan = await DispatchPlan.build(this.device, [{ program: epochOrderProgram(perm), bindings: { 0: buf, 4: order } }], 'flow epoch order');
      try {
        this.resetSlot(SLOT_TRAIN);
        const steps = Math.ceil(N / B);
        const perSubmit = Math.max(1, Math.floor(this.dispatchesPerSubmit / fullPlan.length));
        let prev: Promise<void> | null = null;
        let enc = this.device.createCommandEncoder({ label: 'flow epoch' });
        orderPlan.encode(enc);
        for (let k = 0; k < steps; k++) {
          const s = k * B;
          const nk = Math.min(B, N - s);
          enc.copyBufferToBuffer(order, s * 4, ws.idx, 0, nk * 4);
          (nk === B ? fullPlan : lastPlan!).encode(enc);
          if (k === 0 || (k + 1) % perSubmit === 0 || k === steps - 1) {
            this.device.queue.submit([enc.finish()]);
            const done = this.device.queue.onSubmittedWorkDone();
            if (prev) await prev;
            prev = done;
            if (k < steps - 1) enc = this.device.createCommandEncoder({ label: 'flow epoch' });
          }
        }
        const s = await this.readSlot(SLOT_TRAIN);
        return { meanLoss: s.sum / N, steps, samples: N };
      } finally {
        orderPlan.destroy();
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Evaluation and sampling

  /** draw0: contiguous draws (the first draw index), else the bases buffer is read. */
  private async evalPlan(kind: 'eval' | 'lp' | 'sample', m: number, seed = 0, draw0?: number) {
    const ws = this.evalWorkspace();
    const key = `${kind}:${m}`;
    let e = this.evalPlans.get(key);
    const { P, F, T } = this.net;
    const base0 = draw0 === undefined ? undefined : draw0 * P;
    const mdnDraws = { seed, purpose: TrainRngPurpose.mixture, d0: draw0 };
    if (e && kind === 'sample') {
      e.plan.rewrite(e.items.normals, baseNormalsProgram({ m, P, seed, purpose: TrainRngPurpose.posterior, base0 }));
      if (e.items.mdn !== undefined) e.plan.rewrite(e.items.mdn, mdnSampleKernel(this.net, m, mdnDraws));
    }
    if (e) return e;
    const b: NetBuffers = { net: this.net, params: this.params, ws };
    const rec = new PlanRecorder();
    const items: Record<string, number> = {};
    let out: GPUBuffer | undefined;
    if (kind === 'sample') {
      items.normals = rec.add(baseNormalsProgram({ m, P, seed, purpose: TrainRngPurpose.posterior, base0 }), { 0: ws.bases!, 2: ws.v[0] });
      if (F > 0) rec.add(gatherProgram({ rows: m, cols: F, index: { kind: 'buffer' } }), { 0: this.ctx!.buf, 1: ws.idx, 2: ws.xs! });
      if (this.net.head === 'mdn') {
        const r = recordMdnSample(rec, b, m, mdnDraws);
        out = r.out;
        items.mdn = r.item;
      } else out = recordInverse(rec, b, m);
      rec.add(nllSamplesProgram({ n: m, p: P, logStdSum: this.lpConst, seeds: 'none', maxGroups: this.nllGroups }), { 0: ws.v[0], 1: ws.logdet, 2: ws.logProb });
      // Back to the original units on the GPU (f32: relative 1e-7 of |theta|): the host's per-element
      // f64 affine map cost more than the whole GPU block at 65536 draws on an H100's host.
      rec.add(standardizeProgram({ rows: m, cols: P, inverse: true, inPlace: true }), { 1: out!, 2: this.thetaMeanStd });
    } else {
      if (kind === 'eval') {
        const d = this.data!;
        rec.add(gatherProgram({ rows: m, cols: P, index: { kind: 'buffer' } }), { 0: d.theta, 1: ws.idx, 2: ws.v[0] });
        if (F > 0) rec.add(gatherProgram({ rows: m, cols: F, index: { kind: 'buffer' } }), { 0: d.x!, 1: ws.idx, 2: ws.xs! });
      }
      recordForward(rec, b, m);
      const nll = { n: m, p: P, logStdSum: this.lpConst, seeds: 'none' as const, lossSlot: kind === 'eval' ? SLOT_EVAL : undefined, maxGroups: this.nllGroups };
      const nb: Bindings = { 0: ws.fwdOut(T - 1), 1: ws.logdet, 2: ws.logProb };
      if (kind === 'eval') nb[5] = this.nllPartials;
      rec.add(nllSamplesProgram(nll), nb);
      if (kind === 'eval') rec.add(nllFinalizeProgram(nll), { 5: this.nllPartials, 6: this.stats });
    }
    const plan = await rec.build(this.device, `flow ${kind} (m=${m})`);
    e = { plan, items, out };
    if (this.evalPlans.size >= 12) {
      // Keep the cache small: drop the oldest plan with a different key.
      const [k0, p0] = this.evalPlans.entries().next().value!;
      p0.plan.destroy();
      this.evalPlans.delete(k0);
    }
    this.evalPlans.set(key, e);
    return e;
  }

  async evalLoss(rows: Uint32Array): Promise<number> {
    if (rows.length === 0) throw new RangeError('evalLoss: no rows');
    this.requireData(rows);
    return this.gpuCall('flow evalLoss', async () => {
      this.ensureEvalWorkspace(rows.length);
      const ws = this.evalWorkspace();
      if (!sameRows(this.evalRows?.host ?? null, rows)) {
        this.evalRows?.buf.destroy();
        const buf = createStorageBuffer(this.device, rows.byteLength, 'flow eval rows');
        write(this.device, buf, 0, rows);
        this.evalRows = { host: rows.slice(), buf };
      }
      const src = this.evalRows!.buf;
      this.resetSlot(SLOT_EVAL);
      const blk = this.evalBlock;
      for (let s = 0; s < rows.length; s += blk) {
        const m = Math.min(blk, rows.length - s);
        const { plan } = await this.evalPlan('eval', m);
        const enc = this.device.createCommandEncoder({ label: 'flow evalLoss' });
        enc.copyBufferToBuffer(src, s * 4, ws.idx, 0, m * 4);
        plan.encode(enc);
        this.device.queue.submit([enc.finish()]);
      }
      const r = await this.readSlot(SLOT_EVAL);
      return r.sum / rows.length;
    });
  }

  /** Runs blocks with at most two in flight; `run` submits a block and returns its readback, `finish` reads its outputs (views valid during the call). */
  private async pipelined(total: number, run: (s: number, m: number) => Promise<Readback>, finish: (s: number, m: number, parts: Float32Array[]) => void): Promise<{ first: number; wait: number; finish: number }> {
    const blk = this.evalBlock;
    const t = { first: -1, wait: 0, finish: 0 };
    type Pending = { s: number; m: number; rb: Readback; mapped: Promise<void> };
    const done = async (p: Pending) => {
      const t0 = performance.now();
      try {
        await p.mapped;
      } catch (e) {
        p.rb.buffer.destroy();
        throw e;
      }
      const t1 = performance.now();
      p.rb.use((parts) => finish(p.s, p.m, parts));
      t.wait += t1 - t0;
      t.finish += performance.now() - t1;
    };
    let pending: Pending | null = null;
    for (let s = 0; s < total; s += blk) {
      const m = Math.min(blk, total - s);
      const rb = await run(s, m);
      if (t.first < 0) t.first = performance.now();
      const mapped = rb.map();
      mapped.catch(() => {}); // awaited below; never an unhandled rejection if a later block throws first
      const cur: Pending = { s, m, rb, mapped };
      if (pending) await done(pending);
      pending = cur;
    }
    if (pending) await done(pending);
    return t;
  }

  async logProb(theta: ArrayLike<number>, x: ArrayLike<number>, n: number): Promise<Float64Array> {
    const { P, F } = this.net;
    if (theta.length !== n * P) throw new RangeError(`logProb: theta has ${theta.length} values, expected ${n} x ${P}`);
    if (x.length !== n * F) throw new RangeError(`logProb: x has ${x.length} values, expected ${n} x ${F}`);
    const out = new Float64Array(n);
    if (n === 0) return out;
    this.ensureEvalWorkspace(n);
    await this.gpuCall('flow logProb', () =>
      this.pipelined(
        n,
        async (s, m) => {
          const ws = this.evalWorkspace();
          const { plan } = await this.evalPlan('lp', m);
          write(this.device, ws.v[0], 0, this.standardized(theta, this.model.thetaStd.mean, this.model.thetaStd.std, m, s));
          if (F > 0) write(this.device, ws.xs!, 0, this.standardized(x, this.model.xStd.mean, this.model.xStd.std, m, s));
          const enc = this.device.createCommandEncoder({ label: 'flow logProb' });
          plan.encode(enc);
          const rb = new Readback(this.device, m * 4, this.stagingPool);
          rb.copy(enc, ws.logProb, m * 4);
          this.device.queue.submit([enc.finish()]);
          return rb;
        },
        (s, m, [lp]) => out.set(lp.subarray(0, m), s),
      ),
    );
    return out;
  }

  async sample(req: SampleRequest): Promise<SampleBatch> {
    const { P, F } = this.net;
    const m = req.ctxIndex.length;
    if (req.drawIndex.length !== m) throw new RangeError(`sample: ${m} context indices but ${req.drawIndex.length} draw indices`);
    if (req.x.length !== req.nCtx * F) throw new RangeError(`sample: x has ${req.x.length} values, expected ${req.nCtx} x ${F}`);
    for (let i = 0; i < m; i++) if (req.ctxIndex[i] >= req.nCtx) throw new RangeError(`sample: context index ${req.ctxIndex[i]} outside [0, ${req.nCtx})`);
    if (!Number.isSafeInteger(req.seed) || req.seed < 0) throw new RangeError(`sample: seed must be a non-negative safe integer, got ${req.seed}`);
    const theta = new Float64Array(m * P);
    const lp = new Float64Array(m);
    if (m === 0) return { theta, logProb: lp };
    const t0 = performance.now();
    // Contiguous draw indices (the usual d0, d0 + 1, ...) need no per-draw offsets from the host.
    const d0 = contiguousDraws(req.drawIndex);
    const bases = d0 === null ? baseNormalOffsets(req.drawIndex, P) : null;
    await this.gpuCall('flow sample', async () => {
      this.ensureEvalWorkspace(m);
      if (F > 0) this.uploadContexts(req.x, req.nCtx);
      const t = await this.pipelined(
        m,
        async (s, mb) => {
          const ws = this.evalWorkspace();
          const e = await this.evalPlan('sample', mb, req.seed, d0 === null ? undefined : d0 + s);
          write(this.device, ws.idx, 0, req.ctxIndex.subarray(s, s + mb));
          if (bases) write(this.device, ws.bases!, 0, bases.subarray(2 * s, 2 * (s + mb)));
          const enc = this.device.createCommandEncoder({ label: 'flow sample' });
          e.plan.encode(enc);
          const rb = new Readback(this.device, mb * (P + 1) * 4, this.stagingPool);
          rb.copy(enc, e.out!, mb * P * 4);
          rb.copy(enc, ws.logProb, mb * 4);
          this.device.queue.submit([enc.finish()]);
          return rb;
        },
        (s, mb, [t32, l]) => {
          theta.set(t32.subarray(0, mb * P), s * P);
          lp.set(l.subarray(0, mb), s);
        },
      );
      this.lastSampleTimings = { prepMs: t.first - t0, waitMs: t.wait, finishMs: t.finish };
    });
    return { theta, logProb: lp };
  }

  private uploadContexts(x: ArrayLike<number>, nCtx: number): void {
    const { F } = this.net;
    const floats = nCtx * F;
    this.checkBindable('the sampling contexts', floats * 4);
    if (!this.ctx || this.ctx.floats < floats) {
      this.ctx?.buf.destroy();
      this.ctx = { buf: createStorageBuffer(this.device, Math.max(floats, 1024) * 4, 'flow contexts'), floats: Math.max(floats, 1024) };
      for (const [k, p] of this.evalPlans) {
        if (k.startsWith('sample:')) {
          p.plan.destroy();
          this.evalPlans.delete(k);
        }
      }
    }
    write(this.device, this.ctx.buf, 0, this.standardized(x, this.model.xStd.mean, this.model.xStd.std, nCtx));
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    try {
      await this.device.queue.onSubmittedWorkDone();
    } catch {
      // a lost device has nothing left to wait for
    }
    this.dropData();
    for (const p of this.evalPlans.values()) p.plan.destroy();
    this.evalPlans.clear();
    this.trainWs?.destroy();
    this.evalWs?.destroy();
    this.trainRows?.buf.destroy();
    this.trainRows?.order.destroy();
    this.evalRows?.buf.destroy();
    this.ctx?.buf.destroy();
    for (const b of this.stagingPool.splice(0)) b.destroy();
    for (const b of [this.thetaMeanStd, this.params, this.grad, this.mom1, this.mom2, this.optState, this.normPartials, this.stats, this.nllPartials]) b.destroy();
    if (this.ownsGpu) this.gpu.destroy();
  }
}
