/**
 * Rational-quadratic spline kernels (kernels/nn/spline.ts): spline evaluations per second (one
 * evaluation = one (sample, dim) scalar) for forward (+ logdet), inverse (+ logdet) and backward
 * (dL/du and dL/draw), at N samples x D transformed dims with K bins (default N = 65536, D = 4,
 * K = 10, B = 3: a coupling layer of an 8-parameter sbi-default flow at a large batch). GPU time from
 * timestamp queries (or the wall clock) over `repeats` back-to-back dispatches; CPU reference = the
 * float64 splineForward / splineInverse / splineBackward (src/flow/spline.ts) timed on a sample and
 * scaled. Also reports the bandwidth of the dominant traffic (the N D (3K - 1) raw parameters, read
 * once; the backward also writes as many gradients) and the largest |error| against the reference
 * over the sample (y / u / dL/du; logdet per sample).
 *
 * The backward is measured on both parameter paths (K <= 21): `staged` through workgroup memory
 * (coalesced) and `direct` (each thread reads/writes its own 3K - 1 values); `device_default` marks
 * the one encodeSplineBackward picks on this adapter.
 *
 * Options: sizes (N), dims (D, default 4), bins (K, default 10), repeats.
 */
import {
  encodeSplineBackward,
  encodeSplineForward,
  encodeSplineInverse,
  splineRawPerScalar,
  splineStageFor,
  splineStaged,
} from '../kernels/nn/spline.js';
import { type SplineSpec, splineBackward, splineForward, splineInverse } from '../src/flow/spline.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../src/gpu/buffers.js';
import { ComputeBatch } from '../src/gpu/kernel.js';
import { GpuTimer } from '../src/gpu/timer.js';
import type { BenchContext } from './harness.js';

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

function normals(n: number, r: () => number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return out;
}

type Op = 'forward' | 'inverse' | 'backward';

export async function benchSpline(ctx: BenchContext): Promise<void> {
  const dev = ctx.gpu.device;
  const sizes = ctx.options.sizes ?? [65536];
  const D = (ctx.options.dims as number | undefined) ?? 4;
  const K = (ctx.options.bins as number | undefined) ?? 10;
  const spec: SplineSpec = { bins: K, bound: 3, minBinWidth: 1e-3, minBinHeight: 1e-3, minDerivative: 1e-3, logitScale: 1 / Math.sqrt(50) };
  const per = splineRawPerScalar(K);
  const timer = new GpuTimer(dev, 64);
  try {
    for (const N of sizes) {
      const m = N * D;
      const r = rng(N + 17);
      const raw = normals(m * per, r, 1);
      // Inputs over 1.1 x [-B, B]: ~9 % in the identity tails, as standardised data would be.
      const u = Float32Array.from({ length: m }, () => (2 * r() - 1) * 1.1 * spec.bound);
      const gY = normals(m, r, 1);
      const gL = normals(N, r, 1);
      const bufs = {
        u: uploadBuffer(dev, u),
        raw: uploadBuffer(dev, raw),
        y: createStorageBuffer(dev, m * 4),
        u2: createStorageBuffer(dev, m * 4),
        logdet: createStorageBuffer(dev, N * 4),
        logdet2: createStorageBuffer(dev, N * 4),
        gY: uploadBuffer(dev, gY),
        gL: uploadBuffer(dev, gL),
        gU: createStorageBuffer(dev, m * 4),
        gRaw: createStorageBuffer(dev, m * per * 4),
      };
      const encode = (batch: ComputeBatch, op: Op, stage: boolean) => {
        const shape = { n: N, dims: D, spec };
        if (op === 'forward') encodeSplineForward(batch, { u: bufs.u, raw: bufs.raw, y: bufs.y, logdet: bufs.logdet }, shape);
        else if (op === 'inverse') encodeSplineInverse(batch, { y: bufs.y, raw: bufs.raw, u: bufs.u2, logdet: bufs.logdet2 }, shape);
        else encodeSplineBackward(batch, { u: bufs.u, raw: bufs.raw, gY: bufs.gY, gLogdet: bufs.gL, gU: bufs.gU, gRaw: bufs.gRaw }, { ...shape, stage });
      };
      // CPU reference on a sample of rows (the first `rows`), timed and scaled to N.
      const rows = Math.min(N, 2048);
      const uS = u.subarray(0, rows * D);
      const rawS = raw.subarray(0, rows * D * per);
      const gLe = Float64Array.from({ length: rows * D }, (_, e) => gL[Math.floor(e / D)]);
      const cpu: Record<Op, { seconds: number; run: () => unknown }> = {
        forward: { seconds: 0, run: () => splineForward(uS, rawS, spec) },
        inverse: { seconds: 0, run: () => splineInverse(uS, rawS, spec) },
        backward: { seconds: 0, run: () => splineBackward(uS, rawS, gY.subarray(0, rows * D), gLe, spec) },
      };
      for (const op of Object.keys(cpu) as Op[]) {
        cpu[op].run(); // warm up the JIT
        const t0 = performance.now();
        cpu[op].run();
        cpu[op].seconds = ((performance.now() - t0) / 1000) * (N / rows);
      }
      const stages = splineStaged(K) ? [true, false] : [false];
      const deviceDefault = splineStageFor(dev, K, m);
      const runs: [Op, boolean | null][] = [['forward', null], ['inverse', null], ...stages.map((st) => ['backward', st] as [Op, boolean])];
      for (const [op, stage] of runs) {
        const run = async (repeats: number) => {
          const batch = new ComputeBatch(dev, { timer, label: `spline ${op}` });
          for (let i = 0; i < repeats; i++) encode(batch, op, stage ?? false);
          timer.begin();
          await batch.run();
          return (await timer.end()).seconds;
        };
        await run(1); // compile + warm up (the inverse reads the y the forward wrote)
        const once = await run(1);
        const repeats = ctx.options.repeats ?? Math.max(1, Math.min(50, Math.ceil(0.5 / Math.max(once, 1e-6))));
        const seconds = (await run(repeats)) / repeats;
        // Error against the reference over the sample.
        let maxErr = 0;
        let maxLdErr = 0;
        if (op === 'forward') {
          const ref = splineForward(uS, rawS, spec);
          const y = await readFloat32(dev, bufs.y, 0, rows * D);
          const ld = await readFloat32(dev, bufs.logdet, 0, rows);
          for (let e = 0; e < rows * D; e++) maxErr = Math.max(maxErr, Math.abs(y[e] - ref.y[e]));
          for (let i = 0; i < rows; i++) {
            let s = 0;
            for (let j = 0; j < D; j++) s += ref.logdet[i * D + j];
            maxLdErr = Math.max(maxLdErr, Math.abs(ld[i] - s));
          }
        } else if (op === 'inverse') {
          const u2 = await readFloat32(dev, bufs.u2, 0, rows * D);
          for (let e = 0; e < rows * D; e++) maxErr = Math.max(maxErr, Math.abs(u2[e] - uS[e])); // round trip
        } else {
          const ref = splineBackward(uS, rawS, gY.subarray(0, rows * D), gLe, spec);
          const gU = await readFloat32(dev, bufs.gU, 0, rows * D);
          for (let e = 0; e < rows * D; e++) maxErr = Math.max(maxErr, Math.abs(gU[e] - ref.gU[e]) / (1 + Math.abs(ref.gU[e])));
        }
        const bytes = m * per * 4 * (op === 'backward' ? 2 : 1) + m * 4 * (op === 'backward' ? 3 : 2);
        ctx.emit({
          name: 'spline',
          size: `${op} N=${N} D=${D} K=${K}${stage === null ? '' : stage ? ' staged' : ' direct'}`,
          metric: 'throughput',
          value: m / seconds,
          unit: 'evaluations/s',
          device: ctx.device,
          ratio_vs_cpu: cpu[op].seconds / seconds,
          gpu_ms: seconds * 1e3,
          samples_per_s: N / seconds,
          GBps: bytes / seconds / 1e9,
          cpu_ref_evaluations_per_s: m / cpu[op].seconds,
          max_error: maxErr,
          error_kind: op === 'forward' ? 'abs y' : op === 'inverse' ? 'abs u (round trip)' : 'dL/du / (1 + |dL/du|)',
          ...(op === 'forward' ? { max_logdet_error: maxLdErr } : {}),
          ...(stage === null ? {} : { staged: stage, device_default: stage === deviceDefault }),
          repeats,
          timing: timer.source,
        });
      }
      for (const b of Object.values(bufs)) b.destroy();
    }
  } finally {
    timer.destroy();
  }
}
