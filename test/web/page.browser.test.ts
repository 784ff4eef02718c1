/**
 * The browser page (web/) in headless Chromium with WebGPU on SwiftShader: it loads a model, the grid
 * build and the data folder by URL, fits a small catalogue dropped in as a CSV file, and its posterior
 * quantiles equal those of `synference fit` (fitCatalog, default engine) in Node on the same model,
 * seed and input.
 * Also: the corner plot and the reconstructed SED are drawn, a screenshot goes to
 * out/web-test/screenshot.png, galaxies/s is printed, and without WebGPU the page says so.
 *
 * Needs Debian's chromium (apt-get install chromium; .ci/run installs it) at /usr/bin/chromium or
 * SYNFERENCE_CHROMIUM. Without it the test fails; SYNFERENCE_SKIP_BROWSER=1 skips it explicitly.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { type Browser, chromium } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Gpu, createGpu, deviceOptionsFromEnv } from '../../src/gpu/device.js';
import { FIT_FLAGS, fitCatalog } from '../../src/infer/fit.js';
import { resolveDataDir } from '../../src/io/paths.js';
import type { PageState } from '../../web/src/pageState.js';
import { type WebFixture, buildWebFixture, serveStatic } from './fixture.js';

const CHROMIUM = process.env.SYNFERENCE_CHROMIUM || '/usr/bin/chromium';
const SKIP = process.env.SYNFERENCE_SKIP_BROWSER === '1';
/** Flags that give headless Chromium a WebGPU adapter without a GPU (SwiftShader's Vulkan); Playwright adds a fresh --user-data-dir. */
const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-webgpu-adapter=swiftshader',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const SCREENSHOT = path.resolve(import.meta.dirname, '..', '..', 'out', 'web-test', 'screenshot.png');

const SAMPLES = 500;
const SEED = 7;

const dir = mkdtempSync(path.join(tmpdir(), 'web-test-'));
let fx: WebFixture;
let browser: Browser | undefined;
let server: { url: string; close(): Promise<void> } | undefined;
let gpu: Gpu | undefined;
type Summary = Record<string, string>[];
let node: Summary;
let page: PageState;
let oneGalaxy: NonNullable<PageState['result']>;
let mapShown = '';

const readSummary = (file: string): Summary => parse(readFileSync(file, 'utf8'), { columns: true });
const num = (s: string) => (s === 'nan' ? NaN : Number(s));

describe.skipIf(SKIP)('web page in headless Chromium (WebGPU on SwiftShader)', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium; .ci/run does), set SYNFERENCE_CHROMIUM, or set SYNFERENCE_SKIP_BROWSER=1 to skip the browser test`);
    }
    const t0 = performance.now();
    const lap = (what: string) => console.log(`web test: ${what} at ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // The page's static build, while the GPU simulates the fixture.
    const site = path.join(dir, 'site');
    const built = build({ configFile: path.resolve(import.meta.dirname, '..', '..', 'web', 'vite.config.ts'), logLevel: 'warn', build: { outDir: site, emptyOutDir: true } });
    gpu = await createGpu(deviceOptionsFromEnv());
    fx = await buildWebFixture(path.join(dir, 'files'), gpu, { nTrain: 1200, nCat: 30, epochs: 8, seed: 11 });
    gpu.destroy(); // lavapipe's threads are Chromium's from here on
    lap('fixture');
    await built;
    lap('vite build');
    // `synference fit` in Node on the same model, seed and catalogue, with its default engine (the
    // float64 CPU reference; test/infer/fit.test.ts shows the GPU engine gives the same to f32).
    const c = await fitCatalog({ model: fx.modelDir, catalog: fx.catalog, map: fx.map, out: path.join(dir, 'fit'), samples: SAMPLES, seed: SEED, saveSamples: false, onWarning: () => {} });
    node = readSummary(c.files.summaryCsv);
    lap(`node fit (${c.galaxiesPerSecond.toFixed(1)} galaxies/s)`);

    server = await serveStatic({ '/files/data/': resolveDataDir(), '/files/': path.join(dir, 'files'), '/': site });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    const tab = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const logs: string[] = [];
    tab.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    tab.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    const waitState = async (states: string[], timeout: number) => {
      try {
        await tab.waitForFunction((s) => s.includes(document.body.dataset.state ?? ''), states, { timeout, polling: 100 });
      } catch (e) {
        throw new Error(`page state ${await tab.evaluate(() => JSON.stringify(window.synference))} (waited for ${states.join('|')}): ${(e as Error).message}\n${logs.join('\n')}`);
      }
      const s = await tab.evaluate(() => window.synference);
      if (s.state === 'error') throw new Error(`the page reports an error: ${s.message}\n${logs.join('\n')}`);
    };
    /** Clicks and waits until the page settles (the marker 'acting' is replaced as soon as the page changes state). */
    const act = async (selector: string, timeout: number) => {
      await tab.evaluate(() => (document.body.dataset.state = 'acting'));
      await tab.click(selector);
      await waitState(['ready', 'done', 'error'], timeout);
    };
    await tab.goto(server.url + '/');
    await waitState(['ready', 'no-webgpu', 'error'], 30_000);
    expect(await tab.evaluate(() => window.synference.state), `no WebGPU in Chromium: ${await tab.textContent('#gpu-status')}`).toBe('ready');
    await tab.fill('#model-url', '/files/model/');
    await act('#model-load', 30_000);
    // One galaxy typed into the form: catalogue row 0 (the same numbers as text), fitted alone.
    const [head, row0] = readFileSync(fx.catalog, 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(','));
    await tab.click('.tabs button[data-tab="one"]');
    await tab.fill('#one-form input[name=id]', row0[0]);
    for (const [k, b] of fx.bands.entries()) {
      await tab.fill(`#one-form input[name=flux][data-k="${k}"]`, row0[head.indexOf(`${b}_flux`)]);
      await tab.fill(`#one-form input[name=err][data-k="${k}"]`, row0[head.indexOf(`${b}_err`)]);
    }
    await tab.fill('#samples', String(SAMPLES));
    await tab.fill('#seed', String(SEED));
    await act('#fit', 60_000);
    oneGalaxy = (await tab.evaluate(() => window.synference.result))!;
    await tab.click('.tabs button[data-tab="csv"]');
    await tab.fill('#grid-url', '/files/bc03/');
    await tab.fill('#data-url', '/files/data/');
    await act('#forward-load', 60_000);
    await tab.setInputFiles('#catalog-file', fx.catalog);
    await tab.waitForFunction(() => (document.getElementById('column-map') as HTMLTextAreaElement).value !== '', undefined, { timeout: 10_000 });
    mapShown = await tab.inputValue('#column-map');
    await tab.fill('#samples', String(SAMPLES));
    await tab.fill('#seed', String(SEED));
    lap('page loaded');
    await act('#fit', 240_000);
    lap('page fit');
    page = await tab.evaluate(() => window.synference);
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await tab.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(
      `web test: the page fitted ${fx.nRows} galaxies (${SAMPLES} samples each) at ${page.result!.galaxiesPerSecond.toFixed(2)} galaxies/s ` +
        `(${page.result!.seconds.toFixed(2)} s) in headless Chromium on ${page.adapter}; galaxy detail ${JSON.stringify(page.galaxy?.seconds)}; screenshot: ${SCREENSHOT}`,
    );
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    gpu?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('guesses the column map the Node fit was given', () => {
    expect(JSON.parse(mapShown)).toEqual(fx.map);
  });

  it('gives the same flags as synference fit, and the special rows are flagged', () => {
    const r = page.result!;
    expect(r.ids).toEqual(node.map((x) => x.id));
    expect(r.flags).toEqual(node.map((x) => Number(x.flags)));
    const s = fx.special;
    expect(r.flags[s.nanFlux] & FIT_FLAGS.MASKED_BANDS).toBeTruthy();
    expect(r.flags[s.emptyError] & FIT_FLAGS.MASKED_BANDS).toBeTruthy();
    expect(r.flags[s.noPhotometry] & FIT_FLAGS.NOT_FITTED).toBeTruthy();
    expect(r.flags[s.negativeFlux] & FIT_FLAGS.NEGATIVE_FLUX).toBeTruthy();
    expect(r.median[s.noPhotometry].every((v) => v === null || Number.isNaN(v))).toBe(true);
  });

  it('posterior quantiles equal those of synference fit to f32 precision', () => {
    // Same draws on both sides: the base normals come from the same Philox words (seed, global row,
    // draw); the flow then runs in f32 on SwiftShader here and in float64 in Node (the GPU engine on
    // lavapipe agrees with float64 to ~1e-6). The Box-Muller cos is a fixed polynomial
    // (philox_cos_pi), not WGSL's cos(): SwiftShader's is only ~2e-4 accurate (WGSL allows 2^-11),
    // which used to move quantiles by up to 3e-4 of the posterior width w = p84 - p16. What is left
    // is f32 rounding through the flow, ~1e-6 relative.
    //   Rows that accepted the same number of draws: |page - node| <= 2e-5 w (seen: <= 1.2e-6 w,
    //   median 1.3e-7 w).
    // A draw close to a prior bound can land inside the bounds on one side and outside on the other;
    // the M accepted samples then differ by a draw or two, and a quantile moves by up to a few gaps
    // between order statistics, ~w / (0.48 M) each for a near-Gaussian posterior:
    //   rows whose acceptance differs: |page - node| <= 4 w / (0.48 M) (seen: ~1.5 gaps), and such
    //   rows are rare (at most 1 in 5).
    const r = page.result!;
    const gap = 1 / (0.48 * SAMPLES);
    let worstSame = 0;
    let worstFlip = 0;
    let flips = 0;
    let fitted = 0;
    const rel: number[] = [];
    for (let i = 0; i < r.ids.length; i++) {
      const acceptance = num(node[i].acceptance);
      if (Number.isNaN(acceptance)) continue;
      fitted++;
      const flip = Math.abs(r.acceptance[i] - acceptance) > 1e-12;
      if (flip) flips++;
      r.parameters.forEach((p, k) => {
        const w = num(node[i][`${p}_p84`]) - num(node[i][`${p}_p16`]);
        for (const [q, col] of [[r.median, `${p}_median`], [r.p16, `${p}_p16`], [r.p84, `${p}_p84`]] as const) {
          const d = Math.abs((q[i][k] ?? NaN) - num(node[i][col])) / w;
          expect(d, `row ${i} ${col}: page ${q[i][k]}, node ${node[i][col]}`).not.toBeNaN();
          if (flip) worstFlip = Math.max(worstFlip, d);
          else {
            worstSame = Math.max(worstSame, d);
            rel.push(d);
          }
        }
      });
    }
    rel.sort((a, b) => a - b);
    console.log(
      `web test: |page - node| of the quantiles, in units of the posterior width w = p84 - p16: worst ${worstSame.toExponential(1)} w ` +
        `(median ${rel[rel.length >> 1].toExponential(1)} w) over ${fitted - flips} rows; ${flips} row(s) with a draw across a prior bound: ` +
        `worst ${(worstFlip / gap).toFixed(2)} order-statistic gaps`,
    );
    expect(worstSame).toBeLessThan(2e-5);
    expect(rel[rel.length >> 1]).toBeLessThan(2e-6);
    expect(worstFlip / gap).toBeLessThan(4);
    expect(flips).toBeLessThanOrEqual(Math.ceil(fitted / 5));
  });

  it('a galaxy typed into the form gets the posterior of the same catalogue row (row 0: the same draws)', () => {
    const r = page.result!;
    expect(oneGalaxy.ids).toEqual([r.ids[0]]);
    expect(oneGalaxy.flags).toEqual([r.flags[0]]);
    expect(oneGalaxy.median[0]).toEqual(r.median[0]);
    expect(oneGalaxy.p16[0]).toEqual(r.p16[0]);
    expect(oneGalaxy.p84[0]).toEqual(r.p84[0]);
  });

  it('draws the corner plot and the reconstructed SED, and the screenshot exists', () => {
    expect(page.galaxy?.corner).toBe(true);
    expect(page.galaxy?.sed).toBe(true);
    expect(existsSync(SCREENSHOT)).toBe(true);
  });

  it('says so clearly when the browser has no WebGPU', async () => {
    const ctx = await browser!.newContext();
    await ctx.addInitScript(() => {
      delete (Navigator.prototype as { gpu?: unknown }).gpu;
    });
    const tab = await ctx.newPage();
    await tab.goto(server!.url + '/');
    await tab.waitForFunction(() => document.body.dataset.state !== 'starting', undefined, { timeout: 20_000 });
    expect(await tab.evaluate(() => window.synference.state)).toBe('no-webgpu');
    expect(await tab.textContent('#gpu-status')).toMatch(/no WebGPU/);
    await ctx.close();
  });
});
