/**
 * SFH x metallicity weight program (shaders/synth/weights.wgsl): canonical parameter rows ->
 * per-galaxy weight rows W[g][a*nZ + z] = (mass formed in age bin a [Msun]) x (weight of grid
 * metallicity z), the left operand of the photometry GEMM with the grid L_nu[(a, z)][lambda].
 * The f32 mirror of binSfh / sfhDerivedQuantities (src/physics/sfh.ts) and
 * single/logNormalMetallicityWeights (src/physics/metallicity.ts).
 *
 * Bindings (all storage buffers, f32):
 *   0 params   N x 12   canonical rows (src/simulate/canonical.ts)
 *   1 aux      N x 4    [ageOfUniverseYr, luminosityDistanceMpc, -, -]
 *   2 edges    (A+1) x 2  age-bin edges as two-float pairs (packAgeEdges)
 *   3 zTable   nZ x 4   [log10 Z, Z, upper log10-Z bin edge hi, lo] (packMetallicityTable)
 *   4 wOld     N x A*nZ (out)
 *   5 derived  N x 4    (out) [sfr10MyrMsunPerYr, sfr100MyrMsunPerYr, coveredFraction, 0]
 *   6 wYoung   N x nYoung*nZ (out, only with youngAges)
 * Uniforms at binding 7: galaxies, ages, metallicities, nYoung, gridX, fallbackAge, one (= 1.0),
 * galaxyOffset, zLo.
 * Defines: SFH_FAMILY, Z_INTERP, SPLIT_YOUNG, PAIR_Z, WG, MAX_AGES, MAX_Z.
 *
 * pairZ: the galaxies [galaxyOffset, galaxyOffset + N) all have one metallicity between grid nodes
 * zLo and zLo + 1 (the caller groups them); wOld then holds N x 2A weights W[g][a*2 + t] for node
 * zLo + t, the left operand of a GEMM with K = 2A against that pair of grid metallicities.
 *
 * Parallelisation (see the shader header): one workgroup per galaxy, threads over age bins, a
 * workgroup reduction for the normalisation, coalesced row writes; the dispatch is folded into 2D
 * for more than 65535 galaxies. H100, BC03-like grid: 1.6-2.4e8 galaxies/s for the simple families
 * (write-bandwidth bound), 4e7 for logNormal / doublePowerLaw (bench/synthWeights.ts).
 *
 * Deviation from binSfh by design: where the float64 reference underflows (an SFH whose part inside
 * the grid is < ~1e-308 of its total) binSfh falls back to the oldest bin or returns NaN; the kernel
 * scales each galaxy to its covered range first and returns the renormalised bins. The fallback
 * (all mass to fallbackAge) remains for an f32 sum of exactly 0, which the scaling makes unreachable
 * in practice.
 */
import { fold2D } from '../../src/gpu/dispatch.js';
import type { Bindings, ComputeBatch, ProgramInfo } from '../../src/gpu/kernel.js';

/** SFH families in the order of SFH_FAMILY_CODES (src/simulate/canonical.ts). */
export const SYNTH_SFH_FAMILIES = ['constant', 'exponential', 'delayedExponential', 'logNormal', 'doublePowerLaw', 'quantiles'] as const;
export type SynthSfhFamily = (typeof SYNTH_SFH_FAMILIES)[number];
export type SynthZInterpolation = 'log10Z' | 'linearZ';

/** Canonical row width (CANONICAL_WIDTH in src/simulate/canonical.ts). */
export const SYNTH_PARAMS_WIDTH = 12;
/** Default threads per workgroup (one galaxy per workgroup): fastest of 32..256 on an H100 and lavapipe. */
export const SYNTH_WEIGHTS_WG = 32;

export interface SynthWeightsShape {
  /** Galaxies N (>= 1). */
  galaxies: number;
  /** Grid ages A (>= 1); the edges buffer holds A+1 two-float edges. */
  ages: number;
  /** Grid metallicities nZ (>= 1). */
  metallicities: number;
  family: SynthSfhFamily;
  /** Single-metallicity interpolation (metallicity.ts); default 'log10Z'. */
  zInterpolation?: SynthZInterpolation;
  /** Split the ages below this index into a second matrix (Charlot & Fall birth clouds); see youngAgeCount. */
  youngAges?: number;
  /** Age index that gets all the mass when no bin holds any (binSfh's fallback); see fallbackAgeIndex. */
  fallbackAge: number;
  /** Threads per workgroup (power of two, 32..256); default SYNTH_WEIGHTS_WG. */
  workgroupSize?: number;
  /** First galaxy row of this dispatch in every buffer (default 0). */
  galaxyOffset?: number;
  /** Two-metallicity output for galaxies between nodes zLo and zLo + 1 (not with youngAges). */
  pairZ?: { zLo: number };
}

/** Weight columns per galaxy for a shape: 2A with pairZ, else A*nZ. */
export function synthWeightColumns(shape: Pick<SynthWeightsShape, 'ages' | 'metallicities' | 'pairZ'>): number {
  return shape.pairZ ? 2 * shape.ages : shape.ages * shape.metallicities;
}

function checkInt(name: string, v: number, min: number, max = 2 ** 32 - 1): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`synthWeights: ${name} must be an integer in [${min}, ${max}], got ${v}`);
}

export function synthWeightsProgram(shape: SynthWeightsShape): ProgramInfo {
  const { galaxies, ages, metallicities, family } = shape;
  checkInt('galaxies', galaxies, 1);
  checkInt('ages', ages, 1);
  checkInt('metallicities', metallicities, 1);
  const code = SYNTH_SFH_FAMILIES.indexOf(family);
  if (code < 0) throw new RangeError(`synthWeights: unknown SFH family "${family}" (${SYNTH_SFH_FAMILIES.join(', ')})`);
  const interp = shape.zInterpolation ?? 'log10Z';
  if (interp !== 'log10Z' && interp !== 'linearZ') throw new RangeError(`synthWeights: zInterpolation must be 'log10Z' or 'linearZ', got "${interp}"`);
  const split = shape.youngAges !== undefined;
  if (split) checkInt('youngAges', shape.youngAges!, 0, ages);
  checkInt('fallbackAge', shape.fallbackAge, 0, ages - 1);
  const wg = shape.workgroupSize ?? SYNTH_WEIGHTS_WG;
  if (![32, 64, 128, 256].includes(wg)) throw new RangeError(`synthWeights: workgroupSize must be 32, 64, 128 or 256, got ${wg}`);
  const off = shape.galaxyOffset ?? 0;
  checkInt('galaxyOffset', off, 0);
  if (shape.pairZ) {
    if (split) throw new RangeError('synthWeights: pairZ cannot be combined with youngAges');
    checkInt('pairZ.zLo', shape.pairZ.zLo, 0, metallicities - 2);
  }
  const cols = synthWeightColumns(shape);
  if ((off + galaxies) * cols > 2 ** 32 - 1) throw new RangeError(`synthWeights: ${galaxies} x ${cols} weights exceed u32 indexing (split the batch)`);
  const { workgroups, gridX } = fold2D(galaxies);
  return {
    name: `synthWeights(${family})`,
    shader: 'synth/weights.wgsl',
    defines: {
      SFH_FAMILY: code,
      Z_INTERP: interp === 'log10Z' ? 0 : 1,
      SPLIT_YOUNG: split,
      PAIR_Z: !!shape.pairZ,
      WG: `${wg}u`,
      // Workgroup arrays sized by capacity buckets: a new grid recompiles, a new batch size does not.
      MAX_AGES: `${Math.ceil(ages / wg) * wg}u`,
      MAX_Z: `${Math.ceil(metallicities / 8) * 8}u`,
    },
    workgroups,
    uniforms: [
      ['u32', galaxies],
      ['u32', ages],
      ['u32', metallicities],
      ['u32', split ? shape.youngAges! : 0],
      ['u32', gridX],
      ['u32', shape.fallbackAge],
      ['f32', 1], // opaque 1.0 for the compensated arithmetic (shaders/common/special.wgsl)
      ['u32', off],
      ['u32', shape.pairZ?.zLo ?? 0],
    ],
    uniformBinding: 7,
  };
}

export interface SynthWeightsBuffers {
  params: GPUBuffer;
  aux: GPUBuffer;
  edges: GPUBuffer;
  zTable: GPUBuffer;
  wOld: GPUBuffer;
  derived: GPUBuffer;
  /** Required with shape.youngAges. */
  wYoung?: GPUBuffer;
}

/** Bytes each buffer must hold for a shape. */
export function synthWeightsSizes(shape: SynthWeightsShape): Record<keyof SynthWeightsBuffers, number> {
  const { ages: A, metallicities: nZ } = shape;
  const N = shape.galaxies + (shape.galaxyOffset ?? 0);
  return {
    params: N * SYNTH_PARAMS_WIDTH * 4,
    aux: N * 16,
    edges: (A + 1) * 8,
    zTable: nZ * 16,
    wOld: N * synthWeightColumns(shape) * 4,
    derived: N * 16,
    wYoung: N * (shape.youngAges ?? 0) * nZ * 4,
  };
}

/** Records the weights kernel into `batch`; checks buffer sizes against the shape. */
export function encodeSynthWeights(batch: ComputeBatch, buffers: SynthWeightsBuffers, shape: SynthWeightsShape): ComputeBatch {
  const program = synthWeightsProgram(shape);
  const sizes = synthWeightsSizes(shape);
  const split = shape.youngAges !== undefined;
  if (split && !buffers.wYoung) throw new Error('synthWeights: youngAges given but no wYoung buffer');
  if (!split && buffers.wYoung) throw new Error('synthWeights: a wYoung buffer needs shape.youngAges');
  const maxBinding = batch.device.limits.maxStorageBufferBindingSize;
  for (const key of Object.keys(sizes) as (keyof SynthWeightsBuffers)[]) {
    const b = buffers[key];
    if (!b) continue;
    if (b.size < sizes[key]) throw new RangeError(`synthWeights: buffer ${key} holds ${b.size} bytes, the shape needs ${sizes[key]}`);
    if (sizes[key] > maxBinding) throw new RangeError(`synthWeights: buffer ${key} needs ${sizes[key]} bytes > maxStorageBufferBindingSize ${maxBinding} (split the batch)`);
  }
  const bindings: Bindings = { 0: buffers.params, 1: buffers.aux, 2: buffers.edges, 3: buffers.zTable, 4: buffers.wOld, 5: buffers.derived };
  if (split) bindings[6] = buffers.wYoung!;
  return batch.add(program, bindings);
}

// ---------------------------------------------------------------------------------------------
// Host-side packing (float64 -> the f32 layouts the shader reads)
// ---------------------------------------------------------------------------------------------

/**
 * Age-bin edges [yr] (e.g. ageBinEdgesYr(ages, convention) from src/physics/sfh.ts: A+1 values,
 * ascending, first 0) as two-float pairs (hi = fround(e), lo = fround(e - hi)), so that the shader
 * forms differences of edges and ages to float64-like accuracy.
 */
export function packAgeEdges(edgesYr: ArrayLike<number>): Float32Array {
  const n = edgesYr.length;
  if (n < 2) throw new RangeError(`packAgeEdges: need >= 2 edges, got ${n}`);
  if (edgesYr[0] !== 0) throw new RangeError(`packAgeEdges: the first edge must be 0, got ${edgesYr[0]}`);
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const e = edgesYr[i];
    if (!Number.isFinite(e) || (i > 0 && !(e >= edgesYr[i - 1]))) throw new RangeError(`packAgeEdges: edges must be finite and non-decreasing (index ${i}: ${e})`);
    const hi = Math.fround(e);
    out[2 * i] = hi;
    out[2 * i + 1] = Math.fround(e - hi);
  }
  return out;
}

/**
 * The metallicity table: per grid Z (mass fraction, strictly increasing) [log10 Z, Z, upper bin
 * edge in log10 Z as a two-float pair], the edges being the log10 midpoints of log10ZBinEdges
 * (src/physics/metallicity.ts).
 */
export function packMetallicityTable(gridZ: ArrayLike<number>): Float32Array {
  const n = gridZ.length;
  if (n < 1) throw new RangeError('packMetallicityTable: the metallicity axis is empty');
  const out = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const z = gridZ[i];
    if (!(z > 0) || !Number.isFinite(z)) throw new RangeError(`packMetallicityTable: metallicity ${i} must be finite and > 0, got ${z}`);
    if (i > 0 && !(z > gridZ[i - 1])) throw new RangeError(`packMetallicityTable: metallicities must increase strictly (index ${i}: ${gridZ[i - 1]} -> ${z})`);
    out[4 * i] = Math.log10(z);
    out[4 * i + 1] = z;
    if (i < n - 1) {
      const e = (Math.log10(z) + Math.log10(gridZ[i + 1])) / 2;
      const hi = Math.fround(e);
      out[4 * i + 2] = hi;
      out[4 * i + 3] = Math.fround(e - hi);
    }
  }
  return out;
}

/** Number of grid ages strictly younger than the birth-cloud age (ages ascending). */
export function youngAgeCount(gridAgesYr: ArrayLike<number>, birthCloudMaxAgeYr: number): number {
  let n = 0;
  while (n < gridAgesYr.length && gridAgesYr[n] < birthCloudMaxAgeYr) n++;
  return n;
}

/** The oldest bin with positive width: where binSfh puts all the mass when the bins hold none. */
export function fallbackAgeIndex(edgesYr: ArrayLike<number>): number {
  for (let i = edgesYr.length - 2; i >= 0; i--) if (edgesYr[i + 1] > edgesYr[i]) return i;
  throw new RangeError('fallbackAgeIndex: every age bin is empty');
}
