/**
 * `synference sample`: posterior samples of a trained model for a table of observations.
 *
 * obs.csv: one observation per row, a column per context feature of the model (config.json
 * `context`), optionally `id`; other columns are an error unless --allow-extra-columns.
 * samples.csv: `id, sample, <parameter columns...>[, log_prob]`, M rows per observation (NaN where an
 * observation hit the rejection cap; a warning says how many did).
 * --summary file: per observation `id, n_accepted, <p>_mean, <p>_std, <p>_q16, <p>_q50, <p>_q84`.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { loadModelDir } from '../../flow/modelFiles.js';
import { boundsFromParameters, samplePosterior, summarizeSamples } from '../../infer/sample.js';
import { numberCell, readCsv } from '../../io/csv.js';
import { createFlowEngine, parseEngineKind } from '../../train/engine.js';
import { deviceOptions, positiveInt } from '../common.js';
import { nonNegativeInt } from './train.js';

interface SampleCliOptions {
  model: string;
  x: string;
  n: number;
  out: string;
  seed: number;
  engine: string;
  summary?: string;
  maxDraws: number;
  bounds: boolean;
  logProb?: boolean;
  allowExtraColumns?: boolean;
}

const cell = (v: number) => (Number.isFinite(v) ? String(v) : 'nan');

/** Observations of a CSV table as an (n x F) matrix in the model's feature order, plus ids. */
export function readObservations(file: string, features: string[], allowExtra = false): { x: Float64Array; ids: string[]; n: number } {
  const t = readCsv(file);
  const missing = features.filter((f) => !t.columns.includes(f));
  if (missing.length) throw new Error(`${file}: missing feature column(s) ${missing.join(', ')} (the model's features: ${features.join(', ')})`);
  const extra = t.columns.filter((c) => c !== 'id' && !features.includes(c));
  if (extra.length && !allowExtra) throw new Error(`${file}: unknown column(s) ${extra.join(', ')} (allowed: id and the model's features; pass --allow-extra-columns to ignore others)`);
  const n = t.rows.length;
  if (n === 0) throw new Error(`${file}: no observations (no data rows)`);
  const F = features.length;
  const x = new Float64Array(n * F);
  const hasId = t.columns.includes('id');
  const ids: string[] = [];
  for (let r = 0; r < n; r++) {
    for (let f = 0; f < F; f++) x[r * F + f] = numberCell(t, r, features[f]);
    ids.push(hasId ? t.rows[r].id : String(r));
  }
  return { x, ids, n };
}

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description('posterior samples theta ~ q(theta | x) of a trained model for each observation of a CSV table')
    .requiredOption('--model <dir>', 'model folder (config.json + weights.safetensors)')
    .requiredOption('--x <file>', "observations CSV: a column per model feature, optional id")
    .requiredOption('--n <m>', 'samples per observation', positiveInt('--n'))
    .requiredOption('--out <file>', 'samples CSV (id, sample, parameters...)')
    .option('--seed <n>', 'sampling seed', nonNegativeInt('--seed'), 0)
    .option('--engine <name>', 'cpu or gpu', 'cpu')
    .option('--summary <file>', 'also write per-observation mean, std and 16/50/84 % quantiles')
    .option('--max-draws <k>', 'rejection cap: at most k x n candidate draws per observation', positiveInt('--max-draws'), 100)
    .option('--no-bounds', 'keep samples outside the prior bounds (no rejection)')
    .option('--log-prob', 'add a log_prob column (log q(theta | x) of the flow)')
    .option('--allow-extra-columns', 'ignore columns of --x that are not model features')
    .action(async (o: SampleCliOptions, cmd: Command) => {
      const kind = parseEngineKind(o.engine);
      const { flow, config } = await loadModelDir(o.model);
      const features = config.context.map((c) => c.name);
      const names = config.parameters.map((p) => p.name);
      const obs = readObservations(o.x, features, o.allowExtraColumns);
      const engine = await createFlowEngine(kind, flow, kind === 'gpu' ? { device: deviceOptions(cmd) } : {});
      const P = names.length;
      const F = features.length;
      const M = o.n;
      const bounds = o.bounds ? boundsFromParameters(config.parameters) : null;
      const tmp = `${o.out}.tmp-${process.pid}`;
      const summaryRows: (string | number)[][] = [];
      const probs = [0.16, 0.5, 0.84];
      let cappedTotal = 0;
      const cappedIds: string[] = [];
      let written = 0;
      const fd = openSync(tmp, 'w');
      try {
        const header = ['id', 'sample', ...names, ...(o.logProb ? ['log_prob'] : [])];
        writeSync(fd, stringify([header]));
        // Observations in chunks of about 2^20 samples (memory), each chunk one samplePosterior call.
        const chunk = Math.max(1, Math.floor((1 << 20) / M));
        for (let s = 0; s < obs.n; s += chunk) {
          const e = Math.min(obs.n, s + chunk);
          const res = await samplePosterior(engine, obs.x.subarray(s * F, e * F), e - s, M, {
            seed: o.seed,
            bounds,
            maxDrawsPerSample: o.maxDraws,
            obsOffset: s,
            onWarning: () => {},
          });
          cappedTotal += res.capped.length;
          for (const c of res.capped) if (cappedIds.length < 5) cappedIds.push(obs.ids[s + c]);
          const rows: string[][] = [];
          for (let i = 0; i < e - s; i++)
            for (let j = 0; j < M; j++) {
              const r = i * M + j;
              const row = [obs.ids[s + i], String(j)];
              for (let p = 0; p < P; p++) row.push(cell(res.theta[r * P + p]));
              if (o.logProb) row.push(cell(res.logProb[r]));
              rows.push(row);
            }
          writeSync(fd, stringify(rows));
          written += rows.length;
          if (o.summary) {
            const sm = summarizeSamples(res, probs);
            for (let i = 0; i < e - s; i++) {
              const row: (string | number)[] = [obs.ids[s + i], res.accepted[i]];
              for (let p = 0; p < P; p++) {
                row.push(cell(sm.mean[i * P + p]), cell(sm.std[i * P + p]));
                for (let q = 0; q < probs.length; q++) row.push(cell(sm.quantiles[q][i * P + p]));
              }
              summaryRows.push(row);
            }
          }
        }
      } catch (e) {
        closeSync(fd);
        rmSync(tmp, { force: true });
        await engine.dispose();
        throw e;
      }
      closeSync(fd);
      renameSync(tmp, o.out);
      await engine.dispose();
      if (o.summary) {
        const cols = ['id', 'n_accepted'];
        for (const nm of names) cols.push(`${nm}_mean`, `${nm}_std`, `${nm}_q16`, `${nm}_q50`, `${nm}_q84`);
        const stmp = `${o.summary}.tmp-${process.pid}`;
        const sfd = openSync(stmp, 'w');
        try {
          writeSync(sfd, stringify([cols, ...summaryRows.map((r) => r.map(String))]));
        } finally {
          closeSync(sfd);
        }
        renameSync(stmp, o.summary);
      }
      if (cappedTotal) {
        process.stderr.write(
          `sample: warning: ${cappedTotal} of ${obs.n} observations hit the cap of ${o.maxDraws} draws per sample before ${M} samples fell inside the prior bounds; ` +
            `their missing samples are nan (observations: ${cappedIds.join(', ')}${cappedTotal > cappedIds.length ? ', ...' : ''})\n`,
        );
      }
      process.stderr.write(`sample: ${written} samples of ${obs.n} observations written to ${o.out}${o.summary ? ` (summary: ${o.summary})` : ''}\n`);
    });
}
