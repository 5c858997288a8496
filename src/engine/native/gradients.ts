/**
 * The input gradient of each ONNX op the native path differentiates (reverse mode, weights constant): given a
 * node and the gradient dY of its first output, the nodes that compute its inputs' gradients, appended to the
 * graph under construction. onnxVjp.ts walks the path from the layer back to the image and calls this per node.
 */
import type { onnx } from 'onnx-proto';
import { attr, constant, constantValues, explicitPads, float, floatAttr, getAttr, initializerValues, int, ints, node, str, type Ctx } from './protoBuild';

/** What a gradient rule needs besides the node: the graph being written and the path's facts. */
export interface GradientContext {
  ctx: Ctx;
  model: onnx.ModelProto;
  /** Values that depend on the image (only they receive gradients). */
  active: ReadonlySet<string>;
  /** A value's shape at batch 1, or why it is unknown. */
  shapeOf(v: string): number[] | string;
  /** Adds a gradient contribution to value v (ignored where v does not depend on the image). */
  addGrad(v: string, g: string): void;
  /** Sums a gradient of the broadcast output shape down to an operand's shape (numpy broadcasting). */
  unbroadcast(g: string, outShape: number[], target: number[]): string;
  /** A constant's values (the file's, or folded by the loader); null where the image reaches it. */
  constOf(name: string): { dims: number[]; values: ArrayLike<number> } | null;
  floatConst(name: string): { dims: number[]; values: Float32Array } | null;
}

/** Writes node n's input gradients from dY into cx.ctx; returns null, or why it cannot (the layer stays on tfjs). */
type Rule = (n: onnx.INodeProto, dY: string, cx: GradientContext, io: NodeIo) => string | null;

/** A node's input and output names, and its first input (the one most rules differentiate). */
interface NodeIo {
  ins: string[];
  outs: string[];
  X0: string;
}

/** One rule per op; an op that shares another's rule (Sub with Add, HardSwish with HardSigmoid) defers to it. */
const RULES: Record<string, Rule> = {
  Identity: (n, dY, cx, { X0 }) => {
    const { addGrad } = cx;
    addGrad(X0, dY);
    return null;
  },
  Dropout: (n, dY, cx, io) => RULES.Identity(n, dY, cx, io),
  Relu: (n, dY, cx, { outs, X0 }) => {
    const { ctx, addGrad } = cx;
    const [pos] = node(ctx, 'Greater', [outs[0], constant(ctx, [0], [])]);
    const [g] = node(ctx, 'Where', [pos, dY, constant(ctx, [0], [])]);
    addGrad(X0, g);
    return null;
  },
  LeakyRelu: (n, dY, cx, { X0 }) => {
    const { ctx, addGrad } = cx;
    const alpha = float(n, 'alpha', 0.01);
    const [pos] = node(ctx, 'Greater', [X0, constant(ctx, [0], [])]);
    const [neg] = node(ctx, 'Mul', [dY, constant(ctx, [alpha], [])]);
    addGrad(X0, node(ctx, 'Where', [pos, dY, neg])[0]);
    return null;
  },
  Clip: (n, dY, cx, { ins, X0 }) => {
    const { ctx, addGrad, floatConst } = cx;
    const lo = ins[1] ? floatConst(ins[1]) : null;
    const hi = ins[2] ? floatConst(ins[2]) : null;
    if ((ins[1] && !lo) || (ins[2] && !hi)) return `Clip (node "${n.name}") with bounds that are not initializers`;
    // tfjs's clipByValue gradient: dY where min <= x <= max.
    let mask: string | null = null;
    if (lo) mask = node(ctx, 'GreaterOrEqual', [X0, constant(ctx, [lo.values[0]], [])])[0];
    if (hi) {
      const [le] = node(ctx, 'LessOrEqual', [X0, constant(ctx, [hi.values[0]], [])]);
      mask = mask ? node(ctx, 'And', [mask, le])[0] : le;
    }
    addGrad(X0, mask ? node(ctx, 'Where', [mask, dY, constant(ctx, [0], [])])[0] : dY);
    return null;
  },
  Sigmoid: (n, dY, cx, { outs, X0 }) => {
    const { ctx, addGrad } = cx;
    const [oneMinus] = node(ctx, 'Sub', [constant(ctx, [1], []), outs[0]]);
    const [d] = node(ctx, 'Mul', [outs[0], oneMinus]);
    addGrad(X0, node(ctx, 'Mul', [dY, d])[0]);
    return null;
  },
  HardSigmoid: (n, dY, cx, { X0 }) => {
    const { ctx, addGrad } = cx;
    const op = n.opType ?? '';
    const alpha = op === 'HardSwish' ? 1 / 6 : float(n, 'alpha', 0.2);
    const beta = op === 'HardSwish' ? 0.5 : float(n, 'beta', 0.5);
    // t = alpha x + beta; hard-sigmoid = clip(t, 0, 1); slope alpha inside (0, 1).
    const [ax] = node(ctx, 'Mul', [X0, constant(ctx, [alpha], [])]);
    const [t] = node(ctx, 'Add', [ax, constant(ctx, [beta], [])]);
    const [gt] = node(ctx, 'Greater', [t, constant(ctx, [0], [])]);
    const [lt] = node(ctx, 'Less', [t, constant(ctx, [1], [])]);
    const [inside] = node(ctx, 'And', [gt, lt]);
    const [slope] = node(ctx, 'Where', [inside, constant(ctx, [alpha], []), constant(ctx, [0], [])]);
    let d: string;
    if (op === 'HardSigmoid') d = slope;
    else {
      // d(x · hs(x)) = hs(x) + x · hs'(x)
      const [tc] = node(ctx, 'Clip', [t, constant(ctx, [0], []), constant(ctx, [1], [])]);
      const [xs] = node(ctx, 'Mul', [X0, slope]);
      [d] = node(ctx, 'Add', [tc, xs]);
    }
    addGrad(X0, node(ctx, 'Mul', [dY, d])[0]);
    return null;
  },
  HardSwish: (n, dY, cx, io) => RULES.HardSigmoid(n, dY, cx, io),
  Add: (n, dY, cx, { ins, outs }) => {
    const { ctx, active, shapeOf, addGrad, unbroadcast } = cx;
    const op = n.opType ?? '';
    const outShape = shapeOf(outs[0]);
    if (typeof outShape === 'string') return outShape;
    for (const [side, v] of [[0, ins[0]], [1, ins[1]]] as [number, string][]) {
      if (!active.has(v)) continue;
      const vs = shapeOf(v);
      if (typeof vs === 'string') return vs;
      let g: string;
      const other = ins[1 - side];
      if (op === 'Add') g = dY;
      else if (op === 'Sub') g = side === 0 ? dY : node(ctx, 'Neg', [dY])[0];
      else if (op === 'Mul') g = node(ctx, 'Mul', [dY, other])[0];
      else if (side === 0) g = node(ctx, 'Div', [dY, other])[0];
      else {
        // d(a/b)/db = -a/b² = -y/b
        const [yb] = node(ctx, 'Div', [outs[0], ins[1]]);
        g = node(ctx, 'Neg', [node(ctx, 'Mul', [dY, yb])[0]])[0];
      }
      const same = vs.length === outShape.length && vs.every((d, i) => d === outShape[i]);
      addGrad(v, same ? g : unbroadcast(g, outShape, vs));
    }
    return null;
  },
  Sub: (n, dY, cx, io) => RULES.Add(n, dY, cx, io),
  Mul: (n, dY, cx, io) => RULES.Add(n, dY, cx, io),
  Div: (n, dY, cx, io) => RULES.Add(n, dY, cx, io),
  Conv: (n, dY, cx, { ins, outs, X0 }) => {
    const { ctx, model, shapeOf, addGrad } = cx;
    const w = initializerValues(model, ins[1]);
    if (!w) return `Conv (node "${n.name}") whose weights are not an initializer`;
    const xs = shapeOf(X0);
    const ys = shapeOf(outs[0]);
    if (typeof xs === 'string') return xs;
    if (typeof ys === 'string') return ys;
    const r = w.dims.length - 2;
    if (r !== 2) return `Conv (node "${n.name}") with ${r} spatial axes`;
    const kernel = ints(n, 'kernel_shape') ?? w.dims.slice(2);
    const strides = ints(n, 'strides') ?? [1, 1];
    const dil = ints(n, 'dilations') ?? [1, 1];
    const pads = explicitPads(n, xs.slice(2), ys.slice(2), kernel, strides, dil);
    if (typeof pads === 'string') return `Conv (node "${n.name}") with ${pads}`;
    const outPad = [0, 1].map((i) => xs[2 + i] - ((ys[2 + i] - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - pads[i] - pads[i + 2]));
    if (outPad.some((p, i) => p < 0 || p >= Math.max(strides[i], dil[i]))) return `Conv (node "${n.name}") whose input cannot be recovered by ConvTranspose`;
    const [g] = node(ctx, 'ConvTranspose', [dY, ins[1]], [
      attr('strides', strides), attr('pads', pads), attr('dilations', dil), attr('group', int(n, 'group', 1)),
      attr('kernel_shape', kernel), attr('output_padding', outPad),
    ]);
    addGrad(X0, g);
    return null;
  },
  MaxPool: (n, dY, cx, { outs, X0 }) => {
    const { ctx, shapeOf, addGrad } = cx;
    if (outs.length > 1 && outs[1]) return `MaxPool (node "${n.name}") whose indices are read`;
    if (int(n, 'storage_order', 0) !== 0) return `MaxPool (node "${n.name}") with storage_order 1`;
    const xs = shapeOf(X0);
    if (typeof xs === 'string') return xs;
    // The same pooling with its argmax indices (flat over N, C, H, W), then the gradient scattered and added
    // there; windows that overlap add up like tfjs's MaxPoolGrad.
    const [, idx] = node(ctx, 'MaxPool', [X0], n.attribute ?? [], 2);
    const [flatIdx] = node(ctx, 'Reshape', [idx, constant(ctx, [-1], [1], 'int64')]);
    const [flatG] = node(ctx, 'Reshape', [dY, constant(ctx, [-1], [1], 'int64')]);
    const [shp] = node(ctx, 'Shape', [X0]);
    const [count] = node(ctx, 'ReduceProd', [shp], [attr('keepdims', 1)]);
    const [zeros] = node(ctx, 'ConstantOfShape', [count]);
    const [scat] = node(ctx, 'ScatterElements', [zeros, flatIdx, flatG], [attr('axis', 0), attr('reduction', 'add')]);
    addGrad(X0, node(ctx, 'Reshape', [scat, shp])[0]);
    return null;
  },
  GlobalAveragePool: (n, dY, cx, { X0 }) => {
    const { ctx, shapeOf, addGrad } = cx;
    const xs = shapeOf(X0);
    if (typeof xs === 'string') return xs;
    const area = xs.slice(2).reduce((a, b) => a * b, 1);
    const [scaled] = node(ctx, 'Mul', [dY, constant(ctx, [1 / area], [])]);
    const [shp] = node(ctx, 'Shape', [X0]);
    addGrad(X0, node(ctx, 'Expand', [scaled, shp])[0]);
    return null;
  },
  BatchNormalization: (n, dY, cx, { ins, outs, X0 }) => {
    const { ctx, model, shapeOf, addGrad } = cx;
    if (outs.length > 1 && outs.slice(1).some((o) => o)) return `BatchNormalization (node "${n.name}") in training mode`;
    const gamma = initializerValues(model, ins[1]);
    const varv = initializerValues(model, ins[4]);
    if (!gamma || !varv) return `BatchNormalization (node "${n.name}") whose statistics are not initializers`;
    const eps = float(n, 'epsilon', 1e-5);
    const c = gamma.values.length;
    const k = Float32Array.from(gamma.values, (g, i) => g / Math.sqrt(varv.values[i] + eps));
    const xs = shapeOf(X0);
    if (typeof xs === 'string') return xs;
    const dims = [1, c, ...new Array(xs.length - 2).fill(1)];
    addGrad(X0, node(ctx, 'Mul', [dY, constant(ctx, k, dims)])[0]);
    return null;
  },
  Concat: (n, dY, cx, { ins, outs }) => {
    const { ctx, shapeOf, addGrad } = cx;
    const ys = shapeOf(outs[0]);
    if (typeof ys === 'string') return ys;
    const axis = (int(n, 'axis', 0) + ys.length) % ys.length;
    const sizes: number[] = [];
    for (const v of ins) {
      const s = shapeOf(v);
      if (typeof s === 'string') return s;
      sizes.push(s[axis]);
    }
    const parts = node(ctx, 'Split', [dY, constant(ctx, sizes, [sizes.length], 'int64')], [attr('axis', axis)], ins.length);
    ins.forEach((v, i) => addGrad(v, parts[i]));
    return null;
  },
  Flatten: (n, dY, cx, { X0 }) => {
    const { ctx, addGrad } = cx;
    const [shp] = node(ctx, 'Shape', [X0]);
    addGrad(X0, node(ctx, 'Reshape', [dY, shp])[0]);
    return null;
  },
  Reshape: (n, dY, cx, io) => RULES.Flatten(n, dY, cx, io),
  Transpose: (n, dY, cx, { X0 }) => {
    const { ctx, shapeOf, addGrad } = cx;
    const xs = shapeOf(X0);
    if (typeof xs === 'string') return xs;
    const perm = ints(n, 'perm') ?? xs.map((_, i) => xs.length - 1 - i);
    const inv = new Array(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    addGrad(X0, node(ctx, 'Transpose', [dY], [attr('perm', inv)])[0]);
    return null;
  },
  Tanh: (n, dY, cx, { outs, X0 }) => {
    const { ctx, addGrad } = cx;
    const [y2] = node(ctx, 'Mul', [outs[0], outs[0]]);
    const [d] = node(ctx, 'Sub', [constant(ctx, [1], []), y2]);
    addGrad(X0, node(ctx, 'Mul', [dY, d])[0]);
    return null;
  },
  Gemm: (n, dY, cx, { ins, X0 }) => {
    const { ctx, active, addGrad } = cx;
    // Y = alpha A' B' + beta C with A the activation: dA = alpha dY B'^T, a Gemm with B's transpose flag flipped.
    if (int(n, 'transA', 0) !== 0 || active.has(ins[1]) || (ins[2] && active.has(ins[2]))) return `Gemm (node "${n.name}") other than activation × constant`;
    addGrad(X0, node(ctx, 'Gemm', [dY, ins[1]], [floatAttr('alpha', float(n, 'alpha', 1)), attr('transB', int(n, 'transB', 0) ? 0 : 1)])[0]);
    return null;
  },
  MatMul: (n, dY, cx, { ins, X0 }) => {
    const { ctx, model, active, addGrad } = cx;
    const b = constantValues(model, ins[1]);
    if (!b || b.dims.length !== 2 || active.has(ins[1])) return `MatMul (node "${n.name}") other than activation × 2-D constant`;
    const [bt] = node(ctx, 'Transpose', [ins[1]], [attr('perm', [1, 0])]);
    addGrad(X0, node(ctx, 'MatMul', [dY, bt])[0]);
    return null;
  },
  ConvTranspose: (n, dY, cx, { ins, X0 }) => {
    const { ctx, model, addGrad } = cx;
    // The adjoint of a transposed convolution is the convolution with the same weights and geometry (the
    // output padding only adds rows that the conv's window does not reach).
    if (!initializerValues(model, ins[1])) return `ConvTranspose (node "${n.name}") whose weights are not an initializer`;
    if (str(n, 'auto_pad', 'NOTSET') !== 'NOTSET' || getAttr(n, 'output_shape')) return `ConvTranspose (node "${n.name}") with auto_pad or output_shape`;
    const w = initializerValues(model, ins[1])!;
    const kernel = ints(n, 'kernel_shape') ?? w.dims.slice(2);
    if (kernel.length !== 2) return `ConvTranspose (node "${n.name}") with ${kernel.length} spatial axes`;
    const g = node(ctx, 'Conv', [dY, ins[1]], [
      attr('strides', ints(n, 'strides') ?? [1, 1]), attr('pads', ints(n, 'pads') ?? [0, 0, 0, 0]), attr('dilations', ints(n, 'dilations') ?? [1, 1]),
      attr('group', int(n, 'group', 1)), attr('kernel_shape', kernel),
    ])[0];
    addGrad(X0, g);
    return null;
  },
  AveragePool: (n, dY, cx, { outs, X0 }) => {
    const { ctx, shapeOf, addGrad } = cx;
    const xs = shapeOf(X0);
    const ys = shapeOf(outs[0]);
    if (typeof xs === 'string') return xs;
    if (typeof ys === 'string') return ys;
    const kernel = ints(n, 'kernel_shape') ?? [];
    if (kernel.length !== 2 || xs.length !== 4) return `AveragePool (node "${n.name}") with ${kernel.length} spatial axes`;
    const strides = ints(n, 'strides') ?? [1, 1];
    const dil = ints(n, 'dilations') ?? [1, 1];
    if (dil.some((d) => d !== 1)) return `AveragePool (node "${n.name}") with dilations`;
    const pads = explicitPads(n, xs.slice(2), ys.slice(2), kernel, strides, dil);
    if (typeof pads === 'string') return `AveragePool (node "${n.name}") with ${pads}`;
    // Each output averaged over its window's pixels inside the image (count_include_pad 0) or over the whole
    // window: dY divided by that count, then spread over the window by a ones filter, per channel.
    const [H, W] = [xs[2], xs[3]];
    const [OH, OW] = [ys[2], ys[3]];
    const counts = new Float32Array(OH * OW);
    const inside = (o: number, axis: number, size: number) => {
      const start = o * strides[axis] - pads[axis];
      return Math.min(size, start + kernel[axis]) - Math.max(0, start);
    };
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++) counts[i * OW + j] = int(n, 'count_include_pad', 0) ? kernel[0] * kernel[1] : inside(i, 0, H) * inside(j, 1, W);
    }
    const outPad = [0, 1].map((i) => xs[2 + i] - ((ys[2 + i] - 1) * strides[i] + kernel[i] - pads[i] - pads[i + 2]));
    if (outPad.some((p, i) => p < 0 || p >= strides[i]) || counts.some((c) => !(c > 0))) return `AveragePool (node "${n.name}") whose windows do not tile its input`;
    const [scaled] = node(ctx, 'Div', [dY, constant(ctx, counts, [1, 1, OH, OW])]);
    const C = xs[1];
    const ones = constant(ctx, new Float32Array(C * kernel[0] * kernel[1]).fill(1), [C, 1, kernel[0], kernel[1]]);
    addGrad(X0, node(ctx, 'ConvTranspose', [scaled, ones], [
      attr('strides', strides), attr('pads', pads), attr('group', C), attr('kernel_shape', kernel), attr('output_padding', outPad),
    ])[0]);
    return null;
  },
  Pad: (n, dY, cx, { ins, X0 }) => {
    const { ctx, shapeOf, addGrad, constOf } = cx;
    const mode = str(n, 'mode', 'constant');
    const padsC = ins[1] ? constOf(ins[1]) : null;
    if (mode !== 'constant' || !padsC || (ins[3] ?? '') !== '') return `Pad (node "${n.name}") other than constant padding with constant pads`;
    const xs = shapeOf(X0);
    if (typeof xs === 'string') return xs;
    const r = xs.length;
    const p = Array.from(padsC.values, Number);
    if (p.length !== 2 * r || p.some((v) => v < 0) || p[0] !== 0 || p[r] !== 0) return `Pad (node "${n.name}") that crops or pads the batch`;
    // The gradient of padding is the crop back to the input: dims beyond the batch from the (static) shape.
    const starts = p.slice(0, r);
    const ends = xs.map((d, i) => (i === 0 ? 2 ** 31 - 1 : p[i] + d));
    const [g] = node(ctx, 'Slice', [dY, constant(ctx, starts, [r], 'int64'), constant(ctx, ends, [r], 'int64')]);
    addGrad(X0, g);
    return null;
  },
  Slice: (n, dY, cx, { ins, X0 }) => {
    const { ctx, shapeOf, addGrad, constOf } = cx;
    // Constant starts/ends (axes, steps 1) on non-batch axes: the gradient is dY padded back with zeros.
    const xs = shapeOf(X0);
    if (typeof xs === 'string') return xs;
    const r = xs.length;
    const c = [1, 2, 3, 4].map((i) => (ins[i] ? constOf(ins[i]) : null));
    if (!c[0] || !c[1] || (ins[3] && !c[2]) || (ins[4] && !c[3])) return `Slice (node "${n.name}") with computed bounds`;
    const starts = Array.from(c[0].values, Number);
    const ends = Array.from(c[1].values, Number);
    const axes = c[2] ? Array.from(c[2].values, Number).map((a) => (a + r) % r) : starts.map((_, i) => i);
    if (c[3] && Array.from(c[3].values, Number).some((v) => v !== 1)) return `Slice (node "${n.name}") with steps`;
    const pads = new Array(2 * r).fill(0);
    for (const [i, a] of axes.entries()) {
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + xs[a] : v, 0), xs[a]);
      const [b, e] = [clamp(starts[i]), clamp(ends[i])];
      if (a === 0 && (b !== 0 || e !== xs[0])) return `Slice (node "${n.name}") across the batch`;
      pads[a] = b;
      pads[a + r] = xs[a] - Math.max(b, e);
    }
    addGrad(X0, node(ctx, 'Pad', [dY, constant(ctx, pads, [2 * r], 'int64')])[0]);
    return null;
  },
  ReduceMean: (n, dY, cx, { ins, X0 }) => {
    const { ctx, shapeOf, addGrad } = cx;
    const xs = shapeOf(X0);
    if (typeof xs === 'string') return xs;
    const r = xs.length;
    const axes = (ints(n, 'axes') ?? xs.map((_, i) => i)).map((a) => (a + r) % r);
    if (ins[1] || axes.includes(0)) return `ReduceMean (node "${n.name}") over the batch or with axes as an input`;
    const count = axes.reduce((p, a) => p * xs[a], 1);
    // dY back to the kept rank (axis 0 copied: the batch), divided by the count, spread over the reduced axes.
    const kept = xs.map((d, i) => (i === 0 ? 0 : axes.includes(i) ? 1 : d));
    const [shaped] = node(ctx, 'Reshape', [dY, constant(ctx, kept, [r], 'int64')]);
    const [scaled] = node(ctx, 'Mul', [shaped, constant(ctx, [1 / count], [])]);
    const [shp] = node(ctx, 'Shape', [X0]);
    addGrad(X0, node(ctx, 'Expand', [scaled, shp])[0]);
    return null;
  },
};

/** The ops with a rule here. */
export const DIFFERENTIABLE_OPS: ReadonlySet<string> = new Set(Object.keys(RULES));

/** Why node n keeps its layer on tfjs when its op has no rule here. */
export const noGradient = (n: onnx.INodeProto): string => `op ${n.opType} (node "${n.name}") has no gradient in the native path`;

/**
 * Writes node n's input gradients from dY into cx.ctx; returns null, or why this node has none here (the layer
 * then stays on tfjs).
 */
export function writeGradient(n: onnx.INodeProto, dY: string, cx: GradientContext): string | null {
  const rule = RULES[n.opType ?? ''];
  const ins = n.input ?? [];
  return rule ? rule(n, dY, cx, { ins, outs: n.output ?? [], X0: ins[0] }) : noGradient(n);
}
