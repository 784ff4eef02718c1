/** Test helpers: one device per test file (created in beforeAll, destroyed in afterAll). */
import { afterAll, beforeAll } from 'vitest';
import { type Gpu, createGpu, deviceOptionsFromEnv } from '../../src/gpu/device.js';

export function useGpu(): { readonly gpu: Gpu; readonly device: GPUDevice } {
  let gpu: Gpu | undefined;
  beforeAll(async () => {
    gpu = await createGpu(deviceOptionsFromEnv());
  });
  afterAll(() => gpu?.destroy());
  return {
    get gpu() {
      if (!gpu) throw new Error('GPU not created yet (use inside a test)');
      return gpu;
    },
    get device() {
      return this.gpu.device;
    },
  };
}
