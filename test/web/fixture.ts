/**
 * Fixtures of the browser test: a small trained model of the reference study's kind (BC03 grid
 * build, 14 JADES-like bands, quantile SFH, masks), a mock catalogue from a held-out simulation, and a
 * static HTTP server for the built page and those files.
 */
import { createReadStream, existsSync, statSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { buildGrid } from '../../src/grid/build.js';
import type { Gpu } from '../../src/gpu/device.js';
import type { ColumnMapInput } from '../../src/infer/columnMap.js';
import { readLibrary } from '../../src/io/library/index.js';
import { packageRoot } from '../../src/io/paths.js';
import { loadSimulationConfig } from '../../src/simulate/config.js';
import { PhiloxStream, RngPurpose } from '../../src/simulate/rng.js';
import { simulateLibrary } from '../../src/simulate/simulate.js';
import { trainFromLibrary } from '../../src/train/library.js';

export interface WebFixture {
  gridDir: string;
  modelDir: string;
  catalog: string;
  map: ColumnMapInput;
  bands: string[];
  nRows: number;
  /** Rows with a deliberate problem and the band concerned. */
  special: { nanFlux: number; emptyError: number; noPhotometry: number; negativeFlux: number };
}

/**
 * Grid build, training library (nTrain galaxies) and model, and a catalogue of nCat mock galaxies
 * (held-out simulation; fluxes scattered by their errors) with a NaN flux, an empty error cell, a
 * row without photometry and a negative flux.
 */
export async function buildWebFixture(dir: string, gpu: Gpu, o: { nTrain: number; nCat: number; epochs: number; seed: number }): Promise<WebFixture> {
  const grid = await buildGrid({ grid: 'bc03', outDir: dir, name: 'bc03' });
  const base = await loadSimulationConfig(path.join(packageRoot(), 'examples', 'reference-study.yaml'));
  // Masks (10 % band drop-out in training) so that a missing band is fitted, as in real catalogues.
  const config = (seed: number, chunk: number) => ({ ...base, grid: grid.dir, seed, chunkSize: chunk, features: { ...base.features, dropoutProb: 0.1, mask: true } });
  const trainLib = path.join(dir, 'train.h5');
  const catLib = path.join(dir, 'catalog.h5');
  await simulateLibrary({ gpu, config: config(o.seed, o.nTrain), n: o.nTrain, out: trainLib });
  await simulateLibrary({ gpu, config: config(o.seed + 1, o.nCat), n: o.nCat, out: catLib });
  const modelDir = path.join(dir, 'model');
  await trainFromLibrary({
    library: trainLib,
    out: modelDir,
    engine: 'cpu',
    flow: { transforms: 3, hidden: 32, blocks: 1, bins: 8 },
    options: { seed: o.seed, maxEpochs: o.epochs, patience: o.epochs, batchSize: 128, lr: 2e-3, checkpointEvery: 0 },
  });

  // The catalogue: id, <band>_flux, <band>_err [nJy], named so that the page guesses the map.
  const lib = await readLibrary(catLib, { optional: ['fluxes', 'errors'] });
  const bands = (lib.datasets.fluxes?.columns ?? []).map((c) => c.replace(/_nJy$/, ''));
  const B = bands.length;
  const n = lib.rows;
  const special = { nanFlux: 2, emptyError: 4, noPhotometry: 6, negativeFlux: 8 };
  const lines = ['# mock galaxies for the browser test (held-out simulation, fluxes scattered by their errors)', ['id', ...bands.flatMap((b) => [`${b}_flux`, `${b}_err`])].join(',')];
  for (let i = 0; i < n; i++) {
    const rng = new PhiloxStream(o.seed, RngPurpose.user, i);
    const cells = [`mock-${i}`];
    for (let b = 0; b < B; b++) {
      const e = lib.errors![i * B + b];
      let f = String(lib.fluxes![i * B + b] + e * rng.normal());
      let es = String(e);
      if (i === special.nanFlux && b === 3) f = 'nan';
      if (i === special.emptyError && b === 0) es = '';
      if (i === special.noPhotometry) f = 'NaN';
      if (i === special.negativeFlux && b === 5) f = String(-2 * e);
      cells.push(f, es);
    }
    lines.push(cells.join(','));
  }
  const catalog = path.join(dir, 'catalog.csv');
  writeFileSync(catalog, lines.join('\n') + '\n');
  const map: ColumnMapInput = { units: 'nJy', bands: Object.fromEntries(bands.map((b) => [b, { flux: `${b}_flux`, error: `${b}_err` }])), id: 'id' };
  return { gridDir: grid.dir, modelDir, catalog, map, bands, nRows: n, special };
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.csv': 'text/csv',
  '.svg': 'image/svg+xml',
};

/** A static file server on 127.0.0.1 (a free port): URL prefix -> folder. GET and HEAD only. */
export async function serveStatic(routes: Record<string, string>): Promise<{ url: string; close(): Promise<void> }> {
  const prefixes = Object.keys(routes).sort((a, b) => b.length - a.length);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const pathname = decodeURIComponent(url.pathname);
    const prefix = prefixes.find((p) => pathname.startsWith(p));
    let file = prefix !== undefined ? path.join(routes[prefix], pathname.slice(prefix.length)) : '';
    if (file && !path.resolve(file).startsWith(path.resolve(routes[prefix!]))) file = '';
    if (file && existsSync(file) && statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!file || !existsSync(file) || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size, 'cache-control': 'no-store', 'access-control-allow-origin': '*' });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
