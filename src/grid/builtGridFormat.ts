/**
 * The format of a built grid (see build.ts): the manifest schema and the checks that turn
 * manifest.json + the bytes of lnu.f32 into a BuiltGrid, without the file system, so that the
 * browser page reads grid builds served over HTTP or picked as a folder with the same checks as
 * Node's loadBuiltGrid. No node: imports.
 */
import { z } from 'zod';
import { DataFileError, zodIssues } from './errors.js';
import { GridMetadataSchema, type SpsGrid, validateGrid } from './types.js';

const FileRef = z.object({ path: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() });

export const BuiltGridManifestSchema = z.object({
  format: z.literal('synference-grid'),
  version: z.literal(1),
  name: z.string(),
  createdAt: z.string(),
  shape: z.object({ nAge: z.number().int().positive(), nZ: z.number().int().positive(), nLambda: z.number().int().positive() }),
  layout: z.literal('[age][Z][lambda], row-major, lambda fastest'),
  axes: z.object({
    ageYr: z.array(z.number().nonnegative()),
    metallicityZ: z.array(z.number().positive()),
    wavelengthAA: z.array(z.number().positive()),
    /** Bin edges [A] when resampled (nLambda + 1), else null. */
    wavelengthEdgesAA: z.array(z.number().positive()).nullable(),
  }),
  lnu: z.object({
    file: z.string(),
    dtype: z.literal('float32'),
    endianness: z.literal('little'),
    unit: z.literal('erg/s/Hz per Msun formed'),
    bytes: z.number().int().positive(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  /** [age][Z] flattened; null entries where the source has none. */
  survivingMassFraction: z.array(z.number().nullable()),
  livingMassFraction: z.array(z.number()).nullable(),
  resampling: z.object({
    method: z.enum(['native', 'flux-conserving-mean']),
    resolution: z.number().positive().nullable(),
    wavelengthMinAA: z.number().positive(),
    wavelengthMaxAA: z.number().positive(),
    conserves: z.string(),
  }),
  source: GridMetadataSchema.extend({ files: z.array(FileRef) }),
});
export type BuiltGridManifest = z.infer<typeof BuiltGridManifestSchema>;

/** A built grid as loaded for the GPU (float32 L_nu) with float64 axes. */
export interface BuiltGrid {
  dir: string;
  manifest: BuiltGridManifest;
  ages: Float64Array;
  metallicities: Float64Array;
  wavelengthAA: Float64Array;
  /** [age][Z][lambda], float32 as stored. */
  lnuF32: Float32Array;
  survivingMassFraction: Float64Array;
  livingMassFraction?: Float64Array;
}

/** Validates manifest.json (text or parsed) and the lengths of its axes; `file` names it in errors. */
export function parseBuiltGridManifest(input: string | unknown, file: string): BuiltGridManifest {
  let json = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch (e) {
      throw new DataFileError(file, undefined, `invalid JSON: ${(e as Error).message}`);
    }
  }
  const p = BuiltGridManifestSchema.safeParse(json);
  if (!p.success) throw new DataFileError(file, undefined, `invalid manifest: ${zodIssues(p.error)}`);
  const m = p.data;
  const { nAge, nZ, nLambda } = m.shape;
  const axisLen: [string, number, number][] = [
    ['axes.ageYr', m.axes.ageYr.length, nAge],
    ['axes.metallicityZ', m.axes.metallicityZ.length, nZ],
    ['axes.wavelengthAA', m.axes.wavelengthAA.length, nLambda],
    ['survivingMassFraction', m.survivingMassFraction.length, nAge * nZ],
  ];
  if (m.axes.wavelengthEdgesAA) axisLen.push(['axes.wavelengthEdgesAA', m.axes.wavelengthEdgesAA.length, nLambda + 1]);
  if (m.livingMassFraction) axisLen.push(['livingMassFraction', m.livingMassFraction.length, nAge * nZ]);
  for (const [k, got, want] of axisLen) if (got !== want) throw new DataFileError(file, k, `${got} values, shape implies ${want}`);
  return m;
}

/** Bytes lnu.f32 must have: 4 nAge nZ nLambda. */
export function builtGridBytes(m: BuiltGridManifest): number {
  return 4 * m.shape.nAge * m.shape.nZ * m.shape.nLambda;
}

/** Checks the size of lnu.f32 against the manifest; `size` in bytes, `file` names it in errors. */
export function checkBuiltGridSize(m: BuiltGridManifest, size: number, file: string): void {
  const want = builtGridBytes(m);
  const { nAge, nZ, nLambda } = m.shape;
  if (size !== want || m.lnu.bytes !== want) throw new DataFileError(file, undefined, `${size} bytes, expected ${want} (= 4 * ${nAge} * ${nZ} * ${nLambda}; truncated or stale?)`);
}

/**
 * A BuiltGrid from a validated manifest and lnu.f32's little-endian bytes (size checked here; the
 * sha256 is the caller's: Node hashes synchronously, a browser may use SubtleCrypto).
 */
export function builtGridFromBytes(m: BuiltGridManifest, bytes: Uint8Array, dir: string, file = `${dir}/${m.lnu.file}`): BuiltGrid {
  checkBuiltGridSize(m, bytes.byteLength, file);
  // A copy: the float view needs 4-byte alignment, and the caller's buffer stays theirs. Every
  // platform a browser or this project runs on is little-endian (build.ts swaps otherwise).
  const lnuF32 = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(lnuF32.buffer).set(bytes);
  return {
    dir,
    manifest: m,
    ages: Float64Array.from(m.axes.ageYr),
    metallicities: Float64Array.from(m.axes.metallicityZ),
    wavelengthAA: Float64Array.from(m.axes.wavelengthAA),
    lnuF32,
    survivingMassFraction: Float64Array.from(m.survivingMassFraction, (v) => (v === null ? Number.NaN : v)),
    livingMassFraction: m.livingMassFraction ? Float64Array.from(m.livingMassFraction) : undefined,
  };
}

/** Widens a built grid to the float64 SpsGrid form (e.g. for CPU references). */
export function builtGridToSpsGrid(b: BuiltGrid): SpsGrid {
  const { files: _files, ...meta } = b.manifest.source;
  const g: SpsGrid = {
    ages: b.ages,
    metallicities: b.metallicities,
    wavelengthAA: b.wavelengthAA,
    lnu: Float64Array.from(b.lnuF32),
    survivingMassFraction: b.survivingMassFraction,
    livingMassFraction: b.livingMassFraction,
    metadata: meta,
  };
  validateGrid(g, b.dir);
  return g;
}
