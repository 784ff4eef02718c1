#!/usr/bin/env node
// Entry point of the `synference` command. In a checkout with dev dependencies it runs the
// TypeScript sources through tsx (never stale); otherwise the compiled CLI in dist/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'src', 'cli', 'main.js');
const source = join(root, 'src', 'cli', 'main.ts');

async function tsxAvailable() {
  try {
    await import('tsx/esm/api');
    return true;
  } catch {
    return false;
  }
}

let entry = built;
if (process.env.SYNFERENCE_USE_DIST !== '1' && existsSync(source) && (await tsxAvailable())) {
  // h5wasm's 4 MB module is slow to load through tsx's transform: load it natively first.
  await import('h5wasm/node');
  const { register } = await import('tsx/esm/api');
  register();
  entry = source;
}
if (!existsSync(entry)) {
  console.error('synference: no build found; run `npm run build` (or `npm ci`, which builds)');
  process.exit(1);
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv);
