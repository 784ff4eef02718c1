/**
 * The spectral grid as the right-hand matrix of the synthesis GEMM: one row per (age, Z) cell
 * (row a*nZ + z), columns L_nu[lambda] followed by four columns that are linear in the cell weights
 * too, so one GEMM also yields the galaxy's Q(H), surviving mass, Σ m*age and Σ m:
 *   [ L_nu(lambda_0..lambda_{n-1}) | Q(H) | surviving mass fraction | age [yr] | 1 ].
 * With nebular emission (f_esc = 0) the stellar L_nu below 911.8 A is zeroed here, while Q(H) is
 * computed from the unzeroed spectrum, exactly as forwardModel.ts does per galaxy.
 */
import { QH_UNIT } from '../../kernels/synth/observe.js';
import type { SpsGrid } from '../grid/types.js';
import { LYMAN_LIMIT_AA, ionisingPhotonRateFromLnu } from '../physics/nebular.js';

export const EXTRA_COLUMNS = 4;


export function augmentedGridMatrix(grid: SpsGrid, options: { nebular: boolean; ageRows?: [number, number] }): Float32Array {
  const nLam = grid.wavelengthAA.length;
  const nZ = grid.metallicities.length;
  const [a0, a1] = options.ageRows ?? [0, grid.ages.length];
  const w = nLam + EXTRA_COLUMNS;
  const out = new Float32Array((a1 - a0) * nZ * w);
  for (let a = a0; a < a1; a++) {
    for (let z = 0; z < nZ; z++) {
      const src = (a * nZ + z) * nLam;
      const spectrum = grid.lnu.subarray(src, src + nLam);
      const row = ((a - a0) * nZ + z) * w;
      for (let l = 0; l < nLam; l++) out[row + l] = options.nebular && grid.wavelengthAA[l] < LYMAN_LIMIT_AA ? 0 : spectrum[l];
      out[row + nLam] = ionisingPhotonRateFromLnu(grid.wavelengthAA, spectrum) / QH_UNIT;
      out[row + nLam + 1] = grid.survivingMassFraction[a * nZ + z];
      out[row + nLam + 2] = grid.ages[a];
      out[row + nLam + 3] = 1;
    }
  }
  return out;
}
