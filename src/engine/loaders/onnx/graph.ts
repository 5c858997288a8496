/**
 * An ONNX graph interpreter on tfjs ops: initializers and Constant nodes become tensors once, then `run` evaluates
 * only the nodes the requested outputs need, in topological order, so gradients flow from any node output back
 * to the graph inputs. Values keep ONNX's layout (NCHW); int64 values are computed as int32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { onnx } from 'onnx-proto';
import { Attrs, OPS, OnnxVariantError, type OpCtx } from './ops';
import { decodeTensor, toInt } from './tensor';
import { LayoutValues, runChannelsLast } from './channelsLast';

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

/** A node's op is not implemented; names the op and the node. */
export class OnnxUnsupportedOpError extends Error {
  constructor(
    readonly op: string,
    readonly node: string,
  ) {
    super(`ONNX op ${op} (node "${node}") is not supported by infodiscard`);
    this.name = 'OnnxUnsupportedOpError';
  }
}

/** Ops whose output is not a function of the input values (never folded). */
const NOT_FOLDABLE = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli', 'Dropout']);

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

  /**
   * The ops (with their domain when not the default one) the interpreter does not implement, each with the first
   * node that uses it and how many nodes do, in graph order.
   */
  unsupportedOps(): { op: string; node: string; count: number }[] {
    const missing = new Map<string, { op: string; node: string; count: number }>();
    for (const n of this.nodes) {
      const op = n.domain ? `${n.domain}:${n.op}` : n.op;
      if (!n.domain && OPS[n.op]) continue;
      const m = missing.get(op);
      if (m) m.count++;
      else missing.set(op, { op, node: n.name, count: 1 });
    }
    return [...missing.values()];
  }

  /** Decodes initializers and evaluates Constant nodes (kept across runs). */
  loadConstants(): void {
    for (const t of this.model.graph!.initializer ?? []) this.consts.set(t.name ?? '', decodeTensor(t));
    for (const n of this.nodes) {
      if (n.op === 'Constant' && !n.domain) this.consts.set(n.outputs[0], OPS.Constant(this.ctx(n, [])).at(0)!);
    }
  }

  /**
   * Constant folding at load. First every node whose inputs are all constants (initializers, Constant nodes,
   * folded values) is evaluated once and its outputs become constants. Then, given two runs' feeds that differ in
   * the batch size (and in the image size where the model accepts any), the values computed from Shape/Size alone
   * (shape arithmetic: Gather, Unsqueeze, Concat, ConstantOfShape ... of static shapes) are evaluated in both, and
   * those that come out the same become constants; those that follow the batch or image size stay computed.
   * Returns how many values were folded.
   */
  foldConstants(feeds?: () => [Record<string, tf.Tensor>, Record<string, tf.Tensor>]): number {
    let folded = 0;
    for (const n of this.nodes) {
      if (!this.foldable(n) || n.outputs.every((o) => !o || this.consts.has(o))) continue;
      const ins = n.inputs.filter((i) => i);
      if (ins.length === 0 || !ins.every((i) => this.consts.has(i))) continue;
      let outs: tf.Tensor[];
      try {
        outs = tf.tidy(() => OPS[n.op](this.ctx(n, n.inputs.map((i) => (i ? this.consts.get(i) : undefined)))));
      } catch {
        continue; // left to run(), which reports the error with the node's name
      }
      n.outputs.forEach((o, k) => {
        if (o && outs[k]) {
          this.consts.set(o, outs[k]);
          this.foldedFromConstants.add(o);
          folded++;
        }
      });
      outs.slice(n.outputs.length).forEach((t) => t.dispose());
    }
    if (!feeds) return folded;
    // Values that depend only on constants and on tensor shapes.
    const shapeOnly = new Set<string>(this.consts.keys());
    const candidates: string[] = [];
    for (const n of this.nodes) {
      if (!this.foldable(n)) continue;
      const fromShape = n.op === 'Shape' || n.op === 'Size';
      if (!fromShape && !(n.inputs.some((i) => i) && n.inputs.every((i) => !i || shapeOnly.has(i)))) continue;
      for (const o of n.outputs) {
        if (!o || this.consts.has(o)) continue;
        shapeOnly.add(o);
        candidates.push(o);
      }
    }
    if (candidates.length === 0) return folded;
    const wantedSet = new Set(candidates);
    type Read = { shape: number[]; dtype: tf.DataType; data: number[] };
    const read = (f: Record<string, tf.Tensor>): Read[] => {
      const got = new Map<string, Read>();
      this.evaluateLean(f, (name, t) => {
        if (wantedSet.has(name)) got.set(name, { shape: t.shape, dtype: t.dtype, data: Array.from(t.dataSync() as ArrayLike<number>, Number) });
      }, candidates);
      return candidates.map((name) => {
        const r = got.get(name);
        if (!r) throw new Error(`value "${name}" was not computed`);
        return r;
      });
    };
    let a: ReturnType<typeof read>;
    let b: ReturnType<typeof read>;
    const [fa, fb] = feeds();
    try {
      a = read(fa);
      b = read(fb);
    } catch {
      this.secondFeedFailed = true;
      return folded; // the graph does not run at the second size: fold nothing shape-derived
    } finally {
      tf.dispose([...Object.values(fa), ...Object.values(fb)]);
    }
    candidates.forEach((name, i) => {
      const x = a[i];
      const y = b[i];
      if (x.dtype !== y.dtype || x.shape.join(',') !== y.shape.join(',') || x.data.some((v, k) => v !== y.data[k] && !(Number.isNaN(v) && Number.isNaN(y.data[k])))) return;
      this.consts.set(name, tf.tensor(x.data, x.shape, x.dtype));
      folded++;
    });
    return folded;
  }

  private foldable(n: Node): boolean {
    return !n.domain && !!OPS[n.op] && n.op !== 'Constant' && !NOT_FOLDABLE.has(n.op);
  }

  /** Set by foldConstants when the graph failed to run on the second feeds (another batch or image size). */
  secondFeedFailed = false;

  /** Outputs of nodes folded from constants alone (recomputed when a constant changes). */
  private readonly foldedFromConstants = new Set<string>();

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
    // Values folded from this constant follow it.
    const stale = this.dependents([name]);
    for (const n of this.nodes) {
      if (!n.outputs.some((o) => o && this.foldedFromConstants.has(o) && stale.has(o))) continue;
      const outs = tf.tidy(() => OPS[n.op](this.ctx(n, n.inputs.map((i) => (i ? this.consts.get(i) : undefined)))));
      n.outputs.forEach((o, k) => {
        if (o && outs[k]) {
          this.consts.get(o)?.dispose();
          this.consts.set(o, outs[k]);
        }
      });
    }
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

  /** Like dependents, but through computed values only: values folded to constants at load are not reached. */
  computedDependents(sources: string[]): Set<string> {
    const reached = new Set(sources);
    for (const n of this.nodes) {
      if (n.inputs.some((i) => reached.has(i))) n.outputs.forEach((o) => o && !this.consts.has(o) && reached.add(o));
    }
    return reached;
  }

  nodeOf(value: string): Node | undefined {
    const i = this.producer.get(value);
    return i === undefined ? undefined : this.nodes[i];
  }

  /**
   * Channels-last evaluation in run() (channelsLast.ts): the same values without the NCHW↔NHWC transposes around
   * every conv. On unless INFODISCARD_ONNX_LAYOUT=nchw (for measuring the difference).
   */
  channelsLast = process.env.INFODISCARD_ONNX_LAYOUT !== 'nchw';

  /**
   * Evaluates the requested values from the given feeds (`channelsLastFeeds`: rank-4 feeds given NHWC, e.g. the
   * image of a model whose input is NCHW). Values come back in ONNX's layout. Intermediate tensors are left to
   * the caller's tf.tidy.
   */
  run(feeds: Record<string, tf.Tensor>, wanted: string[], channelsLastFeeds: Record<string, tf.Tensor4D> = {}): tf.Tensor[] {
    if (!this.channelsLast && Object.keys(channelsLastFeeds).length) {
      feeds = { ...feeds };
      for (const [k, v] of Object.entries(channelsLastFeeds)) feeds[k] = tf.transpose(v, [0, 3, 1, 2]);
      channelsLastFeeds = {};
    }
    const values = new LayoutValues(this.consts, feeds, channelsLastFeeds);
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
    const fed = (o: string) => Object.prototype.hasOwnProperty.call(feeds, o) || Object.prototype.hasOwnProperty.call(channelsLastFeeds, o);
    for (let i = 0; i < this.nodes.length; i++) {
      if (!need.has(i)) continue;
      const n = this.nodes[i];
      const fn = OPS[n.op];
      if (!fn || n.domain) throw new OnnxUnsupportedOpError(n.domain ? `${n.domain}:${n.op}` : n.op, n.name);
      let outs: tf.Tensor[];
      try {
        const last = this.channelsLast ? runChannelsLast(n, values, (ins) => this.ctx(n, ins)) : null;
        if (last) {
          const o = n.outputs.find((name) => name)!;
          // A fed value is never overwritten (a node with several outputs may run for another of them).
          if (!fed(o)) (last.layout === 'nhwc' ? values.setNhwc(o, last.value as tf.Tensor4D) : values.set(o, last.value));
          continue;
        }
        outs = fn(this.ctx(n, n.inputs.map((name) => (name ? values.get(name) : undefined))));
      } catch (e) {
        // Name the node: a variant error stays one (the op's variant is unsupported), anything else gets its name.
        if (e instanceof OnnxVariantError) throw new OnnxVariantError(n.op, `${e.message.replace(/ is not supported$/, '').replace(/^[^:]*: /, '')} (node "${n.name}")`);
        const msg = (e as Error)?.message ?? String(e);
        throw new Error(msg.includes(`node "${n.name}"`) ? msg : `node "${n.name}" (${n.op}): ${msg}`);
      }
      n.outputs.forEach((o, k) => {
        if (o && outs[k] && !fed(o)) values.set(o, outs[k]);
      });
    }
    const given = new Set<tf.Tensor>([...this.consts.values(), ...Object.values(feeds), ...Object.values(channelsLastFeeds)]);
    return wanted.map((w) => {
      const t = values.get(w);
      if (!t) throw new Error(`value "${w}" was not computed`);
      // A channels-last alias of a constant or a feed (a Transpose of one) is returned as its own tensor.
      return given.has(t) && !this.consts.has(w) && !fed(w) ? tf.clone(t) : t;
    });
  }

  /**
   * Shape and dtype of every computed value on the given feeds, with low peak memory: each intermediate is
   * disposed once its last consumer has run (load-time use only: nothing here may be under a gradient tape).
   * Values that cannot be computed (nodes after a failure) throw like run().
   */
  shapes(feeds: Record<string, tf.Tensor>, names: string[]): { shape: number[]; dtype: tf.DataType }[] {
    const info = new Map<string, { shape: number[]; dtype: tf.DataType }>();
    this.evaluateLean(feeds, (name, t) => info.set(name, { shape: t.shape, dtype: t.dtype }));
    return names.map((name) => {
      const v = info.get(name);
      if (!v) throw new Error(`value "${name}" was not computed`);
      return v;
    });
  }

  /**
   * Evaluates every node computable from the feeds in order, calling `seen` on each output, and disposes each
   * intermediate once its last reader has run: the peak memory of a forward pass, not of all its values.
   */
  private evaluateLean(feeds: Record<string, tf.Tensor>, seen: (name: string, t: tf.Tensor) => void, targets?: string[]): void {
    // Only the nodes the targets need (all of them without targets).
    let need: Set<Node> | null = null;
    if (targets) {
      need = new Set();
      const stack = [...targets];
      const visited = new Set<string>();
      while (stack.length) {
        const v = stack.pop()!;
        if (visited.has(v) || this.consts.has(v) || Object.prototype.hasOwnProperty.call(feeds, v)) continue;
        visited.add(v);
        const i = this.producer.get(v);
        if (i === undefined) continue;
        need.add(this.nodes[i]);
        for (const inp of this.nodes[i].inputs) if (inp) stack.push(inp);
      }
    }
    const nodes = need ? this.nodes.filter((n) => need!.has(n)) : this.nodes;
    const remaining = new Map<string, number>();
    for (const n of nodes) for (const i of n.inputs) if (i) remaining.set(i, (remaining.get(i) ?? 0) + 1);
    const values = new Map<string, tf.Tensor>();
    const get = (name: string) => this.consts.get(name) ?? feeds[name] ?? values.get(name);
    const release = (name: string) => {
      const t = values.get(name);
      if (t) {
        t.dispose();
        values.delete(name);
      }
    };
    try {
      for (const n of nodes) {
        if (n.outputs.every((o) => !o || this.consts.has(o))) continue;
        const ins = n.inputs.map((name) => (name ? get(name) : undefined));
        if (n.inputs.some((name, k) => name && !ins[k])) continue; // not computable from these feeds
        const fn = OPS[n.op];
        if (!fn || n.domain) throw new OnnxUnsupportedOpError(n.domain ? `${n.domain}:${n.op}` : n.op, n.name);
        let outs: tf.Tensor[];
        try {
          outs = tf.tidy(() => fn(this.ctx(n, ins)));
        } catch (e) {
          if (e instanceof OnnxVariantError) throw new OnnxVariantError(n.op, `${e.message.replace(/ is not supported$/, '').replace(/^[^:]*: /, '')} (node "${n.name}")`);
          throw new Error(`node "${n.name}" (${n.op}): ${(e as Error)?.message ?? String(e)}`);
        }
        n.outputs.forEach((o, k) => {
          const t = outs[k];
          if (!t) return;
          if (!o || this.consts.has(o) || Object.prototype.hasOwnProperty.call(feeds, o)) return t.dispose();
          seen(o, t);
          if ((remaining.get(o) ?? 0) > 0) values.set(o, t);
          else t.dispose();
        });
        outs.slice(n.outputs.length).forEach((t) => t.dispose());
        for (const i of new Set(n.inputs)) {
          if (!i || !values.has(i)) continue;
          const left = (remaining.get(i) ?? 1) - n.inputs.filter((x) => x === i).length;
          remaining.set(i, left);
          if (left <= 0) release(i);
        }
      }
    } finally {
      for (const name of [...values.keys()]) release(name);
    }
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
