import path from 'node:path';
import { type Command, Option } from 'commander';
import { resolveFilterSet } from '../../grid/filters.js';
import { loadSourceGrid } from '../../grid/build.js';
import { writeCsv } from '../../io/csv.js';
import { DERIVED_COLUMNS, readGalaxyParamsCsv } from '../../io/galaxyParamsCsv.js';
import { resolveDataDir } from '../../io/paths.js';
import { CpuForwardModel, type ForwardModelConfigInput, SYNTHESIZER_CONVENTIONS } from '../../physics/forwardModel.js';
import { MEGAPARSEC_CM, TEN_PARSEC_CM } from '../../physics/constants.js';
import { loadInoue14 } from '../../physics/igm.js';
import { loadInoue11 } from '../../physics/nebular.js';
import type { GalaxyParams } from '../../physics/forwardModel.js';
import type { SfhFamily } from '../../physics/sfh.js';
import { type Gpu, withGpu } from '../../gpu/device.js';
import { CANONICAL_WIDTH, toCanonicalRow } from '../../simulate/canonical.js';
import { GpuSynthesizer, SYNTH_DERIVED_W } from '../../simulate/gpuSynth.js';
import { deviceOptions } from '../common.js';


/** The GPU synthesis, one pass per SFH family present in the table (a family is a kernel variant). */
async function gpuPhotometry(gpu: Gpu, model: CpuForwardModel, params: GalaxyParams[]) {
  const B = model.bandNames.length;
  const results = new Array(params.length);
  const families = [...new Set(params.map((p) => p.sfh.family))] as SfhFamily[];
  for (const family of families) {
    const idx = params.flatMap((p, i) => (p.sfh.family === family ? [i] : []));
    const canon = new Float32Array(idx.length * CANONICAL_WIDTH);
    idx.forEach((i, k) => canon.set(toCanonicalRow(params[i], model.config.nebular.logU), k * CANONICAL_WIDTH));
    const synth = await GpuSynthesizer.create(gpu, model, { sfhFamily: family });
    try {
      const r = await synth.synthesize(canon);
      idx.forEach((i, k) => {
        const d = r.derived.subarray(k * SYNTH_DERIVED_W, (k + 1) * SYNTH_DERIVED_W);
        results[i] = {
          fluxesNJy: r.fluxesNJy.subarray(k * B, (k + 1) * B),
          derived: {
            massFormedMsun: 10 ** params[i].log10MassFormedMsun,
            survivingMassMsun: d[0],
            massWeightedAgeYr: d[1],
            uvBeta: d[2] === -999 ? NaN : d[2],
            qHPhotonsS: d[3] === -999 ? 0 : 10 ** d[3],
            sfr10MyrMsunPerYr: d[4],
            sfr100MyrMsunPerYr: d[5],
            ageOfUniverseYr: d[6],
            luminosityDistanceCm: params[i].redshift > 0 ? d[7] * MEGAPARSEC_CM : TEN_PARSEC_CM,
          },
        };
      });
    } finally {
      synth.destroy();
    }
  }
  return results;
}

interface PhotometryOptions {
  params: string;
  filters: string;
  out: string;
  backend: 'cpu' | 'gpu';
  grid: string;
  dataDir?: string;
  conventions: 'default' | 'synthesizer';
  nebular: boolean;
  logU?: number;
  dust: 'calzetti2000' | 'charlotFall2000' | 'powerLaw' | 'none';
  igm: 'inoue14' | 'madau95' | 'none';
}

export function registerPhotometry(program: Command): void {
  program
    .command('photometry')
    .description('band fluxes [nJy] and derived quantities for galaxies given as rows of parameters (see README for the columns)')
    .requiredOption('--params <csv>', 'parameter table, one galaxy per row')
    .requiredOption('--filters <set|files>', 'a named filter set (jades14) or a comma-separated list of filter files / names')
    .requiredOption('--out <csv>', 'output table')
    .addOption(new Option('--backend <backend>', 'compute backend').choices(['cpu', 'gpu']).default('cpu'))
    .option('--grid <grid>', 'SPS grid: bc03, maraston05 or a Synthesizer .h5 file', 'bc03')
    .option('--data-dir <dir>', 'data directory (default ../shared/data or $SYNFERENCE_DATA_DIR)')
    .addOption(new Option('--conventions <name>', 'default, or synthesizer (its age binning, linear-Z weights, no nebular)').choices(['default', 'synthesizer']).default('default'))
    .option('--no-nebular', 'no nebular emission')
    .option('--log-u <logU>', 'ionisation parameter log U (default -2)', Number)
    .addOption(new Option('--dust <law>', 'dust law').choices(['calzetti2000', 'charlotFall2000', 'powerLaw', 'none']).default('calzetti2000'))
    .addOption(new Option('--igm <model>', 'IGM attenuation').choices(['inoue14', 'madau95', 'none']).default('inoue14'))
    .action(async (o: PhotometryOptions, cmd: Command) => {
      const rows = readGalaxyParamsCsv(o.params);
      const dataDir = resolveDataDir(o.dataDir);
      const config: ForwardModelConfigInput =
        o.conventions === 'synthesizer'
          ? SYNTHESIZER_CONVENTIONS
          : { dust: { law: o.dust }, igm: o.igm, nebular: { enabled: o.nebular, ...(o.logU !== undefined ? { logU: o.logU } : {}) } };
      const cfgNeb = (config.nebular as { enabled?: boolean } | undefined)?.enabled ?? true;
      const model = new CpuForwardModel(
        {
          grid: await loadSourceGrid({ grid: o.grid, dataDir }),
          filters: resolveFilterSet(o.filters.includes(',') ? o.filters.split(',') : o.filters, dataDir),
          inoue14: config.igm === 'inoue14' ? loadInoue14({ dataDir }) : undefined,
          nebular: cfgNeb ? await loadInoue11(path.join(dataDir, 'nebular', 'inoue11')) : undefined,
        },
        config,
      );
      const bands = model.bandNames;
      // Validate every row on the CPU first (both backends), so errors name the row.
      const parsed = rows.map(({ id, params }, i) => {
        try {
          return model.parseGalaxy(params);
        } catch (e) {
          throw new Error(`${o.params}: row ${i + 2} (id ${id}): ${(e as Error).message}`);
        }
      });
      let results: { fluxesNJy: ArrayLike<number>; derived: Record<(typeof DERIVED_COLUMNS)[number][1], number> }[];
      if (o.backend === 'gpu') {
        results = await withGpu(deviceOptions(cmd), (gpu) => gpuPhotometry(gpu, model, parsed));
      } else {
        results = parsed.map((p) => model.photometry(p));
      }
      const out = rows.map(({ id }, i) => [id, ...Array.from(results[i].fluxesNJy), ...DERIVED_COLUMNS.map(([, k]) => results[i].derived[k])]);
      writeCsv(o.out, ['id', ...bands.map((b) => `${b}_nJy`), ...DERIVED_COLUMNS.map(([c]) => c)], out);
      console.error(`photometry: ${rows.length} galaxies x ${bands.length} bands -> ${o.out}`);
    });
}
