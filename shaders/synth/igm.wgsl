// IGM transmission, mirroring src/physics/igm.ts: Inoue et al. 2014 (Lyman series + continuum,
// LAF + DLA, with Synthesizer's conditions) and Madau 1995. Line j of the Inoue table sits at
// igmTable[IGM_OFF + 6 j + (lambda_j, A1_LAF, A2_LAF, A3_LAF, A1_DLA, A2_DLA)].
// A_j (l/lambda_j)^p is evaluated as a power of the ratio (not A_j/lambda_j^p * l^p) for f32 range.

const LL: f32 = 911.8;
const LAF_Z1: f32 = 1.2;
const LAF_Z2: f32 = 4.7;
const DLA_Z1: f32 = 2.0;

fn tau_lc_laf(l: f32, z: f32) -> f32 {
  if (!(l < LL * (1.0 + z))) { return 0.0; }
  let x = l / LL;
  let opz = 1.0 + z;
  if (z < LAF_Z1) { return 0.3248 * (pow(x, 1.2) - pow(opz, -0.9) * pow(x, 2.1)); }
  if (z < LAF_Z2) {
    if (l >= LL * (1.0 + LAF_Z1)) { return 2.545e-2 * (pow(opz, 1.6) * pow(x, 2.1) - pow(x, 3.7)); }
    return 2.545e-2 * pow(opz, 1.6) * pow(x, 2.1) + 0.3248 * pow(x, 1.2) - 0.2496 * pow(x, 2.1);
  }
  if (l > LL * (1.0 + LAF_Z2)) { return 5.221e-4 * (pow(opz, 3.4) * pow(x, 2.1) - pow(x, 5.5)); }
  if (l >= LL * (1.0 + LAF_Z1) && l < LL * (1.0 + LAF_Z2)) {
    return 5.221e-4 * pow(opz, 3.4) * pow(x, 2.1) + 0.2182 * pow(x, 2.1) - 2.545e-2 * pow(x, 3.7);
  }
  if (l < LL * (1.0 + LAF_Z1)) { return 5.221e-4 * pow(opz, 3.4) * pow(x, 2.1) + 0.3248 * pow(x, 1.2) - 3.14e-2 * pow(x, 2.1); }
  return 0.0;
}

fn tau_lc_dla(l: f32, z: f32) -> f32 {
  if (!(l < LL * (1.0 + z))) { return 0.0; }
  let x = l / LL;
  let opz = 1.0 + z;
  if (z < DLA_Z1) { return 0.2113 * opz * opz - 0.07661 * pow(opz, 2.3) * pow(x, -0.3) - 0.1347 * x * x; }
  if (l >= LL * (1.0 + DLA_Z1)) { return 0.04696 * pow(opz, 3.0) - 0.01779 * pow(opz, 3.3) * pow(x, -0.3) - 0.02916 * pow(x, 3.0); }
  return 0.634 + 0.04696 * pow(opz, 3.0) - 0.01779 * pow(opz, 3.3) * pow(x, -0.3) - 0.1347 * x * x - 0.2905 * pow(x, -0.3);
}

fn tau_ls(l: f32, z: f32) -> f32 {
  var tau = 0.0;
  for (var j = 0u; j < P.nIgm; j++) {
    let o = P.offIgm + 6u * j;
    let lj = tables[o];
    if (!(l < lj * (1.0 + z))) { continue; }
    let r = l / lj;
    if (l < lj * (1.0 + LAF_Z1)) { tau += tables[o + 1u] * pow(r, 1.2); }
    else if (l < lj * (1.0 + LAF_Z2)) { tau += tables[o + 2u] * pow(r, 3.7); }
    else { tau += tables[o + 3u] * pow(r, 5.5); }
    if (l < lj * (1.0 + DLA_Z1)) { tau += tables[o + 4u] * r * r; }
    else { tau += tables[o + 5u] * r * r * r; }
  }
  return tau;
}

fn inoue14_transmission(l: f32, z: f32) -> f32 {
  let tau = tau_lc_laf(l, z) + tau_lc_dla(l, z) + tau_ls(l, z);
  return clamp(exp(-tau), 0.0, 1.0);
}

fn madau95_transmission(l: f32, z: f32) -> f32 {
  let X = 1.0 + z;
  var tau = 0.0;
  let lines = array<f32, 4>(1216.0, 1026.0, 973.0, 950.0);
  let coeffs = array<f32, 4>(3.6e-3, 1.7e-3, 1.2e-3, 9.3e-4);
  for (var j = 0u; j < 4u; j++) {
    let lj = lines[j];
    if (l > lj && l < lj * X) { tau += coeffs[j] * pow(l / lj, 3.46); }
  }
  if (l < 912.0 * X) {
    let x = min(max(l / 912.0, 1.0), X);
    let lc = 0.25 * x * x * x * (pow(X, 0.46) - pow(x, 0.46)) + 9.4 * pow(x, 1.5) * (pow(X, 0.18) - pow(x, 0.18))
      - 0.7 * x * x * x * (pow(x, -1.32) - pow(X, -1.32)) - 0.023 * (pow(X, 1.68) - pow(x, 1.68));
    if (lc > 0.0) { tau += lc; }
  }
  return exp(-tau);
}
