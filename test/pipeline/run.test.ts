/** `synference run` (npm start) at a tiny size: every step runs and writes metrics.json + report.html. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIN_TRAIN_S, RESERVE_FINAL_S, RESERVE_PER_MODEL_S, trainSecondsFor } from '../../src/pipeline/endToEnd.js';

const bin = path.resolve(__dirname, '../../bin/synference.js');

describe('synference run', () => {
  it('grid -> simulate -> train models 1 and 2 -> validate -> fit a demo catalogue -> report, at a tiny size', () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'run-')), 'run');
    const r = spawnSync(process.execPath, [bin, 'run', '--out', out, '--n', '2000', '--n-test', '400', '--train-seconds', '5', '--validate-n', '60', '--samples', '60'], {
      encoding: 'utf8',
      timeout: 400_000,
    });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const m = JSON.parse(readFileSync(path.join(out, 'metrics.json'), 'utf8'));
    expect(Object.keys(m.models)).toEqual(['model1', 'model2', 'demoCatalogue']);
    // The reference study's detection selection: more galaxies drawn than kept.
    expect(m.simulation.selection.minSnr).toBe(5);
    expect(m.simulation.drawn.train).toBeGreaterThan(2000);
    expect(m.simulation.acceptance).toBeGreaterThan(0.2);
    expect(m.simulation.acceptance).toBeLessThan(1);
    expect(m.models.model1.training.timeBudgetS).toBe(5);
    // The demo catalogue of mock galaxies (known truth) is fitted like a real one.
    expect(m.models.demoCatalogue.fitted).toBeGreaterThan(0);
    expect(m.models.demoCatalogue.r2VsTruth.log10_mass_formed.n).toBe(m.models.demoCatalogue.fitted);
    // Model 1 takes redshift as a feature and infers the derived quantities; Model 2 infers redshift.
    expect(Object.keys(m.models.model1.parameters)).toContain('log10_surviving_mass_msun');
    expect(Object.keys(m.models.model1.parameters)).not.toContain('redshift');
    expect(Object.keys(m.models.model2.parameters)).toContain('redshift');
    for (const model of [m.models.model1, m.models.model2] as { parameters: Record<string, { r2: number | null; coverage68: number | null }> }[]) {
      for (const p of Object.values(model.parameters)) expect(p.coverage68).not.toBeNull();
    }
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toMatch(/reconstructed SED/);
    expect(html).not.toMatch(/https?:\/\//);
    expect(existsSync(path.join(out, 'model1', 'weights.safetensors'))).toBe(true);
  }, 420_000);

  it('splits what is left of the run budget between the models still to train', () => {
    // 840 s budget, 240 s spent simulating, two models: (840 - 240 - reserve) / 2 - per-model reserve.
    expect(trainSecondsFor(840, 240, 2)).toBe(Math.floor((600 - RESERVE_FINAL_S) / 2 - RESERVE_PER_MODEL_S));
    expect(trainSecondsFor(840, 600, 1)).toBe(Math.floor(240 - RESERVE_FINAL_S - RESERVE_PER_MODEL_S));
    // A machine too slow for the budget still trains for a minimum time.
    expect(trainSecondsFor(840, 830, 1)).toBe(MIN_TRAIN_S);
  });

  it('bad arguments name the option', () => {
    const r = spawnSync(process.execPath, [bin, 'run', '--n', '0'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--n must be a positive integer/);
  });
});
