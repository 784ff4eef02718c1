/**
 * The observe program (shaders/synth/observe.wgsl): spectra -> nebular, dust, redshift, IGM ->
 * band fluxes. This module lays out its lookup tables (one f32 buffer with offsets) and its uniforms.
 */
import { fold2D } from '../../src/gpu/dispatch.js';
import { type ComputeBatch, type ProgramInfo } from '../../src/gpu/kernel.js';

export const OBSERVE_WG = 64;
/**
 * Q(H) travels in units of 1e45 photons/s (grid column and nebular templates): a young population
 * emits ~1e47 photons/s per Msun, so 1e12 Msun would overflow f32 (3.4e38) in plain units.
 */
export const QH_UNIT = 1e45;

export interface ObserveTablesInput {
  /** Rest-frame wavelengths of the grid [A], ascending. */
  wavelengthAA: ArrayLike<number>;
  /** tau/tau_V curves on the grid: ISM (all stars) and birth clouds (null unless Charlot & Fall). */
  dustIsm: ArrayLike<number>;
  dustBirthCloud: ArrayLike<number> | null;
  /**
   * Nebular base templates [zIndex][uIndex] on the grid (L_nu per ionising photon, multiplied here by
   * QH_UNIT since Q(H) travels in those units) and log10 Z of zIndex; null = no nebular.
   */
  nebular: { templates: ArrayLike<number>[][]; log10Z: ArrayLike<number> } | null;
  /** Inoue 2014 coefficients (lambda_j, A1..A3 LAF, A1..A2 DLA); null unless igm = inoue14. */
  inoue14: { lambdaAA: ArrayLike<number>; laf1: ArrayLike<number>; laf2: ArrayLike<number>; laf3: ArrayLike<number>; dla1: ArrayLike<number>; dla2: ArrayLike<number> } | null;
  igm: 'inoue14' | 'madau95' | 'none';
  /** Filter curves: wavelengths [A] ascending and throughputs. */
  filters: { wavelengthAA: ArrayLike<number>; throughput: ArrayLike<number> }[];
}

export interface ObserveTables {
  data: Float32Array;
  bandInfo: Uint32Array;
  nLam: number;
  nBands: number;
  nebular: boolean;
  splitYoung: boolean;
  igmCode: 0 | 1 | 2;
  offsets: { lam: number; gm: number; gp: number; dustIsm: number; dustBc: number; neb: number; nebLogZ: number; nNebZ: number; igm: number; nIgm: number };
}

const MPC_CM = 3.0856775814913673e24;
const TEN_PC_CM = 3.0856775814913673e19;
const NJY = 1e-32;

export function buildObserveTables(t: ObserveTablesInput): ObserveTables {
  const nLam = t.wavelengthAA.length;
  const parts: ArrayLike<number>[] = [];
  let size = 0;
  const push = (a: ArrayLike<number>) => {
    const off = size;
    parts.push(a);
    size += a.length;
    return off;
  };
  const lam = t.wavelengthAA;
  // Trapezoid factors on the rest grid: g-_i = (l_i / l_(i-1) - 1) / 2, g+_i = (1 - l_i / l_(i+1)) / 2
  // (= |nu_(i-1) - nu_i| / (2 nu_i) etc.; (1+z) cancels, see filterIntegration.ts).
  const gm = new Float64Array(nLam);
  const gp = new Float64Array(nLam);
  for (let i = 0; i < nLam; i++) {
    if (i > 0) gm[i] = 0.5 * (lam[i] / lam[i - 1] - 1);
    if (i + 1 < nLam) gp[i] = 0.5 * (1 - lam[i] / lam[i + 1]);
  }
  const offsets = {
    lam: push(lam),
    gm: push(gm),
    gp: push(gp),
    dustIsm: push(t.dustIsm),
    dustBc: push(t.dustBirthCloud ?? new Float64Array(nLam)),
    neb: 0,
    nebLogZ: 0,
    nNebZ: 0,
    igm: 0,
    nIgm: 0,
  };
  if (t.nebular) {
    const nz = t.nebular.templates.length;
    if (t.nebular.templates.some((row) => row.length !== 3)) throw new Error('observe tables: nebular templates must have 3 log U columns (-3, -2, -1)');
    offsets.neb = size;
    for (let z = 0; z < nz; z++) for (let u = 0; u < 3; u++) push(Float64Array.from(t.nebular.templates[z][u], (v) => v * QH_UNIT));
    offsets.nebLogZ = push(t.nebular.log10Z);
    offsets.nNebZ = nz;
  }
  if (t.igm === 'inoue14') {
    if (!t.inoue14) throw new Error('observe tables: igm inoue14 needs its coefficients');
    const c = t.inoue14;
    const n = c.lambdaAA.length;
    const rows = new Float64Array(6 * n);
    for (let j = 0; j < n; j++) rows.set([c.lambdaAA[j], c.laf1[j], c.laf2[j], c.laf3[j], c.dla1[j], c.dla2[j]], 6 * j);
    offsets.igm = push(rows);
    offsets.nIgm = n;
  }
  const bandInfo = new Uint32Array(4 * t.filters.length);
  t.filters.forEach((f, b) => {
    if (f.wavelengthAA.length < 2) throw new Error(`observe tables: filter ${b} has fewer than 2 samples`);
    bandInfo[4 * b] = push(f.wavelengthAA);
    push(f.throughput);
    bandInfo[4 * b + 1] = f.wavelengthAA.length;
  });
  const data = new Float32Array(size);
  let o = 0;
  for (const p of parts) {
    data.set(p as ArrayLike<number>, o);
    o += p.length;
  }
  return {
    data,
    bandInfo,
    nLam,
    nBands: t.filters.length,
    nebular: !!t.nebular,
    splitYoung: !!t.dustBirthCloud,
    igmCode: t.igm === 'inoue14' ? 1 : t.igm === 'madau95' ? 2 : 0,
    offsets,
  };
}

/** Workgroup memory the program needs for `nLam` wavelengths and `nBands` bands [bytes]. */
export function observeScratchFloats(nLam: number, nBands: number): { lcap: number; scratch: number } {
  const lcap = Math.ceil(nLam / 4) * 4;
  return { lcap, scratch: Math.max(2 * lcap, OBSERVE_WG * (2 * nBands + 5)) };
}

export function observeProgram(t: ObserveTables, n: number, maxWorkgroupBytes: number): ProgramInfo {
  const { lcap, scratch } = observeScratchFloats(t.nLam, t.nBands);
  if (scratch * 4 > maxWorkgroupBytes) {
    throw new RangeError(`observe: ${t.nLam} wavelengths x ${t.nBands} bands need ${scratch * 4} B of workgroup memory, the device allows ${maxWorkgroupBytes} (resample the grid: grid build --resolution)`);
  }
  const { workgroups, gridX } = fold2D(n);
  const o = t.offsets;
  return {
    name: 'synth.observe',
    shader: 'synth/observe.wgsl',
    defines: {
      WG: `${OBSERVE_WG}u`,
      NBANDS: `${t.nBands}u`,
      LCAP: `${lcap}u`,
      SCRATCH: `${scratch}u`,
      NEBULAR: t.nebular,
      SPLIT_YOUNG: t.splitYoung,
      IGM: t.igmCode,
    },
    workgroups,
    uniforms: [
      ['u32', n],
      ['u32', t.nLam],
      ['u32', t.nBands],
      ['u32', t.nLam + 4],
      ['u32', gridX],
      ['u32', o.lam],
      ['u32', o.gm],
      ['u32', o.gp],
      ['u32', o.dustIsm],
      ['u32', o.dustBc],
      ['u32', o.neb],
      ['u32', o.nebLogZ],
      ['u32', o.nNebZ],
      ['u32', o.igm],
      ['u32', o.nIgm],
      ['u32', 0],
      ['f32', 1 / (4 * Math.PI * MPC_CM * MPC_CM) / NJY],
      ['f32', 1 / (4 * Math.PI * TEN_PC_CM * TEN_PC_CM) / NJY],
      ['f32', 2.5 * Math.LOG10E],
      ['f32', 0],
    ],
    uniformBinding: 8,
  };
}

export interface ObserveBuffers {
  canon: GPUBuffer;
  aux: GPUBuffer;
  spec: GPUBuffer;
  specYoung?: GPUBuffer;
  tables: GPUBuffer;
  bands: GPUBuffer;
  fluxes: GPUBuffer;
  /** N x 8 (see SYNTH_DERIVED_COLUMNS in src/simulate/gpuSynth.ts). */
  derived: GPUBuffer;
  /** N x 4 from the weights kernel: sfr10, sfr100, covered fraction, unused. */
  sfhDerived: GPUBuffer;
}

export function encodeObserve(batch: ComputeBatch, t: ObserveTables, b: ObserveBuffers, n: number): ComputeBatch {
  if (t.splitYoung && !b.specYoung) throw new Error('observe: Charlot & Fall dust needs the young spectra buffer');
  const bindings: Record<number, GPUBuffer> = { 0: b.canon, 1: b.aux, 2: b.spec, 4: b.tables, 5: b.bands, 6: b.fluxes, 7: b.derived, 9: b.sfhDerived };
  if (t.splitYoung) bindings[3] = b.specYoung!;
  return batch.add(observeProgram(t, n, batch.device.limits.maxComputeWorkgroupStorageSize), bindings);
}
