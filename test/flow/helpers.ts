/** Shared helpers of the flow tests (finite differences, seeded draws). */
import { expect } from 'vitest';
import { type FlowModel, type NllGrad, meanNll } from '../../src/flow/flow.js';
import { RngPurpose, standardNormals, uniform } from '../../src/flow/rng.js';
import type { FlowEngine } from '../../src/train/engine.js';

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

/**
 * The mean-NLL gradient g = nllAndGrad(model, theta, x, n) against central finite differences
 * (centralDiff5, step h): g.loss is meanNll's; `picks` entries of every parameter tensor (chosen by
 * pickIndices with seed pickSeed + the tensor's offset) and every entry of d loss / d theta match
 * to rtol 1e-6 plus atol = 100 eps |L| / h; more than half of the checked parameter entries are far
 * (100x) above atol, so the check is not vacuous; the layout's alignment gaps have zero gradient.
 */
export function expectNllGradMatchesFd(
  model: FlowModel,
  theta: Float64Array,
  x: Float64Array,
  n: number,
  g: NllGrad,
  o: { h: number; picks: number; pickSeed: number },
): void {
  const EPS = 2.220446049250313e-16;
  expect(g.loss).toBeCloseTo(meanNll(model, theta, x, n), 12);
  const atol = (100 * EPS * Math.max(1, Math.abs(g.loss))) / o.h;
  const f = (p: Float64Array) => meanNll(model, theta, x, n, p);
  let checked = 0;
  let big = 0;
  const failures: string[] = [];
  for (const t of model.layout.tensors) {
    for (const i of pickIndices(t.size, o.picks, o.pickSeed + t.offset)) {
      const k = t.offset + i;
      const fd = centralDiff5(f, model.params, k, o.h);
      const an = g.grad[k];
      checked++;
      if (Math.abs(an) > 100 * atol) big++;
      if (!(Math.abs(fd - an) <= 1e-6 * Math.abs(an) + atol)) failures.push(`${t.name}[${i}]: analytic ${an}, fd ${fd}`);
    }
  }
  expect(failures, failures.join('\n')).toEqual([]);
  expect(big).toBeGreaterThan(0.5 * checked);
  // Alignment gaps have zero gradient.
  const used = new Uint8Array(model.layout.size);
  for (const t of model.layout.tensors) used.fill(1, t.offset, t.offset + t.size);
  for (let k = 0; k < used.length; k++) if (!used[k]) expect(g.grad[k]).toBe(0);

  // d loss / d theta (original units: through the standardisation and every layer) as well.
  const ft = (th: Float64Array) => meanNll(model, th, x, n);
  for (let k = 0; k < theta.length; k++) {
    const fd = centralDiff5(ft, theta, k, o.h);
    expect(Math.abs(fd - g.gTheta[k]), `theta[${k}]`).toBeLessThanOrEqual(1e-6 * Math.abs(g.gTheta[k]) + atol);
  }
}

/**
 * Mean losses of three epochs of the same shuffled mini-batches (rows 0..499, batch 100, lr 2e-3,
 * clip 5, seed 4) on `engine`, which is disposed afterwards; `inspect` sees it after training.
 */
export async function threeEpochLosses(engine: FlowEngine, data: { theta: Float64Array; x: Float64Array; n: number }, inspect?: (e: FlowEngine) => void): Promise<number[]> {
  const rows = Uint32Array.from({ length: 500 }, (_, i) => i);
  try {
    await engine.setData(data);
    const l: number[] = [];
    for (let epoch = 0; epoch < 3; epoch++) l.push((await engine.trainEpoch({ rows, seed: 4, epoch, batchSize: 100, lr: 2e-3, clipNorm: 5 })).meanLoss);
    inspect?.(engine);
    return l;
  } finally {
    await engine.dispose();
  }
}
