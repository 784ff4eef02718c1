/**
 * `synference train`: trains a conditional neural spline flow on a simulation library and writes a
 * model folder (config.json + weights.safetensors). Resumable: with --checkpoint-every N the run
 * leaves <out>/checkpoint.safetensors every N epochs; --resume continues from it.
 *
 * --config file (YAML or JSON), both sections optional:
 *   flow:  { transforms, hidden, blocks, bins, bound, activation, seed, minBinWidth, ... }  (src/flow/config.ts)
 *          or an MDN head: { head: mdn, components, hidden, blocks, activation, seed }
 *   train: { batchSize, lr, patience, maxEpochs, valFraction, clipNorm, schedule, ... }  (src/train/trainer.ts)
 * Command-line options override the file's train section.
 */
import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { parseFlowConfig } from '../../flow/config.js';
import { parseEngineKind } from '../../train/engine.js';
import { trainFromLibrary } from '../../train/library.js';
import { parseLrSchedule } from '../../train/schedule.js';
import { type FlowArchitectureInput, type TrainOptionsInput, parseTrainOptions } from '../../train/trainer.js';
import { deviceOptions, positiveInt } from '../common.js';

interface TrainCliOptions {
  library: string;
  out: string;
  config?: string;
  engine: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  patience?: number;
  seed?: number;
  checkpointEvery?: number;
  resume?: boolean;
  overwrite?: boolean;
  timeBudget?: number;
  valFraction?: number;
  schedule?: string;
  weightsDtype: string;
  thetaColumns?: string[];
  xColumns?: string[];
  quiet?: boolean;
}

export function nonNegativeInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got "${v}"`);
    return n;
  };
}

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number > 0, got "${v}"`);
    return n;
  };
}

function fraction(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !(n > 0 && n < 1)) throw new InvalidArgumentError(`${name} must be a number in (0, 1), got "${v}"`);
    return n;
  };
}

/** "cosine", "step:everyEpochs=30,gamma=0.5", "plateau:patience=5" -> a schedule spec. */
export function parseScheduleArg(v: string): unknown {
  const [kind, rest] = v.split(':', 2);
  const spec: Record<string, unknown> = { kind: kind.trim() };
  if (rest) {
    for (const kv of rest.split(',')) {
      const [k, val] = kv.split('=', 2);
      const num = Number(val);
      if (val === 'true' || val === 'false') spec[k.trim()] = val === 'true';
      else if (!k || val === undefined || !Number.isFinite(num)) throw new Error(`--schedule: expected key=number (or key=true/false) pairs after "${kind}:", got "${kv}"`);
      else spec[k.trim()] = num;
    }
  }
  try {
    return parseLrSchedule(spec);
  } catch (e) {
    throw new Error(`--schedule ${v}: ${(e as Error).message.replace(/^schedule: /, '')}`);
  }
}

const ConfigFileSchema = z
  .object({ flow: z.record(z.unknown()).optional(), train: z.record(z.unknown()).optional() })
  .strict({ message: 'unknown top-level key (allowed: flow, train)' });

/** Reads and validates a train config file (YAML or JSON). */
export async function loadTrainConfigFile(file: string): Promise<{ flow: FlowArchitectureInput; train: TrainOptionsInput }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let obj: unknown;
  try {
    if (/\.json$/i.test(file)) obj = JSON.parse(text);
    else {
      const YAML = await import('yaml');
      obj = YAML.parse(text, { uniqueKeys: true });
    }
  } catch (e) {
    throw new Error(`${file}: cannot parse: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = ConfigFileSchema.safeParse(obj ?? {});
  if (!r.success) throw new Error(`${file}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const flow = (r.data.flow ?? {}) as Record<string, unknown>;
  if ('thetaDim' in flow || 'contextDim' in flow) throw new Error(`${file}: flow.thetaDim / flow.contextDim come from the library; remove them`);
  try {
    parseFlowConfig({ ...flow, thetaDim: 1, contextDim: 1 });
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  const train = (r.data.train ?? {}) as Record<string, unknown>;
  if (typeof train.schedule === 'string') train.schedule = { kind: train.schedule };
  try {
    parseTrainOptions(train);
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  return { flow: flow as FlowArchitectureInput, train: train as TrainOptionsInput };
}

const fmt = (v: number | null, d = 4) => (v === null || !Number.isFinite(v) ? String(v) : v.toFixed(d));

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train a conditional neural spline flow (or, with flow.head: mdn, a mixture density network) q(theta | x) on a simulation library; writes a model folder (config.json + weights.safetensors)')
    .requiredOption('--library <file>', 'training library (HDF5 with theta and x)')
    .requiredOption('--out <dir>', 'model folder to write')
    .option('--config <file>', 'flow architecture and training options (YAML/JSON with sections flow: and train:)')
    .option('--engine <name>', 'cpu (float64 reference) or gpu', 'cpu')
    .option('--epochs <n>', 'maximum number of epochs (default 10000; early stopping usually ends sooner)', positiveInt('--epochs'))
    .option('--batch-size <n>', 'mini-batch size (default 256)', positiveInt('--batch-size'))
    .option('--lr <x>', 'Adam learning rate (default 5e-4)', positiveNumber('--lr'))
    .option('--patience <n>', 'early stopping: epochs without validation improvement (default 20)', positiveInt('--patience'))
    .option('--seed <n>', 'seed of the split, shuffles and initialisation (default 0)', nonNegativeInt('--seed'))
    .option('--val-fraction <f>', 'validation fraction (default 0.1)', fraction('--val-fraction'))
    .option('--schedule <spec>', 'learning-rate schedule: constant | cosine[:epochs=E,minLr=X,warmupEpochs=W,overTimeBudget=true] | step:everyEpochs=N[,gamma=G] | plateau[:factor=F,patience=P,minLr=X]')
    .option('--time-budget <seconds>', 'stop after the epoch that exceeds this much training time', positiveNumber('--time-budget'))
    .option('--checkpoint-every <n>', 'write <out>/checkpoint.safetensors every N epochs (0 = never)', nonNegativeInt('--checkpoint-every'), 10)
    .option('--resume', 'continue from <out>/checkpoint.safetensors (same library and options)')
    .option('--overwrite', 'replace a trained model or discard a checkpoint in --out')
    .option('--weights-dtype <t>', 'f32 or f64 weights', 'f32')
    .option('--quiet', 'no per-epoch lines')
    .option('--theta-columns <list>', 'parameters to learn, from the library\'s theta and derived datasets (comma-separated; log10:<name> for a log); default: theta', (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('--x-columns <list>', 'features to condition on, from x and theta (e.g. add redshift as a known feature); default: x', (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .action(async (o: TrainCliOptions, cmd: Command) => {
      const engine = parseEngineKind(o.engine);
      const dtype = o.weightsDtype.toUpperCase();
      if (dtype !== 'F32' && dtype !== 'F64') throw new Error(`--weights-dtype must be f32 or f64, got "${o.weightsDtype}"`);
      const file = o.config ? await loadTrainConfigFile(o.config) : { flow: {}, train: {} };
      const train: Record<string, unknown> = { ...file.train };
      const set = (k: string, v: unknown) => {
        if (v !== undefined) train[k] = v;
      };
      set('maxEpochs', o.epochs);
      set('batchSize', o.batchSize);
      set('lr', o.lr);
      set('patience', o.patience);
      set('seed', o.seed);
      set('valFraction', o.valFraction);
      set('timeBudgetS', o.timeBudget);
      set('checkpointEvery', o.checkpointEvery);
      if (o.schedule !== undefined) train.schedule = parseScheduleArg(o.schedule);
      const options = parseTrainOptions(train);
      const err = (s: string) => process.stderr.write(s + '\n');
      const t0 = performance.now();
      const { result, config } = await trainFromLibrary({
        library: o.library,
        out: o.out,
        flow: file.flow,
        options,
        engine,
        engineOptions: engine === 'gpu' ? { device: deviceOptions(cmd) } : {},
        resume: o.resume,
        overwrite: o.overwrite,
        dtype,
        columns: { theta: o.thetaColumns, x: o.xColumns },
        onLog: (m) => err(`train: ${m}`),
        onLibrary: (lib) => {
          if (!o.quiet) err(`train: ${lib.file}: ${lib.rows} rows, ${lib.thetaNames.length} parameters (${lib.thetaNames.join(', ')}), ${lib.xNames.length} features; engine ${engine}`);
        },
        onEpoch: (p) => {
          if (o.quiet) return;
          err(
            `epoch ${String(p.epoch).padStart(4)}  train ${fmt(p.trainLoss)}  val ${fmt(p.valLoss)}  lr ${p.lr.toExponential(2)}  ` +
              `best ${fmt(p.bestValLoss)} @ ${p.bestEpoch}${p.improved ? ' *' : '  '}  ${p.seconds.toFixed(2)} s  ${p.samplesPerSecond.toFixed(0)} samples/s`,
          );
        },
      });
      const s = result.summary;
      err(
        `train: wrote ${o.out} (${s.epochs} epochs, stopped by ${s.stoppedBy}; best validation loss ${fmt(s.bestValLoss ?? null)} at epoch ${s.bestEpoch}; ` +
          `${config.parameters.length} parameters, ${config.context.length} features; ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    });
}
