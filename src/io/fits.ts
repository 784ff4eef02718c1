/**
 * FITS binary tables (FITS Standard 4.0, sections 3, 4 and 7.3): a reader that streams rows of one
 * BINTABLE extension from disk (bounded memory), and a streaming writer. Node only (node:fs).
 *
 * File layout: a sequence of HDUs, each a header (80-character ASCII cards, 36 per 2880-byte block,
 * ending with END, padded with spaces) followed by its data (padded to a multiple of 2880 bytes).
 * The primary HDU comes first (SIMPLE = T); a binary table is an extension with
 *   XTENSION = 'BINTABLE', BITPIX = 8, NAXIS = 2, NAXIS1 = bytes per row, NAXIS2 = rows,
 *   PCOUNT = heap bytes, GCOUNT = 1, TFIELDS = columns, and per column n: TTYPEn (name), TFORMn
 *   (rT: repeat count r, type T), optional TUNITn, TNULLn, TSCALn, TZEROn.
 * Rows are stored one after the other, fields in column order, big-endian, no alignment.
 *
 * Types (TFORM code: bytes per element): L logical (1), X bit (r bits), B uint8 (1), I int16 (2),
 * J int32 (4), K int64 (8), A character (1), E float32 (4), D float64 (8), C complex64 (8),
 * M complex128 (16), P / Q array descriptors (8 / 16, the data in the heap). The reader decodes
 * L, B, I, J, K, A, E, D (scalars and fixed-length vectors, `NAME[i]` picks element i, 0-based);
 * columns of the other types are skipped over and refused only when asked for.
 *
 * Values: physical = TZERO + TSCAL * stored for B, I, J, K, E, D (defaults 0 and 1; TZERO = 32768 on
 * I is the unsigned 16-bit convention, and so on). Nulls read as NaN: an integer equal to TNULLn
 * (compared before scaling), an IEEE NaN, a logical 0 byte. Strings: up to the first NUL, trailing
 * blanks removed. Integer ids (K) can be read exactly as decimal text (`text`).
 *
 * Errors (`FitsError`) name the file, the HDU (0 = primary) and the column where one is involved:
 * no END card, a card that is not ASCII, a missing or bad mandatory keyword, TFORMs whose widths do
 * not add up to NAXIS1, data shorter than NAXIS1 x NAXIS2 (+ PCOUNT), an unknown HDU name.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';

export const FITS_BLOCK = 2880;
const CARD = 80;

export class FitsError extends Error {
  constructor(
    readonly file: string,
    readonly hdu: number | undefined,
    readonly column: string | undefined,
    message: string,
  ) {
    super(`${file}${hdu !== undefined ? `: HDU ${hdu}` : ''}${column !== undefined ? `, column "${column}"` : ''}: ${message}`);
    this.name = 'FitsError';
  }
}

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

export type FitsValue = string | number | boolean | bigint | null;

export interface FitsCard {
  key: string;
  value: FitsValue | undefined;
  comment?: string;
}

export class FitsHeader {
  readonly cards: FitsCard[];
  private readonly map = new Map<string, FitsValue | undefined>();
  constructor(cards: FitsCard[]) {
    this.cards = cards;
    for (const c of cards) if (c.key && !this.map.has(c.key)) this.map.set(c.key, c.value);
  }
  has(key: string): boolean {
    return this.map.has(key.toUpperCase());
  }
  get(key: string): FitsValue | undefined {
    return this.map.get(key.toUpperCase());
  }
}

/** Parses the value field of a card (after "= "); returns the value and the comment. */
function parseValue(field: string): { value: FitsValue; comment?: string } {
  const s = field;
  let i = 0;
  while (i < s.length && s[i] === ' ') i++;
  if (i === s.length) return { value: null };
  if (s[i] === "'") {
    let out = '';
    let j = i + 1;
    for (;;) {
      if (j >= s.length) throw new Error('unterminated string value');
      if (s[j] === "'") {
        if (s[j + 1] === "'") {
          out += "'";
          j += 2;
          continue;
        }
        j++;
        break;
      }
      out += s[j++];
    }
    const rest = s.slice(j);
    const slash = rest.indexOf('/');
    return { value: out.replace(/ +$/, ''), comment: slash >= 0 ? rest.slice(slash + 1).trim() : undefined };
  }
  const slash = s.indexOf('/', i);
  const raw = (slash >= 0 ? s.slice(i, slash) : s.slice(i)).trim();
  const comment = slash >= 0 ? s.slice(slash + 1).trim() : undefined;
  if (raw === '') return { value: null, comment };
  if (raw === 'T') return { value: true, comment };
  if (raw === 'F') return { value: false, comment };
  if (/^[+-]?\d+$/.test(raw)) {
    const b = BigInt(raw);
    return { value: b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b, comment };
  }
  const num = Number(raw.replace(/[dD]/, 'E'));
  if (Number.isFinite(num) && /^[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$/.test(raw)) return { value: num, comment };
  // Complex values "(re, im)" and anything else: kept as text.
  return { value: raw, comment };
}

/** Parses one 80-character card. */
function parseCard(card: string): FitsCard {
  const key = card.slice(0, 8).trimEnd();
  if (card.slice(8, 10) === '= ' && key !== 'COMMENT' && key !== 'HISTORY' && key !== '') {
    const { value, comment } = parseValue(card.slice(10));
    return { key, value, comment };
  }
  return { key, value: undefined, comment: card.slice(8).trimEnd() };
}

// ---------------------------------------------------------------------------------------------
// Column formats
// ---------------------------------------------------------------------------------------------

export type FitsTypeCode = 'L' | 'X' | 'B' | 'I' | 'J' | 'K' | 'A' | 'E' | 'D' | 'C' | 'M' | 'P' | 'Q';
const TYPE_BYTES: Record<FitsTypeCode, number> = { L: 1, X: 0, B: 1, I: 2, J: 4, K: 8, A: 1, E: 4, D: 8, C: 8, M: 16, P: 8, Q: 16 };
const READABLE = new Set<FitsTypeCode>(['L', 'B', 'I', 'J', 'K', 'A', 'E', 'D']);

export interface FitsColumn {
  /** 1-based column number (n of TTYPEn). */
  index: number;
  name: string;
  format: string;
  type: FitsTypeCode;
  repeat: number;
  /** Bytes of the field in a row. */
  width: number;
  /** Byte offset of the field in a row. */
  offset: number;
  unit?: string;
  scale: number;
  zero: number;
  /** TNULLn (integer columns). */
  nullValue?: bigint;
}

/** Parses a TFORM value: repeat, type and the field's width in bytes. */
export function parseTform(tform: string): { repeat: number; type: FitsTypeCode; width: number } {
  const m = /^\s*(\d*)([LXBIJKAEDCMPQ])(.*)$/.exec(tform);
  if (!m) throw new Error(`bad TFORM "${tform}" (expected rT with T one of L X B I J K A E D C M P Q)`);
  const repeat = m[1] === '' ? 1 : Number(m[1]);
  const type = m[2] as FitsTypeCode;
  if (!Number.isSafeInteger(repeat)) throw new Error(`bad repeat count in TFORM "${tform}"`);
  const width = type === 'X' ? Math.ceil(repeat / 8) : repeat * TYPE_BYTES[type];
  return { repeat, type, width };
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

export interface FitsHdu {
  /** 0 = primary. */
  index: number;
  /** 'PRIMARY', or the XTENSION value ('BINTABLE', 'TABLE', 'IMAGE', ...). */
  kind: string;
  extname?: string;
  header: FitsHeader;
  headerOffset: number;
  dataOffset: number;
  /** Data bytes without the padding. */
  dataBytes: number;
}

function readExact(fd: number, buf: Buffer, pos: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function int(h: FitsHeader, key: string, file: string, hdu: number, opts: { min?: number; required?: boolean } = {}): number | undefined {
  const v = h.get(key);
  if (v === undefined || v === null) {
    if (opts.required === false) return undefined;
    throw new FitsError(file, hdu, undefined, `missing mandatory keyword ${key}`);
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new FitsError(file, hdu, undefined, `${key} must be an integer, got ${String(v)}`);
  if (opts.min !== undefined && v < opts.min) throw new FitsError(file, hdu, undefined, `${key} must be >= ${opts.min}, got ${v}`);
  return v;
}

/** Reads the header at `offset` (block by block until END). */
function readHeader(fd: number, file: string, hdu: number, offset: number, fileSize: number): { header: FitsHeader; bytes: number } | null {
  const cards: FitsCard[] = [];
  const block = Buffer.alloc(FITS_BLOCK);
  let pos = offset;
  for (;;) {
    if (pos >= fileSize) throw new FitsError(file, hdu, undefined, `truncated header: the file ends at byte ${fileSize} before the END card`);
    const got = readExact(fd, block, pos);
    if (got < FITS_BLOCK) {
      // A header must come in whole blocks; look for END in what there is to say which problem it is.
      const text = block.toString('latin1', 0, got);
      const hasEnd = Array.from({ length: Math.floor(got / CARD) }, (_, k) => text.slice(k * CARD, k * CARD + 8)).includes('END     ');
      throw new FitsError(file, hdu, undefined, hasEnd ? `truncated header block (${got} of ${FITS_BLOCK} bytes)` : `truncated header: the file ends at byte ${fileSize} before the END card`);
    }
    for (let k = 0; k < FITS_BLOCK / CARD; k++) {
      const raw = block.subarray(k * CARD, (k + 1) * CARD);
      if (hdu > 0 && k === 0 && pos === offset && raw.toString('latin1', 0, 8) !== 'XTENSION') return null;
      for (let b = 0; b < CARD; b++) {
        const c = raw[b];
        if (c < 0x20 || c > 0x7e) {
          throw new FitsError(file, hdu, undefined, `byte ${pos + k * CARD + b} (card ${cards.length + 1}) is not printable ASCII (0x${c.toString(16).padStart(2, '0')}): not a FITS header${hdu === 0 ? ' (not a FITS file?)' : ''}`);
        }
      }
      const text = raw.toString('latin1');
      if (cards.length === 0 && k === 0 && pos === offset) {
        if (hdu === 0 && !text.startsWith('SIMPLE  ')) throw new FitsError(file, 0, undefined, 'not a FITS file (the first card is not SIMPLE)');
      }
      if (text.startsWith('END     ') || text.trimEnd() === 'END') {
        return { header: new FitsHeader(cards), bytes: pos + FITS_BLOCK - offset };
      }
      try {
        cards.push(parseCard(text));
      } catch (e) {
        throw new FitsError(file, hdu, undefined, `card ${cards.length + 1} "${text.trimEnd()}": ${(e as Error).message}`);
      }
    }
    pos += FITS_BLOCK;
  }
}

function dataSize(h: FitsHeader, file: string, hdu: number): number {
  const bitpix = int(h, 'BITPIX', file, hdu)!;
  if (![8, 16, 32, 64, -32, -64].includes(bitpix)) throw new FitsError(file, hdu, undefined, `BITPIX must be one of 8, 16, 32, 64, -32, -64, got ${bitpix}`);
  const naxis = int(h, 'NAXIS', file, hdu, { min: 0 })!;
  if (naxis > 999) throw new FitsError(file, hdu, undefined, `NAXIS must be <= 999, got ${naxis}`);
  if (naxis === 0) return 0;
  let n = 1;
  for (let i = 1; i <= naxis; i++) n *= int(h, `NAXIS${i}`, file, hdu, { min: 0 })!;
  const pcount = hdu === 0 ? 0 : (int(h, 'PCOUNT', file, hdu, { min: 0, required: false }) ?? 0);
  const gcount = hdu === 0 ? 1 : (int(h, 'GCOUNT', file, hdu, { min: 0, required: false }) ?? 1);
  return (Math.abs(bitpix) / 8) * gcount * (pcount + n);
}

/** Lists the HDUs of a FITS file (headers only; data are skipped). */
export function listHdus(file: string): FitsHdu[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new FitsError(file, undefined, undefined, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return scanHdus(fd, file);
  } finally {
    closeSync(fd);
  }
}

function scanHdus(fd: number, file: string): FitsHdu[] {
  const size = fstatSync(fd).size;
  if (size === 0) throw new FitsError(file, undefined, undefined, 'empty file, not FITS');
  const hdus: FitsHdu[] = [];
  let pos = 0;
  while (pos < size) {
    const index = hdus.length;
    const h = readHeader(fd, file, index, pos, size);
    if (!h) break; // bytes after the last HDU that are not an extension: ignored
    const { header, bytes } = h;
    const first = header.cards[0];
    let kind: string;
    if (index === 0) {
      if (!first || first.key !== 'SIMPLE') throw new FitsError(file, 0, undefined, 'not a FITS file (the first card is not SIMPLE)');
      if (first.value !== true) throw new FitsError(file, 0, undefined, 'SIMPLE is not T (not a standard FITS file)');
      kind = 'PRIMARY';
    } else {
      if (!first || first.key !== 'XTENSION' || typeof first.value !== 'string') throw new FitsError(file, index, undefined, 'extension header does not start with XTENSION');
      kind = first.value.trim();
    }
    const dataBytes = dataSize(header, file, index);
    const extname = header.get('EXTNAME');
    hdus.push({ index, kind, extname: typeof extname === 'string' ? extname.trim() : undefined, header, headerOffset: pos, dataOffset: pos + bytes, dataBytes });
    const padded = Math.ceil(dataBytes / FITS_BLOCK) * FITS_BLOCK;
    pos += bytes + padded;
    // Bytes after the last HDU that do not start an extension (missing final padding, trailing
    // junk) end the file; a cut-off extension header is reported by readHeader.
    if (pos < size && pos + FITS_BLOCK > size) {
      const b = Buffer.alloc(Math.min(8, size - pos));
      readExact(fd, b, pos);
      if (b.toString('latin1') !== 'XTENSION'.slice(0, b.length) || b.length < 8) break;
    }
  }
  return hdus;
}

/** A block of rows read from a table: decode columns from it. */
export interface FitsRowBlock {
  start: number;
  rows: number;
  /** Numeric values (NaN = null); `element` picks one element of a vector column (default 0, which must be the only one). */
  numeric(column: string | FitsColumn, element?: number): Float64Array;
  /** Text of each row: strings as stored (trimmed), integers exactly (int64 included), floats as JS numbers print; null = ''. */
  text(column: string | FitsColumn, element?: number): string[];
}

export interface OpenFitsTableOptions {
  /** HDU number (1 = first extension) or EXTNAME (case-insensitive); default: the first BINTABLE. */
  hdu?: number | string;
}

/**
 * A binary table opened for streaming row reads. `readRows(start, count)` reads whole rows
 * (count x NAXIS1 bytes) and decodes columns on demand. close() when done.
 */
export class FitsTable {
  readonly file: string;
  readonly hdu: number;
  readonly extname?: string;
  readonly nRows: number;
  readonly rowBytes: number;
  readonly columns: readonly FitsColumn[];
  readonly header: FitsHeader;
  private readonly fd: number;
  private readonly dataOffset: number;
  private closed = false;

  private constructor(file: string, fd: number, hdu: FitsHdu, columns: FitsColumn[], nRows: number, rowBytes: number) {
    this.file = file;
    this.fd = fd;
    this.hdu = hdu.index;
    this.extname = hdu.extname;
    this.header = hdu.header;
    this.dataOffset = hdu.dataOffset;
    this.columns = columns;
    this.nRows = nRows;
    this.rowBytes = rowBytes;
  }

  static open(file: string, opts: OpenFitsTableOptions = {}): FitsTable {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (e) {
      throw new FitsError(file, undefined, undefined, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      const size = fstatSync(fd).size;
      const hdus = scanHdus(fd, file);
      const describe = () => hdus.map((h) => `${h.index}: ${h.kind}${h.extname ? ` "${h.extname}"` : ''}`).join(', ');
      let hdu: FitsHdu | undefined;
      if (opts.hdu === undefined) {
        hdu = hdus.find((h) => h.kind === 'BINTABLE');
        if (!hdu) throw new FitsError(file, undefined, undefined, `no BINTABLE extension (HDUs: ${describe()})`);
      } else if (typeof opts.hdu === 'number') {
        hdu = hdus[opts.hdu];
        if (!hdu) throw new FitsError(file, undefined, undefined, `no HDU ${opts.hdu} (the file has ${hdus.length}: ${describe()})`);
        if (hdu.kind !== 'BINTABLE') throw new FitsError(file, opts.hdu, undefined, `is a ${hdu.kind}, not a BINTABLE (HDUs: ${describe()})`);
      } else {
        const want = opts.hdu.trim().toUpperCase();
        hdu = hdus.find((h) => h.extname?.toUpperCase() === want);
        if (!hdu) throw new FitsError(file, undefined, undefined, `no HDU named "${opts.hdu}" (HDUs: ${describe()})`);
        if (hdu.kind !== 'BINTABLE') throw new FitsError(file, hdu.index, undefined, `"${opts.hdu}" is a ${hdu.kind}, not a BINTABLE`);
      }
      const { columns, nRows, rowBytes, heap } = parseTableHeader(file, hdu);
      const need = rowBytes * nRows + heap;
      if (hdu.dataOffset + need > size) {
        throw new FitsError(file, hdu.index, undefined, `truncated data: ${nRows} rows x ${rowBytes} bytes${heap ? ` + ${heap} heap bytes` : ''} need ${need} bytes from byte ${hdu.dataOffset}, the file has ${Math.max(0, size - hdu.dataOffset)}`);
      }
      return new FitsTable(file, fd, hdu, columns, nRows, rowBytes);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** The column named `name` (exact, else the unique case-insensitive match), or undefined. */
  findColumn(name: string): FitsColumn | undefined {
    const exact = this.columns.find((c) => c.name === name);
    if (exact) return exact;
    const ci = this.columns.filter((c) => c.name.toUpperCase() === name.toUpperCase());
    return ci.length === 1 ? ci[0] : undefined;
  }

  column(name: string): FitsColumn {
    const c = this.findColumn(name);
    if (!c) throw new FitsError(this.file, this.hdu, name, `no such column (columns: ${this.columns.map((k) => k.name).join(', ')})`);
    return c;
  }

  /** Reads rows [start, start + count). */
  readRows(start: number, count: number): FitsRowBlock {
    if (this.closed) throw new FitsError(this.file, this.hdu, undefined, 'table is closed');
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > this.nRows) {
      throw new RangeError(`${this.file}: HDU ${this.hdu}: rows [${start}, ${start + count}) outside [0, ${this.nRows})`);
    }
    const buf = Buffer.alloc(count * this.rowBytes);
    const got = readExact(this.fd, buf, this.dataOffset + start * this.rowBytes);
    if (got < buf.length) throw new FitsError(this.file, this.hdu, undefined, `truncated data: rows ${start}..${start + count} end beyond the end of the file`);
    return new RowBlock(this, buf, start, count);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

function parseTableHeader(file: string, hdu: FitsHdu): { columns: FitsColumn[]; nRows: number; rowBytes: number; heap: number } {
  const h = hdu.header;
  const i = hdu.index;
  if (int(h, 'BITPIX', file, i) !== 8) throw new FitsError(file, i, undefined, `BINTABLE needs BITPIX = 8, got ${String(h.get('BITPIX'))}`);
  if (int(h, 'NAXIS', file, i) !== 2) throw new FitsError(file, i, undefined, `BINTABLE needs NAXIS = 2, got ${String(h.get('NAXIS'))}`);
  const rowBytes = int(h, 'NAXIS1', file, i, { min: 0 })!;
  const nRows = int(h, 'NAXIS2', file, i, { min: 0 })!;
  const heap = int(h, 'PCOUNT', file, i, { min: 0 })!;
  const gcount = int(h, 'GCOUNT', file, i, { min: 1 })!;
  if (gcount !== 1) throw new FitsError(file, i, undefined, `BINTABLE needs GCOUNT = 1, got ${gcount}`);
  const tfields = int(h, 'TFIELDS', file, i, { min: 0 })!;
  if (tfields > 999) throw new FitsError(file, i, undefined, `TFIELDS must be <= 999, got ${tfields}`);
  const columns: FitsColumn[] = [];
  let offset = 0;
  for (let n = 1; n <= tfields; n++) {
    const tf = h.get(`TFORM${n}`);
    const ttype = h.get(`TTYPE${n}`);
    const name = typeof ttype === 'string' && ttype.trim() ? ttype.trim() : `col${n}`;
    if (typeof tf !== 'string') throw new FitsError(file, i, name, `missing or non-string TFORM${n}`);
    let f;
    try {
      f = parseTform(tf);
    } catch (e) {
      throw new FitsError(file, i, name, (e as Error).message);
    }
    const num = (key: string, def: number) => {
      const v = h.get(`${key}${n}`);
      if (v === undefined || v === null) return def;
      if (typeof v === 'bigint') return Number(v);
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new FitsError(file, i, name, `${key}${n} must be a number, got ${String(v)}`);
      return v;
    };
    const scale = num('TSCAL', 1);
    const zero = num('TZERO', 0);
    const tnull = h.get(`TNULL${n}`);
    let nullValue: bigint | undefined;
    if (tnull !== undefined && tnull !== null) {
      if (typeof tnull !== 'number' && typeof tnull !== 'bigint') throw new FitsError(file, i, name, `TNULL${n} must be an integer, got ${String(tnull)}`);
      if (typeof tnull === 'number' && !Number.isInteger(tnull)) throw new FitsError(file, i, name, `TNULL${n} must be an integer, got ${tnull}`);
      nullValue = BigInt(tnull);
    }
    const unit = h.get(`TUNIT${n}`);
    columns.push({
      index: n,
      name,
      format: tf.trim(),
      type: f.type,
      repeat: f.repeat,
      width: f.width,
      offset,
      unit: typeof unit === 'string' && unit.trim() ? unit.trim() : undefined,
      scale,
      zero,
      nullValue,
    });
    offset += f.width;
  }
  if (offset !== rowBytes) {
    throw new FitsError(file, i, undefined, `the TFORMs add up to ${offset} bytes per row, but NAXIS1 = ${rowBytes} (${columns.map((c) => `${c.name}:${c.format}`).join(', ')})`);
  }
  return { columns, nRows, rowBytes, heap };
}

class RowBlock implements FitsRowBlock {
  constructor(
    private readonly t: FitsTable,
    private readonly buf: Buffer,
    readonly start: number,
    readonly rows: number,
  ) {}

  private col(c: string | FitsColumn, element: number | undefined, purpose: 'numeric' | 'text'): { c: FitsColumn; e: number } {
    const col = typeof c === 'string' ? this.t.column(c) : c;
    if (!READABLE.has(col.type)) throw new FitsError(this.t.file, this.t.hdu, col.name, `TFORM ${col.format}: type ${col.type} is not supported (readable: L B I J K A E D)`);
    const e = element ?? 0;
    if (col.type === 'A') {
      if (purpose === 'numeric') throw new FitsError(this.t.file, this.t.hdu, col.name, `is a character column (TFORM ${col.format}), not numeric`);
      if (element !== undefined && element !== 0) throw new FitsError(this.t.file, this.t.hdu, col.name, 'a character column has no elements to pick');
      return { c: col, e: 0 };
    }
    if (element === undefined && col.repeat !== 1) {
      throw new FitsError(this.t.file, this.t.hdu, col.name, `is a vector column (TFORM ${col.format}, ${col.repeat} elements): pick one as "${col.name}[i]", i = 0..${col.repeat - 1}`);
    }
    if (!Number.isInteger(e) || e < 0 || e >= col.repeat) throw new FitsError(this.t.file, this.t.hdu, col.name, `element ${e} outside 0..${col.repeat - 1} (TFORM ${col.format})`);
    return { c: col, e };
  }

  numeric(column: string | FitsColumn, element?: number): Float64Array {
    const { c, e } = this.col(column, element, 'numeric');
    const out = new Float64Array(this.rows);
    const size = TYPE_BYTES[c.type];
    const rb = this.t.rowBytes;
    const b = this.buf;
    const scaled = c.scale !== 1 || c.zero !== 0;
    // TNULL of a B/I/J column as a number (exact: at most 32 bits), compared without BigInt per row.
    const nullSmall = c.nullValue !== undefined ? Number(c.nullValue) : undefined;
    for (let r = 0; r < this.rows; r++) {
      const o = r * rb + c.offset + e * size;
      let v: number;
      switch (c.type) {
        case 'L': {
          const ch = b[o];
          out[r] = ch === 0x54 ? 1 : ch === 0x46 ? 0 : NaN;
          continue;
        }
        case 'B':
        case 'I':
        case 'J':
          v = c.type === 'B' ? b[o] : c.type === 'I' ? b.readInt16BE(o) : b.readInt32BE(o);
          if (v === nullSmall) {
            out[r] = NaN;
            continue;
          }
          break;
        case 'K': {
          const k = b.readBigInt64BE(o);
          if (c.nullValue !== undefined && k === c.nullValue) {
            out[r] = NaN;
            continue;
          }
          v = Number(k);
          break;
        }
        case 'E':
          v = b.readFloatBE(o);
          break;
        case 'D':
          v = b.readDoubleBE(o);
          break;
        default:
          throw new FitsError(this.t.file, this.t.hdu, c.name, `type ${c.type} not readable`);
      }
      out[r] = scaled ? c.zero + c.scale * v : v;
    }
    return out;
  }

  text(column: string | FitsColumn, element?: number): string[] {
    const { c, e } = this.col(column, element, 'text');
    const out: string[] = new Array(this.rows);
    const rb = this.t.rowBytes;
    if (c.type === 'A') {
      for (let r = 0; r < this.rows; r++) {
        const o = r * rb + c.offset;
        let end = o + c.width;
        const nul = this.buf.indexOf(0, o);
        if (nul >= 0 && nul < end) end = nul;
        out[r] = this.buf.toString('latin1', o, end).replace(/ +$/, '').replace(/^ +/, '');
      }
      return out;
    }
    const exactInt = (c.type === 'K' || c.type === 'J' || c.type === 'I' || c.type === 'B') && Number.isInteger(c.scale) && Number.isInteger(c.zero) && Math.abs(c.zero) <= 2 ** 63;
    if (exactInt) {
      const size = TYPE_BYTES[c.type];
      const zero = BigInt(c.zero);
      const scale = BigInt(c.scale);
      for (let r = 0; r < this.rows; r++) {
        const o = r * rb + c.offset + e * size;
        const raw = c.type === 'K' ? this.buf.readBigInt64BE(o) : BigInt(c.type === 'J' ? this.buf.readInt32BE(o) : c.type === 'I' ? this.buf.readInt16BE(o) : this.buf[o]);
        out[r] = c.nullValue !== undefined && raw === c.nullValue ? '' : String(zero + scale * raw);
      }
      return out;
    }
    const v = this.numeric(c, c.repeat === 1 ? undefined : e);
    for (let r = 0; r < this.rows; r++) out[r] = Number.isNaN(v[r]) ? '' : String(v[r]);
    return out;
  }
}

/** Opens the table of a FITS file (see FitsTable). */
export function openFitsTable(file: string, opts: OpenFitsTableOptions = {}): FitsTable {
  return FitsTable.open(file, opts);
}

/** Reads whole columns of a table into memory (small tables, tests). */
export function readFitsTable(file: string, opts: OpenFitsTableOptions = {}): { table: FitsTable; data: Record<string, Float64Array | string[]> } {
  const t = FitsTable.open(file, opts);
  try {
    const block = t.readRows(0, t.nRows);
    const data: Record<string, Float64Array | string[]> = {};
    for (const c of t.columns) {
      if (!READABLE.has(c.type)) continue;
      if (c.type === 'A') data[c.name] = block.text(c);
      else if (c.repeat === 1) data[c.name] = block.numeric(c);
      else for (let e = 0; e < c.repeat; e++) data[`${c.name}[${e}]`] = block.numeric(c, e);
    }
    return { table: t, data };
  } finally {
    t.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

export type FitsWritableType = 'L' | 'B' | 'I' | 'J' | 'K' | 'A' | 'E' | 'D';

export interface FitsColumnSpec {
  name: string;
  type: FitsWritableType;
  /** Elements per row (default 1); for 'A' the string width in bytes (at least 1). */
  repeat?: number;
  unit?: string;
  /** TNULLn of an integer column: NaN is written as this value (without one, NaN in an integer column is an error). */
  nullValue?: number;
  /** TSCALn / TZEROn: stored = (physical - zero) / scale (rounded for integers). */
  scale?: number;
  zero?: number;
}

/** Column values for writeRows: numbers (flat rows x repeat for vectors) or strings. */
export type FitsColumnData = ArrayLike<number> | ArrayLike<bigint> | readonly string[];

function fmtCard(key: string, value: FitsValue, comment?: string): string {
  let v: string;
  if (typeof value === 'string') {
    const s = `'${value.replace(/'/g, "''").padEnd(8)}'`;
    v = s.padEnd(20);
  } else if (typeof value === 'boolean') v = (value ? 'T' : 'F').padStart(20);
  else if (typeof value === 'bigint') v = value.toString().padStart(20);
  else if (value === null) v = ''.padStart(20);
  else if (Number.isInteger(value) && Math.abs(value) < 1e15) v = String(value).padStart(20);
  else {
    let s = String(value);
    if (!/[.eE]/.test(s)) s += '.0';
    v = s.toUpperCase().padStart(20);
  }
  let card = `${key.padEnd(8)}= ${v}`;
  if (comment) card += ` / ${comment}`;
  if (card.length > CARD) {
    if (typeof value === 'string' && `${key.padEnd(8)}= ${v}`.length > CARD) throw new Error(`FITS card ${key}: value too long (${value.length} characters; at most 68)`);
    card = card.slice(0, CARD);
  }
  for (let i = 0; i < card.length; i++) {
    const c = card.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new Error(`FITS card ${key}: only printable ASCII is allowed (got "${card[i]}")`);
  }
  return card.padEnd(CARD);
}

function headerBytes(cards: string[]): Buffer {
  const all = [...cards, 'END'.padEnd(CARD)];
  const text = all.join('');
  const padded = Math.ceil(text.length / FITS_BLOCK) * FITS_BLOCK;
  return Buffer.from(text.padEnd(padded, ' '), 'latin1');
}

export interface FitsWriterOptions {
  /** EXTNAME of the table. */
  extname?: string;
  /** Extra header cards of the table (keyword -> value). */
  keywords?: Record<string, FitsValue>;
  /** Write to `file + '.tmp'` and rename on close (default true). */
  atomic?: boolean;
}

interface WriterColumn extends FitsColumnSpec {
  repeat: number;
  width: number;
  offset: number;
}

/**
 * Streaming binary-table writer: a minimal primary HDU, then one BINTABLE. Rows are appended with
 * writeRows; close() patches NAXIS2, pads the data to a whole block and renames the file into place.
 */
export class FitsTableWriter {
  readonly file: string;
  private readonly tmp: string;
  private readonly fd: number;
  private readonly cols: WriterColumn[];
  private readonly rowBytes: number;
  private readonly naxis2Pos: number;
  private pos: number;
  private rows = 0;
  private closed = false;

  constructor(file: string, columns: readonly FitsColumnSpec[], opts: FitsWriterOptions = {}) {
    this.file = file;
    const atomic = opts.atomic ?? true;
    this.tmp = atomic ? `${file}.tmp` : file;
    let off = 0;
    const seen = new Set<string>();
    this.cols = columns.map((c) => {
      if (seen.has(c.name)) throw new Error(`FITS writer: duplicate column name "${c.name}"`);
      seen.add(c.name);
      const repeat = c.repeat ?? 1;
      if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`FITS writer: column "${c.name}": repeat must be a positive integer, got ${repeat}`);
      if (c.nullValue !== undefined && !['B', 'I', 'J', 'K'].includes(c.type)) throw new Error(`FITS writer: column "${c.name}": TNULL only applies to integer columns (B I J K)`);
      const width = repeat * TYPE_BYTES[c.type];
      const col = { ...c, repeat, width, offset: off };
      off += width;
      return col;
    });
    this.rowBytes = off;
    const primary = headerBytes([fmtCard('SIMPLE', true, 'conforms to FITS standard'), fmtCard('BITPIX', 8), fmtCard('NAXIS', 0), fmtCard('EXTEND', true)]);
    const cards = [
      fmtCard('XTENSION', 'BINTABLE', 'binary table extension'),
      fmtCard('BITPIX', 8, 'array data type'),
      fmtCard('NAXIS', 2, 'number of array dimensions'),
      fmtCard('NAXIS1', this.rowBytes, 'bytes per row'),
      fmtCard('NAXIS2', 0, 'number of rows'),
      fmtCard('PCOUNT', 0, 'heap size'),
      fmtCard('GCOUNT', 1),
      fmtCard('TFIELDS', this.cols.length, 'number of columns'),
    ];
    this.cols.forEach((c, k) => {
      const n = k + 1;
      cards.push(fmtCard(`TTYPE${n}`, c.name));
      cards.push(fmtCard(`TFORM${n}`, `${c.repeat}${c.type}`));
      if (c.unit) cards.push(fmtCard(`TUNIT${n}`, c.unit));
      if (c.nullValue !== undefined) cards.push(fmtCard(`TNULL${n}`, c.nullValue));
      if (c.scale !== undefined && c.scale !== 1) cards.push(fmtCard(`TSCAL${n}`, c.scale));
      if (c.zero !== undefined && c.zero !== 0) cards.push(fmtCard(`TZERO${n}`, c.zero));
    });
    if (opts.extname) cards.push(fmtCard('EXTNAME', opts.extname, 'name of this HDU'));
    for (const [k, v] of Object.entries(opts.keywords ?? {})) cards.push(fmtCard(k.toUpperCase(), v));
    const ext = headerBytes(cards);
    this.naxis2Pos = primary.length + 4 * CARD;
    rmSync(this.tmp, { force: true });
    this.fd = openSync(this.tmp, 'w');
    this.pos = 0;
    this.put(primary);
    this.put(ext);
  }

  private put(b: Uint8Array): void {
    let off = 0;
    while (off < b.byteLength) off += writeSync(this.fd, b, off, b.byteLength - off, this.pos + off);
    this.pos += b.byteLength;
  }

  get rowCount(): number {
    return this.rows;
  }

  /** Appends n rows; `data` has a value array for every column (rows x repeat values, or n strings). */
  writeRows(data: Record<string, FitsColumnData>, n: number): void {
    if (this.closed) throw new Error(`${this.file}: FITS writer is closed`);
    const buf = Buffer.alloc(n * this.rowBytes);
    for (const c of this.cols) {
      const v = data[c.name];
      if (!v) throw new Error(`${this.file}: writeRows: no values for column "${c.name}"`);
      const want = c.type === 'A' ? n : n * c.repeat;
      if (v.length !== want) throw new Error(`${this.file}: writeRows: column "${c.name}" has ${v.length} values, expected ${want}`);
      const scale = c.scale ?? 1;
      const zero = c.zero ?? 0;
      for (let r = 0; r < n; r++) {
        const base = r * this.rowBytes + c.offset;
        if (c.type === 'A') {
          const s = (v as readonly string[])[r];
          if (typeof s !== 'string') throw new Error(`${this.file}: column "${c.name}", row ${this.rows + r}: not a string`);
          const bytes = Buffer.from(s, 'latin1');
          if (bytes.length > c.repeat) throw new Error(`${this.file}: column "${c.name}", row ${this.rows + r}: "${s}" is longer than the column width ${c.repeat}`);
          bytes.copy(buf, base);
          buf.fill(0x20, base + bytes.length, base + c.repeat);
          continue;
        }
        for (let e = 0; e < c.repeat; e++) {
          const raw = v[r * c.repeat + e];
          const o = base + e * TYPE_BYTES[c.type];
          if (c.type === 'K' && typeof raw === 'bigint') {
            buf.writeBigInt64BE(raw, o);
            continue;
          }
          const x = Number(raw);
          if (c.type === 'E') buf.writeFloatBE((x - zero) / scale, o);
          else if (c.type === 'D') buf.writeDoubleBE((x - zero) / scale, o);
          else if (c.type === 'L') buf[o] = Number.isNaN(x) ? 0 : x ? 0x54 : 0x46;
          else {
            let s: number;
            if (Number.isNaN(x)) {
              if (c.nullValue === undefined) throw new Error(`${this.file}: column "${c.name}", row ${this.rows + r}: NaN in an integer column without a null value (TNULL)`);
              s = c.nullValue;
            } else s = Math.round((x - zero) / scale);
            const [lo, hi] = c.type === 'B' ? [0, 255] : c.type === 'I' ? [-32768, 32767] : c.type === 'J' ? [-2147483648, 2147483647] : [-(2 ** 63), 2 ** 63 - 1];
            if (!(s >= lo && s <= hi)) throw new Error(`${this.file}: column "${c.name}", row ${this.rows + r}: ${x} does not fit TFORM ${c.type}`);
            if (c.type === 'B') buf[o] = s;
            else if (c.type === 'I') buf.writeInt16BE(s, o);
            else if (c.type === 'J') buf.writeInt32BE(s, o);
            else buf.writeBigInt64BE(BigInt(s), o);
          }
        }
      }
    }
    this.put(buf);
    this.rows += n;
  }

  /** Patches NAXIS2, pads the data, fsyncs and renames into place. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      const data = this.rows * this.rowBytes;
      const pad = (FITS_BLOCK - (data % FITS_BLOCK)) % FITS_BLOCK;
      if (pad) this.put(Buffer.alloc(pad));
      const card = Buffer.from(fmtCard('NAXIS2', this.rows, 'number of rows'), 'latin1');
      writeSync(this.fd, card, 0, card.length, this.naxis2Pos);
      fsyncSync(this.fd);
    } finally {
      closeSync(this.fd);
    }
    if (this.tmp !== this.file) renameSync(this.tmp, this.file);
  }

  /** Closes and removes the unfinished file. */
  abort(): void {
    if (!this.closed) {
      this.closed = true;
      closeSync(this.fd);
    }
    rmSync(this.tmp, { force: true });
  }
}

/** Writes a whole table in one go. */
export function writeFitsTable(file: string, columns: readonly FitsColumnSpec[], data: Record<string, FitsColumnData>, n: number, opts: FitsWriterOptions = {}): void {
  const w = new FitsTableWriter(file, columns, opts);
  try {
    w.writeRows(data, n);
    w.close();
  } catch (e) {
    w.abort();
    throw e;
  }
}
