/**
 * Photometry synthesis on the GPU for batches of galaxies given as canonical rows
 * (src/simulate/canonical.ts). Per chunk of galaxies, all on the device:
 *   cosmology   canonical -> aux (age of the universe, d_L)          kernels/synth/cosmology.ts
 *   weights     canonical + aux -> W (N x A*nZ) mass per (age, Z)    kernels/synth/weights.ts
 *   GEMM        spectra = W . G (augmented grid, src/simulate/gridMatrix.ts)    kernels/gemm.ts
 *   observe     spectra -> nebular, dust, IGM, redshift, band fluxes kernels/synth/observe.ts
 * The grid, filter and dust tables are uploaded once and stay resident.
 *
 * Metallicity pairs (the default where it applies): a galaxy with one metallicity weighs only the
 * two grid metallicities around it, so 5/7 of a BC03 GEMM multiplies zeros. The chunk's canonical
 * rows are grouped on the host by that lower node (groups padded to 64 rows, so every group starts
 * on a 256-byte boundary of each buffer), the weights kernel writes N x 2A weights per group, and
 * one GEMM per group multiplies them with that pair of grid metallicities (K = 2A instead of A*nZ);
 * the fluxes are put back in the caller's row order. Not used with Charlot & Fall's young/old
 * split, metallicity distributions (log-normal spread) or host weights: those take the full GEMM.
 */
import { encodeGemm } from '../../kernels/gemm.js';
import { cosmologyTableData, encodeCosmology } from '../../kernels/synth/cosmology.js';
import { type ObserveTables, buildObserveTables, encodeObserve } from '../../kernels/synth/observe.js';
import { encodeSynthWeights, fallbackAgeIndex, packAgeEdges, packMetallicityTable, synthWeightColumns } from '../../kernels/synth/weights.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../gpu/buffers.js';
import type { Gpu } from '../gpu/device.js';
import { ComputeBatch } from '../gpu/kernel.js';
import { GpuTimer } from '../gpu/timer.js';
import type { CosmologyTableArrays } from '../physics/cosmology.js';
import type { CpuForwardModel } from '../physics/forwardModel.js';
import { nebularBaseTemplates } from '../physics/nebular.js';
import { type AgeBinConvention, type SfhFamily, ageBinEdgesYr, averageSfrMsunPerYr } from '../physics/sfh.js';
import { CANONICAL, CANONICAL_WIDTH, fromCanonicalRow } from './canonical.js';
import { EXTRA_COLUMNS, augmentedGridMatrix } from './gridMatrix.js';

/** The stages of a synthesis, as profileOnDevice reports them. */
export type SynthStage = 'cosmology' | 'weights' | 'gemm' | 'observe';

/** Derived quantities per galaxy, in this column order. */
export const SYNTH_DERIVED_COLUMNS = [
  'surviving_mass_msun',
  'mass_weighted_age_yr',
  'uv_beta',
  'log10_qh_photons_s',
  'sfr10_msun_yr',
  'sfr100_msun_yr',
  'age_universe_yr',
  'luminosity_distance_mpc',
] as const;
export const SYNTH_DERIVED_W = SYNTH_DERIVED_COLUMNS.length;

export interface SynthResult {
  /** N x nBands [nJy]. */
  fluxesNJy: Float32Array;
  /** N x SYNTH_DERIVED_W (see SYNTH_DERIVED_COLUMNS). */
  derived: Float32Array;
}

/**
 * Produces the weight matrices of a chunk: the GPU kernel (kernels/synth/weights.ts, default) or the
 * float64 reference on the host (for tests and comparisons).
 */
export interface WeightsStep {
  /** True when run() needs the canonical rows on the host. */
  readonly onHost: boolean;
  run(ctx: { batch: ComputeBatch; canon: GPUBuffer; aux: GPUBuffer; n: number; canonHost?: Float32Array }): Promise<{
    wOld: GPUBuffer;
    wYoung?: GPUBuffer;
    /** N x 4: sfr10, sfr100, covered fraction, unused. */
    sfh: GPUBuffer;
    release(): void;
  }>;
  /** GPU only: the two-metallicity weights (N x 2A) of rows [offset, offset + n), all between nodes zLo, zLo + 1. */
  encodePair?(ctx: { batch: ComputeBatch; canon: GPUBuffer; aux: GPUBuffer; wPair: GPUBuffer; sfh: GPUBuffer; offset: number; n: number; zLo: number }): void;
  destroy(): void;
}

/** Rows per metallicity group are padded to this, so each group's buffer ranges start 256-byte aligned. */
export const PAIR_ALIGN = 64;

/** How a chunk is grouped by lower metallicity node: padded slot -> caller row. */
export interface PairPlan {
  /** Padded row count. */
  rows: number;
  /** Per group: lower node, first padded row, padded row count. */
  groups: { zLo: number; start: number; rows: number }[];
  /** source[p] = caller row of padded row p (padding repeats a row of its group; its output is dropped). */
  source: Int32Array;
  /** keep[p] = 1 when padded row p is a real row. */
  keep: Uint8Array;
}

/**
 * Groups galaxies by the grid metallicity node below their single metallicity (f32 values, as the
 * kernel compares them); null when a galaxy has a metallicity spread (then every node may count).
 */
export function planMetallicityPairs(canon: Float32Array, n: number, zTable: Float32Array, nZ: number, interp: 'log10Z' | 'linearZ'): PairPlan | null {
  const lo = new Int32Array(n);
  const counts = new Int32Array(nZ - 1);
  const col = interp === 'log10Z' ? 0 : 1;
  for (let i = 0; i < n; i++) {
    if (canon[i * CANONICAL_WIDTH + CANONICAL.log10ZSigmaDex] !== 0) return null;
    const l = canon[i * CANONICAL_WIDTH + CANONICAL.log10Z];
    const v = interp === 'log10Z' ? l : Math.fround(10 ** l);
    let j = 0;
    for (let k = 1; k < nZ - 1; k++) if (zTable[4 * k + col] <= v) j = k;
    lo[i] = j;
    counts[j]++;
  }
  const groups: PairPlan['groups'] = [];
  let rows = 0;
  for (let j = 0; j < nZ - 1; j++) {
    if (!counts[j]) continue;
    const padded = Math.ceil(counts[j] / PAIR_ALIGN) * PAIR_ALIGN;
    groups.push({ zLo: j, start: rows, rows: padded });
    rows += padded;
  }
  const source = new Int32Array(rows);
  const keep = new Uint8Array(rows);
  const next = new Int32Array(nZ - 1);
  for (const g of groups) next[g.zLo] = g.start;
  for (let i = 0; i < n; i++) {
    source[next[lo[i]]] = i;
    keep[next[lo[i]]++] = 1;
  }
  for (const g of groups) for (let p = next[g.zLo]; p < g.start + g.rows; p++) source[p] = source[g.start];
  return { rows, groups, source, keep };
}

export interface GpuSynthOptions {
  sfhFamily: SfhFamily;
  /** Galaxies per chunk; default: as many as the device's binding limits allow, at most 65536. */
  chunk?: number;
  /** 'gpu' (default) or 'host' (the float64 reference, uploaded per chunk). */
  weights?: 'gpu' | 'host';
  /** Group galaxies by metallicity pair where the model allows it (default true); false: always the full GEMM. */
  pairZ?: boolean;
}

export class GpuSynthesizer {
  readonly nBands: number;
  readonly chunk: number;
  private readonly specW: number;
  private readonly cellsOld: number;
  private readonly cellsYoung: number;
  private readonly buffers: GPUBuffer[] = [];
  /** Rows the scratch buffers hold: the chunk plus the metallicity groups' padding. */
  private readonly capacity: number;

  private constructor(
    readonly gpu: Gpu,
    readonly model: CpuForwardModel,
    readonly options: GpuSynthOptions,
    private readonly tables: ObserveTables,
    private readonly gOld: GPUBuffer,
    private readonly gYoung: GPUBuffer | null,
    private readonly tableBuf: GPUBuffer,
    private readonly bandBuf: GPUBuffer,
    private readonly cosmoBuf: GPUBuffer,
    private readonly cosmoArrays: CosmologyTableArrays,
    private readonly weights: WeightsStep,
    readonly nYoungAges: number,
    /** Per lower metallicity node j: the grid rows (a, t) = G[a, j + t] (2A x specW); null: no pair path. */
    private readonly pairGrids: GPUBuffer[] | null,
    private readonly zTableHost: Float32Array,
  ) {
    const grid = model.data.grid;
    this.nBands = tables.nBands;
    this.specW = grid.wavelengthAA.length + EXTRA_COLUMNS;
    const nZ = grid.metallicities.length;
    this.cellsOld = grid.ages.length * nZ;
    this.cellsYoung = nYoungAges * nZ;
    this.buffers.push(gOld, tableBuf, bandBuf, cosmoBuf);
    if (gYoung) this.buffers.push(gYoung);
    const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    const perGalaxy = 4 * Math.max(this.cellsOld, this.specW);
    const maxChunk = Math.floor(limit / perGalaxy);
    if (options.chunk !== undefined && options.chunk > maxChunk) {
      throw new RangeError(`chunk ${options.chunk} exceeds what one binding holds on this device (${maxChunk} galaxies)`);
    }
    const padding = pairGrids ? PAIR_ALIGN * (nZ - 1) : 0;
    this.chunk = options.chunk ?? Math.max(1, Math.min(65536, maxChunk - padding));
    // A chunk that leaves no room for the padding falls back to the full GEMM (see runStages).
    this.capacity = Math.max(this.chunk, Math.min(this.chunk + padding, maxChunk));
    if (pairGrids) this.buffers.push(...pairGrids);
  }

  static async create(gpu: Gpu, model: CpuForwardModel, options: GpuSynthOptions): Promise<GpuSynthesizer> {
    const { grid, filters } = model.data;
    const cfg = model.config;
    const nebular = cfg.nebular.enabled
      ? { templates: nebularBaseTemplates(model.data.nebular!, grid.wavelengthAA), log10Z: Array.from(model.data.nebular!.metallicities, Math.log10) }
      : null;
    const tables = buildObserveTables({
      wavelengthAA: grid.wavelengthAA,
      dustIsm: model.dustCurves.ism,
      dustBirthCloud: model.dustCurves.birthCloud,
      nebular,
      inoue14: cfg.igm === 'inoue14' ? model.data.inoue14!.coefficients : null,
      igm: cfg.igm,
      filters,
    });
    const dev = gpu.device;
    let nYoung = 0;
    while (nYoung < grid.ages.length && grid.ages[nYoung] < model.birthCloudMaxAgeYr) nYoung++;
    const gOldHost = augmentedGridMatrix(grid, { nebular: cfg.nebular.enabled });
    const gOld = uploadBuffer(dev, gOldHost, 'grid (all ages)');
    const gYoung = tables.splitYoung && nYoung > 0 ? uploadBuffer(dev, augmentedGridMatrix(grid, { nebular: cfg.nebular.enabled, ageRows: [0, nYoung] }), 'grid (young ages)') : null;
    const cosmoArrays = model.cosmology.arrays();
    const weights = options.weights === 'host' ? hostWeights(model, options.sfhFamily, nYoung) : gpuWeights(gpu, model, options.sfhFamily, tables.splitYoung ? nYoung : 0);
    const nZ = grid.metallicities.length;
    const usePairs = options.pairZ !== false && !!weights.encodePair && !tables.splitYoung && nZ >= 3;
    const pairGrids = usePairs ? Array.from({ length: nZ - 1 }, (_, j) => uploadBuffer(dev, metallicityPairMatrix(gOldHost, grid.ages.length, nZ, j), `grid (Z nodes ${j}, ${j + 1})`)) : null;
    return new GpuSynthesizer(
      gpu, model, options, tables, gOld, gYoung,
      uploadBuffer(dev, tables.data, 'observe tables'),
      uploadBuffer(dev, tables.bandInfo, 'band info'),
      uploadBuffer(dev, cosmologyTableData(cosmoArrays), 'cosmology table'),
      cosmoArrays, weights, nYoung, pairGrids, packMetallicityTable(grid.metallicities),
    );
  }

  /**
   * Synthesises `n` galaxies whose canonical rows are in `canon` (GPU), writing fluxes (n x nBands)
   * and derived (n x SYNTH_DERIVED_W) into the given buffers. n must be <= chunk.
   */
  async synthesizeOnDevice(bufs: { canon: GPUBuffer; fluxes: GPUBuffer; derived: GPUBuffer }, n: number, canonHost?: Float32Array): Promise<void> {
    await this.runStages(bufs, n, canonHost);
  }

  /**
   * The same work as synthesizeOnDevice, one submission per stage, each timed on the GPU
   * (timestamp queries when available): seconds spent in cosmology, weights, GEMM(s) and observe.
   */
  async profileOnDevice(bufs: { canon: GPUBuffer; fluxes: GPUBuffer; derived: GPUBuffer }, n: number, canonHost?: Float32Array): Promise<Record<SynthStage, number>> {
    const timer = new GpuTimer(this.gpu.device, 8);
    try {
      return (await this.runStages(bufs, n, canonHost, timer))!;
    } finally {
      timer.destroy();
    }
  }

  private async runStages(bufs: { canon: GPUBuffer; fluxes: GPUBuffer; derived: GPUBuffer }, n: number, canonHost?: Float32Array, timer?: GpuTimer) {
    if (n > this.chunk) throw new RangeError(`synthesizeOnDevice: ${n} galaxies > chunk ${this.chunk}`);
    const dev = this.gpu.device;
    if (this.pairGrids) {
      const rows = canonHost ?? (await readFloat32(dev, bufs.canon, 0, n * CANONICAL_WIDTH));
      const plan = planMetallicityPairs(rows, n, this.zTableHost, this.model.data.grid.metallicities.length, this.model.config.metallicityInterpolation);
      if (plan && plan.rows <= this.capacity) return this.runPairStages(bufs, n, rows, plan, timer);
    }
    const s = this.scratchBuffers();
    // Scratch buffers are sized for a full chunk and reused.
    const { run, submit, times } = this.stageRecorder('synth', timer);
    await run('cosmology', (b) => encodeCosmology(b, { canon: bufs.canon, table: this.cosmoBuf, aux: s.aux }, n, this.cosmoArrays));
    const w = await run('weights', (b) => this.weights.run({ batch: b, canon: bufs.canon, aux: s.aux, n, canonHost }));
    try {
      await run('gemm', (b) => {
        encodeGemm(b, { a: w.wOld, b: this.gOld, c: s.spec }, { M: n, N: this.specW, K: this.cellsOld });
        if (this.gYoung && s.specYoung && w.wYoung) encodeGemm(b, { a: w.wYoung, b: this.gYoung, c: s.specYoung }, { M: n, N: this.specW, K: this.cellsYoung });
      });
      await run('observe', (b) =>
        encodeObserve(b, this.tables, { canon: bufs.canon, aux: s.aux, spec: s.spec, specYoung: s.specYoung, tables: this.tableBuf, bands: this.bandBuf, fluxes: bufs.fluxes, derived: bufs.derived, sfhDerived: w.sfh }, n),
      );
      await submit();
    } finally {
      w.release();
    }
    return times;
  }

  /**
   * Stage recording shared by both GEMM paths. Without a timer every stage goes into one submission
   * (cosmology -> weights -> GEMM(s) -> observe: dispatches in one pass see the previous ones'
   * writes) sent by submit(); with one (profiling) each stage is its own timed submission and
   * `times` is filled in.
   */
  private stageRecorder(label: string, timer?: GpuTimer) {
    const dev = this.gpu.device;
    const batch = new ComputeBatch(dev, { label });
    const recorded = {} as Record<SynthStage, number>;
    return {
      run: async <T>(name: SynthStage, record: (b: ComputeBatch) => T | Promise<T>): Promise<T> => {
        if (!timer) return record(batch);
        const b = new ComputeBatch(dev, { label: `synth ${name}`, timer });
        const result = await record(b);
        timer.begin();
        await b.run();
        recorded[name] = (await timer.end()).seconds;
        return result;
      },
      submit: async (): Promise<void> => {
        if (!timer) await batch.run();
      },
      /** Filled in by run() as the stages finish (profiling only). */
      times: timer ? recorded : undefined,
    };
  }

  /** The metallicity-pair path: rows regrouped by `plan`, one weights dispatch and one GEMM per group. */
  private async runPairStages(bufs: { canon: GPUBuffer; fluxes: GPUBuffer; derived: GPUBuffer }, n: number, canonRows: Float32Array, plan: PairPlan, timer?: GpuTimer) {
    const dev = this.gpu.device;
    const s = this.scratchBuffers();
    const p = this.pairScratch();
    const m = plan.rows;
    const A = this.model.data.grid.ages.length;
    const K = synthWeightColumns({ ages: A, metallicities: 2, pairZ: { zLo: 0 } });
    const grouped = new Float32Array(m * CANONICAL_WIDTH);
    for (let r = 0; r < m; r++) grouped.set(canonRows.subarray(plan.source[r] * CANONICAL_WIDTH, (plan.source[r] + 1) * CANONICAL_WIDTH), r * CANONICAL_WIDTH);
    dev.queue.writeBuffer(p.canon, 0, grouped);
    const stages = this.stageRecorder('synth (Z pairs)', timer);
    const run = stages.run;
    await run('cosmology', (b) => encodeCosmology(b, { canon: p.canon, table: this.cosmoBuf, aux: s.aux }, m, this.cosmoArrays));
    await run('weights', (b) => {
      for (const g of plan.groups) this.weights.encodePair!({ batch: b, canon: p.canon, aux: s.aux, wPair: p.wPair, sfh: p.sfh, offset: g.start, n: g.rows, zLo: g.zLo });
    });
    await run('gemm', (b) => {
      for (const g of plan.groups)
        encodeGemm(
          b,
          {
            a: { buffer: p.wPair, offset: g.start * K * 4, size: g.rows * K * 4 },
            b: this.pairGrids![g.zLo],
            c: { buffer: s.spec, offset: g.start * this.specW * 4, size: g.rows * this.specW * 4 },
          },
          { M: g.rows, N: this.specW, K },
        );
    });
    await run('observe', (b) =>
      encodeObserve(b, this.tables, { canon: p.canon, aux: s.aux, spec: s.spec, specYoung: undefined, tables: this.tableBuf, bands: this.bandBuf, fluxes: p.fluxes, derived: p.derived, sfhDerived: p.sfh }, m),
    );
    await stages.submit();
    // Back to the caller's row order (padding rows dropped).
    const nB = this.nBands;
    const f = await readFloat32(dev, p.fluxes, 0, m * nB);
    const d = await readFloat32(dev, p.derived, 0, m * SYNTH_DERIVED_W);
    const fOut = new Float32Array(n * nB);
    const dOut = new Float32Array(n * SYNTH_DERIVED_W);
    for (let r = 0; r < m; r++) {
      if (!plan.keep[r]) continue;
      const i = plan.source[r];
      fOut.set(f.subarray(r * nB, (r + 1) * nB), i * nB);
      dOut.set(d.subarray(r * SYNTH_DERIVED_W, (r + 1) * SYNTH_DERIVED_W), i * SYNTH_DERIVED_W);
    }
    dev.queue.writeBuffer(bufs.fluxes, 0, fOut);
    dev.queue.writeBuffer(bufs.derived, 0, dOut);
    return stages.times;
  }

  private scratch: { aux: GPUBuffer; spec: GPUBuffer; specYoung?: GPUBuffer } | null = null;

  /** Per-chunk intermediate buffers, allocated once for the full capacity. */
  private scratchBuffers() {
    if (!this.scratch) {
      const dev = this.gpu.device;
      this.scratch = {
        aux: createStorageBuffer(dev, this.capacity * 16, 'aux'),
        spec: createStorageBuffer(dev, this.capacity * this.specW * 4, 'spectra'),
        specYoung: this.gYoung ? createStorageBuffer(dev, this.chunk * this.specW * 4, 'spectra (young)') : undefined,
      };
      this.buffers.push(this.scratch.aux, this.scratch.spec);
      if (this.scratch.specYoung) this.buffers.push(this.scratch.specYoung);
    }
    return this.scratch;
  }

  private pairBufs: { canon: GPUBuffer; wPair: GPUBuffer; sfh: GPUBuffer; fluxes: GPUBuffer; derived: GPUBuffer } | null = null;

  /** The pair path's regrouped rows, weights and outputs (capacity rows). */
  private pairScratch() {
    if (!this.pairBufs) {
      const dev = this.gpu.device;
      const c = this.capacity;
      this.pairBufs = {
        canon: createStorageBuffer(dev, c * CANONICAL_WIDTH * 4, 'canonical (Z groups)'),
        wPair: createStorageBuffer(dev, c * 2 * this.model.data.grid.ages.length * 4, 'W (Z pairs)'),
        sfh: createStorageBuffer(dev, c * 16, 'sfh derived (Z groups)'),
        fluxes: createStorageBuffer(dev, c * this.nBands * 4, 'fluxes (Z groups)'),
        derived: createStorageBuffer(dev, c * SYNTH_DERIVED_W * 4, 'derived (Z groups)'),
      };
      this.buffers.push(...Object.values(this.pairBufs));
    }
    return this.pairBufs;
  }

  /** Host convenience: canonical rows (N x 12) in, fluxes and derived out, chunked. */
  async synthesize(canon: Float32Array): Promise<SynthResult> {
    if (canon.length % CANONICAL_WIDTH) throw new RangeError(`canonical rows: length ${canon.length} is not a multiple of ${CANONICAL_WIDTH}`);
    const n = canon.length / CANONICAL_WIDTH;
    const dev = this.gpu.device;
    const fluxesNJy = new Float32Array(n * this.nBands);
    const derived = new Float32Array(n * SYNTH_DERIVED_W);
    for (let start = 0; start < n; start += this.chunk) {
      const m = Math.min(this.chunk, n - start);
      const rows = canon.subarray(start * CANONICAL_WIDTH, (start + m) * CANONICAL_WIDTH);
      const c = uploadBuffer(dev, rows, 'canonical');
      const f = createStorageBuffer(dev, m * this.nBands * 4, 'fluxes');
      const d = createStorageBuffer(dev, m * SYNTH_DERIVED_W * 4, 'derived');
      try {
        await this.synthesizeOnDevice({ canon: c, fluxes: f, derived: d }, m, rows);
        fluxesNJy.set(await readFloat32(dev, f, 0, m * this.nBands), start * this.nBands);
        derived.set(await readFloat32(dev, d, 0, m * SYNTH_DERIVED_W), start * SYNTH_DERIVED_W);
      } finally {
        c.destroy();
        f.destroy();
        d.destroy();
      }
    }
    return { fluxesNJy, derived };
  }

  /** True when the weights step runs on the host and needs the canonical rows there. */
  get needsHostCanonical(): boolean {
    return this.weights.onHost;
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
    this.weights.destroy();
  }
}

/**
 * Weights from the float64 reference on the host (uploaded per chunk): the mass per age bin times
 * the metallicity weights, split at the birth-cloud age like the GPU kernel.
 */
export function hostWeights(model: CpuForwardModel, family: SfhFamily, nYoung: number): WeightsStep {
  const grid = model.data.grid;
  const nA = grid.ages.length;
  const nZ = grid.metallicities.length;
  const split = !!model.dustCurves.birthCloud;
  const run: WeightsStep['run'] = async ({ batch, n, canonHost }) => {
    if (!canonHost) throw new Error('hostWeights needs the canonical rows on the host');
    const wOld = new Float32Array(n * nA * nZ);
    const wYoung = new Float32Array(Math.max(1, n * nYoung * nZ));
    const sfh = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      const p = model.parseGalaxy(fromCanonicalRow(canonHost.subarray(i * CANONICAL_WIDTH, (i + 1) * CANONICAL_WIDTH), family));
      const tUniv = p.redshift > 0 ? model.cosmology.ageYr(p.redshift) : model.cosmology.ageYr(0);
      const { sfh: s, binned } = model.ageMasses(p, tUniv);
      const wz = model.metallicityWeights(p);
      for (let a = 0; a < nA; a++) {
        const young = split && a < nYoung;
        for (let z = 0; z < nZ; z++) {
          const v = binned.massesMsun[a] * wz[z];
          if (young) wYoung[(i * nYoung + a) * nZ + z] = v;
          else wOld[(i * nA + a) * nZ + z] = v;
        }
      }
      const m = 10 ** p.log10MassFormedMsun;
      sfh[4 * i] = averageSfrMsunPerYr(s, m, 1e7, binned.coveredFraction);
      sfh[4 * i + 1] = averageSfrMsunPerYr(s, m, 1e8, binned.coveredFraction);
      sfh[4 * i + 2] = binned.coveredFraction;
    }
    const dev = batch.device;
    const bufs = [uploadBuffer(dev, wOld, 'W old'), uploadBuffer(dev, wYoung, 'W young'), uploadBuffer(dev, sfh, 'sfh derived')];
    return { wOld: bufs[0], wYoung: split ? bufs[1] : undefined, sfh: bufs[2], release: () => bufs.forEach((b) => b.destroy()) };
  };
  return { onHost: true, run, destroy: () => {} };
}

/** The weights kernel (kernels/synth/weights.ts) with the age edges and Z table resident. */
export function gpuWeights(gpu: Gpu, model: CpuForwardModel, family: SfhFamily, nYoung: number): WeightsStep {
  const grid = model.data.grid;
  const dev = gpu.device;
  const edgesYr = ageBinEdgesYr(grid.ages, model.config.ageBinning as AgeBinConvention);
  const edges = uploadBuffer(dev, packAgeEdges(edgesYr), 'age bin edges');
  const zTable = uploadBuffer(dev, packMetallicityTable(grid.metallicities), 'metallicity table');
  const nA = grid.ages.length;
  const nZ = grid.metallicities.length;
  const fallbackAge = fallbackAgeIndex(edgesYr);
  return {
    onHost: false,
    async run({ batch, canon, aux, n }) {
      const wOld = createStorageBuffer(dev, n * nA * nZ * 4, 'W (all ages)');
      const wYoung = nYoung > 0 ? createStorageBuffer(dev, n * nYoung * nZ * 4, 'W (young ages)') : undefined;
      const sfh = createStorageBuffer(dev, n * 16, 'sfh derived');
      encodeSynthWeights(batch, { params: canon, aux, edges, zTable, wOld, derived: sfh, wYoung }, {
        galaxies: n,
        ages: nA,
        metallicities: nZ,
        family,
        zInterpolation: model.config.metallicityInterpolation,
        youngAges: nYoung > 0 ? nYoung : undefined,
        fallbackAge,
      });
      return { wOld, wYoung, sfh, release: () => [wOld, wYoung, sfh].forEach((b) => b?.destroy()) };
    },
    encodePair({ batch, canon, aux, wPair, sfh, offset, n, zLo }) {
      encodeSynthWeights(batch, { params: canon, aux, edges, zTable, wOld: wPair, derived: sfh }, {
        galaxies: n,
        ages: nA,
        metallicities: nZ,
        family,
        zInterpolation: model.config.metallicityInterpolation,
        fallbackAge,
        galaxyOffset: offset,
        pairZ: { zLo },
      });
    },
    destroy() {
      edges.destroy();
      zTable.destroy();
    },
  };
}

/** The augmented grid rows of metallicity nodes j and j + 1 for every age, interleaved: row a*2 + t = G[a, j + t]. */
export function metallicityPairMatrix(full: Float32Array, nAges: number, nZ: number, j: number): Float32Array {
  const w = full.length / (nAges * nZ);
  const out = new Float32Array(nAges * 2 * w);
  for (let a = 0; a < nAges; a++) out.set(full.subarray((a * nZ + j) * w, (a * nZ + j + 2) * w), a * 2 * w);
  return out;
}
