/**
 * Helpers for kernels that compose the wasm backend's own (fast, XNNPACK) kernels. Everything here works on
 * TensorInfos directly, below the engine: no tape, no scopes, and intermediates are freed with disposeData.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type { BackendWasm };
export type Info = tf.TensorInfo;

/** Calls the kernel registered for wasm under `name` (looked up on every call, so replacements apply). */
export function run(backend: BackendWasm, name: string, inputs: tf.NamedTensorInfoMap, attrs: object): Info {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`infodiscard kernels: wasm kernel '${name}' is not registered`);
  return k.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as Info;
}

/** Frees backend data made inside a kernel that is not returned. */
export function free(backend: BackendWasm, ...infos: (Info | null | undefined)[]): void {
  for (const t of infos) if (t) backend.disposeData(t.dataId);
}

/** A Float32Array view of a tensor's memory on the wasm heap (valid until the next allocation). */
export function heap(backend: BackendWasm, t: Info): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/** Same data, another shape: no copy and no refcount change, so free only one of the two. */
export function view(t: Info, shape: number[]): Info {
  return { dataId: t.dataId, shape, dtype: t.dtype };
}

/**
 * Copies the window [h0, h0+H) x [w0, w0+W) of an NHWC tensor into a new tensor (rows outside the source are
 * zero). Used to crop over-sized conv outputs; reads the heap in place, unlike wasm's Slice which copies the
 * whole input to JS first.
 */
export function cropNHWC(backend: BackendWasm, x: Info, h0: number, w0: number, H: number, W: number): Info {
  const [B, XH, XW, C] = x.shape;
  const out = backend.makeOutput([B, H, W, C], 'float32');
  const src = heap(backend, x);
  const dst = heap(backend, out);
  if (h0 < 0 || w0 < 0 || h0 + H > XH || w0 + W > XW) dst.fill(0);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const sh = h + h0;
      if (sh < 0 || sh >= XH) continue;
      const wLo = Math.max(0, -w0);
      const wHi = Math.min(W, XW - w0);
      if (wHi <= wLo) continue;
      const s = ((b * XH + sh) * XW + (wLo + w0)) * C;
      const d = ((b * H + h) * W + wLo) * C;
      dst.set(src.subarray(s, s + (wHi - wLo) * C), d);
    }
  }
  return out;
}

/** Explicit NHWC padding in the form Conv2D/DepthwiseConv2dNative attrs accept. */
export function explicitPad(top: number, bottom: number, left: number, right: number): tf.backend_util.ExplicitPadding {
  return [[0, 0], [top, bottom], [left, right], [0, 0]] as tf.backend_util.ExplicitPadding;
}

export function pair(v: number | [number, number] | number[] | undefined | null, dflt = 1): [number, number] {
  if (v == null) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

const stockKernels = new Map<string, tf.KernelConfig>();
const ourFuncs = new Set<unknown>();

/**
 * Registers kernelFunc for `name` on wasm in place of the current kernel (idempotent). Keeps the stock
 * kernel's setupFunc, so the stock kernel still works as a fallback if the backend is initialised later.
 */
export function replaceKernel(name: string, kernelFunc: (args: KernelArgs) => Info): void {
  const current = tf.getKernel(name, 'wasm');
  if (current && !ourFuncs.has(current.kernelFunc) && !stockKernels.has(name)) stockKernels.set(name, current);
  if (current) tf.unregisterKernel(name, 'wasm');
  ourFuncs.add(kernelFunc);
  const stock = stockKernels.get(name);
  tf.registerKernel({ kernelName: name, backendName: 'wasm', setupFunc: stock?.setupFunc, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}

/** Runs the stock wasm kernel that replaceKernel displaced. */
export function runStock(name: string, args: KernelArgs): Info {
  const k = stockKernels.get(name);
  if (!k) throw new Error(`infodiscard kernels: no stock wasm kernel '${name}'`);
  return k.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as Info;
}

export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: BackendWasm;
  attrs: tf.NamedAttrMap;
}
