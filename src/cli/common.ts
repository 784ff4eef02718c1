/** Helpers shared by CLI commands. */
import { type Command, InvalidArgumentError } from 'commander';
import { type DeviceOptions, deviceOptionsFromEnv } from '../gpu/device.js';

/** Device options from the global flags, falling back to the environment. */
export function deviceOptions(cmd: Command): DeviceOptions {
  const g = cmd.optsWithGlobals() as { adapter?: string; gpuBackend?: string; powerPreference?: string };
  const env = deviceOptionsFromEnv();
  const pp = g.powerPreference;
  if (pp !== undefined && pp !== 'high-performance' && pp !== 'low-power') {
    throw new Error(`--power-preference must be high-performance or low-power, got "${pp}"`);
  }
  return { adapter: g.adapter ?? env.adapter, backend: g.gpuBackend ?? env.backend, powerPreference: pp };
}

/** Parses a positive integer option, naming the option in the error. */
export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got "${v}"`);
    return n;
  };
}

/** Parses a comma-separated list of positive integers. */
export function intList(name: string) {
  return (v: string): number[] => v.split(',').map((s) => positiveInt(name)(s.trim()));
}
