/**
 * The benchmark harness shared by every `synference bench <name>`: one device, records in one
 * JSON shape ({name, size, metric, value, unit, device, ratio_vs_cpu, ...details}), a table for
 * people and a JSON array for machines.
 */
import type { Gpu } from '../src/gpu/device.js';

export interface BenchRecord {
  name: string;
  size: string;
  metric: string;
  value: number;
  unit: string;
  device: string;
  /** GPU throughput / CPU-reference throughput on the same work; null where no CPU reference exists. */
  ratio_vs_cpu: number | null;
  [detail: string]: unknown;
}

export interface BenchOptions {
  sizes?: number[];
  repeats?: number;
  /** Free-form extra options a benchmark understands (e.g. tiles). */
  [key: string]: unknown;
}

export interface BenchContext {
  gpu: Gpu;
  /** Adapter name as it goes into records. */
  device: string;
  options: BenchOptions;
  emit(record: BenchRecord): void;
  /** Progress for people (stderr). */
  log(message: string): void;
}

export type Benchmark = (ctx: BenchContext) => Promise<void>;

export function deviceName(gpu: Gpu): string {
  const a = gpu.adapter;
  return a.description || a.device || `${a.vendor} ${a.architecture}`;
}

export function formatTable(records: BenchRecord[]): string {
  if (!records.length) return '(no measurements)';
  const cols = ['name', 'size', 'metric', 'value', 'unit', 'ratio_vs_cpu'];
  const extra = [...new Set(records.flatMap((r) => Object.keys(r)))].filter((k) => !cols.includes(k) && k !== 'device');
  const all = [...cols, ...extra];
  const fmt = (v: unknown) =>
    typeof v === 'number' ? (Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(3)) : v === null || v === undefined ? '-' : String(v);
  const rows = records.map((r) => all.map((c) => fmt(r[c])));
  const widths = all.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(all), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Median of a list of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
