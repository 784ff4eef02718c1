/**
 * Compute pipelines, compiled once per (shader file, defines, entry point) and cached per device.
 * Compile errors throw ShaderCompileError with the WGSL messages and the file name.
 */
import { ShaderCompileError, withErrorScopes } from './errors.js';
import { type Defines, preprocessShader, shaderCacheKey } from './shaderSource.js';

export interface PipelineRequest {
  shader: string;
  defines?: Defines;
  entryPoint?: string;
}

export class PipelineCache {
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();

  constructor(readonly device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  get(req: PipelineRequest): Promise<GPUComputePipeline> {
    const entryPoint = req.entryPoint ?? 'main';
    const key = shaderCacheKey(req.shader, req.defines, entryPoint);
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.compile(req.shader, req.defines ?? {}, entryPoint);
      // A failed compile is not cached, so a fixed shader can be retried.
      p.catch(() => this.pipelines.delete(key));
      this.pipelines.set(key, p);
    }
    return p;
  }

  private async compile(shader: string, defines: Defines, entryPoint: string): Promise<GPUComputePipeline> {
    const code = await preprocessShader(shader, defines);
    const module = this.device.createShaderModule({ code, label: shader });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      const lines = code.split('\n');
      throw new ShaderCompileError(
        shader,
        errors.map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}\n    > ${lines[m.lineNum - 1]?.trim() ?? ''}`),
      );
    }
    try {
      return await withErrorScopes(this.device, `pipeline for shaders/${shader} (${entryPoint})`, () =>
        this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint }, label: shader }),
      );
    } catch (e) {
      // createComputePipelineAsync rejects with a GPUPipelineError carrying the WGSL message.
      if (e instanceof Error && e.name !== 'GpuValidationError') {
        throw new ShaderCompileError(shader, [e.message]);
      }
      throw e;
    }
  }
}

const caches = new WeakMap<GPUDevice, PipelineCache>();

/** The pipeline cache of a device. */
export function pipelineCache(device: GPUDevice): PipelineCache {
  let c = caches.get(device);
  if (!c) {
    c = new PipelineCache(device);
    caches.set(device, c);
  }
  return c;
}
