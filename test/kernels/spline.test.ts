/**
 * Rational-quadratic spline kernels (kernels/nn/spline.ts) against the float64 reference
 * (src/flow/spline.ts), on f32 inputs (the reference sees exactly the f32 values the GPU sees).
 *
 * Tolerances: the kernel's f32 rounding, modelled as perturbations of the reference's inputs, and
 * propagated by evaluating the reference itself at the perturbed points (finite, not linearised:
 * near a 1e-3 knot derivative log f' changes by orders of magnitude within the rounding scale):
 *   - knot positions are cumulative sums of K softmax shares times 2B: off by up to
 *     knotDelta = 4 (K + 8) eps B (K additions, ~6 ulp per share, x2 margin; eps = 2^-24). Modelled
 *     by shifting the input by knotDelta and minBinWidth / minBinHeight by knotDelta / 2B (every bin
 *     width/height moves by up to knotDelta: the relative error knotDelta / w of a narrow bin);
 *   - the derivatives' relative rounding (~8 eps): minDerivative and the derivative logits moved
 *     by 8 eps of themselves, together and with alternating signs;
 * the tolerance of an output is the sum over these sources of its largest change (either side),
 * plus the last formula's own rounding: 8 eps B (+ knotDelta for the y-knot itself) for y and u,
 * 32 eps (1 + |log f'|) for log f' (two logs: absolute 2^-21 near 1, 3 ulp elsewhere), and for
 * gradients 64 eps times the magnitudes that cancel in the backward (the dL/dy and dL/dlogdet parts
 * of each component, and the scalar's largest part, which the softmax backward subtracts).
 * Well-conditioned points get ~1e-5 of tolerance; points next to a knot with d = 1e-3 (derivative
 * logits of scale 10) get up to O(1) on log f': f32 knots are only that accurate there. Observed
 * err/tol stays below ~0.4 for every case.
 * Bin edges: the f32 knots differ from the f64 ones by O(K) ulps, so a point that close to a knot
 * may fall in either bin on the GPU. y, u and logdet are continuous there; the parameter gradient
 * is not (it belongs to one bin's parameters), so it must match the reference evaluated on one
 * side of the knot or the other, with perturbations that stay in that bin.
 */
import { describe, expect, it } from 'vitest';
import {
  type RowLayout,
  encodeSplineBackward,
  encodeSplineForward,
  encodeSplineInverse,
  splineBackwardProgram,
  splineForwardProgram,
  splineRawPerScalar,
  splineStaged,
} from '../../kernels/nn/spline.js';
import {
  type SplineSpec,
  splineBackwardScalar,
  splineForwardScalar,
  splineInverseScalar,
  searchBin,
  splineKnots,
} from '../../src/flow/spline.js';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { ComputeBatch } from '../../src/gpu/kernel.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();

const EPS = 2 ** -24;

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normals(n: number, seed: number, scale: number): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The f32 neighbour of the f32 value v in direction dir (+1 up, -1 down); v finite, nonzero. */
function nextF32(v: number, dir: 1 | -1): number {
  f32[0] = v;
  if (f32[0] === 0) return dir * 1.4e-45;
  u32[0] += (f32[0] > 0) === dir > 0 ? 1 : -1;
  return f32[0];
}

function spec(K: number, B: number, logitScale: number, mins: [number, number, number] = [1e-3, 1e-3, 1e-3]): SplineSpec {
  return { bins: K, bound: B, minBinWidth: mins[0], minBinHeight: mins[1], minDerivative: mins[2], logitScale };
}

/** Distinct minimum width / height / derivative, so that a kernel mixing them up fails. */
const ODD_MINS: [number, number, number] = [2e-3, 5e-4, 1e-2];

/**
 * m scalars spread over bins, knots (exactly, f32-rounded, and their f32 neighbours), +-B and their
 * neighbours, just outside, and far tails (+-1e3, +-1e30). `which` picks the knots of the input
 * (cw for forward inputs, ch for inverse inputs).
 */
function spreadInputs(m: number, raw: Float32Array, s: SplineSpec, which: 'cw' | 'ch', seed: number): Float32Array {
  const r = mulberry32(seed);
  const per = splineRawPerScalar(s.bins);
  const B = s.bound;
  const out = new Float32Array(m);
  for (let e = 0; e < m; e++) {
    const p = r();
    const sign = r() < 0.5 ? -1 : 1;
    let v: number;
    if (p < 0.5) v = (2 * r() - 1) * B;
    else if (p < 0.72) {
      const q = splineKnots(raw, e * per, s)[which];
      const k = Math.floor(r() * (s.bins + 1));
      f32[0] = q[k];
      v = f32[0];
      const t = r();
      if (t < 0.3 && v !== 0) v = nextF32(v, 1);
      else if (t < 0.6 && v !== 0) v = nextF32(v, -1);
    } else if (p < 0.78) v = r() < 0.5 ? sign * B : nextF32(sign * B, r() < 0.5 ? 1 : -1);
    else if (p < 0.84) v = sign * B * (1 + 0.2 * r());
    else if (p < 0.9) v = sign * 1e3;
    else if (p < 0.95) v = sign * 1e30;
    else v = (2 * r() - 1) * 1.3 * B;
    out[e] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// GPU runs
// ---------------------------------------------------------------------------------------------

interface MapOpts {
  accumulate?: boolean;
  initialLogdet?: Float32Array;
  serial?: boolean;
}

async function gpuMap(dir: 'forward' | 'inverse', n: number, dims: number, s: SplineSpec, x: Float32Array, raw: Float32Array, o: MapOpts = {}) {
  const dev = ctx.device;
  const X = uploadBuffer(dev, x);
  const R = uploadBuffer(dev, raw);
  const Y = createStorageBuffer(dev, n * dims * 4);
  const L = o.initialLogdet ? uploadBuffer(dev, o.initialLogdet) : createStorageBuffer(dev, n * 4);
  const batch = new ComputeBatch(dev);
  const shape = { n, dims, spec: s, accumulate: o.accumulate, serial: o.serial };
  if (dir === 'forward') encodeSplineForward(batch, { u: X, raw: R, y: Y, logdet: L }, shape);
  else encodeSplineInverse(batch, { y: X, raw: R, u: Y, logdet: L }, shape);
  await batch.run();
  const out = await readFloat32(dev, Y, 0, n * dims);
  const logdet = await readFloat32(dev, L, 0, n);
  for (const b of [X, R, Y, L]) b.destroy();
  return { out, logdet };
}

/** Backward on the GPU; `stage` undefined = the device's default path. */
async function gpuBackward(n: number, dims: number, s: SplineSpec, u: Float32Array, raw: Float32Array, gY: Float32Array, gL: Float32Array, stage?: boolean) {
  const dev = ctx.device;
  const per = splineRawPerScalar(s.bins);
  const bufs = {
    u: uploadBuffer(dev, u),
    raw: uploadBuffer(dev, raw),
    gY: uploadBuffer(dev, gY),
    gLogdet: uploadBuffer(dev, gL),
    gU: createStorageBuffer(dev, n * dims * 4),
    gRaw: createStorageBuffer(dev, n * dims * per * 4),
  };
  await encodeSplineBackward(new ComputeBatch(dev), bufs, { n, dims, spec: s, stage }).run();
  const gU = await readFloat32(dev, bufs.gU, 0, n * dims);
  const gRaw = await readFloat32(dev, bufs.gRaw, 0, n * dims * per);
  for (const b of Object.values(bufs)) b.destroy();
  return { gU, gRaw };
}

// ---------------------------------------------------------------------------------------------
// Tolerances: rounding errors as perturbations of the reference's inputs
// ---------------------------------------------------------------------------------------------

/** One perturbed evaluation point: input value, the scalar's 3K - 1 raw parameters, spec. */
interface Point {
  x: number;
  local: Float64Array;
  spec: SplineSpec;
}

/** Knot rounding: a cumulative sum of K fractions (each ~6 ulp: exp, division, scaling) times 2B, plus the sum's own K roundings; x2 margin. */
const knotDelta = (s: SplineSpec) => 4 * (s.bins + 8) * EPS * s.bound;

/**
 * Pairs of points (minus, plus) around p, one pair per rounding-error source of the kernel:
 *  - the input shifted by `inputDelta` (the knots it is compared with are off by knotDelta);
 *  - minBinWidth, minBinHeight shifted by knotDelta / 2B: every bin width/height changes by up to
 *    knotDelta, i.e. the relative error knotDelta / w of a narrow bin, with its knots moving ~K times
 *    that (this dominates the logits' own rounding, a relative eps (|z| + ...) of each softmax share);
 *  - the interior derivatives' relative rounding (~8 eps): minDerivative by 8 eps of itself (for
 *    d ~ minD), and the derivative logits by 8 eps (|r| + 2) (for d ~ r), all with the same sign and
 *    with alternating signs (so d_k and d_{k+1} move both ways relative to each other).
 */
function perturbations(p: Point, inputDelta: number): [Point, Point][] {
  const s = p.spec;
  const K = s.bins;
  const dk = knotDelta(s);
  const withSpec = (key: 'minBinWidth' | 'minBinHeight' | 'minDerivative', d: number): [Point, Point] => [
    { ...p, spec: { ...s, [key]: s[key] - d } },
    { ...p, spec: { ...s, [key]: s[key] + d } },
  ];
  const derivLogits = (alternate: boolean): [Point, Point] => {
    const a = p.local.slice();
    const b = p.local.slice();
    for (let i = 2 * K; i < 3 * K - 1; i++) {
      const d = 8 * EPS * (Math.abs(p.local[i]) + 2) * (alternate && i % 2 ? -1 : 1);
      a[i] -= d;
      b[i] += d;
    }
    return [
      { ...p, local: a },
      { ...p, local: b },
    ];
  };
  const out: [Point, Point][] = [
    [
      { ...p, x: p.x - inputDelta },
      { ...p, x: p.x + inputDelta },
    ],
    withSpec('minBinWidth', dk / (2 * s.bound)),
    withSpec('minBinHeight', dk / (2 * s.bound)),
  ];
  if (s.minDerivative > 0) out.push(withSpec('minDerivative', 8 * EPS * s.minDerivative));
  if (K > 1) out.push(derivLogits(false), derivLogits(true));
  return out;
}

/**
 * Sum over the perturbation pairs of the largest change of fn (per component). With `sameBin`,
 * only the sides that stay in p's bin count (fn jumps across a knot: the parameter gradient), and
 * if neither does, the smaller change.
 */
function spread(fn: (p: Point) => Float64Array, p: Point, inputDelta: number, sameBin = false): { value: Float64Array; tol: Float64Array } {
  const value = fn(p);
  const tol = new Float64Array(value.length);
  const bin0 = sameBin ? binOf(p) : 0;
  for (const pair of perturbations(p, inputDelta)) {
    const sides = pair.map((q) => ({ ok: !sameBin || binOf(q) === bin0, v: fn(q) }));
    const ok = sides.filter((q) => q.ok);
    for (let i = 0; i < value.length; i++) {
      const d = sides.map((q) => Math.abs(q.v[i] - value[i]));
      tol[i] += ok.length ? Math.max(...ok.map((q) => Math.abs(q.v[i] - value[i]))) : Math.min(...d);
    }
  }
  return { value, tol };
}

/** Bin of p.x (-1 outside [-B, B]). */
function binOf(p: Point): number {
  if (!(Math.abs(p.x) <= p.spec.bound)) return -1;
  return searchBin(splineKnots(p.local, 0, p.spec).cw, p.spec.bins, p.x);
}

/** f64 values just on the other side of the nearest interior knot of q, if x is within tau of it. */
function otherSide(q: Float64Array, K: number, x: number, tau: number): number | null {
  let best = -1;
  for (let k = 1; k < K; k++) if (Math.abs(x - q[k]) <= tau && (best < 0 || Math.abs(x - q[k]) < Math.abs(x - q[best]))) best = k;
  if (best < 0) return null;
  const qk = q[best];
  // The reference puts a knot in the bin to its right: x >= q -> just left of q, else q itself.
  return x >= qk ? qk - Math.max(Math.abs(qk), 1e-300) * 2.3e-16 : qk;
}

const pointOf = (x: number, raw: Float32Array, off: number, s: SplineSpec): Point => ({ x, local: Float64Array.from(raw.subarray(off, off + splineRawPerScalar(s.bins))), spec: s });

/** Forward reference [y, log f'] and tolerances. */
function forwardRef(x: number, raw: Float32Array, off: number, s: SplineSpec): { y: number; L: number; tolY: number; tolL: number } {
  const fn = (p: Point) => {
    const r = splineForwardScalar(p.x, p.local, 0, p.spec);
    return Float64Array.of(r.out, r.logdet);
  };
  const { value, tol } = spread(fn, pointOf(x, raw, off, s), knotDelta(s));
  const inside = Math.abs(x) <= s.bound;
  return {
    y: value[0],
    L: value[1],
    // + the y-knot error itself, + the final formula's rounding (a few ulps of B).
    tolY: inside ? tol[0] + knotDelta(s) + 8 * EPS * s.bound : 0,
    // + two logs (absolute 2^-21 = 8 eps near 1, else 3 ulp) and a few ulps of dnum, den.
    tolL: inside ? tol[1] + 32 * EPS * (1 + Math.abs(value[1])) : 0,
  };
}

/** Inverse reference u and its tolerance. */
function inverseRef(y: number, raw: Float32Array, off: number, s: SplineSpec): { u: number; tolU: number } {
  const fn = (p: Point) => Float64Array.of(splineInverseScalar(p.x, p.local, 0, p.spec).out);
  const { value, tol } = spread(fn, pointOf(y, raw, off, s), knotDelta(s));
  const inside = Math.abs(y) <= s.bound;
  // + the x-knot error (u = x0 + xi w), + the root's own rounding (a few ulps of B).
  return { u: value[0], tolU: inside ? tol[0] + knotDelta(s) + 8 * EPS * s.bound : 0 };
}

/** Reference gradient (gU first, then gRaw) of one scalar. */
function gradFn(gY: number, gL: number): (p: Point) => Float64Array {
  return (p) => {
    const g = new Float64Array(p.local.length + 1);
    g[0] = splineBackwardScalar(p.x, p.local, 0, p.spec, gY, gL, g, 1);
    return g;
  };
}

/**
 * Candidates for one scalar's gradient: at x, and where x is within twice the knot error of a
 * knot, on the other side of it (its distance to x added to the input perturbation). Each with
 * its tolerance: the perturbation spread within the bin plus the backward's own rounding, 64 eps
 * times the magnitudes that cancel in it: the dL/dy and dL/dlogdet parts of each component
 * separately, and the scalar's largest such part (the softmax backward subtracts sum_j sm_j g_j).
 */
function gradRef(x: number, raw: Float32Array, off: number, s: SplineSpec, gY: number, gL: number): { g: Float64Array; tol: Float64Array }[] {
  const fn = gradFn(gY, gL);
  const p = pointOf(x, raw, off, s);
  const cand = (q: Point, dist: number) => {
    const { value, tol } = spread(fn, q, knotDelta(s) + dist, true);
    if (Math.abs(q.x) <= s.bound) {
      const a = gradFn(gY, 0)(q);
      const b = gradFn(0, gL)(q);
      let big = 0;
      for (let i = 0; i < tol.length; i++) big = Math.max(big, Math.abs(a[i]) + Math.abs(b[i]));
      for (let i = 0; i < tol.length; i++) tol[i] += 64 * EPS * (Math.abs(a[i]) + Math.abs(b[i]) + big);
    }
    return { g: value, tol };
  };
  const out = [cand(p, 0)];
  if (Math.abs(x) <= s.bound) {
    const alt = otherSide(splineKnots(p.local, 0, s).cw, s.bins, x, 2 * knotDelta(s));
    if (alt !== null) out.push(cand({ ...p, x: alt }, Math.abs(alt - x)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Comparison against the reference over a case
// ---------------------------------------------------------------------------------------------

/** Worst err / tol over a set, with where it happened (for messages), and the largest absolute error. */
class Worst {
  ratio = 0;
  where = '';
  maxAbs = 0;
  /** Largest |err| / (1 + |want|). */
  maxRel = 0;
  push(got: number, want: number, tol: number, where: string | (() => string)): void {
    const err = Math.abs(got - want);
    const ratio = Number.isNaN(err) ? Infinity : err === 0 ? 0 : err / tol;
    if (err > this.maxAbs) this.maxAbs = err;
    if (err / (1 + Math.abs(want)) > this.maxRel) this.maxRel = err / (1 + Math.abs(want));
    if (ratio > this.ratio) {
      this.ratio = ratio;
      this.where = `${typeof where === 'string' ? where : where()}: got ${got}, want ${want}, |err| ${err.toExponential(2)}, tol ${tol.toExponential(2)}`;
    }
  }
}

interface CaseResult {
  y: Worst;
  ldF: Worst;
  u: Worst;
  ldI: Worst;
  grad: Worst;
}

async function runCase(n: number, D: number, s: SplineSpec, rawScale: number, seed: number, withGrad = true): Promise<CaseResult> {
  const K = s.bins;
  const per = splineRawPerScalar(K);
  const m = n * D;
  const raw = normals(m * per, seed, rawScale);
  const u = spreadInputs(m, raw, s, 'cw', seed + 1);
  const yIn = spreadInputs(m, raw, s, 'ch', seed + 2);
  const fw = await gpuMap('forward', n, D, s, u, raw);
  const inv = await gpuMap('inverse', n, D, s, yIn, raw);
  const res: CaseResult = { y: new Worst(), ldF: new Worst(), u: new Worst(), ldI: new Worst(), grad: new Worst() };
  for (let row = 0; row < n; row++) {
    let ldF = 0, tolF = 0, ldI = 0, tolI = 0;
    for (let j = 0; j < D; j++) {
      const e = row * D + j;
      const f = forwardRef(u[e], raw, e * per, s);
      res.y.push(fw.out[e], f.y, f.tolY, () => `forward y, scalar ${e}, u = ${u[e]}`);
      ldF += f.L;
      tolF += f.tolL;
      const g = inverseRef(yIn[e], raw, e * per, s);
      res.u.push(inv.out[e], g.u, g.tolU, () => `inverse u, scalar ${e}, y = ${yIn[e]}`);
      // The inverse's logdet is the forward's log f' at the u it returned (consistency; u itself is
      // checked above): near a 1e-3 derivative log f' varies on the scale of u's own rounding.
      const c = forwardRef(inv.out[e], raw, e * per, s);
      ldI += c.L;
      tolI += c.tolL;
    }
    res.ldF.push(fw.logdet[row], ldF, tolF, `forward logdet, row ${row}`);
    res.ldI.push(inv.logdet[row], ldI, tolI, `inverse logdet, row ${row}`);
  }
  if (withGrad) {
    const gY = normals(m, seed + 3, 1);
    const gL = normals(n, seed + 4, 1);
    // Both backward paths: direct, and staged through workgroup memory where K allows.
    const variants: { stage: boolean; g: { gU: Float32Array; gRaw: Float32Array } }[] = [];
    for (const stage of splineStaged(K) ? [false, true] : [false]) variants.push({ stage, g: await gpuBackward(n, D, s, u, raw, gY, gL, stage) });
    for (let e = 0; e < m; e++) {
      const cands = gradRef(u[e], raw, e * per, s, gY[e], gL[Math.floor(e / D)]);
      for (const { stage, g: gpu } of variants) {
        const got = (i: number) => (i === 0 ? gpu.gU[e] : gpu.gRaw[e * per + i - 1]);
        // The candidate (side of a knot) that fits best decides; within it, the worst component.
        let best: { ratio: number; i: number; g: Float64Array; tol: Float64Array } | null = null;
        for (const c of cands) {
          let ratio = 0, at = 0;
          for (let i = 0; i <= per; i++) {
            const err = Math.abs(got(i) - c.g[i]);
            const r = Number.isNaN(err) ? Infinity : err === 0 ? 0 : err / c.tol[i];
            if (r > ratio) { ratio = r; at = i; }
          }
          if (!best || ratio < best.ratio) best = { ratio, i: at, ...c };
        }
        const b = best!;
        res.grad.push(got(b.i), b.g[b.i], b.tol[b.i], () => `gradient (${stage ? 'staged' : 'direct'}), scalar ${e}, u = ${u[e]}, component ${b.i} (0 = dL/du, else raw ${b.i - 1})`);
      }
    }
  }
  return res;
}

const LS = 1 / Math.sqrt(50); // nflows' logit scale for 50 hidden units (sbi's default)

const fmt = (w: Worst) => `worst err/tol ${w.ratio.toPrecision(3)} at ${w.where}`;

describe('RQ spline kernels vs the float64 reference', () => {
  // [n, dims, K, B, logit std, odd minimums]: every n in {1, 257, 4099}, dims in {1, 3, 8}, K in
  // {2, 5, 10}, B in {3, 5}, logits ~ N(0, 0.1^2) and N(0, 10^2) (width/height logits times
  // 1/sqrt(50), as the flow; derivative logits unscaled: d from minD to ~30).
  const cases: [number, number, number, number, number, boolean][] = [
    [1, 1, 2, 3, 0.1, false],
    [1, 8, 10, 5, 10, false],
    [257, 3, 5, 3, 10, true],
    [257, 8, 10, 5, 0.1, false],
    [257, 3, 2, 5, 10, false],
    [4099, 1, 10, 3, 10, false],
    [4099, 8, 2, 5, 0.1, true],
    [4099, 3, 5, 3, 0.1, false],
  ];
  for (const [n, D, K, B, rs, odd] of cases) {
    const mins = odd ? ODD_MINS : undefined;
    it(`n=${n} dims=${D} K=${K} B=${B} logits ~N(0, ${rs}^2)${odd ? ' min w/h/d 2e-3/5e-4/1e-2' : ''}: forward, inverse, backward`, { timeout: 300_000 }, async () => {
      const r = await runCase(n, D, spec(K, B, LS, mins), rs, 100 * K + D + n);
      expect(r.y.ratio, fmt(r.y)).toBeLessThanOrEqual(1);
      expect(r.ldF.ratio, fmt(r.ldF)).toBeLessThanOrEqual(1);
      expect(r.u.ratio, fmt(r.u)).toBeLessThanOrEqual(1);
      expect(r.ldI.ratio, fmt(r.ldI)).toBeLessThanOrEqual(1);
      expect(r.grad.ratio, fmt(r.grad)).toBeLessThanOrEqual(1);
      if (rs === 0.1) {
        // Near-uniform bins, derivatives ~0.7: well conditioned everywhere, so plain bounds hold:
        // y and u within 1e-6 B (~12 ulp of B: K-term knot sums), logdet within 1e-5 per dim,
        // gradients within 2e-5 (1 + |g|).
        expect(r.y.maxAbs).toBeLessThanOrEqual(1e-6 * B);
        expect(r.u.maxAbs).toBeLessThanOrEqual(1e-6 * B);
        expect(r.ldF.maxAbs).toBeLessThanOrEqual(1e-5 * D);
        expect(r.ldI.maxAbs).toBeLessThanOrEqual(1e-5 * D);
        expect(r.grad.maxRel).toBeLessThanOrEqual(2e-5);
      }
    });
  }

  it('more dims than threads per workgroup (dims = 67: one sample per group, lanes loop)', async () => {
    const r = await runCase(37, 67, spec(3, 3, LS), 10, 7);
    for (const w of [r.y, r.ldF, r.u, r.ldI, r.grad]) expect(w.ratio, fmt(w)).toBeLessThanOrEqual(1);
  });

  it('K = 21 (the largest staged backward: 15.9 KiB of workgroup memory) and K = 24 (direct only)', async () => {
    expect(splineStaged(21)).toBe(true);
    expect(splineStaged(22)).toBe(false);
    for (const K of [21, 24]) {
      const r = await runCase(45, 3, spec(K, 3, LS), 3, 8 + K);
      for (const w of [r.y, r.ldF, r.u, r.ldI, r.grad]) expect(w.ratio, fmt(w)).toBeLessThanOrEqual(1);
    }
  });

  it('extreme logits (softmax logits ~N(0, 100), min-width bins next to 1e-3 derivatives): values within their f32 conditioning', async () => {
    // Gradients are not compared here: next to a knot with d = 1e-3 and s ~ 1e3 they change by
    // orders of magnitude within one ulp of x (f32 noise by construction); they are checked for
    // finiteness in the tails test.
    for (const [n, D, K, B] of [
      [257, 3, 10, 3],
      [257, 8, 2, 5],
    ]) {
      const r = await runCase(n, D, spec(K, B, 1), 10, 31 + K, false);
      for (const w of [r.y, r.ldF, r.u, r.ldI]) expect(w.ratio, fmt(w)).toBeLessThanOrEqual(1);
    }
  });
});

describe('RQ spline kernels: tails, extremes, edges', () => {
  it('identity outside [-B, B] (exactly), finite everywhere with logits up to 1e30 and derivative logits up to 1e4', async () => {
    const K = 5, B = 3, n = 96, D = 4, per = splineRawPerScalar(K);
    const s = spec(K, B, 1);
    const r = mulberry32(5);
    const wild = [1e30, -1e30, 1e4, -1e4, 80, -80, 0];
    const raw = normals(n * D * per, 6, 10);
    for (let i = 0; i < raw.length; i++) {
      const inDeriv = i % per >= 2 * K;
      if (r() < 0.3) raw[i] = inDeriv ? [1e4, -1e4, 80, -80][Math.floor(r() * 4)] : wild[Math.floor(r() * wild.length)];
    }
    const special = [-1e30, 1e30, -1e3, 1e3, -B - 1e-3, B + 1e-3, nextF32(-B, -1), nextF32(B, 1), -B, B, nextF32(-B, 1), nextF32(B, -1), 0];
    const u = new Float32Array(n * D);
    for (let e = 0; e < u.length; e++) {
      const q = splineKnots(raw, e * per, s).cw;
      u[e] = e % 3 === 0 ? special[(e / 3) % special.length] : e % 3 === 1 ? q[(e >> 2) % (K + 1)] : (2 * r() - 1) * B;
    }
    // Rows 0..7: every dim outside (their logdet must be exactly 0).
    for (let e = 0; e < 8 * D; e++) u[e] = [-1e30, 1e30, -1e3, 1e3, -B - 1e-3, B + 1e-3, nextF32(-B, -1), nextF32(B, 1)][e % 8];
    const outside = (v: number) => !(Math.abs(v) <= B);
    const fw = await gpuMap('forward', n, D, s, u, raw);
    const inv = await gpuMap('inverse', n, D, s, u, raw);
    const gY = normals(n * D, 8, 1);
    const gL = normals(n, 9, 1);
    const bw = await gpuBackward(n, D, s, u, raw, gY, gL);
    for (let e = 0; e < n * D; e++) {
      for (const [name, out] of [['forward', fw.out], ['inverse', inv.out]] as const) {
        if (outside(u[e])) expect(out[e], `${name} tail, scalar ${e}`).toBe(u[e]);
        else expect(Math.abs(out[e]), `${name} inside, scalar ${e}, u = ${u[e]}`).toBeLessThanOrEqual(B);
      }
      expect(Number.isFinite(bw.gU[e]), `gU finite, scalar ${e}`).toBe(true);
      if (outside(u[e])) {
        expect(bw.gU[e]).toBe(gY[e]);
        for (let i = 0; i < per; i++) expect(bw.gRaw[e * per + i], `gRaw tail, scalar ${e}`).toBe(0);
      } else {
        for (let i = 0; i < per; i++) expect(Number.isFinite(bw.gRaw[e * per + i]), `gRaw finite, scalar ${e}, param ${i}`).toBe(true);
      }
    }
    for (let row = 0; row < n; row++) {
      expect(Number.isFinite(fw.logdet[row]) && Number.isFinite(inv.logdet[row]), `logdet finite, row ${row}`).toBe(true);
      if (row < 8) {
        expect(fw.logdet[row]).toBe(0);
        expect(inv.logdet[row]).toBe(0);
      }
    }
  });

  it('log f at a knot is log d_k, down to d = minD (softplus with an accurate log1p)', async () => {
    // K = 4 equal bins on [-2, 2] with min width/height 2^-10: every knot and fraction is exact in
    // f32, so at a knot xi = 0 and s = 1 exactly and log f = log(s^2 d_k) - 2 log(s) = log d_k.
    const K = 4, per = splineRawPerScalar(K), minD = 1e-3;
    const s: SplineSpec = { bins: K, bound: 2, minBinWidth: 2 ** -10, minBinHeight: 2 ** -10, minDerivative: minD, logitScale: LS };
    const rs = [-60, -30, -20, -15, -10, -5, -2, 0, 2, 5, 10, 20, 40];
    const knots = [-1, 0, 1];
    const m = rs.length * knots.length;
    const raw = new Float32Array(m * per);
    const x = new Float32Array(m);
    for (let i = 0; i < rs.length; i++)
      for (let j = 0; j < knots.length; j++) {
        const e = i * knots.length + j;
        raw.fill(rs[i], e * per + 2 * K, (e + 1) * per);
        x[e] = knots[j];
      }
    const fw = await gpuMap('forward', m, 1, s, x, raw);
    for (let e = 0; e < m; e++) {
      const r = raw[e * per + 2 * K];
      const want = Math.log(minD + Math.max(r, 0) + Math.log1p(Math.exp(-Math.abs(r))));
      expect(fw.out[e], `y at knot ${x[e]}`).toBe(x[e]);
      // d to a few ulps, then log (3 ulp of |log d|, absolute 2^-21 near 1).
      expect(Math.abs(fw.logdet[e] - want), `log d at r = ${r}`).toBeLessThanOrEqual(8 * EPS * (1 + Math.abs(want)) + 2 ** -21);
    }
  });

  it('monotone and continuous across bin edges (2001-point sweeps, extreme and moderate logits)', async () => {
    const K = 10, B = 3, per = splineRawPerScalar(K), pts = 2001, sets = 6;
    for (const [ls, rs] of [[LS, 10], [1, 10]]) {
      const s = spec(K, B, ls);
      const base = normals(sets * per, 40 + rs, rs);
      const raw = new Float32Array(sets * pts * per);
      const x = new Float32Array(sets * pts);
      for (let k = 0; k < sets; k++)
        for (let i = 0; i < pts; i++) {
          raw.set(base.subarray(k * per, (k + 1) * per), (k * pts + i) * per);
          x[k * pts + i] = -B * 1.01 + (2.02 * B * i) / (pts - 1);
        }
      const fw = await gpuMap('forward', sets * pts, 1, s, x, raw);
      const inv = await gpuMap('inverse', sets * pts, 1, s, x, raw);
      for (let k = 0; k < sets; k++)
        for (let i = 1; i < pts; i++) {
          const e = k * pts + i;
          // Within a bin each formula is monotone; f32 may round a flat stretch down by an ulp of B.
          expect(fw.out[e], `forward sweep ${k}, x = ${x[e]}`).toBeGreaterThanOrEqual(fw.out[e - 1] - 2 * EPS * 2 * B);
          expect(inv.out[e], `inverse sweep ${k}, y = ${x[e]}`).toBeGreaterThanOrEqual(inv.out[e - 1] - 2 * EPS * 2 * B);
        }
    }
  });

  it('inverse(forward(u)) = u, and the inverse reports the forward logdet at the recovered u', async () => {
    for (const [n, D, K, B, ls, rs] of [
      [300, 3, 10, 3, LS, 10],
      [300, 3, 5, 5, 1, 10],
    ]) {
      const s = spec(K, B, ls);
      const per = splineRawPerScalar(K);
      const raw = normals(n * D * per, 50 + K, rs);
      const u = spreadInputs(n * D, raw, s, 'cw', 51 + K);
      const fw = await gpuMap('forward', n, D, s, u, raw);
      const back = await gpuMap('inverse', n, D, s, fw.out, raw);
      const wu = new Worst();
      const wl = new Worst();
      for (let row = 0; row < n; row++) {
        let tolRow = 0;
        for (let j = 0; j < D; j++) {
          const e = row * D + j;
          const f = forwardRef(u[e], raw, e * per, s);
          // The forward's output is within tolY of f(u), so f^-1 of it is within the reference's own
          // f^-1(f(u) +- tolY) of u (monotone); the inverse adds its tolU at that y.
          const lo = splineInverseScalar(f.y - f.tolY, raw, e * per, s).out;
          const hi = splineInverseScalar(f.y + f.tolY, raw, e * per, s).out;
          const tol = inverseRef(fw.out[e], raw, e * per, s).tolU + Math.max(Math.abs(lo - u[e]), Math.abs(hi - u[e]));
          wu.push(back.out[e], u[e], tol, `roundtrip, scalar ${e}, u = ${u[e]}`);
          const g = forwardRef(back.out[e], raw, e * per, s);
          tolRow += f.tolL + g.tolL + Math.abs(g.L - f.L);
        }
        wl.push(back.logdet[row], fw.logdet[row], tolRow, `roundtrip logdet, row ${row}`);
      }
      expect(wu.ratio, fmt(wu)).toBeLessThanOrEqual(1);
      // Extreme logits: log f' near a 1e-3 knot derivative is pure f32 noise (the single checks
      // above already reach ~0.5 of their tolerance there, and this one adds two of them).
      if (ls !== 1) expect(wl.ratio, fmt(wl)).toBeLessThanOrEqual(1);
    }
  });
});

describe('RQ spline kernels: logdet accumulation, strided layouts, validation', () => {
  it('accumulate adds to the existing logdet; otherwise it is overwritten', async () => {
    const n = 100, D = 3, K = 4, s = spec(K, 3, LS);
    const raw = normals(n * D * splineRawPerScalar(K), 60, 3);
    const u = normals(n * D, 61, 2);
    const init = normals(n, 62, 5);
    for (const dir of ['forward', 'inverse'] as const) {
      const fresh = await gpuMap(dir, n, D, s, u, raw, { initialLogdet: new Float32Array(n).fill(Number.NaN) });
      const acc = await gpuMap(dir, n, D, s, u, raw, { accumulate: true, initialLogdet: init });
      for (let row = 0; row < n; row++) {
        expect(Number.isFinite(fresh.logdet[row])).toBe(true);
        // Same per-sample sum (same code, same order), then one f32 addition.
        expect(acc.logdet[row], `${dir} row ${row}`).toBe(Math.fround(init[row] + fresh.logdet[row]));
      }
      expect(acc.out).toEqual(fresh.out);
    }
  });

  it('serial (one thread per sample, no barrier: CPU drivers) = the lane version bit for bit, dims 1 .. 64', async () => {
    for (const [n, D, K] of [[1, 1, 4], [65, 3, 10], [257, 6, 10], [9, 64, 5]]) {
      const s = spec(K, 3, LS);
      const raw = normals(n * D * splineRawPerScalar(K), 80 + D, 3);
      const u = spreadInputs(n * D, raw, s, 'cw', 81 + D);
      const init = normals(n, 82, 5);
      for (const dir of ['forward', 'inverse'] as const) {
        for (const accumulate of [false, true]) {
          const o = { accumulate, initialLogdet: init };
          const lanes = await gpuMap(dir, n, D, s, u, raw, o);
          const serial = await gpuMap(dir, n, D, s, u, raw, { ...o, serial: true });
          expect(serial.out, `${dir} n=${n} D=${D}`).toEqual(lanes.out);
          expect(serial.logdet, `${dir} n=${n} D=${D} logdet`).toEqual(lanes.logdet);
        }
      }
    }
  });

  it('strided rows (columns of wider matrices) give bit-identical results to dense ones and touch nothing else', async () => {
    const dev = ctx.device;
    const n = 33, D = 3, K = 6, s = spec(K, 3, LS), per = splineRawPerScalar(K);
    const raw = normals(n * D * per, 70, 3);
    const u = spreadInputs(n * D, raw, s, 'cw', 71);
    const gY = normals(n * D, 72, 1);
    const gL = normals(n, 73, 1);
    const embed = (x: Float32Array, l: RowLayout, fill: number) => {
      const m = new Float32Array(n * l.stride).fill(fill);
      for (let r = 0; r < n; r++) for (let j = 0; j < D; j++) m[r * l.stride + l.offset + j] = x[r * D + j];
      return m;
    };
    const inL = { stride: 7, offset: 2 }, outL = { stride: 9, offset: 4 }, gyL = { stride: 6, offset: 1 }, guL = { stride: 8, offset: 5 };
    const SENT = -7.25;
    for (const dir of ['forward', 'inverse'] as const) {
      const dense = await gpuMap(dir, n, D, s, u, raw);
      const X = uploadBuffer(dev, embed(u, inL, 1e30));
      const R = uploadBuffer(dev, raw);
      const Y = uploadBuffer(dev, new Float32Array(n * outL.stride).fill(SENT));
      const L = createStorageBuffer(dev, n * 4);
      const shape = { n, dims: D, spec: s, input: inL, output: outL };
      const batch = new ComputeBatch(dev);
      if (dir === 'forward') encodeSplineForward(batch, { u: X, raw: R, y: Y, logdet: L }, shape);
      else encodeSplineInverse(batch, { y: X, raw: R, u: Y, logdet: L }, shape);
      await batch.run();
      expect(await readFloat32(dev, Y, 0, n * outL.stride)).toEqual(embed(dense.out, outL, SENT));
      expect(await readFloat32(dev, L, 0, n)).toEqual(dense.logdet);
      for (const b of [X, R, Y, L]) b.destroy();
    }
    const dense = await gpuBackward(n, D, s, u, raw, gY, gL);
    const bufs = {
      u: uploadBuffer(dev, embed(u, inL, 1e30)),
      raw: uploadBuffer(dev, raw),
      gY: uploadBuffer(dev, embed(gY, gyL, 1e30)),
      gLogdet: uploadBuffer(dev, gL),
      gU: uploadBuffer(dev, new Float32Array(n * guL.stride).fill(SENT)),
      gRaw: createStorageBuffer(dev, n * D * per * 4),
    };
    await encodeSplineBackward(new ComputeBatch(dev), bufs, { n, dims: D, spec: s, u: inL, gY: gyL, gU: guL }).run();
    expect(await readFloat32(dev, bufs.gU, 0, n * guL.stride)).toEqual(embed(dense.gU, guL, SENT));
    expect(await readFloat32(dev, bufs.gRaw, 0, n * D * per)).toEqual(dense.gRaw);
    for (const b of Object.values(bufs)) b.destroy();
  });

  it('rejects bad shapes and specs with the offending key', () => {
    const s = spec(10, 3, LS);
    expect(() => splineForwardProgram({ n: 0, dims: 1, spec: s })).toThrow(/n must be/);
    expect(() => splineForwardProgram({ n: 1, dims: 1, spec: { ...s, bins: 0 } })).toThrow(/bins/);
    expect(() => splineForwardProgram({ n: 1, dims: 1, spec: { ...s, bound: -1 } })).toThrow(/bound/);
    expect(() => splineForwardProgram({ n: 1, dims: 1, spec: { ...s, minBinWidth: 0.1 } })).toThrow(/minBinWidth/);
    expect(() => splineForwardProgram({ n: 1, dims: 1, spec: { ...s, minBinHeight: 0 } })).toThrow(/minBinHeight/);
    expect(() => splineForwardProgram({ n: 1, dims: 1, spec: { ...s, logitScale: 0 } })).toThrow(/logitScale/);
    expect(() => splineForwardProgram({ n: 2, dims: 3, spec: s, input: { stride: 3, offset: 1 } })).toThrow(/input layout/);
    expect(() => splineBackwardProgram({ n: 2, dims: 3, spec: s, gU: { stride: 2, offset: 0 } })).toThrow(/gU layout/);
    expect(() => splineBackwardProgram({ n: 1, dims: 1, spec: spec(22, 3, LS), stage: true })).toThrow(/stage needs bins <= 21/);
  });
});

describe('RQ spline backward vs finite differences of the GPU forward', () => {
  it('directional derivatives of sum(a y) + sum(b logdet) along u and each parameter group', async () => {
    const n = 16, D = 3, K = 5, B = 3, s = spec(K, B, LS), per = splineRawPerScalar(K), m = n * D;
    const raw = normals(m * per, 80, 1);
    // Points in the middle half of a bin, so that +-h moves neither them nor the knots across an edge.
    const r = mulberry32(81);
    const u = new Float32Array(m);
    for (let e = 0; e < m; e++) {
      const q = splineKnots(raw, e * per, s).cw;
      const k = Math.floor(r() * K);
      u[e] = q[k] + (0.25 + 0.5 * r()) * (q[k + 1] - q[k]);
    }
    const a = normals(m, 82, 1);
    const b = normals(n, 83, 1);
    const gpuGrad = await gpuBackward(n, D, s, u, raw, a, b);
    // Steps: rounding noise ~ tol / h against truncation ~ h^2 (measured on the reference); the
    // logit steps move knots by < 0.1 of a bin here.
    const groups: [string, number, (i: number) => boolean][] = [
      ['u', 1e-2, () => false],
      ['width logits', 1e-1, (i) => i % per < K],
      ['height logits', 1e-1, (i) => i % per >= K && i % per < 2 * K],
      ['derivative logits', 1e-1, (i) => i % per >= 2 * K],
    ];
    for (const [name, h, inGroup] of groups) {
      const vu = name === 'u' ? normals(m, 84, 1) : new Float32Array(m);
      const vr = normals(m * per, 85, 1).map((v, i) => (inGroup(i) ? v : 0));
      const shifted = (sign: number) => ({
        u: Float32Array.from(u, (v, i) => v + sign * h * vu[i]),
        raw: Float32Array.from(raw, (v, i) => v + sign * h * vr[i]),
      });
      const loss = (y: ArrayLike<number>, ld: ArrayLike<number>) => {
        let L = 0;
        for (let e = 0; e < m; e++) L += a[e] * y[e];
        for (let row = 0; row < n; row++) L += b[row] * ld[row];
        return L;
      };
      const P = shifted(1), M = shifted(-1);
      for (let e = 0; e < m; e++) {
        const bin = (x: { u: Float32Array; raw: Float32Array }) => splineForwardScalar(x.u[e], x.raw, e * per, s).bin;
        expect(bin(P), `${name}: the step moves scalar ${e} across a knot`).toBe(bin(M));
      }
      const fp = await gpuMap('forward', n, D, s, P.u, P.raw);
      const fm = await gpuMap('forward', n, D, s, M.u, M.raw);
      const fdGpu = (loss(fp.out, fp.logdet) - loss(fm.out, fm.logdet)) / (2 * h);
      // Reference: the same difference in float64 (its deviation from the exact directional
      // derivative is the truncation error at this h) and the exact directional derivative.
      const refLoss = (x: { u: Float32Array; raw: Float32Array }) => {
        let L = 0;
        for (let e = 0; e < m; e++) {
          const f = splineForwardScalar(x.u[e], x.raw, e * per, s);
          L += a[e] * f.out + b[Math.floor(e / D)] * f.logdet;
        }
        return L;
      };
      const fdRef = (refLoss(P) - refLoss(M)) / (2 * h);
      let ddGpu = 0, ddRef = 0, gradTol = 0, roundTol = 0;
      for (let e = 0; e < m; e++) {
        const row = Math.floor(e / D);
        ddGpu += gpuGrad.gU[e] * vu[e];
        for (let i = 0; i < per; i++) ddGpu += gpuGrad.gRaw[e * per + i] * vr[e * per + i];
        const [c] = gradRef(u[e], raw, e * per, s, a[e], b[row]);
        ddRef += c.g[0] * vu[e];
        gradTol += c.tol[0] * Math.abs(vu[e]);
        for (let i = 0; i < per; i++) {
          ddRef += c.g[i + 1] * vr[e * per + i];
          gradTol += c.tol[i + 1] * Math.abs(vr[e * per + i]);
        }
        // The two GPU forwards' rounding (tolerances of the reference check), over 2h.
        const f = forwardRef(u[e], raw, e * per, s);
        roundTol += (2 * (Math.abs(a[e]) * f.tolY + Math.abs(b[row]) * f.tolL)) / (2 * h);
      }
      const tol = roundTol + 2 * Math.abs(fdRef - ddRef) + gradTol;
      expect(Math.abs(fdGpu - ddGpu), `${name}: FD ${fdGpu}, backward ${ddGpu} (reference ${ddRef}), tol ${tol}`).toBeLessThanOrEqual(tol);
      // The check is only meaningful if the tolerance is well below the derivative itself.
      expect(tol, name).toBeLessThan(0.05 * Math.abs(ddRef));
    }
  });
});
