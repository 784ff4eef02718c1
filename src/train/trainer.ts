/**
 * Trainer of the conditional NSF (issue 5), engine-agnostic (src/train/engine.ts):
 *
 *   split      seeded 10 % validation split (split.ts), exact size, stable per row
 *   standardise z-score of theta and x fitted on the TRAINING rows only (stored with the model)
 *   epochs     engine.trainEpoch: shuffled mini-batches (counter-based permutation of (seed, epoch)),
 *              Adam (lr 5e-4), batch 256, global-norm clip 5; then the validation loss
 *   early stop sbi's rule: stop when the validation loss has not improved for `patience` (20) epochs
 *              in a row; the best weights (lowest validation loss) are restored at the end, whatever
 *              stopped the run (patience, maxEpochs, time budget, a non-finite loss)
 *   schedule   optional per-epoch learning-rate schedule (schedule.ts)
 *   checkpoint every N epochs (checkpoint.ts), written atomically; `resume` continues from it.
 *              The shuffles and the split are pure functions of the seed, so the checkpoint's epoch
 *              count is the whole RNG position: a resumed CPU run ends with bit-identical weights.
 * Reproducible from the seed (the flow's init seed defaults to it too). A time budget makes the
 * number of epochs depend on the machine's speed; everything else does not.
 *
 * No node: imports here; the Node-side orchestration (library in, model folder out) is library.ts.
 */
import { z } from 'zod';
import { type FlowConfig, type FlowConfigInput, parseFlowConfig } from '../flow/config.js';
import { type FlowModel, createFlow, fitFlowStandardization } from '../flow/flow.js';
import type { EpochRecord, TrainingSummary } from '../flow/modelFiles.js';
import { type CheckpointState, type CheckpointStore, CHECKPOINT_FORMAT, CHECKPOINT_VERSION } from './checkpoint.js';
import { type EngineKind, type EngineOptions, type FlowData, type FlowEngine, createFlowEngine } from './engine.js';
import { LrScheduleSchema, initialScheduleState, learningRate, updateSchedule } from './schedule.js';
import { TrainRngPurpose, splitTrainVal } from './split.js';

const posNum = (k: string) => z.number({ invalid_type_error: `${k} must be a number > 0` }).finite().gt(0, { message: `${k} must be > 0` });
const intMin = (k: string, min: number) =>
  z.number({ invalid_type_error: `${k} must be an integer >= ${min}` }).int({ message: `${k} must be an integer >= ${min}` }).min(min, { message: `${k} must be an integer >= ${min}` });

export const TrainOptionsSchema = z
  .object({
    /** Seed of the split, the shuffles and (unless the flow config sets one) the initialisation. */
    seed: intMin('seed', 0).max(Number.MAX_SAFE_INTEGER).default(0),
    valFraction: z.number().gt(0, { message: 'valFraction must be in (0, 1)' }).lt(1, { message: 'valFraction must be in (0, 1)' }).default(0.1),
    batchSize: intMin('batchSize', 1).default(256),
    lr: posNum('lr').default(5e-4),
    /** Global gradient-norm clip; 0 = off. */
    clipNorm: z.number().min(0, { message: 'clipNorm must be >= 0 (0 = no clipping)' }).default(5),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: posNum('eps').default(1e-8),
    weightDecay: z.number().min(0, { message: 'weightDecay must be >= 0' }).default(0),
    /** AdamW (decoupled) instead of Adam's L2 penalty when weightDecay > 0. */
    decoupledWeightDecay: z.boolean().default(false),
    /** Early stopping: epochs without a validation improvement before stopping. */
    patience: intMin('patience', 1).default(20),
    maxEpochs: intMin('maxEpochs', 1).default(10_000),
    /** Stop after the epoch during which this much training time (s, resumed runs included) has passed. */
    timeBudgetS: posNum('timeBudgetS').optional(),
    schedule: LrScheduleSchema.default({ kind: 'constant' }),
    /** Checkpoint every N epochs (0 = never; needs a checkpoint store). */
    checkpointEvery: intMin('checkpointEvery', 0).default(0),
  })
  .strict();
export type TrainOptions = z.output<typeof TrainOptionsSchema>;
export type TrainOptionsInput = z.input<typeof TrainOptionsSchema>;

export function parseTrainOptions(input: unknown): TrainOptions {
  const r = TrainOptionsSchema.safeParse(input ?? {});
  if (!r.success) throw new Error(`training options: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Architecture keys of FlowConfig other than the dimensions (set from the data). */
export type FlowArchitectureInput = Omit<FlowConfigInput, 'thetaDim' | 'contextDim'>;

export interface EpochProgress {
  epoch: number;
  maxEpochs: number;
  trainLoss: number;
  valLoss: number;
  lr: number;
  improved: boolean;
  bestValLoss: number | null;
  bestEpoch: number;
  epochsSinceImprovement: number;
  /** This epoch (training + validation). */
  seconds: number;
  /** Cumulative training time (resumed runs included). */
  elapsedS: number;
  samplesPerSecond: number;
}

export type StopReason = 'patience' | 'maxEpochs' | 'timeBudget' | 'nonFinite';

export interface TrainFlowOptions {
  data: FlowData;
  /** Architecture (transforms, hidden, ...); thetaDim / contextDim come from the data. */
  flow?: FlowArchitectureInput;
  options?: TrainOptionsInput;
  /** Engine kind (default cpu) or a factory (tests; the lead's GPU engine). */
  engine?: EngineKind | ((model: FlowModel) => Promise<FlowEngine>);
  engineOptions?: EngineOptions;
  checkpoint?: CheckpointStore;
  /** Continue from the checkpoint in `checkpoint` if there is one (else start afresh). */
  resume?: boolean;
  onEpoch?: (p: EpochProgress) => void | Promise<void>;
  /** After a checkpoint was written (epochs done). */
  onCheckpoint?: (epochsDone: number) => void | Promise<void>;
  onLog?: (message: string) => void;
  /** Milliseconds clock (default performance.now). */
  clock?: () => number;
  /** Precomputed fingerprint of the data (default: hashed here). */
  dataFingerprint?: string;
}

export interface TrainResult {
  /** The flow with the best (lowest validation loss) weights. */
  model: FlowModel;
  summary: TrainingSummary;
  history: EpochRecord[];
  stoppedBy: StopReason;
  split: { train: Uint32Array; val: Uint32Array };
}

/** 64-bit (two 32-bit lanes) non-cryptographic hash of the data's bytes, hex. Identity check for resume. */
export function fingerprintData(...arrays: (Float32Array | Float64Array)[]): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x9747b28c;
  for (const a of arrays) {
    const u = new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4);
    for (let i = 0; i < u.length; i++) {
      const k = Math.imul(u[i] ^ (u[i] >>> 16), 0x85ebca6b);
      h1 = Math.imul(h1 ^ k, 0x01000193) >>> 0;
      h2 = (Math.imul(h2 ^ (k >>> 13), 0xc2b2ae35) + i) >>> 0;
    }
    h1 = Math.imul(h1 ^ a.length, 0x27d4eb2d) >>> 0;
    h2 = Math.imul(h2 ^ (a.BYTES_PER_ELEMENT * 97), 0x165667b1) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

/** What must match for a checkpoint to belong to this run. */
function runIdentity(flow: FlowConfig, o: TrainOptions, n: number, dataFp: string): Record<string, unknown> {
  const schedule = o.schedule.kind === 'cosine' ? { ...o.schedule, epochs: o.schedule.epochs ?? o.maxEpochs } : o.schedule;
  // An NSF run's identity leaves out the MDN keys (head, components), so checkpoints written before
  // the MDN head existed still resume.
  const { head, components, ...nsf } = flow;
  return {
    data: dataFp,
    n,
    flow: head === 'mdn' ? { ...nsf, head, components } : nsf,
    seed: o.seed,
    valFraction: o.valFraction,
    batchSize: o.batchSize,
    lr: o.lr,
    clipNorm: o.clipNorm,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    weightDecay: o.weightDecay,
    decoupledWeightDecay: o.decoupledWeightDecay,
    schedule,
  };
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function identityDiff(have: Record<string, unknown>, want: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(have), ...Object.keys(want)]);
  const d: string[] = [];
  for (const k of keys) {
    const a = stableJson(have[k]);
    const b = stableJson(want[k]);
    if (a !== b) d.push(k === 'data' ? 'the training data' : `${k} (${a.length > 60 ? a.slice(0, 57) + '...' : a}, now ${b.length > 60 ? b.slice(0, 57) + '...' : b})`);
  }
  return d;
}

function gatherRows(a: ArrayLike<number>, rows: Uint32Array, d: number): Float64Array {
  const out = new Float64Array(rows.length * d);
  for (let i = 0; i < rows.length; i++) for (let j = 0; j < d; j++) out[i * d + j] = a[rows[i] * d + j];
  return out;
}

/** Trains a flow on (theta, x); see the module comment. */
export async function trainFlow(opts: TrainFlowOptions): Promise<TrainResult> {
  const o = parseTrainOptions(opts.options);
  const { data } = opts;
  const n = data.n;
  if (!Number.isInteger(n) || n < 2) throw new Error(`training needs at least 2 rows, got ${n}`);
  if (data.theta.length % n !== 0 || data.x.length % n !== 0) throw new Error(`training data: theta (${data.theta.length} values) and x (${data.x.length}) are not n = ${n} rows`);
  const P = data.theta.length / n;
  const F = data.x.length / n;
  const arch = { ...(opts.flow ?? {}) } as Record<string, unknown>;
  if ('thetaDim' in arch || 'contextDim' in arch) throw new Error('flow config: thetaDim and contextDim come from the library; remove them from the flow config');
  const flowCfg = parseFlowConfig({ seed: o.seed, ...arch, thetaDim: P, contextDim: F });
  const log = opts.onLog ?? (() => {});
  const clock = opts.clock ?? (() => performance.now());

  for (const [name, a, d] of [['theta', data.theta, P], ['x', data.x, F]] as const) {
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i])) throw new Error(`training data: ${name} has a non-finite value (${a[i]}) at row ${Math.floor(i / d)}, column ${i % d}`);
    }
  }

  const split = splitTrainVal(n, o.valFraction, o.seed);
  const model = createFlow(flowCfg);
  fitFlowStandardization(model, gatherRows(data.theta, split.train, P), gatherRows(data.x, split.train, F), split.train.length);

  const dataFp = opts.dataFingerprint ?? fingerprintData(data.theta, data.x);
  const identity = runIdentity(flowCfg, o, n, dataFp);
  const fingerprint = stableJson(identity);

  let ck = null;
  if (opts.resume) {
    if (!opts.checkpoint) throw new Error('resume needs a checkpoint store');
    ck = await opts.checkpoint.load();
    if (ck) {
      if (ck.state.fingerprint !== fingerprint) {
        const diff = identityDiff(ck.state.identity, identity);
        throw new Error(
          `${opts.checkpoint.description}: the checkpoint belongs to another run (different ${diff.join('; ') || 'settings'}); ` +
            'resume with the same library, flow config and training options, or start afresh without --resume',
        );
      }
      model.thetaStd = { mean: Float64Array.from(ck.state.thetaStd.mean), std: Float64Array.from(ck.state.thetaStd.std) };
      model.xStd = { mean: Float64Array.from(ck.state.xStd.mean), std: Float64Array.from(ck.state.xStd.std) };
      log(`resuming from ${opts.checkpoint.description}: ${ck.state.epochsDone} epochs done, best validation loss ${ck.state.bestValLoss?.toFixed(4) ?? '-'} (epoch ${ck.state.bestEpoch})`);
    } else {
      log(`no checkpoint at ${opts.checkpoint.description}: starting afresh`);
    }
  }

  const engine = typeof opts.engine === 'function' ? await opts.engine(model) : await createFlowEngine(opts.engine ?? 'cpu', model, opts.engineOptions);
  try {
    await engine.setData(data);
    let bestParams: Float64Array;
    let bestVal: number | null = null;
    let bestEpoch = -1;
    let since = 0;
    let sched = initialScheduleState(o.lr);
    let history: EpochRecord[] = [];
    let elapsedS = 0;
    let epoch = 0;
    if (ck) {
      await engine.setParams(ck.params);
      await engine.setOptimizerState(ck.adam);
      bestParams = ck.bestParams;
      bestVal = ck.state.bestValLoss;
      bestEpoch = ck.state.bestEpoch;
      since = ck.state.epochsSinceImprovement;
      sched = { ...ck.state.schedule };
      history = ck.state.history.slice();
      elapsedS = ck.state.elapsedS;
      epoch = ck.state.epochsDone;
    } else {
      bestParams = await engine.getParams();
    }
    const resumedFrom = ck ? ck.state.epochsDone : null;
    const created = new Date().toISOString();

    const saveCheckpoint = async (epochsDone: number) => {
      const store = opts.checkpoint!;
      const state: CheckpointState = {
        format: CHECKPOINT_FORMAT,
        version: CHECKPOINT_VERSION,
        fingerprint,
        identity,
        epochsDone,
        adamStep: 0,
        bestValLoss: bestVal,
        bestEpoch,
        epochsSinceImprovement: since,
        schedule: sched,
        thetaStd: { mean: Array.from(model.thetaStd.mean), std: Array.from(model.thetaStd.std) },
        xStd: { mean: Array.from(model.xStd.mean), std: Array.from(model.xStd.std) },
        history,
        elapsedS,
        rng: { seed: o.seed, nextEpoch: epochsDone },
        created,
      };
      await store.save({ state, params: await engine.getParams(), bestParams, adam: await engine.getOptimizerState() });
      await opts.onCheckpoint?.(epochsDone);
    };

    let stoppedBy: StopReason | null = since >= o.patience ? 'patience' : null;
    while (stoppedBy === null && epoch < o.maxEpochs) {
      if (o.timeBudgetS !== undefined && elapsedS >= o.timeBudgetS) {
        stoppedBy = 'timeBudget';
        break;
      }
      const lr = learningRate(o.schedule, o.lr, epoch, sched, o.maxEpochs, o.timeBudgetS !== undefined ? elapsedS / o.timeBudgetS : undefined);
      const t0 = clock();
      const stats = await engine.trainEpoch({
        rows: split.train,
        seed: o.seed,
        epoch,
        batchSize: o.batchSize,
        lr,
        clipNorm: o.clipNorm,
        beta1: o.beta1,
        beta2: o.beta2,
        eps: o.eps,
        weightDecay: o.weightDecay,
        decoupled: o.decoupledWeightDecay,
      });
      const val = Number.isFinite(stats.meanLoss) ? await engine.evalLoss(split.val) : NaN;
      const seconds = (clock() - t0) / 1000;
      elapsedS += seconds;
      const finite = Number.isFinite(stats.meanLoss) && Number.isFinite(val);
      const improved = finite && (bestVal === null || val < bestVal);
      if (improved) {
        bestVal = val;
        bestEpoch = epoch;
        bestParams = await engine.getParams();
        since = 0;
      } else since++;
      sched = updateSchedule(o.schedule, sched, val);
      history.push({ epoch, trainLoss: Number.isFinite(stats.meanLoss) ? stats.meanLoss : null, valLoss: Number.isFinite(val) ? val : null, lr, seconds });
      await opts.onEpoch?.({
        epoch,
        maxEpochs: o.maxEpochs,
        trainLoss: stats.meanLoss,
        valLoss: val,
        lr,
        improved,
        bestValLoss: bestVal,
        bestEpoch,
        epochsSinceImprovement: since,
        seconds,
        elapsedS,
        samplesPerSecond: stats.samples / Math.max(seconds, 1e-9),
      });
      epoch++;
      if (!finite) {
        stoppedBy = 'nonFinite';
        log(`epoch ${epoch - 1}: non-finite loss (train ${stats.meanLoss}, validation ${val}); stopping and restoring the best weights (epoch ${bestEpoch})`);
      } else if (since >= o.patience) stoppedBy = 'patience';
      else if (epoch >= o.maxEpochs) stoppedBy = 'maxEpochs';
      else if (o.timeBudgetS !== undefined && elapsedS >= o.timeBudgetS) stoppedBy = 'timeBudget';
      if (stoppedBy === null && opts.checkpoint && o.checkpointEvery > 0 && epoch % o.checkpointEvery === 0) await saveCheckpoint(epoch);
    }
    stoppedBy ??= 'maxEpochs';

    await engine.setParams(bestParams);
    model.params.set(bestParams);
    const last = history.length ? history[history.length - 1] : undefined;
    const summary: TrainingSummary = {
      engine: engine.kind,
      n,
      nTrain: split.train.length,
      nVal: split.val.length,
      seed: o.seed,
      options: { ...o, schedule: o.schedule, rngPurposes: { split: TrainRngPurpose.split, shuffle: TrainRngPurpose.shuffle } },
      epochs: epoch,
      bestEpoch,
      bestValLoss: bestVal,
      lastTrainLoss: last?.trainLoss ?? null,
      stoppedBy,
      seconds: elapsedS,
      resumedFrom,
      history,
    };
    return { model, summary, history, stoppedBy, split };
  } finally {
    await engine.dispose();
  }
}
