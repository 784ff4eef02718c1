/**
 * An idle event pump for waits on CPU drivers in Node.
 *
 * While any GPU promise is pending (queue.onSubmittedWorkDone, buffer.mapAsync...), Dawn for Node
 * (npm `webgpu`) pumps its events by re-posting a tick with the global `setImmediate`: a busy loop
 * that keeps the JS thread at 100 % of a core. On a CPU driver (llvmpipe / lavapipe) that core is
 * one the "GPU" would run workgroups on: on a 2-core machine a flow training step ran 1.5-1.8x
 * faster with the ticks on a 0 ms timer (>= 1 ms in Node) instead (measured side by side,
 * .../bench/flow.ts). Dawn looks `setImmediate` up on every tick, so swapping the global for the
 * duration of a GPU-bound call is enough.
 *
 * `withIdlePump` swaps it while `fn` runs, reference-counted so that overlapping calls nest; other
 * code that calls setImmediate meanwhile is only delayed by ~1 ms. Real GPUs do not need it (the
 * busy pump costs host CPU, not GPU time, and the timer would add ~1 ms to every wait), so callers
 * enable it for software adapters only. Outside Node (no setImmediate) it does nothing.
 */

type Immediate = (callback: (...args: unknown[]) => void, ...args: unknown[]) => unknown;

const host = globalThis as unknown as { setImmediate?: Immediate };
let depth = 0;
let saved: Immediate | undefined;

const timerImmediate: Immediate = (callback, ...args) => setTimeout(callback, 0, ...args);

/** Runs `fn` with Dawn's event pump on a timer (when `enabled` and in Node); see the module comment. */
export async function withIdlePump<T>(enabled: boolean, fn: () => Promise<T>): Promise<T> {
  if (!enabled || typeof host.setImmediate !== 'function') return fn();
  if (depth++ === 0) {
    saved = host.setImmediate;
    host.setImmediate = timerImmediate;
  }
  try {
    return await fn();
  } finally {
    if (--depth === 0) {
      host.setImmediate = saved;
      saved = undefined;
    }
  }
}

/**
 * Runs `fn` with Dawn's own busy pump even inside a withIdlePump scope (the benchmark's "before"
 * configuration: withGpu enables the idle pump for every command on software adapters).
 */
export async function withBusyPump<T>(fn: () => Promise<T>): Promise<T> {
  if (depth === 0 || !saved || typeof host.setImmediate !== 'function') return fn();
  const timer = host.setImmediate;
  host.setImmediate = saved;
  try {
    return await fn();
  } finally {
    if (depth > 0) host.setImmediate = timer;
  }
}
