/**
 * Training of the conditional NSF, engine-agnostic and browser-safe (library.ts, the Node job
 * "library in, model folder out", is imported from its own module).
 */
export * from './engine.js';
export * from './split.js';
export * from './schedule.js';
export * from './checkpoint.js';
export * from './trainer.js';
