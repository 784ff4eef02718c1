/**
 * Validation of trained posterior estimators (DESIGN.md: "validate (src/validate): sample held-out
 * -> R^2, coverage, TARP, ranks -> metrics.json"). Pure metric functions (metrics.ts, coverage.ts,
 * tarp.ts, ranks.ts, summary.ts, special.ts, assemble.ts; browser-safe) and the Node job
 * (validate.ts: model folder + library -> metrics.json).
 */
export * from './special.js';
export * from './summary.js';
export * from './metrics.js';
export * from './coverage.js';
export * from './tarp.js';
export * from './ranks.js';
export * from './schema.js';
export * from './assemble.js';
export { validateModel, writeMetricsJson, formatValidationTable, ValidateOptionsSchema, type ValidateOptions, type ValidateResult } from './validate.js';
