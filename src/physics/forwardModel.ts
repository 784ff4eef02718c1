/**
 * The forward model on the CPU in float64: one galaxy's parameters -> observed band fluxes [nJy] and
 * derived quantities. The ground truth of the GPU synthesis, structured the way the GPU computes it:
 *
 *   SFH -> mass per grid age (closed-form bin integrals)      sfh.ts
 *   Z   -> weights over the grid metallicities                metallicity.ts
 *   L_nu = Σ_age Σ_Z m_age w_Z grid[age][Z]                   (young = ages < birth-cloud age, old)
 *   nebular: Q(H) of the stellar spectrum, stars zeroed below 911.8 A, + Q(H) x template(Z, log U)
 *   dust:  L = T_ism (T_bc L_young + L_old)                  dust.ts (single screens: T_bc = 1)
 *   redshift: f_nu(lambda (1+z)) = L_nu (1+z) / (4 pi d_L^2) x T_IGM(lambda (1+z), z)
 *   band flux: photon-counting weights on the spectrum's own samples   filterIntegration.ts
 *
 * Redshift 0 means "absolute": the source is put at 10 pc with no (1+z) and no IGM (GALAXEV's and
 * Synthesizer's convention for rest-frame photometry).
 */
import { z } from 'zod';
import type { FilterCurve } from '../grid/filters.js';
import { type SpsGrid, lnuIndex } from '../grid/types.js';
import { SPEED_OF_LIGHT_AA_S, TEN_PARSEC_CM, MAG_PER_NEPER, NJY_CGS } from './constants.js';
import { CosmologySchema, CosmologyTable, type CosmologyInput } from './cosmology.js';
import { type DustLaw, DustLawSchema, dustTauOverTauVCurves } from './dust.js';
import { bandWeightMatrix } from './filterIntegration.js';
import { type Inoue14, madau1995Transmission } from './igm.js';
import { logNormalMetallicityWeights, singleMetallicityWeights } from './metallicity.js';
import { type Inoue11Table, LYMAN_LIMIT_AA, ionisingPhotonRateFromLnu, nebularTemplatePerPhoton } from './nebular.js';
import { type AgeBinConvention, type SfhParams, binSfh, createSfh, sfhDerivedQuantities, sfhParamsSchema } from './sfh.js';

export const ForwardModelConfigSchema = z
  .object({
    /** Age binning of the SFH: 'midpoint' (ours) or 'synthesizer' (oldest grid age gets no mass). */
    ageBinning: z.enum(['midpoint', 'synthesizer']).default('midpoint'),
    /** Single-Z interpolation between grid metallicities: linear in log10 Z (ours) or in Z (Synthesizer). */
    metallicityInterpolation: z.enum(['log10Z', 'linearZ']).default('log10Z'),
    dust: DustLawSchema.default({ law: 'calzetti2000' }),
    igm: z.enum(['inoue14', 'madau95', 'none']).default('inoue14'),
    nebular: z
      .object({ enabled: z.boolean().default(true), logU: z.number().min(-4).max(0).default(-2) })
      .strict()
      .default({}),
    cosmology: CosmologySchema.default({}),
  })
  .strict();
export type ForwardModelConfig = z.output<typeof ForwardModelConfigSchema>;
export type ForwardModelConfigInput = z.input<typeof ForwardModelConfigSchema>;

/** Conventions of the Synthesizer reference (../shared/reference/synthesizer/README.md). */
export const SYNTHESIZER_CONVENTIONS: ForwardModelConfigInput = {
  ageBinning: 'synthesizer',
  metallicityInterpolation: 'linearZ',
  dust: { law: 'calzetti2000', convention: 'synthesizer' },
  igm: 'inoue14',
  nebular: { enabled: false },
};

export const GalaxyParamsSchema = z
  .object({
    /** Source redshift; 0 = absolute (10 pc, rest frame). */
    redshift: z.number().min(0).max(30),
    log10MassFormedMsun: z.number().min(-5).max(15),
    /** Metallicity as log10 of the mass fraction Z (Z_sun ~ 0.02 in BC03). */
    log10Z: z.number().min(-8).max(0),
    /** Optional log-normal spread of the metallicity distribution [dex]; 0 = single Z. */
    log10ZSigmaDex: z.number().min(0).max(3).default(0),
    sfh: sfhParamsSchema,
    /** V-band attenuation [mag] of the ISM screen (all stars). */
    avMag: z.number().min(0).max(20).default(0),
    /** Charlot & Fall 2000 only: V-band attenuation [mag] of the birth clouds (young stars). */
    avBirthCloudMag: z.number().min(0).max(20).default(0),
    /** Ionisation parameter; defaults to the config's. */
    logU: z.number().min(-4).max(0).optional(),
  })
  .strict();
export type GalaxyParams = z.output<typeof GalaxyParamsSchema>;
export type GalaxyParamsInput = z.input<typeof GalaxyParamsSchema>;

export interface DerivedQuantities {
  massFormedMsun: number;
  survivingMassMsun: number;
  sfr10MyrMsunPerYr: number;
  sfr100MyrMsunPerYr: number;
  massWeightedAgeYr: number;
  /** UV slope beta (f_lambda ∝ lambda^beta), least-squares over rest 1268-2580 A after dust. */
  uvBeta: number;
  /** Ionising photon rate of the stars [photons/s] (nebular on or off). */
  qHPhotonsS: number;
  /** Age of the universe at the redshift [yr] (the SFH truncation). */
  ageOfUniverseYr: number;
  luminosityDistanceCm: number;
}

export interface PhotometryResult {
  fluxesNJy: Float64Array;
  derived: DerivedQuantities;
}

/** Data the model needs besides its config. */
export interface ForwardModelData {
  grid: SpsGrid;
  filters: FilterCurve[];
  /** Required when config.igm = 'inoue14'. */
  inoue14?: Inoue14;
  /** Required when nebular emission is enabled. */
  nebular?: Inoue11Table;
}

/** Rest-frame UV window of the beta fit (Calzetti et al. 1994 span). */
const UV_BETA_RANGE_AA = [1268, 2580] as const;

export class CpuForwardModel {
  readonly config: ForwardModelConfig;
  readonly cosmology: CosmologyTable;
  /** tau/tau_V curves of the dust law on the grid wavelengths. */
  readonly dustCurves: { ism: Float64Array; birthCloud: Float64Array | null };
  /** Ages below this go to the birth-cloud (young) spectrum; 0 without Charlot & Fall. */
  readonly birthCloudMaxAgeYr: number;
  private readonly nebularCache = new Map<string, Float64Array>();

  constructor(
    readonly data: ForwardModelData,
    config: ForwardModelConfigInput = {},
  ) {
    const parsed = ForwardModelConfigSchema.safeParse(config);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new Error(`forward model config: ${i.path.join('.') || '(root)'}: ${i.message}`);
    }
    this.config = parsed.data;
    if (this.config.igm === 'inoue14' && !data.inoue14) throw new Error('forward model: igm "inoue14" needs the Inoue 2014 coefficients (data.inoue14)');
    if (this.config.nebular.enabled && !data.nebular) throw new Error('forward model: nebular emission needs the Inoue 2011 tables (data.nebular)');
    if (!data.filters.length) throw new Error('forward model: no filters');
    this.cosmology = new CosmologyTable(this.config.cosmology as CosmologyInput);
    this.dustCurves = dustTauOverTauVCurves(this.config.dust as DustLaw, data.grid.wavelengthAA);
    this.birthCloudMaxAgeYr = this.config.dust.law === 'charlotFall2000' ? this.config.dust.birthCloudMaxAgeYr : 0;
  }

  get bandNames(): string[] {
    return this.data.filters.map((f) => f.name);
  }

  /** Mass per grid age [Msun] (and the SFH model) for a galaxy. */
  ageMasses(p: GalaxyParams, ageOfUniverseYr: number) {
    const sfh = createSfh(p.sfh as SfhParams, ageOfUniverseYr);
    const binned = binSfh(sfh, this.data.grid.ages, 10 ** p.log10MassFormedMsun, this.config.ageBinning as AgeBinConvention);
    return { sfh, binned };
  }

  metallicityWeights(p: GalaxyParams): Float64Array {
    const Z = 10 ** p.log10Z;
    return p.log10ZSigmaDex > 0
      ? logNormalMetallicityWeights(this.data.grid.metallicities, p.log10Z, p.log10ZSigmaDex)
      : singleMetallicityWeights(this.data.grid.metallicities, Z, this.config.metallicityInterpolation);
  }

  private nebularTemplate(Z: number, logU: number): Float64Array {
    const key = `${Z}|${logU}`;
    let t = this.nebularCache.get(key);
    if (!t) {
      t = nebularTemplatePerPhoton(this.data.nebular!, this.data.grid.wavelengthAA, Z, logU);
      if (this.nebularCache.size > 256) this.nebularCache.clear();
      this.nebularCache.set(key, t);
    }
    return t;
  }

  /**
   * Rest-frame L_nu [erg/s/Hz] after nebular emission and dust, plus the intermediate pieces.
   */
  restFrameSpectrum(p: GalaxyParams) {
    const g = this.data.grid;
    const nLam = g.wavelengthAA.length;
    const nZ = g.metallicities.length;
    const ageOfUniverseYr = p.redshift > 0 ? this.cosmology.ageYr(p.redshift) : this.cosmology.ageYr(0);
    const { sfh, binned } = this.ageMasses(p, ageOfUniverseYr);
    const wZ = this.metallicityWeights(p);
    const young = new Float64Array(nLam);
    const old = new Float64Array(nLam);
    let survivingMassMsun = 0;
    for (let a = 0; a < g.ages.length; a++) {
      const m = binned.massesMsun[a];
      if (m === 0) continue;
      const target = g.ages[a] < this.birthCloudMaxAgeYr ? young : old;
      for (let iz = 0; iz < nZ; iz++) {
        const w = m * wZ[iz];
        if (w === 0) continue;
        survivingMassMsun += w * g.survivingMassFraction[a * nZ + iz];
        const off = lnuIndex(g, a, iz);
        for (let l = 0; l < nLam; l++) target[l] += w * g.lnu[off + l];
      }
    }
    const stellar = Float64Array.from(young, (v, i) => v + old[i]);
    const qHPhotonsS = ionisingPhotonRateFromLnu(g.wavelengthAA, stellar);
    if (this.config.nebular.enabled) {
      // f_esc = 0: every ionising photon is reprocessed; the nebula sits in the birth clouds.
      const neb = this.nebularTemplate(10 ** p.log10Z, p.logU ?? this.config.nebular.logU);
      for (let l = 0; l < nLam && g.wavelengthAA[l] < LYMAN_LIMIT_AA; l++) young[l] = old[l] = 0;
      for (let l = 0; l < nLam; l++) (this.birthCloudMaxAgeYr > 0 ? young : old)[l] += qHPhotonsS * neb[l];
    }
    const tauIsm = p.avMag / MAG_PER_NEPER;
    const tauBc = p.avBirthCloudMag / MAG_PER_NEPER;
    const lnu = new Float64Array(nLam);
    const { ism, birthCloud } = this.dustCurves;
    for (let l = 0; l < nLam; l++) {
      const tBc = birthCloud ? Math.exp(-tauBc * birthCloud[l]) : 1;
      lnu[l] = Math.exp(-tauIsm * ism[l]) * (tBc * young[l] + old[l]);
    }
    return { lnu, sfh, binned, wZ, survivingMassMsun, qHPhotonsS, ageOfUniverseYr };
  }

  /** Observed-frame f_nu [nJy] on the observed wavelengths grid.wavelengthAA (1+z). */
  observedFnuNJy(p: GalaxyParams, lnu: Float64Array): { fnuNJy: Float64Array; luminosityDistanceCm: number } {
    const g = this.data.grid;
    const zs = p.redshift;
    const dL = zs > 0 ? this.cosmology.luminosityDistanceCm(zs) : TEN_PARSEC_CM;
    const scale = (zs > 0 ? 1 + zs : 1) / (4 * Math.PI * dL * dL) / NJY_CGS;
    const fnu = new Float64Array(lnu.length);
    for (let l = 0; l < lnu.length; l++) {
      let t = 1;
      if (zs > 0) {
        const lamObs = g.wavelengthAA[l] * (1 + zs);
        if (this.config.igm === 'inoue14') t = this.data.inoue14!.transmission(lamObs, zs);
        else if (this.config.igm === 'madau95') t = madau1995Transmission(lamObs, zs);
      }
      fnu[l] = lnu[l] * scale * t;
    }
    return { fnuNJy: fnu, luminosityDistanceCm: dL };
  }

  /** Validated galaxy parameters (defaults filled); errors name the parameter. */
  parseGalaxy(input: GalaxyParamsInput): GalaxyParams {
    const parsed = GalaxyParamsSchema.safeParse(input);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new RangeError(`galaxy parameter ${i.path.join('.')}: ${i.message}`);
    }
    return parsed.data;
  }

  /** Band fluxes [nJy] and derived quantities for one galaxy. */
  photometry(input: GalaxyParamsInput): PhotometryResult {
    const p = this.parseGalaxy(input);
    const g = this.data.grid;
    const rest = this.restFrameSpectrum(p);
    const { fnuNJy, luminosityDistanceCm } = this.observedFnuNJy(p, rest.lnu);
    const W = bandWeightMatrix(this.data.filters, g.wavelengthAA, p.redshift);
    const fluxesNJy = new Float64Array(W.nFilters);
    for (let b = 0; b < W.nFilters; b++) {
      let s = 0;
      const off = b * W.nLambda;
      for (let l = 0; l < W.nLambda; l++) s += W.matrix[off + l] * fnuNJy[l];
      fluxesNJy[b] = s;
    }
    const massFormedMsun = 10 ** p.log10MassFormedMsun;
    const d = sfhDerivedQuantities(rest.sfh, rest.binned, g.ages, massFormedMsun);
    return {
      fluxesNJy,
      derived: {
        massFormedMsun,
        survivingMassMsun: rest.survivingMassMsun,
        sfr10MyrMsunPerYr: d.sfr10MyrMsunPerYr,
        sfr100MyrMsunPerYr: d.sfr100MyrMsunPerYr,
        massWeightedAgeYr: d.massWeightedAgeYr,
        uvBeta: uvSlopeBeta(g.wavelengthAA, rest.lnu),
        qHPhotonsS: rest.qHPhotonsS,
        ageOfUniverseYr: rest.ageOfUniverseYr,
        luminosityDistanceCm,
      },
    };
  }
}

/**
 * UV slope beta: least-squares slope of ln f_lambda against ln lambda over the rest-frame samples in
 * 1268-2580 A (f_lambda ∝ L_nu / lambda^2). NaN when fewer than 2 samples or a non-positive flux.
 */
export function uvSlopeBeta(wavelengthAA: ArrayLike<number>, lnu: ArrayLike<number>): number {
  let n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (let l = 0; l < wavelengthAA.length; l++) {
    const lam = wavelengthAA[l];
    if (lam < UV_BETA_RANGE_AA[0] || lam > UV_BETA_RANGE_AA[1]) continue;
    const flam = (lnu[l] * SPEED_OF_LIGHT_AA_S) / (lam * lam);
    if (!(flam > 0)) return NaN;
    const x = Math.log(lam);
    const y = Math.log(flam);
    n++;
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  if (n < 2) return NaN;
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}
