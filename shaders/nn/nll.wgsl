// Negative log-likelihood of the flow's base distribution (src/flow/flow.ts forward/meanNll):
//   log q(theta | x) = -1/2 |z|^2 - P/2 log(2 pi) + logdet - sum_p log std_theta[p]
//   loss = mean over the batch of -log q
// given z (N x P, row-major) and logdet (N, summed over the coupling layers). Two entry points:
//
//   nll_samples   G workgroups, grid-stride, a thread per sample: logProb[r]; the gradient seeds
//                 dL/dz = z / N and dL/dlogdet = -1/N (SEEDS: 0 none, 1 into gz / gLogdet,
//                 2 in place over z / logdet); with LOSS, partials[g] = sum of -logProb over the
//                 workgroup's samples (G = numPartials <= 65535, a tuning choice)
//   nll_finalize  1 workgroup of 64 (LOSS): sums the partials in a fixed order and adds the batch sum
//                 into a loss slot of `stats` (compensated, Neumaier), so an epoch's loss
//                 accumulates on the GPU and the host reads one slot per epoch.
//
// Loss slot (4 words at stats[statsOffset ..], kernels/nn/loss.ts LossWord):
//   0 sum of -logProb (f32)   1 its compensation (f32; total = sum + comp)
//   2 samples counted (u32)   3 mean loss of the last batch (f32)
// lpConst = -P/2 log(2 pi) - sum_p log std_theta[p], formed in float64 on the host (the
// standardisation Jacobian: log-probs in original units).

struct Params {
  n: u32,
  p: u32,
  numPartials: u32,
  statsOffset: u32,
  lpConst: f32,
  invN: f32,
}

#if SEEDS == 2
@group(0) @binding(0) var<storage, read_write> z: array<f32>;
@group(0) @binding(1) var<storage, read_write> logdet: array<f32>;
#else
@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> logdet: array<f32>;
#endif
@group(0) @binding(2) var<storage, read_write> logProb: array<f32>;
#if SEEDS == 1
@group(0) @binding(3) var<storage, read_write> gz: array<f32>;
@group(0) @binding(4) var<storage, read_write> gLogdet: array<f32>;
#endif
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<u32>;
@group(0) @binding(7) var<uniform> P: Params;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

const FIN_WG: u32 = 64u;

// Tree sum over the `width` (a power of two) invocations' values into red[0]; uniform control flow.
fn workgroup_sum(lid: u32, v: f32, width: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var half = width / 2u; half > 0u; half /= 2u) {
    if (lid < half) { red[lid] = red[lid] + red[lid + half]; }
    workgroupBarrier();
  }
  return red[0];
}

@compute @workgroup_size(WG)
fn nll_samples(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  var nll = 0.0;
  // Grid-stride over the samples (numPartials workgroups); no early return: the workgroup
  // reduction below needs every invocation.
  let stride = P.numPartials * WG;
  for (var r = wid.x * WG + lid.x; r < P.n; r += stride) {
    let base = r * P.p;
    var q = 0.0;
    for (var c = 0u; c < P.p; c++) {
      let zc = z[base + c];
      q += zc * zc;
#if SEEDS == 1
      gz[base + c] = zc * P.invN;
#elif SEEDS == 2
      z[base + c] = zc * P.invN;
#endif
    }
    let lp = (logdet[r] - 0.5 * q) + P.lpConst;
    logProb[r] = lp;
    nll -= lp;
#if SEEDS == 1
    gLogdet[r] = -P.invN;
#elif SEEDS == 2
    logdet[r] = -P.invN;
#endif
  }
#if LOSS
  let s = workgroup_sum(lid.x, nll, WG);
  if (lid.x == 0u) { partials[wid.x] = s; }
#endif
}

@compute @workgroup_size(FIN_WG)
fn nll_finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
  var s = 0.0;
  for (var i = lid.x; i < P.numPartials; i += FIN_WG) { s += partials[i]; }
  let batch = workgroup_sum(lid.x, s, FIN_WG);
  if (lid.x == 0u) {
    let o = P.statsOffset;
    let sum = bitcast<f32>(stats[o]);
    var comp = bitcast<f32>(stats[o + 1u]);
    let t = sum + batch;
    if (abs(sum) >= abs(batch)) { comp += (sum - t) + batch; } else { comp += (batch - t) + sum; }
    stats[o] = bitcast<u32>(t);
    stats[o + 1u] = bitcast<u32>(comp);
    stats[o + 2u] = stats[o + 2u] + P.n;
    stats[o + 3u] = bitcast<u32>(batch * P.invN);
  }
}
