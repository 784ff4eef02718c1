/**
 * One self-contained HTML report: run information, metrics tables and sections of figures (inline
 * SVG from src/report/plots.ts), with a small stylesheet. Nothing is loaded from anywhere: no
 * scripts, no fonts, no images by URL; the SVGs' XML namespace declarations (which are not loads but
 * look like URLs) are dropped, as inline SVG in HTML needs none, and their ids are made unique per
 * figure (vega numbers its clip paths from 1 in every rendering).
 */

export type Cell = string | number | null | undefined;

export interface ReportTable {
  title?: string;
  caption?: string;
  columns: readonly string[];
  rows: readonly (readonly Cell[])[];
  /** Significant digits of numbers; default 4. */
  digits?: number;
}

export interface ReportFigure {
  /** SVG markup (a plots.ts result). */
  svg: string;
  title?: string;
  caption?: string;
}

export interface ReportSection {
  title: string;
  /** Plain text paragraphs (escaped). */
  text?: string | readonly string[];
  tables?: readonly ReportTable[];
  figures?: readonly ReportFigure[];
}

export interface ReportInput {
  title: string;
  /** Key-value facts about the run (command, library, model, device, seed, timings...). */
  runInfo?: Readonly<Record<string, Cell>>;
  /** Headline metrics tables, shown before the sections. */
  tables?: readonly ReportTable[];
  sections?: readonly ReportSection[];
  /** Footer line; default: when it was made. */
  footer?: string;
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** HTML-escapes text. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESC[c]);
}

/** A table cell: numbers with `digits` significant digits (integers as they are), non-finite as an em dash. */
export function formatCell(v: Cell, digits = 4): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return Number.isNaN(v) ? '—' : v > 0 ? '∞' : '−∞';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(digits - 1);
  return String(Number(v.toPrecision(digits)));
}

function slug(s: string, used: Set<string>): string {
  const base = s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'section';
  let id = base;
  for (let k = 2; used.has(id); k++) id = `${base}-${k}`;
  used.add(id);
  return id;
}

/**
 * Prepares an SVG for inlining: drops the XML prolog and the namespace declarations, removes scripts
 * and event-handler attributes, and prefixes every id (and its url(#...) / href="#..." references).
 */
export function inlineSvg(svg: string, idPrefix: string): string {
  let s = svg.replace(/^\s*<\?xml[^>]*>\s*/, '').replace(/<!DOCTYPE[^>]*>/i, '');
  if (!/^\s*<svg[\s>]/.test(s)) throw new Error(`figure ${idPrefix}: not an SVG (starts with ${JSON.stringify(s.slice(0, 20))})`);
  s = s.replace(/\sxmlns(:\w+)?="[^"]*"/g, '');
  s = s.replace(/<script[\s\S]*?<\/script>/gi, '').replace(/\son\w+="[^"]*"/gi, '');
  s = s.replace(/\sid="([^"]+)"/g, (_m, id: string) => ` id="${idPrefix}-${id}"`);
  s = s.replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${idPrefix}-${id})`);
  s = s.replace(/(\s(?:xlink:)?href)="#([^"]+)"/g, (_m, a: string, id: string) => `${a}="#${idPrefix}-${id}"`);
  // Anything that would load a resource is refused rather than silently kept.
  const ext = s.match(/(?:href|src)\s*=\s*"(?!#)[^"]*"|url\((?!#)[^)]*\)|@import/i);
  if (ext) throw new Error(`figure ${idPrefix}: external reference ${ext[0]} (a report is self-contained)`);
  return s;
}

function tableHtml(t: ReportTable): string {
  const head = t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = t.rows
    .map((r) => {
      if (r.length !== t.columns.length) throw new RangeError(`table ${t.title ?? ''}: a row has ${r.length} cells, the header ${t.columns.length}`);
      return `<tr>${r.map((v, i) => `<td${typeof v === 'number' ? ' class="num"' : i === 0 ? ' class="key"' : ''}>${escapeHtml(formatCell(v, t.digits))}</td>`).join('')}</tr>`;
    })
    .join('\n');
  const title = t.title ? `<h3>${escapeHtml(t.title)}</h3>\n` : '';
  const cap = t.caption ? `<p class="caption">${escapeHtml(t.caption)}</p>\n` : '';
  return `${title}<div class="table-wrap"><table><thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table></div>\n${cap}`;
}

const CSS = `
:root { --fg: #1b1b1b; --muted: #5c5c5c; --line: #dedede; --accent: #1f5fa8; --bg-alt: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 Helvetica, Arial, sans-serif; color: var(--fg); background: #fff; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 24px; border-bottom: 2px solid var(--accent); }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
nav ul { list-style: none; padding: 0; margin: 8px 0 16px; display: flex; flex-wrap: wrap; gap: 6px 18px; }
nav a { color: var(--accent); text-decoration: none; }
dl.run { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0 0 16px; }
dl.run dt { color: var(--muted); }
dl.run dd { margin: 0; font-family: Menlo, Consolas, monospace; font-size: 13px; word-break: break-all; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 4px 0 8px; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; }
th { background: var(--bg-alt); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: Menlo, Consolas, monospace; }
tbody tr:hover { background: #fafbfd; }
.caption { color: var(--muted); font-size: 12.5px; margin: 2px 0 12px; }
.figures { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure { margin: 0; max-width: 100%; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; max-width: 520px; }
figcaption b { color: var(--fg); }
footer { color: var(--muted); font-size: 12px; padding: 24px; border-top: 1px solid var(--line); margin-top: 32px; }
@media print { nav { display: none; } figure { break-inside: avoid; } }
`;

/** Renders the report as one HTML document (string). */
export function renderReport(r: ReportInput): string {
  const used = new Set<string>(['top']);
  const sections = (r.sections ?? []).map((s) => ({ ...s, id: slug(s.title, used) }));
  let fig = 0;
  const parts: string[] = [];
  parts.push(`<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>${escapeHtml(r.title)}</title>\n<style>${CSS}</style>\n</head>\n<body>`);
  parts.push(`<header id="top">\n<h1>${escapeHtml(r.title)}</h1>`);
  const info = Object.entries(r.runInfo ?? {});
  if (info.length) parts.push(`<dl class="run">\n${info.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(formatCell(v, 6))}</dd>`).join('\n')}\n</dl>`);
  if (sections.length) parts.push(`<nav><ul>\n${sections.map((s) => `<li><a href="#${s.id}">${escapeHtml(s.title)}</a></li>`).join('\n')}\n</ul></nav>`);
  parts.push('</header>\n<main>');
  for (const t of r.tables ?? []) parts.push(tableHtml(t));
  for (const s of sections) {
    parts.push(`<section id="${s.id}">\n<h2>${escapeHtml(s.title)}</h2>`);
    const text = s.text === undefined ? [] : typeof s.text === 'string' ? [s.text] : s.text;
    for (const p of text) parts.push(`<p>${escapeHtml(p)}</p>`);
    for (const t of s.tables ?? []) parts.push(tableHtml(t));
    if (s.figures?.length) {
      parts.push('<div class="figures">');
      for (const f of s.figures) {
        const id = `fig${++fig}`;
        const cap = f.title || f.caption ? `<figcaption>${f.title ? `<b>${escapeHtml(f.title)}.</b> ` : ''}${f.caption ? escapeHtml(f.caption) : ''}</figcaption>` : '';
        parts.push(`<figure id="${id}">\n${inlineSvg(f.svg, id)}\n${cap}\n</figure>`);
      }
      parts.push('</div>');
    }
    parts.push('</section>');
  }
  parts.push(`</main>\n<footer>${escapeHtml(r.footer ?? `Generated by synference-webgpu on ${new Date().toISOString()}`)}</footer>\n</body>\n</html>\n`);
  return parts.join('\n');
}
