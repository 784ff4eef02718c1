/**
 * The run report: headline metrics per model, the validation plots a scientist expects (true vs
 * predicted, coverage, TARP, ranks), and for a few held-out galaxies the corner plot and the
 * reconstructed SED and SFH (posterior draws pushed back through the forward model on the GPU).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Gpu } from '../gpu/device.js';
import { loadModelDir } from '../flow/modelFiles.js';
import { readLibrary } from '../io/library/index.js';
import { boundsFromParameters, samplePosterior } from '../infer/sample.js';
import { corner, coverageCurve, rankHistogram, sedPlot, sfhPlot, tarpCurve, trueVsPredicted } from '../report/plots.js';
import { PosteriorReconstructor } from '../report/reconstruct.js';
import { type ReportFigure, type ReportSection, renderReport } from '../report/report.js';
import { type EngineOptions, createFlowEngine } from '../train/engine.js';
import type { ValidationMetrics } from '../validate/schema.js';

/** metrics.json writes NaN as null: back to numbers for plotting (plots skip NaN). */
const num = (a: readonly (number | null)[]): number[] => a.map((v) => (v === null ? NaN : v));

export interface ReportModel {
  name: string;
  description: string;
  dir: string;
  /** Held-out library with the model's theta / x columns (and fluxes, errors). */
  testLibrary: string;
  metrics: ValidationMetrics;
}

export async function writeRunReport(o: { gpu: Gpu; dir: string; title: string; runInfo: Record<string, string | number>; models: ReportModel[]; galaxies?: number; seed?: number }): Promise<string> {
  const sections: ReportSection[] = [];
  const headline = {
    title: 'Validation on the held-out library',
    columns: ['model', 'parameter', 'R²', 'RMSE', 'bias', 'outliers', 'coverage 68 %', 'coverage 95 %', 'TARP ATC', 'rank p'],
    rows: o.models.flatMap((m) =>
      m.metrics.parameters.map((p) => [m.name, p.name, p.metrics.r2, p.metrics.rmse, p.metrics.bias, p.metrics.outlierFraction, p.metrics.coverage68, p.metrics.coverage95, p.tarp.atc, p.ranks.pValue]),
    ),
  };
  for (const m of o.models) {
    const figs: ReportFigure[] = [];
    for (const p of m.metrics.parameters) {
      figs.push({ title: `${p.name}: true vs predicted`, svg: await trueVsPredicted(p.name, p.unit ?? '', num(p.objects.truth), num(p.objects.median), num(p.objects.p16), num(p.objects.p84), { maxPoints: 400 }) });
    }
    const levels = m.metrics.parameters[0].coverage.levels;
    figs.push({ title: 'Coverage of central credible intervals', svg: await coverageCurve(levels, m.metrics.parameters.map((p) => ({ name: p.name, values: num(p.coverage.empirical) })), { nTest: m.metrics.parameters[0].coverage.n }) });
    if (m.metrics.tarp) figs.push({ title: 'TARP (joint)', svg: await tarpCurve(num(m.metrics.tarp.alpha), num(m.metrics.tarp.ecp), { nTest: m.metrics.tarp.n }) });
    for (const p of m.metrics.parameters) {
      figs.push({ title: `${p.name}: rank histogram`, svg: await rankHistogram(num(p.objects.rank), Math.min(20, p.ranks.bins), p.ranks.samplesPerObject, { param: p.name }) });
    }
    sections.push({ title: `${m.name}: ${m.description}`, figures: figs });
  }

  // A few held-out galaxies of the model that infers redshift (the last one): corner, SED, SFH.
  const m = o.models[o.models.length - 1];
  const nGal = o.galaxies ?? 2;
  const lib = await readLibrary(m.testLibrary, { optional: ['fluxes', 'errors'], rows: [0, nGal] });
  const { flow, config } = await loadModelDir(m.dir);
  const engine = await createFlowEngine('gpu', flow, { gpu: o.gpu } as EngineOptions);
  const recon = await PosteriorReconstructor.create({ gpu: o.gpu, config: lib.attrs.config });
  try {
    const names = config.parameters.map((p) => p.name);
    const M = 400;
    const samples = await samplePosterior(engine, lib.x, nGal, M, { seed: o.seed ?? 1, bounds: boundsFromParameters(config.parameters) });
    const P = names.length;
    const figs: ReportFigure[] = [];
    for (let g = 0; g < nGal; g++) {
      const theta = samples.theta.subarray(g * M * P, (g + 1) * M * P);
      const truth = lib.theta.subarray(g * P, (g + 1) * P);
      const show = Math.min(P, 6);
      const sub = new Float64Array(M * show);
      for (let j = 0; j < M; j++) for (let k = 0; k < show; k++) sub[j * show + k] = theta[j * P + k];
      figs.push({ title: `galaxy ${g}: posterior (first ${show} parameters)`, svg: await corner(sub, names.slice(0, show), truth.subarray(0, show)) });
      const r = await recon.reconstruct({ theta, n: M, columns: names }, { sed: { maxSpectra: 60 }, sfh: {} });
      const B = recon.bandNames.length;
      const fl = lib.fluxes!.subarray(g * B, (g + 1) * B);
      const er = lib.errors!.subarray(g * B, (g + 1) * B);
      if (r.sed) {
        figs.push({
          title: `galaxy ${g}: reconstructed SED (observed frame)`,
          svg: await sedPlot({ frame: 'observed', wavelengthAA: r.sed.observed.wavelengthAA, median: r.sed.observed.median, p16: r.sed.observed.p16, p84: r.sed.observed.p84,
            observed: { wavelengthAA: recon.pivotAA, flux: fl, error: er, names: recon.bandNames }, model: { wavelengthAA: recon.pivotAA, median: r.bands.median, p16: r.bands.p16, p84: r.bands.p84 } }),
          caption: 'Points: the true (noiseless) band fluxes with the simulated 1σ errors; band and line: posterior draws through the forward model.',
        });
      }
      if (r.sfh) figs.push({ title: `galaxy ${g}: reconstructed star-formation history`, svg: await sfhPlot({ lookbackYr: r.sfh.lookbackYr, median: r.sfh.median, p16: r.sfh.p16, p84: r.sfh.p84 }) });
    }
    sections.push({ title: `Held-out galaxies (${m.name})`, figures: figs });
  } finally {
    await engine.dispose();
    recon.destroy();
  }
  const html = renderReport({ title: o.title, runInfo: o.runInfo, tables: [headline], sections });
  const file = path.join(o.dir, 'report.html');
  writeFileSync(file, html);
  return file;
}
