import { describe, expect, it } from 'vitest';
import { evaluateCondition, preprocessShader, registerShaderSources, shaderCacheKey } from '../../src/gpu/shaderSource.js';

registerShaderSources({
  'test/inc_a.wgsl': 'fn a() -> f32 { return 1.0; }\n',
  'test/inc_b.wgsl': '#include "test/inc_a.wgsl"\nfn b() -> f32 { return a(); }\n',
  'test/main.wgsl': [
    '#include "test/inc_b.wgsl"',
    '#include "test/inc_a.wgsl"',
    'const SIZE_C: u32 = SIZE;',
    '#if USE_X',
    'fn x() {}',
    '#elif MODE == 2',
    'fn mode2() {}',
    '#else',
    'fn other() {}',
    '#endif',
    '#if !USE_X',
    'fn notx() {}',
    '#endif',
  ].join('\n'),
  'test/unbalanced.wgsl': '#if USE_X\nfn x() {}\n',
});

describe('shader preprocessing', () => {
  it('includes each file once, recursively', async () => {
    const out = await preprocessShader('test/main.wgsl', { USE_X: true, MODE: 0, SIZE: '64u' });
    expect(out.match(/fn a\(\)/g)).toHaveLength(1);
    expect(out).toContain('fn b()');
  });

  it('evaluates #if / #elif / #else and substitutes defines', async () => {
    const x = await preprocessShader('test/main.wgsl', { USE_X: true, MODE: 2, SIZE: '64u' });
    expect(x).toContain('fn x()');
    expect(x).not.toContain('mode2');
    expect(x).not.toContain('notx');
    expect(x).toContain('const SIZE_C: u32 = 64u;');
    const m2 = await preprocessShader('test/main.wgsl', { USE_X: false, MODE: 2, SIZE: 1 });
    expect(m2).toContain('fn mode2()');
    expect(m2).toContain('fn notx()');
    expect(m2).not.toContain('fn other()');
    const other = await preprocessShader('test/main.wgsl', { USE_X: false, MODE: 3, SIZE: 1 });
    expect(other).toContain('fn other()');
  });

  it('reports unbalanced #if with the file name', async () => {
    await expect(preprocessShader('test/unbalanced.wgsl', { USE_X: true })).rejects.toThrow(/shaders\/test\/unbalanced.wgsl.*Mismatched/);
  });

  it('reports a missing shader file', async () => {
    await expect(preprocessShader('no/such.wgsl')).rejects.toThrow(/cannot read shader shaders\/no\/such.wgsl/);
  });

  it('condition grammar', () => {
    expect(evaluateCondition('A', { A: 1 }, 'f')).toBe(true);
    expect(evaluateCondition('A', { A: 0 }, 'f')).toBe(false);
    expect(evaluateCondition('!A', {}, 'f')).toBe(true);
    expect(evaluateCondition('N >= 4', { N: 4 }, 'f')).toBe(true);
    expect(evaluateCondition('N < 4', { N: 4 }, 'f')).toBe(false);
    expect(evaluateCondition('K == sum', { K: 'sum' }, 'f')).toBe(true);
    expect(() => evaluateCondition('N == 4', {}, 'f.wgsl')).toThrow(/f.wgsl: #if uses undefined name N/);
    expect(() => evaluateCondition('A && B', {}, 'f.wgsl')).toThrow(/cannot parse/);
  });

  it('cache keys are independent of define order', () => {
    expect(shaderCacheKey('s', { A: 1, B: true })).toBe(shaderCacheKey('s', { B: true, A: 1 }));
    expect(shaderCacheKey('s', { A: 1 })).not.toBe(shaderCacheKey('s', { A: 2 }));
  });
});
