/** Shared helpers of the flow tests (finite differences, seeded draws). */
import { RngPurpose, standardNormals, uniform } from '../../src/flow/rng.js';

/** n standard normals from a test-local stream (seed, purpose user, offset). */
export function randn(n: number, seed: number, scale = 1, offset = 0): Float64Array {
  const z = standardNormals(n, seed, RngPurpose.user, offset);
  for (let i = 0; i < n; i++) z[i] *= scale;
  return z;
}

/** k distinct indices in [0, n) (all of them when k >= n), deterministic in seed. */
export function pickIndices(n: number, k: number, seed: number): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  const set = new Set<number>();
  let c = 0;
  while (set.size < k) set.add(Math.floor(uniform(seed, RngPurpose.user, 1_000_000 + c++) * n));
  return [...set].sort((a, b) => a - b);
}

/** Central difference (f(p + h) - f(p - h)) / 2h of f w.r.t. element i of a copy of p. */
export function centralDiff(f: (p: Float64Array) => number, p: Float64Array, i: number, h: number): number {
  const q = p.slice();
  q[i] = p[i] + h;
  const fp = f(q);
  q[i] = p[i] - h;
  const fm = f(q);
  return (fp - fm) / (2 * h);
}

export function linspace(a: number, b: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = a + ((b - a) * i) / (n - 1);
  return out;
}

/**
 * Fourth-order central difference [8(f(p+h) - f(p-h)) - (f(p+2h) - f(p-2h))] / 12h: truncation
 * h^4 |f^(5)| / 30 instead of h^2 |f'''| / 6, rounding ~1.5 eps |f| / h.
 */
export function centralDiff5(f: (p: Float64Array) => number, p: Float64Array, i: number, h: number): number {
  const q = p.slice();
  const at = (d: number) => {
    q[i] = p[i] + d;
    return f(q);
  };
  return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
}
