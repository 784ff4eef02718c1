import { describe, expect, it } from 'vitest';
import { PRIOR_KIND, packPriorModel } from '../../kernels/priors.js';
import { GalaxyParamsSchema } from '../../src/physics/forwardModel.js';
import { CANONICAL, CANONICAL_WIDTH, fromCanonicalRow } from '../../src/simulate/canonical.js';
import { type SimulationConfigInput, configThetaLayout, configThetaSampler, parseSimulationConfig } from '../../src/simulate/config.js';
import { PARAMETERS, priorKernelModel, thetaColumnInfo, thetaToCanonical } from '../../src/simulate/theta.js';

const model = (over: Partial<SimulationConfigInput>): SimulationConfigInput => ({
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
  noise: { type: 'none' },
  seed: 11,
  ...over,
});

describe('theta layout', () => {
  it('columns follow the registry order, not the config key order; names and units are recorded', () => {
    const a = configThetaLayout(parseSimulationConfig(model({})));
    const reversed = Object.fromEntries(Object.entries(model({}).parameters).reverse());
    const b = configThetaLayout(parseSimulationConfig(model({ parameters: reversed })));
    expect(b.columns.map((c) => c.name)).toEqual(a.columns.map((c) => c.name));
    const info = thetaColumnInfo(a);
    expect(info.names).toEqual(['redshift', 'log10_mass_formed', 'log10Z', 'log10_av', 'log10_ssfr', 'sfh_t25', 'sfh_t50', 'sfh_t75']);
    expect(info.units).toEqual(['', 'log10(Msun)', 'log10(Z)', 'log10(mag)', 'log10(1/yr)', ...Array(3).fill('fraction of the age of the universe')]);
    expect(a.columns.map((c) => c.slot)).toEqual([0, 1, 2, 4, 7, 8, 9, 10]);
  });

  it('fixed values and defaults fill the base row; log_u defaults to the forward model', () => {
    const l = configThetaLayout(
      parseSimulationConfig(
        model({
          forwardModel: { nebular: { logU: -2.5 } },
          parameters: { ...model({}).parameters, log10Z: -2, log10_z_sigma_dex: 0.3, sfh_quantiles: [0.2, 0.5, 0.8] },
        }),
      ),
    );
    expect(l.columns.map((c) => c.name)).toEqual(['redshift', 'log10_mass_formed', 'log10_av', 'log10_ssfr']);
    expect(Array.from(l.base)).toEqual([0, 0, -2, 0.3, 0, 0, -2.5, 0, 0.2, 0.5, 0.8, 0]);
    expect(l.fixed).toEqual({ log10Z: -2, log10_z_sigma_dex: 0.3, sfh_quantiles: [0.2, 0.5, 0.8] });
  });

  it('thetaToCanonical: identity columns copy, log10_av becomes A_V = 10^x', () => {
    const l = configThetaLayout(parseSimulationConfig(model({})));
    const theta = [1.5, 9.5, -2, -1, -9, 0.1, 0.4, 0.9, 7, 11, -3, 0.5, -12, 0.3, 0.35, 0.36];
    const c = thetaToCanonical(l, theta, 2);
    expect(Array.from(c.subarray(0, CANONICAL_WIDTH))).toEqual([1.5, 9.5, -2, 0, 0.1, 0, -2, -9, 0.1, 0.4, 0.9, 0]);
    expect(c[CANONICAL_WIDTH + CANONICAL.avMag]).toBeCloseTo(10 ** 0.5, 15);
  });
});

describe('sampled canonical rows are valid forward-model inputs', () => {
  const families: [string, Partial<SimulationConfigInput>][] = [
    ['quantiles (reference model)', {}],
    [
      'constant',
      { sfh: 'constant', parameters: { redshift: { prior: 'uniform', low: 0, high: 12 }, log10_mass_formed: 9, log10Z: { prior: 'normal', mean: -2, sigma: 0.5, low: -4, high: -1.3 }, av: { prior: 'uniform', low: 0, high: 3 }, start_age_yr: { prior: 'loguniform', low: 1e6, high: 1e10 } } },
    ],
    ['exponential (rising)', { sfh: 'exponential', parameters: { redshift: 2, log10_mass_formed: 9, log10Z: -2, start_age_yr: 1e9, tau_yr: { prior: 'uniform', low: -1e10, high: -1e7 } } }],
    ['delayedExponential', { sfh: 'delayedExponential', parameters: { redshift: 2, log10_mass_formed: 9, log10Z: -2, start_age_yr: { prior: 'loguniform', low: 1e7, high: 1e10 }, tau_yr: { prior: 'loguniform', low: 1e7, high: 1e10 } } }],
    [
      'logNormal',
      { sfh: 'logNormal', parameters: { redshift: 2, log10_mass_formed: 9, log10Z: -2, start_age_yr: { prior: 'uniform', low: 2e9, high: 3e9 }, tau: { prior: 'uniform', low: 0.1, high: 1 }, peak_age_yr: { prior: 'uniform', low: 0, high: 1.9e9 } } },
    ],
    ['doublePowerLaw', { sfh: 'doublePowerLaw', parameters: { redshift: 1, log10_mass_formed: 10, log10Z: -2, alpha: { prior: 'loguniform', low: 0.1, high: 100 }, beta: { prior: 'loguniform', low: 0.1, high: 100 }, tau_yr: { prior: 'loguniform', low: 1e8, high: 1e10 } } }],
    [
      'Charlot & Fall dust, log U and Z spread',
      {
        sfh: 'constant',
        forwardModel: { dust: { law: 'charlotFall2000' } },
        parameters: { redshift: 1, log10_mass_formed: 9, log10Z: -2, log10_z_sigma_dex: { prior: 'uniform', low: 0, high: 0.5 }, av: { prior: 'uniform', low: 0, high: 2 }, log10_av_birth_cloud: { prior: 'uniform', low: -2, high: 0.5 }, log_u: { prior: 'uniform', low: -4, high: -1 }, start_age_yr: 5e8 },
      },
    ],
  ];
  for (const [label, over] of families) {
    for (const design of ['random', 'lhs', 'sobol'] as const) {
      it(`${label}, ${design}`, () => {
        const cfg = parseSimulationConfig(model({ ...over, design }));
        const layout = configThetaLayout(cfg);
        const n = 500;
        const theta = configThetaSampler(cfg, n, layout).sample(0, n);
        const canon = thetaToCanonical(layout, theta, n);
        for (let i = 0; i < n; i++) {
          const p = fromCanonicalRow(canon.subarray(i * CANONICAL_WIDTH, (i + 1) * CANONICAL_WIDTH), cfg.sfh);
          const r = GalaxyParamsSchema.safeParse(p);
          if (!r.success) expect.fail(`row ${i}: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
        }
      });
    }
  }
});

describe('GPU model packing', () => {
  it('packs priors, columns and the base row in the documented layout', () => {
    const l = configThetaLayout(parseSimulationConfig(model({})));
    const m = priorKernelModel(l);
    expect(m.priors.map((p) => p.kind)).toEqual([0, 0, 0, 0, 0, PRIOR_KIND.dirichlet]);
    const w = packPriorModel(m);
    const f = new Float32Array(w.buffer);
    expect(w[0]).toBe(6); // priors
    expect(w[1]).toBe(8 + CANONICAL_WIDTH); // column table
    expect(w[2]).toBe(8 + CANONICAL_WIDTH + 2 * 8); // prior table
    expect(f[8 + CANONICAL.logU]).toBe(-2);
    expect([w[w[1] + 6], w[w[1] + 7]]).toEqual([CANONICAL.avMag, 1]); // log10_av -> slot 4 via 10^x
    const d = w[2] + 16 * 5;
    expect(Array.from(w.subarray(d, d + 4))).toEqual([PRIOR_KIND.dirichlet, 5, 4, 1]);
    expect(Array.from(f.subarray(w[d + 4], w[d + 4] + 4))).toEqual([1, 1, 1, 1]);
  });

  it('every registry parameter has a unit string and a slot', () => {
    for (const [name, def] of Object.entries(PARAMETERS)) {
      expect(typeof def.unit, name).toBe('string');
      expect(def.slot, name).toBeDefined();
    }
  });
});
