/**
 * The HTML report: one self-contained document with every section, table and figure; text escaped,
 * figure ids made unique, nothing loaded from outside.
 */
import { describe, expect, it } from 'vitest';
import { coverageCurve, rankHistogram, trueVsPredicted } from '../../src/report/plots.js';
import { escapeHtml, formatCell, inlineSvg, renderReport } from '../../src/report/report.js';
import { parseXml } from './svg.js';

describe('renderReport', () => {
  it('contains every section, table and figure, and no external URL', async () => {
    const levels = [0, 0.5, 1];
    const figs = [
      await trueVsPredicted('log10 M', 'dex', [8, 9, 10], [8.1, 9.2, 9.9], [8, 9, 9.7], [8.3, 9.4, 10.1]),
      await trueVsPredicted('redshift', '', [1, 2, 3], [1.1, 2.2, 2.9]),
      await coverageCurve(levels, { a: [0, 0.45, 1] }),
      await rankHistogram([1, 5, 9], 5, 9),
    ];
    const html = renderReport({
      title: 'Run <demo> & "quotes"',
      runInfo: { command: 'npx synference validate --model m/', galaxies: 1000, 'wall time [s]': 12.3456789, missing: NaN },
      tables: [{ title: 'Metrics', columns: ['parameter', 'R²', 'bias'], rows: [['log10 M', 0.98765432, -0.0001234], ['redshift', NaN, 3]] }],
      sections: [
        { title: 'True vs predicted', text: 'Posterior medians <b>against</b> truth.', figures: [{ svg: figs[0], title: 'mass', caption: 'a & b' }, { svg: figs[1] }] },
        { title: 'Calibration', figures: [{ svg: figs[2] }, { svg: figs[3] }], tables: [{ columns: ['level', 'coverage'], rows: [[0.68, 0.7]] }] },
        { title: 'Calibration', text: ['same title twice gets its own anchor'] },
      ],
      footer: 'test',
    });
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain('<title>Run &lt;demo&gt; &amp; &quot;quotes&quot;</title>');
    expect(html).toContain('<h2>True vs predicted</h2>');
    expect(html.match(/<h2>Calibration<\/h2>/g)?.length).toBe(2);
    expect(html).toContain('href="#calibration-2"');
    expect(html).toContain('Posterior medians &lt;b&gt;against&lt;/b&gt; truth.');
    expect(html.match(/<svg[\s>]/g)?.length).toBe(4);
    expect(html.match(/<figure /g)?.length).toBe(4);
    expect(html.match(/<table>/g)?.length).toBe(2);
    expect(html).toContain('<td class="num">0.9877</td>');
    expect(html).toContain('<td class="num">-1.234e-4</td>');
    expect(html).toContain('<dd>12.3457</dd>');
    expect(html).toContain('<td class="num">—</td>');
    // Self-contained: no URL of any kind, no external loads.
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/\ssrc\s*=|<link|@import|url\((?!#)/i);
    for (const m of html.matchAll(/href="([^"]*)"/g)) expect(m[1].startsWith('#')).toBe(true);
    // ids unique across figures (vega numbers clip paths from 1 in each SVG), references follow them.
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    for (const m of html.matchAll(/url\(#([^)]+)\)/g)) expect(ids).toContain(m[1]);
    // Every inlined figure is still well-formed XML.
    for (const m of html.matchAll(/<svg[\s\S]*?<\/svg>/g)) expect(parseXml(m[0]).name).toBe('svg');
  });

  it('refuses figures that are not SVG or load something, and rows of the wrong width', () => {
    expect(() => inlineSvg('<div/>', 'f')).toThrow(/not an SVG/);
    expect(() => inlineSvg('<svg><image href="http://x/y.png"/></svg>', 'f')).toThrow(/external reference/);
    expect(() => inlineSvg('<svg><rect style="fill:url(http://x)"/></svg>', 'f')).toThrow(/external reference/);
    expect(inlineSvg('<svg onload="x()"><script>x()</script><rect id="a" clip-path="url(#a)"/></svg>', 'f')).toBe('<svg><rect id="f-a" clip-path="url(#f-a)"/></svg>');
    expect(() => renderReport({ title: 't', tables: [{ columns: ['a', 'b'], rows: [[1]] }] })).toThrow(/1 cells, the header 2/);
  });

  it('formats cells', () => {
    expect(formatCell(null)).toBe('—');
    expect(formatCell(Infinity)).toBe('∞');
    expect(formatCell(42)).toBe('42');
    expect(formatCell(0.000012346)).toBe('1.235e-5');
    expect(formatCell(123456789.5)).toBe('1.235e+8');
    expect(formatCell(3.14159265, 3)).toBe('3.14');
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
