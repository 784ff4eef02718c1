/**
 * Noise model + features kernel (shaders/simulate/noise.wgsl): N x B noiseless fluxes [nJy] on the
 * GPU -> noisy fluxes, 1-sigma errors (both N x B) and the feature matrix (N x F) in one pass, with
 * the Philox streams of src/simulate/noise.ts, so the result equals
 * src/simulate/features.ts simulateObservations to f32 rounding.
 *
 * The model (noise type, scatter mode, photometry kind, which optional features) is compile-time
 * (defines = pipeline cache key); N, B, F, seed, the row offset and the scalars are uniforms; the
 * per-band constants and the empirical bin tables live in small storage buffers uploaded once per
 * NoiseKernel.
 */
import { createStorageBuffer, readFloat32, uploadBuffer } from '../src/gpu/buffers.js';
import { fold2D } from '../src/gpu/dispatch.js';
import { ComputeBatch, type ProgramInfo, ceilDiv } from '../src/gpu/kernel.js';
import type { Defines } from '../src/gpu/shaderSource.js';
import { AB_ZP_NJY, fluxNJyFromMag } from '../src/simulate/empiricalNoise.js';
import type { ResolvedFeatures } from '../src/simulate/features.js';
import type { ResolvedNoise } from '../src/simulate/noise.js';

export const NOISE_WORKGROUP = 64;
/** f32 per band in the band table (binding 1). */
export const NOISE_BAND_STRIDE = 8;

export interface NoiseShape {
  /** Galaxies in this dispatch. */
  n: number;
  /** Philox seed (a non-negative safe integer). */
  seed: number;
  /** Global row of the first galaxy (the chunk's offset), so chunking does not change the draws. */
  indexOffset?: number;
  /** Redshift of galaxy i at redshift[i * redshiftStride + redshiftOffset] (e.g. 12, 0 for the canonical matrix). */
  redshiftStride?: number;
  redshiftOffset?: number;
}

function checkCompatible(noise: ResolvedNoise, feats: ResolvedFeatures): void {
  const B = noise.bands.length;
  if (feats.bands.length !== B || feats.bands.some((b, k) => b !== noise.bands[k])) throw new Error('noise kernel: noise and features must have the same bands in the same order');
}

/** Compile-time defines of the kernel for a model. */
export function noiseDefines(noise: ResolvedNoise, feats: ResolvedFeatures): Defines {
  checkCompatible(noise, feats);
  const scatter = noise.type === 'depth' && noise.depthScatterMag > 0 ? (noise.depthScatterMode === 'galaxy' ? 1 : 2) : 0;
  return {
    NOISE: noise.type === 'none' ? 0 : noise.type === 'depth' ? 1 : 2,
    SCATTER: scatter,
    PHOT: feats.photometry === 'asinhMag' ? 0 : 1,
    ERRORS: feats.includeErrors,
    MASK: feats.includeMask,
    REDSHIFT: feats.includeRedshift,
  };
}

/** The per-band table (binding 1): B x NOISE_BAND_STRIDE f32 (see the shader's header). */
export function noiseBandTable(noise: ResolvedNoise, feats: ResolvedFeatures): Float32Array {
  checkCompatible(noise, feats);
  const B = noise.bands.length;
  const t = new Float32Array(B * NOISE_BAND_STRIDE);
  let off = 0;
  for (let b = 0; b < B; b++) {
    const o = b * NOISE_BAND_STRIDE;
    const soft = feats.softeningNJy[b];
    t[o] = noise.sigma1NJy[b];
    t[o + 1] = feats.dropoutProb[b];
    t[o + 2] = soft;
    t[o + 3] = AB_ZP_NJY - 2.5 * Math.log10(soft);
    if (noise.tables) {
      const nodes = noise.tables[b].magNodes;
      t[o + 4] = off;
      t[o + 5] = nodes.length;
      t[o + 6] = fluxNJyFromMag(nodes[nodes.length - 1]);
      off += nodes.length;
    }
  }
  if (off >= 1 << 24) throw new Error(`noise kernel: ${off} empirical nodes exceed the f32-exact offset range`);
  return t;
}

/** The empirical node table (binding 2): (mag, ln q16, ln q50, ln q84) per node, bands concatenated. */
export function noiseEmpiricalTable(noise: ResolvedNoise): Float32Array | null {
  if (!noise.tables) return null;
  const total = noise.tables.reduce((s, t) => s + t.magNodes.length, 0);
  const out = new Float32Array(total * 4);
  let k = 0;
  for (const t of noise.tables)
    for (let j = 0; j < t.magNodes.length; j++, k++) {
      out[4 * k] = t.magNodes[j];
      out[4 * k + 1] = t.lnQ16[j];
      out[4 * k + 2] = t.lnQ50[j];
      out[4 * k + 3] = t.lnQ84[j];
    }
  return out;
}

/** The pure program description for one dispatch. */
export function noiseProgram(noise: ResolvedNoise, feats: ResolvedFeatures, shape: NoiseShape): ProgramInfo {
  const { n, seed } = shape;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`noise kernel: n must be a positive integer, got ${n}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`noise kernel: seed must be a non-negative safe integer, got ${seed}`);
  const off = shape.indexOffset ?? 0;
  if (!Number.isSafeInteger(off) || off < 0 || !Number.isSafeInteger(off + n)) throw new RangeError(`noise kernel: indexOffset must be a non-negative safe integer, got ${off}`);
  const B = noise.bands.length;
  if (n * Math.max(B, feats.width) >= 2 ** 32) throw new RangeError(`noise kernel: n = ${n} too large for u32 indexing with ${Math.max(B, feats.width)} columns (split the batch)`);
  const zStride = shape.redshiftStride ?? 1;
  const zOffset = shape.redshiftOffset ?? 0;
  const { workgroups, gridX } = fold2D(ceilDiv(n, NOISE_WORKGROUP));
  const split = (v: number): [number, number] => [v % 4294967296 >>> 0, Math.floor(v / 4294967296) >>> 0];
  const [seedLo, seedHi] = split(seed);
  const [offLo, offHi] = split(off);
  return {
    name: 'noise',
    shader: 'simulate/noise.wgsl',
    defines: noiseDefines(noise, feats),
    workgroups,
    uniforms: [
      ['u32', n],
      ['u32', B],
      ['u32', feats.width],
      ['u32', gridX],
      ['u32', seedLo],
      ['u32', seedHi],
      ['u32', offLo],
      ['u32', offHi],
      ['u32', zStride],
      ['u32', zOffset],
      ['u32', Math.max(feats.errorColumn, 0)],
      ['u32', Math.max(feats.maskColumn, 0)],
      ['u32', Math.max(feats.redshiftColumn, 0)],
      ['f32', noise.errorFloorFrac],
      ['f32', noise.depthScatterMag],
      ['f32', feats.fluxScale],
      ['f32', feats.fillValue],
    ],
    uniformBinding: 7,
  };
}

export interface NoiseBuffers {
  /** N x B noiseless fluxes [nJy]. */
  trueFlux: GPUBuffer;
  /** Redshift source (with includeRedshift), read at i * redshiftStride + redshiftOffset. */
  redshift?: GPUBuffer;
  /** N x B outputs. */
  noisyFlux: GPUBuffer;
  error: GPUBuffer;
  /** N x F output. */
  features: GPUBuffer;
}

/** The kernel for one model: owns the uploaded band and empirical tables. */
export class NoiseKernel {
  readonly bandTable: GPUBuffer;
  readonly empiricalTable: GPUBuffer | null;

  constructor(
    readonly device: GPUDevice,
    readonly noise: ResolvedNoise,
    readonly features: ResolvedFeatures,
  ) {
    this.bandTable = uploadBuffer(device, noiseBandTable(noise, features), 'noise band table');
    const emp = noiseEmpiricalTable(noise);
    this.empiricalTable = emp ? uploadBuffer(device, emp, 'noise empirical table') : null;
  }

  /** Records one dispatch over shape.n galaxies. */
  encode(batch: ComputeBatch, bufs: NoiseBuffers, shape: NoiseShape): ComputeBatch {
    const program = noiseProgram(this.noise, this.features, shape);
    const bindings: Record<number, GPUBuffer> = { 0: bufs.trueFlux, 1: this.bandTable, 4: bufs.noisyFlux, 5: bufs.error, 6: bufs.features };
    if (this.empiricalTable) bindings[2] = this.empiricalTable;
    if (this.features.includeRedshift) {
      if (!bufs.redshift) throw new Error('noise kernel: includeRedshift needs a redshift buffer');
      bindings[3] = bufs.redshift;
    }
    return batch.add(program, bindings);
  }

  /**
   * Convenience: uploads N x B fluxes (and redshifts), runs, reads back. For pipelines that keep the
   * fluxes on the GPU use encode().
   */
  async run(
    trueFluxNJy: Float32Array,
    shape: Omit<NoiseShape, 'n'> & { redshift?: Float32Array },
  ): Promise<{ noisyFluxNJy: Float32Array; errorNJy: Float32Array; features: Float32Array }> {
    const B = this.noise.bands.length;
    const F = this.features.width;
    if (trueFluxNJy.length % B !== 0 || trueFluxNJy.length === 0) throw new Error(`noise kernel: ${trueFluxNJy.length} fluxes are not N x ${B} with N >= 1`);
    const n = trueFluxNJy.length / B;
    const dev = this.device;
    const tf = uploadBuffer(dev, trueFluxNJy, 'true flux');
    const z = this.features.includeRedshift ? uploadBuffer(dev, shape.redshift ?? new Float32Array(0), 'redshift') : undefined;
    if (z && (!shape.redshift || shape.redshift.length < (n - 1) * (shape.redshiftStride ?? 1) + (shape.redshiftOffset ?? 0) + 1))
      throw new Error('noise kernel: includeRedshift needs a redshift for every galaxy');
    const noisy = createStorageBuffer(dev, n * B * 4, 'noisy flux');
    const err = createStorageBuffer(dev, n * B * 4, 'flux error');
    const feat = createStorageBuffer(dev, n * F * 4, 'features');
    try {
      await this.encode(new ComputeBatch(dev, { label: 'noise' }), { trueFlux: tf, redshift: z, noisyFlux: noisy, error: err, features: feat }, { ...shape, n }).run();
      return {
        noisyFluxNJy: await readFloat32(dev, noisy, 0, n * B),
        errorNJy: await readFloat32(dev, err, 0, n * B),
        features: await readFloat32(dev, feat, 0, n * F),
      };
    } finally {
      for (const b of [tf, z, noisy, err, feat]) b?.destroy();
    }
  }

  destroy(): void {
    this.bandTable.destroy();
    this.empiricalTable?.destroy();
  }
}
