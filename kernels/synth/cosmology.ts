/** Per-galaxy cosmology (age of the universe, luminosity distance) from a CosmologyTable's nodes. */
import type { CosmologyTableArrays } from '../../src/physics/cosmology.js';
import { fold2D } from '../../src/gpu/dispatch.js';
import { type ComputeBatch, type ProgramInfo, ceilDiv } from '../../src/gpu/kernel.js';

/** The table buffer: [comoving, d comoving/dx, age, d age/dx], each `nodes` long (f32). */
export function cosmologyTableData(t: CosmologyTableArrays): Float32Array {
  const n = t.comovingMpc.length;
  const out = new Float32Array(4 * n);
  out.set(t.comovingMpc, 0);
  out.set(t.comovingDxMpc, n);
  out.set(t.ageYr, 2 * n);
  out.set(t.ageDxYr, 3 * n);
  return out;
}

export function cosmologyProgram(n: number, t: CosmologyTableArrays): ProgramInfo {
  const { workgroups, gridX } = fold2D(ceilDiv(n, 64));
  return {
    name: 'synth.cosmology',
    shader: 'synth/cosmology.wgsl',
    defines: {},
    workgroups,
    uniforms: [
      ['u32', n],
      ['u32', t.comovingMpc.length],
      ['u32', gridX],
      ['f32', t.dx],
    ],
    uniformBinding: 3,
  };
}

export function encodeCosmology(batch: ComputeBatch, b: { canon: GPUBuffer; table: GPUBuffer; aux: GPUBuffer }, n: number, t: CosmologyTableArrays): ComputeBatch {
  return batch.add(cosmologyProgram(n, t), { 0: b.canon, 1: b.table, 2: b.aux });
}
