/**
 * `synference validate`: posterior samples of a trained model for every object of a held-out
 * library -> per-parameter R^2, RMSE, bias, outliers, coverage curves, SBC ranks, TARP (1-D and
 * joint), S/N bins, redshift NMAD -> `<out>/metrics.json` (src/validate/schema.ts) and a short table
 * on stdout. Progress and warnings go to stderr.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { parseEngineKind } from '../../train/engine.js';
import { formatValidationTable, validateModel } from '../../validate/validate.js';
import { deviceOptions, positiveInt } from '../common.js';
import { nonNegativeInt } from './train.js';

interface ValidateCliOptions {
  model: string;
  library: string;
  out: string;
  n?: number;
  samples: number;
  engine: string;
  seed: number;
  maxDraws: number;
  split: string;
  snr: string;
  snrEdges?: number[];
  redshiftParameter: string;
  json?: boolean;
}

function edgeList(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  const out = parts.map((s) => (/^\+?inf(inity)?$/i.test(s) ? Infinity : Number(s)));
  if (parts.length < 2 || out.some((x, i) => Number.isNaN(x) || parts[i] === '') || out.some((x, i) => i > 0 && !(x > out[i - 1]))) {
    throw new InvalidArgumentError(`--snr-edges must be at least two strictly ascending numbers separated by commas (inf allowed), got "${v}"`);
  }
  return out;
}

function atLeastTwo(v: string): number {
  const n = positiveInt('--samples')(v);
  if (n < 2) throw new InvalidArgumentError(`--samples must be an integer >= 2, got "${v}"`);
  return n;
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('validate a trained model on a held-out library: R^2, coverage, TARP, ranks, S/N bins -> metrics.json')
    .requiredOption('--model <dir>', 'model folder (config.json + weights.safetensors)')
    .requiredOption('--library <file>', 'held-out library (HDF5 with theta and x; column names as the model)')
    .requiredOption('--out <dir>', 'output folder for metrics.json')
    .option('--n <N>', 'validate the first N objects only', positiveInt('--n'))
    .option('--samples <M>', 'posterior samples per object', atLeastTwo, 1000)
    .option('--engine <name>', 'cpu or gpu', 'cpu')
    .option('--seed <n>', 'sampling / TARP seed', nonNegativeInt('--seed'), 0)
    .option('--max-draws <k>', 'rejection cap: at most k x M candidate draws per object', positiveInt('--max-draws'), 100)
    .option('--split <which>', 'all rows, or the model\'s own training "validation" split of this library', 'all')
    .option('--snr <mode>', 'S/N per object: total | median | max | none | a band name', 'total')
    .option('--snr-edges <list>', 'S/N bin edges, ascending (default 0,3,5,10,20,50,100,inf)', edgeList)
    .option('--redshift-parameter <name>', 'the parameter that gets NMAD / outlier metrics', 'redshift')
    .option('--json', 'print metrics.json to stdout instead of the table')
    .action(async (o: ValidateCliOptions, cmd: Command) => {
      const kind = parseEngineKind(o.engine);
      if (o.split !== 'all' && o.split !== 'validation') throw new Error(`--split must be all or validation, got "${o.split}"`);
      let last = 0;
      const r = await validateModel({
        model: o.model,
        library: o.library,
        out: o.out,
        n: o.n,
        samplesPerObject: o.samples,
        engine: kind,
        seed: o.seed,
        maxDrawsPerSample: o.maxDraws,
        split: o.split,
        snr: o.snr,
        snrEdges: o.snrEdges,
        redshiftParameter: o.redshiftParameter,
        engineOptions: kind === 'gpu' ? { device: deviceOptions(cmd) } : undefined,
        onWarning: (m) => process.stderr.write(`validate: warning: ${m}\n`),
        onProgress: (done, total) => {
          const now = performance.now();
          if (done === total || now - last > 5000) {
            last = now;
            process.stderr.write(`validate: sampled ${done}/${total} objects\n`);
          }
        },
      });
      if (o.json) process.stdout.write(JSON.stringify(r.metrics) + '\n');
      else process.stdout.write(formatValidationTable(r.metrics));
      process.stderr.write(`validate: wrote ${r.file}\n`);
    });
}
