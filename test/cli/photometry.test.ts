/** `synference photometry` as outsiders use it: the Synthesizer reference rows through the CLI. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { referenceDir } from '../../src/io/paths.js';

const bin = path.resolve(__dirname, '../../bin/synference.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'phot-'));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [bin, 'photometry', ...args], { encoding: 'utf8', timeout: 120_000 });
  expect(r.signal).toBeNull();
  return r;
}

const ref = parse(readFileSync(path.join(referenceDir(), 'synthesizer', 'case_a_photometry.csv'), 'utf8'), { columns: true }) as Record<string, string>[];

describe('synference photometry', () => {
  it('reproduces Synthesizer case (a) rows with --conventions synthesizer', () => {
    const rows = ref.slice(0, 12);
    const sfhOf = (r: Record<string, string>) => {
      const cls = r.sfh_class.split('.').pop();
      return cls === 'Constant' ? 'constant' : cls === 'DelayedExponential' ? 'delayedExponential' : 'logNormal';
    };
    const header = 'id,redshift,log10_mass_formed,Z,sfh,start_age_yr,tau_yr,lognormal_tau,peak_age_yr,av';
    const lines = rows.map((r) =>
      [r.id, r.redshift, r.log10M_formed, r.Z, sfhOf(r), r.max_age_yr, r.delayedexp_tau_yr, r.lognormal_tau, r.lognormal_peak_age_yr, r.AV].join(','),
    );
    const params = path.join(tmp, 'params.csv');
    const out = path.join(tmp, 'out.csv');
    writeFileSync(params, [header, ...lines].join('\n') + '\n');
    const r = cli(['--params', params, '--filters', 'jades14', '--out', out, '--conventions', 'synthesizer']);
    expect(r.status, r.stderr).toBe(0);
    const got = parse(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(got).toHaveLength(rows.length);
    let worst = 0;
    got.forEach((g, i) => {
      expect(g.id).toBe(rows[i].id);
      for (const col of Object.keys(rows[i]).filter((c) => c.endsWith('_nJy'))) {
        const want = Number(rows[i][col]);
        if (!(want > 1e-6)) continue; // see test/physics/forwardModel.test.ts
        worst = Math.max(worst, Math.abs(2.5 * Math.log10(Number(g[col]) / want)));
      }
      expect(Number(g.surviving_mass_msun)).toBeGreaterThan(0);
      expect(Number(g.surviving_mass_msun)).toBeLessThan(Number(g.mass_formed_msun));
    });
    // The issue asks for <= 0.05 mag max; the same conventions give ~1e-5.
    expect(worst).toBeLessThan(1e-3);
  });

  it('--backend gpu reproduces the CPU backend (mixed SFH families, nebular, dust) to 1e-3', () => {
    const params = path.join(tmp, 'gpu.csv');
    writeFileSync(
      params,
      [
        'id,redshift,log10_mass_formed,log10Z,sfh,start_age_yr,tau_yr,lognormal_tau,peak_age_yr,dpl_alpha,dpl_beta,log10_ssfr,t25,t50,t75,av',
        'c,1,10,-2,constant,1e9,,,,,,,,,,0.2',
        'd,3,10,-2.5,delayedExponential,1e9,3e8,,,,,,,,,0.7',
        'q,6,9,-3,quantiles,,,,,,,-8.5,0.2,0.5,0.8,0.1',
        'z0,0,0,-1.7,constant,1e8,,,,,,,,,,0',
      ].join('\n') + '\n',
    );
    const cpuOut = path.join(tmp, 'cpu_out.csv');
    const gpuOut = path.join(tmp, 'gpu_out.csv');
    expect(cli(['--params', params, '--filters', 'jades14', '--out', cpuOut]).status).toBe(0);
    const r = cli(['--params', params, '--filters', 'jades14', '--out', gpuOut, '--backend', 'gpu']);
    expect(r.status, r.stderr).toBe(0);
    const cpu = parse(readFileSync(cpuOut, 'utf8'), { columns: true }) as Record<string, string>[];
    const gpu = parse(readFileSync(gpuOut, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(gpu.map((g) => g.id)).toEqual(cpu.map((c) => c.id));
    gpu.forEach((g, i) => {
      const maxFlux = Math.max(...Object.keys(g).filter((k) => k.endsWith('_nJy')).map((k) => Number(cpu[i][k])));
      for (const k of Object.keys(g)) {
        if (k === 'id') continue;
        const want = Number(cpu[i][k]);
        const got = Number(g[k]);
        // Fluxes: 1e-3 relative (f32), with the floor of test/simulate/gpuSynth.test.ts for bands
        // beyond the Lyman break; derived quantities: 1e-3 relative.
        const scale = k.endsWith('_nJy') ? Math.max(Math.abs(want), 1e-6 * maxFlux) : Math.abs(want);
        expect(Math.abs(got - want) / scale, `${g.id} ${k}: gpu ${got} cpu ${want}`).toBeLessThan(1e-3);
      }
    });
  });

  it('every SFH family and nebular emission (default conventions) give finite fluxes', () => {
    const params = path.join(tmp, 'families.csv');
    writeFileSync(
      params,
      [
        'id,redshift,log10_mass_formed,log10Z,sfh,start_age_yr,tau_yr,lognormal_tau,peak_age_yr,dpl_alpha,dpl_beta,log10_ssfr,t25,t50,t75,av',
        'c,1,10,-2,constant,1e9,,,,,,,,,,0.2',
        'e,1,10,-2,exponential,2e9,5e8,,,,,,,,,0.2',
        'd,3,10,-2.5,delayedExponential,1e9,3e8,,,,,,,,,0.2',
        'l,0.5,10,-2,logNormal,5e9,,0.5,2e9,,,,,,,0.2',
        'p,2,10,-2,doublePowerLaw,,1e9,,,3,5,,,,,0.2',
        'q,4,9,-3,quantiles,,,,,,,-8.5,0.2,0.5,0.8,0.2',
      ].join('\n') + '\n',
    );
    const out = path.join(tmp, 'families_out.csv');
    const r = cli(['--params', params, '--filters', 'jades14', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const got = parse(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(got.map((g) => g.id)).toEqual(['c', 'e', 'd', 'l', 'p', 'q']);
    for (const g of got) for (const [k, v] of Object.entries(g)) if (k !== 'id') expect(Number.isFinite(Number(v)), `${g.id} ${k}=${v}`).toBe(true);
  });

  it('bad input names the file, row and column', () => {
    const params = path.join(tmp, 'bad.csv');
    writeFileSync(params, 'id,redshift,log10_mass_formed,log10Z,sfh,start_age_yr\nx,1,10,-2,constant,abc\n');
    const r = cli(['--params', params, '--filters', 'jades14', '--out', path.join(tmp, 'o.csv')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad.csv: row 2, column "start_age_yr": "abc" is not a number/);
    writeFileSync(params, 'id,redshift,log10_mass,log10Z,sfh,start_age_yr\nx,1,10,-2,constant,1e9\n');
    expect(cli(['--params', params, '--filters', 'jades14', '--out', path.join(tmp, 'o.csv')]).stderr).toMatch(/unknown column\(s\) log10_mass/);
    writeFileSync(params, 'id,redshift,log10_mass_formed,log10Z,sfh,start_age_yr\nx,1,10,-2,burst,1e9\n');
    expect(cli(['--params', params, '--filters', 'jades14', '--out', path.join(tmp, 'o.csv')]).stderr).toMatch(/column "sfh": "burst" is not one of/);
  });

  it('bad arguments: unknown filter set, missing option, bad backend', () => {
    const params = path.join(tmp, 'ok.csv');
    writeFileSync(params, 'id,redshift,log10_mass_formed,log10Z,sfh,start_age_yr\nx,1,10,-2,constant,1e9\n');
    const r1 = cli(['--params', params, '--filters', 'nosuchset', '--out', path.join(tmp, 'o.csv')]);
    expect(r1.status).toBe(1);
    expect(r1.stderr).toMatch(/nosuchset/);
    const r2 = cli(['--params', params, '--out', path.join(tmp, 'o.csv')]);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/--filters/);
    const r3 = cli(['--params', params, '--filters', 'jades14', '--out', path.join(tmp, 'o.csv'), '--backend', 'tpu']);
    expect(r3.status).toBe(2);
    expect(r3.stderr).toMatch(/--backend.*tpu.*invalid/);
  });
});
