/**
 * An ONNX graph interpreter on tfjs ops: initializers and Constant nodes become tensors once, then `run` evaluates
 * only the nodes the requested outputs need, in topological order, so gradients flow from any node output back
 * to the graph inputs. Values keep ONNX's layout (NCHW); int64 values are computed as int32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { onnx } from 'onnx-proto';
import { Attrs, OPS, type OpCtx } from './ops';
import { decodeTensor, toInt } from './tensor';

export interface GraphInput {
  name: string;
  /** Dimensions, null where symbolic or unknown. */
  dims: (number | null)[];
  elemType: number;
  /** False for sequence, map or optional inputs, which the interpreter does not handle. */
  tensor: boolean;
}

interface Node {
  name: string;
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
}

export class OnnxFormatError extends Error {}

export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new OnnxFormatError(`not an ONNX model or truncated (${(e as Error).message.split('\n')[0]})`);
  }
  if (!model.graph || (model.graph.node ?? []).length === 0 || !(toIntSafe(model.irVersion) > 0)) {
    throw new OnnxFormatError('not an ONNX model (no graph with nodes and no IR version)');
  }
  return model;
}

function toIntSafe(v: unknown): number {
  try {
    return toInt(v);
  } catch {
    return NaN;
  }
}

export class OnnxGraph {
  readonly opset: number;
  readonly nodes: Node[];
  readonly inputs: GraphInput[];
  readonly outputs: string[];
  private readonly consts = new Map<string, tf.Tensor>();
  private readonly producer = new Map<string, number>();

  constructor(readonly model: onnx.ModelProto) {
    const g = model.graph!;
    const ops = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
    this.opset = ops ? toInt(ops.version) : 1;
    const raw: Node[] = (g.node ?? []).map((n, i) => ({
      name: n.name || `${n.opType}_${i}`,
      op: n.opType ?? '',
      domain: n.domain === 'ai.onnx' ? '' : n.domain ?? '',
      inputs: [...(n.input ?? [])],
      outputs: [...(n.output ?? [])],
      attrs: new Attrs(n.attribute),
    }));
    const initNames = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
    this.inputs = (g.input ?? [])
      .filter((v) => !initNames.has(v.name ?? ''))
      .map((v) => ({
        name: v.name ?? '',
        elemType: v.type?.tensorType?.elemType ?? 1,
        tensor: !v.type || !!v.type.tensorType,
        dims: (v.type?.tensorType?.shape?.dim ?? []).map((d) => {
          const n = d.dimValue !== undefined && d.dimValue !== null ? toIntSafe(d.dimValue) : NaN;
          return Number.isFinite(n) && n > 0 ? n : null;
        }),
      }));
    this.outputs = (g.output ?? []).map((o) => o.name ?? '');
    this.nodes = topoSort(raw, new Set([...initNames, ...this.inputs.map((i) => i.name)]));
    this.nodes.forEach((n, i) => n.outputs.forEach((o) => o && this.producer.set(o, i)));
  }

  /** Op names (with their domain when not the default one) the interpreter does not implement. */
  unsupportedOps(): string[] {
    const missing = new Set<string>();
    for (const n of this.nodes) {
      if (n.domain) missing.add(`${n.domain}:${n.op}`);
      else if (!OPS[n.op]) missing.add(n.op);
    }
    return [...missing];
  }

  /** Decodes initializers and evaluates Constant nodes (kept across runs). */
  loadConstants(): void {
    for (const t of this.model.graph!.initializer ?? []) this.consts.set(t.name ?? '', decodeTensor(t));
    for (const n of this.nodes) {
      if (n.op === 'Constant' && !n.domain) this.consts.set(n.outputs[0], OPS.Constant(this.ctx(n, [])).at(0)!);
    }
  }

  isConstant(name: string): boolean {
    return this.consts.has(name);
  }

  /** A decoded constant (initializer or Constant output) by value name. */
  constant(name: string): tf.Tensor | undefined {
    return this.consts.get(name);
  }

  /** Replaces a constant in memory, disposing the old tensor (the coherency check rescales weights this way). */
  setConstant(name: string, value: tf.Tensor): void {
    const old = this.consts.get(name);
    if (!old) throw new Error(`no constant named "${name}"`);
    this.consts.set(name, value);
    if (old !== value) old.dispose();
  }

  private ctx(n: Node, inputs: (tf.Tensor | undefined)[]): OpCtx {
    return { op: n.op, inputs, attrs: n.attrs, opset: this.opset, outputs: n.outputs.filter((o) => o).length };
  }

  /** Names of values (node outputs) that depend on any of the given value names. */
  dependents(sources: string[]): Set<string> {
    const reached = new Set(sources);
    for (const n of this.nodes) if (n.inputs.some((i) => reached.has(i))) n.outputs.forEach((o) => o && reached.add(o));
    return reached;
  }

  nodeOf(value: string): Node | undefined {
    const i = this.producer.get(value);
    return i === undefined ? undefined : this.nodes[i];
  }

  /**
   * Evaluates the requested values from the given feeds. Intermediate tensors are left to the caller's tf.tidy.
   */
  run(feeds: Record<string, tf.Tensor>, wanted: string[]): tf.Tensor[] {
    const values = new Map<string, tf.Tensor>(this.consts);
    for (const [k, v] of Object.entries(feeds)) values.set(k, v);
    // Nodes needed: walk back from the wanted values.
    const need = new Set<number>();
    const stack = [...wanted];
    while (stack.length) {
      const v = stack.pop()!;
      if (values.has(v)) continue;
      const i = this.producer.get(v);
      if (i === undefined) throw new Error(`no value named "${v}" in the graph`);
      if (need.has(i)) continue;
      need.add(i);
      for (const inp of this.nodes[i].inputs) if (inp) stack.push(inp);
    }
    for (let i = 0; i < this.nodes.length; i++) {
      if (!need.has(i)) continue;
      const n = this.nodes[i];
      const fn = OPS[n.op];
      if (!fn || n.domain) throw new Error(`ONNX op ${n.op} is not supported`);
      const ins = n.inputs.map((name) => (name ? values.get(name) : undefined));
      const outs = fn(this.ctx(n, ins));
      n.outputs.forEach((o, k) => {
        // A fed value is never overwritten (a node with several outputs may run for another of them).
        if (o && outs[k] && !Object.prototype.hasOwnProperty.call(feeds, o)) values.set(o, outs[k]);
      });
    }
    return wanted.map((w) => {
      const t = values.get(w);
      if (!t) throw new Error(`value "${w}" was not computed`);
      return t;
    });
  }

  dispose(): void {
    for (const t of this.consts.values()) t.dispose();
    this.consts.clear();
  }
}

function topoSort(nodes: Node[], available: Set<string>): Node[] {
  const have = new Set(available);
  have.add('');
  const out: Node[] = [];
  let rest = nodes;
  while (rest.length) {
    const next: Node[] = [];
    for (const n of rest) {
      if (n.inputs.every((i) => have.has(i))) {
        out.push(n);
        n.outputs.forEach((o) => have.add(o));
      } else next.push(n);
    }
    if (next.length === rest.length) {
      // Inputs that nothing produces (malformed graph): keep file order and let run() report the missing value.
      out.push(...next);
      break;
    }
    rest = next;
  }
  return out;
}
