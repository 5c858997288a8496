/**
 * Writing ONNX graphs: nodes and constants appended to a graph under construction, and reading a model's node
 * attributes and constants (initializers, Constant nodes). Shared by the gradient rules (gradients.ts) and the
 * graph assembly (onnxVjp.ts).
 */
import { onnx } from 'onnx-proto';
import { toInt } from '../loaders/onnx/tensor';

const AT = onnx.AttributeProto.AttributeType;

export interface Ctx {
  nodes: onnx.INodeProto[];
  inits: onnx.ITensorProto[];
  next: number;
}

export function attr(name: string, v: number | number[] | string): onnx.IAttributeProto {
  if (typeof v === 'string') return { name, type: AT.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: AT.INTS, ints: v };
  return Number.isInteger(v) ? { name, type: AT.INT, i: v } : { name, type: AT.FLOAT, f: v };
}

export function floatAttr(name: string, v: number): onnx.IAttributeProto {
  return { name, type: AT.FLOAT, f: v };
}

export function node(ctx: Ctx, op: string, inputs: string[], attrs: onnx.IAttributeProto[] = [], outputs = 1): string[] {
  const id = ctx.next++;
  const outs = Array.from({ length: outputs }, (_, i) => `vjp/${op}_${id}${outputs > 1 ? `_${i}` : ''}`);
  ctx.nodes.push({ opType: op, name: `vjp/${op}_${id}`, input: inputs, output: outs, attribute: attrs });
  return outs;
}

export function constant(ctx: Ctx, values: number[] | Float32Array, dims: number[], type: 'float' | 'int64' = 'float'): string {
  const name = `vjp/const_${ctx.next++}`;
  if (type === 'float') ctx.inits.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, floatData: Array.from(values) });
  else ctx.inits.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, int64Data: Array.from(values) });
  return name;
}

export function getAttr(n: onnx.INodeProto, name: string): onnx.IAttributeProto | undefined {
  return (n.attribute ?? []).find((a) => a.name === name);
}
export const ints = (n: onnx.INodeProto, name: string): number[] | undefined => getAttr(n, name)?.ints?.map((v) => toInt(v));
export const int = (n: onnx.INodeProto, name: string, dflt: number): number => {
  const a = getAttr(n, name);
  return a && a.i !== undefined && a.i !== null ? toInt(a.i) : dflt;
};
export const float = (n: onnx.INodeProto, name: string, dflt: number): number => getAttr(n, name)?.f ?? dflt;
export const str = (n: onnx.INodeProto, name: string, dflt: string): string => {
  const s = getAttr(n, name)?.s;
  return s && s.length > 0 ? new TextDecoder().decode(s) : dflt;
};

/**
 * A constant's dims and values (float or int64, as numbers): an initializer or a Constant node's value; null when
 * the value is computed.
 */
export function constantValues(model: onnx.ModelProto, name: string): { dims: number[]; values: Float32Array | number[] } | null {
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
export function initializerValues(model: onnx.ModelProto, name: string): { dims: number[]; values: Float32Array } | null {
  const c = constantValues(model, name);
  return c && c.values instanceof Float32Array ? (c as { dims: number[]; values: Float32Array }) : null;
}

/** Explicit [begin..., end...] pads of a conv or pool (auto_pad resolved from the shapes). */
export function explicitPads(n: onnx.INodeProto, inH: number[], outH: number[], kernel: number[], strides: number[], dilations: number[]): number[] | string {
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
