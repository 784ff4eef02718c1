/**
 * Child process of the kill-and-resume test: trains on a library with checkpoints every epoch and
 * appends "run <pid>", "epoch i", "checkpoint i", "saved" lines to a log (synchronously, so what the
 * log says happened did happen before any kill). A sleep per epoch leaves time to kill it mid-run.
 * Usage: node trainChild.mjs '{"library", "out", "log", "resume", "sleepMs", "flow", "options"}'
 */
import { appendFileSync } from 'node:fs';
import 'h5wasm/node';
import { register } from 'tsx/esm/api';

register();
const { trainFromLibrary } = await import('../../src/train/library.ts');

const args = JSON.parse(process.argv[2]);
const log = (s) => appendFileSync(args.log, s + '\n');
log(`run ${process.pid}`);
await trainFromLibrary({
  library: args.library,
  out: args.out,
  flow: args.flow,
  options: args.options,
  resume: args.resume,
  dtype: 'F64',
  onLog: (m) => log(`log ${m}`),
  onEpoch: async (p) => {
    log(`epoch ${p.epoch}`);
    await new Promise((r) => setTimeout(r, args.sleepMs));
  },
  onCheckpoint: (e) => log(`checkpoint ${e}`),
});
log('saved');
