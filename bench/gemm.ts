/**
 * GEMM benchmark: C = A.B for square (and a few awkward) sizes. GPU time from timestamp queries
 * over `repeats` back-to-back dispatches in one submission; CPU reference = the float64 GEMM in
 * src/reference/linalg.ts, timed on a sample of rows and scaled to all rows (its cost is linear in
 * rows); max_rel_error = max |C - C_ref| / max |C_ref| over the sampled rows.
 */
import { type GemmTile, TILE_LARGE, TILE_SMALL, chooseTile, encodeGemm, tileBytes } from '../kernels/gemm.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../src/gpu/buffers.js';
import { ComputeBatch } from '../src/gpu/kernel.js';
import { GpuTimer } from '../src/gpu/timer.js';
import { gemmRefRows, normwiseRelError, randomF32 } from '../src/reference/linalg.js';
import type { BenchContext } from './harness.js';

export const NAMED_TILES: Record<string, GemmTile> = { large: TILE_LARGE, small: TILE_SMALL };

/** Parses "large", "small" or "WGXxWGY:TM4xTN4:BK" (e.g. 16x16:2x2:16). */
export function parseTile(spec: string): GemmTile | 'auto' {
  if (spec === 'auto') return 'auto';
  if (NAMED_TILES[spec]) return NAMED_TILES[spec];
  const m = /^(\d+)x(\d+):(\d+)x(\d+):(\d+)$/.exec(spec);
  if (!m) throw new Error(`--tiles: cannot parse "${spec}" (auto, large, small or WGXxWGY:TM4xTN4:BK)`);
  const [wgX, wgY, tm4, tn4, bk] = m.slice(1).map(Number);
  return { wgX, wgY, tm4, tn4, bk };
}

export function tileName(t: GemmTile | 'auto'): string {
  return t === 'auto' ? 'auto' : `${t.wgX}x${t.wgY}:${t.tm4}x${t.tn4}:${t.bk}`;
}

export async function benchGemm(ctx: BenchContext): Promise<void> {
  const { gpu } = ctx;
  const dev = gpu.device;
  const software = gpu.adapter.isSoftware;
  const sizes = ctx.options.sizes ?? (software ? [64, 127, 256, 257, 512, 1000, 1024] : [256, 512, 1024, 2048, 4096, 8192]);
  const tiles = ((ctx.options.tiles as string[] | undefined) ?? ['auto']).map(parseTile);
  const wgMem = gpu.limits.maxComputeWorkgroupStorageSize;
  const timer = new GpuTimer(dev, 64);
  try {
    for (const S of sizes) {
      const M = S, N = S, K = S;
      const bytes = 3 * S * S * 4;
      if (S * S * 4 > gpu.limits.maxStorageBufferBindingSize) {
        ctx.log(`skip ${S}: ${S}x${S} f32 exceeds maxStorageBufferBindingSize`);
        continue;
      }
      const a = randomF32(M * K, 1);
      const b = randomF32(K * N, 2);
      const A = uploadBuffer(dev, a), B = uploadBuffer(dev, b), C = createStorageBuffer(dev, M * N * 4);
      // CPU reference on a sample of rows (first, last, spread between), timed.
      const sampleRows = Math.min(M, Math.max(2, Math.ceil(3e8 / (2 * N * K))));
      const rows = [...new Set(Array.from({ length: sampleRows }, (_, i) => Math.round((i * (M - 1)) / Math.max(1, sampleRows - 1))))];
      // The reference's one-off transpose of B is amortised over all rows in a full run, so time
      // the row loop alone: once for the rows and once for none, and take the difference.
      const t0 = performance.now();
      const wantRows = gemmRefRows(a, b, { M, N, K }, rows);
      const t1 = performance.now();
      gemmRefRows(a, b, { M, N, K }, []);
      const t2 = performance.now();
      const perRow = Math.max(1e-9, (t1 - t0 - (t2 - t1)) / 1000 / rows.length);
      const cpuFullSeconds = perRow * M + (t2 - t1) / 1000;
      const flops = 2 * M * N * K;
      for (const tileSpec of tiles) {
        const tile = tileSpec === 'auto' ? chooseTile(M, N) : tileSpec;
        if (tileBytes(tile) > wgMem) {
          ctx.log(`skip tile ${tileName(tile)}: needs ${tileBytes(tile)} B of workgroup memory > ${wgMem}`);
          continue;
        }
        let wallSeconds = 0;
        const run = async (repeats: number) => {
          const batch = new ComputeBatch(dev, { timer, label: 'gemm' });
          for (let i = 0; i < repeats; i++) encodeGemm(batch, { a: A, b: B, c: C }, { M, N, K, tile });
          timer.begin();
          const w0 = performance.now();
          await batch.run();
          wallSeconds = (performance.now() - w0) / 1000;
          return (await timer.end()).seconds;
        };
        await run(1); // compile + warm up
        const once = await run(1);
        const repeats = ctx.options.repeats ?? Math.max(1, Math.min(50, Math.ceil((software ? 0.5 : 0.3) / Math.max(once, 1e-6))));
        const seconds = (await run(repeats)) / repeats;
        // Wall clock of the same submission (includes submit and wait): a check on the GPU timer.
        const wallMsPerRep = (wallSeconds / repeats) * 1e3;
        const got = await readFloat32(dev, C);
        const gotRows = Float64Array.from(rows.flatMap((r) => Array.from(got.subarray(r * N, (r + 1) * N))));
        const err = normwiseRelError(gotRows, wantRows);
        const gflops = flops / seconds / 1e9;
        ctx.emit({
          name: 'gemm',
          size: `${M}x${N}x${K}`,
          metric: 'throughput',
          value: gflops,
          unit: 'GFLOP/s',
          device: ctx.device,
          ratio_vs_cpu: cpuFullSeconds / seconds,
          gpu_ms: seconds * 1e3,
          wall_ms: wallMsPerRep,
          cpu_ref_gflops: flops / cpuFullSeconds / 1e9,
          max_rel_error: err,
          tile: tileName(tile),
          repeats,
          timing: timer.source,
          bytes,
        });
      }
      for (const buf of [A, B, C]) buf.destroy();
    }
  } finally {
    timer.destroy();
  }
}
