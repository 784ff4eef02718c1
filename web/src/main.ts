/**
 * The page's wiring: inputs -> Session (session.ts) -> results table, corner plot and SED. The state
 * is mirrored on `window.synference` and `document.body.dataset.state` (for scripts and the browser
 * test, test/web/page.browser.test.ts): starting | no-webgpu | ready | busy | done | error.
 *
 * The page state is published as PageState (pageState.ts).
 *
 * URL parameters prefill and load: ?model=<url>&grid=<url>&data=<url>&catalog=<url>[&samples=N&seed=S][&fit=1].
 */
import './style.css';
import { guessColumnMap } from '../../src/infer/columnMap.js';
import { FIT_FLAGS, flagNames } from '../../src/infer/fitCore.js';
import { type FileSource, filesSource, urlSource } from '../../src/io/fileSource.js';
import type { PageState } from './pageState.js';
import { DEFAULT_SETTINGS, type FitTable, Session, oneGalaxyCsv } from './session.js';
import { registerBundledShaders } from './shaders.js';

const page: PageState = { state: 'starting' };
window.synference = page;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const setState = (s: PageState['state'], message?: string) => {
  page.state = s;
  page.message = message;
  document.body.dataset.state = s;
};
const status = (id: string, text: string, kind: '' | 'ok' | 'error' = '') => {
  const el = $(id);
  el.textContent = text;
  el.className = `status ${kind}`;
};
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

let session: Session | undefined;
let csvText: { text: string; name: string } | undefined;
let busy = false;

/** Runs a step with the page busy; errors go to the status line `where`. */
async function step<T>(where: string, fn: () => Promise<T>): Promise<T | undefined> {
  if (busy) return undefined;
  busy = true;
  setState('busy');
  updateButtons();
  try {
    const r = await fn();
    setState(session?.table ? 'done' : 'ready');
    return r;
  } catch (e) {
    console.error(e);
    status(where, errorText(e), 'error');
    setState('error', errorText(e));
    return undefined;
  } finally {
    busy = false;
    updateButtons();
  }
}

function updateButtons(): void {
  const ready = !!session && !busy;
  $<HTMLButtonElement>('model-load').disabled = !ready;
  $<HTMLButtonElement>('forward-load').disabled = !ready || !session?.model;
  $<HTMLButtonElement>('fit').disabled = !ready || !session?.model;
}

// ---------------------------------------------------------------------------------------------
// Sources: picked folders or URLs

function pickedSource(inputId: string): FileSource | undefined {
  const files = $<HTMLInputElement>(inputId).files;
  return files && files.length ? filesSource(Array.from(files)) : undefined;
}

function urlOf(inputId: string): FileSource | undefined {
  const v = $<HTMLInputElement>(inputId).value.trim();
  return v ? urlSource(new URL(v, location.href).href) : undefined;
}

// ---------------------------------------------------------------------------------------------
// 1. Model

async function loadModel(src: FileSource): Promise<void> {
  await step('model-status', async () => {
    status('model-status', `Loading ${src.name}…`);
    await session!.loadModel(src);
    const s = session!;
    page.model = { name: s.modelName, parameters: s.parameters, bands: s.bands, needsRedshift: s.needsRedshift };
    const f = s.def!.features;
    status(
      'model-status',
      `${s.parameters.length} parameters (${s.parameters.join(', ')}); ${f.bands.length} bands (${f.bands.join(', ')}); ` +
        `features: ${f.photometry === 'asinhMag' ? 'asinh magnitudes' : 'fluxes'}${f.includeErrors ? ' + errors' : ''}${f.includeMask ? ' + masks' : ''}${f.includeRedshift ? ' + redshift (needs a redshift column)' : ''}.`,
      'ok',
    );
    buildOneGalaxyForm();
    status('forward-status', '');
    if (csvText) await applyCatalog(false);
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Forward model

async function loadForward(): Promise<void> {
  const grid = pickedSource('grid-folder') ?? urlOf('grid-url');
  const data = pickedSource('data-folder') ?? urlOf('data-url');
  if (!grid || !data) {
    status('forward-status', 'Give both the grid build and the data folder (a folder or a URL each).', 'error');
    return;
  }
  await step('forward-status', async () => {
    status('forward-status', `Loading the grid build ${grid.name} and the tables in ${data.name}…`);
    await session!.loadForwardModel(grid, data);
    status('forward-status', `Forward model ready (grid ${session!.gridName}): SEDs are reconstructed on the GPU.`, 'ok');
  });
}

// ---------------------------------------------------------------------------------------------
// 3. Photometry

async function readCatalogFile(file: File): Promise<void> {
  csvText = { text: await file.text(), name: file.name };
  $<HTMLTextAreaElement>('column-map').value = '';
  if (session?.model) await step('catalog-status', () => applyCatalog(true));
  else status('catalog-status', `${file.name} read; load a model to fit it.`);
}

/**
 * Resolves the catalogue against the model with the column map in the text area (useMapText) or a
 * guessed one, which is then shown there for editing.
 */
async function applyCatalog(useMapText: boolean): Promise<void> {
  if (!csvText || !session?.model) return;
  const ta = $<HTMLTextAreaElement>('column-map');
  const warnings: string[] = [];
  const given = useMapText ? ta.value : '';
  const map = await session.setCatalog(csvText.text, csvText.name, given.trim() ? given : undefined, (m) => warnings.push(m));
  if (!given.trim()) ta.value = JSON.stringify(map, null, 2);
  status('catalog-status', `${csvText.name}: ${session.catalog!.nRows} rows.${warnings.length ? ' ' + warnings.join(' ') : ''}`, 'ok');
}

function buildOneGalaxyForm(): void {
  const s = session!;
  const form = $('one-form');
  const rows = s.bands.map((b, k) => `<tr><td>${b}</td><td><input type="text" name="flux" data-k="${k}" size="10"></td><td><input type="text" name="err" data-k="${k}" size="10"></td></tr>`).join('');
  form.innerHTML =
    `<div class="row"><label>Id <input type="text" name="id" value="galaxy" style="flex:0 1 10rem"></label>` +
    `<label>Units <select name="units"><option>nJy</option><option>uJy</option><option>mJy</option><option>Jy</option><option>ABmag</option></select></label>` +
    (s.needsRedshift ? `<label>Redshift <input type="text" name="redshift" size="6" style="flex:0 1 6rem"></label>` : '') +
    `</div><table><thead><tr><th>band</th><th>flux</th><th>error</th></tr></thead><tbody>${rows}</tbody></table>` +
    `<p class="hint">Leave a band empty to mask it (models trained with masks). Errors in magnitudes with ABmag.</p>`;
}

/** The one-galaxy form as a one-row catalogue (the same path as a CSV). */
async function applyOneGalaxy(): Promise<void> {
  const s = session!;
  const form = $<HTMLFormElement>('one-form');
  const val = (sel: string) => (form.querySelector(sel) as HTMLInputElement | null)?.value ?? '';
  const flux = s.bands.map((_, k) => val(`input[name=flux][data-k="${k}"]`));
  const err = s.bands.map((_, k) => val(`input[name=err][data-k="${k}"]`));
  const z = s.needsRedshift ? val('input[name=redshift]') : undefined;
  const text = oneGalaxyCsv(s.bands, val('input[name=id]'), flux, err, z);
  const units = (form.querySelector('select[name=units]') as HTMLSelectElement).value as 'nJy';
  const columns = text.split('\n')[0].split(',');
  await s.setCatalog(text, 'the form', guessColumnMap(s.bands, columns, { units, needsRedshift: s.needsRedshift }));
}

let activeTab: 'csv' | 'one' = 'csv';

async function fit(): Promise<void> {
  await step('fit-status', async () => {
    const s = session!;
    if (activeTab === 'one') await applyOneGalaxy();
    else {
      if (!csvText) throw new Error('drop or choose a CSV catalogue first');
      await applyCatalog(true);
    }
    const settings = { ...DEFAULT_SETTINGS, samples: Number($<HTMLInputElement>('samples').value), seed: Number($<HTMLInputElement>('seed').value) };
    status('fit-status', `Fitting ${s.catalog!.nRows} galaxies (${settings.samples} samples each)…`);
    const t = await s.fit(settings, (p) =>
      status('fit-status', `Fitted ${p.rowsDone} of ${p.rowsTotal} galaxies in ${p.seconds.toFixed(1)} s (${(p.rowsDone / Math.max(p.seconds, 1e-9)).toFixed(1)} galaxies/s)…`),
    );
    const fitted = t.flags.filter((f) => !(f & FIT_FLAGS.NOT_FITTED)).length;
    status('fit-status', `Fitted ${t.nRows} galaxies (${fitted} with a posterior) in ${t.seconds.toFixed(2)} s: ${t.galaxiesPerSecond.toFixed(1)} galaxies/s on ${s.adapterName}.`, 'ok');
    publishResult(t);
    renderTable(t);
    const first = Array.from(t.flags).findIndex((f) => !(f & FIT_FLAGS.NOT_FITTED));
    if (first >= 0) await showGalaxy(first);
  });
}

function publishResult(t: FitTable): void {
  const P = t.parameters.length;
  const col = (k: number) => Array.from({ length: t.nRows }, (_, i) => Array.from({ length: P }, (_, p) => t.summary[i * t.S + 3 * p + k]));
  page.result = {
    parameters: t.parameters,
    ids: t.ids,
    flags: Array.from(t.flags),
    median: col(0),
    p16: col(1),
    p84: col(2),
    acceptance: Array.from({ length: t.nRows }, (_, i) => t.summary[i * t.S + 3 * P + 2]),
    seconds: t.seconds,
    galaxiesPerSecond: t.galaxiesPerSecond,
    samples: t.settings.samples,
    seed: t.settings.seed,
  };
  const a = $<HTMLAnchorElement>('download');
  if (a.href.startsWith('blob:')) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(new Blob([session!.summaryCsv()], { type: 'text/csv' }));
}

const fmt = (v: number) => (Number.isFinite(v) ? (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toPrecision(4)) : '—');

function renderTable(t: FitTable): void {
  const P = t.parameters.length;
  const head =
    '<tr><th>#</th><th class="id">id</th>' +
    t.parameters.map((p, k) => `<th>${p}${t.units[k] ? ` <span class="unit">[${t.units[k]}]</span>` : ''}</th>`).join('') +
    '<th>acceptance</th><th class="flags">flags</th></tr>';
  const body: string[] = [];
  for (let i = 0; i < t.nRows; i++) {
    const s = t.summary.subarray(i * t.S, (i + 1) * t.S);
    const cells = Array.from({ length: P }, (_, p) =>
      Number.isFinite(s[3 * p]) ? `<td title="16 %: ${s[3 * p + 1]}, median: ${s[3 * p]}, 84 %: ${s[3 * p + 2]}">${fmt(s[3 * p])} <span class="unit">[${fmt(s[3 * p + 1])}, ${fmt(s[3 * p + 2])}]</span></td>` : '<td>—</td>',
    ).join('');
    const fl = t.flags[i];
    const masked = t.masked[i] ? t.masked[i].split(';') : [];
    const names = flagNames(fl).join(', ') + (masked.length ? ` (${masked.length} band${masked.length > 1 ? 's' : ''})` : '');
    const title = masked.length ? ` title="masked: ${escapeHtml(masked.join(', '))}"` : '';
    body.push(`<tr data-row="${i}" class="${fl & FIT_FLAGS.NOT_FITTED ? 'not-fitted' : ''}"><td>${i}</td><td class="id">${escapeHtml(t.ids[i])}</td>${cells}<td>${fmt(s[3 * P + 2])}</td><td class="flags"${title}>${names}</td></tr>`);
  }
  $('results').innerHTML = `<thead>${head}</thead><tbody>${body.join('')}</tbody>`;
  $('results-section').hidden = false;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

async function showGalaxy(row: number): Promise<void> {
  const s = session!;
  const t = s.table!;
  if (t.flags[row] & FIT_FLAGS.NOT_FITTED) return;
  document.querySelectorAll('#results tr.selected').forEach((tr) => tr.classList.remove('selected'));
  document.querySelector(`#results tr[data-row="${row}"]`)?.classList.add('selected');
  $('galaxy-section').hidden = false;
  $('galaxy-title').textContent = `Galaxy ${t.ids[row]} (row ${row})`;
  $('corner').innerHTML = '';
  $('sed').innerHTML = '';
  status('galaxy-status', 'Drawing the posterior…');
  let t0 = performance.now();
  const lap = () => {
    const t = performance.now();
    const s = (t - t0) / 1000;
    t0 = t;
    return s;
  };
  const g = await s.galaxy(row);
  page.galaxy = { row, id: g.id, corner: false, sed: false, seconds: { draws: lap() } };
  $('corner').innerHTML = await s.cornerSvg(g);
  page.galaxy.corner = true;
  page.galaxy.seconds.corner = lap();
  if (!s.hasForwardModel) {
    status('galaxy-status', 'Load the forward model (section 2) to see the reconstructed SED.');
    page.galaxy.sed = 'no forward model';
    return;
  }
  status('galaxy-status', 'Reconstructing the SED on the GPU…');
  try {
    const r = await s.sedSvg(g);
    $('sed').innerHTML = r.svg;
    page.galaxy.sed = true;
    page.galaxy.seconds.sed = lap();
    status('galaxy-status', `SED: model band fluxes of ${r.draws} posterior draws, spectra of ${r.used}${r.invalid ? `; ${r.invalid} draws the forward model rejects are left out` : ''}. Points: the photometry with 1σ errors; band: 16–84 % of the draws.`, 'ok');
  } catch (e) {
    page.galaxy.sed = errorText(e);
    status('galaxy-status', errorText(e), 'error');
  }
}

// ---------------------------------------------------------------------------------------------
// Start

function wire(): void {
  $('model-folder').addEventListener('change', () => {
    const src = pickedSource('model-folder');
    if (src) void loadModel(src);
  });
  $('model-load').addEventListener('click', () => {
    const src = urlOf('model-url') ?? pickedSource('model-folder');
    if (src) void loadModel(src);
    else status('model-status', 'Pick the model folder or give its URL.', 'error');
  });
  $('forward-load').addEventListener('click', () => void loadForward());
  $('catalog-file').addEventListener('change', () => {
    const f = $<HTMLInputElement>('catalog-file').files?.[0];
    if (f) void readCatalogFile(f);
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files?.[0];
    if (f) void readCatalogFile(f);
  });
  document.querySelectorAll<HTMLButtonElement>('.tabs button').forEach((b) =>
    b.addEventListener('click', () => {
      activeTab = b.dataset.tab as 'csv' | 'one';
      document.querySelectorAll('.tabs button').forEach((x) => x.classList.toggle('active', x === b));
      $('tab-csv').hidden = activeTab !== 'csv';
      $('tab-one').hidden = activeTab !== 'one';
    }),
  );
  $('fit').addEventListener('click', () => void fit());
  $('results').addEventListener('click', (e) => {
    const tr = (e.target as HTMLElement).closest('tr[data-row]') as HTMLElement | null;
    if (tr && !busy) void step('galaxy-status', () => showGalaxy(Number(tr.dataset.row)));
  });
}

async function fromQuery(): Promise<void> {
  const q = new URLSearchParams(location.search);
  for (const [k, id] of [['model', 'model-url'], ['grid', 'grid-url'], ['data', 'data-url']] as const) {
    const v = q.get(k);
    if (v) $<HTMLInputElement>(id).value = v;
  }
  if (q.get('samples')) $<HTMLInputElement>('samples').value = q.get('samples')!;
  if (q.get('seed')) $<HTMLInputElement>('seed').value = q.get('seed')!;
  const model = urlOf('model-url');
  if (model) await loadModel(model);
  if (session?.model && q.get('grid') && q.get('data')) await loadForward();
  const cat = q.get('catalog');
  if (cat) {
    const url = new URL(cat, location.href);
    const r = await fetch(url);
    if (!r.ok) status('catalog-status', `${url.href}: HTTP ${r.status}`, 'error');
    else await readCatalogFile(new File([await r.text()], url.pathname.split('/').pop() || 'catalog.csv'));
  }
  if (q.get('fit') === '1' && session?.model) await fit();
}

async function start(): Promise<void> {
  wire();
  updateButtons();
  if (!('gpu' in navigator) || !navigator.gpu) {
    status(
      'gpu-status',
      'This browser has no WebGPU (navigator.gpu is missing), so the page cannot compute posteriors here. Use a browser with WebGPU ' +
        '(Chrome or Edge 113+, Firefox 141+, Safari 26+) in a secure context (https or localhost); on Linux, Chrome may need ' +
        '--enable-unsafe-webgpu --enable-features=Vulkan.',
      'error',
    );
    setState('no-webgpu', 'navigator.gpu is missing');
    return;
  }
  const n = registerBundledShaders();
  try {
    session = await Session.create();
  } catch (e) {
    status('gpu-status', `WebGPU is there but no GPU device could be created: ${errorText(e)}`, 'error');
    setState('no-webgpu', errorText(e));
    return;
  }
  page.adapter = session.adapterName;
  status('gpu-status', `WebGPU adapter: ${session.adapterName} (${n} shaders bundled). Everything below runs on it.`, 'ok');
  setState('ready');
  updateButtons();
  await fromQuery();
}

void start();
