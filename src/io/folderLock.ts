/**
 * A lock file that marks a folder as being written by one process (resumable outputs: library
 * parts, catalogue-fit parts). Held locks are also tracked in-process. A lock whose process is gone
 * (same host, dead pid, or an unreadable file left by a kill) is stale and taken over.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

const held = new Set<string>();

export type LockConflict =
  | { kind: 'this-process' }
  | { kind: 'other-host'; host: string; pid: number }
  | { kind: 'other-process'; pid: number }
  | { kind: 'stuck' };

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes `lockFile` or throws `fail(conflict)` (each caller words its own error). */
export function acquireFolderLock(lockFile: string, fail: (c: LockConflict) => Error): void {
  if (held.has(lockFile)) throw fail({ kind: 'this-process' });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx');
      try {
        writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname() }));
      } finally {
        closeSync(fd);
      }
      held.add(lockFile);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let info: { pid?: unknown; host?: unknown } = {};
    try {
      info = JSON.parse(readFileSync(lockFile, 'utf8'));
    } catch {
      // Unreadable (killed while writing it): stale.
    }
    const pid = typeof info.pid === 'number' ? info.pid : -1;
    if (typeof info.host === 'string' && info.host !== hostname()) throw fail({ kind: 'other-host', host: info.host, pid });
    if (pid > 0 && pid !== process.pid && pidAlive(pid)) throw fail({ kind: 'other-process', pid });
    rmSync(lockFile, { force: true }); // stale: its process is gone
  }
  throw fail({ kind: 'stuck' });
}

/** Releases a lock this process holds (removes the file). */
export function releaseFolderLock(lockFile: string): void {
  if (!held.delete(lockFile)) return;
  rmSync(lockFile, { force: true });
}

/** Forgets a held lock without touching the file (its folder is about to be removed). */
export function forgetFolderLock(lockFile: string): void {
  held.delete(lockFile);
}
