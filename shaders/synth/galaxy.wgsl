// The canonical per-galaxy parameter row (src/simulate/canonical.ts): CANON_W f32 per galaxy.
const CANON_W: u32 = 12u;
const C_REDSHIFT: u32 = 0u;
const C_LOG10_MASS: u32 = 1u;
const C_LOG10_Z: u32 = 2u;
const C_LOG10_Z_SIGMA: u32 = 3u;
const C_AV: u32 = 4u;
const C_AV_BC: u32 = 5u;
const C_LOGU: u32 = 6u;
const C_S0: u32 = 7u;

// Per-galaxy auxiliary row written by shaders/synth/cosmology.wgsl: AUX_W f32 per galaxy.
const AUX_W: u32 = 4u;
const A_AGE_UNIVERSE_YR: u32 = 0u;
const A_DL_MPC: u32 = 1u;
