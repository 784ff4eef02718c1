/**
 * The `synference` command line. Each command lives in src/cli/commands/<name>.ts and exports a
 * `register(program)` function; this file only wires them together.
 */
import { Command, CommanderError } from 'commander';
import { registerBench } from './commands/bench.js';
import { registerFit } from './commands/fit.js';
import { registerGpuInfo } from './commands/gpuInfo.js';
import { registerGrid } from './commands/grid.js';
import { registerPhotometry } from './commands/photometry.js';
import { registerRun } from './commands/run.js';
import { registerSample } from './commands/sample.js';
import { registerSimulate } from './commands/simulate.js';
import { registerTrain } from './commands/train.js';
import { registerValidate } from './commands/validate.js';

export function buildProgram(): Command {
  const program = new Command('synference')
    .description('Simulation-based inference for galaxy SED fitting on WebGPU')
    .option('--adapter <name>', 'GPU adapter name substring (e.g. llvmpipe, H100); env SYNFERENCE_ADAPTER')
    .option('--gpu-backend <name>', 'Dawn backend (vulkan, metal, d3d12, opengl); env SYNFERENCE_BACKEND')
    .option('--power-preference <pref>', 'high-performance | low-power')
    .showHelpAfterError()
    .exitOverride();
  registerGpuInfo(program);
  registerBench(program);
  registerGrid(program);
  registerPhotometry(program);
  registerSimulate(program);
  registerTrain(program);
  registerSample(program);
  registerValidate(program);
  registerRun(program);
  registerFit(program);
  return program;
}

/** Runs the CLI; returns the exit code (0 ok, 1 failure, 2 bad usage). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode === 0 ? 0 : 2;
    }
    console.error(`synference: ${(e as Error).message}`);
    if (process.env.SYNFERENCE_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}
