/**
 * Flat parameter layout of the conditional NSF: every trainable tensor lives at a fixed offset in
 * ONE vector (Float64Array here, a Float32Array / GPU storage buffer on the device; the gradient
 * and the two Adam moments use the same layout), so the fused clip + Adam kernel runs over a single
 * buffer and the layer kernels bind sub-ranges.
 *
 * Order (T = transforms, nb = blocks, H = hidden), for l = 0 .. T-1:
 *   t{l}.in.weight        [inDim_l][H]       Linear(inDim_l -> H)
 *   t{l}.in.bias          [H]
 *   for b = 0 .. nb-1:
 *     t{l}.block{b}.lin1.weight [H][H],  t{l}.block{b}.lin1.bias [H]
 *     t{l}.block{b}.lin2.weight [H][H],  t{l}.block{b}.lin2.bias [H]
 *   t{l}.out.weight       [H][outDim_l]      Linear(H -> outDim_l)
 *   t{l}.out.bias         [outDim_l]
 * with inDim_l = |identity dims of layer l| + F and outDim_l = D_t(l) * (3K - 1).
 *
 * Weights are stored W[in][out] row-major, i.e. element (i, o) at offset + i * cols + o, so that
 * Y = X . W + b with X (batch x in, row-major) — the TRANSPOSE of torch's nn.Linear.weight
 * ([out][in]); transpose when exchanging weights with PyTorch.
 *
 * Alignment: each tensor starts at a multiple of `alignElements` (default 64 elements = 256 bytes
 * in f32, WebGPU's default minStorageBufferOffsetAlignment, so a tensor can be bound as a
 * buffer sub-range). The gaps are zero in the parameters, zero in the gradient and stay zero under
 * Adam/AdamW (0 grad, 0 value), so they are inert. Initial values do NOT depend on the alignment:
 * the init RNG is indexed by `denseOffset` (the offset without padding).
 *
 * Conditioner output layout (per sample, length outDim_l), as nflows' PiecewiseRationalQuadratic
 * CouplingTransform (`transform_params.reshape(b, d, -1)`): transformed dim j (j-th of `transformed`,
 * in increasing index order) owns the slice [j(3K-1), (j+1)(3K-1)) = K unnormalised widths, K
 * unnormalised heights, K-1 unnormalised interior derivatives.
 *
 * Coupling masks (our choice, as the issue brief specifies; sbi/nflows use an every-other-dim mask
 * plus LU layers instead): with h = ceil(P/2), even layers transform dims [0, h) conditioned on
 * [h, P), odd layers transform [h, P) conditioned on [0, h). P = 1: dim 0 is transformed in every
 * layer and the conditioner sees only the context (inDim = F; F = 0 makes the conditioner a
 * constant, i.e. an unconditional learned spline).
 */
import type { FlowConfig } from './config.js';
import { mdnOutDim } from './mdn.js';

export type TensorRole = 'in.weight' | 'in.bias' | 'lin1.weight' | 'lin1.bias' | 'lin2.weight' | 'lin2.bias' | 'out.weight' | 'out.bias';

export interface TensorSpec {
  /** e.g. "t0.block1.lin2.weight". */
  name: string;
  layer: number;
  /** Residual block index, or -1 for in/out tensors. */
  block: number;
  role: TensorRole;
  /** Element offset in the (aligned) flat vector. */
  offset: number;
  /** Element offset in the unpadded packing (indexes the init RNG). */
  denseOffset: number;
  /** [rows, cols] for weights (W[in][out]), [n] for biases. */
  shape: number[];
  size: number;
  /** Initial values ~ uniform(-initBound, initBound) (see `initBound` below). */
  initBound: number;
}

export interface LinearSpec {
  inDim: number;
  outDim: number;
  weight: TensorSpec;
  bias: TensorSpec;
}

export interface BlockSpec {
  lin1: LinearSpec;
  lin2: LinearSpec;
}

export interface CouplingLayerSpec {
  index: number;
  /** Dims (of the P-vector) the spline transforms, increasing. */
  transformed: number[];
  /** Dims passed through unchanged and fed to the conditioner, increasing. */
  identity: number[];
  /** Conditioner input width: identity.length + F; input = [v[identity...], xStd[0..F)]. */
  inDim: number;
  /** Conditioner output width: transformed.length * (3K - 1). */
  outDim: number;
  input: LinearSpec;
  blocks: BlockSpec[];
  output: LinearSpec;
}

export interface FlowLayout {
  /** 'mdn': ONE layer whose conditioner maps the context to the mixture (see buildLayout). */
  head: 'nsf' | 'mdn';
  /** Mixture components (MDN head; 0 for the NSF). */
  components: number;
  thetaDim: number;
  contextDim: number;
  hidden: number;
  bins: number;
  /** 3K - 1 spline parameters per transformed dim. */
  paramsPerDim: number;
  alignElements: number;
  /** Length of the flat vector (including alignment gaps; a multiple of alignElements). */
  size: number;
  /** Number of trainable scalars (without gaps). */
  denseSize: number;
  layers: CouplingLayerSpec[];
  /** All tensors in storage order. */
  tensors: TensorSpec[];
}

export interface LayoutOptions {
  /** Tensor start alignment in elements (default 64 = 256 B of f32). 1 = dense. */
  alignElements?: number;
}

/** Split of layer l: which dims are transformed and which condition. */
export function couplingSplit(P: number, l: number): { transformed: number[]; identity: number[] } {
  const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
  if (P === 1) return { transformed: [0], identity: [] };
  const h = Math.ceil(P / 2);
  return l % 2 === 0 ? { transformed: range(0, h), identity: range(h, P) } : { transformed: range(h, P), identity: range(0, h) };
}

/**
 * Initial uniform bound per tensor, as nflows/torch:
 * - nn.Linear default (kaiming_uniform(a=sqrt(5)) on the weight, U(+-1/sqrt(fan_in)) on the bias)
 *   = U(+-1/sqrt(fan_in)) for both; fan_in = 0 (P = 1, F = 0) gives bound 0 like torch's bias rule.
 * - nflows ResidualBlock(zero_initialization=True): the block's second Linear, weight and bias,
 *   U(+-1e-3), so every residual block starts close to the identity map.
 * The final Linear keeps the torch default; nflows then divides the width/height logits by
 * sqrt(hidden) (see spline.ts), which keeps the initial bins close to uniform. The flow does NOT
 * start exactly at the identity (neither does nflows/sbi).
 */
function initBound(role: TensorRole, fanIn: number): number {
  if (role === 'lin2.weight' || role === 'lin2.bias') return 1e-3;
  return fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
}

export function buildLayout(cfg: FlowConfig, opts: LayoutOptions = {}): FlowLayout {
  const align = opts.alignElements ?? 64;
  if (!Number.isInteger(align) || align < 1) throw new RangeError(`layout: alignElements must be a positive integer, got ${align}`);
  const P = cfg.thetaDim;
  const F = cfg.contextDim;
  const H = cfg.hidden;
  const K = cfg.bins;
  const per = 3 * K - 1;
  const tensors: TensorSpec[] = [];
  let offset = 0;
  let dense = 0;
  const add = (layer: number, block: number, role: TensorRole, shape: number[], fanIn: number): TensorSpec => {
    const size = shape.reduce((a, b) => a * b, 1);
    const prefix = block >= 0 ? `t${layer}.block${block}.` : `t${layer}.`;
    const t: TensorSpec = { name: prefix + role, layer, block, role, offset, denseOffset: dense, shape, size, initBound: initBound(role, fanIn) };
    tensors.push(t);
    offset += Math.ceil(size / align) * align;
    dense += size;
    return t;
  };
  const linear = (layer: number, block: number, kind: 'in' | 'lin1' | 'lin2' | 'out', inDim: number, outDim: number): LinearSpec => ({
    inDim,
    outDim,
    weight: add(layer, block, `${kind}.weight` as TensorRole, [inDim, outDim], inDim),
    bias: add(layer, block, `${kind}.bias` as TensorRole, [outDim], inDim),
  });
  const layers: CouplingLayerSpec[] = [];
  const mdn = cfg.head === 'mdn';
  // MDN head: a single "layer" that transforms every dim, conditioned on the context alone, whose
  // output is the mixture's raw parameters (src/flow/mdn.ts) instead of spline parameters.
  for (let l = 0; l < (mdn ? 1 : cfg.transforms); l++) {
    const { transformed, identity } = mdn ? { transformed: Array.from({ length: P }, (_, i) => i), identity: [] as number[] } : couplingSplit(P, l);
    const inDim = identity.length + F;
    const outDim = mdn ? mdnOutDim(P, cfg.components) : transformed.length * per;
    const input = linear(l, -1, 'in', inDim, H);
    const blocks: BlockSpec[] = [];
    for (let b = 0; b < cfg.blocks; b++) blocks.push({ lin1: linear(l, b, 'lin1', H, H), lin2: linear(l, b, 'lin2', H, H) });
    const output = linear(l, -1, 'out', H, outDim);
    layers.push({ index: l, transformed, identity, inDim, outDim, input, blocks, output });
  }
  return { head: cfg.head, components: mdn ? cfg.components : 0, thetaDim: P, contextDim: F, hidden: H, bins: K, paramsPerDim: per, alignElements: align, size: offset, denseSize: dense, layers, tensors };
}

/** A view of one tensor inside a flat vector. */
export function tensorView<T extends Float64Array | Float32Array>(flat: T, t: TensorSpec): T {
  return flat.subarray(t.offset, t.offset + t.size) as T;
}
