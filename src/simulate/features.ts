/**
 * Features the neural posterior estimator sees (issue 4): float64 reference. The GPU kernel
 * (kernels/noise.ts, shaders/simulate/noise.wgsl) computes the same in one pass with the noise.
 *
 * Feature vector of one galaxy, B bands in the model's order (FeatureConfigSchema in noise.ts):
 *   [0, B)              photometry: `${band}_asinh_mag` (asinhMag) or `${band}_flux` (flux)
 *   [B, 2B)             if includeErrors: `${band}_asinh_mag_err` or `${band}_flux_err`
 *   next B              if mask: `${band}_mask`, 1 = observed, 0 = missing (dropped)
 *   last                if includeRedshift: `redshift`
 *
 * Asinh magnitudes (Lupton, Gunn & Szalay 1999, AJ 118, 1406, eq. 4 with f0 = 3631 Jy):
 *   mu = -(2.5 / ln 10) [asinh(f / (2 b)) + ln(b / f0)] = 31.4 - 2.5 log10(b) - (2.5 / ln 10) asinh(f / (2 b))
 * with f and b in nJy. For f >> b, mu -> 31.4 - 2.5 log10 f (the AB magnitude; the difference is
 * (2.5 / ln 10) (b / f)^2 to leading order); mu is finite for f <= 0. Its error, by propagation:
 *   sigma_mu = (2.5 / ln 10) sigma_f / sqrt(f^2 + 4 b^2).
 * Lupton's recommended softening (default 'noise'): b = sqrt(2.5 log10 e) sigma_1 ~ 1.042 sigma_1, with
 * sigma_1 the nominal 1-sigma flux error of the band (fixed per band, never per galaxy, so the same b
 * serves a real catalogue).
 * Flux features: f * fluxScale and sigma_f * fluxScale.
 * A masked band (dropped in simulation, or a non-finite flux / error in a catalogue) has its
 * photometry and error features set to fillValue and its mask to 0; the noisy fluxes and errors that
 * simulateObservations returns are those of every band (the drop-out acts on the features only).
 */
import { AB_ZP_NJY, MAG_PER_LN } from './empiricalNoise.js';
import {
  type FeatureConfig,
  type FeatureConfigInput,
  type ResolvedNoise,
  dropoutUniforms,
  elementDraws,
  galaxyDraw,
  noisyFluxOne,
  parseFeatureConfig,
  perBandValues,
} from './noise.js';

/** Lupton's softening factor: b = sqrt(2.5 log10 e) * sigma_1. */
export const LUPTON_SOFTENING_FACTOR = Math.sqrt(2.5 * Math.LOG10E);

export interface ResolvedFeatures {
  bands: readonly string[];
  photometry: 'asinhMag' | 'flux';
  /** Asinh softening b per band [nJy] (asinhMag). */
  softeningNJy: Float64Array;
  fluxScale: number;
  includeErrors: boolean;
  includeMask: boolean;
  includeRedshift: boolean;
  /** Drop-out probability per band. */
  dropoutProb: Float64Array;
  fillValue: number;
  /** Feature names in order. */
  names: string[];
  /** F: features per galaxy. */
  width: number;
  /** Column of the first error / mask feature and of the redshift (-1 when absent). */
  errorColumn: number;
  maskColumn: number;
  redshiftColumn: number;
}

/**
 * Binds a feature config to the bands and the noise model (which gives the default softening). A
 * 'noise' softening with a noise model that has no nominal error (type 'none') is an error.
 */
export function resolveFeatures(config: FeatureConfig | FeatureConfigInput | undefined, bands: readonly string[], noise?: ResolvedNoise): ResolvedFeatures {
  const c = parseFeatureConfig(config ?? {});
  const B = bands.length;
  if (B === 0) throw new Error('features: the model has no bands');
  let softeningNJy: Float64Array;
  if (c.softeningNJy === 'noise') {
    if (c.photometry === 'asinhMag') {
      if (!noise || noise.sigma1NJy.some((s) => !(s > 0)))
        throw new Error("features.softeningNJy: 'noise' needs a noise model with a 1-sigma error per band (depth or empirical); give softeningNJy in nJy instead");
      softeningNJy = noise.sigma1NJy.map((s) => LUPTON_SOFTENING_FACTOR * s);
    } else softeningNJy = new Float64Array(B).fill(1);
  } else softeningNJy = perBandValues('features.softeningNJy', c.softeningNJy, bands);
  const dropoutProb = perBandValues('features.dropoutProb', c.dropoutProb, bands);
  const includeMask = c.mask ?? dropoutProb.some((p) => p > 0);
  const r: Omit<ResolvedFeatures, 'names' | 'width' | 'errorColumn' | 'maskColumn' | 'redshiftColumn'> = {
    bands: [...bands],
    photometry: c.photometry,
    softeningNJy,
    fluxScale: c.fluxScale,
    includeErrors: c.includeErrors,
    includeMask,
    includeRedshift: c.includeRedshift,
    dropoutProb,
    fillValue: c.fillValue,
  };
  const names = featureNames(r);
  let col = B;
  const errorColumn = r.includeErrors ? col : -1;
  if (r.includeErrors) col += B;
  const maskColumn = r.includeMask ? col : -1;
  if (r.includeMask) col += B;
  const redshiftColumn = r.includeRedshift ? col : -1;
  return { ...r, names, width: names.length, errorColumn, maskColumn, redshiftColumn };
}

/** Feature names in order (see the module doc). */
export function featureNames(r: Pick<ResolvedFeatures, 'bands' | 'photometry' | 'includeErrors' | 'includeMask' | 'includeRedshift'>): string[] {
  const v = r.photometry === 'asinhMag' ? 'asinh_mag' : 'flux';
  const names = r.bands.map((b) => `${b}_${v}`);
  if (r.includeErrors) names.push(...r.bands.map((b) => `${b}_${v}_err`));
  if (r.includeMask) names.push(...r.bands.map((b) => `${b}_mask`));
  if (r.includeRedshift) names.push('redshift');
  return names;
}

/** Asinh magnitude of a flux [nJy] with softening b [nJy]. */
export function asinhMag(fluxNJy: number, softeningNJy: number): number {
  return AB_ZP_NJY - 2.5 * Math.log10(softeningNJy) - MAG_PER_LN * Math.asinh(fluxNJy / (2 * softeningNJy));
}

/** Error of the asinh magnitude for a flux error sigma [nJy]. */
export function asinhMagErr(fluxNJy: number, sigmaNJy: number, softeningNJy: number): number {
  return (MAG_PER_LN * sigmaNJy) / Math.hypot(fluxNJy, 2 * softeningNJy);
}

/** Flux [nJy] of an asinh magnitude (the inverse of asinhMag). */
export function fluxFromAsinhMag(mu: number, softeningNJy: number): number {
  return 2 * softeningNJy * Math.sinh((AB_ZP_NJY - 2.5 * Math.log10(softeningNJy) - mu) / MAG_PER_LN);
}

/** Writes one galaxy's features into out[row * F ...]. present[b] false = masked. */
function writeRow(
  r: ResolvedFeatures,
  out: Float64Array,
  row: number,
  flux: ArrayLike<number>,
  sigma: ArrayLike<number>,
  base: number,
  present: (b: number) => boolean,
  redshift: number,
): void {
  const B = r.bands.length;
  const o = row * r.width;
  for (let b = 0; b < B; b++) {
    const ok = present(b);
    const f = flux[base + b];
    const s = sigma[base + b];
    let v: number;
    let e: number;
    if (!ok) {
      v = r.fillValue;
      e = r.fillValue;
    } else if (r.photometry === 'asinhMag') {
      v = asinhMag(f, r.softeningNJy[b]);
      e = asinhMagErr(f, s, r.softeningNJy[b]);
    } else {
      v = f * r.fluxScale;
      e = s * r.fluxScale;
    }
    out[o + b] = v;
    if (r.errorColumn >= 0) out[o + r.errorColumn + b] = e;
    if (r.maskColumn >= 0) out[o + r.maskColumn + b] = ok ? 1 : 0;
  }
  if (r.redshiftColumn >= 0) out[o + r.redshiftColumn] = redshift;
}

/**
 * Features of observed photometry (a catalogue, or a library's noisy fluxes): N x B fluxes and errors
 * [nJy]; a band is masked where the flux or the error is not finite, the error is negative, or the
 * optional `observed` mask (N x B, 0 = missing) says so. `redshift` (N) is needed with includeRedshift.
 */
export function computeFeatures(
  r: ResolvedFeatures,
  fluxNJy: ArrayLike<number>,
  errorNJy: ArrayLike<number>,
  options: { observed?: ArrayLike<number>; redshift?: ArrayLike<number> } = {},
): Float64Array {
  const B = r.bands.length;
  if (fluxNJy.length % B !== 0 || errorNJy.length !== fluxNJy.length)
    throw new Error(`computeFeatures: fluxNJy (${fluxNJy.length}) and errorNJy (${errorNJy.length}) must both be N x ${B}`);
  const N = fluxNJy.length / B;
  if (options.observed && options.observed.length !== N * B) throw new Error(`computeFeatures: observed must be N x B = ${N * B}, got ${options.observed.length}`);
  if (r.includeRedshift && (!options.redshift || options.redshift.length !== N))
    throw new Error(`computeFeatures: includeRedshift needs a redshift per galaxy (${N}), got ${options.redshift?.length ?? 'none'}`);
  const out = new Float64Array(N * r.width);
  for (let i = 0; i < N; i++) {
    const present = (b: number) => {
      const f = fluxNJy[i * B + b];
      const s = errorNJy[i * B + b];
      return Number.isFinite(f) && Number.isFinite(s) && s >= 0 && (!options.observed || options.observed[i * B + b] !== 0);
    };
    writeRow(r, out, i, fluxNJy, errorNJy, i * B, present, r.includeRedshift ? options.redshift![i] : 0);
  }
  return out;
}

export interface SimulatedObservations {
  /** N x B noisy fluxes [nJy] (every band, also dropped ones). */
  noisyFluxNJy: Float64Array;
  /** N x B 1-sigma errors [nJy]. */
  errorNJy: Float64Array;
  /** N x B: 1 = observed, 0 = dropped (or a non-finite noiseless flux). */
  observed: Uint8Array;
  /** N x F features. */
  features: Float64Array;
}

/**
 * float64 reference of the GPU kernel: noise + drop-out + features for N x B noiseless fluxes.
 * Galaxy i uses the Philox streams of global index indexOffset + i (noise.ts: elementDraws).
 * A band is dropped when u_drop < fround(p_b) (the f32 value the GPU compares with). A non-finite
 * noiseless flux is masked too. `redshift[i * redshiftStride + redshiftOffset]` is the galaxy's redshift
 * (so the canonical N x 12 parameter matrix can be passed as is).
 */
export function simulateObservations(
  noise: ResolvedNoise,
  feats: ResolvedFeatures,
  trueFluxNJy: ArrayLike<number>,
  options: { seed: number; indexOffset?: number; redshift?: ArrayLike<number>; redshiftStride?: number; redshiftOffset?: number },
): SimulatedObservations {
  const B = noise.bands.length;
  if (feats.bands.length !== B || feats.bands.some((b, k) => b !== noise.bands[k])) throw new Error('simulateObservations: noise and features must have the same bands in the same order');
  if (trueFluxNJy.length % B !== 0) throw new Error(`simulateObservations: ${trueFluxNJy.length} fluxes are not N x ${B}`);
  const N = trueFluxNJy.length / B;
  const stride = options.redshiftStride ?? 1;
  const zOff = options.redshiftOffset ?? 0;
  if (feats.includeRedshift && (!options.redshift || (N > 0 && options.redshift.length < (N - 1) * stride + zOff + 1)))
    throw new Error('simulateObservations: includeRedshift needs a redshift for every galaxy');
  const off = options.indexOffset ?? 0;
  const noisy = new Float64Array(N * B);
  const sig = new Float64Array(N * B);
  const observed = new Uint8Array(N * B);
  const features = new Float64Array(N * feats.width);
  const pDrop = feats.dropoutProb.map(Math.fround);
  const galaxyNeeded = noise.type === 'depth' && noise.depthScatterMag > 0 && noise.depthScatterMode === 'galaxy';
  for (let i = 0; i < N; i++) {
    const nGal = galaxyNeeded ? galaxyDraw(options.seed, off + i) : 0;
    const uDrop = dropoutUniforms(options.seed, off + i, B);
    for (let b = 0; b < B; b++) {
      const d = elementDraws(options.seed, off + i, b);
      const t = trueFluxNJy[i * B + b];
      const [f, s] = noisyFluxOne(noise, b, t, d.nFlux, d.nAux, nGal);
      noisy[i * B + b] = f;
      sig[i * B + b] = s;
      observed[i * B + b] = Number.isFinite(t) && !(uDrop[b] < pDrop[b]) ? 1 : 0;
    }
    writeRow(feats, features, i, noisy, sig, i * B, (b) => observed[i * B + b] === 1, feats.includeRedshift ? options.redshift![i * stride + zOff] : 0);
  }
  return { noisyFluxNJy: noisy, errorNJy: sig, observed, features };
}
