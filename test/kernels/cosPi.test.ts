/**
 * philox_cos_pi (shaders/common/philox.wgsl), the cos of every Box-Muller draw on the GPU (posterior
 * base normals, simulation noise, priors): cos(pi t) against float64 Math.cos on t in [-1, 1],
 * including the fold points (+-1/4, +-1/2, +-3/4, +-1), 0 and values just beside them. The bound is
 * 3e-7 absolute: the argument's f32 rounding (pi t to 1 ulp, slope <= pi) and the polynomial's own
 * rounding, a few 6e-8 each; the truncation is below 2e-9. WGSL's built-in cos may be ~1e-4 off on
 * some implementations (SwiftShader), which is why the kernels do not use it there.
 */
import { describe, expect, it } from 'vitest';
import { createStorageBuffer, readFloat32, uploadBuffer } from '../../src/gpu/buffers.js';
import { runProgram } from '../../src/gpu/kernel.js';
import { registerShaderSources } from '../../src/gpu/shaderSource.js';
import { useGpu } from '../helpers/gpu.js';

const ctx = useGpu();

const PROBE = `
#include "common/philox.wgsl"
@group(0) @binding(0) var<storage, read> t: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= arrayLength(&t)) { return; }
  out[i] = philox_cos_pi(t[i]);
}`;

describe('philox_cos_pi: cos(pi t) the same on every GPU', () => {
  it('matches float64 cos(pi t) to 3e-7 on [-1, 1], fold points and their neighbours included', async () => {
    registerShaderSources({ 'test/cos_pi_probe.wgsl': PROBE });
    const ts: number[] = [];
    for (const c of [-1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1]) {
      ts.push(c);
      // The f32 neighbours on both sides.
      const f = new Float32Array([c]);
      const u = new Uint32Array(f.buffer);
      for (const d of [-1, 1]) {
        const g = new Float32Array(1);
        new Uint32Array(g.buffer)[0] = c === 0 ? 1 : u[0] + (Math.sign(c) * d > 0 ? 1 : -1);
        if (Math.abs(g[0]) <= 1) ts.push(c === 0 ? d * g[0] : g[0]);
      }
    }
    for (let i = 0; i <= 20000; i++) ts.push(-1 + i / 10000);
    const t = Float32Array.from(ts);
    const dev = ctx.device;
    const T = uploadBuffer(dev, t);
    const O = createStorageBuffer(dev, t.length * 4);
    try {
      await runProgram(dev, { name: 'cos_pi probe', shader: 'test/cos_pi_probe.wgsl', defines: {}, workgroups: [Math.ceil(t.length / 64), 1, 1] }, { 0: T, 1: O });
      const out = await readFloat32(dev, O, 0, t.length);
      let worst = 0;
      let at = 0;
      for (let i = 0; i < t.length; i++) {
        const err = Math.abs(out[i] - Math.cos(Math.PI * t[i]));
        if (err > worst) [worst, at] = [err, t[i]];
      }
      expect(worst, `worst at t = ${at}`).toBeLessThan(3e-7);
      // Exact where cos is exactly representable.
      expect(out[t.indexOf(0)]).toBe(1);
      expect(out[t.indexOf(1)]).toBe(-1);
      expect(out[t.indexOf(-1)]).toBe(-1);
      expect(Math.abs(out[t.indexOf(0.5)])).toBeLessThan(1e-7);
    } finally {
      T.destroy();
      O.destroy();
    }
  });
});
