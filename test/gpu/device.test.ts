import { describe, expect, it } from 'vitest';
import { BufferPool, createStorageBuffer, packUniforms, readFloat32, readTyped, uploadBuffer } from '../../src/gpu/buffers.js';
import { ShaderCompileError } from '../../src/gpu/errors.js';
import { ComputeBatch, runProgram } from '../../src/gpu/kernel.js';
import { pipelineCache } from '../../src/gpu/pipelines.js';
import { registerShaderSources } from '../../src/gpu/shaderSource.js';
import { GpuTimer } from '../../src/gpu/timer.js';
import { mapProgram } from '../../kernels/elementwise.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();

registerShaderSources({
  'test/broken.wgsl': '@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = undefined_thing;\n}\n',
  'test/copy.wgsl': [
    '@group(0) @binding(0) var<storage, read> src: array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> dst: array<f32>;',
    '@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {',
    '  if (g.x < arrayLength(&dst)) { dst[g.x] = src[g.x] * SCALE; }',
    '}',
  ].join('\n'),
});

describe('device layer', () => {
  it('reports the adapter, features and real limits', () => {
    const { gpu } = ctx;
    expect(gpu.adapter.description.length + gpu.adapter.device.length).toBeGreaterThan(0);
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(gpu.limits.maxComputeWorkgroupStorageSize).toBeGreaterThanOrEqual(16384);
    for (const f of ['timestamp-query', 'shader-f16', 'subgroups']) {
      // Requested when the adapter has them (lavapipe and NVIDIA do).
      expect(gpu.features.has(f)).toBe(gpu.device.features.has(f));
    }
  });

  it('WGSL compile errors throw with the shader file name and the WGSL message', async () => {
    const err = await pipelineCache(ctx.device).get({ shader: 'test/broken.wgsl' }).catch((e) => e);
    expect(err).toBeInstanceOf(ShaderCompileError);
    expect(err.message).toMatch(/shaders\/test\/broken.wgsl/);
    expect(err.message).toMatch(/undefined_thing/);
  });

  it('validation errors throw instead of leaving zeros', async () => {
    const dev = ctx.device;
    const src = uploadBuffer(dev, new Float32Array([1, 2, 3]));
    const program = { name: 'copy', shader: 'test/copy.wgsl', defines: { SCALE: '2.0' }, workgroups: [1, 1, 1] as [number, number, number] };
    // Binding the same buffer as read and read_write in one dispatch is a validation error.
    await expect(runProgram(dev, program, { 0: src, 1: src })).rejects.toThrow(/WebGPU error in kernels \[copy\]/);
    const dst = createStorageBuffer(dev, 12);
    await runProgram(dev, program, { 0: src, 1: dst });
    expect([...(await readFloat32(dev, dst))]).toEqual([2, 4, 6]);
    src.destroy();
    dst.destroy();
  });

  it('caches pipelines by (shader, defines)', async () => {
    const cache = pipelineCache(ctx.device);
    const p1 = await cache.get({ shader: 'test/copy.wgsl', defines: { SCALE: '2.0' } });
    const p2 = await cache.get({ shader: 'test/copy.wgsl', defines: { SCALE: '2.0' } });
    const p3 = await cache.get({ shader: 'test/copy.wgsl', defines: { SCALE: '3.0' } });
    expect(p1).toBe(p2);
    expect(p1).not.toBe(p3);
  });

  it('rejects dispatches beyond the per-dimension limit', () => {
    const program = { ...mapProgram({ n: 10, op: 'relu' }), workgroups: [70000, 1, 1] as [number, number, number] };
    expect(() => new ComputeBatch(ctx.device).add(program, {})).toThrow(/exceeds the device limit/);
  });

  it('uploads and reads back typed arrays exactly', async () => {
    const dev = ctx.device;
    const u = new Uint32Array([0, 1, 0xffffffff, 12345]);
    const b = uploadBuffer(dev, u);
    expect([...(await readTyped(dev, b, Uint32Array))]).toEqual([...u]);
    expect([...(await readTyped(dev, b, Uint32Array, 2, 1))]).toEqual([0xffffffff]);
    b.destroy();
  });

  it('packs uniforms with 16-byte alignment and rejects non-u32 values', () => {
    const buf = packUniforms([['u32', 7], ['f32', 0.5], ['i32', -3]]);
    expect(buf.byteLength).toBe(16);
    const dv = new DataView(buf);
    expect([dv.getUint32(0, true), dv.getFloat32(4, true), dv.getInt32(8, true)]).toEqual([7, 0.5, -3]);
    expect(() => packUniforms([['u32', -1]])).toThrow(/not a u32/);
  });

  it('buffer pool reuses released buffers by size class', () => {
    const pool = new BufferPool(ctx.device);
    const a = pool.acquire(1000);
    pool.release(a);
    const b = pool.acquire(900);
    expect(b).toBe(a);
    const c = pool.acquire(5000);
    expect(c).not.toBe(a);
    expect(() => pool.release(createStorageBuffer(ctx.device, 4))).toThrow(/not acquired/);
    pool.release(b);
    expect(() => pool.release(b)).toThrow(/released twice/);
    expect(pool.allocatedBytes).toBe(1024 + 8192);
    pool.destroy();
  });

  it('times passes with timestamp queries (or the wall clock)', async () => {
    const dev = ctx.device;
    const timer = new GpuTimer(dev);
    const n = 1 << 20;
    const x = createStorageBuffer(dev, n * 4), y = createStorageBuffer(dev, n * 4);
    timer.begin();
    await new ComputeBatch(dev, { timer }).add(mapProgram({ n, op: 'exp' }), { 0: x, 2: y }).run();
    const t = await timer.end();
    expect(t.source).toBe(dev.features.has('timestamp-query') ? 'timestamp-query' : 'wall-clock');
    expect(t.seconds).toBeGreaterThan(0);
    expect(t.seconds).toBeLessThan(60);
    const wall = new GpuTimer(dev, 4, true);
    wall.begin();
    await new ComputeBatch(dev, { timer: wall }).add(mapProgram({ n, op: 'exp' }), { 0: x, 2: y }).run();
    expect((await wall.end()).source).toBe('wall-clock');
    timer.destroy();
    x.destroy();
    y.destroy();
  });
});
