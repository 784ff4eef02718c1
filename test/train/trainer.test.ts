import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFlow, fitFlowStandardization, nllAndGrad, sample as flowSample } from '../../src/flow/flow.js';
import { adamStep, clipGradNorm, createAdamState } from '../../src/flow/adam.js';
import { loadModelDir, MODEL_CONFIG_FILE, MODEL_WEIGHTS_FILE } from '../../src/flow/modelFiles.js';
import { CHECKPOINT_FILE, MemoryCheckpointStore } from '../../src/train/checkpoint.js';
import { CpuFlowEngine, baseNormals, createFlowEngine } from '../../src/train/engine.js';
import { trainFromLibrary } from '../../src/train/library.js';
import { epochOrder } from '../../src/train/split.js';
import { type TrainOptionsInput, trainFlow } from '../../src/train/trainer.js';
import { linearGaussianData, writeLinearGaussianLibrary } from './helpers.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'train-'));
const repoRoot = path.resolve(__dirname, '../..');
const small = { transforms: 2, hidden: 16, blocks: 1, bins: 8 };

describe('CpuFlowEngine', () => {
  const d = linearGaussianData({ n: 300, seed: 2, P: 3, F: 2 });
  const model = createFlow({ thetaDim: 3, contextDim: 2, transforms: 2, hidden: 6, blocks: 1, bins: 4, seed: 1 });
  fitFlowStandardization(model, d.theta, d.x, 300);

  it('trainEpoch = the shuffled mini-batch loop by hand (nllAndGrad, clip, Adam), bit for bit', async () => {
    const e = new CpuFlowEngine(model);
    await e.setData({ theta: d.theta, x: d.x, n: 300 });
    const rows = Uint32Array.from({ length: 250 }, (_, i) => i + 50);
    const st = await e.trainEpoch({ rows, seed: 4, epoch: 3, batchSize: 64, lr: 1e-2, clipNorm: 1 });
    expect(st.steps).toBe(4);

    const m = { ...model, params: model.params.slice() };
    const adam = createAdamState(m.params.length);
    const order = epochOrder(rows, 4, 3);
    let sum = 0;
    for (let s = 0; s < 250; s += 64) {
      const b = order.subarray(s, Math.min(250, s + 64));
      const t = Float64Array.from({ length: b.length * 3 }, (_, k) => d.theta[b[Math.floor(k / 3)] * 3 + (k % 3)]);
      const x = Float64Array.from({ length: b.length * 2 }, (_, k) => d.x[b[Math.floor(k / 2)] * 2 + (k % 2)]);
      const g = nllAndGrad(m, t, x, b.length);
      sum += g.loss * b.length;
      clipGradNorm(g.grad, 1);
      adamStep(m.params, g.grad, adam, { lr: 1e-2 });
    }
    expect(st.meanLoss).toBe(sum / 250);
    expect(Array.from(await e.getParams())).toEqual(Array.from(m.params));
    expect((await e.getOptimizerState()).step).toBe(4);
  });

  it('sample = flow.sample with the engine base normals; logProb matches; row checks', async () => {
    const e = await createFlowEngine('cpu', model);
    const x = Float64Array.of(0.1, -0.2, 1, 2);
    const r = await e.sample({ x, nCtx: 2, ctxIndex: Uint32Array.of(0, 1, 1), drawIndex: Float64Array.of(5, 6, 7), seed: 9 });
    const ref = flowSample(model, Float64Array.of(0.1, -0.2, 1, 2, 1, 2), 3, baseNormals(9, [5, 6, 7], 3), 1);
    expect(Array.from(r.theta)).toEqual(Array.from(ref.theta));
    const lp = await e.logProb(r.theta, Float64Array.of(0.1, -0.2, 1, 2, 1, 2), 3);
    for (let i = 0; i < 3; i++) expect(lp[i]).toBeCloseTo(r.logProb[i], 9);
    await expect(e.sample({ x, nCtx: 2, ctxIndex: Uint32Array.of(2), drawIndex: Float64Array.of(0), seed: 0 })).rejects.toThrow(/context index 2 outside/);
    await expect(e.evalLoss(Uint32Array.of(0))).rejects.toThrow(/no data/);
    await expect(e.setParams(new Float64Array(3))).rejects.toThrow(/setParams: 3 values/);
  });

  it('createFlowEngine: gpu gives the GPU engine; unknown engines are named', async () => {
    const g = await createFlowEngine('gpu', model);
    expect(g.kind).toBe('gpu');
    await g.dispose();
    await expect(createFlowEngine('tpu' as 'cpu', model)).rejects.toThrow(/unknown engine "tpu" \(available: cpu, gpu\)/);
  });
});

describe('trainer', () => {
  it('linear-Gaussian library (LibraryWriter): the validation loss falls close to the analytic optimum; model folder written', async () => {
    // theta ~ N(0, I_2), x = theta + 0.5 eps: posterior N(0.8 x, 0.2 I), expected NLL 2 x 0.5 ln(2 pi e 0.2) = 1.228.
    const lib = path.join(tmp, 'lg.h5');
    await writeLinearGaussianLibrary(lib, { n: 2000, seed: 3, P: 2, F: 2 });
    const out = path.join(tmp, 'lg-model');
    const seen: number[] = [];
    const { result, config } = await trainFromLibrary({
      library: lib,
      out,
      flow: small,
      options: { batchSize: 128, lr: 5e-3, maxEpochs: 25, patience: 5, seed: 1 },
      onEpoch: (p) => {
        seen.push(p.valLoss);
      },
    });
    const h = result.history;
    expect(seen.length).toBe(h.length);
    // Measured: 2.19 after epoch 0, best ~1.29 (finite-data / finite-training gap over 1.228).
    expect(h[0].valLoss! - result.summary.bestValLoss!).toBeGreaterThan(0.5);
    expect(result.summary.bestValLoss!).toBeLessThan(1.228 + 0.15);
    expect(result.summary.nVal).toBe(200);
    expect(existsSync(path.join(out, MODEL_CONFIG_FILE)) && existsSync(path.join(out, MODEL_WEIGHTS_FILE))).toBe(true);
    expect(existsSync(path.join(out, CHECKPOINT_FILE))).toBe(false);
    // No prior in the library's config: bounds from the training data range.
    expect(config.parameters.map((p) => p.boundsSource)).toEqual(['data', 'data']);
    expect(config.context.map((c) => c.name)).toEqual(['obs0', 'obs1']);
    expect(config.training?.library).toBe(path.resolve(lib));
    const m = await loadModelDir(out);
    expect(m.config.flow.transforms).toBe(2);
  });

  it('early stopping after `patience` epochs without improvement; the best weights are restored', async () => {
    // 80 rows and a wide flow with a high rate: the validation loss turns up within a few epochs.
    const d = linearGaussianData({ n: 80, seed: 4, P: 2, F: 2 });
    const patience = 4;
    const r = await trainFlow({
      data: { theta: d.theta, x: d.x, n: 80 },
      flow: { transforms: 3, hidden: 32, blocks: 1, bins: 8 },
      options: { batchSize: 16, lr: 1e-2, maxEpochs: 200, patience, seed: 1, valFraction: 0.25 },
    });
    expect(r.stoppedBy).toBe('patience');
    const best = r.summary.bestEpoch!;
    expect(r.summary.epochs).toBe(best + 1 + patience);
    const vals = r.history.map((e) => e.valLoss!);
    expect(Math.min(...vals)).toBe(vals[best]);
    expect(vals[vals.length - 1]).toBeGreaterThan(vals[best]);
    // The returned weights ARE those of the best epoch: the same validation loss, bit for bit.
    const e = new CpuFlowEngine(r.model);
    await e.setData({ theta: d.theta, x: d.x, n: 80 });
    expect(await e.evalLoss(r.split.val)).toBe(vals[best]);
  });

  it('time budget (fake clock: 1 s per epoch) and max epochs stop the run; both restore the best weights', async () => {
    const d = linearGaussianData({ n: 200, seed: 5, P: 1, F: 1 });
    let t = 0;
    const r = await trainFlow({ data: { theta: d.theta, x: d.x, n: 200 }, flow: small, options: { timeBudgetS: 3, seed: 2 }, clock: () => (t += 1000) });
    expect(r.stoppedBy).toBe('timeBudget');
    expect(r.summary.epochs).toBe(3);
    const r2 = await trainFlow({ data: { theta: d.theta, x: d.x, n: 200 }, flow: small, options: { maxEpochs: 2, seed: 2 } });
    expect(r2.stoppedBy).toBe('maxEpochs');
    expect(r2.summary.epochs).toBe(2);
  });

  it('rejects bad options and data with the key named', async () => {
    const d = linearGaussianData({ n: 20, seed: 5, P: 1, F: 1 });
    const data = { theta: d.theta, x: d.x, n: 20 };
    await expect(trainFlow({ data, options: { lr: -1 } })).rejects.toThrow(/lr: lr must be > 0/);
    await expect(trainFlow({ data, options: { batchSize: 0 } })).rejects.toThrow(/batchSize must be an integer >= 1/);
    await expect(trainFlow({ data, options: { bogus: 1 } as TrainOptionsInput })).rejects.toThrow(/Unrecognized key\(s\) in object: 'bogus'/);
    await expect(trainFlow({ data, flow: { hidden: 0 } })).rejects.toThrow(/hidden must be an integer/);
    const bad = Float64Array.from(d.theta);
    bad[7] = NaN;
    await expect(trainFlow({ data: { ...data, theta: bad } })).rejects.toThrow(/theta has a non-finite value \(NaN\) at row 7, column 0/);
  });

  it('in-process resume from a checkpoint (plateau schedule state included) = the uninterrupted run, bit for bit', async () => {
    const d = linearGaussianData({ n: 600, seed: 6, P: 2, F: 2 });
    const data = { theta: d.theta, x: d.x, n: 600 };
    const options: TrainOptionsInput = { batchSize: 64, lr: 5e-3, seed: 3, patience: 50, checkpointEvery: 1, schedule: { kind: 'plateau', patience: 0, factor: 0.7, threshold: 0.1 } };
    const store = new MemoryCheckpointStore();
    const first = await trainFlow({ data, flow: small, options: { ...options, maxEpochs: 3 }, checkpoint: store });
    expect(first.stoppedBy).toBe('maxEpochs');
    expect(store.saves).toBe(2); // after epochs 1 and 2 (not at the stop)
    const logs: string[] = [];
    const resumed = await trainFlow({ data, flow: small, options: { ...options, maxEpochs: 6 }, checkpoint: store, resume: true, onLog: (m) => logs.push(m) });
    expect(logs.join('\n')).toMatch(/resuming from memory: 2 epochs done/);
    expect(resumed.summary.resumedFrom).toBe(2);
    const whole = await trainFlow({ data, flow: small, options: { ...options, maxEpochs: 6 } });
    expect(Array.from(resumed.model.params)).toEqual(Array.from(whole.model.params));
    expect(resumed.history.map((h) => [h.trainLoss, h.valLoss, h.lr])).toEqual(whole.history.map((h) => [h.trainLoss, h.valLoss, h.lr]));
    expect(new Set(whole.history.map((h) => h.lr)).size).toBeGreaterThan(1); // the plateau schedule did act

    await expect(trainFlow({ data, flow: small, options: { ...options, maxEpochs: 6, lr: 1e-3 }, checkpoint: store, resume: true })).rejects.toThrow(
      /checkpoint belongs to another run \(different lr \(0.005, now 0.001\)\)/,
    );
    const other = linearGaussianData({ n: 600, seed: 7, P: 2, F: 2 });
    await expect(trainFlow({ data: { theta: other.theta, x: other.x, n: 600 }, flow: small, options: { ...options, maxEpochs: 6 }, checkpoint: store, resume: true })).rejects.toThrow(
      /different the training data/,
    );
  });

  it('MDN head: resume = the uninterrupted run bit for bit; another head or component count is another run', async () => {
    const d = linearGaussianData({ n: 400, seed: 8, P: 2, F: 2 });
    const data = { theta: d.theta, x: d.x, n: 400 };
    const mdn = { head: 'mdn' as const, components: 3, hidden: 8, blocks: 1 };
    const options: TrainOptionsInput = { batchSize: 64, lr: 5e-3, seed: 4, checkpointEvery: 1 };
    const store = new MemoryCheckpointStore();
    await trainFlow({ data, flow: mdn, options: { ...options, maxEpochs: 3 }, checkpoint: store });
    // The identity records the MDN keys (an NSF run's leaves them out, so older NSF checkpoints still resume).
    const ck = await store.load();
    expect(ck!.state.identity.flow).toMatchObject({ head: 'mdn', components: 3 });
    const resumed = await trainFlow({ data, flow: mdn, options: { ...options, maxEpochs: 5 }, checkpoint: store, resume: true });
    const whole = await trainFlow({ data, flow: mdn, options: { ...options, maxEpochs: 5 } });
    expect(resumed.model.config.head).toBe('mdn');
    expect(Array.from(resumed.model.params)).toEqual(Array.from(whole.model.params));
    expect(whole.history[whole.history.length - 1].valLoss!).toBeLessThan(whole.history[0].valLoss!);
    await expect(trainFlow({ data, flow: { ...mdn, components: 4 }, options: { ...options, maxEpochs: 5 }, checkpoint: store, resume: true })).rejects.toThrow(/checkpoint belongs to another run \(different flow/);
    await expect(trainFlow({ data, flow: { hidden: 8, blocks: 1 }, options: { ...options, maxEpochs: 5 }, checkpoint: store, resume: true })).rejects.toThrow(/checkpoint belongs to another run \(different flow/);
    const nsfStore = new MemoryCheckpointStore();
    await trainFlow({ data, flow: small, options: { ...options, maxEpochs: 2 }, checkpoint: nsfStore });
    const nsfFlow = (await nsfStore.load())!.state.identity.flow as Record<string, unknown>;
    expect('head' in nsfFlow || 'components' in nsfFlow).toBe(false);
  });

  it('killed (SIGKILL) mid-training in a child process and resumed: the same weights as an uninterrupted run', async () => {
    const lib = path.join(tmp, 'kill.h5');
    await writeLinearGaussianLibrary(lib, { n: 1200, seed: 8, P: 2, F: 2, uniform: { low: -2, high: 2 }, withPriorConfig: true });
    const flow = small;
    const options: TrainOptionsInput = { batchSize: 64, lr: 5e-3, seed: 5, maxEpochs: 10, patience: 3, checkpointEvery: 1, schedule: { kind: 'cosine' } };
    const out = path.join(tmp, 'killed-model');
    const log = path.join(tmp, 'kill.log');
    const child = path.join(repoRoot, 'test/train/trainChild.mjs');
    const readLog = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
    const runChild = async (resume: boolean, killAfterCheckpoint?: number) => {
      const before = readLog().length;
      const args = { library: lib, out, log, resume, sleepMs: 60, flow, options };
      const p = spawn(process.execPath, [child, JSON.stringify(args)], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (b) => (stderr += b));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => p.on('exit', (code, signal) => res({ code, signal })));
      let done = false;
      void exited.then(() => (done = true));
      if (killAfterCheckpoint !== undefined) {
        while (!done) {
          if (readLog().slice(before).includes(`checkpoint ${killAfterCheckpoint}`)) {
            p.kill('SIGKILL');
            break;
          }
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      const r = await exited;
      return { ...r, stderr, lines: readLog().slice(before) };
    };

    const killed = await runChild(false, 3);
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    expect(killed.lines).not.toContain('saved');
    expect(existsSync(path.join(out, CHECKPOINT_FILE))).toBe(true);
    expect(existsSync(path.join(out, MODEL_CONFIG_FILE))).toBe(false);

    // Starting again without resume is refused; with resume it continues.
    await expect(trainFromLibrary({ library: lib, out, flow, options })).rejects.toThrow(/holds a checkpoint of an interrupted training run .* pass --resume/);
    const resumed = await runChild(true);
    expect(resumed.code, resumed.stderr).toBe(0);
    const resumeLine = resumed.lines.find((l) => l.startsWith('log resuming'));
    expect(resumeLine).toMatch(/resuming from .*: (3|4) epochs done/);
    expect(resumed.lines).toContain('saved');
    expect(existsSync(path.join(out, CHECKPOINT_FILE))).toBe(false);

    const ref = path.join(tmp, 'uninterrupted-model');
    const whole = await trainFromLibrary({ library: lib, out: ref, flow, options, dtype: 'F64' });
    const a = readFileSync(path.join(out, MODEL_WEIGHTS_FILE));
    const b = readFileSync(path.join(ref, MODEL_WEIGHTS_FILE));
    expect(Buffer.compare(a, b)).toBe(0);
    const ca = JSON.parse(readFileSync(path.join(out, MODEL_CONFIG_FILE), 'utf8'));
    expect(ca.training.bestValLoss).toBe(whole.result.summary.bestValLoss);
    expect(ca.training.history.map((h: { valLoss: number }) => h.valLoss)).toEqual(whole.result.history.map((h) => h.valLoss));
    expect(ca.training.resumedFrom).toBeGreaterThanOrEqual(3);
    // The library's config has uniform priors: bounds from the prior.
    expect(ca.parameters).toEqual([
      { name: 'a0', unit: '', low: -2, high: 2, boundsSource: 'prior' },
      { name: 'a1', unit: '', low: -2, high: 2, boundsSource: 'prior' },
    ]);
  });
});
