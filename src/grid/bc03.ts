/**
 * Bruzual & Charlot (2003, MNRAS 344, 1000) GALAXEV `.ised` SSP files, and GALAXEV's plain-text side
 * tables (`.4color`, `.acs_wfc_color`, `.1ABmag`).
 *
 * `.ised` layout (little-endian Fortran unformatted sequential, see fortran.ts and data/README.md):
 *   record 0          int32 nt, float32 age[nt] [yr] (first age 0), then IMF parameters and text
 *                     labels (the track label carries "Z=0.02")
 *   record 1          int32 nw, float32 lambda[nw] [A]
 *   records 2..nt+1   per age: int32 nw, float32 L_lambda[nw] [L_sun/A per M_sun formed],
 *                     int32 nx, float32 extra[nx] (ignored)
 *   records nt+2..    per-age tables, each int32 nt, float32 v[nt]. Checked against the `.4color`
 *                     side tables of this data set (test/grid/bc03.test.ts): table 1 is the mass in
 *                     living stars (4color "M*_liv"), table 9 the mass in remnants ("M_remnants"),
 *                     table 12 the returned gas ("M_ret_gas"), table 13 the galaxy mass ("M_galaxy").
 * L_nu = L_lambda * L_sun * lambda^2 / c. BC03 itself uses L_sun = 3.826e33 erg/s; the Synthesizer
 * reference photometry (reference/synthesizer/README.md) used 3.828e33 (IAU 2015 nominal), so that is
 * our default: it is what makes our photometry match the reference (a 5.2e-4 relative, 5.7e-4 mag,
 * difference otherwise).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { L_SUN_SYNTHESIZER_ERG_S, SPEED_OF_LIGHT_AA_S } from '../physics/constants.js';
import { DataFileError, zodIssues } from './errors.js';
import { readCountedFloat32, splitFortranRecords } from './fortran.js';
import { type SpsGrid, dropAges, validateGrid } from './types.js';

/** Per-age table positions after the spectra (see the file comment). */
export const ISED_TABLE = { livingStarMass: 1, remnantMass: 9, returnedGasMass: 12, galaxyMass: 13 } as const;

/** BC03 metallicity codes in file names (bc2003_*_mXX_*), Bruzual & Charlot 2003 table 1. */
export const BC03_METALLICITY_CODES: Readonly<Record<string, number>> = {
  m22: 0.0001,
  m32: 0.0004,
  m42: 0.004,
  m52: 0.008,
  m62: 0.02,
  m72: 0.05,
  m82: 0.1,
};

export interface IsedFile {
  file: string;
  /** [yr], as stored (first is 0). */
  ages: Float64Array;
  /** [A]. */
  wavelengthAA: Float64Array;
  /** L_lambda [L_sun/A per M_sun formed], [age][lambda]. */
  lLambdaLsunPerAA: Float64Array;
  /** The per-age tables after the spectra, each of length nt. */
  tables: Float64Array[];
  /** Printable text found in record 0 (track labels etc.). */
  headerText: string;
  /** Z parsed from the header text ("Z=0.02"), else from the mXX code in the file name. */
  metallicityZ: number;
}

function printableRuns(p: DataView, from: number): string {
  const runs: string[] = [];
  let cur = '';
  for (let i = from; i < p.byteLength; i++) {
    const c = p.getUint8(i);
    if (c >= 32 && c < 127) cur += String.fromCharCode(c);
    else {
      if (cur.trim().length >= 8) runs.push(cur.trim());
      cur = '';
    }
  }
  if (cur.trim().length >= 8) runs.push(cur.trim());
  return [...new Set(runs)].join(' | ');
}

/** Parses an `.ised` file's bytes; `file` is used in error messages. */
export function parseIsed(bytes: Uint8Array, file: string): IsedFile {
  const recs = splitFortranRecords(bytes, file);
  if (recs.length < 2) throw new DataFileError(file, undefined, `truncated: ${recs.length} records, need at least the age and wavelength records`);
  const { values: ages, end: hdrEnd } = readCountedFloat32(recs[0], 0, file, 'ages');
  const nt = ages.length;
  if (nt < 1) throw new DataFileError(file, 'record 0', 'no ages');
  for (let i = 0; i < nt; i++) {
    if (!Number.isFinite(ages[i]) || ages[i] < 0 || (i > 0 && !(ages[i] > ages[i - 1]))) {
      throw new DataFileError(file, `record 0, age ${i}`, `ages must be finite, >= 0 and strictly ascending (got ${ages[i]} after ${i > 0 ? ages[i - 1] : '-'})`);
    }
  }
  const headerText = printableRuns(recs[0].payload, hdrEnd);
  const { values: wavelengthAA } = readCountedFloat32(recs[1], 0, file, 'wavelengths');
  const nw = wavelengthAA.length;
  for (let i = 0; i < nw; i++) {
    if (!(wavelengthAA[i] > 0) || !Number.isFinite(wavelengthAA[i]) || (i > 0 && !(wavelengthAA[i] > wavelengthAA[i - 1]))) {
      throw new DataFileError(file, `record 1, wavelength ${i}`, `wavelengths must be positive and strictly ascending (got ${wavelengthAA[i]})`);
    }
  }
  if (recs.length < 2 + nt) {
    throw new DataFileError(file, `record ${recs.length}`, `truncated: ${recs.length - 2} spectra for ${nt} ages`);
  }
  const lLambda = new Float64Array(nt * nw);
  for (let a = 0; a < nt; a++) {
    const rec = recs[2 + a];
    const { values, end } = readCountedFloat32(rec, 0, file, `spectrum of age ${a}`, nw);
    // The extras (nx floats) must fill the rest of the record exactly: a cheap consistency check.
    if (end + 4 <= rec.payload.byteLength) {
      const nx = rec.payload.getInt32(end, true);
      if (nx < 0 || end + 4 + 4 * nx !== rec.payload.byteLength) {
        throw new DataFileError(file, `record ${rec.index} (byte ${rec.offset})`, `extras count ${nx} does not fill the ${rec.payload.byteLength}-byte record`);
      }
    }
    for (let i = 0; i < nw; i++) {
      const v = values[i];
      if (!(v >= 0) || v === Infinity) throw new DataFileError(file, `record ${rec.index}, lambda ${i}`, `L_lambda = ${v} (must be finite and >= 0)`);
    }
    lLambda.set(values, a * nw);
  }
  const tables: Float64Array[] = [];
  for (let r = 2 + nt; r < recs.length; r++) tables.push(readCountedFloat32(recs[r], 0, file, `per-age table ${r - 2 - nt}`, nt).values);

  const zMatch = /\bZ=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)/.exec(headerText);
  const code = /_(m\d2)_/.exec(path.basename(file))?.[1];
  const metallicityZ = zMatch ? Number(zMatch[1]) : code !== undefined ? BC03_METALLICITY_CODES[code] : undefined;
  if (metallicityZ === undefined || !(metallicityZ > 0)) {
    throw new DataFileError(file, 'record 0', 'cannot find the metallicity (no "Z=" in the header text and no mXX code in the file name)');
  }
  return { file, ages, wavelengthAA, lLambdaLsunPerAA: lLambda, tables, headerText, metallicityZ };
}

export function readIsed(file: string): IsedFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new DataFileError(file, undefined, `cannot read: ${(e as Error).message}`);
  }
  return parseIsed(bytes, file);
}

/** Living stars + remnants per M_sun formed (BC03's M*_tot = "M*_liv+M_rem"), and living stars only. */
export function isedStellarMass(ised: IsedFile): { livingPlusRemnants: Float64Array; living: Float64Array } {
  const need = Math.max(ISED_TABLE.livingStarMass, ISED_TABLE.remnantMass) + 1;
  if (ised.tables.length < need) {
    throw new DataFileError(ised.file, `record ${2 + ised.ages.length + ised.tables.length}`, `truncated: ${ised.tables.length} per-age tables after the spectra, need at least ${need} for the stellar mass`);
  }
  const living = ised.tables[ISED_TABLE.livingStarMass];
  const rem = ised.tables[ISED_TABLE.remnantMass];
  const tot = new Float64Array(living.length);
  for (let i = 0; i < tot.length; i++) tot[i] = living[i] + rem[i];
  return { livingPlusRemnants: tot, living };
}

export const Bc03OptionsSchema = z
  .object({
    /** L_sun [erg/s] for L_sun/A -> erg/s/A. Default 3.828e33, as the Synthesizer reference (see file comment). */
    lSunErgS: z.number().positive().default(L_SUN_SYNTHESIZER_ERG_S),
    /** Drop the t = 0 age (Synthesizer does: 220 ages from 1e5 to 2e10 yr). */
    dropZeroAge: z.boolean().default(false),
  })
  .strict();
export type Bc03Options = z.input<typeof Bc03OptionsSchema>;

/** IMF named by the BC03 file-name convention. */
function bc03Imf(base: string): string {
  if (/_chab_/.test(base)) return 'Chabrier (2003)';
  if (/_salp_/.test(base)) return 'Salpeter (1955)';
  if (/_kroup_/.test(base)) return 'Kroupa (2001)';
  return 'unknown';
}

/**
 * Reads every `*.ised` in `dir` (one per metallicity) into one grid, sorted by Z. All files must share
 * the same ages and wavelengths.
 */
export function readBc03Grid(dir: string, options: Bc03Options = {}): SpsGrid {
  const parsed = Bc03OptionsSchema.safeParse(options);
  if (!parsed.success) throw new Error(`BC03 options: ${zodIssues(parsed.error)}`);
  const opts = parsed.data;
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => f.endsWith('.ised')).sort();
  } catch (e) {
    throw new DataFileError(dir, undefined, `cannot list BC03 directory: ${(e as Error).message}`);
  }
  if (names.length === 0) throw new DataFileError(dir, undefined, 'no *.ised files in the BC03 directory');
  const files = names.map((n) => readIsed(path.join(dir, n))).sort((a, b) => a.metallicityZ - b.metallicityZ);
  const ref = files[0];
  for (const f of files) {
    const same = (a: Float64Array, b: Float64Array) => a.length === b.length && a.every((v, i) => v === b[i]);
    if (!same(f.ages, ref.ages)) throw new DataFileError(f.file, 'record 0', `ages differ from ${ref.file}`);
    if (!same(f.wavelengthAA, ref.wavelengthAA)) throw new DataFileError(f.file, 'record 1', `wavelengths differ from ${ref.file}`);
  }
  for (let i = 1; i < files.length; i++) {
    if (files[i].metallicityZ === files[i - 1].metallicityZ) throw new DataFileError(files[i].file, 'record 0', `duplicate metallicity Z=${files[i].metallicityZ} (also in ${files[i - 1].file})`);
  }
  const nA = ref.ages.length;
  const nZ = files.length;
  const nL = ref.wavelengthAA.length;
  const lam = ref.wavelengthAA;
  // L_nu = L_lambda * lambda^2 / c, per wavelength (float64 throughout).
  const conv = Float64Array.from(lam, (l) => (opts.lSunErgS * l * l) / SPEED_OF_LIGHT_AA_S);
  const lnu = new Float64Array(nA * nZ * nL);
  const surv = new Float64Array(nA * nZ);
  const living = new Float64Array(nA * nZ);
  files.forEach((f, iZ) => {
    const mass = isedStellarMass(f);
    for (let a = 0; a < nA; a++) {
      const src = a * nL;
      const dst = (a * nZ + iZ) * nL;
      for (let i = 0; i < nL; i++) lnu[dst + i] = f.lLambdaLsunPerAA[src + i] * conv[i];
      surv[a * nZ + iZ] = mass.livingPlusRemnants[a];
      living[a * nZ + iZ] = mass.living[a];
    }
  });
  const base = path.basename(files[0].file);
  let grid: SpsGrid = {
    ages: Float64Array.from(ref.ages),
    metallicities: Float64Array.from(files, (f) => f.metallicityZ),
    wavelengthAA: Float64Array.from(lam),
    lnu,
    survivingMassFraction: surv,
    livingMassFraction: living,
    metadata: {
      name: path.basename(path.resolve(dir)),
      family: 'bc03',
      sourceFiles: files.map((f) => path.resolve(f.file)),
      lSunErgS: opts.lSunErgS,
      imf: bc03Imf(base),
      survivingMassDefinition: 'living stars + remnants (BC03 M*_liv + M_remnants, .4color "M*_tot")',
      droppedZeroAge: false,
      notes: [
        'Bruzual & Charlot 2003, MNRAS 344, 1000; GALAXEV .ised files',
        `L_nu = L_lambda * ${opts.lSunErgS} erg/s * lambda^2 / c (BC03 itself uses 3.826e33)`,
        'metallicity from the track label in the .ised header ("Z=...")',
      ],
    },
  };
  if (opts.dropZeroAge) {
    grid = dropAges(grid, (_i, age) => age === 0);
    grid.metadata.droppedZeroAge = true;
  }
  validateGrid(grid, dir);
  return grid;
}

/** One GALAXEV side table (`.4color`, `.acs_wfc_color`, `.1ABmag`...): named columns, one row per age. */
export interface GalaxevTable {
  file: string;
  columns: string[];
  rows: Float64Array[];
  /** Column by name; throws naming the available columns. */
  column(name: string): Float64Array;
}

/**
 * Reads a GALAXEV side table. The column names come from the `#log-age-yr ...` header line, split on
 * runs of 2+ spaces (names such as "log Nly" contain single spaces).
 */
export function readGalaxevTable(file: string): GalaxevTable {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (e) {
    throw new DataFileError(file, undefined, `cannot read: ${(e as Error).message}`);
  }
  let columns: string[] | undefined;
  const rows: Float64Array[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    const t = line.trim();
    if (t === '') return;
    if (t.startsWith('#')) {
      const h = t.slice(1).trim();
      if (/^log-age/i.test(h)) columns = h.split(/\s{2,}/).map((s) => s.trim());
      return;
    }
    if (!columns) throw new DataFileError(file, `line ${i + 1}`, 'data before the "#log-age-yr ..." column header');
    const vals = t.split(/\s+/).map(Number);
    if (vals.length !== columns.length) throw new DataFileError(file, `line ${i + 1}`, `${vals.length} values, header names ${columns.length} columns`);
    const bad = vals.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new DataFileError(file, `line ${i + 1}`, `column ${bad + 1} (${columns[bad]}) is not a number: "${t.split(/\s+/)[bad]}"`);
    rows.push(Float64Array.from(vals));
  });
  if (!columns) throw new DataFileError(file, undefined, 'no "#log-age-yr ..." column header');
  if (rows.length === 0) throw new DataFileError(file, undefined, 'no data rows');
  const cols = columns;
  return {
    file,
    columns: cols,
    rows,
    column(name: string): Float64Array {
      const k = cols.indexOf(name);
      if (k < 0) throw new Error(`${file}: no column "${name}"; columns are: ${cols.join(', ')}`);
      return Float64Array.from(rows, (r) => r[k]);
    },
  };
}
