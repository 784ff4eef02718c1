import type { Command } from 'commander';
import { withGpu } from '../../gpu/device.js';
import { type EndToEndOptions, runEndToEnd } from '../../pipeline/endToEnd.js';
import { deviceOptions, positiveInt } from '../common.js';

/** The command's options are the pipeline's (demoN and log stay internal). */
type RunOptions = Omit<EndToEndOptions, 'gpu' | 'log' | 'demoN'>;

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('the main job (npm start): grid -> simulate -> train models 1 and 2 -> validate -> metrics.json + report, sized to finish in ~15 min on a 2-core software GPU')
    .option('--out <dir>', 'run folder (default out/run-<time>)')
    .option('--n <n>', 'training-library size (default 100000)', positiveInt('--n'))
    .option('--n-test <n>', 'held-out library size (default 10000)', positiveInt('--n-test'))
    .option('--minutes <m>', 'wall-clock budget of the whole run: the training time per model is what is left after simulating, less a reserve for validation and the report (default 14)', positiveInt('--minutes'))
    .option('--train-seconds <s>', 'fixed training time per model instead (overrides --minutes)', positiveInt('--train-seconds'))
    .option('--validate-n <n>', 'held-out objects validated per model (default 1000)', positiveInt('--validate-n'))
    .option('--samples <m>', 'posterior samples per object (default 500)', positiveInt('--samples'))
    .option('--seed <n>', 'seed (default 20251126)', positiveInt('--seed'))
    .option('--data-dir <dir>', 'data directory (default ../shared/data or $SYNFERENCE_DATA_DIR)')
    .option('--config <file>', 'simulation config (default examples/reference-study.yaml)')
    .action(async (o: RunOptions, cmd: Command) => {
      await withGpu(deviceOptions(cmd), (gpu) =>
        runEndToEnd({ ...o, gpu }),
      );
    });
}
