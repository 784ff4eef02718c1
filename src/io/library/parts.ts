/**
 * The sidecar folder `<out>.parts/` of a library being written: one file per finished chunk and a
 * manifest. Every file is written under a temporary name, fsync'ed and renamed, so after a crash
 * (kill -9 included) a part or the manifest is either there complete or not there at all.
 *
 * Part file `chunk-000012.part`:
 *   bytes 0..7    magic "SYNLIBP1"
 *   bytes 8..11   header length H (uint32 LE)
 *   H bytes       header, JSON: {chunk, start, rows, identity, datasets: [[name, cols], ...], payloadSha256}
 *   payload       for each dataset in header order, rows x cols float32 LE, row-major
 * The header repeats the run's identity (config hash, seed, n, chunk size), so a part that was
 * renamed into place just before a kill, but not yet listed in the manifest, is verified and adopted.
 *
 * `manifest.json`: the run's identity, column names, `created`, and the finished chunks with their
 * byte size and payload sha256.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { LIBRARY_DATASETS, type LibraryDatasetName, sha256Hex } from './format.js';

export const PART_MAGIC = 'SYNLIBP1';
export const MANIFEST_NAME = 'manifest.json';
export const LOCK_NAME = 'lock';
export const TMP_SUFFIX = '.tmp';

export function partName(chunk: number): string {
  return `chunk-${String(chunk).padStart(6, '0')}.part`;
}
export const PART_RE = /^chunk-(\d{6,})\.part$/;

/** What makes two runs the same run: a restart must match all of it. */
export const IdentitySchema = z
  .object({
    configHash: z.string().regex(/^[0-9a-f]{64}$/),
    seed: z.number().int().nonnegative(),
    n: z.number().int().positive(),
    chunkSize: z.number().int().positive(),
  })
  .strict();
export type RunIdentity = z.infer<typeof IdentitySchema>;

export const DatasetColumnsSchema = z.object({ name: z.enum(LIBRARY_DATASETS), columns: z.array(z.string()).min(1) }).strict();
export type DatasetColumns = z.infer<typeof DatasetColumnsSchema>;

export const ChunkRecordSchema = z.object({ rows: z.number().int().positive(), bytes: z.number().int().positive(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict();
export type ChunkRecord = z.infer<typeof ChunkRecordSchema>;

export const ManifestSchema = z
  .object({
    format: z.literal('synference-library-parts'),
    version: z.literal(1),
    output: z.string(),
    identity: IdentitySchema,
    configText: z.string(),
    datasets: z.array(DatasetColumnsSchema).min(2),
    created: z.string(),
    chunks: z.record(z.string().regex(/^\d+$/), ChunkRecordSchema),
  })
  .strict();
export type Manifest = z.infer<typeof ManifestSchema>;

const PartHeaderSchema = z
  .object({
    chunk: z.number().int().nonnegative(),
    start: z.number().int().nonnegative(),
    rows: z.number().int().positive(),
    identity: IdentitySchema,
    datasets: z.array(z.tuple([z.enum(LIBRARY_DATASETS), z.number().int().positive()])).min(2),
    payloadSha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();
export type PartHeader = z.infer<typeof PartHeaderSchema>;

/** Writes `file` atomically: temp name, fsync, rename, fsync of the folder (best effort). */
export function writeFileAtomic(file: string, chunks: Uint8Array[]): void {
  const tmp = file + TMP_SUFFIX;
  const fd = openSync(tmp, 'w');
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) off += writeSync(fd, c, off, c.byteLength - off);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not supported on every platform/file system; the rename is still atomic.
  }
}

function bytesOf(a: Float32Array): Uint8Array {
  // Part files are little-endian; Float32Array is host-endian (little-endian on every platform Node supports for WebGPU).
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export interface PartData {
  chunk: number;
  start: number;
  rows: number;
  /** In file order; each rows x cols float32, row-major. */
  datasets: { name: LibraryDatasetName; cols: number; data: Float32Array }[];
}

/** Encodes a part; returns the file's byte chunks and the payload sha256. */
export function encodePart(identity: RunIdentity, part: PartData): { chunks: Uint8Array[]; sha256: string; bytes: number } {
  // sha256 of the concatenated payload, as decodePart computes it.
  const h = createHash('sha256');
  for (const d of part.datasets) h.update(bytesOf(d.data));
  const hash = h.digest('hex');
  const header: PartHeader = {
    chunk: part.chunk,
    start: part.start,
    rows: part.rows,
    identity,
    datasets: part.datasets.map((d) => [d.name, d.cols]),
    payloadSha256: hash,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(12);
  pre.write(PART_MAGIC, 0, 'latin1');
  pre.writeUInt32LE(headerBytes.byteLength, 8);
  const chunks = [pre, headerBytes, ...part.datasets.map((d) => bytesOf(d.data))];
  return { chunks, sha256: hash, bytes: chunks.reduce((s, c) => s + c.byteLength, 0) };
}

/** Reads and fully verifies a part file; throws an Error saying what is wrong. */
export function decodePart(file: string): { header: PartHeader; datasets: Map<LibraryDatasetName, Float32Array>; bytes: number } {
  const buf = readFileSync(file);
  if (buf.byteLength < 12 || buf.toString('latin1', 0, 8) !== PART_MAGIC) throw new Error(`${file}: not a library part file (bad magic)`);
  const hlen = buf.readUInt32LE(8);
  if (12 + hlen > buf.byteLength) throw new Error(`${file}: truncated header`);
  let header: PartHeader;
  try {
    header = PartHeaderSchema.parse(JSON.parse(buf.toString('utf8', 12, 12 + hlen)));
  } catch (e) {
    throw new Error(`${file}: bad part header: ${(e as Error).message}`);
  }
  const payloadStart = 12 + hlen;
  const expected = header.datasets.reduce((s, [, cols]) => s + header.rows * cols * 4, 0);
  if (buf.byteLength - payloadStart !== expected) {
    throw new Error(`${file}: payload is ${buf.byteLength - payloadStart} bytes, expected ${expected} (truncated?)`);
  }
  const payload = buf.subarray(payloadStart);
  const sha = sha256Hex(payload);
  if (sha !== header.payloadSha256) throw new Error(`${file}: checksum mismatch (payload sha256 ${sha}, header says ${header.payloadSha256})`);
  const datasets = new Map<LibraryDatasetName, Float32Array>();
  let off = 0;
  for (const [name, cols] of header.datasets) {
    const len = header.rows * cols;
    // Copy into an aligned buffer (the payload offset need not be a multiple of 4).
    const a = new Float32Array(len);
    new Uint8Array(a.buffer).set(payload.subarray(off, off + len * 4));
    datasets.set(name, a);
    off += len * 4;
  }
  return { header, datasets, bytes: buf.byteLength };
}
