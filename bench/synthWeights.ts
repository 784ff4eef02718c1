/**
 * SFH x metallicity weights benchmark (kernels/synth/weights.ts): galaxies per second per SFH family
 * on a BC03-like grid (220 log-spaced ages 1e5 .. 2e10 yr, the 7 BC03 metallicities, midpoint bins),
 * parameters drawn over typical prior ranges. GPU time from timestamp queries over `repeats`
 * back-to-back dispatches (median of three submissions); CPU reference = binSfh + metallicity weights + sfhDerivedQuantities in
 * float64 (src/physics), timed on a sample of galaxies and scaled. Also reports the write bandwidth
 * (the kernel writes N x 220 x 7 f32) and the largest error against the reference over the sample.
 *
 * Options: sizes (galaxies per dispatch), repeats, families (subset of SYNTH_SFH_FAMILIES),
 * workgroupSizes (threads per galaxy: 32, 64, 128, 256).
 */
import {
  SYNTH_SFH_FAMILIES,
  SYNTH_WEIGHTS_WG,
  type SynthSfhFamily,
  encodeSynthWeights,
  fallbackAgeIndex,
  packAgeEdges,
  packMetallicityTable,
} from '../kernels/synth/weights.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../src/gpu/buffers.js';
import { ComputeBatch } from '../src/gpu/kernel.js';
import { GpuTimer } from '../src/gpu/timer.js';
import { CosmologyTable } from '../src/physics/cosmology.js';
import { logNormalMetallicityWeights, singleMetallicityWeights } from '../src/physics/metallicity.js';
import { ageBinEdgesYr, binSfh, createSfh, sfhDerivedQuantities } from '../src/physics/sfh.js';
import { CANONICAL, CANONICAL_WIDTH, slotsToSfh } from '../src/simulate/canonical.js';
import { type BenchContext, median } from './harness.js';

const AGES = Float64Array.from({ length: 220 }, (_, i) => 1e5 * Math.pow(2e10 / 1e5, i / 219));
const BC03_Z = Float64Array.from([1e-4, 4e-4, 4e-3, 8e-3, 0.02, 0.05, 0.1]);

/** Deterministic uniform stream (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Canonical rows and aux rows for n galaxies of a family, over typical prior ranges. */
export function benchGalaxies(family: SynthSfhFamily, n: number, seed = 1): { rows: Float32Array; aux: Float32Array } {
  const r = rng(seed);
  const lu = (lo: number, hi: number) => 10 ** (lo + (hi - lo) * r());
  const cosmo = new CosmologyTable();
  // A table of ages of the universe, so that drawing a million galaxies stays cheap.
  const tUniv = Float64Array.from({ length: 1024 }, (_, i) => cosmo.ageYr((12 * i) / 1023));
  const rows = new Float32Array(n * CANONICAL_WIDTH);
  const aux = new Float32Array(n * 4);
  for (let g = 0; g < n; g++) {
    const o = g * CANONICAL_WIDTH;
    rows[o + CANONICAL.log10MassFormedMsun] = 7 + 5 * r();
    rows[o + CANONICAL.log10Z] = -4 + 2.5 * r();
    rows[o + CANONICAL.log10ZSigmaDex] = r() < 0.3 ? 0.05 + 0.4 * r() : 0;
    const start = lu(7, 10.2);
    let s: number[];
    switch (family) {
      case 'constant':
        s = [start];
        break;
      case 'exponential':
        s = [start, (r() < 0.5 ? -1 : 1) * lu(7, 10.5)];
        break;
      case 'delayedExponential':
        s = [start, lu(7, 10.5)];
        break;
      case 'logNormal':
        s = [start, 0.1 + 1.4 * r(), start * (0.05 + 0.9 * r())];
        break;
      case 'doublePowerLaw':
        s = [lu(-2, 3), lu(-2, 3), lu(8, 10.2)];
        break;
      case 'quantiles': {
        const t = [r(), r(), r()].sort((a, b) => a - b);
        s = [-12 + 4.5 * r(), 0.02 + 0.96 * t[0], 0.02 + 0.96 * t[1] + 1e-3, 0.02 + 0.96 * t[2] + 2e-3];
        break;
      }
    }
    s.forEach((v, i) => (rows[o + CANONICAL.s0 + i] = v));
    aux[4 * g] = tUniv[Math.floor(r() * 1024)];
  }
  return { rows, aux };
}

/** Float64 reference of one galaxy's weight row (A x nZ). */
function referenceRow(family: SynthSfhFamily, rows: Float32Array, aux: Float32Array, g: number): Float64Array {
  const row = rows.subarray(g * CANONICAL_WIDTH, (g + 1) * CANONICAL_WIDTH);
  const sfh = createSfh(slotsToSfh(family, row.subarray(CANONICAL.s0)), aux[4 * g]);
  const M = 10 ** row[CANONICAL.log10MassFormedMsun];
  const binned = binSfh(sfh, AGES, M, 'midpoint');
  const sigma = row[CANONICAL.log10ZSigmaDex];
  const wz = sigma > 0 ? logNormalMetallicityWeights(BC03_Z, row[CANONICAL.log10Z], sigma) : singleMetallicityWeights(BC03_Z, 10 ** row[CANONICAL.log10Z]);
  sfhDerivedQuantities(sfh, binned, AGES, M);
  const out = new Float64Array(AGES.length * BC03_Z.length);
  for (let a = 0; a < AGES.length; a++) for (let z = 0; z < BC03_Z.length; z++) out[a * BC03_Z.length + z] = binned.massesMsun[a] * wz[z];
  return out;
}

export async function benchSynthWeights(ctx: BenchContext): Promise<void> {
  const { gpu } = ctx;
  const dev = gpu.device;
  const software = gpu.adapter.isSoftware;
  const sizes = ctx.options.sizes ?? (software ? [4096] : [65536, 262144]);
  const families = (ctx.options.families as SynthSfhFamily[] | undefined) ?? [...SYNTH_SFH_FAMILIES];
  const wgs = (ctx.options.workgroupSizes as number[] | undefined) ?? [SYNTH_WEIGHTS_WG];
  const A = AGES.length;
  const nZ = BC03_Z.length;
  const edges = ageBinEdgesYr(AGES, 'midpoint');
  const edgesBuf = uploadBuffer(dev, packAgeEdges(edges));
  const zBuf = uploadBuffer(dev, packMetallicityTable(BC03_Z));
  const timer = new GpuTimer(dev, 64);
  try {
    for (const family of families) {
      for (const N of sizes) {
        const bytes = N * A * nZ * 4;
        if (bytes > gpu.limits.maxStorageBufferBindingSize) {
          ctx.log(`skip ${family} N=${N}: the ${bytes}-byte weight matrix exceeds maxStorageBufferBindingSize`);
          continue;
        }
        const { rows, aux } = benchGalaxies(family, N, 7);
        // CPU reference on a sample of galaxies, timed and scaled to N.
        const sample = Array.from({ length: Math.min(N, software ? 200 : 500) }, (_, i) => Math.floor((i * (N - 1)) / Math.max(1, Math.min(N, software ? 200 : 500) - 1)));
        const t0 = performance.now();
        const want = sample.map((g) => referenceRow(family, rows, aux, g));
        const cpuSeconds = ((performance.now() - t0) / 1000 / sample.length) * N;
        const bufs = {
          params: uploadBuffer(dev, rows),
          aux: uploadBuffer(dev, aux),
          edges: edgesBuf,
          zTable: zBuf,
          wOld: createStorageBuffer(dev, bytes),
          derived: createStorageBuffer(dev, N * 16),
        };
        for (const wg of wgs) {
          const shape = { galaxies: N, ages: A, metallicities: nZ, family, fallbackAge: fallbackAgeIndex(edges), workgroupSize: wg };
          const run = async (repeats: number) => {
            const batch = new ComputeBatch(dev, { timer, label: 'synthWeights' });
            for (let i = 0; i < repeats; i++) encodeSynthWeights(batch, bufs, shape);
            timer.begin();
            await batch.run();
            return (await timer.end()).seconds;
          };
          await run(1); // compile + warm up
          const once = await run(1);
          const repeats = ctx.options.repeats ?? Math.max(1, Math.min(50, Math.ceil((software ? 0.5 : 0.3) / Math.max(once, 1e-6))));
          // Median of three timed submissions (single ones vary by up to 5x on a shared H100).
          const times: number[] = [];
          for (let k = 0; k < 3; k++) times.push((await run(repeats)) / repeats);
          const seconds = median(times);
          // Largest error over the sample relative to the galaxy's formed mass.
          const W = await readFloat32(dev, bufs.wOld);
          let maxErr = 0;
          sample.forEach((g, k) => {
            const M = 10 ** rows[g * CANONICAL_WIDTH + CANONICAL.log10MassFormedMsun];
            for (let i = 0; i < A * nZ; i++) maxErr = Math.max(maxErr, Math.abs(W[g * A * nZ + i] - want[k][i]) / M);
          });
          ctx.emit({
            name: 'synthWeights',
            size: `${family} N=${N}`,
            metric: 'throughput',
            value: N / seconds,
            unit: 'galaxies/s',
            device: ctx.device,
            ratio_vs_cpu: cpuSeconds / seconds,
            gpu_ms: seconds * 1e3,
            write_GBps: bytes / seconds / 1e9,
            cpu_ref_galaxies_per_s: N / cpuSeconds,
            max_abs_error_over_mass: maxErr,
            workgroup_size: wg,
            ages: A,
            metallicities: nZ,
            repeats,
            timing: timer.source,
          });
        }
        for (const b of [bufs.params, bufs.aux, bufs.wOld, bufs.derived]) b.destroy();
      }
    }
  } finally {
    timer.destroy();
    edgesBuf.destroy();
    zBuf.destroy();
  }
}
