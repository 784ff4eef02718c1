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
  });
});
