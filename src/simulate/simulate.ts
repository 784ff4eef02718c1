/**
 * Simulation libraries: config -> theta (priors / design) -> canonical rows -> GPU synthesis ->
 * noise + features -> HDF5 library, chunk by chunk, resumable (src/io/library). Every random
 * stream derives from (seed, purpose, global row), so chunking and resumption never change a row.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { encodePriorsSample, encodeThetaToCanonical, packPriorModel } from '../../kernels/priors.js';
import { NoiseKernel } from '../../kernels/noise.js';
import { builtGridToSpsGrid, loadBuiltGrid, loadSourceGrid } from '../grid/build.js';
import { resolveFilterSet } from '../grid/filters.js';
import type { SpsGrid } from '../grid/types.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../gpu/buffers.js';
import type { Gpu } from '../gpu/device.js';
import { ComputeBatch } from '../gpu/kernel.js';
import { LibraryWriter } from '../io/library/index.js';
import { resolveDataDir } from '../io/paths.js';
import { CpuForwardModel } from '../physics/forwardModel.js';
import { loadInoue14 } from '../physics/igm.js';
import { loadInoue11 } from '../physics/nebular.js';
import { CANONICAL_WIDTH } from './canonical.js';
import { type SimulationConfig, configThetaLayout, configThetaSampler } from './config.js';
import { featureNames, resolveFeatures } from './features.js';
import { GpuSynthesizer, SYNTH_DERIVED_COLUMNS, SYNTH_DERIVED_W } from './gpuSynth.js';
import { resolveNoise } from './noise.js';
import { candidateBase, resolveSelection, selectionMask } from './selection.js';
import { RngPurpose } from './rng.js';
import { priorKernelModel, thetaColumnInfo } from './theta.js';

/** The grid a config names: bc03 / maraston05, a Synthesizer .h5 file, or a built grid folder. */
export async function loadConfigGrid(grid: string, dataDir?: string): Promise<SpsGrid> {
  if (existsSync(grid) && statSync(grid).isDirectory()) return builtGridToSpsGrid(loadBuiltGrid(grid));
  return loadSourceGrid({ grid, dataDir });
}

/** The CPU forward model (data tables and config) of a simulation config. */
export async function forwardModelForConfig(config: SimulationConfig, dataDir?: string): Promise<CpuForwardModel> {
  const dir = resolveDataDir(dataDir);
  const fm = config.forwardModel;
  return new CpuForwardModel(
    {
      grid: await loadConfigGrid(config.grid, dir),
      filters: resolveFilterSet(config.filters, dir),
      inoue14: fm.igm === 'inoue14' ? loadInoue14({ dataDir: dir }) : undefined,
      nebular: fm.nebular.enabled ? await loadInoue11(path.join(dir, 'nebular', 'inoue11')) : undefined,
    },
    fm,
  );
}

export interface SimulateOptions {
  gpu: Gpu;
  config: SimulationConfig;
  /** Library size (overrides config.n). */
  n: number;
  out: string;
  dataDir?: string;
  /** Folder relative paths in the config (e.g. an empirical noise file) are resolved against. */
  configDir?: string;
  overwrite?: boolean;
  onStart?(info: { n: number; pendingRows: number; resumed: boolean; chunkSize: number }): void;
  onChunk?(rows: number): void;
}

export interface SimulateResult {
  out: string;
  n: number;
  /** Rows computed in this run (less than n when resumed). */
  computedRows: number;
  /** Galaxies simulated in this run to get them (> computedRows with a detection selection). */
  candidates: number;
  seconds: number;
}

export async function simulateLibrary(o: SimulateOptions): Promise<SimulateResult> {
  const { gpu, config } = o;
  const dev = gpu.device;
  const model = await forwardModelForConfig(config, o.dataDir);
  const bands = model.bandNames;
  const layout = configThetaLayout(config);
  const P = layout.columns.length;
  const noise = await resolveNoise(config.noise, bands, { baseDir: o.configDir });
  const feats = resolveFeatures(config.features, bands, noise);
  const F = feats.width;
  const B = bands.length;
  const synth = await GpuSynthesizer.create(gpu, model, { sfhFamily: config.sfh });
  const noiseKernel = new NoiseKernel(dev, noise, feats);
  const modelBuf = uploadBuffer(dev, packPriorModel(priorKernelModel(layout)), 'prior model');
  const sampler = config.design === 'random' ? null : configThetaSampler(config, o.n, layout);
  const selection = config.selection ? resolveSelection(config.selection, bands) : undefined;
  if (selection && sampler) throw new Error(`selection: needs design: random, got ${config.design}`);
  const writer = await LibraryWriter.open({
    out: o.out,
    n: o.n,
    chunkSize: config.chunkSize,
    config: { ...config, n: o.n },
    seed: config.seed,
    overwrite: o.overwrite,
    columns: {
      theta: thetaColumnInfo(layout).names,
      x: featureNames(feats),
      fluxes: bands.map((b) => `${b}_nJy`),
      errors: bands.map((b) => `${b}_err_nJy`),
      derived: [...SYNTH_DERIVED_COLUMNS],
    },
  });
  const pendingRows = writer.pendingChunks().reduce((s, i) => s + writer.chunk(i).rows, 0);
  o.onStart?.({ n: o.n, pendingRows, resumed: writer.resumed, chunkSize: config.chunkSize });
  const t0 = performance.now();
  let computedRows = 0;
  /** Simulates the rows with Philox counters [counter0, counter0 + m) (m <= synth.chunk). */
  const simulateBatch = async (counter0: number, m: number, withNoisy: boolean) => {
    const thetaBuf = createStorageBuffer(dev, Math.max(1, m * P) * 4, 'theta');
    const canon = createStorageBuffer(dev, m * CANONICAL_WIDTH * 4, 'canonical');
    const trueFlux = createStorageBuffer(dev, m * B * 4, 'fluxes');
    const der = createStorageBuffer(dev, m * SYNTH_DERIVED_W * 4, 'derived');
    const noisy = createStorageBuffer(dev, m * B * 4, 'noisy fluxes');
    const err = createStorageBuffer(dev, m * B * 4, 'errors');
    const feat = createStorageBuffer(dev, Math.max(1, m * F) * 4, 'features');
    try {
      const pre = new ComputeBatch(dev, { label: 'theta' });
      const shape = { n: m, nCols: P, canonicalWidth: CANONICAL_WIDTH };
      if (sampler) {
        dev.queue.writeBuffer(thetaBuf, 0, Float32Array.from(sampler.sample(counter0, m)));
        encodeThetaToCanonical(pre, { model: modelBuf, theta: thetaBuf, canonical: canon }, shape);
      } else {
        encodePriorsSample(pre, { model: modelBuf, theta: thetaBuf, canonical: canon }, { ...shape, seed: config.seed, offset: counter0, purpose: RngPurpose.prior });
      }
      await pre.run();
      const canonHost = synth.needsHostCanonical ? await readFloat32(dev, canon, 0, m * CANONICAL_WIDTH) : undefined;
      await synth.synthesizeOnDevice({ canon, fluxes: trueFlux, derived: der }, m, canonHost);
      await noiseKernel
        .encode(new ComputeBatch(dev, { label: 'noise' }), { trueFlux, redshift: canon, noisyFlux: noisy, error: err, features: feat }, {
          n: m, seed: config.seed, indexOffset: counter0, redshiftStride: CANONICAL_WIDTH, redshiftOffset: 0,
        })
        .run();
      return {
        theta: await readFloat32(dev, thetaBuf, 0, m * P),
        x: await readFloat32(dev, feat, 0, m * F),
        fluxes: await readFloat32(dev, trueFlux, 0, m * B),
        errors: await readFloat32(dev, err, 0, m * B),
        derived: await readFloat32(dev, der, 0, m * SYNTH_DERIVED_W),
        noisy: withNoisy ? await readFloat32(dev, noisy, 0, m * B) : undefined,
      };
    } finally {
      for (const b of [thetaBuf, canon, trueFlux, der, noisy, err, feat]) b.destroy();
    }
  };
  const widths = { theta: P, x: F, fluxes: B, errors: B, derived: SYNTH_DERIVED_W } as const;
  type Columns = keyof typeof widths;
  let candidates = 0;
  try {
    await writer.run(async (spec) => {
      const out = Object.fromEntries((Object.keys(widths) as Columns[]).map((k) => [k, new Float32Array(spec.rows * widths[k])])) as Record<Columns, Float32Array>;
      if (!selection) {
        // The synthesis works in device-sized sub-batches; the library chunk is the unit of resumption.
        for (let s = 0; s < spec.rows; s += synth.chunk) {
          const m = Math.min(synth.chunk, spec.rows - s);
          const r = await simulateBatch(spec.start + s, m, false);
          for (const k of Object.keys(widths) as Columns[]) out[k].set(r[k], s * widths[k]);
          computedRows += m;
          o.onChunk?.(m);
        }
        return out;
      }
      // Detection selection: candidates in counter order from this chunk's own range, accepted
      // rows kept in that order (independent of the batch sizes, hence of the device).
      const base = candidateBase(spec.index);
      const cap = selection.config.maxCandidatesPerRow * spec.rows;
      let filled = 0;
      let tried = 0;
      while (filled < spec.rows) {
        const rate = tried > 0 ? Math.max(filled / tried, 1e-3) : 1;
        const m = Math.min(synth.chunk, Math.ceil(((spec.rows - filled) / rate) * 1.1) + 16);
        const r = await simulateBatch(base + tried, m, true);
        const keep = selectionMask(selection, r.noisy!, r.errors, m, B);
        tried += m;
        const before = filled;
        for (let i = 0; i < m && filled < spec.rows; i++) {
          if (!keep[i]) continue;
          for (const k of Object.keys(widths) as Columns[]) out[k].set(r[k].subarray(i * widths[k], (i + 1) * widths[k]), filled * widths[k]);
          filled++;
        }
        computedRows += filled - before;
        o.onChunk?.(filled - before);
        if (filled < spec.rows && tried >= cap)
          throw new Error(
            `selection: chunk ${spec.index} accepted ${filled} of ${tried} candidates (selection.minSnr = ${selection.config.minSnr} in ${selection.config.bands.join(', ')}); ` +
              `more than selection.maxCandidatesPerRow = ${selection.config.maxCandidatesPerRow} per row would be needed — lower minSnr or narrow the priors`,
          );
      }
      candidates += tried;
      return out;
    });
  } finally {
    synth.destroy();
    noiseKernel.destroy();
    modelBuf.destroy();
  }
  return { out: o.out, n: o.n, computedRows, candidates: selection ? candidates : computedRows, seconds: (performance.now() - t0) / 1000 };
}
