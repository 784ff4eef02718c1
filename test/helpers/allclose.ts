/** Comparison helpers that print the worst offender on failure. */
import { expect } from 'vitest';

export interface CloseOptions {
  rtol?: number;
  atol?: number;
  /** Per-element absolute tolerance (e.g. a rigorous rounding-error bound); added to atol. */
  bound?: ArrayLike<number>;
  label?: string;
}

export interface Offender {
  index: number;
  got: number;
  want: number;
  err: number;
  tol: number;
}

/** Returns the element with the largest err/tol ratio, and whether all are within tolerance. */
export function worstOffender(got: ArrayLike<number>, want: ArrayLike<number>, o: CloseOptions = {}): { ok: boolean; worst: Offender | null } {
  if (got.length !== want.length) throw new Error(`length mismatch: got ${got.length}, want ${want.length}`);
  let worst: Offender | null = null;
  let worstRatio = -1;
  let ok = true;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const tol = (o.atol ?? 0) + (o.rtol ?? 0) * Math.abs(want[i]) + (o.bound ? o.bound[i] : 0);
    const bad = !(err <= tol); // NaN counts as bad
    if (bad) ok = false;
    const ratio = bad && Number.isNaN(err) ? Infinity : err / (tol || Number.MIN_VALUE);
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worst = { index: i, got: got[i], want: want[i], err, tol };
    }
  }
  return { ok, worst };
}

export function expectAllClose(got: ArrayLike<number>, want: ArrayLike<number>, o: CloseOptions = {}): void {
  const { ok, worst } = worstOffender(got, want, o);
  if (!ok && worst) {
    expect.fail(
      `${o.label ?? 'allclose'}: element ${worst.index}: got ${worst.got}, want ${worst.want}, |err| ${worst.err.toExponential(3)} > tol ${worst.tol.toExponential(3)}`,
    );
  }
}
