/**
 * A recorded, replayable list of dispatches: the pipelines, bind groups and uniform blocks of a
 * whole training step (or an evaluation block) are created ONCE, and every later step only
 * encodes setPipeline / setBindGroup / dispatchWorkgroups. `ComputeBatch` (src/gpu/kernel.ts)
 * rebuilds bind groups and uniform buffers on every run, which for a flow step of several hundred
 * dispatches costs more host time than the GPU work at small batches.
 *
 * All uniform blocks of a plan live in one buffer at minUniformBufferOffsetAlignment strides;
 * `rewrite` replaces one item's uniforms (e.g. the optimiser's learning rate), queue-ordered.
 * Passes are split at 256 dispatches, as ComputeBatch does (Dawn on lavapipe has crashed on
 * thousands of dispatches in one pass).
 */
import { packUniforms } from '../../gpu/buffers.js';
import { withErrorScopes } from '../../gpu/errors.js';
import type { Bindings, ProgramInfo } from '../../gpu/kernel.js';
import { pipelineCache } from '../../gpu/pipelines.js';
import { shaderCacheKey } from '../../gpu/shaderSource.js';

export const MAX_DISPATCHES_PER_PASS = 256;

/** Kernel name for profiles; GEMMs with their shape (M x N x K, batch, transposes). */
function describe(p: ProgramInfo): string {
  if (p.shader !== 'linalg/gemm.wgsl' || !p.uniforms) return p.name;
  const [M, N, K] = p.uniforms.map((u) => u[1]);
  const d = p.defines;
  return `gemm ${M}x${N}x${K}${p.workgroups[2] > 1 ? ` b${p.workgroups[2]}` : ''}${d.TRANS_A ? ' tA' : ''}${d.TRANS_B ? ' tB' : ''}${d.ONES_ROW ? ' +1' : ''}${d.ACT ? ' +act' : ''}${d.ACT_GRAD ? ' +act\'' : ''}${d.HAS_RESIDUAL ? ' +R' : ''} wg${p.workgroups[0] * p.workgroups[1] * p.workgroups[2]}`;
}

interface Item {
  program: ProgramInfo;
  bindings: Bindings;
}

/** Collects (program, bindings) pairs; `build` turns them into a DispatchPlan. */
export class PlanRecorder {
  readonly items: Item[] = [];

  /** Records one dispatch; returns its index (for `DispatchPlan.rewrite`). */
  add(program: ProgramInfo, bindings: Bindings): number {
    this.items.push({ program, bindings });
    return this.items.length - 1;
  }

  get length(): number {
    return this.items.length;
  }

  build(device: GPUDevice, label = 'plan'): Promise<DispatchPlan> {
    return DispatchPlan.build(device, this.items, label);
  }
}

interface Built {
  name: string;
  pipeline: GPUComputePipeline;
  group: GPUBindGroup;
  workgroups: [number, number, number];
  key: string;
  uniformOffset: number;
  uniformSize: number;
}

export class DispatchPlan {
  private constructor(
    readonly device: GPUDevice,
    readonly label: string,
    private readonly built: Built[],
    private readonly uniformBuffer: GPUBuffer | null,
  ) {}

  static async build(device: GPUDevice, items: readonly Item[], label = 'plan'): Promise<DispatchPlan> {
    const max = device.limits.maxComputeWorkgroupsPerDimension;
    for (const { program } of items) {
      for (const w of program.workgroups) {
        if (!Number.isInteger(w) || w < 0 || w > max) throw new RangeError(`${program.name}: dispatch of ${program.workgroups.join('x')} workgroups exceeds the device limit ${max} per dimension`);
      }
    }
    const cache = pipelineCache(device);
    const pipelines = await Promise.all(items.map(({ program: p }) => cache.get({ shader: p.shader, defines: p.defines, entryPoint: p.entryPoint })));
    const align = device.limits.minUniformBufferOffsetAlignment;
    const blocks = items.map(({ program }) => (program.uniforms ? packUniforms(program.uniforms) : null));
    const stride = Math.max(align, ...blocks.map((b) => (b ? Math.ceil(b.byteLength / align) * align : 0)));
    const count = blocks.filter((b) => b).length;
    return withErrorScopes(device, `dispatch plan "${label}"`, () => {
      const ub = count ? device.createBuffer({ size: count * stride, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: `${label} uniforms` }) : null;
      let slot = 0;
      const built: Built[] = items.map(({ program, bindings }, i) => {
        const entries: GPUBindGroupEntry[] = Object.entries(bindings).map(([b, r]) => ({ binding: Number(b), resource: 'buffer' in r ? r : { buffer: r } }));
        let uniformOffset = -1;
        let uniformSize = 0;
        const block = blocks[i];
        if (block && ub) {
          uniformOffset = slot++ * stride;
          uniformSize = block.byteLength;
          device.queue.writeBuffer(ub, uniformOffset, block);
          entries.push({ binding: program.uniformBinding ?? 0, resource: { buffer: ub, offset: uniformOffset, size: uniformSize } });
        }
        const group = device.createBindGroup({ layout: pipelines[i].getBindGroupLayout(0), entries, label: program.name });
        return { name: describe(program), pipeline: pipelines[i], group, workgroups: program.workgroups, key: shaderCacheKey(program.shader, program.defines, program.entryPoint ?? 'main'), uniformOffset, uniformSize };
      });
      return new DispatchPlan(device, label, built, ub);
    });
  }

  get length(): number {
    return this.built.length;
  }

  /** Replaces item i's uniforms with those of `program` (same shader and defines; queue-ordered). */
  rewrite(i: number, program: ProgramInfo): void {
    const b = this.built[i];
    if (!b) throw new RangeError(`plan ${this.label}: no item ${i}`);
    const key = shaderCacheKey(program.shader, program.defines, program.entryPoint ?? 'main');
    if (key !== b.key) throw new Error(`plan ${this.label}: item ${i} cannot change its pipeline (${b.key} -> ${key})`);
    if (!program.uniforms || b.uniformOffset < 0) return;
    const data = packUniforms(program.uniforms);
    if (data.byteLength !== b.uniformSize) throw new Error(`plan ${this.label}: item ${i} uniform size changed`);
    this.device.queue.writeBuffer(this.uniformBuffer!, b.uniformOffset, data);
  }

  /** Encodes every dispatch into `enc`, in passes of at most MAX_DISPATCHES_PER_PASS. */
  encode(enc: GPUCommandEncoder): void {
    for (let s = 0; s < this.built.length; s += MAX_DISPATCHES_PER_PASS) {
      const pass = enc.beginComputePass({ label: this.label });
      for (let i = s; i < Math.min(this.built.length, s + MAX_DISPATCHES_PER_PASS); i++) {
        const b = this.built[i];
        const [x, y, z] = b.workgroups;
        if (!(x > 0 && y > 0 && z > 0)) continue;
        pass.setPipeline(b.pipeline);
        pass.setBindGroup(0, b.group);
        pass.dispatchWorkgroups(x, y, z);
      }
      pass.end();
    }
  }

  /** Encodes and submits (does not wait). */
  submit(): void {
    const enc = this.device.createCommandEncoder({ label: this.label });
    this.encode(enc);
    this.device.queue.submit([enc.finish()]);
  }

  /**
   * Time of every dispatch, summed by kernel name: a profile for benchmarks and tuning. With
   * `timestamp-query` each dispatch gets its own timestamped pass inside one submission (no
   * per-submission overhead in the numbers); otherwise each dispatch is submitted alone and waited
   * for (wall clock, which adds the submission overhead to every entry). Mutates the buffers like a
   * real run.
   */
  async profile(repeats = 1): Promise<{ name: string; count: number; ms: number }[]> {
    const by = new Map<string, { count: number; ms: number }>();
    const note = (name: string, ms: number) => {
      const e = by.get(name) ?? { count: 0, ms: 0 };
      e.count++;
      e.ms += ms;
      by.set(name, e);
    };
    const live = this.built.filter((b) => b.workgroups.every((w) => w > 0));
    const dispatch = (pass: GPUComputePassEncoder, b: Built) => {
      pass.setPipeline(b.pipeline);
      pass.setBindGroup(0, b.group);
      pass.dispatchWorkgroups(...b.workgroups);
    };
    const timed = this.device.features.has('timestamp-query');
    const chunk = 1024;
    const qs = timed ? this.device.createQuerySet({ type: 'timestamp', count: 2 * chunk }) : null;
    const resolve = timed ? this.device.createBuffer({ size: 16 * chunk, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
    try {
      for (let r = 0; r < repeats; r++) {
        for (let s = 0; s < live.length; s += timed ? chunk : 1) {
          const part = live.slice(s, s + (timed ? chunk : 1));
          const enc = this.device.createCommandEncoder();
          part.forEach((b, i) => {
            const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } } : {});
            dispatch(pass, b);
            pass.end();
          });
          let read: GPUBuffer | null = null;
          if (qs && resolve) {
            read = this.device.createBuffer({ size: 16 * part.length, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
            enc.resolveQuerySet(qs, 0, 2 * part.length, resolve, 0);
            enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * part.length);
          }
          const t0 = performance.now();
          this.device.queue.submit([enc.finish()]);
          if (read) {
            await read.mapAsync(GPUMapMode.READ);
            const ts = new BigInt64Array(read.getMappedRange().slice(0));
            read.destroy();
            part.forEach((b, i) => note(b.name, Number(ts[2 * i + 1] - ts[2 * i]) / 1e6));
          } else {
            await this.device.queue.onSubmittedWorkDone();
            note(part[0].name, performance.now() - t0);
          }
        }
      }
    } finally {
      qs?.destroy();
      resolve?.destroy();
    }
    return [...by].map(([name, e]) => ({ name, count: e.count / repeats, ms: e.ms / repeats })).sort((a, b) => b.ms - a.ms);
  }

  destroy(): void {
    this.uniformBuffer?.destroy();
  }
}
