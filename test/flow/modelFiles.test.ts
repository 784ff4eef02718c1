import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFlow, fitFlowStandardization, logProb } from '../../src/flow/flow.js';
import {
  MODEL_CONFIG_FILE,
  MODEL_WEIGHTS_FILE,
  type ModelInfo,
  loadModelDir,
  loadModelFromUrl,
  parseModel,
  saveModelDir,
  serializeModel,
} from '../../src/flow/modelFiles.js';
import { parseSafetensors, serializeSafetensors, tensorToFloat64 } from '../../src/flow/safetensors.js';
import { randn } from './helpers.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'model-'));

/** A safetensors buffer from a header object and raw data bytes (no padding). */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const h = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setUint32(0, h.length, true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips F32 / F64 / I32 / U8 tensors and metadata; data starts 8-byte aligned', () => {
    const f32 = Float32Array.of(1.5, -2.25, 3e-8, 1e30, 0, -0);
    const f64 = Float64Array.of(Math.PI, -1e-300, 2 ** 60);
    const buf = serializeSafetensors(
      [
        ['a.weight', { dtype: 'F32', shape: [2, 3], data: f32 }],
        ['b', { dtype: 'F64', shape: [3], data: f64 }],
        ['c', { dtype: 'I32', shape: [2], data: [-7, 2 ** 31 - 1] }],
        ['d', { dtype: 'U8', shape: [], data: [200] }],
        ['e', { dtype: 'F32', shape: [0, 4], data: [] }],
      ],
      { k: 'v' },
    );
    const n = new DataView(buf.buffer).getUint32(0, true);
    expect((8 + n) % 8).toBe(0);
    const st = parseSafetensors(buf);
    expect(st.metadata).toEqual({ k: 'v' });
    expect(st.tensors.map((t) => t.name)).toEqual(['a.weight', 'b', 'c', 'd', 'e']);
    expect(st.byName.get('a.weight')!.shape).toEqual([2, 3]);
    expect(Array.from(tensorToFloat64(st.byName.get('a.weight')!))).toEqual(Array.from(f32));
    expect(Array.from(tensorToFloat64(st.byName.get('b')!))).toEqual(Array.from(f64));
    expect(Array.from(tensorToFloat64(st.byName.get('c')!))).toEqual([-7, 2 ** 31 - 1]);
    expect(Array.from(tensorToFloat64(st.byName.get('d')!))).toEqual([200]);
    expect(tensorToFloat64(st.byName.get('e')!).length).toBe(0);
  });

  it('reads a file laid out as the HF reference writes it (header padded with spaces, F16/BF16/I64)', () => {
    // Data: F16 [1.0, -2.0] = 0x3c00, 0xc000; BF16 [1.0] = 0x3f80; I64 [-3].
    const data = new Uint8Array(2 * 2 + 2 + 8);
    const dv = new DataView(data.buffer);
    dv.setUint16(0, 0x3c00, true);
    dv.setUint16(2, 0xc000, true);
    dv.setUint16(4, 0x3f80, true);
    dv.setBigInt64(6, -3n, true);
    const header = {
      __metadata__: { format: 'pt' },
      h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      g: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] },
      i: { dtype: 'I64', shape: [1, 1], data_offsets: [6, 14] },
    };
    const text = JSON.stringify(header) + '       ';
    const st = parseSafetensors(rawFile(null, data, text).buffer as ArrayBuffer);
    expect(Array.from(tensorToFloat64(st.byName.get('h')!))).toEqual([1, -2]);
    expect(Array.from(tensorToFloat64(st.byName.get('g')!))).toEqual([1]);
    expect(Array.from(tensorToFloat64(st.byName.get('i')!))).toEqual([-3]);
    expect(st.metadata.format).toBe('pt');
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['too small', new Uint8Array(5), /too small/],
    ['header length past the end', (() => { const b = rawFile({}); new DataView(b.buffer).setUint32(0, 999, true); return b; })(), /runs past the end/],
    ['header length absurd', (() => { const b = rawFile({}); new DataView(b.buffer).setUint32(4, 1, true); return b; })(), /exceeds the limit/],
    ['not JSON', rawFile(null, undefined, '{"a": '), /not valid JSON/],
    ['not an object', rawFile([1, 2]), /must be a JSON object/],
    ['unknown dtype', rawFile({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, new Uint8Array(16)), /unknown dtype "F128"/],
    ['size mismatch', rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)), /needs 12/],
    ['hole', rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /hole/],
    [
      'overlap',
      rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)),
      /overlap/,
    ],
    ['truncated data', rawFile({ a: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(9)), /truncated/],
    ['trailing bytes', rawFile({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(3)), /trailing bytes/],
    ['bad shape', rawFile({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 1] } }, new Uint8Array(1)), /shape must be/],
    ['bad offsets', rawFile({ a: { dtype: 'U8', shape: [1], data_offsets: [1, 0] } }, new Uint8Array(1)), /data_offsets must be/],
    ['metadata not strings', rawFile({ __metadata__: { a: 1 } }), /__metadata__.a must be a string/],
    ['duplicate name', rawFile(null, new Uint8Array(2), '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'), /duplicate tensor name "a"/],
    ['extra key', rawFile({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1], x: 1 } }, new Uint8Array(1)), /unknown key/],
  ];
  for (const [what, buf, re] of bad) {
    it(`rejects a malformed file: ${what}`, () => {
      expect(() => parseSafetensors(buf, 'f.safetensors')).toThrow(re);
      expect(() => parseSafetensors(buf, 'f.safetensors')).toThrow(/^f\.safetensors: /);
    });
  }
});

function trainedLikeFlow() {
  const m = createFlow({ thetaDim: 3, contextDim: 2, transforms: 3, hidden: 7, blocks: 1, bins: 5, seed: 4 });
  const n = 50;
  const th = randn(n * 3, 1, 2);
  const x = randn(n * 2, 2, 3);
  fitFlowStandardization(m, th, x, n);
  // Perturb the weights so the test is not about the initialiser.
  const z = randn(m.params.length, 9, 0.1);
  for (const t of m.layout.tensors) for (let i = 0; i < t.size; i++) m.params[t.offset + i] += z[t.offset + i];
  return { m, th: randn(20 * 3, 5), x: randn(20 * 2, 6) };
}

const info: ModelInfo = {
  parameters: [
    { name: 'redshift', unit: '', low: 0, high: 14, boundsSource: 'prior' },
    { name: 'log10_mass', unit: 'log10(Msun)', low: 4, high: 12, boundsSource: 'prior' },
    { name: 'free', low: null, high: null, boundsSource: 'none' },
  ],
  context: [{ name: 'mag_a' }, { name: 'mag_b', unit: 'mag' }],
  training: { epochs: 3, bestEpoch: 1, bestValLoss: 1.5, stoppedBy: 'patience', history: [{ epoch: 0, trainLoss: 2, valLoss: 1.9, lr: 5e-4 }] },
};

describe('model files', () => {
  it('F64 weights round-trip bit for bit (any alignment); log-probs identical', () => {
    const { m, th, x } = trainedLikeFlow();
    const s = serializeModel(m, info, { dtype: 'F64' });
    for (const align of [64, 1, 3]) {
      const r = parseModel(s.configText, s.weights.slice().buffer as ArrayBuffer, { alignElements: align });
      expect(r.flow.layout.alignElements).toBe(align);
      for (const t of m.layout.tensors) {
        const u = r.flow.layout.tensors.find((q) => q.name === t.name)!;
        expect(Array.from(r.flow.params.subarray(u.offset, u.offset + u.size))).toEqual(Array.from(m.params.subarray(t.offset, t.offset + t.size)));
      }
      expect(Array.from(logProb(r.flow, th, x, 20))).toEqual(Array.from(logProb(m, th, x, 20)));
      expect(Array.from(r.flow.thetaStd.std)).toEqual(Array.from(m.thetaStd.std));
      expect(r.config.parameters[2]).toEqual({ name: 'free', unit: '', low: null, high: null, boundsSource: 'none' });
      expect(r.config.context.map((c) => c.name)).toEqual(['mag_a', 'mag_b']);
      expect(r.config.training?.bestValLoss).toBe(1.5);
    }
  });

  it('F32 weights (the default) hold fround(params); folder save/load and URL load agree', async () => {
    const { m, th, x } = trainedLikeFlow();
    const dir = path.join(tmp, 'm1');
    const cfg = await saveModelDir(dir, m, info);
    expect(cfg.weights.dtype).toBe('F32');
    const st = parseSafetensors(readFileSync(path.join(dir, MODEL_WEIGHTS_FILE)));
    expect(st.tensors.map((t) => t.name)).toEqual(m.layout.tensors.map((t) => t.name));
    expect(st.tensors.every((t) => t.dtype === 'F32')).toBe(true);
    expect(st.byName.get('t0.in.weight')!.shape).toEqual([1 + 2, 7]); // identity dims (P=3: 1) + F
    const r = await loadModelDir(dir);
    for (let i = 0; i < m.params.length; i++) expect(r.flow.params[i]).toBe(Math.fround(m.params[i]));
    // Weights rounded to f32: log-densities move by ~1e-6 relative.
    const a = logProb(r.flow, th, x, 20);
    const b = logProb(m, th, x, 20);
    for (let i = 0; i < 20; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-4 * (1 + Math.abs(b[i])));
    // Browser path: fetch from a "server".
    const files: Record<string, Uint8Array> = { [MODEL_CONFIG_FILE]: readFileSync(path.join(dir, MODEL_CONFIG_FILE)), [MODEL_WEIGHTS_FILE]: readFileSync(path.join(dir, MODEL_WEIGHTS_FILE)) };
    const fakeFetch = (async (url: string) => {
      const name = url.split('/').pop()!;
      const body = files[name];
      return body ? new Response(new Uint8Array(body)) : new Response('nope', { status: 404, statusText: 'Not Found' });
    }) as typeof fetch;
    const u = await loadModelFromUrl('https://example.invalid/model', { fetch: fakeFetch });
    expect(Array.from(u.flow.params)).toEqual(Array.from(r.flow.params));
    await expect(loadModelFromUrl('https://example.invalid/other/', { fetch: (async () => new Response('', { status: 404, statusText: 'Not Found' })) as typeof fetch })).rejects.toThrow(/HTTP 404/);
  });

  describe('rejects malformed model folders with clear errors', () => {
    const { m } = trainedLikeFlow();
    const good = serializeModel(m, info);
    const cfg = () => JSON.parse(good.configText);
    const cases: [string, () => unknown, RegExp][] = [
      ['wrong format', () => ({ ...cfg(), format: 'x' }), /format must be "synference-flow-model"/],
      ['future version', () => ({ ...cfg(), formatVersion: 2 }), /formatVersion must be 1/],
      ['missing standardization', () => ({ ...cfg(), standardization: undefined }), /standardization: Required/],
      ['std of 0', () => { const c = cfg(); c.standardization.theta.std[1] = 0; return c; }, /standardization.theta.std.1: std must be > 0/],
      ['std length', () => { const c = cfg(); c.standardization.x.mean.push(1); return c; }, /standardization.x.mean: has 3 entries, but flow.contextDim is 2/],
      ['parameter count', () => { const c = cfg(); c.parameters.pop(); return c; }, /parameters: has 2 entries, but flow.thetaDim is 3/],
      ['bounds order', () => { const c = cfg(); c.parameters[0].low = 20; return c; }, /parameters.0: low must be < high/],
      ['bad flow key', () => { const c = cfg(); c.flow.hidden = -1; return c; }, /flow.hidden: hidden must be an integer/],
      ['unknown key', () => ({ ...cfg(), extra: 1 }), /Unrecognized key\(s\) in object: 'extra'/],
      ['duplicate parameter', () => { const c = cfg(); c.parameters[1].name = 'redshift'; return c; }, /parameters: duplicate name "redshift"/],
    ];
    for (const [what, make, re] of cases) {
      it(`config: ${what}`, () => {
        expect(() => parseModel(JSON.stringify(make()), good.weights)).toThrow(re);
      });
    }
    it('config: not JSON', () => expect(() => parseModel('{oops', good.weights)).toThrow(/config.json: not valid JSON/));

    const weightCases: [string, () => Uint8Array, RegExp][] = [
      ['missing tensor', () => serializeSafetensors(m.layout.tensors.slice(1).map((t) => [t.name, { dtype: 'F32', shape: t.shape, data: new Float32Array(t.size) }] as const)), /missing tensor "t0.in.weight"/],
      [
        'wrong shape',
        () => serializeSafetensors(m.layout.tensors.map((t, i) => [t.name, { dtype: 'F32', shape: i === 0 ? [t.size] : t.shape, data: new Float32Array(t.size) }] as const)),
        /tensor "t0.in.weight": shape \[21\], the flow in config.json needs \[3, 7\]/,
      ],
      [
        'extra tensor',
        () => serializeSafetensors([...m.layout.tensors.map((t) => [t.name, { dtype: 'F32' as const, shape: t.shape, data: new Float32Array(t.size) }] as const), ['t9.in.weight', { dtype: 'F32', shape: [1], data: [0] }]]),
        /unexpected tensor\(s\) t9.in.weight/,
      ],
      ['NaN', () => serializeSafetensors(m.layout.tensors.map((t, i) => [t.name, { dtype: 'F32', shape: t.shape, data: new Float32Array(t.size).fill(i === 2 ? NaN : 0) }] as const)), /tensor "t0.block0.lin1.weight": non-finite value NaN/],
      ['integer dtype', () => serializeSafetensors(m.layout.tensors.map((t) => [t.name, { dtype: 'I32', shape: t.shape, data: new Int32Array(t.size) }] as const)), /dtype I32, expected F32 or F64/],
      ['truncated', () => good.weights.subarray(0, good.weights.length - 3), /truncated/],
    ];
    for (const [what, make, re] of weightCases) {
      it(`weights: ${what}`, () => {
        expect(() => parseModel(good.configText, make(), { weightsSource: 'w.safetensors' })).toThrow(re);
        expect(() => parseModel(good.configText, make(), { weightsSource: 'w.safetensors' })).toThrow(/^w\.safetensors: /);
      });
    }

    it('folders: missing folder, a file, missing config, missing weights', async () => {
      await expect(loadModelDir(path.join(tmp, 'nope'))).rejects.toThrow(/no such model folder/);
      const f = path.join(tmp, 'afile');
      writeFileSync(f, 'x');
      await expect(loadModelDir(f)).rejects.toThrow(/not a folder/);
      const d = path.join(tmp, 'm2');
      await saveModelDir(d, m, info);
      writeFileSync(path.join(d, MODEL_WEIGHTS_FILE), new Uint8Array(3));
      await expect(loadModelDir(d)).rejects.toThrow(/weights.safetensors: file too small/);
      writeFileSync(path.join(d, MODEL_CONFIG_FILE), '{"format": 1}');
      await expect(loadModelDir(d)).rejects.toThrow(/config.json: format must be/);
      const e = path.join(tmp, 'm3');
      await saveModelDir(e, m, info);
      const { rmSync } = await import('node:fs');
      rmSync(path.join(e, MODEL_CONFIG_FILE));
      await expect(loadModelDir(e)).rejects.toThrow(/config.json: cannot read \(ENOENT\)/);
    });
  });
});
