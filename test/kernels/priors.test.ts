import { describe, expect, it } from 'vitest';
import {
  PRIORS_MAX_COLS,
  encodePriorsSample,
  encodeThetaToCanonical,
  packPriorModel,
  priorsSampleProgram,
} from '../../kernels/priors.js';
import { createStorageBuffer, readFloat32, readTyped, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch, ceilDiv, runProgram } from '../../src/gpu/kernel.js';
import { registerShaderSources } from '../../src/gpu/shaderSource.js';
import { CANONICAL_WIDTH } from '../../src/simulate/canonical.js';
import { configThetaLayout, parseSimulationConfig } from '../../src/simulate/config.js';
import { type PriorSpec, ThetaSampler, compilePriors, sampleRandomTheta } from '../../src/simulate/priors.js';
import { PhiloxStream, RngPurpose, philox4x32_10 } from '../../src/simulate/rng.js';
import { type ThetaColumn, type ThetaLayout, priorKernelModel, thetaToCanonical } from '../../src/simulate/theta.js';
import { expectAllClose } from '../helpers/allclose.js';
import { useGpu } from '../helpers/gpu.js';
import { PHILOX_KAT } from '../simulate/stats.js';

const ctx = useGpu();

// A probe of shaders/common/philox.wgsl: raw words for given (counter, key), and the distribution
// helpers from one stream per row (uniform, normal, exponential, then gamma(shape) last, so that
// a rejection-count difference cannot shift the other draws).
registerShaderSources({
  'test/philox_probe.wgsl': `
#include "common/philox.wgsl"
struct Params { n: u32, seed_lo: u32, seed_hi: u32, purpose: u32, shape: f32 }
@group(0) @binding(0) var<storage, read> ck: array<u32>;
@group(0) @binding(1) var<storage, read_write> words: array<u32>;
@group(0) @binding(2) var<storage, read_write> vals: array<f32>;
@group(0) @binding(3) var<uniform> P: Params;

@compute @workgroup_size(64)
fn raw(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.n) { return; }
  let b = 6u * i;
  let w = philox4x32_10(vec4<u32>(ck[b], ck[b + 1u], ck[b + 2u], ck[b + 3u]), vec2<u32>(ck[b + 4u], ck[b + 5u]));
  for (var k = 0u; k < 4u; k = k + 1u) { words[4u * i + k] = w[k]; }
}

@compute @workgroup_size(64)
fn dists(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= P.n) { return; }
  var s = philox_stream(vec2<u32>(P.seed_lo, P.seed_hi), P.purpose, vec2<u32>(i, 0u), 3u);
  vals[4u * i] = philox_uniform(&s);
  vals[4u * i + 1u] = philox_normal(&s);
  vals[4u * i + 2u] = philox_exponential(&s);
  vals[4u * i + 3u] = philox_gamma(&s, P.shape);
}
`,
});

const EPS32 = 2 ** -24;

describe('shaders/common/philox.wgsl against src/simulate/rng.ts', () => {
  it('raw words: the KAT vectors and 8192 random (counter, key) pairs bit for bit', async () => {
    const dev = ctx.device;
    const s = new PhiloxStream(2024, RngPurpose.user, 0);
    const ck: number[] = [];
    for (const k of PHILOX_KAT) ck.push(...k.ctr, ...k.key);
    ck.push(0xffffffff, 0, 0xffffffff, 0, 0, 0xffffffff);
    while (ck.length < 6 * 8192) ck.push(s.nextU32());
    const n = ck.length / 6;
    const CK = uploadBuffer(dev, Uint32Array.from(ck));
    const W = createStorageBuffer(dev, 16 * n);
    await runProgram(dev, { name: 'philox.raw', shader: 'test/philox_probe.wgsl', entryPoint: 'raw', defines: {}, workgroups: [ceilDiv(n, 64), 1, 1], uniforms: [['u32', n], ['u32', 0], ['u32', 0], ['u32', 0], ['f32', 0]], uniformBinding: 3 }, { 0: CK, 1: W });
    const got = await readTyped(dev, W, Uint32Array, 0, 4 * n);
    CK.destroy();
    W.destroy();
    const want = new Uint32Array(4 * n);
    for (let i = 0; i < n; i++) want.set(philox4x32_10(ck.slice(6 * i, 6 * i + 4), ck.slice(6 * i + 4, 6 * i + 6)), 4 * i);
    let mismatches = 0;
    for (let i = 0; i < 4 * n; i++) if (got[i] !== want[i]) mismatches++;
    expect(mismatches).toBe(0);
  });

  for (const shape of [0.3, 1, 2.5, 40]) {
    it(`uniform (bit-exact), normal, exponential, gamma(${shape}) from one stream per row`, async () => {
      const dev = ctx.device;
      const n = 4096;
      const seed = 2 ** 33 + 77;
      const V = createStorageBuffer(dev, 16 * n);
      const uniforms: [ 'u32' | 'f32', number][] = [['u32', n], ['u32', seed % 2 ** 32], ['u32', Math.floor(seed / 2 ** 32)], ['u32', RngPurpose.user], ['f32', shape]];
      await runProgram(dev, { name: 'philox.dists', shader: 'test/philox_probe.wgsl', entryPoint: 'dists', defines: {}, workgroups: [ceilDiv(n, 64), 1, 1], uniforms, uniformBinding: 3 }, { 2: V });
      const got = await readFloat32(dev, V, 0, 4 * n);
      V.destroy();
      const want = new Float64Array(4 * n);
      for (let i = 0; i < n; i++) {
        const s = new PhiloxStream(seed, RngPurpose.user, i, 3);
        want[4 * i] = s.uniform();
        want[4 * i + 1] = s.normal();
        want[4 * i + 2] = s.exponential();
        want[4 * i + 3] = s.gamma(shape);
      }
      const col = (a: ArrayLike<number>, k: number) => Float64Array.from({ length: n }, (_, i) => a[4 * i + k]);
      // Uniforms are exact in f32 on both sides.
      expect(Array.from(col(got, 0))).toEqual(Array.from(col(want, 0)));
      // Normal: |z| <= 5.8. The WGSL takes -ln u1 from philox_neg_log (relative error a few ulp
      // everywhere, also near u1 = 1 where f32 log is only absolutely accurate) and cos(pi t) on
      // (-pi, pi) (NVIDIA's approximate cos: 2^-20.9 absolute): a few ulp of 5.8 -> atol 4e-6, plus
      // 1e-6 relative. Measured on 2^18 rows: worst error 0.12 (lavapipe) and 0.33 (H100) of this.
      expectAllClose(col(got, 1), col(want, 1), { atol: 4e-6, rtol: 1e-6, label: 'normal' });
      // Exponential -ln u <= 16.7 via philox_neg_log: a few ulp -> rtol 1e-6 plus atol 1e-7.
      expectAllClose(col(got, 2), col(want, 2), { atol: 1e-7, rtol: 1e-6, label: 'exponential' });
      // Gamma: G = exp(ln G), ln G = ln(d v), v = (1 + c x)^3 with x a Box-Muller normal (abs error
      // ~1e-6, so dv/v <= 3 c dx ~ 2e-6 relative) and exp of |ln G| (up to ~30 for the boosted small
      // shapes: 8 ulp of it); the shape is rounded to f32 on the GPU. A rejection test within
      // rounding of its threshold can flip (probability ~1e-6 per try; 1 row in 2^20 seen on an H100
      // for a Dirichlet) and change a whole row: allow at most 2 such rows in 4096.
      const g = col(got, 3);
      const w = col(want, 3);
      let flips = 0;
      for (let i = 0; i < n; i++) {
        const tol = 2e-7 + Math.abs(w[i]) * (2e-6 + 8 * EPS32 * Math.abs(Math.log(w[i])));
        if (!(Math.abs(g[i] - w[i]) <= tol)) flips++;
      }
      expect(flips).toBeLessThanOrEqual(2);
    });
  }
});

/** Per-element tolerances of the GPU theta (f32) against the float64 CPU theta. */
function thetaTolerances(layout: ThetaLayout, cpu: Float64Array, n: number): Float64Array {
  const P = layout.columns.length;
  const tol = new Float64Array(n * P);
  for (const p of layout.priors.priors) {
    const s = p.spec;
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < p.nCols; k++) {
        const j = p.col + k;
        const x = cpu[i * P + j];
        let t: number;
        switch (s.prior) {
          case 'uniform':
            // low + width u with low, width rounded to f32, one product and one sum: 4 ulp of the range's magnitude.
            t = 4 * EPS32 * Math.max(Math.abs(s.low), Math.abs(s.high));
            break;
          case 'loguniform': {
            // exp(ln low + ln(high/low) u): the argument's rounding (|arg| up to ~25) times x, plus exp's 3 ulp.
            const arg = Math.max(Math.abs(Math.log(s.low)), Math.abs(Math.log(s.high)));
            t = (8 + 4 * arg) * EPS32 * Math.abs(x);
            break;
          }
          case 'normal': {
            // The f32 quantile (Acklam tail / Giles erfinv) is within 4e-7 |z| of the exact one (f32
            // emulation against scipy); p = pa + u w carries ~4 roundings (2.4e-7 relative), i.e.
            // dz = dp / phi(z) <= 3e-7 (p / phi(z) <= 1.25); then mean + sigma z in f32.
            const z = Math.abs(x - s.mean) / s.sigma;
            t = s.sigma * (1e-6 + 1e-6 * z) + 4 * EPS32 * Math.max(Math.abs(s.mean), Math.abs(x));
            break;
          }
          case 'dirichlet':
            // Cumulative sums in (0, 1) of exp(ln G - max)/sum: ~20 f32 roundings and a few log/exp ulp.
            t = 2e-6;
            break;
        }
        tol[i * P + j] = t;
      }
    }
  }
  return tol;
}

async function gpuSample(layout: ThetaLayout, seed: number, offset: number, n: number): Promise<{ theta: Float32Array; canonical: Float32Array }> {
  const dev = ctx.device;
  const P = layout.columns.length;
  const M = uploadBuffer(dev, packPriorModel(priorKernelModel(layout)));
  const T = createStorageBuffer(dev, 4 * Math.max(1, n * P));
  const C = createStorageBuffer(dev, 4 * n * CANONICAL_WIDTH);
  await encodePriorsSample(new ComputeBatch(dev), { model: M, theta: T, canonical: C }, { n, nCols: P, canonicalWidth: CANONICAL_WIDTH, seed, offset, purpose: RngPurpose.prior }).run();
  const theta = await readFloat32(dev, T, 0, n * P);
  const canonical = await readFloat32(dev, C, 0, n * CANONICAL_WIDTH);
  for (const b of [M, T, C]) b.destroy();
  return { theta, canonical };
}

const REFERENCE = parseSimulationConfig({
  grid: 'bc03',
  filters: 'jades14',
  sfh: 'quantiles',
  parameters: {
    redshift: { prior: 'uniform', low: 0.01, high: 14 },
    log10_mass_formed: { prior: 'uniform', low: 4, high: 12 },
    log10Z: { prior: 'uniform', low: -4, high: -1.39 },
    log10_av: { prior: 'uniform', low: -3, high: 0.7 },
    log10_ssfr: { prior: 'uniform', low: -12, high: -7 },
    sfh_quantiles: { prior: 'dirichlet', alpha: [1, 1, 1, 1] },
  },
  noise: { type: 'none' },
  seed: 1,
});

/** A layout exercising every prior kind, outside the parameter registry (canonical slots chosen freely). */
function allKindsLayout(): ThetaLayout {
  const specs: [string, PriorSpec][] = [
    ['u', { prior: 'uniform', low: -3, high: 0.7 }],
    ['lu', { prior: 'loguniform', low: 1e7, high: 1e10 }],
    ['n', { prior: 'normal', mean: 2, sigma: 0.5 }],
    ['n_upper_tail', { prior: 'normal', mean: 0, sigma: 1, low: 3, high: 4 }],
    ['n_lower_tail', { prior: 'normal', mean: 10, sigma: 2, low: -20, high: 1 }],
    ['n_narrow', { prior: 'normal', mean: 0, sigma: 1, low: -0.01, high: 0.02 }],
    ['d1', { prior: 'dirichlet', alpha: [1, 1, 1, 1] }],
    ['d2', { prior: 'dirichlet', alpha: [0.3, 2.5, 7] }],
  ];
  const priors = compilePriors(specs.map(([name, spec]) => ({ name, spec })));
  const columns: ThetaColumn[] = [];
  for (const p of priors.priors) for (let k = 0; k < p.nCols; k++) columns.push({ name: `${p.name}${k}`, unit: '', description: '', parameter: p.name, slot: -1, transform: 'identity' });
  // Map a few columns into canonical slots, one through 10^x.
  columns[0].slot = 4;
  columns[0].transform = 'pow10';
  columns[1].slot = 8;
  columns[2].slot = 0;
  const base = Float64Array.from({ length: CANONICAL_WIDTH }, (_, k) => 0.5 * k - 1);
  return { sfh: 'quantiles', columns, priors, base, fixed: {} };
}

function cpuCanonical(layout: ThetaLayout, theta: ArrayLike<number>, n: number): Float64Array {
  // thetaToCanonical skips columns with slot -1 (not part of the registry's layouts).
  const l = { ...layout, columns: layout.columns.filter((c) => c.slot >= 0) };
  const P = layout.columns.length;
  const keep = layout.columns.map((c, j) => (c.slot >= 0 ? j : -1)).filter((j) => j >= 0);
  const sub = new Float64Array(n * keep.length);
  for (let i = 0; i < n; i++) keep.forEach((j, k) => (sub[i * keep.length + k] = theta[i * P + j]));
  return thetaToCanonical(l, sub, n);
}

describe('priors kernel (random design) against the float64 CPU sampler', () => {
  it('the reference model: theta and canonical rows for 3001 galaxies', async () => {
    const layout = configThetaLayout(REFERENCE);
    const n = 3001;
    const seed = 987654321;
    const { theta, canonical } = await gpuSample(layout, seed, 0, n);
    const cpu = sampleRandomTheta(layout.priors, seed, 0, n);
    expectAllClose(theta, cpu, { bound: thetaTolerances(layout, cpu, n), label: 'theta' });
    // Canonical from the GPU's own theta (the sampling is checked above): identity columns are
    // copies, A_V = 10^x in f32 (exp2 of x log2 10, |x| <= 3: rel 2e-6).
    expectAllClose(canonical, thetaToCanonical(layout, theta, n), { rtol: 2e-6, atol: 0, label: 'canonical' });
    // The quantiles are strictly increasing in (0, 1) in f32 as well.
    const P = layout.columns.length;
    for (let i = 0; i < n; i++) {
      const [a, b, c] = [theta[i * P + 5], theta[i * P + 6], theta[i * P + 7]];
      expect(0 < a && a < b && b < c && c < 1).toBe(true);
    }
  });

  it('every prior kind, tails and a narrow truncation', async () => {
    const layout = allKindsLayout();
    const n = 4096;
    const seed = 31337;
    const { theta, canonical } = await gpuSample(layout, seed, 0, n);
    const cpu = sampleRandomTheta(layout.priors, seed, 0, n);
    const tol = thetaTolerances(layout, cpu, n);
    const P = layout.columns.length;
    // The Dirichlet(0.3, 2.5, 7) uses gammas with rejection: a flip changes a whole row (rare).
    const d2 = layout.priors.priors.find((p) => p.name === 'd2')!;
    let flips = 0;
    for (let i = 0; i < n; i++) {
      let bad = false;
      for (let j = 0; j < P; j++) {
        const ok = Math.abs(theta[i * P + j] - cpu[i * P + j]) <= tol[i * P + j];
        if (!ok && j >= d2.col && j < d2.col + d2.nCols) bad = true;
        else if (!ok) expect.fail(`row ${i} column ${layout.columns[j].name}: gpu ${theta[i * P + j]} cpu ${cpu[i * P + j]} tol ${tol[i * P + j]}`);
      }
      if (bad) flips++;
    }
    expect(flips).toBeLessThanOrEqual(2);
    // Bounds hold in f32 too.
    const byName = (name: string) => layout.priors.priors.find((p) => p.name === name)!.col;
    for (let i = 0; i < n; i++) {
      const up = theta[i * P + byName('n_upper_tail')];
      const lo = theta[i * P + byName('n_lower_tail')];
      const nw = theta[i * P + byName('n_narrow')];
      expect(up >= 3 && up <= 4 && lo >= -20 && lo <= 1 && nw >= -0.01 && nw <= 0.02).toBe(true);
    }
    expectAllClose(canonical, cpuCanonical(layout, theta, n), { rtol: 2e-6, atol: 0, label: 'canonical' });
  });

  it('the same seed gives the same rows whatever the chunking (bit for bit), including a 2^32 row offset', async () => {
    const layout = configThetaLayout(REFERENCE);
    const P = layout.columns.length;
    const seed = 5;
    const whole = await gpuSample(layout, seed, 1000, 700);
    const parts: Float32Array[] = [];
    for (const [off, len] of [[1000, 1], [1001, 63], [1064, 64], [1128, 572]]) parts.push((await gpuSample(layout, seed, off, len)).theta);
    const joined = new Float32Array(700 * P);
    let o = 0;
    for (const p of parts) {
      joined.set(p, o);
      o += p.length;
    }
    expect(Array.from(joined)).toEqual(Array.from(whole.theta));
    // Rows straddling 2^32: the kernel carries into the high index word like the CPU.
    const off = 2 ** 32 - 20;
    const gpu = await gpuSample(layout, seed, off, 40);
    const cpu = sampleRandomTheta(layout.priors, seed, off, 40);
    expectAllClose(gpu.theta, cpu, { bound: thetaTolerances(layout, cpu, 40), label: 'theta at 2^32' });
    // Different seeds differ.
    const other = await gpuSample(layout, seed + 1, 1000, 700);
    expect(Array.from(other.theta)).not.toEqual(Array.from(whole.theta));
  });

  it('to_canonical maps CPU-designed theta (LHS, Sobol) like thetaToCanonical', async () => {
    const dev = ctx.device;
    const layout = configThetaLayout(REFERENCE);
    const P = layout.columns.length;
    for (const design of ['lhs', 'sobol'] as const) {
      const n = 777;
      const theta = Float32Array.from(new ThetaSampler(layout.priors, { design, seed: 3, n }).sample(0, n));
      const M = uploadBuffer(dev, packPriorModel(priorKernelModel(layout)));
      const T = uploadBuffer(dev, theta);
      const C = createStorageBuffer(dev, 4 * n * CANONICAL_WIDTH);
      await encodeThetaToCanonical(new ComputeBatch(dev), { model: M, theta: T, canonical: C }, { n, nCols: P, canonicalWidth: CANONICAL_WIDTH }).run();
      const got = await readFloat32(dev, C, 0, n * CANONICAL_WIDTH);
      for (const b of [M, T, C]) b.destroy();
      // Same f32 inputs: identity columns are copied exactly, 10^x to 2e-6 relative.
      expectAllClose(got, thetaToCanonical(layout, theta, n), { rtol: 2e-6, atol: 0, label: design });
    }
  });

  it('rejects shapes beyond the shader limits', () => {
    expect(() => priorsSampleProgram({ n: 0, nCols: 1, canonicalWidth: 12, seed: 0, offset: 0, purpose: 1 })).toThrow(/n must be a positive integer/);
    expect(() => priorsSampleProgram({ n: 1, nCols: PRIORS_MAX_COLS + 1, canonicalWidth: 12, seed: 0, offset: 0, purpose: 1 })).toThrow(/nCols/);
    expect(() => priorsSampleProgram({ n: 1, nCols: 1, canonicalWidth: 12, seed: -1, offset: 0, purpose: 1 })).toThrow(/seed/);
    expect(() => packPriorModel({ nCols: 1, base: new Float64Array(12), columns: [{ slot: 12, transform: 0 }], priors: [] })).toThrow(/slot 12/);
  });
});
