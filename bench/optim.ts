/**
 * Optimiser benchmark: fused Adam steps/s (2 dispatches: finalize + update) and global-norm clip +
 * Adam throughput (3 dispatches) over flat f32 vectors of 10^4 .. 10^6 parameters. `repeats` steps
 * are recorded back to back into one submission (as a training loop does), timed by the GPU timer
 * (timestamp queries where available) and by the wall clock; the CPU reference is src/flow/adam.ts
 * (clipGradNorm + adamStep in float64) on the same n. Memory traffic per step: Adam reads p, g, m, v
 * and writes p, m, v (28 B/param); clipping reads g once more (32 B/param).
 */
import { GpuAdam } from '../kernels/nn/optim.js';
import { readFloat32, uploadBuffer } from '../src/gpu/buffers.js';
import { ComputeBatch } from '../src/gpu/kernel.js';
import { GpuTimer } from '../src/gpu/timer.js';
import { adamStep, clipGradNorm, createAdamState } from '../src/flow/adam.js';
import { randomF32 } from '../src/reference/linalg.js';
import { type BenchContext, median } from './harness.js';

/** CPU float64 reference: seconds per step (median of a few), with or without clipping. */
function cpuStepSeconds(n: number, clip: boolean, budgetS: number): number {
  const p = Float64Array.from(randomF32(n, 1, 0.5));
  const g0 = Float64Array.from(randomF32(n, 2, 0.01));
  const st = createAdamState(n);
  const times: number[] = [];
  const t0 = performance.now();
  do {
    const g = g0.slice();
    const a = performance.now();
    if (clip) clipGradNorm(g, 5);
    adamStep(p, g, st, { lr: 1e-3 });
    times.push((performance.now() - a) / 1e3);
  } while (times.length < 3 || (times.length < 50 && (performance.now() - t0) / 1e3 < budgetS));
  return median(times);
}

export async function benchOptim(ctx: BenchContext): Promise<void> {
  const { gpu } = ctx;
  const dev = gpu.device;
  const software = gpu.adapter.isSoftware;
  const sizes = ctx.options.sizes ?? [10_000, 100_000, 1_000_000];
  const timer = new GpuTimer(dev, 64);
  try {
    for (const n of sizes) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`bench optim: sizes must be positive integers, got ${n}`);
      const params = uploadBuffer(dev, randomF32(n, 1, 0.5), 'params');
      const grad = uploadBuffer(dev, randomF32(n, 2, 0.01), 'grad');
      for (const clip of [false, true]) {
        const adam = new GpuAdam(dev, n, { lr: 1e-3, maxNorm: clip ? 5 : null });
        let wallSeconds = 0;
        const run = async (steps: number) => {
          const batch = new ComputeBatch(dev, { timer, label: clip ? 'clip+adam' : 'adam' });
          for (let s = 0; s < steps; s++) adam.encodeStep(batch, params, grad);
          timer.begin();
          const w0 = performance.now();
          await batch.run();
          wallSeconds = (performance.now() - w0) / 1e3;
          return (await timer.end()).seconds;
        };
        await run(1); // compile + warm up
        const once = await run(4) / 4;
        const steps = ctx.options.repeats ?? Math.max(4, Math.min(2000, Math.ceil((software ? 0.5 : 0.2) / Math.max(once, 1e-6))));
        const seconds = (await run(steps)) / steps;
        const wallPerStep = wallSeconds / steps;
        const state = await adam.readState();
        const p = await readFloat32(dev, params, 0, Math.min(n, 1024));
        if (!p.every(Number.isFinite) || state.step !== 5 + steps) throw new Error(`bench optim: bad state after the run (step ${state.step}, finite params ${p.every(Number.isFinite)})`);
        const cpuSeconds = cpuStepSeconds(n, clip, software ? 0.3 : 0.5);
        const bytes = (clip ? 32 : 28) * n;
        const common = {
          device: ctx.device,
          ratio_vs_cpu: cpuSeconds / seconds,
          gpu_us_per_step: seconds * 1e6,
          wall_us_per_step: wallPerStep * 1e6,
          steps_per_s: 1 / seconds,
          params_per_s: n / seconds,
          effective_GBps: bytes / seconds / 1e9,
          cpu_ref_steps_per_s: 1 / cpuSeconds,
          dispatches_per_step: clip ? 3 : 2,
          steps,
          timing: timer.source,
        };
        if (clip) ctx.emit({ name: 'optim', size: String(n), metric: 'clip+adam throughput', value: n / seconds, unit: 'params/s', ...common });
        else ctx.emit({ name: 'optim', size: String(n), metric: 'adam steps', value: 1 / seconds, unit: 'steps/s', ...common });
        adam.destroy();
      }
      params.destroy();
      grad.destroy();
    }
  } finally {
    timer.destroy();
  }
}
