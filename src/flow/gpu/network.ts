/**
 * The coupling NSF as GPU dispatches: the forward pass (data -> noise, with the per-layer caches
 * the backward needs), the backward pass (every parameter gradient written exactly once per step,
 * so the gradient buffer never needs zeroing), and the inverse (sampling). Mirrors
 * src/flow/flow.ts couplingForward / couplingBackward / couplingInverse and src/flow/mlp.ts layer by
 * layer; the dispatches are recorded into a PlanRecorder (plan.ts) and replayed.
 *
 * Per coupling layer l (identity columns [i0, i0 + Di), transformed [t0, t0 + Dt)):
 *   forward   condInput: cond = [v_l[identity], xs], v_{l+1}[identity] = v_l[identity]   (columns)
 *             h = cond W_in + b_in, a0 = act(h)                                         (gemm + act)
 *             per block: a1 = act(a0 W1 + b1); h = a1 W2 + b2 + h, a0 = act(h)         (gemm + act, + residual)
 *             raw = h W_out + b_out                                                     (gemm)
 *             v_{l+1}[transformed] = spline(v_l[transformed]; raw), logdet +=           (spline, strided)
 *   backward  spline backward -> gU into gv_l[transformed], gRaw
 *             per Linear: gW = X^T gY, gb = 1^T gY (split-K, below), gX = gY W^T
 *             (in blocks: times act'(cached post-activation), + the skip gradient)     (gemm epilogue)
 *             gv_l[identity] = gv_{l+1}[identity] + (dL/dcond)[:, :Di]                   (scatterAdd)
 * MDN head (layout.head 'mdn': one "layer", conditioner input = xs itself, no identity columns):
 *   forward   conditioner, then mdnLogProb: z = 0, logdet = log q + P/2 log 2pi   (kernels/nn/mdn.ts)
 *   backward  mdnBackward: gRaw from dL/dlogdet; then the conditioner backward as above
 *             (both one dispatch, per row or per (row, component): NetShape.mdnPerComponent)
 *   sampling  conditioner, then mdnSample: t = mu_k + U_k^-1 z (recordMdnSample)
 * Cached per layer in training: v_l, cond, a0/a1 per block, the last hidden state, raw. The
 * pre-activation t is not kept: relu' and tanh' are functions of the output. The activations and
 * their derivatives are GEMM epilogues (kernels/gemm.ts act / actGrad), not dispatches of their own.
 *
 * Weight gradients with K = batch rows are "skinny" GEMMs (e.g. 50 x 50 outputs over 65536 rows):
 * one workgroup per 64 x 64 output tile would walk all rows alone. They are split along the rows
 * into S chunks of c rows (one batched GEMM writing S partial gradients, each with its bias partial
 * 1^T G as the GEMM's extra ones row: no column-sum dispatch per chunk), then one column sum over
 * the S partials writes the weight AND the bias gradient, because in the layout the bias follows
 * its weight at the next 64-element boundary (the padding in between receives exact zeros). The
 * batch is padded to nPad = S c rows; padded rows get zero gradient seeds, so they contribute exact
 * zeros (their forward values are finite leftovers of earlier batches or the initial zeros).
 *
 * The 'rows' path (LinearPath, the default on CPU drivers) runs each Linear as ONE register-tiled
 * dispatch (kernels/nn/linearRows.ts) with the rest fused into its epilogue:
 *   forward   input Linear writes h and a0 = act(h); lin1 writes a1 = act(.) only; lin2 adds the
 *             residual and writes h and the next block's a0; the output Linear writes raw
 *   backward  gX = (G W^T) act'(post) (+ the skip gradient) in one pass; the input Linear's gX is
 *             written straight into gv[identity] with gNext[identity] added (no scatterAdd);
 *             gW and gb together from one xtg (row slices summed by colSum only where it splits);
 *             with LINEAR_ROWS_TUNING.fuseBackward a Linear's xtg and its gX are ONE dispatch
 *             (rowsXtgProgram: independent work, and on llvmpipe each dispatch has a fixed cost of
 *             some 20-40 us, as much as either's arithmetic at batch 256)
 * 82 dispatches per training step for the sbi default (111 with separate xtg and gX; 300 -> 217 for
 * the reference study's 14 x 30) instead of the 'gemm' path's 144 (split-K), no padded rows
 * (SPLIT_NONE).
 */
import { type GemmShape, type GemmTile, TILE_SMALL, chooseTile, gemmBindings, gemmProgram } from '../../../kernels/gemm.js';
import { colSumProgram, condInputBindings, condInputProgram, fillProgram, scatterAddBindings, scatterAddProgram } from '../../../kernels/nn/columns.js';
import {
  LINEAR_ROWS_TUNING,
  type RowsMatmulBuffers,
  type RowsMatmulShape,
  type RowsTile,
  type XtgShape,
  type XtgTile,
  rowsMatmulBindings,
  rowsMatmulProgram,
  rowsXtgBindings,
  rowsXtgFits,
  rowsXtgProgram,
  xtgMaxSlices,
  xtgProgram,
  xtgSliceRows,
} from '../../../kernels/nn/linearRows.js';
import { type SplineKernelSpec, splineBackwardProgram, splineForwardProgram, splineInverseProgram } from '../../../kernels/nn/spline.js';
import { mdnBackwardProgram, mdnLogProbProgram, mdnSampleProgram } from '../../../kernels/nn/mdn.js';
import { createStorageBuffer } from '../../gpu/buffers.js';
import type { Bindings } from '../../gpu/kernel.js';
import type { Activation } from '../mlp.js';
import type { CouplingLayerSpec, FlowLayout, LinearSpec, TensorSpec } from '../layout.js';
import type { PlanRecorder } from './plan.js';

export type Ref = Bindings[number];

/**
 * How the conditioner's Linear layers run: 'gemm' = the tiled GEMM (kernels/gemm.ts) with the
 * activations and the residual in its epilogue and split-K weight gradients (for GPUs); 'rows' = the
 * register-tiled kernels of kernels/nn/linearRows.ts with the identity-gradient scatter fused as well
 * (for CPU drivers such as llvmpipe, where they run 3-5x faster and a step needs about 2/3 of the
 * dispatches).
 */
export type LinearPath = 'gemm' | 'rows';

/** Static shape of the network (from the config and the 64-aligned layout). */
export interface NetShape {
  linear: LinearPath;
  /** 'mdn': one conditioner on the context whose output is a Gaussian mixture (see recordMdnSample). */
  head: 'nsf' | 'mdn';
  /** Mixture components (MDN head). */
  components: number;
  /** 'rows' path: the rowsMatmul and xtg tiles (subgroup broadcasts where the device has them). */
  rowsTile: RowsTile;
  xtgTile: XtgTile;
  serialSpline: boolean;
  /** Column sums as workgroup reductions (GPUs; kernels/nn/columns.ts colSumProgram `wide`). */
  wideColSum: boolean;
  /** MDN log-density and backward one thread per (row, component) (GPUs; kernels/nn/mdn.ts MdnSchedule). */
  mdnPerComponent: boolean;
  P: number;
  F: number;
  H: number;
  T: number;
  blocks: number;
  act: Activation;
  spline: SplineKernelSpec;
  layout: FlowLayout;
  /** Per layer: first identity / transformed column (the ranges are contiguous). */
  i0: number[];
  t0: number[];
  inMax: number;
  outMax: number;
  diMax: number;
}

const contiguous = (a: number[]) => a.every((v, i) => v === a[0] + i);

/** Device-dependent kernel choices of a NetShape. */
export interface NetKernels {
  linear?: LinearPath;
  /** The device runs subgroup tiles (kernels/nn/linearRows.ts subgroupsOf8). */
  subgroups?: boolean;
  /** Spline forward / inverse one thread per sample, without barriers (kernels/nn/spline.ts splineSerialFor). */
  serialSpline?: boolean;
  /** Column sums as workgroup reductions (default: unless serialSpline, i.e. on GPUs). */
  wideColSum?: boolean;
  /** MDN kernels one thread per (row, component) (default: unless serialSpline, i.e. on GPUs). */
  mdnPerComponent?: boolean;
}

export function netShape(layout: FlowLayout, act: Activation, blocks: number, spline: SplineKernelSpec, kernels: NetKernels = {}): NetShape {
  const { linear = 'gemm', subgroups = false } = kernels;
  if (layout.alignElements % 64 !== 0) throw new Error(`gpu flow: the layout must be 64-element aligned (256-byte sub-ranges), got ${layout.alignElements}`);
  for (const l of layout.layers) {
    if (!contiguous(l.identity) || !contiguous(l.transformed) || l.transformed.length === 0) throw new Error(`gpu flow: layer ${l.index}: identity and transformed columns must be non-empty contiguous ranges`);
  }
  return {
    linear,
    head: layout.head,
    components: layout.components,
    rowsTile: { ...LINEAR_ROWS_TUNING.rows, sg: subgroups && LINEAR_ROWS_TUNING.rows.NB % 8 === 0 },
    xtgTile: { ...LINEAR_ROWS_TUNING.xtg, sg: subgroups && LINEAR_ROWS_TUNING.xtg.KB === 8 },
    serialSpline: !!kernels.serialSpline,
    wideColSum: kernels.wideColSum ?? !kernels.serialSpline,
    mdnPerComponent: kernels.mdnPerComponent ?? !kernels.serialSpline,
    P: layout.thetaDim,
    F: layout.contextDim,
    H: layout.hidden,
    T: layout.layers.length,
    blocks,
    act,
    spline,
    layout,
    i0: layout.layers.map((l) => l.identity[0] ?? 0),
    t0: layout.layers.map((l) => l.transformed[0]),
    inMax: Math.max(1, ...layout.layers.map((l) => l.inDim)),
    outMax: Math.max(...layout.layers.map((l) => l.outDim)),
    diMax: Math.max(0, ...layout.layers.map((l) => l.identity.length)),
  };
}

/** A tensor of the flat parameter / gradient vector as a binding sub-range. */
export function tensorRef(buf: GPUBuffer, t: TensorSpec, elements = t.size): Ref {
  return { buffer: buf, offset: t.offset * 4, size: Math.max(1, elements) * 4 };
}

/** Row split of the weight-gradient GEMMs: S chunks of c rows, nPad = S c >= n (nPad - n < c). */
export interface RowSplit {
  n: number;
  S: number;
  c: number;
  nPad: number;
}

export interface SplitTuning {
  /** Most row chunks of a weight-gradient GEMM. */
  maxSplits: number;
  /** Fewest rows per chunk. */
  minChunk: number;
}

/**
 * GPUs: many short chunks. A chunk is one workgroup per output tile of the batched weight-gradient
 * GEMM (a 50 x 50 gradient is one tile), so S chunks are S workgroups: 512 keep an H100's 132 SMs
 * busy where 128 left one workgroup per SM walking 512 rows.
 */
export const SPLIT_GPU: SplitTuning = { maxSplits: 512, minChunk: 128 };
/** lavapipe: few long workgroups (each barrier-synchronised workgroup has a fixed cost). */
export const SPLIT_CPU_DRIVER: SplitTuning = { maxSplits: 8, minChunk: 1024 };
/** No row split (the 'rows' path slices the rows inside its weight-gradient kernel). */
export const SPLIT_NONE: SplitTuning = { maxSplits: 1, minChunk: 1 };

export function rowSplit(n: number, t: SplitTuning): RowSplit {
  const S0 = Math.max(1, Math.min(t.maxSplits, Math.floor(n / t.minChunk)));
  const c = Math.ceil(n / S0);
  const S = Math.ceil(n / c);
  return { n, S, c, nPad: S * c };
}

/**
 * GPU buffers of one batch capacity. 'train' keeps per-layer caches and the backward scratch;
 * 'eval' (log-densities, validation loss, sampling) shares one set of activation buffers across
 * layers and ping-pongs v.
 */
export class Workspace {
  private readonly owned: GPUBuffer[] = [];
  readonly v: GPUBuffer[];
  readonly xs: GPUBuffer | null;
  readonly cond: (GPUBuffer | null)[];
  readonly a0: GPUBuffer[][];
  readonly a1: GPUBuffer[][];
  readonly hLast: GPUBuffer[];
  readonly raw: GPUBuffer[];
  readonly hA: GPUBuffer;
  readonly hB: GPUBuffer;
  readonly zeros: GPUBuffer | null;
  readonly logdet: GPUBuffer;
  readonly logProb: GPUBuffer;
  readonly idx: GPUBuffer;
  // training only
  readonly gvA: GPUBuffer | null = null;
  readonly gvB: GPUBuffer | null = null;
  readonly gLd: GPUBuffer | null = null;
  readonly gRaw: GPUBuffer | null = null;
  readonly gHA: GPUBuffer | null = null;
  readonly gHB: GPUBuffer | null = null;
  readonly G1: GPUBuffer | null = null;
  readonly G2: GPUBuffer | null = null;
  readonly gCond: GPUBuffer | null = null;
  private readonly partials = new Map<string, GPUBuffer>();
  // sampling only
  readonly bases: GPUBuffer | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly net: NetShape,
    /** Rows. */
    readonly cap: number,
    readonly mode: 'train' | 'eval',
    /** Largest number of row splits (train): sizes the partial-gradient buffers. */
    readonly maxSplits = 1,
  ) {
    const { P, F, H, T, blocks, layout } = net;
    const train = mode === 'train';
    const a = (floats: number, label: string) => this.alloc(floats, label);
    const perLayer = <X>(f: (l: number) => X, shared: () => X): X[] => {
      if (train) return Array.from({ length: T }, (_, l) => f(l));
      const s = shared();
      return Array.from({ length: T }, () => s);
    };
    this.v = train ? Array.from({ length: T + 1 }, (_, l) => a(cap * P, `v${l}`)) : [a(cap * P, 'v0'), a(cap * P, 'vA'), a(cap * P, 'vB')];
    this.xs = F > 0 ? a(cap * F, 'xs') : null;
    // MDN: the conditioner's input is the context itself (no identity columns): bind xs, no copy.
    this.cond =
      net.head === 'mdn'
        ? [this.xs]
        : perLayer(
            (l) => (layout.layers[l].inDim > 0 ? a(cap * layout.layers[l].inDim, `cond${l}`) : null),
            () => (net.inMax > 0 ? a(cap * net.inMax, 'cond') : null),
          );
    this.a0 = perLayer(
      (l) => Array.from({ length: blocks }, (_, b) => a(cap * H, `a0.${l}.${b}`)),
      () => {
        const s = blocks > 0 ? a(cap * H, 'a0') : null;
        return Array.from({ length: blocks }, () => s!);
      },
    );
    this.a1 = perLayer(
      (l) => Array.from({ length: blocks }, (_, b) => a(cap * H, `a1.${l}.${b}`)),
      () => {
        const s = blocks > 0 ? a(cap * H, 'a1') : null;
        return Array.from({ length: blocks }, () => s!);
      },
    );
    this.hLast = perLayer(
      (l) => a(cap * H, `hLast${l}`),
      () => a(cap * H, 'hLast'),
    );
    this.raw = perLayer(
      (l) => a(cap * layout.layers[l].outDim, `raw${l}`),
      () => a(cap * net.outMax, 'raw'),
    );
    this.hA = a(cap * H, 'hA');
    this.hB = a(cap * H, 'hB');
    this.zeros = layout.layers.some((l) => l.inDim === 0) ? a(cap, 'zeros') : null;
    this.logdet = a(cap, 'logdet');
    this.logProb = a(cap, 'logProb');
    this.idx = a(cap, 'rows');
    if (train) {
      this.gvA = a(cap * P, 'gvA');
      this.gvB = a(cap * P, 'gvB');
      this.gLd = a(cap, 'gLogdet');
      this.gRaw = a(cap * net.outMax, 'gRaw');
      this.gHA = a(cap * H, 'gHA');
      this.gHB = a(cap * H, 'gHB');
      this.G1 = a(cap * H, 'G1');
      this.G2 = a(cap * H, 'G2');
      this.gCond = net.diMax > 0 ? a(cap * net.diMax, 'gCond') : null;
    } else {
      this.bases = a(2 * cap, 'bases');
    }
  }

  private alloc(floats: number, label: string): GPUBuffer {
    const b = createStorageBuffer(this.device, Math.max(1, floats) * 4, `flow ${this.mode} ${label}`);
    this.owned.push(b);
    return b;
  }

  /** Partial-gradient scratch of one Linear shape: S rows of (weight, pad, bias) (pads stay zero). */
  partial(lin: LinearSpec, S: number): GPUBuffer {
    const stride = lin.bias.offset - lin.weight.offset + lin.outDim;
    const key = `${lin.inDim}x${lin.outDim}`;
    let b = this.partials.get(key);
    // Sized for every S a plan on this workspace can ask for (growing would orphan built plans).
    const most = this.net.linear === 'rows' ? xtgMaxSlices(lin.inDim, lin.outDim, this.net.xtgTile) : this.maxSplits;
    const need = Math.max(S, most) * stride * 4;
    if (!b || b.size < need) {
      b?.destroy();
      b = createStorageBuffer(this.device, need, `flow partial ${key}`);
      this.partials.set(key, b);
    }
    return b;
  }

  /** Buffer v_in / v_out of forward layer l. */
  fwdIn(l: number): GPUBuffer {
    return this.mode === 'train' ? this.v[l] : l === 0 ? this.v[0] : this.v[1 + ((l - 1) % 2)];
  }

  fwdOut(l: number): GPUBuffer {
    return this.mode === 'train' ? this.v[l + 1] : this.v[1 + (l % 2)];
  }

  get bytes(): number {
    let s = 0;
    for (const b of this.owned) s += b.size;
    for (const b of this.partials.values()) s += b.size;
    return s;
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
    for (const b of this.partials.values()) b.destroy();
    this.owned.length = 0;
    this.partials.clear();
  }
}

/** Everything a recording needs: the shape, the parameter / gradient buffers and a workspace. */
export interface NetBuffers {
  net: NetShape;
  params: GPUBuffer;
  grad?: GPUBuffer;
  ws: Workspace;
}

/**
 * The GEMM tile for the flow's skinny shapes: a side <= 32 gets a 32-wide tile side (8 threads of
 * 4), a side <= 64 a 64-wide one, so that e.g. a 30 x 30 weight gradient does not compute a 64 x 64
 * tile (4.5x the work; lavapipe pays for every padded multiply-add); large shapes as chooseTile.
 */
export function flowGemmTile(M: number, N: number, batch = 1): GemmTile {
  if (M > 64 && N > 64) return chooseTile(M, N, batch);
  if (M > 32 && N > 32) return TILE_SMALL;
  return { wgX: N <= 32 ? 8 : 16, wgY: M <= 32 ? 8 : 16, tm4: 1, tn4: 1, bk: 8 };
}

function gemm(shape: GemmShape) {
  return gemmProgram({ ...shape, tile: flowGemmTile(shape.M, shape.N, shape.batch ?? 1) });
}

/**
 * y = X W + b (+ residual) on rows [0, m), writing y to Y and/or act(y) to A in the GEMM's epilogue
 * (the activation is no dispatch of its own). X = null for inDim = 0.
 */
function linearForward(rec: PlanRecorder, b: NetBuffers, lin: LinearSpec, m: number, X: Ref | null, out: { Y?: Ref; A?: Ref; residual?: Ref }): void {
  const { params, ws, net } = b;
  const { Y, A, residual } = out;
  const epi = { hasBias: true, hasResidual: !!residual, act: A ? net.act : undefined, writePre: !!Y };
  const bufs = { c: Y, act: A, bias: tensorRef(params, lin.bias), residual };
  // Linear(0 -> H) is its bias: 0 . b + b with a zero column (GEMM needs K >= 1).
  if (lin.inDim === 0) rec.add(gemm({ M: m, N: lin.outDim, K: 1, ...epi }), gemmBindings({ a: ws.zeros!, b: tensorRef(params, lin.bias), ...bufs }));
  else rec.add(gemm({ M: m, N: lin.outDim, K: lin.inDim, ...epi }), gemmBindings({ a: X!, b: tensorRef(params, lin.weight), ...bufs }));
}

/**
 * gW = X^T G and gb = 1^T G of one Linear over rows [0, nPad), written into the gradient buffer
 * (never accumulated). X: nPad x inDim (null when inDim = 0), G: nPad x outDim.
 *
 * The bias gradient is the GEMM's ones row (kernels/gemm.ts onesRow): [X | 1]^T G in one dispatch,
 * the ones row stored at biasAt (the bias's offset relative to the weight), so no column-sum
 * dispatch of its own. The elements between the weight and biasAt are never written: in the
 * gradient buffer they are the layout's alignment padding, in `part` they stay the zeros the buffer
 * was created with (and the final colSum sums them into the gradient's padding as exact zeros).
 * inDim = 0 is the same GEMM with M = 0 (only the ones row; X is never read, G is bound instead).
 */
function linearWeightGrad(rec: PlanRecorder, b: NetBuffers, lin: LinearSpec, split: RowSplit, X: Ref | null, G: Ref): void {
  const { ws } = b;
  const grad = b.grad!;
  const { S, c, nPad } = split;
  const { inDim, outDim } = lin;
  const biasAt = lin.bias.offset - lin.weight.offset;
  const stride = biasAt + outDim;
  // The tile is picked for the inDim + 1 rows actually computed.
  const tile = flowGemmTile(inDim + 1, outDim, S);
  const shape = { M: inDim, N: outDim, transA: true, onesRow: true, onesAt: biasAt, tile };
  if (S === 1) {
    // C = the (weight | pad | bias) range of the gradient, from the weight's (256-byte aligned) offset.
    const out = { buffer: grad, offset: lin.weight.offset * 4, size: stride * 4 };
    rec.add(gemmProgram({ ...shape, K: nPad }), gemmBindings({ a: X ?? G, b: G, c: out }));
    return;
  }
  const part = ws.partial(lin, S);
  rec.add(gemmProgram({ ...shape, K: c, batch: S, strideA: c * inDim, strideB: c * outDim, strideC: stride }), gemmBindings({ a: X ?? G, b: G, c: part }));
  // Sum of the S partial (weight | zero pad | bias) rows straight into the gradient vector.
  rec.add(colSumProgram({ rows: S, cols: stride, outOffset: lin.weight.offset, wide: b.net.wideColSum }), { 0: part, 2: grad });
}

/**
 * gX = G W^T (first `cols` input columns only), G: m x outDim; with `post` (the forward output
 * act(x), m x cols) the activation backward in the epilogue: gX = (G W^T) act'(post) (+ residual).
 */
function linearInputGrad(rec: PlanRecorder, b: NetBuffers, lin: LinearSpec, m: number, G: Ref, gX: Ref, cols = lin.inDim, epi: { post?: Ref; residual?: Ref } = {}): void {
  const { post, residual } = epi;
  const program = gemm({ M: m, N: cols, K: lin.outDim, transB: true, actGrad: post ? b.net.act : undefined, hasResidual: !!residual });
  rec.add(program, gemmBindings({ a: G, b: tensorRef(b.params, lin.weight, cols * lin.outDim), c: gX, post, residual }));
}

/**
 * The conditioner of layer l on rows [0, m): cond (or nothing) -> ws.raw[l]; caches a0, a1, hLast.
 * Both LinearPaths fuse the activations and the residual into the Linear (GEMM epilogues or the
 * rows kernels' epilogues), so only the Linear dispatch differs: h (pre-activation, kept for the
 * residual) ping-pongs between hA and hB; a0 = act(h) and a1 = act(lin1) are written by the Linear
 * before them; lin1's pre-activation is never stored (relu' and tanh' use a1).
 */
function conditionerForward(rec: PlanRecorder, b: NetBuffers, layer: CouplingLayerSpec, m: number): void {
  const linear = b.net.linear === 'rows' ? rowsLinear : linearForward;
  const { ws } = b;
  const l = layer.index;
  const nb = layer.blocks.length;
  let h: GPUBuffer = nb > 0 ? ws.hA : ws.hLast[l];
  linear(rec, b, layer.input, m, ws.cond[l], { Y: h, A: nb > 0 ? ws.a0[l][0] : undefined });
  for (let k = 0; k < nb; k++) {
    const blk = layer.blocks[k];
    const last = k === nb - 1;
    const out = last ? ws.hLast[l] : h === ws.hA ? ws.hB : ws.hA;
    linear(rec, b, blk.lin1, m, ws.a0[l][k], { A: ws.a1[l][k] });
    linear(rec, b, blk.lin2, m, ws.a1[l][k], { Y: out, A: last ? undefined : ws.a0[l][k + 1], residual: h });
    h = out;
  }
  linear(rec, b, layer.output, m, ws.hLast[l], { Y: ws.raw[l] });
}

// ---------------------------------------------------------------------------------------------
// The 'rows' path (kernels/nn/linearRows.ts): each Linear is one dispatch with its activation,
// residual and (backward) activation derivative fused into the epilogue.

/**
 * Forward Linear on rows [0, m): y = X W + b (+ residual), writing y to Y and/or act(y) to A.
 * X = null for inDim = 0 (the kernel reads no X; any buffer is bound).
 */
function rowsLinear(rec: PlanRecorder, b: NetBuffers, lin: LinearSpec, m: number, X: Ref | null, out: { Y?: Ref; A?: Ref; residual?: Ref }): void {
  const { params, net } = b;
  const program = rowsMatmulProgram({ M: m, K: lin.inDim, N: lin.outDim, hasBias: true, hasResidual: !!out.residual, outPre: !!out.Y, outAct: !!out.A, act: net.act, tile: net.rowsTile });
  rec.add(program, rowsMatmulBindings({ x: X ?? params, b: tensorRef(params, lin.weight), bias: tensorRef(params, lin.bias), y: out.Y, a: out.A, res: out.residual }));
}

/** A Linear's input gradient on the 'rows' path: rowsMatmul over G (its X) into bufs.y. */
interface RowsInputGrad {
  shape: RowsMatmulShape;
  bufs: RowsMatmulBuffers;
}

/**
 * gW, gb of one Linear over rows [0, m) into the gradient buffer (row slices summed by colSum), and
 * its input gradient `input` (rowsMatmul with X = G) where one is needed. With
 * LINEAR_ROWS_TUNING.fuseBackward the two are one dispatch (rowsXtgProgram; on llvmpipe a dispatch
 * has a fixed cost of some 20-40 us, as much as either's arithmetic at batch 256); the colSum of a
 * split xtg stays a dispatch of its own, after it.
 */
function rowsWeightGrad(rec: PlanRecorder, b: NetBuffers, lin: LinearSpec, m: number, X: Ref | null, G: Ref, input?: RowsInputGrad): void {
  const grad = b.grad!;
  const tile = b.net.xtgTile;
  const { inDim: K, outDim: N } = lin;
  const biasAt = lin.bias.offset - lin.weight.offset;
  const stride = biasAt + N;
  const c = xtgSliceRows(m, K, N, tile);
  const S = Math.ceil(m / c);
  const x = X ?? G;
  const part = S === 1 ? null : b.ws.partial(lin, S);
  const xtg: XtgShape = { M: m, K, N, c, stride, biasAt, outOffset: part ? 0 : lin.weight.offset, tile };
  const out = part ?? grad;
  const colSum = () => {
    if (part) rec.add(colSumProgram({ rows: S, cols: stride, outOffset: lin.weight.offset, wide: b.net.wideColSum }), { 0: part, 2: grad });
  };
  if (input && LINEAR_ROWS_TUNING.fuseBackward) {
    const fused = { rows: input.shape, xtg };
    if (rowsXtgFits(fused)) {
      rec.add(rowsXtgProgram(fused), rowsXtgBindings({ ...input.bufs, xf: x, d: out }));
      colSum();
      return;
    }
  }
  rec.add(xtgProgram(xtg), { 0: x, 1: G, 2: out });
  colSum();
  if (input) rec.add(rowsMatmulProgram(input.shape), rowsMatmulBindings(input.bufs));
}

/** Backward of layer l's conditioner from gRaw: every parameter gradient, and for l > 0 gCur[identity] = gNext[identity] + dL/dcond. */
function conditionerBackwardRows(rec: PlanRecorder, b: NetBuffers, layer: CouplingLayerSpec, m: number, gNext: GPUBuffer, gCur: GPUBuffer): void {
  const { net, ws, params } = b;
  const l = layer.index;
  const H = net.H;
  const W = (lin: LinearSpec, rows = lin.inDim) => tensorRef(params, lin.weight, rows * lin.outDim);
  const inputGrad = (lin: LinearSpec, G: Ref, out: Ref, post?: Ref, residual?: Ref): RowsInputGrad => ({
    shape: { M: m, K: lin.outDim, N: lin.inDim, transB: true, actGrad: !!post, act: net.act, hasResidual: !!residual, tile: net.rowsTile },
    bufs: { x: G, b: W(lin), y: out, post, res: residual },
  });
  let gH = ws.gHA!;
  rowsWeightGrad(rec, b, layer.output, m, ws.hLast[l], ws.gRaw!, inputGrad(layer.output, ws.gRaw!, gH));
  for (let k = layer.blocks.length - 1; k >= 0; k--) {
    const blk = layer.blocks[k];
    // dL/dt = (gH W2^T) act'(a1)
    rowsWeightGrad(rec, b, blk.lin2, m, ws.a1[l][k], gH, inputGrad(blk.lin2, gH, ws.G1!, ws.a1[l][k]));
    // dL/dh = (dL/dt W1^T) act'(a0) + gH (the skip connection)
    const gNew = gH === ws.gHA ? ws.gHB! : ws.gHA!;
    rowsWeightGrad(rec, b, blk.lin1, m, ws.a0[l][k], ws.G1!, inputGrad(blk.lin1, ws.G1!, gNew, ws.a0[l][k], gH));
    gH = gNew;
  }
  // gCur[:, i0 + j] = gNext[:, i0 + j] + (gH W_in^T)[:, j], j < Di: the scatter fused as a strided
  // epilogue; layer 0 needs no input gradient (dL/dtheta is not formed).
  const Di = layer.identity.length;
  const i0 = net.i0[l];
  const scatter: RowsInputGrad | undefined =
    l > 0 && Di > 0
      ? { shape: { M: m, K: H, N: Di, transB: true, hasResidual: true, ldY: net.P, offY: i0, ldRes: net.P, offRes: i0, tile: net.rowsTile }, bufs: { x: gH, b: W(layer.input, Di), y: gCur, res: gNext } }
      : undefined;
  rowsWeightGrad(rec, b, layer.input, m, ws.cond[l], gH, scatter);
}

function condInput(rec: PlanRecorder, b: NetBuffers, layer: CouplingLayerSpec, m: number, vin: GPUBuffer, vout: GPUBuffer): void {
  const { net, ws } = b;
  const l = layer.index;
  const Di = layer.identity.length;
  if (layer.inDim === 0 || ws.cond[l] === ws.xs) return;
  const shape = { n: m, P: net.P, F: net.F, identityStart: net.i0[l], identityCount: Di, copy: Di > 0 };
  rec.add(condInputProgram(shape), condInputBindings({ v: vin, xs: ws.xs ?? undefined, cond: ws.cond[l]!, vOut: vout }, shape));
}

/**
 * Forward (data -> noise) over rows [0, m): v_0 = ws.v[0] (standardised theta) and ws.xs must be
 * filled; leaves z in ws.fwdOut(T - 1) and the summed log|det| in ws.logdet.
 * MDN: the conditioner on xs, then z = 0 and logdet = log q + P/2 log 2pi (kernels/nn/mdn.ts), so
 * that the NLL kernel downstream yields log q.
 */
export function recordForward(rec: PlanRecorder, b: NetBuffers, m: number): void {
  const { net, ws } = b;
  if (net.head === 'mdn') {
    const layer = net.layout.layers[0];
    conditionerForward(rec, b, layer, m);
    rec.add(mdnLogProbProgram({ n: m, P: net.P, K: net.components, perComponent: net.mdnPerComponent }), { 0: ws.raw[0], 1: ws.v[0], 2: ws.fwdOut(0), 3: ws.logdet });
    return;
  }
  for (const layer of net.layout.layers) {
    const l = layer.index;
    const vin = ws.fwdIn(l);
    const vout = ws.fwdOut(l);
    condInput(rec, b, layer, m, vin, vout);
    conditionerForward(rec, b, layer, m);
    const Dt = layer.transformed.length;
    const rl = { stride: net.P, offset: net.t0[l] };
    rec.add(splineForwardProgram({ n: m, dims: Dt, spec: net.spline, accumulate: l > 0, input: rl, output: rl, serial: net.serialSpline }), { 0: vin, 1: ws.raw[l], 2: vout, 3: ws.logdet });
  }
}

/**
 * Backward over rows [0, split.nPad) given dL/dz in ws.gvA (zero on padded rows) and dL/dlogdet in
 * ws.gLd: writes every parameter gradient into b.grad. dL/dtheta is not formed (layer 0 skips its
 * input gradient).
 */
export function recordBackward(rec: PlanRecorder, b: NetBuffers, split: RowSplit): void {
  const { net, ws } = b;
  const m = split.nPad;
  let gNext = ws.gvA!;
  let gCur = ws.gvB!;
  for (let l = net.T - 1; l >= 0; l--) {
    const layer = net.layout.layers[l];
    const Dt = layer.transformed.length;
    const Di = layer.identity.length;
    const rl = { stride: net.P, offset: net.t0[l] };
    // MDN (one layer, no identity columns): gRaw from dL/dlogdet = dL/dlog q; dL/dz is zero and
    // dL/dtheta is not formed, so the conditioner backward below is all that follows.
    if (net.head === 'mdn') rec.add(mdnBackwardProgram({ n: m, P: net.P, K: net.components, perComponent: net.mdnPerComponent }), { 0: ws.raw[0], 1: ws.v[0], 4: ws.gLd!, 5: ws.gRaw! });
    else rec.add(splineBackwardProgram({ n: m, dims: Dt, spec: net.spline, u: rl, gY: rl, gU: rl }), { 0: ws.v[l], 1: ws.raw[l], 2: gNext, 3: ws.gLd!, 4: gCur, 5: ws.gRaw! });
    if (net.linear === 'rows') {
      conditionerBackwardRows(rec, b, layer, m, gNext, gCur);
      [gNext, gCur] = [gCur, gNext];
      continue;
    }
    // Output Linear.
    linearWeightGrad(rec, b, layer.output, split, ws.hLast[l], ws.gRaw!);
    let gH = ws.gHA!;
    linearInputGrad(rec, b, layer.output, m, ws.gRaw!, gH);
    // Residual blocks, last to first.
    // The activation backward is the input-gradient GEMM's epilogue.
    for (let k = layer.blocks.length - 1; k >= 0; k--) {
      const blk = layer.blocks[k];
      linearWeightGrad(rec, b, blk.lin2, split, ws.a1[l][k], gH);
      // dL/dt = (gH W2^T) act'(a1): lin1's output gradient, which its weight gradient reads.
      linearInputGrad(rec, b, blk.lin2, m, gH, ws.G2!, undefined, { post: ws.a1[l][k] });
      linearWeightGrad(rec, b, blk.lin1, split, ws.a0[l][k], ws.G2!);
      // dL/dh = (dL/dt W1^T) act'(a0) + gH (the skip connection).
      const gNew = gH === ws.gHA ? ws.gHB! : ws.gHA!;
      linearInputGrad(rec, b, blk.lin1, m, ws.G2!, gNew, undefined, { post: ws.a0[l][k], residual: gH });
      gH = gNew;
    }
    // Input Linear; its input gradient only for the identity columns of layers > 0.
    linearWeightGrad(rec, b, layer.input, split, ws.cond[l], gH);
    if (l > 0 && Di > 0) {
      linearInputGrad(rec, b, layer.input, m, gH, ws.gCond!, Di);
      const s = { n: m, P: net.P, identityStart: net.i0[l], identityCount: Di };
      rec.add(scatterAddProgram(s), scatterAddBindings({ gIn: gNext, gc: ws.gCond!, gOut: gCur }));
    }
    [gNext, gCur] = [gCur, gNext];
  }
}

/** Zeroes rows [n, nPad) of the gradient seeds (padded rows must contribute nothing). */
export function recordZeroPadSeeds(rec: PlanRecorder, b: NetBuffers, split: RowSplit): void {
  const { n, nPad } = split;
  if (nPad === n) return;
  const P = b.net.P;
  rec.add(fillProgram({ count: (nPad - n) * P, offset: n * P }), { 2: b.ws.gvA! });
  rec.add(fillProgram({ count: nPad - n, offset: n }), { 2: b.ws.gLd! });
}

/**
 * Inverse (noise -> data) over rows [0, m) of an 'eval' workspace: z in ws.v[0] (kept), ws.xs
 * filled; leaves thetaStd in the returned buffer and sum_l log|f_l'| (forward sign) in ws.logdet.
 */
export function recordInverse(rec: PlanRecorder, b: NetBuffers, m: number): GPUBuffer {
  const { net, ws } = b;
  if (net.head === 'mdn') throw new Error('gpu flow: an MDN head samples with recordMdnSample (it needs the draws)');
  let vin = ws.v[0];
  for (let k = 0; k < net.T; k++) {
    const l = net.T - 1 - k;
    const layer = net.layout.layers[l];
    const vout = ws.v[1 + (k % 2)];
    condInput(rec, b, layer, m, vin, vout);
    conditionerForward(rec, b, layer, m);
    const rl = { stride: net.P, offset: net.t0[l] };
    rec.add(splineInverseProgram({ n: m, dims: layer.transformed.length, spec: net.spline, accumulate: k > 0, input: rl, output: rl, serial: net.serialSpline }), { 0: vin, 1: ws.raw[l], 2: vout, 3: ws.logdet });
    vin = vout;
  }
  return vin;
}

/** The draws of an MDN sampling block: the component uniforms' Philox stream and row r's draw index. */
export interface MdnDraws {
  seed: number;
  purpose: number;
  /** Contiguous draws d0, d0 + 1, ..; otherwise ws.bases holds d P per row as (lo, hi) u32 pairs. */
  d0?: number;
}

/** The MDN sampling kernel of a block of m draws (rewrite it with new draws in a recorded plan). */
export function mdnSampleKernel(net: NetShape, m: number, draws: MdnDraws) {
  return mdnSampleProgram({ n: m, P: net.P, K: net.components, ...draws });
}

/**
 * MDN sampling over rows [0, m) of an 'eval' workspace (the MDN's recordInverse): z in ws.v[0]
 * (kept), ws.xs filled; the conditioner, then t = mu_k + U_k^-1 z with component k from
 * u = uniform(seed, purpose, d) (kernels/nn/mdn.ts). Returns the buffer holding thetaStd and the
 * sampling kernel's item (for DispatchPlan.rewrite); ws.logdet gets log q - log N(z), which the
 * NLL kernel on (z, logdet) turns into log q as for an NSF.
 */
export function recordMdnSample(rec: PlanRecorder, b: NetBuffers, m: number, draws: MdnDraws): { out: GPUBuffer; item: number } {
  const { ws } = b;
  conditionerForward(rec, b, b.net.layout.layers[0], m);
  const out = ws.v[1];
  const item = rec.add(mdnSampleKernel(b.net, m, draws), { 0: ws.raw[0], 1: ws.v[0], 2: out, 3: ws.logdet, 6: ws.bases! });
  return { out, item };
}
