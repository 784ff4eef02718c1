import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { withGpu } from '../../gpu/device.js';
import { loadSimulationConfig } from '../../simulate/config.js';
import { simulateLibrary } from '../../simulate/simulate.js';
import { deviceOptions, positiveInt } from '../common.js';

interface SimulateCliOptions {
  config: string;
  n?: number;
  out: string;
  dataDir?: string;
  overwrite?: boolean;
  progress: boolean;
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('simulate a training library (HDF5: theta, x, fluxes, errors, derived) from a model config, on the GPU; resumes an interrupted run')
    .requiredOption('--config <file>', 'simulation config (YAML or JSON; see examples/reference-study.yaml)')
    .option('--n <n>', 'number of galaxies (default: the config\'s n)', positiveInt('--n'))
    .requiredOption('--out <file>', 'output library (.h5); partial work lives in <out>.parts/ until the end')
    .option('--data-dir <dir>', 'data directory (default ../shared/data or $SYNFERENCE_DATA_DIR)')
    .option('--overwrite', 'discard an unfinished run made with another config, seed or size')
    .option('--no-progress', 'no progress bar')
    .action(async (o: SimulateCliOptions, cmd: Command) => {
      const config = await loadSimulationConfig(o.config);
      const n = o.n ?? config.n;
      if (!n) throw new Error('--n is required (the config has no n)');
      await withGpu(deviceOptions(cmd), async (gpu) => {
        const bar = o.progress ? new cliProgress.SingleBar({ format: 'simulate [{bar}] {percentage}% | {value}/{total} galaxies | {rate} gal/s | ETA {eta_formatted}', hideCursor: true, stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
        const t0 = performance.now();
        let done = 0;
        const res = await simulateLibrary({
          gpu,
          config,
          n,
          out: o.out,
          dataDir: o.dataDir,
          configDir: path.dirname(path.resolve(o.config)),
          overwrite: o.overwrite,
          onStart: ({ pendingRows, resumed }) => {
            if (resumed) console.error(`simulate: resuming ${o.out}: ${n - pendingRows} of ${n} galaxies already done`);
            bar?.start(pendingRows, 0, { rate: '-' });
          },
          onChunk: (rows) => {
            done += rows;
            bar?.update(done, { rate: (done / ((performance.now() - t0) / 1000)).toFixed(0) });
          },
        });
        bar?.stop();
        const sel = res.candidates > res.computedRows ? `; detection selection kept ${res.computedRows} of ${res.candidates} simulated (${((100 * res.computedRows) / res.candidates).toFixed(1)} %)` : '';
        console.error(`simulate: ${res.n} galaxies in ${o.out} (${res.computedRows} computed in ${res.seconds.toFixed(1)} s on ${gpu.adapter.description || gpu.adapter.device}${sel})`);
      });
    });
}
