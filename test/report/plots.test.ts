/**
 * Every plot renders a well-formed SVG with its axis titles (units included) and one drawn item per
 * finite datum of a small input: non-finite values are skipped, never drawn as zero.
 */
import { describe, expect, it } from 'vitest';
import { compactSvgNumbers, corner, coverageCurve, helveticaTextWidth, rankHistogram, sedPlot, sfhPlot, subsampleIndices, tarpCurve, trueVsPredicted } from '../../src/report/plots.js';
import { checkSvg, hasMark, markCount, markGroup, markItems, parseXml, pathVertices, texts } from './svg.js';

describe('svg test helper', () => {
  it('rejects malformed XML', () => {
    expect(() => parseXml('<svg><g></svg>')).toThrow(/does not match/);
    expect(() => parseXml('<svg a="1" a="2"/>')).toThrow(/duplicate/);
    expect(() => parseXml('<svg><g>')).toThrow(/unclosed/);
    expect(parseXml('<svg><g a="1"/><g><path/></g></svg>').children.length).toBe(2);
  });
});

describe('trueVsPredicted', () => {
  it('draws one point per finite (truth, median), one error bar per finite p16/p84, and the 1:1 line', async () => {
    const truth = [8, 9, 10, NaN, 11, 12];
    const median = [8.1, 8.8, NaN, 9, 11.2, 11.9];
    const p16 = [7.9, 8.5, 9, 9, 11, NaN];
    const p84 = [8.3, 9.1, 10, 10, 11.4, 12.1];
    const svg = await trueVsPredicted('log10 M', 'dex', truth, median, p16, p84);
    const root = checkSvg(svg);
    const t = texts(root);
    expect(t).toContain('true log10 M [dex]');
    expect(t).toContain('posterior median log10 M [dex]');
    expect(markCount(root, 'points')).toBe(4);
    expect(markCount(root, 'errorbars')).toBe(3);
    expect(markCount(root, 'identity')).toBe(1);
  });

  it('subsamples many points to maxPoints and lowers the opacity', async () => {
    const n = 500;
    const truth = Float64Array.from({ length: n }, (_, i) => i / n);
    const root = checkSvg(await trueVsPredicted('z', '', truth, truth, undefined, undefined, { maxPoints: 50 }));
    expect(markCount(root, 'points')).toBe(50);
    expect(hasMark(root, 'errorbars')).toBe(false);
    expect(texts(root)).toContain('true z'); // dimensionless: no empty brackets
    expect(texts(root).some((s) => /50 of 500 galaxies/.test(s))).toBe(true);
    expect(subsampleIndices([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 5)).toEqual([0, 2, 4, 6, 8]);
  });

  it('rejects arrays of different lengths', async () => {
    await expect(trueVsPredicted('x', '', [1, 2], [1])).rejects.toThrow(/median has 1 values, expected 2/);
  });
});

describe('coverage and TARP', () => {
  const levels = [0, 0.25, 0.5, 0.75, 1];
  it('coverage: one line per parameter, the diagonal, the binomial band', async () => {
    const root = checkSvg(await coverageCurve(levels, { a: [0, 0.2, 0.5, 0.8, 1], b: [0, 0.3, NaN, 0.7, 1], c: [0, 0.25, 0.5, 0.75, 1] }, { nTest: 200 }));
    expect(markCount(root, 'coverage')).toBe(3);
    expect(markCount(root, 'diagonal')).toBe(1);
    expect(markCount(root, 'band')).toBe(1);
    const t = texts(root);
    expect(t).toContain('nominal credible level (fraction)');
    expect(t).toContain('empirical coverage (fraction)');
    // The NaN level is skipped: b's line has 4 vertices, a's 5.
    const lines = markItems(root, 'coverage').map((e) => pathVertices(e.attrs.d));
    expect(lines.sort()).toEqual([4, 5, 5]);
  });

  it('tarp: one curve and the diagonal; the bootstrap band when given', async () => {
    const ecp = [0, 0.3, 0.55, NaN, 1];
    const root = checkSvg(await tarpCurve(levels, ecp, { ecpLow: [0, 0.2, 0.5, 0.7, 1], ecpHigh: [0, 0.35, 0.6, 0.8, 1] }));
    expect(markCount(root, 'tarp')).toBe(1);
    expect(pathVertices(markGroup(root, 'tarp').children[0].attrs.d)).toBe(4);
    expect(markCount(root, 'band')).toBe(1);
    expect(texts(root)).toContain('credibility level 1 − α (fraction)');
    expect(texts(root)).toContain('expected coverage probability (fraction)');
    expect(hasMark(root, 'band')).toBe(true);
    expect(hasMark(checkSvg(await tarpCurve(levels, ecp)), 'band')).toBe(false);
  });
});

describe('rankHistogram', () => {
  it('one bar per bin, expectation rule and band; NaN ranks skipped; out-of-range ranks rejected', async () => {
    const M = 99; // 100 possible ranks, 10 per bin
    const ranks = [0, 5, 9, 10, 55, 99, 99, NaN, 42];
    const svg = await rankHistogram(ranks, 10, M, { param: 'redshift' });
    const root = checkSvg(svg);
    expect(markCount(root, 'bars')).toBe(10);
    expect(markCount(root, 'expected')).toBe(1);
    expect(markCount(root, 'band')).toBe(1);
    const t = texts(root);
    expect(t).toContain('rank of the true value among 99 posterior samples');
    expect(t).toContain('galaxies per bin (count)');
    expect(t.some((s) => s.startsWith('8 galaxies'))).toBe(true);
    await expect(rankHistogram([0, 100], 10, 99)).rejects.toThrow(/outside \[0, 99\]/);
    await expect(rankHistogram([0], 0, 99)).rejects.toThrow(/nBins/);
  });
});

describe('corner', () => {
  const P = 3;
  const M = 60;
  const samples = new Float64Array(M * P);
  for (let i = 0; i < M; i++) {
    samples[i * P] = Math.sin(i);
    samples[i * P + 1] = Math.cos(1.7 * i) + 0.5 * Math.sin(i);
    samples[i * P + 2] = (i % 7) / 7;
  }
  samples[5 * P + 2] = NaN;
  const names = ['a', 'b', 'c'];

  it('scatter: histograms on the diagonal, every finite pair below it, blank upper triangle, truth rules', async () => {
    const root = checkSvg(await corner(samples, names, [0, 0, NaN], { units: ['mag', '', 'dex'], bins: 8, kind: 'scatter' }));
    for (let j = 0; j < P; j++) expect(markCount(root, `hist_${j}`)).toBe(8);
    expect(markCount(root, 'scatter_1_0')).toBe(M);
    expect(markCount(root, 'scatter_2_0')).toBe(M - 1);
    expect(markCount(root, 'scatter_2_1')).toBe(M - 1);
    for (const b of ['blank_0_1', 'blank_0_2', 'blank_1_2']) expect(hasMark(root, b)).toBe(true);
    expect(hasMark(root, 'truth_0') && hasMark(root, 'truth_1')).toBe(true);
    expect(hasMark(root, 'truth_2')).toBe(false); // NaN truth skipped
    expect(hasMark(root, 'truthpt_1_0')).toBe(true);
    expect(hasMark(root, 'truthpt_2_0')).toBe(false);
    const t = texts(root);
    expect(t).toContain('a [mag]');
    expect(t).toContain('b');
    expect(t).toContain('c [dex]');
  });

  it('density: one rect per non-empty 2-D bin', async () => {
    const bins = 6;
    const root = checkSvg(await corner(samples, names, undefined, { bins, kind: 'density' }));
    const col = (j: number) => Array.from({ length: M }, (_, i) => samples[i * P + j]);
    const range = (j: number) => {
      const v = col(j).filter(Number.isFinite);
      const lo = Math.min(...v);
      const hi = Math.max(...v);
      return [lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo)];
    };
    const cells = (r: number, c: number) => {
      const [xl, xh] = range(c);
      const [yl, yh] = range(r);
      const s = new Set<number>();
      for (let i = 0; i < M; i++) {
        const x = samples[i * P + c];
        const y = samples[i * P + r];
        if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
        s.add(Math.floor(((y - yl) / (yh - yl)) * bins) * bins + Math.floor(((x - xl) / (xh - xl)) * bins));
      }
      return s.size;
    };
    expect(markCount(root, 'density_1_0')).toBe(cells(1, 0));
    expect(markCount(root, 'density_2_1')).toBe(cells(2, 1));
    expect(hasMark(root, 'truth_0')).toBe(false);
  });

  it('checks shapes', async () => {
    await expect(corner([1, 2, 3], ['a', 'b'])).rejects.toThrow(/multiple of 2/);
    await expect(corner([1, 2], ['a', 'b'], [1])).rejects.toThrow(/truth has 1 values/);
  });
});

describe('sedPlot', () => {
  const lam = Float64Array.from({ length: 60 }, (_, i) => 3000 * 10 ** (i / 40));
  const med = lam.map((l) => (l < 5000 ? 0 : 50 * (l / 1e4) ** 0.5));
  med[30] = NaN;
  it('observed frame: band, median line, model and observed bands with errors; NaN and non-positive values skipped', async () => {
    const bands = [9000, 15000, 20000, 35000, 44000];
    const svg = await sedPlot({
      frame: 'observed',
      wavelengthAA: lam,
      median: med,
      p16: med.map((v) => v * 0.8),
      p84: med.map((v) => v * 1.2),
      observed: { wavelengthAA: bands, flux: [40, NaN, 60, -3, 80], error: [5, 5, NaN, 5, 8], names: ['a', 'b', 'c', 'd', 'e'] },
      model: { wavelengthAA: bands, median: [41, 50, 61, 70, NaN], p16: [39, 48, 59, 68, 75], p84: [43, 52, 63, 72, 85] },
    });
    const root = checkSvg(svg);
    const t = texts(root);
    expect(t).toContain('observed wavelength λ [µm]');
    expect(t).toContain('f_ν [nJy]');
    expect(markCount(root, 'obs_points')).toBe(3); // NaN and the negative flux (log axis) skipped
    expect(markCount(root, 'obs_errors')).toBe(2); // and the NaN error
    expect(markCount(root, 'model_bands')).toBe(4);
    expect(markCount(root, 'model_errors')).toBe(4);
    expect(markCount(root, 'sed_median')).toBe(1);
    expect(markCount(root, 'sed_band')).toBe(1);
    // The median line: positive finite samples inside the plotted range (0.63-6.16 µm by default).
    const inRange = Array.from(lam).filter((l, i) => l >= 9000 * 0.7 && l <= 44000 * 1.4 && med[i] > 0).length;
    expect(pathVertices(markGroup(root, 'sed_median').children[0].attrs.d)).toBe(inRange);
  });

  it('rest frame with a linear axis and a truth line', async () => {
    const lnu = lam.map((l) => 1e28 * (l / 1e4));
    const root = checkSvg(await sedPlot({ frame: 'rest', wavelengthAA: lam, median: lnu, truth: { wavelengthAA: lam, flux: lnu }, yScale: 'linear', wavelengthRangeAA: [3000, 20000] }));
    const t = texts(root);
    expect(t).toContain('rest-frame wavelength λ [µm]');
    expect(t).toContain('L_ν [erg s⁻¹ Hz⁻¹]');
    expect(markCount(root, 'truth_sed')).toBe(1);
    expect(hasMark(root, 'sed_band')).toBe(false);
  });
});

describe('sfhPlot', () => {
  it('median line with NaN skipped, band, truth; axis titles with units', async () => {
    const t = Float64Array.from({ length: 10 }, (_, i) => i * 1e9);
    const med = t.map((x) => 5 * Math.exp(-x / 3e9));
    med[2] = NaN;
    med[7] = NaN;
    const root = checkSvg(await sfhPlot({ lookbackYr: t, median: med, p16: med.map((v) => v * 0.5), p84: med.map((v) => v * 1.5), truth: t.map((x) => 4 * Math.exp(-x / 2e9)) }));
    const tx = texts(root);
    expect(tx).toContain('lookback time [Gyr]');
    expect(tx).toContain('SFR [M☉ yr⁻¹]');
    expect(markCount(root, 'sfh_median')).toBe(1);
    expect(pathVertices(markGroup(root, 'sfh_median').children[0].attrs.d)).toBe(8);
    expect(markCount(root, 'sfh_band')).toBe(1);
    expect(markCount(root, 'sfh_truth')).toBe(1);
  });
});

describe('helpers', () => {
  it('compacts long decimals only', () => {
    expect(compactSvgNumbers('<g transform="translate(73.28243506259777,1.5)" opacity="0.36000000000000004" x="12"><text>0.125</text></g>')).toBe(
      '<g transform="translate(73.28,1.5)" opacity="0.36" x="12"><text>0.125</text></g>',
    );
  });
  it('measures text with font metrics', () => {
    expect(helveticaTextWidth('iiii', 10)).toBeLessThan(helveticaTextWidth('MMMM', 10));
    expect(helveticaTextWidth('0', 1000)).toBeCloseTo(556 * 1.06, 6);
  });
});
