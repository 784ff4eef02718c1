/**
 * `synference validate` end to end: a tiny model trained quickly with the CPU engine on a tiny
 * library (redshift and mass from three noisy features, fluxes/errors for S/N), validated on a
 * held-out library that also holds a row with NaN features and a row far outside the training data
 * (its sampling hits the cap). The command is registered on a program built like
 * src/cli/main.ts's and run in-process (exit codes 0 / 1 / 2), so the test does not depend on
 * main.ts wiring it in. Runtime: ~10 s on 2 cores (training dominates).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { registerValidate } from '../../src/cli/commands/validate.js';
import { RngPurpose, standardNormal, uniform } from '../../src/flow/rng.js';
import { LibraryWriter } from '../../src/io/library/index.js';
import { trainFromLibrary } from '../../src/train/library.js';
import { parseValidationMetrics } from '../../src/validate/schema.js';
import { validateModel } from '../../src/validate/validate.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'validate-'));
const trainLib = path.join(tmp, 'train.h5');
const testLib = path.join(tmp, 'test.h5');
const model = path.join(tmp, 'model');

const Z = { low: 0.2, high: 4 };
const MASS = { low: 8, high: 11 };

/** Rows: redshift ~ U(0.2, 4), log10_mass ~ U(8, 11); x = (z, mass, z + mass) + noise; fluxes 10^(mass - 8) x (1, 2), errors 1. */
async function writeLibrary(out: string, n: number, seed: number, opts: { thetaNames?: string[]; special?: boolean } = {}): Promise<void> {
  const theta = new Float64Array(n * 2);
  const x = new Float64Array(n * 3);
  const fluxes = new Float64Array(n * 2);
  const errors = new Float64Array(n * 2).fill(1);
  for (let r = 0; r < n; r++) {
    const z = Z.low + (Z.high - Z.low) * uniform(seed, RngPurpose.user, 2 * r);
    const m = MASS.low + (MASS.high - MASS.low) * uniform(seed, RngPurpose.user, 2 * r + 1);
    theta[2 * r] = z;
    theta[2 * r + 1] = m;
    const e = (k: number) => standardNormal(seed + 1, RngPurpose.user, 3 * r + k);
    x.set([z + 0.1 * e(0), m + 0.15 * e(1), z + m + 0.2 * e(2)], 3 * r);
    fluxes.set([10 ** (m - 8), 2 * 10 ** (m - 8)], 2 * r);
  }
  if (opts.special) {
    x[3 * 1 + 1] = NaN; // row 1: a missing feature
    x.set([40, -40, 300], 3 * 2); // row 2: far outside the training data
  }
  const w = await LibraryWriter.open({
    out,
    n,
    chunkSize: n,
    seed,
    config: { parameters: { redshift: { prior: 'uniform', ...Z }, log10_mass: { prior: 'uniform', ...MASS } } },
    columns: { theta: opts.thetaNames ?? ['redshift', 'log10_mass'], x: ['x_z', 'x_m', 'x_zm'], fluxes: ['F200W', 'F444W'], errors: ['F200W', 'F444W'] },
    overwrite: true,
    onWarning: () => {},
  });
  for (const i of w.pendingChunks()) await w.writeChunk(i, { theta, x, fluxes, errors });
  await w.finalize();
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stderr = '';
  let stdout = '';
  const program = new Command('synference')
    .option('--adapter <name>')
    .option('--gpu-backend <name>')
    .option('--power-preference <pref>')
    .exitOverride()
    .configureOutput({ writeErr: (s) => (stderr += s), writeOut: (s) => (stderr += s) });
  registerValidate(program);
  const se = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    stderr += String(s);
    return true;
  });
  const so = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    stdout += String(s);
    return true;
  });
  try {
    await program.parseAsync(['node', 'synference', ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.exitCode === 0 ? 0 : 2, stdout, stderr };
    return { code: 1, stdout, stderr: stderr + `synference: ${(e as Error).message}\n` };
  } finally {
    se.mockRestore();
    so.mockRestore();
  }
}

describe('synference validate', () => {
  beforeAll(async () => {
    await writeLibrary(trainLib, 1500, 31);
    await writeLibrary(testLib, 150, 77, { special: true });
    await trainFromLibrary({
      library: trainLib,
      out: model,
      flow: { transforms: 3, hidden: 16, blocks: 1, bins: 8 },
      options: { lr: 0.01, valFraction: 0.1, maxEpochs: 25, batchSize: 128, seed: 2 },
      engine: 'cpu',
    });
  }, 120_000);

  it('writes metrics.json and prints the table', async () => {
    const out = path.join(tmp, 'val');
    const r = await cli(['validate', '--model', model, '--library', testLib, '--out', out, '--samples', '200', '--seed', '4', '--max-draws', '5', '--snr-edges', '0,30,300,inf']);
    expect(r.code, r.stderr).toBe(0);
    // The table.
    expect(r.stdout).toMatch(/^parameter +n +R2 +RMSE +bias +outl +cov68 +cov95 +TARP ATC +rank p/);
    expect(r.stdout).toMatch(/\nredshift +148 /);
    expect(r.stdout).toMatch(/\nlog10_mass +148 /);
    expect(r.stdout).toMatch(/\njoint \(TARP\) +148 .*KS p/);
    expect(r.stdout).toMatch(/redshift \(redshift\): NMAD \d/);
    expect(r.stdout).toMatch(/objects: 148 used of 150 \(excluded: 1 hit the sampling cap, 0 non-finite truth, 1 non-finite features\); 200 samples each/);
    expect(r.stderr).toMatch(/warning: 1 of 150 objects hit the cap of 5 draws per sample .*rows 2\)/);
    expect(r.stderr).toMatch(/warning: 1 of 150 objects have NaN\/inf features/);
    expect(r.stderr).toMatch(/validate: sampled 150\/150 objects/);
    expect(r.stderr).toMatch(/validate: wrote .*metrics\.json/);

    const m = parseValidationMetrics(JSON.parse(readFileSync(path.join(out, 'metrics.json'), 'utf8')));
    expect(m.format).toBe('synference-validation-metrics');
    expect(m.model.parameters).toEqual(['redshift', 'log10_mass']);
    expect(m.model.context).toEqual(['x_z', 'x_m', 'x_zm']);
    expect(m.library).toMatchObject({ file: path.resolve(testLib), rows: 150, selection: 'all', first: null });
    expect(m.sampling).toMatchObject({ engine: 'cpu', samplesPerObject: 200, seed: 4, maxDrawsPerSample: 5 });
    expect(m.sampling.acceptanceRate!).toBeGreaterThan(0.5);
    expect(m.objects.excludedRows).toEqual({ nonFiniteSamples: [2], nonFiniteTruth: [], nonFiniteX: [1] });
    expect(m.objects.row.slice(0, 3)).toEqual([0, 3, 4]);
    for (const p of m.parameters) {
      expect(p.objects.truth).toHaveLength(148);
      expect(p.objects.rank.every((k) => k >= 0 && k <= 200)).toBe(true);
      expect(p.coverage.levels).toHaveLength(99);
      expect(p.tarp.alpha).toHaveLength(101);
      expect(p.ranks.n).toBe(148);
    }
    expect(m.parameters[0]).toMatchObject({ name: 'redshift', low: 0.2, high: 4 });
    // The features pin both parameters down (noise 0.1 in z and 0.15 in mass over ranges 3.8 and 3).
    expect(m.parameters[0].metrics.r2!).toBeGreaterThan(0.9);
    expect(m.parameters[1].metrics.r2!).toBeGreaterThan(0.9);
    // A short training run is roughly calibrated: coverage within 0.2 of nominal (148 objects: binomial sd 0.04).
    for (const p of m.parameters) {
      expect(Math.abs(p.metrics.coverage68! - 0.68)).toBeLessThan(0.2);
      expect(Math.abs(p.metrics.coverage95! - 0.95)).toBeLessThan(0.2);
    }
    expect(m.redshift).toMatchObject({ parameter: 'redshift', n: 148, outlierThreshold: 0.15 });
    expect(m.redshift!.nmad!).toBeLessThan(0.2);
    expect(m.tarp.box).toEqual({ low: [0.2, 8], high: [4, 11] });
    // S/N: total = sqrt(1 + 4) 10^(m - 8), from 2.2 to 2236.
    expect(m.snr!.definition).toMatch(/^total/);
    expect(m.snr!.edges).toEqual([0, 30, 300, null]);
    expect(m.snr!.bins.map((b) => b.n).reduce((a, b) => a + b, 0)).toBe(148);
    expect(m.snr!.bins.every((b) => b.n > 10)).toBe(true);
    expect(Object.keys(m.snr!.bins[0].parameters)).toEqual(['redshift', 'log10_mass']);
    expect(m.warnings.length).toBe(2);
  });

  it('is deterministic for a seed and independent of the sampling chunk size; --n and --json', async () => {
    const a = await validateModel({ model, library: testLib, n: 20, samplesPerObject: 50, seed: 1 });
    const b = await validateModel({ model, library: testLib, n: 20, samplesPerObject: 50, seed: 1, batchObjects: 3 });
    expect(a.metrics.parameters[1].objects).toEqual(b.metrics.parameters[1].objects);
    expect(a.metrics.tarp.ecp).toEqual(b.metrics.tarp.ecp);
    expect(a.file).toBeNull();
    const r = await cli(['validate', '--model', model, '--library', testLib, '--out', path.join(tmp, 'val-n'), '--n', '20', '--samples', '50', '--seed', '1', '--json', '--snr', 'F444W']);
    expect(r.code, r.stderr).toBe(0);
    const m = parseValidationMetrics(JSON.parse(r.stdout));
    expect(m.objects.requested).toBe(20);
    expect(m.library!.first).toBe(20);
    expect(m.snr!.definition).toBe('band F444W: f/sigma');
    expect(m.parameters[1].objects).toEqual(a.metrics.parameters[1].objects);
  });

  it('split "validation" recomputes the training run\'s validation rows; "all" on the training library warns', async () => {
    const v = await validateModel({ model, library: trainLib, split: 'validation', samplesPerObject: 20, snr: 'none' });
    expect(v.rows.length).toBe(150);
    expect(v.metrics.library!.selection).toBe('validation');
    expect(v.metrics.snr).toBeNull();
    const warnings: string[] = [];
    await validateModel({ model, library: trainLib, n: 5, samplesPerObject: 20, onWarning: (w) => warnings.push(w) });
    expect(warnings.join('\n')).toMatch(/is the model's training library: "all" includes the training rows/);
    await expect(validateModel({ model, library: testLib, split: 'validation', samplesPerObject: 20 })).rejects.toThrow(/has 150 rows, but the model was trained on a library of 1500 rows/);
  });

  it('an MDN model (flow head mdn) validates like the NSF: calibrated enough, deterministic', async () => {
    const mdn = path.join(tmp, 'model-mdn');
    await trainFromLibrary({
      library: trainLib,
      out: mdn,
      flow: { head: 'mdn', components: 3, hidden: 16, blocks: 1 },
      options: { lr: 0.01, valFraction: 0.1, maxEpochs: 25, batchSize: 128, seed: 2 },
      engine: 'cpu',
    });
    const a = await validateModel({ model: mdn, library: testLib, samplesPerObject: 200, seed: 4, snr: 'none' });
    const m = a.metrics;
    expect(m.sampling).toMatchObject({ engine: 'cpu', samplesPerObject: 200 });
    expect(m.objects.excludedRows).toEqual({ nonFiniteSamples: [2], nonFiniteTruth: [], nonFiniteX: [1] });
    // Same thresholds as the NSF above (148 objects: binomial sd of a coverage 0.04); measured R^2
    // 0.99 / 0.98, coverage68 0.71 / 0.72, coverage95 0.97 / 0.91.
    for (const p of m.parameters) {
      expect(p.metrics.r2!).toBeGreaterThan(0.9);
      expect(Math.abs(p.metrics.coverage68! - 0.68)).toBeLessThan(0.2);
      expect(Math.abs(p.metrics.coverage95! - 0.95)).toBeLessThan(0.2);
    }
    const b = await validateModel({ model: mdn, library: testLib, samplesPerObject: 200, seed: 4, snr: 'none', batchObjects: 7 });
    expect(b.metrics.parameters[0].objects).toEqual(m.parameters[0].objects);
  });

  it('a library whose columns do not match the model: a clear error', async () => {
    const bad = path.join(tmp, 'bad.h5');
    await writeLibrary(bad, 10, 5, { thetaNames: ['z', 'log10_mass'] });
    const r = await cli(['validate', '--model', model, '--library', bad, '--out', path.join(tmp, 'never')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.h5: dataset theta has no column\(s\) redshift that the model .* infers \(model parameters: redshift, log10_mass; library theta columns: z, log10_mass\)/);
    expect(existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  const bad: [string, string[], number, RegExp][] = [
    ['--engine tpu', ['--engine', 'tpu'], 1, /engine must be one of cpu, gpu, got "tpu"/],
    ['--samples 1', ['--samples', '1'], 2, /--samples must be an integer >= 2, got "1"/],
    ['--samples x', ['--samples', 'x'], 2, /--samples must be a positive integer, got "x"/],
    ['--n 0', ['--n', '0'], 2, /--n must be a positive integer, got "0"/],
    ['--seed -1', ['--seed', '-1'], 2, /--seed must be a non-negative integer, got "-1"/],
    ['--max-draws 0', ['--max-draws', '0'], 2, /--max-draws must be a positive integer/],
    ['--split test', ['--split', 'test'], 1, /--split must be all or validation, got "test"/],
    ['--snr-edges 5,1', ['--snr-edges', '5,1'], 2, /--snr-edges must be at least two strictly ascending numbers/],
    ['--snr-edges a,b', ['--snr-edges', 'a,b'], 2, /--snr-edges must be at least two strictly ascending numbers/],
    ['--snr F999W', ['--snr', 'F999W'], 1, /--snr F999W: no such band in .*test\.h5 \(bands: F200W, F444W; or use total, median, max, none\)/],
  ];
  for (const [what, extra, code, re] of bad) {
    it(`bad argument: ${what}`, async () => {
      const r = await cli(['validate', '--model', model, '--library', testLib, '--out', path.join(tmp, 'bad-args'), '--samples', '10', ...extra]);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(re);
    });
  }

  it('missing options, model or library', async () => {
    let r = await cli(['validate', '--library', testLib, '--out', tmp]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/required option '--model <dir>' not specified/);
    r = await cli(['validate', '--model', model, '--library', testLib]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/required option '--out <dir>' not specified/);
    r = await cli(['validate', '--model', path.join(tmp, 'nomodel'), '--library', testLib, '--out', tmp]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nomodel: no such model folder/);
    r = await cli(['validate', '--model', model, '--library', path.join(tmp, 'none.h5'), '--out', tmp]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/none\.h5: no such file/);
    writeFileSync(path.join(tmp, 'text.h5'), 'not hdf5');
    r = await cli(['validate', '--model', model, '--library', path.join(tmp, 'text.h5'), '--out', tmp]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not an HDF5 file/);
    await expect(validateModel({ model, library: testLib, samplesPerObject: 1 })).rejects.toThrow(/validate: samplesPerObject must be an integer >= 2/);
    await expect(validateModel({ model, library: testLib, split: 'x' as 'all' })).rejects.toThrow(/split must be "all" or "validation"/);
  });
});
