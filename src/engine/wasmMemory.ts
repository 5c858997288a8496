/**
 * tfjs-wasm's heap is a wasm32 memory: at most 4 GB, whatever the machine has. When an allocation does not fit,
 * emscripten's malloc returns 0 and tfjs-wasm registers the tensor at address 0 anyway: the kernel then writes over
 * the allocator's own data and the process dies later with "RuntimeError: memory access out of bounds", far from
 * the cause (ViT-B/16 did, before the ONNX MatMul stopped materialising broadcast weights). The guard below checks
 * every tensor allocation made from JavaScript (all kernel outputs and uploads go through backend.makeOutput /
 * write -> wasm._malloc) and throws one clear line instead, before anything is written, so tidy scopes unwind and
 * the backend stays usable. Allocations made inside C++ (XNNPACK scratch) are not covered; they are small.
 */
import * as tf from '@tensorflow/tfjs-core';
import { SkipLayerError } from './errors';

/** tfjs-wasm's heap limit (emscripten MAXIMUM_MEMORY; getHeapMax() = 4 GB - 64 KB). */
export const WASM_HEAP_MAX_BYTES = 4294901760;

/**
 * A tensor that does not fit in the wasm heap. A SkipLayerError: the analysis records the layer as skipped with
 * this reason and goes on with the layers that fit (an earlier, smaller layer usually does).
 */
export class WasmMemoryError extends SkipLayerError {
  constructor(readonly requestedBytes: number, readonly heapBytes: number) {
    super(
      `the wasm backend ran out of memory (a ${mb(requestedBytes)} tensor did not fit; its heap is limited to 4 GB and has grown to ${mb(heapBytes)}): ` +
        'use fewer noise samples per pass (--sample-batch 1), a layer nearer the input, a smaller input, or --backend tensorflow',
    );
    this.name = 'WasmMemoryError';
  }
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${Math.max(1, Math.round(bytes / 1e6))} MB`;
}

interface WasmModule {
  _malloc(bytes: number): number;
  HEAPU8: Uint8Array;
  asm?: { malloc?: (bytes: number) => number };
}

const guarded = new WeakSet<object>();

/** Installs the guard on the current backend when it is wasm (idempotent). */
export function guardWasmHeap(): void {
  if (tf.getBackend() !== 'wasm') return;
  const wasm = (tf.backend() as unknown as { wasm?: WasmModule }).wasm;
  if (!wasm || guarded.has(wasm)) return;
  // The raw export: emscripten's Module._malloc is a stub that, on its first call, replaces itself with it (and
  // would so replace this wrapper).
  const malloc = wasm.asm?.malloc ?? wasm._malloc.bind(wasm);
  wasm._malloc = (bytes: number): number => {
    // malloc takes a 32-bit size: 4.4 GB would arrive as 105 MB and "succeed".
    if (bytes > WASM_HEAP_MAX_BYTES) throw new WasmMemoryError(bytes, wasm.HEAPU8.length);
    const ptr = malloc(bytes);
    if (ptr === 0 && bytes > 0) throw new WasmMemoryError(bytes, wasm.HEAPU8.length);
    return ptr;
  };
  guarded.add(wasm);
  // Under tf.profile (sampleBatch.ts measures memory with it) every kernel runs inside the backend's `time`, which
  // tfjs-wasm declares async: the error would become a rejected promise nobody awaits (the process's unhandled
  // rejection) and tfjs would go on with no outputs ("Cannot read properties of undefined (reading 'map')"). Run
  // the kernel synchronously, so its error reaches the caller.
  const backend = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
  backend.time = (f: () => void) => {
    const start = performance.now();
    f();
    return Promise.resolve({ kernelMs: performance.now() - start });
  };
}

/**
 * After an error thrown inside tf.grad's forward pass (a WasmMemoryError, or a layer TensorFlow.js cannot
 * differentiate), tfjs keeps the tape of that pass and the tensors its gradients had saved (the activations: about
 * 1 GB for one ViT-B/16 sample) until the next tf.grad replaces the tape without freeing them. This frees them. Call
 * it where such an error is caught, outside any gradient computation; a no-op otherwise.
 */
export function releaseAbandonedTape(): void {
  const state = (tf.engine() as unknown as { state: { gradientDepth: number; activeTape: { saved?: tf.Tensor[] }[] | null } }).state;
  if (state.gradientDepth !== 0 || !state.activeTape) return;
  for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
  state.activeTape = null;
}
