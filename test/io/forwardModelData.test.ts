/**
 * The browser page's loaders, run in Node: FileSources (picked files, memory, URLs) and the forward
 * model read through them (src/io/forwardModelData.ts) equal what the Node readers give from the
 * same files: the grid build, the filter curves, and the band fluxes of the assembled model.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFlow } from '../../src/flow/flow.js';
import { loadModelDir, loadModelFrom, saveModelDir } from '../../src/flow/modelFiles.js';
import { buildGrid, loadBuiltGrid } from '../../src/grid/build.js';
import { resolveFilterSet } from '../../src/grid/filters.js';
import { type FileSource, FileSourceError, filesSource, memorySource, urlSource } from '../../src/io/fileSource.js';
import { forwardModelFrom, loadBuiltGridFrom, resolveFilterSetFrom } from '../../src/io/forwardModelData.js';
import { resolveDataDir } from '../../src/io/paths.js';
import type { GalaxyParamsInput } from '../../src/physics/forwardModel.js';
import { loadSimulationConfig } from '../../src/simulate/config.js';
import { forwardModelForConfig } from '../../src/simulate/simulate.js';

/** A FileSource over a folder on disk (what the page gets from a picked folder or a URL). */
function dirSource(dir: string): FileSource {
  const full = (rel: string) => path.join(dir, rel);
  return {
    name: dir,
    where: full,
    bytes: async (rel) => {
      try {
        return new Uint8Array(readFileSync(full(rel)));
      } catch (e) {
        throw new FileSourceError(full(rel), (e as Error).message);
      }
    },
    text: async (rel) => readFileSync(full(rel), 'utf8'),
    has: async (rel) => {
      try {
        readFileSync(full(rel));
        return true;
      } catch {
        return false;
      }
    },
  };
}

const tmp = mkdtempSync(path.join(tmpdir(), 'fm-sources-'));
let gridDir = '';
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  gridDir = (await buildGrid({ grid: 'bc03', outDir: tmp, name: 'bc03' })).dir;
});

describe('FileSources', () => {
  it('picked folder: paths relative to the folder; a missing file names the path', async () => {
    const file = (p: string, text: string) => ({ name: p.split('/').pop()!, webkitRelativePath: p, arrayBuffer: async () => new TextEncoder().encode(text).buffer as ArrayBuffer });
    const src = filesSource([file('model/config.json', '{}'), file('model/sub/w.bin', 'abc')]);
    expect(src.name).toBe('model');
    expect(await src.text('config.json')).toBe('{}');
    expect(await src.text('./sub/w.bin')).toBe('abc');
    expect(await src.has('nothing')).toBe(false);
    await expect(src.bytes('nothing.json')).rejects.toThrow(/model\/nothing\.json: not among the picked files \(config\.json, sub\/w\.bin\)/);
    // Loose files (no folder): by name.
    const loose = filesSource([{ name: 'a.csv', arrayBuffer: async () => new ArrayBuffer(2) }]);
    expect((await loose.bytes('a.csv')).byteLength).toBe(2);
  });

  it('URL: fetches base + path; HTTP errors name the URL', async () => {
    const seen: string[] = [];
    const fake = (async (u: string | URL | Request) => {
      seen.push(String(u));
      return String(u).endsWith('ok.txt') ? new Response('hello') : new Response('no', { status: 404, statusText: 'Not Found' });
    }) as typeof fetch;
    const src = urlSource('http://host/models/m', fake);
    expect(await src.text('ok.txt')).toBe('hello');
    expect(seen[0]).toBe('http://host/models/m/ok.txt');
    await expect(src.text('gone.txt')).rejects.toThrow('http://host/models/m/gone.txt: HTTP 404 Not Found');
    expect(await src.has('gone.txt')).toBe(false);
  });

  it('a model folder loads through a FileSource as loadModelDir loads it', async () => {
    const dir = path.join(tmp, 'model');
    const flow = createFlow({ thetaDim: 2, contextDim: 3, transforms: 2, hidden: 8, blocks: 1, bins: 4, seed: 3 });
    await saveModelDir(dir, flow, { parameters: [{ name: 'a', low: 0, high: 1, boundsSource: 'prior' }, { name: 'b', low: null, high: null, boundsSource: 'none' }], context: ['x', 'y', 'z'].map((name) => ({ name })) });
    const a = await loadModelDir(dir);
    const b = await loadModelFrom(dirSource(dir));
    expect(Array.from(b.flow.params)).toEqual(Array.from(a.flow.params));
    expect(b.config).toEqual(a.config);
    await expect(loadModelFrom(memorySource('m', { 'config.json': '{' }))).rejects.toThrow(/m\/config\.json: not valid JSON/);
  });
});

describe('the forward model from FileSources', () => {
  it('grid build: the same arrays as loadBuiltGrid; a modified binary fails its sha256', async () => {
    const a = loadBuiltGrid(gridDir);
    const b = await loadBuiltGridFrom(dirSource(gridDir));
    expect(b.manifest).toEqual(a.manifest);
    expect(b.lnuF32).toEqual(a.lnuF32);
    expect(b.survivingMassFraction).toEqual(a.survivingMassFraction);
    const bytes = new Uint8Array(readFileSync(path.join(gridDir, 'lnu.f32')));
    bytes[100] ^= 1;
    const src = memorySource('g', { 'manifest.json': readFileSync(path.join(gridDir, 'manifest.json'), 'utf8'), 'lnu.f32': bytes });
    await expect(loadBuiltGridFrom(src)).rejects.toThrow(/g\/lnu\.f32: sha256 [0-9a-f]+ != manifest/);
    const short = memorySource('g', { 'manifest.json': readFileSync(path.join(gridDir, 'manifest.json'), 'utf8'), 'lnu.f32': bytes.subarray(8) });
    await expect(loadBuiltGridFrom(short, { verify: false })).rejects.toThrow(/g\/lnu\.f32: \d+ bytes, expected \d+/);
  });

  it('filters: a set name and a list of stems give resolveFilterSet\'s curves', async () => {
    const data = dirSource(resolveDataDir());
    for (const spec of ['jades14', ['jwst_f200w', 'acs_wfc_f435w.par']] as const) {
      const a = resolveFilterSet(spec as string | string[]);
      const b = await resolveFilterSetFrom(spec as string | string[], data);
      expect(b.map((f) => f.name)).toEqual(a.map((f) => f.name));
      b.forEach((f, i) => {
        expect(f.wavelengthAA).toEqual(a[i].wavelengthAA);
        expect(f.throughput).toEqual(a[i].throughput);
      });
    }
    await expect(resolveFilterSetFrom(['jwst_f999w'], data)).rejects.toThrow(/unknown filter "jwst_f999w": none of .*filters\/jwst_f999w\.par/);
  });

  it('the reference study\'s model: the same band fluxes as forwardModelForConfig (IGM, nebular, dust)', async () => {
    const config = { ...(await loadSimulationConfig(path.join(import.meta.dirname, '..', '..', 'examples', 'reference-study.yaml'))), grid: gridDir };
    const node = await forwardModelForConfig(config);
    const web = await forwardModelFrom(config, { grid: dirSource(gridDir), data: dirSource(resolveDataDir()) });
    expect(web.grid.manifest.name).toBe('bc03');
    expect(web.model.bandNames).toEqual(node.bandNames);
    const galaxies: GalaxyParamsInput[] = [
      { redshift: 2.5, log10MassFormedMsun: 10, log10Z: -2, avMag: 0.3, sfh: { family: 'constant', startAgeYr: 5e8 } },
      { redshift: 7, log10MassFormedMsun: 9, log10Z: -3, avMag: 0.05, sfh: { family: 'exponential', startAgeYr: 3e8, tauYr: 1e8 } },
    ];
    for (const g of galaxies) expect(web.model.photometry(g).fluxesNJy).toEqual(node.photometry(g).fluxesNJy);
  });

  it('a missing table names the file', async () => {
    const config = { ...(await loadSimulationConfig(path.join(import.meta.dirname, '..', '..', 'examples', 'reference-study.yaml'))), grid: gridDir };
    const empty = memorySource('data', {});
    await expect(forwardModelFrom(config, { grid: dirSource(gridDir), data: empty })).rejects.toThrow(/data\/filters\/acs_wfc_f435w\.par: no such file/);
  });
});
