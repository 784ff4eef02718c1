import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import h5wasm from 'h5wasm/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LibraryResumeError,
  LibraryWriter,
  type LibraryWriterOptions,
  configHash,
  openLibrary,
  readLibrary,
} from '../../src/io/library/index.js';
import { DIMS, fakeChunk, fakeColumns, fakeConfig } from '../fixtures/library/fakeSim.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../..');
const fixtures = path.join(repoRoot, 'test/fixtures/library');
const CREATED = '2025-01-02T03:04:05.000Z';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'synference-library-'));
  await h5wasm.ready;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function outPath(name: string): string {
  return path.join(dir, `${name}-${counter++}.h5`);
}

function opts(out: string, over: Partial<LibraryWriterOptions> = {}): LibraryWriterOptions {
  const seed = over.seed ?? 11;
  return { out, n: 10_007, chunkSize: 1000, seed, config: fakeConfig(seed), columns: fakeColumns(), created: CREATED, onWarning: () => {}, ...over };
}

/** Bitwise equality of float32 arrays (NaN-safe), with the first difference in the message. */
function expectBitEqual(a: Float32Array | undefined, b: Float32Array | undefined, what: string): void {
  expect(a, what).toBeDefined();
  expect(b, what).toBeDefined();
  expect(a!.length, `${what}: length`).toBe(b!.length);
  const ua = new Uint32Array(a!.buffer, a!.byteOffset, a!.length);
  const ub = new Uint32Array(b!.buffer, b!.byteOffset, b!.length);
  const i = ua.findIndex((v, k) => v !== ub[k]);
  expect(i, `${what}: first difference at ${i}: ${a![i]} vs ${b![i]}`).toBe(-1);
}

/**
 * Everything a reader can see in an HDF5 file: every object's path, dtype, shape, values (as bytes)
 * and attributes. (Files are not byte-identical across runs: HDF5 stamps object headers with times.)
 */
function h5Content(file: string): Record<string, unknown> {
  const f = new h5wasm.File(file, 'r');
  try {
    const attrsOf = (o: { attrs: Record<string, unknown>; get_attribute: (k: string, j: true) => unknown }) =>
      Object.fromEntries(Object.keys(o.attrs).sort().map((k) => [k, o.get_attribute(k, true)]));
    const out: Record<string, unknown> = { '/': attrsOf(f) };
    for (const p of f.paths().sort()) {
      const e = f.get(p);
      if (e instanceof h5wasm.Dataset) {
        const v = e.value as Float32Array;
        out[p] = { dtype: e.dtype, shape: e.shape, sha256: createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex'), attrs: attrsOf(e) };
      } else out[p] = { type: (e as { type?: string } | null)?.type };
    }
    return out;
  } finally {
    f.close();
  }
}

function expectSameContent(a: string, b: string): void {
  const ca = h5Content(a);
  expect(Object.keys(ca)).toEqual(['/', 'derived', 'errors', 'fluxes', 'theta', 'x']);
  expect(ca).toEqual(h5Content(b));
}

/** The whole library the fake simulator gives for (seed, n), dataset by dataset. */
function expected(seed: number, n: number) {
  return fakeChunk(seed, 0, n) as Record<keyof typeof DIMS, Float32Array>;
}

async function expectLibraryMatches(file: string, seed: number, n: number): Promise<void> {
  const lib = await readLibrary(file);
  const want = expected(seed, n);
  expect(lib.n).toBe(n);
  for (const name of Object.keys(DIMS) as (keyof typeof DIMS)[]) expectBitEqual(lib[name], want[name], `${file} ${name}`);
}

/** A reference library written in one uninterrupted run. */
const references = new Map<string, string>();
async function reference(seed: number, n: number, chunkSize: number, created: string): Promise<string> {
  const key = `${seed}/${n}/${chunkSize}/${created}`;
  const have = references.get(key);
  if (have) return have;
  const out = outPath('reference');
  const w = await LibraryWriter.open(opts(out, { seed, n, chunkSize, config: fakeConfig(seed), created }));
  await w.run((s) => fakeChunk(seed, s.start, s.rows));
  references.set(key, out);
  return out;
}

describe('library format: write in chunks, read back', () => {
  it('round-trips 10^4 rows written out of order, with names, attributes and optional datasets', async () => {
    const out = outPath('roundtrip');
    const w = await LibraryWriter.open(opts(out));
    expect(w.nChunks).toBe(11);
    expect(w.chunk(10)).toEqual({ index: 10, start: 10_000, rows: 7 });
    const order = [3, 10, 0, 7, 1, 9, 2, 8, 4, 6, 5];
    for (const i of order) {
      const s = w.chunk(i);
      await w.writeChunk(i, fakeChunk(11, s.start, s.rows));
    }
    expect(w.pendingChunks()).toEqual([]);
    expect(w.completedRows).toBe(10_007);
    await w.finalize();
    expect(existsSync(out + '.parts')).toBe(false);
    expect(existsSync(out + '.assembling')).toBe(false);

    await expectLibraryMatches(out, 11, 10_007);
    const lib = await readLibrary(out);
    const cols = fakeColumns();
    expect(lib.thetaNames).toEqual(cols.theta);
    expect(lib.xNames).toEqual(cols.x);
    expect(lib.datasets.fluxes).toMatchObject({ cols: 14, columns: cols.fluxes, units: 'nJy', dtype: '<f' });
    expect(lib.datasets.derived?.columns).toEqual(cols.derived);
    expect(lib.attrs).toMatchObject({ formatVersion: 1, generator: 'synference-webgpu', seed: 11, chunkSize: 1000, created: CREATED, config: fakeConfig(11), configHash: configHash(fakeConfig(11)) });

    // Chunked reads cover the file exactly; a row range equals the same rows of the full read.
    const r = await openLibrary(out);
    try {
      let rows = 0;
      for (const c of r.chunks(3001)) {
        expectBitEqual(c.theta, lib.theta.subarray(c.start * 8, (c.start + c.rows) * 8), `chunk at ${c.start} theta`);
        expectBitEqual(c.errors, lib.errors!.subarray(c.start * 14, (c.start + c.rows) * 14), `chunk at ${c.start} errors`);
        rows += c.rows;
      }
      expect(rows).toBe(10_007);
      expect(() => r.readRows(10_000, 10_008)).toThrow(/outside \[0, 10007\)/);
    } finally {
      r.close();
    }
    const part = await readLibrary(out, { rows: [5000, 5010], optional: [] });
    expect(part.rows).toBe(10);
    expect(part.fluxes).toBeUndefined();
    expectBitEqual(part.x, lib.x.subarray(5000 * 29, 5010 * 29), 'row range x');
    // x holds NaN (missing bands): allowed unless requireFinite.
    await expect(readLibrary(out, { requireFinite: true })).rejects.toThrow(/dataset x: non-finite value NaN at row 5, column mag_F3/);
  });

  it('accepts rows as arrays of rows, flat number[] and Float64Array', async () => {
    const out = outPath('inputs');
    const columns = { theta: ['a', 'b'], x: ['u', 'v', 'w'] };
    const w = await LibraryWriter.open({ out, n: 5, chunkSize: 2, seed: 1, config: { k: 1 }, columns });
    await w.writeChunk(0, { theta: [[1, 2], [3, 4]], x: [Float32Array.of(1, 2, 3), [4, 5, 6]] });
    await w.writeChunk(1, { theta: [5, 6, 7, 8], x: Float64Array.of(7, 8, 9, 10, 11, 12.1) });
    await expect(w.writeChunk(2, { theta: [[9, 10], [11, 12]], x: [13, 14, 15] })).rejects.toThrow(/chunk 2, dataset theta: 2 rows, expected 1/);
    await expect(w.writeChunk(2, { theta: [9, 10], x: [13, 14] })).rejects.toThrow(/chunk 2, dataset x: 2 values, expected 1 x 3 = 3/);
    await expect(w.writeChunk(2, { theta: [9, 10], x: [13, 14, 15], fluxes: [1] })).rejects.toThrow(/dataset "fluxes" was not declared/);
    await expect(w.writeChunk(2, { theta: [9, 10] } as never)).rejects.toThrow(/dataset "x" is missing/);
    await expect(w.writeChunk(1, { theta: [5, 6, 7, 8], x: [7, 8, 9, 10, 11, 12] })).rejects.toThrow(/chunk 1 is already written/);
    await expect(w.finalize()).rejects.toThrow(/1 of 3 chunks not written \(2\)/);
    await w.writeChunk(2, { theta: [9, 10], x: [13, 14, 15] });
    await w.finalize();
    const lib = await readLibrary(out);
    expect(Array.from(lib.theta)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(Array.from(lib.x)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, Math.fround(12.1), 13, 14, 15]);
    expect(lib.fluxes).toBeUndefined();
    expect(Object.keys(lib.datasets)).toEqual(['theta', 'x']);
  });

  it('rejects bad writer options naming the key', async () => {
    const out = outPath('badopts');
    await expect(LibraryWriter.open({ ...opts(out), n: 0 })).rejects.toThrow(/options: n: /);
    await expect(LibraryWriter.open({ ...opts(out), columns: { theta: ['a', 'a'], x: ['b'] } })).rejects.toThrow(/columns\.theta: column names must be unique/);
    await expect(LibraryWriter.open({ ...opts(out), columns: { theta: ['a'], x: [] } })).rejects.toThrow(/columns\.x: needs at least one column/);
    await expect(LibraryWriter.open({ ...opts(out), seed: -1 })).rejects.toThrow(/options: seed: /);
    await expect(LibraryWriter.open({ ...opts(out), config: undefined })).rejects.toThrow(/config is missing/);
    expect(existsSync(out + '.parts')).toBe(false);
  });

  it('writes files h5py reads: shapes, float32, column and root attributes', async () => {
    const py = '/usr/bin/python3';
    const hasH5py = existsSync(py) && spawnSync(py, ['-c', 'import h5py'], { stdio: 'ignore' }).status === 0;
    if (!hasH5py) {
      // CI installs python3-h5py (Debian); locally the check is skipped with a note.
      if (process.env.CI) throw new Error('/usr/bin/python3 with h5py is required in CI (apt-get install python3-h5py)');
      console.warn('SKIPPED h5py check: /usr/bin/python3 has no h5py (apt-get install -y python3-h5py)');
      return;
    }
    const out = await reference(11, 10_007, 1000, CREATED);
    const script = `
import sys, json, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
r = {'keys': sorted(f.keys()), 'root': {}}
for k, v in f.attrs.items():
    r['root'][k] = v.item() if hasattr(v, 'item') else v
for name in f:
    d = f[name]
    r[name] = {'shape': list(d.shape), 'dtype': str(d.dtype), 'chunks': list(d.chunks or []),
               'columns': [str(c) for c in d.attrs['columns']],
               'columns_json': json.loads(d.attrs['columns_json']),
               'units': d.attrs.get('units'),
               'first': d[0].astype('float64').tolist(), 'last': d[-1].astype('float64').tolist()}
r['config'] = json.loads(f.attrs['config'])
r['x_nan'] = int(np.isnan(f['x'][:]).sum())
print(json.dumps(r, allow_nan=False, default=str).replace('NaN', 'null'))
`;
    const res = spawnSync(py, ['-c', script, out], { encoding: 'utf8' });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const r = JSON.parse(res.stdout);
    const cols = fakeColumns();
    const want = expected(11, 10_007);
    expect(r.keys).toEqual(['derived', 'errors', 'fluxes', 'theta', 'x']);
    for (const name of ['theta', 'x', 'fluxes', 'errors', 'derived'] as const) {
      const c = DIMS[name];
      expect(r[name].shape, name).toEqual([10_007, c]);
      expect(r[name].dtype, name).toBe('float32');
      expect(r[name].columns, name).toEqual(cols[name]);
      expect(r[name].columns_json, name).toEqual(cols[name]);
      expect(r[name].units, name).toBe(name === 'fluxes' || name === 'errors' ? 'nJy' : null);
      if (name !== 'x') {
        expect(r[name].first, name).toEqual(Array.from(want[name].subarray(0, c)));
        expect(r[name].last, name).toEqual(Array.from(want[name].subarray((10_007 - 1) * c)));
      }
    }
    expect(r.root).toMatchObject({ format_version: 1, generator: 'synference-webgpu', seed: 11, chunk_size: 1000, created: CREATED, config_hash: configHash(fakeConfig(11)) });
    expect(r.config).toEqual(fakeConfig(11));
    expect(r.x_nan).toBe(Array.from(want.x).filter(Number.isNaN).length);
  });
});

describe('resuming', () => {
  it('after an error thrown mid-chunk: continues without recomputing finished chunks, same file', async () => {
    const out = outPath('throw');
    const computed: number[] = [];
    const compute = (failAt: number) => (s: { index: number; start: number; rows: number }) => {
      computed.push(s.index);
      if (s.index === failAt) throw new Error(`simulated failure in chunk ${s.index}`);
      return fakeChunk(11, s.start, s.rows);
    };
    const w1 = await LibraryWriter.open(opts(out, { created: undefined }));
    const created = w1.created!;
    await expect(w1.run(compute(4))).rejects.toThrow(/simulated failure in chunk 4/);
    expect(w1.completedChunks()).toEqual([0, 1, 2, 3]);

    const w2 = await LibraryWriter.open(opts(out, { created: '2030-01-01T00:00:00Z' }));
    expect(w2.resumed).toBe(true);
    expect(w2.created).toBe(created); // kept from the first start
    expect(w2.pendingChunks()).toEqual([4, 5, 6, 7, 8, 9, 10]);
    await expect(w2.run(compute(8))).rejects.toThrow(/chunk 8/);

    const w3 = await LibraryWriter.open(opts(out));
    expect(w3.pendingChunks()).toEqual([8, 9, 10]);
    await w3.run(compute(-1));
    // Each chunk computed once, except the two that threw (their second try is the one kept).
    expect(computed).toEqual([0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 8, 9, 10]);
    const ref = await reference(11, 10_007, 1000, created);
    expectSameContent(out, ref);
  });

  it('after kill -9 at random points (child processes): no finished chunk recomputed, identical file', async () => {
    const out = outPath('killed');
    const log = out + '.log';
    const args = { out, n: 10_000, chunkSize: 250, seed: 23, log, sleepMs: 4 };
    const child = path.join(fixtures, 'simChild.mjs');
    const readLog = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
    // Seeded choice of kill points: after k more finished chunks plus a random delay (lands in
    // compute, in writeChunk between part and manifest, ...), then once during assembly.
    let rng = 12345;
    const rand = () => ((rng = (Math.imul(rng, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const plans: { afterDone?: number; afterFinalize?: boolean; delayMs: number }[] = [
      { afterDone: 3 + Math.floor(rand() * 5), delayMs: rand() * 6 },
      { afterDone: 1, delayMs: 0 },
      { afterDone: 4 + Math.floor(rand() * 8), delayMs: rand() * 6 },
      { afterDone: 2 + Math.floor(rand() * 8), delayMs: rand() * 3 },
      { afterFinalize: true, delayMs: rand() * 4 },
    ];
    let kills = 0;
    const runChild = async (plan?: (typeof plans)[number]) => {
      const before = readLog().length;
      const p = spawn(process.execPath, [child, JSON.stringify(args)], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
      let done = false;
      void exited.then(() => (done = true));
      if (plan) {
        for (;;) {
          if (done) break;
          const lines = readLog().slice(before);
          const ready = plan.afterFinalize ? lines.includes('finalize') : lines.filter((l) => l.startsWith('done ')).length >= plan.afterDone!;
          if (ready) {
            const t = performance.now();
            while (performance.now() - t < plan.delayMs) {
              /* spin: sub-ms delays */
            }
            if (p.kill('SIGKILL')) kills++;
            break;
          }
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      const code = await exited;
      if (!plan) expect(code, stderr).toBe(0);
      return code;
    };
    for (const plan of plans) await runChild(plan);
    expect(kills).toBeGreaterThanOrEqual(4);
    await runChild();

    // Runs as seen in the log.
    const runs: { starts: number[]; dones: number[] }[] = [];
    for (const l of readLog()) {
      if (l.startsWith('run ')) runs.push({ starts: [], dones: [] });
      else if (l.startsWith('start ')) runs.at(-1)!.starts.push(Number(l.slice(6)));
      else if (l.startsWith('done ')) runs.at(-1)!.dones.push(Number(l.slice(5)));
    }
    expect(runs.length).toBe(plans.length + 1);
    const doneEver = new Set<number>();
    let starts = 0;
    for (const r of runs) {
      for (const i of r.starts) expect(doneEver.has(i), `chunk ${i} recomputed after it was finished`).toBe(false);
      for (const i of r.dones) doneEver.add(i);
      // Sequential: at most the last chunk started in a run is unfinished (the one being killed).
      expect(r.starts.length - r.dones.length).toBeLessThanOrEqual(1);
      starts += r.starts.length;
    }
    // 40 chunks; each kill can cost at most one chunk's work.
    expect(starts).toBeLessThanOrEqual(40 + kills);
    expect(existsSync(out + '.parts')).toBe(false);
    expect(existsSync(out + '.assembling')).toBe(false);
    const created = (await readLibrary(out, { optional: [] })).attrs.created!;
    const ref = await reference(23, 10_000, 250, created);
    expectSameContent(out, ref);
    await expectLibraryMatches(out, 23, 10_000);
  }, 120_000);

  it('refuses a restart with another config, seed, n, chunk size or columns; overwrite discards', async () => {
    const out = outPath('mismatch');
    const w = await LibraryWriter.open(opts(out));
    for (const i of [0, 1]) await w.writeChunk(i, fakeChunk(11, i * 1000, 1000));
    w.close();
    const refuse = async (over: Partial<LibraryWriterOptions>, re: RegExp) => {
      const p = LibraryWriter.open(opts(out, over));
      await expect(p).rejects.toThrow(LibraryResumeError);
      await expect(p).rejects.toThrow(re);
    };
    await refuse({ seed: 12, config: fakeConfig(11) }, /different seed \(11, now 12\)/);
    await refuse({ config: { ...fakeConfig(11), bands: 13 } }, /different config \(hash [0-9a-f]{12}, now [0-9a-f]{12}\).*--overwrite/);
    await refuse({ chunkSize: 500 }, /chunk size \(1000, now 500\)/);
    await refuse({ n: 20_000 }, /n \(10007, now 20000\)/);
    await refuse({ columns: { ...fakeColumns(), derived: undefined } }, /different datasets \(theta,x,fluxes,errors,derived, now theta,x,fluxes,errors\)/);
    await refuse({ columns: { ...fakeColumns(), theta: [...fakeColumns().theta.slice(0, 7), 'tau'] } }, /columns of theta \(8 columns, now 8; column 7 "t75", now "tau"\)/);
    // Same config with keys in another order is the same config.
    const reordered = JSON.parse(JSON.stringify({ priors: fakeConfig(11).priors, seed: 11, bands: 14, model: 'fake' }));
    const again = await LibraryWriter.open(opts(out, { config: reordered }));
    expect(again.pendingChunks().length).toBe(9);
    again.close();
    const o = await LibraryWriter.open(opts(out, { seed: 12, overwrite: true }));
    expect(o.pendingChunks().length).toBe(11);
    expect(o.resumed).toBe(false);
    o.close();
  });

  it('a finished output: same run has nothing to do; another run is refused; a foreign file needs overwrite', async () => {
    const out = outPath('finished');
    copyFileSync(await reference(11, 10_007, 1000, CREATED), out);
    const bytes = readFileSync(out);
    // Leftover of a run killed while removing its parts folder.
    mkdirSync(out + '.parts.removing');
    writeFileSync(path.join(out + '.parts.removing', 'chunk-000000.part'), 'x');
    const w = await LibraryWriter.open(opts(out));
    expect(existsSync(out + '.parts.removing')).toBe(false);
    expect(w.complete).toBe(true);
    expect(w.pendingChunks()).toEqual([]);
    await w.finalize();
    expect(readFileSync(out).equals(bytes)).toBe(true);
    expect(existsSync(out + '.parts')).toBe(false);
    await expect(LibraryWriter.open(opts(out, { seed: 5 }))).rejects.toThrow(/exists as a finished library with a different config \(hash [0-9a-f]{12}, now [0-9a-f]{12}\), seed \(11, now 5\)/);

    const foreign = outPath('foreign-out');
    writeFileSync(foreign, 'not hdf5');
    await expect(LibraryWriter.open(opts(foreign))).rejects.toThrow(/exists and is not a finished library of this run: .*not an HDF5 file/);
    const w2 = await LibraryWriter.open(opts(foreign, { overwrite: true }));
    await w2.run((s) => fakeChunk(11, s.start, s.rows));
    expectSameContent(foreign, out);
  });

  it('recovers from damaged, orphaned and foreign parts and leftovers of a killed assembly', async () => {
    const out = outPath('damaged');
    const warnings: string[] = [];
    const o = (over: Partial<LibraryWriterOptions> = {}) => opts(out, { onWarning: (m) => warnings.push(m), ...over });
    const w = await LibraryWriter.open(o());
    for (const i of [0, 1, 2, 3]) await w.writeChunk(i, fakeChunk(11, i * 1000, 1000));
    w.close();
    const parts = out + '.parts';
    // Chunk 1 truncated; chunk 2 written but not in the manifest (killed between rename and manifest);
    // a part of another seed as chunk 5; temp files and a half-written output of a killed assembly.
    truncateSync(path.join(parts, 'chunk-000001.part'), 500);
    const manifest = JSON.parse(readFileSync(path.join(parts, 'manifest.json'), 'utf8'));
    delete manifest.chunks['2'];
    writeFileSync(path.join(parts, 'manifest.json'), JSON.stringify(manifest));
    const other = path.join(dir, 'other-seed.h5');
    const wo = await LibraryWriter.open(opts(other, { seed: 99 }));
    await wo.writeChunk(5, fakeChunk(99, 5000, 1000));
    copyFileSync(path.join(other + '.parts', 'chunk-000005.part'), path.join(parts, 'chunk-000005.part'));
    wo.close();
    writeFileSync(path.join(parts, 'chunk-000006.part.tmp'), 'partial');
    writeFileSync(out + '.assembling', 'partial hdf5');

    const w2 = await LibraryWriter.open(o());
    expect(w2.completedChunks()).toEqual([0, 2, 3]);
    expect(warnings.join('\n')).toMatch(/chunk-000001\.part: damaged or foreign part \(.*payload is .* bytes.*\); chunk 1 will be recomputed/);
    expect(warnings.join('\n')).toMatch(/chunk-000005\.part: damaged or foreign part \(written by another run\)/);
    expect(readdirSync(parts).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(existsSync(out + '.assembling')).toBe(false);
    const computed: number[] = [];
    await w2.run((s) => (computed.push(s.index), fakeChunk(11, s.start, s.rows)));
    expect(computed).toEqual([1, 4, 5, 6, 7, 8, 9, 10]);
    expectSameContent(out, await reference(11, 10_007, 1000, CREATED));
  });

  it('locks: a second writer (this process or a live other one) is refused; a stale lock is taken over; keepParts', async () => {
    const out = outPath('lock');
    const w = await LibraryWriter.open(opts(out));
    await expect(LibraryWriter.open(opts(out))).rejects.toThrow(/already has it open/);
    w.close();
    const lock = path.join(out + '.parts', 'lock');
    const { hostname } = await import('node:os');
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(lock, JSON.stringify({ pid: sleeper.pid, host: hostname() }));
      await expect(LibraryWriter.open(opts(out))).rejects.toThrow(new RegExp(`another process \\(pid ${sleeper.pid}\\) is writing`));
    } finally {
      sleeper.kill('SIGKILL');
      await new Promise((r) => sleeper.on('exit', r));
    }
    // The sleeper is gone: its lock is stale.
    const w2 = await LibraryWriter.open(opts(out, { keepParts: true }));
    await w2.run((s) => fakeChunk(11, s.start, s.rows));
    expect(readdirSync(out + '.parts').filter((f) => f.endsWith('.part')).length).toBe(11);
    expect(existsSync(lock)).toBe(false);
    // Finished output + kept parts: a rerun reassembles the same file.
    copyFileSync(out, out + '.before');
    const w3 = await LibraryWriter.open(opts(out));
    expect(w3.pendingChunks()).toEqual([]);
    await w3.finalize();
    expectSameContent(out, out + '.before');
    expect(existsSync(out + '.parts')).toBe(false);
  });
});

describe('reading any (theta, x) library; malformed files', () => {
  /** Writes an HDF5 file with h5wasm; `build` adds what the case needs. */
  async function h5(name: string, build: (f: InstanceType<typeof h5wasm.File>) => void): Promise<string> {
    const file = path.join(dir, `${name}.h5`);
    const f = new h5wasm.File(file, 'w');
    try {
      build(f);
    } finally {
      f.close();
    }
    return file;
  }
  const ds = (f: InstanceType<typeof h5wasm.File>, name: string, shape: number[], data?: Float32Array | Float64Array | Int32Array) =>
    f.create_dataset({ name, data: data ?? new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => i), shape });

  it('reads a foreign h5py file: float64/int16, 1-D x, byte-string names, no or odd root attributes', async () => {
    const file = path.join(fixtures, 'foreign-h5py.hdf5'); // written by make_foreign.py
    const lib = await readLibrary(file);
    expect(lib.n).toBe(5);
    expect(lib.thetaNames).toEqual(['alpha', 'beta']);
    expect(lib.xNames).toEqual(['obs']);
    expect(Array.from(lib.theta)).toEqual([-1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
    expect(Array.from(lib.x)).toEqual([3, -1, 4, 1, -5]);
    expect(lib.datasets.derived).toMatchObject({ cols: 1, columns: ['derived_0'] });
    expect(lib.fluxes).toBeUndefined();
    expect(lib.attrs.seed).toBeUndefined(); // a string "seed" is not ours
    expect(lib.attrs.configText).toBe('model: yaml-not-json');
    expect(lib.attrs.config).toBeUndefined();
    expect(lib.attrs.all.seed).toBe('not a number');
  });

  it('defaults column names; reads columns_json when there is no columns attribute', async () => {
    const file = await h5('plain', (f) => {
      ds(f, 'theta', [4, 2], Float64Array.of(1, 2, 3, 4, 5, 6, 7, 8));
      ds(f, 'x', [4, 3], Int32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)).create_attribute('columns_json', '["p","q","r"]');
    });
    const lib = await readLibrary(file);
    expect(lib.thetaNames).toEqual(['theta_0', 'theta_1']);
    expect(lib.xNames).toEqual(['p', 'q', 'r']);
    expect(lib.theta).toBeInstanceOf(Float32Array);
    expect(Array.from(lib.x.subarray(9))).toEqual([10, 11, 12]);
    expect(lib.attrs.generator).toBeUndefined();
  });

  const cases: [string, (f: InstanceType<typeof h5wasm.File>) => void, RegExp][] = [
    ['missing-theta', (f) => ds(f, 'x', [3, 2]), /: dataset theta: missing \(a library needs 2-D datasets theta \(N x P\) and x \(N x F\) at the root; found: x\)/],
    ['missing-x', (f) => (ds(f, 'theta', [3, 2]), ds(f, 'y', [3, 2])), /: dataset x: missing .*found: theta, y/],
    ['row-mismatch', (f) => (ds(f, 'theta', [10, 2]), ds(f, 'x', [9, 3])), /: dataset x: 9 rows, but dataset theta has 10/],
    ['fluxes-rows', (f) => (ds(f, 'theta', [10, 2]), ds(f, 'x', [10, 3]), ds(f, 'fluxes', [8, 3])), /: dataset fluxes: 8 rows, but dataset theta has 10/],
    ['theta-3d', (f) => (ds(f, 'theta', [2, 3, 4]), ds(f, 'x', [2, 3])), /: dataset theta: shape \[2, 3, 4\], expected 2-D/],
    ['x-scalar', (f) => (ds(f, 'theta', [2, 3]), f.create_dataset({ name: 'x', data: 1.5 })), /: dataset x: shape \[\], expected 2-D/],
    ['theta-strings', (f) => (f.create_dataset({ name: 'theta', data: ['a', 'b'] }), ds(f, 'x', [2, 3])), /: dataset theta: non-numeric dtype/],
    ['x-group', (f) => (ds(f, 'theta', [2, 3]), f.create_group('x')), /: dataset x: is a Group, not a dataset/],
    ['zero-rows', (f) => (f.create_dataset({ name: 'theta', data: new Float32Array(0), shape: [0, 2] }), ds(f, 'x', [0, 3])), /: dataset theta: has no rows/],
    ['columns-count', (f) => (ds(f, 'theta', [2, 2]).create_attribute('columns', ['a', 'b', 'c']), ds(f, 'x', [2, 1])), /: dataset theta: attribute columns names 3 columns, the dataset has 2/],
    ['columns-type', (f) => (ds(f, 'theta', [2, 2]), ds(f, 'x', [2, 2]).create_attribute('columns', Int32Array.of(1, 2))), /: dataset x: attribute columns must be a list of strings/],
    ['columns-json-bad', (f) => (ds(f, 'theta', [2, 2]), ds(f, 'x', [2, 2]).create_attribute('columns_json', '[oops')), /: dataset x: attribute columns_json is not JSON/],
  ];
  for (const [name, build, re] of cases) {
    it(`rejects ${name}, naming the file and the dataset`, async () => {
      const file = await h5(name, build);
      const p = readLibrary(file);
      await expect(p).rejects.toThrow(re);
      await expect(p).rejects.toThrow(file);
    });
  }

  it('rejects a missing file, a non-HDF5 file, a truncated library and bad options', async () => {
    await expect(readLibrary(path.join(dir, 'nope.h5'))).rejects.toThrow(/nope\.h5: no such file/);
    const text = path.join(dir, 'text.h5');
    writeFileSync(text, 'theta,x\n1,2\n');
    await expect(readLibrary(text)).rejects.toThrow(/text\.h5: not an HDF5 file/);
    const cut = path.join(dir, 'truncated.h5');
    copyFileSync(await reference(11, 10_007, 1000, CREATED), cut);
    truncateSync(cut, Math.floor(statSync(cut).size / 2));
    await expect(readLibrary(cut)).rejects.toThrow(/truncated\.h5: cannot open HDF5 file \(mode r; truncated or corrupt\?\)/);
    await expect(readLibrary(text, { rows: [-1, 2] } as never)).rejects.toThrow(/readLibrary options: rows\.0/);
    mkdirSync(path.join(dir, 'adir.h5'), { recursive: true });
    await expect(readLibrary(path.join(dir, 'adir.h5'))).rejects.toThrow(/is a directory/);
  });
});
