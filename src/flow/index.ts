/** Conditional neural spline flow: float64 CPU reference (the ground truth of the WGSL kernels). */
export * from './config.js';
export * from './layout.js';
export * from './standardize.js';
export * from './mlp.js';
export * from './spline.js';
export * from './mdn.js';
export * from './flow.js';
export * from './adam.js';
export * from './rng.js';
