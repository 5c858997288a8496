/**
 * Builds, from a user's ONNX model, the two graphs the SID search needs from a layer, for a native runtime
 * (onnxruntime) to run instead of our tfjs interpreter:
 *  - forward:  x [N, H, W, C] (model units, channels-last as the engine holds images), f0 (the clean feature,
 *    batch 1) -> sq [N] = ||h(x_n) - f0||², and y = h(x) itself;
 *  - gradient: x, f0, coef [] -> sq and dx = d(coef · Σ_n sq_n)/dx [N, H, W, C].
 * The backward half is written op by op (reverse-mode differentiation of the graph between the image and the
 * layer, input gradients only: weights are constants). Only ops whose gradient is written here may lie on that
 * path; anything else makes `buildSquaredChangeGraphs` return the reason, and the caller keeps the tfjs path.
 */
import { onnx } from 'onnx-proto';
import { toInt } from '../loaders/onnx/tensor';

const AT = onnx.AttributeProto.AttributeType;

export interface VjpGraphs {
  forward: Uint8Array;
  gradient: Uint8Array;
  /** x, u [N, ...layer] -> dx = Jᵀu [N, H, W, C] (the first-order preview's vector-Jacobian products). */
  vjp: Uint8Array;
}

/** What the builder needs to know about the model: the decoded file, its image input, the layer, value shapes. */
export interface VjpSpec {
  model: onnx.ModelProto;
  inputName: string;
  /** How the model's own input is laid out; the built graphs always take NHWC. */
  inputLayout: 'nchw' | 'nhwc';
  layerName: string;
  /** The shape of every float value between the image and the layer, at batch 1 (see `pathValues`). */
  shapes: Map<string, number[]>;
  /**
   * Values the loader folded to constants (shape arithmetic: PyTorch's chunk and view compute split points and
   * sizes from Shape), for the ops whose gradient needs their values; null for any other value.
   */
  constant?: (name: string) => { dims: number[]; values: ArrayLike<number> } | null;
}

/** Ops whose outputs do not depend on the values of their input, only on its shape. */
const NON_DIFFERENTIABLE_OUTPUTS = new Set(['Shape', 'Size']);

/** The forward path: nodes the layer depends on that also depend on the image, in graph order. */
export function pathValues(model: onnx.ModelProto, inputName: string, layerName: string): { nodes: onnx.INodeProto[]; active: Set<string> } | string {
  const all = model.graph?.node ?? [];
  const producer = new Map<string, onnx.INodeProto>();
  for (const n of all) for (const o of n.output ?? []) if (o) producer.set(o, n);
  if (!producer.has(layerName)) return `the layer "${layerName}" is not a node output`;
  // Everything the layer needs (constants' producers included).
  const needed = new Set<onnx.INodeProto>();
  const stack = [layerName];
  while (stack.length > 0) {
    const v = stack.pop()!;
    const n = producer.get(v);
    if (!n || needed.has(n)) continue;
    needed.add(n);
    for (const i of n.input ?? []) if (i) stack.push(i);
  }
  const active = new Set<string>([inputName]);
  const nodes: onnx.INodeProto[] = [];
  // Graph files are topologically sorted (ONNX requires it); a node is active when one of its inputs is.
  for (const n of all) {
    if (!needed.has(n)) continue;
    nodes.push(n);
    // A value's shape carries no gradient: Shape and Size end the image's dependence (their outputs are constants
    // of the batch, like PyTorch's view() arithmetic).
    if (NON_DIFFERENTIABLE_OUTPUTS.has(n.opType ?? '')) continue;
    if ((n.input ?? []).some((i) => active.has(i))) for (const o of n.output ?? []) if (o) active.add(o);
  }
  if (!active.has(layerName)) return `the layer "${layerName}" does not depend on the image`;
  return { nodes, active };
}

/** The ops whose input gradient is written here (on the path between the image and the layer). */
export const DIFFERENTIABLE_OPS = new Set([
  'Conv', 'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Add', 'Sub', 'Mul', 'Div', 'MaxPool',
  'GlobalAveragePool', 'BatchNormalization', 'Concat', 'Identity', 'Dropout', 'Flatten', 'Reshape', 'Transpose',
  'Tanh', 'Gemm', 'MatMul', 'ConvTranspose', 'AveragePool', 'Pad', 'Slice', 'ReduceMean',
]);

interface Ctx {
  nodes: onnx.INodeProto[];
  inits: onnx.ITensorProto[];
  next: number;
}

function attr(name: string, v: number | number[] | string): onnx.IAttributeProto {
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v };
  return Number.isInteger(v) ? { name, type: AT.INT, i: v } : { name, type: AT.FLOAT, f: v };
}

function floatAttr(name: string, v: number): onnx.IAttributeProto {
  return { name, type: AT.FLOAT, f: v };
}

function node(ctx: Ctx, op: string, inputs: string[], attrs: onnx.IAttributeProto[] = [], outputs = 1): string[] {
  const id = ctx.next++;
  const outs = Array.from({ length: outputs }, (_, i) => `vjp/${op}_${id}${outputs > 1 ? `_${i}` : ''}`);
  ctx.nodes.push({ opType: op, name: `vjp/${op}_${id}`, input: inputs, output: outs, attribute: attrs });
  return outs;
}

function constant(ctx: Ctx, values: number[] | Float32Array, dims: number[], type: 'float' | 'int64' = 'float'): string {
  const name = `vjp/const_${ctx.next++}`;
  if (type === 'float') ctx.inits.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, floatData: Array.from(values) });
  else ctx.inits.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, int64Data: Array.from(values) });
  return name;
}

function getAttr(n: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return (n.attribute ?? []).find((a) => a.name === name);
}
const ints = (n: onnx.INodeProto, name: string): number[] | undefined => getAttr(n, name)?.ints?.map((v) => toInt(v));
const int = (n: onnx.INodeProto, name: string, dflt: number): number => {
  const a = getAttr(n, name);
  return a && a.i !== undefined && a.i !== null ? toInt(a.i) : dflt;
};
const float = (n: onnx.INodeProto, name: string, dflt: number): number => getAttr(n, name)?.f ?? dflt;
const str = (n: onnx.INodeProto, name: string, dflt: string): string => {
  const s = getAttr(n, name)?.s;
  return s && s.length > 0 ? new TextDecoder().decode(s) : dflt;
};

/**
 * A constant's dims and values (float or int64, as numbers): an initializer or a Constant node's value; null when
 * the value is computed.
 */
function constantValues(model: onnx.ModelProto, name: string): { dims: number[]; values: Float32Array | number[] } | null {
  let t: onnx.ITensorProto | null | undefined = (model.graph?.initializer ?? []).find((i) => i.name === name);
  if (!t) {
    const n = (model.graph?.node ?? []).find((m) => m.opType === 'Constant' && (m.output ?? [])[0] === name);
    t = n ? getAttr(n, 'value')?.t : null;
  }
  if (!t) return null;
  const dims = (t.dims ?? []).map((d) => toInt(d));
  const size = dims.reduce((a, b) => a * b, 1);
  const raw = t.rawData && t.rawData.length > 0 ? new Uint8Array(t.rawData) : null;
  if (t.dataType === onnx.TensorProto.DataType.FLOAT) {
    return { dims, values: raw ? new Float32Array(raw.buffer, raw.byteOffset, size) : Float32Array.from(t.floatData ?? []) };
  }
  if (t.dataType === onnx.TensorProto.DataType.INT64) {
    if (raw) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      return { dims, values: Array.from({ length: size }, (_, i) => Number(view.getBigInt64(8 * i, true))) };
    }
    return { dims, values: (t.int64Data ?? []).map((v) => toInt(v)) };
  }
  return null;
}

/** A float constant's data (initializer or Constant node), or null. */
function initializerValues(model: onnx.ModelProto, name: string): { dims: number[]; values: Float32Array } | null {
  const c = constantValues(model, name);
  return c && c.values instanceof Float32Array ? (c as { dims: number[]; values: Float32Array }) : null;
}

/** Explicit [begin..., end...] pads of a conv or pool (auto_pad resolved from the shapes). */
function explicitPads(n: onnx.INodeProto, inH: number[], outH: number[], kernel: number[], strides: number[], dilations: number[]): number[] | string {
  const autoPad = str(n, 'auto_pad', 'NOTSET');
  const r = kernel.length;
  if (autoPad === 'NOTSET') return ints(n, 'pads') ?? new Array(2 * r).fill(0);
  if (autoPad === 'VALID') return new Array(2 * r).fill(0);
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER') return `auto_pad ${autoPad}`;
  const begin: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < r; i++) {
    const total = Math.max(0, (outH[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - inH[i]);
    const small = Math.floor(total / 2);
    begin.push(autoPad === 'SAME_UPPER' ? small : total - small);
    end.push(autoPad === 'SAME_UPPER' ? total - small : small);
  }
  return [...begin, ...end];
}

/**
 * The two graphs, or the reason they cannot be built (an op without a gradient here, a fixed batch, an input
 * that is not an image). Throws only on a malformed spec.
 */
export function buildSquaredChangeGraphs(spec: VjpSpec): VjpGraphs | string {
  const { model, inputName, layerName, shapes } = spec;
  /** A constant's values: in the file, or folded from shape arithmetic by the loader (spec.constant). */
  const constOf = (name: string) => (active.has(name) ? null : (constantValues(model, name) ?? spec.constant?.(name) ?? null));
  const floatConst = (name: string) => {
    const c = constOf(name);
    return c ? { dims: c.dims, values: Float32Array.from(c.values) } : null;
  };
  const opsetEntry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  const opset = opsetEntry ? toInt(opsetEntry.version) : 1;
  if (opset < 13) return `opset ${opset} (13 or newer needed)`;
  const path = pathValues(model, inputName, layerName);
  if (typeof path === 'string') return path;
  const { nodes, active } = path;
  for (const n of nodes) {
    if ((n.domain ?? '') !== '' && n.domain !== 'ai.onnx') return `op ${n.domain}:${n.opType} (node "${n.name}")`;
    if (!(n.input ?? []).some((i) => active.has(i)) || NON_DIFFERENTIABLE_OUTPUTS.has(n.opType ?? '')) continue;
    if (!DIFFERENTIABLE_OPS.has(n.opType ?? '')) return `op ${n.opType} (node "${n.name}") has no gradient in the native path`;
  }
  const inShape = shapes.get(inputName);
  const yShape = shapes.get(layerName);
  if (!inShape || inShape.length !== 4 || !yShape) return 'the image or the layer has no known shape';
  const nhwc = spec.inputLayout === 'nchw' ? [inShape[0], inShape[2], inShape[3], inShape[1]] : inShape;

  // The forward half: the image transposed to the model's layout (an alias when it is already NHWC).
  const fwd: Ctx = { nodes: [], inits: [], next: 0 };
  const X = 'vjp/x';
  if (spec.inputLayout === 'nchw') fwd.nodes.push({ opType: 'Transpose', name: 'vjp/in', input: [X], output: [inputName], attribute: [attr('perm', [0, 3, 1, 2])] });
  else fwd.nodes.push({ opType: 'Identity', name: 'vjp/in', input: [X], output: [inputName] });
  fwd.nodes.push(...nodes);
  const [diff] = node(fwd, 'Sub', [layerName, 'vjp/f0']);
  const [sqd] = node(fwd, 'Mul', [diff, diff]);
  const rank = yShape.length;
  const axes = constant(fwd, Array.from({ length: rank - 1 }, (_, i) => i + 1), [rank - 1], 'int64');
  fwd.nodes.push({ opType: 'ReduceSum', name: 'vjp/sq', input: [sqd, axes], output: ['vjp/sq'], attribute: [attr('keepdims', 0)] });
  const fwdNodeCount = fwd.nodes.length;
  const fwdInitCount = fwd.inits.length;

  /**
   * The backward half into `ctx`, from the layer's gradient `dLayer`: each node's input gradients in reverse order,
   * then d/dx in NHWC as 'vjp/dx'; or the reason it cannot be written.
   */
  const backward = (ctx: Ctx, dLayer: string): string | null => {
    const grads = new Map<string, string[]>([[layerName, [dLayer]]]);
    const addGrad = (v: string, g: string) => {
      if (!active.has(v)) return;
      grads.set(v, [...(grads.get(v) ?? []), g]);
    };
    const gradOf = (v: string): string | null => {
      const gs = grads.get(v);
      if (!gs || gs.length === 0) return null;
      if (gs.length === 1) return gs[0];
      const [s] = node(ctx, 'Sum', gs);
      grads.set(v, [s]);
      return s;
    };
    const shapeOf = (v: string): number[] | string => shapes.get(v) ?? `no shape for "${v}"`;
    /** Sums a gradient of the broadcast output shape down to an operand's shape (numpy broadcasting). */
    const unbroadcast = (g: string, outShape: number[], target: number[]): string => {
      const lead = outShape.length - target.length;
      const axesSum: number[] = [];
      for (let i = 0; i < outShape.length; i++) {
        const t = i < lead ? 1 : target[i - lead];
        if (i < lead || (t === 1 && outShape[i] !== 1)) axesSum.push(i);
      }
      let out = g;
      if (axesSum.length > 0) {
        const a = constant(ctx, axesSum, [axesSum.length], 'int64');
        [out] = node(ctx, 'ReduceSum', [g, a], [attr('keepdims', 1)]);
      }
      // Leading axes summed away: the operand's own (batch-free, so static) shape.
      if (lead > 0) [out] = node(ctx, 'Reshape', [out, constant(ctx, target, [target.length], 'int64')]);
      return out;
    };

    for (let k = nodes.length - 1; k >= 0; k--) {
      const n = nodes[k];
      const op = n.opType ?? '';
      const ins = n.input ?? [];
      const outs = n.output ?? [];
      if (!ins.some((i) => active.has(i))) continue;
      const dY = gradOf(outs[0]);
      if (!dY) continue;
      const X0 = ins[0];
      switch (op) {
        case 'Identity':
        case 'Dropout':
          addGrad(X0, dY);
          break;
        case 'Relu': {
          const [pos] = node(ctx, 'Greater', [outs[0], constant(ctx, [0], [])]);
          const [g] = node(ctx, 'Where', [pos, dY, constant(ctx, [0], [])]);
          addGrad(X0, g);
          break;
        }
        case 'LeakyRelu': {
          const alpha = float(n, 'alpha', 0.01);
          const [pos] = node(ctx, 'Greater', [X0, constant(ctx, [0], [])]);
          const [neg] = node(ctx, 'Mul', [dY, constant(ctx, [alpha], [])]);
          addGrad(X0, node(ctx, 'Where', [pos, dY, neg])[0]);
          break;
        }
        case 'Clip': {
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
          break;
        }
        case 'Sigmoid': {
          const [oneMinus] = node(ctx, 'Sub', [constant(ctx, [1], []), outs[0]]);
          const [d] = node(ctx, 'Mul', [outs[0], oneMinus]);
          addGrad(X0, node(ctx, 'Mul', [dY, d])[0]);
          break;
        }
        case 'HardSigmoid':
        case 'HardSwish': {
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
          break;
        }
        case 'Add':
        case 'Sub':
        case 'Mul':
        case 'Div': {
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
          break;
        }
        case 'Conv': {
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
          break;
        }
        case 'MaxPool': {
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
          break;
        }
        case 'GlobalAveragePool': {
          const xs = shapeOf(X0);
          if (typeof xs === 'string') return xs;
          const area = xs.slice(2).reduce((a, b) => a * b, 1);
          const [scaled] = node(ctx, 'Mul', [dY, constant(ctx, [1 / area], [])]);
          const [shp] = node(ctx, 'Shape', [X0]);
          addGrad(X0, node(ctx, 'Expand', [scaled, shp])[0]);
          break;
        }
        case 'BatchNormalization': {
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
          break;
        }
        case 'Concat': {
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
          break;
        }
        case 'Flatten':
        case 'Reshape': {
          const [shp] = node(ctx, 'Shape', [X0]);
          addGrad(X0, node(ctx, 'Reshape', [dY, shp])[0]);
          break;
        }
        case 'Transpose': {
          const xs = shapeOf(X0);
          if (typeof xs === 'string') return xs;
          const perm = ints(n, 'perm') ?? xs.map((_, i) => xs.length - 1 - i);
          const inv = new Array(perm.length);
          perm.forEach((p, i) => (inv[p] = i));
          addGrad(X0, node(ctx, 'Transpose', [dY], [attr('perm', inv)])[0]);
          break;
        }
        case 'Tanh': {
          const [y2] = node(ctx, 'Mul', [outs[0], outs[0]]);
          const [d] = node(ctx, 'Sub', [constant(ctx, [1], []), y2]);
          addGrad(X0, node(ctx, 'Mul', [dY, d])[0]);
          break;
        }
        case 'Gemm': {
          // Y = alpha A' B' + beta C with A the activation: dA = alpha dY B'^T, a Gemm with B's transpose flag flipped.
          if (int(n, 'transA', 0) !== 0 || active.has(ins[1]) || (ins[2] && active.has(ins[2]))) return `Gemm (node "${n.name}") other than activation × constant`;
          addGrad(X0, node(ctx, 'Gemm', [dY, ins[1]], [floatAttr('alpha', float(n, 'alpha', 1)), attr('transB', int(n, 'transB', 0) ? 0 : 1)])[0]);
          break;
        }
        case 'MatMul': {
          const b = constantValues(model, ins[1]);
          if (!b || b.dims.length !== 2 || active.has(ins[1])) return `MatMul (node "${n.name}") other than activation × 2-D constant`;
          const [bt] = node(ctx, 'Transpose', [ins[1]], [attr('perm', [1, 0])]);
          addGrad(X0, node(ctx, 'MatMul', [dY, bt])[0]);
          break;
        }
        case 'ConvTranspose': {
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
          break;
        }
        case 'AveragePool': {
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
          break;
        }
        case 'Pad': {
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
          break;
        }
        case 'Slice': {
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
          break;
        }
        case 'ReduceMean': {
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
          break;
        }
        default:
          return `op ${op} (node "${n.name}") has no gradient in the native path`;
      }
    }
    const dIn = gradOf(inputName);
    if (!dIn) return 'the layer does not depend on the image through differentiable ops';
    if (spec.inputLayout === 'nchw') ctx.nodes.push({ opType: 'Transpose', name: 'vjp/out', input: [dIn], output: ['vjp/dx'], attribute: [attr('perm', [0, 2, 3, 1])] });
    else ctx.nodes.push({ opType: 'Identity', name: 'vjp/out', input: [dIn], output: ['vjp/dx'] });
    return null;
  };

  // The squared change's gradient: dY of the layer = 2 coef (y - f0).
  const ctx = fwd;
  const [scale] = node(ctx, 'Mul', ['vjp/coef', constant(ctx, [2], [])]);
  const [dLayer] = node(ctx, 'Mul', [diff, scale]);
  const refused = backward(ctx, dLayer);
  if (refused) return refused;
  // A plain vector-Jacobian product (the first-order preview): dY = u, given.
  const vjpCtx: Ctx = { nodes: [fwd.nodes[0], ...nodes], inits: [], next: 0 };
  backward(vjpCtx, 'vjp/u');

  const usedInits = (nodeList: onnx.INodeProto[], extra: onnx.ITensorProto[]) => {
    const names = new Set(nodeList.flatMap((n) => n.input ?? []));
    return [...(model.graph?.initializer ?? []).filter((t) => names.has(t.name ?? '')), ...extra.filter((t) => names.has(t.name ?? ''))];
  };
  const featureDims = [1, ...yShape.slice(1)];
  const io = (name: string, dims: (number | string)[]) => ({
    name,
    type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
  const xIo = io(X, ['N', ...nhwc.slice(1)]);
  const f0Io = io('vjp/f0', featureDims);
  const sqIo = io('vjp/sq', ['N']);
  const outOpset = Math.max(opset, 16);
  const make = (graphNodes: onnx.INodeProto[], extraInits: onnx.ITensorProto[], inputs: onnx.IValueInfoProto[], outputs: onnx.IValueInfoProto[]) =>
    onnx.ModelProto.encode({
      irVersion: Math.max(toInt(model.irVersion ?? 8), 8),
      opsetImport: [{ domain: '', version: outOpset }],
      producerName: 'infodiscard',
      graph: { name: 'infodiscard-sid', node: graphNodes, initializer: usedInits(graphNodes, extraInits), input: inputs, output: outputs },
    }).finish();
  const forwardNodes = ctx.nodes.slice(0, fwdNodeCount);
  return {
    forward: make(forwardNodes, ctx.inits.slice(0, fwdInitCount), [xIo, f0Io], [sqIo, io(layerName, ['N', ...yShape.slice(1)])]),
    gradient: make(ctx.nodes, ctx.inits, [xIo, f0Io, io('vjp/coef', [])], [sqIo, io('vjp/dx', ['N', ...nhwc.slice(1)])]),
    vjp: make(vjpCtx.nodes, vjpCtx.inits, [xIo, io('vjp/u', ['N', ...yShape.slice(1)])], [io('vjp/dx', ['N', ...nhwc.slice(1)])]),
  };
}
