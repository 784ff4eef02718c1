/** Where the project's data and build outputs live (Node only). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the folder above this module that holds package.json and shaders/. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'shaders'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot locate the synference-webgpu package root');
    dir = parent;
  }
}

/**
 * The data directory: an explicit option, else $SYNFERENCE_DATA_DIR, else ../shared/data beside
 * the package root. Throws naming every place it looked when none exists.
 */
export function resolveDataDir(explicit?: string): string {
  // An explicit choice is never silently replaced by a default.
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`--data-dir: data directory "${explicit}" does not exist`);
    return path.resolve(explicit);
  }
  const candidates = [process.env.SYNFERENCE_DATA_DIR, path.join(packageRoot(), '..', 'shared', 'data')].filter(
    (p): p is string => !!p,
  );
  for (const c of candidates) if (existsSync(c)) return path.resolve(c);
  throw new Error(`data directory not found; looked in: ${candidates.join(', ')} (set --data-dir or SYNFERENCE_DATA_DIR)`);
}

/** Git-ignored folder for converted grids. */
export function gridBuildDir(): string {
  return process.env.SYNFERENCE_GRID_DIR ?? path.join(packageRoot(), 'grids', 'build');
}

/** ../shared/reference beside the package root (reference outputs of established tools). */
export function referenceDir(): string {
  return process.env.SYNFERENCE_REFERENCE_DIR ?? path.join(packageRoot(), '..', 'shared', 'reference');
}
