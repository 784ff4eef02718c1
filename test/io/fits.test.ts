import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FitsError, FitsTableWriter, listHdus, openFitsTable, parseTform, readFitsTable, writeFitsTable } from '../../src/io/fits.js';

const dir = mkdtempSync(path.join(tmpdir(), 'fits-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A header written by hand (independent of the writer): cards padded to 80, END, blocks of 2880. */
function header(cards: string[]): Buffer {
  const text = [...cards, 'END'].map((c) => c.padEnd(80)).join('');
  return Buffer.from(text.padEnd(Math.ceil(text.length / 2880) * 2880, ' '), 'latin1');
}
const kv = (k: string, v: string | number | boolean) =>
  `${k.padEnd(8)}= ${typeof v === 'string' ? `'${v.padEnd(8)}'`.padEnd(20) : typeof v === 'boolean' ? (v ? 'T' : 'F').padStart(20) : String(v).padStart(20)}`;
const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((2880 - (b.length % 2880)) % 2880)]);

/**
 * primary (no data) + IMAGE (3 x 2 int16, to be skipped) + BINTABLE "CAT" + BINTABLE "OTHER".
 * CAT columns: ID K, NAME 8A, FLUX E, FLUXD D, U16 I (TZERO 32768: unsigned), SC J (TSCAL 0.5,
 * TZERO 10, TNULL -1), OK L, VEC 3E, BY B (TNULL 255), BITS 5X.
 */
function handMadeFits(): Buffer {
  const primary = header([kv('SIMPLE', true), kv('BITPIX', 8), kv('NAXIS', 0), kv('EXTEND', true)]);
  const image = header([kv('XTENSION', 'IMAGE'), kv('BITPIX', 16), kv('NAXIS', 2), kv('NAXIS1', 3), kv('NAXIS2', 2), kv('PCOUNT', 0), kv('GCOUNT', 1), kv('EXTNAME', 'IMG')]);
  const imgData = pad(Buffer.alloc(12, 7));
  const forms = ['K', '8A', 'E', 'D', 'I', 'J', 'L', '3E', 'B', '5X'];
  const names = ['ID', 'NAME', 'FLUX', 'FLUXD', 'U16', 'SC', 'OK', 'VEC', 'BY', 'BITS'];
  const rowBytes = 8 + 8 + 4 + 8 + 2 + 4 + 1 + 12 + 1 + 1;
  const cards = [kv('XTENSION', 'BINTABLE'), kv('BITPIX', 8), kv('NAXIS', 2), kv('NAXIS1', rowBytes), kv('NAXIS2', 3), kv('PCOUNT', 0), kv('GCOUNT', 1), kv('TFIELDS', 10)];
  names.forEach((n, i) => cards.push(kv(`TTYPE${i + 1}`, n), kv(`TFORM${i + 1}`, forms[i])));
  cards.push(kv('TUNIT3', 'uJy'), kv('TZERO5', 32768), kv('TSCAL6', 0.5), kv('TZERO6', 10), kv('TNULL6', -1), kv('TNULL9', 255), kv('EXTNAME', 'CAT'), "COMMENT   a comment card with = signs = 3");
  const rows = Buffer.alloc(3 * rowBytes);
  const ids = [1n, 9007199254740993n, -5n];
  for (let r = 0; r < 3; r++) {
    let o = r * rowBytes;
    rows.writeBigInt64BE(ids[r], o);
    o += 8;
    rows.write(['gal a', 'b', 'longname'][r].padEnd(8, r === 1 ? '\0' : ' '), o, 'latin1');
    o += 8;
    rows.writeFloatBE([1.5, NaN, -2][r], o);
    o += 4;
    rows.writeDoubleBE([0.1, 1e300, -3.25][r], o);
    o += 8;
    rows.writeInt16BE([-32768, 0, 32767][r], o); // -> 0, 32768, 65535
    o += 2;
    rows.writeInt32BE([4, -1, 7][r], o); // -> 12, null, 13.5
    o += 4;
    rows[o] = [0x54, 0x46, 0][r];
    o += 1;
    for (let e = 0; e < 3; e++) rows.writeFloatBE(10 * r + e, o + 4 * e);
    o += 12;
    rows[o] = [3, 255, 0][r];
    o += 1;
    rows[o] = 0xff;
  }
  const other = header([kv('XTENSION', 'BINTABLE'), kv('BITPIX', 8), kv('NAXIS', 2), kv('NAXIS1', 2), kv('NAXIS2', 1), kv('PCOUNT', 0), kv('GCOUNT', 1), kv('TFIELDS', 1), kv('TTYPE1', 'X'), kv('TFORM1', 'I'), kv('EXTNAME', 'OTHER')]);
  const otherData = pad(Buffer.from([0, 42]));
  return Buffer.concat([primary, image, imgData, header(cards), pad(rows), other, otherData]);
}

describe('FITS binary tables: reader', () => {
  const file = path.join(dir, 'hand.fits');
  writeFileSync(file, handMadeFits());

  it('lists the HDUs and finds the first BINTABLE, skipping an image', () => {
    const h = listHdus(file);
    expect(h.map((x) => `${x.kind}:${x.extname ?? ''}`)).toEqual(['PRIMARY:', 'IMAGE:IMG', 'BINTABLE:CAT', 'BINTABLE:OTHER']);
    const t = openFitsTable(file);
    expect(t.hdu).toBe(2);
    expect(t.nRows).toBe(3);
    expect(t.columns.map((c) => c.name)).toEqual(['ID', 'NAME', 'FLUX', 'FLUXD', 'U16', 'SC', 'OK', 'VEC', 'BY', 'BITS']);
    expect(t.column('flux').unit).toBe('uJy'); // case-insensitive unique match
    t.close();
  });

  it('decodes every readable type with scaling, nulls and exact int64 text', () => {
    const t = openFitsTable(file, { hdu: 'cat' });
    const b = t.readRows(0, 3);
    expect(b.text('ID')).toEqual(['1', '9007199254740993', '-5']); // 2^53 + 1 exactly
    expect(b.text('NAME')).toEqual(['gal a', 'b', 'longname']);
    const flux = b.numeric('FLUX');
    expect(flux[0]).toBe(1.5);
    expect(Number.isNaN(flux[1])).toBe(true);
    expect(Array.from(b.numeric('FLUXD'))).toEqual([0.1, 1e300, -3.25]);
    expect(Array.from(b.numeric('U16'))).toEqual([0, 32768, 65535]);
    const sc = b.numeric('SC');
    expect([sc[0], sc[2]]).toEqual([12, 13.5]);
    expect(Number.isNaN(sc[1])).toBe(true); // TNULL compared before scaling
    const ok = b.numeric('OK');
    expect([ok[0], ok[1]]).toEqual([1, 0]);
    expect(Number.isNaN(ok[2])).toBe(true);
    expect(Array.from(b.numeric('VEC', 2))).toEqual([2, 12, 22]);
    const by = b.numeric('BY');
    expect([by[0], by[2]]).toEqual([3, 0]);
    expect(Number.isNaN(by[1])).toBe(true);
    expect(b.text('SC')).toEqual(['12', '', '13.5']);
    // A row range in the middle.
    expect(Array.from(t.readRows(1, 2).numeric('FLUXD'))).toEqual([1e300, -3.25]);
    t.close();
  });

  it('selects HDUs by number and name, with errors naming them', () => {
    const t = openFitsTable(file, { hdu: 3 });
    expect(t.extname).toBe('OTHER');
    expect(Array.from(t.readRows(0, 1).numeric('X'))).toEqual([42]);
    t.close();
    expect(() => openFitsTable(file, { hdu: 'NOPE' })).toThrow(/no HDU named "NOPE" \(HDUs: 0: PRIMARY, 1: IMAGE "IMG", 2: BINTABLE "CAT", 3: BINTABLE "OTHER"\)/);
    expect(() => openFitsTable(file, { hdu: 1 })).toThrow(/HDU 1: is a IMAGE, not a BINTABLE/);
    expect(() => openFitsTable(file, { hdu: 9 })).toThrow(/no HDU 9/);
  });

  it('refuses unreadable or ambiguous column requests, naming the column', () => {
    const t = openFitsTable(file);
    const b = t.readRows(0, 1);
    expect(() => b.numeric('VEC')).toThrow(/HDU 2, column "VEC": is a vector column \(TFORM 3E, 3 elements\): pick one as "VEC\[i\]"/);
    expect(() => b.numeric('VEC', 3)).toThrow(/element 3 outside 0..2/);
    expect(() => b.numeric('BITS')).toThrow(/column "BITS": TFORM 5X: type X is not supported/);
    expect(() => b.numeric('NAME')).toThrow(/column "NAME": is a character column/);
    expect(() => b.numeric('MISSING')).toThrow(/column "MISSING": no such column \(columns: ID, NAME/);
    expect(() => t.readRows(2, 5)).toThrow(RangeError);
    t.close();
  });

  it('readFitsTable gives whole columns (vector elements as NAME[i])', () => {
    const { data } = readFitsTable(file);
    expect(Object.keys(data)).toEqual(['ID', 'NAME', 'FLUX', 'FLUXD', 'U16', 'SC', 'OK', 'VEC[0]', 'VEC[1]', 'VEC[2]', 'BY']);
  });

  it('parses TFORMs', () => {
    expect(parseTform('1PE(10)')).toEqual({ repeat: 1, type: 'P', width: 8 });
    expect(parseTform('12X')).toEqual({ repeat: 12, type: 'X', width: 2 });
    expect(parseTform('D')).toEqual({ repeat: 1, type: 'D', width: 8 });
    expect(() => parseTform('3Z')).toThrow(/bad TFORM "3Z"/);
  });
});

describe('FITS binary tables: writer round trip', () => {
  it('writes in pieces and reads back every type, NaN, nulls, scaling and long ids', () => {
    const file = path.join(dir, 'rt.fits');
    const w = new FitsTableWriter(
      file,
      [
        { name: 'id', type: 'K' },
        { name: 'name', type: 'A', repeat: 6 },
        { name: 'f32', type: 'E', unit: 'nJy' },
        { name: 'f64', type: 'D' },
        { name: 'i16', type: 'I', nullValue: -999 },
        { name: 'i32', type: 'J' },
        { name: 'u8', type: 'B' },
        { name: 'ok', type: 'L' },
        { name: 'vec', type: 'D', repeat: 2 },
        { name: 'scaled', type: 'J', scale: 0.01, zero: 100 },
      ],
      { extname: 'TAB', keywords: { ORIGIN: 'test', SAMPLES: 1000 } },
    );
    w.writeRows(
      { id: BigInt64Array.of(9007199254740993n, 2n), name: ['abc', "o'k"], f32: [1.25, NaN], f64: [Math.PI, -0], i16: [7, NaN], i32: [-2147483648, 2147483647], u8: [0, 255], ok: [1, 0], vec: [1, 2, 3, 4], scaled: [100.01, 99.5] },
      2,
    );
    w.writeRows({ id: [3], name: ['xyzxyz'], f32: [Infinity], f64: [NaN], i16: [-1], i32: [0], u8: [9], ok: [NaN], vec: [5, 6], scaled: [0] }, 1);
    w.close();
    expect(readFileSync(file).length % 2880).toBe(0);
    const t = openFitsTable(file, { hdu: 'TAB' });
    expect(t.nRows).toBe(3);
    expect(t.header.get('ORIGIN')).toBe('test');
    expect(t.header.get('SAMPLES')).toBe(1000);
    expect(t.column('f32').unit).toBe('nJy');
    const b = t.readRows(0, 3);
    expect(b.text('id')).toEqual(['9007199254740993', '2', '3']);
    expect(b.text('name')).toEqual(['abc', "o'k", 'xyzxyz']);
    const f32 = b.numeric('f32');
    expect(f32[0]).toBe(1.25);
    expect(Number.isNaN(f32[1])).toBe(true);
    expect(f32[2]).toBe(Infinity);
    const f64 = b.numeric('f64');
    expect(f64[0]).toBe(Math.PI);
    expect(Object.is(f64[1], -0)).toBe(true);
    expect(Number.isNaN(f64[2])).toBe(true);
    const i16 = b.numeric('i16');
    expect([i16[0], i16[2]]).toEqual([7, -1]);
    expect(Number.isNaN(i16[1])).toBe(true);
    expect(Array.from(b.numeric('i32'))).toEqual([-2147483648, 2147483647, 0]);
    expect(Array.from(b.numeric('u8'))).toEqual([0, 255, 9]);
    expect(Array.from(b.numeric('vec', 1))).toEqual([2, 4, 6]);
    const sc = b.numeric('scaled');
    // Stored as round((v - 100) / 0.01): back within half a quantum (0.005).
    expect(Math.abs(sc[0] - 100.01)).toBeLessThan(0.005 + 1e-12);
    expect(Math.abs(sc[1] - 99.5)).toBeLessThan(0.005 + 1e-12);
    expect(Math.abs(sc[2])).toBeLessThan(0.005 + 1e-12);
    t.close();
  });

  it('refuses values that do not fit', () => {
    const file = path.join(dir, 'bad.fits');
    expect(() => writeFitsTable(file, [{ name: 'a', type: 'J' }], { a: [NaN] }, 1)).toThrow(/NaN in an integer column without a null value/);
    expect(() => writeFitsTable(file, [{ name: 'a', type: 'I' }], { a: [40000] }, 1)).toThrow(/does not fit TFORM I/);
    expect(() => writeFitsTable(file, [{ name: 'a', type: 'A', repeat: 2 }], { a: ['abc'] }, 1)).toThrow(/longer than the column width 2/);
    expect(() => writeFitsTable(file, [{ name: 'a', type: 'D' }], { a: [1, 2] }, 1)).toThrow(/has 2 values, expected 1/);
  });
});

describe('FITS binary tables: malformed files', () => {
  const good = handMadeFits();
  const put = (name: string, b: Buffer | string) => {
    const f = path.join(dir, name);
    writeFileSync(f, b);
    return f;
  };
  const goodFile = put('good.fits', good);
  const cat = listHdus(goodFile)[2];
  const tableHeader = cat.headerOffset;
  const headerText = () => good.toString('latin1', tableHeader, cat.dataOffset);

  it('truncated table data names the file, HDU and byte counts', () => {
    const f = put('trunc-data.fits', good.subarray(0, cat.dataOffset + 30));
    expect(() => openFitsTable(f)).toThrow(FitsError);
    expect(() => openFitsTable(f)).toThrow(new RegExp(`trunc-data\\.fits: HDU 2: truncated data: 3 rows x 49 bytes need 147 bytes from byte ${cat.dataOffset}, the file has 30`));
  });

  it('a header without END is a truncated header', () => {
    const f = put('trunc-header.fits', good.subarray(0, tableHeader + 800));
    expect(() => openFitsTable(f)).toThrow(/HDU 2: truncated header/);
  });

  it('TFORMs that do not add up to NAXIS1', () => {
    const b = Buffer.from(good);
    const text = headerText();
    const at = text.indexOf('NAXIS1  =');
    b.write(`${'NAXIS1'.padEnd(8)}= ${'50'.padStart(20)}`.padEnd(80), tableHeader + at, 'latin1');
    expect(() => openFitsTable(put('naxis1.fits', b))).toThrow(/HDU 2: the TFORMs add up to 49 bytes per row, but NAXIS1 = 50/);
  });

  it('a bad TFORM names the column', () => {
    const b = Buffer.from(good);
    const text = headerText();
    const at = text.indexOf("TFORM3  = 'E");
    b.write(`${'TFORM3'.padEnd(8)}= 'Z       '`.padEnd(80), tableHeader + at, 'latin1');
    expect(() => openFitsTable(put('tform.fits', b))).toThrow(/HDU 2, column "FLUX": bad TFORM "Z"/);
  });

  it('a missing mandatory keyword', () => {
    const b = Buffer.from(good);
    const text = headerText();
    const at = text.indexOf('TFIELDS =');
    b.write('COMMENT'.padEnd(80), tableHeader + at, 'latin1');
    expect(() => openFitsTable(put('tfields.fits', b))).toThrow(/HDU 2: missing mandatory keyword TFIELDS/);
  });

  it('not FITS at all: text, binary, empty, no table', () => {
    expect(() => openFitsTable(put('text.fits', 'id flux 1 2'.padEnd(2880, ' ')))).toThrow(/HDU 0: not a FITS file \(the first card is not SIMPLE\)/);
    expect(() => openFitsTable(put('csv.fits', 'id,flux\n1,2\n'.padEnd(2880, ' ')))).toThrow(/HDU 0: byte 7 \(card 1\) is not printable ASCII \(0x0a\): not a FITS header \(not a FITS file\?\)/);
    expect(() => openFitsTable(put('bin.fits', Buffer.alloc(2880, 0)))).toThrow(/not printable ASCII.*not a FITS file/);
    expect(() => openFitsTable(put('empty.fits', Buffer.alloc(0)))).toThrow(/empty file/);
    expect(() => openFitsTable(put('short.fits', good.subarray(0, 100)))).toThrow(/HDU 0: truncated header/);
    expect(() => openFitsTable(put('noext.fits', good.subarray(0, 2880)))).toThrow(/no BINTABLE extension \(HDUs: 0: PRIMARY\)/);
    expect(() => openFitsTable(path.join(dir, 'does-not-exist.fits'))).toThrow(/cannot open \(ENOENT\)/);
  });
});
