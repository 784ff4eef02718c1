/**
 * Catalogue-fitting benchmark (issue 6): galaxies/s of `fitCatalog` with 1000 posterior samples per
 * galaxy (prior-bounded rejection included), engine cpu (float64 reference, one thread) and gpu.
 * The reference study (Synference, PyTorch) quotes 18 galaxies/s per CPU core and ~21/s on a GPU.
 *
 * The model: a small trained flow of the reference study's shape (14 bands, asinh magnitudes +
 * errors = 28 features, 8 parameters; sbi-default architecture: 5 transforms, 50 hidden, 2 blocks,
 * 10 bins), trained for a few epochs on the CPU on a toy forward model (below) so that its
 * posteriors, and hence the rejection rate, are those of a trained flow rather than of a random one.
 * The catalogue: a FITS table of mock galaxies from the same toy model (nJy columns).
 * Timing: FitResult.seconds (reading, features, sampling, summaries, part writing per chunk;
 * not the final assembly, reported separately as wall seconds). The GPU engine is warmed up (pipelines
 * compiled) on a few galaxies first. Options: sizes (galaxies per measurement), repeats.
 *
 * The toy world (also used by test/infer/fit.test.ts): B bands, P >= 1 parameters:
 *   theta_0 = log10 mass in [8, 10.5], theta_p (p >= 1) = shape parameters in [-1, 1];
 *   f_b = 100 nJy 10^(theta_0 - 8) (1 + z)^-1.5 10^(0.3 sum_p theta_p cos(pi p (b + 0.5) / B)),
 *   z uniform in [0.5, 3] (a feature when `redshift`, else z = 1); depth noise (5 sigma = 28.5 AB);
 *   features exactly as the simulation makes them (src/simulate/features.ts simulateObservations).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createFlow, fitFlowStandardization } from '../src/flow/flow.js';
import { GpuFlowEngine } from '../src/flow/gpuEngine.js';
import { type ParameterInfoInput, saveModelDir } from '../src/flow/modelFiles.js';
import { RngPurpose, uniform } from '../src/flow/rng.js';
import type { ColumnMapInput } from '../src/infer/columnMap.js';
import { fitCatalog } from '../src/infer/fit.js';
import { readFitsTable, writeFitsTable } from '../src/io/fits.js';
import { LibraryWriter } from '../src/io/library/index.js';
import { type ResolvedFeatures, resolveFeatures, simulateObservations } from '../src/simulate/features.js';
import { type ResolvedNoise, resolveNoise } from '../src/simulate/noise.js';
import { CpuFlowEngine, type FlowEngine } from '../src/train/engine.js';
import { type FlowArchitectureInput, trainFlow } from '../src/train/trainer.js';
import { type BenchContext, median } from './harness.js';

export interface ToyWorldSpec {
  bands: number;
  params: number;
  /** Band drop-out 0.15 in training with mask features. */
  mask?: boolean;
  /** Redshift as the last feature (Model 1). */
  redshift?: boolean;
}

export const TOY_REDSHIFT: [number, number] = [0.5, 3];
export const TOY_MASS: [number, number] = [8, 10.5];

export function toyBandNames(spec: ToyWorldSpec): string[] {
  return Array.from({ length: spec.bands }, (_, b) => `band${b}`);
}

export function toyParameterNames(spec: ToyWorldSpec): string[] {
  return ['log10_mass', ...Array.from({ length: spec.params - 1 }, (_, p) => `shape${p + 1}`)];
}

/** A simulation config for the toy world (its features, noise and redshift prior are what fitting reads). */
export function toySimulationConfig(spec: ToyWorldSpec): Record<string, unknown> {
  const bands = toyBandNames(spec);
  const parameters: Record<string, unknown> = { log10_mass: { prior: 'uniform', low: TOY_MASS[0], high: TOY_MASS[1] } };
  for (const n of toyParameterNames(spec).slice(1)) parameters[n] = { prior: 'uniform', low: -1, high: 1 };
  parameters.redshift = spec.redshift ? { prior: 'uniform', low: TOY_REDSHIFT[0], high: TOY_REDSHIFT[1] } : { prior: 'fixed', value: 1 };
  return {
    grid: 'toy',
    filters: bands,
    sfh: 'toy',
    parameters,
    noise: { type: 'depth', depth5SigmaMag: 28.5 },
    features: { photometry: 'asinhMag', softeningNJy: 'noise', includeErrors: true, includeRedshift: !!spec.redshift, dropoutProb: spec.mask ? 0.15 : 0, ...(spec.mask ? { mask: true } : {}) },
    seed: 1,
  };
}

export interface ToySample {
  n: number;
  /** n x P. */
  theta: Float64Array;
  z: Float64Array;
  /** n x B noiseless fluxes [nJy]. */
  trueFlux: Float64Array;
}

/** n galaxies of the toy world (truth only) from the seed. */
export function toyTruth(spec: ToyWorldSpec, n: number, seed: number): ToySample {
  const { bands: B, params: P } = spec;
  const theta = new Float64Array(n * P);
  const z = new Float64Array(n);
  const trueFlux = new Float64Array(n * B);
  for (let i = 0; i < n; i++) {
    const u = (k: number) => uniform(seed, RngPurpose.user, i * (P + 1) + k);
    theta[i * P] = TOY_MASS[0] + (TOY_MASS[1] - TOY_MASS[0]) * u(0);
    for (let p = 1; p < P; p++) theta[i * P + p] = -1 + 2 * u(p);
    z[i] = spec.redshift ? TOY_REDSHIFT[0] + (TOY_REDSHIFT[1] - TOY_REDSHIFT[0]) * u(P) : 1;
    for (let b = 0; b < B; b++) {
      let s = 0;
      for (let p = 1; p < P; p++) s += theta[i * P + p] * Math.cos((Math.PI * p * (b + 0.5)) / B);
      trueFlux[i * B + b] = 100 * Math.pow(10, theta[i * P] - 8) * Math.pow(1 + z[i], -1.5) * Math.pow(10, 0.3 * s);
    }
  }
  return { n, theta, z, trueFlux };
}

export async function toyFeatureModel(spec: ToyWorldSpec): Promise<{ noise: ResolvedNoise; feats: ResolvedFeatures; config: Record<string, unknown> }> {
  const config = toySimulationConfig(spec);
  const bands = toyBandNames(spec);
  const noise = await resolveNoise(config.noise as never, bands);
  const feats = resolveFeatures(config.features as never, bands, noise);
  return { noise, feats, config };
}

/** Noisy observations (as a catalogue would hold them) and the simulation's features of a toy sample. */
export async function toyObservations(spec: ToyWorldSpec, t: ToySample, seed: number): Promise<{ flux: Float64Array; error: Float64Array; features: Float64Array; observed: Uint8Array }> {
  const { noise, feats } = await toyFeatureModel(spec);
  const o = simulateObservations(noise, feats, t.trueFlux, { seed, redshift: t.z });
  return { flux: o.noisyFluxNJy, error: o.errorNJy, features: o.features, observed: o.observed };
}

export interface ToyModelOptions {
  nTrain: number;
  /** 0 = no training (random weights, standardisation fitted). */
  epochs: number;
  flow?: FlowArchitectureInput;
  seed?: number;
  batchSize?: number;
  lr?: number;
  /** Record the training library in config.json (default true). */
  recordLibrary?: boolean;
  engine?: (model: import('../src/flow/flow.js').FlowModel) => Promise<FlowEngine>;
}

/**
 * Trains (or only initialises) a flow on the toy world and writes `dir/model/` and `dir/library.h5`
 * (theta, x and the simulation config attribute, like a simulated library).
 */
export async function buildToyModel(dir: string, spec: ToyWorldSpec, o: ToyModelOptions): Promise<{ modelDir: string; libraryFile: string; config: Record<string, unknown>; feats: ResolvedFeatures }> {
  const seed = o.seed ?? 11;
  const { feats, config } = await toyFeatureModel(spec);
  const truth = toyTruth(spec, o.nTrain, seed);
  const obs = await toyObservations(spec, truth, seed + 1);
  const names = toyParameterNames(spec);
  const P = spec.params;
  mkdirSync(dir, { recursive: true });
  const libraryFile = path.join(dir, 'library.h5');
  const w = await LibraryWriter.open({ out: libraryFile, n: o.nTrain, chunkSize: o.nTrain, seed, config, columns: { theta: names, x: feats.names }, overwrite: true, onWarning: () => {} });
  for (const i of w.pendingChunks()) await w.writeChunk(i, { theta: truth.theta, x: obs.features });
  await w.finalize();
  const arch = o.flow ?? { transforms: 3, hidden: 32, blocks: 1, bins: 8 };
  let model;
  if (o.epochs > 0) {
    const r = await trainFlow({
      data: { theta: truth.theta, x: obs.features, n: o.nTrain },
      flow: arch,
      options: { maxEpochs: o.epochs, batchSize: o.batchSize ?? 128, lr: o.lr ?? 2e-3, patience: o.epochs, seed },
      engine: o.engine ?? 'cpu',
    });
    model = r.model;
  } else {
    model = createFlow({ ...arch, thetaDim: P, contextDim: feats.width, seed });
    fitFlowStandardization(model, truth.theta, obs.features, o.nTrain);
  }
  const parameters: ParameterInfoInput[] = names.map((name, p) =>
    p === 0 ? { name, unit: 'dex', low: TOY_MASS[0], high: TOY_MASS[1], boundsSource: 'prior' } : { name, unit: '', low: -1, high: 1, boundsSource: 'prior' },
  );
  const modelDir = path.join(dir, 'model');
  await saveModelDir(modelDir, model, {
    parameters,
    context: feats.names.map((name) => ({ name })),
    training: { ...(o.recordLibrary === false ? {} : { library: path.resolve(libraryFile) }), n: o.nTrain, epochs: o.epochs },
  });
  return { modelDir, libraryFile, config, feats };
}

/** Writes a toy catalogue as a FITS table (id, <band>_flux, <band>_err in nJy[, z]) and returns the map for it. */
export async function writeToyFitsCatalog(file: string, spec: ToyWorldSpec, n: number, seed: number): Promise<{ map: ColumnMapInput; truth: ToySample }> {
  const truth = toyTruth(spec, n, seed);
  const obs = await toyObservations(spec, truth, seed + 1);
  const bands = toyBandNames(spec);
  const B = bands.length;
  const data: Record<string, ArrayLike<number> | string[]> = { id: Array.from({ length: n }, (_, i) => `gal${i}`) };
  const cols: import('../src/io/fits.js').FitsColumnSpec[] = [{ name: 'id', type: 'A', repeat: 12 }];
  bands.forEach((b, k) => {
    data[`${b}_flux`] = Float64Array.from({ length: n }, (_, i) => obs.flux[i * B + k]);
    data[`${b}_err`] = Float64Array.from({ length: n }, (_, i) => obs.error[i * B + k]);
    cols.push({ name: `${b}_flux`, type: 'D', unit: 'nJy' }, { name: `${b}_err`, type: 'D', unit: 'nJy' });
  });
  if (spec.redshift) {
    data.z = truth.z;
    cols.push({ name: 'z', type: 'D' });
  }
  writeFitsTable(file, cols, data, n, { extname: 'CATALOG' });
  const map: ColumnMapInput = { id: 'id', ...(spec.redshift ? { redshift: 'z' } : {}), bands: Object.fromEntries(bands.map((b) => [b, { flux: `${b}_flux`, error: `${b}_err` }])) };
  return { map, truth };
}

/** The reference study's shape: 14 bands -> 28 features, 8 parameters. */
export const BENCH_SPEC: ToyWorldSpec = { bands: 14, params: 8 };

export async function benchFit(ctx: BenchContext): Promise<void> {
  const software = ctx.gpu.adapter.isSoftware;
  const sizes = ctx.options.sizes ?? (software ? [64] : [256, 2048]);
  const repeats = ctx.options.repeats ?? 1;
  const M = 1000;
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-fit-'));
  try {
    const t0 = performance.now();
    const nTrain = 4096;
    const epochs = 3;
    const { modelDir } = await buildToyModel(dir, BENCH_SPEC, { nTrain, epochs, flow: { transforms: 5, hidden: 50, blocks: 2, bins: 10 }, lr: 1e-3 });
    ctx.log(`fit: trained the bench model (14 bands, 28 features, 8 parameters; 5 transforms x 50 hidden) on ${nTrain} toy galaxies for ${epochs} epochs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const { loadModelDir } = await import('../src/flow/modelFiles.js');
    const { flow } = await loadModelDir(modelDir);
    const maxN = Math.max(...sizes);
    const catalog = path.join(dir, 'cat.fits');
    const { map } = await writeToyFitsCatalog(catalog, BENCH_SPEC, maxN, 20260101);

    const run = async (engine: FlowEngine, n: number, tag: string) => {
      // A catalogue of the first n rows: the same FITS file with a fit over `n` rows via chunk = n
      // would read all; write an n-row catalogue instead.
      const cat = n === maxN ? catalog : path.join(dir, `cat-${n}.fits`);
      if (n !== maxN) await writeToyFitsCatalog(cat, BENCH_SPEC, n, 20260101);
      const out = path.join(dir, `out-${tag}`);
      rmSync(out, { recursive: true, force: true });
      const w0 = performance.now();
      const r = await fitCatalog({ model: modelDir, catalog: cat, map, out, samples: M, engine, seed: 1, chunk: Math.min(n, 1024), saveSamples: false, onWarning: () => {} });
      const wall = (performance.now() - w0) / 1000;
      const { data } = readFitsTable(r.files.summaryFits);
      const acc = Array.from(data.acceptance as Float64Array).filter(Number.isFinite);
      const meanAcceptance = acc.reduce((s, v) => s + v, 0) / Math.max(1, acc.length);
      return { rate: r.galaxiesPerSecond, seconds: r.seconds, wall, fitted: r.fitted, lowAcceptance: r.flagCounts.LOW_ACCEPTANCE ?? 0, meanAcceptance };
    };

    // CPU reference: the float64 engine, one thread, on up to 32 galaxies.
    const cpu = new CpuFlowEngine(flow);
    const nCpu = Math.min(32, Math.min(...sizes));
    const c = await run(cpu, nCpu, 'cpu');
    await cpu.dispose();
    ctx.log(`fit: CPU engine (float64, one thread): ${c.rate.toFixed(2)} galaxies/s on ${nCpu} galaxies x ${M} samples`);
    ctx.emit({
      name: 'fit',
      size: `${nCpu} galaxies x ${M} samples`,
      metric: 'fit throughput',
      value: c.rate,
      unit: 'galaxies/s',
      device: 'cpu (float64 reference, 1 thread)',
      ratio_vs_cpu: null,
      engine: 'cpu',
      galaxies: nCpu,
      samples: M,
      seconds: c.seconds,
      wall_seconds: c.wall,
      low_acceptance_rows: c.lowAcceptance,
      mean_acceptance: c.meanAcceptance,
      reference_study_galaxies_per_s: 18,
    });

    const gpu = await GpuFlowEngine.create(flow, { gpu: ctx.gpu });
    try {
      await run(gpu, Math.min(8, maxN), 'warmup');
      for (const n of sizes) {
        const rates: number[] = [];
        let last = { rate: 0, seconds: 0, wall: 0, fitted: 0, lowAcceptance: 0, meanAcceptance: NaN };
        for (let k = 0; k < repeats; k++) {
          last = await run(gpu, n, `gpu-${n}-${k}`);
          rates.push(last.rate);
        }
        const rate = median(rates);
        ctx.emit({
          name: 'fit',
          size: `${n} galaxies x ${M} samples`,
          metric: 'fit throughput',
          value: rate,
          unit: 'galaxies/s',
          device: ctx.device,
          ratio_vs_cpu: rate / c.rate,
          engine: 'gpu',
          galaxies: n,
          samples: M,
          seconds: last.seconds,
          wall_seconds: last.wall,
          low_acceptance_rows: last.lowAcceptance,
          mean_acceptance: last.meanAcceptance,
          reference_study_galaxies_per_s: 21,
        });
      }
    } finally {
      await gpu.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}


