/**
 * One way to get a ready GPUDevice, in Node (Dawn through the npm `webgpu` package) and in a browser
 * (navigator.gpu). It asks for the adapter's real limits and the optional features we use, and
 * reports what it got.
 */
import { withIdlePump } from './pump.js';
import { DeviceLostError, GpuUnavailableError } from './errors.js';

/** Optional features the kernels take advantage of when present. */
export const OPTIONAL_FEATURES = ['timestamp-query', 'shader-f16', 'subgroups'] as const;

/** Limits we raise to the adapter's maximum (the defaults are far below real hardware). */
const LIMITS_TO_RAISE = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxBindGroups',
] as const;

export interface DeviceOptions {
  /** Substring of the adapter name to pick (Node only), e.g. "llvmpipe" or "H100". */
  adapter?: string;
  /** Dawn backend (Node only): vulkan, metal, d3d12, opengl, null... */
  backend?: string;
  powerPreference?: GPUPowerPreference;
  /** Features that must be present; a missing one is an error. */
  requiredFeatures?: GPUFeatureName[];
  /** Extra Dawn toggles (Node only), e.g. ["enable-dawn-features=dump_shaders"]. */
  dawnFlags?: string[];
  /** Called once if the device is lost while in use (not when we destroy it ourselves). */
  onLost?: (error: DeviceLostError) => void;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations (llvmpipe / lavapipe, SwiftShader, WARP). */
  isSoftware: boolean;
}

export interface Gpu {
  device: GPUDevice;
  adapter: AdapterSummary;
  features: ReadonlySet<string>;
  limits: Record<string, number>;
  runtime: 'node' | 'browser';
  /** Resolves with the loss info when the device is lost (also after destroy()). */
  lost: Promise<GPUDeviceLostInfo>;
  /** Destroys the device and drops the Dawn instance so that Node can exit. Idempotent. */
  destroy(): void;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

interface GpuProvider {
  gpu: GPU;
  release(): void;
}

async function nodeGpu(opts: DeviceOptions): Promise<GpuProvider> {
  let mod: { create(flags: string[]): GPU; globals: object };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    throw new GpuUnavailableError(`could not load the npm package "webgpu" (Dawn for Node): ${(e as Error).message}`);
  }
  // Dawn's WebGPU classes (GPUBufferUsage...) must be globals, as in a browser.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  // Timestamps are quantised to 100 us by default in Dawn; we want real kernel times.
  const flags = ['disable-dawn-features=timestamp_quantization', ...(opts.dawnFlags ?? [])];
  if (opts.adapter) flags.push(`adapter=${opts.adapter}`);
  if (opts.backend) flags.push(`backend=${opts.backend}`);
  let gpu: GPU | null;
  try {
    gpu = mod.create(flags);
  } catch (e) {
    throw new GpuUnavailableError(`${(e as Error).message}\n${installHint()}`);
  }
  // The Dawn instance keeps Node alive while referenced: release() drops our reference.
  return { gpu, release: () => void (gpu = null) };
}

function installHint(): string {
  return isNode && process.platform === 'linux'
    ? 'No WebGPU adapter. On Linux without a GPU install the software Vulkan driver (Mesa lavapipe): ' +
        'apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1 (Debian 12), and set XDG_RUNTIME_DIR. ' +
        'With an NVIDIA GPU, install the NVIDIA Vulkan driver (libnvidia-gl / the ICD json).'
    : 'No WebGPU adapter. Use a browser with WebGPU enabled (Chrome/Edge 113+, Firefox 141+, Safari 26+).';
}

function isSoftwareAdapter(info: GPUAdapterInfo): boolean {
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  return /llvmpipe|lavapipe|swiftshader|warp|software|cpu/.test(text);
}

export function summariseAdapter(info: GPUAdapterInfo): AdapterSummary {
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isSoftware: isSoftwareAdapter(info),
  };
}

/** Returns a ready device with the adapter's real limits and the optional features it has. */
export async function createGpu(opts: DeviceOptions = {}): Promise<Gpu> {
  let provider: GpuProvider;
  if (isNode) {
    provider = await nodeGpu(opts);
  } else {
    const nav = (globalThis as { navigator?: Navigator }).navigator;
    if (!nav?.gpu) throw new GpuUnavailableError(installHint());
    provider = { gpu: nav.gpu, release: () => {} };
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await provider.gpu.requestAdapter({ powerPreference: opts.powerPreference });
  } catch (e) {
    provider.release();
    throw new GpuUnavailableError(`requestAdapter failed: ${(e as Error).message}\n${installHint()}`);
  }
  if (!adapter) {
    provider.release();
    throw new GpuUnavailableError(installHint());
  }
  const missing = (opts.requiredFeatures ?? []).filter((f) => !adapter.features.has(f));
  if (missing.length) {
    provider.release();
    throw new GpuUnavailableError(`adapter "${adapter.info.description || adapter.info.device}" lacks required features: ${missing.join(', ')}`);
  }
  const features = new Set<GPUFeatureName>(opts.requiredFeatures ?? []);
  for (const f of OPTIONAL_FEATURES) if (adapter.features.has(f)) features.add(f);
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMITS_TO_RAISE) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const device = await adapter.requestDevice({ requiredFeatures: [...features], requiredLimits });
  let destroyed = false;
  const lost = device.lost.then((info) => {
    if (!destroyed && info.reason !== 'destroyed') {
      const err = new DeviceLostError(info.reason, info.message);
      if (opts.onLost) opts.onLost(err);
      else console.error(err.message);
    }
    return info;
  });
  device.addEventListener?.('uncapturederror', (ev: Event) => {
    const e = (ev as GPUUncapturedErrorEvent).error;
    console.error(`Uncaptured WebGPU error: ${e.message}`);
  });
  const limits: Record<string, number> = {};
  for (const key in device.limits) {
    const v = (device.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') limits[key] = v;
  }
  return {
    device,
    adapter: summariseAdapter(adapter.info),
    features: new Set(device.features),
    limits,
    runtime: isNode ? 'node' : 'browser',
    lost,
    destroy() {
      if (destroyed) return;
      destroyed = true;
      device.destroy();
      provider.release();
    },
  };
}

/** Creates a device, runs `fn`, and always destroys the device afterwards. */
export async function withGpu<T>(opts: DeviceOptions, fn: (gpu: Gpu) => Promise<T>): Promise<T> {
  const gpu = await createGpu(opts);
  try {
    // On a software adapter the whole command waits with Dawn's event pump on a timer (src/gpu/pump.ts):
    // the busy pump would take one of the CPU cores the "GPU" runs on (simulation ~1.45x faster).
    return await withIdlePump(gpu.adapter.isSoftware, () => fn(gpu));
  } finally {
    gpu.destroy();
  }
}

/** Options from the environment: SYNFERENCE_ADAPTER, SYNFERENCE_BACKEND. */
export function deviceOptionsFromEnv(env: Record<string, string | undefined> = isNode ? process.env : {}): DeviceOptions {
  return {
    adapter: env.SYNFERENCE_ADAPTER || undefined,
    backend: env.SYNFERENCE_BACKEND || undefined,
  };
}
