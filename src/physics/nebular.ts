/**
 * Nebular emission from the Inoue (2011, MNRAS 415, 2920) tables as packaged by CIGALE
 * (data/nebular/inoue11; format in data/README.md), float64 CPU reference.
 *
 * Recipe (CIGALE's `nebular` module, data/README.md):
 * - Q(H) = ∫_{λ < 911.8 Å} L_λ λ/(hc) dλ of the stellar spectrum (`ionisingPhotonRate*`);
 * - f_esc = 0: every ionising photon is reprocessed, so the output spectrum is zero below 911.8 Å
 *   (stellar AND nebular: the tabulated EUV lines He II 304, He I 584, 626 Å are ionising and stay
 *   in the nebula — a choice of ours; CIGALE keeps them);
 * - continuum: the tabulated L_ν × Q(H)/Q_ref(Z);
 * - lines: L(Hβ) = 4.757e-13 erg × Q(H) (case B, T = 1e4 K), every other line at its tabulated
 *   ratio to Hβ (the 4861 Å row, CIGALE's 486.1 nm) in the same model column.
 * Model columns: log U = -3, -2, -1 are file columns 4, 8, 12 (1-based), as CIGALE uses.
 *
 * Interpolation (chosen so the template is LINEAR in a handful of base templates, which is what the
 * GPU holds): for metallicity Z, linear in log10 Z between the bracketing tabulated Z's (default)
 * or the nearest in log10 Z ('nearest'), clamped to [1e-4, 0.05]; for log U, linear between the
 * three columns, clamped to [-3, -1]. The continuum per photon and the line ratios to Hβ (linear
 * quantities, not their logs) are interpolated, so Hβ stays exactly 4.757e-13 Q(H).
 *
 * Speed: for a fixed (wavelength grid, Z, log U) the nebular spectrum per unit Q(H) is one vector
 * (`nebularTemplatePerPhoton`), and the nebular emission of any population is Q(H) × template;
 * `nebularBaseTemplates` + `nebularInterpolationWeights` give the 6 × 3 base vectors and the ≤ 4
 * bilinear weights for the GPU.
 */
import { z } from 'zod';
import { LYMAN_LIMIT_INOUE14_AA, PLANCK_ERG_S, SPEED_OF_LIGHT_AA_S } from './constants.js';
import { bracket, singleMetallicityWeights } from './metallicity.js';

/** Tabulated metallicities (mass fractions) and their file-name labels. */
export const INOUE11_METALLICITIES = [0.0001, 0.0004, 0.004, 0.008, 0.02, 0.05] as const;
export const INOUE11_Z_LABELS = ['0.0001', '0.0004', '0.004', '0.008', '0.02', '0.05'] as const;
/** Lyman-continuum photon rates [photons/s] to which each metallicity's continuum is normalised (CIGALE). */
export const INOUE11_Q_REF_PHOTONS_S = [2.68786e53, 2.00964e53, 1.79593e53, 1.58843e53, 1.24713e53, 8.46718e52] as const;
/** log U of the three model columns used, and their indices among the 12 model columns (file columns 4, 8, 12). */
export const INOUE11_LOG_U = [-3, -2, -1] as const;
export const INOUE11_LOG_U_MODEL_COLUMNS = [2, 6, 10] as const;
/** Number of model columns after the wavelength column. */
export const INOUE11_MODEL_COLUMNS = 12;
/** Hβ luminosity per ionising photon [erg] (case B, T = 1e4 K; CIGALE). */
export const HBETA_ERG_PER_IONISING_PHOTON = 4.757e-13;
/** Wavelength of the Hβ row in lines_*.dat [Å]. */
export const HBETA_WAVELENGTH_AA = 4861;
/** Lyman limit [Å] for Q(H) and for the f_esc = 0 cut (data/README.md). */
export const LYMAN_LIMIT_AA = LYMAN_LIMIT_INOUE14_AA;

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/** One parsed Inoue11 file: the wavelength column and the 12 model columns. */
export interface Inoue11File {
  source: string;
  wavelengthAA: Float64Array;
  /** models[k][row], k = 0..11 (lines: log10 L [erg/s]; continuum: L_ν [erg/s/Hz]). */
  models: Float64Array[];
}

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const rowSchema = z
  .array(
    z
      .string()
      .regex(NUMBER_RE, 'is not a number')
      .transform(Number)
      .pipe(z.number().finite('is not a finite number')),
  )
  .length(1 + INOUE11_MODEL_COLUMNS, `expected ${1 + INOUE11_MODEL_COLUMNS} columns (wavelength + ${INOUE11_MODEL_COLUMNS} models)`);

/** Error in an Inoue11 file; the message names the file and, when it applies, the 1-based line. */
export class Inoue11FormatError extends Error {
  constructor(
    readonly source: string,
    readonly line: number | null,
    detail: string,
  ) {
    super(`${source}${line !== null ? `:${line}` : ''}: ${detail}`);
    this.name = 'Inoue11FormatError';
  }
}

function parseColumns(text: string, source: string): { rows: number[][]; lines: number[] } {
  const rows: number[][] = [];
  const lines: number[] = [];
  const all = text.split(/\r?\n/);
  for (let i = 0; i < all.length; i++) {
    const raw = all[i].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const tokens = raw.split(/\s+/);
    const r = rowSchema.safeParse(tokens);
    if (!r.success) {
      const issue = r.error.issues[0];
      const col = typeof issue.path[0] === 'number' ? issue.path[0] : null;
      const what =
        col !== null
          ? `column ${col + 1} ("${tokens[col]}") ${issue.message}`
          : `${issue.message}, found ${tokens.length}${i === all.length - 1 || all.slice(i + 1).every((l) => l.trim() === '') ? ' (truncated file?)' : ''}`;
      throw new Inoue11FormatError(source, i + 1, what);
    }
    rows.push(r.data);
    lines.push(i + 1);
  }
  if (rows.length < 2) throw new Inoue11FormatError(source, null, `expected at least 2 data rows, found ${rows.length}`);
  return { rows, lines };
}

function toFile(rows: number[][], source: string): Inoue11File {
  const n = rows.length;
  const wavelengthAA = new Float64Array(n);
  const models = Array.from({ length: INOUE11_MODEL_COLUMNS }, () => new Float64Array(n));
  for (let r = 0; r < n; r++) {
    wavelengthAA[r] = rows[r][0];
    for (let k = 0; k < INOUE11_MODEL_COLUMNS; k++) models[k][r] = rows[r][k + 1];
  }
  return { source, wavelengthAA, models };
}

/**
 * Parse a `lines_Z.dat` text: wavelength [Å] (> 0, non-decreasing: 3889 Å appears twice) and 12
 * columns of log10 L [erg/s]; exactly one Hβ row (4861 Å) is required.
 */
export function parseInoue11Lines(text: string, source = 'lines'): Inoue11File {
  const { rows, lines } = parseColumns(text, source);
  let hbeta = 0;
  for (let r = 0; r < rows.length; r++) {
    const w = rows[r][0];
    if (!(w > 0)) throw new Inoue11FormatError(source, lines[r], `line wavelength must be > 0, got ${w}`);
    if (r > 0 && w < rows[r - 1][0])
      throw new Inoue11FormatError(source, lines[r], `line wavelengths must not decrease (${rows[r - 1][0]} -> ${w})`);
    if (w === HBETA_WAVELENGTH_AA) hbeta++;
  }
  if (hbeta !== 1) throw new Inoue11FormatError(source, null, `expected exactly one H-beta row (${HBETA_WAVELENGTH_AA} A), found ${hbeta}`);
  return toFile(rows, source);
}

/** Parse a `continuum_Z.dat` text: wavelength [Å] strictly increasing, 12 columns of L_ν >= 0 [erg/s/Hz]. */
export function parseInoue11Continuum(text: string, source = 'continuum'): Inoue11File {
  const { rows, lines } = parseColumns(text, source);
  for (let r = 0; r < rows.length; r++) {
    const w = rows[r][0];
    if (!(w > 0)) throw new Inoue11FormatError(source, lines[r], `wavelength must be > 0, got ${w}`);
    if (r > 0 && !(w > rows[r - 1][0]))
      throw new Inoue11FormatError(source, lines[r], `wavelengths must increase strictly (${rows[r - 1][0]} -> ${w})`);
    for (let k = 1; k < rows[r].length; k++)
      if (rows[r][k] < 0) throw new Inoue11FormatError(source, lines[r], `column ${k + 1}: L_nu must be >= 0, got ${rows[r][k]}`);
  }
  return toFile(rows, source);
}

/** The tables reduced to what the model uses: per (Z, log U) line ratios to Hβ and continuum per photon. */
export interface Inoue11Table {
  metallicities: Float64Array;
  qRefPhotonsS: Float64Array;
  logU: Float64Array;
  lineWavelengthAA: Float64Array;
  hbetaIndex: number;
  /** lineRatioToHbeta[zIndex][uIndex][line] = L_line / L_Hβ. */
  lineRatioToHbeta: Float64Array[][];
  continuumWavelengthAA: Float64Array;
  /** continuumLnuPerPhoton[zIndex][uIndex][row] = L_ν / Q_ref(Z) [erg/s/Hz per photon/s]. */
  continuumLnuPerPhoton: Float64Array[][];
}

function sameColumn(a: Inoue11File, b: Inoue11File, what: string): void {
  if (a.wavelengthAA.length !== b.wavelengthAA.length)
    throw new Inoue11FormatError(
      b.source,
      null,
      `${b.wavelengthAA.length} ${what} rows but ${a.source} has ${a.wavelengthAA.length} (truncated file?)`,
    );
  for (let i = 0; i < a.wavelengthAA.length; i++)
    if (a.wavelengthAA[i] !== b.wavelengthAA[i])
      throw new Inoue11FormatError(b.source, null, `${what} row ${i + 1} wavelength ${b.wavelengthAA[i]} differs from ${a.source} (${a.wavelengthAA[i]})`);
}

/** Build the table from the 6 parsed lines files and 6 continuum files, in INOUE11_METALLICITIES order. */
export function buildInoue11Table(lines: Inoue11File[], continua: Inoue11File[]): Inoue11Table {
  const nz = INOUE11_METALLICITIES.length;
  if (lines.length !== nz || continua.length !== nz) throw new RangeError(`expected ${nz} lines and ${nz} continuum files`);
  for (let i = 1; i < nz; i++) {
    sameColumn(lines[0], lines[i], 'line');
    sameColumn(continua[0], continua[i], 'continuum');
  }
  const lineWavelengthAA = Float64Array.from(lines[0].wavelengthAA);
  const hbetaIndex = lineWavelengthAA.indexOf(HBETA_WAVELENGTH_AA);
  const lineRatioToHbeta = lines.map((f) =>
    INOUE11_LOG_U_MODEL_COLUMNS.map((k) => {
      const logL = f.models[k];
      // 10^(logL - logL_Hβ): the ratio straight from the logs (no 1e40 intermediates).
      return Float64Array.from(logL, (v) => Math.pow(10, v - logL[hbetaIndex]));
    }),
  );
  const continuumLnuPerPhoton = continua.map((f, zi) =>
    INOUE11_LOG_U_MODEL_COLUMNS.map((k) => Float64Array.from(f.models[k], (v) => v / INOUE11_Q_REF_PHOTONS_S[zi])),
  );
  return {
    metallicities: Float64Array.from(INOUE11_METALLICITIES),
    qRefPhotonsS: Float64Array.from(INOUE11_Q_REF_PHOTONS_S),
    logU: Float64Array.from(INOUE11_LOG_U),
    lineWavelengthAA,
    hbetaIndex,
    lineRatioToHbeta,
    continuumWavelengthAA: Float64Array.from(continua[0].wavelengthAA),
    continuumLnuPerPhoton,
  };
}

/** Read and validate data/nebular/inoue11 (`lines_<Z>.dat`, `continuum_<Z>.dat`). Node only. */
export async function loadInoue11(dir: string): Promise<Inoue11Table> {
  // Imported lazily so the browser bundle of this module (parse + physics) needs no node:fs.
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  return readInoue11Tables(async (name) => {
    const p = join(dir, name);
    try {
      return await readFile(p, 'utf8');
    } catch (e) {
      throw new Inoue11FormatError(p, null, `cannot read: ${(e as Error).message}`);
    }
  }, (name) => join(dir, name));
}

/**
 * The Inoue 2011 tables from any reader of the files by name (`lines_<Z>.dat`, `continuum_<Z>.dat`):
 * the browser's fetch or picked files, Node's file system. `where` names a file in errors.
 */
export async function readInoue11Tables(read: (name: string) => Promise<string>, where: (name: string) => string = (n) => n): Promise<Inoue11Table> {
  const lines: Inoue11File[] = [];
  const continua: Inoue11File[] = [];
  for (const label of INOUE11_Z_LABELS) {
    lines.push(parseInoue11Lines(await read(`lines_${label}.dat`), where(`lines_${label}.dat`)));
    continua.push(parseInoue11Continuum(await read(`continuum_${label}.dat`), where(`continuum_${label}.dat`)));
  }
  return buildInoue11Table(lines, continua);
}

// ---------------------------------------------------------------------------------------------
// Q(H)
// ---------------------------------------------------------------------------------------------

function checkWavelengths(wavelengthAA: ArrayLike<number>, values: ArrayLike<number>, what: string): void {
  if (values.length !== wavelengthAA.length) throw new RangeError(`${what} has ${values.length} samples, the wavelength grid ${wavelengthAA.length}`);
  checkGrid(wavelengthAA);
}

function checkGrid(wavelengthAA: ArrayLike<number>): void {
  if (wavelengthAA.length < 2) throw new RangeError('the wavelength grid needs >= 2 samples');
  for (let i = 1; i < wavelengthAA.length; i++)
    if (!(wavelengthAA[i] > wavelengthAA[i - 1])) throw new RangeError(`wavelengths must increase strictly (index ${i}: ${wavelengthAA[i - 1]} -> ${wavelengthAA[i]})`);
}

/**
 * ∫_{λ0}^{911.8 Å} f(λ) dλ by the trapezoid rule on the samples, the last partial interval ending
 * exactly at 911.8 Å with f linearly interpolated there (= the exact integral of the piecewise-linear
 * interpolant of f; BC03 samples 905 and 915 Å, so the partial interval matters). 0 when the grid
 * starts at or above 911.8 Å.
 */
function integrateBelowLymanLimit(wavelengthAA: ArrayLike<number>, f: (i: number) => number): number {
  const n = wavelengthAA.length;
  const lim = LYMAN_LIMIT_AA;
  let sum = 0;
  let prev = f(0);
  for (let i = 1; i < n; i++) {
    const l0 = wavelengthAA[i - 1];
    if (l0 >= lim) break;
    const l1 = wavelengthAA[i];
    const cur = f(i);
    if (l1 <= lim) sum += 0.5 * (prev + cur) * (l1 - l0);
    else {
      const fl = prev + ((cur - prev) * (lim - l0)) / (l1 - l0);
      sum += 0.5 * (prev + fl) * (lim - l0);
      break;
    }
    prev = cur;
  }
  return sum;
}

/**
 * Lyman-continuum photon rate Q(H) [photons/s] of a spectrum given as L_ν [erg/s/Hz] on wavelengthAA:
 * Q = ∫ L_λ λ/(hc) dλ = ∫ L_ν/(h λ) dλ below 911.8 Å (rule: see integrateBelowLymanLimit).
 */
export function ionisingPhotonRateFromLnu(wavelengthAA: ArrayLike<number>, lnuErgSHz: ArrayLike<number>): number {
  checkWavelengths(wavelengthAA, lnuErgSHz, 'lnuErgSHz');
  return integrateBelowLymanLimit(wavelengthAA, (i) => lnuErgSHz[i] / (PLANCK_ERG_S * wavelengthAA[i]));
}

/** Q(H) [photons/s] of a spectrum given as L_λ [erg/s/Å]; same integrand values and rule as from L_ν. */
export function ionisingPhotonRateFromLlambda(wavelengthAA: ArrayLike<number>, llambdaErgSAA: ArrayLike<number>): number {
  checkWavelengths(wavelengthAA, llambdaErgSAA, 'llambdaErgSAA');
  return integrateBelowLymanLimit(wavelengthAA, (i) => (llambdaErgSAA[i] * wavelengthAA[i]) / (PLANCK_ERG_S * SPEED_OF_LIGHT_AA_S));
}

// ---------------------------------------------------------------------------------------------
// Line deposition
// ---------------------------------------------------------------------------------------------

/**
 * Frequency width [Hz] of the cell around each wavelength sample: the trapezoid-rule weights in ν,
 * (ν_{i-1} − ν_{i+1})/2 inside, half the adjacent interval at the two ends. A cell spans the
 * frequency midpoints to its neighbours (in λ: the harmonic means 2λ_iλ_{i+1}/(λ_i+λ_{i+1})).
 */
export function frequencyCellWidthsHz(wavelengthAA: ArrayLike<number>): Float64Array {
  const n = wavelengthAA.length;
  const w = new Float64Array(n);
  if (n < 2) throw new RangeError('the wavelength grid needs >= 2 samples');
  const nu = (i: number): number => SPEED_OF_LIGHT_AA_S / wavelengthAA[i];
  w[0] = (nu(0) - nu(1)) / 2;
  w[n - 1] = (nu(n - 2) - nu(n - 1)) / 2;
  for (let i = 1; i < n - 1; i++) w[i] = (nu(i - 1) - nu(i + 1)) / 2;
  return w;
}

/**
 * Add lines [erg/s] at lineWavelengthAA to an L_ν spectrum [erg/s/Hz] on wavelengthAA: each line's
 * whole luminosity goes into the ONE cell containing it (cells of frequencyCellWidthsHz, half-open
 * [lower, upper) in λ, the last one closed) as L_ν = L / Δν_cell. So the trapezoid rule in ν over
 * the samples gives back every line's luminosity exactly (flux-conserving); lines outside
 * [λ_0, λ_{n-1}] are dropped. Accumulates into `out` (new zero array if omitted).
 */
export function depositLines(
  wavelengthAA: ArrayLike<number>,
  lineWavelengthAA: ArrayLike<number>,
  lineLuminosityErgS: ArrayLike<number>,
  out: Float64Array = new Float64Array(wavelengthAA.length),
): Float64Array {
  const n = wavelengthAA.length;
  if (out.length !== n) throw new RangeError(`out has ${out.length} samples, the wavelength grid ${n}`);
  if (lineLuminosityErgS.length !== lineWavelengthAA.length) throw new RangeError('one luminosity per line required');
  const width = frequencyCellWidthsHz(wavelengthAA);
  const upperEdge = (i: number): number => (2 * wavelengthAA[i] * wavelengthAA[i + 1]) / (wavelengthAA[i] + wavelengthAA[i + 1]);
  for (let k = 0; k < lineWavelengthAA.length; k++) {
    const l = lineWavelengthAA[k];
    if (!(l >= wavelengthAA[0] && l <= wavelengthAA[n - 1])) continue;
    let lo = 0;
    let hi = n - 1; // find the first cell whose upper edge exceeds l
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (l < upperEdge(mid)) hi = mid;
      else lo = mid + 1;
    }
    out[lo] += lineLuminosityErgS[k] / width[lo];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

export type NebularZInterpolation = 'log10Z' | 'nearest';

export interface NebularWeight {
  zIndex: number;
  uIndex: number;
  weight: number;
}

/**
 * The ≤ 4 base models and bilinear weights for (Z, log U): Z linear in log10 Z between the bracketing
 * tabulated Z's (or the nearest in log10 Z), log U linear between -3, -2, -1; both clamped.
 */
export function nebularInterpolationWeights(
  table: Inoue11Table,
  Z: number,
  logU: number,
  zInterpolation: NebularZInterpolation = 'log10Z',
): NebularWeight[] {
  if (Number.isNaN(logU)) throw new RangeError('logU is NaN');
  let wz = singleMetallicityWeights(table.metallicities, Z, 'log10Z');
  if (zInterpolation === 'nearest') {
    let best = 0;
    for (let i = 1; i < wz.length; i++) if (wz[i] > wz[best]) best = i;
    wz = new Float64Array(wz.length);
    wz[best] = 1;
  }
  const { index: iu, upperWeight } = bracket(table.logU, logU);
  const out: NebularWeight[] = [];
  for (let zi = 0; zi < wz.length; zi++) {
    if (wz[zi] === 0) continue;
    if (upperWeight < 1) out.push({ zIndex: zi, uIndex: iu, weight: wz[zi] * (1 - upperWeight) });
    if (upperWeight > 0) out.push({ zIndex: zi, uIndex: iu + 1, weight: wz[zi] * upperWeight });
  }
  return out;
}

/** Line luminosities per ionising photon [erg] (L_line / Q(H)) for (Z, log U), on table.lineWavelengthAA. */
export function nebularLineLuminositiesPerPhoton(
  table: Inoue11Table,
  Z: number,
  logU: number,
  zInterpolation: NebularZInterpolation = 'log10Z',
): Float64Array {
  const out = new Float64Array(table.lineWavelengthAA.length);
  for (const { zIndex, uIndex, weight } of nebularInterpolationWeights(table, Z, logU, zInterpolation)) {
    const r = table.lineRatioToHbeta[zIndex][uIndex];
    for (let k = 0; k < out.length; k++) out[k] += weight * HBETA_ERG_PER_IONISING_PHOTON * r[k];
  }
  return out;
}

/** Linear interpolation of (x, y) at v, 0 outside [x_0, x_{n-1}]. */
function interpZeroOutside(x: ArrayLike<number>, y: ArrayLike<number>, v: number): number {
  const n = x.length;
  if (!(v >= x[0] && v <= x[n - 1])) return 0;
  const { index, upperWeight } = bracket(x, v);
  return y[index] + upperWeight * (y[index + 1] - y[index]);
}

/**
 * L_ν per unit Q(H) [erg/s/Hz per photon/s] of one base model (tabulated Z index, log U index) on a
 * wavelength grid: the continuum per photon interpolated linearly in λ onto the grid (0 outside the
 * table: 91 Å – 1e10 Å), plus the lines deposited by depositLines, zero below 911.8 Å.
 */
export function nebularBaseTemplate(table: Inoue11Table, wavelengthAA: ArrayLike<number>, zIndex: number, uIndex: number): Float64Array {
  checkGrid(wavelengthAA);
  const n = wavelengthAA.length;
  const out = new Float64Array(n);
  const cont = table.continuumLnuPerPhoton[zIndex][uIndex];
  for (let i = 0; i < n; i++) out[i] = interpZeroOutside(table.continuumWavelengthAA, cont, wavelengthAA[i]);
  const r = table.lineRatioToHbeta[zIndex][uIndex];
  depositLines(
    wavelengthAA,
    table.lineWavelengthAA,
    Float64Array.from(r, (v) => v * HBETA_ERG_PER_IONISING_PHOTON),
    out,
  );
  for (let i = 0; i < n && wavelengthAA[i] < LYMAN_LIMIT_AA; i++) out[i] = 0;
  return out;
}

/** All 6 × 3 base templates [zIndex][uIndex] on a wavelength grid (what the GPU uploads once). */
export function nebularBaseTemplates(table: Inoue11Table, wavelengthAA: ArrayLike<number>): Float64Array[][] {
  checkGrid(wavelengthAA);
  return Array.from(table.metallicities, (_z, zi) => Array.from(table.logU, (_u, ui) => nebularBaseTemplate(table, wavelengthAA, zi, ui)));
}

/**
 * The nebular spectrum per unit Q(H) for (Z, log U) on a wavelength grid [erg/s/Hz per photon/s]:
 * Σ weight × base template (nebularInterpolationWeights). Nebular L_ν of a population = Q(H) × this.
 */
export function nebularTemplatePerPhoton(
  table: Inoue11Table,
  wavelengthAA: ArrayLike<number>,
  Z: number,
  logU: number,
  zInterpolation: NebularZInterpolation = 'log10Z',
): Float64Array {
  checkGrid(wavelengthAA);
  const out = new Float64Array(wavelengthAA.length);
  for (const { zIndex, uIndex, weight } of nebularInterpolationWeights(table, Z, logU, zInterpolation)) {
    const t = nebularBaseTemplate(table, wavelengthAA, zIndex, uIndex);
    for (let i = 0; i < out.length; i++) out[i] += weight * t[i];
  }
  return out;
}

/**
 * Stellar + nebular L_ν with f_esc = 0: Q(H) from the stellar spectrum, the stellar spectrum zeroed
 * below 911.8 Å, plus Q(H) × templatePerPhoton (nebularTemplatePerPhoton on the same grid).
 */
export function addNebularEmission(
  wavelengthAA: ArrayLike<number>,
  stellarLnuErgSHz: ArrayLike<number>,
  templatePerPhoton: ArrayLike<number>,
): { lnuErgSHz: Float64Array; qHPhotonsS: number } {
  if (templatePerPhoton.length !== wavelengthAA.length) throw new RangeError('templatePerPhoton must be on the wavelength grid');
  const qHPhotonsS = ionisingPhotonRateFromLnu(wavelengthAA, stellarLnuErgSHz);
  const lnuErgSHz = new Float64Array(wavelengthAA.length);
  for (let i = 0; i < lnuErgSHz.length; i++)
    lnuErgSHz[i] = (wavelengthAA[i] < LYMAN_LIMIT_AA ? 0 : stellarLnuErgSHz[i]) + qHPhotonsS * templatePerPhoton[i];
  return { lnuErgSHz, qHPhotonsS };
}
