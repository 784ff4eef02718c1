import { describe, expect, it } from 'vitest';
import { EpochPermutation, epochOrder, splitTrainVal, validationSize } from '../../src/train/split.js';
import { initialScheduleState, learningRate, parseLrSchedule, updateSchedule } from '../../src/train/schedule.js';

describe('train / validation split', () => {
  it('exact size, disjoint, covers all rows, deterministic in the seed', () => {
    for (const n of [2, 3, 10, 101, 5000]) {
      const s = splitTrainVal(n, 0.1, 7);
      expect(s.val.length).toBe(validationSize(n, 0.1));
      expect(s.val.length + s.train.length).toBe(n);
      const all = new Set([...s.train, ...s.val]);
      expect(all.size).toBe(n);
      expect(Array.from(splitTrainVal(n, 0.1, 7).val)).toEqual(Array.from(s.val));
    }
    expect(validationSize(5000, 0.1)).toBe(500);
    expect(validationSize(2, 0.1)).toBe(1);
    const a = splitTrainVal(5000, 0.1, 1).val;
    const b = splitTrainVal(5000, 0.1, 2).val;
    expect(Array.from(a)).not.toEqual(Array.from(b));
  });

  it('rejects bad arguments', () => {
    expect(() => splitTrainVal(1, 0.1, 0)).toThrow(/at least 2 rows/);
    expect(() => splitTrainVal(10, 1, 0)).toThrow(/valFraction must be in \(0, 1\)/);
  });
});

describe('epoch permutation (Feistel + cycle walking)', () => {
  it('is a bijection of [0, n) for awkward sizes, different per epoch and seed', () => {
    for (const n of [1, 2, 3, 4, 5, 7, 63, 64, 65, 255, 1000, 4097]) {
      const p = new EpochPermutation(11, 0, n).all();
      const seen = new Uint8Array(n);
      for (const v of p) seen[v]++;
      expect(seen.every((c) => c === 1)).toBe(true);
    }
    const a = Array.from(new EpochPermutation(11, 0, 1000).all());
    expect(Array.from(new EpochPermutation(11, 1, 1000).all())).not.toEqual(a);
    expect(Array.from(new EpochPermutation(12, 0, 1000).all())).not.toEqual(a);
    expect(Array.from(new EpochPermutation(11, 0, 1000).all())).toEqual(a);
  });

  it('positions are uniform: chi-square of where row 0 lands over 4000 epochs (n = 10), p > 0.001', () => {
    const n = 10;
    const E = 4000;
    const counts = new Array(n).fill(0);
    for (let e = 0; e < E; e++) {
      const p = new EpochPermutation(5, e, n).all();
      counts[p.indexOf(0)]++;
    }
    const exp = E / n;
    const chi2 = counts.reduce((s, c) => s + (c - exp) ** 2 / exp, 0);
    expect(chi2).toBeLessThan(27.88); // chi-square 0.999 quantile, 9 degrees of freedom
  });

  it('consecutive positions are not correlated: adjacent pairs cover (n = 8: 56 pairs) evenly', () => {
    const n = 8;
    const E = 5600;
    const counts = new Map<string, number>();
    for (let e = 0; e < E; e++) {
      const p = new EpochPermutation(9, e, n).all();
      const k = `${p[0]},${p[1]}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(56);
    const exp = E / 56;
    let chi2 = 0;
    for (const c of counts.values()) chi2 += (c - exp) ** 2 / exp;
    expect(chi2).toBeLessThan(95.75); // 0.999 quantile, 55 dof
  });

  it('epochOrder maps positions to training rows', () => {
    const train = Uint32Array.of(3, 8, 9, 20);
    const o = epochOrder(train, 1, 2);
    expect(Array.from(o).sort((a, b) => a - b)).toEqual([3, 8, 9, 20]);
  });
});

describe('learning-rate schedules', () => {
  const st = initialScheduleState(1e-3);
  it('constant, step, cosine (with warm-up)', () => {
    expect(learningRate(parseLrSchedule('constant'), 1e-3, 50, st, 100)).toBe(1e-3);
    const step = parseLrSchedule({ kind: 'step', everyEpochs: 10, gamma: 0.1 });
    expect(learningRate(step, 1e-3, 9, st, 100)).toBeCloseTo(1e-3, 15);
    expect(learningRate(step, 1e-3, 25, st, 100)).toBeCloseTo(1e-5, 15);
    const cos = parseLrSchedule({ kind: 'cosine', epochs: 11, minLr: 1e-5, warmupEpochs: 1 });
    expect(learningRate(cos, 1e-3, 0, st, 100)).toBeCloseTo(5e-4, 15);
    expect(learningRate(cos, 1e-3, 1, st, 100)).toBeCloseTo(1e-3, 15);
    expect(learningRate(cos, 1e-3, 6, st, 100)).toBeCloseTo((1e-3 + 1e-5) / 2, 15);
    expect(learningRate(cos, 1e-3, 11, st, 100)).toBeCloseTo(1e-5, 15);
    expect(learningRate(cos, 1e-3, 50, st, 100)).toBeCloseTo(1e-5, 15);
    // Annealed over the time budget: the fraction used replaces epoch / epochs (after the warm-up).
    const t = parseLrSchedule({ kind: 'cosine', minLr: 1e-5, warmupEpochs: 1, overTimeBudget: true });
    expect(learningRate(t, 1e-3, 0, st, 100, 0)).toBeCloseTo(5e-4, 15);
    expect(learningRate(t, 1e-3, 3, st, 100, 0.5)).toBeCloseTo((1e-3 + 1e-5) / 2, 15);
    expect(learningRate(t, 1e-3, 9, st, 100, 1.3)).toBeCloseTo(1e-5, 15);
    // Without a time budget it is the epoch cosine.
    expect(learningRate(t, 1e-3, 50, st, 100)).toBeCloseTo((1e-3 + 1e-5) / 2 + ((1e-3 - 1e-5) / 2) * Math.cos((Math.PI * 49) / 99), 15);
  });

  it('plateau: reduces after more than `patience` epochs without improvement, floors at minLr', () => {
    const pl = parseLrSchedule({ kind: 'plateau', factor: 0.5, patience: 1, minLr: 3e-4, threshold: 0 });
    let s = initialScheduleState(1e-3);
    const lrs: number[] = [];
    for (const v of [5, 4, 4, 4, 4, 4, 4]) {
      s = updateSchedule(pl, s, v);
      lrs.push(learningRate(pl, 1e-3, 0, s, 10));
    }
    expect(lrs).toEqual([1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 3e-4, 3e-4]);
  });

  it('bad specs name the key', () => {
    expect(() => parseLrSchedule('linear')).toThrow(/kind must be one of constant, cosine, step, plateau/);
    expect(() => parseLrSchedule({ kind: 'step' })).toThrow(/everyEpochs/);
    expect(() => parseLrSchedule({ kind: 'plateau', factor: 2 })).toThrow(/factor must be in \(0, 1\)/);
  });
});
