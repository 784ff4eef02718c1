import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerGrid } from '../../src/cli/commands/grid.js';
import { readBc03Grid } from '../../src/grid/bc03.js';
import { buildGrid, builtGridToSpsGrid, loadBuiltGrid } from '../../src/grid/build.js';
import { writeSynthesizerGrid } from '../../src/grid/hdf5.js';
import { resampleGrid } from '../../src/grid/resample.js';
import { resolveDataDir } from '../../src/io/paths.js';

const bc03Dir = path.join(resolveDataDir(), 'sps', 'bc03_lr_basel_padova1994_chabrier');
let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'synference-build-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `synference grid ...` on a fresh program (as src/cli/main.ts would), capturing stdout. */
async function cli(args: string[]): Promise<string> {
  const program = new Command('synference').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerGrid(program);
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
  try {
    await program.parseAsync(['node', 'synference', 'grid', ...args]);
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n');
}

describe('grid build', () => {
  it('builds BC03 at R = 200 on 900-60000 A and loads it back (float32 of the float64 resampling)', async () => {
    const { dir, manifest } = await buildGrid({ grid: 'bc03', resolution: 200, wavelengthMinAA: 900, wavelengthMaxAA: 60000, outDir: tmp });
    expect(path.basename(dir)).toBe('bc03_R200_900-60000AA');
    expect(manifest.shape.nAge).toBe(220); // t = 0 dropped by default, as the Synthesizer reference
    expect(manifest.shape.nZ).toBe(7);
    expect(manifest.axes.wavelengthEdgesAA!.length).toBe(manifest.shape.nLambda + 1);
    expect(manifest.source.files.length).toBe(7);
    const m62 = manifest.source.files.find((f) => f.path.endsWith('m62_chab_ssp.ised'))!;
    expect(m62.sha256).toBe(createHash('sha256').update(readFileSync(m62.path)).digest('hex'));
    expect(manifest.source.lSunErgS).toBe(3.828e33);

    const b = loadBuiltGrid(dir);
    const want = resampleGrid(readBc03Grid(bc03Dir, { dropZeroAge: true }), { resolution: 200, wavelengthMinAA: 900, wavelengthMaxAA: 60000 }).grid;
    expect(b.lnuF32.length).toBe(want.lnu.length);
    expect(Array.from(b.ages)).toEqual(Array.from(want.ages));
    expect(Array.from(b.wavelengthAA)).toEqual(Array.from(want.wavelengthAA)); // float64 through JSON: exact
    // float32 rounding: rel 2^-24 = 6e-8 for normal values (none here is below float32's normal range).
    let worst = 0;
    for (let i = 0; i < want.lnu.length; i++) if (want.lnu[i] > 0) worst = Math.max(worst, Math.abs(b.lnuF32[i] / want.lnu[i] - 1));
    expect(worst).toBeLessThan(6e-8);
    expect(Array.from(b.survivingMassFraction)).toEqual(Array.from(want.survivingMassFraction));
    const g = builtGridToSpsGrid(b);
    expect(g.metadata.family).toBe('bc03');
  });

  it('builds an HDF5 grid keeping the native wavelengths, by name from the CLI', async () => {
    const h5 = path.join(tmp, 'bc03_export.h5');
    const src = readBc03Grid(bc03Dir); // t = 0 kept in the file
    await writeSynthesizerGrid(h5, src);
    const out = await cli(['build', '--grid', h5, '--out', tmp, '--json']);
    const summary = JSON.parse(out) as { dir: string; shape: { nAge: number; nLambda: number } };
    expect(summary.shape).toEqual({ nAge: 220, nZ: 7, nLambda: 1238 });
    const b = loadBuiltGrid(summary.dir);
    expect(b.manifest.resampling.method).toBe('native');
    expect(b.manifest.source.family).toBe('hdf5');
    expect(b.lnuF32[1238 * 7 * 5 + 600]).toBe(Math.fround(src.lnu[1238 * 7 * 6 + 600])); // age 6 of the file = age 5 after dropping t = 0
    expect(await cli(['info', summary.dir])).toMatch(/220 ages x 7 Z x 1238 lambda; native/);
  });

  it('maraston05 builds from the CLI', async () => {
    const out = await cli(['build', '--grid', 'maraston05', '--resolution', '100', '--out', tmp, '--name', 'm05test']);
    expect(out).toMatch(/wrote .*m05test/);
    const b = loadBuiltGrid(path.join(tmp, 'm05test'));
    expect(b.manifest.shape.nZ).toBe(4);
    expect(b.manifest.shape.nAge).toBe(67);
  });

  it('a truncated or edited lnu.f32 and a broken manifest are rejected naming the file', async () => {
    const { dir } = await buildGrid({ grid: 'bc03', resolution: 20, outDir: tmp, name: 'corrupt' });
    const bin = path.join(dir, 'lnu.f32');
    const bytes = readFileSync(bin);
    writeFileSync(bin, bytes.subarray(0, bytes.length - 4));
    expect(() => loadBuiltGrid(dir)).toThrow(/lnu\.f32: \d+ bytes, expected \d+ \(= 4 \* 220 \* 7 \* \d+; truncated or stale\?\)/);
    bytes[100] ^= 0xff;
    writeFileSync(bin, bytes);
    expect(() => loadBuiltGrid(dir)).toThrow(/lnu\.f32: sha256 [0-9a-f]+ != manifest/);
    expect(loadBuiltGrid(dir, { verify: false }).lnuF32.length).toBe(bytes.length / 4);
    const man = path.join(dir, 'manifest.json');
    const m = JSON.parse(readFileSync(man, 'utf8'));
    m.shape.nZ = 'seven';
    writeFileSync(man, JSON.stringify(m));
    expect(() => loadBuiltGrid(dir)).toThrow(/manifest\.json: invalid manifest: shape\.nZ: Expected number/);
    truncateSync(man, 10);
    expect(() => loadBuiltGrid(dir)).toThrow(/manifest\.json: invalid JSON/);
    expect(() => loadBuiltGrid(path.join(tmp, 'nothing-here'))).toThrow(/no built grid at/);
  });
});

describe('grid build CLI: bad arguments', () => {
  it.each([
    [['build', '--grid', 'bc03', '--resolution', '-5'], /--resolution must be a positive number, got "-5"/],
    [['build', '--grid', 'bc03', '--resolution', 'abc'], /--resolution must be a positive number, got "abc"/],
    [['build', '--grid', 'bc03', '--wavelength-min', '0'], /--wavelength-min must be a positive number/],
    [['build', '--grid', 'bc03', '--wavelength-min', '5000', '--wavelength-max', '1000'], /--wavelength-min \(5000\) must be < --wavelength-max \(1000\)/],
    [['build'], /required option '--grid <name\|path>' not specified/],
  ])('%j is a usage error', async (args, msg) => {
    const err = await cli(args as string[]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommanderError);
    expect((err as Error).message).toMatch(msg);
  });

  it('an unknown grid and an out-of-range wavelength are clear errors', async () => {
    await expect(cli(['build', '--grid', 'bc99', '--out', tmp])).rejects.toThrow(/--grid must be one of bc03, maraston05 or a path to a \.h5\/\.hdf5 Synthesizer grid, got "bc99"/);
    await expect(cli(['build', '--grid', 'bc03', '--wavelength-min', '10', '--out', tmp])).rejects.toThrow(/extends beyond the grid's native range \[91/);
    await expect(cli(['build', '--grid', 'bc03', '--data-dir', path.join(tmp, 'nodata'), '--out', tmp])).rejects.toThrow(/data directory ".*nodata" does not exist/);
    await expect(cli(['build', '--grid', 'bc03', '--name', 'a/b', '--out', tmp])).rejects.toThrow(/name: letters, digits/);
  });
});
