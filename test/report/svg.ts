/**
 * A small XML well-formedness check and mark counting for the SVG strings of src/report/plots.ts
 * (no XML parser among the dependencies; vega's SVG output is plain XML without CDATA or DTDs).
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ATTR = /([A-Za-z_:][\w:.-]*)\s*=\s*"([^"]*)"/y;

/** Parses XML into elements; throws on unbalanced or malformed tags and on bad attributes. */
export function parseXml(xml: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const skipWs = () => {
    while (i < xml.length && /\s/.test(xml[i])) i++;
  };
  skipWs();
  if (xml.startsWith('<?xml', i)) i = xml.indexOf('?>', i) + 2;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) {
      if (xml.slice(i).trim()) {
        if (!stack.length) throw new Error(`text after the root element at ${i}`);
        stack[stack.length - 1].text += xml.slice(i);
      }
      break;
    }
    if (lt > i && stack.length) stack[stack.length - 1].text += xml.slice(i, lt);
    else if (lt > i && xml.slice(i, lt).trim()) throw new Error(`text outside the root element at ${i}`);
    i = lt;
    if (xml.startsWith('<!--', i)) {
      const e = xml.indexOf('-->', i);
      if (e < 0) throw new Error('unterminated comment');
      i = e + 3;
      continue;
    }
    if (xml[i + 1] === '/') {
      const gt = xml.indexOf('>', i);
      const name = xml.slice(i + 2, gt).trim();
      const top = stack.pop();
      if (!top || top.name !== name) throw new Error(`closing </${name}> at ${i} does not match <${top?.name ?? '(none)'}>`);
      i = gt + 1;
      continue;
    }
    const m = /^<([A-Za-z_][\w:.-]*)/.exec(xml.slice(i, i + 200));
    if (!m) throw new Error(`bad tag at ${i}: ${xml.slice(i, i + 30)}`);
    const el: XmlElement = { name: m[1], attrs: {}, children: [], text: '' };
    const parent = stack.length ? stack[stack.length - 1] : null;
    if (parent) parent.children.push(el);
    else if (root) throw new Error('two root elements');
    else root = el;
    i += m[0].length;
    for (;;) {
      skipWs();
      if (xml.startsWith('/>', i)) {
        i += 2;
        break;
      }
      if (xml[i] === '>') {
        i++;
        stack.push(el);
        break;
      }
      ATTR.lastIndex = i;
      const a = ATTR.exec(xml);
      if (!a) throw new Error(`bad attribute in <${el.name}> at ${i}: ${xml.slice(i, i + 30)}`);
      if (a[1] in el.attrs) throw new Error(`duplicate attribute ${a[1]} in <${el.name}>`);
      el.attrs[a[1]] = a[2];
      i = ATTR.lastIndex;
    }
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (!root) throw new Error('no element');
  return root;
}

export function* walk(el: XmlElement): Generator<XmlElement> {
  yield el;
  for (const c of el.children) yield* walk(c);
}

/** The mark group `<g class="... role-mark <name>_marks">` (exactly one), or throws. */
export function markGroup(root: XmlElement, name: string): XmlElement {
  const found = [...walk(root)].filter((e) => e.name === 'g' && (e.attrs.class ?? '').split(/\s+/).includes(`${name}_marks`));
  if (found.length !== 1) throw new Error(`mark group ${name}_marks: found ${found.length}`);
  return found[0];
}

/**
 * Drawn items of a named mark: the children of its group, or of all its groups when vega facets it
 * (a line or area with a color field gets one group per series).
 */
export function markItems(root: XmlElement, name: string): XmlElement[] {
  const groups = [...walk(root)].filter((e) => e.name === 'g' && (e.attrs.class ?? '').split(/\s+/).includes(`${name}_marks`));
  if (!groups.length) throw new Error(`no mark group ${name}_marks`);
  return groups.flatMap((g) => g.children);
}

export function markCount(root: XmlElement, name: string): number {
  return markItems(root, name).length;
}

export function hasMark(root: XmlElement, name: string): boolean {
  return [...walk(root)].some((e) => e.name === 'g' && (e.attrs.class ?? '').split(/\s+/).includes(`${name}_marks`));
}

/** All text content of <text> elements (axis titles, labels, titles). */
export function texts(root: XmlElement): string[] {
  return [...walk(root)].filter((e) => e.name === 'text').map((e) => e.text.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'"));
}

/** Parses and checks the basics every plot must satisfy; returns the root. */
export function checkSvg(svg: string): XmlElement {
  if (!svg.startsWith('<svg')) throw new Error(`not an SVG: ${svg.slice(0, 40)}`);
  const root = parseXml(svg);
  if (root.name !== 'svg') throw new Error(`root is <${root.name}>`);
  if (!(Number(root.attrs.width) > 0 && Number(root.attrs.height) > 0)) throw new Error(`bad size ${root.attrs.width} x ${root.attrs.height}`);
  if (/NaN|undefined|Infinity/.test(svg)) throw new Error(`SVG contains ${svg.match(/NaN|undefined|Infinity/)![0]}`);
  return root;
}

/** Vertices of a line path ("M x,y L x,y ..."). */
export function pathVertices(d: string): number {
  return (d.match(/[ML]/g) ?? []).length;
}
