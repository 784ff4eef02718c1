/**
 * Single stellar populations through filters: grid reading + filter integration against two
 * independent references, plus unit tests of the band-weight formulation.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readBc03Grid, readGalaxevTable } from '../../src/grid/bc03.js';
import { type FilterCurve, FILTER_SETS, resolveFilterSet } from '../../src/grid/filters.js';
import { type SpsGrid, spectrumAt } from '../../src/grid/types.js';
import { referenceDir, resolveDataDir } from '../../src/io/paths.js';
import { L_SUN_BC03_ERG_S, NJY_CGS, SPEED_OF_LIGHT_AA_S, TEN_PARSEC_CM } from '../../src/physics/constants.js';
import { abMagFromNJy, applyBandWeights, bandFluxDirect, bandWeightMatrix, bandWeights, throughputAt } from '../../src/physics/filterIntegration.js';

const bc03Dir = path.join(resolveDataDir(), 'sps', 'bc03_lr_basel_padova1994_chabrier');
/** f_nu [nJy] at 10 pc of L_nu [erg/s/Hz] (z = 0: no (1+z) factor). */
const AREA_10PC = 4 * Math.PI * TEN_PARSEC_CM ** 2;
const nJy10pc = (lnu: number) => lnu / AREA_10PC / NJY_CGS;

let jades: FilterCurve[];
beforeAll(() => {
  jades = resolveFilterSet('jades14');
});

describe('Synthesizer reference, case (b): 20 SSPs at grid nodes, z = 0', () => {
  let grid: SpsGrid;
  let rows: Record<string, number>[];
  beforeAll(() => {
    // The reference's conventions: L_sun = 3.828e33 (our default), t = 0 dropped (age_index counts from 1e5 yr).
    grid = readBc03Grid(bc03Dir, { dropZeroAge: true });
    const lines = readFileSync(path.join(referenceDir(), 'synthesizer', 'case_b_ssp_photometry.csv'), 'utf8').trim().split(/\r?\n/);
    const head = lines[0].split(',');
    rows = lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [head[i], Number(v)])));
  });

  it('reproduces fnu at 10 pc and the band L_nu in all 14 bands to |dmag| <= 0.005 (observed <= 4e-7)', () => {
    expect(rows.length).toBe(20);
    const weights = jades.map((f) => bandWeights(f, grid.wavelengthAA, 0));
    let worst = 0;
    let where = '';
    for (const r of rows) {
      expect(grid.ages[r.age_index] / r.age_yr).toBeCloseTo(1, 6); // ages stored as float32 in both
      expect(grid.metallicities[r.Z_index]).toBe(r.Z);
      const spec = spectrumAt(grid, r.age_index, r.Z_index);
      jades.forEach((f, j) => {
        const lnu = applyBandWeights(weights[j], spec) * r.mass_formed_Msun;
        for (const [got, want] of [
          [nJy10pc(lnu), r[`${f.name}_fnu10pc_nJy`]],
          [lnu, r[`${f.name}_Lnu_erg_s_Hz`]],
        ]) {
          expect(want, `${f.name} column`).toBeGreaterThan(0);
          const d = Math.abs(2.5 * Math.log10(got / want));
          if (d > worst) [worst, where] = [d, `row ${r.id} ${f.name}`];
        }
      });
    }
    // Required: 0.005 mag. Achieved: ACS bands agree to 1e-15 (same float32 inputs, same arithmetic);
    // NIRCam bands to <= 4e-7 relative (unexplained float-level difference, 1e4 below the requirement).
    expect(worst, where).toBeLessThan(0.005);
    expect(worst, where).toBeLessThan(1e-5);
  });

  it('the 1e-5 check discriminates: BC03 L_sun or an energy-counting band average would fail it', () => {
    const r = rows[10];
    const spec = spectrumAt(grid, r.age_index, r.Z_index);
    const lam = grid.wavelengthAA;
    let energy = 0;
    for (const f of jades) {
      // ∫ f_nu T dnu / ∫ T dnu (no 1/nu): the energy-counting average some codes use.
      let num = 0;
      let den = 0;
      for (let i = 0; i + 1 < lam.length; i++) {
        const [t0, t1] = [throughputAt(f, lam[i]), throughputAt(f, lam[i + 1])];
        if (!(t0 > 0 && t1 > 0)) continue;
        const dnu = SPEED_OF_LIGHT_AA_S / lam[i] - SPEED_OF_LIGHT_AA_S / lam[i + 1];
        num += 0.5 * dnu * (spec[i] * t0 + spec[i + 1] * t1);
        den += 0.5 * dnu * (t0 + t1);
      }
      energy = Math.max(energy, Math.abs(2.5 * Math.log10(nJy10pc(num / den) / r[`${f.name}_fnu10pc_nJy`])));
    }
    expect(energy).toBeGreaterThan(1e-3);
    expect(2.5 * Math.log10(3.828 / 3.826)).toBeGreaterThan(1e-4); // 5.7e-4 mag
    // Not discriminated at z = 0: counting the half-intervals beyond the first/last T > 0 sample changes
    // these fluxes by only ~3e-6 mag (the filters' tails are ~0 there); it matters at high z, where
    // bands straddle the Lyman break (case (a) of the reference).
  });
});

describe("GALAXEV's own ACS magnitudes (*.acs_wfc_color), ages 10 Myr - 13 Gyr, all 7 Z", () => {
  /*
   * What the file holds (checked here): Johnson V (Vega) and the colours V - F435W, V - F606W,
   * V - F775W, V - F814W in VEGA magnitudes. There is no F850LP column, so F850LP cannot be checked.
   * We have neither GALAXEV's V filter nor its Vega spectrum, so each band is compared up to one zero
   * point common to all ages and metallicities; that zero point must be the AB - Vega offset of the band
   * (Sirianni et al. 2005, PASP 117, 1049, table 10, rounded: F435W -0.10, F606W +0.09, F775W +0.39,
   * F814W +0.43) plus one common V calibration offset.
   * Remaining differences: GALAXEV (2003) used pre-flight ACS throughputs, data/filters has the 2017 STScI
   * curves. For F606W and F775W that leaves <= 0.026 mag; for F435W (up to 0.064) and F814W (up to 0.145,
   * red supergiant and metal-rich populations) it exceeds 0.05. A linear colour term in the adjacent
   * colour — the standard transformation between two realisations of a band — takes every band to
   * <= 0.017 mag, which shows the difference is the filter curves and not the spectra or the integration.
   */
  const bands = ['acs_wfc_f435w', 'acs_wfc_f606w', 'acs_wfc_f775w', 'acs_wfc_f814w', 'acs_wfc_f850lp'];
  const columns = ['V-F435w', 'V-F606w', 'V-F775w', 'V-F814w'];
  const abMinusVega = [-0.1, 0.09, 0.39, 0.43];
  /** ours[k][j]: our AB mag of point k in band j (5 bands); theirs[k][j]: GALAXEV Vega mag (4 bands). */
  const ours: number[][] = [];
  const theirs: number[][] = [];

  beforeAll(() => {
    // GALAXEV computed its magnitudes with its own L_sun = 3.826e33.
    const grid = readBc03Grid(bc03Dir, { lSunErgS: L_SUN_BC03_ERG_S });
    const filters = resolveFilterSet(bands);
    const w = filters.map((f) => bandWeights(f, grid.wavelengthAA, 0));
    grid.metallicities.forEach((_z, iZ) => {
      const t = readGalaxevTable(grid.metadata.sourceFiles[iZ].replace(/\.ised$/, '.acs_wfc_color'));
      expect(t.columns.some((c) => /850/i.test(c))).toBe(false);
      const logAge = t.column('log-age-yr');
      const v = t.column('Vmag');
      const cols = columns.map((c) => t.column(c));
      logAge.forEach((la, r) => {
        if (la < 7 - 1e-9 || la > Math.log10(1.3e10)) return;
        const iA = grid.ages.findIndex((a) => a > 0 && Math.abs(Math.log10(a) - la) < 1e-5);
        expect(iA, `age 10^${la}`).toBeGreaterThan(0);
        const spec = spectrumAt(grid, iA, iZ);
        ours.push(w.map((wj) => abMagFromNJy(nJy10pc(applyBandWeights(wj, spec)))));
        theirs.push(cols.map((c) => v[r] - c[r]));
      });
    });
  });

  const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];

  it('covers 10 Myr - 13 Gyr for all 7 metallicities', () => {
    expect(ours.length).toBe(7 * 124); // 124 GALAXEV ages in [1e7, 1.3e10] yr per metallicity
  });

  it('zero points are AB - Vega offsets plus one common offset (the file is in Vega mags)', () => {
    const zp = columns.map((_c, j) => median(ours.map((o, k) => o[j] - theirs[k][j])));
    const off = zp.map((z, j) => z - abMinusVega[j]);
    // If the file were AB, zp would be one common number; it spans > 0.4 mag like AB - Vega does...
    expect(Math.max(...zp) - Math.min(...zp)).toBeGreaterThan(0.4);
    // ...and after removing AB - Vega one offset remains (observed -0.03..-0.09: GALAXEV's V zero point
    // and Vega spectrum vs. the STScI calibration, plus the curve differences below): spread <= 0.1.
    expect(Math.max(...off) - Math.min(...off)).toBeLessThan(0.1);
    expect(Math.abs(median(off))).toBeLessThan(0.15);
  });

  it('F606W and F775W: within 0.05 mag (median <= 0.02) after the zero point alone', () => {
    for (const j of [1, 2]) {
      const d = ours.map((o, k) => o[j] - theirs[k][j]);
      const zp = median(d);
      const res = d.map((x) => Math.abs(x - zp));
      // Observed: F606W max 0.020 / median 0.007; F775W max 0.026 / median 0.006.
      expect(Math.max(...res), bands[j]).toBeLessThan(0.05);
      expect(median(res), bands[j]).toBeLessThan(0.02);
    }
  });

  it('all four bands: within 0.03 mag (median <= 0.01) after zero point + colour term', () => {
    // Colour used for each band's transformation (our AB colours): bands straddling the 4000 A break
    // use F435W - F606W; the red bands F775W - F850LP.
    const colour = [
      (o: number[]) => o[0] - o[1],
      (o: number[]) => o[0] - o[1],
      (o: number[]) => o[2] - o[4],
      (o: number[]) => o[2] - o[4],
    ];
    columns.forEach((_c, j) => {
      const x = ours.map(colour[j]);
      const y = ours.map((o, k) => o[j] - theirs[k][j]);
      const n = x.length;
      const mx = x.reduce((a, b) => a + b) / n;
      const my = y.reduce((a, b) => a + b) / n;
      let sxy = 0;
      let sxx = 0;
      for (let k = 0; k < n; k++) {
        sxy += (x[k] - mx) * (y[k] - my);
        sxx += (x[k] - mx) ** 2;
      }
      const b = sxy / sxx;
      const res = y.map((v, k) => Math.abs(v - my - b * (x[k] - mx)));
      // Observed max: F435W 0.015, F606W 0.004, F775W 0.017, F814W 0.005 (2 parameters, 868 points each).
      expect(Math.max(...res), bands[j]).toBeLessThan(0.03);
      expect(median(res), bands[j]).toBeLessThan(0.01);
    });
  });
});

describe('band weights (filter integration)', () => {
  let grid: SpsGrid;
  beforeAll(() => {
    grid = readBc03Grid(bc03Dir, { dropZeroAge: true });
  });

  it('dot(weights, f_nu) equals the two trapezoid integrals at any redshift', () => {
    const lam = grid.wavelengthAA;
    for (const z of [0, 0.37, 3, 7.3]) {
      const obs = Float64Array.from(lam, (l) => l * (1 + z));
      for (const [a, iz] of [
        [20, 0],
        [150, 6],
      ]) {
        const spec = spectrumAt(grid, a, iz);
        for (const f of jades) {
          const w = bandWeights(f, lam, z);
          expect(w.valid).toBe(true);
          // Same sums, grouped per sample instead of per interval: rel 1e-13.
          expect(Math.abs(applyBandWeights(w, spec) / bandFluxDirect(f, obs, spec) - 1), `${f.name} z=${z}`).toBeLessThan(1e-13);
        }
      }
    }
  });

  it('weights sum to 1 (a flat f_nu is returned unchanged) and live inside the filter', () => {
    const flat = new Float64Array(grid.wavelengthAA.length).fill(3.7);
    for (const z of [0, 2, 9]) {
      const { matrix, nLambda, bands } = bandWeightMatrix(jades, grid.wavelengthAA, z);
      bands.forEach((b, j) => {
        expect(Math.abs(applyBandWeights(b, flat) / 3.7 - 1)).toBeLessThan(1e-14);
        const f = jades[j];
        expect(grid.wavelengthAA[b.start] * (1 + z)).toBeGreaterThanOrEqual(f.wavelengthAA[0]);
        expect(grid.wavelengthAA[b.end - 1] * (1 + z)).toBeLessThanOrEqual(f.wavelengthAA.at(-1)!);
        expect(matrix.subarray(j * nLambda, (j + 1) * nLambda)).toEqual(b.weights);
      });
    }
  });

  it('on a rest-frame grid the weights depend on z only through T(lambda (1+z)) (the GPU recipe)', () => {
    const lam = grid.wavelengthAA;
    const n = lam.length;
    // Rest-frame trapezoid factors, fixed per grid: g-_i = ½|nu_{i-1} - nu_i|/nu_i, g+_i = ½|nu_i - nu_{i+1}|/nu_i.
    const nu = Float64Array.from(lam, (l) => SPEED_OF_LIGHT_AA_S / l);
    for (const z of [0, 1.2, 6.5]) {
      for (const f of jades) {
        const t = Float64Array.from(lam, (l) => throughputAt(f, l * (1 + z)));
        const w = new Float64Array(n);
        let sum = 0;
        for (let i = 0; i < n; i++) {
          if (!(t[i] > 0)) continue;
          const gm = i > 0 && t[i - 1] > 0 ? (0.5 * (nu[i - 1] - nu[i])) / nu[i] : 0;
          const gp = i < n - 1 && t[i + 1] > 0 ? (0.5 * (nu[i] - nu[i + 1])) / nu[i] : 0;
          w[i] = t[i] * (gm + gp);
          sum += w[i];
        }
        const ref = bandWeights(f, lam, z).weights;
        // Rest- vs observed-frame nu in the factors: rounding only, rel 1e-12 of the largest weight.
        const big = Math.max(...ref);
        for (let i = 0; i < n; i++) expect(Math.abs(w[i] / sum - ref[i])).toBeLessThan(1e-12 * big);
      }
    }
  });

  it('flags filters outside or running off the grid', () => {
    const f200 = jades[FILTER_SETS.jades14.indexOf('jwst_f200w')];
    const short = grid.wavelengthAA.subarray(0, 700); // ends near 1.2e4 A
    const w = bandWeights(f200, short, 0);
    expect(w.valid).toBe(false);
    expect(Number.isNaN(applyBandWeights(w, short))).toBe(true);
    const part = bandWeights(f200, grid.wavelengthAA.filter((l) => l < 20000), 0);
    expect(part.valid).toBe(true);
    expect(part.truncated).toBe(true);
    expect(bandWeights(f200, grid.wavelengthAA, 0).truncated).toBe(false);
    expect(() => bandWeights(f200, grid.wavelengthAA, -1)).toThrow(/redshift must be finite and > -1/);
  });
});
