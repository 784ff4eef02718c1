/**
 * Kernel programs and their dispatch.
 *
 * A kernel module in `kernels/` turns a shape into a pure `ProgramInfo` (after ONNX Runtime Web's
 * JSEP ProgramInfo and tfjs' program classes): which shader, which compile-time defines (the
 * pipeline cache key), how many workgroups, and the shape uniforms. `ComputeBatch` records many
 * programs into few compute passes, owns the transient uniform buffers, and submits once.
 */
import { type UniformField, packUniforms } from './buffers.js';
import { withErrorScopes } from './errors.js';
import { pipelineCache } from './pipelines.js';
import type { Defines } from './shaderSource.js';
import type { GpuTimer } from './timer.js';

export interface ProgramInfo {
  /** Human-readable kernel name for labels and errors. */
  name: string;
  /** Path under shaders/. */
  shader: string;
  defines: Defines;
  entryPoint?: string;
  workgroups: [number, number, number];
  /** Shape uniforms, bound at `uniformBinding` as one uniform block. */
  uniforms?: UniformField[];
  uniformBinding?: number;
}

/** Buffers by binding index. */
export type Bindings = Record<number, GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number }>;

/** Dawn on lavapipe has crashed on thousands of dispatches in one pass: split long batches. */
const MAX_DISPATCHES_PER_PASS = 256;

interface Recorded {
  program: ProgramInfo;
  pipeline: Promise<GPUComputePipeline>;
  bindings: Bindings;
}

export class ComputeBatch {
  private readonly items: Recorded[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly options: { label?: string; timer?: GpuTimer } = {},
  ) {}

  get length(): number {
    return this.items.length;
  }

  /** Records one dispatch (compiling its pipeline in the background if needed). */
  add(program: ProgramInfo, bindings: Bindings): this {
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    for (const w of program.workgroups) {
      if (!Number.isInteger(w) || w < 0 || w > max) {
        throw new RangeError(`${program.name}: dispatch of ${program.workgroups.join('x')} workgroups exceeds the device limit ${max} per dimension (split the batch)`);
      }
    }
    const pipeline = pipelineCache(this.device).get({ shader: program.shader, defines: program.defines, entryPoint: program.entryPoint });
    pipeline.catch(() => {}); // surfaced in submit()
    this.items.push({ program, pipeline, bindings });
    return this;
  }

  /** Encodes and submits everything recorded; resolves when the GPU has finished. */
  async run(): Promise<void> {
    const transient: GPUBuffer[] = [];
    const names = [...new Set(this.items.map((i) => i.program.name))].join(', ');
    try {
      const pipelines = await Promise.all(this.items.map((i) => i.pipeline));
      await withErrorScopes(this.device, `kernels [${names}]`, () => {
        const enc = this.device.createCommandEncoder({ label: this.options.label });
        for (let start = 0; start < this.items.length; start += MAX_DISPATCHES_PER_PASS) {
          const pass = enc.beginComputePass(this.options.timer?.passDescriptor(this.options.label) ?? { label: this.options.label });
          for (let i = start; i < Math.min(this.items.length, start + MAX_DISPATCHES_PER_PASS); i++) {
            const { program, bindings } = this.items[i];
            const pipeline = pipelines[i];
            const entries: GPUBindGroupEntry[] = Object.entries(bindings).map(([b, r]) => ({
              binding: Number(b),
              resource: 'buffer' in r ? r : { buffer: r },
            }));
            if (program.uniforms) {
              const data = packUniforms(program.uniforms);
              const ub = this.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: `${program.name} uniforms` });
              this.device.queue.writeBuffer(ub, 0, data);
              transient.push(ub);
              entries.push({ binding: program.uniformBinding ?? 0, resource: { buffer: ub } });
            }
            const group = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: program.name });
            pass.setPipeline(pipeline);
            pass.setBindGroup(0, group);
            const [x, y, z] = program.workgroups;
            if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
          }
          pass.end();
        }
        this.device.queue.submit([enc.finish()]);
      });
      await this.device.queue.onSubmittedWorkDone();
    } finally {
      for (const b of transient) b.destroy();
      this.items.length = 0;
    }
  }
}

/** Runs a single program and waits for it. */
export async function runProgram(device: GPUDevice, program: ProgramInfo, bindings: Bindings, timer?: GpuTimer): Promise<void> {
  await new ComputeBatch(device, { label: program.name, timer }).add(program, bindings).run();
}

export const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);
