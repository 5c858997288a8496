/**
 * Rewrites a graph model's fused nodes (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul) into their
 * plain ops (Conv2D / DepthwiseConv2dNative / MatMul, then BiasAdd, then the activation), before loading.
 *
 * Why: tfjs-converter runs fused nodes through its own bundled copy of tf.fused.*, which fusedGradMode.ts
 * cannot reach. Under tf.grad, tfjs keeps a fused conv whose activation is linear (BiasAdd only: the last
 * conv of every residual block, projection shortcuts) and its custom gradient computes the filter and bias
 * gradients eagerly: a wasted conv per such layer per step. It also rejects dilated fused convs ("dilation
 * rates greater than 1 are not yet supported in gradients"). Plain ops have per-input gradients, so only the
 * input gradient is computed, and dilated convs use dilatedConvGrads.ts. Forward values are unchanged (up to
 * float rounding); a forward-only pass is slightly slower (bias and activation are separate ops).
 *
 * Usage: wrap the IOHandler, or call on artifacts before tfc.loadGraphModel:
 *   const artifacts = await handler.load(); unfuseGraphModel(artifacts.modelTopology);
 */

interface Attr { [k: string]: unknown }
export interface GraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, Attr>;
  device?: string;
}

const PLAIN: Record<string, string> = {
  _FusedConv2D: 'Conv2D',
  FusedDepthwiseConv2dNative: 'DepthwiseConv2dNative',
  _FusedMatMul: 'MatMul',
};
const ACTIVATIONS: Record<string, string> = { relu: 'Relu', relu6: 'Relu6', elu: 'Elu', sigmoid: 'Sigmoid', leakyrelu: 'LeakyRelu', prelu: 'Prelu' };
const FUSED_ONLY_ATTRS = ['fused_ops', 'num_args', 'epsilon', 'leakyrelu_alpha', 'TArgs'];

function decode(s: unknown): string {
  if (Array.isArray(s)) return String.fromCharCode(...(s as number[]));
  return Buffer.from(String(s), 'base64').toString('utf8');
}

function fusedOps(node: GraphNode): string[] {
  const list = (node.attr?.fused_ops as { list?: { s?: unknown[] } } | undefined)?.list?.s ?? [];
  return list.map((s) => decode(s).toLowerCase());
}

/**
 * Splits one fused node into plain nodes; the last one keeps the fused node's name, so consumers are
 * unchanged. Returns null for patterns this does not handle (left fused).
 */
function split(node: GraphNode): GraphNode[] | null {
  const plain = PLAIN[node.op];
  if (!plain) return null;
  const ops = fusedOps(node);
  if (ops.length === 0 || ops.length > 2 || ops[0] !== 'biasadd') return null;
  const act = ops[1];
  if (act !== undefined && !ACTIVATIONS[act]) return null;
  const inputs = node.input ?? [];
  const data = inputs.filter((i) => !i.startsWith('^'));
  const control = inputs.filter((i) => i.startsWith('^'));
  if (data.length < 3 || (act === 'prelu' && data.length < 4)) return null;
  const [x, w, bias, alpha] = data;
  const attr = { ...(node.attr ?? {}) };
  for (const k of FUSED_ONLY_ATTRS) delete attr[k];
  const common = node.device ? { device: node.device } : {};
  const T = node.attr?.T ?? { type: 'DT_FLOAT' };
  const out: GraphNode[] = [];
  const matmulName = `${node.name}/unfused_op`;
  out.push({ ...common, name: matmulName, op: plain, input: [x, w, ...control], attr });
  const biasAttr: Record<string, Attr> = { T };
  if (node.attr?.data_format && plain !== 'MatMul') biasAttr.data_format = node.attr.data_format;
  const biasName = act ? `${node.name}/unfused_bias` : node.name;
  out.push({ ...common, name: biasName, op: 'BiasAdd', input: [matmulName, bias], attr: biasAttr });
  if (act) {
    const actAttr: Record<string, Attr> = { T };
    if (act === 'leakyrelu') actAttr.alpha = { f: (node.attr?.leakyrelu_alpha as { f?: number } | undefined)?.f ?? 0.2 };
    out.push({ ...common, name: node.name, op: ACTIVATIONS[act], input: act === 'prelu' ? [biasName, alpha] : [biasName], attr: actAttr });
  }
  return out;
}

/** Rewrites the fused nodes of a GraphDef JSON (artifacts.modelTopology) in place; returns how many. */
export function unfuseGraphModel(modelTopology: unknown): number {
  const graph = modelTopology as { node?: GraphNode[] } | undefined;
  if (!graph || !Array.isArray(graph.node)) return 0;
  let n = 0;
  const nodes: GraphNode[] = [];
  for (const node of graph.node) {
    const parts = split(node);
    if (parts) {
      nodes.push(...parts);
      n++;
    } else {
      nodes.push(node);
    }
  }
  graph.node = nodes;
  return n;
}
