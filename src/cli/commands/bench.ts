import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { type BenchRecord, deviceName, formatTable } from '../../../bench/harness.js';
import { BENCHMARKS } from '../../../bench/index.js';
import { withGpu } from '../../gpu/device.js';
import { deviceOptions, intList, positiveInt } from '../common.js';

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(`run a benchmark: ${Object.keys(BENCHMARKS).join(', ')}`)
    .argument('<name>', 'benchmark name')
    .option('--json', 'print the records as a JSON array on stdout')
    .option('--out <file>', 'also write the JSON records to a file')
    .option('--sizes <list>', 'comma-separated problem sizes', intList('--sizes'))
    .option('--repeats <n>', 'timed repetitions per measurement', positiveInt('--repeats'))
    .option('--tiles <list>', 'gemm: tile configurations to compare (auto, large, small, WGXxWGY:TM4xTN4:BK)', (v: string) => v.split(','))
    .option('--engines <list>', 'flow: engine configurations to compare (default, submit2048, rows, gemm, gemm+busy)', (v: string) => v.split(','))
    .option('--archs <list>', 'flow: architectures (sbi-default, reference-study, run-model, mdn)', (v: string) => v.split(','))
    .option('--profile', 'flow: log a per-kernel GPU-time breakdown of one training step at every size')
    .action(async (name: string, opts: { json?: boolean; out?: string; sizes?: number[]; repeats?: number; tiles?: string[]; engines?: string[]; archs?: string[]; profile?: boolean }, cmd: Command) => {
      const bench = BENCHMARKS[name];
      if (!bench) throw new Error(`unknown benchmark "${name}" (available: ${Object.keys(BENCHMARKS).join(', ')})`);
      const records: BenchRecord[] = [];
      await withGpu(deviceOptions(cmd), async (gpu) => {
        const device = deviceName(gpu);
        console.error(`bench ${name} on ${device} (${gpu.runtime})`);
        await bench.run({
          gpu,
          device,
          options: { sizes: opts.sizes, repeats: opts.repeats, tiles: opts.tiles, engines: opts.engines, archs: opts.archs, profile: opts.profile },
          emit(r) {
            records.push(r);
            if (!opts.json) console.error(`  ${r.size}: ${r.value.toFixed(3)} ${r.unit}${r.ratio_vs_cpu !== null ? ` (x${r.ratio_vs_cpu.toFixed(2)} vs CPU)` : ''}`);
          },
          log: (m) => console.error(m),
        });
      });
      if (opts.out) writeFileSync(opts.out, JSON.stringify(records, null, 2));
      console.log(opts.json ? JSON.stringify(records, null, 2) : formatTable(records));
    });
}
