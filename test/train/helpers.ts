/** Tiny linear-Gaussian libraries for the trainer, sampler and CLI tests (written with LibraryWriter). */
import { LibraryWriter } from '../../src/io/library/index.js';
import { RngPurpose, standardNormal, uniform } from '../../src/flow/rng.js';

export interface LinearGaussianSpec {
  n: number;
  seed: number;
  /** Parameters: theta_p ~ U(low, high) when `uniform`, else N(0, 1). */
  P: number;
  /** Features: x_f = theta_{f mod P} + noise * eps. */
  F: number;
  noise?: number;
  uniform?: { low: number; high: number };
  /** Write a simulation-style config with the priors (else a foreign-looking config without parameters). */
  withPriorConfig?: boolean;
}

export function linearGaussianData(s: LinearGaussianSpec): { theta: Float64Array; x: Float64Array; thetaNames: string[]; xNames: string[] } {
  const { n, P, F } = s;
  const noise = s.noise ?? 0.5;
  const theta = new Float64Array(n * P);
  const x = new Float64Array(n * F);
  for (let r = 0; r < n; r++) {
    for (let p = 0; p < P; p++) {
      const i = r * P + p;
      theta[i] = s.uniform ? s.uniform.low + (s.uniform.high - s.uniform.low) * uniform(s.seed, RngPurpose.user, i) : standardNormal(s.seed, RngPurpose.user, i);
    }
    for (let f = 0; f < F; f++) x[r * F + f] = theta[r * P + (f % P)] + noise * standardNormal(s.seed + 1, RngPurpose.user, r * F + f);
  }
  return { theta, x, thetaNames: Array.from({ length: P }, (_, p) => `a${p}`), xNames: Array.from({ length: F }, (_, f) => `obs${f}`) };
}

export async function writeLinearGaussianLibrary(out: string, s: LinearGaussianSpec): Promise<ReturnType<typeof linearGaussianData>> {
  const d = linearGaussianData(s);
  const parameters: Record<string, unknown> = {};
  if (s.withPriorConfig && s.uniform) for (const nm of d.thetaNames) parameters[nm] = { prior: 'uniform', low: s.uniform.low, high: s.uniform.high };
  const w = await LibraryWriter.open({
    out,
    n: s.n,
    chunkSize: s.n,
    seed: s.seed,
    config: s.withPriorConfig ? { parameters } : { kind: 'linear-gaussian test', noise: s.noise ?? 0.5 },
    columns: { theta: d.thetaNames, x: d.xNames },
    overwrite: true,
    onWarning: () => {},
  });
  for (const i of w.pendingChunks()) await w.writeChunk(i, { theta: d.theta, x: d.x });
  await w.finalize();
  return d;
}
