/**
 * Priors of the free parameters and their sampling on the CPU (float64); kernels/priors.ts +
 * shaders/simulate/priors.wgsl do the same on the GPU in f32 from the same Philox words.
 *
 * Prior kinds (`prior:` in a config; bounds inclusive):
 *   uniform     low, high                  x = low + (high − low) u
 *   loguniform  low > 0, high              x = exp(ln low + ln(high/low) u)
 *   normal      mean, sigma, [low, high]   optionally truncated; x = mean + sigma Φ⁻¹(Φ(a) + u (Φ(b) − Φ(a)))
 *   fixed       value (number or list)     not a free parameter: no theta column
 *   dirichlet   alpha[K]                   K fractions summing to 1; theta = their first K−1 cumulative sums
 *
 * Every scalar prior is its inverse CDF applied to one uniform u in (0, 1), whatever the design:
 *   random: u from Philox, stream (seed, RngPurpose.prior, row, sub 0), one word per scalar prior
 *           in column order (u32ToUnitF32, identical on CPU and GPU);
 *   lhs / sobol: u from designs.ts (one design dimension per scalar prior).
 * A Dirichlet consumes a variable number of words, so under the random design it has its own
 * sub-stream (1 + its ordinal among the Dirichlet priors) and is drawn by normalised gammas
 * (rng.ts); under lhs / sobol it takes K − 1 design dimensions and is built by stick breaking with
 * Beta inverse CDFs (x_i = rest · B_i, B_i ~ Beta(α_i, Σ_{j>i} α_j)), which is the same distribution.
 *
 * The normal's inverse CDF never cancels: with a = (low − mean)/sigma, b = (high − mean)/sigma,
 * pa = Φ(a), qb = 1 − Φ(b), w = Φ(b) − Φ(a) precomputed in float64, the kernel forms
 * p = pa + u w and q = qb + (1 − u) w (= 1 − p) and uses Φ⁻¹(p) if p <= q, else −Φ⁻¹(q): the
 * argument is always the small one, so its f32 relative precision holds far into both tails.
 */
import { z } from 'zod';
import { erfc, standardNormalInterval } from '../physics/sfh.js';
import { type DesignKind, LatinHypercube, SobolSequence } from './designs.js';
import { PhiloxStream, RngPurpose, u32ToUnitF32 } from './rng.js';

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

const finite = (key: string) => z.number({ invalid_type_error: `${key} must be a number`, required_error: `${key} is required` }).finite({ message: `${key} must be finite` });

/** Dirichlet concentrations allowed (f32 gammas stay accurate; ln-space normalisation handles small ones). */
export const DIRICHLET_ALPHA_RANGE = [1e-3, 1e4] as const;
export const DIRICHLET_MAX_K = 16;

export const UniformPriorSchema = z.object({ prior: z.literal('uniform'), low: finite('low'), high: finite('high') }).strict();
export const LogUniformPriorSchema = z
  .object({ prior: z.literal('loguniform'), low: finite('low').gt(0, { message: 'low must be > 0 for a loguniform prior' }), high: finite('high') })
  .strict();
export const NormalPriorSchema = z
  .object({
    prior: z.literal('normal'),
    mean: finite('mean'),
    sigma: finite('sigma').gt(0, { message: 'sigma must be > 0' }),
    /** Optional truncation bounds. */
    low: finite('low').optional(),
    high: finite('high').optional(),
  })
  .strict();
export const FixedPriorSchema = z
  .object({ prior: z.literal('fixed'), value: z.union([finite('value'), z.array(finite('value')).min(1)], { errorMap: () => ({ message: 'value must be a number or a list of numbers' }) }) })
  .strict();
export const DirichletPriorSchema = z
  .object({
    prior: z.literal('dirichlet'),
    alpha: z
      .array(
        finite('alpha')
          .min(DIRICHLET_ALPHA_RANGE[0], { message: `alpha must be in [${DIRICHLET_ALPHA_RANGE[0]}, ${DIRICHLET_ALPHA_RANGE[1]}]` })
          .max(DIRICHLET_ALPHA_RANGE[1], { message: `alpha must be in [${DIRICHLET_ALPHA_RANGE[0]}, ${DIRICHLET_ALPHA_RANGE[1]}]` }),
      )
      .min(2, { message: `alpha needs 2..${DIRICHLET_MAX_K} concentrations` })
      .max(DIRICHLET_MAX_K, { message: `alpha needs 2..${DIRICHLET_MAX_K} concentrations` }),
  })
  .strict();

const PRIOR_KINDS = ['uniform', 'loguniform', 'normal', 'fixed', 'dirichlet'] as const;

/**
 * One parameter's prior. A bare number (or list of numbers) is shorthand for `{prior: fixed, value}`.
 * low < high is required; a truncated normal must keep a probability mass >= 1e-30 (else use uniform).
 */
export const PriorSchema = z.preprocess(
    (v) => (typeof v === 'number' || (Array.isArray(v) && v.every((x) => typeof x === 'number')) ? { prior: 'fixed', value: v } : v),
    z
      .discriminatedUnion('prior', [UniformPriorSchema, LogUniformPriorSchema, NormalPriorSchema, FixedPriorSchema, DirichletPriorSchema], {
        errorMap: (issue, ctx) =>
          issue.code === z.ZodIssueCode.invalid_union_discriminator
            ? { message: `prior must be one of ${PRIOR_KINDS.join(', ')} (or a bare number for a fixed value)` }
            : { message: ctx.defaultError },
      })
      .superRefine((p, ctx) => {
        if (p.prior === 'uniform' || p.prior === 'loguniform' || (p.prior === 'normal' && p.low !== undefined && p.high !== undefined)) {
          if (!(p.low! < p.high!)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['high'], message: `high must be > low (${p.low}), got ${p.high}` });
        }
        if (p.prior === 'normal') {
          const c = normalConstants(p);
          if (!(c.w >= 1e-30))
            ctx.addIssue({
              code: z.ZodIssueCode.custom,
              path: ['low'],
              message: `the truncation [${p.low ?? '-inf'}, ${p.high ?? 'inf'}] keeps only ${c.w.toExponential(2)} of the normal(${p.mean}, ${p.sigma}) mass (need >= 1e-30; use a uniform prior)`,
            });
        }
      }),
);

export type PriorSpec = z.output<typeof PriorSchema>;
export type PriorInput = z.input<typeof PriorSchema> | number | number[];
export type FreePriorSpec = Exclude<PriorSpec, { prior: 'fixed' }>;

// ---------------------------------------------------------------------------------------------
// Special functions (float64)
// ---------------------------------------------------------------------------------------------

// Acklam's rational approximation of the normal quantile (relative error <= 1.15e-9), the start of
// the float64 quantile. The WGSL (shaders/simulate/priors.wgsl: normal_quantile_lower) uses its tail
// branch below p = 0.02425 and Giles' f32 erfinv above (Acklam's central branch cancels in f32).
const ACK_A = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const ACK_B = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const ACK_C = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const ACK_D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
export const ACKLAM_P_LOW = 0.02425;

/** Acklam's approximation for 0 < p <= 0.5 (no refinement). */
export function acklamLower(p: number): number {
  if (p < ACKLAM_P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((ACK_C[0] * q + ACK_C[1]) * q + ACK_C[2]) * q + ACK_C[3]) * q + ACK_C[4]) * q + ACK_C[5]) / ((((ACK_D[0] * q + ACK_D[1]) * q + ACK_D[2]) * q + ACK_D[3]) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return ((((((ACK_A[0] * r + ACK_A[1]) * r + ACK_A[2]) * r + ACK_A[3]) * r + ACK_A[4]) * r + ACK_A[5]) * q) / (((((ACK_B[0] * r + ACK_B[1]) * r + ACK_B[2]) * r + ACK_B[3]) * r + ACK_B[4]) * r + 1);
}

/** Standard normal CDF Φ(x) (relative accuracy ~1e-15 in the lower tail). */
export function normalCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

/**
 * Φ⁻¹(p) for 0 < p <= 0.5 to full double precision: Acklam, then one Halley step on
 * Φ(x) − p (erfc is accurate in the tail); relative error < 1e-15.
 */
export function normalQuantileLower(p: number): number {
  const x = acklamLower(p);
  const e = normalCdf(x) - p;
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2);
  const step = u / (1 + (x * u) / 2);
  return Number.isFinite(step) ? x - step : x;
}

/** Φ⁻¹(p) for 0 < p < 1. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN;
  return p <= 0.5 ? normalQuantileLower(p) : -normalQuantileLower(1 - p);
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error ~1e-15). */
export function lnGamma(x: number): number {
  const g = 7;
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + g + 0.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes betacf). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b). */
export function betaCdf(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return (Math.exp(lnFront) * betaContinuedFraction(x, a, b)) / a;
  return 1 - (Math.exp(lnFront) * betaContinuedFraction(1 - x, b, a)) / b;
}

/**
 * Inverse of the Beta(a, b) CDF at p in (0, 1). Closed forms for a = 1 or b = 1; otherwise Newton
 * on I_x(a, b) − p inside a shrinking bracket (bisection when a step leaves it), to |Δx| <= 1e-15.
 */
export function betaQuantile(p: number, a: number, b: number): number {
  if (!(p > 0)) return 0;
  if (!(p < 1)) return 1;
  if (a === 1 && b === 1) return p;
  if (a === 1) return -Math.expm1(Math.log1p(-p) / b);
  if (b === 1) return Math.exp(Math.log(p) / a);
  const lnB = lnGamma(a) + lnGamma(b) - lnGamma(a + b);
  let lo = 0;
  let hi = 1;
  let x = a / (a + b);
  for (let it = 0; it < 200; it++) {
    const f = betaCdf(x, a, b) - p;
    if (f === 0) return x;
    if (f < 0) lo = x;
    else hi = x;
    const dens = Math.exp((a - 1) * Math.log(x) + (b - 1) * Math.log1p(-x) - lnB);
    let next = x - f / dens;
    if (!(next > lo && next < hi) || !Number.isFinite(next)) next = 0.5 * (lo + hi);
    if (Math.abs(next - x) <= 1e-15 * Math.max(x, 1e-300) || hi - lo <= 1e-300) return next;
    x = next;
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// Compiled priors
// ---------------------------------------------------------------------------------------------

/** The truncated normal's constants in standard units (see the module doc). */
export interface NormalConstants {
  a: number;
  b: number;
  /** Φ(a) */
  pa: number;
  /** 1 − Φ(b) */
  qb: number;
  /** Φ(b) − Φ(a) */
  w: number;
}

export function normalConstants(p: { mean: number; sigma: number; low?: number; high?: number }): NormalConstants {
  const a = p.low === undefined ? -Infinity : (p.low - p.mean) / p.sigma;
  const b = p.high === undefined ? Infinity : (p.high - p.mean) / p.sigma;
  const pa = a === -Infinity ? 0 : normalCdf(a);
  const qb = b === Infinity ? 0 : normalCdf(-b);
  const w = a === -Infinity && b === Infinity ? 1 : standardNormalInterval(a, b);
  return { a, b, pa, qb, w };
}

/** A free parameter's prior placed in the theta matrix. */
export interface FreePrior {
  /** Parameter name (config key). */
  name: string;
  spec: FreePriorSpec;
  /** First theta column. */
  col: number;
  /** Theta columns it fills: 1, or K − 1 for a Dirichlet. */
  nCols: number;
  /** First design dimension (lhs / sobol). */
  dim: number;
  /** Design dimensions it consumes: 1, or K − 1. */
  dims: number;
  /** Random design: Philox sub-stream (0 for scalar priors, 1 + ordinal for Dirichlets). */
  sub: number;
  /** normal only. */
  normal?: NormalConstants;
}

export interface PriorSet {
  priors: FreePrior[];
  /** Theta columns P. */
  nCols: number;
  /** Design dimensions D. */
  dims: number;
}

/** Places free priors in order: columns and design dimensions consecutive. */
export function compilePriors(entries: readonly { name: string; spec: PriorSpec }[]): PriorSet {
  const priors: FreePrior[] = [];
  let col = 0;
  let dim = 0;
  let nDirichlet = 0;
  for (const { name, spec } of entries) {
    if (spec.prior === 'fixed') continue;
    const k = spec.prior === 'dirichlet' ? spec.alpha.length - 1 : 1;
    priors.push({
      name,
      spec,
      col,
      nCols: k,
      dim,
      dims: k,
      sub: spec.prior === 'dirichlet' ? 1 + nDirichlet++ : 0,
      normal: spec.prior === 'normal' ? normalConstants(spec) : undefined,
    });
    col += k;
    dim += k;
  }
  return { priors, nCols: col, dims: dim };
}

/** Support [lo, hi] of a scalar prior (a Dirichlet's cumulative sums lie in (0, 1)). */
export function priorSupport(spec: FreePriorSpec): [number, number] {
  switch (spec.prior) {
    case 'uniform':
    case 'loguniform':
      return [spec.low, spec.high];
    case 'normal':
      return [spec.low ?? -Infinity, spec.high ?? Infinity];
    case 'dirichlet':
      return [0, 1];
  }
}

const clamp = (x: number, lo: number, hi: number) => (x < lo ? lo : x > hi ? hi : x);

/** Inverse CDF of a scalar prior at u in (0, 1) (float64). */
export function scalarInverseCdf(p: FreePrior, u: number): number {
  const s = p.spec;
  switch (s.prior) {
    case 'uniform':
      return clamp(s.low + (s.high - s.low) * u, s.low, s.high);
    case 'loguniform':
      return clamp(Math.exp(Math.log(s.low) + Math.log(s.high / s.low) * u), s.low, s.high);
    case 'normal': {
      const c = p.normal!;
      const pp = c.pa + u * c.w;
      const qq = c.qb + (1 - u) * c.w;
      const z = pp <= qq ? normalQuantileLower(pp) : -normalQuantileLower(qq);
      return clamp(s.mean + s.sigma * z, s.low ?? -Infinity, s.high ?? Infinity);
    }
    case 'dirichlet':
      throw new Error(`prior ${p.name}: a Dirichlet is not a scalar prior`);
  }
}

/** Dirichlet by stick breaking from K − 1 uniforms; writes the K − 1 cumulative sums into out[off..]. */
export function dirichletCumsumFromUniforms(alpha: readonly number[], u: ArrayLike<number>, uOff: number, out: Float64Array, off: number): void {
  const K = alpha.length;
  let rest = 1;
  let cum = 0;
  let tail = 0;
  for (let i = 0; i < K; i++) tail += alpha[i];
  for (let i = 0; i < K - 1; i++) {
    tail -= alpha[i];
    const b = betaQuantile(u[uOff + i], alpha[i], tail);
    const x = rest * b;
    rest -= x;
    cum += x;
    out[off + i] = cum;
  }
}

/** Design uniforms (n x D, row-major) -> theta (n x P), float64. */
export function thetaFromUniforms(set: PriorSet, u: ArrayLike<number>, n: number): Float64Array {
  const theta = new Float64Array(n * set.nCols);
  for (let i = 0; i < n; i++) {
    const uRow = i * set.dims;
    const tRow = i * set.nCols;
    for (const p of set.priors) {
      if (p.spec.prior === 'dirichlet') dirichletCumsumFromUniforms(p.spec.alpha, u, uRow + p.dim, theta, tRow + p.col);
      else theta[tRow + p.col] = scalarInverseCdf(p, u[uRow + p.dim]);
    }
  }
  return theta;
}

/**
 * Random design on the CPU for rows [start, start + count): the words and transforms of the GPU
 * kernel, in float64. Row r's values depend only on (seed, r).
 */
export function sampleRandomTheta(set: PriorSet, seed: number, start: number, count: number): Float64Array {
  const theta = new Float64Array(count * set.nCols);
  const frac = new Float64Array(DIRICHLET_MAX_K);
  for (let i = 0; i < count; i++) {
    const row = start + i;
    const scalar = new PhiloxStream(seed, RngPurpose.prior, row, 0);
    const tRow = i * set.nCols;
    for (const p of set.priors) {
      if (p.spec.prior === 'dirichlet') {
        const s = new PhiloxStream(seed, RngPurpose.prior, row, p.sub);
        s.dirichlet(p.spec.alpha, frac);
        let cum = 0;
        for (let k = 0; k < p.nCols; k++) {
          cum += frac[k];
          theta[tRow + p.col + k] = cum;
        }
      } else {
        theta[tRow + p.col] = scalarInverseCdf(p, u32ToUnitF32(scalar.nextU32()));
      }
    }
  }
  return theta;
}

export interface ThetaSamplerOptions {
  design: DesignKind;
  seed: number;
  /** Total rows of the library: required by lhs (the permutations span all rows); bounds the others. */
  n?: number;
  /** Sobol: seeded digital shift (default true); false gives the plain sequence. */
  sobolShift?: boolean;
}

/**
 * Theta rows of a design on the CPU (float64), chunk by chunk: `sample(start, count)` returns rows
 * [start, start + count) and equals the same rows of one big call.
 */
export class ThetaSampler {
  private readonly lhs?: LatinHypercube;
  private readonly sobol?: SobolSequence;

  constructor(
    readonly set: PriorSet,
    readonly options: ThetaSamplerOptions,
  ) {
    const { design, seed, n } = options;
    if (design === 'lhs') {
      if (n === undefined) throw new Error('lhs design: the total number of rows n is required');
      if (set.dims > 0) this.lhs = new LatinHypercube(n, set.dims, seed);
    } else if (design === 'sobol') {
      if (set.dims > 0) this.sobol = new SobolSequence(set.dims, options.sobolShift === false ? undefined : seed);
    } else if (design !== 'random') {
      throw new Error(`unknown design "${design as string}" (random, lhs, sobol)`);
    }
  }

  sample(start: number, count: number): Float64Array {
    const { n } = this.options;
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0) throw new RangeError(`theta rows: bad range start ${start}, count ${count}`);
    if (n !== undefined && start + count > n) throw new RangeError(`theta rows ${start}..${start + count - 1} beyond the library size ${n}`);
    if (this.set.dims === 0) return new Float64Array(0);
    if (this.options.design === 'random') return sampleRandomTheta(this.set, this.options.seed, start, count);
    const u = (this.lhs ?? this.sobol)!.uniforms(start, count);
    return thetaFromUniforms(this.set, u, count);
  }
}
