/**
 * Rest-frame dust attenuation curves, float64 reference.
 *
 * Conventions: wavelengths in Angstrom unless the name says Um (micron); A(lambda) in magnitudes;
 * tau(lambda) = A(lambda) / (2.5 log10 e); transmission = exp(-tau) = 10^(-0.4 A).
 * "tauOverTauV" curves are tau(lambda)/tau_V, so T(lambda) = exp(-tau_V * curve(lambda)).
 *
 * Laws:
 *  - Calzetti et al. 2000 (ApJ 533, 682) eq. 4 starburst attenuation k(lambda), R_V = 4.05 (eq. 5),
 *    with the Noll et al. 2009 (A&A 507, 1793) eqs. 3-4 modification: a Drude 2175 A bump and a
 *    power-law slope change delta.
 *  - The exact Synthesizer (v0.9.x, emission_models/transformers/dust_attenuation.py: N09Tau,
 *    Calzetti2000) tabulated convention, with which the reference fluxes were made.
 *  - Power law A(lambda) = A_V (lambda / 5500 A)^n.
 *  - Charlot & Fall 2000 (ApJ 539, 718) two components: birth clouds (stars younger than 10 Myr)
 *    and diffuse ISM (all stars), each tau_V (lambda / 5500 A)^n with n = -0.7 by default (their eq. 4
 *    and section 4).
 */
import { z } from 'zod';
import { MAG_PER_NEPER } from './constants.js';

/** Calzetti et al. 2000 total-to-selective ratio R_V = A_V / E(B-V)_star (eq. 5). */
export const CALZETTI_RV = 4.05;
/** V-band reference wavelength [A] of the power laws, CF00 and the Noll et al. 2009 slope change. */
export const V_BAND_AA = 5500;
/** Noll et al. 2009 2175 A bump defaults: central wavelength and FWHM [A] (their section 3.2). */
export const BUMP_CENTRE_AA = 2175;
export const BUMP_FWHM_AA = 350;
/** Charlot & Fall 2000: stars younger than this [yr] sit in their birth clouds. */
export const CF00_BIRTH_CLOUD_MAX_AGE_YR = 1e7;
/** Charlot & Fall 2000 default slope of tau(lambda) ~ lambda^n for both components. */
export const CF00_DEFAULT_SLOPE = -0.7;

// ---------------------------------------------------------------------------------------------
// Calzetti et al. 2000
// ---------------------------------------------------------------------------------------------

/** Calzetti 2000 eq. 4 UV/optical polynomial without the 2.659 scale and R_V offset (lambda in um). */
function calzettiUvPoly(um: number): number {
  return -2.156 + 1.509 / um - 0.198 / (um * um) + 0.011 / um ** 3;
}
/** Calzetti 2000 eq. 4 optical/NIR branch without the 2.659 scale and R_V offset (lambda in um). */
function calzettiOptPoly(um: number): number {
  return -1.857 + 1.04 / um;
}

/**
 * Calzetti 2000 eq. 4, first line: k = 2.659 (-2.156 + 1.509/x - 0.198/x^2 + 0.011/x^3) + R_V,
 * x = lambda in um; published for 0.12 <= x < 0.63 um. Evaluated here wherever asked.
 */
export function calzetti2000KUvBranch(wavelengthAA: number): number {
  return CALZETTI_RV + 2.659 * calzettiUvPoly(wavelengthAA * 1e-4);
}

/**
 * Calzetti 2000 eq. 4, second line: k = 2.659 (-1.857 + 1.040/x) + R_V, published for
 * 0.63 <= x <= 2.20 um. Evaluated here wherever asked (it turns negative above 3.11 um).
 */
export function calzetti2000KOpticalBranch(wavelengthAA: number): number {
  return CALZETTI_RV + 2.659 * calzettiOptPoly(wavelengthAA * 1e-4);
}

/**
 * Calzetti 2000 eq. 4, k(lambda) = A(lambda)/E(B-V)_star: the UV branch below 6300 A, the optical
 * branch from 6300 A. Valid range 1200 A - 2.2 um; outside it this is the bare formula
 * (UV polynomial below 1200 A, optical line above 2.2 um). The published coefficients leave a
 * jump of 0.0251 at 6300 A (k = 3.4766 from below, 3.5016 from above).
 */
export function calzetti2000K(wavelengthAA: number): number {
  return wavelengthAA < 6300 ? calzetti2000KUvBranch(wavelengthAA) : calzetti2000KOpticalBranch(wavelengthAA);
}

/**
 * k at 5500 A from the UV branch, 4.047890380165..: the branch that contains 0.55 um, hence what
 * calzetti2000K(5500) returns and what Synthesizer uses as k_V. R_V = 4.05 is the published,
 * rounded normalisation; the formula reproduces it to 5e-4.
 */
export const CALZETTI_KV_UV_BRANCH = calzetti2000KUvBranch(V_BAND_AA);
/** k at 5500 A from the optical branch (outside its published range), 4.140164272727..: for reference only. */
export const CALZETTI_KV_OPTICAL_BRANCH = calzetti2000KOpticalBranch(V_BAND_AA);

// ---------------------------------------------------------------------------------------------
// Noll et al. 2009 modification
// ---------------------------------------------------------------------------------------------

export interface Noll09Options {
  /** Bump amplitude E_b (in units of k, i.e. added to k(lambda)); 0 = no bump. */
  bumpAmplitude?: number;
  /** Bump central wavelength [A], default 2175. */
  bumpCentreAA?: number;
  /** Bump FWHM [A], default 350. */
  bumpFwhmAA?: number;
  /** Power-law slope change delta: k is multiplied by (lambda / 5500 A)^delta; 0 = Calzetti. */
  delta?: number;
}

/**
 * Noll et al. 2009 eq. 3 Drude profile D(lambda) = E_b (lambda dl)^2 / ((lambda^2 - l0^2)^2 + (lambda dl)^2).
 * Its maximum is exactly E_b at lambda = l0 (divide numerator and denominator by lambda^2).
 */
export function noll09Bump(
  wavelengthAA: number,
  amplitude: number,
  centreAA = BUMP_CENTRE_AA,
  fwhmAA = BUMP_FWHM_AA,
): number {
  if (amplitude === 0) return 0;
  const lg = wavelengthAA * fwhmAA;
  const d = wavelengthAA * wavelengthAA - centreAA * centreAA;
  return (amplitude * lg * lg) / (d * d + lg * lg);
}

/** Noll et al. 2009 eq. 4: k'(lambda) = (k(lambda) + D(lambda)) (lambda / 5500 A)^delta, k from calzetti2000K. */
export function noll09K(wavelengthAA: number, options: Noll09Options = {}): number {
  const { bumpAmplitude = 0, bumpCentreAA = BUMP_CENTRE_AA, bumpFwhmAA = BUMP_FWHM_AA, delta = 0 } = options;
  const k = calzetti2000K(wavelengthAA) + noll09Bump(wavelengthAA, bumpAmplitude, bumpCentreAA, bumpFwhmAA);
  return delta === 0 ? k : k * Math.pow(wavelengthAA / V_BAND_AA, delta);
}

/**
 * Published ("paper") convention: A(lambda) = A_V k'(lambda) / R_V, i.e. E(B-V) = A_V / 4.05 (Calzetti
 * 2000 eqs. 2-5). k' is clamped at 0 (the optical line goes negative above 3.11 um). Note that
 * A(5500 A) = A_V * 4.04789/4.05 here because the UV branch gives k(0.55 um) = 4.04789.
 */
export function calzetti2000AttenuationMag(wavelengthAA: number, avMag: number, options: Noll09Options = {}): number {
  return (avMag * Math.max(0, noll09K(wavelengthAA, options))) / CALZETTI_RV;
}

/** Paper convention as a tau/tau_V curve: max(0, k'(lambda)) / R_V. */
export function calzetti2000TauOverTauV(wavelengthAA: number, options: Noll09Options = {}): number {
  return Math.max(0, noll09K(wavelengthAA, options)) / CALZETTI_RV;
}

// ---------------------------------------------------------------------------------------------
// Synthesizer's tabulated Calzetti / Noll convention
// ---------------------------------------------------------------------------------------------

/** Synthesizer's k_V: the UV branch at 0.55 um (k_v in N09Tau). */
export const SYNTHESIZER_KV = CALZETTI_KV_UV_BRANCH;
const SYN_N = 10000;
const SYN_LO_UM = 0.01;
const SYN_HI_UM = 3.0;
// numpy.linspace(0.01, 3.0, 10000): node i = i * step + start, last node forced to stop.
const SYN_STEP_UM = (SYN_HI_UM - SYN_LO_UM) / (SYN_N - 1);

/**
 * Synthesizer's Calzetti2000 / N09Tau curve tau(lambda)/tau_V, reproduced operation by operation:
 *  1. nodes x_i = numpy.linspace(0.01, 3.0, 10000) um;
 *  2. polynomial p(x) = UV branch for 0.12 <= x < 0.63, optical branch for 0.63 <= x < 3.1;
 *  3. for x < 0.12: linear extrapolation of the UV-branch node values through the first two nodes
 *     >= 0.12 um (x_368 = 0.120043, x_369 = 0.120342; scipy interp1d(fill_value='extrapolate'));
 *  4. k = 4.05 + 2.659 p; curve = (k + D(x)) / k_V * (x / 0.55)^slope, k_V = 4.04789 (UV branch at 0.55);
 *  5. evaluation: linear interpolation in x = lambda[A] * 1e-4 on the nodes (np.interp), held at the
 *     end values below 0.01 um and above 3 um.
 * The reference transmission is exp(-tau_V * curve) with tau_V = A_V / 1.0857362.
 */
export class SynthesizerCalzetti2000 {
  /** Node wavelengths [um] (as numpy's linspace). */
  readonly nodesUm: Float64Array;
  /** tau/tau_V at the nodes. */
  readonly nodesTauOverTauV: Float64Array;

  constructor(options: Noll09Options = {}) {
    const { bumpAmplitude = 0, bumpCentreAA = BUMP_CENTRE_AA, bumpFwhmAA = BUMP_FWHM_AA, delta = 0 } = options;
    const x = new Float64Array(SYN_N);
    for (let i = 0; i < SYN_N; i++) x[i] = i * SYN_STEP_UM + SYN_LO_UM;
    x[SYN_N - 1] = SYN_HI_UM;
    const p = new Float64Array(SYN_N);
    let first = -1;
    for (let i = 0; i < SYN_N; i++) {
      const xi = x[i];
      if (xi >= 0.12 && xi < 0.63) {
        p[i] = calzettiUvPoly(xi);
        if (first < 0) first = i;
      } else if (xi >= 0.63 && xi < 3.1) p[i] = calzettiOptPoly(xi);
    }
    // scipy interp1d linear extrapolation below the first UV node: slope * (x - x_lo) + y_lo.
    const slope = (p[first + 1] - p[first]) / (x[first + 1] - x[first]);
    for (let i = 0; i < first; i++) p[i] = slope * (x[i] - x[first]) + p[first];
    const centreUm = bumpCentreAA * 1e-4;
    const fwhmUm = bumpFwhmAA * 1e-4;
    const out = new Float64Array(SYN_N);
    for (let i = 0; i < SYN_N; i++) {
      const k = 4.05 + 2.659 * p[i];
      const lg = x[i] * fwhmUm;
      const d = x[i] * x[i] - centreUm * centreUm;
      const bump = (bumpAmplitude * (lg * lg)) / (d * d + lg * lg);
      let t = (k + bump) / SYNTHESIZER_KV;
      if (delta !== 0) t *= Math.pow(x[i] / 0.55, delta);
      out[i] = t;
    }
    this.nodesUm = x;
    this.nodesTauOverTauV = out;
  }

  /** tau(lambda)/tau_V at a rest-frame wavelength [A] (np.interp on the table, constant outside). */
  tauOverTauV(wavelengthAA: number): number {
    const x = wavelengthAA * 1e-4;
    const xs = this.nodesUm;
    const ys = this.nodesTauOverTauV;
    if (!(x > xs[0])) return x === x ? ys[0] : NaN;
    if (x >= xs[SYN_N - 1]) return ys[SYN_N - 1];
    // Uniform guess, then fix up against the actual (rounded) nodes so the bracket is np.interp's.
    let j = Math.floor((x - SYN_LO_UM) / SYN_STEP_UM);
    if (j > SYN_N - 2) j = SYN_N - 2;
    while (j > 0 && xs[j] > x) j--;
    while (j < SYN_N - 2 && xs[j + 1] <= x) j++;
    if (xs[j] === x) return ys[j];
    const s = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]);
    return s * (x - xs[j]) + ys[j];
  }

  /** exp(-tau_V * tau(lambda)/tau_V). */
  transmission(tauV: number, wavelengthAA: number): number {
    return Math.exp(-tauV * this.tauOverTauV(wavelengthAA));
  }

  /** tau/tau_V on an array of rest-frame wavelengths [A]. */
  tauOverTauVArray(wavelengthsAA: ArrayLike<number>, out = new Float64Array(wavelengthsAA.length)): Float64Array {
    for (let i = 0; i < wavelengthsAA.length; i++) out[i] = this.tauOverTauV(wavelengthsAA[i]);
    return out;
  }

  /** Transmission on an array of rest-frame wavelengths [A]. */
  transmissionArray(tauV: number, wavelengthsAA: ArrayLike<number>, out = new Float64Array(wavelengthsAA.length)): Float64Array {
    for (let i = 0; i < wavelengthsAA.length; i++) out[i] = Math.exp(-tauV * this.tauOverTauV(wavelengthsAA[i]));
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Power law and Charlot & Fall 2000
// ---------------------------------------------------------------------------------------------

/** Power-law curve tau(lambda)/tau_V = (lambda / 5500 A)^slope. */
export function powerLawTauOverTauV(wavelengthAA: number, slope: number): number {
  return Math.pow(wavelengthAA / V_BAND_AA, slope);
}

/** Power-law attenuation A(lambda) = A_V (lambda / 5500 A)^slope [mag]. */
export function powerLawAttenuationMag(wavelengthAA: number, avMag: number, slope: number): number {
  return avMag * Math.pow(wavelengthAA / V_BAND_AA, slope);
}

export interface CharlotFall2000Params {
  /** V-band optical depth of the birth clouds (applied to stars younger than 10 Myr only). */
  tauVBirthCloud: number;
  /** V-band optical depth of the diffuse ISM (applied to all stars). */
  tauVIsm: number;
  /** Slope n of tau ~ (lambda/5500 A)^n in the birth clouds, default -0.7. */
  slopeBirthCloud?: number;
  /** Slope n of tau ~ (lambda/5500 A)^n in the ISM, default -0.7. */
  slopeIsm?: number;
}

/**
 * Charlot & Fall 2000 transmissions at one wavelength: young stars (age < CF00_BIRTH_CLOUD_MAX_AGE_YR)
 * get birthCloud * ism, older stars ism only.
 */
export function charlotFall2000Transmission(
  wavelengthAA: number,
  p: CharlotFall2000Params,
): { birthCloud: number; ism: number } {
  const nBC = p.slopeBirthCloud ?? CF00_DEFAULT_SLOPE;
  const nISM = p.slopeIsm ?? CF00_DEFAULT_SLOPE;
  return {
    birthCloud: Math.exp(-p.tauVBirthCloud * powerLawTauOverTauV(wavelengthAA, nBC)),
    ism: Math.exp(-p.tauVIsm * powerLawTauOverTauV(wavelengthAA, nISM)),
  };
}

/** Charlot & Fall 2000 transmission curves on an array of rest-frame wavelengths [A]. */
export function charlotFall2000Curves(
  wavelengthsAA: ArrayLike<number>,
  p: CharlotFall2000Params,
): { birthCloud: Float64Array; ism: Float64Array } {
  const n = wavelengthsAA.length;
  const birthCloud = new Float64Array(n);
  const ism = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = charlotFall2000Transmission(wavelengthsAA[i], p);
    birthCloud[i] = t.birthCloud;
    ism[i] = t.ism;
  }
  return { birthCloud, ism };
}

/** Whether an SSP of this age sits in its birth cloud under CF00 (age strictly below 10 Myr by default). */
export function isInBirthCloud(ageYr: number, maxAgeYr = CF00_BIRTH_CLOUD_MAX_AGE_YR): boolean {
  return ageYr < maxAgeYr;
}

// ---------------------------------------------------------------------------------------------
// Conversions and configuration
// ---------------------------------------------------------------------------------------------

/** Optical depth from attenuation in magnitudes: tau = A / (2.5 log10 e). */
export function magToTau(aMag: number): number {
  return aMag / MAG_PER_NEPER;
}

/** Transmission from attenuation in magnitudes: 10^(-0.4 A). */
export function transmissionFromMag(aMag: number): number {
  return Math.pow(10, -0.4 * aMag);
}

/** Transmission from optical depth: exp(-tau). */
export function transmissionFromTau(tau: number): number {
  return Math.exp(-tau);
}

/** Dust law selection for configs. tau_V (or A_V) itself is a per-galaxy parameter, not part of the law. */
export const DustLawSchema = z.discriminatedUnion('law', [
  z.object({ law: z.literal('none') }).strict(),
  z
    .object({
      law: z.literal('calzetti2000'),
      /** 'synthesizer': SynthesizerCalzetti2000 (tau/tau_V = k'/4.04789, tabulated); 'paper': k'/4.05. */
      convention: z.enum(['synthesizer', 'paper']).default('synthesizer'),
      bumpAmplitude: z.number().min(0).max(20).default(0),
      bumpCentreAA: z.number().min(1000).max(4000).default(BUMP_CENTRE_AA),
      bumpFwhmAA: z.number().gt(0).max(2000).default(BUMP_FWHM_AA),
      delta: z.number().min(-3).max(3).default(0),
    })
    .strict(),
  z.object({ law: z.literal('powerLaw'), slope: z.number().min(-5).max(5).default(CF00_DEFAULT_SLOPE) }).strict(),
  z
    .object({
      law: z.literal('charlotFall2000'),
      slopeBirthCloud: z.number().min(-5).max(5).default(CF00_DEFAULT_SLOPE),
      slopeIsm: z.number().min(-5).max(5).default(CF00_DEFAULT_SLOPE),
      birthCloudMaxAgeYr: z.number().gt(0).max(1e9).default(CF00_BIRTH_CLOUD_MAX_AGE_YR),
    })
    .strict(),
]);
export type DustLaw = z.output<typeof DustLawSchema>;

/**
 * The tau/tau_V curves of a law on rest-frame wavelengths [A]. Single-screen laws fill `ism` (apply to
 * all stars) and return birthCloud = null; CF00 also returns its birth-cloud curve (young stars only).
 * Transmission is exp(-tau_V * curve) with the matching per-galaxy tau_V.
 */
export function dustTauOverTauVCurves(
  law: DustLaw,
  wavelengthsAA: ArrayLike<number>,
): { ism: Float64Array; birthCloud: Float64Array | null } {
  const n = wavelengthsAA.length;
  const ism = new Float64Array(n);
  switch (law.law) {
    case 'none':
      return { ism, birthCloud: null };
    case 'calzetti2000': {
      const opts: Noll09Options = law;
      if (law.convention === 'synthesizer') return { ism: new SynthesizerCalzetti2000(opts).tauOverTauVArray(wavelengthsAA), birthCloud: null };
      for (let i = 0; i < n; i++) ism[i] = calzetti2000TauOverTauV(wavelengthsAA[i], opts);
      return { ism, birthCloud: null };
    }
    case 'powerLaw':
      for (let i = 0; i < n; i++) ism[i] = powerLawTauOverTauV(wavelengthsAA[i], law.slope);
      return { ism, birthCloud: null };
    case 'charlotFall2000': {
      const birthCloud = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        ism[i] = powerLawTauOverTauV(wavelengthsAA[i], law.slopeIsm);
        birthCloud[i] = powerLawTauOverTauV(wavelengthsAA[i], law.slopeBirthCloud);
      }
      return { ism, birthCloud };
    }
  }
}
