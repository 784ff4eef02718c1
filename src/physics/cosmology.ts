/**
 * Flat Lambda-CDM background cosmology with photons and (massive) neutrinos, float64 reference.
 *
 * Reproduces astropy's `FlatLambdaCDM` (astropy/cosmology/flrw/base.py + lambdacdm.py and the
 * scalar inverse-E functions in scalar_inv_efuncs.pyx, astropy 5.x):
 *   E(z)^2 = Om0 (1+z)^3 + Ogamma0 (1+z)^4 [1 + nu(z)] + Ode0,   Ode0 = 1 - Om0 - Ogamma0 - Onu0,
 * where Om0 excludes neutrinos, Ogamma0 = (4 sigma_SB / c^3) Tcmb0^4 / rho_crit0, and the neutrino
 * energy density relative to photons uses the Komatsu et al. 2011 (ApJS 192, 18) eq. 26 fitting
 * formula,  nu(z) = 0.22710731766 (Neff / N_nu) sum_i f(m_i / (k_B T_nu0 (1+z))),
 *   f(y) = [1 + (0.3173 y)^1.83]^(1/1.83) for massive species, f = 1 for massless ones,
 * with T_nu0 = (4/11)^(1/3) Tcmb0 and 0.22710731766 = 7/8 (4/11)^(4/3) (Neff shared equally).
 *
 * Distances (Hogg 1999, astro-ph/9905116): D_C = D_H int_0^z dz'/E (eq. 15), D_L = (1+z) D_C
 * (flat, eq. 21), lookback t_L = t_H int_0^z dz'/((1+z')E) (eq. 30); age t = t_H int_z^inf (same
 * integrand), computed as t_H int_0^{1/(1+z)} a da / sqrt(a^4 E^2) so the range is finite.
 */
import { z } from 'zod';
import {
  BOLTZMANN_EV_K,
  GRAVITATIONAL_CONSTANT_CGS,
  JULIAN_YEAR_S,
  MEGAPARSEC_CM,
  MEGAPARSEC_KM,
  SPEED_OF_LIGHT_CM_S,
  SPEED_OF_LIGHT_KM_S,
  STEFAN_BOLTZMANN_CGS,
} from './constants.js';

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/**
 * Cosmological parameters (astropy names). Defaults are astropy's Planck18 (Planck 2018 VI,
 * Table 2 TT,TE,EE+lowE+lensing+BAO): H0 67.66, Om0 0.30966, Tcmb0 2.7255 K, Neff 3.046,
 * m_nu = [0, 0, 0.06] eV. Om0 is CDM + baryons only (massive neutrinos are in Onu0, as astropy).
 */
export const CosmologySchema = z
  .object({
    /** Hubble constant [km/s/Mpc]. */
    H0: z.number().gt(0).lt(1000).default(67.66),
    /** Matter density (CDM + baryons, no neutrinos) at z=0 in units of the critical density. */
    Om0: z.number().min(0).max(1).default(0.30966),
    /** CMB temperature today [K]; 0 switches photons and neutrinos off (as astropy). */
    Tcmb0K: z.number().min(0).lt(100).default(2.7255),
    /** Effective number of neutrino species. */
    Neff: z.number().min(0).lt(100).default(3.046),
    /** Neutrino masses [eV], one per species: floor(Neff) entries (astropy's rule). */
    mNuEV: z.array(z.number().min(0).lt(100)).default([0, 0, 0.06]),
  })
  .strict()
  .superRefine((c, ctx) => {
    const nNu = Math.floor(c.Neff);
    if (c.Tcmb0K > 0 && nNu > 0 && c.mNuEV.some((m) => m > 0) && c.mNuEV.length !== nNu) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['mNuEV'],
        message: `mNuEV must have floor(Neff) = ${nNu} entries (one mass per species), got ${c.mNuEV.length}`,
      });
    }
  });
export type CosmologyParams = z.output<typeof CosmologySchema>;
export type CosmologyInput = z.input<typeof CosmologySchema>;

/** astropy's Planck18 parameters. */
export const PLANCK18: CosmologyParams = Object.freeze(CosmologySchema.parse({})) as CosmologyParams;

// ---------------------------------------------------------------------------------------------
// Quadrature
// ---------------------------------------------------------------------------------------------

// 15-point Kronrod / embedded 7-point Gauss rule (QUADPACK qk15 abscissae and weights).
const XGK = [
  0.991455371120812639206854697526329, 0.949107912342758524526189684047851, 0.864864423359769072789712788640926,
  0.741531185599394439863864773280788, 0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
  0.207784955007898467600689403773245, 0.0,
];
const WGK = [
  0.02293532201052922496373200805897, 0.063092092629978553290700663189204, 0.104790010322250183839876322541518,
  0.140653259715525918745189590510238, 0.16900472663926790282658342659855, 0.190350578064785409913256402421014,
  0.204432940075298892414161999234649, 0.209482141084727828012999174891714,
];
const WG = [
  0.129484966168869693270611432679082, 0.27970539148927666790146777142378, 0.381830050505118944950369775488975,
  0.417959183673469387755102040816327,
];

function gk15(f: (x: number) => number, a: number, b: number): { value: number; error: number } {
  const c = 0.5 * (a + b);
  const h = 0.5 * (b - a);
  const fc = f(c);
  let kron = fc * WGK[7];
  let gauss = fc * WG[3];
  for (let j = 0; j < 7; j++) {
    const dx = h * XGK[j];
    const s = f(c - dx) + f(c + dx);
    kron += WGK[j] * s;
    if (j % 2 === 1) gauss += WG[(j - 1) / 2] * s;
  }
  return { value: kron * h, error: Math.abs((kron - gauss) * h) };
}

/**
 * Adaptive Gauss-Kronrod (G7/K15) integral of a smooth f on the finite interval [a, b]: bisect
 * until |K15 - G7| per piece is below its share of max(absTol, relTol |I|). |K15 - G7| bounds the
 * G7 error, so the returned K15 sum is typically many digits better than the tolerance.
 */
export function integrateGaussKronrod(
  f: (x: number) => number,
  a: number,
  b: number,
  relTol = 1e-13,
  absTol = 0,
): number {
  if (a === b) return 0;
  const whole = gk15(f, a, b);
  const tol = Math.max(absTol, relTol * Math.abs(whole.value));
  const rec = (lo: number, hi: number, est: { value: number; error: number }, budget: number, depth: number): number => {
    if (est.error <= budget || depth >= 40) return est.value;
    const mid = 0.5 * (lo + hi);
    const left = gk15(f, lo, mid);
    const right = gk15(f, mid, hi);
    return rec(lo, mid, left, budget / Math.SQRT2, depth + 1) + rec(mid, hi, right, budget / Math.SQRT2, depth + 1);
  };
  return rec(a, b, whole, tol, 0);
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

// 3 / (8 pi G) [g s^2 cm^-3]: rho_crit = CRITDENS_CONST * H0[1/s]^2 (astropy's critdens_const).
const CRITDENS_CONST = 3 / (8 * Math.PI * GRAVITATIONAL_CONSTANT_CGS);
// 4 sigma_SB / c^3 [g cm^-3 K^-4]: photon mass density per T^4 (astropy's a_B_c2).
const A_B_C2 = (4 * STEFAN_BOLTZMANN_CGS) / SPEED_OF_LIGHT_CM_S ** 3;
// 1 km/s/Mpc in 1/s.
const H0_UNITS_TO_INV_S = 1 / MEGAPARSEC_KM;
// 7/8 (4/11)^(4/3) and the Komatsu et al. 2011 fit constants, with astropy's literal digits.
const NU_PREFAC = 0.22710731766;
const KOMATSU_P = 1.83;
const KOMATSU_INVP = 0.54644808743;
const KOMATSU_K = 0.3173;
// (4/11)^(1/3), astropy's literal.
const TNU_OVER_TCMB = 0.7137658555036082;

/** Flat Lambda-CDM cosmology with radiation and massive neutrinos, as astropy's FlatLambdaCDM. */
export class FlatLambdaCDM {
  readonly params: CosmologyParams;
  /** Photon density parameter today. */
  readonly Ogamma0: number;
  /** Neutrino density parameter today (massive ones counted with the Komatsu fit at z=0). */
  readonly Onu0: number;
  /** Dark-energy density parameter, 1 - Om0 - Ogamma0 - Onu0. */
  readonly Ode0: number;
  /** Hubble distance c/H0 [Mpc]. */
  readonly hubbleDistanceMpc: number;
  /** Hubble time 1/H0 [yr] (Julian years, astropy's u.yr). */
  readonly hubbleTimeYr: number;
  // Neutrino bookkeeping (astropy's _nu_y, _nmasslessnu, _neff_per_nu).
  private readonly nuY: Float64Array;
  private readonly nMasslessNu: number;
  private readonly neffPerNu: number;
  private readonly massiveNu: boolean;

  constructor(input: CosmologyInput = {}) {
    const p = CosmologySchema.parse(input);
    this.params = p;
    const h0InvS = p.H0 * H0_UNITS_TO_INV_S;
    this.hubbleDistanceMpc = SPEED_OF_LIGHT_KM_S / p.H0;
    this.hubbleTimeYr = 1 / h0InvS / JULIAN_YEAR_S;
    const nNu = Math.floor(p.Neff);
    const massive = p.mNuEV.filter((m) => m > 0);
    this.massiveNu = p.Tcmb0K > 0 && nNu > 0 && massive.length > 0;
    if (p.Tcmb0K === 0) {
      this.Ogamma0 = 0;
      this.Onu0 = 0;
      this.nuY = new Float64Array(0);
      this.nMasslessNu = 0;
      this.neffPerNu = 0;
    } else {
      const critDens0 = CRITDENS_CONST * h0InvS * h0InvS;
      this.Ogamma0 = (A_B_C2 * p.Tcmb0K ** 4) / critDens0;
      if (this.massiveNu) {
        const kTnuEV = BOLTZMANN_EV_K * TNU_OVER_TCMB * p.Tcmb0K;
        this.nuY = Float64Array.from(massive, (m) => m / kTnuEV);
        this.nMasslessNu = nNu - massive.length;
        this.neffPerNu = p.Neff / nNu;
      } else {
        this.nuY = new Float64Array(0);
        this.nMasslessNu = 0;
        this.neffPerNu = 0;
      }
      this.Onu0 = this.Ogamma0 * this.nuRelativeDensity(0);
    }
    this.Ode0 = 1 - p.Om0 - this.Ogamma0 - this.Onu0;
  }

  /**
   * Neutrino energy density relative to photons at redshift z (astropy nu_relative_density;
   * Komatsu et al. 2011 eq. 26 generalised to several masses).
   */
  nuRelativeDensity(z: number): number {
    if (!this.massiveNu) return NU_PREFAC * this.params.Neff;
    const k = KOMATSU_K / (1 + z);
    let relMass = this.nMasslessNu;
    for (let i = 0; i < this.nuY.length; i++) relMass += Math.pow(1 + Math.pow(k * this.nuY[i], KOMATSU_P), KOMATSU_INVP);
    return NU_PREFAC * this.neffPerNu * relMass;
  }

  /** a^4 E(a)^2 = Or(a) + Om0 a + Ode0 a^4, Or(a) = Ogamma0 (1 + nu(a)): finite down to a = 0. */
  private a4E2(a: number): number {
    const Or = this.Ogamma0 === 0 ? 0 : this.Ogamma0 * (1 + this.nuRelativeDensity(1 / a - 1));
    const a2 = a * a;
    return Or + this.params.Om0 * a + this.Ode0 * a2 * a2;
  }

  /** Dimensionless Hubble parameter E(z) = H(z)/H0 (astropy efunc, same operation order). */
  efunc(z: number): number {
    const opz = 1 + z;
    const Or = this.Ogamma0 * (1 + this.nuRelativeDensity(z));
    return Math.sqrt(opz ** 3 * (opz * Or + this.params.Om0) + this.Ode0);
  }

  /** 1/E(z). */
  invEfunc(z: number): number {
    return 1 / this.efunc(z);
  }

  /** d(D_C)/dz [Mpc] = D_H / E(z). */
  comovingDistanceDerivMpc(z: number): number {
    return this.hubbleDistanceMpc / this.efunc(z);
  }

  /** d(t_L)/dz [yr] = t_H / ((1+z) E(z)); the age has the opposite sign. */
  lookbackTimeDerivYr(z: number): number {
    return this.hubbleTimeYr / ((1 + z) * this.efunc(z));
  }

  /** Line-of-sight comoving distance D_C [Mpc] between z1 <= z2 (Hogg 1999 eq. 15). */
  comovingDistanceBetweenMpc(z1: number, z2: number): number {
    checkRedshift(z1);
    checkRedshift(z2);
    return this.hubbleDistanceMpc * integrateGaussKronrod((x) => 1 / this.efunc(x), z1, z2);
  }

  /** Comoving distance D_C(z) [Mpc] (= transverse comoving distance in a flat universe). */
  comovingDistanceMpc(z: number): number {
    return this.comovingDistanceBetweenMpc(0, z);
  }

  /** Luminosity distance D_L = (1+z) D_C [Mpc] (Hogg 1999 eq. 21, flat). */
  luminosityDistanceMpc(z: number): number {
    return (1 + z) * this.comovingDistanceMpc(z);
  }

  /** Luminosity distance [cm]. */
  luminosityDistanceCm(z: number): number {
    return this.luminosityDistanceMpc(z) * MEGAPARSEC_CM;
  }

  /** Lookback time t_H int_z1^z2 dz/((1+z)E) [yr] between z1 <= z2. */
  lookbackTimeBetweenYr(z1: number, z2: number): number {
    checkRedshift(z1);
    checkRedshift(z2);
    return this.hubbleTimeYr * integrateGaussKronrod((x) => 1 / ((1 + x) * this.efunc(x)), z1, z2);
  }

  /** Lookback time to redshift z [yr] (Hogg 1999 eq. 30). */
  lookbackTimeYr(z: number): number {
    return this.lookbackTimeBetweenYr(0, z);
  }

  /**
   * Age of the universe at redshift z [yr]: t_H int_z^inf dz/((1+z)E) = t_H int_0^a da a / sqrt(a^4 E^2)
   * with a = 1/(1+z); the integrand vanishes at a = 0 (radiation era), so plain GK on [0, a] works.
   */
  ageYr(z: number): number {
    checkRedshift(z);
    const aMax = 1 / (1 + z);
    return this.hubbleTimeYr * integrateGaussKronrod((a) => a / Math.sqrt(this.a4E2(a)), 0, aMax);
  }
}

function checkRedshift(z: number): void {
  if (!(z >= 0) || !Number.isFinite(z)) throw new RangeError(`redshift must be finite and >= 0, got ${z}`);
}

// ---------------------------------------------------------------------------------------------
// Tabulated interpolator
// ---------------------------------------------------------------------------------------------

export const CosmologyTableOptionsSchema = z
  .object({
    /** Largest tabulated redshift; beyond it the exact quadrature is used. */
    zMax: z.number().gt(0).max(1e4).default(30),
    /** Number of nodes, uniform in ln(1+z). */
    nodes: z.number().int().min(16).max(1_000_000).default(2048),
  })
  .strict();
export type CosmologyTableOptions = z.input<typeof CosmologyTableOptionsSchema>;

/** Raw node arrays of a CosmologyTable (for uploading to the GPU: f32 mirrors use the same scheme). */
export interface CosmologyTableArrays {
  /** Node spacing in x = ln(1+z). Node i sits at x = i * dx. */
  dx: number;
  /** Comoving distance [Mpc] and its x-derivative [Mpc] at the nodes. */
  comovingMpc: Float64Array;
  comovingDxMpc: Float64Array;
  /** Lookback time [yr] and its x-derivative [yr]. */
  lookbackYr: Float64Array;
  lookbackDxYr: Float64Array;
  /** Age [yr] and its x-derivative [yr] (= -lookbackDxYr). */
  ageYr: Float64Array;
  ageDxYr: Float64Array;
}

/**
 * Fast cosmology: D_C, t_L and age tabulated on a grid uniform in x = ln(1+z) and interpolated
 * with cubic Hermite polynomials that use the exact derivatives dD_C/dx = D_H (1+z)/E and
 * dt_L/dx = t_H/E. Hermite error is h^4 max|f''''| / 384; with the defaults (h = ln 31 / 2047)
 * that is < 1e-12 relative, far below the quadrature tolerance of astropy itself.
 * Node values come from cumulative GK integrals between neighbouring nodes (no re-integration from 0).
 * Redshifts above zMax fall back to the exact quadrature of the underlying FlatLambdaCDM.
 */
export class CosmologyTable {
  readonly cosmology: FlatLambdaCDM;
  readonly zMax: number;
  private readonly xMax: number;
  private readonly n: number;
  private readonly dx: number;
  private readonly dc: Float64Array;
  private readonly dcDx: Float64Array;
  private readonly lb: Float64Array;
  private readonly lbDx: Float64Array;
  private readonly age: Float64Array;
  private readonly ageDx: Float64Array;

  constructor(cosmology: FlatLambdaCDM | CosmologyInput = {}, options: CosmologyTableOptions = {}) {
    const opt = CosmologyTableOptionsSchema.parse(options);
    const c = cosmology instanceof FlatLambdaCDM ? cosmology : new FlatLambdaCDM(cosmology);
    this.cosmology = c;
    this.zMax = opt.zMax;
    this.n = opt.nodes;
    this.xMax = Math.log1p(opt.zMax);
    this.dx = this.xMax / (this.n - 1);
    const n = this.n;
    this.dc = new Float64Array(n);
    this.dcDx = new Float64Array(n);
    this.lb = new Float64Array(n);
    this.lbDx = new Float64Array(n);
    this.age = new Float64Array(n);
    this.ageDx = new Float64Array(n);
    const zAt = (i: number): number => (i === n - 1 ? opt.zMax : Math.expm1(i * this.dx));
    const segLb = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const zi = zAt(i);
      const e = c.efunc(zi);
      this.dcDx[i] = (c.hubbleDistanceMpc * (1 + zi)) / e;
      this.lbDx[i] = c.hubbleTimeYr / e;
      this.ageDx[i] = -this.lbDx[i];
      if (i > 0) {
        const zp = zAt(i - 1);
        this.dc[i] = this.dc[i - 1] + c.comovingDistanceBetweenMpc(zp, zi);
        segLb[i] = c.lookbackTimeBetweenYr(zp, zi);
        this.lb[i] = this.lb[i - 1] + segLb[i];
      }
    }
    this.age[n - 1] = c.ageYr(opt.zMax);
    for (let i = n - 2; i >= 0; i--) this.age[i] = this.age[i + 1] + segLb[i + 1];
  }

  /** Node arrays (copies) for GPU upload or inspection. */
  arrays(): CosmologyTableArrays {
    return {
      dx: this.dx,
      comovingMpc: this.dc.slice(),
      comovingDxMpc: this.dcDx.slice(),
      lookbackYr: this.lb.slice(),
      lookbackDxYr: this.lbDx.slice(),
      ageYr: this.age.slice(),
      ageDxYr: this.ageDx.slice(),
    };
  }

  private hermite(f: Float64Array, d: Float64Array, x: number): number {
    let i = Math.floor(x / this.dx);
    if (i > this.n - 2) i = this.n - 2;
    const h = this.dx;
    const t = (x - i * h) / h;
    const t2 = t * t;
    const t3 = t2 * t;
    const h00 = 2 * t3 - 3 * t2 + 1;
    const h10 = t3 - 2 * t2 + t;
    const h01 = -2 * t3 + 3 * t2;
    const h11 = t3 - t2;
    return h00 * f[i] + h10 * h * d[i] + h01 * f[i + 1] + h11 * h * d[i + 1];
  }

  /** Comoving distance [Mpc]. */
  comovingDistanceMpc(z: number): number {
    checkRedshift(z);
    if (z > this.zMax) return this.cosmology.comovingDistanceMpc(z);
    return this.hermite(this.dc, this.dcDx, Math.log1p(z));
  }

  /** Luminosity distance [Mpc]. */
  luminosityDistanceMpc(z: number): number {
    return (1 + z) * this.comovingDistanceMpc(z);
  }

  /** Luminosity distance [cm]. */
  luminosityDistanceCm(z: number): number {
    return this.luminosityDistanceMpc(z) * MEGAPARSEC_CM;
  }

  /** Lookback time [yr]. */
  lookbackTimeYr(z: number): number {
    checkRedshift(z);
    if (z > this.zMax) return this.cosmology.lookbackTimeYr(z);
    return this.hermite(this.lb, this.lbDx, Math.log1p(z));
  }

  /** Age of the universe at z [yr]. */
  ageYr(z: number): number {
    checkRedshift(z);
    if (z > this.zMax) return this.cosmology.ageYr(z);
    return this.hermite(this.age, this.ageDx, Math.log1p(z));
  }
}
