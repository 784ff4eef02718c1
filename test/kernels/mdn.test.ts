/**
 * MDN head kernels (kernels/nn/mdn.ts) against the float64 reference (src/flow/mdn.ts), on f32
 * inputs (the reference sees exactly the values the GPU sees).
 *
 * Tolerances: a first-order f32 error model evaluated in float64 per row (`errorModel` below),
 * relative to the magnitudes that meet in each formula rather than to its result (e = U (t - mu)
 * and the gradients cancel):
 *   - each rounded difference / product: eps of its magnitude (eps = 2^-24); a sum of m terms:
 *     (m + 1) eps of the sum of |terms|;
 *   - WGSL exp: (3 + 2|x|) ulp = (6 + 4|x|) eps relative; log: 2^-21 absolute near 1, 3 ulp
 *     elsewhere (taken as 8 eps (1 + |log|));
 *   - the errors of e_k propagate into the score (|e| err(e) summed), the scores into log q =
 *     logsumexp (weighted by the responsibilities w_k, its derivatives), and the scores and log q
 *     into w_k = exp(score_k - log q) (relative error = the difference of their errors);
 *   - results (and the weights w, pi) below f32's smallest normal may be flushed to zero;
 *   - sampling: back substitution is backward stable, so U_k (t - mu_k) - z is checked against
 *     (P + 2) eps |U| |t - mu| (+ exp's error on the diagonal), and t itself against that residual
 *     bound mapped through |U^-1|.
 * Every quantity gets its model's bound times SAFETY = 4; observed err / bound is printed (well
 * at most ~0.8 on lavapipe).
 * Rows: random mixtures, rows where one component's logit exceeds the others' by 40 (weights
 * e^-40), rows ~20 standard deviations from every mean (log q ~ -200) and rows with |d| up to 3.
 */
import { describe, expect, it } from 'vitest';
import { MDN_COMPONENT_WORKGROUP, mdnBackwardProgram, mdnLogProbProgram, mdnMaxP, mdnSampleProgram } from '../../kernels/nn/mdn.js';
import { baseNormalOffsets } from '../../kernels/nn/columns.js';
import { HALF_LOG_2PI, mdnBackward, mdnComponent, mdnLogProb, mdnOutDim, mdnParamsPerComponent, mdnRow, mdnSample, mdnUpperIndex } from '../../src/flow/mdn.js';
import { RngPurpose, standardNormals, uniform } from '../../src/flow/rng.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch } from '../../src/gpu/kernel.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();

const EPS = 2 ** -24;
/** f32's smallest normal: drivers may flush anything below it to zero (responsibilities ~e^-100 of far components do). */
const FLT_MIN = 2 ** -126;
const SAFETY = 4;

// ---------------------------------------------------------------------------------------------
// Inputs (f32-exact)

type RowKind = 'random' | 'dominant' | 'far' | 'wide';
const KINDS: RowKind[] = ['random', 'dominant', 'far', 'wide'];

function makeInputs(n: number, P: number, K: number, seed: number): { raw: Float32Array; t: Float32Array; kinds: RowKind[] } {
  const C = mdnParamsPerComponent(P);
  const O = mdnOutDim(P, K);
  const g = standardNormals(n * O, seed, RngPurpose.user);
  const gt = standardNormals(n * P, seed + 1, RngPurpose.user);
  const raw = new Float32Array(n * O);
  const t = new Float32Array(n * P);
  const kinds: RowKind[] = [];
  for (let r = 0; r < n; r++) {
    const kind = KINDS[r % KINDS.length];
    kinds.push(kind);
    for (let k = 0; k < K; k++) {
      const c = r * O + k * C;
      raw[c] = 1.5 * g[c] + (kind === 'dominant' && k === 0 ? 40 : 0);
      for (let i = 0; i < P; i++) {
        raw[c + 1 + i] = g[c + 1 + i];
        const dScale = kind === 'wide' ? 1.5 : 0.4;
        raw[c + 1 + P + i] = kind === 'far' ? 0.1 * g[c + 1 + P + i] : dScale * g[c + 1 + P + i];
      }
      for (let q = 0; q < (P * (P - 1)) / 2; q++) raw[c + 1 + 2 * P + q] = (kind === 'far' ? 0.05 : 0.5) * g[c + 1 + 2 * P + q];
    }
    // 'far': |t - mu_k| ~ 20 for every k (U ~ I there), so |e|^2 / 2 ~ 200.
    for (let i = 0; i < P; i++) t[r * P + i] = kind === 'far' ? (i % 2 ? -20 : 20) / Math.sqrt(P) + 0.3 * gt[r * P + i] : 1.2 * gt[r * P + i];
  }
  return { raw, t, kinds };
}

// ---------------------------------------------------------------------------------------------
// The f32 error model (see the header), per row, in float64.

interface RowModel {
  /** Bound on |S_f32 - S| (S = log q + P/2 log 2pi). */
  lse: number;
  /** Bounds on |gRaw_f32 - gRaw| for gL (K C values). */
  gRaw: Float64Array;
}

const expErr = (x: number) => (6 + 4 * Math.abs(x)) * EPS;
const logErr = (v: number) => 8 * EPS * (1 + Math.abs(Math.log(v)));

function errorModel(raw: ArrayLike<number>, off: number, t: ArrayLike<number>, toff: number, P: number, K: number, gL = 0): RowModel {
  const C = mdnParamsPerComponent(P);
  const alpha = Array.from({ length: K }, (_, k) => raw[off + k * C]);
  const amax = Math.max(...alpha);
  const shares = alpha.map((a) => Math.exp(a - amax));
  const asum = shares.reduce((a, b) => a + b, 0);
  const lseA = amax + Math.log(asum);
  // Relative error of asum: its terms' exp (arguments rounded too) and K additions.
  const relAsum = shares.reduce((s, v, k) => s + (v / asum) * (expErr(alpha[k] - amax) + EPS * Math.abs(alpha[k] - amax)), 0) + (K + 1) * EPS;
  const errLseA = EPS * (Math.abs(amax) + Math.abs(lseA)) + relAsum + logErr(asum);
  const U = (c: number, i: number, j: number) => raw[c + 1 + 2 * P + mdnUpperIndex(P, i, j)];
  const comps = [];
  for (let k = 0; k < K; k++) {
    const c = off + k * C;
    const delta = new Float64Array(P);
    const errDelta = new Float64Array(P);
    const ex = new Float64Array(P);
    const errEx = new Float64Array(P);
    const e = new Float64Array(P);
    const errE = new Float64Array(P);
    for (let i = 0; i < P; i++) {
      delta[i] = t[toff + i] - raw[c + 1 + i];
      errDelta[i] = EPS * Math.abs(delta[i]);
      const d = raw[c + 1 + P + i];
      ex[i] = Math.exp(d);
      errEx[i] = ex[i] * expErr(d);
    }
    let quad = 0;
    let errQuad = 0;
    let ldet = 0;
    let absD = 0;
    for (let i = 0; i < P; i++) {
      let v = ex[i] * delta[i];
      let mag = Math.abs(v);
      let err = errEx[i] * Math.abs(delta[i]) + ex[i] * errDelta[i];
      for (let j = i + 1; j < P; j++) {
        v += U(c, i, j) * delta[j];
        mag += Math.abs(U(c, i, j) * delta[j]);
        err += Math.abs(U(c, i, j)) * errDelta[j];
      }
      e[i] = v;
      errE[i] = err + (P + 1) * EPS * mag;
      quad += v * v;
      errQuad += 2 * Math.abs(v) * errE[i];
      ldet += raw[c + 1 + P + i];
      absD += Math.abs(raw[c + 1 + P + i]);
    }
    errQuad += (P + 1) * EPS * quad;
    const score = alpha[k] - lseA - 0.5 * quad + ldet;
    const errScore = errLseA + 0.5 * errQuad + P * EPS * absD + 3 * EPS * (Math.abs(alpha[k]) + Math.abs(lseA) + 0.5 * quad + Math.abs(ldet));
    comps.push({ c, delta, errDelta, ex, errEx, e, errE, score, errScore });
  }
  const smax = Math.max(...comps.map((q) => q.score));
  const ssum = comps.reduce((s, q) => s + Math.exp(q.score - smax), 0);
  const S = smax + Math.log(ssum);
  const w = comps.map((q) => Math.exp(q.score - smax) / ssum);
  // Streaming logsumexp: the scores' errors weighted by w, the exps' (with rescalings) and the sum's.
  let lse = EPS * (Math.abs(smax) + Math.abs(S)) + logErr(ssum) + (2 * K + 1) * EPS;
  for (let k = 0; k < K; k++) lse += w[k] * (comps[k].errScore + expErr(comps[k].score - smax) + EPS * Math.abs(comps[k].score - smax));
  const gRaw = new Float64Array(K * C);
  if (gL !== 0) {
    const g = Math.abs(gL);
    for (let k = 0; k < K; k++) {
      const q = comps[k];
      const gk = k * C;
      const pi = shares[k] / asum;
      // Underflow: a weight within a few binades of FLT_MIN may be flushed to zero entirely.
      const flushed = (v: number) => (v < 2 ** -120 ? v : 0) + FLT_MIN;
      const errW = w[k] * (q.errScore + lse + expErr(q.score - smax) + EPS * (2 + Math.abs(q.score - smax))) + flushed(w[k]);
      const errPi = pi * (expErr(alpha[k] - amax) + EPS * (2 + Math.abs(alpha[k] - amax)) + relAsum) + flushed(pi);
      gRaw[gk] = g * (errW + errPi + EPS * Math.abs(w[k] - pi)) + EPS * g * Math.abs(w[k] - pi);
      const gw = g * w[k];
      const errGw = g * errW + EPS * gw;
      for (let j = 0; j < P; j++) {
        let ute = q.ex[j] * q.e[j];
        let mag = Math.abs(ute);
        let err = q.errEx[j] * Math.abs(q.e[j]) + q.ex[j] * q.errE[j];
        for (let i = 0; i < j; i++) {
          ute += U(q.c, i, j) * q.e[i];
          mag += Math.abs(U(q.c, i, j) * q.e[i]);
          err += Math.abs(U(q.c, i, j)) * q.errE[i];
        }
        err += (P + 1) * EPS * mag;
        gRaw[gk + 1 + j] = errGw * Math.abs(ute) + gw * err + EPS * gw * Math.abs(ute);
      }
      for (let i = 0; i < P; i++) {
        const inner = q.e[i] * q.delta[i] * q.ex[i];
        const errInner = q.errE[i] * Math.abs(q.delta[i] * q.ex[i]) + Math.abs(q.e[i]) * q.errDelta[i] * q.ex[i] + Math.abs(q.e[i] * q.delta[i]) * q.errEx[i] + 3 * EPS * Math.abs(inner);
        gRaw[gk + 1 + P + i] = errGw * Math.abs(1 - inner) + gw * (errInner + EPS * (1 + Math.abs(inner))) + EPS * gw * Math.abs(1 - inner);
        for (let j = i + 1; j < P; j++) {
          const v = q.e[i] * q.delta[j];
          gRaw[gk + 1 + 2 * P + mdnUpperIndex(P, i, j)] = errGw * Math.abs(v) + gw * (q.errE[i] * Math.abs(q.delta[j]) + Math.abs(q.e[i]) * q.errDelta[j] + 3 * EPS * Math.abs(v));
        }
      }
    }
    // Products that end below FLT_MIN (flushed) are off by up to FLT_MIN.
    for (let q = 0; q < gRaw.length; q++) gRaw[q] += 2 * FLT_MIN;
  }
  return { lse, gRaw };
}

// ---------------------------------------------------------------------------------------------
// Runs

async function runLogProb(P: number, K: number, n: number, raw: Float32Array, t: Float32Array, zLayout?: { stride: number; offset: number }, perComponent = false) {
  const dev = ctx.device;
  const zStride = zLayout?.stride ?? P;
  const zInit = new Float32Array(n * zStride).fill(7);
  const bufs = { raw: uploadBuffer(dev, raw), t: uploadBuffer(dev, t), z: uploadBuffer(dev, zInit), logdet: createStorageBuffer(dev, n * 4) };
  try {
    await new ComputeBatch(dev).add(mdnLogProbProgram({ n, P, K, z: zLayout, perComponent }), { 0: bufs.raw, 1: bufs.t, 2: bufs.z, 3: bufs.logdet }).run();
    return { S: await readFloat32(dev, bufs.logdet, 0, n), z: await readFloat32(dev, bufs.z, 0, n * zStride) };
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}

async function runBackward(P: number, K: number, n: number, raw: Float32Array, t: Float32Array, gL: Float32Array, perComponent = false): Promise<Float32Array> {
  const dev = ctx.device;
  const O = mdnOutDim(P, K);
  // gRaw starts as garbage: every value must be written.
  const bufs = { raw: uploadBuffer(dev, raw), t: uploadBuffer(dev, t), gL: uploadBuffer(dev, gL), gRaw: uploadBuffer(dev, new Float32Array(n * O).fill(Number.NaN)) };
  try {
    await new ComputeBatch(dev).add(mdnBackwardProgram({ n, P, K, perComponent }), { 0: bufs.raw, 1: bufs.t, 4: bufs.gL, 5: bufs.gRaw }).run();
    return await readFloat32(dev, bufs.gRaw, 0, n * O);
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}

const ratio = (err: number, tol: number) => (tol > 0 ? err / tol : err === 0 ? 0 : Number.POSITIVE_INFINITY);

const SHAPES: [number, number][] = [
  [1, 1],
  [1, 3],
  [1, 10],
  [2, 1],
  [2, 3],
  [2, 10],
  [8, 1],
  [8, 3],
  [8, 10],
];

describe('MDN kernels vs the float64 reference', () => {
  // Both schedules (one thread per row; per (row, component), the GPUs' choice) on the same rows
  // and bounds: K = 1, 3, 10 leave 128, 42, 12 rows per per-component workgroup (n = 1000 ends
  // in a partial one; K = 3, 10 idle 2 and 8 threads).
  for (const perComponent of [false, true]) {
    const tag = perComponent ? ', per component' : '';
    for (const [P, K] of SHAPES) {
      for (const n of [1, 7, 1000]) {
        it(`P = ${P}, K = ${K}, n = ${n}${tag}: log q and its raw gradient`, async () => {
          const { raw, t, kinds } = makeInputs(n, P, K, 100 * P + 10 * K + n);
          const O = mdnOutDim(P, K);
          const ref = mdnLogProb(raw, t, n, { P, K });
          const { S, z } = await runLogProb(P, K, n, raw, t, undefined, perComponent);
          expect(Array.from(z).every((v) => v === 0)).toBe(true);
          let worst = 0;
          for (let r = 0; r < n; r++) {
            const m = errorModel(raw, r * O, t, r * P, P, K);
            expect(Number.isFinite(S[r])).toBe(true);
            const err = Math.abs(S[r] - P * HALF_LOG_2PI - ref[r]);
            worst = Math.max(worst, ratio(err, m.lse));
            if (err > SAFETY * m.lse) throw new Error(`row ${r} (${kinds[r]}): log q ${S[r] - P * HALF_LOG_2PI} vs ${ref[r]}, error ${err} > ${SAFETY} x ${m.lse}`);
          }
          // Far rows really are far (the f32 logsumexp handled log q ~ -200).
          if (n >= 3 && kinds[2] === 'far') expect(ref[2]).toBeLessThan(-100);

          // Backward with gL of mixed signs and some zeros (padded rows: exact zeros).
          const gL = Float32Array.from({ length: n }, (_, r) => (r % 5 === 4 ? 0 : (r % 2 ? -1 : 1) * (0.25 + (r % 3))));
          const gRaw = await runBackward(P, K, n, raw, t, gL, perComponent);
          const gRef = mdnBackward(raw, t, gL, n, { P, K }).gRaw;
          let worstG = 0;
          for (let r = 0; r < n; r++) {
            const m = errorModel(raw, r * O, t, r * P, P, K, gL[r]);
            for (let q = 0; q < O; q++) {
              const i = r * O + q;
              expect(Number.isFinite(gRaw[i])).toBe(true);
              if (gL[r] === 0) {
                expect(gRaw[i]).toBe(0);
                continue;
              }
              const err = Math.abs(gRaw[i] - gRef[i]);
              worstG = Math.max(worstG, ratio(err, m.gRaw[q]));
              if (err > SAFETY * m.gRaw[q]) throw new Error(`row ${r} (${kinds[r]}), raw ${q % mdnParamsPerComponent(P)} of component ${Math.floor(q / mdnParamsPerComponent(P))}: ${gRaw[i]} vs ${gRef[i]}, error ${err} > ${SAFETY} x ${m.gRaw[q]}`);
            }
          }
          console.log(`mdn P=${P} K=${K} n=${n}${tag}: worst err/bound log q ${worst.toFixed(3)}, gRaw ${worstG.toFixed(3)}`);
        });
      }
    }
  }

  it('per component: strided z, K up to the workgroup (one row per group), beyond it the per-row kernels', async () => {
    const P = 3;
    for (const [K, n] of [[2, 70], [MDN_COMPONENT_WORKGROUP, 5]]) {
      const { raw, t } = makeInputs(n, P, K, 11 + K);
      const O = mdnOutDim(P, K);
      const ref = mdnLogProb(raw, t, n, { P, K });
      const { S, z } = await runLogProb(P, K, n, raw, t, { stride: 7, offset: 2 }, true);
      for (let r = 0; r < n; r++) {
        expect(S[r] - P * HALF_LOG_2PI).toBeCloseTo(ref[r], 3);
        for (let c = 0; c < 7; c++) expect(z[r * 7 + c]).toBe(c >= 2 && c < 5 ? 0 : 7);
      }
      const gL = Float32Array.from({ length: n }, (_, r) => (r === 1 ? 0 : 1 - r / n));
      const gRaw = await runBackward(P, K, n, raw, t, gL, true);
      const gRef = mdnBackward(raw, t, gL, n, { P, K }).gRaw;
      for (let i = 0; i < n * O; i++) expect(Math.abs(gRaw[i] - gRef[i])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(gRef[i])));
      for (let i = O; i < 2 * O; i++) expect(gRaw[i]).toBe(0);
    }
    expect(mdnLogProbProgram({ n: 9, P, K: 10, perComponent: true }).name).toMatch(/^mdnLogProbPerComponent/);
    expect(mdnBackwardProgram({ n: 9, P, K: 10, perComponent: true }).workgroups).toEqual([1, 1, 1]);
    expect(mdnBackwardProgram({ n: 9, P, K: MDN_COMPONENT_WORKGROUP + 1, perComponent: true }).name).toMatch(/^mdnBackward\(/);
  });

  it('log q reads and zeroes strided (stride, offset) views; MAX_P tiers', async () => {
    const P = 3;
    const K = 2;
    const n = 70;
    const { raw, t } = makeInputs(n, P, K, 5);
    const { S, z } = await runLogProb(P, K, n, raw, t, { stride: 7, offset: 2 });
    const ref = mdnLogProb(raw, t, n, { P, K });
    for (let r = 0; r < n; r++) {
      expect(S[r] - P * HALF_LOG_2PI).toBeCloseTo(ref[r], 3);
      for (let c = 0; c < 7; c++) expect(z[r * 7 + c]).toBe(c >= 2 && c < 5 ? 0 : 7);
    }
    expect([1, 4, 5, 8, 9, 33, 128].map(mdnMaxP)).toEqual([4, 4, 8, 8, 16, 64, 128]);
    expect(() => mdnLogProbProgram({ n, P: 129, K })).toThrow(/P must be an integer in 1\.\.128/);
    expect(() => mdnLogProbProgram({ n, P, K, t: { stride: 2, offset: 0 } })).toThrow(/stride >= offset \+ P/);
  });
});

// ---------------------------------------------------------------------------------------------
// Sampling

/** |U^-1| v for the component at raw[c ..] (float64; U^-1's columns by back substitution). */
function absInvTimes(raw: ArrayLike<number>, c: number, P: number, v: Float64Array): Float64Array {
  // |U^-1| v: column j of U^-1 by back substitution on e_j, accumulated with absolute values.
  const out = new Float64Array(P);
  const col = new Float64Array(P);
  for (let j = 0; j < P; j++) {
    for (let i = P - 1; i >= 0; i--) {
      let acc = i === j ? 1 : 0;
      for (let q = i + 1; q < P; q++) acc -= raw[c + 1 + 2 * P + mdnUpperIndex(P, i, q)] * col[q];
      col[i] = acc / Math.exp(raw[c + 1 + P + i]);
    }
    for (let i = 0; i < P; i++) out[i] += Math.abs(col[i]) * v[j];
  }
  return out;
}

async function runSample(P: number, K: number, n: number, raw: Float32Array, z: Float32Array, opts: { seed: number; d0?: number; drawIndex?: Float64Array; zLayout?: { stride: number; offset: number }; tLayout?: { stride: number; offset: number } }) {
  const dev = ctx.device;
  const tStride = opts.tLayout?.stride ?? P;
  const draws = opts.drawIndex ? baseNormalOffsets(opts.drawIndex, P) : new Uint32Array(2);
  const bufs = { raw: uploadBuffer(dev, raw), z: uploadBuffer(dev, z), t: uploadBuffer(dev, new Float32Array(n * tStride).fill(-3)), logdet: createStorageBuffer(dev, n * 4), draws: uploadBuffer(dev, draws) };
  try {
    const prog = mdnSampleProgram({ n, P, K, seed: opts.seed, purpose: RngPurpose.mixture, d0: opts.d0, z: opts.zLayout, t: opts.tLayout });
    await new ComputeBatch(dev).add(prog, { 0: bufs.raw, 1: bufs.z, 2: bufs.t, 3: bufs.logdet, 6: bufs.draws }).run();
    return { t: await readFloat32(dev, bufs.t, 0, n * tStride), slot: await readFloat32(dev, bufs.logdet, 0, n) };
  } finally {
    for (const b of Object.values(bufs)) b.destroy();
  }
}

describe('MDN sampling kernel vs the float64 reference', () => {
  const cases: { P: number; K: number; n: number; draws: 'contiguous' | 'listed'; strided?: boolean }[] = [
    { P: 1, K: 1, n: 7, draws: 'contiguous' },
    { P: 1, K: 3, n: 1000, draws: 'listed' },
    { P: 2, K: 10, n: 1000, draws: 'contiguous', strided: true },
    { P: 8, K: 3, n: 7, draws: 'listed' },
    { P: 8, K: 10, n: 1000, draws: 'contiguous' },
    { P: 8, K: 10, n: 1000, draws: 'listed', strided: true },
  ];
  for (const cs of cases) {
    const { P, K, n } = cs;
    it(`P = ${P}, K = ${K}, n = ${n}, ${cs.draws} draws${cs.strided ? ', strided z and t' : ''}: component, t, log q`, async () => {
      const O = mdnOutDim(P, K);
      const C = mdnParamsPerComponent(P);
      const { raw } = makeInputs(n, P, K, 7 * P + K + n);
      const seed = 2 ** 33 + 12345;
      // Contiguous draws straddle a 2^32 boundary of the draw index (carry into the high word);
      // listed ones are scattered, some above 2^32 (the kernel divides d P back to d).
      const d0 = 2 ** 32 - 3 - Math.floor(n / 2);
      const drawIndex = cs.draws === 'contiguous' ? Float64Array.from({ length: n }, (_, i) => d0 + i) : Float64Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 2 ** 40 + 977 * i : 31 * i + 5));
      const zL = cs.strided ? { stride: P + 3, offset: 2 } : { stride: P, offset: 0 };
      const tL = cs.strided ? { stride: P + 1, offset: 1 } : { stride: P, offset: 0 };
      const zDense = Float32Array.from(standardNormals(n * P, 77, RngPurpose.user));
      const zBuf = new Float32Array(n * zL.stride).fill(Number.NaN);
      for (let r = 0; r < n; r++) for (let i = 0; i < P; i++) zBuf[r * zL.stride + zL.offset + i] = zDense[r * P + i];
      const got = await runSample(P, K, n, raw, zBuf, { seed, d0: cs.draws === 'contiguous' ? d0 : undefined, drawIndex: cs.draws === 'listed' ? drawIndex : undefined, zLayout: zL, tLayout: tL });
      const u = Float64Array.from(drawIndex, (d) => uniform(seed, RngPurpose.mixture, d));
      const ref = mdnSample(raw, zDense, u, n, { P, K });
      const work = new Float64Array(2 * P + K);
      let boundary = 0;
      let worstRes = 0;
      let worstT = 0;
      let worstS = 0;
      for (let r = 0; r < n; r++) {
        const off = r * O;
        const tg = Float64Array.from({ length: P }, (_, i) => got.t[r * tL.stride + tL.offset + i]);
        for (let i = 0; i < tL.stride; i++) if (i < tL.offset || i >= tL.offset + P) expect(got.t[r * tL.stride + i]).toBe(-3);
        // The component: the reference's, or a neighbour when u lies within 1e-6 of a boundary
        // (the kernel forms u and the cumulative weights in f32).
        const kRef = mdnComponent(raw, off, { P, K }, u[r]);
        let cum = 0;
        let nearest = Infinity;
        let amax = -Infinity;
        for (let k = 0; k < K; k++) amax = Math.max(amax, raw[off + k * C]);
        let asum = 0;
        for (let k = 0; k < K; k++) asum += Math.exp(raw[off + k * C] - amax);
        for (let k = 0; k < K - 1; k++) {
          cum += Math.exp(raw[off + k * C] - amax) / asum;
          nearest = Math.min(nearest, Math.abs(u[r] - cum));
        }
        const candidates = nearest < 1e-6 ? Array.from({ length: K }, (_, k) => k) : [kRef];
        // Backward error of the triangular solve for each candidate; the kernel's component is one
        // whose residual is within bound.
        let picked = -1;
        let pickedTol: Float64Array | null = null;
        for (const k of candidates) {
          const c = off + k * C;
          const res = new Float64Array(P);
          const tol = new Float64Array(P);
          for (let i = 0; i < P; i++) {
            // U (t - mu) - z = (U y - z) + U (t - mu - y): the solve's backward error ((P + 1) eps
            // |U| |y|, exp's on the diagonal) plus the rounding of t = mu + y (eps |t|).
            const ex = Math.exp(raw[c + 1 + P + i]);
            const y = tg[i] - raw[c + 1 + i];
            let e = ex * y;
            let mag = ex * Math.abs(y);
            let tRound = ex * EPS * Math.abs(tg[i]);
            for (let j = i + 1; j < P; j++) {
              const Uij = raw[c + 1 + 2 * P + mdnUpperIndex(P, i, j)];
              const yj = tg[j] - raw[c + 1 + j];
              e += Uij * yj;
              mag += Math.abs(Uij * yj);
              tRound += Math.abs(Uij) * EPS * Math.abs(tg[j]);
            }
            res[i] = Math.abs(e - zDense[r * P + i]);
            tol[i] = (P + 2) * EPS * mag + ex * Math.abs(y) * expErr(raw[c + 1 + P + i]) + tRound + EPS * Math.abs(zDense[r * P + i]);
          }
          if (res.every((v, i) => v <= SAFETY * tol[i])) {
            picked = k;
            pickedTol = tol;
            worstRes = Math.max(worstRes, ...Array.from(res, (v, i) => ratio(v, tol[i])));
            break;
          }
        }
        if (picked < 0) throw new Error(`draw ${r}: t = ${Array.from(tg)} solves no candidate component's system (reference component ${kRef}, t ${Array.from(ref.t.subarray(r * P, r * P + P))})`);
        if (picked !== kRef) {
          boundary++;
          continue;
        }
        // t against the reference: the residual bound mapped through |U^-1|.
        const tTol = absInvTimes(raw, off + picked * C, P, pickedTol!);
        for (let i = 0; i < P; i++) {
          const err = Math.abs(tg[i] - ref.t[r * P + i]);
          const tol = tTol[i] + EPS * Math.abs(ref.t[r * P + i]);
          worstT = Math.max(worstT, ratio(err, tol));
          if (err > SAFETY * tol) throw new Error(`draw ${r}: t[${i}] ${tg[i]} vs ${ref.t[r * P + i]} (error ${err} > ${SAFETY} x ${tol})`);
        }
        // The slot: log q at the kernel's t + P/2 log 2pi + |z|^2 / 2.
        let qz = 0;
        for (let i = 0; i < P; i++) qz += zDense[r * P + i] ** 2;
        const want = mdnRow(raw, off, tg, 0, { P, K }, work) + P * HALF_LOG_2PI + 0.5 * qz;
        const m = errorModel(raw, off, tg, 0, P, K);
        const tol = m.lse + 2 * EPS * (Math.abs(want) + 0.5 * qz);
        expect(Number.isFinite(got.slot[r])).toBe(true);
        const err = Math.abs(got.slot[r] - want);
        worstS = Math.max(worstS, ratio(err, tol));
        if (err > SAFETY * tol) throw new Error(`draw ${r}: logdet slot ${got.slot[r]} vs ${want} (error ${err} > ${SAFETY} x ${tol})`);
      }
      console.log(`mdn sample P=${P} K=${K} n=${n}: ${boundary} boundary draws; worst err/bound residual ${worstRes.toFixed(3)}, t ${worstT.toFixed(3)}, slot ${worstS.toFixed(3)}`);
      expect(boundary).toBeLessThanOrEqual(Math.max(1, Math.ceil(n / 200)));
    });
  }
});
