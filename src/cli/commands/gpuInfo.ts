import type { Command } from 'commander';
import { withGpu } from '../../gpu/device.js';
import { deviceOptions } from '../common.js';

export function registerGpuInfo(program: Command): void {
  program
    .command('gpu-info')
    .description('print the WebGPU adapter, its features and limits')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withGpu(deviceOptions(cmd), async (gpu) => {
        const info = { runtime: gpu.runtime, adapter: gpu.adapter, features: [...gpu.features].sort(), limits: gpu.limits };
        if (opts.json) {
          console.log(JSON.stringify(info, null, 2));
          return;
        }
        const a = gpu.adapter;
        console.log(`adapter:  ${a.description || a.device} (vendor ${a.vendor}, architecture ${a.architecture}${a.isSoftware ? ', software' : ''})`);
        console.log(`features: ${info.features.join(', ')}`);
        console.log('limits:');
        for (const [k, v] of Object.entries(gpu.limits).sort()) console.log(`  ${k.padEnd(44)} ${v}`);
      });
    });
}
