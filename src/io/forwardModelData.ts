/**
 * The CPU forward model of a simulation config from FileSources instead of the data directory on
 * disk: what forwardModelForConfig (src/simulate/simulate.ts) reads, for the browser page, where the
 * files come over HTTP or from a picked folder.
 *
 *   grid     a grid build (src/grid/build.ts): manifest.json + lnu.f32 (sha256 checked when the
 *            runtime has SubtleCrypto)
 *   data     a folder laid out as the data directory: filters/<stem>.par, igm/LAFcoeff.txt +
 *            igm/DLAcoeff.txt (igm: inoue14), nebular/inoue11/*.dat (nebular emission)
 *
 * Filter items resolve as resolveFilterSet's (src/grid/filters.ts), minus absolute paths: a set name
 * (e.g. jades14) -> filters/<stem>.par; an item -> filters/<item>, filters/<item>.par, else a path
 * relative to the data folder; `file#selector` picks a FILTER.RES entry. The grid is always the one
 * given (a config's `grid` names a file or a built-in grid the browser cannot read); its name is
 * reported so that a page can say which grid draws the SED. No node: imports of its own.
 */
import { type BuiltGrid, builtGridFromBytes, builtGridToSpsGrid, parseBuiltGridManifest } from '../grid/builtGridFormat.js';
import { DataFileError } from '../grid/errors.js';
import { FILTER_SETS, type FilterCurve, type FilterResEntry, type FilterSetSpec, FilterSetSpecSchema, parseFilterRes, parseTwoColumnFilter, selectFilterRes } from '../grid/filters.js';
import { CpuForwardModel } from '../physics/forwardModel.js';
import { Inoue14, inoue14Coefficients } from '../physics/igm.js';
import { readInoue11Tables } from '../physics/nebular.js';
import type { SimulationConfig } from '../simulate/config.js';
import type { FileSource } from './fileSource.js';

/** sha256 (hex) with SubtleCrypto, or undefined where the runtime has none (insecure browser contexts). */
async function sha256Hex(bytes: Uint8Array): Promise<string | undefined> {
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle;
  if (!subtle) return undefined;
  const d = new Uint8Array(await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A grid build from a FileSource (manifest.json + the binary it names), checked as loadBuiltGrid does. */
export async function loadBuiltGridFrom(src: FileSource, o: { verify?: boolean } = {}): Promise<BuiltGrid> {
  const m = parseBuiltGridManifest(await src.text('manifest.json'), src.where('manifest.json'));
  const bytes = await src.bytes(m.lnu.file);
  if (o.verify !== false) {
    const sha = await sha256Hex(bytes);
    if (sha !== undefined && sha !== m.lnu.sha256) throw new DataFileError(src.where(m.lnu.file), undefined, `sha256 ${sha} != manifest ${m.lnu.sha256} (modified or stale)`);
  }
  return builtGridFromBytes(m, bytes, src.name, src.where(m.lnu.file));
}

/** Filter curves of a filter-set spec from a data folder (see the module comment). */
export async function resolveFilterSetFrom(spec: FilterSetSpec, data: FileSource): Promise<FilterCurve[]> {
  const parsed = FilterSetSpecSchema.safeParse(spec);
  if (!parsed.success) throw new Error(`filter set: expected a set name or a list of filter files, got ${JSON.stringify(spec)}`);
  const items = typeof parsed.data === 'string' ? parsed.data.split(',').map((s) => s.trim()).filter(Boolean) : parsed.data;
  const isSet = (name: string) => Object.hasOwn(FILTER_SETS, name);
  const twoColumn = async (rel: string, name?: string) => parseTwoColumnFilter(await data.text(rel), data.where(rel), name);
  if (items.length === 1 && isSet(items[0])) return Promise.all(FILTER_SETS[items[0]].map((stem) => twoColumn(`filters/${stem}.par`, stem)));
  const res = new Map<string, FilterResEntry[]>();
  const out: FilterCurve[] = [];
  for (const item of items) {
    const hash = item.lastIndexOf('#');
    if (hash > 0) {
      const file = item.slice(0, hash);
      const sel = item.slice(hash + 1);
      if (!sel) throw new Error(`filter "${item}": empty selector after "#"`);
      if (!res.has(file)) res.set(file, parseFilterRes(await data.text(file), data.where(file)));
      out.push(selectFilterRes(res.get(file)!, sel, data.where(file)));
      continue;
    }
    if (isSet(item)) throw new Error(`filter set "${item}" can only be used on its own, not inside a list`);
    const candidates = [`filters/${item}`, `filters/${item}.par`, item];
    let found: string | undefined;
    for (const c of candidates) if (await data.has(c)) {
      found = c;
      break;
    }
    if (!found) throw new Error(`unknown filter "${item}": none of ${candidates.map((c) => data.where(c)).join(', ')} is there`);
    out.push(await twoColumn(found)); // named after the file, as readTwoColumnFilter names it
  }
  return out;
}

/** Inoue et al. 2014 IGM from igm/LAFcoeff.txt and igm/DLAcoeff.txt of a data folder. */
export async function loadInoue14From(data: FileSource): Promise<Inoue14> {
  const laf = 'igm/LAFcoeff.txt';
  const dla = 'igm/DLAcoeff.txt';
  return new Inoue14(inoue14Coefficients(await data.text(laf), data.where(laf), await data.text(dla), data.where(dla)));
}

export interface ForwardModelFromSources {
  model: CpuForwardModel;
  /** The grid build used (its manifest names the grid). */
  grid: BuiltGrid;
}

/** The CPU forward model of a simulation config: the grid from `grid`, filters / IGM / nebular tables from `data`. */
export async function forwardModelFrom(config: SimulationConfig, sources: { grid: FileSource; data: FileSource; verify?: boolean }): Promise<ForwardModelFromSources> {
  const fm = config.forwardModel;
  const grid = await loadBuiltGridFrom(sources.grid, { verify: sources.verify });
  const filters = await resolveFilterSetFrom(config.filters, sources.data);
  const inoue14 = fm.igm === 'inoue14' ? await loadInoue14From(sources.data) : undefined;
  const nebular = fm.nebular.enabled ? await readInoue11Tables((name) => sources.data.text(`nebular/inoue11/${name}`), (name) => sources.data.where(`nebular/inoue11/${name}`)) : undefined;
  return { model: new CpuForwardModel({ grid: builtGridToSpsGrid(grid), filters, inoue14, nebular }, fm), grid };
}
