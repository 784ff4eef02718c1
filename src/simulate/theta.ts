/**
 * The model's parameters: their names, units, allowed ranges and where they go in the canonical row
 * (canonical.ts), and the mapping theta (N x P free parameters) + fixed values -> canonical rows
 * (N x CANONICAL_WIDTH). The GPU does the same in shaders/simulate/priors.wgsl (kernels/priors.ts).
 *
 * Theta columns follow PARAMETERS' order (not the config file's key order), so one model always has
 * the same columns. A vector parameter (sfh_quantiles) expands to several columns. Derived
 * quantities (stellar mass, SFRs, ages, UV slope...) are outputs of the forward model, never
 * parameters.
 */
import { COLUMN_TRANSFORM, PRIOR_KIND, type PriorKernelModel } from '../../kernels/priors.js';
import type { SfhFamily } from '../physics/sfh.js';
import { CANONICAL, CANONICAL_WIDTH } from './canonical.js';
import { type FreePriorSpec, type PriorSet, type PriorSpec, compilePriors, priorSupport } from './priors.js';

export type ColumnTransform = 'identity' | 'pow10';

/** An interval of allowed values; `minOpen` / `maxOpen` exclude the end. */
export interface Domain {
  min: number;
  max: number;
  minOpen?: boolean;
  maxOpen?: boolean;
}

export function formatDomain(d: Domain): string {
  return `${d.minOpen ? '(' : '['}${d.min}, ${d.max}${d.maxOpen ? ')' : ']'}`;
}

function inDomain(lo: number, hi: number, d: Domain): boolean {
  const okLo = d.minOpen ? lo > d.min : lo >= d.min;
  const okHi = d.maxOpen ? hi < d.max : hi <= d.max;
  return okLo && okHi;
}

export interface ParameterDef {
  unit: string;
  description: string;
  /** Canonical slot (any SFH family), or per family for SFH parameters. */
  slot: number | Partial<Record<SfhFamily, number>>;
  transform: ColumnTransform;
  /** Allowed values (per family where it differs). */
  domain: Domain | ((family: SfhFamily) => Domain);
  /** Vector parameters: the theta column names (consecutive canonical slots from `slot`). */
  columns?: string[];
  /** Value when neither free nor fixed; undefined = required. 'logU' = the forward model's nebular.logU. */
  default?: number | 'logU';
  /** A condition on the forward model config for the parameter to mean anything. */
  needs?: 'charlotFall2000' | 'dust' | 'nebular';
  /** Another parameterisation of the same quantity (e.g. log10_av of av): never required itself. */
  alternativeOf?: string;
}

const S = (k: number) => CANONICAL.s0 + k;
const LOG10_AV_MAX = Math.log10(20);
const yr = (min: number, max: number, minOpen = false): Domain => ({ min, max, minOpen });

/** Every parameter a model may have, in theta-column order. */
export const PARAMETERS: Readonly<Record<string, ParameterDef>> = {
  redshift: { unit: '', description: 'source redshift (0 = absolute: 10 pc, rest frame)', slot: CANONICAL.redshift, transform: 'identity', domain: { min: 0, max: 30 } },
  log10_mass_formed: { unit: 'log10(Msun)', description: 'log10 of the total stellar mass formed', slot: CANONICAL.log10MassFormedMsun, transform: 'identity', domain: { min: -5, max: 15 } },
  log10Z: { unit: 'log10(Z)', description: 'log10 of the metal mass fraction Z (Z_sun ~ 0.02 in BC03)', slot: CANONICAL.log10Z, transform: 'identity', domain: { min: -8, max: 0 } },
  log10_z_sigma_dex: { unit: 'dex', description: 'log-normal spread of the metallicity distribution (0 = single Z)', slot: CANONICAL.log10ZSigmaDex, transform: 'identity', domain: { min: 0, max: 3 }, default: 0 },
  av: { unit: 'mag', description: 'V-band attenuation of the ISM screen', slot: CANONICAL.avMag, transform: 'identity', domain: { min: 0, max: 20 }, default: 0, needs: 'dust' },
  log10_av: { unit: 'log10(mag)', description: 'log10 of the V-band attenuation (A_V = 10^x)', slot: CANONICAL.avMag, transform: 'pow10', domain: { min: -10, max: LOG10_AV_MAX }, needs: 'dust', alternativeOf: 'av' },
  av_birth_cloud: { unit: 'mag', description: 'V-band attenuation of the birth clouds (Charlot & Fall 2000)', slot: CANONICAL.avBirthCloudMag, transform: 'identity', domain: { min: 0, max: 20 }, default: 0, needs: 'charlotFall2000' },
  log10_av_birth_cloud: { unit: 'log10(mag)', description: 'log10 of the birth-cloud V-band attenuation', slot: CANONICAL.avBirthCloudMag, transform: 'pow10', domain: { min: -10, max: LOG10_AV_MAX }, needs: 'charlotFall2000', alternativeOf: 'av_birth_cloud' },
  log_u: { unit: 'log10(U)', description: 'ionisation parameter of the nebular emission', slot: CANONICAL.logU, transform: 'identity', domain: { min: -4, max: 0 }, default: 'logU', needs: 'nebular' },
  start_age_yr: {
    unit: 'yr',
    description: 'lookback age at which star formation starts (truncated at the age of the universe)',
    slot: { constant: S(0), exponential: S(0), delayedExponential: S(0), logNormal: S(0) },
    transform: 'identity',
    domain: yr(0, 1e11, true),
  },
  tau_yr: {
    unit: 'yr',
    description: 'SFH timescale (exponential: < 0 = rising)',
    slot: { exponential: S(1), delayedExponential: S(1), doublePowerLaw: S(2) },
    transform: 'identity',
    domain: (f) => (f === 'exponential' ? { min: -1e12, max: 1e12 } : yr(0, 1e12, true)),
  },
  tau: { unit: '', description: 'log-normal SFH width (dimensionless)', slot: { logNormal: S(1) }, transform: 'identity', domain: { min: 0, max: 100, minOpen: true } },
  peak_age_yr: { unit: 'yr', description: 'lookback age of the log-normal SFH peak (< start_age_yr)', slot: { logNormal: S(2) }, transform: 'identity', domain: { min: -1e11, max: 1e11 } },
  alpha: { unit: '', description: 'double power law: falling slope', slot: { doublePowerLaw: S(0) }, transform: 'identity', domain: { min: 0, max: 1000, minOpen: true } },
  beta: { unit: '', description: 'double power law: rising slope', slot: { doublePowerLaw: S(1) }, transform: 'identity', domain: { min: 0, max: 1000, minOpen: true } },
  log10_ssfr: {
    unit: 'log10(1/yr)',
    description: 'log10 sSFR over the last 100 Myr per unit formed mass (values above -8 are clamped by the SFH)',
    slot: { quantiles: S(0) },
    transform: 'identity',
    domain: { min: -100, max: 0 },
  },
  sfh_quantiles: {
    unit: 'fraction of the age of the universe',
    description: 'cosmic times t25, t50, t75 at which 25/50/75 % of the mass had formed',
    slot: { quantiles: S(1) },
    transform: 'identity',
    domain: { min: 0, max: 1, minOpen: true, maxOpen: true },
    columns: ['sfh_t25', 'sfh_t50', 'sfh_t75'],
  },
};

/** Names of forward-model outputs that people may mistake for parameters. */
export const DERIVED_QUANTITY_NAMES = [
  'stellar_mass',
  'surviving_mass',
  'log10_stellar_mass',
  'sfr',
  'sfr10',
  'sfr100',
  'log10_sfr',
  'ssfr',
  'mass_weighted_age',
  'uv_beta',
  'beta_uv',
  'age_of_universe',
  'luminosity_distance',
  'qh',
];

export interface ParameterContext {
  sfh: SfhFamily;
  dustLaw: string;
  nebular: boolean;
  /** The forward model's nebular.logU (default of log_u). */
  logU: number;
}

/** The canonical slot of a parameter for a family, or undefined when the family does not use it. */
export function parameterSlot(def: ParameterDef, family: SfhFamily): number | undefined {
  return typeof def.slot === 'number' ? def.slot : def.slot[family];
}

export function parameterDomain(def: ParameterDef, family: SfhFamily): Domain {
  return typeof def.domain === 'function' ? def.domain(family) : def.domain;
}

/** Parameters a family needs (no default and used by the family). */
export function requiredParameters(family: SfhFamily): string[] {
  return Object.entries(PARAMETERS)
    .filter(([, d]) => d.default === undefined && d.alternativeOf === undefined && parameterSlot(d, family) !== undefined)
    .map(([n]) => n);
}

export interface ParameterIssue {
  /** Key path below `parameters`. */
  path: (string | number)[];
  message: string;
}

const fmt = (x: number) => (x === Infinity ? 'inf' : x === -Infinity ? '-inf' : String(x));

/**
 * Checks a `parameters:` map against the registry, the SFH family and the forward model: unknown
 * names, parameters the model does not use, missing ones, two parameters for one slot, priors whose
 * support leaves the allowed range, vector shapes. Returns every issue (empty = valid).
 */
export function checkParameters(parameters: Readonly<Record<string, PriorSpec>>, ctx: ParameterContext): ParameterIssue[] {
  const issues: ParameterIssue[] = [];
  const known = Object.keys(PARAMETERS);
  const bySlot = new Map<number, string>();
  for (const [name, spec] of Object.entries(parameters)) {
    const def = PARAMETERS[name];
    if (!def) {
      const derived = DERIVED_QUANTITY_NAMES.includes(name) ? ' (a derived quantity of the forward model, not a parameter)' : '';
      issues.push({ path: [name], message: `unknown parameter "${name}"${derived}; parameters are ${known.join(', ')}` });
      continue;
    }
    const slot = parameterSlot(def, ctx.sfh);
    if (slot === undefined) {
      const fams = typeof def.slot === 'number' ? [] : Object.keys(def.slot);
      const own = Object.entries(PARAMETERS)
        .filter(([, d]) => typeof d.slot !== 'number' && parameterSlot(d, ctx.sfh) !== undefined)
        .map(([n]) => n);
      issues.push({ path: [name], message: `"${name}" is not a parameter of sfh family "${ctx.sfh}" (it belongs to ${fams.join(', ')}); ${ctx.sfh} uses ${own.join(', ')}` });
      continue;
    }
    if (def.needs === 'dust' && ctx.dustLaw === 'none') issues.push({ path: [name], message: `"${name}" needs dust, but forwardModel.dust.law is "none"` });
    if (def.needs === 'charlotFall2000' && ctx.dustLaw !== 'charlotFall2000')
      issues.push({ path: [name], message: `"${name}" needs forwardModel.dust.law "charlotFall2000" (it is "${ctx.dustLaw}")` });
    if (def.needs === 'nebular' && !ctx.nebular) issues.push({ path: [name], message: `"${name}" needs nebular emission (forwardModel.nebular.enabled is false)` });
    const other = bySlot.get(slot);
    if (other) issues.push({ path: [name], message: `"${name}" and "${other}" set the same quantity: give only one` });
    bySlot.set(slot, name);
    const dom = parameterDomain(def, ctx.sfh);
    const range = formatDomain(dom);
    if (def.columns) {
      const k = def.columns.length;
      if (spec.prior === 'dirichlet') {
        if (spec.alpha.length !== k + 1) issues.push({ path: [name, 'alpha'], message: `"${name}" needs a Dirichlet over ${k + 1} fractions (alpha of length ${k + 1}), got ${spec.alpha.length}` });
      } else if (spec.prior === 'fixed') {
        const v = Array.isArray(spec.value) ? spec.value : [spec.value];
        if (v.length !== k) issues.push({ path: [name, 'value'], message: `"${name}" needs ${k} values (${def.columns.join(', ')}), got ${v.length}` });
        else if (!v.every((x, i) => inDomain(x, x, dom) && (i === 0 || x > v[i - 1])))
          issues.push({ path: [name, 'value'], message: `"${name}" values must be strictly increasing inside ${range}, got ${v.join(', ')}` });
      } else {
        issues.push({ path: [name, 'prior'], message: `"${name}" takes a dirichlet prior (alpha of length ${k + 1}) or fixed values, not ${spec.prior}` });
      }
      continue;
    }
    if (spec.prior === 'dirichlet') {
      issues.push({ path: [name, 'prior'], message: `"${name}" is a scalar: a dirichlet prior is only for ${known.filter((n) => PARAMETERS[n].columns).join(', ')}` });
      continue;
    }
    if (spec.prior === 'fixed') {
      if (Array.isArray(spec.value)) {
        if (spec.value.length !== 1) {
          issues.push({ path: [name, 'value'], message: `"${name}" is a scalar: one value, got ${spec.value.length}` });
          continue;
        }
      }
      const v = Array.isArray(spec.value) ? spec.value[0] : spec.value;
      if (!inDomain(v, v, dom)) issues.push({ path: [name, 'value'], message: `"${name}" = ${v} is outside the allowed range ${range}` });
      else if (name === 'tau_yr' && v === 0) issues.push({ path: [name, 'value'], message: '"tau_yr" must be non-zero' });
      continue;
    }
    const [lo, hi] = priorSupport(spec);
    if (!inDomain(lo, hi, dom)) {
      const hint = spec.prior === 'normal' ? ' (truncate the normal with low and high)' : '';
      const key = spec.prior === 'normal' && (spec.low === undefined || spec.high === undefined) ? 'prior' : !inDomain(lo, lo, { ...dom, max: Infinity, maxOpen: false }) ? 'low' : 'high';
      issues.push({ path: [name, key], message: `"${name}": the prior's support [${fmt(lo)}, ${fmt(hi)}] leaves the allowed range ${range}${hint}` });
    } else if (name === 'tau_yr' && lo <= 0 && hi >= 0) {
      issues.push({ path: [name, 'low'], message: `"tau_yr": the prior's support [${lo}, ${hi}] contains 0 (tau must be non-zero: all positive or all negative)` });
    }
  }
  for (const name of requiredParameters(ctx.sfh)) {
    const alternatives = [name, ...Object.keys(PARAMETERS).filter((n) => PARAMETERS[n].alternativeOf === name)];
    if (!alternatives.some((n) => n in parameters)) issues.push({ path: [name], message: `"${name}" is required by sfh family "${ctx.sfh}" (a prior or a fixed value)` });
  }
  // logNormal: the peak must precede the start for every draw.
  if (ctx.sfh === 'logNormal' && parameters.peak_age_yr && parameters.start_age_yr) {
    const sup = (s: PriorSpec): [number, number] => (s.prior === 'fixed' ? [Number(s.value), Number(s.value)] : priorSupport(s as FreePriorSpec));
    const [, peakHi] = sup(parameters.peak_age_yr);
    const [startLo] = sup(parameters.start_age_yr);
    if (!(peakHi < startLo))
      issues.push({ path: ['peak_age_yr'], message: `"peak_age_yr" must stay below "start_age_yr" for every draw: its upper bound ${peakHi} must be < start_age_yr's lower bound ${startLo}` });
  }
  return issues;
}

// ---------------------------------------------------------------------------------------------
// Layout and mapping
// ---------------------------------------------------------------------------------------------

export interface ThetaColumn {
  /** Column name in the library (`theta` attribute). */
  name: string;
  unit: string;
  description: string;
  /** The config parameter it belongs to. */
  parameter: string;
  /** Canonical slot it sets. */
  slot: number;
  transform: ColumnTransform;
}

export interface ThetaLayout {
  sfh: SfhFamily;
  columns: ThetaColumn[];
  priors: PriorSet;
  /** Canonical row of fixed values and defaults; the free columns overwrite their slots. */
  base: Float64Array;
  /** Fixed parameters as given. */
  fixed: Record<string, number | number[]>;
}

/**
 * Builds the theta layout of a (validated: checkParameters) parameter map. Throws on the first
 * issue if it was not validated.
 */
export function buildThetaLayout(parameters: Readonly<Record<string, PriorSpec>>, ctx: ParameterContext): ThetaLayout {
  const issues = checkParameters(parameters, ctx);
  if (issues.length) throw new Error(`parameters.${issues[0].path.join('.')}: ${issues[0].message}`);
  const base = new Float64Array(CANONICAL_WIDTH);
  const columns: ThetaColumn[] = [];
  const entries: { name: string; spec: PriorSpec }[] = [];
  const fixed: Record<string, number | number[]> = {};
  // Defaults first, then fixed values.
  for (const def of Object.values(PARAMETERS)) {
    const slot = parameterSlot(def, ctx.sfh);
    if (slot === undefined || def.default === undefined) continue;
    base[slot] = def.default === 'logU' ? ctx.logU : def.default;
  }
  for (const [name, def] of Object.entries(PARAMETERS)) {
    const spec = parameters[name];
    if (!spec) continue;
    const slot = parameterSlot(def, ctx.sfh)!;
    const tf = (v: number) => (def.transform === 'pow10' ? 10 ** v : v);
    if (spec.prior === 'fixed') {
      fixed[name] = spec.value;
      const v = Array.isArray(spec.value) ? spec.value : [spec.value];
      v.forEach((x, k) => (base[slot + k] = tf(x)));
      continue;
    }
    entries.push({ name, spec });
    const names = def.columns ?? [name];
    names.forEach((col, k) => columns.push({ name: col, unit: def.unit, description: def.description, parameter: name, slot: slot + k, transform: def.transform }));
  }
  const priors = compilePriors(entries);
  return { sfh: ctx.sfh, columns, priors, base, fixed };
}

/** theta (n x P, row-major) -> canonical rows (n x CANONICAL_WIDTH), float64. */
export function thetaToCanonical(layout: ThetaLayout, theta: ArrayLike<number>, n: number, out: Float64Array = new Float64Array(n * CANONICAL_WIDTH)): Float64Array {
  const P = layout.columns.length;
  if (theta.length < n * P) throw new RangeError(`thetaToCanonical: theta has ${theta.length} values, need ${n} x ${P}`);
  for (let i = 0; i < n; i++) {
    const o = i * CANONICAL_WIDTH;
    out.set(layout.base, o);
    for (let j = 0; j < P; j++) {
      const c = layout.columns[j];
      if (c.slot < 0) continue;
      const v = theta[i * P + j];
      out[o + c.slot] = c.transform === 'pow10' ? 10 ** v : v;
    }
  }
  return out;
}

/** Column names and units for the library's `theta` dataset attributes. */
export function thetaColumnInfo(layout: ThetaLayout): { names: string[]; units: string[]; descriptions: string[] } {
  return {
    names: layout.columns.map((c) => c.name),
    units: layout.columns.map((c) => c.unit),
    descriptions: layout.columns.map((c) => c.description),
  };
}

/** The plain-data model of the GPU priors kernel (kernels/priors.ts: packPriorModel). */
export function priorKernelModel(layout: ThetaLayout): PriorKernelModel {
  const F32_MAX = 3.4028234663852886e38;
  const lim = (x: number) => Math.max(-F32_MAX, Math.min(F32_MAX, x));
  return {
    nCols: layout.columns.length,
    base: layout.base,
    columns: layout.columns.map((c) => ({ slot: c.slot, transform: COLUMN_TRANSFORM[c.transform] })),
    priors: layout.priors.priors.map((p) => {
      const s = p.spec;
      switch (s.prior) {
        case 'uniform':
          return { kind: PRIOR_KIND.uniform, col: p.col, count: 1, sub: 0, params: [s.low, s.high - s.low, s.low, s.high] };
        case 'loguniform':
          return { kind: PRIOR_KIND.loguniform, col: p.col, count: 1, sub: 0, params: [Math.log(s.low), Math.log(s.high / s.low), s.low, s.high] };
        case 'normal': {
          const c = p.normal!;
          return { kind: PRIOR_KIND.normal, col: p.col, count: 1, sub: 0, params: [s.mean, s.sigma, lim(s.low ?? -Infinity), lim(s.high ?? Infinity), c.pa, c.qb, c.w] };
        }
        case 'dirichlet':
          return { kind: PRIOR_KIND.dirichlet, col: p.col, count: s.alpha.length, sub: p.sub, params: [], alpha: s.alpha };
      }
    }),
  };
}
