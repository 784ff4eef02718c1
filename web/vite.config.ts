/**
 * Vite config of the browser page (web/): `npm run web` serves it, `npm run build:web` writes the
 * static site to web/dist. The page imports the repository's src/, kernels/ and shaders/ directly.
 *
 * Node-only modules. Some shared modules import Node built-ins (node:fs, node:path, ...) for their
 * file-reading functions, which the page never calls (it reads files through src/io/fileSource.ts),
 * and src/gpu/device.ts imports the npm `webgpu` package (Dawn) only when it runs in Node. Those
 * imports resolve to stubs that throw when used, naming the module, so no Node-only code reaches the
 * bundle; the build lists which modules import them. The npm packages in NODE_PACKAGES (h5wasm/node,
 * webgpu, ...) must never be needed by the page: the build fails when a module the page loads
 * imports one, except the imports listed in ALLOWED_PACKAGE_IMPORTERS (behind a Node check).
 */
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Plugin, defineConfig } from 'vite';

const webDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(webDir, '..');

/** npm packages that only work in Node. */
const NODE_PACKAGES = ['webgpu', 'h5wasm/node', 'h5wasm', 'csv-parse', 'csv-parse/sync', 'csv-stringify', 'csv-stringify/sync', 'cli-progress', 'commander'];
/** Modules that may import a package of NODE_PACKAGES (dynamically, behind a Node check). */
const ALLOWED_PACKAGE_IMPORTERS: Record<string, string[]> = { webgpu: ['src/gpu/device.ts'] };

/**
 * Repository modules that read the disk and that the page never runs: a dynamic import of one of
 * them (behind a check that the page does not take) gets a stub too, so none of their Node-only
 * dependencies is bundled. Path -> why the page does not need it.
 */
const NODE_ONLY_MODULES: Record<string, string> = {
  'src/simulate/simulate.ts': 'src/report/reconstruct.ts imports it only without a forward model; the page passes one built from fetched files',
};

const STUB = '\0node-only:';

function isNodeOnly(id: string): boolean {
  if (id.startsWith('node:')) return true;
  if (builtinModules.includes(id)) return true;
  return NODE_PACKAGES.includes(id);
}

/** Replaces Node-only imports by stubs that throw on use (see the module comment). */
function nodeOnlyStubs(): Plugin {
  const importers = new Map<string, Set<string>>();
  return {
    name: 'synference:node-only-stubs',
    enforce: 'pre',
    async resolveId(id, importer) {
      if (importer && !importer.startsWith(STUB) && (id.startsWith('.') || id.startsWith('/'))) {
        const r = await this.resolve(id, importer, { skipSelf: true });
        const rel = r ? path.relative(repo, r.id.split('?')[0]) : '';
        if (rel in NODE_ONLY_MODULES) return STUB + rel;
        return null;
      }
      if (!isNodeOnly(id)) return null;
      const rel = importer ? path.relative(repo, importer.split('?')[0]) : '(entry)';
      if (!importers.has(id)) importers.set(id, new Set());
      importers.get(id)!.add(rel);
      if (!id.startsWith('node:') && !builtinModules.includes(id) && !(ALLOWED_PACKAGE_IMPORTERS[id] ?? []).includes(rel)) {
        this.error(`${rel} imports the Node-only package "${id}", which the browser page cannot load; keep it out of the modules the page imports (web/vite.config.ts)`);
      }
      return STUB + id;
    },
    async load(id) {
      if (!id.startsWith(STUB)) return null;
      const name = id.slice(STUB.length);
      // Named exports for dev mode (Vite serves modules unbundled); syntheticNamedExports covers the build.
      let names: string[] = [];
      if (name.startsWith('node:') || builtinModules.includes(name)) {
        try {
          names = Object.keys(await import(name.startsWith('node:') ? name : `node:${name}`)).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== 'default');
        } catch {
          names = [];
        }
      }
      const fail = `(what) => { throw new Error(\`\${what} is Node-only: the browser page does not provide it\`); }`;
      const code = [
        `const fail = ${fail};`,
        `const stub = (what) => new Proxy(function () {}, { get: (_t, k) => (k === Symbol.toPrimitive ? () => '' : k === 'then' ? undefined : stub(\`\${what}.\${String(k)}\`)), apply: () => fail(what), construct: () => fail(what) });`,
        `const mod = stub(${JSON.stringify(name)});`,
        'export default mod;',
        ...names.map((k) => `export const ${k} = mod.${k};`),
      ].join('\n');
      return { code, syntheticNamedExports: true, moduleSideEffects: false };
    },
    buildEnd() {
      if (!importers.size) return;
      const lines = [...importers].map(([id, from]) => `  ${id}: ${[...from].sort().join(', ')}`);
      this.info(`Node-only imports replaced by stubs that throw if the page ever used them:\n${lines.join('\n')}`);
    },
  };
}

export default defineConfig({
  root: webDir,
  base: './',
  plugins: [nodeOnlyStubs()],
  // The page imports ../src, ../kernels and ../shaders: let the dev server read the repository.
  server: { fs: { allow: [repo] } },
  build: {
    outDir: path.join(webDir, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
  },
  // Top-level await and BigInt in the shared code (modern browsers only: WebGPU needs them anyway).
  esbuild: { target: 'es2022' },
  optimizeDeps: { esbuildOptions: { target: 'es2022' } },
});
