/**
 * Grid build: read an SPS grid (BC03, Maraston 2005 or a Synthesizer HDF5 file), optionally resample it
 * (resample.ts), and write a compact form for the GPU into a git-ignored folder:
 *   <out>/<name>/lnu.f32        L_nu [erg/s/Hz per M_sun formed], float32 little-endian, [age][Z][lambda]
 *   <out>/<name>/manifest.json  shapes, axes (float64 in JSON), units, mass fractions, provenance with the
 *                               sha256 of every input file and of lnu.f32
 * float32 keeps 24 bits (rel 6e-8) of L_nu; values below ~1e-38 erg/s/Hz (the far-UV of old
 * populations, irrelevant for photometry) flush towards 0.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { gridBuildDir, resolveDataDir } from '../io/paths.js';
import { readBc03Grid } from './bc03.js';
import { DataFileError, zodIssues } from './errors.js';
import { readSynthesizerGrid } from './hdf5.js';
import { readMaraston05Grid } from './maraston05.js';
import { resampleGrid } from './resample.js';
import { type BuiltGrid, type BuiltGridManifest, BuiltGridManifestSchema, builtGridFromBytes, checkBuiltGridSize, parseBuiltGridManifest } from './builtGridFormat.js';
import { type SpsGrid, dropAges } from './types.js';

// The manifest format and the byte-level checks live in builtGridFormat.ts (shared with the browser).
export { type BuiltGrid, type BuiltGridManifest, BuiltGridManifestSchema, builtGridToSpsGrid } from './builtGridFormat.js';

/** Built-in grids: folder under the data dir. */
export const BUILTIN_GRIDS = {
  bc03: 'sps/bc03_lr_basel_padova1994_chabrier',
  maraston05: 'sps/maraston05_kroupa_rhb',
} as const;

export const GridBuildOptionsSchema = z
  .object({
    /** "bc03", "maraston05", or a path to a Synthesizer-format .h5/.hdf5 grid. */
    grid: z.string().min(1),
    dataDir: z.string().optional(),
    /** lambda/Δlambda of the log-uniform resampling; omit to keep the native wavelengths. */
    resolution: z.number().positive().finite().optional(),
    wavelengthMinAA: z.number().positive().finite().optional(),
    wavelengthMaxAA: z.number().positive().finite().optional(),
    /** Output root; default gridBuildDir() (grids/build, git-ignored). */
    outDir: z.string().optional(),
    /** Output folder name; default derived from the grid and the resampling. */
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_", "-" only').optional(),
    /** Keep BC03's t = 0 age (default: drop it, as the Synthesizer reference does). */
    keepZeroAge: z.boolean().default(false),
    /** L_sun for BC03 [erg/s]; default 3.828e33 (see bc03.ts). */
    lSunErgS: z.number().positive().optional(),
    /** spectra/<key> of an HDF5 grid; default "incident". */
    spectraKey: z.string().min(1).optional(),
  })
  .strict()
  .refine((o) => o.wavelengthMinAA === undefined || o.wavelengthMaxAA === undefined || o.wavelengthMinAA < o.wavelengthMaxAA, {
    message: 'wavelengthMinAA must be < wavelengthMaxAA',
    path: ['wavelengthMinAA'],
  });
export type GridBuildOptions = z.input<typeof GridBuildOptionsSchema>;

function sha256File(file: string): { sha256: string; bytes: number } {
  const buf = readFileSync(file);
  return { sha256: createHash('sha256').update(buf).digest('hex'), bytes: buf.byteLength };
}

/** Reads the source grid named by `grid` (built-in name or HDF5 path), dropping BC03's t = 0 unless kept. */
export async function loadSourceGrid(options: GridBuildOptions): Promise<SpsGrid> {
  const o = parseOptions(options);
  if (o.grid === 'bc03') {
    return readBc03Grid(path.join(resolveDataDir(o.dataDir), BUILTIN_GRIDS.bc03), { lSunErgS: o.lSunErgS, dropZeroAge: !o.keepZeroAge });
  }
  if (o.grid === 'maraston05') {
    const g = readMaraston05Grid(path.join(resolveDataDir(o.dataDir), BUILTIN_GRIDS.maraston05));
    return o.keepZeroAge || g.ages[0] !== 0 ? g : { ...dropAges(g, (_i, a) => a === 0), metadata: { ...g.metadata, droppedZeroAge: true } };
  }
  if (/\.(h5|hdf5)$/i.test(o.grid)) {
    const g = await readSynthesizerGrid(o.grid, { spectraKey: o.spectraKey });
    return o.keepZeroAge || g.ages[0] !== 0 ? g : { ...dropAges(g, (_i, a) => a === 0), metadata: { ...g.metadata, droppedZeroAge: true } };
  }
  throw new Error(`--grid must be one of ${Object.keys(BUILTIN_GRIDS).join(', ')} or a path to a .h5/.hdf5 Synthesizer grid, got "${o.grid}"`);
}

function parseOptions(options: GridBuildOptions) {
  const p = GridBuildOptionsSchema.safeParse(options);
  if (!p.success) throw new Error(`grid build options: ${zodIssues(p.error)}`);
  return p.data;
}

function defaultName(o: ReturnType<typeof parseOptions>, grid: SpsGrid): string {
  const base = o.grid in BUILTIN_GRIDS ? o.grid : grid.metadata.name.replace(/[^A-Za-z0-9._-]/g, '_');
  const parts = [base, o.resolution !== undefined ? `R${o.resolution}` : 'native'];
  if (o.wavelengthMinAA !== undefined || o.wavelengthMaxAA !== undefined) parts.push(`${o.wavelengthMinAA ?? 'min'}-${o.wavelengthMaxAA ?? 'max'}AA`);
  return parts.join('_');
}

/** Builds a grid and writes lnu.f32 + manifest.json; returns the output folder and the manifest. */
export async function buildGrid(options: GridBuildOptions): Promise<{ dir: string; manifest: BuiltGridManifest; grid: SpsGrid }> {
  const o = parseOptions(options);
  const source = await loadSourceGrid(o);
  const { grid, info } = resampleGrid(source, { resolution: o.resolution, wavelengthMinAA: o.wavelengthMinAA, wavelengthMaxAA: o.wavelengthMaxAA });
  const name = o.name ?? defaultName(o, source);
  const dir = path.join(o.outDir ?? gridBuildDir(), name);
  mkdirSync(dir, { recursive: true });

  const f32 = Float32Array.from(grid.lnu);
  const bytes = Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength);
  if (os.endianness() !== 'LE') bytes.swap32();
  const lnuFile = 'lnu.f32';
  const tmp = path.join(dir, `.${lnuFile}.${process.pid}.tmp`);
  writeFileSync(tmp, bytes);
  renameSync(tmp, path.join(dir, lnuFile));

  const nanToNull = (a: Float64Array) => Array.from(a, (v) => (Number.isNaN(v) ? null : v));
  const manifest: BuiltGridManifest = {
    format: 'synference-grid',
    version: 1,
    name,
    createdAt: new Date().toISOString(),
    shape: { nAge: grid.ages.length, nZ: grid.metallicities.length, nLambda: grid.wavelengthAA.length },
    layout: '[age][Z][lambda], row-major, lambda fastest',
    axes: {
      ageYr: Array.from(grid.ages),
      metallicityZ: Array.from(grid.metallicities),
      wavelengthAA: Array.from(grid.wavelengthAA),
      wavelengthEdgesAA: info.edgesAA ? Array.from(info.edgesAA) : null,
    },
    lnu: {
      file: lnuFile,
      dtype: 'float32',
      endianness: 'little',
      unit: 'erg/s/Hz per Msun formed',
      bytes: bytes.byteLength,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    },
    survivingMassFraction: nanToNull(grid.survivingMassFraction),
    livingMassFraction: grid.livingMassFraction ? Array.from(grid.livingMassFraction) : null,
    resampling: {
      method: info.method,
      resolution: info.resolution,
      wavelengthMinAA: info.wavelengthMinAA,
      wavelengthMaxAA: info.wavelengthMaxAA,
      conserves: info.method === 'native' ? 'native samples (cropped)' : '∫ L_nu dlambda over each bin (bin mean of the piecewise-linear native spectrum)',
    },
    source: { ...grid.metadata, files: grid.metadata.sourceFiles.map((p) => ({ path: p, ...sha256File(p) })) },
  };
  BuiltGridManifestSchema.parse(manifest); // our own output must satisfy the loader
  const mtmp = path.join(dir, `.manifest.json.${process.pid}.tmp`);
  writeFileSync(mtmp, `${JSON.stringify(manifest, null, 1)}\n`);
  renameSync(mtmp, path.join(dir, 'manifest.json'));
  return { dir, manifest, grid };
}

/**
 * Loads a built grid from a folder, or by name from gridBuildDir(). Checks the manifest (zod), the
 * binary's size and (unless verify = false) its sha256.
 */
export function loadBuiltGrid(dirOrName: string, options: { verify?: boolean } = {}): BuiltGrid {
  const dir = existsSync(path.join(dirOrName, 'manifest.json')) ? dirOrName : path.join(gridBuildDir(), dirOrName);
  const mfile = path.join(dir, 'manifest.json');
  if (!existsSync(mfile)) throw new Error(`no built grid at "${dirOrName}" (looked for ${path.join(dirOrName, 'manifest.json')} and ${mfile}); run "synference grid build"`);
  const m = parseBuiltGridManifest(readFileSync(mfile, 'utf8'), mfile);
  const bfile = path.join(dir, m.lnu.file);
  if (!existsSync(bfile)) throw new DataFileError(bfile, undefined, 'missing (manifest refers to it)');
  checkBuiltGridSize(m, statSync(bfile).size, bfile);
  const buf = readFileSync(bfile);
  if (options.verify !== false) {
    const sha = createHash('sha256').update(buf).digest('hex');
    if (sha !== m.lnu.sha256) throw new DataFileError(bfile, undefined, `sha256 ${sha} != manifest ${m.lnu.sha256} (modified or stale)`);
  }
  if (os.endianness() !== 'LE') buf.swap32();
  return builtGridFromBytes(m, buf, dir, bfile);
}
