/**
 * Synthetic posteriors with known calibration for the validation tests. Object i has a Gaussian
 * posterior N(mu_i, Sigma_i) over P = 2 parameters (sds 0.2..0.6, correlation 0.5); the truth is drawn
 * from that posterior itself, so samples from it are perfectly calibrated. Miscalibrated variants
 * draw the samples from N(mu_i + shift * sd, (scale sd)^2 ...) instead.
 */
import { RngPurpose, standardNormal, uniform } from '../../src/flow/rng.js';
import type { PosteriorCube } from '../../src/validate/summary.js';

export interface SyntheticSpec {
  n: number;
  m: number;
  seed: number;
  /** Width factor of the sampled posterior relative to the true one (1 = calibrated). */
  scale?: number;
  /** Shift of the sampled posterior in units of its sd (0 = unbiased). */
  shift?: number;
}

export const SYNTH_P = 2;
/** Box of the posterior means: mu ~ U(-3, 3)^2. */
export const SYNTH_BOUNDS = { low: [-5, -5], high: [5, 5] };

export function syntheticPosterior(s: SyntheticSpec): { truth: Float64Array; cube: PosteriorCube } {
  const P = SYNTH_P;
  const { n, m, seed } = s;
  const scale = s.scale ?? 1;
  const shift = s.shift ?? 0;
  const rho = 0.5;
  const truth = new Float64Array(n * P);
  const samples = new Float64Array(n * m * P);
  let k = 0;
  const z = () => standardNormal(seed, RngPurpose.user, k++);
  for (let i = 0; i < n; i++) {
    const mu = [-3 + 6 * uniform(seed + 1, RngPurpose.user, 2 * i), -3 + 6 * uniform(seed + 1, RngPurpose.user, 2 * i + 1)];
    const sd = [0.2 + 0.4 * uniform(seed + 2, RngPurpose.user, 2 * i), 0.2 + 0.4 * uniform(seed + 2, RngPurpose.user, 2 * i + 1)];
    // Cholesky of [[1, rho], [rho, 1]] in standardised units.
    const draw = (): [number, number] => {
      const a = z();
      const b = z();
      return [a, rho * a + Math.sqrt(1 - rho * rho) * b];
    };
    const t = draw();
    for (let p = 0; p < P; p++) truth[i * P + p] = mu[p] + sd[p] * t[p];
    for (let j = 0; j < m; j++) {
      const d = draw();
      for (let p = 0; p < P; p++) samples[(i * m + j) * P + p] = mu[p] + sd[p] * (shift + scale * d[p]);
    }
  }
  return { truth, cube: { n, m, p: P, samples } };
}
