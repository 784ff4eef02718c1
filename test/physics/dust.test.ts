import { describe, expect, it } from 'vitest';
import { MAG_PER_NEPER } from '../../src/physics/constants.js';
import {
  CALZETTI_KV_OPTICAL_BRANCH,
  CALZETTI_KV_UV_BRANCH,
  calzetti2000AttenuationMag,
  calzetti2000K,
  calzetti2000KOpticalBranch,
  calzetti2000KUvBranch,
  charlotFall2000Curves,
  charlotFall2000Transmission,
  DustLawSchema,
  dustTauOverTauVCurves,
  isInBirthCloud,
  magToTau,
  noll09Bump,
  noll09K,
  powerLawAttenuationMag,
  powerLawTauOverTauV,
  SYNTHESIZER_KV,
  SynthesizerCalzetti2000,
  transmissionFromMag,
  transmissionFromTau,
} from '../../src/physics/dust.js';

const rel = (a: number, b: number): number => Math.abs(a / b - 1);

describe('Calzetti et al. 2000 k(lambda)', () => {
  it('reproduces the published line values k(H-beta) = 4.60 and k(H-alpha) = 3.33', () => {
    // The two-decimal values commonly quoted for eq. 4 at the Balmer lines (used to convert Balmer
    // decrements); tolerance is half a unit of the last decimal, 0.005.
    expect(Math.abs(calzetti2000K(4861) - 4.6)).toBeLessThan(0.005);
    expect(Math.abs(calzetti2000K(6563) - 3.33)).toBeLessThan(0.005);
  });

  it('matches eq. 4 evaluated by hand at the ends of its range', () => {
    // x = 0.12 um: -2.156 + 1.509/0.12 - 0.198/0.0144 + 0.011/0.001728 = 3.0347407407..., k = 4.05 + 2.659 * that.
    expect(rel(calzetti2000K(1200), 4.05 + 2.659 * 3.0347407407407407)).toBeLessThan(1e-14);
    // x = 2.2 um: -1.857 + 1.040/2.2 = -1.3842727272..., k = 0.3692188181...
    expect(rel(calzetti2000K(22000), 4.05 + 2.659 * -1.3842727272727273)).toBeLessThan(1e-14);
  });

  it('gives k(V) close to R_V = 4.05 only on the branch that contains 0.55 um', () => {
    // The UV branch (0.12-0.63 um) contains 0.55 um: 4.04789 (what Synthesizer uses as k_V), which is
    // R_V = 4.05 to the published two decimals (|diff| < 0.005). calzetti2000K returns this one.
    expect(Math.abs(CALZETTI_KV_UV_BRANCH - 4.04789038)).toBeLessThan(1e-8);
    expect(Math.abs(CALZETTI_KV_UV_BRANCH - 4.05)).toBeLessThan(0.005);
    expect(calzetti2000K(5500)).toBe(CALZETTI_KV_UV_BRANCH);
    expect(SYNTHESIZER_KV).toBe(CALZETTI_KV_UV_BRANCH);
    // The optical branch, extrapolated below its 0.63 um edge, gives 4.14016: not the normalisation.
    expect(Math.abs(CALZETTI_KV_OPTICAL_BRANCH - 4.14016427)).toBeLessThan(1e-8);
    expect(Math.abs(CALZETTI_KV_OPTICAL_BRANCH - 4.05)).toBeGreaterThan(0.05);
  });

  it('is continuous at 0.63 um to the precision of the published coefficients', () => {
    // The branches are separate fits; with the printed 3-4 digit coefficients they differ at 0.63 um
    // by 0.0251 (0.7 % of k = 3.48). Assert the jump is that value (1e-4) and below 1 % of k.
    const below = calzetti2000K(6300 * (1 - 1e-12));
    const above = calzetti2000K(6300);
    expect(below).toBeCloseTo(calzetti2000KUvBranch(6300), 9);
    expect(above).toBe(calzetti2000KOpticalBranch(6300));
    expect(Math.abs(above - below - 0.02507)).toBeLessThan(1e-4);
    expect(Math.abs(above - below) / above).toBeLessThan(0.01);
  });

  it('decreases monotonically over its published range 0.12-2.2 um', () => {
    let prev = Infinity;
    for (let l = 1200; l <= 22000; l += 10) {
      const k = calzetti2000K(l);
      // The only upward step allowed is the +0.025 branch jump at 6300 A.
      if (l !== 6300) expect(k, `lambda ${l}`).toBeLessThan(prev);
      prev = k;
    }
  });
});

describe('Noll et al. 2009 bump and slope', () => {
  it('puts the Drude bump maximum E_b exactly at 2175 A with FWHM 350 A', () => {
    const eb = 3;
    let best = { l: 0, d: -1 };
    for (let l = 2000; l <= 2350; l += 0.01) {
      const d = noll09Bump(l, eb);
      if (d > best.d) best = { l, d };
    }
    // Grid step 0.01 A: the argmax is within one step of 2175.
    expect(Math.abs(best.l - 2175)).toBeLessThan(0.011);
    expect(noll09Bump(2175, eb)).toBe(eb);
    // Half maximum where lambda^2 - l0^2 = +-lambda*gamma: lambda = (sqrt(gamma^2 + 4 l0^2) +- gamma)/2,
    // whose difference is exactly gamma = 350 A.
    const root = Math.sqrt(350 ** 2 + 4 * 2175 ** 2);
    const lo = (root - 350) / 2;
    const hi = (root + 350) / 2;
    expect(hi - lo).toBeCloseTo(350, 10);
    expect(rel(noll09Bump(lo, eb), eb / 2)).toBeLessThan(1e-13);
    expect(rel(noll09Bump(hi, eb), eb / 2)).toBeLessThan(1e-13);
    expect(noll09Bump(2175, 0)).toBe(0);
  });

  it('adds the bump to k and tilts by (lambda/5500)^delta', () => {
    expect(noll09K(1500)).toBe(calzetti2000K(1500));
    expect(rel(noll09K(2175, { bumpAmplitude: 2 }), calzetti2000K(2175) + 2)).toBeLessThan(1e-15);
    expect(rel(noll09K(1500, { delta: -0.3 }), calzetti2000K(1500) * (1500 / 5500) ** -0.3)).toBeLessThan(1e-15);
    // At 5500 A the tilt is 1 and the bump is tiny (far wing): k' = k(V) + D(5500).
    expect(rel(noll09K(5500, { delta: -0.3, bumpAmplitude: 2 }), CALZETTI_KV_UV_BRANCH + noll09Bump(5500, 2))).toBeLessThan(1e-15);
  });

  it('paper-convention A(lambda) = A_V k\'(lambda)/4.05, clamped at zero where the optical line goes negative', () => {
    expect(rel(calzetti2000AttenuationMag(1500, 1.2), (1.2 * calzetti2000K(1500)) / 4.05)).toBeLessThan(1e-15);
    expect(calzetti2000K(40000)).toBeLessThan(0);
    expect(calzetti2000AttenuationMag(40000, 1.2)).toBe(0);
  });
});

describe('Synthesizer Calzetti2000 convention', () => {
  // Reference values: a numpy/scipy transcription of Synthesizer's N09Tau (dust_attenuation.py,
  // linspace table + interp1d), evaluated in float64. Same operations in the same order: 1e-13
  // covers pow()/division rounding differences between numpy and V8 (measured <= 4e-16).
  const plain = new SynthesizerCalzetti2000();
  const cases: [number, number][] = [
    [50, 5.487999759947513], // below 0.01 um: held at the first node value
    [912, 3.646968311508784], // linear extrapolation of the UV branch below 0.12 um
    [1000, 3.447447661924291],
    [1500, 2.5529128542407653],
    [2175, 2.0945829802822242],
    [5500, 1.000000030799016], // not exactly 1: 0.55 um falls between table nodes
    [6300, 0.8611636103901824], // interpolated across the branch jump
    [12000, 0.3499856886459878],
    [50000, 0.008405283609799193], // above 3 um: held at the last node value
  ];
  it('reproduces the transcription of Synthesizer at reference wavelengths', () => {
    for (const [l, want] of cases) expect(rel(plain.tauOverTauV(l), want), `lambda ${l}`).toBeLessThan(1e-13);
    const noll = new SynthesizerCalzetti2000({ delta: -0.4, bumpAmplitude: 3 });
    const nollCases: [number, number][] = [
      [1500, 4.346268267919662],
      [2175, 4.10979800535447],
      [5500, 1.0041933003592345],
    ];
    for (const [l, want] of nollCases) expect(rel(noll.tauOverTauV(l), want), `lambda ${l}`).toBeLessThan(1e-13);
  });

  it('builds the table as documented: linspace nodes, UV-branch extrapolation, constant ends', () => {
    const x = plain.nodesUm;
    expect(x.length).toBe(10000);
    expect(x[0]).toBe(0.01);
    expect(x[9999]).toBe(3);
    // First node >= 0.12 um is index 368 (numpy: 0.12004300430043004).
    expect(x[367]).toBeLessThan(0.12);
    expect(x[368]).toBe(0.12004300430043004);
    // Above 0.12 um the nodes are k/k_V from eq. 4; below, a straight line through nodes 368 and 369.
    expect(rel(plain.nodesTauOverTauV[368], calzetti2000KUvBranch(x[368] * 1e4) / SYNTHESIZER_KV)).toBeLessThan(1e-14);
    const y = plain.nodesTauOverTauV;
    const slope = (y[369] - y[368]) / (x[369] - x[368]);
    for (const i of [0, 100, 367]) expect(rel(y[i], y[368] + slope * (x[i] - x[368]))).toBeLessThan(1e-12);
    // Constant outside [0.01, 3] um.
    expect(plain.tauOverTauV(10)).toBe(y[0]);
    expect(plain.tauOverTauV(1e6)).toBe(y[9999]);
    // Exactly on a node: the node value.
    expect(plain.tauOverTauV(x[5000] * 1e4)).toBeCloseTo(y[5000], 14);
  });

  it('transmission = exp(-tau_V * curve), element-wise on arrays', () => {
    const tauV = 2.6167588928851138; // A_V = 2.84111 / 1.0857362 (reference galaxy 0)
    const ls = Float64Array.from([912, 1500, 5500, 20000]);
    const t = plain.transmissionArray(tauV, ls);
    for (let i = 0; i < ls.length; i++) expect(t[i]).toBe(Math.exp(-tauV * plain.tauOverTauV(ls[i])));
    // The V band sees ~tau_V: transmission = e^-tau_V to the 3e-8 of the node interpolation.
    expect(rel(plain.transmission(tauV, 5500), Math.exp(-tauV))).toBeLessThan(1e-7);
  });
});

describe('power law and Charlot & Fall 2000', () => {
  it('power law: A(5500) = A_V and A scales as lambda^n', () => {
    expect(powerLawAttenuationMag(5500, 0.8, -0.7)).toBe(0.8);
    expect(rel(powerLawAttenuationMag(2750, 0.8, -1), 1.6)).toBeLessThan(1e-15);
    expect(rel(powerLawTauOverTauV(11000, -0.7), 2 ** -0.7)).toBeLessThan(1e-15);
  });

  it('CF00 reduces to power-law screens: ISM alone for old stars, BC x ISM for young stars', () => {
    const p = { tauVBirthCloud: 1.0, tauVIsm: 0.3 };
    for (const l of [1200, 3000, 5500, 22000]) {
      const t = charlotFall2000Transmission(l, p);
      const ismMag = powerLawAttenuationMag(l, p.tauVIsm * MAG_PER_NEPER, -0.7);
      expect(rel(t.ism, transmissionFromMag(ismMag))).toBeLessThan(1e-14);
      // Equal slopes: the young-star total is one screen with tau_V = 1.3.
      expect(rel(t.birthCloud * t.ism, Math.exp(-1.3 * (l / 5500) ** -0.7))).toBeLessThan(1e-14);
    }
    // No birth-cloud dust: transmission 1 exactly; the slopes are used separately.
    expect(charlotFall2000Transmission(1500, { tauVBirthCloud: 0, tauVIsm: 0.3 }).birthCloud).toBe(1);
    const steep = charlotFall2000Transmission(1500, { tauVBirthCloud: 1, tauVIsm: 1, slopeBirthCloud: -1.3 });
    expect(rel(steep.birthCloud, Math.exp(-((1500 / 5500) ** -1.3)))).toBeLessThan(1e-14);
    expect(rel(steep.ism, Math.exp(-((1500 / 5500) ** -0.7)))).toBeLessThan(1e-14);
    const curves = charlotFall2000Curves([1500, 5500], p);
    expect(curves.ism[1]).toBe(Math.exp(-0.3));
    expect(curves.birthCloud[1]).toBe(Math.exp(-1));
    expect(isInBirthCloud(9.99e6)).toBe(true);
    expect(isInBirthCloud(1e7)).toBe(false);
  });

  it('magnitude and optical-depth transmissions agree', () => {
    for (const a of [0.1, 1, 3.7]) expect(rel(transmissionFromMag(a), transmissionFromTau(magToTau(a)))).toBeLessThan(1e-14);
    expect(transmissionFromMag(2.5)).toBeCloseTo(0.1, 15);
  });
});

describe('DustLawSchema and curves', () => {
  it('fills defaults, rejects out-of-range values naming the key', () => {
    expect(DustLawSchema.parse({ law: 'calzetti2000' })).toEqual({
      law: 'calzetti2000',
      convention: 'synthesizer',
      bumpAmplitude: 0,
      bumpCentreAA: 2175,
      bumpFwhmAA: 350,
      delta: 0,
    });
    const r = DustLawSchema.safeParse({ law: 'calzetti2000', delta: 10 });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/"delta"/);
    expect(DustLawSchema.safeParse({ law: 'smc' }).success).toBe(false);
  });

  it('returns the same curves as the scalar functions', () => {
    const ls = [1000, 2175, 5500, 15000];
    const syn = dustTauOverTauVCurves(DustLawSchema.parse({ law: 'calzetti2000' }), ls);
    const ref = new SynthesizerCalzetti2000();
    ls.forEach((l, i) => expect(syn.ism[i]).toBe(ref.tauOverTauV(l)));
    expect(syn.birthCloud).toBeNull();
    const paper = dustTauOverTauVCurves(DustLawSchema.parse({ law: 'calzetti2000', convention: 'paper' }), ls);
    ls.forEach((l, i) => expect(paper.ism[i]).toBe(calzetti2000K(l) / 4.05));
    const cf = dustTauOverTauVCurves(DustLawSchema.parse({ law: 'charlotFall2000', slopeBirthCloud: -1.3 }), ls);
    ls.forEach((l, i) => {
      expect(cf.ism[i]).toBe(powerLawTauOverTauV(l, -0.7));
      expect(cf.birthCloud?.[i]).toBe(powerLawTauOverTauV(l, -1.3));
    });
    expect(Array.from(dustTauOverTauVCurves({ law: 'none' }, ls).ism)).toEqual([0, 0, 0, 0]);
  });
});
