/**
 * Seeded train/validation split and per-epoch shuffles, both pure functions of (seed, ...) built on
 * the counter-based Philox streams (DESIGN.md: every stream derives from (seed, purpose, index)).
 *
 * Split: row r gets the key u(seed, TrainRngPurpose.split, r); the nVal rows with the smallest keys
 * form the validation set (ties broken by row). A row's key does not depend on n, so the split is
 * stable under chunking and exact in size: nVal = round(n * valFraction), at least 1 and at most n - 1.
 *
 * Shuffle: position i of epoch e reads training row train[perm_e(i)], with perm_e a keyed bijection
 * of [0, n) (a 6-round balanced Feistel network on the next even power of two >= n, cycle-walking
 * back into [0, n)). Every position is computed independently from (seed, epoch, i) with 32-bit
 * integer operations only (Math.imul / u32 in WGSL), so a GPU kernel draws the same mini-batches
 * without any sort or host upload:
 *   bits  = max(2, ceil(log2 n)) rounded up to even, half = bits / 2, mask = 2^half - 1
 *   keys  = words 0..3 of philox(seed, shuffle, 2e) and words 0..1 of philox(seed, shuffle, 2e + 1)
 *   round r: (L, R) <- (R, L xor (hash32(R xor key_r) and mask)),  x = L * 2^half + R
 *   hash32 = "lowbias32" (C. Wellons): x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16
 *   repeat the network on x while x >= n (at most a few times: 2^bits < 4n)
 */
import { randomWords, uniform } from '../flow/rng.js';
import { RngPurpose as SimRngPurpose } from '../simulate/rng.js';

/** Philox purposes of training and inference, from the project-wide registry in src/simulate/rng.ts. */
export const TrainRngPurpose = {
  split: SimRngPurpose.split,
  shuffle: SimRngPurpose.shuffle,
  posterior: SimRngPurpose.posterior,
  mixture: SimRngPurpose.mixture,
} as const;

export interface TrainValSplit {
  /** Training rows, increasing. */
  train: Uint32Array;
  /** Validation rows, increasing. */
  val: Uint32Array;
}

/** Number of validation rows for n rows (see the module comment). */
export function validationSize(n: number, valFraction: number): number {
  if (!(valFraction > 0 && valFraction < 1)) throw new RangeError(`valFraction must be in (0, 1), got ${valFraction}`);
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`need at least 2 rows to split into training and validation sets, got ${n}`);
  return Math.min(n - 1, Math.max(1, Math.round(n * valFraction)));
}

export function splitTrainVal(n: number, valFraction: number, seed: number): TrainValSplit {
  const nVal = validationSize(n, valFraction);
  const keys = new Float64Array(n);
  for (let r = 0; r < n; r++) keys[r] = uniform(seed, TrainRngPurpose.split, r);
  const idx = new Uint32Array(n);
  for (let r = 0; r < n; r++) idx[r] = r;
  idx.sort((a, b) => keys[a] - keys[b] || a - b);
  const val = idx.slice(0, nVal).sort();
  const isVal = new Uint8Array(n);
  for (const r of val) isVal[r] = 1;
  const train = new Uint32Array(n - nVal);
  let k = 0;
  for (let r = 0; r < n; r++) if (!isVal[r]) train[k++] = r;
  return { train, val };
}

export function hash32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

export const FEISTEL_ROUNDS = 6;

/** The keyed bijection of [0, n) for (seed, epoch): perm(i) for i in [0, n). */
export class EpochPermutation {
  readonly n: number;
  readonly half: number;
  readonly mask: number;
  readonly keys: Uint32Array;

  constructor(seed: number, epoch: number, n: number) {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`EpochPermutation: n must be an integer in [1, 2^32], got ${n}`);
    let bits = Math.max(2, Math.ceil(Math.log2(n)));
    if (2 ** bits < n) bits++; // guard against log2 rounding
    if (bits % 2) bits++;
    this.n = n;
    this.half = bits / 2;
    this.mask = 2 ** this.half - 1;
    const a = randomWords(seed, TrainRngPurpose.shuffle, 2 * epoch);
    const b = randomWords(seed, TrainRngPurpose.shuffle, 2 * epoch + 1);
    this.keys = Uint32Array.of(a[0], a[1], a[2], a[3], b[0], b[1]);
  }

  private network(x: number): number {
    const h = 2 ** this.half;
    let L = Math.floor(x / h);
    let R = x % h;
    for (let r = 0; r < FEISTEL_ROUNDS; r++) {
      const nl = R;
      R = (L ^ (hash32(R ^ this.keys[r]) & this.mask)) >>> 0;
      L = nl;
    }
    return L * h + R;
  }

  at(i: number): number {
    let x = this.network(i);
    while (x >= this.n) x = this.network(x);
    return x;
  }

  /** The whole permutation [perm(0), ..., perm(n-1)]. */
  all(): Uint32Array {
    const out = new Uint32Array(this.n);
    for (let i = 0; i < this.n; i++) out[i] = this.at(i);
    return out;
  }
}

/** Training rows in epoch order: out[i] = train[perm_epoch(i)]. */
export function epochOrder(train: Uint32Array, seed: number, epoch: number): Uint32Array {
  const p = new EpochPermutation(seed, epoch, train.length);
  const out = new Uint32Array(train.length);
  for (let i = 0; i < train.length; i++) out[i] = train[p.at(i)];
  return out;
}
