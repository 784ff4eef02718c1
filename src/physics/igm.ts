/**
 * Intergalactic-medium transmission, float64 reference.
 *
 * Inoue, Shimizu, Iwata & Tanaka 2014 (MNRAS 442, 1805), section 4: the mean optical depth is the sum
 *   tau = tau_LS^LAF (eq. 21) + tau_LS^DLA (eq. 22) + tau_LC^LAF (eqs. 25-27) + tau_LC^DLA (eqs. 28-29),
 * with the Lyman-series coefficients of their Table 2 read from LAFcoeff.txt / DLAcoeff.txt, the
 * Lyman limit lambda_L = 911.8 A and the redshift breaks z1 = 1.2, z2 = 4.7 (LAF) and z1 = 2.0 (DLA).
 *
 * The piecewise conditions follow Synthesizer's Inoue14 class (emission_models/transformers/igm.py,
 * itself adapted from eazy-py's igm.py), which produced the reference fluxes, condition for condition:
 *  - Lyman series: line j contributes whenever lambda_obs < lambda_j (1+z_S), with the regime chosen by
 *    lambda_obs against lambda_j (1+z1) and lambda_j (1+z2). Unlike eqs. 21-22 there is no lower bound
 *    lambda_j < lambda_obs (absorbers at z < 0); it only matters for lambda_obs < 1215.67 A.
 *  - LAF Lyman continuum for z_S >= 4.7: the first regime is lambda_obs > lambda_L (1+z2) (strict), so
 *    lambda_obs == 5.7 lambda_L exactly gets 0 there (a set of measure zero).
 *  - transmission = exp(-tau) clipped to <= 1 (the LC fits go negative far below the Lyman limit at low
 *    z), with NaN mapped to 0.
 *
 * Madau 1995 (ApJ 441, 18) is offered as an alternative (madau1995Tau).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { resolveDataDir } from '../io/paths.js';
import { LYMAN_LIMIT_INOUE14_AA } from './constants.js';

// ---------------------------------------------------------------------------------------------
// Coefficient files
// ---------------------------------------------------------------------------------------------

/** Inoue et al. 2014 Table 2 has the Lyman series j = 2..40. */
export const INOUE14_J_MIN = 2;
export const INOUE14_J_MAX = 40;

/** Inoue et al. 2014 Table 2 coefficients, one entry per Lyman-series line j = 2..40. */
export interface Inoue14Coefficients {
  /** Line wavelengths lambda_j [A]. */
  lambdaAA: Float64Array;
  /** LAF coefficients A_j^LAF for z < 1.2, 1.2-4.7, >= 4.7. */
  laf1: Float64Array;
  laf2: Float64Array;
  laf3: Float64Array;
  /** DLA coefficients A_j^DLA for z < 2, >= 2. */
  dla1: Float64Array;
  dla2: Float64Array;
}

const finite = (what: string) => z.number({ invalid_type_error: `${what} is not a number` }).finite(`${what} is not finite`);
const lineIndex = finite('j').int('j must be an integer').min(INOUE14_J_MIN, `j must be >= ${INOUE14_J_MIN}`).max(INOUE14_J_MAX, `j must be <= ${INOUE14_J_MAX}`);
const lambda = finite('lambda_j').gt(0, 'lambda_j must be > 0');
const coeff = (name: string) => finite(name).min(0, `${name} must be >= 0`);
const LafRowSchema = z.tuple([lineIndex, lambda, coeff('A_j1'), coeff('A_j2'), coeff('A_j3')]);
const DlaRowSchema = z.tuple([lineIndex, lambda, coeff('A_j1'), coeff('A_j2')]);

const COLUMNS = {
  LAF: 'j, lambda_j [A], A_j1, A_j2, A_j3',
  DLA: 'j, lambda_j [A], A_j1, A_j2',
} as const;

/** A malformed coefficient file; the message names the file and (where it applies) the line. */
export class IgmCoefficientFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | null,
    detail: string,
  ) {
    super(`${file}${line === null ? '' : `:${line}`}: ${detail}`);
    this.name = 'IgmCoefficientFileError';
  }
}

interface ParsedTable {
  j: number[];
  lambdaAA: number[];
  a: number[][];
  lines: number[];
}

function parseTable(text: string, kind: 'LAF' | 'DLA', file: string): ParsedTable {
  const schema = kind === 'LAF' ? LafRowSchema : DlaRowSchema;
  const nCol = kind === 'LAF' ? 5 : 4;
  const out: ParsedTable = { j: [], lambdaAA: [], a: [], lines: [] };
  const rows = text.split(/\r?\n/);
  for (let li = 0; li < rows.length; li++) {
    const lineNo = li + 1;
    const content = rows[li].replace(/#.*/, '').trim();
    if (content === '') continue;
    const tokens = content.split(/\s+/);
    if (tokens.length !== nCol) {
      throw new IgmCoefficientFileError(file, lineNo, `expected ${nCol} columns (${COLUMNS[kind]}), found ${tokens.length}: "${content}"`);
    }
    // Number('') is 0, but no token is empty after the split; Number('1.2x') is NaN, which zod rejects.
    const parsed = schema.safeParse(tokens.map((t) => Number(t)));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const col = typeof issue.path[0] === 'number' ? ` column ${issue.path[0] + 1} ("${tokens[issue.path[0]]}")` : '';
      throw new IgmCoefficientFileError(file, lineNo, `${issue.message}${col}`);
    }
    const [j, lam, ...a] = parsed.data;
    const prev = out.j.length;
    const expectedJ = INOUE14_J_MIN + prev;
    if (j !== expectedJ) throw new IgmCoefficientFileError(file, lineNo, `expected line j = ${expectedJ} (rows run j = 2..40 in order), found j = ${j}`);
    if (prev > 0 && !(lam < out.lambdaAA[prev - 1])) {
      throw new IgmCoefficientFileError(file, lineNo, `lambda_j must decrease with j (${lam} after ${out.lambdaAA[prev - 1]})`);
    }
    out.j.push(j);
    out.lambdaAA.push(lam);
    out.a.push(a);
    out.lines.push(lineNo);
  }
  const n = out.j.length;
  const expected = INOUE14_J_MAX - INOUE14_J_MIN + 1;
  if (n !== expected) {
    const where = n === 0 ? 'no data rows' : `the data end after j = ${out.j[n - 1]} (line ${out.lines[n - 1]})`;
    throw new IgmCoefficientFileError(file, null, `${where}; expected ${expected} rows j = 2..40 (Inoue et al. 2014 Table 2) - truncated file?`);
  }
  return out;
}

/** Parse LAFcoeff.txt content (columns j, lambda_j, A_j1, A_j2, A_j3). `file` names it in errors. */
export function parseLafCoefficients(text: string, file = 'LAFcoeff.txt'): { lambdaAA: Float64Array; a1: Float64Array; a2: Float64Array; a3: Float64Array } {
  const t = parseTable(text, 'LAF', file);
  return {
    lambdaAA: Float64Array.from(t.lambdaAA),
    a1: Float64Array.from(t.a, (r) => r[0]),
    a2: Float64Array.from(t.a, (r) => r[1]),
    a3: Float64Array.from(t.a, (r) => r[2]),
  };
}

/** Parse DLAcoeff.txt content (columns j, lambda_j, A_j1, A_j2). `file` names it in errors. */
export function parseDlaCoefficients(text: string, file = 'DLAcoeff.txt'): { lambdaAA: Float64Array; a1: Float64Array; a2: Float64Array } {
  const t = parseTable(text, 'DLA', file);
  return {
    lambdaAA: Float64Array.from(t.lambdaAA),
    a1: Float64Array.from(t.a, (r) => r[0]),
    a2: Float64Array.from(t.a, (r) => r[1]),
  };
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new IgmCoefficientFileError(file, null, `cannot read: ${(e as Error).message}`);
  }
}

/**
 * Read and validate the Inoue et al. 2014 coefficients. Default paths are <dataDir>/igm/LAFcoeff.txt
 * and DLAcoeff.txt with dataDir from resolveDataDir(). The two files must list the same lambda_j.
 */
export function readInoue14Coefficients(opts: { dataDir?: string; lafPath?: string; dlaPath?: string } = {}): Inoue14Coefficients {
  const dir = opts.lafPath && opts.dlaPath ? '' : path.join(resolveDataDir(opts.dataDir), 'igm');
  const lafPath = opts.lafPath ?? path.join(dir, 'LAFcoeff.txt');
  const dlaPath = opts.dlaPath ?? path.join(dir, 'DLAcoeff.txt');
  return inoue14Coefficients(readText(lafPath), lafPath, readText(dlaPath), dlaPath);
}

/** The coefficients from the texts of LAFcoeff.txt and DLAcoeff.txt (named in errors), which must list the same lambda_j. */
export function inoue14Coefficients(lafText: string, lafPath: string, dlaText: string, dlaPath: string): Inoue14Coefficients {
  const laf = parseLafCoefficients(lafText, lafPath);
  const dla = parseDlaCoefficients(dlaText, dlaPath);
  for (let i = 0; i < laf.lambdaAA.length; i++) {
    if (laf.lambdaAA[i] !== dla.lambdaAA[i]) {
      throw new IgmCoefficientFileError(
        dlaPath,
        null,
        `lambda_j for j = ${i + INOUE14_J_MIN} is ${dla.lambdaAA[i]} but ${laf.lambdaAA[i]} in ${lafPath}; the files must list the same lines`,
      );
    }
  }
  return { lambdaAA: laf.lambdaAA, laf1: laf.a1, laf2: laf.a2, laf3: laf.a3, dla1: dla.a1, dla2: dla.a2 };
}

// ---------------------------------------------------------------------------------------------
// Lyman continuum (coefficient-free fits)
// ---------------------------------------------------------------------------------------------

const LAF_Z1 = 1.2;
const LAF_Z2 = 4.7;
const DLA_Z1 = 2.0;
const LL = LYMAN_LIMIT_INOUE14_AA;

/** Inoue+2014 eqs. 25-27: Lyman-continuum optical depth of the Lyman-alpha forest. */
export function inoue14TauLcLaf(lambdaObsAA: number, zSource: number): number {
  const l = lambdaObsAA;
  if (!(l < LL * (1 + zSource))) return 0;
  const x = l / LL;
  const opz = 1 + zSource;
  if (zSource < LAF_Z1) {
    return 0.3248 * (x ** 1.2 - opz ** -0.9 * x ** 2.1);
  }
  if (zSource < LAF_Z2) {
    if (l >= LL * (1 + LAF_Z1)) return 2.545e-2 * (opz ** 1.6 * x ** 2.1 - x ** 3.7);
    return 2.545e-2 * opz ** 1.6 * x ** 2.1 + 0.3248 * x ** 1.2 - 0.2496 * x ** 2.1;
  }
  if (l > LL * (1 + LAF_Z2)) return 5.221e-4 * (opz ** 3.4 * x ** 2.1 - x ** 5.5);
  if (l >= LL * (1 + LAF_Z1) && l < LL * (1 + LAF_Z2)) {
    return 5.221e-4 * opz ** 3.4 * x ** 2.1 + 0.2182 * x ** 2.1 - 2.545e-2 * x ** 3.7;
  }
  if (l < LL * (1 + LAF_Z1)) return 5.221e-4 * opz ** 3.4 * x ** 2.1 + 0.3248 * x ** 1.2 - 3.14e-2 * x ** 2.1;
  return 0; // l == 5.7 lambda_L exactly: no branch in Synthesizer's conditions
}

/** Inoue+2014 eqs. 28-29: Lyman-continuum optical depth of damped Lyman-alpha systems. */
export function inoue14TauLcDla(lambdaObsAA: number, zSource: number): number {
  const l = lambdaObsAA;
  if (!(l < LL * (1 + zSource))) return 0;
  const x = l / LL;
  const opz = 1 + zSource;
  if (zSource < DLA_Z1) {
    return 0.2113 * opz ** 2 - 0.07661 * opz ** 2.3 * x ** -0.3 - 0.1347 * x ** 2;
  }
  if (l >= LL * (1 + DLA_Z1)) return 0.04696 * opz ** 3 - 0.01779 * opz ** 3.3 * x ** -0.3 - 0.02916 * x ** 3;
  return 0.634 + 0.04696 * opz ** 3 - 0.01779 * opz ** 3.3 * x ** -0.3 - 0.1347 * x ** 2 - 0.2905 * x ** -0.3;
}

// ---------------------------------------------------------------------------------------------
// Inoue et al. 2014 model
// ---------------------------------------------------------------------------------------------

/** Inoue et al. 2014 mean IGM transmission (see the module comment for the exact conditions). */
export class Inoue14 {
  readonly coefficients: Inoue14Coefficients;
  /** Multiplies the total optical depth (Synthesizer's scale_tau), default 1. */
  readonly scaleTau: number;
  // Per-line A_j / lambda_j^p, precomputed as Synthesizer does ((alf / lam**p) * lam_obs**p).
  private readonly n: number;
  private readonly lam: Float64Array;
  private readonly laf1: Float64Array;
  private readonly laf2: Float64Array;
  private readonly laf3: Float64Array;
  private readonly dla1: Float64Array;
  private readonly dla2: Float64Array;

  constructor(coefficients: Inoue14Coefficients, options: { scaleTau?: number } = {}) {
    this.coefficients = coefficients;
    this.scaleTau = options.scaleTau ?? 1;
    const c = coefficients;
    this.n = c.lambdaAA.length;
    this.lam = c.lambdaAA;
    this.laf1 = c.laf1.map((a, i) => a / c.lambdaAA[i] ** 1.2);
    this.laf2 = c.laf2.map((a, i) => a / c.lambdaAA[i] ** 3.7);
    this.laf3 = c.laf3.map((a, i) => a / c.lambdaAA[i] ** 5.5);
    this.dla1 = c.dla1.map((a, i) => a / c.lambdaAA[i] ** 2);
    this.dla2 = c.dla2.map((a, i) => a / c.lambdaAA[i] ** 3);
  }

  /** Inoue+2014 eq. 21: Lyman-series optical depth of the Lyman-alpha forest. */
  tauLsLaf(lambdaObsAA: number, zSource: number): number {
    const l = lambdaObsAA;
    let tau = 0;
    for (let j = 0; j < this.n; j++) {
      const lj = this.lam[j];
      if (!(l < lj * (1 + zSource))) continue;
      if (l < lj * (1 + LAF_Z1)) tau += this.laf1[j] * l ** 1.2;
      else if (l < lj * (1 + LAF_Z2)) tau += this.laf2[j] * l ** 3.7;
      else tau += this.laf3[j] * l ** 5.5;
    }
    return tau;
  }

  /** Inoue+2014 eq. 22: Lyman-series optical depth of damped Lyman-alpha systems. */
  tauLsDla(lambdaObsAA: number, zSource: number): number {
    const l = lambdaObsAA;
    let tau = 0;
    for (let j = 0; j < this.n; j++) {
      const lj = this.lam[j];
      if (!(l < lj * (1 + zSource))) continue;
      if (l < lj * (1 + DLA_Z1)) tau += this.dla1[j] * l ** 2;
      else tau += this.dla2[j] * l ** 3;
    }
    return tau;
  }

  /** Total optical depth scaleTau * (tau_LC^LAF + tau_LC^DLA + tau_LS^LAF + tau_LS^DLA). */
  tau(lambdaObsAA: number, zSource: number): number {
    const tauLc = inoue14TauLcLaf(lambdaObsAA, zSource) + inoue14TauLcDla(lambdaObsAA, zSource);
    const tauLs = this.tauLsLaf(lambdaObsAA, zSource) + this.tauLsDla(lambdaObsAA, zSource);
    return this.scaleTau * (tauLc + tauLs);
  }

  /** Transmission exp(-tau) at an observed-frame wavelength [A] for a source at zSource, clipped to [0, 1]. */
  transmission(lambdaObsAA: number, zSource: number): number {
    const t = Math.exp(-this.tau(lambdaObsAA, zSource));
    if (t !== t) return 0;
    return t > 1 ? 1 : t;
  }

  /** Transmission on an array of observed-frame wavelengths [A]. */
  transmissionArray(lambdaObsAA: ArrayLike<number>, zSource: number, out = new Float64Array(lambdaObsAA.length)): Float64Array {
    for (let i = 0; i < lambdaObsAA.length; i++) out[i] = this.transmission(lambdaObsAA[i], zSource);
    return out;
  }
}

/** Inoue14 with coefficients read from the data directory (resolveDataDir). */
export function loadInoue14(options: { dataDir?: string; scaleTau?: number } = {}): Inoue14 {
  return new Inoue14(readInoue14Coefficients({ dataDir: options.dataDir }), { scaleTau: options.scaleTau });
}

// ---------------------------------------------------------------------------------------------
// Madau 1995
// ---------------------------------------------------------------------------------------------

/** Madau 1995 Lyman-series lines (Ly alpha..delta) [A] and their coefficients A_j (eq. 12, Table 2). */
export const MADAU95_LINES_AA = [1216, 1026, 973, 950] as const;
export const MADAU95_COEFFS = [3.6e-3, 1.7e-3, 1.2e-3, 9.3e-4] as const;
/** Madau 1995 Lyman limit [A]. */
export const MADAU95_LYMAN_LIMIT_AA = 912;

/**
 * Madau 1995 mean optical depth: line blanketing sum_j A_j (lambda_obs/lambda_j)^3.46 for
 * lambda_j < lambda_obs < lambda_j (1+z_S) (absorbers between z = 0 and z_S, eq. 12), plus the
 * photoelectric term of footnote 3 for lambda_obs < lambda_L (1+z_S):
 *   0.25 x^3 (X^0.46 - x^0.46) + 9.4 x^1.5 (X^0.18 - x^0.18) - 0.7 x^3 (x^-1.32 - X^-1.32) - 0.023 (X^1.68 - x^1.68),
 * x = lambda_obs/lambda_L clamped to [1, X], X = 1 + z_S (no absorbers below z = 0, as FSPS), and the
 * term clamped at >= 0.
 */
export function madau1995Tau(lambdaObsAA: number, zSource: number): number {
  const l = lambdaObsAA;
  const X = 1 + zSource;
  let tau = 0;
  for (let j = 0; j < MADAU95_LINES_AA.length; j++) {
    const lj = MADAU95_LINES_AA[j];
    if (l > lj && l < lj * X) tau += MADAU95_COEFFS[j] * (l / lj) ** 3.46;
  }
  if (l < MADAU95_LYMAN_LIMIT_AA * X) {
    const x = Math.min(Math.max(l / MADAU95_LYMAN_LIMIT_AA, 1), X);
    const lc =
      0.25 * x ** 3 * (X ** 0.46 - x ** 0.46) +
      9.4 * x ** 1.5 * (X ** 0.18 - x ** 0.18) -
      0.7 * x ** 3 * (x ** -1.32 - X ** -1.32) -
      0.023 * (X ** 1.68 - x ** 1.68);
    if (lc > 0) tau += lc;
  }
  return tau;
}

/** Madau 1995 transmission exp(-tau). */
export function madau1995Transmission(lambdaObsAA: number, zSource: number): number {
  return Math.exp(-madau1995Tau(lambdaObsAA, zSource));
}
