/**
 * Builds, from a user's ONNX model, the graphs the SID search and the preview need from a layer, for a native
 * runtime (onnxruntime) to run instead of our tfjs interpreter:
 *  - forward:  x [N, H, W, C] (model units, channels-last as the engine holds images), f0 (the clean feature,
 *    batch 1) -> sq [N] = ||h(x_n) - f0||², and y = h(x) itself;
 *  - gradient: x, f0, coef [] -> sq and dx = d(coef · Σ_n sq_n)/dx [N, H, W, C];
 *  - vjp:      x, u -> dx = Jᵀu (the first-order preview).
 * The backward half walks the path from the layer back to the image (reverse mode, input gradients only: weights
 * are constants), one rule per op (gradients.ts), summing where a value feeds several nodes. Any op on that path
 * without a rule makes `buildSquaredChangeGraphs` return the reason, and the caller keeps the tfjs path. */
import { onnx } from 'onnx-proto';
import { toInt } from '../loaders/onnx/tensor';
import { DIFFERENTIABLE_OPS, noGradient, writeGradient } from './gradients';
import { attr, constant, constantValues, node, type Ctx } from './protoBuild';

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
    if (!DIFFERENTIABLE_OPS.has(n.opType ?? '')) return noGradient(n);
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
      const ins = n.input ?? [];
      const outs = n.output ?? [];
      if (!ins.some((i) => active.has(i))) continue;
      const dY = gradOf(outs[0]);
      if (!dY) continue;
      const refused = writeGradient(n, dY, { ctx, model, active, shapeOf, addGrad, unbroadcast, constOf, floatConst });
      if (refused) return refused;
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
