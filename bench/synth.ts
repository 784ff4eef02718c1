/**
 * Synthesis benchmark: galaxies/s of the GPU photometry pipeline (cosmology, SFH weights, GEMM with
 * the grid, observe: nebular, dust, IGM, filters) for the reference-study model (examples/
 * reference-study.yaml: 14 bands, SFH quantiles, Calzetti, Inoue14, nebular), at several batch
 * sizes. Parameters are drawn on the GPU from the config's priors before timing. CPU reference: the
 * float64 forward model (src/physics/forwardModel.ts), galaxy by galaxy, on a sample.
 */
import path from 'node:path';
import { encodePriorsSample, packPriorModel } from '../kernels/priors.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../src/gpu/buffers.js';
import { ComputeBatch } from '../src/gpu/kernel.js';
import { packageRoot } from '../src/io/paths.js';
import { CANONICAL_WIDTH, fromCanonicalRow } from '../src/simulate/canonical.js';
import { configThetaLayout, loadSimulationConfig } from '../src/simulate/config.js';
import { GpuSynthesizer, SYNTH_DERIVED_W } from '../src/simulate/gpuSynth.js';
import { RngPurpose } from '../src/simulate/rng.js';
import { forwardModelForConfig } from '../src/simulate/simulate.js';
import { priorKernelModel } from '../src/simulate/theta.js';
import type { BenchContext } from './harness.js';

export async function benchSynth(ctx: BenchContext): Promise<void> {
  const dev = ctx.gpu.device;
  const software = ctx.gpu.adapter.isSoftware;
  const sizes = ctx.options.sizes ?? (software ? [1000, 10000, 100000] : [1000, 10000, 100000, 1000000]);
  const config = await loadSimulationConfig(path.join(packageRoot(), 'examples', 'reference-study.yaml'));
  const model = await forwardModelForConfig(config);
  const layout = configThetaLayout(config);
  const P = layout.columns.length;
  // Both GEMM paths side by side: metallicity pairs (the default) and the full A*nZ GEMM.
  const variants = [
    { name: 'pairs', synth: await GpuSynthesizer.create(ctx.gpu, model, { sfhFamily: config.sfh }) },
    { name: 'full', synth: await GpuSynthesizer.create(ctx.gpu, model, { sfhFamily: config.sfh, pairZ: false }) },
  ];
  const synth = variants[0].synth;
  const modelBuf = uploadBuffer(dev, packPriorModel(priorKernelModel(layout)), 'prior model');
  const B = synth.nBands;
  try {
    // CPU reference throughput on a sample of the same prior draws.
    const sampleN = 40;
    const canonSample = await drawCanonical(0, sampleN);
    const t0 = performance.now();
    for (let i = 0; i < sampleN; i++) model.photometry(fromCanonicalRow(canonSample.subarray(i * CANONICAL_WIDTH, (i + 1) * CANONICAL_WIDTH), config.sfh));
    const cpuRate = sampleN / ((performance.now() - t0) / 1000);
    ctx.log(`CPU reference: ${cpuRate.toFixed(1)} galaxies/s (float64, one thread)`);

    const rates: Record<string, Record<number, number>> = { pairs: {}, full: {} };
    for (const n of sizes) for (const { name: variant, synth } of variants) {
      const chunk = Math.min(...variants.map((v) => v.synth.chunk));
      const buffers = Array.from({ length: Math.ceil(n / chunk) }, (_, k) => {
        const m = Math.min(chunk, n - k * chunk);
        return {
          m,
          theta: createStorageBuffer(dev, m * P * 4),
          canon: createStorageBuffer(dev, m * CANONICAL_WIDTH * 4),
          fluxes: createStorageBuffer(dev, m * B * 4),
          derived: createStorageBuffer(dev, m * SYNTH_DERIVED_W * 4),
        };
      });
      try {
        const pre = new ComputeBatch(dev);
        let offset = 0;
        for (const b of buffers) {
          encodePriorsSample(pre, { model: modelBuf, theta: b.theta, canonical: b.canon }, { n: b.m, nCols: P, canonicalWidth: CANONICAL_WIDTH, seed: config.seed, offset, purpose: RngPurpose.prior });
          offset += b.m;
        }
        await pre.run();
        const hosts = synth.needsHostCanonical ? await Promise.all(buffers.map((b) => readFloat32(dev, b.canon, 0, b.m * CANONICAL_WIDTH))) : [];
        // Warm-up (pipeline compilation) on the first chunk, then the timed pass over all chunks.
        await synth.synthesizeOnDevice(buffers[0], Math.min(buffers[0].m, 256), hosts[0]?.subarray(0, 256 * CANONICAL_WIDTH));
        const t1 = performance.now();
        for (const [k, b] of buffers.entries()) await synth.synthesizeOnDevice(b, b.m, hosts[k]);
        await dev.queue.onSubmittedWorkDone();
        const seconds = (performance.now() - t1) / 1000;
        const rate = n / seconds;
        // Where the time goes: each stage of the first chunk in its own timed submission.
        if (n === sizes[sizes.length - 1]) {
          const stages = await synth.profileOnDevice(buffers[0], buffers[0].m, hosts[0]);
          for (const [stage, sec] of Object.entries(stages)) {
            ctx.emit({ name: 'synth_stage', size: `${buffers[0].m}`, metric: stage, value: sec * 1e3, unit: 'ms', device: ctx.device, ratio_vs_cpu: null, galaxies_per_s_if_alone: buffers[0].m / sec, variant });
          }
        }
        const f = await readFloat32(dev, buffers[0].fluxes, 0, Math.min(1000, buffers[0].m) * B);
        const finite = f.every(Number.isFinite);
        ctx.emit({
          name: 'synth',
          size: `${n}`,
          metric: 'throughput',
          value: rate,
          unit: 'galaxies/s',
          device: ctx.device,
          ratio_vs_cpu: rate / cpuRate,
          seconds,
          bands: B,
          chunk,
          cpu_ref_galaxies_per_s: cpuRate,
          weights: synth.needsHostCanonical ? 'host' : 'gpu',
          finite_fluxes: finite,
          variant,
        });
        rates[variant][n] = rate;
        if (variant === 'full') ctx.emit({ name: 'synth_pairs_speedup', size: `${n}`, metric: 'pairs / full', value: rates.pairs[n] / rate, unit: 'x', device: ctx.device, ratio_vs_cpu: null });
      } finally {
        for (const b of buffers) for (const x of [b.theta, b.canon, b.fluxes, b.derived]) x.destroy();
      }
    }
  } finally {
    for (const v of variants) v.synth.destroy();
    modelBuf.destroy();
  }

  async function drawCanonical(offset: number, n: number): Promise<Float32Array> {
    const theta = createStorageBuffer(dev, n * P * 4);
    const canon = createStorageBuffer(dev, n * CANONICAL_WIDTH * 4);
    try {
      await encodePriorsSample(new ComputeBatch(dev), { model: modelBuf, theta, canonical: canon }, { n, nCols: P, canonicalWidth: CANONICAL_WIDTH, seed: config.seed, offset, purpose: RngPurpose.prior }).run();
      return await readFloat32(dev, canon, 0, n * CANONICAL_WIDTH);
    } finally {
      theta.destroy();
      canon.destroy();
    }
  }
}
