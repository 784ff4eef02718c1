/**
 * `synference simulate` end to end: a 10^4-galaxy library that h5py reads with the documented
 * datasets, and an interrupted run (killed mid-way) that resumes to the same content.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLibrary } from '../../src/io/library/index.js';

const bin = path.resolve(__dirname, '../../bin/synference.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'sim-'));
const config = path.join(tmp, 'model.yaml');
writeFileSync(
  config,
  `grid: bc03
filters: jades14
sfh: quantiles
parameters:
  redshift:          { prior: uniform, low: 0.01, high: 14 }
  log10_mass_formed: { prior: uniform, low: 4, high: 12 }
  log10Z:            { prior: uniform, low: -4, high: -1.39 }
  log10_av:          { prior: uniform, low: -3, high: 0.7 }
  log10_ssfr:        { prior: uniform, low: -12, high: -7 }
  sfh_quantiles:     { prior: dirichlet, alpha: [1, 1, 1, 1] }
noise: { type: depth, depth5SigmaMag: 29.5, errorFloorFrac: 0.05 }
features: { includeRedshift: true }
seed: 11
chunkSize: 1000
`,
);

function simulate(args: string[]) {
  return spawnSync(process.execPath, [bin, 'simulate', '--config', config, '--no-progress', ...args], { encoding: 'utf8', timeout: 600_000 });
}

describe('synference simulate', () => {
  it('writes a 10^4 library that h5py reads with the documented datasets', () => {
    const out = path.join(tmp, 'lib.h5');
    const r = simulate(['--n', '10000', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const py = spawnSync('/usr/bin/python3', ['-c', `
import h5py, json, numpy as np, sys
f = h5py.File(sys.argv[1], 'r')
shapes = {k: list(f[k].shape) for k in f}
assert f['theta'].dtype == np.float32 and f['x'].dtype == np.float32
print(json.dumps({'shapes': shapes, 'theta_cols': list(f['theta'].attrs['columns']), 'x_cols': list(f['x'].attrs['columns']),
  'seed': int(f.attrs['seed']), 'config': json.loads(f.attrs['config'])['sfh'],
  'finite_x': bool(np.isfinite(f['x'][:]).all()), 'finite_fluxes': bool(np.isfinite(f['fluxes'][:]).all())}))
`, out], { encoding: 'utf8' });
    expect(py.status, py.stderr).toBe(0);
    const info = JSON.parse(py.stdout);
    expect(info.shapes).toEqual({ derived: [10000, 8], errors: [10000, 14], fluxes: [10000, 14], theta: [10000, 8], x: [10000, 29] });
    expect(info.theta_cols).toEqual(['redshift', 'log10_mass_formed', 'log10Z', 'log10_av', 'log10_ssfr', 'sfh_t25', 'sfh_t50', 'sfh_t75']);
    expect(info.x_cols[0]).toBe('acs_wfc_f435w_asinh_mag');
    expect(info.x_cols.at(-1)).toBe('redshift');
    expect(info.seed).toBe(11);
    expect(info.config).toBe('quantiles');
    expect(info.finite_x).toBe(true);
    expect(info.finite_fluxes).toBe(true);
  });

  it('resumes after being killed, without redoing finished chunks, to the same content', async () => {
    const ref = path.join(tmp, 'ref.h5');
    expect(simulate(['--n', '4000', '--out', ref]).status).toBe(0);
    const out = path.join(tmp, 'killed.h5');
    // Start, wait for the first finished chunk, kill -9.
    const child = spawn(process.execPath, [bin, 'simulate', '--config', config, '--no-progress', '--n', '4000', '--out', out], { stdio: 'ignore' });
    const parts = `${out}.parts`;
    const t0 = Date.now();
    while (Date.now() - t0 < 300_000) {
      await new Promise((r) => setTimeout(r, 100));
      if (existsSync(parts) && readdirSync(parts).some((f) => f.endsWith('.part'))) break;
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    expect(existsSync(out)).toBe(false);
    const done = readdirSync(parts).filter((f) => f.endsWith('.part')).length;
    expect(done).toBeGreaterThan(0);
    const r = simulate(['--n', '4000', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming .*killed\.h5: \d+ of 4000 galaxies already done/);
    const computed = Number(/\((\d+) computed/.exec(r.stderr)![1]);
    expect(computed).toBeLessThanOrEqual(4000 - 1000 * done);
    const [a, b] = await Promise.all([readLibrary(ref, { optional: ['fluxes', 'errors', 'derived'] }), readLibrary(out, { optional: ['fluxes', 'errors', 'derived'] })]);
    expect(Buffer.from(b.theta.buffer).equals(Buffer.from(a.theta.buffer))).toBe(true);
    expect(Buffer.from(b.x.buffer).equals(Buffer.from(a.x.buffer))).toBe(true);
    expect(Buffer.from(b.fluxes!.buffer).equals(Buffer.from(a.fluxes!.buffer))).toBe(true);
  });

  it('bad config: names the key and the allowed range; exit 1', () => {
    const bad = path.join(tmp, 'bad.yaml');
    writeFileSync(bad, 'grid: bc03\nfilters: jades14\nsfh: quantiles\nparameters: { redshift: { prior: uniform, low: 0.01, high: 99 } }\nnoise: { type: none }\nseed: 1\n');
    const r = spawnSync(process.execPath, [bin, 'simulate', '--config', bad, '--n', '10', '--out', path.join(tmp, 'x.h5')], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/parameters\.redshift/);
  });
});
