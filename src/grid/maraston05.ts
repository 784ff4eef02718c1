/**
 * Maraston (2005, MNRAS 362, 799) SSP SEDs, Kroupa IMF, red horizontal branch (`sed.krz*.rhb`), and
 * the stellar-mass table `stellarmass.kroupa`.
 *
 * `sed.*.rhb`: ASCII rows `age [Gyr]  [Z/H]  lambda [A]  F_lambda [erg/s/A per M_sun]`, grouped by age,
 * the same wavelength list for every age. [Z/H] is read from the column (file names are only
 * indicative) and converted to a mass fraction with Z = Z_sun * 10^[Z/H], Z_sun = 0.02 (the solar value
 * of Maraston 2005's tracks, so krz002 -> 0.02; krz0001 -> 8.9e-4, krz001 -> 9.3e-3, krz004 -> 0.0448).
 * L_nu = F_lambda * lambda^2 / c (already erg/s, no L_sun involved).
 * `stellarmass.kroupa`: rows `[Z/H]  t[Gyr]  M*_T  M*_alive  M*_WD  M*_NS  M*_BH  M_TO` per M_sun formed;
 * surviving mass = M*_T (living stars + remnants, the BC03 convention), living = M*_alive.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { SPEED_OF_LIGHT_AA_S } from '../physics/constants.js';
import { DataFileError } from './errors.js';
import { type SpsGrid, validateGrid } from './types.js';

/** Solar metallicity used to convert Maraston's [Z/H] to Z. */
export const MARASTON_Z_SUN = 0.02;

export interface MarastonSed {
  file: string;
  zOverH: number;
  agesGyr: Float64Array;
  wavelengthAA: Float64Array;
  /** F_lambda [erg/s/A per M_sun], [age][lambda]. */
  fLambda: Float64Array;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch (e) {
    throw new DataFileError(file, undefined, `cannot read: ${(e as Error).message}`);
  }
}

/** Splits a numeric line; throws naming the line if a field is not a finite number or the count differs. */
function numbers(file: string, lineNo: number, line: string, count: number): number[] {
  const f = line.trim().split(/\s+/);
  if (f.length !== count) throw new DataFileError(file, `line ${lineNo}`, `${f.length} columns, expected ${count}: "${line.trim()}"`);
  const v = f.map(Number);
  const bad = v.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new DataFileError(file, `line ${lineNo}`, `column ${bad + 1} is not a number: "${f[bad]}"`);
  return v;
}

export function readMarastonSed(file: string): MarastonSed {
  const lines = readText(file).split(/\r?\n/);
  const ages: number[] = [];
  const lam: number[] = [];
  const flux: number[] = [];
  let zOverH: number | undefined;
  let iLam = 0; // position within the current age block
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim();
    if (t === '' || t.startsWith('#')) continue;
    const [age, zh, l, f] = numbers(file, i + 1, t, 4);
    const where = `line ${i + 1}`;
    if (zOverH === undefined) zOverH = zh;
    else if (zh !== zOverH) throw new DataFileError(file, where, `[Z/H] = ${zh} differs from the file's ${zOverH}`);
    if (!(age > 0)) throw new DataFileError(file, where, `age ${age} Gyr must be positive`);
    if (!(f >= 0)) throw new DataFileError(file, where, `F_lambda ${f} must be >= 0`);
    if (ages.length === 0 || age !== ages[ages.length - 1]) {
      if (ages.length > 0) {
        if (!(age > ages[ages.length - 1])) throw new DataFileError(file, where, `ages must ascend: ${age} Gyr after ${ages[ages.length - 1]}`);
        if (iLam !== lam.length) throw new DataFileError(file, where, `age ${ages[ages.length - 1]} Gyr has ${iLam} wavelengths, the first age had ${lam.length}`);
      }
      ages.push(age);
      iLam = 0;
    }
    if (ages.length === 1) {
      if (lam.length > 0 && !(l > lam[lam.length - 1])) throw new DataFileError(file, where, `wavelengths must ascend: ${l} A after ${lam[lam.length - 1]}`);
      if (!(l > 0)) throw new DataFileError(file, where, `wavelength ${l} must be positive`);
      lam.push(l);
    } else if (iLam >= lam.length || l !== lam[iLam]) {
      throw new DataFileError(file, where, `wavelength ${l} A does not match the first age's wavelength list (entry ${iLam}: ${lam[iLam] ?? 'none'})`);
    }
    flux.push(f);
    iLam++;
  }
  if (ages.length === 0 || zOverH === undefined) throw new DataFileError(file, undefined, 'no data rows');
  if (iLam !== lam.length) throw new DataFileError(file, `line ${lines.length}`, `truncated: last age ${ages[ages.length - 1]} Gyr has ${iLam} of ${lam.length} wavelengths`);
  return { file, zOverH, agesGyr: Float64Array.from(ages), wavelengthAA: Float64Array.from(lam), fLambda: Float64Array.from(flux) };
}

export interface MarastonMassRow {
  zOverH: number;
  ageGyr: number;
  totalMass: number;
  livingMass: number;
}

export function readMarastonStellarMass(file: string): MarastonMassRow[] {
  const lines = readText(file).split(/\r?\n/);
  const rows: MarastonMassRow[] = [];
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i].trim();
    if (t === '' || t.startsWith('#')) continue;
    const v = numbers(file, i + 1, t, 8);
    if (!(v[2] >= 0 && v[2] <= 1 && v[3] >= 0 && v[3] <= v[2] + 1e-4)) {
      throw new DataFileError(file, `line ${i + 1}`, `masses out of range (M*_T ${v[2]}, M*_alive ${v[3]}; need 0 <= alive <= total <= 1)`);
    }
    rows.push({ zOverH: v[0], ageGyr: v[1], totalMass: v[2], livingMass: v[3] });
  }
  if (rows.length === 0) throw new DataFileError(file, undefined, 'no data rows');
  return rows;
}

/**
 * Reads all `sed.*.rhb` in `dir` plus `stellarmass.kroupa` into one grid sorted by Z. Every (age, [Z/H])
 * node must have a stellar-mass row (ages matched to 1e-6 relative, [Z/H] to 0.005 dex).
 */
export function readMaraston05Grid(dir: string): SpsGrid {
  let names: string[];
  try {
    names = readdirSync(dir).filter((f) => /^sed\..*\.rhb$/.test(f)).sort();
  } catch (e) {
    throw new DataFileError(dir, undefined, `cannot list Maraston directory: ${(e as Error).message}`);
  }
  if (names.length === 0) throw new DataFileError(dir, undefined, 'no sed.*.rhb files in the Maraston 2005 directory');
  const seds = names.map((n) => readMarastonSed(path.join(dir, n))).sort((a, b) => a.zOverH - b.zOverH);
  const massFile = path.join(dir, 'stellarmass.kroupa');
  const mass = readMarastonStellarMass(massFile);
  const ref = seds[0];
  for (const s of seds) {
    if (s.agesGyr.length !== ref.agesGyr.length || s.agesGyr.some((v, i) => v !== ref.agesGyr[i])) throw new DataFileError(s.file, undefined, `ages differ from ${ref.file}`);
    if (s.wavelengthAA.length !== ref.wavelengthAA.length || s.wavelengthAA.some((v, i) => v !== ref.wavelengthAA[i])) {
      throw new DataFileError(s.file, undefined, `wavelengths differ from ${ref.file}`);
    }
  }
  const nA = ref.agesGyr.length;
  const nZ = seds.length;
  const nL = ref.wavelengthAA.length;
  const conv = Float64Array.from(ref.wavelengthAA, (l) => (l * l) / SPEED_OF_LIGHT_AA_S);
  const lnu = new Float64Array(nA * nZ * nL);
  const surv = new Float64Array(nA * nZ);
  const living = new Float64Array(nA * nZ);
  seds.forEach((s, iZ) => {
    for (let a = 0; a < nA; a++) {
      const src = a * nL;
      const dst = (a * nZ + iZ) * nL;
      for (let i = 0; i < nL; i++) lnu[dst + i] = s.fLambda[src + i] * conv[i];
      const age = s.agesGyr[a];
      const row = mass.find((r) => Math.abs(r.zOverH - s.zOverH) < 0.005 && Math.abs(r.ageGyr - age) <= 1e-6 * age);
      if (!row) throw new DataFileError(massFile, undefined, `no row for [Z/H] = ${s.zOverH}, age ${age} Gyr (needed by ${s.file})`);
      surv[a * nZ + iZ] = row.totalMass;
      living[a * nZ + iZ] = row.livingMass;
    }
  });
  const grid: SpsGrid = {
    // toPrecision(12) drops the binary noise of Gyr -> yr (1e-6 * 1e9 = 1000.0000000000001).
    ages: Float64Array.from(ref.agesGyr, (g) => Number((g * 1e9).toPrecision(12))),
    metallicities: Float64Array.from(seds, (s) => MARASTON_Z_SUN * 10 ** s.zOverH),
    wavelengthAA: Float64Array.from(ref.wavelengthAA),
    lnu,
    survivingMassFraction: surv,
    livingMassFraction: living,
    metadata: {
      name: path.basename(path.resolve(dir)),
      family: 'maraston05',
      sourceFiles: [...seds.map((s) => path.resolve(s.file)), path.resolve(massFile)],
      lSunErgS: null,
      imf: 'Kroupa (2001)',
      survivingMassDefinition: 'living stars + remnants (stellarmass.kroupa M*_T)',
      droppedZeroAge: false,
      notes: [
        'Maraston 2005, MNRAS 362, 799; red horizontal branch SEDs',
        `Z = ${MARASTON_Z_SUN} * 10^[Z/H], [Z/H] from the files: ${seds.map((s) => s.zOverH).join(', ')}`,
        'L_nu = F_lambda * lambda^2 / c',
      ],
    },
  };
  validateGrid(grid, dir);
  return grid;
}
