/**
 * Detection selection of a simulation library: a survey catalogue only holds galaxies detected in
 * its detection image, so a model meant for that catalogue should be trained (and validated) on the
 * prior conditioned on detection, p(theta | detected), not on the full prior, much of which (low
 * masses at high redshift) is invisible and carries no information.
 *
 *   selection:
 *     bands: [jwst_f277w, jwst_f356w, jwst_f444w]   # the detection bands
 *     combine: stack      # stack: S/N of the summed flux, sum f / sqrt(sum sigma^2) (a detection image)
 *                         # any / all: S/N >= minSnr in at least one / every band
 *     minSnr: 5
 *
 * The S/N is that of the OBSERVED (noisy) fluxes, as for a real catalogue (Eddington bias included).
 * Rejected candidates are redrawn from the prior: every accepted row is one draw from the selected
 * population. Candidates have their own Philox counters, so an unselected library is unchanged.
 */
import { z } from 'zod';

export const SELECTION_COMBINE = ['stack', 'any', 'all'] as const;
export type SelectionCombine = (typeof SELECTION_COMBINE)[number];

export const SelectionConfigSchema = z
  .object({
    bands: z
      .array(z.string({ invalid_type_error: 'selection.bands must be band names' }).min(1), { invalid_type_error: 'selection.bands must be a list of band names' })
      .min(1, { message: 'selection.bands needs at least one band' }),
    combine: z.enum(SELECTION_COMBINE, { errorMap: () => ({ message: `selection.combine must be one of ${SELECTION_COMBINE.join(', ')}` }) }).default('stack'),
    minSnr: z
      .number({ invalid_type_error: 'selection.minSnr must be a number in (0, 1e4]', required_error: 'selection.minSnr is required (a number in (0, 1e4])' })
      .gt(0, { message: 'selection.minSnr must be a number in (0, 1e4]' })
      .max(1e4, { message: 'selection.minSnr must be a number in (0, 1e4]' }),
    /** Give up (with an error) when a chunk needs more than this many candidates per accepted row. */
    maxCandidatesPerRow: z
      .number({ invalid_type_error: 'selection.maxCandidatesPerRow must be an integer in [1, 1e6]' })
      .int({ message: 'selection.maxCandidatesPerRow must be an integer in [1, 1e6]' })
      .min(1, { message: 'selection.maxCandidatesPerRow must be an integer in [1, 1e6]' })
      .max(1e6, { message: 'selection.maxCandidatesPerRow must be an integer in [1, 1e6]' })
      .default(1000),
  })
  .strict();

export type SelectionConfig = z.output<typeof SelectionConfigSchema>;
export type SelectionConfigInput = z.input<typeof SelectionConfigSchema>;

/** A selection bound to a band order. */
export interface ResolvedSelection {
  config: SelectionConfig;
  /** Indices of the detection bands in the library's band order. */
  bandIndex: number[];
}

export function resolveSelection(config: SelectionConfig, bands: readonly string[]): ResolvedSelection {
  const bandIndex = config.bands.map((b) => {
    const i = bands.indexOf(b);
    if (i < 0) throw new Error(`selection.bands: unknown band "${b}"; the bands are ${bands.join(', ')}`);
    return i;
  });
  if (new Set(bandIndex).size !== bandIndex.length) throw new Error(`selection.bands: a band is listed twice (${config.bands.join(', ')})`);
  return { config, bandIndex };
}

/**
 * Detection S/N of row i (fluxes and errors row-major, B bands): the stack S/N, or the largest
 * ('any') / smallest ('all') single-band S/N. Bands with a non-finite value or error <= 0 are left
 * out; a row with none left has S/N NaN (never selected).
 */
export function detectionSnr(sel: ResolvedSelection, flux: ArrayLike<number>, error: ArrayLike<number>, i: number, B: number): number {
  const combine = sel.config.combine;
  let sum = 0;
  let var_ = 0;
  let best = combine === 'all' ? Infinity : -Infinity;
  let used = 0;
  for (const b of sel.bandIndex) {
    const f = flux[i * B + b];
    const e = error[i * B + b];
    if (!Number.isFinite(f) || !Number.isFinite(e) || e <= 0) continue;
    used++;
    if (combine === 'stack') {
      sum += f;
      var_ += e * e;
    } else {
      const s = f / e;
      best = combine === 'all' ? Math.min(best, s) : Math.max(best, s);
    }
  }
  if (used === 0) return Number.NaN;
  // 'all' needs every band: a missing one fails it.
  if (combine === 'all' && used < sel.bandIndex.length) return Number.NaN;
  return combine === 'stack' ? sum / Math.sqrt(var_) : best;
}

/** 1 for rows whose detection S/N is >= minSnr, else 0. */
export function selectionMask(sel: ResolvedSelection, flux: ArrayLike<number>, error: ArrayLike<number>, n: number, B: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = detectionSnr(sel, flux, error, i, B) >= sel.config.minSnr ? 1 : 0;
  return out;
}

/**
 * First Philox counter (64-bit, as a safe integer) of chunk `index`'s candidates: (index + 1) * 2^32,
 * disjoint from the row counters of unselected libraries (< 2^32) and from every other chunk's.
 * So an accepted row depends on (seed, chunkSize, chunk), not on how a run was split or resumed.
 */
export function candidateBase(chunkIndex: number): number {
  if (!Number.isInteger(chunkIndex) || chunkIndex < 0 || chunkIndex >= 2 ** 20) throw new RangeError(`selection: chunk index ${chunkIndex} out of range [0, 2^20)`);
  return (chunkIndex + 1) * 2 ** 32;
}
