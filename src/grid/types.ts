/**
 * The common in-memory SPS grid: every reader (BC03 .ised, Maraston 2005 ASCII, Synthesizer HDF5)
 * returns this, and the grid build / synthesis code only ever sees this.
 *
 * Units: ages in yr, metallicity as the mass fraction Z, wavelength in Angstrom (rest frame),
 * L_nu in erg/s/Hz per solar mass FORMED (initial mass), all float64.
 */
import { z } from 'zod';

/** Where a grid came from, with what constants: recorded in built-grid manifests. */
export const GridMetadataSchema = z.object({
  /** Short identifier, e.g. "bc03_lr_basel_padova1994_chabrier". */
  name: z.string().min(1),
  /** SPS family. */
  family: z.enum(['bc03', 'maraston05', 'hdf5']),
  /** Absolute paths of the files read. */
  sourceFiles: z.array(z.string()),
  /** L_sun [erg/s] used to turn L_sun/A into erg/s/A; null where the source is already in erg/s. */
  lSunErgS: z.number().positive().nullable(),
  /** Initial mass function, as named by the source. */
  imf: z.string(),
  /** What survivingMassFraction holds (e.g. "living stars + remnants"). */
  survivingMassDefinition: z.string(),
  /** Whether the source's t = 0 age was dropped. */
  droppedZeroAge: z.boolean(),
  /** Free-form provenance notes (conversions, assumptions). */
  notes: z.array(z.string()),
});
export type GridMetadata = z.infer<typeof GridMetadataSchema>;

export interface SpsGrid {
  /** Stellar ages [yr], strictly ascending (BC03 starts at 0 unless dropped). */
  ages: Float64Array;
  /** Metallicities as mass fraction Z, strictly ascending. */
  metallicities: Float64Array;
  /** Rest-frame wavelengths [Angstrom], strictly ascending. */
  wavelengthAA: Float64Array;
  /** L_nu [erg/s/Hz per M_sun formed], row-major [age][Z][lambda] (lambda fastest). */
  lnu: Float64Array;
  /**
   * Stellar mass still present per M_sun formed, [age][Z]. For BC03 and Maraston 2005 this is living
   * stars + remnants (see metadata.survivingMassDefinition); NaN where the source has none.
   */
  survivingMassFraction: Float64Array;
  /** Mass in living stars only per M_sun formed, [age][Z], where the source gives it. */
  livingMassFraction?: Float64Array;
  metadata: GridMetadata;
}

/** Flat index of lnu[age][Z][lambda]. */
export function lnuIndex(grid: Pick<SpsGrid, 'metallicities' | 'wavelengthAA'>, iAge: number, iZ: number, iLam = 0): number {
  return (iAge * grid.metallicities.length + iZ) * grid.wavelengthAA.length + iLam;
}

/** A view (no copy) of the spectrum L_nu(lambda) at one (age, Z) node. */
export function spectrumAt(grid: SpsGrid, iAge: number, iZ: number): Float64Array {
  const n = grid.wavelengthAA.length;
  const start = lnuIndex(grid, iAge, iZ);
  return grid.lnu.subarray(start, start + n);
}

function checkAxis(name: string, a: Float64Array, allowZeroFirst: boolean): string | null {
  if (a.length < 1) return `${name} is empty`;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (!Number.isFinite(v)) return `${name}[${i}] = ${v} is not finite`;
    if (v < 0 || (v === 0 && !(allowZeroFirst && i === 0))) return `${name}[${i}] = ${v} must be positive`;
    if (i > 0 && !(v > a[i - 1])) return `${name} must be strictly ascending: [${i - 1}] = ${a[i - 1]}, [${i}] = ${v}`;
  }
  return null;
}

/**
 * Checks shapes, ordering and finiteness of a grid; throws naming the first offending element.
 * `label` names the source (file or grid name) in the message.
 */
export function validateGrid(grid: SpsGrid, label = grid.metadata?.name ?? 'grid'): void {
  const meta = GridMetadataSchema.safeParse(grid.metadata);
  if (!meta.success) throw new Error(`${label}: invalid metadata: ${meta.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const errs = [
    checkAxis('ages', grid.ages, true),
    checkAxis('metallicities', grid.metallicities, false),
    checkAxis('wavelengthAA', grid.wavelengthAA, false),
  ].filter((e): e is string => e !== null);
  if (errs.length) throw new Error(`${label}: ${errs.join('; ')}`);
  const nA = grid.ages.length;
  const nZ = grid.metallicities.length;
  const nL = grid.wavelengthAA.length;
  if (grid.lnu.length !== nA * nZ * nL) {
    throw new Error(`${label}: lnu has ${grid.lnu.length} values, expected nAge*nZ*nLambda = ${nA}*${nZ}*${nL} = ${nA * nZ * nL}`);
  }
  for (let i = 0; i < grid.lnu.length; i++) {
    const v = grid.lnu[i];
    if (!(v >= 0) || v === Infinity) {
      const iL = i % nL;
      const iZ = Math.floor(i / nL) % nZ;
      const iA = Math.floor(i / (nL * nZ));
      throw new Error(`${label}: lnu[age ${iA}][Z ${iZ}][lambda ${iL}] = ${v} (must be finite and >= 0)`);
    }
  }
  for (const [key, arr] of [
    ['survivingMassFraction', grid.survivingMassFraction],
    ['livingMassFraction', grid.livingMassFraction],
  ] as const) {
    if (arr === undefined) continue;
    if (arr.length !== nA * nZ) throw new Error(`${label}: ${key} has ${arr.length} values, expected nAge*nZ = ${nA * nZ}`);
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i];
      if (Number.isNaN(v)) continue; // "not available" is allowed
      if (!(v >= 0 && v <= 1 + 1e-6)) throw new Error(`${label}: ${key}[age ${Math.floor(i / nZ)}][Z ${i % nZ}] = ${v} is outside [0, 1]`);
    }
  }
}

/** Returns a copy of the grid without the given age indices (e.g. BC03's t = 0). */
export function dropAges(grid: SpsGrid, drop: (iAge: number, ageYr: number) => boolean): SpsGrid {
  const nZ = grid.metallicities.length;
  const nL = grid.wavelengthAA.length;
  const keep: number[] = [];
  for (let i = 0; i < grid.ages.length; i++) if (!drop(i, grid.ages[i])) keep.push(i);
  const ages = Float64Array.from(keep, (i) => grid.ages[i]);
  const lnu = new Float64Array(keep.length * nZ * nL);
  const surv = new Float64Array(keep.length * nZ);
  const living = grid.livingMassFraction ? new Float64Array(keep.length * nZ) : undefined;
  keep.forEach((src, dst) => {
    lnu.set(grid.lnu.subarray(src * nZ * nL, (src + 1) * nZ * nL), dst * nZ * nL);
    surv.set(grid.survivingMassFraction.subarray(src * nZ, (src + 1) * nZ), dst * nZ);
    if (living && grid.livingMassFraction) living.set(grid.livingMassFraction.subarray(src * nZ, (src + 1) * nZ), dst * nZ);
  });
  return { ...grid, ages, lnu, survivingMassFraction: surv, livingMassFraction: living, metadata: { ...grid.metadata } };
}
