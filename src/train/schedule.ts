/**
 * Learning-rate schedules, one learning rate per epoch (the trainer's unit of work). Each schedule is
 * a pure function of (spec, base lr, epoch, state) where `state` is a small JSON object that the
 * checkpoint carries, so a resumed run continues with the same rates.
 *
 *   constant                    lr
 *   cosine   {epochs, minLr, warmupEpochs}
 *            linear warm-up from lr/warmup... then lr_e = minLr + (lr - minLr)(1 + cos(pi t / T)) / 2,
 *            t = e - warmup, T = epochs - warmup (default: the trainer's maxEpochs); minLr after T.
 *            overTimeBudget: t / T = the fraction of the trainer's time budget used when the epoch
 *            starts, so a time-limited run anneals to minLr by the end of its budget
 *   step     {everyEpochs, gamma}         lr * gamma^floor(e / everyEpochs)
 *   plateau  {factor, patience, minLr, threshold}
 *            as torch's ReduceLROnPlateau(mode="min", threshold_mode="rel"): when the validation loss
 *            has not improved on the best by more than threshold * |best| for more than `patience`
 *            epochs, lr <- max(minLr, lr * factor) and the count restarts
 */
import { z } from 'zod';

const pos = (k: string) => z.number({ invalid_type_error: `${k} must be a number > 0` }).gt(0, { message: `${k} must be > 0` });
const nonneg = (k: string) => z.number({ invalid_type_error: `${k} must be a number >= 0` }).min(0, { message: `${k} must be >= 0` });
const posInt = (k: string) => z.number().int({ message: `${k} must be a positive integer` }).min(1, { message: `${k} must be a positive integer` });

export const LrScheduleSchema = z.discriminatedUnion(
  'kind',
  [
    z.object({ kind: z.literal('constant') }).strict(),
    z
      .object({
        kind: z.literal('cosine'),
        /** Length of the cosine (epochs, warm-up included); default: maxEpochs. */
        epochs: posInt('epochs').optional(),
        minLr: nonneg('minLr').default(0),
        warmupEpochs: z.number().int().min(0, { message: 'warmupEpochs must be an integer >= 0' }).default(0),
        overTimeBudget: z.boolean({ invalid_type_error: 'overTimeBudget must be true or false' }).default(false),
      })
      .strict(),
    z.object({ kind: z.literal('step'), everyEpochs: posInt('everyEpochs'), gamma: pos('gamma').max(1, { message: 'gamma must be in (0, 1]' }).default(0.5) }).strict(),
    z
      .object({
        kind: z.literal('plateau'),
        factor: pos('factor').lt(1, { message: 'factor must be in (0, 1)' }).default(0.5),
        patience: z.number().int().min(0, { message: 'patience must be an integer >= 0' }).default(5),
        minLr: nonneg('minLr').default(0),
        threshold: nonneg('threshold').default(1e-4),
      })
      .strict(),
  ],
  { errorMap: (i, ctx) => (i.code === z.ZodIssueCode.invalid_union_discriminator ? { message: 'schedule kind must be one of constant, cosine, step, plateau' } : { message: ctx.defaultError }) },
);
export type LrSchedule = z.output<typeof LrScheduleSchema>;
export type LrScheduleInput = z.input<typeof LrScheduleSchema>;

/** Mutable part of a schedule (plateau only; JSON in checkpoints). */
export interface ScheduleState {
  /** Current rate (plateau). */
  lr: number;
  best: number | null;
  bad: number;
}

export function initialScheduleState(baseLr: number): ScheduleState {
  return { lr: baseLr, best: null, bad: 0 };
}

/**
 * The learning rate of epoch `epoch` (0-based); `budgetUsed` is the fraction of the time budget
 * spent before this epoch (for cosine with overTimeBudget; undefined without a time budget).
 */
export function learningRate(spec: LrSchedule, baseLr: number, epoch: number, state: ScheduleState, maxEpochs: number, budgetUsed?: number): number {
  switch (spec.kind) {
    case 'constant':
      return baseLr;
    case 'step':
      return baseLr * spec.gamma ** Math.floor(epoch / spec.everyEpochs);
    case 'plateau':
      return state.lr;
    case 'cosine': {
      const total = spec.epochs ?? maxEpochs;
      const w = Math.min(spec.warmupEpochs, total);
      if (epoch < w) return (baseLr * (epoch + 1)) / (w + 1);
      if (spec.overTimeBudget && budgetUsed !== undefined) {
        const f = Math.min(1, Math.max(0, budgetUsed));
        return spec.minLr + ((baseLr - spec.minLr) * (1 + Math.cos(Math.PI * f))) / 2;
      }
      const T = Math.max(1, total - w);
      const t = Math.min(epoch - w, T);
      return spec.minLr + ((baseLr - spec.minLr) * (1 + Math.cos((Math.PI * t) / T))) / 2;
    }
  }
}

/** Updates the state after an epoch with validation loss `valLoss` (returns a new state). */
export function updateSchedule(spec: LrSchedule, state: ScheduleState, valLoss: number): ScheduleState {
  if (spec.kind !== 'plateau' || !Number.isFinite(valLoss)) return state;
  if (state.best === null || valLoss < state.best - spec.threshold * Math.abs(state.best)) return { lr: state.lr, best: valLoss, bad: 0 };
  const bad = state.bad + 1;
  if (bad > spec.patience) return { lr: Math.max(spec.minLr, state.lr * spec.factor), best: state.best, bad: 0 };
  return { lr: state.lr, best: state.best, bad };
}

/** Parses a schedule spec (object) or a bare kind name ("cosine"); errors name the key. */
export function parseLrSchedule(input: unknown): LrSchedule {
  const v = typeof input === 'string' ? { kind: input } : input;
  const r = LrScheduleSchema.safeParse(v);
  if (!r.success) throw new Error(`schedule: ${r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ` : '') + i.message).join('; ')}`);
  return r.data;
}
