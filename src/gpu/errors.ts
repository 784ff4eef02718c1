/** Errors raised by the GPU layer. Every message names what failed (shader file, kernel, buffer). */

export class GpuUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuUnavailableError';
  }
}

/** A WGSL module failed to compile; carries the file name and the compiler's messages. */
export class ShaderCompileError extends Error {
  constructor(
    readonly shaderName: string,
    readonly messages: string[],
  ) {
    super(`WGSL compile error in shaders/${shaderName}:\n${messages.join('\n')}`);
    this.name = 'ShaderCompileError';
  }
}

/** A WebGPU validation, out-of-memory or internal error caught by an error scope. */
export class GpuValidationError extends Error {
  constructor(
    readonly context: string,
    readonly gpuMessage: string,
  ) {
    super(`WebGPU error in ${context}: ${gpuMessage}`);
    this.name = 'GpuValidationError';
  }
}

export class DeviceLostError extends Error {
  constructor(readonly reason: string, message: string) {
    super(`GPU device lost (${reason}): ${message}`);
    this.name = 'DeviceLostError';
  }
}

/**
 * Runs `fn` inside validation + out-of-memory + internal error scopes and throws the first
 * error, with `context` in the message, instead of letting it fall through to a silent zero.
 */
export async function withErrorScopes<T>(device: GPUDevice, context: string, fn: () => T | Promise<T>): Promise<T> {
  device.pushErrorScope('internal');
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T;
  try {
    result = await fn();
  } finally {
    const errors = [await device.popErrorScope(), await device.popErrorScope(), await device.popErrorScope()];
    const first = errors.find((e) => e !== null);
    if (first) throw new GpuValidationError(context, first.message);
  }
  return result;
}
