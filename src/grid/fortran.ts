/**
 * Fortran "unformatted sequential" files: every record is `int32 nbytes | payload | int32 nbytes`
 * (little-endian here, as written by BC03's GALAXEV on x86). We trust the length markers and nothing
 * else: a record whose trailing marker does not repeat the leading one, or that runs past the end of
 * the file, is an error naming the record and its byte offset.
 */
import { DataFileError } from './errors.js';

export interface FortranRecord {
  /** 0-based record number. */
  index: number;
  /** Byte offset of the leading length marker. */
  offset: number;
  /** Payload (a view into the file buffer). */
  payload: DataView;
}

export function splitFortranRecords(bytes: Uint8Array, file: string): FortranRecord[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: FortranRecord[] = [];
  let off = 0;
  while (off < bytes.byteLength) {
    const where = `record ${out.length} (byte ${off})`;
    if (off + 4 > bytes.byteLength) {
      throw new DataFileError(file, where, `truncated: ${bytes.byteLength - off} trailing bytes, too few for a record length marker`);
    }
    const n = dv.getInt32(off, true);
    if (n < 0) throw new DataFileError(file, where, `negative record length ${n} (not a little-endian Fortran sequential file?)`);
    if (off + 8 + n > bytes.byteLength) {
      throw new DataFileError(file, where, `truncated: record claims ${n} bytes but only ${Math.max(0, bytes.byteLength - off - 8)} remain`);
    }
    const tail = dv.getInt32(off + 4 + n, true);
    if (tail !== n) throw new DataFileError(file, where, `leading length marker ${n} != trailing marker ${tail}`);
    out.push({ index: out.length, offset: off, payload: new DataView(bytes.buffer, bytes.byteOffset + off + 4, n) });
    off += 8 + n;
  }
  return out;
}

/** Reads `int32 n` followed by `float32[n]` at `pos` of a record payload; returns the values and the end position. */
export function readCountedFloat32(
  rec: FortranRecord,
  pos: number,
  file: string,
  what: string,
  expectCount?: number,
): { values: Float64Array; end: number } {
  const where = `record ${rec.index} (byte ${rec.offset})`;
  const p = rec.payload;
  if (pos + 4 > p.byteLength) throw new DataFileError(file, where, `${what}: record too short (${p.byteLength} bytes) for the count`);
  const n = p.getInt32(pos, true);
  if (n < 0 || (expectCount !== undefined && n !== expectCount)) {
    throw new DataFileError(file, where, `${what}: count ${n}${expectCount !== undefined ? `, expected ${expectCount}` : ''}`);
  }
  const end = pos + 4 + 4 * n;
  if (end > p.byteLength) throw new DataFileError(file, where, `${what}: ${n} float32 values need ${end} bytes, record has ${p.byteLength}`);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = p.getFloat32(pos + 4 + 4 * i, true);
  return { values, end };
}
