/**
 * `synference train` and `synference sample` end to end on a tiny library. The commands are
 * registered on a program built like src/cli/main.ts's (same global options, exit codes 0 / 1 / 2)
 * and run in-process, so this test does not depend on main.ts wiring them in.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { registerSample } from '../../src/cli/commands/sample.js';
import { registerTrain } from '../../src/cli/commands/train.js';
import { CHECKPOINT_FILE } from '../../src/train/checkpoint.js';
import { writeLinearGaussianLibrary } from '../train/helpers.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'flowcli-'));
const lib = path.join(tmp, 'lib.h5');
const model = path.join(tmp, 'model');
const flowYaml = path.join(tmp, 'flow.yaml');

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const program = new Command('synference')
    .option('--adapter <name>')
    .option('--gpu-backend <name>')
    .option('--power-preference <pref>')
    .exitOverride()
    .configureOutput({ writeErr: (s) => (stderr += s), writeOut: (s) => (stderr += s) });
  registerTrain(program);
  registerSample(program);
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  });
  try {
    await program.parseAsync(['node', 'synference', ...args]);
    return { code: 0, stderr };
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.exitCode === 0 ? 0 : 2, stderr };
    return { code: 1, stderr: stderr + `synference: ${(e as Error).message}\n` };
  } finally {
    spy.mockRestore();
  }
}

const csv = (file: string) => parse(readFileSync(file, 'utf8'), { columns: true }) as Record<string, string>[];

describe('synference train / sample', () => {
  beforeAll(async () => {
    // theta ~ U(-2, 2)^2 (priors in the library config), x = theta + 0.3 eps.
    await writeLinearGaussianLibrary(lib, { n: 800, seed: 21, P: 2, F: 2, noise: 0.3, uniform: { low: -2, high: 2 }, withPriorConfig: true });
    writeFileSync(flowYaml, 'flow:\n  transforms: 2\n  hidden: 12\n  blocks: 1\n  bins: 6\ntrain:\n  lr: 0.005\n  valFraction: 0.2\n');
  });

  it('train writes a model folder; sample honours the prior bounds and writes samples + summary', async () => {
    const t = await cli(['train', '--library', lib, '--out', model, '--config', flowYaml, '--epochs', '6', '--batch-size', '64', '--seed', '3', '--checkpoint-every', '2']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/epoch +0 +train \d/);
    expect(t.stderr).toMatch(/train: wrote .*model \(6 epochs, stopped by maxEpochs/);
    const cfg = JSON.parse(readFileSync(path.join(model, 'config.json'), 'utf8'));
    expect(cfg.flow).toMatchObject({ transforms: 2, hidden: 12, blocks: 1, bins: 6, thetaDim: 2, contextDim: 2, seed: 3 });
    expect(cfg.parameters).toEqual([
      { name: 'a0', unit: '', low: -2, high: 2, boundsSource: 'prior' },
      { name: 'a1', unit: '', low: -2, high: 2, boundsSource: 'prior' },
    ]);
    expect(cfg.training.options).toMatchObject({ lr: 0.005, valFraction: 0.2, batchSize: 64, maxEpochs: 6 });
    expect(cfg.training.nVal).toBe(160);
    expect(existsSync(path.join(model, CHECKPOINT_FILE))).toBe(false);

    // Observations at the edge of the prior: the flow puts mass outside [-2, 2], which is rejected.
    const obs = path.join(tmp, 'obs.csv');
    writeFileSync(obs, 'id,obs1,obs0\ngal-a,0.1,0.2\ngal-b,1.9,-1.95\n');
    const out = path.join(tmp, 'samples.csv');
    const summary = path.join(tmp, 'summary.csv');
    const s = await cli(['sample', '--model', model, '--x', obs, '--n', '300', '--out', out, '--seed', '1', '--summary', summary, '--log-prob']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/sample: 600 samples of 2 observations written/);
    const rows = csv(out);
    expect(Object.keys(rows[0])).toEqual(['id', 'sample', 'a0', 'a1', 'log_prob']);
    expect(rows).toHaveLength(600);
    expect(rows[0].id).toBe('gal-a');
    expect(rows[300]).toMatchObject({ id: 'gal-b', sample: '0' });
    for (const r of rows) {
      for (const c of ['a0', 'a1']) {
        const v = Number(r[c]);
        expect(v).toBeGreaterThanOrEqual(-2);
        expect(v).toBeLessThanOrEqual(2);
      }
      expect(Number.isFinite(Number(r.log_prob))).toBe(true);
    }
    // The posterior follows x (column order of obs.csv does not matter: obs0 = 0.2 -> a0).
    const sm = csv(summary);
    expect(sm.map((r) => r.id)).toEqual(['gal-a', 'gal-b']);
    expect(Object.keys(sm[0]).slice(0, 7)).toEqual(['id', 'n_accepted', 'a0_mean', 'a0_std', 'a0_q16', 'a0_q50', 'a0_q84']);
    expect(Number(sm[0].n_accepted)).toBe(300);
    expect(Number(sm[1].a0_mean)).toBeLessThan(Number(sm[0].a0_mean));
    expect(Number(sm[1].a1_mean)).toBeGreaterThan(Number(sm[0].a1_mean));
    // Same seed, same samples.
    const out2 = path.join(tmp, 'samples2.csv');
    expect((await cli(['sample', '--model', model, '--x', obs, '--n', '300', '--out', out2, '--seed', '1', '--log-prob'])).code).toBe(0);
    expect(readFileSync(out2, 'utf8')).toBe(readFileSync(out, 'utf8'));

    // The cap: an observation far outside the training data gets a warning and nan samples.
    const far = path.join(tmp, 'far.csv');
    writeFileSync(far, 'obs0,obs1\n40,-40\n0,0\n');
    const f = await cli(['sample', '--model', model, '--x', far, '--n', '20', '--out', path.join(tmp, 'far-samples.csv'), '--max-draws', '3']);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stderr).toMatch(/warning: 1 of 2 observations hit the cap of 3 draws per sample .*observations: 0\)/);
    const fr = csv(path.join(tmp, 'far-samples.csv'));
    expect(fr[0].id).toBe('0');
    expect(fr.slice(0, 20).every((r) => r.a0 === 'nan')).toBe(true);
    expect(fr.slice(20).every((r) => r.a0 !== 'nan')).toBe(true);
  });

  it('train --config with an MDN head (head: mdn) writes an MDN model folder; sample draws from it reproducibly', async () => {
    const mdnYaml = path.join(tmp, 'mdn.yaml');
    writeFileSync(mdnYaml, 'flow:\n  head: mdn\n  components: 3\n  hidden: 12\n  blocks: 1\ntrain:\n  lr: 0.005\n  valFraction: 0.2\n');
    const mdnModel = path.join(tmp, 'model-mdn');
    const t = await cli(['train', '--library', lib, '--out', mdnModel, '--config', mdnYaml, '--epochs', '8', '--batch-size', '64', '--seed', '3', '--engine', 'cpu']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/train: wrote .*model-mdn \(8 epochs/);
    const cfg = JSON.parse(readFileSync(path.join(mdnModel, 'config.json'), 'utf8'));
    expect(cfg.flow).toMatchObject({ head: 'mdn', components: 3, hidden: 12, blocks: 1, thetaDim: 2, contextDim: 2, seed: 3 });
    expect(cfg.training.engine).toBe('cpu');
    const hist = cfg.training.history as { valLoss: number }[];
    expect(hist[hist.length - 1].valLoss).toBeLessThan(hist[0].valLoss);

    const obs = path.join(tmp, 'obs-mdn.csv');
    writeFileSync(obs, 'id,obs0,obs1\nlow,-1,-1\nhigh,1,1\n');
    const out = path.join(tmp, 'samples-mdn.csv');
    const summary = path.join(tmp, 'summary-mdn.csv');
    const s = await cli(['sample', '--model', mdnModel, '--x', obs, '--n', '200', '--out', out, '--seed', '2', '--summary', summary, '--log-prob']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/sample: 400 samples of 2 observations written/);
    const rows = csv(out);
    expect(rows).toHaveLength(400);
    for (const r of rows) {
      for (const c of ['a0', 'a1']) expect(Math.abs(Number(r[c]))).toBeLessThanOrEqual(2);
      expect(Number.isFinite(Number(r.log_prob))).toBe(true);
    }
    // x = theta + 0.3 eps: the posterior follows the observation.
    const sm = csv(summary);
    expect(Number(sm[0].a0_mean)).toBeLessThan(Number(sm[1].a0_mean) - 1);
    expect(Number(sm[0].a1_mean)).toBeLessThan(Number(sm[1].a1_mean) - 1);
    const out2 = path.join(tmp, 'samples-mdn2.csv');
    expect((await cli(['sample', '--model', mdnModel, '--x', obs, '--n', '200', '--out', out2, '--seed', '2', '--log-prob'])).code).toBe(0);
    expect(readFileSync(out2, 'utf8')).toBe(readFileSync(out, 'utf8'));

    // A bad head / components in the config file names the key.
    const bad = path.join(tmp, 'bad-mdn.yaml');
    for (const [text, re] of [
      ['flow:\n  head: gmm\n', /head must be 'nsf' or 'mdn'/],
      ['flow:\n  head: mdn\n  components: 0\n', /components must be an integer in \[1, 1000\]/],
    ] as const) {
      writeFileSync(bad, text);
      const r = await cli(['train', '--library', lib, '--out', path.join(tmp, 'never-mdn'), '--config', bad]);
      expect(r.code, text).toBe(1);
      expect(r.stderr, text).toMatch(re);
    }
  });

  it('an existing model, a checkpoint without --resume, and resume with other options are refused clearly', async () => {
    let r = await cli(['train', '--library', lib, '--out', model, '--epochs', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already holds a trained model .* pass --overwrite/);

    // An interrupted run: a 4-epoch run's checkpoint after epoch 2, without its config.json.
    const { trainFromLibrary } = await import('../../src/train/library.js');
    const m3 = path.join(tmp, 'model3');
    let ck: Buffer | null = null;
    await trainFromLibrary({
      library: lib,
      out: m3,
      flow: { transforms: 2, hidden: 12, blocks: 1, bins: 6 },
      options: { lr: 0.005, valFraction: 0.2, maxEpochs: 4, checkpointEvery: 1 },
      onCheckpoint: (e) => {
        if (e === 2) ck = readFileSync(path.join(m3, CHECKPOINT_FILE));
      },
    });
    const { rmSync } = await import('node:fs');
    rmSync(path.join(m3, 'config.json'));
    writeFileSync(path.join(m3, CHECKPOINT_FILE), ck!);
    r = await cli(['train', '--library', lib, '--out', m3, '--config', flowYaml, '--epochs', '4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds a checkpoint of an interrupted training run .* pass --resume to continue it or --overwrite/);
    r = await cli(['train', '--library', lib, '--out', m3, '--config', flowYaml, '--epochs', '4', '--resume', '--lr', '0.001']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/checkpoint belongs to another run \(different lr \(0.005, now 0.001\)\)/);
    r = await cli(['train', '--library', lib, '--out', m3, '--config', flowYaml, '--epochs', '4', '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/train: resuming from .*checkpoint.safetensors: 2 epochs done/);
    expect(existsSync(path.join(m3, 'config.json'))).toBe(true);
  });

  const badTrain: [string, string[], number, RegExp][] = [
    ['--engine tpu', ['--engine', 'tpu'], 1, /engine must be one of cpu, gpu, got "tpu"/],
    ['--lr -1', ['--lr', '-1'], 2, /--lr must be a number > 0, got "-1"/],
    ['--epochs 0', ['--epochs', '0'], 2, /--epochs must be a positive integer, got "0"/],
    ['--seed x', ['--seed', 'x'], 2, /--seed must be a non-negative integer, got "x"/],
    ['--val-fraction 1', ['--val-fraction', '1'], 2, /--val-fraction must be a number in \(0, 1\)/],
    ['--schedule bad', ['--schedule', 'linear'], 1, /--schedule linear: kind: schedule kind must be one of constant, cosine, step, plateau/],
    ['--schedule step without everyEpochs', ['--schedule', 'step'], 1, /everyEpochs: Required/],
    ['--resume --overwrite', ['--resume', '--overwrite'], 1, /--resume and --overwrite exclude each other/],
    ['--weights-dtype f16', ['--weights-dtype', 'f16'], 1, /--weights-dtype must be f32 or f64/],
  ];
  for (const [what, extra, code, re] of badTrain) {
    it(`train: ${what}`, async () => {
      const r = await cli(['train', '--library', lib, '--out', path.join(tmp, 'never'), ...extra]);
      expect(r.code).toBe(code);
      expect(r.stderr).toMatch(re);
    });
  }

  it('train: missing library, not HDF5, bad config files', async () => {
    let r = await cli(['train', '--library', path.join(tmp, 'none.h5'), '--out', path.join(tmp, 'n1')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/none\.h5: no such file/);
    writeFileSync(path.join(tmp, 'text.h5'), 'hello');
    r = await cli(['train', '--library', path.join(tmp, 'text.h5'), '--out', path.join(tmp, 'n2')]);
    expect(r.stderr).toMatch(/not an HDF5 file/);
    const cfgs: [string, RegExp][] = [
      ['flow:\n  hiden: 3\n', /Unrecognized key\(s\) in object: 'hiden'/],
      ['flow:\n  bins: 1\n', /bins must be an integer in \[2, 256\]/],
      ['train:\n  patience: 0\n', /patience must be an integer >= 1/],
      ['model: {}\n', /unknown top-level key \(allowed: flow, train\)/],
      ['flow:\n  thetaDim: 3\n', /thetaDim \/ flow.contextDim come from the library/],
      ['flow: [1\n', /cannot parse/],
    ];
    for (const [text, re] of cfgs) {
      const f = path.join(tmp, 'bad.yaml');
      writeFileSync(f, text);
      r = await cli(['train', '--library', lib, '--out', path.join(tmp, 'n3'), '--config', f]);
      expect(r.code, text).toBe(1);
      expect(r.stderr, text).toMatch(re);
    }
    r = await cli(['train', '--library', lib]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/required option '--out <dir>' not specified/);
  });

  it('sample --engine gpu draws the same samples as the CPU engine (same seed, f32 tolerance)', async () => {
    const obs = path.join(tmp, 'obs-gpu.csv');
    writeFileSync(obs, 'obs0,obs1\n0,0\n0.5,-1\n');
    const outCpu = path.join(tmp, 'samples-cpu.csv');
    const outGpu = path.join(tmp, 'samples-gpu.csv');
    expect((await cli(['sample', '--model', model, '--x', obs, '--n', '50', '--out', outCpu, '--seed', '3'])).code).toBe(0);
    const r = await cli(['sample', '--model', model, '--x', obs, '--n', '50', '--out', outGpu, '--seed', '3', '--engine', 'gpu']);
    expect(r.code, r.stderr).toBe(0);
    const rows = (f: string) => readFileSync(f, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
    const a = rows(outCpu);
    const b = rows(outGpu);
    expect(b.length).toBe(a.length);
    // Same base normals, f32 network: samples agree to ~1e-5 of their scale (test/flow/gpuEngine.test.ts).
    a.forEach((row, i) => row.forEach((v, j) => expect(Math.abs(b[i][j] - v)).toBeLessThan(1e-3 * (1 + Math.abs(v)))));
  });

  it('sample: bad arguments and files', async () => {
    const obs = path.join(tmp, 'obs-ok.csv');
    writeFileSync(obs, 'obs0,obs1\n0,0\n');
    const out = path.join(tmp, 'bad-samples.csv');
    const cases: [string[], number, RegExp][] = [
      [['--model', model, '--x', obs, '--n', '0', '--out', out], 2, /--n must be a positive integer, got "0"/],
      [['--model', path.join(tmp, 'nomodel'), '--x', obs, '--n', '5', '--out', out], 1, /nomodel: no such model folder/],
      [['--model', model, '--x', path.join(tmp, 'none.csv'), '--n', '5', '--out', out], 1, /cannot read .*none\.csv/],
      [['--model', model, '--x', obs, '--n', '5', '--out', out, '--seed', '-1'], 2, /--seed must be a non-negative integer/],
    ];
    for (const [args, code, re] of cases) {
      const r = await cli(['sample', ...args]);
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(re);
    }
    const tables: [string, RegExp][] = [
      ['obs0\n1\n', /missing feature column\(s\) obs1 \(the model's features: obs0, obs1\)/],
      ['obs0,obs1,mag\n1,2,3\n', /unknown column\(s\) mag .*--allow-extra-columns/],
      ['obs0,obs1\n1,abc\n', /row 2, column "obs1": "abc" is not a number/],
      ['obs0,obs1\n1,\n', /row 2, column "obs1": empty value/],
      ['obs0,obs1\n', /no observations/],
    ];
    for (const [text, re] of tables) {
      const f = path.join(tmp, 'bad-obs.csv');
      writeFileSync(f, text);
      const r = await cli(['sample', '--model', model, '--x', f, '--n', '5', '--out', out]);
      expect(r.code, text).toBe(1);
      expect(r.stderr, text).toMatch(re);
    }
    expect(existsSync(out)).toBe(false);
    // Extra columns may be allowed explicitly.
    const f = path.join(tmp, 'extra-obs.csv');
    writeFileSync(f, 'obs0,obs1,mag\n1,2,3\n');
    const r = await cli(['sample', '--model', model, '--x', f, '--n', '5', '--out', out, '--allow-extra-columns']);
    expect(r.code, r.stderr).toBe(0);
    expect(csv(out)).toHaveLength(5);
  });
});
