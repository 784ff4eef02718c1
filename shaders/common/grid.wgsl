// Linear workgroup index for dispatches folded into 2D (x <= 65535 per dimension).
fn linear_group(wid: vec3<u32>, grid_x: u32) -> u32 {
  return wid.y * grid_x + wid.x;
}
