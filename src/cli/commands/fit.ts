/**
 * `synference fit`: posterior summaries and samples of a trained model for every galaxy of a
 * catalogue (FITS binary table or CSV), chunked and resumable (src/infer/fit.ts).
 *
 *   synference fit --model m/ --catalog cat.fits --map columns.yaml --out post/ [--samples 1000] [--engine cpu|gpu] [--seed 0]
 *
 * Writes post/summary.csv, post/summary.fits, post/samples.h5 and post/fit.json; an interrupted run
 * resumes with the same command.
 */
import { readFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { FIT_FLAGS, type FitFlagName, fitCatalog } from '../../infer/fit.js';
import { parseEngineKind } from '../../train/engine.js';
import { deviceOptions, positiveInt } from '../common.js';
import { nonNegativeInt, positiveNumber } from './train.js';

interface FitCliOptions {
  model: string;
  catalog: string;
  map: string;
  out: string;
  samples: number;
  engine: string;
  seed: number;
  chunk?: number;
  hdu?: string;
  format?: string;
  library?: string;
  simConfig?: string;
  maxDraws: number;
  oodSigma: number;
  minAcceptance: number;
  saveSamples: boolean;
  overwrite?: boolean;
  keepParts?: boolean;
  progress: boolean;
}

function fraction01(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${name} must be a number in [0, 1], got "${v}"`);
    return n;
  };
}

function formatArg(v: string): string {
  const f = v.toLowerCase();
  if (f !== 'fits' && f !== 'csv') throw new InvalidArgumentError(`--format must be fits or csv, got "${v}"`);
  return f;
}

async function loadSimConfig(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`--sim-config ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    if (/\.json$/i.test(file)) return JSON.parse(text);
    const YAML = await import('yaml');
    return YAML.parse(text, { uniqueKeys: true });
  } catch (e) {
    throw new Error(`--sim-config ${file}: cannot parse: ${(e as Error).message.split('\n')[0]}`);
  }
}

export function registerFit(program: Command): void {
  program
    .command('fit')
    .description('fit a catalogue: posterior medians and 16/84 % per galaxy (CSV + FITS), all samples (HDF5) and per-row flags; resumes an interrupted run')
    .requiredOption('--model <dir>', 'model folder (config.json + weights.safetensors)')
    .requiredOption('--catalog <file>', 'catalogue: FITS binary table (.fits/.fit/.fts) or CSV')
    .requiredOption('--map <file>', 'column map (YAML/JSON): per band flux and error columns, units, id and redshift columns')
    .requiredOption('--out <dir>', 'output folder (summary.csv, summary.fits, samples.h5, fit.json)')
    .option('--samples <m>', 'posterior samples per galaxy', positiveInt('--samples'), 1000)
    .option('--engine <name>', 'cpu (float64 reference) or gpu', 'cpu')
    .option('--seed <n>', 'sampling seed', nonNegativeInt('--seed'), 0)
    .option('--chunk <rows>', 'rows per chunk: the unit of progress, resumption and memory (default 1024)', positiveInt('--chunk'))
    .option('--hdu <n|name>', 'FITS: the table HDU, a number (1 = first extension) or EXTNAME (default: the first BINTABLE)')
    .option('--format <fmt>', 'fits or csv (default: from the file extension)', formatArg)
    .option('--library <file>', "the model's training library: its config attribute says how the features were made (default: the library config.json records)")
    .option('--sim-config <file>', 'the simulation config (YAML/JSON) the model was trained on, instead of --library')
    .option('--max-draws <k>', 'rejection cap: at most k x samples draws per galaxy', positiveInt('--max-draws'), 100)
    .option('--ood-sigma <s>', 'flag OUT_OF_DISTRIBUTION when a standardised feature exceeds this', positiveNumber('--ood-sigma'), 10)
    .option('--min-acceptance <a>', 'flag LOW_ACCEPTANCE below this prior-rejection acceptance rate', fraction01('--min-acceptance'), 0.1)
    .option('--no-save-samples', 'do not write samples.h5')
    .option('--overwrite', 'replace a fit of another model/catalogue/options in --out')
    .option('--keep-parts', 'keep the per-chunk parts after assembling')
    .option('--no-progress', 'no progress bar')
    .action(async (o: FitCliOptions, cmd: Command) => {
      const engine = parseEngineKind(o.engine);
      if (o.library && o.simConfig) throw new Error('--library and --sim-config exclude each other (both give the feature definition)');
      let hdu: number | string | undefined;
      if (o.hdu !== undefined) {
        const t = o.hdu.trim();
        if (t === '') throw new Error('--hdu must be a number or an extension name');
        hdu = /^\d+$/.test(t) ? Number(t) : t;
      }
      const simulationConfig = o.simConfig ? await loadSimConfig(o.simConfig) : undefined;
      const err = (s: string) => process.stderr.write(s + '\n');
      let bar: cliProgress.SingleBar | null = null;
      const t0 = performance.now();
      const onSigint = () => {
        bar?.stop();
        err(`\nfit: interrupted; the finished chunks are kept in ${o.out}/parts: rerun the same command to resume`);
        process.exit(130);
      };
      process.once('SIGINT', onSigint);
      try {
        const res = await fitCatalog({
          model: o.model,
          catalog: o.catalog,
          format: o.format as 'fits' | 'csv' | undefined,
          hdu,
          map: o.map,
          out: o.out,
          samples: o.samples,
          engine,
          engineOptions: engine === 'gpu' ? { device: deviceOptions(cmd) } : {},
          seed: o.seed,
          chunk: o.chunk,
          library: o.library,
          simulationConfig,
          maxDrawsPerSample: o.maxDraws,
          oodSigma: o.oodSigma,
          minAcceptance: o.minAcceptance,
          saveSamples: o.saveSamples,
          overwrite: o.overwrite,
          keepParts: o.keepParts,
          onWarning: (m) => err(`fit: warning: ${m}`),
          onProgress: (p) => {
            if (p.chunk < 0) {
              if (p.rowsResumed) err(`fit: resuming ${o.out}: ${p.rowsResumed} of ${p.rowsTotal} galaxies already done`);
              if (o.progress && p.rowsDone < p.rowsTotal) {
                bar = new cliProgress.SingleBar(
                  { format: 'fit [{bar}] {percentage}% | {value}/{total} galaxies | {rate} gal/s | ETA {eta_formatted}', hideCursor: true, stream: process.stderr },
                  cliProgress.Presets.shades_classic,
                );
                bar.start(p.rowsTotal, p.rowsDone, { rate: '-' });
              }
              return;
            }
            bar?.update(p.rowsDone, { rate: p.seconds > 0 ? (p.rowsComputed / p.seconds).toFixed(1) : '-' });
          },
        });
        (bar as cliProgress.SingleBar | null)?.stop();
        if (res.alreadyComplete) {
          err(`fit: ${o.out} already holds this fit (${res.nRows} galaxies); nothing to do`);
          return;
        }
        const flags = (Object.keys(FIT_FLAGS) as FitFlagName[])
          .filter((k) => res.flagCounts[k])
          .map((k) => `${k} ${res.flagCounts[k]}`)
          .join(', ');
        err(
          `fit: ${res.nRows} galaxies (${res.fitted} fitted) -> ${res.files.summaryCsv}, ${res.files.summaryFits}${res.files.samples ? `, ${res.files.samples}` : ''}; ` +
            `${res.rowsComputed} computed in ${res.seconds.toFixed(1)} s (${res.galaxiesPerSecond.toFixed(1)} galaxies/s, engine ${engine})` +
            `${res.rowsResumed ? `, ${res.rowsResumed} resumed` : ''}; ${((performance.now() - t0) / 1000).toFixed(1)} s in all` +
            `${flags ? `\nfit: flags: ${flags}` : ''}\nfit: features from ${res.featureSource}`,
        );
      } finally {
        process.removeListener('SIGINT', onSigint);
        (bar as cliProgress.SingleBar | null)?.stop();
      }
    });
}
