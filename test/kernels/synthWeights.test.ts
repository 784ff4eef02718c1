/**
 * The SFH x metallicity weights kernel (kernels/synth/weights.ts, shaders/synth/{sfh,weights}.wgsl,
 * shaders/common/special.wgsl) against the float64 reference (binSfh, sfhDerivedQuantities,
 * single/logNormalMetallicityWeights), galaxy by galaxy, on random draws of every SFH family over
 * the BC03 age grid and an awkward synthetic one.
 *
 * The reference sees exactly the f32 numbers the GPU sees (canonical rows and ages of the universe
 * rounded to f32); the edges are float64 on the CPU and two-float pairs on the GPU. So the
 * differences are the kernel's own f32 arithmetic. Tolerances (per element of W, M = formed mass):
 *   |W - W_ref| <= RTOL |W_ref| + ZTOL m_a + ATOL M
 * - RTOL = 1e-5 on every bin mass: each bin is a closed form of a few special functions (~1e-7
 *   relative each) of arguments known to ~1e-7 relative; exponents up to ~20 where the mass is
 *   significant give 20 x 1.2e-7; the normalisation is a tree sum of <= 256 f32 terms (~1e-6).
 *   Observed: every draw passes with 3e-6 (and the same ZTOL, ATOL), so this leaves a margin of 3;
 *   the end criterion (band fluxes to 1e-3) needs well below 1e-3. (doublePowerLaw's masses
 *   are those of a tau perturbed by ~1e-7 |r| relative, r the log-anchor of sfh.wgsl; its
 *   sensitivity max(alpha, beta) times |r| = |ln(q/p)|/c stays O(10), hence no extra term.)
 * - ZTOL = 2e-6: metallicity weights are accurate in absolute terms to a few 1e-7 (the grid's
 *   log10 Z rounded to f32 is 1.2e-7 dex off, over intervals >= 0.1 dex).
 * - ATOL = 2e-7: bins far in a tail (e^-x, x up to 88) carry relative errors x 1.2e-7 but at most
 *   e^-x of the mass; the f32 ulp of the largest bins is 6e-8 M.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  SYNTH_SFH_FAMILIES,
  type SynthSfhFamily,
  type SynthWeightsShape,
  type SynthZInterpolation,
  encodeSynthWeights,
  fallbackAgeIndex,
  packAgeEdges,
  packMetallicityTable,
  synthWeightsProgram,
  youngAgeCount,
} from '../../kernels/synth/weights.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch, runProgram } from '../../src/gpu/kernel.js';
import { registerShaderSources } from '../../src/gpu/shaderSource.js';
import { readBc03Grid } from '../../src/grid/bc03.js';
import { resolveDataDir } from '../../src/io/paths.js';
import { CosmologyTable } from '../../src/physics/cosmology.js';
import { logNormalMetallicityWeights, singleMetallicityWeights } from '../../src/physics/metallicity.js';
import {
  type AgeBinConvention,
  ageBinEdgesYr,
  binSfh,
  createSfh,
  erf,
  erfc,
  erfcx,
  lnStandardNormalInterval,
  sfhDerivedQuantities,
  sfhParamsSchema,
} from '../../src/physics/sfh.js';
import { CANONICAL, CANONICAL_WIDTH, SFH_FAMILY_CODES, slotsToSfh } from '../../src/simulate/canonical.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();

const RTOL = 1e-5;
const ZTOL = 2e-6;
const ATOL = 2e-7;

/** Deterministic uniform stream (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Grid {
  name: string;
  ages: Float64Array;
  gridZ: Float64Array;
  convention: AgeBinConvention;
  zInterpolation: SynthZInterpolation;
  workgroupSize?: number;
}

let bc03: Grid;
/**
 * Awkward synthetic grid: 16 irregular ages with a 1-yr-wide pair (1e5, 1e5+1) and a top edge at
 * 3.1 Gyr (Synthesizer convention: the oldest age gets no bin), so most SFHs reach beyond the grid;
 * three metallicities, the first two 0.1 dex apart; linear-Z interpolation; 64-thread workgroups
 * (the BC03 runs use the default 32).
 */
const AWKWARD: Grid = {
  name: 'awkward',
  ages: Float64Array.from([3e4, 1e5, 1e5 + 1, 2e5, 7e5, 1e6, 3.3e6, 1e7, 1.2e7, 5e7, 1e8, 1.01e8, 3e8, 1e9, 2.2e9, 4e9]),
  gridZ: Float64Array.from([0.0004, 0.0005, 0.02]),
  convention: 'synthesizer',
  zInterpolation: 'linearZ',
  workgroupSize: 64,
};

const cosmo = new CosmologyTable();

beforeAll(() => {
  const g = readBc03Grid(path.join(resolveDataDir(), 'sps/bc03_lr_basel_padova1994_chabrier'), { lSunErgS: 3.828e33, dropZeroAge: true });
  bc03 = { name: 'BC03', ages: g.ages, gridZ: g.metallicities, convention: 'midpoint', zInterpolation: 'log10Z' };
});

const logUniform = (r: () => number, lo: number, hi: number) => 10 ** (Math.log10(lo) + (Math.log10(hi) - Math.log10(lo)) * r());

/** Age of the universe for a draw: mostly from the cosmology (z in [0, 20], some z = 0), some tiny, some near 13.8 Gyr. */
function drawMaxAge(r: () => number): number {
  const u = r();
  if (u < 0.08) return logUniform(r, 1e4, 1e8); // "maxAgeYr tiny" (below any real z)
  if (u < 0.16) return cosmo.ageYr(0) * (1 - 0.01 * r());
  if (u < 0.2) return cosmo.ageYr(0);
  return cosmo.ageYr(20 * r() ** 2);
}

/** SFH slots s0..s4 for a family: broad ranges plus the edges named in the issue. */
function drawSlots(family: SynthSfhFamily, r: () => number): number[] {
  // Start ages from below the first BC03 bin edge (~1.2e5 yr) to beyond the last (2.1e10 yr).
  const start = () => logUniform(r, 1e3, 5e10);
  switch (family) {
    case 'constant':
      return [start(), 0, 0, 0, 0];
    case 'exponential':
      // tau -> tiny (1e3 yr) and huge (1e15 yr), both signs.
      return [start(), (r() < 0.5 ? -1 : 1) * logUniform(r, 1e3, 1e15), 0, 0, 0];
    case 'delayedExponential':
      return [start(), logUniform(r, 1e3, 1e15), 0, 0, 0];
    case 'logNormal': {
      const s = start();
      // Peaks from just below the start (1e-4 of it) to long before the Big Bang (negative).
      const peak = s * (1 - logUniform(r, 1e-4, 3));
      return [s, logUniform(r, 0.02, 4), peak, 0, 0];
    }
    case 'doublePowerLaw':
      // The BAGPIPES prior ranges: alpha, beta log-uniform in [0.01, 1000].
      return [logUniform(r, 0.01, 1000), logUniform(r, 0.01, 1000), logUniform(r, 1e6, 1e12), 0, 0];
    case 'quantiles': {
      // Quantiles near 0 and 1 (cubed / co-cubed uniforms), sSFR from 1e-16 (and 0) to 1e-7 per yr.
      const t = [r() ** 3, 1 - r() ** 3, r()].sort((a, b) => a - b);
      const u = r();
      const ssfr = u < 0.05 ? -Infinity : -16 + 8.5 * r();
      return [ssfr, t[0], t[1], t[2], 0];
    }
  }
}

interface Draw {
  rows: Float32Array;
  aux: Float32Array;
}

/** n galaxies whose f32-rounded parameters are valid for the reference (re-drawn otherwise). */
function drawGalaxies(family: SynthSfhFamily, n: number, seed: number): Draw {
  const r = rng(seed);
  const rows = new Float32Array(n * CANONICAL_WIDTH);
  const aux = new Float32Array(n * 4);
  for (let g = 0; g < n; g++) {
    for (;;) {
      const row = new Float32Array(CANONICAL_WIDTH);
      row[CANONICAL.redshift] = 0;
      row[CANONICAL.log10MassFormedMsun] = 5 + 8 * r();
      // Beyond the grids on both sides (BC03: log10 Z in [-4, -1]).
      row[CANONICAL.log10Z] = -5 + 4.5 * r();
      // Log-normal metallicity in ~40% of the draws, sigma from 0.003 to 1 dex.
      row[CANONICAL.log10ZSigmaDex] = r() < 0.4 ? logUniform(r, 3e-3, 1) : 0;
      row.set(drawSlots(family, r), CANONICAL.s0);
      const sfh = slotsToSfh(family, row.subarray(CANONICAL.s0));
      if (!sfhParamsSchema.safeParse(sfh).success) continue;
      rows.set(row, g * CANONICAL_WIDTH);
      aux[4 * g] = drawMaxAge(r);
      break;
    }
  }
  return { rows, aux };
}

interface Reference {
  masses: Float64Array; // N x A
  wz: Float64Array; // N x nZ
  derived: Float64Array; // N x 3
  massFormed: Float64Array;
}

function reference(family: SynthSfhFamily, d: Draw, grid: Grid): Reference {
  const n = d.aux.length / 4;
  const A = grid.ages.length;
  const nZ = grid.gridZ.length;
  const out: Reference = { masses: new Float64Array(n * A), wz: new Float64Array(n * nZ), derived: new Float64Array(n * 3), massFormed: new Float64Array(n) };
  for (let g = 0; g < n; g++) {
    const row = d.rows.subarray(g * CANONICAL_WIDTH, (g + 1) * CANONICAL_WIDTH);
    const sfh = createSfh(slotsToSfh(family, row.subarray(CANONICAL.s0)), d.aux[4 * g]);
    const M = 10 ** row[CANONICAL.log10MassFormedMsun];
    const binned = binSfh(sfh, grid.ages, M, grid.convention);
    const sigma = row[CANONICAL.log10ZSigmaDex];
    const log10Z = row[CANONICAL.log10Z];
    const wz = sigma > 0 ? logNormalMetallicityWeights(grid.gridZ, log10Z, sigma) : singleMetallicityWeights(grid.gridZ, 10 ** log10Z, grid.zInterpolation);
    const dq = sfhDerivedQuantities(sfh, binned, grid.ages, M);
    out.masses.set(binned.massesMsun, g * A);
    out.wz.set(wz, g * nZ);
    out.derived.set([dq.sfr10MyrMsunPerYr, dq.sfr100MyrMsunPerYr, binned.coveredFraction], 3 * g);
    out.massFormed[g] = M;
  }
  return out;
}

interface GpuResult {
  wOld: Float32Array;
  wYoung?: Float32Array;
  derived: Float32Array;
}

async function runKernel(family: SynthSfhFamily, d: Draw, grid: Grid, extra: Partial<SynthWeightsShape> = {}): Promise<GpuResult> {
  const dev = ctx.device;
  const n = d.aux.length / 4;
  const A = grid.ages.length;
  const nZ = grid.gridZ.length;
  const edges = ageBinEdgesYr(grid.ages, grid.convention);
  const shape: SynthWeightsShape = {
    galaxies: n,
    ages: A,
    metallicities: nZ,
    family,
    zInterpolation: grid.zInterpolation,
    fallbackAge: fallbackAgeIndex(edges),
    workgroupSize: grid.workgroupSize,
    ...extra,
  };
  const nYoung = shape.youngAges ?? 0;
  const bufs = {
    params: uploadBuffer(dev, d.rows),
    aux: uploadBuffer(dev, d.aux),
    edges: uploadBuffer(dev, packAgeEdges(edges)),
    zTable: uploadBuffer(dev, packMetallicityTable(grid.gridZ)),
    wOld: createStorageBuffer(dev, n * A * nZ * 4),
    derived: createStorageBuffer(dev, n * 16),
    wYoung: shape.youngAges !== undefined ? createStorageBuffer(dev, n * nYoung * nZ * 4) : undefined,
  };
  try {
    await encodeSynthWeights(new ComputeBatch(dev), bufs, shape).run();
    return {
      wOld: await readFloat32(dev, bufs.wOld, 0, n * A * nZ),
      wYoung: bufs.wYoung ? await readFloat32(dev, bufs.wYoung, 0, n * nYoung * nZ) : undefined,
      derived: await readFloat32(dev, bufs.derived, 0, n * 4),
    };
  } finally {
    for (const b of Object.values(bufs)) b?.destroy();
  }
}

/** Relative tolerance on bin masses (see the file comment); the same for every family. */
function rtolFor(_family: SynthSfhFamily, _row: ArrayLike<number>): number {
  return RTOL;
}

interface Stats {
  /** Max relative error of bin masses holding > 1% of the formed mass. */
  maxRel1pct: number;
  /** Max relative error of bin masses holding > 1e-4 of the formed mass. */
  maxRel1e4: number;
  /** Max |error| / M over all elements. */
  maxAbsOverM: number;
  /** Galaxies whose float64 reference underflows (only checked for a finite row summing to M). */
  skipped: number;
}

/** got/want/tolerance triples with the galaxy each element belongs to, for one check. */
class Check {
  readonly got: number[] = [];
  readonly want: number[] = [];
  readonly tol: number[] = [];
  readonly galaxy: number[] = [];
  readonly what: string[] = [];
  push(got: number, want: number, tol: number, galaxy: number, what: string): void {
    this.got.push(got);
    this.want.push(want);
    this.tol.push(tol);
    this.galaxy.push(galaxy);
    this.what.push(what);
  }
  expect(label: string, d: Draw): void {
    const w = worstIndex(this.got, this.want, this.tol);
    const g = w >= 0 ? this.galaxy[w] : -1;
    const where =
      w >= 0 ? ` at ${this.what[w]} of galaxy ${g}: row ${JSON.stringify(Array.from(d.rows.subarray(g * CANONICAL_WIDTH, (g + 1) * CANONICAL_WIDTH)))}, maxAgeYr ${d.aux[4 * g]}` : '';
    expectAllClose(this.got, this.want, { bound: this.tol, label: label + where });
  }
}

function compare(family: SynthSfhFamily, d: Draw, grid: Grid, got: GpuResult, want: Reference): Stats {
  const n = d.aux.length / 4;
  const A = grid.ages.length;
  const nZ = grid.gridZ.length;
  const stats: Stats = { maxRel1pct: 0, maxRel1e4: 0, maxAbsOverM: 0, skipped: 0 };
  const mass = new Check();
  const w = new Check();
  const der = new Check();
  for (let g = 0; g < n; g++) {
    const M = want.massFormed[g];
    // Where the SFH's part inside the grid is below ~1e-308 of its total the float64 reference
    // underflows: binSfh then falls back to the oldest bin (sum 0) or returns NaN (a subnormal sum,
    // M/sum = inf). The kernel scales to the covered range first (sfh.wgsl) and still returns the
    // renormalised closed forms; for those galaxies only check that the row is finite, >= 0 and
    // sums to M.
    if (!want.masses.subarray(g * A, (g + 1) * A).every(Number.isFinite) || want.derived[3 * g + 2] === 0) {
      stats.skipped++;
      const row = got.wOld.subarray(g * A * nZ, (g + 1) * A * nZ);
      expect(row.every((v) => Number.isFinite(v) && v >= 0), `${family} galaxy ${g}: finite, non-negative row`).toBe(true);
      expect(Math.abs(row.reduce((t, v) => t + v, 0) / M - 1), `${family} galaxy ${g}: row sums to M`).toBeLessThan(1e-5);
      continue;
    }
    const rtol = rtolFor(family, d.rows.subarray(g * CANONICAL_WIDTH));
    for (let a = 0; a < A; a++) {
      const m = want.masses[g * A + a];
      let s = 0;
      for (let z = 0; z < nZ; z++) {
        const i = (g * A + a) * nZ + z;
        const wz = m * want.wz[g * nZ + z];
        w.push(got.wOld[i], wz, rtol * wz + ZTOL * m + ATOL * M, g, `age ${a}, Z ${z}`);
        s += got.wOld[i];
        stats.maxAbsOverM = Math.max(stats.maxAbsOverM, Math.abs(got.wOld[i] - wz) / M);
      }
      // Row sums over Z recover the bin mass (the weights sum to 1 to rounding, nZ x 1.2e-7).
      mass.push(s, m, rtol * m + ATOL * M + nZ * 1.2e-7 * m, g, `age ${a}`);
      if (m > 1e-2 * M) stats.maxRel1pct = Math.max(stats.maxRel1pct, Math.abs(s - m) / m);
      if (m > 1e-4 * M) stats.maxRel1e4 = Math.max(stats.maxRel1e4, Math.abs(s - m) / m);
    }
    // Derived: sfr10, sfr100 to rtol (closed forms as the bins) + an absolute floor of ATOL M per
    // window (sfr = M F(window)/covered/window); coveredFraction to 1e-5 absolute:
    // exp(ln(sum) - ln C) with |ln C| up to ~80 (x 1.2e-7).
    const [sfr10, sfr100, covered] = want.derived.subarray(3 * g, 3 * g + 3);
    der.push(got.derived[4 * g], sfr10, rtol * Math.abs(sfr10) + (ATOL * M) / 1e7, g, 'sfr10');
    der.push(got.derived[4 * g + 1], sfr100, rtol * Math.abs(sfr100) + (ATOL * M) / 1e8, g, 'sfr100');
    der.push(got.derived[4 * g + 2], covered, 1e-5, g, 'coveredFraction');
  }
  const label = `${family} on ${grid.name}`;
  mass.expect(`${label}: bin masses`, d);
  w.expect(`${label}: W`, d);
  der.expect(`${label}: derived`, d);
  // Reference underflows are corner cases (SFHs almost entirely older than the grid), not a regime.
  expect(stats.skipped, `${label}: galaxies whose reference underflows`).toBeLessThan(0.1 * n);
  return stats;
}

function logStats(family: string, grid: string, s: Stats): void {
  const e = (v: number) => v.toExponential(1);
  console.log(`${family} on ${grid}: bin mass rel err ${e(s.maxRel1pct)} (bins > 1% M), ${e(s.maxRel1e4)} (> 1e-4 M); max |W err|/M ${e(s.maxAbsOverM)}; ${s.skipped} reference underflows`);
}

/** Index of the element with the largest err/tol ratio when some element fails, else -1. */
function worstIndex(got: ArrayLike<number>, want: ArrayLike<number>, tol: ArrayLike<number>): number {
  let worst = -1;
  let ratio = 1;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    const q = Number.isNaN(e) ? Infinity : e / (tol[i] || Number.MIN_VALUE);
    if (q > ratio) {
      ratio = q;
      worst = i;
    }
  }
  return worst;
}

describe('f32 special functions (shaders/common/special.wgsl) vs float64', () => {
  const PROBE = `
#include "common/special.wgsl"
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= arrayLength(&x)) { return; }
  let v = x[i];
  out[8u * i + 0u] = expm1_f(v);
  out[8u * i + 1u] = select(0.0, log1p_f(v), v > -1.0);
  out[8u * i + 2u] = erf_f(v);
  out[8u * i + 3u] = erfc_f(v);
  out[8u * i + 4u] = erfcx_f(abs(v));
  out[8u * i + 5u] = pow10_f(v);
  // Narrow interval of width 0.25/(1+|v|) at v (Gauss-Legendre branch), and the upper tail Q(v).
  let w = 0.25 / (1.0 + abs(v));
  out[8u * i + 6u] = ln_normal_interval_rel(0.0, v, v + w, w, false, false);
  out[8u * i + 7u] = ln_normal_interval_rel(0.0, v, 0.0, 0.0, false, true);
}`;

  it('expm1, log1p, erf, erfc, erfcx, pow10 and ln(Phi(b) - Phi(a)) to a few ulp', async () => {
    registerShaderSources({ 'test/special_probe.wgsl': PROBE });
    const xs: number[] = [0, 1e-30, -1e-30, 1e-8, -1e-8, 0.5, -0.5, 1, -1, 2, -2, 30, -30];
    for (let i = 0; i < 2000; i++) xs.push(Math.sign(i % 2 - 0.5) * 10 ** (-8 + (9.5 * i) / 2000));
    for (let i = 0; i < 200; i++) xs.push(-0.999 + (1.998 * i) / 200);
    const x = Float32Array.from(xs);
    const dev = ctx.device;
    const X = uploadBuffer(dev, x);
    const O = createStorageBuffer(dev, x.length * 32);
    await runProgram(dev, { name: 'special probe', shader: 'test/special_probe.wgsl', defines: {}, workgroups: [Math.ceil(x.length / 64), 1, 1] }, { 0: X, 1: O });
    const out = await readFloat32(dev, O, 0, 8 * x.length);
    X.destroy();
    O.destroy();
    const col = (k: number) => Float64Array.from(x, (_, i) => out[8 * i + k]);
    const u = 2 ** -24;
    const xv = Float64Array.from(x);
    // WGSL's exp is within (3 + 2|x|) ulp; the series/doubling branches add a few ulp. Results
    // below the smallest normal f32 (1.2e-38) may flush to 0 (atol).
    const TINY = 1.2e-38;
    expectAllClose(col(0), xv.map(Math.expm1), { bound: xv.map((v) => (6 + 2 * Math.abs(v)) * u * Math.abs(Math.expm1(v))), atol: TINY, label: 'expm1' });
    const l1p = xv.map((v) => (v > -1 ? Math.log1p(v) : 0));
    expectAllClose(col(1), l1p, { bound: l1p.map((v) => 6 * u * Math.abs(v)), atol: TINY, label: 'log1p' });
    // erf: relative below 1/2 (series), absolute above (1 - erfc). The reference is evaluated at |x|
    // (erf is odd): sfh.ts's erf(x) stops its series after one term for x in (-1.5, 0).
    expectAllClose(col(2), xv.map((v) => Math.sign(v) * erf(Math.abs(v))), { bound: xv.map((v) => 6 * u * Math.min(1, Math.abs(v) * 2)), atol: TINY, label: 'erf' });
    // erfc: e^{-x^2} has the relative error of x^2 (x^2 u) plus exp's; relative everywhere for x >= 0.
    expectAllClose(col(3), xv.map(erfc), { bound: xv.map((v) => (v >= 0 ? (8 + 4 * v * v) * u * erfc(v) : 8 * u)), atol: TINY, label: 'erfc' });
    expectAllClose(col(4), xv.map((v) => erfcx(Math.abs(v))), { rtol: 8 * u, label: 'erfcx' });
    expectAllClose(col(5), xv.map((v) => 10 ** v), { rtol: 6 * u, label: 'pow10' });
    // ln(Phi(b) - Phi(a)): absolute error of a log = relative error of the probability; the
    // exponent -x^2/2 carries the rounding of x^2.
    const narrow = xv.map((v) => {
      const w = Math.fround(0.25 / (1 + Math.abs(Math.fround(v))));
      return lnStandardNormalInterval(v, v + w, w);
    });
    expectAllClose(col(6), narrow, { bound: xv.map((v) => (8 + 2 * v * v) * u), label: 'ln interval (narrow)' });
    const tail = xv.map((v) => lnStandardNormalInterval(v, Infinity));
    expectAllClose(col(7), tail, { bound: xv.map((v) => (8 + 2 * v * v) * u), label: 'ln upper tail' });
  });
});

describe('SFH weights kernel vs float64 reference', () => {
  it('family codes match SFH_FAMILY_CODES (src/simulate/canonical.ts)', () => {
    expect(SYNTH_SFH_FAMILIES.map((f) => SFH_FAMILY_CODES[f])).toEqual([0, 1, 2, 3, 4, 5]);
  });

  const N_BC03 = 2000;
  const N_AWKWARD = 1500;
  SYNTH_SFH_FAMILIES.forEach((family, fi) => {
    it(`${family}: ${N_BC03} random galaxies on the BC03 grid (220 ages x 7 Z)`, async () => {
      const d = drawGalaxies(family, N_BC03, 1000 + fi);
      const got = await runKernel(family, d, bc03);
      const stats = compare(family, d, bc03, got, reference(family, d, bc03));
      logStats(family, 'BC03', stats);
    });
    it(`${family}: ${N_AWKWARD} random galaxies on an awkward grid (16 irregular ages, top edge 3.1 Gyr, 3 Z, linear Z, WG 64)`, async () => {
      const d = drawGalaxies(family, N_AWKWARD, 2000 + fi);
      const got = await runKernel(family, d, AWKWARD);
      const stats = compare(family, d, AWKWARD, got, reference(family, d, AWKWARD));
      logStats(family, 'awkward', stats);
    });
  });
});

describe('SFH weights kernel: layout variants', () => {
  it('SPLIT_YOUNG moves the ages below the birth-cloud age to Wyoung, bit for bit, and zeroes them in Wold', async () => {
    const nYoung = youngAgeCount(bc03.ages, 1e7);
    expect(nYoung).toBeGreaterThan(0);
    expect(bc03.ages[nYoung - 1]).toBeLessThan(1e7);
    expect(bc03.ages[nYoung]).toBeGreaterThanOrEqual(1e7);
    const d = drawGalaxies('logNormal', 300, 77);
    const plain = await runKernel('logNormal', d, bc03);
    const split = await runKernel('logNormal', d, bc03, { youngAges: nYoung });
    const A = bc03.ages.length;
    const nZ = bc03.gridZ.length;
    const youngCols = nYoung * nZ;
    for (let g = 0; g < 300; g++) {
      const row = plain.wOld.subarray(g * A * nZ, (g + 1) * A * nZ);
      expect(Array.from(split.wYoung!.subarray(g * youngCols, (g + 1) * youngCols))).toEqual(Array.from(row.subarray(0, youngCols)));
      const old = split.wOld.subarray(g * A * nZ, (g + 1) * A * nZ);
      expect(old.subarray(0, youngCols).every((v) => v === 0)).toBe(true);
      expect(Array.from(old.subarray(youngCols))).toEqual(Array.from(row.subarray(youngCols)));
    }
    expect(Array.from(split.derived)).toEqual(Array.from(plain.derived));
  });

  it('folds the dispatch into 2D beyond 65535 galaxies (70000 on a 3-age, 2-Z grid)', async () => {
    const grid: Grid = { name: 'tiny', ages: Float64Array.from([1e6, 1e8, 1e9]), gridZ: Float64Array.from([0.004, 0.02]), convention: 'midpoint', zInterpolation: 'log10Z', workgroupSize: 32 };
    const n = 70000;
    const program = synthWeightsProgram({ galaxies: n, ages: 3, metallicities: 2, family: 'exponential', fallbackAge: 2 });
    expect(program.workgroups[1]).toBeGreaterThan(1);
    const d = drawGalaxies('exponential', n, 5);
    const got = await runKernel('exponential', d, grid);
    compare('exponential', d, grid, got, reference('exponential', d, grid));
  });

  it('a single grid metallicity gets all the weight (single and log-normal Z)', async () => {
    const grid: Grid = { ...bc03, name: 'BC03 ages, Z = 0.02 only', gridZ: Float64Array.from([0.02]) };
    const d = drawGalaxies('quantiles', 300, 9);
    const got = await runKernel('quantiles', d, grid);
    compare('quantiles', d, grid, got, reference('quantiles', d, grid));
  });
});

describe('SFH weights kernel: arguments', () => {
  const ok: SynthWeightsShape = { galaxies: 10, ages: 220, metallicities: 7, family: 'constant', fallbackAge: 219 };

  it('rejects bad shapes, families and options, naming the offender', () => {
    expect(() => synthWeightsProgram({ ...ok, galaxies: 0 })).toThrow(/galaxies/);
    expect(() => synthWeightsProgram({ ...ok, galaxies: 2.5 })).toThrow(/galaxies/);
    expect(() => synthWeightsProgram({ ...ok, ages: 0 })).toThrow(/ages/);
    expect(() => synthWeightsProgram({ ...ok, metallicities: -1 })).toThrow(/metallicities/);
    expect(() => synthWeightsProgram({ ...ok, family: 'burst' as SynthSfhFamily })).toThrow(/unknown SFH family "burst"/);
    expect(() => synthWeightsProgram({ ...ok, zInterpolation: 'log' as SynthZInterpolation })).toThrow(/zInterpolation/);
    expect(() => synthWeightsProgram({ ...ok, youngAges: 221 })).toThrow(/youngAges/);
    expect(() => synthWeightsProgram({ ...ok, fallbackAge: 220 })).toThrow(/fallbackAge/);
    expect(() => synthWeightsProgram({ ...ok, workgroupSize: 48 })).toThrow(/workgroupSize/);
    expect(() => synthWeightsProgram({ ...ok, galaxies: 3_000_000 })).toThrow(/u32/);
    const p = synthWeightsProgram({ ...ok, youngAges: 0 });
    expect(p.defines).toMatchObject({ SFH_FAMILY: 0, Z_INTERP: 0, SPLIT_YOUNG: true, WG: '32u', MAX_AGES: '224u', MAX_Z: '8u' });
  });

  it('checks buffers against the shape before dispatching', () => {
    const dev = ctx.device;
    const sizes = { params: 10 * 48, aux: 160, edges: 221 * 8, zTable: 7 * 16, wOld: 10 * 1540 * 4, derived: 160 };
    const make = (over: Record<string, number> = {}) =>
      Object.fromEntries(Object.entries({ ...sizes, ...over }).map(([k, v]) => [k, createStorageBuffer(dev, v)])) as unknown as Parameters<typeof encodeSynthWeights>[1];
    const bufs = [make({ wOld: 10 * 1540 * 4 - 4 }), make(), make()];
    try {
      expect(() => encodeSynthWeights(new ComputeBatch(dev), bufs[0], ok)).toThrow(/buffer wOld holds 61596 bytes, the shape needs 61600/);
      expect(() => encodeSynthWeights(new ComputeBatch(dev), bufs[1], { ...ok, youngAges: 10 })).toThrow(/no wYoung buffer/);
      const withYoung = { ...bufs[2], wYoung: createStorageBuffer(dev, 4) };
      expect(() => encodeSynthWeights(new ComputeBatch(dev), withYoung, ok)).toThrow(/needs shape.youngAges/);
      expect(() => encodeSynthWeights(new ComputeBatch(dev), withYoung, { ...ok, youngAges: 10 })).toThrow(/buffer wYoung/);
      withYoung.wYoung!.destroy();
    } finally {
      for (const b of bufs) for (const v of Object.values(b)) (v as GPUBuffer).destroy();
    }
  });

  it('packs edges as exact two-float pairs and validates the grids', () => {
    const e = ageBinEdgesYr(bc03.ages, 'midpoint');
    const packed = packAgeEdges(e);
    for (let i = 0; i < e.length; i++) expect(Math.abs(packed[2 * i] + packed[2 * i + 1] - e[i])).toBeLessThanOrEqual(Math.abs(e[i]) * 2 ** -47);
    expect(() => packAgeEdges([0])).toThrow(/>= 2 edges/);
    expect(() => packAgeEdges([1, 2])).toThrow(/first edge must be 0/);
    expect(() => packAgeEdges([0, 2, 1])).toThrow(/index 2/);
    expect(() => packAgeEdges([0, NaN])).toThrow(/finite/);
    const z = packMetallicityTable(bc03.gridZ);
    const mid = (Math.log10(bc03.gridZ[2]) + Math.log10(bc03.gridZ[3])) / 2;
    expect(Math.abs(z[4 * 2 + 2] + z[4 * 2 + 3] - mid)).toBeLessThan(1e-14);
    expect(() => packMetallicityTable([])).toThrow(/empty/);
    expect(() => packMetallicityTable([0.02, 0.01])).toThrow(/increase strictly/);
    expect(() => packMetallicityTable([0])).toThrow(/> 0/);
    expect(fallbackAgeIndex(ageBinEdgesYr(bc03.ages, 'synthesizer'))).toBe(bc03.ages.length - 2);
    expect(fallbackAgeIndex(e)).toBe(bc03.ages.length - 1);
    expect(() => fallbackAgeIndex([0, 0])).toThrow(/empty/);
    expect(youngAgeCount([1, 2, 3], 2.5)).toBe(2);
    expect(youngAgeCount([1, 2, 3], 0)).toBe(0);
  });
});
