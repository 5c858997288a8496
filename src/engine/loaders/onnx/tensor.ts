/**
 * ONNX TensorProto → tfjs tensor. Floats (float, double, float16) become float32; integer types become int32 (ONNX
 * int64 values, which shape arithmetic uses, saturate at the int32 bounds, as INT64_MAX "to the end" must); bool stays bool.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { onnx } from 'onnx-proto';

/** A valid ONNX construct (op attribute, data type) that infodiscard deliberately does not implement. */
export class OnnxVariantError extends Error {
  constructor(op: string, what: string) {
    super(`${op}: ${what} is not supported`);
    this.name = 'OnnxVariantError';
  }
}

export const DT = { BFLOAT16: 16, FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10, DOUBLE: 11, UINT32: 12, UINT64: 13 } as const;

/** A protobuf int64 (number or Long) as a JS number, throwing when it is outside the int32 range we compute in. */
export function toInt(v: unknown, what = 'value'): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (v && typeof v === 'object' && 'low' in v && 'high' in v) {
    const l = v as { low: number; high: number; unsigned?: boolean };
    n = l.high * 4294967296 + (l.low >>> 0);
  } else if (typeof v === 'bigint') n = Number(v);
  else n = Number(v);
  if (!Number.isFinite(n) || n > 2147483647 || n < -2147483648) throw new RangeError(`${what} ${n} does not fit in 32 bits`);
  return n;
}

/**
 * An int64 as a JS number saturated to the int32 range: exporters write "to the end" as INT64_MAX (Slice ends) and
 * "from the start" as INT64_MIN, which clamp to the same result in 32 bits.
 */
export function toIntSat(v: unknown): number {
  let n: number;
  if (v && typeof v === 'object' && 'low' in v && 'high' in v) {
    const l = v as { low: number; high: number };
    n = l.high * 4294967296 + (l.low >>> 0);
  } else n = Number(v);
  if (Number.isNaN(n)) throw new RangeError(`value ${String(v)} is not an integer`);
  return Math.min(Math.max(n, -2147483648), 2147483647);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export function tensorDtype(dataType: number): 'float32' | 'int32' | 'bool' | null {
  switch (dataType) {
    case DT.FLOAT: case DT.DOUBLE: case DT.FLOAT16: case DT.BFLOAT16: return 'float32';
    case DT.INT8: case DT.UINT8: case DT.INT16: case DT.UINT16: case DT.INT32: case DT.INT64: case DT.UINT32: case DT.UINT64: return 'int32';
    case DT.BOOL: return 'bool';
    default: return null;
  }
}

/** Decodes the values of a TensorProto (raw_data or the typed repeated fields). */
export function decodeTensor(t: onnx.ITensorProto, externalHint = ''): tf.Tensor {
  const dims = (t.dims ?? []).map((d) => toInt(d, 'dimension'));
  const size = dims.reduce((a, b) => a * b, 1);
  const dataType = t.dataType ?? 0;
  const name = t.name ?? '';
  if (t.dataLocation === 1 || (t.externalData && t.externalData.length > 0)) {
    throw new RangeError(`tensor "${name}" keeps its data in an external file${externalHint}; re-export with the weights inside the .onnx file`);
  }
  const raw = t.rawData && t.rawData.length > 0 ? t.rawData : null;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  let values: Float32Array | Int32Array | Uint8Array;
  const read = (n: number, get: (i: number) => number, field: ArrayLike<unknown> | null | undefined, conv: (v: unknown) => number) => {
    const out = new Float64Array(n);
    if (view) for (let i = 0; i < n; i++) out[i] = get(i);
    else if (field) for (let i = 0; i < n; i++) out[i] = conv(field[i]);
    return out;
  };
  switch (dataType) {
    case DT.FLOAT:
      values = view ? Float32Array.from(read(size, (i) => view.getFloat32(i * 4, true), null, Number)) : Float32Array.from((t.floatData ?? []) as number[]);
      break;
    case DT.DOUBLE:
      values = Float32Array.from(read(size, (i) => view!.getFloat64(i * 8, true), t.doubleData, Number));
      break;
    case DT.FLOAT16:
      values = Float32Array.from(read(size, (i) => halfToFloat(view!.getUint16(i * 2, true)), t.int32Data, (v) => halfToFloat(Number(v))));
      break;
    case DT.BFLOAT16: {
      const bits = new Uint32Array(size);
      for (let i = 0; i < size; i++) bits[i] = (view ? view.getUint16(i * 2, true) : Number(t.int32Data![i])) << 16;
      values = new Float32Array(bits.buffer);
      break;
    }
    case DT.INT64: {
      const out = new Int32Array(size);
      for (let i = 0; i < size; i++) {
        out[i] = toIntSat(view ? view.getBigInt64(i * 8, true) : t.int64Data![i]);
      }
      values = out;
      break;
    }
    case DT.UINT64: {
      const out = new Int32Array(size);
      for (let i = 0; i < size; i++) out[i] = toInt(view ? view.getBigUint64(i * 8, true) : t.uint64Data![i], `uint64 value in "${name}"`);
      values = out;
      break;
    }
    case DT.INT32:
      values = Int32Array.from(read(size, (i) => view!.getInt32(i * 4, true), t.int32Data, Number));
      break;
    case DT.UINT32:
      values = Int32Array.from(read(size, (i) => view!.getUint32(i * 4, true), t.uint64Data, (v) => toInt(v)), (v) => toInt(v));
      break;
    case DT.INT16: values = Int32Array.from(read(size, (i) => view!.getInt16(i * 2, true), t.int32Data, Number)); break;
    case DT.UINT16: values = Int32Array.from(read(size, (i) => view!.getUint16(i * 2, true), t.int32Data, Number)); break;
    case DT.INT8: values = Int32Array.from(read(size, (i) => view!.getInt8(i), t.int32Data, Number)); break;
    case DT.UINT8: values = Int32Array.from(read(size, (i) => view!.getUint8(i), t.int32Data, Number)); break;
    case DT.BOOL: values = Uint8Array.from(read(size, (i) => view!.getUint8(i), t.int32Data, Number)); break;
    default:
      throw new OnnxVariantError('tensor', `"${name}" of ONNX data type ${dataType}`);
  }
  if (values.length !== size) throw new RangeError(`tensor "${name}" holds ${values.length} values for shape [${dims.join(', ')}]`);
  return tf.tensor(values, dims, tensorDtype(dataType)!);
}
