/** The browser path: shaders registered from the generated bundle give the same WGSL as the files on disk. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('shader bundle', () => {
  it('bundles every shader and preprocesses identically to the disk loader', async () => {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'shaders-')), 'bundle.js');
    execFileSync(process.execPath, [path.resolve(__dirname, '../../scripts/bundle-shaders.mjs'), out]);
    const bundle: Record<string, string> = (await import(pathToFileURL(out).href)).default;
    expect(Object.keys(bundle)).toContain('linalg/gemm.wgsl');
    expect(Object.keys(bundle)).toContain('common/math.wgsl');
    // Disk first (a fresh module instance has nothing registered), then the bundle.
    const disk = await import('../../src/gpu/shaderSource.js');
    const defines = { TRANS_A: false, TRANS_B: true, HAS_BIAS: true, BETA: false, WG_X: '16u', WG_Y: '16u', TM4: '2u', TN4: '2u', BK: '8u' };
    const fromDisk = await disk.preprocessShader('linalg/gemm.wgsl', defines);
    disk.registerShaderSources(Object.fromEntries(Object.entries(bundle).map(([k, v]) => [`/app/shaders/${k}`, v.replace('// Batched tiled GEMM', '// BUNDLED Batched tiled GEMM')])));
    const fromBundle = await disk.preprocessShader('linalg/gemm.wgsl', defines);
    expect(fromBundle).toContain('BUNDLED');
    expect(fromBundle.replace('BUNDLED ', '')).toBe(fromDisk);
  });
});
