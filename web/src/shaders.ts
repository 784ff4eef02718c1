/**
 * The WGSL sources for the browser: every shaders/**\/*.wgsl file, inlined by Vite at build time
 * (`?raw`) and registered with src/gpu/shaderSource.ts, which Node reads from disk instead. The
 * .wgsl files stay the one source of truth: nothing is copied.
 */
import { registerShaderSources } from '../../src/gpu/shaderSource.js';

const sources = import.meta.glob<string>('../../shaders/**/*.wgsl', { query: '?raw', import: 'default', eager: true });

/** Registers the bundled shaders (keys become paths relative to shaders/); returns how many. */
export function registerBundledShaders(): number {
  registerShaderSources(sources);
  return Object.keys(sources).length;
}
