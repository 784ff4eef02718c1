import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import h5wasm from 'h5wasm/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSynthesizerGrid, writeSynthesizerGrid } from '../../src/grid/hdf5.js';
import type { SpsGrid } from '../../src/grid/types.js';

let tmp: string;
beforeAll(async () => {
  await h5wasm.ready;
  tmp = mkdtempSync(path.join(os.tmpdir(), 'synference-h5-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** 3 ages x 2 Z x 5 wavelengths with distinct values, L = 1e20 * (1 + a + 10 z + 100 l). */
function synthetic(): SpsGrid {
  const nA = 3;
  const nZ = 2;
  const nL = 5;
  const lnu = new Float64Array(nA * nZ * nL);
  for (let a = 0; a < nA; a++) for (let z = 0; z < nZ; z++) for (let l = 0; l < nL; l++) lnu[(a * nZ + z) * nL + l] = 1e20 * (1 + a + 10 * z + 100 * l);
  return {
    ages: Float64Array.from([1e6, 1e7, 1e8]),
    metallicities: Float64Array.from([0.001, 0.02]),
    wavelengthAA: Float64Array.from([1000, 2000, 3000, 4000, 5000]),
    lnu,
    survivingMassFraction: Float64Array.from([1, 1, 0.9, 0.95, 0.7, 0.8]),
    metadata: {
      name: 'synthetic',
      family: 'hdf5',
      sourceFiles: [],
      lSunErgS: null,
      imf: 'chabrier03',
      survivingMassDefinition: 'test',
      droppedZeroAge: false,
      notes: [],
    },
  };
}

/** Writes a file with h5wasm directly (for layouts writeSynthesizerGrid does not produce). */
async function writeRaw(file: string, build: (f: InstanceType<typeof h5wasm.File>) => void): Promise<void> {
  await h5wasm.ready;
  const f = new h5wasm.File(file, 'w');
  try {
    build(f);
  } finally {
    f.close();
  }
}

describe('Synthesizer HDF5 grids', () => {
  it('round-trips a synthetic grid (axes/ages in yr)', async () => {
    const g = synthetic();
    const file = path.join(tmp, 'syn.hdf5');
    await writeSynthesizerGrid(file, g);
    const r = await readSynthesizerGrid(file);
    expect(Array.from(r.ages)).toEqual(Array.from(g.ages));
    expect(Array.from(r.metallicities)).toEqual(Array.from(g.metallicities));
    expect(Array.from(r.wavelengthAA)).toEqual(Array.from(g.wavelengthAA));
    expect(Array.from(r.lnu)).toEqual(Array.from(g.lnu)); // float64 stored, exact
    expect(Array.from(r.survivingMassFraction)).toEqual(Array.from(g.survivingMassFraction));
    expect(r.metadata.imf).toBe('chabrier03');
    expect(r.metadata.name).toBe('syn');
  });

  it('reads legacy axes/log10ages', async () => {
    const g = synthetic();
    const file = path.join(tmp, 'log.h5');
    await writeSynthesizerGrid(file, g, { log10Ages: true });
    const r = await readSynthesizerGrid(file);
    // 10^(log10 x) round trip: rel 1e-15.
    r.ages.forEach((a, i) => expect(Math.abs(a / g.ages[i] - 1)).toBeLessThan(1e-14));
  });

  it('follows the axes attribute order (metallicities first) and Myr units, float32 spectra', async () => {
    const g = synthetic();
    const file = path.join(tmp, 'swapped.h5');
    const t = new Float32Array(g.lnu.length);
    for (let a = 0; a < 3; a++) for (let z = 0; z < 2; z++) for (let l = 0; l < 5; l++) t[(z * 3 + a) * 5 + l] = g.lnu[(a * 2 + z) * 5 + l];
    await writeRaw(file, (f) => {
      f.create_attribute('axes', ['metallicities', 'ages']);
      const ax = f.create_group('axes');
      ax.create_dataset({ name: 'metallicities', data: g.metallicities });
      ax.create_dataset({ name: 'ages', data: Float64Array.from(g.ages, (a) => a / 1e6) });
      (ax.get('ages') as InstanceType<typeof h5wasm.Dataset>).create_attribute('Units', 'Myr');
      const sp = f.create_group('spectra');
      sp.create_dataset({ name: 'wavelength', data: g.wavelengthAA });
      sp.create_dataset({ name: 'incident', data: t, shape: [2, 3, 5] });
    });
    const r = await readSynthesizerGrid(file);
    expect(Array.from(r.ages)).toEqual(Array.from(g.ages));
    // float32 storage: rel 6e-8.
    r.lnu.forEach((v, i) => expect(Math.abs(v / g.lnu[i] - 1)).toBeLessThan(1e-7));
    expect(r.survivingMassFraction.every(Number.isNaN)).toBe(true); // no star_fraction in the file
    expect(r.metadata.survivingMassDefinition).toMatch(/not available/);
  });

  it('selects another spectra key', async () => {
    const g = synthetic();
    const file = path.join(tmp, 'key.h5');
    await writeSynthesizerGrid(file, g, { spectraKey: 'transmitted' });
    await expect(readSynthesizerGrid(file)).rejects.toThrow(/key\.h5: dataset spectra\/incident: missing/);
    const r = await readSynthesizerGrid(file, { spectraKey: 'transmitted' });
    expect(r.lnu[7]).toBe(g.lnu[7]);
  });
});

describe('Synthesizer HDF5 grids (malformed)', () => {
  it('wrong spectra shape names the dataset, got and expected shapes', async () => {
    const g = synthetic();
    const file = path.join(tmp, 'shape.h5');
    await writeRaw(file, (f) => {
      f.create_attribute('axes', ['ages', 'metallicities']);
      const ax = f.create_group('axes');
      ax.create_dataset({ name: 'ages', data: g.ages });
      ax.create_dataset({ name: 'metallicities', data: g.metallicities });
      const sp = f.create_group('spectra');
      sp.create_dataset({ name: 'wavelength', data: g.wavelengthAA });
      sp.create_dataset({ name: 'incident', data: g.lnu, shape: [2, 3, 5] });
    });
    await expect(readSynthesizerGrid(file)).rejects.toThrow(
      'shape.h5: dataset spectra/incident: shape [2, 3, 5], expected [3, 2, 5] (axes ages, metallicities, wavelength)',
    );
  });

  it('missing wavelength / axis datasets are named', async () => {
    const g = synthetic();
    const noLam = path.join(tmp, 'nolam.h5');
    await writeRaw(noLam, (f) => {
      f.create_attribute('axes', ['ages', 'metallicities']);
      const ax = f.create_group('axes');
      ax.create_dataset({ name: 'ages', data: g.ages });
      ax.create_dataset({ name: 'metallicities', data: g.metallicities });
      f.create_group('spectra').create_dataset({ name: 'incident', data: g.lnu, shape: [3, 2, 5] });
    });
    await expect(readSynthesizerGrid(noLam)).rejects.toThrow(/nolam\.h5: dataset spectra\/wavelength: missing/);
    const noAxis = path.join(tmp, 'noaxis.h5');
    await writeRaw(noAxis, (f) => {
      f.create_attribute('axes', ['ages', 'metallicities']);
      f.create_group('axes').create_dataset({ name: 'ages', data: g.ages });
    });
    await expect(readSynthesizerGrid(noAxis)).rejects.toThrow(/noaxis\.h5: dataset axes\/metallicities: missing/);
  });

  it('non-ascending axes, unknown units and unsupported axes are rejected', async () => {
    const g = synthetic();
    const desc = path.join(tmp, 'desc.h5');
    await writeSynthesizerGrid(desc, { ...g, ages: Float64Array.from([1e6, 1e8, 1e7]) });
    await expect(readSynthesizerGrid(desc)).rejects.toThrow(/desc\.h5: ages must be strictly ascending/);
    const units = path.join(tmp, 'units.h5');
    await writeRaw(units, (f) => {
      f.create_attribute('axes', ['ages', 'metallicities']);
      const ax = f.create_group('axes');
      ax.create_dataset({ name: 'ages', data: g.ages }).create_attribute('Units', 'fortnight');
      ax.create_dataset({ name: 'metallicities', data: g.metallicities });
    });
    await expect(readSynthesizerGrid(units)).rejects.toThrow(/units\.h5: dataset axes\/ages: unknown age Units "fortnight"/);
    const three = path.join(tmp, 'three.h5');
    await writeRaw(three, (f) => f.create_attribute('axes', ['ages', 'metallicities', 'log10U']));
    await expect(readSynthesizerGrid(three)).rejects.toThrow(/three\.h5: attribute axes: expected 2 axes/);
  });

  it('a non-HDF5 file, a missing file and a truncated HDF5 file give clear errors', async () => {
    const junk = path.join(tmp, 'junk.h5');
    writeFileSync(junk, 'this is not hdf5');
    await expect(readSynthesizerGrid(junk)).rejects.toThrow(/junk\.h5: not an HDF5 file/);
    await expect(readSynthesizerGrid(path.join(tmp, 'none.h5'))).rejects.toThrow(/none\.h5: no such file/);
    const whole = path.join(tmp, 'whole.h5');
    await writeSynthesizerGrid(whole, synthetic());
    const cut = path.join(tmp, 'cut.h5');
    writeFileSync(cut, readFileSync(whole).subarray(0, 1200));
    await expect(readSynthesizerGrid(cut)).rejects.toThrow(/cut\.h5: cannot open HDF5 file \(mode r; truncated or corrupt\?\)/);
  });
});
