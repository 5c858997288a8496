/**
 * The weight rescale of the paper's coherency check (Sec. 4, "Coherency for comprehensive comparisons"): for a conv
 * layer L and the next conv (or dense) layer L+1, w_L <- w_L / k, b_L <- b_L / k, w_{L+1} <- k * w_{L+1},
 * b_{L+1} unchanged. Everything between the two must be positively homogeneous (g(x / k) = g(x) / k for k > 0:
 * ReLU, leaky ReLU, max/average pooling, reshapes, dropout at inference, zero padding), and nothing else may read
 * those outputs; then L's output and everything up to L+1's input shrink by k, and L+1's output and everything
 * after it (the network output) are unchanged.
 *
 * One walker (`walkPair`) with an adapter per format whose weights live in memory: tfjs Layers models (and Keras
 * files, which load as Layers models), tfjs graph models (weights are the executor's tensor map) and ONNX graphs
 * (weights are the interpreter's constants). Weights change in memory only; files are never written.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../errors';
import type { OnnxGraph } from './onnx/graph';
import type { RescaledPair } from './types';

export function checkRescaleFactor(factor: number): void {
  if (!Number.isFinite(factor) || factor <= 0) throw new UserError(`must be a positive number, got ${factor}`, '--factor');
}

/** What a node on the path from `first` is, for the rescale. A string is the reason the rescale is refused. */
type Role = 'homogeneous' | 'bias' | 'second' | string;

interface Walker<N> {
  name(n: N): string;
  kind(n: N): string;
  /** The nodes that read n's output (value-independent readers such as Shape left out), and whether it is a model output. */
  readers(n: N): { nodes: N[]; modelOutput: boolean };
  /** What `next` (which reads `from`) is. `atFirst`: nothing but bias adds lies between `first` and `next`. */
  role(next: N, from: N, atFirst: boolean): Role;
}

const HOMOGENEOUS_HINT = 'only ReLU, leaky ReLU, pooling, padding, dropout and reshapes may lie between the two conv layers';

/** Follows `first`'s output to the next conv/dense layer; throws a UserError naming the obstacle. */
function walkPair<N>(w: Walker<N>, first: N, file: string, activated = false): { between: N[]; biases: N[]; second: N } {
  const between: N[] = [];
  const biases: N[] = [];
  const firstName = w.name(first);
  let cur = first;
  let atFirst = !activated;
  for (let guard = 0; guard < 100000; guard++) {
    const { nodes, modelOutput } = w.readers(cur);
    const curName = w.name(cur);
    if (modelOutput) {
      throw new UserError(
        cur === first
          ? `cannot rescale "${firstName}": its output is a model output, so no conv layer follows it; choose an earlier conv layer`
          : `cannot rescale "${firstName}": "${curName}" on the way to the next conv layer is a model output, which the rescale would change`,
        file,
      );
    }
    if (nodes.length === 0) throw new UserError(`cannot rescale "${firstName}": no conv or dense layer follows it; choose an earlier conv layer`, file);
    if (nodes.length > 1) {
      const names = nodes.slice(0, 4).map((n) => `"${w.name(n)}"`).join(', ');
      throw new UserError(
        `cannot rescale "${firstName}": the output of "${curName}" also feeds ${names}${nodes.length > 4 ? ' ...' : ''} (a branch), which the rescale would change; choose a conv layer on a single chain`,
        file,
      );
    }
    const next = nodes[0];
    const role = w.role(next, cur, atFirst);
    if (role === 'second') return { between, biases, second: next };
    if (role === 'bias') {
      biases.push(next);
      between.push(next);
    } else if (role === 'homogeneous') {
      between.push(next);
      atFirst = false;
    } else {
      throw new UserError(
        `cannot rescale "${firstName}": "${w.name(next)}" (${w.kind(next)}) ${role}, so the rescale would change the network output; ${HOMOGENEOUS_HINT}`,
        file,
      );
    }
    cur = next;
  }
  throw new UserError(`cannot rescale "${firstName}": the path to the next conv layer does not end`, file);
}

/** Why an op that is not on the allowed lists stops the walk. */
function unknownRole(op: string): string {
  if (/BatchNorm|Normalization/i.test(op)) return 'normalises its input and adds an offset, which is not positively homogeneous';
  if (/^Relu6$|^Clip/i.test(op)) return 'caps its output, which is not positively homogeneous';
  if (/^(Add|AddV2|Sub|Concat|ConcatV2|Sum|AddN|Mul|Maximum|Minimum)$/.test(op)) return 'combines it with another tensor (a skip connection or merge)';
  if (/sigmoid|tanh|softmax|elu|selu|softplus|swish|gelu|mish|hardsigmoid/i.test(op)) return `applies ${op}, which is not positively homogeneous`;
  return 'is not known to be positively homogeneous (g(x/k) = g(x)/k)';
}

/** t * s, as a new tensor. */
function times(t: tf.Tensor, s: number): tf.Tensor {
  return tf.tidy(() => tf.mul(t, tf.scalar(s)));
}

function requireFloat(t: tf.Tensor, what: string, layer: string, file: string): void {
  if (t.dtype !== 'float32') throw new UserError(`cannot rescale "${layer}": its ${what} is ${t.dtype} (quantised?), not float`, file);
}

// ---------------------------------------------------------------------------------------------------------------
// tfjs Layers models (tfjs-layers model.json, Keras .h5 / .keras)

export const LAYERS_CONV = new Set(['Conv1D', 'Conv2D', 'Conv3D', 'DepthwiseConv2D', 'SeparableConv1D', 'SeparableConv2D', 'Conv2DTranspose', 'Conv3DTranspose']);
const LAYERS_SECOND = new Set([...LAYERS_CONV, 'Dense']);
const LAYERS_HOMOGENEOUS = new Set([
  'MaxPooling1D', 'MaxPooling2D', 'MaxPooling3D', 'AveragePooling1D', 'AveragePooling2D', 'AveragePooling3D',
  'GlobalMaxPooling1D', 'GlobalMaxPooling2D', 'GlobalAveragePooling1D', 'GlobalAveragePooling2D',
  'Flatten', 'Reshape', 'Permute', 'RepeatVector', 'ZeroPadding1D', 'ZeroPadding2D', 'ZeroPadding3D', 'Cropping1D', 'Cropping2D', 'Cropping3D',
  'UpSampling1D', 'UpSampling2D', 'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'SpatialDropout3D', 'AlphaDropout', 'GaussianDropout',
  'GaussianNoise', 'LeakyReLU', 'PReLU',
]);
/** Activations a layer may fuse in and keep the output positively homogeneous. */
const HOMOGENEOUS_ACTIVATIONS = new Set(['linear', 'relu']);

type Layer = tfl.LayersModel['layers'][number];
type LayerVar = Layer['weights'][number];

function layerConfig(layer: Layer): Record<string, unknown> {
  try {
    return layer.getConfig() as Record<string, unknown>;
  } catch {
    return {};
  }
}

function activationOf(layer: Layer): string | undefined {
  const a = layerConfig(layer).activation;
  if (a === undefined || a === null) return undefined;
  return typeof a === 'string' ? a : String((a as { className?: string }).className ?? a);
}

/** The layer's kernel (the one that scales its output) or bias variable. */
function layerVar(layer: Layer, role: 'kernel' | 'bias'): LayerVar | undefined {
  const kind = layer.getClassName();
  const base = role === 'bias' ? 'bias' : kind.startsWith('Separable') ? 'pointwise_kernel' : kind === 'DepthwiseConv2D' ? 'depthwise_kernel' : 'kernel';
  const re = new RegExp(`(?:^|/)${base}(?:_\\d+)?$`);
  return layer.weights.find((v) => re.test(v.originalName) || re.test(v.name));
}

/** Writes v * s into the variable (bypassing weight constraints, which only apply to training). */
function scaleVar(v: LayerVar, s: number): void {
  const next = times(v.read(), s);
  const target = v.read() as tf.Tensor & { assign?: (t: tf.Tensor) => void };
  if (typeof target.assign === 'function') target.assign(next);
  else v.write(next);
  next.dispose();
}

export function rescaleLayersConvPair(model: tfl.LayersModel, file: string, first: string, factor: number): RescaledPair {
  checkRescaleFactor(factor);
  const inModel = new Set<Layer>(model.layers);
  const layer = model.layers.find((l) => l.name === first);
  if (!layer) throw new UserError(`no layer named "${first}" to rescale`, file);
  const kind = layer.getClassName();
  if (!LAYERS_CONV.has(kind)) throw new UserError(`cannot rescale "${first}": it is a ${kind} layer, not a convolution; give a conv layer`, file);
  const act = activationOf(layer);
  if (act !== undefined && !HOMOGENEOUS_ACTIVATIONS.has(act)) {
    throw new UserError(`cannot rescale "${first}": it applies the ${act} activation, which is not positively homogeneous (only linear and relu are), so the network output would change`, file);
  }
  const kernel1 = layerVar(layer, 'kernel');
  if (!kernel1) throw new UserError(`cannot rescale "${first}": its kernel weights were not found`, file);
  const bias1 = layerConfig(layer).useBias === false ? undefined : layerVar(layer, 'bias');
  if (layerConfig(layer).useBias !== false && !bias1) throw new UserError(`cannot rescale "${first}": it uses a bias but its bias weights were not found`, file);
  const outputs = new Set<Layer>(model.outputs.map((o) => o.sourceLayer as Layer));
  const shared = (l: Layer) => l.inboundNodes.length > 1;
  if (shared(layer)) throw new UserError(`cannot rescale "${first}": the layer is applied more than once (shared weights)`, file);

  const walker: Walker<Layer> = {
    name: (l) => l.name,
    kind: (l) => l.getClassName(),
    readers(l) {
      const nodes: Layer[] = [];
      for (const node of l.outboundNodes) if (inModel.has(node.outboundLayer) && !nodes.includes(node.outboundLayer)) nodes.push(node.outboundLayer);
      return { nodes, modelOutput: outputs.has(l) };
    },
    role(next) {
      const k = next.getClassName();
      if (shared(next)) return 'is applied more than once (shared weights)';
      const inputs = next.inboundNodes[0]?.inboundLayers.length ?? 1;
      if (inputs > 1) return `combines ${inputs} inputs (a merge or skip connection)`;
      if (LAYERS_SECOND.has(k)) return layerVar(next, 'kernel') ? 'second' : 'has no kernel weights that could be found';
      if (LAYERS_HOMOGENEOUS.has(k)) return 'homogeneous';
      if (k === 'ReLU') {
        const c = layerConfig(next);
        if (c.maxValue !== undefined && c.maxValue !== null) return `caps its output at ${String(c.maxValue)}, which is not positively homogeneous`;
        if (typeof c.threshold === 'number' && c.threshold !== 0) return `has threshold ${c.threshold}, which is not positively homogeneous`;
        return 'homogeneous';
      }
      if (k === 'Activation') {
        const a = activationOf(next) ?? 'linear';
        return HOMOGENEOUS_ACTIVATIONS.has(a) ? 'homogeneous' : `applies the ${a} activation, which is not positively homogeneous`;
      }
      if (k === 'Sequential' || k === 'Functional' || k === 'Model') return 'is a nested model, which the rescale cannot look into';
      return unknownRole(k);
    },
  };
  const { between, second } = walkPair(walker, layer, file, act === 'relu');
  const kernel2 = layerVar(second, 'kernel')!;
  for (const v of [kernel1, bias1, kernel2]) if (v) requireFloat(v.read(), 'weights', v === kernel2 ? second.name : first, file);
  scaleVar(kernel1, 1 / factor);
  if (bias1) scaleVar(bias1, 1 / factor);
  scaleVar(kernel2, factor);
  return { first, second: second.name, between: between.map((l) => l.name) };
}

// ---------------------------------------------------------------------------------------------------------------
// tfjs graph models (GraphDef JSON nodes; weights in the executor's tensor map, keyed by Const node name)

export interface GraphDefNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, unknown>;
}

/** Read and replace weights by Const node name. */
export interface WeightStore {
  get(name: string): tf.Tensor | undefined;
  /** Replaces the weight (the old tensor is disposed). */
  set(name: string, value: tf.Tensor): void;
}

/**
 * The weights of a loaded tfjs-converter GraphModel. The executor's map is replaced through its setter, so the
 * executor also learns the new tensors' ids (it never disposes weights between runs).
 */
export function graphModelWeights(model: unknown): WeightStore {
  const executor = (model as { executor?: { weightMap: Record<string, tf.Tensor[]> } }).executor;
  if (!executor || typeof executor.weightMap !== 'object') throw new Error('this tfjs-converter version keeps its weights elsewhere');
  return {
    get: (name) => executor.weightMap[name]?.[0],
    set(name, value) {
      const map = { ...executor.weightMap };
      const old = map[name];
      map[name] = [value];
      executor.weightMap = map;
      old?.forEach((t) => t !== value && t.dispose());
    },
  };
}

const GRAPH_CONV = new Set(['Conv2D', '_FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2dNative', 'Conv3D']);
const GRAPH_SECOND = new Set([...GRAPH_CONV, 'MatMul', '_FusedMatMul', 'BatchMatMul', 'BatchMatMulV2']);
const GRAPH_HOMOGENEOUS = new Set([
  'Relu', 'LeakyRelu', 'Prelu', 'MaxPool', 'MaxPoolV2', 'AvgPool', 'MaxPool3D', 'AvgPool3D', 'Mean', 'Max', 'Sum', 'Reshape', 'Squeeze',
  'ExpandDims', 'Identity', 'Snapshot', 'StopGradient', 'Transpose', 'Pad', 'MirrorPad', 'ResizeBilinear', 'ResizeNearestNeighbor',
]);
/** Readers whose output does not depend on the values (only on the shape). */
const GRAPH_SHAPE_ONLY = new Set(['Shape', 'ShapeN', 'Size', 'Rank']);
const FUSED_OK = new Set(['relu', 'leakyrelu', 'prelu']);

function decodeAttrString(s: unknown): string {
  if (Array.isArray(s)) return String.fromCharCode(...(s as number[]));
  return Buffer.from(String(s), 'base64').toString('utf8');
}

function fusedOps(n: GraphDefNode): string[] {
  const list = (n.attr?.fused_ops as { list?: { s?: unknown[] } } | undefined)?.list?.s ?? [];
  return list.map((s) => decodeAttrString(s).toLowerCase());
}

const baseName = (input: string) => input.replace(/^\^/, '').replace(/:\d+$/, '');

export function rescaleGraphConvPair(nodes: GraphDefNode[], weights: WeightStore, modelOutputs: string[], file: string, first: string, factor: number): RescaledPair {
  checkRescaleFactor(factor);
  const data = (n: GraphDefNode) => (n.input ?? []).filter((i) => !i.startsWith('^')).map(baseName);
  const readers = new Map<string, GraphDefNode[]>();
  for (const n of nodes) {
    for (const i of new Set(data(n))) {
      if (!readers.has(i)) readers.set(i, []);
      readers.get(i)!.push(n);
    }
  }
  const outputs = new Set(modelOutputs.map(baseName));
  const node = nodes.find((n) => n.name === first);
  if (!node) throw new UserError(`no graph node named "${first}" to rescale`, file);
  if (!GRAPH_CONV.has(node.op)) throw new UserError(`cannot rescale "${first}": it is a ${node.op} node, not a convolution; give a conv node`, file);
  const ownWeight = (name: string | undefined, what: string, layer: string): string => {
    if (!name || !weights.get(name)) throw new UserError(`cannot rescale "${layer}": its ${what} is not a stored weight`, file);
    if ((readers.get(name) ?? []).length > 1) throw new UserError(`cannot rescale "${layer}": its ${what} "${name}" is shared with other nodes`, file);
    requireFloat(weights.get(name)!, what, layer, file);
    return name;
  };
  const kernel1 = ownWeight(data(node)[1], 'kernel', first);
  let bias1: string | undefined;
  let activated = false;
  if (node.op.startsWith('_Fused') || node.op.startsWith('Fused')) {
    const ops = fusedOps(node);
    activated = ops.length > 1;
    if (ops[0] !== 'biasadd') throw new UserError(`cannot rescale "${first}": it fuses ${ops.join(' + ') || 'unknown ops'}, not a bias add, so its bias cannot be rescaled`, file);
    if (ops.length > 2 || (ops[1] !== undefined && !FUSED_OK.has(ops[1]))) {
      throw new UserError(`cannot rescale "${first}": it applies the ${ops.slice(1).join(' + ')} activation, which is not positively homogeneous (only relu and leaky relu are), so the network output would change`, file);
    }
    bias1 = ownWeight(data(node)[2], 'bias', first);
  }
  const biasConsts: string[] = [];
  let kernel2: string | undefined;
  const walker: Walker<GraphDefNode> = {
    name: (n) => n.name,
    kind: (n) => n.op,
    readers: (n) => ({ nodes: (readers.get(n.name) ?? []).filter((r) => !GRAPH_SHAPE_ONLY.has(r.op)), modelOutput: outputs.has(n.name) }),
    role(next, from, atFirst) {
      const ins = data(next);
      const at = ins.indexOf(from.name);
      const others = ins.filter((i, k) => k !== at);
      if (ins.filter((i) => i === from.name).length > 1) return 'reads the tensor twice';
      if (GRAPH_SECOND.has(next.op)) {
        const isMatMul = next.op.includes('MatMul');
        if (next.op.startsWith('_Fused') || next.op.startsWith('Fused')) {
          if (at !== 0) return 'takes it as its weights, not its input';
        } else if (!(at === 0 || (isMatMul && at === 1))) return 'takes it as its weights, not its input';
        const k = isMatMul ? ins[at === 0 ? 1 : 0] : ins[1];
        if (!k || !weights.get(k)) return 'multiplies it by a tensor that is not a stored weight';
        kernel2 = k;
        return 'second';
      }
      if (next.op === 'BiasAdd' || next.op === 'Add' || next.op === 'AddV2') {
        const other = others[0];
        if (atFirst && others.length === 1 && other && weights.get(other)) {
          biasConsts.push(other);
          return 'bias';
        }
        if (!other || !weights.get(other)) return 'adds another tensor (a skip connection or merge)';
        return atFirst ? 'adds a second bias' : 'adds an offset after the activation';
      }
      if (GRAPH_HOMOGENEOUS.has(next.op)) {
        if (at !== 0) return 'does not take it as its data input';
        return 'homogeneous';
      }
      return unknownRole(next.op);
    },
  };
  const { between, second } = walkPair(walker, node, file, activated);
  ownWeight(kernel2, 'kernel', second.name);
  for (const b of biasConsts) ownWeight(b, 'bias', first);
  const scale = (name: string, s: number) => weights.set(name, times(weights.get(name)!, s));
  scale(kernel1, 1 / factor);
  for (const b of [bias1, ...biasConsts]) if (b) scale(b, 1 / factor);
  scale(kernel2!, factor);
  return { first, second: second.name, between: between.map((n) => n.name) };
}

// ---------------------------------------------------------------------------------------------------------------
// ONNX graphs (our interpreter; weights are initializers / Constant outputs). Names are value names.

type OnnxNode = OnnxGraph['nodes'][number];

const ONNX_CONV = new Set(['Conv', 'ConvTranspose']);
const ONNX_HOMOGENEOUS = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze',
  'Transpose', 'Identity', 'Dropout', 'ReduceMean', 'ReduceMax', 'ReduceSum', 'Resize', 'Upsample', 'Pad', 'Mul', 'Div',
]);
const ONNX_SHAPE_ONLY = new Set(['Shape', 'Size']);

export function rescaleOnnxConvPair(graph: OnnxGraph, file: string, first: string, factor: number): RescaledPair {
  checkRescaleFactor(factor);
  const readers = new Map<string, OnnxNode[]>();
  for (const n of graph.nodes) {
    for (const i of new Set(n.inputs)) {
      if (!i) continue;
      if (!readers.has(i)) readers.set(i, []);
      readers.get(i)!.push(n);
    }
  }
  const outputs = new Set(graph.outputs);
  const node = graph.nodeOf(first) ?? graph.nodes.find((n) => n.name === first);
  if (!node) throw new UserError(`no node output named "${first}" to rescale`, file);
  const label = (n: OnnxNode) => n.outputs[0] || n.name;
  if (!ONNX_CONV.has(node.op)) throw new UserError(`cannot rescale "${first}": it is the output of a ${node.op} node, not a convolution; give a Conv output`, file);
  const ownConst = (name: string | undefined, what: string, layer: string): string => {
    const t = name ? graph.constant(name) : undefined;
    if (!name || !t) throw new UserError(`cannot rescale "${layer}": its ${what} is not a constant initializer`, file);
    if ((readers.get(name) ?? []).length > 1) throw new UserError(`cannot rescale "${layer}": its ${what} "${name}" is shared with other nodes`, file);
    requireFloat(t, what, layer, file);
    return name;
  };
  const kernel1 = ownConst(node.inputs[1], 'kernel', label(node));
  const bias1 = node.inputs[2] ? ownConst(node.inputs[2], 'bias', label(node)) : undefined;
  const isConst = (name: string | undefined) => !!name && graph.isConstant(name);
  const biasConsts: string[] = [];
  let kernel2: string | undefined;
  const walker: Walker<OnnxNode> = {
    name: label,
    kind: (n) => n.op,
    readers(n) {
      const value = n.outputs[0];
      const extra = n.outputs.slice(1).filter((o) => o && ((readers.get(o) ?? []).length > 0 || outputs.has(o)));
      const nodes = (readers.get(value) ?? []).filter((r) => !ONNX_SHAPE_ONLY.has(r.op));
      // A second output in use (MaxPool indices, Dropout mask) counts as a reader we cannot follow.
      return { nodes: extra.length > 0 ? [...nodes, ...extra.flatMap((o) => readers.get(o) ?? [])] : nodes, modelOutput: outputs.has(value) };
    },
    role(next, from, atFirst) {
      const v = from.outputs[0];
      const at = next.inputs.indexOf(v);
      if (next.inputs.filter((i) => i === v).length > 1) return 'reads the tensor twice';
      if (ONNX_CONV.has(next.op)) {
        if (at !== 0) return 'takes it as its weights, not its input';
        if (!isConst(next.inputs[1])) return 'has weights that are not a constant initializer';
        kernel2 = next.inputs[1];
        return 'second';
      }
      if (next.op === 'Gemm' || next.op === 'MatMul') {
        const k = next.inputs[at === 0 ? 1 : 0];
        if (at > 1 || !isConst(k)) return 'multiplies it by a tensor that is not a constant initializer';
        kernel2 = k;
        return 'second';
      }
      if (next.op === 'Add') {
        const other = next.inputs[at === 0 ? 1 : 0];
        if (atFirst && isConst(other)) {
          biasConsts.push(other);
          return 'bias';
        }
        if (!isConst(other)) return 'adds another tensor (a skip connection or merge)';
        return 'adds an offset after the activation';
      }
      if (ONNX_HOMOGENEOUS.has(next.op)) {
        if (at !== 0) return 'does not take it as its data input';
        if ((next.op === 'Mul' || next.op === 'Div') && !isConst(next.inputs[1])) return 'multiplies it by another tensor';
        if (next.op === 'PRelu' && !isConst(next.inputs[1])) return 'has a slope that is not constant';
        if (next.op === 'Pad' && next.attrs.str('mode', 'constant') === 'constant') {
          const c = next.inputs[2] ? graph.constant(next.inputs[2]) : undefined;
          const value = next.inputs[2] ? (c ? Array.from(c.dataSync() as ArrayLike<number>) : [NaN]) : [next.attrs.float('value', 0)];
          if (value.some((x) => x !== 0)) return 'pads with a non-zero constant';
        }
        return 'homogeneous';
      }
      return unknownRole(next.op);
    },
  };
  const { between, second } = walkPair(walker, node, file);
  ownConst(kernel2, 'kernel', label(second));
  for (const b of biasConsts) ownConst(b, 'bias', label(node));
  const scale = (name: string, s: number) => graph.setConstant(name, times(graph.constant(name)!, s));
  scale(kernel1, 1 / factor);
  for (const b of [bias1, ...biasConsts]) if (b) scale(b, 1 / factor);
  scale(kernel2!, factor);
  return { first: label(node), second: label(second), between: between.map(label) };
}

/** Whether a probe layer's kind (layer class, graph op or ONNX op) is a convolution that can be rescaled as `first`. */
export function isConvKind(kind: string): boolean {
  return LAYERS_CONV.has(kind) || GRAPH_CONV.has(kind) || ONNX_CONV.has(kind);
}
