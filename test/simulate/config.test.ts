import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BUILTIN_GRIDS } from '../../src/grid/build.js';
import { FILTER_SETS } from '../../src/grid/filters.js';
import {
  BUILTIN_GRID_NAMES,
  ConfigError,
  configThetaLayout,
  configThetaSampler,
  loadSimulationConfig,
  parseSimulationConfig,
  parseSimulationConfigText,
  staticBandNames,
} from '../../src/simulate/config.js';
import { resolveNoiseWith } from '../../src/simulate/noise.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLE = path.join(ROOT, 'examples/reference-study.yaml');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;
const base = (): Obj => ({
  grid: 'bc03',
  filters: 'jades14',
  sfh: 'quantiles',
  parameters: {
    redshift: { prior: 'uniform', low: 0.01, high: 14 },
    log10_mass_formed: { prior: 'uniform', low: 4, high: 12 },
    log10Z: { prior: 'uniform', low: -4, high: -1.39 },
    log10_av: { prior: 'uniform', low: -3, high: 0.7 },
    log10_ssfr: { prior: 'uniform', low: -12, high: -7 },
    sfh_quantiles: { prior: 'dirichlet', alpha: [1, 1, 1, 1] },
  },
  noise: { type: 'depth', depth5SigmaMag: 29 },
  seed: 1,
});

/** The issues of an invalid variant of the base config. */
function issues(edit: (c: Obj) => void): string[] {
  const c = base();
  edit(c);
  try {
    parseSimulationConfig(c, 'test');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues;
  }
  throw new Error('expected the config to be rejected');
}

describe('examples/reference-study.yaml (Harvey et al. 2025 Synference model)', () => {
  it('loads and describes the reference model', async () => {
    const c = await loadSimulationConfig(EXAMPLE);
    expect(c.grid).toBe('bc03');
    expect(staticBandNames(c.filters)).toEqual([...FILTER_SETS.jades14]);
    expect(staticBandNames(c.filters)).toHaveLength(14);
    expect(c.forwardModel.dust.law).toBe('calzetti2000');
    expect(c.sfh).toBe('quantiles');
    expect(c.parameters.redshift).toEqual({ prior: 'uniform', low: 0.01, high: 14 });
    expect(c.parameters.log10_mass_formed).toEqual({ prior: 'uniform', low: 4, high: 12 });
    expect(c.parameters.log10_av).toEqual({ prior: 'uniform', low: -3, high: 0.7 });
    expect(c.parameters.log10Z).toEqual({ prior: 'uniform', low: -4, high: -1.39 });
    expect(c.parameters.log10_ssfr).toEqual({ prior: 'uniform', low: -12, high: -7 });
    expect(c.parameters.sfh_quantiles).toEqual({ prior: 'dirichlet', alpha: [1, 1, 1, 1] });
    expect(c.selection).toEqual({ bands: ['jwst_f277w', 'jwst_f356w', 'jwst_f444w'], combine: 'stack', minSnr: 5, maxCandidatesPerRow: 1000 });
    const layout = configThetaLayout(c);
    expect(layout.columns.map((col) => col.name)).toEqual(['redshift', 'log10_mass_formed', 'log10Z', 'log10_av', 'log10_ssfr', 'sfh_t25', 'sfh_t50', 'sfh_t75']);
    // The noise section binds to the 14 bands (the noise module's own check).
    const noise = resolveNoiseWith(c.noise, staticBandNames(c.filters)!);
    expect(noise.type).toBe('depth');
    expect(Math.min(...noise.depth5SigmaMag!)).toBeGreaterThanOrEqual(28.5);
    expect(Math.max(...noise.depth5SigmaMag!)).toBeLessThanOrEqual(30);
    // A sampler runs on it.
    expect(configThetaSampler(c, 100).sample(0, 100)).toHaveLength(800);
  });

  it('JSON and YAML give the same config', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'simcfg-'));
    const file = path.join(dir, 'model.json');
    writeFileSync(file, JSON.stringify(base()));
    const fromJson = await loadSimulationConfig(file);
    const fromYaml = await parseSimulationConfigText(JSON.stringify(base()), 'inline');
    expect(fromJson).toEqual(fromYaml);
    expect(fromJson.design).toBe('random');
    expect(fromJson.chunkSize).toBe(65536);
    expect(fromJson.features.photometry).toBe('asinhMag');
  });

  it('built-in grid names agree with the grid builder', () => {
    expect([...BUILTIN_GRID_NAMES].sort()).toEqual(Object.keys(BUILTIN_GRIDS).sort());
  });
});

describe('config errors name the key path and the allowed range', () => {
  it('unknown keys, top level and nested', () => {
    expect(issues((c) => (c.foo = 1))).toEqual([expect.stringMatching(/^foo: unknown key "foo" \(allowed: grid, filters, forwardModel, sfh, parameters, noise, features, design, seed, chunkSize, n, selection\)$/)]);
    expect(issues((c) => (c.forwardModel = { nebular: { logu: -2 } }))).toEqual([expect.stringMatching(/^forwardModel\.nebular\.logu: unknown key "logu" \(allowed: enabled, logU\)$/)]);
    expect(issues((c) => (c.parameters.redshift = { prior: 'uniform', low: 0.01, hi: 3 }))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^parameters\.redshift\.hi: unknown key "hi"/), expect.stringMatching(/^parameters\.redshift\.high: is required/)]),
    );
  });

  it('priors outside the parameter range', () => {
    expect(issues((c) => (c.parameters.redshift.high = 40))).toEqual([
      'parameters.redshift.high: "redshift": the prior\'s support [0.01, 40] leaves the allowed range [0, 30]',
    ]);
    expect(issues((c) => (c.parameters.log10Z = { prior: 'normal', mean: -2, sigma: 0.5 }))[0]).toMatch(
      /^parameters\.log10Z\.prior: .*support \[-inf, inf\] leaves the allowed range \[-8, 0\] \(truncate the normal with low and high\)/,
    );
    expect(issues((c) => (c.parameters.log10_av.high = 2))[0]).toMatch(/^parameters\.log10_av\.high: .*allowed range \[-10, 1\.30102999/);
    expect(issues((c) => (c.parameters.redshift = { prior: 'uniform', low: 3, high: 1 }))[0]).toMatch(/^parameters\.redshift\.high: must be > low \(3\), got 1/);
    expect(issues((c) => (c.parameters.redshift = 35))[0]).toMatch(/^parameters\.redshift\.value: "redshift" = 35 is outside the allowed range \[0, 30\]/);
    expect(issues((c) => (c.parameters.sfh_quantiles = [0.5, 0.4, 0.9]))[0]).toMatch(/^parameters\.sfh_quantiles\.value: .*strictly increasing inside \(0, 1\)/);
  });

  it('unknown, misplaced, missing and duplicate parameters', () => {
    const unknown = issues((c) => {
      c.parameters.sfr = 1;
      c.parameters.foo = 2;
    });
    expect(unknown[0]).toMatch(/^parameters\.sfr: unknown parameter "sfr" \(a derived quantity of the forward model, not a parameter\); parameters are redshift, /);
    expect(unknown[1]).toMatch(/^parameters\.foo: unknown parameter "foo"; parameters are /);
    expect(issues((c) => (c.parameters.tau_yr = { prior: 'loguniform', low: 1e7, high: 1e9 }))[0]).toMatch(
      /^parameters\.tau_yr: "tau_yr" is not a parameter of sfh family "quantiles" .*quantiles uses log10_ssfr, sfh_quantiles/,
    );
    expect(issues((c) => delete c.parameters.redshift)).toEqual(['parameters.redshift: "redshift" is required by sfh family "quantiles" (a prior or a fixed value)']);
    expect(issues((c) => delete c.parameters.sfh_quantiles)[0]).toMatch(/^parameters\.sfh_quantiles: .*required/);
    expect(issues((c) => (c.parameters.av = 0.5))).toEqual(['parameters.av: "av" and "log10_av" set the same quantity: give only one']);
    expect(issues((c) => (c.parameters.sfh_quantiles = { prior: 'dirichlet', alpha: [1, 1, 1] }))[0]).toMatch(/^parameters\.sfh_quantiles\.alpha: .*alpha of length 4\), got 3/);
    expect(issues((c) => (c.parameters.log10Z = { prior: 'dirichlet', alpha: [1, 1] }))[0]).toMatch(/^parameters\.log10Z\.prior: "log10Z" is a scalar/);
  });

  it('parameters that the forward model does not use', () => {
    expect(issues((c) => ((c.forwardModel = { nebular: { enabled: false } }), (c.parameters.log_u = { prior: 'uniform', low: -3, high: -1 })))).toEqual([
      'parameters.log_u: "log_u" needs nebular emission (forwardModel.nebular.enabled is false)',
    ]);
    expect(issues((c) => (c.parameters.av_birth_cloud = 0.3))[0]).toMatch(/needs forwardModel\.dust\.law "charlotFall2000" \(it is "calzetti2000"\)/);
    expect(issues((c) => (c.forwardModel = { dust: { law: 'none' } }))[0]).toMatch(/^parameters\.log10_av: "log10_av" needs dust/);
  });

  it('SFH family constraints', () => {
    const exp = issues((c) => {
      c.sfh = 'exponential';
      c.parameters = { redshift: 1, log10_mass_formed: 10, log10Z: -2, start_age_yr: 1e9, tau_yr: { prior: 'uniform', low: -1e9, high: 1e9 } };
    });
    expect(exp[0]).toMatch(/^parameters\.tau_yr\.low: .*contains 0/);
    const ln = issues((c) => {
      c.sfh = 'logNormal';
      c.parameters = { redshift: 1, log10_mass_formed: 10, log10Z: -2, start_age_yr: { prior: 'uniform', low: 1e8, high: 1e9 }, tau: 0.5, peak_age_yr: { prior: 'uniform', low: 0, high: 5e8 } };
    });
    expect(ln[0]).toMatch(/^parameters\.peak_age_yr: .*upper bound 500000000 must be < start_age_yr's lower bound 100000000/);
    expect(issues((c) => (c.sfh = 'bursty'))[0]).toMatch(/^sfh: must be one of constant, exponential, delayedExponential, logNormal, doublePowerLaw, quantiles/);
  });

  it('scalars, enums and required sections', () => {
    expect(issues((c) => ((c.seed = -3), (c.chunkSize = 0), (c.design = 'grid')))).toEqual([
      'design: must be one of random, lhs, sobol',
      'seed: must be an integer in [0, 9007199254740991]',
      'chunkSize: must be an integer in [1, 4194304]',
    ]);
    expect(issues((c) => (c.seed = 1.5))).toEqual(['seed: must be an integer in [0, 9007199254740991]']);
    expect(issues((c) => (c.forwardModel = { nebular: { logU: 2 } }))).toEqual(['forwardModel.nebular.logU: must be <= 0, got 2']);
    expect(issues((c) => (delete c.noise, delete c.grid))).toEqual(['grid: is required (bc03, maraston05 or a path)', "noise: is required (a noise model: type 'none', 'depth' or 'empirical')"]);
    expect(issues((c) => (c.grid = 'bc99'))[0]).toMatch(/^grid: must be one of bc03, maraston05 or a path/);
    expect(issues((c) => (c.n = 0))).toEqual(['n: must be an integer in [1, 4294967296]']);
  });

  it('per-band maps must name exactly the bands of a known filter set', () => {
    const bad = issues((c) => (c.noise = { type: 'depth', depth5SigmaMag: { jwst_f999w: 29 } }));
    expect(bad[0]).toMatch(/^noise\.depth5SigmaMag\.jwst_f999w: unknown band "jwst_f999w"; the bands are acs_wfc_f435w, /);
    expect(bad[1]).toMatch(/^noise\.depth5SigmaMag: no value for bands acs_wfc_f435w, .*jwst_f444w \(give every band, or one number for all\)$/);
    // A list of plain filter names is known too.
    const ok = base();
    ok.filters = ['jwst_f150w', 'jwst_f444w'];
    ok.noise = { type: 'depth', depth5SigmaMag: { jwst_f150w: 29.5, jwst_f444w: 29.8 } };
    expect(() => parseSimulationConfig(ok)).not.toThrow();
    expect(staticBandNames('some/dir/f.dat,other#3')).toBeUndefined();
  });

  it('design limits: sobol dimensions', () => {
    // 8 design dimensions for the reference model: fine.
    expect(() => parseSimulationConfig({ ...base(), design: 'sobol' })).not.toThrow();
  });

  it('bad YAML and unreadable files are ConfigErrors naming the source', async () => {
    await expect(parseSimulationConfigText('grid: [bc03\nseed: 1', 'broken.yaml')).rejects.toThrow(/broken\.yaml: invalid simulation config:\n {2}cannot parse YAML/);
    await expect(parseSimulationConfigText('seed: 1\nseed: 2\n', 'dup.yaml')).rejects.toThrow(/cannot parse YAML: Map keys must be unique/);
    await expect(loadSimulationConfig('/nonexistent/model.yaml')).rejects.toThrow(/model\.yaml: invalid simulation config:\n {2}cannot read the file/);
  });
});
