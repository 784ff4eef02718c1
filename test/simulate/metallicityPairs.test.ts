/**
 * The metallicity-pair path of the GPU synthesis (src/simulate/gpuSynth.ts): the host grouping, and
 * the same fluxes and derived quantities as the full GEMM (pairZ: false) on awkward batches —
 * 1 galaxy, a prime count, metallicities exactly on grid nodes and beyond both ends, one group only,
 * and a batch with a metallicity spread (which must take the full path).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { packMetallicityTable } from '../../kernels/synth/weights.js';
import { resolveFilterSet } from '../../src/grid/filters.js';
import type { SpsGrid } from '../../src/grid/types.js';
import { CpuForwardModel, type GalaxyParamsInput } from '../../src/physics/forwardModel.js';
import type { Inoue14 } from '../../src/physics/igm.js';
import type { Inoue11Table } from '../../src/physics/nebular.js';
import { CANONICAL, CANONICAL_WIDTH, toCanonicalRow } from '../../src/simulate/canonical.js';
import { GpuSynthesizer, PAIR_ALIGN, SYNTH_DERIVED_W, metallicityPairMatrix, planMetallicityPairs } from '../../src/simulate/gpuSynth.js';
import { useGpu } from '../helpers/gpu.js';
import { loadSynthData } from '../helpers/synthData.js';

describe('planMetallicityPairs', () => {
  const zTable = packMetallicityTable([1e-4, 1e-3, 1e-2, 2e-2]);
  const row = (log10Z: number, sigma = 0) => {
    const r = new Float32Array(CANONICAL_WIDTH);
    r[CANONICAL.log10Z] = log10Z;
    r[CANONICAL.log10ZSigmaDex] = sigma;
    return r;
  };
  const canonOf = (rows: Float32Array[]) => {
    const c = new Float32Array(rows.length * CANONICAL_WIDTH);
    rows.forEach((r, i) => c.set(r, i * CANONICAL_WIDTH));
    return c;
  };
  it('groups by the node below, pads each group to PAIR_ALIGN rows, maps every row back once', () => {
    // below the grid, on node 1, inside (2, 3), above the grid, inside (0, 1)
    const c = canonOf([row(-5), row(Math.fround(Math.log10(1e-3))), row(-1.9), row(-1), row(-3.5)]);
    const plan = planMetallicityPairs(c, 5, zTable, 4, 'log10Z')!;
    expect(plan.groups).toEqual([
      { zLo: 0, start: 0, rows: PAIR_ALIGN },
      { zLo: 1, start: PAIR_ALIGN, rows: PAIR_ALIGN },
      { zLo: 2, start: 2 * PAIR_ALIGN, rows: PAIR_ALIGN },
    ]);
    expect(plan.rows).toBe(3 * PAIR_ALIGN);
    const real = [...plan.keep.keys()].filter((p) => plan.keep[p]).map((p) => plan.source[p]);
    expect(real.sort()).toEqual([0, 1, 2, 3, 4]);
    expect([plan.source[0], plan.source[1]]).toEqual([0, 4]);
    expect(plan.source[PAIR_ALIGN]).toBe(1);
    expect([plan.source[2 * PAIR_ALIGN], plan.source[2 * PAIR_ALIGN + 1]]).toEqual([2, 3]);
    // Padding repeats a row of its own group.
    expect(plan.source[PAIR_ALIGN - 1]).toBe(0);
    expect(plan.keep[PAIR_ALIGN - 1]).toBe(0);
  });
  it('a metallicity spread anywhere in the batch: no plan (the full GEMM)', () => {
    expect(planMetallicityPairs(canonOf([row(-3), row(-2.5, 0.3)]), 2, zTable, 4, 'log10Z')).toBeNull();
  });
  it('pair matrices interleave the two nodes per age', () => {
    const nA = 3, nZ = 4, w = 2;
    const full = Float32Array.from({ length: nA * nZ * w }, (_, i) => i);
    const m = metallicityPairMatrix(full, nA, nZ, 2);
    // rows (a, t) = full row a*nZ + 2 + t
    expect(Array.from(m.subarray(0, 4))).toEqual([4, 5, 6, 7]);
    expect(Array.from(m.subarray(4, 8))).toEqual([12, 13, 14, 15]);
    expect(Array.from(m.subarray(8, 12))).toEqual([20, 21, 22, 23]);
  });
});

describe('GPU synthesis: metallicity pairs vs the full GEMM', () => {
  const ctx = useGpu();
  let grid: SpsGrid;
  let inoue14: Inoue14;
  let nebular: Inoue11Table;
  beforeAll(async () => {
    ({ grid, inoue14, nebular } = await loadSynthData());
  });

  function galaxies(n: number, seed: number, zChoice: (i: number) => number, sigma = 0): GalaxyParamsInput[] {
    let s = seed;
    const u = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
    return Array.from({ length: n }, (_, i) => {
      const a = 0.05 + 0.3 * u();
      const b = a + 0.05 + 0.3 * u();
      return {
        redshift: 0.01 + 12 * u(),
        log10MassFormedMsun: 7 + 4 * u(),
        log10Z: zChoice(i),
        log10ZSigmaDex: sigma,
        avMag: 2 * u(),
        sfh: { family: 'quantiles', log10SsfrPerYr: -12 + 4 * u(), t25: a, t50: b, t75: Math.min(b + 0.05 + 0.3 * u(), 0.97) },
      } as GalaxyParamsInput;
    });
  }

  async function both(gals: GalaxyParamsInput[]) {
    const model = new CpuForwardModel({ grid, filters: resolveFilterSet('jades14'), inoue14, nebular }, { dust: { law: 'calzetti2000' }, igm: 'inoue14', nebular: { enabled: true } });
    const canon = new Float32Array(gals.length * CANONICAL_WIDTH);
    gals.forEach((g, i) => canon.set(toCanonicalRow(g, model.config.nebular.logU), i * CANONICAL_WIDTH));
    const out = [];
    for (const pairZ of [true, false]) {
      const synth = await GpuSynthesizer.create(ctx.gpu, model, { sfhFamily: 'quantiles', pairZ, chunk: 200 });
      try {
        out.push(await synth.synthesize(canon));
      } finally {
        synth.destroy();
      }
    }
    return out;
  }

  function expectSame(a: { fluxesNJy: Float32Array; derived: Float32Array }, b: { fluxesNJy: Float32Array; derived: Float32Array }, n: number) {
    // The two paths sum the same non-zero products in a different order (K = 2A vs A*nZ, other tiles):
    // f32 rounding of sums of ~220 positive terms, <~ 1e-6 relative; 2e-5 leaves room for the IGM and
    // dust factors that multiply them unchanged.
    let worst = 0;
    for (let i = 0; i < a.fluxesNJy.length; i++) {
      const x = a.fluxesNJy[i];
      const y = b.fluxesNJy[i];
      const scale = Math.max(Math.abs(y), 1e-30);
      if (Math.abs(y) > 0 || Math.abs(x) > 0) worst = Math.max(worst, Math.abs(x - y) / scale);
    }
    expect(worst).toBeLessThan(2e-5);
    expect(a.fluxesNJy.some((v) => v > 0)).toBe(true);
    for (let i = 0; i < n; i++)
      for (let k = 0; k < SYNTH_DERIVED_W; k++) {
        const x = a.derived[i * SYNTH_DERIVED_W + k];
        const y = b.derived[i * SYNTH_DERIVED_W + k];
        if (Number.isNaN(y)) expect(x).toBeNaN();
        else expect(Math.abs(x - y)).toBeLessThanOrEqual(2e-5 * Math.max(Math.abs(y), 1e-3));
      }
  }

  it('1 galaxy, 131 galaxies over every pair, nodes and beyond the ends, a chunk of 200 split in two', async () => {
    const nodes = Array.from(grid.metallicities, (z) => Math.log10(z));
    for (const n of [1, 131, 333]) {
      const gals = galaxies(n, n, (i) => (i % 5 === 0 ? nodes[i % nodes.length] : i % 7 === 0 ? -5 : i % 11 === 0 ? -0.5 : -4.2 + 3 * ((i * 0.618) % 1)));
      const [pair, full] = await both(gals);
      expectSame(pair, full, n);
    }
  }, 120_000);

  it('one group only, and a batch with a metallicity spread (full path)', async () => {
    const [p1, f1] = await both(galaxies(70, 3, () => -2.1));
    expectSame(p1, f1, 70);
    const [p2, f2] = await both(galaxies(40, 4, (i) => -3 + i * 0.02, 0.2));
    expectSame(p2, f2, 40);
  }, 120_000);
});
