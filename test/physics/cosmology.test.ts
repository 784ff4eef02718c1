import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { referenceDir } from '../../src/io/paths.js';
import {
  CosmologySchema,
  CosmologyTable,
  FlatLambdaCDM,
  integrateGaussKronrod,
  PLANCK18,
} from '../../src/physics/cosmology.js';

const exact = new FlatLambdaCDM(PLANCK18);
const table = new CosmologyTable(exact);

/** astropy 5.2.1 Planck18 table: z, D_L [Mpc], age [Gyr], lookback [Gyr], printed with 6 decimals. */
function astropyTable(): { z: number; dlMpc: number; ageGyr: number; lookbackGyr: number }[] {
  const text = readFileSync(path.join(referenceDir(), 'cosmology_planck18.csv'), 'utf8');
  const rows = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#') && !l.startsWith('z,'));
  return rows.map((l) => {
    const [z, dlMpc, ageGyr, lookbackGyr] = l.split(',').map(Number);
    return { z, dlMpc, ageGyr, lookbackGyr };
  });
}

/** The Synthesizer reference catalogue stores astropy's t_univ(z) [yr] and d_L(z) [cm] at full precision. */
function caseA(): { z: number; tUnivYr: number; dlCm: number }[] {
  const lines = readFileSync(path.join(referenceDir(), 'synthesizer', 'case_a_photometry.csv'), 'utf8').trim().split('\n');
  const head = lines[0].split(',');
  const iz = head.indexOf('redshift');
  const it = head.indexOf('t_univ_yr');
  const id = head.indexOf('d_L_cm');
  return lines.slice(1).map((l) => {
    const f = l.split(',').map(Number);
    return { z: f[iz], tUnivYr: f[it], dlCm: f[id] };
  });
}

const rel = (a: number, b: number): number => Math.abs(a / b - 1);

describe('FlatLambdaCDM (astropy Planck18)', () => {
  const rows = astropyTable();

  it('reads the full astropy table', () => {
    expect(rows.length).toBe(20);
    expect(rows[rows.length - 1].z).toBe(20);
  });

  for (const [name, cosmo] of [
    ['exact', exact],
    ['tabulated', table],
  ] as const) {
    it(`${name}: matches astropy's D_L, age and lookback time on every row`, () => {
      for (const r of rows) {
        const got = {
          dl: cosmo.luminosityDistanceMpc(r.z),
          age: cosmo.ageYr(r.z) / 1e9,
          lb: cosmo.lookbackTimeYr(r.z) / 1e9,
        };
        // Required accuracy: 1e-4 relative.
        expect(rel(got.dl, r.dlMpc), `D_L z=${r.z}`).toBeLessThan(1e-4);
        expect(rel(got.age, r.ageGyr), `age z=${r.z}`).toBeLessThan(1e-4);
        expect(rel(got.lb, r.lookbackGyr), `lookback z=${r.z}`).toBeLessThan(1e-4);
        // Stricter: the file is rounded to 6 decimals, so a faithful value is within half a unit
        // (5e-7) of the printed one; 1e-9 slack for the decimal -> binary conversion.
        expect(Math.abs(got.dl - r.dlMpc), `D_L z=${r.z}`).toBeLessThanOrEqual(5e-7 + 1e-9);
        expect(Math.abs(got.age - r.ageGyr), `age z=${r.z}`).toBeLessThanOrEqual(5e-7 + 1e-9);
        expect(Math.abs(got.lb - r.lookbackGyr), `lookback z=${r.z}`).toBeLessThanOrEqual(5e-7 + 1e-9);
      }
    });

    it(`${name}: matches astropy's full-precision t_univ and d_L of the 100 reference galaxies`, () => {
      // astropy integrates with scipy quad (epsrel 1.5e-8; its actual error is far smaller) and we
      // with GK15 to 1e-13: 1e-9 leaves room for astropy's error yet catches any constant, unit or
      // formula slip (a wrong photon or neutrino term shows up at >= 1e-6). Measured: ~2e-12.
      let worst = { what: '', z: 0, err: 0 };
      for (const g of caseA()) {
        const eAge = rel(cosmo.ageYr(g.z), g.tUnivYr);
        const eDl = rel(cosmo.luminosityDistanceCm(g.z), g.dlCm);
        if (eAge > worst.err) worst = { what: 'age', z: g.z, err: eAge };
        if (eDl > worst.err) worst = { what: 'd_L', z: g.z, err: eDl };
      }
      expect(worst.err, JSON.stringify(worst)).toBeLessThan(1e-9);
    });
  }

  it('closes the energy budget: E(0) = 1 and age(0) = age(z) + lookback(z)', () => {
    // Ode0 is defined as 1 - Om0 - Ogamma0 - Onu0, so E(0) = 1 up to rounding (1e-15).
    expect(Math.abs(exact.efunc(0) - 1)).toBeLessThan(1e-15);
    // Independent integrals (age through a, lookback through z): agree to the quadrature tolerance.
    const age0 = exact.ageYr(0);
    for (const z of [0.3, 2, 9]) expect(rel(exact.ageYr(z) + exact.lookbackTimeYr(z), age0)).toBeLessThan(1e-12);
  });

  it('has the standard photon and neutrino densities', () => {
    const h2 = (PLANCK18.H0 / 100) ** 2;
    // Omega_gamma h^2 = 2.473e-5 (T/2.7255)^4 (e.g. Planck 2018 VI, Fixsen 2009 T): 4 digits printed.
    expect(rel(exact.Ogamma0 * h2, 2.473e-5)).toBeLessThan(1e-3);
    // Massive species: Omega_nu h^2 = sum m / 93.14 eV (Planck 2018 VI eq. 36); the two massless ones
    // add 7/8 (4/11)^(4/3) (Neff/3) Ogamma0 each. The Komatsu fit reproduces this to a few 1e-3.
    const expected = 0.06 / 93.14 / h2 + 2 * 0.22710731766 * (PLANCK18.Neff / 3) * exact.Ogamma0;
    expect(rel(exact.Onu0, expected)).toBeLessThan(1e-2);
    // Relativistic limit: at very high z every species counts as massless, nu -> 0.2271 Neff.
    expect(rel(exact.nuRelativeDensity(1e9), 0.22710731766 * PLANCK18.Neff)).toBeLessThan(1e-9);
    // Massless neutrinos: astropy's closed form Onu0 = 0.22710731766 Neff Ogamma0.
    const massless = new FlatLambdaCDM({ mNuEV: [0, 0, 0] });
    expect(rel(massless.Onu0, 0.22710731766 * 3.046 * massless.Ogamma0)).toBeLessThan(1e-15);
    // No radiation when Tcmb0 = 0: E(z)^2 = Om0 (1+z)^3 + 1 - Om0 exactly.
    const dustOnly = new FlatLambdaCDM({ Tcmb0K: 0 });
    expect(rel(dustOnly.efunc(3), Math.sqrt(0.30966 * 64 + 1 - 0.30966))).toBeLessThan(1e-15);
  });

  it('reproduces the matter-only closed forms when Om0 = 1 and Tcmb0 = 0 (Einstein-de Sitter)', () => {
    // EdS: D_C = 2 D_H (1 - 1/sqrt(1+z)), t = (2/3) t_H (1+z)^(-3/2). Quadrature tolerance 1e-13.
    const eds = new FlatLambdaCDM({ Om0: 1, Tcmb0K: 0 });
    for (const z of [0.01, 1, 10]) {
      expect(rel(eds.comovingDistanceMpc(z), 2 * eds.hubbleDistanceMpc * (1 - 1 / Math.sqrt(1 + z)))).toBeLessThan(1e-12);
      expect(rel(eds.ageYr(z), (2 / 3) * eds.hubbleTimeYr * (1 + z) ** -1.5)).toBeLessThan(1e-12);
    }
  });
});

describe('CosmologyTable', () => {
  it('agrees with the exact quadrature across [0, zMax] to 1e-9', () => {
    // Hermite with exact derivatives, h = ln(31)/2047: error bound ~1e-12 relative, worse only as
    // z -> 0 where D_C -> 0 (measured 5e-11 at z = 1e-3). 1e-9 is far below any photometric use.
    let worst = { z: 0, err: 0 };
    const zs = [1e-6, 1e-4, 1e-3, 0.0123];
    for (let i = 0; i < 300; i++) zs.push(30 * ((i + 0.37) / 300) ** 2);
    zs.push(30);
    for (const z of zs) {
      for (const [a, b] of [
        [table.comovingDistanceMpc(z), exact.comovingDistanceMpc(z)],
        [table.ageYr(z), exact.ageYr(z)],
        [table.lookbackTimeYr(z), exact.lookbackTimeYr(z)],
      ]) {
        const e = rel(a, b);
        if (e > worst.err) worst = { z, err: e };
      }
    }
    expect(worst.err, JSON.stringify(worst)).toBeLessThan(1e-9);
    expect(table.comovingDistanceMpc(0)).toBe(0);
  });

  it('falls back to the exact integral above zMax and rejects negative redshifts', () => {
    const small = new CosmologyTable(PLANCK18, { zMax: 5, nodes: 64 });
    expect(small.ageYr(12)).toBe(exact.ageYr(12));
    expect(small.luminosityDistanceCm(12)).toBe(exact.luminosityDistanceCm(12));
    expect(() => table.ageYr(-0.1)).toThrow(/redshift/);
    expect(() => exact.luminosityDistanceMpc(Number.NaN)).toThrow(/redshift/);
  });

  it('is accurate even on a coarse grid (64 nodes to z = 20: < 1e-6)', () => {
    // h = ln 21 / 63 = 0.048: Hermite error h^4/384 |f''''| ~ 1e-8 relative; 1e-6 bounds it safely.
    const coarse = new CosmologyTable(PLANCK18, { zMax: 20, nodes: 64 });
    for (const z of [0.05, 0.77, 3.3, 11.1, 19.9]) {
      expect(rel(coarse.luminosityDistanceMpc(z), exact.luminosityDistanceMpc(z))).toBeLessThan(1e-6);
      expect(rel(coarse.ageYr(z), exact.ageYr(z))).toBeLessThan(1e-6);
    }
  });
});

describe('configuration', () => {
  it('defaults to Planck18 and rejects bad values naming the key', () => {
    expect(CosmologySchema.parse({})).toEqual({ H0: 67.66, Om0: 0.30966, Tcmb0K: 2.7255, Neff: 3.046, mNuEV: [0, 0, 0.06] });
    const bad = (input: unknown): string => {
      const r = CosmologySchema.safeParse(input);
      expect(r.success).toBe(false);
      return r.success ? '' : JSON.stringify(r.error.issues);
    };
    expect(bad({ Om0: 1.5 })).toMatch(/"Om0"/);
    expect(bad({ H0: -70 })).toMatch(/"H0"/);
    expect(bad({ mNuEV: [0.06] })).toMatch(/mNuEV.*floor\(Neff\) = 3/);
    expect(bad({ Ob0: 0.05 })).toMatch(/Ob0/);
    expect(() => new FlatLambdaCDM({ Om0: -0.1 })).toThrow(/Om0/);
  });
});

describe('integrateGaussKronrod', () => {
  it('integrates smooth and endpoint-singular functions to the tolerance', () => {
    expect(Math.abs(integrateGaussKronrod(Math.sin, 0, Math.PI) - 2)).toBeLessThan(1e-14);
    // sqrt(x) has an unbounded derivative at 0: bisection must refine there. Tolerance 1e-12.
    expect(Math.abs(integrateGaussKronrod(Math.sqrt, 0, 1) - 2 / 3)).toBeLessThan(1e-12);
    expect(integrateGaussKronrod(Math.exp, 1, 1)).toBe(0);
  });
});
