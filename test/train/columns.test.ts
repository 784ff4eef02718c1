import { describe, expect, it } from 'vitest';
import { selectColumns } from '../../src/train/library.js';

describe('selectColumns (Model 1 / Model 2 column choices)', () => {
  const theta = { name: 'theta', data: Float32Array.of(1, 2, 3, 4), names: ['redshift', 'log10_mass'] };
  const derived = { name: 'derived', data: Float32Array.of(100, 0, 1000, 5), names: ['surviving_mass_msun', 'sfr10_msun_yr'] };
  it('picks columns from several datasets, with log10: and its floor', () => {
    const r = selectColumns([theta, derived], ['log10_mass', 'log10:surviving_mass_msun', 'log10:sfr10_msun_yr'], 2, 'theta');
    expect(r.names).toEqual(['log10_mass', 'log10_surviving_mass_msun', 'log10_sfr10_msun_yr']);
    expect(Array.from(r.data)).toEqual([2, 2, -6, 4, 3, Math.fround(Math.log10(5))]);
  });
  it('names the missing column and where it looked', () => {
    expect(() => selectColumns([theta], ['nope'], 2, 'x')).toThrow(/x column "nope" is in none of theta \(redshift, log10_mass\)/);
  });
});
