/**
 * safetensors (Hugging Face's tensor file format), read and written from memory: works in Node and
 * in the browser (no file I/O here).
 *
 * Layout (the HF spec, safetensors/src/tensor.rs):
 *   bytes 0..7   N, the header length, u64 little-endian
 *   N bytes      UTF-8 JSON object: { "<name>": { "dtype": "F32", "shape": [d0, d1, ...],
 *                "data_offsets": [begin, end] }, ..., "__metadata__": { "<key>": "<string>" } }
 *                (may be padded with trailing spaces; we pad so the data starts 8-byte aligned)
 *   rest         the byte buffer; offsets are relative to its start; data little-endian, row-major
 * Validation as the reference implementation: N <= 100 MB, a JSON object, known dtypes,
 * byte length = prod(shape) x dtype size, offsets in order covering the buffer exactly with no
 * holes or overlaps, names unique (JSON duplicates are rejected), metadata string -> string.
 */

export type SafetensorsDtype = 'BOOL' | 'U8' | 'I8' | 'U16' | 'I16' | 'F16' | 'BF16' | 'U32' | 'I32' | 'F32' | 'U64' | 'I64' | 'F64';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
};

/** The reference implementation's header size limit. */
export const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Raw little-endian bytes (a view into the parsed buffer). */
  bytes: Uint8Array;
}

export interface ParsedSafetensors {
  /** In file (data offset) order. */
  tensors: TensorEntry[];
  byName: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

/** Rejects duplicate keys in a JSON object text (JSON.parse silently keeps the last one). */
function checkDuplicateKeys(text: string, source: string): void {
  // Top-level keys only: scan with a depth counter, skipping strings.
  const seen = new Set<string>();
  let depth = 0;
  let i = 0;
  let expectKey = false;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) throw new SafetensorsError(source, `header: duplicate tensor name "${key}"`);
        seen.add(key);
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === '{' || c === '[') {
      depth++;
      if (depth === 1 && c === '{') expectKey = true;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
    i++;
  }
}

/** Parses a safetensors buffer (validated; tensors are views, nothing is copied). */
export function parseSafetensors(input: ArrayBuffer | Uint8Array, source = 'safetensors'): ParsedSafetensors {
  const buf = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (buf.byteLength < 8) throw new SafetensorsError(source, `file too small (${buf.byteLength} bytes; a safetensors file starts with an 8-byte header length)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  const n = hi * 4294967296 + lo;
  if (n > MAX_HEADER_BYTES) throw new SafetensorsError(source, `header length ${n} exceeds the limit of ${MAX_HEADER_BYTES} bytes (not a safetensors file?)`);
  if (8 + n > buf.byteLength) throw new SafetensorsError(source, `header length ${n} runs past the end of the file (${buf.byteLength} bytes; truncated?)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    throw new SafetensorsError(source, 'header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(source, `header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError(source, 'header must be a JSON object');
  checkDuplicateKeys(text, source);
  const data = buf.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const infos: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new SafetensorsError(source, '__metadata__ must be an object of strings');
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== 'string') throw new SafetensorsError(source, `__metadata__.${k} must be a string, got ${typeof s}`);
        metadata[k] = s;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new SafetensorsError(source, `${where}: must be an object {dtype, shape, data_offsets}`);
    const t = v as Record<string, unknown>;
    const extra = Object.keys(t).filter((k) => k !== 'dtype' && k !== 'shape' && k !== 'data_offsets');
    if (extra.length) throw new SafetensorsError(source, `${where}: unknown key(s) ${extra.join(', ')} (allowed: dtype, shape, data_offsets)`);
    if (!isDtype(t.dtype)) throw new SafetensorsError(source, `${where}: unknown dtype ${JSON.stringify(t.dtype)} (allowed: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw new SafetensorsError(source, `${where}: shape must be a list of non-negative integers, got ${JSON.stringify(t.shape)}`);
    }
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) || (off[0] as number) > (off[1] as number)) {
      throw new SafetensorsError(source, `${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(off)}`);
    }
    const shape = t.shape as number[];
    const [begin, end] = off as [number, number];
    const want = numel(shape) * DTYPE_BYTES[t.dtype];
    if (end - begin !== want) {
      throw new SafetensorsError(source, `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${t.dtype} [${shape.join(', ')}] needs ${want}`);
    }
    infos.push({ name, dtype: t.dtype, shape, begin, end });
  }
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const t of infos) {
    if (t.begin !== pos) {
      throw new SafetensorsError(
        source,
        t.begin < pos ? `tensor "${t.name}": data_offsets [${t.begin}, ${t.end}] overlap the previous tensor (ends at ${pos})` : `tensor "${t.name}": data_offsets start at ${t.begin}, leaving a hole after byte ${pos}`,
      );
    }
    pos = t.end;
  }
  if (pos !== data.byteLength) {
    throw new SafetensorsError(source, pos > data.byteLength ? `tensor data needs ${pos} bytes but the file has ${data.byteLength} after the header (truncated?)` : `${data.byteLength - pos} trailing bytes after the last tensor`);
  }
  const tensors: TensorEntry[] = infos.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, bytes: data.subarray(t.begin, t.end) }));
  return { tensors, byName: new Map(tensors.map((t) => [t.name, t])), metadata };
}

function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** A tensor's values as float64 (floats, integers and BOOL; 64-bit integers must be exact in a double). */
export function tensorToFloat64(t: TensorEntry, source = 'safetensors'): Float64Array {
  const n = numel(t.shape);
  const dv = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    switch (t.dtype) {
      case 'F64':
        out[i] = dv.getFloat64(8 * i, true);
        break;
      case 'F32':
        out[i] = dv.getFloat32(4 * i, true);
        break;
      case 'F16':
        out[i] = f16ToNumber(dv.getUint16(2 * i, true));
        break;
      case 'BF16': {
        const w = new DataView(new ArrayBuffer(4));
        w.setUint32(0, dv.getUint16(2 * i, true) << 16, true);
        out[i] = w.getFloat32(0, true);
        break;
      }
      case 'BOOL':
      case 'U8':
        out[i] = dv.getUint8(i);
        break;
      case 'I8':
        out[i] = dv.getInt8(i);
        break;
      case 'U16':
        out[i] = dv.getUint16(2 * i, true);
        break;
      case 'I16':
        out[i] = dv.getInt16(2 * i, true);
        break;
      case 'U32':
        out[i] = dv.getUint32(4 * i, true);
        break;
      case 'I32':
        out[i] = dv.getInt32(4 * i, true);
        break;
      case 'U64':
      case 'I64': {
        const b = t.dtype === 'U64' ? dv.getBigUint64(8 * i, true) : dv.getBigInt64(8 * i, true);
        const v = Number(b);
        if (!Number.isSafeInteger(v)) throw new SafetensorsError(source, `tensor "${t.name}": element ${i} (${b}) is not exactly representable as a double`);
        out[i] = v;
        break;
      }
    }
  }
  return out;
}

export interface TensorInput {
  dtype: 'F32' | 'F64' | 'I32' | 'U8';
  shape: number[];
  data: ArrayLike<number>;
}

/**
 * Serialises tensors (in the given order) plus string metadata to a safetensors buffer. The header
 * is padded with spaces so the data starts 8-byte aligned (as the reference writer does).
 */
export function serializeSafetensors(tensors: ReadonlyArray<readonly [string, TensorInput]>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let pos = 0;
  const seen = new Set<string>();
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new Error('safetensors: "__metadata__" is reserved, not a tensor name');
    if (seen.has(name)) throw new Error(`safetensors: duplicate tensor name "${name}"`);
    seen.add(name);
    const n = numel(t.shape);
    if (t.data.length !== n) throw new Error(`safetensors: tensor "${name}" has ${t.data.length} values, shape [${t.shape.join(', ')}] needs ${n}`);
    const bytes = n * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [pos, pos + bytes] };
    pos += bytes;
  }
  let json = JSON.stringify(header);
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  const pad = (8 - (hb.byteLength % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    hb = enc.encode(json);
  }
  const out = new Uint8Array(8 + hb.byteLength + pos);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, hb.byteLength % 4294967296, true);
  dv.setUint32(4, Math.floor(hb.byteLength / 4294967296), true);
  out.set(hb, 8);
  let o = 8 + hb.byteLength;
  for (const [, t] of tensors) {
    const n = t.data.length;
    for (let i = 0; i < n; i++) {
      const v = t.data[i];
      switch (t.dtype) {
        case 'F64':
          dv.setFloat64(o, v, true);
          o += 8;
          break;
        case 'F32':
          dv.setFloat32(o, v, true);
          o += 4;
          break;
        case 'I32':
          dv.setInt32(o, v, true);
          o += 4;
          break;
        case 'U8':
          dv.setUint8(o, v);
          o += 1;
          break;
      }
    }
  }
  return out;
}
