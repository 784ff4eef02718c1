/**
 * Galaxy parameters from a CSV table, one galaxy per row. Columns (units in the names; documented in
 * the README; unknown columns are an error, so a typo is not silently ignored):
 *
 *   id                  optional, copied to the output
 *   redshift            source redshift (0 = absolute magnitudes at 10 pc)
 *   log10_mass_formed   log10 of the stellar mass formed [Msun]
 *   log10Z | Z          metallicity (mass fraction), one of the two
 *   log10Z_sigma        optional: log-normal metallicity spread [dex]
 *   sfh                 constant | exponential | delayedExponential | logNormal | doublePowerLaw | quantiles
 *   start_age_yr        lookback age at which star formation starts (constant, exponential,
 *                       delayedExponential, logNormal) [yr]
 *   tau_yr              e-folding time (exponential, delayedExponential) or peak time (doublePowerLaw) [yr]
 *   lognormal_tau       dimensionless width (logNormal);  peak_age_yr: lookback age of the peak [yr]
 *   dpl_alpha, dpl_beta falling / rising slopes (doublePowerLaw)
 *   log10_ssfr, t25, t50, t75   quantiles family: log10 sSFR over 100 Myr [1/yr]; times of 25/50/75 %
 *                       of the formed mass as fractions of the age of the universe
 *   av                  V-band attenuation [mag] (ISM / single screen); av_birth_cloud: CF00 birth clouds
 *   logU                optional ionisation parameter
 */
import type { GalaxyParamsInput } from '../physics/forwardModel.js';
import { type CsvTable, numberCell, readCsv } from './csv.js';

export const PARAM_COLUMNS = [
  'id', 'redshift', 'log10_mass_formed', 'log10Z', 'Z', 'log10Z_sigma', 'sfh', 'start_age_yr', 'tau_yr', 'lognormal_tau',
  'peak_age_yr', 'dpl_alpha', 'dpl_beta', 'log10_ssfr', 't25', 't50', 't75', 'av', 'av_birth_cloud', 'logU',
] as const;

const SFH_FAMILIES = ['constant', 'exponential', 'delayedExponential', 'logNormal', 'doublePowerLaw', 'quantiles'] as const;

export interface GalaxyRow {
  id: string;
  params: GalaxyParamsInput;
}

export function galaxyParamsFromTable(t: CsvTable): GalaxyRow[] {
  const unknown = t.columns.filter((c) => !(PARAM_COLUMNS as readonly string[]).includes(c));
  if (unknown.length) throw new Error(`${t.file}: unknown column(s) ${unknown.join(', ')} (allowed: ${PARAM_COLUMNS.join(', ')})`);
  return t.rows.map((r, i) => {
    const num = (c: string) => numberCell(t, i, c);
    const opt = (c: string, dflt: number) => {
      const v = numberCell(t, i, c, true);
      return Number.isNaN(v) ? dflt : v;
    };
    const family = r.sfh;
    if (!(SFH_FAMILIES as readonly string[]).includes(family)) {
      throw new Error(`${t.file}: row ${i + 2}, column "sfh": "${family ?? ''}" is not one of ${SFH_FAMILIES.join(', ')}`);
    }
    let sfh: GalaxyParamsInput['sfh'];
    switch (family as (typeof SFH_FAMILIES)[number]) {
      case 'constant':
        sfh = { family: 'constant', startAgeYr: num('start_age_yr') };
        break;
      case 'exponential':
        sfh = { family: 'exponential', tauYr: num('tau_yr'), startAgeYr: num('start_age_yr') };
        break;
      case 'delayedExponential':
        sfh = { family: 'delayedExponential', tauYr: num('tau_yr'), startAgeYr: num('start_age_yr') };
        break;
      case 'logNormal':
        sfh = { family: 'logNormal', tau: num('lognormal_tau'), peakAgeYr: num('peak_age_yr'), startAgeYr: num('start_age_yr') };
        break;
      case 'doublePowerLaw':
        sfh = { family: 'doublePowerLaw', alpha: num('dpl_alpha'), beta: num('dpl_beta'), tauYr: num('tau_yr') };
        break;
      case 'quantiles':
        sfh = { family: 'quantiles', log10SsfrPerYr: num('log10_ssfr'), t25: num('t25'), t50: num('t50'), t75: num('t75') };
        break;
    }
    const hasLogZ = r.log10Z !== undefined && r.log10Z !== '';
    const hasZ = r.Z !== undefined && r.Z !== '';
    if (hasLogZ === hasZ) throw new Error(`${t.file}: row ${i + 2}: give exactly one of the columns "log10Z" and "Z"`);
    const log10Z = hasLogZ ? num('log10Z') : Math.log10(num('Z'));
    const logU = numberCell(t, i, 'logU', true);
    return {
      id: r.id ?? String(i),
      params: {
        redshift: num('redshift'),
        log10MassFormedMsun: num('log10_mass_formed'),
        log10Z,
        log10ZSigmaDex: opt('log10Z_sigma', 0),
        sfh,
        avMag: opt('av', 0),
        avBirthCloudMag: opt('av_birth_cloud', 0),
        ...(Number.isNaN(logU) ? {} : { logU }),
      },
    };
  });
}

export function readGalaxyParamsCsv(file: string): GalaxyRow[] {
  return galaxyParamsFromTable(readCsv(file));
}

/** Output columns of the derived quantities, in order, with their source fields. */
export const DERIVED_COLUMNS = [
  ['mass_formed_msun', 'massFormedMsun'],
  ['surviving_mass_msun', 'survivingMassMsun'],
  ['sfr10_msun_yr', 'sfr10MyrMsunPerYr'],
  ['sfr100_msun_yr', 'sfr100MyrMsunPerYr'],
  ['mass_weighted_age_yr', 'massWeightedAgeYr'],
  ['uv_beta', 'uvBeta'],
  ['qh_photons_s', 'qHPhotonsS'],
  ['age_universe_yr', 'ageOfUniverseYr'],
  ['luminosity_distance_cm', 'luminosityDistanceCm'],
] as const;
