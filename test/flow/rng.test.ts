import { describe, expect, it } from 'vitest';
import { philox4x32, RngPurpose, standardNormals, uniform } from '../../src/flow/rng.js';

const hex = (a: Uint32Array) => Array.from(a, (v) => v.toString(16).padStart(8, '0')).join(' ');

describe('Philox4x32-10', () => {
  it('matches the Random123 known-answer vectors (kat_vectors)', () => {
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toBe('6627e8d5 e169c58d bc57ac4c 9b00dbd8');
    expect(hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]))).toBe('408f276d 41c83b0e a20bc7c6 6d5451fd');
    expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toBe('d16cfe09 94fdcceb 5001e420 24126ea1');
  });

  it('uniforms lie in [0, 1) and normals have mean 0, variance 1 (seeded; 5-sigma bounds for n = 20000)', () => {
    const n = 20000;
    for (let i = 0; i < 100; i++) {
      const u = uniform(1, RngPurpose.user, i);
      expect(u >= 0 && u < 1).toBe(true);
    }
    expect(uniform(1, RngPurpose.user, 5)).not.toBe(uniform(1, RngPurpose.init, 5));
    expect(uniform(1, RngPurpose.user, 5)).not.toBe(uniform(2, RngPurpose.user, 5));
    const z = standardNormals(n, 3);
    const mean = z.reduce((a, b) => a + b, 0) / n;
    const v = z.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(v - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(() => uniform(-1, 1, 0)).toThrow(/non-negative safe integer/);
  });
});
