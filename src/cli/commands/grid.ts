import { type Command, InvalidArgumentError } from 'commander';
import { buildGrid, loadBuiltGrid } from '../../grid/build.js';

function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got "${v}"`);
    return n;
  };
}

interface BuildFlags {
  grid: string;
  dataDir?: string;
  resolution?: number;
  wavelengthMin?: number;
  wavelengthMax?: number;
  out?: string;
  name?: string;
  keepZeroAge?: boolean;
  lSun?: number;
  spectraKey?: string;
  json?: boolean;
}

export function registerGrid(program: Command): void {
  const grid = program.command('grid').description('SPS grids: build the resampled float32 tables the GPU synthesis reads');

  grid
    .command('build')
    .description('read an SPS grid, resample it (flux-conserving) and write lnu.f32 + manifest.json')
    .requiredOption('--grid <name|path>', 'bc03 | maraston05 | path to a Synthesizer-format .h5/.hdf5 grid')
    .option('--data-dir <dir>', 'data directory (default: $SYNFERENCE_DATA_DIR or ../shared/data)')
    .option('--resolution <R>', 'lambda/dlambda of log-uniform bins (bin means of L_nu); omit to keep the native wavelengths', positiveNumber('--resolution'))
    .option('--wavelength-min <AA>', 'shortest wavelength kept [A] (default: the grid minimum)', positiveNumber('--wavelength-min'))
    .option('--wavelength-max <AA>', 'longest wavelength kept [A] (default: the grid maximum)', positiveNumber('--wavelength-max'))
    .option('--out <dir>', 'output root (default: grids/build, git-ignored)')
    .option('--name <name>', 'output folder name (default: derived from grid and resolution)')
    .option('--keep-zero-age', "keep BC03's t = 0 age (default: dropped, as in the Synthesizer reference)")
    .option('--l-sun <erg/s>', 'solar luminosity for BC03 L_sun/A -> erg/s/A (default 3.828e33, as Synthesizer)', positiveNumber('--l-sun'))
    .option('--spectra-key <key>', 'spectra/<key> of an HDF5 grid (default: incident)')
    .option('--json', 'print the manifest summary as JSON')
    .action(async (f: BuildFlags) => {
      if (f.wavelengthMin !== undefined && f.wavelengthMax !== undefined && f.wavelengthMin >= f.wavelengthMax) {
        throw new InvalidArgumentError(`--wavelength-min (${f.wavelengthMin}) must be < --wavelength-max (${f.wavelengthMax})`);
      }
      const t0 = performance.now();
      const { dir, manifest } = await buildGrid({
        grid: f.grid,
        dataDir: f.dataDir,
        resolution: f.resolution,
        wavelengthMinAA: f.wavelengthMin,
        wavelengthMaxAA: f.wavelengthMax,
        outDir: f.out,
        name: f.name,
        keepZeroAge: !!f.keepZeroAge,
        lSunErgS: f.lSun,
        spectraKey: f.spectraKey,
      });
      const s = manifest.shape;
      const summary = {
        dir,
        shape: s,
        ages: [manifest.axes.ageYr[0], manifest.axes.ageYr[s.nAge - 1]],
        metallicities: manifest.axes.metallicityZ,
        wavelengthAA: [manifest.axes.wavelengthAA[0], manifest.axes.wavelengthAA[s.nLambda - 1]],
        resampling: manifest.resampling.method,
        bytes: manifest.lnu.bytes,
        seconds: (performance.now() - t0) / 1000,
      };
      if (f.json) {
        console.log(JSON.stringify(summary, null, 2));
        return;
      }
      console.log(`wrote ${dir}`);
      console.log(`  ${s.nAge} ages [${summary.ages.join(', ')}] yr x ${s.nZ} Z [${manifest.axes.metallicityZ.join(', ')}] x ${s.nLambda} lambda [${summary.wavelengthAA.join(', ')}] A`);
      console.log(`  ${manifest.resampling.method}${manifest.resampling.resolution ? ` R=${manifest.resampling.resolution}` : ''}, ${(manifest.lnu.bytes / 2 ** 20).toFixed(1)} MiB float32, ${summary.seconds.toFixed(1)} s`);
    });

  grid
    .command('info')
    .description('print the manifest summary of a built grid')
    .argument('<dir|name>', 'built grid folder, or its name under grids/build')
    .option('--json', 'print the whole manifest as JSON')
    .action((dirOrName: string, f: { json?: boolean }) => {
      const b = loadBuiltGrid(dirOrName);
      const m = b.manifest;
      if (f.json) {
        console.log(JSON.stringify(m, null, 1));
        return;
      }
      console.log(`${m.name} (${b.dir})`);
      console.log(`  source: ${m.source.family} ${m.source.name}, IMF ${m.source.imf}, L_sun ${m.source.lSunErgS ?? 'n/a'}`);
      console.log(`  shape: ${m.shape.nAge} ages x ${m.shape.nZ} Z x ${m.shape.nLambda} lambda; ${m.resampling.method}`);
    });
}
