/**
 * GPU photometry synthesis (cosmology + GEMM with the augmented grid + observe) against the float64
 * forward model, galaxy by galaxy, over random parameter draws of every SFH family, dust law,
 * nebular and IGM option: the whole pipeline (cosmology, SFH weights, GEMM, observe); one case also
 * with the host weights, which isolates the GEMM and observe kernels.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveFilterSet } from '../../src/grid/filters.js';
import type { SpsGrid } from '../../src/grid/types.js';
import { CpuForwardModel, type ForwardModelConfigInput, type GalaxyParamsInput } from '../../src/physics/forwardModel.js';
import type { Inoue14 } from '../../src/physics/igm.js';
import type { Inoue11Table } from '../../src/physics/nebular.js';
import type { SfhFamily } from '../../src/physics/sfh.js';
import { CANONICAL_WIDTH, toCanonicalRow } from '../../src/simulate/canonical.js';
import { GpuSynthesizer, SYNTH_DERIVED_W } from '../../src/simulate/gpuSynth.js';
import { randomF32 } from '../../src/reference/linalg.js';
import { useGpu } from '../helpers/gpu.js';
import { loadSynthData } from '../helpers/synthData.js';

const ctx = useGpu();
let grid: SpsGrid;
let inoue14: Inoue14;
let nebular: Inoue11Table;
beforeAll(async () => {
  ({ grid, inoue14, nebular } = await loadSynthData());
});

/** Deterministic uniform draws in [lo, hi). */
function draws(n: number, seed: number) {
  const u = randomF32(n * 16, seed).map((v) => (v + 1) / 2);
  let k = 0;
  return (lo: number, hi: number) => lo + (hi - lo) * u[k++ % u.length];
}

function randomGalaxy(family: SfhFamily, r: (lo: number, hi: number) => number, tUnivMax: number): GalaxyParamsInput {
  const start = 10 ** r(6.5, Math.log10(tUnivMax * 1.3));
  const sfh =
    family === 'constant' ? { family, startAgeYr: start }
    : family === 'exponential' ? { family, startAgeYr: start, tauYr: (r(0, 1) < 0.5 ? -1 : 1) * 10 ** r(7, 10.5) }
    : family === 'delayedExponential' ? { family, startAgeYr: start, tauYr: 10 ** r(7, 10.5) }
    : family === 'logNormal' ? { family, startAgeYr: start, tau: r(0.1, 1.5), peakAgeYr: start * r(0.05, 0.95) }
    : family === 'doublePowerLaw' ? { family, alpha: r(0.5, 8), beta: r(0.5, 8), tauYr: 10 ** r(8.5, 10.1) }
    : (() => { const a = r(0.05, 0.3), b = a + r(0.05, 0.3), c = b + r(0.05, 0.3); return { family, log10SsfrPerYr: r(-12, -7.5), t25: a, t50: b, t75: Math.min(c, 0.97) }; })();
  // Redshift 0 (absolute) in a few percent of the draws, otherwise 0.01-14.
  const z = r(0, 1) < 0.05 ? 0 : r(0.01, 14);
  return {
    redshift: z,
    log10MassFormedMsun: r(6, 12),
    log10Z: r(-4.5, -1.2), // beyond the BC03 range on both sides (-4, -1)
    avMag: r(0, 3),
    avBirthCloudMag: r(0, 2),
    logU: r(-3.5, -0.5),
    sfh,
  } as GalaxyParamsInput;
}

async function compare(config: ForwardModelConfigInput, family: SfhFamily, n: number, seed: number, weights: "gpu" | "host" = "gpu", given?: GalaxyParamsInput[]) {
  const model = new CpuForwardModel({ grid, filters: resolveFilterSet('jades14'), inoue14, nebular }, config);
  const r = draws(n, seed);
  const gals = given ?? Array.from({ length: n }, () => randomGalaxy(family, r, 1.38e10));
  n = gals.length;
  const canon = new Float32Array(n * CANONICAL_WIDTH);
  gals.forEach((g, i) => canon.set(toCanonicalRow(g, model.config.nebular.logU), i * CANONICAL_WIDTH));
  const synth = await GpuSynthesizer.create(ctx.gpu, model, { sfhFamily: family, weights });
  let res;
  try {
    res = await synth.synthesize(canon);
  } finally {
    synth.destroy();
  }
  const B = model.bandNames.length;
  let worst = { rel: 0, i: -1, b: -1, got: 0, want: 0 };
  let worstDerived = { ratio: 0, i: -1, k: -1, got: 0, want: 0 };
  for (let i = 0; i < n; i++) {
    // The reference sees the same f32-rounded parameters the GPU sees.
    const p = model.parseGalaxy(gals[i]);
    const q = { ...p, redshift: Math.fround(p.redshift), log10MassFormedMsun: Math.fround(p.log10MassFormedMsun), log10Z: Math.fround(p.log10Z), avMag: Math.fround(p.avMag), avBirthCloudMag: Math.fround(p.avBirthCloudMag), logU: Math.fround(p.logU ?? -2) };
    const sfhRounded = Object.fromEntries(Object.entries(p.sfh).map(([k, v]) => [k, typeof v === 'number' ? Math.fround(v) : v]));
    const ref = model.photometry({ ...q, sfh: sfhRounded } as GalaxyParamsInput);
    const maxFlux = Math.max(...ref.fluxesNJy);
    for (let b = 0; b < B; b++) {
      const got = res.fluxesNJy[i * B + b];
      const want = ref.fluxesNJy[b];
      // f32 relative 1e-3 (the bar) on every flux above 1e-6 of the galaxy's brightest band:
      // fainter bands sit beyond the Lyman break where tau ~ 10-100 and exp(-tau) amplifies f32
      // rounding of tau (d flux/flux = d tau); they carry no information at any realistic depth.
      const rel = Number.isFinite(got) ? Math.abs(got - want) / Math.max(Math.abs(want), 1e-6 * maxFlux) : Infinity;
      if (!(rel <= worst.rel)) worst = { rel, i, b, got, want };
    }
    const d = res.derived.subarray(i * SYNTH_DERIVED_W, (i + 1) * SYNTH_DERIVED_W);
    const dref = [ref.derived.survivingMassMsun, ref.derived.massWeightedAgeYr, ref.derived.uvBeta, Math.log10(ref.derived.qHPhotonsS), ref.derived.sfr10MyrMsunPerYr, ref.derived.sfr100MyrMsunPerYr, ref.derived.ageOfUniverseYr];
    dref.forEach((v, k) => {
      const tol = k === 2 ? 1e-3 * Math.max(1, Math.abs(v)) : k === 3 ? 1e-4 * Math.abs(v) : 1e-3 * Math.abs(v) + 1e-30;
      // A non-finite GPU value where the reference is finite is the worst possible error.
      const err = Number.isFinite(d[k]) ? Math.abs(d[k] - v) : Infinity;
      if (Number.isFinite(v) && v !== 0 && !(err / tol <= worstDerived.ratio)) worstDerived = { ratio: err / tol, i, k, got: d[k], want: v };
    });
  }
  return { worst, worstDerived };
}

describe('GPU synthesis vs float64 forward model', () => {
  const configs: [string, ForwardModelConfigInput][] = [
    ['calzetti + inoue14 + nebular', {}],
    ['charlot-fall + madau95 + nebular', { dust: { law: 'charlotFall2000' }, igm: 'madau95' }],
    ['power law, no IGM, no nebular, synthesizer binning, linear Z', { dust: { law: 'powerLaw' }, igm: 'none', nebular: { enabled: false }, ageBinning: 'synthesizer', metallicityInterpolation: 'linearZ' }],
  ];
  const families: SfhFamily[] = ['constant', 'exponential', 'delayedExponential', 'logNormal', 'doublePowerLaw', 'quantiles'];
  families.forEach((family, fi) => {
    configs.forEach(([name, config], ci) => {
      it(`${family}, ${name}`, async () => {
        const { worst, worstDerived } = await compare(config, family, 150, 1000 * fi + ci + 1);
        console.log(`${family} / ${name}: worst flux rel ${worst.rel.toExponential(2)}, worst derived err/tol ${worstDerived.ratio.toFixed(3)} (k=${worstDerived.k})`);
        expect(worst.rel, `worst: galaxy ${worst.i} band ${worst.b}: got ${worst.got}, want ${worst.want}`).toBeLessThan(1e-3);
        expect(worstDerived.ratio, `derived ${JSON.stringify(worstDerived)}`).toBeLessThan(1);
      });
    });
  });
});

describe('GPU synthesis at the edges of the grid and of redshift', () => {
  // Redshift near 0 and at 14, Z far outside BC03's [1e-4, 0.1] on both sides, star formation
  // starting inside the first age bin (1e5 yr) and before the oldest grid age, huge and tiny masses.
  const edges: GalaxyParamsInput[] = [];
  for (const redshift of [0, 1e-4, 0.01, 13.99]) {
    for (const log10Z of [-6, -4, -1, -0.5]) {
      for (const startAgeYr of [5e4, 1.2e5, 3e7, 2.5e10]) {
        edges.push({ redshift, log10MassFormedMsun: redshift < 0.01 ? 4 : 12, log10Z, avMag: 0.5, sfh: { family: 'delayedExponential', tauYr: 1e8, startAgeYr } });
      }
    }
  }
  it(`${edges.length} edge galaxies, calzetti + inoue14 + nebular`, async () => {
    const { worst, worstDerived } = await compare({}, 'delayedExponential', 0, 0, 'gpu', edges);
    expect(worst.rel, `worst: galaxy ${worst.i} band ${worst.b}: got ${worst.got}, want ${worst.want}`).toBeLessThan(1e-3);
    expect(worstDerived.ratio, `derived ${JSON.stringify(worstDerived)}`).toBeLessThan(1);
  });
});

describe('GPU synthesis with host weights (GEMM + observe alone)', () => {
  it('quantiles, charlot-fall + inoue14 + nebular', async () => {
    const { worst } = await compare({ dust: { law: 'charlotFall2000' } }, 'quantiles', 40, 77, 'host');
    expect(worst.rel).toBeLessThan(1e-3);
  });
});
