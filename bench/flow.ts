/**
 * Flow benchmark (issue 5): training throughput (samples/s over whole epochs: gather, forward, NLL,
 * backward, clip, Adam, one loss readback per epoch) and sampling throughput (posterior samples/s:
 * base normals, inverse through the stack, log-probs, readback and un-standardisation) of the GPU
 * flow engine, for the sbi default (5 transforms, 50 hidden) and the reference study's best run
 * (14, 30) with 8 parameters and 29 context features, and the models `npm start` trains (5, 50) with
 * 11 parameters and 30 features; 2 residual blocks, 10 bins; and the MDN head (`mdn`: 10 Gaussians,
 * 50 hidden, on the sbi default's task). Batch sizes 256..65536 (256, 512 and
 * 4096 on a software adapter). The CPU reference (the float64 CpuFlowEngine, one thread) is timed
 * on a small batch of the same architecture; ratio_vs_cpu = GPU rate / CPU rate.
 *
 * On a software adapter the engine's defaults there ('rows' conditioner kernels, idle event pump)
 * are measured side by side with the previous defaults ('gemm' path, busy pump: see
 * src/flow/gpu/network.ts LinearPath and src/flow/gpu/pump.ts), each record naming its `engine`.
 *
 * Synthetic data (a linear-Gaussian-like task, the flow's cost does not depend on the values): an
 * epoch is `steps` full batches. Each size gets one warm-up epoch (pipeline compilation, plan
 * recording), then `repeats` timed epochs (median). Options: sizes, repeats, archs (names),
 * engines (configurations to compare: 'default', 'submit2048', 'rows', 'gemm', 'gemm+busy'), profile (log a
 * per-kernel breakdown of one training step at every size).
 */
import { type FlowModel, createFlow, fitFlowStandardization } from '../src/flow/flow.js';
import { type GpuEngineOptions, GpuFlowEngine } from '../src/flow/gpuEngine.js';
import { RngPurpose, standardNormals } from '../src/flow/rng.js';
import { CpuFlowEngine } from '../src/train/engine.js';
import { type BenchContext, median } from './harness.js';

/** Engine configurations to compare (GpuEngineOptions overrides). */
const ENGINE_CONFIGS: Record<string, Pick<GpuEngineOptions, 'linear' | 'idlePump' | 'dispatchesPerSubmit'>> = {
  default: {},
  /** Training steps submitted in command buffers of ~2048 dispatches (the default before session 3 on GPUs). */
  submit2048: { dispatchesPerSubmit: 2048 },
  rows: { linear: 'rows' },
  gemm: { linear: 'gemm' },
  /** The engine's defaults on software adapters before the 'rows' path and the idle pump. */
  'gemm+busy': { linear: 'gemm', idlePump: false },
};

export interface FlowArchitecture {
  name: string;
  transforms: number;
  hidden: number;
  P: number;
  F: number;
  /** Density head (default 'nsf'); 'mdn' uses `components` Gaussians and no transforms. */
  head?: 'nsf' | 'mdn';
  components?: number;
}

export const FLOW_ARCHITECTURES: readonly FlowArchitecture[] = [
  { name: 'sbi-default', transforms: 5, hidden: 50, P: 8, F: 29 },
  { name: 'reference-study', transforms: 14, hidden: 30, P: 8, F: 29 },
  { name: 'run-model', transforms: 5, hidden: 50, P: 11, F: 30 },
  // sbi's `density_estimator="mdn"` shape (pyknos MultivariateGaussianMDN: 10 full-covariance
  // components) on the sbi default's task; `transforms` is unused (one conditioner).
  { name: 'mdn', transforms: 1, hidden: 50, P: 8, F: 29, head: 'mdn', components: 10 },
];

function syntheticData(n: number, seed: number, P: number, F: number): { theta: Float64Array; x: Float64Array } {
  const theta = standardNormals(n * P, seed, RngPurpose.user);
  const e = standardNormals(n * F, seed + 1, RngPurpose.user);
  const x = new Float64Array(n * F);
  for (let r = 0; r < n; r++) for (let f = 0; f < F; f++) x[r * F + f] = theta[r * P + (f % P)] + 0.3 * e[r * F + f];
  return { theta, x };
}

function flowFor(arch: FlowArchitecture, data: { theta: Float64Array; x: Float64Array }, n: number): FlowModel {
  const head = arch.head ?? 'nsf';
  const model = createFlow({ thetaDim: arch.P, contextDim: arch.F, head, components: arch.components ?? 10, transforms: arch.transforms, hidden: arch.hidden, blocks: 2, bins: 10, seed: 1 });
  fitFlowStandardization(model, data.theta, data.x, n);
  return model;
}

const rowsOf = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

export async function benchFlow(ctx: BenchContext): Promise<void> {
  const software = ctx.gpu.adapter.isSoftware;
  const sizes = ctx.options.sizes ?? (software ? [256, 512, 4096] : [256, 1024, 4096, 16384, 65536]);
  const configs = (ctx.options.engines as string[] | undefined) ?? (software ? ['default', 'gemm+busy'] : ['default']);
  for (const c of configs) if (!(c in ENGINE_CONFIGS)) throw new Error(`bench flow: unknown engine configuration "${c}" (${Object.keys(ENGINE_CONFIGS).join(', ')})`);
  const repeats = ctx.options.repeats ?? (software ? 1 : 3);
  // Enough rows for a few full batches at the largest size.
  const stepsAt = (b: number) => Math.max(2, Math.min(software ? 4 : 16, Math.ceil((software ? 8192 : 262144) / b)));
  const nData = Math.max(...sizes.map((b) => b * stepsAt(b)));
  const archs = (ctx.options.archs as string[] | undefined) ?? FLOW_ARCHITECTURES.map((a) => a.name);
  for (const arch of FLOW_ARCHITECTURES.filter((a) => archs.includes(a.name))) {
    const { P, F } = arch;
    const data = syntheticData(nData, 7, P, F);
    const model = flowFor(arch, data, nData);
    const label = arch.head === 'mdn' ? `${arch.name} (MDN K=${arch.components}, H=${arch.hidden}, P=${P}, F=${F})` : `${arch.name} (T=${arch.transforms}, H=${arch.hidden}, P=${P}, F=${F})`;

    // CPU reference on a small batch: one epoch of 2 x 256 rows; 512 posterior draws.
    const cpu = new CpuFlowEngine(model);
    await cpu.setData({ theta: data.theta, x: data.x, n: nData });
    let t0 = performance.now();
    await cpu.trainEpoch({ rows: rowsOf(512), seed: 0, epoch: 0, batchSize: 256, lr: 5e-4, clipNorm: 5 });
    const cpuTrain = 512 / ((performance.now() - t0) / 1000);
    const nCtx = 64;
    const cpuDraws = 512;
    const req = (m: number, seed: number) => ({
      x: data.x.subarray(0, nCtx * F),
      nCtx,
      ctxIndex: Uint32Array.from({ length: m }, (_, i) => Math.floor((i * nCtx) / m)),
      drawIndex: Float64Array.from({ length: m }, (_, i) => i),
      seed,
    });
    t0 = performance.now();
    await cpu.sample(req(cpuDraws, 1));
    const cpuSample = cpuDraws / ((performance.now() - t0) / 1000);
    ctx.log(`${label}: CPU reference ${cpuTrain.toFixed(0)} training samples/s (batch 256), ${cpuSample.toFixed(0)} posterior samples/s (float64, one thread)`);
    await cpu.dispose();

    for (const batch of sizes) for (const config of configs) {
      const steps = stepsAt(batch);
      const n = batch * steps;
      const engine = await GpuFlowEngine.create(model, { gpu: ctx.gpu, ...ENGINE_CONFIGS[config], evalBlock: Math.min(Math.max(batch, 4096), software ? 16384 : 262144) });
      const path = engine.net.linear;
      const tag = configs.length > 1 ? ` ${config}` : '';
      try {
        await engine.setData({ theta: data.theta, x: data.x, n: nData });
        const rows = rowsOf(n);
        const spec = (epoch: number) => ({ rows, seed: 0, epoch, batchSize: batch, lr: 5e-4, clipNorm: 5 });
        await engine.trainEpoch(spec(0)); // warm-up: compiles and records the step
        const times: number[] = [];
        let loss = NaN;
        for (let r = 0; r < repeats; r++) {
          t0 = performance.now();
          loss = (await engine.trainEpoch(spec(r + 1))).meanLoss;
          times.push((performance.now() - t0) / 1000);
        }
        const sec = median(times);
        const trainRate = n / sec;
        ctx.emit({
          name: 'flow-train',
          size: `${arch.name} b=${batch}${tag}`,
          metric: 'training throughput',
          value: trainRate,
          unit: 'samples/s',
          device: ctx.device,
          ratio_vs_cpu: trainRate / cpuTrain,
          arch: arch.name,
          head: arch.head ?? 'nsf',
          transforms: arch.transforms,
          hidden: arch.hidden,
          theta_dim: P,
          context_dim: F,
          engine: config,
          linear: path,
          batch,
          steps_per_epoch: steps,
          epoch_seconds: sec,
          dispatches_per_step: engine.lastStepDispatches,
          mean_loss: loss,
          cpu_ref_samples_per_s: cpuTrain,
        });

        if (ctx.options.profile) {
          const prof = await engine.profileTrainStep(batch, { lr: 5e-4, clipNorm: 5 });
          const total = prof.reduce((a, p) => a + p.ms, 0);
          ctx.log(`  profile ${label} b=${batch}${tag} (each dispatch alone, ${total.toFixed(1)} ms):`);
          for (const p of prof.slice(0, 30)) ctx.log(`    ${p.name.padEnd(36)} x${String(p.count).padEnd(4)} ${p.ms.toFixed(3).padStart(9)} ms  ${((100 * p.ms) / total).toFixed(1)}%`);
          const encodeMs = await engine.encodeMsTrainStep(batch, { lr: 5e-4, clipNorm: 5 });
          ctx.log(`  host encode of one step: ${encodeMs.toFixed(3)} ms; wall per step ${((1000 * sec) / steps).toFixed(3)} ms; GPU sum ${total.toFixed(3)} ms`);
          const sp = await engine.profileSample(batch);
          const stotal = sp.reduce((a, p) => a + p.ms, 0);
          ctx.log(`  profile sampling m=${batch} (${stotal.toFixed(2)} ms):`);
          for (const p of sp.slice(0, 12)) ctx.log(`    ${p.name.padEnd(36)} x${String(p.count).padEnd(4)} ${p.ms.toFixed(3).padStart(9)} ms  ${((100 * p.ms) / stotal).toFixed(1)}%`);
        }

        // Sampling: `batch` draws per call (in engine blocks of evalBlock).
        const m = batch;
        await engine.sample(req(m, 0)); // warm-up
        const st: number[] = [];
        const phases: (typeof engine.lastSampleTimings)[] = [];
        for (let r = 0; r < repeats; r++) {
          const q = req(m, r + 1);
          t0 = performance.now();
          const s = await engine.sample(q);
          st.push((performance.now() - t0) / 1000);
          phases.push({ ...engine.lastSampleTimings });
          if (!s.logProb.every(Number.isFinite)) throw new Error(`${label}: non-finite sample log-probs`);
        }
        const ssec = median(st);
        const sampleRate = m / ssec;
        ctx.emit({
          name: 'flow-sample',
          size: `${arch.name} m=${m}${tag}`,
          metric: 'sampling throughput',
          value: sampleRate,
          unit: 'posterior samples/s',
          device: ctx.device,
          ratio_vs_cpu: sampleRate / cpuSample,
          arch: arch.name,
          head: arch.head ?? 'nsf',
          transforms: arch.transforms,
          hidden: arch.hidden,
          engine: config,
          linear: path,
          draws: m,
          contexts: nCtx,
          seconds: ssec,
          // Host phases of the median call (ms): to the first submission, waiting for readbacks, converting.
          ...(() => {
            const p = phases[st.indexOf(ssec)] ?? phases[0];
            return { prep_ms: p.prepMs, wait_ms: p.waitMs, finish_ms: p.finishMs };
          })(),
          cpu_ref_samples_per_s: cpuSample,
        });
      } finally {
        await engine.dispose();
      }
    }
  }
}
