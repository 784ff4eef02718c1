/**
 * Synthesizer-format HDF5 SPS grids (Lovell, Wilkins et al., synthesizer-project/synthesizer, `Grid`),
 * read and written with h5wasm.
 *
 * Layout (as read by synthesizer/grid.py):
 *   root attribute `axes`       axis names in the order of the spectra's leading dimensions,
 *                               e.g. ["ages", "metallicities"]
 *   axes/ages                   [yr] (attribute `Units`, e.g. "yr"; Myr/Gyr converted). Older grids
 *                               store `axes/log10ages` (or log10age) in log10(yr): current Synthesizer
 *                               refuses those, we accept them.
 *   axes/metallicities          mass fraction Z (older grids: `metallicity`, or log10 variants)
 *   spectra/wavelength          [A] (attribute `Units`; Angstrom assumed when absent)
 *   spectra/<key>               (age, Z, lambda) in erg/s/Hz per M_sun formed; "incident" is the pure
 *                               stellar spectrum
 *   star_fraction (optional)    (age, Z) surviving stellar mass fraction
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import h5wasm from 'h5wasm/node';
import { hasHdf5Signature } from '../io/hdf5Signature.js';
import { DataFileError } from './errors.js';
import { type SpsGrid, validateGrid } from './types.js';

type H5File = InstanceType<typeof h5wasm.File>;
type H5Dataset = InstanceType<typeof h5wasm.Dataset>;


async function openH5(file: string, mode: 'r' | 'w'): Promise<H5File> {
  await h5wasm.ready;
  if (mode === 'r') {
    if (!existsSync(file)) throw new DataFileError(file, undefined, 'no such file');
    if (!hasHdf5Signature(file)) throw new DataFileError(file, undefined, 'not an HDF5 file (no HDF5 signature)');
  }
  const f = new h5wasm.File(file, mode);
  // h5wasm does not throw on failure: it returns a file with a negative id.
  if ((f as unknown as { file_id: bigint }).file_id < 0n) throw new DataFileError(file, undefined, `cannot open HDF5 file (mode ${mode}; truncated or corrupt?)`);
  return f;
}

function dataset(f: H5File, file: string, name: string): H5Dataset {
  const e = f.get(name);
  if (!e) throw new DataFileError(file, `dataset ${name}`, 'missing');
  if (!(e instanceof h5wasm.Dataset)) throw new DataFileError(file, `dataset ${name}`, 'is not a dataset');
  return e;
}

function floatValues(d: H5Dataset, file: string, name: string): Float64Array {
  const v = d.value;
  if (v instanceof Float64Array) return v;
  if (v instanceof Float32Array) return Float64Array.from(v);
  throw new DataFileError(file, `dataset ${name}`, `expected floating-point data, got dtype ${JSON.stringify(d.dtype)}`);
}

function stringAttr(obj: H5Dataset | H5File, key: string): string | undefined {
  if (!(key in obj.attrs)) return undefined;
  const v = obj.get_attribute(key, true);
  return typeof v === 'string' ? v : undefined;
}

const AGE_UNITS: Record<string, number> = { yr: 1, year: 1, years: 1, Myr: 1e6, Gyr: 1e9 };
const LAMBDA_UNITS: Record<string, number> = { Angstrom: 1, angstrom: 1, 'Å': 1, AA: 1, A: 1, nm: 10, um: 1e4, micron: 1e4, 'μm': 1e4 };

interface Axis {
  kind: 'age' | 'metallicity';
  values: Float64Array;
  name: string;
}

function readAxis(f: H5File, file: string, name: string): Axis {
  const d = dataset(f, file, `axes/${name}`);
  const shape = d.shape ?? [];
  if (shape.length !== 1) throw new DataFileError(file, `dataset axes/${name}`, `shape [${shape.join(', ')}], expected 1-D`);
  const raw = floatValues(d, file, `axes/${name}`);
  const units = stringAttr(d, 'Units');
  const isLog = /^log10/.test(name);
  const base = name.replace(/^log10_?/, '');
  if (/^ages?$/.test(base)) {
    let vals: Float64Array;
    if (isLog) vals = Float64Array.from(raw, (x) => 10 ** x);
    else {
      const scale = units === undefined || units === '' ? 1 : AGE_UNITS[units];
      if (scale === undefined) throw new DataFileError(file, `dataset axes/${name}`, `unknown age Units "${units}" (known: ${Object.keys(AGE_UNITS).join(', ')})`);
      vals = Float64Array.from(raw, (x) => x * scale);
    }
    return { kind: 'age', values: vals, name };
  }
  if (/^(metallicit(y|ies)|Z)$/.test(base)) {
    return { kind: 'metallicity', values: isLog ? Float64Array.from(raw, (x) => 10 ** x) : raw, name };
  }
  throw new DataFileError(file, `dataset axes/${name}`, 'unsupported axis (this reader handles age x metallicity grids: ages|log10ages, metallicities|log10metallicities)');
}

export interface Hdf5ReadOptions {
  /** spectra/<key> to read; default "incident" (the bare stellar spectrum). */
  spectraKey?: string;
}

/** Reads a Synthesizer-format grid. Axes may be stored in either order; the result is [age][Z][lambda]. */
export async function readSynthesizerGrid(file: string, options: Hdf5ReadOptions = {}): Promise<SpsGrid> {
  const key = options.spectraKey ?? 'incident';
  const f = await openH5(file, 'r');
  try {
    let axisNames: string[];
    if ('axes' in f.attrs) {
      const a = f.get_attribute('axes', true);
      axisNames = (Array.isArray(a) ? a : [a]).map(String);
    } else {
      const g = f.get('axes');
      if (!(g instanceof h5wasm.Group)) throw new DataFileError(file, 'group axes', 'missing (and no root "axes" attribute)');
      axisNames = g.keys();
    }
    if (axisNames.length !== 2) throw new DataFileError(file, 'attribute axes', `expected 2 axes (age, metallicity), got [${axisNames.join(', ')}]`);
    const axes = axisNames.map((n) => readAxis(f, file, n));
    const ageAx = axes.find((a) => a.kind === 'age');
    const zAx = axes.find((a) => a.kind === 'metallicity');
    if (!ageAx || !zAx) throw new DataFileError(file, 'attribute axes', `need one age and one metallicity axis, got [${axisNames.join(', ')}]`);
    const ageFirst = axes[0].kind === 'age';

    const wd = dataset(f, file, 'spectra/wavelength');
    const wUnits = stringAttr(wd, 'Units');
    const wScale = wUnits === undefined || wUnits === '' ? 1 : LAMBDA_UNITS[wUnits];
    if (wScale === undefined) throw new DataFileError(file, 'dataset spectra/wavelength', `unknown Units "${wUnits}"`);
    const wavelengthAA = Float64Array.from(floatValues(wd, file, 'spectra/wavelength'), (x) => x * wScale);

    const sd = dataset(f, file, `spectra/${key}`);
    const nA = ageAx.values.length;
    const nZ = zAx.values.length;
    const nL = wavelengthAA.length;
    const want = ageFirst ? [nA, nZ, nL] : [nZ, nA, nL];
    const shape = sd.shape ?? [];
    if (shape.length !== 3 || shape.some((s, i) => s !== want[i])) {
      throw new DataFileError(
        file,
        `dataset spectra/${key}`,
        `shape [${shape.join(', ')}], expected [${want.join(', ')}] (axes ${axisNames.join(', ')}, wavelength)`,
      );
    }
    const sUnits = stringAttr(sd, 'Units');
    if (sUnits !== undefined && !/^erg\s*\/\s*s\s*\/\s*Hz$/.test(sUnits.replace(/\*\*/g, '^'))) {
      throw new DataFileError(file, `dataset spectra/${key}`, `Units "${sUnits}", expected erg/s/Hz`);
    }
    const raw = floatValues(sd, file, `spectra/${key}`);
    const lnu = new Float64Array(nA * nZ * nL);
    for (let a = 0; a < nA; a++) {
      for (let z = 0; z < nZ; z++) {
        const src = (ageFirst ? a * nZ + z : z * nA + a) * nL;
        lnu.set(raw.subarray(src, src + nL), (a * nZ + z) * nL);
      }
    }
    const surv = new Float64Array(nA * nZ).fill(Number.NaN);
    const hasStarFraction = f.get('star_fraction') !== null;
    if (hasStarFraction) {
      const fd = dataset(f, file, 'star_fraction');
      const fs = fd.shape ?? [];
      const w2 = want.slice(0, 2);
      if (fs.length !== 2 || fs[0] !== w2[0] || fs[1] !== w2[1]) throw new DataFileError(file, 'dataset star_fraction', `shape [${fs.join(', ')}], expected [${w2.join(', ')}]`);
      const v = floatValues(fd, file, 'star_fraction');
      for (let a = 0; a < nA; a++) for (let z = 0; z < nZ; z++) surv[a * nZ + z] = v[ageFirst ? a * nZ + z : z * nA + a];
    }
    // validateGrid below rejects axes that are not strictly ascending.
    const grid: SpsGrid = {
      ages: ageAx.values,
      metallicities: zAx.values,
      wavelengthAA,
      lnu,
      survivingMassFraction: surv,
      metadata: {
        name: path.basename(file).replace(/\.(hdf5|h5)$/, ''),
        family: 'hdf5',
        sourceFiles: [path.resolve(file)],
        lSunErgS: null,
        imf: stringAttr(f, 'imf_type') ?? stringAttr(f, 'imf') ?? 'unknown',
        survivingMassDefinition: hasStarFraction ? 'star_fraction dataset of the grid file' : 'not available (NaN)',
        droppedZeroAge: false,
        notes: [`Synthesizer-format HDF5 grid, spectra/${key}`],
      },
    };
    try {
      validateGrid(grid, file);
    } catch (e) {
      throw new DataFileError(file, undefined, (e as Error).message.replace(`${file}: `, ''));
    }
    return grid;
  } finally {
    f.close();
  }
}

export interface Hdf5WriteOptions {
  spectraKey?: string;
  /** Store ages as the legacy `axes/log10ages` instead of `axes/ages` [yr]. */
  log10Ages?: boolean;
}

/** Writes a grid in the Synthesizer layout (used by the tests, and to export grids). */
export async function writeSynthesizerGrid(file: string, grid: SpsGrid, options: Hdf5WriteOptions = {}): Promise<void> {
  const key = options.spectraKey ?? 'incident';
  const f = await openH5(file, 'w');
  try {
    const ageName = options.log10Ages ? 'log10ages' : 'ages';
    f.create_attribute('axes', [ageName, 'metallicities']);
    f.create_attribute('imf_type', grid.metadata.imf);
    const axes = f.create_group('axes');
    const ages = options.log10Ages ? Float64Array.from(grid.ages, Math.log10) : grid.ages;
    const ad = axes.create_dataset({ name: ageName, data: ages });
    if (!options.log10Ages) ad.create_attribute('Units', 'yr');
    ad.create_attribute('log_on_read', 1);
    const zd = axes.create_dataset({ name: 'metallicities', data: grid.metallicities });
    zd.create_attribute('Units', 'dimensionless');
    zd.create_attribute('log_on_read', 0);
    const spectra = f.create_group('spectra');
    spectra.create_dataset({ name: 'wavelength', data: grid.wavelengthAA }).create_attribute('Units', 'Å');
    spectra
      .create_dataset({ name: key, data: grid.lnu, shape: [grid.ages.length, grid.metallicities.length, grid.wavelengthAA.length] })
      .create_attribute('Units', 'erg/s/Hz');
    if (!grid.survivingMassFraction.some(Number.isNaN)) {
      f.create_dataset({ name: 'star_fraction', data: grid.survivingMassFraction, shape: [grid.ages.length, grid.metallicities.length] });
    }
  } finally {
    f.close();
  }
}
