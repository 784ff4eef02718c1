/**
 * Architecture of the conditional neural spline flow (issue 5): the zod schema is the single source
 * of truth for config files, CLI options and the model's config.json.
 *
 * Defaults follow sbi's NPE with `density_estimator="nsf"` (5 transforms, 50 hidden units, 2 residual
 * blocks, 10 bins, tail bound 3) and nflows' spline constants (minimum bin width / height /
 * derivative 1e-3).
 */
import { z } from 'zod';

const MAX_BINS = 256;
const MAX_DIM = 1 << 20;

const int = (key: string, min: number, max: number) =>
  z
    .number({ invalid_type_error: `${key} must be an integer in [${min}, ${max}]`, required_error: `${key} is required (an integer in [${min}, ${max}])` })
    .int({ message: `${key} must be an integer in [${min}, ${max}]` })
    .min(min, { message: `${key} must be an integer in [${min}, ${max}]` })
    .max(max, { message: `${key} must be an integer in [${min}, ${max}]` });

const openUnit = (key: string) =>
  z
    .number({ invalid_type_error: `${key} must be a number in [0, 1)` })
    .min(0, { message: `${key} must be a number in [0, 1)` })
    .lt(1, { message: `${key} must be a number in [0, 1)` });

export const FlowConfigSchema = z
  .object({
    /** P: number of parameters theta (the flow's dimension). */
    thetaDim: int('thetaDim', 1, MAX_DIM),
    /** F: number of context features x (0 = unconditional density). */
    contextDim: int('contextDim', 0, MAX_DIM),
    /**
     * Density head: 'nsf' (the neural spline flow) or 'mdn' (a mixture of `components` full-covariance
     * Gaussians whose parameters the residual MLP computes from the context: src/flow/mdn.ts; the
     * spline keys and `transforms` are then unused).
     */
    head: z.enum(['nsf', 'mdn'], { errorMap: () => ({ message: "head must be 'nsf' or 'mdn'" }) }).default('nsf'),
    /** MDN head: mixture components. */
    components: int('components', 1, 1000).default(10),
    /** Number of coupling transforms. */
    transforms: int('transforms', 1, 1000).default(5),
    /** Hidden units of every conditioner MLP. */
    hidden: int('hidden', 1, 1 << 16).default(50),
    /** Residual blocks per conditioner (0 = Linear -> Linear, as in nflows' ResidualNet). */
    blocks: int('blocks', 0, 1000).default(2),
    /** K: spline bins. */
    bins: int('bins', 2, MAX_BINS).default(10),
    /** B: the spline acts on [-B, B] (in standardised units); identity outside. */
    bound: z
      .number({ invalid_type_error: 'bound must be a finite number in (0, 1e6]' })
      .gt(0, { message: 'bound must be a finite number in (0, 1e6]' })
      .max(1e6, { message: 'bound must be a finite number in (0, 1e6]' })
      .default(3),
    minBinWidth: openUnit('minBinWidth').default(1e-3),
    minBinHeight: openUnit('minBinHeight').default(1e-3),
    minDerivative: openUnit('minDerivative').default(1e-3),
    /** Conditioner nonlinearity. */
    activation: z.enum(['relu', 'tanh'], { errorMap: () => ({ message: "activation must be 'relu' or 'tanh'" }) }).default('relu'),
    /** Seed of the parameter initialisation (Philox key). */
    seed: int('seed', 0, Number.MAX_SAFE_INTEGER).default(0),
  })
  .strict()
  .superRefine((c, ctx) => {
    // nflows raises "Minimal bin width too large for the number of bins" when minW * K > 1; at
    // equality every bin is forced to width 2B/K and the softmax gradient vanishes, so we need < 1.
    if (c.minBinWidth * c.bins >= 1)
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['minBinWidth'], message: `minBinWidth must be in [0, 1/bins) = [0, ${1 / c.bins}), got ${c.minBinWidth}` });
    if (c.minBinHeight * c.bins >= 1)
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['minBinHeight'], message: `minBinHeight must be in [0, 1/bins) = [0, ${1 / c.bins}), got ${c.minBinHeight}` });
  });

export type FlowConfigInput = z.input<typeof FlowConfigSchema>;
export type FlowConfig = z.output<typeof FlowConfigSchema>;

/** Parses and validates a flow config; throws an Error naming every bad key and its allowed range. */
export function parseFlowConfig(input: unknown): FlowConfig {
  const r = FlowConfigSchema.safeParse(input);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => {
      const key = i.path.join('.') || '(root)';
      return i.message.startsWith(key) ? i.message : `${key}: ${i.message}`;
    });
    throw new Error(`flow config: ${msgs.join('; ')}`);
  }
  return r.data;
}
