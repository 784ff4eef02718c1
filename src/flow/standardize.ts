/**
 * z-score standardisation of theta and x (fitted on the training set, stored with the model).
 *
 * - mean: arithmetic mean; std: the UNBIASED sample std (N - 1), as sbi's `standardizing_net`
 *   (torch.std default). Two-pass in float64.
 * - std floor (relative): std >= 1e-8 * max(|mean|, std) so a constant column (std = 0) does not
 *   divide by zero; an all-zero column (mean = std = 0) gets std = 1. A constant column then
 *   standardises to exactly 0 for training data. N = 1 gives std = floor.
 * - log q(theta | x) in original units = log q_std(thetaStd | xStd) - sum_p log std_theta[p]
 *   (the Jacobian of theta -> thetaStd); x's standardisation is a fixed reparametrisation of the
 *   context and contributes nothing.
 */

export const STD_REL_FLOOR = 1e-8;

export interface Standardization {
  mean: Float64Array;
  std: Float64Array;
}

/** Column means/stds of a row-major (n x d) matrix. */
export function fitStandardization(data: ArrayLike<number>, n: number, d: number): Standardization {
  if (data.length !== n * d) throw new RangeError(`standardization: data length ${data.length} != n*d = ${n}*${d}`);
  if (n < 1) throw new RangeError('standardization: need at least one row');
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += data[i * d + j];
    const m = s / n;
    let ss = 0;
    for (let i = 0; i < n; i++) {
      const e = data[i * d + j] - m;
      ss += e * e;
    }
    const sd = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
    if (!Number.isFinite(m) || !Number.isFinite(sd)) throw new RangeError(`standardization: column ${j} has non-finite values`);
    const floor = STD_REL_FLOOR * Math.max(Math.abs(m), sd);
    mean[j] = m;
    std[j] = floor > 0 ? Math.max(sd, floor) : 1;
  }
  return { mean, std };
}

/** Identity standardisation (mean 0, std 1). */
export function identityStandardization(d: number): Standardization {
  return { mean: new Float64Array(d), std: new Float64Array(d).fill(1) };
}

/** (v - mean) / std per column, row-major n x d. */
export function standardize(data: ArrayLike<number>, s: Standardization): Float64Array {
  const d = s.mean.length;
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const j = i % d;
    out[i] = (data[i] - s.mean[j]) / s.std[j];
  }
  return out;
}

/** v * std + mean per column (the inverse of `standardize`). */
export function unstandardize(data: ArrayLike<number>, s: Standardization): Float64Array {
  const d = s.mean.length;
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const j = i % d;
    out[i] = data[i] * s.std[j] + s.mean[j];
  }
  return out;
}

/** sum_p log std[p]: subtract from the standardised log-density to get original units. */
export function logStdSum(s: Standardization): number {
  let t = 0;
  for (let j = 0; j < s.std.length; j++) t += Math.log(s.std[j]);
  return t;
}
