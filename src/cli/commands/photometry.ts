import path from 'node:path';
import { type Command, Option } from 'commander';
import { resolveFilterSet } from '../../grid/filters.js';
import { loadSourceGrid } from '../../grid/build.js';
import { writeCsv } from '../../io/csv.js';
import { DERIVED_COLUMNS, readGalaxyParamsCsv } from '../../io/galaxyParamsCsv.js';
import { resolveDataDir } from '../../io/paths.js';
import { CpuForwardModel, type ForwardModelConfigInput, SYNTHESIZER_CONVENTIONS } from '../../physics/forwardModel.js';
import { loadInoue14 } from '../../physics/igm.js';
import { loadInoue11 } from '../../physics/nebular.js';

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
    .action(async (o: PhotometryOptions) => {
      if (o.backend === 'gpu') throw new Error('--backend gpu: the GPU synthesis is not available yet (forward model part 2); use --backend cpu');
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
      const out = rows.map(({ id, params }, i) => {
        let res;
        try {
          res = model.photometry(params);
        } catch (e) {
          throw new Error(`${o.params}: row ${i + 2} (id ${id}): ${(e as Error).message}`);
        }
        return [id, ...res.fluxesNJy, ...DERIVED_COLUMNS.map(([, k]) => res.derived[k])];
      });
      writeCsv(o.out, ['id', ...bands.map((b) => `${b}_nJy`), ...DERIVED_COLUMNS.map(([c]) => c)], out);
      console.error(`photometry: ${rows.length} galaxies x ${bands.length} bands -> ${o.out}`);
    });
}
