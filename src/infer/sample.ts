/**
 * Posterior sampling with prior-bound rejection, and log-density evaluation, on any FlowEngine.
 *
 * For N observations x M samples: every observation draws candidates from the flow; candidates
 * outside the prior bounds (or non-finite) are rejected and redrawn. Each observation may draw at most
 * M * maxDrawsPerSample candidates (the cap): an observation that still has empty slots then keeps
 * NaN there, and ONE warning names how many observations hit the cap (and the first few). Never an
 * endless loop: every round spends at least one draw of a finite budget per unfinished observation.
 *
 * Rounds: round 1 draws M candidates per observation; later rounds draw ceil(missing / a) per
 * unfinished observation, a = its acceptance rate so far (at least 1/64), within its budget.
 * Candidates are taken in draw order; surplus accepted draws are dropped.
 *
 * Determinism: candidate k of observation o (global index obsOffset + o) is draw number
 * (obsOffset + o) * M * maxDrawsPerSample + k of the engine's base-normal stream for `seed`, so the
 * samples depend on (seed, observation index, M, maxDrawsPerSample) only, not on batching or on
 * how a catalogue is split into calls.
 */
import type { ParameterInfo } from '../flow/modelFiles.js';
import type { FlowEngine } from '../train/engine.js';

/** Per-parameter bounds; null = unbounded on that side. */
export interface PriorBounds {
  low: (number | null)[];
  high: (number | null)[];
}

export function boundsFromParameters(params: readonly Pick<ParameterInfo, 'low' | 'high'>[]): PriorBounds {
  return { low: params.map((p) => p.low), high: params.map((p) => p.high) };
}

export interface PosteriorSampleOptions {
  seed?: number;
  /** Rejection bounds (default: none, every draw is kept). */
  bounds?: PriorBounds | null;
  /** Cap: at most M * maxDrawsPerSample candidates per observation (default 100). */
  maxDrawsPerSample?: number;
  /** Candidates per engine call (default 65536 on the CPU, 2^20 on a GPU). */
  batchDraws?: number;
  /** Global index of the first observation (for catalogues sampled in several calls). */
  obsOffset?: number;
  /** Called once when observations hit the cap (default console.warn). */
  onWarning?: (message: string) => void;
  /** Observation labels for the warning (default: their indices). */
  obsLabels?: readonly string[];
}

export interface PosteriorSamples {
  nObs: number;
  /** M: samples per observation. */
  perObs: number;
  P: number;
  /** (nObs * M) x P: sample j of observation o is row o * M + j. NaN rows where an observation hit the cap. */
  theta: Float64Array;
  /** log q(theta | x) per sample (NaN where theta is). */
  logProb: Float64Array;
  /** Samples inside the bounds per observation (= M unless capped). */
  accepted: Uint32Array;
  /** Candidates drawn per observation. */
  draws: Float64Array;
  /** Indices (local) of the observations that hit the cap. */
  capped: number[];
  /** Accepted / drawn over all observations. */
  acceptanceRate: number;
}

function checkBounds(b: PriorBounds, P: number): void {
  if (b.low.length !== P || b.high.length !== P) throw new RangeError(`bounds: ${b.low.length}/${b.high.length} entries, the model has ${P} parameters`);
  for (let p = 0; p < P; p++) {
    const lo = b.low[p];
    const hi = b.high[p];
    if (lo !== null && hi !== null && !(lo < hi)) throw new RangeError(`bounds: parameter ${p}: low ${lo} must be < high ${hi}`);
  }
}

/** Posterior samples of M per observation for nObs contexts x (nObs x F); see the module comment. */
export async function samplePosterior(engine: FlowEngine, x: ArrayLike<number>, nObs: number, M: number, opts: PosteriorSampleOptions = {}): Promise<PosteriorSamples> {
  const { thetaDim: P, contextDim: F } = engine.model.config;
  if (!Number.isInteger(nObs) || nObs < 0) throw new RangeError(`samplePosterior: nObs must be a non-negative integer, got ${nObs}`);
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`samplePosterior: samples per observation must be a positive integer, got ${M}`);
  if (x.length !== nObs * F) throw new RangeError(`samplePosterior: x has ${x.length} values, expected ${nObs} x ${F}`);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new RangeError(`samplePosterior: observation ${Math.floor(i / F)}, feature ${i % F}: non-finite value ${x[i]}`);
  }
  const seed = opts.seed ?? 0;
  const maxPer = opts.maxDrawsPerSample ?? 100;
  if (!Number.isInteger(maxPer) || maxPer < 1) throw new RangeError(`maxDrawsPerSample must be a positive integer, got ${maxPer}`);
  const batch = opts.batchDraws ?? (engine.kind === 'gpu' ? 1 << 20 : 65536);
  const obsOffset = opts.obsOffset ?? 0;
  const stride = M * maxPer;
  if (!Number.isSafeInteger((obsOffset + nObs) * stride * P)) throw new RangeError('samplePosterior: draw indices exceed 2^53 (too many observations x samples x maxDrawsPerSample)');
  const bounds = opts.bounds ?? null;
  if (bounds) checkBounds(bounds, P);
  const lo = new Float64Array(P).fill(-Infinity);
  const hi = new Float64Array(P).fill(Infinity);
  if (bounds) for (let p = 0; p < P; p++) {
    if (bounds.low[p] !== null) lo[p] = bounds.low[p]!;
    if (bounds.high[p] !== null) hi[p] = bounds.high[p]!;
  }

  const theta = new Float64Array(nObs * M * P).fill(NaN);
  const logProb = new Float64Array(nObs * M).fill(NaN);
  const filled = new Uint32Array(nObs);
  const drawn = new Float64Array(nObs);

  for (;;) {
    // Plan this round: (observation, number of candidates) for every unfinished observation with budget.
    const plan: [number, number][] = [];
    for (let o = 0; o < nObs; o++) {
      const missing = M - filled[o];
      const left = stride - drawn[o];
      if (missing === 0 || left <= 0) continue;
      const acc = drawn[o] > 0 ? Math.max(filled[o] / drawn[o], 1 / 64) : 1;
      plan.push([o, Math.min(left, Math.ceil(missing / acc))]);
    }
    if (!plan.length) break;
    // Candidates in (observation, draw) order, in engine batches.
    let pi = 0;
    let k0 = 0; // candidates of plan[pi] already issued
    while (pi < plan.length) {
      const ctx: number[] = [];
      const draws: number[] = [];
      while (pi < plan.length && ctx.length < batch) {
        const [o, cnt] = plan[pi];
        const take = Math.min(cnt - k0, batch - ctx.length);
        const base = (obsOffset + o) * stride + drawn[o] + k0;
        for (let k = 0; k < take; k++) {
          ctx.push(o);
          draws.push(base + k);
        }
        k0 += take;
        if (k0 === cnt) {
          pi++;
          k0 = 0;
        }
      }
      const r = await engine.sample({ x, nCtx: nObs, ctxIndex: Uint32Array.from(ctx), drawIndex: Float64Array.from(draws), seed });
      for (let i = 0; i < ctx.length; i++) {
        const o = ctx[i];
        if (filled[o] >= M) continue;
        let ok = Number.isFinite(r.logProb[i]);
        for (let p = 0; p < P && ok; p++) {
          const v = r.theta[i * P + p];
          ok = v >= lo[p] && v <= hi[p];
        }
        if (!ok) continue;
        const row = o * M + filled[o];
        for (let p = 0; p < P; p++) theta[row * P + p] = r.theta[i * P + p];
        logProb[row] = r.logProb[i];
        filled[o]++;
      }
    }
    for (const [o, cnt] of plan) drawn[o] += cnt;
  }

  const capped: number[] = [];
  let acc = 0;
  let tot = 0;
  for (let o = 0; o < nObs; o++) {
    if (filled[o] < M) capped.push(o);
    acc += filled[o];
    tot += drawn[o];
  }
  if (capped.length) {
    const label = (o: number) => opts.obsLabels?.[o] ?? String(obsOffset + o);
    const list = capped.slice(0, 5).map(label).join(', ') + (capped.length > 5 ? ', ...' : '');
    const msg =
      `${capped.length} of ${nObs} observations hit the cap of ${maxPer} draws per sample (${stride} candidates) before ${M} samples fell inside the prior bounds; ` +
      `their missing samples are NaN (observations: ${list}). Such observations are probably outside the training distribution.`;
    (opts.onWarning ?? ((m: string) => console.warn(m)))(msg);
  }
  return { nObs, perObs: M, P, theta, logProb, accepted: filled, draws: drawn, capped, acceptanceRate: tot > 0 ? acc / tot : 1 };
}

/**
 * log q(theta | x) of the flow for n given (theta, x) pairs, original units. This is the flow's own
 * density: it is not renormalised to the prior box (rejection sampling samples the renormalised one).
 */
export async function logProbOf(engine: FlowEngine, theta: ArrayLike<number>, x: ArrayLike<number>, n: number): Promise<Float64Array> {
  const { thetaDim: P, contextDim: F } = engine.model.config;
  if (theta.length !== n * P) throw new RangeError(`logProbOf: theta has ${theta.length} values, expected ${n} x ${P}`);
  if (x.length !== n * F) throw new RangeError(`logProbOf: x has ${x.length} values, expected ${n} x ${F}`);
  return engine.logProb(theta, x, n);
}

export interface SampleSummary {
  /** nObs x P each. */
  mean: Float64Array;
  std: Float64Array;
  /** quantiles[q] is nObs x P. */
  quantiles: Float64Array[];
  probs: number[];
}

/** Per-observation mean, std and quantiles (linear interpolation, as numpy's default) of each parameter; NaN samples are skipped. */
export function summarizeSamples(s: PosteriorSamples, probs: number[] = [0.16, 0.5, 0.84]): SampleSummary {
  const { nObs, perObs: M, P } = s;
  const mean = new Float64Array(nObs * P).fill(NaN);
  const std = new Float64Array(nObs * P).fill(NaN);
  const quantiles = probs.map(() => new Float64Array(nObs * P).fill(NaN));
  const col = new Float64Array(M);
  for (let o = 0; o < nObs; o++)
    for (let p = 0; p < P; p++) {
      let k = 0;
      for (let j = 0; j < M; j++) {
        const v = s.theta[(o * M + j) * P + p];
        if (!Number.isNaN(v)) col[k++] = v;
      }
      if (!k) continue;
      const c = col.subarray(0, k).sort();
      let m = 0;
      for (let j = 0; j < k; j++) m += c[j];
      m /= k;
      let v = 0;
      for (let j = 0; j < k; j++) v += (c[j] - m) ** 2;
      mean[o * P + p] = m;
      std[o * P + p] = k > 1 ? Math.sqrt(v / (k - 1)) : 0;
      probs.forEach((q, qi) => {
        const h = (k - 1) * q;
        const a = Math.floor(h);
        const b = Math.min(k - 1, a + 1);
        quantiles[qi][o * P + p] = c[a] + (h - a) * (c[b] - c[a]);
      });
    }
  return { mean, std, quantiles, probs };
}
