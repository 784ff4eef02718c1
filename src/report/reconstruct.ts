/**
 * Posterior draws pushed back through the forward model (SED and SFH reconstruction).
 *
 * Given a simulation config (a library's root attribute `config`, the model it was trained on) and
 * theta draws (M x P) of one galaxy:
 *   (a) band fluxes of every draw on the GPU: theta -> canonical rows with the config's ThetaLayout
 *       (src/simulate/theta.ts thetaToCanonical, then f32 as on the GPU) -> GpuSynthesizer;
 *   (b) full spectra of a subset of draws on the CPU forward model (float64,
 *       CpuForwardModel.restFrameSpectrum and observedFnuNJy on the grid's wavelengths), summarised by
 *       the median and the 16 / 84 % quantiles per wavelength;
 *   (c) SFH curves (SFR against lookback time) from the draws' SFH parameters (src/physics/sfh.ts).
 * The CPU paths read the same f32-rounded canonical rows the GPU gets, so all three describe the same
 * galaxies.
 *
 * Units:
 *   wavelengths                 Å (`wavelengthAA`): rest-frame grid wavelengths, or observed = rest x (1 + z)
 *   observed spectra and bands  f_nu in nJy (photon-counting AB convention for bands, as the library)
 *   rest-frame spectra          L_nu in erg s^-1 Hz^-1
 *   SFH                         lookback time in yr, SFR in Msun yr^-1; formed mass in Msun
 *   derived                     SYNTH_DERIVED_COLUMNS (src/simulate/gpuSynth.ts): Msun, yr, -, log10(photons/s), Msun/yr, Msun/yr, yr, Mpc
 *
 * Draws that the forward model rejects (a value outside its range, t25 < t50 < t75 violated, ...) are
 * listed in `invalid` with the reason; their GPU band fluxes are NaN, and they enter no summary.
 */
import type { Gpu } from '../gpu/device.js';
import type { FilterCurve } from '../grid/filters.js';
import type { CpuForwardModel, GalaxyParams } from '../physics/forwardModel.js';
import { type AgeBinConvention, type SfhParams, binSfh, createSfh } from '../physics/sfh.js';
import { CANONICAL_WIDTH, fromCanonicalRow } from '../simulate/canonical.js';
import { type SimulationConfig, configThetaLayout, parseSimulationConfig } from '../simulate/config.js';
import { GpuSynthesizer, SYNTH_DERIVED_COLUMNS, SYNTH_DERIVED_W } from '../simulate/gpuSynth.js';
import { EXTRA_COLUMNS } from '../simulate/gridMatrix.js';
import { type ThetaLayout, thetaToCanonical } from '../simulate/theta.js';

/** Posterior draws of one galaxy. */
export interface ThetaDraws {
  /** M x P row-major (P = columns.length). */
  theta: ArrayLike<number>;
  /** Number of draws M. */
  n: number;
  /**
   * Names of theta's columns (e.g. the model's config.json parameter names). Default: the config's
   * theta columns in order. Columns the config does not know (derived quantities a model also
   * infers) are ignored and listed in `ignoredColumns`.
   */
  columns?: readonly string[];
  /**
   * Values of config theta columns that are not among `columns`, the same for every draw: e.g. the
   * redshift of a model that takes it as known.
   */
  known?: Readonly<Record<string, number>>;
}

export interface InvalidDraw {
  index: number;
  reason: string;
}

/** Per-band median and 16 / 84 % over the valid draws [nJy]. */
export interface BandSummary {
  median: Float64Array;
  p16: Float64Array;
  p84: Float64Array;
}

export interface BandReconstruction extends BandSummary {
  bandNames: string[];
  /** Pivot wavelengths of the bands [Å] (observed frame). */
  pivotAA: Float64Array;
  /** M x nBands [nJy], GPU (f32); NaN for invalid draws. */
  fluxesNJy: Float32Array;
  /** M x SYNTH_DERIVED_W, columns SYNTH_DERIVED_COLUMNS; NaN for invalid draws. */
  derived: Float32Array;
  derivedColumns: readonly string[];
}

export interface SpectrumSummary {
  /** Wavelengths [Å]: rest-frame grid, or observed = rest grid x (1 + redshiftRef). */
  wavelengthAA: Float64Array;
  /** nJy (observed) or erg/s/Hz (rest), per wavelength. */
  median: Float64Array;
  p16: Float64Array;
  p84: Float64Array;
  unit: 'nJy' | 'erg/s/Hz';
  /** nUsed x nWavelengths, only with keepDraws. */
  spectra?: Float64Array;
}

export interface SedReconstruction {
  /** Observed frame f_nu [nJy] on rest grid x (1 + redshiftRef); draws at other redshifts are interpolated onto it. */
  observed: SpectrumSummary;
  /** Rest frame L_nu [erg/s/Hz] on the grid wavelengths. */
  rest: SpectrumSummary;
  /** Redshift of the observed wavelength axis: the median redshift of the draws used. */
  redshiftRef: number;
  /** Whether all draws used share one redshift (then the observed summary needs no interpolation). */
  singleRedshift: boolean;
  /** Indices (into the draws) of the spectra computed. */
  drawIndices: number[];
}

export interface SfhReconstruction {
  /** Lookback times [yr]. */
  lookbackYr: Float64Array;
  /** SFR [Msun/yr] per lookback time: median and 16 / 84 % over the draws used. */
  median: Float64Array;
  p16: Float64Array;
  p84: Float64Array;
  /** Per draw used: formed mass [Msun] and age of the universe at its redshift [yr] (the SFH's start). */
  massFormedMsun: Float64Array;
  ageOfUniverseYr: Float64Array;
  drawIndices: number[];
  /** nUsed x nTimes [Msun/yr], only with keepDraws. */
  sfrMsunPerYr?: Float64Array;
}

export interface SedOptions {
  /** Spectra computed at most (an evenly strided subset of the valid draws); default 100. */
  maxSpectra?: number;
  /** Keep every computed spectrum (SpectrumSummary.spectra). */
  keepDraws?: boolean;
}

export interface SfhOptions {
  /** Lookback times [yr]; default `nTimes` points evenly from 0 to the oldest age of the universe of the draws. */
  lookbackYr?: ArrayLike<number>;
  /** Default 256. */
  nTimes?: number;
  /** Draws used at most (evenly strided subset of the valid ones); default 1000. */
  maxDraws?: number;
  keepDraws?: boolean;
}

export interface ReconstructOptions {
  sed?: SedOptions | false;
  sfh?: SfhOptions | false;
}

export interface GalaxyReconstruction {
  bands: BandReconstruction;
  sed?: SedReconstruction;
  sfh?: SfhReconstruction;
  invalid: InvalidDraw[];
  ignoredColumns: string[];
  nDraws: number;
}

export interface ReconstructorOptions {
  gpu: Gpu;
  /** The simulation config: validated, or as stored (JSON object) in a library's `config` attribute. */
  config: SimulationConfig | unknown;
  dataDir?: string;
  /** A forward model already loaded for this config (else loaded from the data directory, Node only). */
  model?: CpuForwardModel;
  /** Galaxies per GPU chunk; default min(4096, what the device's bindings allow). */
  chunk?: number;
}

/**
 * Pivot wavelength [Å] of a filter: sqrt(∫ T λ dλ / ∫ T / λ dλ), exact for the throughput linear
 * between its samples (T = a + b λ on each segment: ∫ T/λ = a ln(λ1/λ0) + b (λ1 - λ0)).
 */
export function pivotWavelengthAA(f: FilterCurve): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i + 1 < f.wavelengthAA.length; i++) {
    const l0 = f.wavelengthAA[i];
    const l1 = f.wavelengthAA[i + 1];
    const t0 = f.throughput[i];
    const t1 = f.throughput[i + 1];
    const b = (t1 - t0) / (l1 - l0);
    const a = t0 - b * l0;
    num += (a * (l1 * l1 - l0 * l0)) / 2 + (b * (l1 * l1 * l1 - l0 * l0 * l0)) / 3;
    den += a * Math.log(l1 / l0) + b * (l1 - l0);
  }
  return Math.sqrt(num / den);
}

/** Quantile (linear interpolation between order statistics, numpy's default) of sorted values. */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Median and 16 / 84 % of each column of a rows x cols matrix over the given rows (non-finite values skipped). */
export function columnQuantiles(values: ArrayLike<number>, rows: readonly number[], cols: number): BandSummary {
  const median = new Float64Array(cols);
  const p16 = new Float64Array(cols);
  const p84 = new Float64Array(cols);
  const buf = new Float64Array(rows.length);
  for (let c = 0; c < cols; c++) {
    let k = 0;
    for (const r of rows) {
      const v = values[r * cols + c];
      if (Number.isFinite(v)) buf[k++] = v;
    }
    const s = buf.subarray(0, k).sort();
    median[c] = quantileSorted(s, 0.5);
    p16[c] = quantileSorted(s, 0.16);
    p84[c] = quantileSorted(s, 0.84);
  }
  return { median, p16, p84 };
}

/** At most `max` of the indices, evenly strided (deterministic). */
function strided(idx: readonly number[], max: number): number[] {
  if (idx.length <= max) return [...idx];
  return Array.from({ length: max }, (_, k) => idx[Math.floor((k * idx.length) / max)]);
}

/** Linear interpolation of y(x) at xq (x ascending); NaN outside [x0, x_last]. */
function interpAt(x: ArrayLike<number>, y: ArrayLike<number>, xq: number): number {
  const n = x.length;
  if (!(xq >= x[0] && xq <= x[n - 1])) return NaN;
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x[mid] <= xq) lo = mid;
    else hi = mid;
  }
  const t = x[hi] === x[lo] ? 0 : (xq - x[lo]) / (x[hi] - x[lo]);
  return y[lo] + t * (y[hi] - y[lo]);
}

/**
 * Reconstructs SEDs, band fluxes and SFHs from posterior draws for one simulation config; keeps the
 * forward model and the GPU synthesiser (grid resident on the device) between galaxies.
 */
export class PosteriorReconstructor {
  readonly bandNames: string[];
  readonly pivotAA: Float64Array;

  private constructor(
    readonly config: SimulationConfig,
    readonly layout: ThetaLayout,
    readonly model: CpuForwardModel,
    readonly synth: GpuSynthesizer,
  ) {
    this.bandNames = model.bandNames;
    this.pivotAA = Float64Array.from(model.data.filters, pivotWavelengthAA);
  }

  static async create(o: ReconstructorOptions): Promise<PosteriorReconstructor> {
    const config = parseSimulationConfig(o.config, 'simulation config');
    const layout = configThetaLayout(config);
    // simulate.ts reads the data directory (Node): imported only when no forward model is given, so
    // that the browser page, which passes one built from fetched files, never loads it.
    const model = o.model ?? (await (await import('../simulate/simulate.js')).forwardModelForConfig(config, o.dataDir));
    const grid = model.data.grid;
    const limit = Math.min(o.gpu.limits.maxStorageBufferBindingSize, o.gpu.limits.maxBufferSize);
    const perGalaxy = 4 * Math.max(grid.ages.length * grid.metallicities.length, grid.wavelengthAA.length + EXTRA_COLUMNS);
    const chunk = o.chunk ?? Math.max(1, Math.min(4096, Math.floor(limit / perGalaxy)));
    const synth = await GpuSynthesizer.create(o.gpu, model, { sfhFamily: config.sfh, chunk });
    return new PosteriorReconstructor(config, layout, model, synth);
  }

  /** Names of the config's theta columns (what `ThetaDraws.columns` defaults to). */
  get thetaColumns(): string[] {
    return this.layout.columns.map((c) => c.name);
  }

  /**
   * Draws -> canonical rows (M x CANONICAL_WIDTH, f32 as the GPU reads them), plus the theta columns
   * that were ignored. Throws naming a config column that is neither in the draws nor in `known`.
   */
  canonicalRows(d: ThetaDraws): { canon: Float32Array; ignoredColumns: string[] } {
    const names = d.columns ?? this.thetaColumns;
    const P = names.length;
    if (!Number.isInteger(d.n) || d.n < 0) throw new RangeError(`draws: n must be a non-negative integer, got ${d.n}`);
    if (d.theta.length !== d.n * P) throw new RangeError(`draws: theta has ${d.theta.length} values, expected ${d.n} x ${P} columns (${names.join(', ')})`);
    const dup = names.find((c, i) => names.indexOf(c) !== i);
    if (dup) throw new RangeError(`draws: column "${dup}" appears twice`);
    const cols = this.layout.columns;
    const src = cols.map((c) => {
      const j = names.indexOf(c.name);
      if (j >= 0) return { j, value: NaN };
      const v = d.known?.[c.name];
      if (v === undefined) throw new RangeError(`draws: the config's parameter "${c.name}" is neither a theta column (${names.join(', ') || 'none'}) nor given in known`);
      if (!Number.isFinite(v)) throw new RangeError(`draws: known.${c.name} must be finite, got ${v}`);
      return { j: -1, value: v };
    });
    const ignoredColumns = names.filter((n) => !cols.some((c) => c.name === n));
    for (const k of Object.keys(d.known ?? {})) if (!cols.some((c) => c.name === k)) throw new RangeError(`draws: known.${k} is not a theta column of the config (${this.thetaColumns.join(', ')})`);
    const Pc = cols.length;
    const full = new Float64Array(d.n * Pc);
    for (let i = 0; i < d.n; i++) for (let k = 0; k < Pc; k++) full[i * Pc + k] = src[k].j >= 0 ? d.theta[i * P + src[k].j] : src[k].value;
    return { canon: Float32Array.from(thetaToCanonical(this.layout, full, d.n)), ignoredColumns };
  }

  /** Validated galaxy parameters of a canonical row, or the reason the forward model rejects it. */
  private galaxyOf(canon: Float32Array, i: number): GalaxyParams | string {
    const row = canon.subarray(i * CANONICAL_WIDTH, (i + 1) * CANONICAL_WIDTH);
    for (let k = 0; k < CANONICAL_WIDTH; k++) if (!Number.isFinite(row[k])) return `canonical slot ${k} is ${row[k]}`;
    try {
      const p = this.model.parseGalaxy(fromCanonicalRow(row, this.config.sfh));
      createSfh(p.sfh as SfhParams, this.ageOfUniverseYr(p.redshift));
      return p;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private ageOfUniverseYr(z: number): number {
    return this.model.cosmology.ageYr(z > 0 ? z : 0);
  }

  /** The valid galaxies of a set of canonical rows, and the invalid draws with reasons. */
  private validate(canon: Float32Array, n: number): { galaxies: (GalaxyParams | null)[]; valid: number[]; invalid: InvalidDraw[] } {
    const galaxies: (GalaxyParams | null)[] = [];
    const valid: number[] = [];
    const invalid: InvalidDraw[] = [];
    for (let i = 0; i < n; i++) {
      const g = this.galaxyOf(canon, i);
      if (typeof g === 'string') {
        galaxies.push(null);
        invalid.push({ index: i, reason: g });
      } else {
        galaxies.push(g);
        valid.push(i);
      }
    }
    return { galaxies, valid, invalid };
  }

  /** (a) Band fluxes [nJy] and derived quantities of every draw, on the GPU. */
  async bandFluxes(d: ThetaDraws): Promise<BandReconstruction & { invalid: InvalidDraw[]; ignoredColumns: string[] }> {
    const { canon, ignoredColumns } = this.canonicalRows(d);
    const { valid, invalid } = this.validate(canon, d.n);
    return { ...(await this.bandsOf(canon, d.n, valid, invalid)), invalid, ignoredColumns };
  }

  private async bandsOf(canon: Float32Array, n: number, valid: number[], invalid: InvalidDraw[]): Promise<BandReconstruction> {
    const B = this.bandNames.length;
    const res = n > 0 ? await this.synth.synthesize(canon) : { fluxesNJy: new Float32Array(0), derived: new Float32Array(0) };
    for (const { index } of invalid) {
      res.fluxesNJy.fill(NaN, index * B, (index + 1) * B);
      res.derived.fill(NaN, index * SYNTH_DERIVED_W, (index + 1) * SYNTH_DERIVED_W);
    }
    return { bandNames: this.bandNames, pivotAA: this.pivotAA, fluxesNJy: res.fluxesNJy, derived: res.derived, derivedColumns: SYNTH_DERIVED_COLUMNS, ...columnQuantiles(res.fluxesNJy, valid, B) };
  }

  /** (b) Median and 16 / 84 % spectra (observed f_nu and rest L_nu) of a subset of the draws, CPU float64. */
  spectra(d: ThetaDraws, o: SedOptions = {}): SedReconstruction & { invalid: InvalidDraw[] } {
    const { canon } = this.canonicalRows(d);
    const { galaxies, valid, invalid } = this.validate(canon, d.n);
    return { ...this.spectraOf(galaxies, valid, o), invalid };
  }

  private spectraOf(galaxies: (GalaxyParams | null)[], valid: number[], o: SedOptions): SedReconstruction {
    const lam = this.model.data.grid.wavelengthAA;
    const nL = lam.length;
    const used = strided(valid, o.maxSpectra ?? 100);
    const m = used.length;
    const rest = new Float64Array(m * nL);
    const obs = new Float64Array(m * nL);
    const zs = used.map((i) => galaxies[i]!.redshift);
    const zSorted = Float64Array.from(zs).sort();
    const zRef = m ? quantileSorted(zSorted, 0.5) : 0;
    const single = zs.every((z) => z === zs[0]);
    // Exactly one draw's redshift when they all share it; otherwise the median (interpolated).
    const zAxis = single && m ? zs[0] : zRef;
    const scale = zAxis > 0 ? 1 + zAxis : 1;
    const obsLam = Float64Array.from(lam, (l) => l * scale);
    used.forEach((i, k) => {
      const p = galaxies[i]!;
      const { lnu } = this.model.restFrameSpectrum(p);
      rest.set(lnu, k * nL);
      const { fnuNJy } = this.model.observedFnuNJy(p, lnu);
      if (single) obs.set(fnuNJy, k * nL);
      else {
        // This draw's f_nu sits at rest x (1 + z_i): sample it at the common observed wavelengths.
        const s = p.redshift > 0 ? 1 + p.redshift : 1;
        for (let l = 0; l < nL; l++) obs[k * nL + l] = interpAt(lam, fnuNJy, obsLam[l] / s);
      }
    });
    const rows = Array.from({ length: m }, (_, k) => k);
    return {
      observed: { wavelengthAA: obsLam, unit: 'nJy', ...columnQuantiles(obs, rows, nL), ...(o.keepDraws ? { spectra: obs } : {}) },
      rest: { wavelengthAA: Float64Array.from(lam), unit: 'erg/s/Hz', ...columnQuantiles(rest, rows, nL), ...(o.keepDraws ? { spectra: rest } : {}) },
      redshiftRef: zAxis,
      singleRedshift: single,
      drawIndices: used,
    };
  }

  /** (c) SFR against lookback time for the draws' SFHs: median and 16 / 84 % per time. */
  sfh(d: ThetaDraws, o: SfhOptions = {}): SfhReconstruction & { invalid: InvalidDraw[] } {
    const { canon } = this.canonicalRows(d);
    const { galaxies, valid, invalid } = this.validate(canon, d.n);
    return { ...this.sfhOf(galaxies, valid, o), invalid };
  }

  private sfhOf(galaxies: (GalaxyParams | null)[], valid: number[], o: SfhOptions): SfhReconstruction {
    const used = strided(valid, o.maxDraws ?? 1000);
    const m = used.length;
    const ages = this.model.data.grid.ages;
    const conv = this.model.config.ageBinning as AgeBinConvention;
    const tUniv = Float64Array.from(used, (i) => this.ageOfUniverseYr(galaxies[i]!.redshift));
    const mass = Float64Array.from(used, (i) => 10 ** galaxies[i]!.log10MassFormedMsun);
    let t: Float64Array;
    if (o.lookbackYr) t = Float64Array.from(o.lookbackYr);
    else {
      const nT = o.nTimes ?? 256;
      if (!Number.isInteger(nT) || nT < 2) throw new RangeError(`sfh: nTimes must be an integer >= 2, got ${nT}`);
      const tMax = m ? tUniv.reduce((a, b) => Math.max(a, b), 0) : 1e10;
      t = Float64Array.from({ length: nT }, (_, k) => (tMax * k) / (nT - 1));
    }
    const nT = t.length;
    const sfr = new Float64Array(m * nT);
    used.forEach((i, k) => {
      const p = galaxies[i]!;
      const sfh = createSfh(p.sfh as SfhParams, tUniv[k]);
      // The same normalisation as the synthesis: the mass inside the grid's age bins is the formed mass.
      const covered = binSfh(sfh, ages, 1, conv).coveredFraction;
      const norm = covered > 0 ? mass[k] / covered : 0;
      for (let j = 0; j < nT; j++) sfr[k * nT + j] = norm * sfh.sfrPerYr(t[j]);
    });
    const rows = Array.from({ length: m }, (_, k) => k);
    return { lookbackYr: t, ...columnQuantiles(sfr, rows, nT), massFormedMsun: mass, ageOfUniverseYr: tUniv, drawIndices: used, ...(o.keepDraws ? { sfrMsunPerYr: sfr } : {}) };
  }

  /** (a) + (b) + (c) for one galaxy's draws. */
  async reconstruct(d: ThetaDraws, o: ReconstructOptions = {}): Promise<GalaxyReconstruction> {
    const { canon, ignoredColumns } = this.canonicalRows(d);
    const { galaxies, valid, invalid } = this.validate(canon, d.n);
    const bands = await this.bandsOf(canon, d.n, valid, invalid);
    const sed = o.sed === false ? undefined : this.spectraOf(galaxies, valid, o.sed ?? {});
    const sfh = o.sfh === false ? undefined : this.sfhOf(galaxies, valid, o.sfh ?? {});
    return { bands, sed, sfh, invalid, ignoredColumns, nDraws: d.n };
  }

  destroy(): void {
    this.synth.destroy();
  }
}
