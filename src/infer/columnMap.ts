/**
 * Column map of a catalogue fit (YAML or JSON, zod-validated): which catalogue columns hold each
 * model band's flux and error, in which units, and which hold the id and the redshift.
 *
 *   id: ID                      # optional: id column (default: the row number, 0-based)
 *   redshift: z_spec            # a model that takes redshift as a feature needs it
 *   units: uJy                  # optional default units of every flux and error column
 *   negativeFlux: keep          # keep (default: negative fluxes are valid data for asinh
 *                               # magnitudes, as in the simulation) or mask
 *   bands:                      # keys: the model's band names
 *     jwst_f090w: { flux: F090W_FLUX, error: F090W_ERR }
 *     jwst_f115w: { flux: F115W_MAG, error: F115W_MAGERR, units: ABmag }
 *     jwst_f150w: { flux: F150W, error: F150W_E, fluxUnits: nJy, errorUnits: nJy }
 *
 * Units (case-insensitive; µ/μ/u and "micro" accepted): nJy, uJy, mJy, Jy, ABmag (aliases AB, mag,
 * "AB mag"). Units of a column, in order: the band's fluxUnits / errorUnits, the band's units, the
 * global units, the catalogue's own unit of that column (FITS TUNITn) when it is one of these; else
 * an error naming the band and the column.
 *
 * Conversions to nJy (AB zero point 31.4 for nJy): f = 10^(-0.4 (m - 31.4)); a magnitude error
 * sigma_m becomes sigma_f = f ln(10) / 2.5 sigma_m (first order, the usual symmetric conversion; it
 * is the inverse of the error propagation the features use at high S/N). A magnitude that is not
 * finite or outside [-20, 50] (sentinels such as 99 or -99 for non-detections) is missing. An error
 * in magnitudes needs the flux in magnitudes (a magnitude error of a flux near zero means nothing).
 *
 * Checks against the model (resolveColumnMap): a band the model was not trained on is an error
 * naming the model's bands; a model band absent from the map is missing in every row (masked) when
 * the model has mask features, else an error; every column must exist in the catalogue; the redshift
 * column is required when the model takes redshift as a feature (and ignored, with a warning,
 * otherwise).
 */
import { z } from 'zod';
import { AB_ZP_NJY } from '../simulate/empiricalNoise.js';

export const FLUX_UNITS = ['nJy', 'uJy', 'mJy', 'Jy', 'ABmag'] as const;
export type FluxUnit = (typeof FLUX_UNITS)[number];

/** nJy per unit of each linear flux unit. */
const NJY_PER: Record<Exclude<FluxUnit, 'ABmag'>, number> = { nJy: 1, uJy: 1e3, mJy: 1e6, Jy: 1e9 };

/** Magnitudes outside this range are sentinels (99, -99, ...): the band is missing. */
export const MAG_VALID_RANGE = [-20, 50] as const;

/** Normalises a unit name (see the module comment); undefined when it is not one of FLUX_UNITS. */
export function parseUnit(raw: string): FluxUnit | undefined {
  const s = raw.trim().replace(/[µμ]/g, 'u').replace(/\s+/g, '').toLowerCase();
  switch (s) {
    case 'njy':
    case 'nanojy':
    case 'nanojansky':
      return 'nJy';
    case 'ujy':
    case 'microjy':
    case 'microjansky':
      return 'uJy';
    case 'mjy':
    case 'millijy':
    case 'millijansky':
      return 'mJy';
    case 'jy':
    case 'jansky':
      return 'Jy';
    case 'abmag':
    case 'ab':
    case 'mag':
    case 'mag(ab)':
    case 'abmags':
    case 'mags':
      return 'ABmag';
    default:
      return undefined;
  }
}

const unitSchema = (key: string) =>
  z.string({ invalid_type_error: `${key} must be one of ${FLUX_UNITS.join(', ')}` }).transform((v, ctx) => {
    const u = parseUnit(v);
    if (!u) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `unknown unit "${v}" (allowed: ${FLUX_UNITS.join(', ')})` });
      return z.NEVER;
    }
    return u;
  });

const columnName = (key: string) =>
  z.string({ invalid_type_error: `${key} must be a column name`, required_error: `${key} is required (a column name)` }).trim().min(1, { message: `${key} must be a non-empty column name` });

export const BandColumnsSchema = z
  .object({
    flux: columnName('flux'),
    error: columnName('error'),
    units: unitSchema('units').optional(),
    fluxUnits: unitSchema('fluxUnits').optional(),
    errorUnits: unitSchema('errorUnits').optional(),
  })
  .strict();

export const ColumnMapSchema = z
  .object({
    id: columnName('id').optional(),
    redshift: columnName('redshift').optional(),
    units: unitSchema('units').optional(),
    negativeFlux: z.enum(['keep', 'mask'], { errorMap: () => ({ message: "negativeFlux must be 'keep' or 'mask'" }) }).default('keep'),
    bands: z.record(z.string().min(1), BandColumnsSchema).refine((b) => Object.keys(b).length > 0, { message: 'bands must map at least one model band to its columns' }),
  })
  .strict();

export type ColumnMap = z.output<typeof ColumnMapSchema>;
export type ColumnMapInput = z.input<typeof ColumnMapSchema>;

export class ColumnMapError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'ColumnMapError';
  }
}

/** Validates a column map object; errors name every bad key. */
export function parseColumnMap(input: unknown, source = 'column map'): ColumnMap {
  const r = ColumnMapSchema.safeParse(input ?? {});
  if (!r.success) {
    const msgs = r.error.issues.map((i) => {
      const key = i.path.join('.') || '(root)';
      if (i.code === z.ZodIssueCode.unrecognized_keys) return `${key}: unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
      if (i.code === z.ZodIssueCode.invalid_type && i.message === 'Required') return `${key}: is required`;
      return `${key}: ${i.message}`;
    });
    throw new ColumnMapError(source, msgs.join('; '));
  }
  return r.data;
}

/** Parses column-map text (YAML, of which JSON is a subset); `source` names it in errors. */
export async function parseColumnMapText(text: string, source = 'column map'): Promise<ColumnMap> {
  let obj: unknown;
  try {
    const YAML = await import('yaml');
    obj = YAML.parse(text, { uniqueKeys: true });
  } catch (e) {
    throw new ColumnMapError(source, `cannot parse: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseColumnMap(obj, source);
}

/** Reads a YAML / JSON column map file (Node). */
export async function loadColumnMap(file: string): Promise<ColumnMap> {
  // node:fs is imported here, not at the top, so that the browser page can use this module.
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ColumnMapError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let obj: unknown;
  try {
    if (/\.json$/i.test(file)) obj = JSON.parse(text);
    else {
      const YAML = await import('yaml');
      obj = YAML.parse(text, { uniqueKeys: true });
    }
  } catch (e) {
    throw new ColumnMapError(file, `cannot parse: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseColumnMap(obj, file);
}

/** One model band resolved against a catalogue. */
export interface ResolvedBandColumns {
  band: string;
  flux: string;
  error: string;
  fluxUnit: FluxUnit;
  /** 'ABmag' here means an error in magnitudes. */
  errorUnit: FluxUnit;
}

export interface ResolvedColumnMap {
  /** In the model's band order; null = not in the map (missing in every row). */
  bands: (ResolvedBandColumns | null)[];
  bandNames: string[];
  id?: string;
  /** Set only when the model takes redshift as a feature. */
  redshift?: string;
  negativeFlux: 'keep' | 'mask';
  /** Model bands absent from the map. */
  unmapped: string[];
  /** Every catalogue column read, numeric ones and text ones. */
  numericColumns: string[];
  textColumns: string[];
}

export interface CatalogColumnInfo {
  source: string;
  /** Column names for messages. */
  columns: readonly string[];
  hasColumn(ref: string): boolean;
  /** The catalogue's own unit of a column (FITS TUNITn), if any. */
  unitOf(ref: string): string | undefined;
}

/** Checks a column map against the model's bands and a catalogue's columns (see the module comment). */
export function resolveColumnMap(
  map: ColumnMap,
  model: { bands: readonly string[]; hasMask: boolean; needsRedshift: boolean },
  cat: CatalogColumnInfo,
  opts: { source?: string; onWarning?: (m: string) => void } = {},
): ResolvedColumnMap {
  const src = opts.source ?? 'column map';
  const warn = opts.onWarning ?? ((m: string) => console.warn(m));
  const unknown = Object.keys(map.bands).filter((b) => !model.bands.includes(b));
  if (unknown.length) {
    throw new ColumnMapError(src, `band${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not one of the model's bands (the model was trained on ${model.bands.join(', ')})`);
  }
  const unmapped = model.bands.filter((b) => !(b in map.bands));
  if (unmapped.length && !model.hasMask) {
    throw new ColumnMapError(
      src,
      `no columns for band${unmapped.length > 1 ? 's' : ''} ${unmapped.join(', ')}: this model has no mask features (it was trained with every band observed), so every band needs a flux and an error column`,
    );
  }
  const missingCols: string[] = [];
  const need = (ref: string, what: string) => {
    if (!cat.hasColumn(ref)) missingCols.push(`${ref} (${what})`);
  };
  const bands = model.bands.map((band): ResolvedBandColumns | null => {
    const m = map.bands[band];
    if (!m) return null;
    need(m.flux, `flux of ${band}`);
    need(m.error, `error of ${band}`);
    return null;
  });
  if (map.id) need(map.id, 'id');
  let redshift: string | undefined;
  if (model.needsRedshift) {
    if (!map.redshift) throw new ColumnMapError(src, 'this model takes the redshift as a feature: give its column as "redshift: <column>"');
    need(map.redshift, 'redshift');
    redshift = map.redshift;
  } else if (map.redshift) {
    warn(`${src}: the model infers the redshift (it is not a feature); the redshift column "${map.redshift}" is ignored`);
  }
  if (missingCols.length) {
    throw new ColumnMapError(src, `column${missingCols.length > 1 ? 's' : ''} not in ${cat.source}: ${missingCols.join(', ')} (columns: ${cat.columns.join(', ')})`);
  }
  model.bands.forEach((band, b) => {
    const m = map.bands[band];
    if (!m) return;
    const unitFor = (col: string, explicit: FluxUnit | undefined, what: 'flux' | 'error'): FluxUnit => {
      const u = explicit ?? m.units ?? map.units;
      if (u) return u;
      const meta = cat.unitOf(col);
      const parsed = meta !== undefined ? parseUnit(meta) : undefined;
      if (parsed) return parsed;
      throw new ColumnMapError(
        src,
        `band ${band}: no units for the ${what} column "${col}"${meta !== undefined ? ` (its unit in the catalogue, "${meta}", is not one of ${FLUX_UNITS.join(', ')})` : ''}: give units (${FLUX_UNITS.join(', ')}) for the band or globally`,
      );
    };
    const fluxUnit = unitFor(m.flux, m.fluxUnits, 'flux');
    const errorUnit = unitFor(m.error, m.errorUnits, 'error');
    if (errorUnit === 'ABmag' && fluxUnit !== 'ABmag') {
      throw new ColumnMapError(src, `band ${band}: the error column "${m.error}" is in magnitudes but the flux column "${m.flux}" is in ${fluxUnit}; an error in magnitudes needs the flux in ABmag`);
    }
    bands[b] = { band, flux: m.flux, error: m.error, fluxUnit, errorUnit };
  });
  const numeric = new Set<string>();
  for (const r of bands) if (r) numeric.add(r.flux).add(r.error);
  if (redshift) numeric.add(redshift);
  return {
    bands,
    bandNames: [...model.bands],
    id: map.id,
    redshift,
    negativeFlux: map.negativeFlux,
    unmapped,
    numericColumns: [...numeric],
    textColumns: map.id ? [map.id] : [],
  };
}

/** A flux in `unit` -> nJy (NaN for a missing magnitude). */
export function fluxToNJy(v: number, unit: FluxUnit): number {
  if (unit === 'ABmag') {
    if (!Number.isFinite(v) || v < MAG_VALID_RANGE[0] || v > MAG_VALID_RANGE[1]) return NaN;
    return Math.pow(10, -0.4 * (v - AB_ZP_NJY));
  }
  return v * NJY_PER[unit];
}

/** An error in `unit` -> nJy; a magnitude error needs the flux (already in nJy). */
export function errorToNJy(e: number, unit: FluxUnit, fluxNJy: number): number {
  if (unit === 'ABmag') return (fluxNJy * Math.LN10 * e) / 2.5;
  return e * NJY_PER[unit];
}

/** Column names tried for a band's flux, error, the id and the redshift by guessColumnMap (case-insensitive). */
export const GUESSED_COLUMNS = {
  flux: ['{band}', '{band}_flux', 'flux_{band}', '{band}_fnu'],
  error: ['{band}_err', '{band}_error', '{band}_fluxerr', '{band}_flux_err', '{band}_e', 'err_{band}', 'fluxerr_{band}', 'e_{band}'],
  id: ['id', 'object_id', 'objid', 'name'],
  redshift: ['redshift', 'z', 'z_spec', 'zspec', 'z_best'],
} as const;

/**
 * A column map from the catalogue's column names alone, for catalogues that name their columns after
 * the model's bands (e.g. jwst_f200w / jwst_f200w_err, or _flux / _err): GUESSED_COLUMNS, matched
 * case-insensitively, all in `units` (default nJy). Bands without a flux and an error column are left
 * out (masked in every row for a model with mask features; resolveColumnMap says otherwise).
 */
export function guessColumnMap(bands: readonly string[], columns: readonly string[], o: { units?: FluxUnit; needsRedshift?: boolean } = {}): ColumnMapInput {
  const byLower = new Map<string, string>();
  for (const c of columns) if (!byLower.has(c.toLowerCase())) byLower.set(c.toLowerCase(), c);
  const find = (patterns: readonly string[], band = '') => {
    for (const p of patterns) {
      const hit = byLower.get(p.replace('{band}', band).toLowerCase());
      if (hit !== undefined) return hit;
    }
    return undefined;
  };
  const map: ColumnMapInput = { units: o.units ?? 'nJy', bands: {} };
  for (const b of bands) {
    const flux = find(GUESSED_COLUMNS.flux, b);
    const error = find(GUESSED_COLUMNS.error, b);
    if (flux && error) map.bands[b] = { flux, error };
  }
  const id = find(GUESSED_COLUMNS.id);
  if (id) map.id = id;
  const z = o.needsRedshift ? find(GUESSED_COLUMNS.redshift) : undefined;
  if (z) map.redshift = z;
  return map;
}
