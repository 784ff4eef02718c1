// Numerically safe scalar helpers shared by kernels.

const F32_MAX: f32 = 3.4028234e38;
const LOG_F32_MAX: f32 = 88.72283;

// tanh that never overflows: exp of a non-positive argument only.
fn safe_tanh(x: f32) -> f32 {
  let e = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - e) / (1.0 + e);
}

fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// log(1 + exp(x)) without overflow.
fn softplus(x: f32) -> f32 {
  return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}
