/**
 * Simulation library format (HDF5), version 1.
 *
 * A library is one HDF5 file. **Any HDF5 file with 2-D numeric datasets `theta` and `x` at the root,
 * with the same number of rows, is a valid training library**: everything else is optional, and
 * the flow does not care where the rows came from.
 *
 * Datasets (root group, row i of every dataset describes the same simulation):
 *
 * | dataset   | shape | dtype   | what                                                                 |
 * | --------- | ----- | ------- | -------------------------------------------------------------------- |
 * | `theta`   | N x P | float32 | parameters (what the flow learns the posterior of)                   |
 * | `x`       | N x F | float32 | features / observations (the flow's context)                         |
 * | `fluxes`  | N x B | float32 | optional: noiseless band fluxes [nJy] (attribute `units` = "nJy")    |
 * | `errors`  | N x B | float32 | optional: flux errors [nJy] (attribute `units` = "nJy")              |
 * | `derived` | N x D | float32 | optional: derived quantities (stellar mass, SFR, ...), units in names |
 *
 * Per-dataset attributes:
 *   `columns`       the column names, an HDF5 array of variable-length UTF-8 strings
 *                   (h5py: `f["theta"].attrs["columns"]` -> array of str)
 *   `columns_json`  the same names as JSON text, e.g. `["redshift","log10_mass"]`
 *   `units`         "nJy" on `fluxes` and `errors`
 *
 * Root attributes:
 *   `format_version`  int32, 1
 *   `generator`       "synference-webgpu"
 *   `config`          the simulation config as JSON text
 *   `config_hash`     sha256 (hex) of the config's canonical JSON (keys sorted, no whitespace)
 *   `seed`            int64, the seed every random stream derives from
 *   `chunk_size`      int64, rows per simulation chunk (random streams may depend on it)
 *   `created`         ISO 8601 time at which the run was first started (kept on resume, so a
 *                     resumed run gives a file identical to an uninterrupted one)
 *
 * Datasets are HDF5-chunked (about 256 KiB per chunk, whole rows), optionally gzip-compressed.
 *
 * Reading (`readLibrary`, `openLibrary`): `theta` and `x` are required; integer and float64 data are
 * converted to float32; a 1-D dataset is read as N x 1; column names are optional (from `columns`,
 * or else `columns_json`; default `theta_0, theta_1, ...`, `x_0, ...`); root attributes are
 * optional. Errors name the file and the dataset.
 *
 * Writing (`LibraryWriter`): chunks are stored as parts in the sidecar folder `<out>.parts/`
 * (each part written to a temporary name and renamed, with a sha256 checksum, listed in
 * `manifest.json`) and assembled into `<out>` at the end, so a run killed at any moment resumes
 * without redoing or losing finished chunks. See writer.ts.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import h5wasm from 'h5wasm/node';
import { DataFileError } from '../../grid/errors.js';

export { DataFileError };

export type H5File = InstanceType<typeof h5wasm.File>;
export type H5Dataset = InstanceType<typeof h5wasm.Dataset>;

export const LIBRARY_FORMAT_VERSION = 1;
export const LIBRARY_GENERATOR = 'synference-webgpu';

/** The required datasets and the optional ones, in file order. */
export const REQUIRED_DATASETS = ['theta', 'x'] as const;
export const OPTIONAL_DATASETS = ['fluxes', 'errors', 'derived'] as const;
export const LIBRARY_DATASETS = [...REQUIRED_DATASETS, ...OPTIONAL_DATASETS] as const;
export type LibraryDatasetName = (typeof LIBRARY_DATASETS)[number];
export type OptionalDatasetName = (typeof OPTIONAL_DATASETS)[number];

/** Units attribute written on these datasets. */
export const DATASET_UNITS: Partial<Record<LibraryDatasetName, string>> = { fluxes: 'nJy', errors: 'nJy' };

/** `prefix_0, prefix_1, ...`: the column names used when a file has none. */
export function defaultColumnNames(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}_${i}`);
}

/** JSON with object keys sorted and no whitespace: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object' && !ArrayBuffer.isView(v)) {
    const src = (typeof (v as { toJSON?: unknown }).toJSON === 'function' ? (v as { toJSON: () => unknown }).toJSON() : v) as Record<string, unknown>;
    if (src === null || typeof src !== 'object') return src;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(src).sort()) if (src[k] !== undefined) out[k] = sortKeys(src[k]);
    return out;
  }
  return v;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of the config's canonical JSON: the identity of a simulation config. */
export function configHash(config: unknown): string {
  return sha256Hex(canonicalJson(config));
}

import { hasHdf5Signature } from '../hdf5Signature.js';

export { hasHdf5Signature };

/** Opens an HDF5 file with h5wasm; read mode checks existence and the signature first. */
export async function openH5(file: string, mode: 'r' | 'w'): Promise<H5File> {
  await h5wasm.ready;
  if (mode === 'r') {
    if (!existsSync(file)) throw new DataFileError(file, undefined, 'no such file');
    if (statSync(file).isDirectory()) throw new DataFileError(file, undefined, 'is a directory, not an HDF5 file');
    if (!hasHdf5Signature(file)) throw new DataFileError(file, undefined, 'not an HDF5 file (no HDF5 signature)');
  }
  const f = new h5wasm.File(file, mode);
  // h5wasm does not throw on failure: it returns a file with a negative id.
  if ((f as unknown as { file_id: bigint }).file_id < 0n) throw new DataFileError(file, undefined, `cannot open HDF5 file (mode ${mode}; truncated or corrupt?)`);
  return f;
}

export { h5wasm };
