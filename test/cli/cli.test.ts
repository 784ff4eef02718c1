/** The `synference` command as a user runs it: a separate Node process that must exit by itself. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const bin = path.resolve(__dirname, '../../bin/synference.js');

function run(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  // A hung process (device not released) shows up as a timeout: status null, signal SIGTERM.
  expect(r.signal, `synference ${args.join(' ')} did not exit by itself`).toBeNull();
  return r;
}

describe('synference CLI', () => {
  it('gpu-info --json names the adapter and exits', () => {
    const r = run(['gpu-info', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.adapter.description || info.adapter.device).toBeTruthy();
    expect(info.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(info.features).toContain('timestamp-query');
  });

  it('bench gemm --json reports GFLOP/s and max_rel_error < 1e-4', () => {
    const r = run(['bench', 'gemm', '--json', '--sizes', '33,130', '--repeats', '2']);
    expect(r.status, r.stderr).toBe(0);
    const records = JSON.parse(r.stdout);
    expect(records).toHaveLength(2);
    for (const rec of records) {
      expect(rec).toMatchObject({ name: 'gemm', metric: 'throughput', unit: 'GFLOP/s' });
      expect(rec.value).toBeGreaterThan(0);
      expect(rec.ratio_vs_cpu).toBeGreaterThan(0);
      expect(rec.max_rel_error).toBeLessThan(1e-4);
      expect(typeof rec.device).toBe('string');
    }
  });

  it('unknown benchmark: clear error, exit 1', () => {
    const r = run(['bench', 'nope']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown benchmark "nope" \(available: .*gemm/);
  });

  it('bad option value: names the option, exit 2', () => {
    const r = run(['bench', 'gemm', '--sizes', '12,x']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--sizes must be a positive integer, got "x"/);
  });

  it('unknown command: exit 2 with help', () => {
    const r = run(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown command/);
  });

  it('an adapter that does not exist: clear error naming adapters', () => {
    const r = run(['gpu-info', '--adapter', 'no-such-gpu-xyz']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/synference: /);
  });
});
