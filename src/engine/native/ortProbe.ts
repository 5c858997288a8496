/**
 * The SID search's noisy passes on onnxruntime (npm onnxruntime-node, an optional dependency) instead of our tfjs
 * interpreter, for ONNX models on a CPU backend: a ResNet-18 pass (forward and input gradient) runs 4-5x faster
 * than on wasm, one thread each (docs/performance.md, "ONNX layers on onnxruntime"). The graphs come from
 * onnxVjp.ts; the answer is the same search on the same noise, up to float rounding.
 */
import { availableParallelism } from 'node:os';
import type { onnx } from 'onnx-proto';
import { buildSquaredChangeGraphs, type VjpSpec } from './onnxVjp';

/** ||h(x_n) − f||² per noisy input, and the input gradient of coef · Σ_n of them, outside tfjs. */
export interface NativeProbe {
  /** What runs the passes, for the log and the report ("onnxruntime 1.30.0 (cpu, 1 thread)"). */
  readonly runtime: string;
  /** Per-sample squared change of an NHWC batch of n noisy inputs (model units). */
  squaredChange(noisy: Float32Array, n: number): Promise<Float32Array>;
  /** The same, and d(coef · Σ_n sq_n)/d noisy (NHWC). */
  squaredChangeAndGrad(noisy: Float32Array, n: number, coef: number): Promise<{ sq: Float32Array; grad: Float32Array }>;
  /** Units of the layer's output (one image). */
  readonly featureSize: number;
  /** Vector-Jacobian products Jᵀu at n inputs x (NHWC) for n vectors u over the layer's output: dx, NHWC. */
  vjp(x: Float32Array, u: Float32Array, n: number): Promise<Float32Array>;
  /** Frees the vector-Jacobian session (made on first use) once a preview no longer needs it. */
  releaseVjp(): Promise<void>;
  dispose(): Promise<void>;
}

export interface NativeProbeSpec {
  /** The decoded .onnx file, as the loader holds it (read, never changed). */
  model: onnx.ModelProto;
  inputName: string;
  inputLayout: 'nchw' | 'nhwc';
  layerName: string;
  /** The clean image, NHWC [1, H, W, C], model units. */
  image: Float32Array;
  height: number;
  width: number;
  channels: number;
  /**
   * The shape of every float value between the image and the layer at batch 1, in the model's own layout (the
   * loader's probe-able layers): the backward ops need them.
   */
  shapes: ReadonlyMap<string, number[]>;
  /** Values the loader folded to constants (onnxVjp.ts VjpSpec.constant). */
  constant?: VjpSpec['constant'];
  /**
   * The graph takes one image at a time (PyTorch's exporter wrote a batch of 1 into its reshapes): every pass runs
   * its samples one by one.
   */
  perSample?: boolean;
  /** Which gradient session to make (and check) now: the search's ('search', default) or the preview's ('vjp'). */
  first?: 'search' | 'vjp';
  /** Intra-op threads (one per worker process: the pool already runs one process per core). */
  threads: number;
}

/**
 * Noise samples per onnxruntime pass: ResNet-18 at 224x224 peaked at 1122 MB in one process with all 16 at once,
 * under 1 GB with 8 (a team member's share); the runtime's time per sample does not depend on it.
 */
export const NATIVE_PASS = 8;

type Ort = typeof import('onnxruntime-node');
let ortModule: Ort | string | undefined;

/**
 * onnxruntime-node when it is installed and loads here, else why not (the tfjs path stays, and the report says
 * so): not installed, or a native library this platform cannot load.
 */
export function loadOrt(): Ort | string {
  if (ortModule === undefined) {
    try {
      // require, not import(): the package is CommonJS, and the bundle keeps it external (an optional dependency).
      ortModule = require('onnxruntime-node') as Ort;
    } catch (e) {
      // The package itself missing, or present without a native library for this platform (the VSIX ships Linux x64's).
      const missing = (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && /'onnxruntime-node'/.test(firstLine(e));
      ortModule = missing ? 'onnxruntime-node is not installed' : `onnxruntime-node does not load here (${firstLine(e)})`;
    }
  }
  return ortModule;
}

/** Whether the user turned the native passes off (INFODISCARD_NATIVE=off, for measuring and as an escape hatch). */
export function nativeDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(off|0|false|no)$/i.test(env.INFODISCARD_NATIVE ?? '');
}

/**
 * Whether a layer may run on onnxruntime under this tfjs backend: on the CPU backends (wasm, cpu), which it
 * outruns, unless turned off. Not beside tfjs-node (native already, every core) nor webgpu (a GPU).
 */
export function nativeAllowed(backend: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return !nativeDisabled(env) && (backend === 'wasm' || backend === 'cpu');
}

/**
 * onnxruntime's intra-op threads in this process: INFODISCARD_NATIVE_THREADS (the worker pool sets it to the cores
 * per worker), else every core (one process alone).
 */
export function nativeThreads(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.INFODISCARD_NATIVE_THREADS);
  return Number.isInteger(n) && n >= 1 ? n : Math.max(1, availableParallelism());
}

/**
 * The native probe of one layer, or why there is none (onnxruntime missing, an op on the path without a gradient
 * here, a model onnxruntime refuses). Never throws for an unsupported model: the caller logs the reason and keeps
 * the tfjs path.
 */
export async function createOnnxNativeProbe(spec: NativeProbeSpec): Promise<NativeProbe | string> {
  const ort = loadOrt();
  if (typeof ort === 'string') return ort;
  const { model, height: H, width: W, channels: C } = spec;
  // No memory arena: the arena keeps its high-water mark of every pass size for the session's life, on top of the
  // tfjs heap; freed buffers cost nothing measurable beside a pass of convolutions.
  const options = {
    intraOpNumThreads: spec.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all' as const,
    executionMode: 'sequential' as const,
    enableCpuMemArena: false,
  };
  const shapes = new Map(spec.shapes);
  shapes.set(spec.inputName, spec.inputLayout === 'nchw' ? [1, C, H, W] : [1, H, W, C]);
  const graphs = buildSquaredChangeGraphs({ model, inputName: spec.inputName, inputLayout: spec.inputLayout, layerName: spec.layerName, shapes, ...(spec.constant ? { constant: spec.constant } : {}) });
  if (typeof graphs === 'string') return graphs;

  type Session = import('onnxruntime-node').InferenceSession;
  // The forward session always (δ_f², the calibration, the check, and f here); the one the first use needs now,
  // so that a graph onnxruntime refuses is found before the search; the other (a warm start needs both) on demand.
  let forward: Session;
  const lazy = (graph: Uint8Array) => {
    let made: Promise<Session> | undefined;
    return {
      get: () => (made ??= ort.InferenceSession.create(graph, options)),
      release: async () => {
        const m = made;
        made = undefined;
        if (m) await (await m).release();
      },
    };
  };
  const gradient = lazy(graphs.gradient);
  const vjp = lazy(graphs.vjp);
  const releaseAll = async () => {
    await Promise.all([forward?.release(), gradient.release(), vjp.release()]);
  };
  try {
    forward = await ort.InferenceSession.create(graphs.forward, options);
    await (spec.first === 'vjp' ? vjp : gradient).get();
  } catch (e) {
    await releaseAll().catch(() => undefined);
    return `onnxruntime refuses the gradient graph (${firstLine(e)})`;
  }
  const featureShape = [1, ...(shapes.get(spec.layerName) ?? []).slice(1)];
  const featureSize = featureShape.reduce((a, b) => a * b, 1);
  const xDims = (n: number) => [n, H, W, C];
  // f0 = h(x) on the clean image: the forward graph with f0 = 0 returns y.
  let f0: import('onnxruntime-node').Tensor;
  try {
    const out = await forward.run({ 'vjp/x': new ort.Tensor('float32', spec.image, xDims(1)), 'vjp/f0': new ort.Tensor('float32', new Float32Array(featureSize), featureShape) });
    f0 = new ort.Tensor('float32', Float32Array.from(out[spec.layerName].data as Float32Array), featureShape);
  } catch (e) {
    await releaseAll();
    return `onnxruntime cannot run the layer's graph (${firstLine(e)})`;
  }
  const unit = H * W * C;
  /**
   * Runs `run` on samples [from, from + m) of a batch of n, all at once or (perSample) one at a time, and
   * concatenates its per-sample outputs (`width` values each) into one array per output.
   */
  const batched = async (n: number, width: number[], run: (from: number, m: number) => Promise<Float32Array[]>): Promise<Float32Array[]> => {
    if (!spec.perSample || n === 1) return run(0, n);
    const outs = width.map((w) => new Float32Array(n * w));
    for (let i = 0; i < n; i++) (await run(i, 1)).forEach((o, k) => outs[k].set(o, i * width[k]));
    return outs;
  };
  const xOf = (x: Float32Array, from: number, m: number) => new ort.Tensor('float32', x.subarray(from * unit, (from + m) * unit), xDims(m));
  return {
    runtime: `onnxruntime ${ort.env.versions?.node ?? ''} (cpu, ${spec.threads} thread${spec.threads === 1 ? '' : 's'}${spec.perSample ? ', one sample at a time' : ''})`.replace('  ', ' '),
    featureSize,
    async squaredChange(noisy, n) {
      const [sq] = await batched(n, [1], async (from, m) => {
        const out = await forward.run({ 'vjp/x': xOf(noisy, from, m), 'vjp/f0': f0 }, ['vjp/sq']);
        return [Float32Array.from(out['vjp/sq'].data as Float32Array)];
      });
      return sq;
    },
    async squaredChangeAndGrad(noisy, n, coef) {
      const session = await gradient.get();
      const [sq, grad] = await batched(n, [1, unit], async (from, m) => {
        const out = await session.run({ 'vjp/x': xOf(noisy, from, m), 'vjp/f0': f0, 'vjp/coef': new ort.Tensor('float32', Float32Array.of(coef), []) });
        return [Float32Array.from(out['vjp/sq'].data as Float32Array), out['vjp/dx'].data as Float32Array];
      });
      return { sq, grad };
    },
    async vjp(x, u, n) {
      const session = await vjp.get();
      const [dx] = await batched(n, [unit], async (from, m) => {
        const out = await session.run({ 'vjp/x': xOf(x, from, m), 'vjp/u': new ort.Tensor('float32', u.subarray(from * featureSize, (from + m) * featureSize), [m, ...featureShape.slice(1)]) });
        return [out['vjp/dx'].data as Float32Array];
      });
      return dx;
    },
    releaseVjp: () => vjp.release(),
    dispose: releaseAll,
  };
}

function toNchw(x: Float32Array, H: number, W: number, C: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) for (let c = 0; c < C; c++) out[c * H * W + h * W + w] = x[(h * W + w) * C + c];
  return out;
}

function firstLine(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).split('\n')[0];
}
