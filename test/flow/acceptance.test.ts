/**
 * Acceptance tests of the conditional NSF (issue 5, "Done when"), trained and sampled with the GPU
 * engine (createFlowEngine('gpu'); lavapipe in CI):
 *
 * 1. Linear-Gaussian task with an analytic posterior: learned posterior means and covariances on
 *    held-out observations match the analytic ones (plus the average KL on fresh pairs).
 * 2. sbi's two-moons task: trains without a non-finite loss and its posterior samples are bimodal by
 *    a numeric test (mass on both sides of the axis joining the two analytic modes, a deep dip between).
 *
 * Everything is seeded (simulations: counter-based Philox streams of src/flow/rng.ts; training: the
 * trainer's seed; draws: samplePosterior's seed), so a run is deterministic on a given device. The
 * sizes (a few 10^4 simulations, 3 small coupling layers, a fixed epoch budget with a cosine learning
 * rate) keep each training at ~10-20 s on lavapipe with 2 cores. The tolerances below are derived
 * from the sample size M plus an explicit allowance for the amortised-flow approximation error; the
 * allowances are ~1.3-2x the worst error measured over training seeds 1-5 (quoted per check).
 */
import { describe, expect, it } from 'vitest';
import type { GpuEngineOptions } from '../../src/flow/gpuEngine.js';
import { type FlowEngine, createFlowEngine } from '../../src/train/engine.js';
import { trainFlow } from '../../src/train/trainer.js';
import { useGpu } from '../helpers/gpu.js';
import { expectFiniteLosses, expectLinearGaussianPosterior, expectTwoMoonsBimodal, simulateLinearGaussian, twoMoonsTraining } from './tasks.js';

const ctx = useGpu();

/** The GPU engine on this file's device (createFlowEngine('gpu') does not destroy a device it was given). */
function gpuEngine(model: Parameters<typeof createFlowEngine>[1]): Promise<FlowEngine> {
  const opts: GpuEngineOptions = { gpu: ctx.gpu };
  return createFlowEngine('gpu', model, opts);
}

// 1. Linear-Gaussian and 2. two moons: the tasks are in ./tasks.ts (simulators, analytic posteriors, the checks).

describe('acceptance: linear-Gaussian task with an analytic posterior (GPU engine)', () => {
  it('posterior means and covariances on held-out observations match the analytic ones; average KL small', async () => {
    const t0 = performance.now();
    const n = 16_000;
    const epochs = 40;
    const sim = simulateLinearGaussian(n, 11, 12);
    const res = await trainFlow({
      data: { theta: sim.theta, x: sim.x, n },
      // bound 5 (not the default 3): the spline is the identity outside [-B, B] in standardised units,
      // so a base draw with |z| > B (0.27 % per dimension at B = 3) lands at the PRIOR's scale, not the
      // posterior's. That leakage cannot be trained away; at B = 3 it put 0.5 % of the samples beyond
      // 6 posterior sds, inflated sample (co)variances by up to 17 % of sd_i sd_j and cost 0.036-0.044 nats
      // of KL (measured, seed 1; the KL check below fails) vs 0.010-0.016 at B = 5, where P(|z| > 5) = 6e-7.
      flow: { transforms: 3, hidden: 32, blocks: 1, bins: 8, bound: 5 },
      options: { seed: 1, batchSize: 512, lr: 5e-3, maxEpochs: epochs, patience: 1000, schedule: { kind: 'cosine', minLr: 1e-4 } },
      engine: gpuEngine,
    });
    const tTrain = (performance.now() - t0) / 1000;
    expect(res.summary.engine).toBe('gpu');
    expectFiniteLosses(res, epochs);

    const engine = await gpuEngine(res.model);
    try {
      // Held-out observations (fresh streams), M = 5000 samples each; tolerances, in posterior sds
      // (mean) and in sd_i sd_j (covariance entries): 4 sampling standard errors (see
      // expectLinearGaussianPosterior) plus
      // - flow approximation (amortised over x, 14 400 training pairs, 40 epochs): 0.2 sd for a
      //   mean, 0.2 sd_i sd_j for a covariance entry. Measured worst over training seeds 1-5 (6 obs
      //   each, sampling noise included): 0.168 sd and 0.157 sd_i sd_j; this seed: see the log line.
      // A flow that ignored x (the prior) misses the means by |mu| / sd ~ 0.5-4 and the variances by
      // 2.2x; one with the wrong sign of the correlation (-0.74) misses S_01 by 1.5 sd_0 sd_1.
      // Aggregate over the 12 mean errors: RMS < 0.12 (measured 0.043-0.078 over seeds 1-5; the sampling part alone is ~0.014).
      // Average KL(p || q) over the joint, the flow's density from the GPU engine in original units:
      // < 0.03; measured 0.0098-0.0158 over seeds 1-5 (0.036-0.044 at B = 3) with a standard error
      // of 0.0022-0.0027 (0.005 at B = 3).
      const { worstMean, rmsMean, worstCov, kl, klSe } = await expectLinearGaussianPosterior(engine, { M: 5000, meanAllow: 0.2, covAllow: 0.2, rmsMax: 0.12, klMax: 0.03 });

      console.log(
        `linear-Gaussian (GPU): train ${tTrain.toFixed(1)} s, best val loss ${res.summary.bestValLoss?.toFixed(4)} (epoch ${res.summary.bestEpoch}); ` +
          `mean error worst ${worstMean.toFixed(3)} / RMS ${rmsMean.toFixed(3)} posterior sds; covariance worst ${worstCov.toFixed(3)} sd_i sd_j; ` +
          `KL ${kl.toFixed(4)} +- ${klSe.toFixed(4)} nats; total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      await engine.dispose();
    }
  });
});

describe('acceptance: two-moons task (GPU engine)', () => {
  it('trains without a non-finite loss; posterior samples are bimodal along the axis joining the two analytic modes', async () => {
    const t0 = performance.now();
    const run = twoMoonsTraining();
    const res = await trainFlow({
      data: run.data,
      options: run.options,
      // Default bound 3: theta is bounded (standardised |theta| <= 1.73), and rejection at the prior
      // box removes the few identity-tail draws (acceptance ~99 %).
      flow: { transforms: 3, hidden: 32, blocks: 1, bins: 8 },
      engine: gpuEngine,
    });
    const tTrain = (performance.now() - t0) / 1000;
    expect(res.summary.engine).toBe('gpu');
    expectFiniteLosses(res, run.epochs);
    // It learned something: the validation NLL falls by > 1.5 nats (measured -0.2..-0.9 -> -3.24..-3.31 over seeds 1-5).
    const val = res.history.map((h) => h.valLoss!);
    expect(val[val.length - 1]).toBeLessThan(val[0] - 1.5);

    const engine = await gpuEngine(res.model);
    try {
      // expectTwoMoonsBimodal's checks, measured over seeds 1-5: (a) share of u > 0 0.46-0.53 (> 30 %
      // each side required); (b) dip ratio <= 0.0075 (0.78 after 2 epochs; < 0.1 required); (c) on the
      // crescents >= 95.7 % (>= 85 % required).
      const { acceptanceRate, report } = await expectTwoMoonsBimodal(engine);
      console.log(
        `two moons (GPU): train ${tTrain.toFixed(1)} s, val loss ${val[0].toFixed(3)} -> ${val[val.length - 1].toFixed(3)}, acceptance ${acceptanceRate.toFixed(4)}; ` +
          `${report.join('; ')}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      await engine.dispose();
    }
  });
});
