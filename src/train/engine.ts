/**
 * `FlowEngine`: the compute behind training and sampling of a conditional NSF (or MDN head), so the trainer
 * (trainer.ts), the sampler (src/infer/sample.ts) and the CLI never care where the numbers live.
 * `CpuFlowEngine` runs the float64 reference (src/flow); a GPU engine keeps the parameters, the
 * optimizer moments and the training data resident on the device and implements the same calls.
 *
 * Conventions:
 * - The model description (config, layout, standardisation) is fixed when the engine is created
 *   (`createFlowEngine(kind, model)`); parameters and optimizer state move only through
 *   get/setParams and get/setOptimizerState, as flat vectors in `model.layout` (alignment gaps 0).
 * - Data rows are indices into the dataset given to `setData` (uploaded once; a GPU engine keeps it
 *   resident). theta rows are n x P, x rows n x F, row-major, original units.
 * - `trainEpoch` is the unit of work between host synchronisations: it walks the training rows in the
 *   order of split.ts's `EpochPermutation(seed, epoch, rows.length)` (computable on the device from
 *   (seed, epoch, position) alone), in consecutive mini-batches of `batchSize` (the last one may be
 *   shorter), doing forward -> mean NLL -> backward -> global-norm clip -> Adam per batch, and
 *   returns the mean training loss (sample-weighted mean of the batch losses, each taken before its
 *   update). One scalar comes back per epoch.
 * - Posterior draws: draw d of a sample request uses the base normals
 *   z_p = standardNormal(seed, TrainRngPurpose.posterior, d * P + p) (src/flow/rng.ts), so samples
 *   do not depend on how a request is batched. A GPU engine may compute them in f32 from the same
 *   Philox words. An MDN model (config.head 'mdn') also draws its mixture component from
 *   u = uniform(seed, TrainRngPurpose.mixture, d) (`mixtureUniforms`).
 */
import { type AdamOptions, type AdamState, adamStep, clipGradNorm, createAdamState } from '../flow/adam.js';
import { type FlowModel, logProb as flowLogProb, nllAndGrad, sample as flowSample } from '../flow/flow.js';
import { standardNormal, uniform } from '../flow/rng.js';
import type { DeviceOptions } from '../gpu/device.js';
import { TrainRngPurpose, epochOrder } from './split.js';

export type EngineKind = 'cpu' | 'gpu';
export const ENGINE_KINDS: readonly EngineKind[] = ['cpu', 'gpu'];

/** A dataset of n rows: theta (n x P) and x (n x F), row-major, original units. */
export interface FlowData {
  theta: Float32Array | Float64Array;
  x: Float32Array | Float64Array;
  n: number;
}

/** Optimizer hyper-parameters of one step (Adam / AdamW as src/flow/adam.ts) plus clipping. */
export interface StepOptions {
  lr: number;
  /** Global gradient-norm clip (torch's clip_grad_norm_); 0 or undefined = no clipping. */
  clipNorm?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** AdamW (decoupled weight decay) instead of Adam's L2. */
  decoupled?: boolean;
}

export interface EpochSpec extends StepOptions {
  /** Training rows (indices into setData's dataset). */
  rows: Uint32Array;
  seed: number;
  epoch: number;
  batchSize: number;
}

export interface EpochStats {
  /** Sample-weighted mean of the batch losses (mean NLL, original units). */
  meanLoss: number;
  steps: number;
  samples: number;
}

/** One batch of posterior draws: draw i uses context row ctxIndex[i] of x and base-normal stream drawIndex[i]. */
export interface SampleRequest {
  /** Contexts (nCtx x F). */
  x: ArrayLike<number>;
  nCtx: number;
  ctxIndex: Uint32Array;
  /** Draw numbers (non-negative safe integers, drawIndex * P + P - 1 must stay safe). */
  drawIndex: Float64Array;
  seed: number;
}

export interface SampleBatch {
  /** m x P, original units. */
  theta: Float64Array;
  /** log q(theta | x) of each draw. */
  logProb: Float64Array;
}

export interface FlowEngine {
  readonly kind: EngineKind;
  /** Architecture, layout and standardisation (the params inside are not authoritative: use getParams). */
  readonly model: FlowModel;
  getParams(): Promise<Float64Array>;
  setParams(params: ArrayLike<number>): Promise<void>;
  getOptimizerState(): Promise<AdamState>;
  setOptimizerState(state: AdamState): Promise<void>;
  /** Zero moments, step 0. */
  resetOptimizer(): Promise<void>;
  /** Makes a dataset resident; row indices of the calls below refer to it. */
  setData(data: FlowData): Promise<void>;
  /** One optimizer step on the given rows; returns the batch's mean NLL before the step. */
  trainStep(rows: Uint32Array, opts: StepOptions): Promise<number>;
  /** One epoch of shuffled mini-batches (see the module comment). */
  trainEpoch(spec: EpochSpec): Promise<EpochStats>;
  /** Mean NLL over the given rows (no update). */
  evalLoss(rows: Uint32Array): Promise<number>;
  /** log q(theta | x) for n given pairs (not the resident dataset). */
  logProb(theta: ArrayLike<number>, x: ArrayLike<number>, n: number): Promise<Float64Array>;
  /** Posterior draws. */
  sample(req: SampleRequest): Promise<SampleBatch>;
  dispose(): Promise<void>;
}

export interface EngineOptions {
  /** Rows per internal evaluation block (memory bound of evalLoss / logProb / sample on the CPU). */
  evalBlock?: number;
  /** GPU adapter choice for a GPU engine (the engine acquires the device and releases it in dispose). */
  device?: DeviceOptions;
}

/** The base normals of draws `drawIndex` (m x P). */
export function baseNormals(seed: number, drawIndex: ArrayLike<number>, P: number): Float64Array {
  const m = drawIndex.length;
  const z = new Float64Array(m * P);
  for (let i = 0; i < m; i++) {
    const d = drawIndex[i];
    for (let p = 0; p < P; p++) z[i * P + p] = standardNormal(seed, TrainRngPurpose.posterior, d * P + p);
  }
  return z;
}

/** The mixture-component uniforms of draws `drawIndex` (MDN head): u_d = uniform(seed, mixture, d). */
export function mixtureUniforms(seed: number, drawIndex: ArrayLike<number>): Float64Array {
  const u = new Float64Array(drawIndex.length);
  for (let i = 0; i < u.length; i++) u[i] = uniform(seed, TrainRngPurpose.mixture, drawIndex[i]);
  return u;
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

/** The float64 CPU reference as an engine (src/flow). Deterministic: same calls, same bits. */
export class CpuFlowEngine implements FlowEngine {
  readonly kind = 'cpu' as const;
  readonly model: FlowModel;
  private adam: AdamState;
  private data: FlowData | null = null;
  private readonly block: number;

  constructor(model: FlowModel, opts: EngineOptions = {}) {
    this.model = cloneModel(model);
    this.adam = createAdamState(this.model.layout.size);
    this.block = opts.evalBlock ?? 4096;
  }

  async getParams(): Promise<Float64Array> {
    return Float64Array.from(this.model.params);
  }

  async setParams(params: ArrayLike<number>): Promise<void> {
    if (params.length !== this.model.layout.size) throw new RangeError(`setParams: ${params.length} values, the layout has ${this.model.layout.size}`);
    this.model.params.set(params);
  }

  async getOptimizerState(): Promise<AdamState> {
    return { step: this.adam.step, m: Float64Array.from(this.adam.m), v: Float64Array.from(this.adam.v) };
  }

  async setOptimizerState(s: AdamState): Promise<void> {
    const L = this.model.layout.size;
    if (s.m.length !== L || s.v.length !== L) throw new RangeError(`setOptimizerState: moments of length ${s.m.length}/${s.v.length}, the layout has ${L}`);
    this.adam = { step: s.step, m: Float64Array.from(s.m), v: Float64Array.from(s.v) };
  }

  async resetOptimizer(): Promise<void> {
    this.adam = createAdamState(this.model.layout.size);
  }

  async setData(data: FlowData): Promise<void> {
    const { thetaDim: P, contextDim: F } = this.model.config;
    if (data.theta.length !== data.n * P) throw new RangeError(`setData: theta has ${data.theta.length} values, expected ${data.n} x ${P}`);
    if (data.x.length !== data.n * F) throw new RangeError(`setData: x has ${data.x.length} values, expected ${data.n} x ${F}`);
    this.data = data;
  }

  private gather(rows: Uint32Array, from: number, to: number): { theta: Float64Array; x: Float64Array; n: number } {
    const d = this.data;
    if (!d) throw new Error('engine: no data (call setData first)');
    const { thetaDim: P, contextDim: F } = this.model.config;
    const n = to - from;
    const theta = new Float64Array(n * P);
    const x = new Float64Array(n * F);
    for (let i = 0; i < n; i++) {
      const r = rows[from + i];
      if (r >= d.n) throw new RangeError(`engine: row ${r} outside the dataset (${d.n} rows)`);
      for (let p = 0; p < P; p++) theta[i * P + p] = d.theta[r * P + p];
      for (let f = 0; f < F; f++) x[i * F + f] = d.x[r * F + f];
    }
    return { theta, x, n };
  }

  private step(b: { theta: Float64Array; x: Float64Array; n: number }, o: StepOptions): number {
    const g = nllAndGrad(this.model, b.theta, b.x, b.n);
    if (!Number.isFinite(g.loss)) return g.loss; // no update from a non-finite batch: the trainer stops
    if (o.clipNorm && o.clipNorm > 0) clipGradNorm(g.grad, o.clipNorm);
    const ao: AdamOptions = { lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, decoupled: o.decoupled };
    adamStep(this.model.params, g.grad, this.adam, ao);
    return g.loss;
  }

  async trainStep(rows: Uint32Array, opts: StepOptions): Promise<number> {
    if (rows.length === 0) throw new RangeError('trainStep: empty batch');
    return this.step(this.gather(rows, 0, rows.length), opts);
  }

  async trainEpoch(spec: EpochSpec): Promise<EpochStats> {
    if (!Number.isInteger(spec.batchSize) || spec.batchSize < 1) throw new RangeError(`trainEpoch: batchSize must be a positive integer, got ${spec.batchSize}`);
    const order = epochOrder(spec.rows, spec.seed, spec.epoch);
    let sum = 0;
    let steps = 0;
    for (let s = 0; s < order.length; s += spec.batchSize) {
      const e = Math.min(order.length, s + spec.batchSize);
      const loss = this.step(this.gather(order, s, e), spec);
      sum += loss * (e - s);
      steps++;
      if (!Number.isFinite(loss)) break;
    }
    return { meanLoss: sum / order.length, steps, samples: order.length };
  }

  async evalLoss(rows: Uint32Array): Promise<number> {
    if (rows.length === 0) throw new RangeError('evalLoss: no rows');
    let s = 0;
    for (let i = 0; i < rows.length; i += this.block) {
      const b = this.gather(rows, i, Math.min(rows.length, i + this.block));
      const lp = flowLogProb(this.model, b.theta, b.x, b.n);
      for (let r = 0; r < b.n; r++) s -= lp[r];
    }
    return s / rows.length;
  }

  async logProb(theta: ArrayLike<number>, x: ArrayLike<number>, n: number): Promise<Float64Array> {
    const { thetaDim: P, contextDim: F } = this.model.config;
    if (theta.length !== n * P) throw new RangeError(`logProb: theta has ${theta.length} values, expected ${n} x ${P}`);
    if (x.length !== n * F) throw new RangeError(`logProb: x has ${x.length} values, expected ${n} x ${F}`);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i += this.block) {
      const e = Math.min(n, i + this.block);
      const t = Float64Array.from({ length: (e - i) * P }, (_, k) => theta[i * P + k]);
      const c = Float64Array.from({ length: (e - i) * F }, (_, k) => x[i * F + k]);
      out.set(flowLogProb(this.model, t, c, e - i), i);
    }
    return out;
  }

  async sample(req: SampleRequest): Promise<SampleBatch> {
    const { thetaDim: P, contextDim: F } = this.model.config;
    const m = req.ctxIndex.length;
    if (req.drawIndex.length !== m) throw new RangeError(`sample: ${m} context indices but ${req.drawIndex.length} draw indices`);
    if (req.x.length !== req.nCtx * F) throw new RangeError(`sample: x has ${req.x.length} values, expected ${req.nCtx} x ${F}`);
    const theta = new Float64Array(m * P);
    const lp = new Float64Array(m);
    for (let i = 0; i < m; i += this.block) {
      const e = Math.min(m, i + this.block);
      const xs = new Float64Array((e - i) * F);
      for (let k = i; k < e; k++) {
        const c = req.ctxIndex[k];
        if (c >= req.nCtx) throw new RangeError(`sample: context index ${c} outside [0, ${req.nCtx})`);
        for (let f = 0; f < F; f++) xs[(k - i) * F + f] = req.x[c * F + f];
      }
      const draws = req.drawIndex.subarray(i, e);
      const z = baseNormals(req.seed, draws, P);
      const u = this.model.config.head === 'mdn' ? mixtureUniforms(req.seed, draws) : undefined;
      const r = flowSample(this.model, xs, e - i, z, 1, this.model.params, u);
      theta.set(r.theta, i * P);
      lp.set(r.logProb, i);
    }
    return { theta, logProb: lp };
  }

  async dispose(): Promise<void> {
    this.data = null;
  }
}

/**
 * The one place that maps an engine kind to an implementation. The GPU engine plugs in here
 * (`case 'gpu'`); everything else (trainer, sampler, CLI) goes through this function.
 */
export async function createFlowEngine(kind: EngineKind, model: FlowModel, opts: EngineOptions = {}): Promise<FlowEngine> {
  switch (kind) {
    case 'cpu':
      return new CpuFlowEngine(model, opts);
    case 'gpu': {
      const { GpuFlowEngine } = await import('../flow/gpuEngine.js');
      return GpuFlowEngine.create(model, opts);
    }
    default:
      throw new Error(`unknown engine "${String(kind)}" (available: ${ENGINE_KINDS.join(', ')})`);
  }
}

/** Parses an engine name (CLI / config), naming the allowed values. */
export function parseEngineKind(v: string): EngineKind {
  if ((ENGINE_KINDS as readonly string[]).includes(v)) return v as EngineKind;
  throw new Error(`engine must be one of ${ENGINE_KINDS.join(', ')}, got "${v}"`);
}
