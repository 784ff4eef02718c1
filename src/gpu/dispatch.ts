/** Workgroup-count helpers shared by kernel programs. */

/** The largest workgroup count WebGPU guarantees per dimension. */
export const MAX_GROUPS_PER_DIM = 65535;

/**
 * Folds `groups` workgroups into a 2D grid (x <= 65535) for kernels that compute a linear index as
 * wid.y * gridX + wid.x (shaders/common/grid.wgsl). Returns [x, y, 1] and gridX.
 */
export function fold2D(groups: number): { workgroups: [number, number, number]; gridX: number } {
  if (groups <= MAX_GROUPS_PER_DIM) return { workgroups: [Math.max(groups, 0), 1, 1], gridX: Math.max(groups, 1) };
  const y = Math.ceil(groups / MAX_GROUPS_PER_DIM);
  const x = Math.ceil(groups / y);
  if (y > MAX_GROUPS_PER_DIM) throw new RangeError(`${groups} workgroups exceed a 65535 x 65535 grid`);
  return { workgroups: [x, y, 1], gridX: x };
}
