/** Float64 CPU references for the linear-algebra kernels (the ground truth in tests and benches). */

export interface GemmRefShape {
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
}

/**
 * C = alpha * op(A) op(B) + beta * C0 + bias (row vector), all float64, M x N.
 * `rowStart`/`rowEnd` limit the work to a row range (other rows stay 0).
 */
export function gemmRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  s: GemmRefShape,
  opts: { bias?: ArrayLike<number>; c0?: ArrayLike<number>; rowStart?: number; rowEnd?: number } = {},
): Float64Array {
  const rows = [];
  for (let m = opts.rowStart ?? 0; m < (opts.rowEnd ?? s.M); m++) rows.push(m);
  const picked = gemmRefRows(a, b, s, rows, opts);
  const c = new Float64Array(s.M * s.N);
  rows.forEach((m, i) => c.set(picked.subarray(i * s.N, (i + 1) * s.N), m * s.N));
  return c;
}

/** The listed rows of C = alpha op(A) op(B) + beta C0 + bias, as a rows.length x N array. Loop order i-k-j. */
export function gemmRefRows(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  s: GemmRefShape,
  rows: readonly number[],
  opts: { bias?: ArrayLike<number>; c0?: ArrayLike<number> } = {},
): Float64Array {
  const { M, N, K } = s;
  const alpha = s.alpha ?? 1;
  const beta = s.beta ?? 0;
  const out = new Float64Array(rows.length * N);
  // Dense float64 copy of op(B) as K x N so the inner loop is contiguous.
  const bk = new Float64Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) bk[k * N + n] = s.transB ? b[n * K + k] : b[k * N + n];
  const row = new Float64Array(N);
  rows.forEach((m, i) => {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const av = s.transA ? a[k * M + m] : a[m * K + k];
      if (av === 0) continue;
      const off = k * N;
      for (let n = 0; n < N; n++) row[n] += av * bk[off + n];
    }
    for (let n = 0; n < N; n++) {
      let v = alpha * row[n];
      if (beta !== 0 && opts.c0) v += beta * opts.c0[m * N + n];
      if (opts.bias) v += opts.bias[n];
      out[i * N + n] = v;
    }
  });
  return out;
}

/**
 * Entry-wise f32 error bound for a dot product of length K accumulated in f32 with FMA:
 * |fl(sum) - sum| <= gamma_K * sum |a_k b_k|, gamma_K = K u / (1 - K u), u = 2^-24 (Higham, 3.1).
 * Returns gamma_K * (|alpha| |op(A)| |op(B)|)_mn for every entry, plus the rounding of the
 * epilogue (bias/beta add: 2 more roundings of the result's magnitude).
 */
export function gemmErrorBound(a: ArrayLike<number>, b: ArrayLike<number>, s: GemmRefShape, opts: { bias?: ArrayLike<number>; c0?: ArrayLike<number> } = {}): Float64Array {
  const absA = Float64Array.from(a as ArrayLike<number>, Math.abs);
  const absB = Float64Array.from(b as ArrayLike<number>, Math.abs);
  const absShape = { ...s, alpha: Math.abs(s.alpha ?? 1), beta: Math.abs(s.beta ?? 0) };
  const mag = gemmRef(absA, absB, absShape, {
    bias: opts.bias ? Float64Array.from(opts.bias, Math.abs) : undefined,
    c0: opts.c0 ? Float64Array.from(opts.c0, Math.abs) : undefined,
  });
  const u = 2 ** -24;
  const gamma = ((s.K + 3) * u) / (1 - (s.K + 3) * u);
  return mag.map((v) => gamma * v);
}

export type ReduceOp = 'sum' | 'max' | 'logsumexp';

/** Row-wise reduction of a rows x cols matrix. */
export function reduceRowsRef(x: ArrayLike<number>, rows: number, cols: number, op: ReduceOp): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    if (op === 'sum') {
      let s = 0;
      for (let c = 0; c < cols; c++) s += x[o + c];
      out[r] = s;
    } else {
      let mx = -Infinity;
      for (let c = 0; c < cols; c++) mx = Math.max(mx, x[o + c]);
      if (op === 'max') out[r] = mx;
      else {
        let s = 0;
        for (let c = 0; c < cols; c++) s += Math.exp(x[o + c] - mx);
        out[r] = mx + Math.log(s);
      }
    }
  }
  return out;
}

/** Deterministic f32-representable test data in [-1, 1) from a seed (mulberry32). */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = scale * ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1);
  }
  return out;
}

/** max |x - ref| / max |ref| (normwise relative error). */
export function normwiseRelError(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(x[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return den === 0 ? num : num / den;
}
