/**
 * Training checkpoints: everything a resumed run needs to continue bit for bit (on the CPU engine)
 * where an interrupted one stopped, at an epoch boundary.
 *
 * One safetensors file (F64 tensors `params`, `adam.m`, `adam.v`, `best.params`, in the engine's flat
 * layout) whose `__metadata__.checkpoint` is JSON: format/version, the run's fingerprint (data, flow
 * config and every option that changes the result), epochs done (= the next epoch to run: the
 * shuffles are counter-based, so this IS the RNG position), Adam's step count, best-so-far (loss,
 * epoch, epochs without improvement), schedule state, the standardisation, history, elapsed time.
 *
 * `FileCheckpointStore` writes it atomically (temporary file, fsync, rename, fsync of the folder):
 * a kill at any moment leaves the previous checkpoint or the new one, never a torn file. Node only
 * (node:fs is imported dynamically, so this module loads in a browser too).
 */
import { z } from 'zod';
import type { AdamState } from '../flow/adam.js';
import { EpochRecordSchema } from '../flow/modelFiles.js';
import { parseSafetensors, serializeSafetensors, tensorToFloat64 } from '../flow/safetensors.js';

export const CHECKPOINT_FORMAT = 'synference-train-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const CHECKPOINT_FILE = 'checkpoint.safetensors';

const StdJson = z.object({ mean: z.array(z.number()), std: z.array(z.number()) }).strict();

export const CheckpointStateSchema = z
  .object({
    format: z.literal(CHECKPOINT_FORMAT),
    version: z.literal(CHECKPOINT_VERSION),
    /** Identity of the run (see trainer.ts runFingerprint); a resume must match it. */
    fingerprint: z.string(),
    /** Human-readable parts of the fingerprint, for error messages. */
    identity: z.record(z.unknown()),
    /** Epochs completed = index of the next epoch. */
    epochsDone: z.number().int().nonnegative(),
    adamStep: z.number().int().nonnegative(),
    bestValLoss: z.number().nullable(),
    bestEpoch: z.number().int().min(-1),
    epochsSinceImprovement: z.number().int().nonnegative(),
    schedule: z.object({ lr: z.number(), best: z.number().nullable(), bad: z.number().int().nonnegative() }).strict(),
    thetaStd: StdJson,
    xStd: StdJson,
    history: z.array(EpochRecordSchema),
    elapsedS: z.number().nonnegative(),
    /** The counter-based streams' position: seed and next epoch (informative; = epochsDone). */
    rng: z.object({ seed: z.number().int().nonnegative(), nextEpoch: z.number().int().nonnegative() }).strict(),
    created: z.string(),
  })
  .strict();
export type CheckpointState = z.output<typeof CheckpointStateSchema>;

export interface TrainCheckpoint {
  state: CheckpointState;
  params: Float64Array;
  bestParams: Float64Array;
  adam: AdamState;
}

export function serializeCheckpoint(c: TrainCheckpoint): Uint8Array {
  const L = c.params.length;
  if (c.bestParams.length !== L || c.adam.m.length !== L || c.adam.v.length !== L) throw new RangeError('checkpoint: params, best params and Adam moments differ in length');
  const state: CheckpointState = { ...c.state, adamStep: c.adam.step };
  return serializeSafetensors(
    [
      ['params', { dtype: 'F64', shape: [L], data: c.params }],
      ['adam.m', { dtype: 'F64', shape: [L], data: c.adam.m }],
      ['adam.v', { dtype: 'F64', shape: [L], data: c.adam.v }],
      ['best.params', { dtype: 'F64', shape: [L], data: c.bestParams }],
    ],
    { checkpoint: JSON.stringify(state) },
  );
}

export function parseCheckpoint(bytes: ArrayBuffer | Uint8Array, source = CHECKPOINT_FILE): TrainCheckpoint {
  const st = parseSafetensors(bytes, source);
  const meta = st.metadata.checkpoint;
  if (meta === undefined) throw new Error(`${source}: not a training checkpoint (no __metadata__.checkpoint)`);
  let obj: unknown;
  try {
    obj = JSON.parse(meta);
  } catch (e) {
    throw new Error(`${source}: checkpoint metadata is not JSON (${(e as Error).message})`);
  }
  const r = CheckpointStateSchema.safeParse(obj);
  if (!r.success) throw new Error(`${source}: bad checkpoint metadata: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const get = (name: string) => {
    const t = st.byName.get(name);
    if (!t || t.dtype !== 'F64' || t.shape.length !== 1) throw new Error(`${source}: checkpoint tensor "${name}" missing or not a 1-D F64 tensor`);
    return tensorToFloat64(t, source);
  };
  const params = get('params');
  const m = get('adam.m');
  const v = get('adam.v');
  const bestParams = get('best.params');
  if (m.length !== params.length || v.length !== params.length || bestParams.length !== params.length) throw new Error(`${source}: checkpoint tensors differ in length`);
  return { state: r.data, params, bestParams, adam: { step: r.data.adamStep, m, v } };
}

/** Where checkpoints live. The trainer only needs these three operations. */
export interface CheckpointStore {
  /** For messages, e.g. the file path. */
  readonly description: string;
  load(): Promise<TrainCheckpoint | null>;
  save(c: TrainCheckpoint): Promise<void>;
  remove(): Promise<void>;
}

/** A checkpoint file on disk, replaced atomically on every save. */
export class FileCheckpointStore implements CheckpointStore {
  readonly file: string;
  readonly description: string;

  constructor(file: string) {
    this.file = file;
    this.description = file;
  }

  async exists(): Promise<boolean> {
    const fs = await import('node:fs');
    return fs.existsSync(this.file);
  }

  async load(): Promise<TrainCheckpoint | null> {
    const fs = await import('node:fs/promises');
    let bytes: Uint8Array;
    try {
      bytes = await fs.readFile(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new Error(`${this.file}: cannot read checkpoint (${(e as Error).message})`);
    }
    return parseCheckpoint(bytes, this.file);
  }

  async save(c: TrainCheckpoint): Promise<void> {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const bytes = serializeCheckpoint(c);
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      let off = 0;
      while (off < bytes.byteLength) off += fs.writeSync(fd, bytes, off, bytes.byteLength - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    try {
      const dfd = fs.openSync(path.dirname(this.file), 'r');
      try {
        fs.fsyncSync(dfd);
      } finally {
        fs.closeSync(dfd);
      }
    } catch {
      // Not every platform / file system can fsync a folder; the rename is atomic anyway.
    }
  }

  async remove(): Promise<void> {
    const fs = await import('node:fs');
    fs.rmSync(this.file, { force: true });
    fs.rmSync(`${this.file}.tmp`, { force: true });
  }
}

/** In-memory store (tests, browser). */
export class MemoryCheckpointStore implements CheckpointStore {
  readonly description = 'memory';
  bytes: Uint8Array | null = null;
  saves = 0;
  async load(): Promise<TrainCheckpoint | null> {
    return this.bytes ? parseCheckpoint(this.bytes, 'memory checkpoint') : null;
  }
  async save(c: TrainCheckpoint): Promise<void> {
    this.bytes = serializeCheckpoint(c);
    this.saves++;
  }
  async remove(): Promise<void> {
    this.bytes = null;
  }
}
