import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readBc03Grid } from '../../src/grid/bc03.js';
import { binMeanOperator, integrateLinear, logWavelengthBins, resampleGrid } from '../../src/grid/resample.js';
import { type SpsGrid, spectrumAt } from '../../src/grid/types.js';
import { resolveDataDir } from '../../src/io/paths.js';

let bc03: SpsGrid;
beforeAll(() => {
  bc03 = readBc03Grid(path.join(resolveDataDir(), 'sps', 'bc03_lr_basel_padova1994_chabrier'), { dropZeroAge: true });
});

describe('log wavelength bins', () => {
  it('have ln-width 1/R (rounded to fit the range) and exact end edges', () => {
    const { edges, centers } = logWavelengthBins(1000, 10000, 100);
    expect(edges.length).toBe(Math.round(Math.log(10) * 100) + 1);
    expect(edges[0]).toBe(1000);
    expect(edges[edges.length - 1]).toBe(10000);
    const w = Math.log(10) / (edges.length - 1);
    for (let k = 1; k < edges.length; k++) expect(Math.abs(Math.log(edges[k] / edges[k - 1]) - w)).toBeLessThan(1e-12);
    centers.forEach((c, k) => expect(c > edges[k] && c < edges[k + 1]).toBe(true));
    expect(() => logWavelengthBins(10, 5, 100)).toThrow(/0 < min < max/);
    expect(() => logWavelengthBins(10, 50, 0)).toThrow(/resolution must be a positive number/);
  });
});

describe('flux-conserving resampling', () => {
  it('is exact for linear spectra (bin mean of a line = its value at the bin midpoint)', () => {
    const x = Float64Array.from([100, 150, 400, 401, 1000, 3000]);
    const y = Float64Array.from(x, (v) => 2 + 0.5 * v);
    const edges = Float64Array.from([120, 130, 200, 400.5, 999, 2999.5]);
    const op = binMeanOperator(x, edges);
    for (let k = 0; k < edges.length - 1; k++) {
      let s = 0;
      for (let p = op.rowStart[k]; p < op.rowStart[k + 1]; p++) s += op.coef[p] * y[op.col[p]];
      const want = 2 + 0.5 * 0.5 * (edges[k] + edges[k + 1]);
      expect(Math.abs(s / want - 1)).toBeLessThan(1e-14); // float64 rounding of a few terms
    }
    expect(() => binMeanOperator(x, [50, 200])).toThrow(/extend beyond the native range/);
  });

  it.each([
    [30, 91, 3.6e8], // coarser than native almost everywhere
    [300, 912, 60000], // the photometry range
    [5000, 1000, 20000], // finer than native: bins split native intervals
  ])('conserves ∫ L_nu dlambda over the covered range, every BC03 spectrum (R = %d, %d-%d A)', (R, lo, hi) => {
    const { grid, info } = resampleGrid(bc03, { resolution: R, wavelengthMinAA: lo, wavelengthMaxAA: hi });
    const edges = info.edgesAA!;
    const nL = grid.wavelengthAA.length;
    expect(edges.length).toBe(nL + 1);
    let worst = 0;
    for (let a = 0; a < bc03.ages.length; a += 3) {
      for (let z = 0; z < bc03.metallicities.length; z++) {
        const native = integrateLinear(bc03.wavelengthAA, spectrumAt(bc03, a, z), lo, hi);
        const s = spectrumAt(grid, a, z);
        let sum = 0;
        for (let k = 0; k < nL; k++) sum += s[k] * (edges[k + 1] - edges[k]);
        worst = Math.max(worst, Math.abs(sum / native - 1));
      }
    }
    // Both sides are sums of the same ~1e3 positive partial integrals in float64, grouped differently:
    // rounding only, rel 1e-12.
    expect(worst).toBeLessThan(1e-12);
    expect(grid.metadata.notes.at(-1)).toMatch(/conserves/);
  });

  it('keeps per-bin flux: the resampled integral over any run of bins equals the native one', () => {
    const { grid, info } = resampleGrid(bc03, { resolution: 200, wavelengthMinAA: 1000, wavelengthMaxAA: 30000 });
    const e = info.edgesAA!;
    const native = spectrumAt(bc03, 150, 4);
    const s = spectrumAt(grid, 150, 4);
    for (const [k0, k1] of [
      [0, 1],
      [17, 40],
      [300, 301],
    ]) {
      let sum = 0;
      for (let k = k0; k < k1; k++) sum += s[k] * (e[k + 1] - e[k]);
      expect(Math.abs(sum / integrateLinear(bc03.wavelengthAA, native, e[k0], e[k1]) - 1)).toBeLessThan(1e-12);
    }
  });

  it('native mode crops without changing values; bad ranges are rejected', () => {
    const { grid, info } = resampleGrid(bc03, { wavelengthMinAA: 900, wavelengthMaxAA: 1e5 });
    expect(info.method).toBe('native');
    expect(grid.wavelengthAA[0]).toBeGreaterThanOrEqual(900);
    expect(grid.wavelengthAA.at(-1)).toBeLessThanOrEqual(1e5);
    const i0 = bc03.wavelengthAA.indexOf(grid.wavelengthAA[0]);
    expect(spectrumAt(grid, 7, 2)[5]).toBe(spectrumAt(bc03, 7, 2)[i0 + 5]);
    expect(() => resampleGrid(bc03, { wavelengthMinAA: 50 })).toThrow(/extends beyond the grid's native range \[91, /);
    expect(() => resampleGrid(bc03, { wavelengthMinAA: 5000, wavelengthMaxAA: 4000 })).toThrow(/min 5000 must be < max 4000/);
  });
});
