/**
 * Mixture density network head (issue 5, optional head; the reference study found it ~20x faster
 * than the NSF): q(t | x) = sum_k pi_k N(t; mu_k, (U_k^T U_k)^-1) in the STANDARDISED units t of
 * theta, with the mixture's parameters the output `raw` of the flow's residual-MLP conditioner on the
 * standardised context. Float64 reference of the log-density, its gradient with respect to `raw`
 * and sampling; the GPU kernel (shaders/nn/mdn.wgsl) mirrors these functions.
 *
 * Per row, K components of C = 1 + 2P + P(P-1)/2 raw values each (component-major):
 *   [ alpha_k | mu_k (P) | d_k (P) | U_k's strict upper triangle (P(P-1)/2, row-major: (0,1),
 *     (0,2), .., (0,P-1), (1,2), .. ) ]
 * pi = softmax(alpha); U_k is upper triangular with U_ii = exp(d_i) (the Cholesky factor of the
 * precision, as pyknos' MultivariateGaussianMDN):
 *   log q = logsumexp_k [ log pi_k - |e_k|^2 / 2 + sum_i d_ki ] - (P/2) log 2 pi,
 *   e_k = U_k (t - mu_k).
 * Gradient, with responsibilities w_k = softmax_k of the bracket and delta = t - mu_k:
 *   d/d alpha_j = w_j - pi_j,   d/d mu_k = w_k U_k^T e_k,   d/d d_ki = w_k (1 - e_ki delta_i U_ii),
 *   d/d U_kij (i < j) = -w_k e_ki delta_j,   d/dt = -sum_k w_k U_k^T e_k.
 * Sampling: component k = the first with u < pi_0 + .. + pi_k (the last one if rounding leaves
 * u above the sum), then t = mu_k + y with U_k y = z (back substitution), z ~ N(0, I).
 */

export const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** Raw values per mixture component: 1 logit, P means, P log-diagonals, P(P-1)/2 off-diagonals. */
export function mdnParamsPerComponent(P: number): number {
  return 1 + 2 * P + (P * (P - 1)) / 2;
}

/** Conditioner output width of an MDN head. */
export function mdnOutDim(P: number, K: number): number {
  return K * mdnParamsPerComponent(P);
}

/** Position of U_ij (i < j) among a component's off-diagonal values (row-major strict upper triangle). */
export function mdnUpperIndex(P: number, i: number, j: number): number {
  return i * P - (i * (i + 1)) / 2 + (j - i - 1);
}

export interface MdnShape {
  /** Dimension of t (theta). */
  P: number;
  /** Mixture components. */
  K: number;
}

function check(name: string, s: MdnShape, n: number, raw: ArrayLike<number>, t: ArrayLike<number>, tName: string): void {
  if (!Number.isInteger(s.P) || s.P < 1 || !Number.isInteger(s.K) || s.K < 1) throw new RangeError(`${name}: P and K must be positive integers, got P = ${s.P}, K = ${s.K}`);
  const O = mdnOutDim(s.P, s.K);
  if (raw.length !== n * O) throw new RangeError(`${name}: raw has ${raw.length} values, expected ${n} x ${O}`);
  if (t.length !== n * s.P) throw new RangeError(`${name}: ${tName} has ${t.length} values, expected ${n} x ${s.P}`);
}

/**
 * log q(t_r | raw_r) of one row; with `g`, adds scale x d log q / d raw into g[gOff ..] (C K values)
 * and, with `gT`, scale x d log q / dt into gT[gtOff ..]. `work` needs 2P + K entries.
 */
export function mdnRow(
  raw: ArrayLike<number>,
  off: number,
  t: ArrayLike<number>,
  toff: number,
  s: MdnShape,
  work: Float64Array,
  g?: { g: Float64Array; gOff: number; scale: number; gT?: Float64Array; gtOff?: number },
): number {
  const { P, K } = s;
  const C = mdnParamsPerComponent(P);
  const delta = work.subarray(0, P);
  const e = work.subarray(P, 2 * P);
  const score = work.subarray(2 * P, 2 * P + K);
  // log pi_k = alpha_k - logsumexp(alpha).
  let amax = -Infinity;
  for (let k = 0; k < K; k++) amax = Math.max(amax, raw[off + k * C]);
  let asum = 0;
  for (let k = 0; k < K; k++) asum += Math.exp(raw[off + k * C] - amax);
  const lse = amax + Math.log(asum);
  let smax = -Infinity;
  for (let k = 0; k < K; k++) {
    const c = off + k * C;
    let quad = 0;
    let logdet = 0;
    for (let i = 0; i < P; i++) {
      let ei = Math.exp(raw[c + 1 + P + i]) * (t[toff + i] - raw[c + 1 + i]);
      for (let j = i + 1; j < P; j++) ei += raw[c + 1 + 2 * P + mdnUpperIndex(P, i, j)] * (t[toff + j] - raw[c + 1 + j]);
      quad += ei * ei;
      logdet += raw[c + 1 + P + i];
    }
    score[k] = raw[c] - lse - 0.5 * quad + logdet;
    smax = Math.max(smax, score[k]);
  }
  let ssum = 0;
  for (let k = 0; k < K; k++) ssum += Math.exp(score[k] - smax);
  const logq = smax + Math.log(ssum) - P * HALF_LOG_2PI;
  if (!g) return logq;
  const { scale } = g;
  for (let k = 0; k < K; k++) {
    const c = off + k * C;
    const gc = g.gOff + k * C;
    const w = Math.exp(score[k] - smax) / ssum;
    const pi = Math.exp(raw[c] - lse);
    g.g[gc] += scale * (w - pi);
    for (let i = 0; i < P; i++) delta[i] = t[toff + i] - raw[c + 1 + i];
    for (let i = 0; i < P; i++) {
      let ei = Math.exp(raw[c + 1 + P + i]) * delta[i];
      for (let j = i + 1; j < P; j++) ei += raw[c + 1 + 2 * P + mdnUpperIndex(P, i, j)] * delta[j];
      e[i] = ei;
    }
    // U^T e: column j of U is U_jj (diagonal) and U_ij for i < j.
    for (let j = 0; j < P; j++) {
      let ute = Math.exp(raw[c + 1 + P + j]) * e[j];
      for (let i = 0; i < j; i++) ute += raw[c + 1 + 2 * P + mdnUpperIndex(P, i, j)] * e[i];
      g.g[gc + 1 + j] += scale * w * ute;
      if (g.gT) g.gT[(g.gtOff ?? 0) + j] -= scale * w * ute;
    }
    for (let i = 0; i < P; i++) {
      g.g[gc + 1 + P + i] += scale * w * (1 - e[i] * delta[i] * Math.exp(raw[c + 1 + P + i]));
      for (let j = i + 1; j < P; j++) g.g[gc + 1 + 2 * P + mdnUpperIndex(P, i, j)] -= scale * w * e[i] * delta[j];
    }
  }
  return logq;
}

/** log q(t_r | raw_r) for n rows (raw: n x K C, t: n x P). */
export function mdnLogProb(raw: ArrayLike<number>, t: ArrayLike<number>, n: number, s: MdnShape): Float64Array {
  check('mdnLogProb', s, n, raw, t, 't');
  const O = mdnOutDim(s.P, s.K);
  const work = new Float64Array(2 * s.P + s.K);
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) out[r] = mdnRow(raw, r * O, t, r * s.P, s, work);
  return out;
}

/**
 * Backward: gRaw = gLogq_r x d log q_r / d raw_r (n x K C) and gT = gLogq_r x d log q_r / dt_r
 * (n x P), given dL/d log q per row.
 */
export function mdnBackward(raw: ArrayLike<number>, t: ArrayLike<number>, gLogq: ArrayLike<number>, n: number, s: MdnShape): { gRaw: Float64Array; gT: Float64Array } {
  check('mdnBackward', s, n, raw, t, 't');
  if (gLogq.length !== n) throw new RangeError(`mdnBackward: gLogq has ${gLogq.length} values, expected ${n}`);
  const O = mdnOutDim(s.P, s.K);
  const work = new Float64Array(2 * s.P + s.K);
  const gRaw = new Float64Array(n * O);
  const gT = new Float64Array(n * s.P);
  for (let r = 0; r < n; r++) mdnRow(raw, r * O, t, r * s.P, s, work, { g: gRaw, gOff: r * O, scale: gLogq[r], gT, gtOff: r * s.P });
  return { gRaw, gT };
}

/** The component a uniform u picks: the first k with u < pi_0 + .. + pi_k (K - 1 if none). */
export function mdnComponent(raw: ArrayLike<number>, off: number, s: MdnShape, u: number): number {
  const C = mdnParamsPerComponent(s.P);
  let amax = -Infinity;
  for (let k = 0; k < s.K; k++) amax = Math.max(amax, raw[off + k * C]);
  let asum = 0;
  for (let k = 0; k < s.K; k++) asum += Math.exp(raw[off + k * C] - amax);
  let cum = 0;
  for (let k = 0; k < s.K - 1; k++) {
    cum += Math.exp(raw[off + k * C] - amax) / asum;
    if (u < cum) return k;
  }
  return s.K - 1;
}

/**
 * Draws t_r = mu_k + y, U_k y = z_r, k = mdnComponent(u_r), for n rows (z: n x P standard normals,
 * u: n uniforms in [0, 1)); returns t and log q(t_r | raw_r).
 */
export function mdnSample(raw: ArrayLike<number>, z: ArrayLike<number>, u: ArrayLike<number>, n: number, s: MdnShape): { t: Float64Array; logq: Float64Array } {
  check('mdnSample', s, n, raw, z, 'z');
  if (u.length !== n) throw new RangeError(`mdnSample: u has ${u.length} values, expected ${n}`);
  const { P } = s;
  const C = mdnParamsPerComponent(P);
  const O = mdnOutDim(P, s.K);
  const t = new Float64Array(n * P);
  const logq = new Float64Array(n);
  const work = new Float64Array(2 * P + s.K);
  for (let r = 0; r < n; r++) {
    const c = r * O + mdnComponent(raw, r * O, s, u[r]) * C;
    for (let i = P - 1; i >= 0; i--) {
      let acc = z[r * P + i];
      for (let j = i + 1; j < P; j++) acc -= raw[c + 1 + 2 * P + mdnUpperIndex(P, i, j)] * (t[r * P + j] - raw[c + 1 + j]);
      t[r * P + i] = raw[c + 1 + i] + acc / Math.exp(raw[c + 1 + P + i]);
    }
    logq[r] = mdnRow(raw, r * O, t, r * P, s, work);
  }
  return { t, logq };
}
