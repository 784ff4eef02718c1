/**
 * The flow's negative log-likelihood on the GPU (shaders/nn/nll.wgsl), the device twin of
 * src/flow/flow.ts forward()/meanNll()/nllAndGrad()'s loss and seeds:
 *   logProb[r] = -1/2 |z_r|^2 - P/2 log 2pi + logdet[r] - sum_p log std_theta[p]     (original units)
 *   loss       = mean_r -logProb[r];  dL/dz = z / N,  dL/dlogdet = -1/N
 *
 * Dispatches per batch: `nll_samples` (min(ceil(N/256), maxGroups) workgroups) and, with a loss slot,
 * `nll_finalize` (1 workgroup) which adds the batch's summed NLL into the slot on the GPU
 * (compensated), so a whole epoch accumulates without readback; the host reads the slot once.
 *
 * Bindings: 0 z (N x P), 1 logdet (N), 2 logProb out (N), 3 gz out (N x P) and 4 gLogdet out (N)
 * with seeds 'separate'; with seeds 'inPlace' z becomes dL/dz and logdet becomes dL/dlogdet;
 * 5 partials (nllPartialCount(N, maxGroups) f32), 6 stats (u32 words; a slot = LOSS_SLOT_WORDS).
 */
import { readBytes } from '../../src/gpu/buffers.js';
import { type Bindings, type ComputeBatch, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';
import { isCpuDriver } from './optim.js';

/** A whole buffer or a sub-range ({ buffer, offset, size }; offsets multiples of 256 B). */
export type BufferRef = Bindings[number];

export const NLL_WORKGROUP = 256;
/** Words of one loss slot in a stats buffer. */
export const LOSS_SLOT_WORDS = 4;
export const LossWord = {
  /** f32: running sum of -logProb. */
  sum: 0,
  /** f32: Neumaier compensation of the sum (total = sum + comp). */
  comp: 1,
  /** u32: samples accumulated. */
  count: 2,
  /** f32: mean NLL of the last batch. */
  lastBatchMean: 3,
} as const;

export const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

export type NllSeeds = 'none' | 'separate' | 'inPlace';

export interface NllShape {
  /** Samples in the batch. */
  n: number;
  /** theta dimension P (columns of z). */
  p: number;
  /** sum_p log std_theta[p] (src/flow/standardize.ts logStdSum); 0 = standardised units. */
  logStdSum?: number;
  seeds?: NllSeeds;
  /** Loss slot index in the stats buffer (word offset slot * LOSS_SLOT_WORDS); omitted = no loss reduction. */
  lossSlot?: number;
  /**
   * Cap on the grid-stride workgroups (performance only; it sets the summation order of the loss):
   * default NLL_GROUPS_GPU; use nllGroupsFor(device) (a barrier-synchronised workgroup costs ~30 us
   * on lavapipe, so CPU drivers want few).
   */
  maxGroups?: number;
}

export const NLL_GROUPS_GPU = 1024;
export const NLL_GROUPS_CPU_DRIVER = 8;

/** The workgroup cap for a device. */
export function nllGroupsFor(device: GPUDevice): number {
  return isCpuDriver(device) ? NLL_GROUPS_CPU_DRIVER : NLL_GROUPS_GPU;
}

const SEED_CODE: Record<NllSeeds, number> = { none: 0, separate: 1, inPlace: 2 };

function check(s: NllShape): void {
  if (!Number.isInteger(s.n) || s.n < 1) throw new RangeError(`nll: n must be a positive integer, got ${s.n}`);
  if (!Number.isInteger(s.p) || s.p < 1) throw new RangeError(`nll: p must be a positive integer, got ${s.p}`);
  if (s.n * s.p >= 2 ** 32) throw new RangeError(`nll: n * p = ${s.n * s.p} exceeds u32 indexing (split the batch)`);
  if (s.seeds !== undefined && !(s.seeds in SEED_CODE)) throw new RangeError(`nll: seeds must be none, separate or inPlace, got "${s.seeds}"`);
  if (s.lossSlot !== undefined && (!Number.isInteger(s.lossSlot) || s.lossSlot < 0)) throw new RangeError(`nll: lossSlot must be a non-negative integer, got ${s.lossSlot}`);
  if (s.logStdSum !== undefined && !Number.isFinite(s.logStdSum)) throw new RangeError(`nll: logStdSum must be finite, got ${s.logStdSum}`);
  if (s.maxGroups !== undefined && (!Number.isInteger(s.maxGroups) || s.maxGroups < 1 || s.maxGroups > 65535)) throw new RangeError(`nll: maxGroups must be an integer in 1..65535, got ${s.maxGroups}`);
}

/** Workgroups of nll_samples = length of the partials scratch (f32) for a batch of n. */
export function nllPartialCount(n: number, maxGroups = NLL_GROUPS_GPU): number {
  return Math.min(ceilDiv(n, NLL_WORKGROUP), maxGroups);
}

/** -P/2 log 2pi - sum log std, in float64 (one rounding to f32 in the uniform). */
export function logProbConstant(p: number, logStdSum = 0): number {
  return -p * HALF_LOG_2PI - logStdSum;
}

function uniforms(s: NllShape): ProgramInfo['uniforms'] {
  return [
    ['u32', s.n],
    ['u32', s.p],
    ['u32', nllPartialCount(s.n, s.maxGroups)],
    ['u32', (s.lossSlot ?? 0) * LOSS_SLOT_WORDS],
    ['f32', logProbConstant(s.p, s.logStdSum ?? 0)],
    ['f32', 1 / s.n],
  ];
}

const definesOf = (s: NllShape) => ({ SEEDS: SEED_CODE[s.seeds ?? 'none'], LOSS: s.lossSlot !== undefined });

export function nllSamplesProgram(s: NllShape): ProgramInfo {
  check(s);
  return { name: 'nll.samples', shader: 'nn/nll.wgsl', entryPoint: 'nll_samples', defines: definesOf(s), workgroups: [nllPartialCount(s.n, s.maxGroups), 1, 1], uniforms: uniforms(s), uniformBinding: 7 };
}

export function nllFinalizeProgram(s: NllShape): ProgramInfo {
  check(s);
  if (s.lossSlot === undefined) throw new Error('nll: the finalize pass needs a lossSlot');
  return { name: 'nll.finalize', shader: 'nn/nll.wgsl', entryPoint: 'nll_finalize', defines: definesOf(s), workgroups: [1, 1, 1], uniforms: uniforms(s), uniformBinding: 7 };
}

export interface NllBuffers {
  z: BufferRef;
  logdet: BufferRef;
  logProb: BufferRef;
  /** seeds 'separate'. */
  gz?: BufferRef;
  gLogdet?: BufferRef;
  /** With a loss slot: nllPartialCount(n, maxGroups) f32. */
  partials?: BufferRef;
  /** With a loss slot: u32 words, at least (lossSlot + 1) * LOSS_SLOT_WORDS. */
  stats?: GPUBuffer;
}

/** Records the NLL of one batch (1 dispatch; 2 with a loss slot). */
export function encodeNll(batch: ComputeBatch, bufs: NllBuffers, shape: NllShape): ComputeBatch {
  const prog = nllSamplesProgram(shape);
  const b: Bindings = { 0: bufs.z, 1: bufs.logdet, 2: bufs.logProb };
  if (shape.seeds === 'separate') {
    if (!bufs.gz || !bufs.gLogdet) throw new Error("nll: seeds 'separate' needs gz and gLogdet buffers");
    b[3] = bufs.gz;
    b[4] = bufs.gLogdet;
  }
  if (shape.lossSlot === undefined) return batch.add(prog, b);
  if (!bufs.partials || !bufs.stats) throw new Error('nll: a loss slot needs partials and stats buffers');
  const partialsBytes = 'buffer' in bufs.partials ? (bufs.partials.size ?? bufs.partials.buffer.size - (bufs.partials.offset ?? 0)) : bufs.partials.size;
  if (partialsBytes < nllPartialCount(shape.n, shape.maxGroups) * 4) throw new RangeError(`nll: partials buffer of ${partialsBytes} B is smaller than ${nllPartialCount(shape.n, shape.maxGroups)} f32`);
  if (bufs.stats.size < (shape.lossSlot + 1) * LOSS_SLOT_WORDS * 4) throw new RangeError(`nll: stats buffer of ${bufs.stats.size} B has no slot ${shape.lossSlot}`);
  b[5] = bufs.partials;
  batch.add(prog, b);
  return batch.add(nllFinalizeProgram(shape), { 5: bufs.partials, 6: bufs.stats });
}

export interface LossSlot {
  /** Sum of -logProb accumulated (float64 of sum + compensation). */
  sum: number;
  count: number;
  /** sum / count (NaN when empty). */
  mean: number;
  lastBatchMean: number;
}

export function decodeLossSlot(bytes: ArrayBuffer, slot = 0): LossSlot {
  const o = slot * LOSS_SLOT_WORDS;
  const f = new Float32Array(bytes, o * 4, LOSS_SLOT_WORDS);
  const u = new Uint32Array(bytes, o * 4, LOSS_SLOT_WORDS);
  const sum = f[LossWord.sum] + f[LossWord.comp];
  const count = u[LossWord.count];
  return { sum, count, mean: count ? sum / count : Number.NaN, lastBatchMean: f[LossWord.lastBatchMean] };
}

/** Reads one loss slot (the one readback per epoch). */
export async function readLossSlot(device: GPUDevice, stats: GPUBuffer, slot = 0): Promise<LossSlot> {
  return decodeLossSlot(await readBytes(device, stats, slot * LOSS_SLOT_WORDS * 4, LOSS_SLOT_WORDS * 4));
}

/** Zeroes a loss slot (queue-ordered: call between submissions, e.g. at the start of an epoch). */
export function resetLossSlot(device: GPUDevice, stats: GPUBuffer, slot = 0): void {
  device.queue.writeBuffer(stats, slot * LOSS_SLOT_WORDS * 4, new Uint32Array(LOSS_SLOT_WORDS));
}
