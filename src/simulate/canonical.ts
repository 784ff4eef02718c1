/**
 * The canonical per-galaxy parameter row that the GPU synthesis reads: CANONICAL_WIDTH f32 per
 * galaxy, row-major (N x CANONICAL_WIDTH). Priors produce the model's free parameters theta; a
 * mapping (simulate/) turns theta into this row. The SFH family is a property of the model (a
 * compile-time define of the synthesis kernels), so its parameters share slots s0..s4.
 *
 *   0 redshift            1 log10MassFormedMsun   2 log10Z          3 log10ZSigmaDex (0 = single Z)
 *   4 avMag (ISM / single screen)                 5 avBirthCloudMag 6 logU
 *   7..11 SFH slots s0..s4, by family:
 *     constant            s0 = startAgeYr
 *     exponential         s0 = startAgeYr, s1 = tauYr
 *     delayedExponential  s0 = startAgeYr, s1 = tauYr
 *     logNormal           s0 = startAgeYr, s1 = tau (dimensionless), s2 = peakAgeYr
 *     doublePowerLaw      s0 = alpha, s1 = beta, s2 = tauYr
 *     quantiles           s0 = log10SsfrPerYr, s1 = t25, s2 = t50, s3 = t75 (fractions of the age of the universe)
 * The WGSL mirror is shaders/synth/galaxy.wgsl.
 */
import type { GalaxyParamsInput } from '../physics/forwardModel.js';
import type { SfhFamily, SfhParams } from '../physics/sfh.js';

export const CANONICAL_WIDTH = 12;

export const CANONICAL = {
  redshift: 0,
  log10MassFormedMsun: 1,
  log10Z: 2,
  log10ZSigmaDex: 3,
  avMag: 4,
  avBirthCloudMag: 5,
  logU: 6,
  s0: 7,
  s1: 8,
  s2: 9,
  s3: 10,
  s4: 11,
} as const;

export const SFH_FAMILY_CODES: Record<SfhFamily, number> = {
  constant: 0,
  exponential: 1,
  delayedExponential: 2,
  logNormal: 3,
  doublePowerLaw: 4,
  quantiles: 5,
};

/** SFH parameters -> slots s0..s4. */
export function sfhToSlots(sfh: SfhParams): number[] {
  switch (sfh.family) {
    case 'constant':
      return [sfh.startAgeYr, 0, 0, 0, 0];
    case 'exponential':
    case 'delayedExponential':
      return [sfh.startAgeYr, sfh.tauYr, 0, 0, 0];
    case 'logNormal':
      return [sfh.startAgeYr, sfh.tau, sfh.peakAgeYr, 0, 0];
    case 'doublePowerLaw':
      return [sfh.alpha, sfh.beta, sfh.tauYr, 0, 0];
    case 'quantiles':
      return [sfh.log10SsfrPerYr, sfh.t25, sfh.t50, sfh.t75, 0];
  }
}

/** Slots s0..s4 -> SFH parameters of a family. */
export function slotsToSfh(family: SfhFamily, s: ArrayLike<number>): SfhParams {
  switch (family) {
    case 'constant':
      return { family, startAgeYr: s[0] };
    case 'exponential':
    case 'delayedExponential':
      return { family, startAgeYr: s[0], tauYr: s[1] };
    case 'logNormal':
      return { family, startAgeYr: s[0], tau: s[1], peakAgeYr: s[2] };
    case 'doublePowerLaw':
      return { family, alpha: s[0], beta: s[1], tauYr: s[2] };
    case 'quantiles':
      return { family, log10SsfrPerYr: s[0], t25: s[1], t50: s[2], t75: s[3] };
  }
}

/** One galaxy's parameters as a canonical row (logU defaults to `defaultLogU`). */
export function toCanonicalRow(p: GalaxyParamsInput, defaultLogU = -2, out = new Float64Array(CANONICAL_WIDTH)): Float64Array {
  out[CANONICAL.redshift] = p.redshift;
  out[CANONICAL.log10MassFormedMsun] = p.log10MassFormedMsun;
  out[CANONICAL.log10Z] = p.log10Z;
  out[CANONICAL.log10ZSigmaDex] = p.log10ZSigmaDex ?? 0;
  out[CANONICAL.avMag] = p.avMag ?? 0;
  out[CANONICAL.avBirthCloudMag] = p.avBirthCloudMag ?? 0;
  out[CANONICAL.logU] = p.logU ?? defaultLogU;
  out.set(sfhToSlots(p.sfh as SfhParams), CANONICAL.s0);
  return out;
}

/** A canonical row back to galaxy parameters for a given SFH family. */
export function fromCanonicalRow(row: ArrayLike<number>, family: SfhFamily): GalaxyParamsInput {
  return {
    redshift: row[CANONICAL.redshift],
    log10MassFormedMsun: row[CANONICAL.log10MassFormedMsun],
    log10Z: row[CANONICAL.log10Z],
    log10ZSigmaDex: row[CANONICAL.log10ZSigmaDex],
    avMag: row[CANONICAL.avMag],
    avBirthCloudMag: row[CANONICAL.avBirthCloudMag],
    logU: row[CANONICAL.logU],
    sfh: slotsToSfh(family, Array.from({ length: 5 }, (_, i) => row[CANONICAL.s0 + i])),
  };
}
