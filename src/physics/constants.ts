/**
 * Physical constants and unit conversions (CGS unless the name says otherwise).
 *
 * Values are CODATA 2018 / IAU 2012-2015 exact or recommended values, i.e. the ones astropy >= 4.0
 * (and therefore Synthesizer) uses, so that our references reproduce theirs to rounding.
 */

/** Speed of light [Angstrom/s] (exact, SI definition). */
export const SPEED_OF_LIGHT_AA_S = 2.99792458e18;
/** Speed of light [cm/s]. */
export const SPEED_OF_LIGHT_CM_S = 2.99792458e10;
/** Speed of light [km/s]. */
export const SPEED_OF_LIGHT_KM_S = 299792.458;

/** Solar luminosity assumed by BC03's tables [erg/s] (Bruzual & Charlot 2003). */
export const L_SUN_BC03_ERG_S = 3.826e33;
/** Solar luminosity used by Synthesizer (IAU 2015 nominal L_sun) [erg/s]; the reference fluxes use it. */
export const L_SUN_SYNTHESIZER_ERG_S = 3.828e33;

/** Astronomical unit [cm] (IAU 2012, exact). */
export const AU_CM = 1.495978707e13;
/** Parsec [cm] = au * 648000/pi (IAU 2015 definition, as astropy). */
export const PARSEC_CM = (AU_CM * 648000) / Math.PI;
/** Megaparsec [cm]. */
export const MEGAPARSEC_CM = PARSEC_CM * 1e6;
/** Megaparsec [km]. */
export const MEGAPARSEC_KM = MEGAPARSEC_CM * 1e-5;
/** 10 pc [cm], the distance of absolute magnitudes. */
export const TEN_PARSEC_CM = 10 * PARSEC_CM;

/** Planck constant [erg s] (exact). */
export const PLANCK_ERG_S = 6.62607015e-27;
/** Boltzmann constant [erg/K] (exact). */
export const BOLTZMANN_ERG_K = 1.380649e-16;
/** Electron volt [erg] (exact). */
export const ELECTRON_VOLT_ERG = 1.602176634e-12;
/** Boltzmann constant [eV/K] (astropy's const.k_B.to(u.eV / u.K)). */
export const BOLTZMANN_EV_K = BOLTZMANN_ERG_K / ELECTRON_VOLT_ERG;
/** Newtonian gravitational constant [cm^3 g^-1 s^-2] (CODATA 2018). */
export const GRAVITATIONAL_CONSTANT_CGS = 6.6743e-8;
/** Stefan-Boltzmann constant [erg cm^-2 s^-1 K^-4] (CODATA 2018, exact from h, k, c). */
export const STEFAN_BOLTZMANN_CGS = 5.670374419e-5;

/** Julian year [s] (astropy's `u.yr`). */
export const JULIAN_YEAR_S = 3.15576e7;

/** 1 nJy in erg s^-1 cm^-2 Hz^-1. */
export const NJY_CGS = 1e-32;
/** AB magnitude zero point: 3631 Jy expressed in nJy, so m_AB = -2.5 log10(f / AB_ZERO_POINT_NJY). */
export const AB_ZERO_POINT_NJY = 3631e9;

/** Magnitudes per e-folding of optical depth: A = MAG_PER_NEPER * tau, 2.5 log10(e). */
export const MAG_PER_NEPER = 2.5 * Math.LOG10E;
/**
 * The rounded value of 2.5 log10(e) with which the Synthesizer reference converted A_V to tau_V
 * (reference/synthesizer/README.md: tau_v = AV / 1.0857362). Differs from MAG_PER_NEPER by 4e-9 rel.
 */
export const SYNTHESIZER_MAG_PER_NEPER = 1.0857362;

/** Lyman-alpha wavelength [Angstrom] (vacuum, as in Inoue et al. 2014 Table 2). */
export const LYMAN_ALPHA_AA = 1215.67;
/** Lyman limit [Angstrom] used by Inoue et al. 2014 (their lambda_L). */
export const LYMAN_LIMIT_INOUE14_AA = 911.8;
