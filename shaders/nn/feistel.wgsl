// Keyed bijection of [0, n) (a shuffle without sorting), bit-identical to kernels/nn/gather.ts
// feistelPermuteIndex:
//   an 8-round unbalanced Feistel network on b = ceil(log2 n) bits (halves of floor(b/2) and
//   ceil(b/2) bits that swap widths every round, so any b works), round function
//   lowbias32(R ^ key[r]) (C. Wellons' 32-bit integer hash) masked to the other half's width;
//   cycle-walking maps [0, 2^b) onto [0, n): re-encrypt while the value is >= n (2^b < 2n, so on
//   average fewer than 2 encryptions; it always terminates because the walk stays on the cycle of
//   the bijection that contains the start, which is < n).
// Round keys come from Philox(seed, purpose shuffle, epoch) on the host.

fn feistel_hash(x: u32) -> u32 {
  var h = x;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

fn feistel_encrypt(x: u32, bits: u32, keys: ptr<function, array<u32, 8>>) -> u32 {
  var lw = bits / 2u;
  var rw = bits - lw;
  var l = x >> rw;
  var r = x & ((1u << rw) - 1u);
  for (var i = 0u; i < 8u; i++) {
    let f = feistel_hash(r ^ (*keys)[i]) & ((1u << lw) - 1u);
    let nl = r;
    r = l ^ f;
    l = nl;
    let t = lw;
    lw = rw;
    rw = t;
  }
  return (l << rw) | r;
}

// The image of i (< n) under the keyed permutation of [0, n).
fn feistel_permute(i: u32, n: u32, bits: u32, keys: ptr<function, array<u32, 8>>) -> u32 {
  var y = feistel_encrypt(i, bits, keys);
  loop {
    if (y < n) { break; }
    y = feistel_encrypt(y, bits, keys);
  }
  return y;
}
