/**
 * WGSL sources and their specialisation.
 *
 * Shaders live as `.wgsl` files under `shaders/` (the one source of truth). Node reads them from
 * disk; a browser bundle registers them once with `registerShaderSources` (e.g. from Vite's
 * `import.meta.glob('/shaders/**\/*.wgsl', { query: '?raw', eager: true })`).
 *
 * Directives, applied in this order:
 *   #include "common/math.wgsl"   textual include (path relative to shaders/), each file once
 *   #if NAME / #if !NAME / #if NAME == 3 / #elif ... / #else / #endif
 *                                   evaluated by `wgsl-preprocessor` against the defines
 *   NAME                            every define is also substituted as a whole word, so
 *                                   `const TILE = TILE_M;` style constants specialise the code
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

export type DefineValue = number | boolean | string;
export type Defines = Record<string, DefineValue>;

const registered = new Map<string, string>();
const diskCache = new Map<string, string>();
const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/**
 * Makes sources available without the file system (the browser bundle; tests' fixtures).
 * Keys are paths relative to `shaders/` (a leading ".../shaders/" is stripped). Registered
 * sources take precedence over files on disk.
 */
export function registerShaderSources(sources: Record<string, string>): void {
  for (const [k, v] of Object.entries(sources)) registered.set(k.replace(/^.*?shaders\//, ''), v);
}

let shaderDirPromise: Promise<string> | null = null;

/** Finds `shaders/` by walking up from this module (works from src/ under tsx and from dist/). */
async function shaderDir(): Promise<string> {
  shaderDirPromise ??= (async () => {
    const { fileURLToPath } = await import('node:url');
    const path = await import('node:path');
    const fs = await import('node:fs');
    if (process.env.SYNFERENCE_SHADER_DIR) return process.env.SYNFERENCE_SHADER_DIR;
    let dir = path.dirname(fileURLToPath(import.meta.url));
    for (;;) {
      const candidate = path.join(dir, 'shaders');
      if (fs.existsSync(path.join(candidate, 'common'))) return candidate;
      const parent = path.dirname(dir);
      if (parent === dir) throw new Error('could not find the shaders/ folder above ' + fileURLToPath(import.meta.url));
      dir = parent;
    }
  })();
  return shaderDirPromise;
}

/** Raw text of `shaders/<name>`. */
export async function loadShaderText(name: string): Promise<string> {
  const bundled = registered.get(name);
  if (bundled !== undefined) return bundled;
  if (!isNode) throw new Error(`shader "${name}" is not in the registered bundle`);
  const cached = diskCache.get(name);
  if (cached !== undefined) return cached;
  const dir = await shaderDir();
  const { readFile } = await import('node:fs/promises');
  const path = await import('node:path');
  let text: string;
  try {
    text = await readFile(path.join(dir, name), 'utf8');
  } catch (e) {
    throw new Error(`cannot read shader shaders/${name}: ${(e as Error).message}`);
  }
  diskCache.set(name, text);
  return text;
}

const INCLUDE_RE = /^[ \t]*#include\s+"([^"]+)"[ \t]*$/gm;

async function resolveIncludes(name: string, seen: Set<string>): Promise<string> {
  if (seen.has(name)) return `// (already included: ${name})`;
  seen.add(name);
  const text = await loadShaderText(name);
  const parts: string[] = [];
  let last = 0;
  for (const m of text.matchAll(INCLUDE_RE)) {
    parts.push(text.slice(last, m.index));
    parts.push(await resolveIncludes(m[1], seen));
    last = m.index! + m[0].length;
  }
  parts.push(text.slice(last));
  return parts.join('');
}

const COND_RE = /#(if|elif)[ \t]+([^\n]*)/g;

/** Evaluates the condition of an #if/#elif: NAME, !NAME, or NAME (==|!=|<|<=|>|>=) literal. */
export function evaluateCondition(expr: string, defines: Defines, where: string): boolean {
  const e = expr.replace(/\/\/.*$/, '').trim();
  let m = /^(!?)\s*([A-Za-z_]\w*)$/.exec(e);
  if (m) {
    const v = defines[m[2]];
    const truthy = v !== undefined && v !== false && v !== 0 && v !== '0' && v !== '';
    return m[1] ? !truthy : truthy;
  }
  m = /^([A-Za-z_]\w*)\s*(==|!=|<=|>=|<|>)\s*(\S+)$/.exec(e);
  if (m) {
    const v = defines[m[1]];
    if (v === undefined) throw new Error(`${where}: #if uses undefined name ${m[1]}`);
    const lhs = typeof v === 'boolean' ? Number(v) : v;
    const rhsNum = Number(m[3]);
    const rhs = Number.isNaN(rhsNum) ? m[3] : rhsNum;
    const l = typeof rhs === 'number' ? Number(lhs) : String(lhs);
    switch (m[2]) {
      case '==': return l === rhs;
      case '!=': return l !== rhs;
      case '<': return l < rhs;
      case '<=': return l <= rhs;
      case '>': return l > rhs;
      case '>=': return l >= rhs;
    }
  }
  throw new Error(`${where}: cannot parse preprocessor condition "${expr}"`);
}

function formatDefine(v: DefineValue): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

/** Applies #include, #if and define substitution; returns plain WGSL. */
export async function preprocessShader(name: string, defines: Defines = {}): Promise<string> {
  const text = await resolveIncludes(name, new Set());
  // wgsl-preprocessor wants `#if ${value}`: split the text at each condition into a template.
  const strings: string[] = [];
  const values: boolean[] = [];
  let last = 0;
  for (const m of text.matchAll(COND_RE)) {
    strings.push(text.slice(last, m.index) + `#${m[1]} `);
    values.push(evaluateCondition(m[2], defines, `shaders/${name}`));
    last = m.index! + m[0].length;
  }
  strings.push(text.slice(last));
  let out: string;
  try {
    out = wgsl(Object.assign([...strings], { raw: strings }) as unknown as TemplateStringsArray, ...values);
  } catch (e) {
    throw new Error(`shaders/${name}: ${(e as Error).message}`);
  }
  const names = Object.keys(defines).filter((k) => /^[A-Z_][A-Z0-9_]*$/.test(k));
  if (names.length) {
    const re = new RegExp(`\\b(${names.join('|')})\\b`, 'g');
    out = out.replace(re, (k) => formatDefine(defines[k]));
  }
  return out;
}

/** Stable key for (shader, defines). */
export function shaderCacheKey(name: string, defines: Defines = {}, entryPoint = 'main'): string {
  const d = Object.keys(defines)
    .sort()
    .map((k) => `${k}=${formatDefine(defines[k])}`)
    .join(',');
  return `${name}|${entryPoint}|${d}`;
}
