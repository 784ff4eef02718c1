/** The benchmark registry: `synference bench <name>`. */
import { benchFit } from './fit.js';
import { benchFlow } from './flow.js';
import { benchGemm } from './gemm.js';
import type { Benchmark } from './harness.js';
import { benchOptim } from './optim.js';
import { benchSpline } from './spline.js';
import { benchSynth } from './synth.js';
import { benchSynthWeights } from './synthWeights.js';

export const BENCHMARKS: Record<string, { run: Benchmark; description: string }> = {
  fit: { run: benchFit, description: 'catalogue fitting: galaxies/s for 1000 posterior samples per galaxy, cpu vs gpu engine' },
  flow: { run: benchFlow, description: 'NSF training (samples/s per epoch) and sampling (posterior samples/s) on the GPU vs the float64 CPU engine' },
  gemm: { run: benchGemm, description: 'tiled f32 GEMM: GFLOP/s per size vs the float64 CPU reference' },
  optim: { run: benchOptim, description: 'gradient-norm clipping + fused Adam: steps/s and params/s vs the float64 reference' },
  spline: { run: benchSpline, description: 'RQ spline forward/inverse/backward: evaluations/s vs the float64 reference' },
  'synth-weights': { run: benchSynthWeights, description: 'SFH + metallicity weights kernel alone: galaxies/s per SFH family vs the float64 reference' },
  synth: { run: benchSynth, description: 'GPU photometry synthesis of the reference-study model: galaxies/s per batch size vs the float64 forward model' },
};
